/* SPDX-License-Identifier: MIT */
/* libsutra-client: requests to the coordinator over nng REQ/REP, with resends under one client id and sequence. */
#include "sutra/client.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wire/nngclose.h"
#include "wire/nngerr.h"
#include "wire/proto.h"
#include "util/detail.h"
#include "util/endian.h"
#include "util/grow.h"
#include "util/random.h"

struct sutra_client {
	nng_socket sock;
	pthread_mutex_t mu;
	struct sutra_client_options opt;
	uint64_t id;
	uint64_t seq;
};

/*
 * The detail of the calling thread's last call: which client it was made
 * on, the coordinator's sentence and the failed batch index. Thread-local
 * because a client may be shared between threads (client.h): one
 * thread's call must never clear or overwrite the detail another thread
 * is about to read.
 */
static _Thread_local struct {
	const sutra_client *c;
	int index;
	struct sutra_detail d;
} last;

struct sutra_batch {
	unsigned char *buf; /* entries, after an 8-byte batch header */
	size_t len, cap;
	size_t count;
};

void sutra_client_options_init(struct sutra_client_options *o)
{
	memset(o, 0, sizeof *o);
	o->timeout_ms = 10000;
	o->resend_ms = 1000;
	o->reconnect_min_ms = 10;
	o->reconnect_max_ms = 500;
}

int sutra_client_connect(const char *url, const struct sutra_client_options *o,
			 sutra_client **out)
{
	struct sutra_client *c;
	int rv;

	if (!url || !out)
		return -EINVAL;
	if (!(c = calloc(1, sizeof *c)))
		return -ENOMEM;
	if (o)
		c->opt = *o;
	else
		sutra_client_options_init(&c->opt);
	if (!c->opt.timeout_ms || !c->opt.resend_ms) {
		free(c);
		return -EINVAL;
	}
	c->id = c->opt.client_id;
	while (c->id == 0) {
		if ((rv = util_random_bytes(&c->id, sizeof c->id))) {
			free(c);
			return rv;
		}
	}
	if ((rv = nng_req0_open(&c->sock))) {
		free(c);
		return wire_nng_error(rv);
	}
	nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, (nng_duration)c->opt.resend_ms);
	nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, (nng_duration)c->opt.timeout_ms);
	nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, (nng_duration)c->opt.timeout_ms);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, (nng_duration)c->opt.reconnect_min_ms);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, (nng_duration)c->opt.reconnect_max_ms);
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, 1u << 20);
	/* Non-blocking dial: the coordinator may start later; nng keeps
	 * trying in the background. */
	if ((rv = nng_dial(c->sock, url, NULL, NNG_FLAG_NONBLOCK))) {
		nng_close(c->sock);
		free(c);
		return wire_nng_error(rv);
	}
	pthread_mutex_init(&c->mu, NULL);
	*out = c;
	return 0;
}

#define CLOSE_DEADLINE_MS 2000u

void sutra_client_close(sutra_client *c)
{
	if (!c)
		return;
	/* With a deadline: see wire/nngclose.h. */
	wire_nng_close_bounded(&c->sock, 1, CLOSE_DEADLINE_MS);
	pthread_mutex_destroy(&c->mu);
	if (last.c == c)
		last.c = NULL;
	free(c);
}

const char *sutra_client_last_error(const sutra_client *c)
{
	return last.c == c ? last.d.what : "";
}

int sutra_client_last_error_index(const sutra_client *c)
{
	return last.c == c ? last.index : -1;
}

/* A request message with room for the header and body_len bytes of body;
 * *body points at the body, for the caller to encode into. */
static int request_alloc(size_t body_len, nng_msg **m, unsigned char **body)
{
	if (body_len > UINT32_MAX - PROTO_REQ_HEADER)
		return SUTRA_ETOOBIG;
	if (nng_msg_alloc(m, PROTO_REQ_HEADER + body_len))
		return -ENOMEM;
	*body = (unsigned char *)nng_msg_body(*m) + PROTO_REQ_HEADER;
	return 0;
}

