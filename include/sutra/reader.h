/* SPDX-License-Identifier: MIT */
/* The public read API: zero-copy snapshots of a Sutra store (libsutra-reader). */
#ifndef SUTRA_READER_H
#define SUTRA_READER_H

#include <stddef.h>
#include <stdint.h>

#include <roaring/roaring.h>

#include "sutra/common.h"
#include "sutra/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A reader maps storage.dat read-only and answers from it with no copy, no
 * lock shared with other processes and no network hop. The file is the
 * truth: the reader finds the newest epoch in the file itself.
 *
 * Thread-safety: a sutra_reader may be shared by threads. Snapshots may be
 * used from any thread; lookups through a snapshot never wait for anything.
 * Do not use a reader in a child after fork(); open one there.
 *
 * Reads go to the index segments the coordinator writes, in place, and to
 * a private index of the commit blocks written since the last segment
 * (the tail), built incrementally as the reader refreshes.
 */
typedef struct sutra_reader sutra_reader;

/** A stable view of one epoch: everything read through it stays valid and
 *  unchanged until it is released, while the coordinator keeps committing. */
typedef struct sutra_snapshot sutra_snapshot;

/** A concept as stored: every pointer points into the mapped file and is
 *  valid until the snapshot it came from is released. */
struct sutra_concept_view {
	uint8_t id[16];
	uint32_t ordinal;
	const char *content;     /**< UTF-8, not NUL-terminated */
	uint32_t content_len;
	const float *embedding;  /**< vector_dim floats (little-endian hosts), or NULL */
	uint32_t vector_dim;     /**< 0 without embedding */
	float strength;
	float confidence;
	uint64_t created_us;
	uint64_t updated_us;
	const void *metadata;    /**< or NULL */
	uint32_t metadata_len;
};

/** Which associations of a concept sutra_snapshot_neighbors() follows. */
enum sutra_direction {
	SUTRA_DIR_BOTH = 0, /**< both (the default: the old store was undirected) */
	SUTRA_DIR_OUT = 1,  /**< the concept is the source */
	SUTRA_DIR_IN = 2,   /**< the concept is the target */
};

/** One neighbour: the concept at the other end of an association. */
struct sutra_neighbor {
	uint8_t id[16];
	uint32_t ordinal;
	uint8_t type;      /**< the association's type */
	uint8_t outgoing;  /**< 1: the asked concept is the source */
	float confidence;
	float weight;
	uint64_t created_us;
};

/** What sutra_snapshot_stats() reports. */
struct sutra_reader_stats {
	uint64_t epoch;
	uint64_t concept_count;
	uint64_t association_count;
	uint64_t published_end;  /**< bytes of published log */
	uint64_t file_size;
	uint64_t tail_bytes;     /**< bytes of commit blocks indexed privately: the tail
				      after the last index segment */
	uint32_t segment_count;  /**< index segments the snapshot reads in place */
	uint32_t vector_dim;
};

/**
 * Opens the store at path read-only: maps it, opens the index segments the
 * current meta lists (their headers and chunk tables only; every other
 * byte is checked the first time a read touches it) and indexes the tail
 * written since the last segment. The cost depends on that tail, not on
 * the store's size. Takes a reader slot in "<path>.lock" (created if
 * missing, so the directory must be writable): snapshots pin their epoch
 * there, so that the coordinator never frees what they read.
 * @return 0, -ENOENT and other -errno (also from the lock file), -EUSERS
 *   (all 1024 reader slots taken), SUTRA_ECORRUPT (the file, its lock file
 *   or a block it reads does not check out), SUTRA_EVERSION, -ENOMEM
 */
SUTRA_API int sutra_reader_open(const char *path, sutra_reader **out);

/** Closes the reader. Every snapshot must have been released. NULL is allowed. */
SUTRA_API void sutra_reader_close(sutra_reader *r);

/**
 * Reads the newest epoch from the file and indexes what is new.
 * @param epoch out (may be NULL): the newest epoch now visible
 * @return 0, SUTRA_ECORRUPT, -ENOMEM
 */
SUTRA_API int sutra_reader_refresh(sutra_reader *r, uint64_t *epoch);

