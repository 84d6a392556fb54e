/* SPDX-License-Identifier: MIT */
/* Tests of the (distance, id) heaps: order against a sorted reference, ties, capacity. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/common/tcheck.h"
#include "util/heap.h"
#include "util/random.h"

#define MAXN 600u

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

/* A key from a few values when ties are wanted, from many otherwise. */
static float draw(uint64_t *rng, unsigned values)
{
	return (float)(util_splitmix64(rng) % values) * 0.5f - 7.0f;
}

/* Pushes n random keys and pops them all: they come out sorted (smallest
 * first from a min-heap, largest first from a max-heap), each id once. */
static void pops_in_order(bool max)
{
	static struct util_hent h[MAXN];
	static float ref[MAXN];
	static bool seen[MAXN];
	uint64_t rng = max ? 42 : 7;
	for (unsigned trial = 0; trial < 80; trial++) {
		size_t n = util_splitmix64(&rng) % MAXN, len = 0;
		unsigned values = trial % 2 ? 5 : 100000;
		for (size_t i = 0; i < n; i++) {
			ref[i] = draw(&rng, values);
			struct util_hent e = { ref[i], (uint32_t)i };
			if (max)
				util_maxheap_push(h, &len, e);
			else
				util_minheap_push(h, &len, e);
			ck_assert_uint_eq(len, i + 1);
		}
		qsort(ref, n, sizeof *ref, cmp_float);
		memset(seen, 0, sizeof seen);
		for (size_t i = 0; i < n; i++) {
			struct util_hent top = h[0];
			struct util_hent e = max ? util_maxheap_pop(h, &len) : util_minheap_pop(h, &len);
			ck_assert_uint_eq(len, n - 1 - i);
			ck_assert_uint_eq(e.id, top.id);
			ck_assert(e.d == (max ? ref[n - 1 - i] : ref[i]));
			ck_assert_uint_lt(e.id, n);
			ck_assert(!seen[e.id]);
			seen[e.id] = true;
		}
	}
}

START_TEST(test_heap_min_pops_in_order)
{
	pops_in_order(false);
}
END_TEST

START_TEST(test_heap_max_pops_in_order)
{
	pops_in_order(true);
}
END_TEST

/* Pushes and pops interleaved: every pop gives the extreme of what a plain
 * unsorted reference holds at that moment. */
START_TEST(test_heap_interleaved_pushes_and_pops)
{
	static struct util_hent h[MAXN];
	static float ref[MAXN];
	uint64_t rng = 2024;
	for (int max = 0; max <= 1; max++) {
		size_t len = 0, nref = 0;
		for (unsigned op = 0; op < 6000; op++) {
			uint64_t r = util_splitmix64(&rng);
			if (nref && (r % 5 < 2 || nref == MAXN)) {
				size_t best = 0;
				for (size_t i = 1; i < nref; i++)
					if (max ? ref[i] > ref[best] : ref[i] < ref[best])
						best = i;
				struct util_hent e = max ? util_maxheap_pop(h, &len)
							 : util_minheap_pop(h, &len);
				ck_assert(e.d == ref[best]);
				ref[best] = ref[--nref];
			} else {
				float d = draw(&rng, op % 3 ? 9 : 1000);
				ref[nref++] = d;
				if (max)
					util_maxheap_push(h, &len, (struct util_hent){ d, op });
				else
					util_minheap_push(h, &len, (struct util_hent){ d, op });
			}
			ck_assert_uint_eq(len, nref);
		}
	}
}
END_TEST

/* Equal keys never pass each other, so the order ties come out in follows
 * from the calls alone. Pinned: the HNSW builder's choices, and so the
 * graphs on disk, depend on this arrangement. */
START_TEST(test_heap_ties_come_out_in_a_fixed_order)
{
	static const uint32_t want_min[] = { 0, 6, 5, 4, 3, 2, 1 };
	static const uint32_t want_max[] = { 7, 3, 6, 5, 4, 1, 2, 0 };
	struct util_hent h[8];
	size_t len = 0;
	for (uint32_t i = 0; i < 7; i++)
		util_minheap_push(h, &len, (struct util_hent){ 1.0f, i });
	for (size_t i = 0; i < 7; i++)
		ck_assert_uint_eq(util_minheap_pop(h, &len).id, want_min[i]);
	/* A larger key among ties goes to the top of a max-heap and the
	 * ties keep their places below it. */
	for (uint32_t i = 0; i < 7; i++)
		util_maxheap_push(h, &len, (struct util_hent){ 1.0f, i });
	util_maxheap_push(h, &len, (struct util_hent){ 2.0f, 7 });
	for (size_t i = 0; i < 8; i++) {
		struct util_hent e = util_maxheap_pop(h, &len);
		ck_assert_uint_eq(e.id, want_max[i]);
		ck_assert(e.d == (i ? 1.0f : 2.0f));
	}
	ck_assert_uint_eq(len, 0);
	/* Of two equal children, the left one moves up. */
	static const float keys[] = { 0.0f, 1.0f, 1.0f, 2.0f };
	for (uint32_t i = 0; i < 4; i++)
		util_minheap_push(h, &len, (struct util_hent){ keys[i], i });
	for (uint32_t i = 0; i < 4; i++)
		ck_assert_uint_eq(util_minheap_pop(h, &len).id, i);
	for (uint32_t i = 0; i < 4; i++)
		util_maxheap_push(h, &len, (struct util_hent){ -keys[i], i });
	for (uint32_t i = 0; i < 4; i++)
		ck_assert_uint_eq(util_maxheap_pop(h, &len).id, i);
}
END_TEST

/* A heap offered more than its capacity keeps the cap best keys: the
 * largest in a min-heap (top k by score), the smallest in a max-heap
 * (nearest k). It never holds more than cap, and a key equal to the worst
 * kept is not taken. */
START_TEST(test_heap_offer_keeps_the_best_at_capacity)
{
	static struct util_hent h[64];
	static float ref[2000];
	uint64_t rng = 99;
	for (unsigned trial = 0; trial < 120; trial++) {
		bool max = trial % 2;
		size_t cap = util_splitmix64(&rng) % 65, n = util_splitmix64(&rng) % 2000, len = 0;
		unsigned values = trial % 4 < 2 ? 7 : 100000;
		for (size_t i = 0; i < n; i++) {
			ref[i] = draw(&rng, values);
			struct util_hent e = { ref[i], (uint32_t)i };
			bool full = len == cap;
			float worst = len ? h[0].d : 0.0f;
			bool took = max ? util_maxheap_offer(h, &len, cap, e)
					: util_minheap_offer(h, &len, cap, e);
			bool better = full && cap && (max ? e.d < worst : e.d > worst);
			ck_assert(took == (!full || better));
			ck_assert_uint_le(len, cap);
		}
		ck_assert_uint_eq(len, n < cap ? n : cap);
		qsort(ref, n, sizeof *ref, cmp_float);
		/* Popping what is kept gives the best len keys, worst first. */
		for (size_t i = 0; len; i++) {
			struct util_hent e = max ? util_maxheap_pop(h, &len) : util_minheap_pop(h, &len);
			size_t kept = n < cap ? n : cap;
			ck_assert(e.d == (max ? ref[kept - 1 - i] : ref[n - kept + i]));
		}
	}
}
END_TEST

TCHECK_MAIN("util", "heap", 0, test_heap_min_pops_in_order, test_heap_max_pops_in_order,
	    test_heap_interleaved_pushes_and_pops, test_heap_ties_come_out_in_a_fixed_order,
	    test_heap_offer_keeps_the_best_at_capacity)
