/* SPDX-License-Identifier: MIT */
/* Vector and text search over a tail and segments: shadowed and deleted ids left out, k, ef and filters, AND and OR. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <roaring/roaring.h>

#include "sutra/reader.h"
#include "tests/common/tcheck.h"
#include "tests/reader/rstore.h"
#include "util/vecdist.h"

#define DIM 4u

/*
 * The store every test reads (concept number: ordinal, vector, content):
 *
 *   segment 0 (epoch 1)   1: 0 (1,0,0,0)      "red apple fruit"
 *                         2: 1 (.9,.1,0,0)    "green apple"
 *                         3: 2 (0,1,0,0)      "red car"
 *                         4: 3 (0,0,1,0)      "blue sky"
 *                         5: 4 (.7,.7,0,0)    "apple pie"
 *                         6: 5 none           "apple text only"
 *   segment 1 (epoch 3)   3 updated to (-1,0,0,0) "red truck"; 4 deleted;
 *                         7: 6 (.8,0,.2,0)    "yellow apple"
 *   tail (epoch 5)        2 updated to (0,0,0,1) "green pear"; 5 deleted;
 *                         8: 7 (.99,0,0,.01)  "red cherry"
 *                         9: 8 (.5,.5,.5,.5)  "apple apple"
 *
 * `before` is a snapshot of epoch 4 (segments only), `now` of epoch 5.
 */
static const float V1[DIM] = { 1.0f, 0.0f, 0.0f, 0.0f };
static const float V2[DIM] = { 0.9f, 0.1f, 0.0f, 0.0f };
static const float V2b[DIM] = { 0.0f, 0.0f, 0.0f, 1.0f };
static const float V3[DIM] = { 0.0f, 1.0f, 0.0f, 0.0f };
static const float V3b[DIM] = { -1.0f, 0.0f, 0.0f, 0.0f };
static const float V4[DIM] = { 0.0f, 0.0f, 1.0f, 0.0f };
static const float V5[DIM] = { 0.7f, 0.7f, 0.0f, 0.0f };
static const float V7[DIM] = { 0.8f, 0.0f, 0.2f, 0.0f };
static const float V8[DIM] = { 0.99f, 0.0f, 0.0f, 0.01f };
static const float V9[DIM] = { 0.5f, 0.5f, 0.5f, 0.5f };

static struct rstore st;
static sutra_reader *rd;
static sutra_snapshot *before, *now;

static void build(void)
{
	rstore_init(&st, DIM);
	rstore_concept(&st, 1, 0, "red apple fruit", V1);
	rstore_concept(&st, 2, 1, "green apple", V2);
	rstore_concept(&st, 3, 2, "red car", V3);
	rstore_concept(&st, 4, 3, "blue sky", V4);
	rstore_concept(&st, 5, 4, "apple pie", V5);
	rstore_concept(&st, 6, 5, "apple text only", NULL);
	rstore_commit(&st);
	rstore_flush(&st);
	rstore_concept(&st, 3, 2, "red truck", V3b);
	rstore_delete(&st, 4, 3);
	rstore_concept(&st, 7, 6, "yellow apple", V7);
	rstore_commit(&st);
	rstore_flush(&st);
	ck_assert_ok(sutra_reader_open(st.path, &rd));
	ck_assert_ok(sutra_snapshot_acquire(rd, 0, &before));
	rstore_concept(&st, 2, 1, "green pear", V2b);
	rstore_delete(&st, 5, 4);
	rstore_concept(&st, 8, 7, "red cherry", V8);
	rstore_concept(&st, 9, 8, "apple apple", V9);
	rstore_commit(&st);
	ck_assert_ok(sutra_snapshot_acquire(rd, 0, &now));
	ck_assert_uint_eq(sutra_snapshot_epoch(before), 4);
	ck_assert_uint_eq(sutra_snapshot_epoch(now), 5);
}

static void teardown(void)
{
	sutra_snapshot_release(before);
	sutra_snapshot_release(now);
	sutra_reader_close(rd);
	rstore_finish(&st);
}

static uint32_t number_of(const uint8_t id[16])
{
	uint32_t n;
	memcpy(&n, id, sizeof n);
	return n;
}