/* One round trip of the request m (from request_alloc, body filled in;
 * freed here whatever happens) under op. On success the reply body (if
 * reply_body) is copied into reply_body/reply_len (malloc'ed). */
static int call_msg(sutra_client *c, uint16_t op, nng_msg *m, uint64_t *epoch,
		    unsigned char **reply_body, size_t *reply_len)
{
	struct sutra_detail *why = &last.d;
	int rv, rc;

	last.c = c;
	last.index = -1;
	why->what[0] = 0;
	pthread_mutex_lock(&c->mu);
	struct proto_req_header h = { .version = PROTO_VERSION,
				      .op = op,
				      .client_id = c->id,
				      .seq = ++c->seq,
				      .body_len = (uint32_t)(nng_msg_len(m) - PROTO_REQ_HEADER) };
	proto_req_header_encode(&h, nng_msg_body(m));
	/* One budget for the whole call: what the send waited for a
	 * connection is taken from the wait for the reply. */
	nng_time start = nng_clock();
	nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, (nng_duration)c->opt.timeout_ms);
	if ((rv = nng_sendmsg(c->sock, m, 0))) {
		nng_msg_free(m);
		pthread_mutex_unlock(&c->mu);
		return util_fail(SUTRA_EUNAVAIL, why,
				 "cannot reach the coordinator within %u ms: %s",
				 c->opt.timeout_ms, nng_strerror(rv));
	}
	nng_time spent = nng_clock() - start;
	nng_duration left = spent >= c->opt.timeout_ms ? 1 : (nng_duration)(c->opt.timeout_ms - spent);
	nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, left);
	if ((rv = nng_recvmsg(c->sock, &m, 0))) {
		pthread_mutex_unlock(&c->mu);
		return util_fail(SUTRA_EUNAVAIL, why,
				 "no reply from the coordinator within %u ms: %s",
				 c->opt.timeout_ms, nng_strerror(rv));
	}
	pthread_mutex_unlock(&c->mu);
	struct proto_rep_header r;
	const unsigned char *rb = nng_msg_body(m);
	size_t rl = nng_msg_len(m);
	if (proto_rep_header_decode(rb, rl, &r) || r.client_id != h.client_id || r.seq != h.seq ||
	    r.op != op) {
		rc = util_fail(SUTRA_EPROTO, why, "malformed reply from the coordinator");
		goto out;
	}
	rc = r.status;
	if (rc) {
		uint32_t index, ml;
		const char *msg;
		if (proto_error_body_decode(rb + PROTO_REP_HEADER, r.body_len, &index, &msg, &ml) ==
		    0) {
			util_fail(rc, why, "%.*s", (int)ml, msg);
			last.index = index == UINT32_MAX ? -1 : (int)index;
		} else {
			util_fail(rc, why, "%s", sutra_strerror(rc));
		}
		goto out;
	}
	if (epoch)
		*epoch = r.epoch;
	if (reply_body) {
		*reply_body = malloc(r.body_len ? r.body_len : 1);
		if (!*reply_body) {
			rc = util_fail(-ENOMEM, why, "out of memory");
			goto out;
		}
		memcpy(*reply_body, rb + PROTO_REP_HEADER, r.body_len);
		*reply_len = r.body_len;
	}
out:
	nng_msg_free(m);
	return rc;
}

/* One round trip with body_len bytes of body copied from body. */
static int call(sutra_client *c, uint16_t op, const void *body, size_t body_len, uint64_t *epoch,
		unsigned char **reply_body, size_t *reply_len)
{
	nng_msg *m;
	unsigned char *b;
	int rc = request_alloc(body_len, &m, &b);
	if (rc)
		return rc;
	if (body_len)
		memcpy(b, body, body_len);
	return call_msg(c, op, m, epoch, reply_body, reply_len);
}

