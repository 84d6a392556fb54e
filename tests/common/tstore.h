/* SPDX-License-Identifier: MIT */
/* A small deterministic store built through the layout library, for tests. */
#ifndef TESTS_COMMON_TSTORE_H
#define TESTS_COMMON_TSTORE_H

/*
 * tstore_build() writes, in memory, a store of dimension 4 with a fixed
 * uuid, creation time and timestamps, so that its bytes are the same on
 * every run (the golden layoutdump output depends on it). Its epochs:
 *   1: three concepts (one without embedding, one with metadata, UTF-8
 *      content), two associations;
 *   2: an update of a concept, a new concept, an association upsert, a
 *      request marker;
 *   3: an association delete, then the delete of a concept after its
 *      remaining edges were deleted;
 *   4: an empty commit.
 * counts[e] holds what replaying epochs 1..e must give, for e = 0..epochs.
 */

#include <stddef.h>
#include <stdint.h>

#include "layout/layout.h"

#define TSTORE_DIM 4u
#define TSTORE_MAX_EPOCHS 8

struct tstore_counts {
	uint64_t concepts;
	uint64_t associations;
	uint32_t next_ordinal;
	uint64_t published_end;
};

struct tstore {
	unsigned char *buf;
	size_t len;
	uint64_t epochs;
	struct tstore_counts counts[TSTORE_MAX_EPOCHS + 1];
	struct layout_meta meta; /* of the newest epoch */
	size_t cap;
};

/* Starts an empty store of dimension dim (epoch 0) with the fixed uuid and
 * times, for tests that write their own epochs with tstore_commit(). */
int tstore_init_empty(struct tstore *t, uint32_t dim);

/* Seals b as the next epoch, appends it, writes that epoch's meta slot
 * claiming the given counts (which tests may make wrong on purpose), and
 * resets b. Returns 0 or a negative error. */
int tstore_commit(struct tstore *t, struct layout_builder *b, uint64_t concepts,
		  uint64_t associations, uint32_t next_ordinal);

/* Appends raw bytes (a block built by the test) at the end of the log,
 * without publishing them. Returns 0 or -ENOMEM. */
int tstore_append(struct tstore *t, const void *data, size_t len);

/* A buffer of exactly len bytes (so that AddressSanitizer sees a read past
 * it) aligned as layout_open requires (LAYOUT_IMAGE_ALIGN), holding a copy
 * of src (len bytes) or zeros when src is NULL; free() it. Aborts the test
 * when out of memory. */
unsigned char *tstore_aligned_copy(const void *src, size_t len);

/* Returns 0 or a negative error; free with tstore_finish(). */
int tstore_build(struct tstore *t);
void tstore_finish(struct tstore *t);

/* Writes the bytes to path (created or truncated). Returns 0 or -errno. */
int tstore_write(const struct tstore *t, const char *path);

#endif /* TESTS_COMMON_TSTORE_H */