/* The hits' concept numbers, e.g. "1 8 7". */
static void numbers(const struct sutra_search_hit *h, size_t n, char *out)
{
	out[0] = 0;
	for (size_t i = 0; i < n; i++) {
		char one[16];
		snprintf(one, sizeof one, "%s%u", i ? " " : "", number_of(h[i].id));
		strcat(out, one);
		ck_assert_uint_eq(h[i].ordinal, number_of(h[i].id) - 1);
		ck_assert(h[i].strength == 1.0f + (float)(number_of(h[i].id) % 7));
	}
}

static int vsearch(const sutra_snapshot *s, const float *q, uint32_t k, uint32_t ef,
		   const roaring_bitmap_t *filter, struct sutra_search_hit *out, char *got)
{
	size_t n = 0;
	int rc = sutra_snapshot_vector_search(s, q, DIM, k, ef, filter, out, &n);
	got[0] = 0;
	if (rc == 0)
		numbers(out, n, got);
	return rc;
}

/* ---- Vector search -------------------------------------------------------------- */

/* Segment hits come from the graph's distances, computed otherwise. */
static int near(float a, float b)
{
	return fabsf(a - b) < 1e-5f;
}

/* The tail is compared one by one, each segment's graph searched; an id
 * that a newer layer updates or deletes is found by its new vector only. */
START_TEST(test_search_vector_layers)
{
	struct sutra_search_hit h[16];
	char got[128];
	build();
	ck_assert_ok(vsearch(now, V1, 10, 0, NULL, h, got));
	ck_assert_str_eq(got, "1 8 7 9 2 3");
	ck_assert_ok(vsearch(before, V1, 10, 0, NULL, h, got));
	ck_assert_str_eq(got, "1 2 7 5 3");
	/* Most similar first, and an exact cosine for a tail hit: the
	 * stored norm gives the same float as computing it. */
	ck_assert_ok(vsearch(now, V1, 10, 0, NULL, h, got));
	float qn[DIM];
	ck_assert_ok(util_normalize(V1, qn, DIM));
	ck_assert(h[1].similarity == util_dot(qn, V8, DIM) / sqrtf(util_norm2(V8, DIM)));
	ck_assert(h[3].similarity == util_dot(qn, V9, DIM) / sqrtf(util_norm2(V9, DIM)));
	ck_assert(h[4].similarity == 0.0f);
	ck_assert(near(h[0].similarity, 1.0f));
	ck_assert(near(h[2].similarity, 0.8f / sqrtf(0.68f)));
	ck_assert(near(h[5].similarity, -1.0f));
	for (int i = 0; i < 6; i++) {
		ck_assert_uint_eq(h[i].matched, 0);
		if (i)
			ck_assert(h[i - 1].similarity >= h[i].similarity);
	}
	/* The new vector of 2, from the tail; its old one is not found. */
	ck_assert_ok(vsearch(now, V2b, 1, 0, NULL, h, got));
	ck_assert_str_eq(got, "2");
	ck_assert(h[0].similarity == 1.0f);
	/* Not 3 by its old vector, nor the deleted 5. */
	static const float q[DIM] = { 0.0f, 1.0f, 0.0f, 0.1f };
	ck_assert_ok(vsearch(now, q, 3, 0, NULL, h, got));
	ck_assert_str_eq(got, "9 2 8");
	ck_assert_ok(vsearch(before, q, 2, 0, NULL, h, got));
	ck_assert_str_eq(got, "5 2");
	teardown();
}
END_TEST

