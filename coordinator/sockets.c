/* SPDX-License-Identifier: MIT */
/* The server's nng side: REP contexts that take requests, replies, PUB notices. */
#include "coordinator/server_internal.h"

#include <errno.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdlib.h>
#include <string.h>

#include "sutra/errors.h"
#include "util/detail.h"
#include "wire/nngclose.h"
#include "wire/nngerr.h"

/* ---- Replies ------------------------------------------------------------ */

nng_msg *coord_reply_msg(const struct proto_req_header *h, int32_t status, uint64_t epoch,
			 const void *body, size_t body_len)
{
	nng_msg *m;
	if (nng_msg_alloc(&m, PROTO_REP_HEADER + body_len) != 0)
		return NULL;
	struct proto_rep_header r = { .version = PROTO_VERSION,
				      .op = h->op,
				      .client_id = h->client_id,
				      .seq = h->seq,
				      .status = status,
				      .body_len = (uint32_t)body_len,
				      .epoch = epoch };
	unsigned char *b = nng_msg_body(m);
	proto_rep_header_encode(&r, b);
	if (body_len)
		memcpy(b + PROTO_REP_HEADER, body, body_len);
	return m;
}

nng_msg *coord_error_msg(const struct proto_req_header *h, int32_t status, uint64_t epoch,
			 uint32_t index, const char *text)
{
	size_t tl = text ? strlen(text) : 0;
	size_t bl = proto_error_body_size(tl);
	unsigned char *body = malloc(bl);
	if (!body)
		return NULL;
	proto_error_body_encode(index, text, tl, body);
	nng_msg *m = coord_reply_msg(h, status, epoch, body, bl);
	free(body);
	return m;
}

void coord_send_reply(struct work *w, nng_msg *m)
{
	if (w->msg) {
		nng_msg_free(w->msg);
		w->msg = NULL;
	}
	if (!m) {
		w->state = W_RECV;
		nng_ctx_recv(w->ctx, w->aio);
		return;
	}
	w->state = W_SEND;
	atomic_fetch_add(&w->s->sending, 1);
	nng_aio_set_msg(w->aio, m);
	nng_ctx_send(w->ctx, w->aio);
}

/* ---- REP contexts ------------------------------------------------------- */

static void work_cb(void *arg)
{
	struct work *w = arg;
	struct coord_server *s = w->s;
	struct sutra_detail why;
	int rv = nng_aio_result(w->aio);

	if (w->state == W_SEND) {
		atomic_fetch_sub(&s->sending, 1);
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(w->aio));
		if (rv == NNG_ECLOSED)
			return;
		w->state = W_RECV;
		nng_ctx_recv(w->ctx, w->aio);
		return;
	}
	/* W_RECV */
	if (rv != 0) {
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return;
		nng_ctx_recv(w->ctx, w->aio);
		return;
	}
	w->msg = nng_aio_get_msg(w->aio);
	nng_aio_set_msg(w->aio, NULL);
	const void *body = nng_msg_body(w->msg);
	size_t len = nng_msg_len(w->msg);
	int rc = proto_req_header_decode(body, len, &s->lim, &w->h, &why);
	if (rc) {
		coord_send_reply(w, coord_error_msg(&w->h, rc, atomic_load(&s->epoch_seen), UINT32_MAX,
						    why.what));
		return;
	}
	if (w->h.op == PROTO_OP_PING) {
		unsigned char ping[PROTO_PING_SIZE];
		proto_ping_encode(atomic_load(&s->end_seen), s->uuid, s->vector_dim, ping);
		coord_send_reply(w, coord_reply_msg(&w->h, 0, atomic_load(&s->epoch_seen), ping,
						    sizeof ping));
		return;
	}
	pthread_mutex_lock(&s->mu);
	if (s->stopping || atomic_load(&s->fatal)) {
		int fatal = atomic_load(&s->fatal);
		pthread_mutex_unlock(&s->mu);
		coord_send_reply(w, coord_error_msg(&w->h, SUTRA_EUNAVAIL, atomic_load(&s->epoch_seen),
						    UINT32_MAX,
						    fatal ? "the coordinator stopped after an I/O error"
							  : "the coordinator is shutting down"));
		return;
	}
	w->state = W_QUEUED;
	w->next = NULL;
	if (s->qtail)
		s->qtail->next = w;
	else
		s->qhead = w;
	s->qtail = w;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* ---- Notices ------------------------------------------------------------ */