/* Fills op from a concept to learn (pointers borrowed from in). */
static int concept_op(const struct sutra_concept_in *in, struct proto_op_body *op)
{
	if (!in || !in->id || (!in->content && in->content_len) ||
	    (!in->metadata && in->metadata_len) || (in->vector_dim && !in->embedding) ||
	    in->content_len > UINT32_MAX || in->metadata_len > UINT32_MAX)
		return SUTRA_EVALUE;
	memset(op, 0, sizeof *op);
	op->op = PROTO_OP_LEARN_CONCEPT;
	memcpy(op->u.concept.id, in->id, 16);
	op->u.concept.strength = in->strength;
	op->u.concept.confidence = in->confidence;
	op->u.concept.vector_dim = in->embedding ? in->vector_dim : 0;
	op->u.concept.content = in->content;
	op->u.concept.content_len = (uint32_t)in->content_len;
	op->u.concept.metadata = in->metadata;
	op->u.concept.metadata_len = (uint32_t)in->metadata_len;
	return 0;
}

/* Sends one operation, encoded straight into the request message: the
 * embedding is copied once, from the caller's array into the message. */
static int send_op(sutra_client *c, const struct proto_op_body *op, const float *embedding,
		   uint64_t *epoch)
{
	nng_msg *m;
	unsigned char *b;
	int rc = request_alloc(proto_op_size(op), &m, &b);
	if (rc)
		return rc;
	proto_op_encode(op, embedding, b);
	return call_msg(c, op->op, m, epoch, NULL, NULL);
}

static void assoc_op(struct proto_op_body *op, uint16_t type, const uint8_t src[16],
		     const uint8_t dst[16], uint8_t atype, float confidence, float weight)
{
	memset(op, 0, sizeof *op);
	op->op = type;
	memcpy(op->u.assoc.src, src, 16);
	memcpy(op->u.assoc.dst, dst, 16);
	op->u.assoc.type = atype;
	op->u.assoc.confidence = confidence;
	op->u.assoc.weight = weight;
}

/* A call refused before it is sent: this thread's detail says why. */
static int refuse(const sutra_client *c, int rc, const char *what)
{
	last.c = c;
	last.index = -1;
	return util_fail(rc, &last.d, "%s", what);
}

int sutra_client_learn_concept(sutra_client *c, const struct sutra_concept_in *in,
			       uint64_t *epoch)
{
	struct proto_op_body op;
	int rc = concept_op(in, &op);
	if (rc)
		return refuse(c, rc, "invalid concept: a NULL id, content, metadata or "
				     "embedding, or content or metadata over 4 GiB");
	return send_op(c, &op, in->embedding, epoch);
}

int sutra_client_learn_association(sutra_client *c, const uint8_t src[16], const uint8_t dst[16],
				   uint8_t type, float confidence, float weight, uint64_t *epoch)
{
	struct proto_op_body op;
	if (!src || !dst)
		return refuse(c, SUTRA_EVALUE, "NULL source or target id");
	assoc_op(&op, PROTO_OP_LEARN_ASSOCIATION, src, dst, type, confidence, weight);
	return send_op(c, &op, NULL, epoch);
}

int sutra_client_delete_concept(sutra_client *c, const uint8_t id[16], uint64_t *epoch)
{
	struct proto_op_body op;
	if (!id)
		return refuse(c, SUTRA_EVALUE, "NULL concept id");
	memset(&op, 0, sizeof op);
	op.op = PROTO_OP_DELETE_CONCEPT;
	memcpy(op.u.del.id, id, 16);
	return send_op(c, &op, NULL, epoch);
}

int sutra_client_delete_association(sutra_client *c, const uint8_t src[16], const uint8_t dst[16],
				    uint8_t type, uint64_t *epoch)
{
	struct proto_op_body op;
	if (!src || !dst)
		return refuse(c, SUTRA_EVALUE, "NULL source or target id");
	assoc_op(&op, PROTO_OP_DELETE_ASSOCIATION, src, dst, type, 0, 0);
	return send_op(c, &op, NULL, epoch);
}

int sutra_client_sync(sutra_client *c, uint64_t *epoch)
{
	return call(c, PROTO_OP_SYNC, NULL, 0, epoch, NULL, NULL);
}