/**
 * Waits until the newest published epoch is at least epoch, then returns
 * 0. Subscribed, it wakes on the epoch's notice and still reads the file
 * every 50 ms (notices may be lost); otherwise it polls the file. With the epoch a write returned, this gives
 * read-your-writes across processes.
 * @param timeout_ms -1: no limit
 * @return 0, -ETIMEDOUT, SUTRA_ECORRUPT, -ENOMEM
 */
SUTRA_API int sutra_reader_wait_for_epoch(sutra_reader *r, uint64_t epoch, int timeout_ms);

/** A notice from the coordinator (docs/PROTOCOL.md section 9). */
struct sutra_notice {
	uint64_t epoch;          /**< the newest published epoch it announces */
	uint64_t published_end;
	uint64_t durable_epoch;
	int heartbeat;           /**< 1: a periodic heartbeat (no changes listed) */
	uint32_t *changed;       /**< ordinals the epoch touched (malloc'ed), or NULL */
	size_t changed_count;
};

/**
 * Subscribes to the coordinator's notices (its --events URL), so that
 * sutra_reader_wait_for_epoch() wakes as soon as an epoch is announced and
 * sutra_reader_next_notice() can report them. Notices are hints: the file
 * stays the truth, and a lost, late or duplicated notice only delays. nng
 * is started here, not before (it is not fork-safe: subscribe after any
 * fork()).
 * @return 0, -EINVAL (bad URL), -EALREADY (already subscribed), -ENOMEM,
 *   SUTRA_EUNAVAIL
 */
SUTRA_API int sutra_reader_subscribe(sutra_reader *r, const char *events_url);

/**
 * A file descriptor that becomes readable when a notice is waiting, for
 * an event loop (epoll, asyncio): then call sutra_reader_next_notice().
 * Do not read from or close it.
 * @return 0, -ENOTCONN (not subscribed)
 */
SUTRA_API int sutra_reader_notice_fd(sutra_reader *r, int *fd);

/**
 * Receives the next notice of this store (others are skipped), waiting up
 * to timeout_ms (0: only what is there; -1: no limit). Free n with
 * sutra_notice_clear().
 * @return 0, -ETIMEDOUT, -ENOTCONN (not subscribed), -ENOMEM
 */
SUTRA_API int sutra_reader_next_notice(sutra_reader *r, int timeout_ms, struct sutra_notice *n);

/** Frees what a notice holds. */
SUTRA_API void sutra_notice_clear(struct sutra_notice *n);

/** A thread that hands a reader's notices to a callback (sutra_reader_listen()). */
typedef struct sutra_listener sutra_listener;

/**
 * Starts a thread that calls fn(arg, n) for each notice of r's
 * subscription (sutra_reader_subscribe() must have been called), one at a
 * time, in the order received: the callback form of
 * sutra_reader_next_notice().
 *
 * Notices are hints: some are lost (a slow callback makes the queues drop
 * the oldest, and a coordinator restart loses those in flight), some come
 * late or twice, and heartbeats repeat the current epoch. Compare n->epoch
 * with what the reader has and read the file (sutra_reader_refresh(),
 * sutra_snapshot_acquire()); when an epoch was skipped, treat every
 * concept as possibly changed.
 *
 * In the callback: n and n->changed are borrowed until fn returns (copy
 * what you keep). fn may use r and its snapshots (refresh, acquire,
 * lookups) and stop this or another listener (see sutra_listener_stop());
 * it must not close r. fn runs on the listener's thread, with every signal
 * blocked; keep it short, as notices queue (and older ones are dropped)
 * while it runs.
 *
 * There should be one listener per reader, and no other thread taking
 * notices from it: sutra_reader_next_notice() and the waits of
 * sutra_reader_wait_for_epoch() (when subscribed) consume notices, which
 * the listener then does not see. Stop the listener before
 * sutra_reader_close(r). Heartbeats are passed on too (n->heartbeat).
 *
 * Thread-safety: may be called from any thread; a listener may be stopped
 * from any thread, once.
 *
 * @param fn called on the listener's thread for each notice
 * @param arg passed to fn
 * @param out the new listener, to stop and free with sutra_listener_stop()
 * @return 0, -EINVAL (r, fn or out is NULL), -ENOTCONN (not subscribed),
 *   -ENOMEM, -EMFILE and -ENFILE (no descriptor for the stop pipe), -EAGAIN
 *   (no thread)
 */
