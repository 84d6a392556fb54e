/* SPDX-License-Identifier: MIT */
/* Freeing space: merged-away segments and flushed commit blocks, below the oldest epoch a reader pins. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/store_internal.h"
#include "layout/lockfile.h"
#include "layout/segindex.h"
#include "util/grow.h"

/* The reader-slot table of the lock file (docs/LOCKFILE.md). An OFD lock
 * holds the writer lock, so this second descriptor of the file is safe. */
int coord_reclaim_open_slots(struct coord_store *s)
{
	char *lp = coord_lock_path(s->path);
	if (!lp)
		return -ENOMEM;
	int rc = layout_lockfile_open(lp, LAYOUT_LOCKFILE_CREATE, &s->rec.lockf, NULL);
	free(lp);
	return rc;
}

void coord_reclaim_finish(struct coord_store *s)
{
	free(s->rec.retired);
	free(s->rec.tails);
	layout_lockfile_close(s->rec.lockf);
	s->rec.retired = NULL;
	s->rec.tails = NULL;
	s->rec.lockf = NULL;
}

int coord_reclaim_reserve(struct coord_store *s, size_t n)
{
	struct coord_reclaim *r = &s->rec;
	return UTIL_GROW(r->retired, r->capretired, r->nretired + n, 16);
}

int coord_reclaim_retire(struct coord_store *s, uint64_t offset, uint64_t length, uint64_t epoch)
{
	struct coord_reclaim *r = &s->rec;
	int rc = UTIL_GROW(r->retired, r->capretired, r->nretired + 1, 16);
	if (rc)
		return rc;
	r->retired[r->nretired++] = (struct coord_retired){ offset, length, epoch };
	return 0;
}

int coord_reclaim_add_tail(struct coord_store *s, uint64_t from, uint64_t to, uint64_t epoch)
{
	struct coord_reclaim *r = &s->rec;
	int rc = UTIL_GROW(r->tails, r->captails, r->ntails + 1, 16);
	if (rc)
		return rc;
	r->tails[r->ntails++] = (struct coord_tail_range){ from, to, epoch };
	return 0;
}

/* Frees the whole pages of [from, to): 0, or -1 when fallocate failed (the
 * space stays used; nothing else depends on it). */
static int punch(struct coord_store *s, uint64_t from, uint64_t to)
{
	from = layout_align_up(from, 4096);
	to &= ~(uint64_t)4095;
	if (to <= from)
		return 0;
	if (fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)from,
		      (off_t)(to - from)) < 0) {
		coord_logf(&s->log, COORD_LOG_WARN, "cannot free %llu bytes at %llu: %s",
			   (unsigned long long)(to - from), (unsigned long long)from,
			   strerror(errno));
		return -1;
	}
	return 0;
}

static int by_offset(const void *a, const void *b)
{
	const struct layout_segment_ref *x = a, *y = b;
	return (x->offset > y->offset) - (x->offset < y->offset);
}

/* Frees [from, to) but the segment blocks in it that a meta lists or
 * that wait to be freed on their own terms. */
static void free_commits(struct coord_store *s, uint64_t from, uint64_t to)
{
	const struct coord_reclaim *r = &s->rec;
	size_t n = 0, cap = s->meta.segment_count + r->nretired;
	struct layout_segment_ref *keep = malloc((cap ? cap : 1) * sizeof *keep);
	if (!keep)
		return; /* only space is lost */
	for (uint32_t i = 0; i < s->meta.segment_count; i++)
		keep[n++] = s->meta.segments[i];
	for (size_t i = 0; i < r->nretired; i++)
		keep[n++] = (struct layout_segment_ref){ r->retired[i].offset, r->retired[i].length };
	qsort(keep, n, sizeof *keep, by_offset);
	uint64_t pos = from;
	for (size_t i = 0; i < n && pos < to; i++) {
		if (keep[i].offset + keep[i].length <= pos || keep[i].offset >= to)
			continue;
		if (keep[i].offset > pos)
			punch(s, pos, keep[i].offset);
		pos = keep[i].offset + keep[i].length;
	}
	if (pos < to)
		punch(s, pos, to);
	free(keep);
	coord_logf(&s->log, COORD_LOG_INFO, "freed the flushed log from %llu to %llu",
		   (unsigned long long)from, (unsigned long long)to);
}

