/* SPDX-License-Identifier: MIT */
/* Verification of the replay rules: logs whose checksums are right but whose content is not. */
#include <stdlib.h>
#include <string.h>

#include "layout/layout.h"
#include "layout/segindex.h"
#include "tests/common/tcheck.h"
#include "tests/common/tstore.h"

static struct tstore ts;
static struct layout_builder b;

static void setup(void)
{
	ck_assert_ok(tstore_init_empty(&ts, 2));
	layout_builder_init(&b, 2);
}

static void teardown(void)
{
	layout_builder_finish(&b);
	tstore_finish(&ts);
}

static struct layout_concept concept(int n, uint32_t ordinal)
{
	struct layout_concept c;
	memset(&c, 0, sizeof c);
	memset(c.id, n, 16);
	c.ordinal = ordinal;
	c.strength = 1.0f;
	c.confidence = 1.0f;
	c.content = "c";
	c.content_len = 1;
	return c;
}

static struct layout_association edge(int s, uint32_t so, int d, uint32_t dof)
{
	struct layout_association a;
	memset(&a, 0, sizeof a);
	memset(a.src, s, 16);
	memset(a.dst, d, 16);
	a.src_ordinal = so;
	a.dst_ordinal = dof;
	a.confidence = 1.0f;
	a.weight = 1.0f;
	return a;
}

static void add_c(int n, uint32_t ordinal)
{
	struct layout_concept c = concept(n, ordinal);
	ck_assert_ok(layout_builder_add_concept(&b, &c));
}

static void add_a(int s, uint32_t so, int d, uint32_t dof)
{
	struct layout_association a = edge(s, so, d, dof);
	ck_assert_ok(layout_builder_add_association(&b, &a));
}

static void commit(uint64_t concepts, uint64_t assocs, uint32_t next)
{
	ck_assert_ok(tstore_commit(&ts, &b, concepts, assocs, next));
}

/* Opens the image and verifies it; returns the verify result and the
 * problem text in *pb. */
static int verify(struct sutra_detail *pb)
{
	struct layout_view v;
	int rc = layout_open(ts.buf, ts.len, &v, pb);
	if (rc)
		return rc;
	return layout_verify(&v, NULL, pb);
}

START_TEST(test_verify_accepts_valid_history)
{
	struct sutra_detail pb;
	add_c(1, 0);
	add_c(2, 1);
	add_a(1, 0, 2, 1);
	add_a(1, 0, 2, 1); /* upsert: still one association */
	commit(2, 1, 2);
	add_c(1, 0); /* update keeps the ordinal */
	struct layout_association a = edge(1, 0, 2, 1);
	ck_assert_ok(layout_builder_add_association_delete(&b, &a));
	ck_assert_ok(layout_builder_add_concept_delete(&b, a.dst, 1));
	commit(1, 0, 2);
	add_c(2, 2); /* re-learnt after delete: a new ordinal */
	commit(2, 0, 3);
	ck_assert_msg(verify(&pb) == 0, "%s", pb.what);
}
END_TEST

/* A commit block swapped for another one of the same offset, epoch and
 * length (a stale block left by an earlier life of the file) must not pass
 * for the one the meta slot published: the meta names its checksum. */
START_TEST(test_open_rejects_swapped_commit_block)
{
	struct sutra_detail pb;
	struct layout_view v;
	const void *alt;
	size_t alt_len;
	add_c(1, 0);
	commit(1, 0, 1);
	add_c(2, 1);
	commit(2, 0, 2);
	uint64_t at = ts.meta.last_block_offset;
	struct layout_concept c = concept(3, 1); /* same size, other id */
	ck_assert_ok(layout_builder_add_concept(&b, &c));
	ck_assert_ok(layout_builder_seal(&b, 2, &alt, &alt_len));
	ck_assert_uint_eq(at + alt_len, ts.len);
	memcpy(ts.buf + at, alt, alt_len);

	ck_assert_ok(layout_open(ts.buf, ts.len, &v, &pb));
	ck_assert_uint_eq(v.meta.epoch, 1); /* fell back to the older slot */
	ck_assert(v.fell_back);
	ck_assert_msg(strstr(v.fallback_problem.what, "payload checksum") != NULL, "%s",
		      v.fallback_problem.what);
	ck_assert_err(layout_verify(&v, NULL, &pb), SUTRA_ECORRUPT);
}
END_TEST

