/* SPDX-License-Identifier: MIT */
/* The coordinator server: REP contexts, the writer thread with group commit and resend cache, notices, self checks. */
#include "coordinator/server.h"

#include <errno.h>
#include <limits.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include "wire/nngclose.h"
#include "wire/nngerr.h"
#include "sutra/errors.h"
#include "util/crc32c.h"
#include "util/endian.h"
#include "util/idmap.h"

#define RING COORD_MARKER_RING /* remembered replies per client (16) */
#define MAX_CLIENTS 4096u /* clients remembered; the least recently seen goes */
#define GROUP_BUDGET (64u << 20)
#define WHY 512

enum wstate { W_RECV, W_QUEUED, W_SEND };

struct work {
	struct coord_server *s;
	nng_aio *aio;
	nng_ctx ctx;
	nng_msg *msg; /* the request while queued */
	struct proto_req_header h;
	enum wstate state;
	struct work *next; /* queue, group or waiter list */
};

enum centry_state { C_EMPTY, C_PENDING, C_DONE };

struct centry {
	uint64_t seq;
	uint8_t state;
	uint16_t op;
	uint32_t crc; /* of the whole request: a resend is byte for byte the same */
	int32_t status;
	uint64_t epoch;
	uint32_t index;
	char *msg;
	struct work *waiters; /* duplicates that arrived while pending */
};

struct client {
	uint64_t id;
	uint64_t max_seq;
	uint64_t last_used;
	struct centry ring[RING];
};

struct coord_server {
	struct coord_config cfg;
	char listen_url[256];
	char events_url[256];
	struct coord_store *store;
	struct proto_limits lim;
	uint8_t uuid[16];
	uint32_t vector_dim;

	nng_socket rep, pub;
	nng_listener rep_l, pub_l;
	pthread_mutex_t listen_mu; /* re-listen vs. close */
	struct work **works;
	uint32_t nworks;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct work *qhead, *qtail;
	int stopping;
	int writer_done;
	int segment_ready; /* under mu: the builder finished */
	pthread_cond_t done_cv;
	atomic_int fatal;
	atomic_int sending;

	pthread_t writer, checker;
	int writer_started, checker_started;
	pthread_mutex_t check_mu;
	pthread_cond_t check_cv;
	int check_stop;

