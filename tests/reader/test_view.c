/* SPDX-License-Identifier: MIT */
/* The reader's view: the tail index, newer versions and deletes shadowing older ones, layers read newest first. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "reader/internal.h"
#include "sutra/reader.h"
#include "tests/common/tcheck.h"
#include "tests/reader/rstore.h"
#include "util/vecdist.h"

#define DIM 4u

static sutra_reader *open_reader(const struct rstore *st)
{
	sutra_reader *r = NULL;
	ck_assert_ok(sutra_reader_open(st->path, &r));
	return r;
}

static sutra_snapshot *snap(sutra_reader *r)
{
	sutra_snapshot *s = NULL;
	ck_assert_ok(sutra_snapshot_acquire(r, 0, &s));
	return s;
}

/* rdr_lookup of concept n: 1 with *f, or 0. */
static int lookup(const sutra_snapshot *s, uint32_t n, struct found *f)
{
	uint8_t id[16];
	rstore_id(id, n);
	int rc = rdr_lookup(s, id, f);
	ck_assert_int_ge(rc, 0);
	return rc;
}

/* Asserts that concept n is live in s with that content; returns where. */
static struct found expect_content(const sutra_snapshot *s, uint32_t n, const char *content)
{
	struct found f;
	struct sutra_concept_view cv;
	ck_assert_msg(lookup(s, n, &f) == 1, "concept %u not found", n);
	ck_assert_ok(rdr_view_of(s, &f, &cv));
	ck_assert_uint_eq(cv.content_len, strlen(content));
	ck_assert_mem_eq(cv.content, content, cv.content_len);
	uint8_t id[16];
	rstore_id(id, n);
	ck_assert_mem_eq(cv.id, id, 16);
	return f;
}

static int shadowed(const sutra_snapshot *s, uint32_t j, uint32_t n)
{
	uint8_t id[16];
	rstore_id(id, n);
	int rc = rdr_shadowed(s, j, id);
	ck_assert_int_ge(rc, 0);
	return rc;
}

/* foreach: a bit per concept number seen, failing on a repeat. */
struct seen {
	uint64_t bits;
	int repeat;
};

static int note(void *arg, const struct sutra_concept_view *cv)
{
	struct seen *sn = arg;
	uint32_t n;
	memcpy(&n, cv->id, sizeof n);
	if (n >= 64 || (sn->bits & (1ull << n)))
		sn->repeat = 1;
	else
		sn->bits |= 1ull << n;
	return 0;
}

static uint64_t live_set(const sutra_snapshot *s)
{
	struct seen sn = { 0 };
	ck_assert_ok(sutra_snapshot_foreach(s, note, &sn));
	ck_assert_int_eq(sn.repeat, 0);
	return sn.bits;
}

/* A newer version in the tail shadows the older one for snapshots of its
 * epoch on, while an older snapshot keeps its own: the view grows in
 * place, and each version keeps the norm of its embedding. */
START_TEST(test_view_newer_version_shadows_older)
{
	static const float e1[DIM] = { 1.0f, 0.0f, 0.0f, 0.0f };
	static const float e2[DIM] = { 0.0f, 3.0f, 4.0f, 0.0f };
	struct rstore st;
	rstore_init(&st, DIM);
	rstore_concept(&st, 1, 0, "first words", e1);
	rstore_concept(&st, 2, 1, "no vector", NULL);
	rstore_commit(&st);
	sutra_reader *r = open_reader(&st);
	sutra_snapshot *s1 = snap(r);
	rstore_concept(&st, 1, 0, "second words", e2);
	rstore_commit(&st);
	sutra_snapshot *s2 = snap(r);

	ck_assert_uint_eq(sutra_snapshot_epoch(s1), 1);
	ck_assert_uint_eq(sutra_snapshot_epoch(s2), 2);
	ck_assert_ptr_eq(s1->v, s2->v); /* same segments: the tail index grew */
	ck_assert_uint_eq(s2->nids, 2);
	uint8_t id[16];
	rstore_id(id, 1); /* ids in the order the tail first mentions them */
	ck_assert_mem_eq(rdr_tail_id(s2->v, 0), id, 16);
	rstore_id(id, 2);
	ck_assert_mem_eq(rdr_tail_id(s2->v, 1), id, 16);

	struct found f1 = expect_content(s1, 1, "first words");
	struct found f2 = expect_content(s2, 1, "second words");
	ck_assert_ptr_null(f1.seg);
	ck_assert_ptr_null(f2.seg);
	ck_assert_uint_eq(f1.ordinal, 0);
	ck_assert_uint_eq(f2.ordinal, 0);
	ck_assert_uint_ne(f1.record, f2.record);
	/* Each version has its own norm, the very float a search would
	 * compute from the record. */
	ck_assert_uint_ne(f1.ver, f2.ver);
	ck_assert(rdr_tail_norm(s1->v, f1.ver) == sqrtf(util_norm2(e1, DIM)));
	ck_assert(rdr_tail_norm(s2->v, f2.ver) == sqrtf(util_norm2(e2, DIM)));
	ck_assert(rdr_tail_norm(s2->v, f2.ver) == 5.0f);
	struct found f0 = expect_content(s2, 2, "no vector");
	ck_assert(rdr_tail_norm(s2->v, f0.ver) == 0.0f);

	ck_assert_uint_eq(live_set(s1), (1u << 1) | (1u << 2));
	ck_assert_uint_eq(live_set(s2), (1u << 1) | (1u << 2));
	sutra_snapshot_release(s1);
	sutra_snapshot_release(s2);
	sutra_reader_close(r);
	rstore_finish(&st);
}
END_TEST