/* Relaxed durability: slot 1 keeps the last synced epoch (1) while slot 0
 * publishes epochs 2 and 3 unsynced, naming durable_end = the end of epoch
 * 1. Open must check every block since durable_end, not only the last. */
static void relaxed_history(uint64_t *epoch2_block)
{
	unsigned char *slot0 = ts.buf + LAYOUT_META_OFFSET;
	unsigned char *slot1 = slot0 + LAYOUT_META_SLOT_SIZE;
	add_c(1, 0);
	commit(1, 0, 1);
	struct layout_meta m1 = ts.meta;
	add_c(2, 1);
	commit(2, 0, 2);
	*epoch2_block = ts.meta.last_block_offset;
	add_c(3, 2);
	commit(3, 0, 3);
	struct layout_meta m3 = ts.meta;
	m3.durable_end = m1.published_end;
	layout_meta_encode(&m3, slot0);
	layout_meta_encode(&m1, slot1);
}

START_TEST(test_open_accepts_unsynced_epochs_in_one_slot)
{
	struct sutra_detail pb;
	struct layout_view v;
	uint64_t e2;
	relaxed_history(&e2);
	ck_assert_ok(layout_open(ts.buf, ts.len, &v, &pb));
	ck_assert_uint_eq(v.meta.epoch, 3);
	ck_assert_int_eq(v.current, 0);
	ck_assert(!v.fell_back);
	ck_assert_msg(layout_verify(&v, NULL, &pb) == 0, "%s", pb.what);
}
END_TEST

START_TEST(test_open_falls_back_over_a_lost_unsynced_block)
{
	struct sutra_detail pb;
	struct layout_view v;
	uint64_t e2;
	relaxed_history(&e2);
	/* Power loss: epoch 3's block and meta reached the disk, epoch 2's
	 * block did not. Only the walk from durable_end sees it. */
	memset(ts.buf + e2 + LAYOUT_BLOCK_HEADER_SIZE, 0, 8);
	ck_assert_ok(layout_open(ts.buf, ts.len, &v, &pb));
	ck_assert_uint_eq(v.meta.epoch, 1);
	ck_assert(v.fell_back);
	ck_assert_uint_eq(v.fallback_problem.offset, e2 + LAYOUT_BLOCK_HEADER_SIZE);
}
END_TEST

START_TEST(test_open_rejects_durable_end_off_a_boundary)
{
	struct sutra_detail pb;
	struct layout_view v;
	uint64_t e2;
	relaxed_history(&e2);
	struct layout_meta m3 = ts.meta;
	m3.durable_end = e2 + LAYOUT_BLOCK_ALIGN; /* inside epoch 2's block */
	layout_meta_encode(&m3, ts.buf + LAYOUT_META_OFFSET);
	ck_assert_ok(layout_open(ts.buf, ts.len, &v, &pb));
	ck_assert_uint_eq(v.meta.epoch, 1);
	ck_assert(v.fell_back);
}
END_TEST

START_TEST(test_verify_rejects_wrong_new_ordinal)
{
	struct sutra_detail pb;
	add_c(1, 1);
	commit(1, 0, 2);
	ck_assert_err(verify(&pb), SUTRA_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(pb.what, "expected 0"));
}
END_TEST

START_TEST(test_verify_rejects_ordinal_change_on_update)
{
	struct sutra_detail pb;
	add_c(1, 0);
	add_c(1, 1);
	commit(1, 0, 1);
	ck_assert_err(verify(&pb), SUTRA_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(pb.what, "changes its ordinal"));
}
END_TEST

START_TEST(test_verify_rejects_unknown_endpoint)
{
	struct sutra_detail pb;
	add_c(1, 0);
	add_a(1, 0, 9, 1);
	commit(1, 1, 1);
	ck_assert_err(verify(&pb), SUTRA_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(pb.what, "not live"));
}
END_TEST