int sutra_client_ping(sutra_client *c, uint64_t *epoch)
{
	return call(c, PROTO_OP_PING, NULL, 0, epoch, NULL, NULL);
}

int sutra_client_stats(sutra_client *c, struct sutra_coord_stats *st)
{
	unsigned char *body = NULL;
	size_t len = 0;
	struct proto_stats ps;
	int rc = call(c, PROTO_OP_STATS, NULL, 0, NULL, &body, &len);
	if (rc)
		return rc;
	rc = proto_stats_decode(body, len, &ps);
	free(body);
	if (rc)
		return rc;
	proto_stats_to_public(&ps, st);
	return 0;
}

/* ---- Batches ------------------------------------------------------------ */

sutra_batch *sutra_batch_create(void)
{
	sutra_batch *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->len = PROTO_BATCH_FIXED;
	return b;
}

void sutra_batch_destroy(sutra_batch *b)
{
	if (!b)
		return;
	free(b->buf);
	free(b);
}

void sutra_batch_clear(sutra_batch *b)
{
	b->len = PROTO_BATCH_FIXED;
	b->count = 0;
}

size_t sutra_batch_count(const sutra_batch *b)
{
	return b->count;
}

static int batch_add(sutra_batch *b, const struct proto_op_body *op, const float *embedding)
{
	size_t n = proto_op_size(op);
	if (n > UINT32_MAX || b->count >= UINT32_MAX)
		return SUTRA_ETOOBIG;
	size_t need = b->len + PROTO_BATCH_ENTRY + n;
	int rc = UTIL_GROW(b->buf, b->cap, need, 4096);
	if (rc)
		return rc;
	unsigned char *e = b->buf + b->len;
	memset(e, 0, PROTO_BATCH_ENTRY);
	util_put_le16(e, op->op);
	util_put_le32(e + 4, (uint32_t)n);
	proto_op_encode(op, embedding, e + PROTO_BATCH_ENTRY);
	b->len = need;
	b->count++;
	return 0;
}

int sutra_batch_learn_concept(sutra_batch *b, const struct sutra_concept_in *in)
{
	struct proto_op_body op;
	int rc = concept_op(in, &op);
	return rc ? rc : batch_add(b, &op, in->embedding);
}

int sutra_batch_learn_association(sutra_batch *b, const uint8_t src[16], const uint8_t dst[16],
				  uint8_t type, float confidence, float weight)
{
	struct proto_op_body op;
	if (!src || !dst)
		return SUTRA_EVALUE;
	assoc_op(&op, PROTO_OP_LEARN_ASSOCIATION, src, dst, type, confidence, weight);
	return batch_add(b, &op, NULL);
}

int sutra_batch_delete_concept(sutra_batch *b, const uint8_t id[16])
{
	struct proto_op_body op;
	if (!id)
		return SUTRA_EVALUE;
	memset(&op, 0, sizeof op);
	op.op = PROTO_OP_DELETE_CONCEPT;
	memcpy(op.u.del.id, id, 16);
	return batch_add(b, &op, NULL);
}

int sutra_batch_delete_association(sutra_batch *b, const uint8_t src[16], const uint8_t dst[16],
				   uint8_t type)
{
	struct proto_op_body op;
	if (!src || !dst)
		return SUTRA_EVALUE;
	assoc_op(&op, PROTO_OP_DELETE_ASSOCIATION, src, dst, type, 0, 0);
	return batch_add(b, &op, NULL);
}

int sutra_client_commit(sutra_client *c, const sutra_batch *b, uint64_t *epoch)
{
	unsigned char hdr[PROTO_BATCH_FIXED] = { 0 };
	if (!b->buf) {
		/* An empty batch: just the fixed part. */
		return call(c, PROTO_OP_BATCH, hdr, sizeof hdr, epoch, NULL, NULL);
	}
	util_put_le32(b->buf, (uint32_t)b->count);
	util_put_le32(b->buf + 4, 0);
	return call(c, PROTO_OP_BATCH, b->buf, b->len, epoch, NULL, NULL);
}
