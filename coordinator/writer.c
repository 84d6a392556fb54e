/* SPDX-License-Identifier: MIT */
/* The writer thread: applies queued requests, commits them as one epoch (group commit), syncs, publishes, replies. */
#include "coordinator/server_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sutra/errors.h"
#include "util/crc32c.h"
#include "util/detail.h"
#include "util/grow.h"

/* Bytes of records after which a group is committed before taking more. */
#define GROUP_BUDGET (64u << 20)

/* A write request of the group being built. */
struct pending {
	struct work *w;
	struct coord_dedup_entry *e; /* NULL when the client has no resend cache (id 0) */
};

struct group {
	struct pending *p;
	size_t n, cap;
	struct work *syncs; /* SYNC requests to answer after the sync */
};

static nng_msg *cached_reply(const struct proto_req_header *h, const struct coord_dedup_entry *e)
{
	if (e->status == 0)
		return coord_reply_msg(h, 0, e->epoch, NULL, 0);
	return coord_error_msg(h, e->status, e->epoch, e->index, e->msg);
}

/* Answers w and every resend waiting on e with the reply, remembered in e. */
static void answer(struct work *w, struct coord_dedup_entry *e, int32_t status, uint64_t epoch,
		   uint32_t index, const char *msg)
{
	if (e) {
		coord_dedup_done(e, status, epoch, index, msg);
		struct work *d = e->waiters;
		e->waiters = NULL;
		while (d) {
			struct work *next = d->next;
			coord_send_reply(d, cached_reply(&d->h, e));
			d = next;
		}
	}
	if (status == 0)
		coord_send_reply(w, coord_reply_msg(&w->h, 0, epoch, NULL, 0));
	else
		coord_send_reply(w, coord_error_msg(&w->h, status, epoch, index, msg));
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
		util_detail_set(why, SUTRA_DETAIL_NO_OFFSET, "cannot record the request: %s",
				sutra_strerror(rc));
	coord_store_request_end(s->store, rc == 0);
	return rc;
}

/* The store's figures and the writer's counters. Writer only. */
static void fill_stats(struct coord_server *s, struct proto_stats *st)
{
	coord_store_stats(s->store, st);
	st->requests = s->requests;
	st->rejected = s->rejected;
	st->duplicates = s->duplicates;
	st->relistens = atomic_load(&s->relistens);
}

static void handle_stats(struct coord_server *s, struct work *w)
{
	struct proto_stats st;
	unsigned char body[PROTO_STATS_SIZE];
	fill_stats(s, &st);
	proto_stats_encode(&st, body);
	coord_send_reply(w, coord_reply_msg(&w->h, 0, st.epoch, body, sizeof body));
}

/* Answers the stats requests of coord_server_stats() taken from the list. */
static void answer_stats(struct coord_server *s, struct stats_req *list)
{
	if (!list)
		return;
	for (struct stats_req *r = list; r; r = r->next)
		fill_stats(s, &r->st);
	pthread_mutex_lock(&s->mu);
	while (list) {
		struct stats_req *next = list->next;
		list->done = 1; /* from here its caller may return and free it */
		list = next;
	}
	pthread_cond_broadcast(&s->done_cv);
	pthread_mutex_unlock(&s->mu);
}

/* Refuses w with a reason; counted as rejected. */
static void refuse(struct coord_server *s, struct work *w, int32_t status, uint64_t epoch,
		   const char *text)
{
	s->rejected++;
	coord_send_reply(w, coord_error_msg(&w->h, status, epoch, UINT32_MAX, text));
}

/* Takes one queued write request into the group, or answers it now (an
 * error, a resend, a stale sequence). */
