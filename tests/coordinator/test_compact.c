/* SPDX-License-Identifier: MIT */
/* The segment planner: size tiers, tiered merges, the too-many rule, tail flushes and idle stores. */
#include <check.h>
#include <stdint.h>

#include "coordinator/compact.h"
#include "layout/layout.h"
#include "tests/common/tcheck.h"

#define SB 1000u              /* segment_bytes of most cases */
#define BIG (1024u * 1024u)   /* one larger than COORD_COMPACT_IDLE_BYTES */
#define UNSET 0xdeadu

/* A busy store at epoch 10 whose newest segment covers epoch 10: no tail,
 * nothing to flush, not idle. Each case changes what it needs. */
static struct coord_plan_input busy(const uint64_t *lens, uint32_t n)
{
	return (struct coord_plan_input){ .seg_len = lens, .nsegs = n, .segment_bytes = SB,
					  .newest_last_epoch = n ? 10 : 0, .epoch = 10 };
}

static enum coord_plan_kind plan(const struct coord_plan_input *in, uint32_t *first)
{
	*first = UNSET;
	return coord_compact_plan(in, first);
}

static void merges_from(const struct coord_plan_input *in, uint32_t want_first)
{
	uint32_t first;
	ck_assert_int_eq(plan(in, &first), COORD_PLAN_MERGE);
	ck_assert_uint_eq(first, want_first);
}

static void does(const struct coord_plan_input *in, enum coord_plan_kind want)
{
	uint32_t first;
	ck_assert_int_eq(plan(in, &first), want);
	ck_assert_uint_eq(first, UNSET); /* written only for a merge */
}

START_TEST(test_compact_tier_boundaries)
{
	ck_assert_uint_eq(coord_compact_tier(0, SB), 0);
	ck_assert_uint_eq(coord_compact_tier(SB - 1, SB), 0);
	ck_assert_uint_eq(coord_compact_tier(4 * SB - 1, SB), 0);
	ck_assert_uint_eq(coord_compact_tier(4 * SB, SB), 1);
	ck_assert_uint_eq(coord_compact_tier(16 * SB - 1, SB), 1);
	ck_assert_uint_eq(coord_compact_tier(16 * SB, SB), 2);
	ck_assert_uint_eq(coord_compact_tier(64 * SB, SB), 3);
	ck_assert_uint_eq(coord_compact_tier(UINT64_MAX, 1), 31);
}
END_TEST

START_TEST(test_compact_nothing_to_merge)
{
	const uint64_t lens[] = { SB, SB, SB };
	struct coord_plan_input in = busy(lens, 0);
	does(&in, COORD_PLAN_NONE);
	in = busy(lens, 1);
	does(&in, COORD_PLAN_NONE);
	/* Three of one tier: one short of a run. */
	in = busy(lens, 3);
	does(&in, COORD_PLAN_NONE);
	/* A tail just under segment_bytes is not flushed either. */
	in.tail_bytes = SB - 1;
	in.tail_items = 5;
	in.epoch = 12;
	does(&in, COORD_PLAN_NONE);
}
END_TEST

START_TEST(test_compact_merges_a_run_of_fanout)
{
	/* Tier 3, 2, then four of tier 0: the four are merged. */
	const uint64_t lens[] = { 64 * SB, 16 * SB, SB, SB, 2 * SB, 3 * SB };
	struct coord_plan_input in = busy(lens, 6);
	ck_assert_uint_eq(COORD_COMPACT_FANOUT, 4);
	merges_from(&in, 2);
	/* The whole list of one tier: a merge into the base segment. */
	in = busy(lens + 2, 4);
	merges_from(&in, 0);
	/* A run longer than FANOUT is merged whole. */
	const uint64_t five[] = { 16 * SB, SB, SB, SB, SB, SB };
	in = busy(five, 6);
	merges_from(&in, 1);
	/* A merge comes before a flush that is also due. */
	in.tail_bytes = 10 * SB;
	in.tail_items = 1;
	in.epoch = 11;
	merges_from(&in, 1);
}
END_TEST

START_TEST(test_compact_mixed_tiers_look_at_the_newest_run)
{
	/* Four of tier 1 then one of tier 0: the newest run is one long, so
	 * the older run waits. */
	const uint64_t lens[] = { 4 * SB, 5 * SB, 6 * SB, 15 * SB, SB, SB, SB, SB };
	struct coord_plan_input in = busy(lens, 5);
	does(&in, COORD_PLAN_NONE);
	/* With a tail past segment_bytes and a new epoch, it is flushed. */
	in.tail_bytes = SB;
	in.tail_items = 3;
	in.epoch = 11;
	does(&in, COORD_PLAN_FLUSH);
	/* Three flushes later the tier-0 run is four long and is merged;
	 * the tier-1 run stays as it is. */
	in = busy(lens, 8);
	merges_from(&in, 4);
	/* Descending tiers, one of each: nothing. */
	const uint64_t desc[] = { 64 * SB, 16 * SB, 4 * SB, SB };
	in = busy(desc, 4);
	does(&in, COORD_PLAN_NONE);
}
END_TEST

