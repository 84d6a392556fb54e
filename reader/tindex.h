/* SPDX-License-Identifier: MIT */
/* The reader's private index of the log's tail: id -> versions by epoch, one writer, lock-free lookups. */
#ifndef READER_TINDEX_H
#define READER_TINDEX_H

/*
 * Each reader process indexes the commit blocks it has not seen before,
 * incrementally, as it refreshes (DESIGN.md section 4). Lookups come from
 * any thread holding a snapshot and must never wait for a refresh, so the
 * index is built for one writer (the refreshing thread; callers serialise
 * refreshes) and many lock-free readers:
 *
 *  - Versions live in an append-only array of fixed-size chunks, reached
 *    through a directory allocated once: a version never moves. A version
 *    says: at `epoch` the id became (record at `offset`, `ordinal`) or was
 *    deleted, and links to the id's previous version.
 *  - Ids live in an open-addressing table that never deletes. A slot is
 *    filled by writing the key and then release-storing the head version;
 *    a reader acquire-loads the head first and treats 0 as empty. Linear
 *    probing without deletions makes that safe: an id inserted earlier
 *    than a slot being filled now lies before it on its probe path.
 *  - When the table fills past one half, the writer builds a table twice
 *    the size (a new generation) and swaps it in. Snapshots pin the
 *    generation they started with (rdr_tindex_acquire); a retired
 *    generation is freed when its last holder releases it. Only acquire
 *    and the swap take the mutex: lookups never do.
 *
 * A lookup at epoch E walks the id's versions from the newest and takes the
 * first with epoch <= E, so a snapshot sees exactly the state of E however
 * far the index has moved on.
 */

#include <pthread.h>
#include <stdint.h>

#define RDR_CHUNK_BITS 12u
#define RDR_CHUNK (1u << RDR_CHUNK_BITS)
#define RDR_MAX_CHUNKS (1u << 16) /* 268 M versions */

struct rdr_version {
	uint64_t epoch;
	uint64_t offset;  /* file offset of the concept record; 0: deleted */
	uint32_t ordinal;
	uint32_t prev;    /* index + 1 of the previous version, 0: none */
};

struct rdr_gen;

struct rdr_tindex {
	pthread_mutex_t mu;
	struct rdr_gen *cur;          /* atomic; swapped under mu */
	struct rdr_version **chunks;  /* directory: RDR_MAX_CHUNKS entries, atomic */
	uint32_t nversions;           /* writer only */
	uint64_t ids;                 /* writer only: distinct ids */
};

int rdr_tindex_init(struct rdr_tindex *t);
/* Frees everything; no generation may be held any more. */
void rdr_tindex_finish(struct rdr_tindex *t);

/* Writer: records that at epoch the id became (offset, ordinal), or was
 * deleted (offset 0). Epochs of one id must not decrease. Returns 0 or
 * -ENOMEM (index unchanged). */
int rdr_tindex_put(struct rdr_tindex *t, const uint8_t id[16], uint64_t epoch, uint64_t offset,
		   uint32_t ordinal);

/* Pins the current generation for lookups (never NULL). Thread-safe. */
struct rdr_gen *rdr_tindex_acquire(struct rdr_tindex *t);
/* Unpins it. Thread-safe; frees a retired generation on its last release. */
void rdr_tindex_release(struct rdr_gen *g);

/* Lock-free lookup through a pinned generation: 1 with *offset and
 * *ordinal when the id is live at epoch, 0 when it is absent or deleted. */
int rdr_tindex_get(const struct rdr_tindex *t, const struct rdr_gen *g, const uint8_t id[16],
		   uint64_t epoch, uint64_t *offset, uint32_t *ordinal);

enum rdr_find { RDR_ABSENT = 0, RDR_LIVE = 1, RDR_DELETED = 2 };

/* As rdr_tindex_get, telling apart an id the index never had at epoch
 * (RDR_ABSENT: older layers decide) from one deleted there (RDR_DELETED,
 * *ordinal set). */
int rdr_tindex_find(const struct rdr_tindex *t, const struct rdr_gen *g, const uint8_t id[16],
		    uint64_t epoch, uint64_t *offset, uint32_t *ordinal);

/* As rdr_tindex_find, also giving, for RDR_LIVE and RDR_DELETED, the
 * index of the version found (*ver). A version keeps its index for the
 * life of the index, so a caller can keep more about each version in a
 * table of its own, indexed by it: filled for index rdr_tindex_next(t)
 * before the put that creates that version, it is published with it. */
int rdr_tindex_find_version(const struct rdr_tindex *t, const struct rdr_gen *g,
			    const uint8_t id[16], uint64_t epoch, uint64_t *offset,
			    uint32_t *ordinal, uint32_t *ver);

/* Writer: the index the next rdr_tindex_put gives its version. */
static inline uint32_t rdr_tindex_next(const struct rdr_tindex *t)
{
	return t->nversions;
}

#endif /* READER_TINDEX_H */