START_TEST(test_verify_rejects_missing_association_delete)
{
	struct sutra_detail pb;
	add_c(1, 0);
	add_c(2, 1);
	struct layout_association a = edge(1, 0, 2, 1);
	ck_assert_ok(layout_builder_add_association_delete(&b, &a));
	commit(2, 0, 2);
	ck_assert_err(verify(&pb), SUTRA_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(pb.what, "does not exist"));
}
END_TEST

START_TEST(test_verify_rejects_concept_delete_with_edges)
{
	struct sutra_detail pb;
	uint8_t id[16];
	add_c(1, 0);
	add_c(2, 1);
	add_a(1, 0, 2, 1);
	memset(id, 2, 16);
	ck_assert_ok(layout_builder_add_concept_delete(&b, id, 1));
	commit(1, 1, 2);
	ck_assert_err(verify(&pb), SUTRA_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(pb.what, "association ends remain"));
}
END_TEST

START_TEST(test_verify_rejects_wrong_meta_counts)
{
	struct sutra_detail pb;
	add_c(1, 0);
	commit(2, 0, 1);
	ck_assert_err(verify(&pb), SUTRA_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(pb.what, "the log gives"));
}
END_TEST

START_TEST(test_verify_rejects_wrong_dimension_record)
{
	/* A builder of another dimension writes a record whose checksums are
	 * right but whose vector does not fit this store. */
	struct sutra_detail pb;
	struct layout_builder other;
	const float e[3] = { 1, 2, 3 };
	struct layout_concept c = concept(1, 0);
	c.embedding = e;
	c.vector_dim = 3;
	layout_builder_init(&other, 3);
	ck_assert_ok(layout_builder_add_concept(&other, &c));
	ck_assert_ok(tstore_commit(&ts, &other, 1, 0, 1));
	layout_builder_finish(&other);
	ck_assert_err(verify(&pb), SUTRA_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(pb.what, "dimension"));
}
END_TEST

START_TEST(test_verify_rejects_epoch_gap)
{
	/* Two blocks sealed with epochs 1 and 3: the meta for 3 points at a
	 * valid block, but the log skips epoch 2. */
	struct sutra_detail pb;
	add_c(1, 0);
	commit(1, 0, 1);
	ts.meta.epoch = 2; /* the next commit is sealed as epoch 3 */
	add_c(2, 1);
	commit(2, 0, 2);
	ck_assert_err(verify(&pb), SUTRA_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(pb.what, "epoch"));
}
END_TEST

/* Appends a segment block of epoch 1 with one 32-byte section and returns
 * its offset. */
/* Appends a segment of epoch 1 (built from the log so far); its length
 * goes to *len. */
static uint64_t add_segment_len(uint64_t *len)
{
	struct layout_segbuild_in in = {
		.base = ts.buf, .end = ts.len, .vector_dim = 2,
		.from = LAYOUT_DATA_OFFSET, .to = ts.len,
		.first_epoch = 1, .last_epoch = 1, .next_ordinal = ts.meta.next_ordinal,
		.base_segment = 1,
	};
	unsigned char *blk;
	struct sutra_detail pb;
	ck_assert_ok(layout_segment_build(&in, &blk, len, &pb));
	uint64_t off = ts.len;
	ck_assert_ok(tstore_append(&ts, blk, *len));
	free(blk);
	return off;
}

static uint64_t add_segment(void)
{
	uint64_t len;
	return add_segment_len(&len);
}

START_TEST(test_verify_accepts_referenced_segment)
{
	struct sutra_detail pb;
	add_c(1, 0);
	commit(1, 0, 1);
	uint64_t len, off = add_segment_len(&len);
	ts.meta.segment_count = 1;
	ts.meta.segments[0].offset = off;
	ts.meta.segments[0].length = len;
	ts.meta.tail_start = off;
	add_c(2, 1);
	commit(2, 0, 2);
	ck_assert_msg(verify(&pb) == 0, "%s", pb.what);
	/* A damaged section of a listed segment is found. */
	ts.buf[off + len - 200] ^= 1;
	ck_assert_err(verify(&pb), SUTRA_ECORRUPT);
}
END_TEST