START_TEST(test_compact_too_many_segments)
{
	/* Alternating tiers never form a run. */
	uint64_t lens[LAYOUT_MAX_SEGMENTS];
	for (uint32_t i = 0; i < LAYOUT_MAX_SEGMENTS; i++)
		lens[i] = i % 2 ? SB : 4 * SB;
	struct coord_plan_input in = busy(lens, COORD_COMPACT_MAX_LIVE - 1);
	does(&in, COORD_PLAN_NONE);
	/* At the limit the newest FANOUT are merged, tiers or not. */
	in = busy(lens, COORD_COMPACT_MAX_LIVE);
	merges_from(&in, COORD_COMPACT_MAX_LIVE - COORD_COMPACT_FANOUT);
	in = busy(lens, LAYOUT_MAX_SEGMENTS);
	merges_from(&in, LAYOUT_MAX_SEGMENTS - COORD_COMPACT_FANOUT);
	/* A run that is long enough is merged whole instead (lens[26] is
	 * of tier 1, 27..31 of tier 0). */
	for (uint32_t i = COORD_COMPACT_MAX_LIVE - 5; i < COORD_COMPACT_MAX_LIVE; i++)
		lens[i] = SB;
	in = busy(lens, COORD_COMPACT_MAX_LIVE);
	merges_from(&in, COORD_COMPACT_MAX_LIVE - 5);
}
END_TEST

START_TEST(test_compact_flushes_the_tail)
{
	const uint64_t lens[] = { 16 * SB };
	/* No segment yet: the tail is flushed once it holds segment_bytes. */
	struct coord_plan_input in = busy(lens, 0);
	in.epoch = 3;
	in.tail_bytes = SB;
	in.tail_items = 1;
	does(&in, COORD_PLAN_FLUSH);
	/* Not when every epoch is already in the newest segment (the tail
	 * holds only bytes of epochs it covers). */
	in = busy(lens, 1);
	in.tail_bytes = 5 * SB;
	in.tail_items = 1;
	does(&in, COORD_PLAN_NONE);
	in.epoch = 11;
	does(&in, COORD_PLAN_FLUSH);
	/* Bytes count, not records: empty commits fill a tail too. */
	in.tail_items = 0;
	does(&in, COORD_PLAN_FLUSH);
}
END_TEST

START_TEST(test_compact_idle_store)
{
	/* segment_bytes above COORD_COMPACT_IDLE_BYTES, so that the idle
	 * rules, not the size, decide. */
	const uint64_t lens[] = { 4 * BIG, BIG };
	struct coord_plan_input in = busy(lens, 2);
	in.segment_bytes = BIG;
	does(&in, COORD_PLAN_NONE);
	/* Idle with nothing to flush: everything into one base segment. */
	in.idle = 1;
	merges_from(&in, 0);
	/* ... also when the tail holds only empty commits. */
	in.tail_bytes = COORD_COMPACT_IDLE_BYTES;
	merges_from(&in, 0);
	/* Idle with records worth flushing: the flush goes first. */
	in.tail_items = 1;
	in.epoch = 11;
	ck_assert(coord_compact_idle_flush_wanted(in.tail_items, in.tail_bytes));
	does(&in, COORD_PLAN_FLUSH);
	/* Less than that is not worth a flush: the full merge again. */
	in.tail_bytes = COORD_COMPACT_IDLE_BYTES - 1;
	merges_from(&in, 0);
	/* Busy, the same tail waits for segment_bytes. */
	in.tail_bytes = COORD_COMPACT_IDLE_BYTES;
	in.idle = 0;
	does(&in, COORD_PLAN_NONE);
	/* One segment is already merged: idle, nothing to do. */
	in = busy(lens, 1);
	in.segment_bytes = BIG;
	in.idle = 1;
	does(&in, COORD_PLAN_NONE);
}
END_TEST

TCHECK_MAIN("coordinator", "compact", 0, test_compact_tier_boundaries, test_compact_nothing_to_merge,
	    test_compact_merges_a_run_of_fanout, test_compact_mixed_tiers_look_at_the_newest_run,
	    test_compact_too_many_segments, test_compact_flushes_the_tail, test_compact_idle_store)
