/* SPDX-License-Identifier: MIT */
/* Systematic corruption: every flipped byte and every truncation of a small store. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "layout/layout.h"
#include "tests/common/tcheck.h"
#include "tests/common/tstore.h"

static struct tstore ts;

static void setup(void)
{
	ck_assert_ok(tstore_build(&ts));
}

static void teardown(void)
{
	tstore_finish(&ts);
}

/* Replays the log up to the view's published end with the layout library,
 * independently of layout_verify, and checks that an opened image is a
 * clean epoch of the original: its meta and replayed state are exactly
 * what the builder recorded for that epoch. Returns 1 when the replay
 * itself found the damage (which is also an acceptable outcome). */
static int check_clean_epoch(const struct layout_view *v)
{
	uint64_t e = v->meta.epoch;
	ck_assert_uint_le(e, ts.epochs);
	const struct tstore_counts *want = &ts.counts[e];
	ck_assert_uint_eq(v->meta.published_end, want->published_end);
	ck_assert_uint_eq(v->meta.concept_count, want->concepts);
	ck_assert_uint_eq(v->meta.association_count, want->associations);
	ck_assert_uint_eq(v->meta.next_ordinal, want->next_ordinal);

	struct layout_replay r;
	struct sutra_detail pb;
	uint64_t pos = v->sb.data_offset;
	int rc = 0;
	layout_replay_init(&r, v->sb.vector_dim);
	while (pos < v->meta.published_end && rc == 0) {
		struct layout_block blk;
		rc = layout_block_decode(v->base, v->meta.published_end, pos, &blk, &pb);
		if (!rc)
			rc = layout_block_check_payload(v->base, &blk, &pb);
		if (!rc)
			rc = layout_replay_block(&r, v->base, &blk, &pb);
		if (!rc)
			pos = blk.offset + blk.length;
	}
	if (rc == 0) {
		ck_assert_uint_eq(r.epoch, e);
		ck_assert_uint_eq(r.concept_count, want->concepts);
		ck_assert_uint_eq(r.association_count, want->associations);
		ck_assert_uint_eq(r.next_ordinal, want->next_ordinal);
	} else {
		ck_assert_err(rc, SUTRA_ECORRUPT);
	}
	layout_replay_finish(&r);
	return rc != 0;
}

/* Opens and verifies an image held in a buffer of exactly its size (so that
 * AddressSanitizer sees any read past it). Returns the verify result. */
static int open_and_verify(const unsigned char *img, size_t len)
{
	unsigned char *copy = tstore_aligned_copy(img, len);
	struct layout_view v;
	struct sutra_detail pb;
	int rc;

	rc = layout_open(copy, len, &v, &pb);
	if (rc) {
		ck_assert_msg(rc == SUTRA_ECORRUPT || rc == SUTRA_EVERSION, "open gave %d", rc);
		ck_assert_uint_le(pb.offset, len > LAYOUT_DATA_OFFSET ? len : LAYOUT_DATA_OFFSET);
		ck_assert(pb.what[0] != 0);
	} else {
		check_clean_epoch(&v);
		rc = layout_verify(&v, NULL, &pb);
		if (rc) {
			ck_assert_err(rc, SUTRA_ECORRUPT);
			ck_assert(pb.what[0] != 0);
		}
		/* The tail scan must stay in bounds whatever the bytes. */
		uint64_t end;
		layout_scan_tail(&v, &end, &pb);
		ck_assert_uint_le(end, len);
	}
	free(copy);
	return rc;
}

START_TEST(test_corrupt_clean_store_verifies)
{
	struct layout_view v;
	struct sutra_detail pb;
	struct layout_replay r;

	ck_assert_ok(layout_open(ts.buf, ts.len, &v, &pb));
	ck_assert_uint_eq(v.meta.epoch, ts.epochs);
	ck_assert_int_eq(v.fell_back, 0);
	layout_replay_init(&r, v.sb.vector_dim);
	ck_assert_ok(layout_verify(&v, &r, &pb));
	ck_assert_uint_eq(r.concept_count, 3);
	ck_assert_uint_eq(r.association_count, 2);
	layout_replay_finish(&r);
	ck_assert_int_eq(open_and_verify(ts.buf, ts.len), 0);
}
END_TEST

/* Every byte of the file is covered by a checksum or must be zero, so any
 * change anywhere must make verify fail; open must either fail or give an
 * epoch of the original. mask 0xFF flips whole bytes, 0x01 single bits. */
