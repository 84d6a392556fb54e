/* SPDX-License-Identifier: MIT */
/* The server's shared state, for server.c (start, stop), sockets.c, writer.c and selfcheck.c. */
#ifndef COORDINATOR_SERVER_INTERNAL_H
#define COORDINATOR_SERVER_INTERNAL_H

/*
 * One struct coord_server is one running coordinator. Its threads, and
 * what each may touch:
 *
 *  - nng's threads run work_cb() (sockets.c) for a fixed pool of REP
 *    contexts, one struct work each. A callback decodes the request
 *    header; PING is answered on the spot, a malformed header gets its
 *    error reply on the spot, everything else is queued under mu for the
 *    writer. Callbacks never touch the store: they read the atomics
 *    epoch_seen, durable_seen, end_seen and the copies uuid, vector_dim
 *    and lim, which outlive the store.
 *  - The writer thread (writer.c) owns the store, the resend cache
 *    (dedup) and the counters requests, rejected, duplicates. It takes the
 *    whole queue, applies each request atomically, commits the group as
 *    one epoch, syncs (sync mode: in the same submission), publishes the
 *    notice, then replies to every request of the group. Between groups it
 *    does the index segment work (maintain) and answers the stats
 *    requests queued by coord_server_stats().
 *  - The check thread (selfcheck.c) makes a REQ round trip to the
 *    server's own URL and listens to its own notices every check interval;
 *    when either goes silent twice in a row it closes and re-opens that
 *    listener under listen_mu (nng 1.5.2's listener bug, DESIGN.md "Known
 *    traps"). Its heartbeat notices carry the epoch the writer last noted.
 *  - The index builder thread (store) calls coord_segment_done(), which
 *    only sets segment_ready under mu and wakes the writer.
 *
 * A struct work is owned by whoever holds it: nng while receiving or
 * sending, the queue (under mu) once queued, then the writer until it
 * sends the reply. The writer hands each request back to nng exactly once,
 * through coord_send_reply(); a resend parked on a pending cache entry is
 * the writer's until its original is answered.
 *
 * Stopping: coord_server_stop() sets stopping under mu; new requests are
 * answered SUTRA_EUNAVAIL, the writer finishes what was queued (commit,
 * sync, reply) and sets writer_done. A fatal I/O error (the atomic fatal)
 * stops the writer the same way, with the queued requests answered by the
 * error.
 */

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "coordinator/dedup.h"
#include "coordinator/server.h"
#include "wire/proto.h"

/* How long destroy waits for nng to close the sockets and for the check
 * thread to end before abandoning them (coord_sockets_close()). */
#define COORD_CLOSE_DEADLINE_MS 3000u

enum wstate { W_RECV, W_QUEUED, W_SEND };

/* One REP context and the request it holds. */
struct work {
	struct coord_server *s;
	nng_aio *aio;
	nng_ctx ctx;
	nng_msg *msg; /* the request while queued */
	struct proto_req_header h;
	enum wstate state;
	struct work *next; /* queue, group or waiter list */
};

/* A stats request of coord_server_stats(), answered by the writer. */
struct stats_req {
	struct proto_stats st;
	int done;
	struct stats_req *next;
};

struct coord_server {
	struct coord_config cfg; /* its strings: only the two URLs below */
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
	pthread_cond_t cv;         /* wakes the writer */
	struct work *qhead, *qtail;
	struct stats_req *stats;   /* under mu: waiting for the writer */
	int stopping;
	int writer_done;
	int segment_ready;         /* under mu: the builder finished */
	pthread_cond_t done_cv;    /* writer_done, and answered stats */
	atomic_int fatal;
	atomic_int sending;        /* replies nng has not sent yet */

	pthread_t writer, checker;
	int writer_started, checker_started;
	pthread_mutex_t check_mu;
	pthread_cond_t check_cv;
	int check_stop;

	/* writer-thread state */
	struct coord_dedup dedup;
	uint64_t requests, rejected, duplicates;

	atomic_uint relistens;
	atomic_uint_fast64_t epoch_seen; /* for nng's threads and heartbeats */
	atomic_uint_fast64_t durable_seen;
	atomic_uint_fast64_t end_seen;
};

/* ---- Time ---------------------------------------------------------------- */

static inline uint64_t coord_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The CLOCK_REALTIME time us microseconds from now, for condition waits. */
static inline void coord_deadline_us(struct timespec *ts, uint64_t us)
{
	clock_gettime(CLOCK_REALTIME, ts);
	uint64_t ns = (uint64_t)ts->tv_nsec + us * 1000u;
	ts->tv_sec += (time_t)(ns / 1000000000u);
	ts->tv_nsec = (long)(ns % 1000000000u);
}

/* ---- config.c: the public configuration -------------------------------- */

struct sutra_coordinator_config;

/* The coord_config that a public configuration describes, its data path
 * resolved (a directory means DIR/storage.dat) into *data, which the
 * caller frees once coord_server_start() returned; the other strings are
 * borrowed from cfg. Returns 0, -EINVAL (no data path) or -ENOMEM. */
int coord_config_resolve(const struct sutra_coordinator_config *cfg, struct coord_config *c,
			 char **data, struct sutra_detail *why);

/* ---- sockets.c: REP contexts, replies, PUB notices ------------------------ */

/* A reply: header, then body bytes (may be NULL). NULL when out of memory. */
nng_msg *coord_reply_msg(const struct proto_req_header *h, int32_t status, uint64_t epoch,
			 const void *body, size_t body_len);

/* An error reply: status with the failing index and a sentence (may be NULL). */
nng_msg *coord_error_msg(const struct proto_req_header *h, int32_t status, uint64_t epoch,
			 uint32_t index, const char *text);

/* Hands w back to nng with reply m; when m is NULL (building it failed)
 * sends nothing, so the client times out and resends. */
void coord_send_reply(struct work *w, nng_msg *m);

/* Publishes a notice of kind with the last noted epoch; a hint, so a
 * notice that cannot be built or sent is dropped. */
void coord_publish(struct coord_server *s, uint16_t kind, const unsigned char *changed,
		   size_t changed_len);

/* Opens both sockets, binds them to s->listen_url and s->events_url and
 * sets up the REP contexts (not yet receiving). Returns 0, -ENOMEM or an
 * nng error mapped by wire_nng_error(), with a sentence in why. */
int coord_sockets_open(struct coord_server *s, struct sutra_detail *why);

/* Starts every context receiving. */
void coord_sockets_serve(struct coord_server *s);

/* Closes both sockets within a deadline; returns 0, or -ETIMEDOUT when
 * nng did not close in time and its threads may still touch s. */
int coord_sockets_close(struct coord_server *s);

/* Frees the contexts (after a close that did not time out). */
void coord_sockets_free(struct coord_server *s);

/* ---- writer.c: the writer thread ----------------------------------------- */

void *coord_writer_main(void *arg);

/* Copies the store's epoch, durable epoch and published end into the
 * atomics that nng's threads and the check thread read. Writer only (or
 * before it starts). */
void coord_note_epoch(struct coord_server *s);

/* The store's callback when the builder thread finished a segment. */
void coord_segment_done(void *arg);

/* ---- selfcheck.c: the listener self check -------------------------------- */

void *coord_checker_main(void *arg);

#endif /* COORDINATOR_SERVER_INTERNAL_H */