START_TEST(test_search_vector_k_and_ef)
{
	struct sutra_search_hit h[SUTRA_MAX_K];
	char got[128], all[128];
	size_t n;
	build();
	ck_assert_ok(vsearch(now, V1, 2, 0, NULL, h, got));
	ck_assert_str_eq(got, "1 8");
	ck_assert_ok(vsearch(now, V1, 1, 0, NULL, h, got));
	ck_assert_str_eq(got, "1");
	ck_assert_ok(vsearch(now, V1, SUTRA_MAX_K, 0, NULL, h, all));
	ck_assert_str_eq(all, "1 8 7 9 2 3");
	/* A beam narrower than k is widened to k. */
	ck_assert_ok(vsearch(now, V1, 6, 1, NULL, h, got));
	ck_assert_str_eq(got, all);
	ck_assert_ok(vsearch(now, V1, 6, 100000, NULL, h, got));
	ck_assert_str_eq(got, all);

	ck_assert_err(sutra_snapshot_vector_search(now, V1, DIM, 0, 0, NULL, h, &n), SUTRA_EVALUE);
	ck_assert_err(sutra_snapshot_vector_search(now, V1, DIM, SUTRA_MAX_K + 1, 0, NULL, h, &n),
		      SUTRA_EVALUE);
	ck_assert_err(sutra_snapshot_vector_search(now, V1, DIM - 1, 3, 0, NULL, h, &n),
		      SUTRA_EDIM);
	static const float zero[DIM] = { 0 };
	const float nan[DIM] = { NAN, 0.0f, 0.0f, 0.0f };
	ck_assert_err(sutra_snapshot_vector_search(now, zero, DIM, 3, 0, NULL, h, &n),
		      SUTRA_EVALUE);
	ck_assert_err(sutra_snapshot_vector_search(now, nan, DIM, 3, 0, NULL, h, &n),
		      SUTRA_EVALUE);
	ck_assert_err(sutra_snapshot_vector_search(now, NULL, DIM, 3, 0, NULL, h, &n),
		      SUTRA_EVALUE);
	ck_assert_err(sutra_snapshot_vector_search(now, V1, DIM, 3, 0, NULL, NULL, &n),
		      SUTRA_EVALUE);
	teardown();
}
END_TEST

/* A small filter is scanned exactly, a big one guides the graph search;
 * both leave out what is not in it, and what is shadowed or deleted. */
START_TEST(test_search_vector_filters)
{
	struct sutra_search_hit h[16];
	char got[128];
	build();
	roaring_bitmap_t *small = roaring_bitmap_of(5, 0, 1, 3, 4, 7);
	ck_assert_ok(vsearch(now, V1, 10, 0, small, h, got));
	ck_assert_str_eq(got, "1 8 2");
	ck_assert_ok(vsearch(before, V1, 10, 0, small, h, got));
	ck_assert_str_eq(got, "1 2 5");
	ck_assert_ok(vsearch(now, V1, 2, 0, small, h, got));
	ck_assert_str_eq(got, "1 8");
	/* Over 4096 ordinals (most of them unknown), without ordinal 0. */
	roaring_bitmap_t *big = roaring_bitmap_from_range(1, 10000, 1);
	ck_assert_ok(vsearch(now, V1, 10, 0, big, h, got));
	ck_assert_str_eq(got, "8 7 9 2 3");
	ck_assert_ok(vsearch(before, V1, 10, 0, big, h, got));
	ck_assert_str_eq(got, "2 7 5 3");
	roaring_bitmap_t *none = roaring_bitmap_create();
	ck_assert_ok(vsearch(now, V1, 10, 0, none, h, got));
	ck_assert_str_eq(got, "");
	/* A text filter: the concepts that hold "apple" now. */
	roaring_bitmap_t *apple = NULL;
	ck_assert_ok(sutra_snapshot_text_filter(now, "apple", 5, SUTRA_TEXT_ALL, &apple));
	ck_assert_uint_eq(roaring_bitmap_get_cardinality(apple), 4);
	ck_assert(roaring_bitmap_contains(apple, 0) && roaring_bitmap_contains(apple, 5) &&
		  roaring_bitmap_contains(apple, 6) && roaring_bitmap_contains(apple, 8));
	ck_assert_ok(vsearch(now, V1, 10, 0, apple, h, got));
	ck_assert_str_eq(got, "1 7 9");
	roaring_bitmap_free(small);
	roaring_bitmap_free(big);
	roaring_bitmap_free(none);
	roaring_bitmap_free(apple);
	teardown();
}
END_TEST

/* ---- Text search ------------------------------------------------------------------ */

static int tsearch(const sutra_snapshot *s, const char *q, enum sutra_text_mode mode,
		   size_t limit, char *got, size_t *total)
{
	struct sutra_search_hit h[16];
	size_t n = 0;
	int rc = sutra_snapshot_text_search(s, q, strlen(q), mode, limit, h, &n, total);
	got[0] = 0;
	if (rc == 0)
		numbers(h, n, got);
	for (size_t i = 0; rc == 0 && i < n; i++)
		ck_assert(h[i].similarity == 0.0f);
	return rc;
}

