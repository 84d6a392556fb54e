/* SPDX-License-Identifier: MIT */
/* Growing a malloc'd array by doubling: the one home of the idiom. */
#ifndef UTIL_GROW_H
#define UTIL_GROW_H

/*
 * An array that grows as items are appended keeps a pointer and a
 * capacity (in elements). util_grow() makes room for at least need
 * elements: when cap is short it doubles it (starting from first, and at
 * least to need), checks the byte size for overflow, and reallocs. On
 * failure the array and its capacity are left as they were, so the
 * caller's data stays valid. New elements are not initialised.
 *
 *   if ((rc = UTIL_GROW(s->items, s->cap, s->n + 1, 16)))
 *           return rc;
 *   s->items[s->n++] = item;
 */

#include <stddef.h>

/* Grows *arr (elements of elem bytes, capacity *cap) to hold need
 * elements. Returns 0 or -ENOMEM (no memory, or the size overflows). */
int util_grow(void **arr, size_t *cap, size_t need, size_t elem, size_t first);

/* The same for a typed pointer lvalue arr and a size_t lvalue cap. */
#define UTIL_GROW(arr, cap, need, first) \
	util_grow((void **)&(arr), &(cap), (need), sizeof *(arr), (first))

#endif /* UTIL_GROW_H */
