/* SPDX-License-Identifier: MIT */
/* The coordinator as a library: nng REQ/REP server, single writer thread, group commit, epoch notices. */
#ifndef COORDINATOR_SERVER_H
#define COORDINATOR_SERVER_H

/*
 * A coord_server serves one store: a pool of nng REP contexts takes
 * requests, one writer thread applies them and commits each group of
 * queued requests as one epoch, a check thread keeps the listeners
 * honest. coordinator/server_internal.h describes the threads and who
 * owns what; this header is what a program needs to run one. The public
 * form of the same is include/sutra/coordinator.h (libsutra-coordinator).
 *
 * coord_server_stop() stops taking requests (new ones are answered
 * SUTRA_EUNAVAIL), lets the writer finish what was queued, commit, sync and
 * reply, and then returns. A fatal I/O error stops the writer the same way,
 * with the queued requests answered by the error; coord_server_failed()
 * reports it.
 */

#include <stdint.h>

#include "coordinator/log.h"
#include "coordinator/store.h"

struct coord_config {
	const char *data_path;        /* storage.dat (required) */
	const char *listen_url;       /* REQ/REP; NULL: ipc:// next to the data */
	const char *events_url;       /* PUB; NULL: ipc:// next to the data */
	uint32_t vector_dim;          /* for a new store; 0: 768 */
	int vector_dim_explicit;
	enum coord_durability durability;
	uint32_t sync_interval_ms;    /* relaxed mode */
	uint32_t commit_window_us;    /* longest wait for more requests to join */
	enum coord_io_kind io;
	uint32_t max_request;         /* bytes of one request */
	uint32_t max_content;         /* bytes of one concept's content */
	uint32_t max_metadata;        /* bytes of one concept's metadata */
	uint32_t max_batch;           /* operations in one request */
	uint32_t contexts;            /* concurrent REP contexts */
	uint32_t check_interval_ms;   /* self round trip and heartbeat period */
	uint32_t segment_kib;         /* tail KiB that start an index segment; 0: none */
	uint32_t log_retention_mib;   /* MiB of flushed log kept; older is freed */
	const char *fault_spec;       /* I/O fault injection, tests only */
	struct coord_log log;
};

/* Fills c with the documented defaults (data_path stays NULL). */
void coord_config_defaults(struct coord_config *c);

/* The default URLs for a data path: "ipc://DIR/NAME.write" and
 * "ipc://DIR/NAME.events" (NAME the file name), or under $XDG_RUNTIME_DIR
 * or /tmp when that path would not fit a Unix socket address. Writes into
 * out (len bytes). Returns 0 or -ENAMETOOLONG. */
int coord_default_url(const char *data_path, const char *suffix, char *out, size_t len);

/* Before the coordinator binds a default URL that fell back to
 * /tmp/sutra-UID (see coord_default_url): makes that directory (0711) if
 * it is missing and refuses it (-EACCES, why says so) unless it is a real
 * directory owned by UID that nobody else may write. 0 for any other URL. */
int coord_fallback_dir_ready(const char *data_path, const char *url, struct sutra_detail *why);

struct coord_server;

/* Opens the store (creating or recovering it), binds both listeners and
 * starts the threads. c and its strings are needed only during the call.
 * Returns 0, or the store's errors (SUTRA_ELOCKED, SUTRA_ECORRUPT, ...),
 * SUTRA_EUNAVAIL (a listener could not be bound), or -errno; why holds a
 * sentence. */
int coord_server_start(const struct coord_config *c, struct coord_server **out, struct sutra_detail *why);

/* Graceful stop: see above. Safe to call more than once. */
void coord_server_stop(struct coord_server *s);

/* Blocks until the writer stopped (after coord_server_stop or a fatal
 * error) or timeout_ms passed (-1: no limit). Returns 1 if stopped. */
int coord_server_wait(struct coord_server *s, int timeout_ms);

/* The fatal error that stopped the writer, or 0. */
int coord_server_failed(const struct coord_server *s);

/* Stops (if needed), closes sockets and the store, frees. Returns the
 * fatal error if any, else the store's close result. NULL is allowed. */
int coord_server_destroy(struct coord_server *s);

/* The URLs actually bound. Borrowed until destroy. */
const char *coord_server_listen_url(const struct coord_server *s);
const char *coord_server_events_url(const struct coord_server *s);

/* The figures of a STATS reply, from any thread but the writer's (the log
 * callback's): the writer fills them between two groups; once it has
 * stopped they are read here. Not during destroy. Returns 0. */
int coord_server_stats(struct coord_server *s, struct proto_stats *st);

#endif /* COORDINATOR_SERVER_H */