/* Frees the sections of merged-away segments that nothing can reach any
 * more: no reader pins an older epoch than the one that retired them
 * (dead readers' slots are swept), and neither meta slot is older (a
 * reader may fall back to the other slot). The first page of the block,
 * with its header and section table, stays, so that the log still walks;
 * the rest becomes a hole (FORMAT.md 10.4). Then the same for flushed
 * commit blocks, which also wait for both slots' log_start. */
int coord_reclaim(struct coord_store *s)
{
	struct coord_reclaim *r = &s->rec;
	uint64_t oldest;
	uint32_t swept;
	int rotate = 0;
	if ((!r->nretired && !r->ntails) || !r->lockf ||
	    coord_mono_ms() - r->last_ms < COORD_RECLAIM_EVERY_MS)
		return 0;
	r->last_ms = coord_mono_ms();
	if (layout_lockfile_oldest_pinned(r->lockf, &oldest, &swept))
		return 0;
	if (swept)
		coord_logf(&s->log, COORD_LOG_INFO, "swept %u reader slot(s) of dead processes",
			   swept);
	uint64_t readers = oldest < s->durable.epoch ? oldest : s->durable.epoch, limit = readers;
	for (int i = 0; i < (int)LAYOUT_META_SLOT_COUNT; i++)
		if (s->slot[i].epoch < limit)
			limit = s->slot[i].epoch;
	size_t kept = 0;
	for (size_t i = 0; i < r->nretired; i++) {
		const struct coord_retired *t = &r->retired[i];
		if (t->epoch > limit) {
			rotate |= t->epoch <= readers;
			r->retired[kept++] = *t;
			continue;
		}
		/* The first page, with the headers and table, stays. */
		if (punch(s, t->offset + layout_segment_data_start(LAYOUT_SEG_SECTIONS),
			  t->offset + t->length) == 0)
			coord_logf(&s->log, COORD_LOG_INFO,
				   "freed the merged-away segment at %llu (retired at epoch %llu)",
				   (unsigned long long)t->offset, (unsigned long long)t->epoch);
	}
	r->nretired = kept;

	/* Flushed commit blocks: first move log_start past them (a commit
	 * writes it), then, once both slots walk from there, free them. */
	uint64_t min_ls = s->slot[0].log_start < s->slot[1].log_start ? s->slot[0].log_start
								      : s->slot[1].log_start;
	kept = 0;
	for (size_t i = 0; i < r->ntails; i++) {
		const struct coord_tail_range *t = &r->tails[i];
		if (t->epoch > limit) {
			rotate |= t->epoch <= readers;
			r->tails[kept++] = *t;
			continue;
		}
		/* The newest log_retention bytes of flushed log stay: request
		 * markers there still catch a resend after a restart, and the
		 * log can still be read as it was written. */
		if (s->meta.tail_start - t->to < r->log_retention) {
			r->tails[kept++] = *t;
			continue;
		}
		if (layout_log_start(&s->sb, &s->meta) < t->to) {
			/* log_start may not pass the durable end (FORMAT.md 5.2) */
			if (t->to <= s->durable.end && t->to <= s->meta.tail_start) {
				s->meta.log_start = t->to;
				rotate = 1;
			}
			r->tails[kept++] = *t;
			continue;
		}
		if (min_ls < t->to) {
			rotate = 1;
			r->tails[kept++] = *t;
			continue;
		}
		free_commits(s, t->from, t->to);
	}
	r->ntails = kept;
	return rotate;
}

uint64_t coord_reclaim_due(const struct coord_store *s)
{
	if ((s->rec.nretired || s->rec.ntails) && s->rec.lockf)
		return s->rec.last_ms + COORD_RECLAIM_EVERY_MS;
	return UINT64_MAX;
}
