/* SPDX-License-Identifier: MIT */
/* Unit tests of libsutra-client against a scripted REP peer: request bytes, replies, errors, per-thread detail. */
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sutra/client.h"
#include "tests/common/tcheck.h"
#include "util/endian.h"
#include "wire/proto.h"

/*
 * The peer answers by what it is sent, so that each test can provoke the
 * reply it needs; the real coordinator is exercised by the integration
 * tests, this one reaches what a coordinator never sends (malformed
 * replies) and checks the bytes the client puts on the wire.
 *   PING                     -> OK, epoch 7
 *   LEARN_CONCEPT "fail..."  -> SUTRA_ENOTFOUND "no such thing: <content>"
 *   LEARN_CONCEPT other      -> OK, epoch = sequence; the op is recorded
 *   BATCH                    -> SUTRA_EVALUE at entry 1, "entry 1 is bad"
 *   STATS                    -> a reply too short to be one
 */

#define DIM 4

struct peer {
	nng_socket sock;
	pthread_t thread;
	char url[256];
	char dir[64];
	pthread_mutex_t mu;
	float embedding[DIM]; /* of the last recorded learn */
	uint32_t vector_dim;
	char content[128];
};

static void reply(nng_socket s, const struct proto_req_header *h, int32_t status, uint64_t epoch,
		  const char *err, uint32_t index)
{
	size_t body = err ? proto_error_body_size(strlen(err)) : 0;
	nng_msg *m;
	ck_assert_int_eq(nng_msg_alloc(&m, PROTO_REP_HEADER + body), 0);
	struct proto_rep_header r = { .version = PROTO_VERSION,
				      .op = h->op,
				      .client_id = h->client_id,
				      .seq = h->seq,
				      .status = status,
				      .body_len = (uint32_t)body,
				      .epoch = epoch };
	unsigned char *b = nng_msg_body(m);
	proto_rep_header_encode(&r, b);
	if (err)
		proto_error_body_encode(index, err, strlen(err), b + PROTO_REP_HEADER);
	if (nng_sendmsg(s, m, 0))
		nng_msg_free(m);
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	const struct proto_limits lim = { .max_request = 1u << 20,
					  .max_content = 1024,
					  .max_metadata = 1024,
					  .max_batch = 16,
					  .vector_dim = DIM };
	nng_msg *m;
	while (nng_recvmsg(p->sock, &m, 0) == 0) {
		const unsigned char *b = nng_msg_body(m);
		size_t len = nng_msg_len(m);
		struct proto_req_header h;
		if (proto_req_header_decode(b, len, &lim, &h, NULL)) {
			nng_msg_free(m);
			continue;
		}
		struct proto_op_body op;
		char text[128];
		switch (h.op) {
		case PROTO_OP_PING:
			reply(p->sock, &h, 0, 7, NULL, 0);
			break;
		case PROTO_OP_LEARN_CONCEPT:
			if (proto_op_decode(h.op, b + PROTO_REQ_HEADER, h.body_len, &lim, &op, NULL)) {
				reply(p->sock, &h, SUTRA_EPROTO, 0, "undecodable", UINT32_MAX);
				break;
			}
			snprintf(text, sizeof text, "%.*s", (int)op.u.concept.content_len,
				 op.u.concept.content);
			if (strncmp(text, "fail", 4) == 0) {
				char msg[160];
				snprintf(msg, sizeof msg, "no such thing: %s", text);
				reply(p->sock, &h, SUTRA_ENOTFOUND, 0, msg, UINT32_MAX);
				break;
			}
			pthread_mutex_lock(&p->mu);
			p->vector_dim = op.u.concept.vector_dim;
			for (uint32_t i = 0; i < op.u.concept.vector_dim && i < DIM; i++)
				p->embedding[i] = util_get_lef32(op.u.concept.embedding + 4 * i);
			snprintf(p->content, sizeof p->content, "%s", text);
			pthread_mutex_unlock(&p->mu);
			reply(p->sock, &h, 0, h.seq, NULL, 0);
			break;
		case PROTO_OP_BATCH:
			reply(p->sock, &h, SUTRA_EVALUE, 0, "entry 1 is bad", 1);
			break;
		default: {
			nng_msg *r;
			ck_assert_int_eq(nng_msg_alloc(&r, 5), 0);
			memset(nng_msg_body(r), 0, 5);
			if (nng_sendmsg(p->sock, r, 0))
				nng_msg_free(r);
			break;
		}
		}
		nng_msg_free(m);
	}
	return NULL;
}