static void take_write(struct coord_server *s, struct group *g, struct work *w)
{
	struct sutra_detail why;
	uint32_t index;
	struct coord_dedup_entry *e = NULL;
	uint64_t epoch = coord_store_epoch(s->store);
	uint32_t crc = 0;

	/* Room first: once applied, a request must be remembered until the
	 * commit. */
	if (UTIL_GROW(g->p, g->cap, g->n + 1, 64) != 0) {
		coord_send_reply(w, coord_error_msg(&w->h, -ENOMEM, epoch, UINT32_MAX, "out of memory"));
		return;
	}
	if (w->h.client_id != 0) {
		crc = util_crc32c(0, nng_msg_body(w->msg), nng_msg_len(w->msg));
		int v = coord_dedup_check(&s->dedup, w->h.client_id, w->h.seq, w->h.op, crc, &e);
		switch (v) {
		case COORD_DEDUP_NEW:
			break;
		case COORD_DEDUP_CACHED:
			s->duplicates++;
			coord_send_reply(w, cached_reply(&w->h, e));
			return;
		case COORD_DEDUP_WAIT:
			s->duplicates++;
			w->next = e->waiters;
			e->waiters = w;
			return;
		case COORD_DEDUP_REUSED:
			util_detail_set(&why, SUTRA_DETAIL_NO_OFFSET,
					"sequence %llu of client %016llx was already used for another "
					"request",
					(unsigned long long)w->h.seq, (unsigned long long)w->h.client_id);
			refuse(s, w, SUTRA_EPROTO, epoch, why.what);
			return;
		case COORD_DEDUP_STALE:
			util_detail_set(&why, SUTRA_DETAIL_NO_OFFSET,
					"sequence %llu is older than the last %u requests of client %016llx",
					(unsigned long long)w->h.seq, COORD_DEDUP_RING,
					(unsigned long long)w->h.client_id);
			refuse(s, w, SUTRA_EPROTO, epoch, why.what);
			return;
		case COORD_DEDUP_BUSY:
			refuse(s, w, SUTRA_EUNAVAIL, epoch, "too many requests of this client in flight");
			return;
		default:
			coord_send_reply(w, coord_error_msg(&w->h, -ENOMEM, epoch, UINT32_MAX,
							    "out of memory"));
			return;
		}
	}
	int rc = apply_request(s, w, crc, &index, &why);
	if (rc) {
		s->rejected++;
		answer(w, e, rc, epoch, index, why.what);
		return;
	}
	g->p[g->n++] = (struct pending){ .w = w, .e = e };
}

void coord_note_epoch(struct coord_server *s)
{
	atomic_store(&s->epoch_seen, coord_store_epoch(s->store));
	atomic_store(&s->durable_seen, coord_store_durable_epoch(s->store));
	atomic_store(&s->end_seen, coord_store_published_end(s->store));
}

static void set_fatal(struct coord_server *s, int rc)
{
	atomic_store(&s->fatal, rc);
	coord_logf(&s->cfg.log, COORD_LOG_ERR, "fatal: %s; stopping", strerror(-rc));
}

/* Commits the group, syncs when asked or due, publishes, replies. */
static void finish_group(struct coord_server *s, struct group *g, uint64_t *last_sync_ms)
{
	uint64_t epoch = 0;
	int committed = 0;
	int rc = coord_store_commit(s->store, 0, &epoch, &committed);
	int want_sync = g->syncs != NULL ||
			(s->cfg.durability == COORD_DURABILITY_RELAXED &&
			 coord_mono_ms() - *last_sync_ms >= s->cfg.sync_interval_ms);
	if (rc == 0 && want_sync && coord_store_has_unsynced(s->store)) {
		rc = coord_store_sync(s->store);
		*last_sync_ms = coord_mono_ms();
	}
	if (rc)
		set_fatal(s, rc);
	else
		coord_note_epoch(s);
	if (rc == 0 && committed) {
		size_t len;
		unsigned char *bm = coord_store_touched(s->store, &len);
		coord_publish(s, PROTO_NOTICE_EPOCH, bm, len);
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
			coord_send_reply(w, coord_reply_msg(&w->h, 0, coord_store_durable_epoch(s->store),
							    NULL, 0));
		else
			coord_send_reply(w, coord_error_msg(&w->h, rc, coord_store_epoch(s->store),
							    UINT32_MAX,
							    "sync failed with an I/O error; the "
							    "coordinator stops"));
	}
}

