/* SPDX-License-Identifier: MIT */
/* The coordinator's background segment builder: one thread, one job at a time. */
#ifndef COORDINATOR_SEGMENTER_H
#define COORDINATOR_SEGMENTER_H

/*
 * Building a segment reads only published bytes, which never change, so it
 * runs on its own thread with its own mapping of the file while the writer
 * thread goes on committing. Writing it does not stop the writer either:
 *
 *  1. The writer submits a job; the thread builds the block in memory.
 *  2. The writer polls it (COORD_SEG_BUILT), reserves the block's range at
 *     the end of the log, writes the block's first bytes itself (block
 *     header, segment header, section table: all that a walk of the log
 *     checks, FORMAT.md 10.4) and goes on appending commits after the
 *     range; then it calls coord_segmenter_place().
 *  3. The thread writes the sections into the range, a few MiB at a time,
 *     each flushed before the next so that the writer's fdatasyncs never
 *     find much of it dirty, then fdatasyncs.
 *  4. The writer polls it (COORD_SEG_WRITTEN) and only then lists the
 *     segment in a meta. Until then no reader looks at its sections.
 */

#include <stdint.h>

#include "layout/layout.h"

struct coord_segjob {
	int merge;                  /* 0: flush the tail; 1: merge segments */
	uint32_t first_index;       /* merge: the first merged entry of the list */
	uint32_t nsegs;             /* merge: how many (through the newest) */
	struct layout_segment_ref segs[LAYOUT_MAX_SEGMENTS];
	uint64_t from, to;          /* flush: commit blocks in [from, to) */
	uint64_t end;               /* published end when submitted */
	uint64_t first_epoch, last_epoch;
	uint32_t next_ordinal;
	int base_segment;
};

struct coord_segmenter;

/* Starts the thread over the store at path (its own descriptor and
 * mapping). Returns 0 or -errno. */
int coord_segmenter_start(const char *path, const struct layout_superblock *sb,
			  struct coord_segmenter **out);

/* Stops the thread (waiting for a job in progress) and frees. NULL ok. */
void coord_segmenter_stop(struct coord_segmenter *g);

/* Whether a job is queued or running. */
int coord_segmenter_busy(struct coord_segmenter *g);

/* Queues a job. -EBUSY while one is in progress. */
int coord_segmenter_submit(struct coord_segmenter *g, const struct coord_segjob *job);

enum { COORD_SEG_BUILT = 1, COORD_SEG_WRITTEN = 2 };

/* Takes what the thread finished: 0 (nothing), COORD_SEG_BUILT (*job,
 * *rc; when *rc is 0 the block in *blk, still owned by the segmenter, of
 * *len bytes whose first *head bytes the caller writes before calling
 * coord_segmenter_place()) or COORD_SEG_WRITTEN (*job, *len, *rc: 0 once
 * the sections are durable). On failure *why says what. */
int coord_segmenter_poll(struct coord_segmenter *g, struct coord_segjob *job,
			 const unsigned char **blk, uint64_t *len, uint64_t *head, int *rc, struct sutra_detail *why);

/* The block goes at file offset: the thread writes its sections. */
void coord_segmenter_place(struct coord_segmenter *g, uint64_t offset);

/* Sets a function called (on the builder thread, holding no lock of the
 * segmenter's) when a build or a write finishes, so that an idle writer
 * can be woken. */
void coord_segmenter_on_done(struct coord_segmenter *g, void (*fn)(void *arg), void *arg);

#endif /* COORDINATOR_SEGMENTER_H */
