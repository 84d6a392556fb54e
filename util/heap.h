/* SPDX-License-Identifier: MIT */
/* Binary min- and max-heaps of (distance, id) pairs in caller storage, for nearest-neighbour searches. */
#ifndef UTIL_HEAP_H
#define UTIL_HEAP_H

/*
 * A heap is an array of struct util_hent that the caller owns and a count
 * (size_t) that the caller keeps, usually in a local, so that the search
 * loops that use these (layout/hnsw_search.c, reader/search.c) keep it in a
 * register and never allocate: the caller sizes the array, and pushing
 * onto a full one is a programmer error. A min-heap has its smallest d at
 * [0], a max-heap its largest.
 *
 * The functions are inline and the min and max forms share one body; with
 * max a constant each compiles to the plain loop, and HNSW's beam search
 * runs no more instructions than with the hand-written heaps these
 * replaced. Comparisons are strict: an entry moves past another only when
 * its d is smaller (min) or larger (max), so equal distances keep the
 * order the pushes gave them, and the arrangement after a given sequence
 * of calls is fixed. That matters: the HNSW builder's choices, and with
 * them the graph it writes to disk, follow from it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct util_hent {
	float d;     /* the key: a distance, or a score */
	uint32_t id; /* the payload: a node, or an index into the caller's array */
};

/* Whether a goes above b: a smaller key in a min-heap, a larger in a max-heap. */
static inline bool util_heap_above_(float a, float b, bool max)
{
	return max ? a > b : a < b;
}

/* Puts e in the hole at i, moving it up past the parents it goes above. */
static inline void util_heap_up_(struct util_hent *h, size_t i, struct util_hent e, bool max)
{
	while (i) {
		size_t p = (i - 1) / 2;
		if (!util_heap_above_(e.d, h[p].d, max))
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = e;
}

/* Puts e in the hole at the top of a heap of n entries, moving it down past
 * the children that go above it (the right one only when it goes above the
 * left). */
static inline void util_heap_down_(struct util_hent *h, size_t n, struct util_hent e, bool max)
{
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && util_heap_above_(h[c + 1].d, h[c].d, max))
			c++;
		if (!util_heap_above_(h[c].d, e.d, max))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = e;
}

static inline struct util_hent util_heap_pop_(struct util_hent *h, size_t *n, bool max)
{
	struct util_hent top = h[0], last = h[--*n];
	if (*n)
		util_heap_down_(h, *n, last, max);
	return top;
}

/* While there is room (*n < cap) e is pushed; once the heap is full, e
 * replaces the top only when the top goes above it, i.e. when e is better
 * to keep than the worst kept. Returns whether e was taken. */
static inline bool util_heap_offer_(struct util_hent *h, size_t *n, size_t cap,
				    struct util_hent e, bool max)
{
	if (*n < cap) {
		util_heap_up_(h, (*n)++, e, max);
		return true;
	}
	if (!cap || !util_heap_above_(h[0].d, e.d, max))
		return false;
	util_heap_down_(h, *n, e, max);
	return true;
}

/* ---- Min-heaps: the smallest d on top ----------------------------------------- */

/* Adds e; h must have room for *n + 1 entries. */
static inline void util_minheap_push(struct util_hent *h, size_t *n, struct util_hent e)
{
	util_heap_up_(h, (*n)++, e, false);
}

/* Removes and returns the top (the smallest d); *n must not be 0. */
static inline struct util_hent util_minheap_pop(struct util_hent *h, size_t *n)
{
	return util_heap_pop_(h, n, false);
}

/* Keeps the cap largest d offered: e is pushed while *n < cap, and once the
 * heap is full replaces the top only if its d is larger. Returns whether e
 * was taken (a top it replaced is gone: read h[0] before if it matters). */
static inline bool util_minheap_offer(struct util_hent *h, size_t *n, size_t cap,
				      struct util_hent e)
{
	return util_heap_offer_(h, n, cap, e, false);
}

/* ---- Max-heaps: the largest d on top ------------------------------------------ */

static inline void util_maxheap_push(struct util_hent *h, size_t *n, struct util_hent e)
{
	util_heap_up_(h, (*n)++, e, true);
}

static inline struct util_hent util_maxheap_pop(struct util_hent *h, size_t *n)
{
	return util_heap_pop_(h, n, true);
}

/* Keeps the cap smallest d offered (the nearest, for distances). */
static inline bool util_maxheap_offer(struct util_hent *h, size_t *n, size_t cap,
				      struct util_hent e)
{
	return util_heap_offer_(h, n, cap, e, true);
}

#endif /* UTIL_HEAP_H */