void coord_segment_done(void *arg)
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
		set_fatal(s, rc);
	} else if (committed) {
		coord_note_epoch(s);
		coord_publish(s, PROTO_NOTICE_EPOCH, NULL, 0);
	}
}

/* Under mu: sleeps until there is something to do (requests, stats, a
 * finished segment, a stop) or a relaxed-mode sync or the store's own
 * maintenance falls due. */
static void wait_for_work(struct coord_server *s, uint64_t last_sync_ms)
{
	while (!s->qhead && !s->stats && !s->stopping && !atomic_load(&s->fatal) &&
	       !s->segment_ready) {
		if (s->cfg.durability == COORD_DURABILITY_RELAXED &&
		    coord_store_has_unsynced(s->store)) {
			uint64_t due = last_sync_ms + s->cfg.sync_interval_ms;
			uint64_t now = coord_mono_ms();
			if (now >= due)
				return;
			struct timespec ts;
			coord_deadline_us(&ts, (due - now) * 1000u);
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		} else if (coord_store_maintenance_due_ms(s->store) >= 0) {
			/* Readers let go without telling; an idle tail waits
			 * to be flushed: look again when that is due. */
			int due = coord_store_maintenance_due_ms(s->store);
			struct timespec ts;
			coord_deadline_us(&ts, (uint64_t)due * 1000u + 1000u);
			if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
				return;
		} else {
			pthread_cond_wait(&s->cv, &s->mu);
		}
	}
}

void *coord_writer_main(void *arg)
{
	struct coord_server *s = arg;
	struct group g = { 0 };
	uint64_t last_sync_ms = coord_mono_ms();

	for (;;) {
		pthread_mutex_lock(&s->mu);
		wait_for_work(s, last_sync_ms);
		if (!s->qhead && (s->stopping || atomic_load(&s->fatal))) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		if (s->qhead && s->cfg.commit_window_us && !s->stopping) {
			/* Give other requests up to the window to join. */
			struct timespec ts;
			coord_deadline_us(&ts, s->cfg.commit_window_us);
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		}
		struct work *list = s->qhead;
		s->qhead = s->qtail = NULL;
		struct stats_req *stats = s->stats;
		s->stats = NULL;
		s->segment_ready = 0;
		pthread_mutex_unlock(&s->mu);

		int fatal = atomic_load(&s->fatal);
		while (list) {
			struct work *w = list;
			list = w->next;
			w->next = NULL;
			if (fatal) {
				coord_send_reply(w, coord_error_msg(&w->h, SUTRA_EUNAVAIL,
								    coord_store_epoch(s->store),
								    UINT32_MAX,
								    "the coordinator stopped after an I/O "
								    "error"));
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
		answer_stats(s, stats);
	}
	/* Make relaxed-mode epochs durable before saying we are done. */
	if (!atomic_load(&s->fatal) && coord_store_has_unsynced(s->store)) {
		int rc = coord_store_sync(s->store);
		if (rc)
			atomic_store(&s->fatal, rc);
		else
			coord_note_epoch(s);
	}
	free(g.p);
	/* The last stats requests are answered under the same lock that
	 * says the writer is done: later ones read the store themselves. */
	pthread_mutex_lock(&s->mu);
	for (struct stats_req *r = s->stats; r; r = r->next) {
		fill_stats(s, &r->st);
		r->done = 1;
	}
	s->stats = NULL;
	s->writer_done = 1;
	pthread_cond_broadcast(&s->done_cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int coord_server_stats(struct coord_server *s, struct proto_stats *st)
{
	struct stats_req req = { .done = 0 };

	pthread_mutex_lock(&s->mu);
	if (s->writer_done) {
		/* The writer has ended (its last act was under mu): the
		 * store is this thread's to read until destroy closes it. */
		fill_stats(s, st);
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	req.next = s->stats;
	s->stats = &req;
	pthread_cond_signal(&s->cv);
	while (!req.done)
		pthread_cond_wait(&s->done_cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	*st = req.st;
	return 0;
}