/* A delete in the tail shadows a segment, a delete in a newer segment an
 * older one; the ordinal still names its id. */
START_TEST(test_view_deletes_shadow)
{
	struct rstore st;
	uint8_t id[16];
	rstore_init(&st, DIM);
	rstore_concept(&st, 1, 0, "one", NULL);
	rstore_concept(&st, 2, 1, "two", NULL);
	rstore_concept(&st, 3, 2, "three", NULL);
	rstore_concept(&st, 4, 3, "four", NULL);
	rstore_commit(&st);
	rstore_flush(&st);         /* segment 0: epoch 1 */
	rstore_delete(&st, 2, 1);
	rstore_commit(&st);
	rstore_flush(&st);         /* segment 1: epoch 3, the delete of 2 */
	sutra_reader *r = open_reader(&st);
	sutra_snapshot *before = snap(r);
	rstore_delete(&st, 3, 2);  /* in the tail */
	rstore_commit(&st);
	sutra_snapshot *s = snap(r);

	ck_assert_uint_eq(s->v->nseg, 2);
	ck_assert_ptr_eq(before->v, s->v);
	struct found f;
	ck_assert_int_eq(lookup(s, 1, &f), 1);
	ck_assert_ptr_eq(f.seg, s->v->seg[0]);
	ck_assert_int_eq(lookup(s, 2, &f), 0);
	ck_assert_int_eq(lookup(s, 3, &f), 0);
	ck_assert_int_eq(lookup(s, 4, &f), 1);
	expect_content(before, 3, "three");
	ck_assert_int_eq(lookup(before, 2, &f), 0);

	rstore_id(id, 3);
	ck_assert_ok(sutra_snapshot_contains(s, id));
	ck_assert_int_eq(sutra_snapshot_contains(before, id), 1);
	struct sutra_concept_view cv;
	ck_assert_err(sutra_snapshot_get(s, id, &cv), SUTRA_ENOTFOUND);

	/* Which layers a newer one decides. */
	ck_assert_int_eq(shadowed(s, 0, 1), 0);
	ck_assert_int_eq(shadowed(s, 0, 2), 1); /* segment 1's tombstone */
	ck_assert_int_eq(shadowed(s, 0, 3), 1); /* the tail's delete */
	ck_assert_int_eq(shadowed(s, 1, 2), 0);
	ck_assert_int_eq(shadowed(s, 1, 3), 1);
	ck_assert_int_eq(shadowed(before, 0, 3), 0);

	/* A deleted concept's ordinal still names it. */
	uint8_t got[16];
	rstore_id(id, 2);
	ck_assert_int_eq(rdr_find_id(s, 1, got), 1);
	ck_assert_mem_eq(got, id, 16);
	ck_assert_ok(rdr_find_id(s, 4, got));

	ck_assert_uint_eq(live_set(s), (1u << 1) | (1u << 4));
	ck_assert_uint_eq(live_set(before), (1u << 1) | (1u << 3) | (1u << 4));
	sutra_snapshot_release(before);
	sutra_snapshot_release(s);
	sutra_reader_close(r);
	rstore_finish(&st);
}
END_TEST