SUTRA_API int sutra_reader_listen(sutra_reader *r,
				  void (*fn)(void *arg, const struct sutra_notice *n), void *arg,
				  sutra_listener **out);

/**
 * Stops the listener and frees it. It returns promptly, once a callback
 * in progress has returned; fn is not called after that. NULL is allowed.
 * Called from l's own callback, it cannot wait for that callback: it
 * returns at once, fn is not called again, and the thread frees l when the
 * callback returns, without touching the reader (the reader may be closed
 * only once that callback has returned).
 */
SUTRA_API void sutra_listener_stop(sutra_listener *l);

/**
 * Takes a snapshot of the newest epoch (after a refresh) that is at least
 * min_epoch.
 * @return 0, -EAGAIN (the newest epoch is below min_epoch: wait for it
 *   first), SUTRA_ECORRUPT, -ENOMEM
 */
SUTRA_API int sutra_snapshot_acquire(sutra_reader *r, uint64_t min_epoch, sutra_snapshot **out);

/** Releases a snapshot. NULL is allowed. */
SUTRA_API void sutra_snapshot_release(sutra_snapshot *s);

/** The snapshot's epoch. */
SUTRA_API uint64_t sutra_snapshot_epoch(const sutra_snapshot *s);

/**
 * Gets the concept id as of the snapshot, zero-copy.
 * @return 0, SUTRA_ENOTFOUND, SUTRA_ECORRUPT (its record does not check out)
 */
SUTRA_API int sutra_snapshot_get(const sutra_snapshot *s, const uint8_t id[16],
				 struct sutra_concept_view *out);

/** 1 when the concept id is live in the snapshot, 0 when not, or
 * SUTRA_ECORRUPT when a segment it reads does not check out. */
SUTRA_API int sutra_snapshot_contains(const sutra_snapshot *s, const uint8_t id[16]);

/**
 * Calls fn for every live concept of the snapshot, once each: first those
 * written since the last index segment, then those of each segment from
 * the newest, in ordinal order within a segment (no overall order is
 * promised); stops when fn returns non-zero and returns that value.
 * @return 0, fn's value, SUTRA_ECORRUPT
 */
SUTRA_API int sutra_snapshot_foreach(const sutra_snapshot *s,
				     int (*fn)(void *arg, const struct sutra_concept_view *c),
				     void *arg);

/**
 * The neighbours of concept id in the snapshot, ordered by confidence
 * (highest first; ties by ordinal, outgoing first).
 * @param type an association type 0..255, or -1 for any
 * @param dir which direction to follow
 * @param out room for limit neighbours
 * @param n out: how many were written (at most limit)
 * @param total out (may be NULL): how many there are in all
 * @return 0, SUTRA_ENOTFOUND (id is not live), SUTRA_EVALUE (bad type or
 *   direction), SUTRA_ECORRUPT, -ENOMEM
 */
SUTRA_API int sutra_snapshot_neighbors(const sutra_snapshot *s, const uint8_t id[16], int type,
				       enum sutra_direction dir, size_t limit,
				       struct sutra_neighbor *out, size_t *n, size_t *total);

#define SUTRA_MAX_PATH_DEPTH 20

/**
 * A shortest path from concept from to concept to in the snapshot
 * (bidirectional breadth-first search), following associations of the
 * given type (-1: any) in direction dir (SUTRA_DIR_BOTH: either way).
 * @param max_depth the most associations the path may have, 1..20
 * @param out room for max_depth + 1 ids: the path, from first, to last
 * @param len out: the number of ids written (1 when from == to)
 * @return 0, SUTRA_ENOTFOUND (an end is not live, or no path within
 *   max_depth), SUTRA_EVALUE (bad depth, type or direction), -ENOMEM
 */
SUTRA_API int sutra_snapshot_shortest_path(const sutra_snapshot *s, const uint8_t from[16],
					   const uint8_t to[16], int type, enum sutra_direction dir,
					   unsigned max_depth, uint8_t (*out)[16], size_t *len);

#define SUTRA_MAX_PATHS 64

/**
 * Up to k shortest simple paths from concept from to concept to (Yen's
 * algorithm over the search of sutra_snapshot_shortest_path()), shortest
 * first, each of at most max_depth associations.
 * @param out room for k * (max_depth + 1) ids: path j starts at
 *   out[j * (max_depth + 1)]
 * @param lens room for k lengths (ids per path)
 * @param count out: the number of paths found (0 < count <= k)
 * @return 0, SUTRA_ENOTFOUND (an end is not live, or no path), SUTRA_EVALUE
 *   (k not in 1..64, or as for the shortest path), -ENOMEM
 */