void coord_publish(struct coord_server *s, uint16_t kind, const unsigned char *changed,
		   size_t changed_len)
{
	struct proto_notice n = { .kind = kind,
				  .epoch = atomic_load(&s->epoch_seen),
				  .published_end = atomic_load(&s->end_seen),
				  .durable_epoch = atomic_load(&s->durable_seen),
				  .changed_len = (uint32_t)changed_len };
	memcpy(n.store_uuid, s->uuid, 16);
	nng_msg *m;
	if (nng_msg_alloc(&m, PROTO_NOTICE_HEADER + changed_len) != 0)
		return;
	unsigned char *b = nng_msg_body(m);
	proto_notice_header_encode(&n, b);
	if (changed_len)
		memcpy(b + PROTO_NOTICE_HEADER, changed, changed_len);
	if (nng_sendmsg(s->pub, m, NNG_FLAG_NONBLOCK) != 0)
		nng_msg_free(m);
}

/* ---- Open and close ----------------------------------------------------- */

int coord_sockets_open(struct coord_server *s, struct sutra_detail *why)
{
	const struct coord_config *c = &s->cfg;
	int rv;

	if ((rv = nng_rep0_open(&s->rep)) || (rv = nng_pub0_open(&s->pub)))
		return util_fail(wire_nng_error(rv), why, "cannot open sockets: %s", nng_strerror(rv));
	/* Messages somewhat over the limit are received and answered with
	 * SUTRA_ETOOBIG; far larger ones are dropped by nng with the
	 * connection, before they cost memory. */
	size_t maxsz = (size_t)c->max_request * 2;
	if (maxsz < (size_t)c->max_request + (1u << 20))
		maxsz = (size_t)c->max_request + (1u << 20);
	nng_socket_set_size(s->rep, NNG_OPT_RECVMAXSZ, maxsz);
	if ((rv = wire_listen(s->rep, s->listen_url, &s->rep_l)))
		return util_fail(wire_nng_error(rv), why, "cannot listen on %s: %s", s->listen_url,
				 nng_strerror(rv));
	if ((rv = wire_listen(s->pub, s->events_url, &s->pub_l)))
		return util_fail(wire_nng_error(rv), why, "cannot listen on %s: %s", s->events_url,
				 nng_strerror(rv));
	s->nworks = c->contexts ? c->contexts : 64;
	if (s->nworks > COORD_DEDUP_CLIENTS / 2)
		s->nworks = COORD_DEDUP_CLIENTS / 2; /* see coordinator/dedup.h */
	if (!(s->works = calloc(s->nworks, sizeof *s->works)))
		return -ENOMEM;
	for (uint32_t i = 0; i < s->nworks; i++) {
		struct work *w = calloc(1, sizeof *w);
		if (!w)
			return -ENOMEM;
		s->works[i] = w;
		w->s = s;
		if ((rv = nng_aio_alloc(&w->aio, work_cb, w)) || (rv = nng_ctx_open(&w->ctx, s->rep)))
			return util_fail(wire_nng_error(rv), why, "cannot set up contexts: %s",
					 nng_strerror(rv));
	}
	return 0;
}

void coord_sockets_serve(struct coord_server *s)
{
	for (uint32_t i = 0; i < s->nworks; i++) {
		s->works[i]->state = W_RECV;
		nng_ctx_recv(s->works[i]->ctx, s->works[i]->aio);
	}
}

/* Closing nng sockets while client pipes are still going away can block
 * for ever in nng 1.5.2. Everything that matters is done before the
 * sockets are closed (the writer has stopped, the store is synced and
 * unlocked), so what does not close in time is abandoned: the process is
 * about to exit anyway (wire/nngclose.h). */
int coord_sockets_close(struct coord_server *s)
{
	nng_socket socks[2] = { s->rep, s->pub };
	return wire_nng_close_bounded(socks, 2, COORD_CLOSE_DEADLINE_MS) ? 0 : -ETIMEDOUT;
}

void coord_sockets_free(struct coord_server *s)
{
	for (uint32_t i = 0; s->works && i < s->nworks; i++) {
		struct work *w = s->works[i];
		if (!w)
			continue;
		if (w->aio) {
			nng_aio_stop(w->aio);
			nng_aio_free(w->aio);
		}
		if (w->msg)
			nng_msg_free(w->msg);
		free(w);
	}
	free(s->works);
	s->works = NULL;
}