/* Once a segment covers epoch 1 and both slots start their walks after
 * it (log_start), epoch 1's block may be gone (zeros): verify takes the
 * state from the segment. A log_start inside a block is refused. */
START_TEST(test_verify_accepts_freed_log_before_log_start)
{
	struct sutra_detail pb;
	add_c(1, 0);
	add_c(2, 1);
	add_a(1, 0, 2, 1);
	commit(2, 1, 2);
	uint64_t len, off = add_segment_len(&len);
	ts.meta.segment_count = 1;
	ts.meta.segments[0].offset = off;
	ts.meta.segments[0].length = len;
	ts.meta.tail_start = off;
	ts.meta.log_start = off;
	add_c(3, 2);
	commit(3, 1, 3);
	commit(3, 1, 3); /* the other slot gets log_start too */
	ck_assert_msg(verify(&pb) == 0, "%s", pb.what);
	memset(ts.buf + LAYOUT_DATA_OFFSET, 0, off - LAYOUT_DATA_OFFSET);
	ck_assert_msg(verify(&pb) == 0, "%s", pb.what);
	/* Without log_start the zeros are damage. */
	ts.meta.log_start = 0;
	commit(3, 1, 3);
	commit(3, 1, 3);
	ck_assert_err(verify(&pb), SUTRA_ECORRUPT);
	ts.meta.log_start = off + 64; /* inside the segment block */
	commit(3, 1, 3);
	commit(3, 1, 3);
	ck_assert_err(verify(&pb), SUTRA_ECORRUPT);
}
END_TEST

START_TEST(test_verify_rejects_dangling_segment_ref)
{
	struct sutra_detail pb;
	add_c(1, 0);
	commit(1, 0, 1);
	uint64_t len, off = add_segment_len(&len);
	ts.meta.segment_count = 1;
	ts.meta.segments[0].offset = off + 64; /* not a block boundary */
	ts.meta.segments[0].length = len - 64;
	commit(1, 0, 1);
	ck_assert_err(verify(&pb), SUTRA_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(pb.what, "not a segment block"));
}
END_TEST

START_TEST(test_verify_rejects_segment_from_the_future)
{
	/* A segment block claiming epoch 1 placed before commit 1. */
	struct sutra_detail pb;
	add_segment();
	add_c(1, 0);
	commit(1, 0, 1);
	ck_assert_err(verify(&pb), SUTRA_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(pb.what, "precedes"));
}
END_TEST

START_TEST(test_verify_rejects_tail_start_inside_block)
{
	struct sutra_detail pb;
	add_c(1, 0);
	commit(1, 0, 1);
	ts.meta.tail_start = LAYOUT_DATA_OFFSET + 64;
	add_c(2, 1);
	commit(2, 0, 2);
	ck_assert_err(verify(&pb), SUTRA_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(pb.what, "tail start"));
}
END_TEST

TCHECK_MAIN_FIXTURE("layout", "verify", 0, setup, teardown, test_verify_accepts_valid_history,
		    test_open_rejects_swapped_commit_block,
		    test_open_accepts_unsynced_epochs_in_one_slot,
		    test_open_falls_back_over_a_lost_unsynced_block,
		    test_open_rejects_durable_end_off_a_boundary,
		    test_verify_rejects_wrong_new_ordinal,
		    test_verify_rejects_ordinal_change_on_update,
		    test_verify_rejects_unknown_endpoint,
		    test_verify_rejects_missing_association_delete,
		    test_verify_rejects_concept_delete_with_edges,
		    test_verify_rejects_wrong_meta_counts,
		    test_verify_rejects_wrong_dimension_record, test_verify_rejects_epoch_gap,
		    test_verify_accepts_referenced_segment,
		    test_verify_accepts_freed_log_before_log_start,
		    test_verify_rejects_dangling_segment_ref,
		    test_verify_rejects_segment_from_the_future,
		    test_verify_rejects_tail_start_inside_block)