SUTRA_API int sutra_snapshot_paths(const sutra_snapshot *s, const uint8_t from[16],
				   const uint8_t to[16], int type, enum sutra_direction dir,
				   unsigned max_depth, size_t k, uint8_t (*out)[16], size_t *lens,
				   size_t *count);

/* ---- Vector and text search ------------------------------------------------ */

#define SUTRA_MAX_K 1000        /**< the most results one search returns */
#define SUTRA_DEFAULT_EF 64     /**< the beam width when a query gives ef = 0 */

/** One search result. */
struct sutra_search_hit {
	uint8_t id[16];
	uint32_t ordinal;
	float similarity;   /**< vector search: 1 - cosine distance; text search: 0 */
	uint32_t matched;   /**< text search: query terms the content holds; vector: 0 */
	float strength;     /**< the concept's strength */
};

/**
 * The k concepts of the snapshot whose embeddings are most similar (cosine)
 * to query, most similar first. Exact with respect to the snapshot: a
 * concept deleted, not yet visible, or whose vector has changed since is
 * never returned, and an updated vector is found by its new value only.
 * The index segments are searched with HNSW (a beam of max(ef, k)); the
 * vectors written since the last segment are compared one by one.
 *
 * @param query store's vector_dim floats, not all zero, none NaN or Inf
 *   (need not be unit length)
 * @param dim must equal the store's vector_dim
 * @param k 1..SUTRA_MAX_K
 * @param ef the beam width (0: SUTRA_DEFAULT_EF); larger finds more of the
 *   true nearest at more cost
 * @param filter NULL, or the ordinals among which to search (concepts not
 *   in it are never returned). A small filter set is scanned exactly.
 * @param out room for k hits
 * @param n out: how many were written (fewer than k when the store or the
 *   filter holds fewer concepts with embeddings)
 * @return 0, SUTRA_EDIM, SUTRA_EVALUE (NaN/Inf/zero query, k out of range),
 *   SUTRA_ECORRUPT, -ENOMEM
 */
SUTRA_API int sutra_snapshot_vector_search(const sutra_snapshot *s, const float *query,
					   uint32_t dim, uint32_t k, uint32_t ef,
					   const roaring_bitmap_t *filter,
					   struct sutra_search_hit *out, size_t *n);

/** How the terms of a text query combine. */
enum sutra_text_mode {
	SUTRA_TEXT_ALL = 0, /**< every term (AND) */
	SUTRA_TEXT_ANY = 1, /**< at least one term (OR) */
};

/**
 * The concepts of the snapshot whose content holds the terms of query
 * (tokenized as contents are: docs/FORMAT.md section 10.6), ranked by the
 * number of distinct query terms matched, then by strength (highest
 * first), then by ordinal.
 * @param query UTF-8 text; a query with no token matches nothing
 * @param limit the most hits to write (1..SUTRA_MAX_K)
 * @param out room for limit hits
 * @param n out: how many were written
 * @param total out (may be NULL): how many concepts match in all
 * @return 0, SUTRA_EVALUE (bad mode or limit), SUTRA_ECORRUPT, -ENOMEM
 */
SUTRA_API int sutra_snapshot_text_search(const sutra_snapshot *s, const char *query, size_t len,
					 enum sutra_text_mode mode, size_t limit,
					 struct sutra_search_hit *out, size_t *n, size_t *total);

/**
 * The ordinals of every concept that matches a text query (as for
 * sutra_snapshot_text_search()), as a new bitmap: the filter of a combined
 * text and vector search. Free it with roaring_bitmap_free().
 * @return 0, SUTRA_EVALUE, SUTRA_ECORRUPT, -ENOMEM
 */
SUTRA_API int sutra_snapshot_text_filter(const sutra_snapshot *s, const char *query, size_t len,
					 enum sutra_text_mode mode, roaring_bitmap_t **out);

/** Fills *st for the snapshot. */
SUTRA_API void sutra_snapshot_stats(const sutra_snapshot *s, struct sutra_reader_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* SUTRA_READER_H */