static void peer_start(struct peer *p)
{
	memset(p, 0, sizeof *p);
	snprintf(p->dir, sizeof p->dir, "/tmp/sutra-tclient-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(p->dir));
	snprintf(p->url, sizeof p->url, "ipc://%s/write", p->dir);
	pthread_mutex_init(&p->mu, NULL);
	ck_assert_int_eq(nng_rep0_open(&p->sock), 0);
	ck_assert_int_eq(nng_listen(p->sock, p->url, NULL, 0), 0);
	ck_assert_int_eq(pthread_create(&p->thread, NULL, peer_main, p), 0);
}

static void peer_stop(struct peer *p)
{
	nng_close(p->sock);
	pthread_join(p->thread, NULL);
	char path[300];
	snprintf(path, sizeof path, "%s/write", p->dir);
	unlink(path);
	rmdir(p->dir);
}

static sutra_client *connect_to(const struct peer *p, uint32_t timeout_ms)
{
	struct sutra_client_options o;
	sutra_client_options_init(&o);
	o.timeout_ms = timeout_ms;
	sutra_client *c = NULL;
	ck_assert_ok(sutra_client_connect(p->url, &o, &c));
	return c;
}

static const uint8_t ID[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

static int learn(sutra_client *c, const char *content, const float *emb, uint64_t *epoch)
{
	struct sutra_concept_in in = { .id = ID,
				       .content = content,
				       .content_len = strlen(content),
				       .embedding = emb,
				       .vector_dim = emb ? DIM : 0,
				       .strength = 1,
				       .confidence = 1 };
	return sutra_client_learn_concept(c, &in, epoch);
}

START_TEST(test_client_learn_sends_the_callers_embedding)
{
	struct peer p;
	peer_start(&p);
	sutra_client *c = connect_to(&p, 60000);
	const float emb[DIM] = { 0.25f, -1.5f, 3.0e-7f, 1024.0f };
	uint64_t epoch = 0;
	ck_assert_ok(learn(c, "hello", emb, &epoch));
	ck_assert_uint_gt(epoch, 0);
	ck_assert_str_eq(sutra_client_last_error(c), "");
	pthread_mutex_lock(&p.mu);
	ck_assert_str_eq(p.content, "hello");
	ck_assert_uint_eq(p.vector_dim, DIM);
	ck_assert_mem_eq(p.embedding, emb, sizeof emb);
	pthread_mutex_unlock(&p.mu);
	sutra_client_close(c);
	peer_stop(&p);
}
END_TEST

START_TEST(test_client_error_reply_gives_detail_and_index)
{
	struct peer p;
	peer_start(&p);
	sutra_client *c = connect_to(&p, 60000);
	ck_assert_err(learn(c, "fail-1", NULL, NULL), SUTRA_ENOTFOUND);
	ck_assert_str_eq(sutra_client_last_error(c), "no such thing: fail-1");
	ck_assert_int_eq(sutra_client_last_error_index(c), -1);

	sutra_batch *b = sutra_batch_create();
	ck_assert_ptr_nonnull(b);
	ck_assert_ok(sutra_batch_delete_concept(b, ID));
	ck_assert_ok(sutra_batch_delete_concept(b, ID));
	ck_assert_err(sutra_client_commit(c, b, NULL), SUTRA_EVALUE);
	ck_assert_str_eq(sutra_client_last_error(c), "entry 1 is bad");
	ck_assert_int_eq(sutra_client_last_error_index(c), 1);
	sutra_batch_destroy(b);

	/* A success clears the detail. */
	uint64_t epoch = 0;
	ck_assert_ok(sutra_client_ping(c, &epoch));
	ck_assert_uint_eq(epoch, 7);
	ck_assert_str_eq(sutra_client_last_error(c), "");
	ck_assert_int_eq(sutra_client_last_error_index(c), -1);

	/* Refused before sending: still a detail. */
	struct sutra_concept_in bad = { .id = NULL, .content = "x", .content_len = 1 };
	ck_assert_err(sutra_client_learn_concept(c, &bad, NULL), SUTRA_EVALUE);
	ck_assert_str_ne(sutra_client_last_error(c), "");
	sutra_client_close(c);
	peer_stop(&p);
}
END_TEST

START_TEST(test_client_malformed_reply_is_eproto)
{
	struct peer p;
	peer_start(&p);
	sutra_client *c = connect_to(&p, 60000);
	struct sutra_coord_stats st;
	ck_assert_err(sutra_client_stats(c, &st), SUTRA_EPROTO);
	ck_assert_ptr_nonnull(strstr(sutra_client_last_error(c), "malformed reply"));
	sutra_client_close(c);
	peer_stop(&p);
}
END_TEST

START_TEST(test_client_no_coordinator_is_eunavail_with_detail)
{
	char dir[] = "/tmp/sutra-tclient-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char url[128];
	snprintf(url, sizeof url, "ipc://%s/nobody", dir);
	struct sutra_client_options o;
	sutra_client_options_init(&o);
	o.timeout_ms = 200;
	sutra_client *c = NULL;
	ck_assert_ok(sutra_client_connect(url, &o, &c));
	ck_assert_err(sutra_client_ping(c, NULL), SUTRA_EUNAVAIL);
	ck_assert_ptr_nonnull(strstr(sutra_client_last_error(c), "within 200 ms"));
	sutra_client_close(c);
	ck_assert_err(sutra_client_connect("nonsense://x", NULL, &c), -EINVAL);
	rmdir(dir);
}
END_TEST

/* Two threads share one client: each must read its own call's detail. */
struct sharer {
	sutra_client *c;
	int failing;
	int wrong;
};

static void *share_main(void *arg)
{
	struct sharer *s = arg;
	for (int i = 0; i < 300; i++) {
		char text[32];
		if (s->failing) {
			snprintf(text, sizeof text, "fail-%d", i);
			if (learn(s->c, text, NULL, NULL) != SUTRA_ENOTFOUND) {
				s->wrong++;
				continue;
			}
			char want[64];
			snprintf(want, sizeof want, "no such thing: %s", text);
			if (strcmp(sutra_client_last_error(s->c), want) != 0)
				s->wrong++;
		} else {
			if (sutra_client_ping(s->c, NULL) != 0 ||
			    strcmp(sutra_client_last_error(s->c), "") != 0)
				s->wrong++;
		}
	}
	return NULL;
}

START_TEST(test_client_detail_is_per_thread)
{
	struct peer p;
	peer_start(&p);
	sutra_client *c = connect_to(&p, 60000);
	struct sharer a = { .c = c, .failing = 1 }, b = { .c = c, .failing = 0 };
	pthread_t ta, tb;
	ck_assert_int_eq(pthread_create(&ta, NULL, share_main, &a), 0);
	ck_assert_int_eq(pthread_create(&tb, NULL, share_main, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	ck_assert_int_eq(a.wrong, 0);
	ck_assert_int_eq(b.wrong, 0);
	sutra_client_close(c);
	peer_stop(&p);
}
END_TEST

TCHECK_MAIN("client", "client", 0, test_client_learn_sends_the_callers_embedding,
	    test_client_error_reply_gives_detail_and_index, test_client_malformed_reply_is_eproto,
	    test_client_no_coordinator_is_eunavail_with_detail, test_client_detail_is_per_thread)
