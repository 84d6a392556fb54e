/* SPDX-License-Identifier: MIT */
/* The coordinator's background segment builder: one thread, one job at a time. */
#ifndef COORDINATOR_SEGMENTER_H
#define COORDINATOR_SEGMENTER_H

/*
 * Building a segment reads only published bytes, which never change, so it
 * runs on its own thread with its own read-only mapping of the file while
 * the writer thread goes on committing. The writer submits a job, polls for
 * the result after each group, and appends the finished block itself
 * (coord_store_install_segment): only the writer ever writes the file.
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
int coord_segmenter_start(const char *path, uint32_t vector_dim, struct coord_segmenter **out);

/* Stops the thread (waiting for a job in progress) and frees. NULL ok. */
void coord_segmenter_stop(struct coord_segmenter *g);

/* Whether a job is queued or running. */
int coord_segmenter_busy(struct coord_segmenter *g);

/* Queues a job. -EBUSY while one is in progress. */
int coord_segmenter_submit(struct coord_segmenter *g, const struct coord_segjob *job);

/* Takes the finished job: returns 0 with nothing finished, 1 with *job,
 * *rc and, when *rc is 0, the block in *blk (malloc'd, the caller frees)
 * of *len bytes. On failure *why says what. */
int coord_segmenter_poll(struct coord_segmenter *g, struct coord_segjob *job, unsigned char **blk,
			 uint64_t *len, int *rc, char *why, size_t why_len);

/* Sets a function called (on the builder thread) when a job finishes, so
 * that an idle writer can be woken. */
void coord_segmenter_on_done(struct coord_segmenter *g, void (*fn)(void *arg), void *arg);

#endif /* COORDINATOR_SEGMENTER_H */