/* Hits rank by terms matched, then strength (1 + number % 7 here). */
START_TEST(test_search_text_and_or)
{
	char got[128];
	size_t total;
	build();
	ck_assert_ok(tsearch(now, "apple", SUTRA_TEXT_ALL, 16, got, &total));
	ck_assert_str_eq(got, "6 9 1 7");
	ck_assert_uint_eq(total, 4);
	ck_assert_ok(tsearch(now, "red apple", SUTRA_TEXT_ALL, 16, got, &total));
	ck_assert_str_eq(got, "1");
	ck_assert_ok(tsearch(now, "Red, APPLE!", SUTRA_TEXT_ANY, 16, got, &total));
	ck_assert_str_eq(got, "1 6 3 9 8 7");
	ck_assert_uint_eq(total, 6);
	ck_assert_ok(tsearch(now, "red apple", SUTRA_TEXT_ANY, 2, got, &total));
	ck_assert_str_eq(got, "1 6");
	ck_assert_uint_eq(total, 6);
	/* Old words of updated concepts, and words of deleted ones, match
	 * nothing; an older snapshot still finds them. */
	ck_assert_ok(tsearch(now, "car", SUTRA_TEXT_ANY, 16, got, &total));
	ck_assert_str_eq(got, "");
	ck_assert_ok(tsearch(now, "sky pie", SUTRA_TEXT_ANY, 16, got, &total));
	ck_assert_str_eq(got, "");
	ck_assert_ok(tsearch(before, "sky pie car", SUTRA_TEXT_ANY, 16, got, &total));
	ck_assert_str_eq(got, "5"); /* 3 and 4 changed in segment 1 already */
	ck_assert_ok(tsearch(before, "apple", SUTRA_TEXT_ALL, 16, got, &total));
	ck_assert_str_eq(got, "6 5 2 1 7");
	ck_assert_ok(tsearch(now, "green", SUTRA_TEXT_ANY, 16, got, &total));
	ck_assert_str_eq(got, "2");
	ck_assert_ok(tsearch(now, "pear green", SUTRA_TEXT_ALL, 16, got, &total));
	ck_assert_str_eq(got, "2");
	ck_assert_ok(tsearch(before, "pear", SUTRA_TEXT_ANY, 16, got, &total));
	ck_assert_str_eq(got, "");
	ck_assert_ok(tsearch(now, "apple unknownword", SUTRA_TEXT_ALL, 16, got, &total));
	ck_assert_str_eq(got, "");
	ck_assert_uint_eq(total, 0);
	teardown();
}
END_TEST

START_TEST(test_search_text_bad_queries)
{
	char got[128], many[1024];
	size_t total = 99;
	build();
	ck_assert_ok(tsearch(now, "", SUTRA_TEXT_ANY, 16, got, &total));
	ck_assert_str_eq(got, "");
	ck_assert_uint_eq(total, 0);
	ck_assert_ok(tsearch(now, " ,;- ", SUTRA_TEXT_ALL, 16, got, &total));
	ck_assert_str_eq(got, "");
	ck_assert_err(tsearch(now, "apple", (enum sutra_text_mode)2, 16, got, &total),
		      SUTRA_EVALUE);
	ck_assert_err(tsearch(now, "apple", SUTRA_TEXT_ANY, 0, got, &total), SUTRA_EVALUE);
	ck_assert_err(tsearch(now, "apple", SUTRA_TEXT_ANY, SUTRA_MAX_K + 1, got, &total),
		      SUTRA_EVALUE);
	/* 65 distinct terms are too many; 64 are not. */
	many[0] = 0;
	for (int i = 0; i < 64; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), "w%d ", i);
	ck_assert_ok(tsearch(now, many, SUTRA_TEXT_ANY, 16, got, &total));
	strcat(many, "apple");
	ck_assert_err(tsearch(now, many, SUTRA_TEXT_ANY, 16, got, &total), SUTRA_EVALUE);
	roaring_bitmap_t *bm = NULL;
	ck_assert_err(sutra_snapshot_text_filter(now, many, strlen(many), SUTRA_TEXT_ANY, &bm),
		      SUTRA_EVALUE);
	ck_assert_ptr_null(bm);
	teardown();
}
END_TEST

TCHECK_MAIN("reader", "search", 60, test_search_vector_layers, test_search_vector_k_and_ef,
	    test_search_vector_filters, test_search_text_and_or, test_search_text_bad_queries)
