/* SPDX-License-Identifier: MIT */
/* Choosing the next index-segment job: a flush of the tail or a tiered merge of segments. */
#ifndef COORDINATOR_COMPACT_H
#define COORDINATOR_COMPACT_H

/*
 * The store lists at most LAYOUT_MAX_SEGMENTS segments, oldest first
 * (FORMAT.md section 10). Each falls in a size tier: tier t holds lengths
 * from segment_bytes * FANOUT^t up to FANOUT times that (tier 0 also what
 * is smaller). The planner keeps the list short and a get's probes few:
 *
 *  - merge the newest run of segments that share the newest one's tier,
 *    once it is FANOUT long, into one (of the next tier, roughly);
 *  - with COORD_COMPACT_MAX_LIVE or more segments and no such run, merge
 *    the newest FANOUT anyway;
 *  - a store idle for COORD_COMPACT_IDLE_MS with no tail worth flushing
 *    has all its segments (two or more) merged into one base segment;
 *  - otherwise flush the tail into a new segment once its commit blocks
 *    hold segment_bytes, or, when idle, COORD_COMPACT_IDLE_BYTES with at
 *    least one record, provided there is an epoch the newest segment does
 *    not cover and the list has room.
 *
 * coord_compact_plan() is the decision alone, a pure function of what it
 * is given, so that it can be tested without a store; compact.c feeds it
 * the store's meta and carries the job out.
 */

#include <stdint.h>

#define COORD_COMPACT_FANOUT 4u
#define COORD_COMPACT_MAX_LIVE 32u
/* A store idle this long gets its tail flushed once it holds this much, so
 * that readers opening an idle store index next to nothing. */
#define COORD_COMPACT_IDLE_MS 1000u
#define COORD_COMPACT_IDLE_BYTES (64u * 1024u)

struct coord_plan_input {
	const uint64_t *seg_len;     /* lengths of the listed segments, oldest first */
	uint32_t nsegs;
	uint64_t segment_bytes;      /* the flush threshold and tier unit; not 0 */
	uint64_t newest_last_epoch;  /* last epoch the newest segment covers; 0: none */
	uint64_t epoch;              /* the current epoch */
	uint64_t tail_bytes;         /* commit block bytes after the segments */
	uint64_t tail_items;         /* records in them */
	int idle;                    /* no commit with records for COORD_COMPACT_IDLE_MS */
};

enum coord_plan_kind {
	COORD_PLAN_NONE = 0,
	COORD_PLAN_MERGE,  /* merge segments first .. nsegs - 1 */
	COORD_PLAN_FLUSH,  /* flush the tail into a new segment */
};

/* The tier of a segment of len bytes (segment_bytes not 0). */
unsigned coord_compact_tier(uint64_t len, uint64_t segment_bytes);

/* Whether the tail is worth flushing when the store is idle. */
int coord_compact_idle_flush_wanted(uint64_t tail_items, uint64_t tail_bytes);

/* The next job, from in alone. For COORD_PLAN_MERGE, *first is the index
 * of the oldest segment to merge (the merge runs through the newest);
 * otherwise *first is not written. */
enum coord_plan_kind coord_compact_plan(const struct coord_plan_input *in, uint32_t *first);

#endif /* COORDINATOR_COMPACT_H */