/* The tail decides first, then segments newest first; a new segment list
 * makes a new view, and a snapshot of the old one keeps reading it. */
START_TEST(test_view_layers_newest_first)
{
	struct rstore st;
	rstore_init(&st, DIM);
	rstore_concept(&st, 1, 0, "a0", NULL);
	rstore_concept(&st, 2, 1, "b0", NULL);
	rstore_concept(&st, 3, 2, "c0", NULL);
	rstore_commit(&st);
	rstore_flush(&st);          /* segment 0 */
	rstore_concept(&st, 1, 0, "a1", NULL);
	rstore_concept(&st, 2, 1, "b1", NULL);
	rstore_commit(&st);
	sutra_reader *r = open_reader(&st);
	sutra_snapshot *old = snap(r);
	rstore_flush(&st);          /* segment 1 */
	rstore_concept(&st, 1, 0, "a2", NULL);
	rstore_concept(&st, 4, 3, "d0", NULL); /* born in the tail */
	rstore_commit(&st);
	sutra_snapshot *s = snap(r);

	ck_assert_ptr_ne(old->v, s->v);
	ck_assert_uint_eq(old->v->nseg, 1);
	ck_assert_uint_eq(s->v->nseg, 2);
	struct sutra_reader_stats stats;
	sutra_snapshot_stats(s, &stats);
	ck_assert_uint_eq(stats.segment_count, 2);
	ck_assert_uint_eq(stats.concept_count, 4);

	struct found f = expect_content(s, 1, "a2");
	ck_assert_ptr_null(f.seg);
	f = expect_content(s, 2, "b1");
	ck_assert_ptr_eq(f.seg, s->v->seg[1]);
	f = expect_content(s, 3, "c0");
	ck_assert_ptr_eq(f.seg, s->v->seg[0]);
	f = expect_content(s, 4, "d0");
	ck_assert_ptr_null(f.seg);
	ck_assert_uint_eq(f.ordinal, 3);

	ck_assert_int_eq(shadowed(s, 0, 1), 1);
	ck_assert_int_eq(shadowed(s, 0, 2), 1);
	ck_assert_int_eq(shadowed(s, 0, 3), 0);
	ck_assert_int_eq(shadowed(s, 1, 1), 1);
	ck_assert_int_eq(shadowed(s, 1, 2), 0);

	/* The old snapshot: its tail had a1 and b1 over segment 0. */
	f = expect_content(old, 1, "a1");
	ck_assert_ptr_null(f.seg);
	expect_content(old, 2, "b1");
	expect_content(old, 3, "c0");
	ck_assert_int_eq(lookup(old, 4, &f), 0);

	/* Ordinals: from a segment, and born in the tail. */
	uint8_t id[16], got[16];
	for (uint32_t n = 1; n <= 4; n++) {
		rstore_id(id, n);
		ck_assert_int_eq(rdr_find_id(s, n - 1, got), 1);
		ck_assert_mem_eq(got, id, 16);
	}
	ck_assert_ok(rdr_find_id(old, 3, got));
	ck_assert_ok(rdr_find_id(s, 4, got));

	ck_assert_uint_eq(live_set(s), 0x1Eu);
	ck_assert_uint_eq(live_set(old), 0x0Eu);
	sutra_snapshot_release(old);
	sutra_snapshot_release(s);
	sutra_reader_close(r);
	rstore_finish(&st);
}
END_TEST

/* An unknown id is absent from every layer. */
START_TEST(test_view_unknown_id)
{
	struct rstore st;
	uint8_t id[16];
	rstore_init(&st, DIM);
	rstore_concept(&st, 1, 0, "one", NULL);
	rstore_commit(&st);
	rstore_flush(&st);
	rstore_concept(&st, 2, 1, "two", NULL);
	rstore_commit(&st);
	sutra_reader *r = open_reader(&st);
	sutra_snapshot *s = snap(r);
	struct found f;
	ck_assert_int_eq(lookup(s, 9, &f), 0);
	ck_assert_int_eq(shadowed(s, 0, 9), 0);
	rstore_id(id, 9);
	ck_assert_ok(sutra_snapshot_contains(s, id));
	sutra_snapshot_release(s);
	sutra_reader_close(r);
	rstore_finish(&st);
}
END_TEST

TCHECK_MAIN("reader", "view", 60, test_view_newer_version_shadows_older, test_view_deletes_shadow,
	    test_view_layers_newest_first, test_view_unknown_id)