static void flip_all(unsigned char mask)
{
	unsigned char *img = tstore_aligned_copy(NULL, ts.len);
	size_t opened_older = 0;

	for (size_t i = 0; i < ts.len; i++) {
		memcpy(img, ts.buf, ts.len);
		img[i] ^= mask;
		int rc = open_and_verify(img, ts.len);
		ck_assert_msg(rc == SUTRA_ECORRUPT || rc == SUTRA_EVERSION,
			      "flip of byte %zu with %02x not detected (rc %d)", i, mask, rc);

		struct layout_view v;
		struct sutra_detail pb;
		if (layout_open(img, ts.len, &v, &pb) == 0 && v.meta.epoch < ts.epochs)
			opened_older++;
	}
	/* Damage to the newest commit block or newest meta slot falls back. */
	ck_assert_uint_gt(opened_older, 0);
	free(img);
}

START_TEST(test_corrupt_every_byte_flipped)
{
	flip_all(0xFF);
}
END_TEST

START_TEST(test_corrupt_every_bit0_flipped)
{
	flip_all(0x01);
}
END_TEST

START_TEST(test_corrupt_every_truncation)
{
	for (size_t n = 0; n < ts.len; n++) {
		int rc = open_and_verify(ts.buf, n);
		ck_assert_msg(rc == SUTRA_ECORRUPT, "truncation at %zu gave %d", n, rc);
	}
	/* Cut exactly at the end of epoch 3: a clean older epoch opens. */
	struct layout_view v;
	struct sutra_detail pb;
	ck_assert_ok(layout_open(ts.buf, ts.counts[3].published_end, &v, &pb));
	ck_assert_uint_eq(v.meta.epoch, 3);
	ck_assert_int_eq(v.fell_back, 1);
}
END_TEST

START_TEST(test_corrupt_tail_is_not_part_of_the_store)
{
	/* Garbage after the published end is an unpublished tail: open and
	 * verify ignore it, the tail scan reports it. */
	size_t len = ts.len + 256;
	unsigned char *img = tstore_aligned_copy(NULL, len);
	memcpy(img, ts.buf, ts.len);
	memset(img + ts.len, 0x5A, 256);
	struct layout_view v;
	struct sutra_detail pb;
	uint64_t end;
	ck_assert_ok(layout_open(img, len, &v, &pb));
	ck_assert_ok(layout_verify(&v, NULL, &pb));
	ck_assert_uint_eq(layout_scan_tail(&v, &end, &pb), 0);
	ck_assert_uint_eq(end, ts.len);
	ck_assert_uint_eq(pb.offset, ts.len);
	free(img);
}
END_TEST

START_TEST(test_corrupt_unpublished_block_is_found_by_tail_scan)
{
	/* Damage slot 0 (epoch 4) as a torn meta write would: open falls
	 * back to epoch 3 and the tail scan finds epoch 4's commit block. */
	unsigned char *img = tstore_aligned_copy(NULL, ts.len);
	memcpy(img, ts.buf, ts.len);
	memset(img + LAYOUT_META_OFFSET + 100, 0x77, 8);
	struct layout_view v;
	struct sutra_detail pb;
	uint64_t end;
	ck_assert_ok(layout_open(img, ts.len, &v, &pb));
	ck_assert_uint_eq(v.meta.epoch, 3);
	ck_assert_uint_eq(layout_scan_tail(&v, &end, &pb), 1);
	ck_assert_uint_eq(end, ts.len);
	ck_assert_err(layout_verify(&v, NULL, &pb), SUTRA_ECORRUPT);
	free(img);
}
END_TEST

/* An image not aligned in memory as layout_open requires is the caller's
 * mistake: -EINVAL with a sentence that says so, never a corrupt file
 * (an index section's in-memory alignment used to be reported as
 * SUTRA_ECORRUPT at verify, in a build outside the source tree). */
START_TEST(test_corrupt_misaligned_image_is_einval)
{
	unsigned char *img = tstore_aligned_copy(NULL, ts.len + 16);
	memcpy(img + 16, ts.buf, ts.len);
	struct layout_view v;
	struct sutra_detail pb = { .what = "" };
	ck_assert_err(layout_open(img + 16, ts.len, &v, &pb), -EINVAL);
	ck_assert_ptr_nonnull(strstr(pb.what, "aligned"));
	ck_assert_err(layout_open(img, ts.len, &v, &pb), SUTRA_ECORRUPT);
	memcpy(img, ts.buf, ts.len);
	ck_assert_ok(layout_open(img, ts.len, &v, &pb));
	free(img);
}
END_TEST

TCHECK_MAIN_FIXTURE("layout", "corrupt", 300, setup, teardown, test_corrupt_clean_store_verifies,
		    test_corrupt_every_byte_flipped, test_corrupt_every_bit0_flipped,
		    test_corrupt_every_truncation, test_corrupt_tail_is_not_part_of_the_store,
		    test_corrupt_unpublished_block_is_found_by_tail_scan,
		    test_corrupt_misaligned_image_is_einval)
