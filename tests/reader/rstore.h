/* SPDX-License-Identifier: MIT */
/* Stores written by hand for the reader's unit tests: commits and index segments, in a temporary file. */
#ifndef TESTS_READER_RSTORE_H
#define TESTS_READER_RSTORE_H

/*
 * The reader's unit tests need stores in which they choose which layer
 * says what about an id: the tail, a newer segment or an older one. An
 * rstore is a tstore (tests/common/tstore.h) plus a builder for the next
 * commit and the file it is written to, in a fresh temporary directory
 * (the reader creates its lock file beside it). rstore_flush() makes a
 * segment the way the coordinator does (FORMAT.md 10.4): of the commit
 * blocks since the last flush, appended after them and listed by the next
 * commit, which moves tail_start past the blocks it covers. No
 * coordinator process is involved.
 *
 * Concepts are named by a small number n: rstore_id(n) is their id, and
 * the caller gives each new one the next ordinal, as the coordinator
 * would. Every call fails the running Check test on error.
 */

#include <stdint.h>

#include "layout/layout.h"
#include "tests/common/tstore.h"
#include "util/idmap.h"

#define RSTORE_MAX_N 4096u

struct rstore {
	struct tstore t;
	struct layout_builder b;
	uint32_t dim;
	uint32_t segments;       /* listed so far */
	uint64_t last_flushed;   /* the newest epoch a segment covers */
	uint64_t concepts, associations;
	uint32_t next_ordinal;
	uint8_t live[RSTORE_MAX_N];   /* by concept number, for the meta's count */
	struct util_idmap edges;      /* live association keys, likewise */
	char dir[256];
	char path[256 + 16];
};

/* Starts an empty store of dimension dim in a new temporary directory and
 * writes it there (epoch 0). */
void rstore_init(struct rstore *s, uint32_t dim);
/* Removes the files and frees everything. */
void rstore_finish(struct rstore *s);

void rstore_id(uint8_t id[16], uint32_t n);

/* Adds to the next commit: concept n (ordinal: the next one for a new
 * concept, its own for an update), with content and an embedding of the
 * store's dimension or NULL; its delete; an association of type from
 * concept a to concept b (their ordinals given), or its delete. */
void rstore_concept(struct rstore *s, uint32_t n, uint32_t ordinal, const char *content,
		    const float *embedding);
void rstore_delete(struct rstore *s, uint32_t n, uint32_t ordinal);
void rstore_assoc(struct rstore *s, uint32_t a, uint32_t ao, uint32_t b, uint32_t bo,
		  uint8_t type, float confidence);
void rstore_assoc_delete(struct rstore *s, uint32_t a, uint32_t ao, uint32_t b, uint32_t bo,
			 uint8_t type);

/* Seals what was added as the next epoch and writes the file; returns the
 * epoch. */
uint64_t rstore_commit(struct rstore *s);

/* Makes a segment of the commit blocks since the last flush and lists it
 * with an empty commit (whose epoch it returns). */
uint64_t rstore_flush(struct rstore *s);

#endif /* TESTS_READER_RSTORE_H */
