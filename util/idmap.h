/* SPDX-License-Identifier: MIT */
/* A hash map from 16-byte ids to 64-bit values, for replay and indexing. */
#ifndef UTIL_IDMAP_H
#define UTIL_IDMAP_H

/*
 * Open addressing with linear probing over a power-of-two table of
 * (key, value, state) slots; the load factor stays at or below 1/2 by
 * doubling. Keys are 16 bytes (concept ids, or any other fixed 16-byte key
 * such as an association's packed (src ordinal, dst ordinal, type)); they
 * are random-looking in practice, but the slot index is still mixed so that
 * crafted keys do not cluster. Deletion leaves a tombstone that a later
 * insert of any key may reuse; the table is rebuilt when tombstones pile up.
 * Not thread-safe: one owner at a time.
 */

#include <stddef.h>
#include <stdint.h>

struct util_idmap_slot {
	unsigned char key[16];
	uint64_t value;
	uint8_t state; /* 0 empty, 1 full, 2 deleted */
};

struct util_idmap {
	struct util_idmap_slot *slots;
	size_t cap;  /* power of two, or 0 before first insert */
	size_t len;  /* full slots */
	size_t dead; /* deleted slots */
};

void util_idmap_init(struct util_idmap *m);
void util_idmap_finish(struct util_idmap *m);

/* Finds key; on success stores its value in *value (if not NULL), returns 1. */
int util_idmap_get(const struct util_idmap *m, const void *key, uint64_t *value);

/* Inserts or replaces. Returns 0, or -ENOMEM. */
int util_idmap_put(struct util_idmap *m, const void *key, uint64_t value);

/* Removes key. Returns 1 if it was there, 0 if not. */
int util_idmap_del(struct util_idmap *m, const void *key);

#endif /* UTIL_IDMAP_H */