	/* writer-thread state */
	struct client *clients;
	uint32_t nclients;
	struct util_idmap client_ix;
	uint64_t tick;
	uint64_t requests, rejected, duplicates;
	atomic_uint relistens;
	atomic_uint_fast64_t epoch_seen; /* for heartbeats */
	atomic_uint_fast64_t durable_seen;
	atomic_uint_fast64_t end_seen;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The CLOCK_REALTIME time us microseconds from now, for condition waits. */
static void deadline_us(struct timespec *ts, uint64_t us)
{
	clock_gettime(CLOCK_REALTIME, ts);
	uint64_t ns = (uint64_t)ts->tv_nsec + us * 1000u;
	ts->tv_sec += (time_t)(ns / 1000000000u);
	ts->tv_nsec = (long)(ns % 1000000000u);
}

static void deadline_in(struct timespec *ts, uint32_t ms)
{
	deadline_us(ts, (uint64_t)ms * 1000u);
}

void coord_config_defaults(struct coord_config *c)
{
	memset(c, 0, sizeof *c);
	c->vector_dim = 768;
	c->durability = COORD_DURABILITY_SYNC;
	c->sync_interval_ms = 100;
	c->commit_window_us = 0;
	c->io = COORD_IO_AUTO;
	c->max_request = 64u << 20;
	c->max_content = 1u << 20;
	c->max_metadata = 1u << 20;
	c->max_batch = 100000;
	c->contexts = 64;
	c->check_interval_ms = 1000;
	c->segment_kib = 16384;
	c->log_retention_mib = 64;
	c->log.max_level = COORD_LOG_INFO;
}

int coord_default_url(const char *data_path, const char *suffix, char *out, size_t len)
{
	struct sockaddr_un sa;
	const char *slash = strrchr(data_path, '/');
	const char *name = slash ? slash + 1 : data_path;
	int dirlen = slash ? (int)(slash - data_path) : 1;
	const char *dir = slash ? data_path : ".";

	if (slash == data_path)
		dirlen = 0; /* a file in / */
	int n = snprintf(out, len, "ipc://%.*s/%s.%s", dirlen, dir, name, suffix);
	if (n > 0 && (size_t)n < len && (size_t)n - 6 < sizeof sa.sun_path)
		return 0;
	/* Too long for a Unix socket address: a name under the runtime
	 * directory derived from the whole path, so that it is stable. */
	uint64_t h = 1469598103934665603ull;
	for (const char *p = data_path; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	const char *rt = getenv("XDG_RUNTIME_DIR");
	if (!rt || !*rt)
		rt = "/tmp";
	n = snprintf(out, len, "ipc://%s/sutra-%016llx.%s", rt, (unsigned long long)h, suffix);
	if (n < 0 || (size_t)n >= len || (size_t)n - 6 >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	return 0;
}

/* ---- Replies ------------------------------------------------------------ */

/* Builds a reply message: header, then body bytes (may be NULL). */
static nng_msg *reply_msg(const struct proto_req_header *h, int32_t status, uint64_t epoch,
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

static nng_msg *error_msg(const struct proto_req_header *h, int32_t status, uint64_t epoch,
			  uint32_t index, const char *text)
{
	size_t tl = text ? strlen(text) : 0;
	size_t bl = proto_error_body_size(tl);
	unsigned char *body = malloc(bl);
	if (!body)
		return NULL;
	proto_error_body_encode(index, text, tl, body);
	nng_msg *m = reply_msg(h, status, epoch, body, bl);
	free(body);
	return m;
}

/* Sends m (or, if building it failed, nothing: the client times out and
 * resends) on w's context. */
static void send_reply(struct work *w, nng_msg *m)
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
		send_reply(w, error_msg(&w->h, rc, atomic_load(&s->epoch_seen), UINT32_MAX, why.what));
		return;
	}
	if (w->h.op == PROTO_OP_PING) {
		unsigned char ping[PROTO_PING_SIZE];
		proto_ping_encode(atomic_load(&s->end_seen), s->uuid, s->vector_dim, ping);
		send_reply(w, reply_msg(&w->h, 0, atomic_load(&s->epoch_seen), ping, sizeof ping));
		return;
	}
	pthread_mutex_lock(&s->mu);
	if (s->stopping || atomic_load(&s->fatal)) {
		int fatal = atomic_load(&s->fatal);
		pthread_mutex_unlock(&s->mu);
		send_reply(w, error_msg(&w->h, SUTRA_EUNAVAIL, atomic_load(&s->epoch_seen),
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

/* ---- Resent requests ---------------------------------------------------- */

static struct client *client_get(struct coord_server *s, uint64_t id)
{
	unsigned char key[16] = { 0 };
	uint64_t ix;

	util_put_le64(key, id);
	s->tick++;
	if (util_idmap_get(&s->client_ix, key, &ix)) {
		s->clients[ix].last_used = s->tick;
		return &s->clients[ix];
	}
	if (s->nclients < MAX_CLIENTS) {
		ix = s->nclients;
	} else {
		/* Forget the least recently seen client. None of its requests
		 * is pending: a group holds at most one request per context
		 * (at most 1,024, fewer than MAX_CLIENTS), all of whose
		 * clients were seen more recently than any other. */
		ix = 0;
		for (uint32_t i = 1; i < s->nclients; i++)
			if (s->clients[i].last_used < s->clients[ix].last_used)
				ix = i;
		struct client *old = &s->clients[ix];
		unsigned char ok[16] = { 0 };
		util_put_le64(ok, old->id);
		util_idmap_del(&s->client_ix, ok);
		for (unsigned r = 0; r < RING; r++) {
			free(old->ring[r].msg);
			old->ring[r].msg = NULL;
		}
		old->id = 0;
	}
	if (util_idmap_put(&s->client_ix, key, ix) != 0)
		return NULL;
	if (ix == s->nclients)
		s->nclients++;
	struct client *c = &s->clients[ix];
	memset(c, 0, sizeof *c);
	c->id = id;
	c->last_used = s->tick;
	return c;
}

static nng_msg *cached_reply(const struct proto_req_header *h, const struct centry *e)
{
	if (e->status == 0)
		return reply_msg(h, 0, e->epoch, NULL, 0);
	return error_msg(h, e->status, e->epoch, e->index, e->msg);
}

static void centry_finish(struct centry *e, int32_t status, uint64_t epoch, uint32_t index,
			  const char *msg)
{
	e->state = C_DONE;
	e->status = status;
	e->epoch = epoch;
	e->index = index;
	free(e->msg);
	e->msg = msg ? strdup(msg) : NULL;
}

/* Seeds the resend cache from the request markers of the log, so that a
 * request applied before a crash is answered, not applied again, when its
 * client resends it to the restarted coordinator. */
static void seed_marker(void *arg, uint64_t client_id, uint64_t seq, uint32_t crc,
			uint64_t epoch)
{
	struct coord_server *s = arg;
	struct client *c = client_get(s, client_id);
	if (!c)
		return; /* out of memory: that resend will be applied again */
	struct centry *e = &c->ring[seq % RING];
	free(e->msg);
	memset(e, 0, sizeof *e);
	e->seq = seq;
	e->crc = crc;
	e->state = C_DONE;
	e->status = 0;
	e->epoch = epoch;
	e->index = UINT32_MAX;
	if (seq > c->max_seq)
		c->max_seq = seq;
}

/* ---- The writer --------------------------------------------------------- */

/* A write request of the group being built. */
struct pending {
	struct work *w;
	struct centry *e; /* NULL when the client has no resend cache (id 0) */
};

struct group {
	struct pending *p;
	size_t n, cap;
	struct work *syncs; /* SYNC requests to answer after the sync */
};

/* Makes room for one more pending request, before it is applied: once
 * applied, it must be remembered until the commit. */
static int group_reserve(struct group *g)
{
	if (g->n < g->cap)
		return 0;
	size_t cap = g->cap ? 2 * g->cap : 64;
	struct pending *p = realloc(g->p, cap * sizeof *p);
	if (!p)
		return -ENOMEM;
	g->p = p;
	g->cap = cap;
	return 0;
}

/* Answers w and every duplicate waiting on e with the reply in e. */
static void answer(struct work *w, struct centry *e, int32_t status, uint64_t epoch,
		   uint32_t index, const char *msg)
{
	if (e) {
		centry_finish(e, status, epoch, index, msg);
		struct work *d = e->waiters;
		e->waiters = NULL;
		while (d) {
			struct work *next = d->next;
			send_reply(d, cached_reply(&d->h, e));
			d = next;
		}
	}
	if (status == 0)
		send_reply(w, reply_msg(&w->h, 0, epoch, NULL, 0));
	else
		send_reply(w, error_msg(&w->h, status, epoch, index, msg));
}

/* Applies one write request (a single op or a batch) atomically. */
static int apply_request(struct coord_server *s, struct work *w, uint32_t crc, uint32_t *index,
			 struct sutra_detail *why)
{
	const unsigned char *body = (const unsigned char *)nng_msg_body(w->msg) + PROTO_REQ_HEADER;
	size_t len = w->h.body_len;
	struct proto_op_body op;
	int rc;

	*index = UINT32_MAX;
	coord_store_request_begin(s->store);
	if (w->h.op == PROTO_OP_BATCH) {
		struct proto_batch_iter it;
		rc = proto_batch_begin(&it, body, len, &s->lim, why);
		while (rc == 0) {
			uint32_t at = it.index;
			rc = proto_batch_next(&it, &s->lim, &op, why);
			if (rc == 0)
				break; /* the end, checked */
			if (rc < 0) {
				/* An entry that does not decode names itself; a
				 * fault of the batch as a whole (trailing bytes)
				 * names no entry. */
				if (at < it.count)
					*index = at;
				break;
			}
			rc = coord_store_apply(s->store, &op, why);
			if (rc)
				*index = at;
		}
	} else {
		rc = proto_op_decode(w->h.op, body, len, &s->lim, &op, why);
		if (rc == 0)
			rc = coord_store_apply(s->store, &op, why);
	}
	/* The marker makes the request recognisable after a restart. */
	if (rc == 0 && w->h.client_id != 0 &&
	    (rc = coord_store_mark_request(s->store, w->h.client_id, w->h.seq, crc)))
		util_detail_set(why, SUTRA_DETAIL_NO_OFFSET, "cannot record the request: %s", sutra_strerror(rc));
	coord_store_request_end(s->store, rc == 0);
	return rc;
}

static void handle_stats(struct coord_server *s, struct work *w)
{
	struct proto_stats st;
	unsigned char body[PROTO_STATS_SIZE];
	coord_store_stats(s->store, &st);
	st.requests = s->requests;
	st.rejected = s->rejected;
	st.duplicates = s->duplicates;
	st.relistens = atomic_load(&s->relistens);
	proto_stats_encode(&st, body);
	send_reply(w, reply_msg(&w->h, 0, st.epoch, body, sizeof body));
}

/* Takes one queued write request into the group, or answers it now (an
 * error, a duplicate, a stale sequence). */
static void take_write(struct coord_server *s, struct group *g, struct work *w)
{
	struct sutra_detail why;
	uint32_t index;
	struct centry *e = NULL;
	uint64_t epoch = coord_store_epoch(s->store);
	uint32_t crc = 0;

	if (group_reserve(g) != 0) {
		send_reply(w, error_msg(&w->h, -ENOMEM, epoch, UINT32_MAX, "out of memory"));
		return;
	}
	if (w->h.client_id != 0) {
		struct client *c = client_get(s, w->h.client_id);
		if (!c) {
			send_reply(w, error_msg(&w->h, -ENOMEM, epoch, UINT32_MAX, "out of memory"));
			return;
		}
		struct centry *slot = &c->ring[w->h.seq % RING];
		crc = util_crc32c(0, nng_msg_body(w->msg), nng_msg_len(w->msg));
		if (slot->state != C_EMPTY && slot->seq == w->h.seq && slot->crc != crc) {
			/* Not a resend: a client that reuses a sequence number
			 * for another request must not get the old reply. */
			util_detail_set(&why, SUTRA_DETAIL_NO_OFFSET,
				 "sequence %llu of client %016llx was already used for another "
				 "request",
				 (unsigned long long)w->h.seq, (unsigned long long)w->h.client_id);
			s->rejected++;
			send_reply(w, error_msg(&w->h, SUTRA_EPROTO, epoch, UINT32_MAX, why.what));
			return;
		}
		if (slot->state != C_EMPTY && slot->seq == w->h.seq) {
			s->duplicates++;
			if (slot->state == C_DONE) {
				send_reply(w, cached_reply(&w->h, slot));
			} else {
				w->next = slot->waiters;
				slot->waiters = w;
			}
			return;
		}
		if (c->max_seq >= RING && w->h.seq <= c->max_seq - RING) {
			util_detail_set(&why, SUTRA_DETAIL_NO_OFFSET,
				 "sequence %llu is older than the last %u requests of client %016llx",
				 (unsigned long long)w->h.seq, RING,
				 (unsigned long long)w->h.client_id);
			s->rejected++;
			send_reply(w, error_msg(&w->h, SUTRA_EPROTO, epoch, UINT32_MAX, why.what));
			return;
		}
		if (slot->state == C_PENDING) {
			/* Sixteen requests of one client in flight at once: the
			 * oldest one's slot is still needed. */
			s->rejected++;
			send_reply(w, error_msg(&w->h, SUTRA_EUNAVAIL, epoch, UINT32_MAX,
						"too many requests of this client in flight"));
			return;
		}
		free(slot->msg);
		memset(slot, 0, sizeof *slot);
		slot->seq = w->h.seq;
		slot->state = C_PENDING;
		slot->op = w->h.op;
		slot->crc = crc;
		if (w->h.seq > c->max_seq)
			c->max_seq = w->h.seq;
		e = slot;
	}
	int rc = apply_request(s, w, crc, &index, &why);
	if (rc) {
		s->rejected++;
		answer(w, e, rc, epoch, index, why.what);
		return;
	}
	g->p[g->n++] = (struct pending){ .w = w, .e = e };
}

static void publish(struct coord_server *s, uint16_t kind, const unsigned char *changed,
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
		return; /* notices are hints */
	unsigned char *b = nng_msg_body(m);
	proto_notice_header_encode(&n, b);
	if (changed_len)
		memcpy(b + PROTO_NOTICE_HEADER, changed, changed_len);
	if (nng_sendmsg(s->pub, m, NNG_FLAG_NONBLOCK) != 0)
		nng_msg_free(m);
}

static void note_epoch(struct coord_server *s)
{
	atomic_store(&s->epoch_seen, coord_store_epoch(s->store));
	atomic_store(&s->durable_seen, coord_store_durable_epoch(s->store));
	atomic_store(&s->end_seen, coord_store_published_end(s->store));
}

/* Commits the group, syncs when asked or due, publishes, replies. */
static void finish_group(struct coord_server *s, struct group *g, uint64_t *last_sync_ms)
{
	uint64_t epoch = 0;
	int committed = 0;
	int rc = coord_store_commit(s->store, 0, &epoch, &committed);
	int want_sync = g->syncs != NULL ||
			(s->cfg.durability == COORD_DURABILITY_RELAXED &&
			 mono_ms() - *last_sync_ms >= s->cfg.sync_interval_ms);
	if (rc == 0 && want_sync && coord_store_has_unsynced(s->store)) {
		rc = coord_store_sync(s->store);
		*last_sync_ms = mono_ms();
	}
	if (rc) {
		atomic_store(&s->fatal, rc);
		coord_logf(&s->cfg.log, COORD_LOG_ERR, "fatal: %s; stopping", strerror(-rc));
	} else {
		note_epoch(s);
	}
	if (rc == 0 && committed) {
		size_t len;
		unsigned char *bm = coord_store_touched(s->store, &len);
		publish(s, PROTO_NOTICE_EPOCH, bm, len);
		free(bm);
	}
	for (size_t i = 0; i < g->n; i++) {
		struct pending *p = &g->p[i];
		if (rc == 0) {
			s->requests++;
			answer(p->w, p->e, 0, epoch, UINT32_MAX, NULL);
		} else {
			answer(p->w, p->e, rc, epoch, UINT32_MAX,
			       "the commit failed with an I/O error; the coordinator stops");
		}
	}
	g->n = 0;
	while (g->syncs) {
		struct work *w = g->syncs;
		g->syncs = w->next;
		if (rc == 0)
			send_reply(w, reply_msg(&w->h, 0, coord_store_durable_epoch(s->store), NULL, 0));
		else
			send_reply(w, error_msg(&w->h, rc, coord_store_epoch(s->store), UINT32_MAX,
						"sync failed with an I/O error; the coordinator stops"));
	}
}

/* The builder thread finished a segment: wake the writer. */
static void segment_done(void *arg)
{
	struct coord_server *s = arg;
	pthread_mutex_lock(&s->mu);
	s->segment_ready = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Segment work between groups; an installed segment is published by an
 * empty epoch, announced like any other. */
static void maintain(struct coord_server *s)
{
	uint64_t epoch;
	int committed;
	int rc = coord_store_maintain(s->store, &committed, &epoch);
	if (rc) {
		atomic_store(&s->fatal, rc);
		coord_logf(&s->cfg.log, COORD_LOG_ERR, "fatal: %s; stopping", strerror(-rc));
	} else if (committed) {
		note_epoch(s);
		publish(s, PROTO_NOTICE_EPOCH, NULL, 0);
	}
}

static void *writer_main(void *arg)
{
	struct coord_server *s = arg;
	struct group g = { 0 };
	uint64_t last_sync_ms = mono_ms();

	for (;;) {
		pthread_mutex_lock(&s->mu);
		while (!s->qhead && !s->stopping && !atomic_load(&s->fatal) && !s->segment_ready) {
			if (s->cfg.durability == COORD_DURABILITY_RELAXED &&
			    coord_store_has_unsynced(s->store)) {
				uint64_t due = last_sync_ms + s->cfg.sync_interval_ms;
				uint64_t now = mono_ms();
				if (now >= due)
					break;
				struct timespec ts;
				deadline_us(&ts, (due - now) * 1000u);
				pthread_cond_timedwait(&s->cv, &s->mu, &ts);
			} else if (coord_store_maintenance_due_ms(s->store) >= 0) {
				/* Readers let go without telling; an idle tail waits
				 * to be flushed: look again when that is due. */
				int due = coord_store_maintenance_due_ms(s->store);
				struct timespec ts;
				deadline_us(&ts, (uint64_t)due * 1000u + 1000u);
				if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
					break;
			} else {
				pthread_cond_wait(&s->cv, &s->mu);
			}
		}
		if (!s->qhead && (s->stopping || atomic_load(&s->fatal))) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		if (s->qhead && s->cfg.commit_window_us && !s->stopping) {
			/* Give other requests up to the window to join. */
			struct timespec ts;
			deadline_us(&ts, s->cfg.commit_window_us);
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		}
		struct work *list = s->qhead;
		s->qhead = s->qtail = NULL;
		s->segment_ready = 0;
		pthread_mutex_unlock(&s->mu);

		int fatal = atomic_load(&s->fatal);
		while (list) {
			struct work *w = list;
			list = w->next;
			w->next = NULL;
			if (fatal) {
				send_reply(w, error_msg(&w->h, SUTRA_EUNAVAIL,
							coord_store_epoch(s->store), UINT32_MAX,
							"the coordinator stopped after an I/O error"));
				continue;
			}
			switch (w->h.op) {
			case PROTO_OP_STATS:
				handle_stats(s, w);
				break;
			case PROTO_OP_SYNC:
				w->next = g.syncs;
				g.syncs = w;
				break;
			default:
				take_write(s, &g, w);
				break;
			}
			/* A big group is committed before taking more. */
			if (coord_store_pending_bytes(s->store) >= GROUP_BUDGET) {
				finish_group(s, &g, &last_sync_ms);
				fatal = atomic_load(&s->fatal);
			}
		}
		if (!fatal)
			finish_group(s, &g, &last_sync_ms);
		if (!atomic_load(&s->fatal))
			maintain(s);
	}
	/* Make relaxed-mode epochs durable before saying we are done. */
	if (!atomic_load(&s->fatal) && coord_store_has_unsynced(s->store)) {
		int rc = coord_store_sync(s->store);
		if (rc)
			atomic_store(&s->fatal, rc);
		else
			note_epoch(s);
	}
	free(g.p);
	pthread_mutex_lock(&s->mu);
	s->writer_done = 1;
	pthread_cond_broadcast(&s->done_cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* ---- Self checks -------------------------------------------------------- */

static int relisten(struct coord_server *s, nng_socket sock, nng_listener *l, const char *url)
{
	pthread_mutex_lock(&s->listen_mu);
	nng_listener_close(*l);
	int rv = nng_listen(sock, url, l, 0);
	pthread_mutex_unlock(&s->listen_mu);
	atomic_fetch_add(&s->relistens, 1);
	coord_logf(&s->cfg.log, rv ? COORD_LOG_ERR : COORD_LOG_WARN,
		   "self check: %s did not answer; listener re-opened%s%s", url, rv ? ": " : "",
		   rv ? nng_strerror(rv) : "");
	return rv;
}

static int self_ping(nng_socket req)
{
	unsigned char buf[PROTO_REQ_HEADER];
	struct proto_req_header h = { .version = PROTO_VERSION, .op = PROTO_OP_PING };
	proto_req_header_encode(&h, buf);
	int rv = nng_send(req, buf, sizeof buf, 0);
	if (rv)
		return rv;
	void *reply;
	size_t len;
	rv = nng_recv(req, &reply, &len, NNG_FLAG_ALLOC);
	if (rv)
		return rv;
	struct proto_rep_header rh;
	rv = proto_rep_header_decode(reply, len, &rh) == 0 && rh.status == 0 ? 0 : NNG_EPROTO;
	nng_free(reply, len);
	return rv;
}

/* Waits up to ms for a stop; returns 1 when stopping. */
static int check_sleep(struct coord_server *s, uint32_t ms)
{
	struct timespec ts;
	deadline_in(&ts, ms);
	pthread_mutex_lock(&s->check_mu);
	while (!s->check_stop) {
		if (pthread_cond_timedwait(&s->check_cv, &s->check_mu, &ts) == ETIMEDOUT)
			break;
	}
	int stop = s->check_stop;
	pthread_mutex_unlock(&s->check_mu);
	return stop;
}

/* A round trip to our own REP listener over a NEW connection: the nng
 * 1.5.2 bug leaves established connections working while new ones are
 * never served, so only a fresh connection tells. */
static int check_rep(struct coord_server *s, uint32_t iv)
{
	nng_socket req;
	int rv = nng_req0_open(&req);
	if (rv)
		return 0; /* cannot test: do not blame the listener */
	nng_socket_set_ms(req, NNG_OPT_SENDTIMEO, (nng_duration)iv);
	nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, (nng_duration)iv);
	nng_socket_set_ms(req, NNG_OPT_RECONNMINT, 10);
	rv = nng_dial(req, s->listen_url, NULL, NNG_FLAG_NONBLOCK);
	if (rv == 0)
		rv = self_ping(req);
	nng_close(req);
	return rv;
}

/* The same for the PUB listener: a new subscriber must hear a heartbeat
 * (sent every 50 ms until heard, since one sent before the new pipe is
 * attached is lost) within the interval. */
static int check_pub(struct coord_server *s, uint32_t iv)
{
	nng_socket sub;
	int heard = 0;
	if (nng_sub0_open(&sub) != 0)
		return 0;
	nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "", 0);
	nng_socket_set_ms(sub, NNG_OPT_RECONNMINT, 10);
	nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 50);
	if (nng_dial(sub, s->events_url, NULL, NNG_FLAG_NONBLOCK) == 0) {
		uint64_t until = mono_ms() + iv;
		while (!heard && mono_ms() < until && !check_sleep(s, 0)) {
			void *m;
			size_t len;
			publish(s, PROTO_NOTICE_HEARTBEAT, NULL, 0);
			if (nng_recv(sub, &m, &len, NNG_FLAG_ALLOC) == 0) {
				heard = 1;
				nng_free(m, len);
			}
		}
	}
	nng_close(sub);
	return heard ? 0 : NNG_ETIMEDOUT;
}

static void *checker_main(void *arg)
{
	struct coord_server *s = arg;
	uint32_t iv = s->cfg.check_interval_ms;
	uint32_t rep_fail = 0, pub_fail = 0;

	/* Two failed checks in a row, so that one slow moment (a long
	 * commit keeping every context busy) does not restart a listener. */
	while (!check_sleep(s, iv)) {
		rep_fail = check_rep(s, iv) ? rep_fail + 1 : 0;
		if (rep_fail >= 2 && !check_sleep(s, 0)) {
			relisten(s, s->rep, &s->rep_l, s->listen_url);
			rep_fail = 0;
		}
		pub_fail = check_pub(s, iv) ? pub_fail + 1 : 0;
		if (pub_fail >= 2 && !check_sleep(s, 0)) {
			relisten(s, s->pub, &s->pub_l, s->events_url);
			pub_fail = 0;
		}
	}
	return NULL;
}

/* ---- Start and stop ----------------------------------------------------- */

int coord_server_start(const struct coord_config *c, struct coord_server **out, struct sutra_detail *why)
{
	struct coord_server *s = calloc(1, sizeof *s);
	int rv, rc;

	if (!s)
		return -ENOMEM;
	s->cfg = *c;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->listen_mu, NULL);
	pthread_mutex_init(&s->check_mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_cond_init(&s->done_cv, NULL);
	pthread_cond_init(&s->check_cv, NULL);
	util_idmap_init(&s->client_ix);
	s->rep = (nng_socket)NNG_SOCKET_INITIALIZER;
	s->pub = (nng_socket)NNG_SOCKET_INITIALIZER;

	if (!c->data_path) {
		rc = -EINVAL;
		util_detail_set(why, SUTRA_DETAIL_NO_OFFSET, "no data path");
		goto fail;
	}
	if (c->listen_url) {
		snprintf(s->listen_url, sizeof s->listen_url, "%s", c->listen_url);
	} else if ((rc = coord_default_url(c->data_path, "write", s->listen_url,
					   sizeof s->listen_url))) {
		util_detail_set(why, SUTRA_DETAIL_NO_OFFSET, "no usable default write URL for %s", c->data_path);
		goto fail;
	}
	if (c->events_url) {
		snprintf(s->events_url, sizeof s->events_url, "%s", c->events_url);
	} else if ((rc = coord_default_url(c->data_path, "events", s->events_url,
					   sizeof s->events_url))) {
		util_detail_set(why, SUTRA_DETAIL_NO_OFFSET, "no usable default events URL for %s", c->data_path);
		goto fail;
	}
	s->cfg.listen_url = s->listen_url;
	s->cfg.events_url = s->events_url;
	if (!(s->clients = calloc(MAX_CLIENTS, sizeof *s->clients))) {
		rc = -ENOMEM;
		goto fail;
	}

	struct coord_store_options so = { .path = c->data_path,
					  .vector_dim = c->vector_dim,
					  .vector_dim_explicit = c->vector_dim_explicit,
					  .durability = c->durability,
					  .io = c->io,
					  .fault_spec = c->fault_spec,
					  .segment_bytes = (uint64_t)c->segment_kib << 10,
					  .log_retention = (uint64_t)c->log_retention_mib << 20,
					  .log = c->log };
	if ((rc = coord_store_open(&so, &s->store, why)))
		goto fail;
	coord_store_on_segment_done(s->store, segment_done, s);
	note_epoch(s);
	coord_store_foreach_marker(s->store, seed_marker, s);
	s->lim = (struct proto_limits){ .max_request = c->max_request,
					.max_content = c->max_content,
					.max_metadata = c->max_metadata,
					.max_batch = c->max_batch,
					.vector_dim = coord_store_vector_dim(s->store) };
	/* Copies for nng's threads, which may run after the store closed. */
	memcpy(s->uuid, coord_store_uuid(s->store), 16);
	s->vector_dim = coord_store_vector_dim(s->store);

	if ((rv = nng_rep0_open(&s->rep)) || (rv = nng_pub0_open(&s->pub))) {
		rc = wire_nng_error(rv);
		util_detail_set(why, SUTRA_DETAIL_NO_OFFSET, "cannot open sockets: %s", nng_strerror(rv));
		goto fail;
	}
	/* Messages somewhat over the limit are received and answered with
	 * SUTRA_ETOOBIG; far larger ones are dropped by nng with the
	 * connection, before they cost memory. */
	size_t maxsz = (size_t)c->max_request * 2;
	if (maxsz < (size_t)c->max_request + (1u << 20))
		maxsz = (size_t)c->max_request + (1u << 20);
	nng_socket_set_size(s->rep, NNG_OPT_RECVMAXSZ, maxsz);
	if ((rv = nng_listen(s->rep, s->listen_url, &s->rep_l, 0))) {
		rc = wire_nng_error(rv);
		util_detail_set(why, SUTRA_DETAIL_NO_OFFSET, "cannot listen on %s: %s", s->listen_url, nng_strerror(rv));
		goto fail;
	}
	if ((rv = nng_listen(s->pub, s->events_url, &s->pub_l, 0))) {
		rc = wire_nng_error(rv);
		util_detail_set(why, SUTRA_DETAIL_NO_OFFSET, "cannot listen on %s: %s", s->events_url, nng_strerror(rv));
		goto fail;
	}
	s->nworks = c->contexts ? c->contexts : 64;
	if (s->nworks > MAX_CLIENTS / 2)
		s->nworks = MAX_CLIENTS / 2; /* see client_get() */
	if (!(s->works = calloc(s->nworks, sizeof *s->works))) {
		rc = -ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < s->nworks; i++) {
		struct work *w = calloc(1, sizeof *w);
		if (!w) {
			rc = -ENOMEM;
			goto fail;
		}
		s->works[i] = w;
		w->s = s;
		if ((rv = nng_aio_alloc(&w->aio, work_cb, w)) || (rv = nng_ctx_open(&w->ctx, s->rep))) {
			rc = wire_nng_error(rv);
			util_detail_set(why, SUTRA_DETAIL_NO_OFFSET, "cannot set up contexts: %s", nng_strerror(rv));
			goto fail;
		}
	}
	if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
		rc = -EAGAIN;
		goto fail;
	}
	s->writer_started = 1;
	for (uint32_t i = 0; i < s->nworks; i++) {
		s->works[i]->state = W_RECV;
		nng_ctx_recv(s->works[i]->ctx, s->works[i]->aio);
	}
	if (c->check_interval_ms) {
		if (pthread_create(&s->checker, NULL, checker_main, s) == 0)
			s->checker_started = 1;
	}
	coord_logf(&s->cfg.log, COORD_LOG_INFO, "serving writes on %s, notices on %s (%s, %s)",
		   s->listen_url, s->events_url,
		   c->durability == COORD_DURABILITY_SYNC ? "sync" : "relaxed",
		   coord_store_io_name(s->store));
	*out = s;
	return 0;

fail:
	coord_server_destroy(s);
	return rc;
}

void coord_server_stop(struct coord_server *s)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

int coord_server_wait(struct coord_server *s, int timeout_ms)
{
	struct timespec ts;
	int done;

	if (timeout_ms >= 0)
		deadline_in(&ts, (uint32_t)timeout_ms);
	pthread_mutex_lock(&s->mu);
	while (!s->writer_done && !atomic_load(&s->fatal)) {
		if (timeout_ms < 0)
			pthread_cond_wait(&s->done_cv, &s->mu);
		else if (pthread_cond_timedwait(&s->done_cv, &s->mu, &ts) == ETIMEDOUT)
			break;
	}
	done = s->writer_done || atomic_load(&s->fatal);
	pthread_mutex_unlock(&s->mu);
	return done;
}

int coord_server_failed(const struct coord_server *s)
{
	return atomic_load(&((struct coord_server *)s)->fatal);
}

/* Closing nng sockets while client pipes are still going away can block
 * for ever in nng 1.5.2. Everything that matters is done before the
 * sockets are closed (the writer has stopped, the store is synced and
 * unlocked), so what does not close in time is abandoned: the process is
 * about to exit anyway (wire/nngclose.h). */
#define CLOSE_DEADLINE_MS 3000u

int coord_server_destroy(struct coord_server *s)
{
	struct timespec ts;
	int abandoned = 0;

	if (!s)
		return 0;
	if (s->checker_started) {
		pthread_mutex_lock(&s->check_mu);
		s->check_stop = 1;
		pthread_cond_broadcast(&s->check_cv);
		pthread_mutex_unlock(&s->check_mu);
	}
	if (s->writer_started) {
		coord_server_stop(s);
		pthread_join(s->writer, NULL);
		/* Let the last replies leave before the socket closes. */
		uint64_t until = mono_ms() + 2000;
		while (atomic_load(&s->sending) > 0 && mono_ms() < until) {
			struct timespec nap = { 0, 1000000 };
			nanosleep(&nap, NULL);
		}
	}
	/* The data first: synced, lock released, whatever nng does next. */
	int rc = atomic_load(&s->fatal);
	int crc = coord_store_close(s->store);
	s->store = NULL;
	if (!rc)
		rc = crc;

	nng_socket socks[2] = { s->rep, s->pub };
	if (!wire_nng_close_bounded(socks, 2, CLOSE_DEADLINE_MS))
		abandoned = 1;
	if (s->checker_started && !abandoned) {
		deadline_in(&ts, CLOSE_DEADLINE_MS);
		if (pthread_timedjoin_np(s->checker, NULL, &ts) != 0)
			abandoned = 1;
	}
	if (abandoned) {
		/* Threads may still touch s: leave it allocated. */
		coord_logf(&s->cfg.log, COORD_LOG_WARN,
			   "nng did not close its sockets within %u ms (nng 1.5.2 close "
			   "deadlock); the store is synced and closed, leaving them",
			   CLOSE_DEADLINE_MS);
		return rc;
	}
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
	for (uint32_t i = 0; s->clients && i < s->nclients; i++)
		for (unsigned r = 0; r < RING; r++)
			free(s->clients[i].ring[r].msg);
	free(s->clients);
	util_idmap_finish(&s->client_ix);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->listen_mu);
	pthread_mutex_destroy(&s->check_mu);
	pthread_cond_destroy(&s->cv);
	pthread_cond_destroy(&s->done_cv);
	pthread_cond_destroy(&s->check_cv);
	free(s);
	return rc;
}

const char *coord_server_listen_url(const struct coord_server *s)
{
	return s->listen_url;
}

const char *coord_server_events_url(const struct coord_server *s)
{
	return s->events_url;
}
