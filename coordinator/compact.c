/* SPDX-License-Identifier: MIT */
/* Index segments on the writer's side: planning flushes and merges, and the hand-off with the builder thread. */
#include "coordinator/compact.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "coordinator/segmenter.h"
#include "coordinator/store_internal.h"
#include "sutra/errors.h"

/* ---- Planning ------------------------------------------------------------ */

unsigned coord_compact_tier(uint64_t len, uint64_t segment_bytes)
{
	unsigned t = 0;
	for (uint64_t x = len / segment_bytes; x >= COORD_COMPACT_FANOUT; x /= COORD_COMPACT_FANOUT)
		t++;
	return t;
}

int coord_compact_idle_flush_wanted(uint64_t tail_items, uint64_t tail_bytes)
{
	return tail_items && tail_bytes >= COORD_COMPACT_IDLE_BYTES;
}

enum coord_plan_kind coord_compact_plan(const struct coord_plan_input *in, uint32_t *first)
{
	uint32_t n = in->nsegs;
	uint64_t unit = in->segment_bytes;
	int wanted = coord_compact_idle_flush_wanted(in->tail_items, in->tail_bytes);

	assert(unit > 0 && n <= LAYOUT_MAX_SEGMENTS);
	if (n >= 2) {
		uint32_t i = n - 1;
		unsigned t = coord_compact_tier(in->seg_len[n - 1], unit);
		while (i > 0 && coord_compact_tier(in->seg_len[i - 1], unit) == t)
			i--;
		if (n - i < COORD_COMPACT_FANOUT && n >= COORD_COMPACT_MAX_LIVE)
			i = n - COORD_COMPACT_FANOUT;
		/* An idle store with nothing to flush is merged into one base
		 * segment: a get then probes one table. */
		int full = in->idle && !wanted;
		if (full)
			i = 0;
		if (n - i >= COORD_COMPACT_FANOUT || full) {
			*first = i;
			return COORD_PLAN_MERGE;
		}
	}
	if (n < LAYOUT_MAX_SEGMENTS && (in->tail_bytes >= unit || (in->idle && wanted)) &&
	    in->epoch > in->newest_last_epoch)
		return COORD_PLAN_FLUSH;
	return COORD_PLAN_NONE;
}

/* The store's next job, if one is due (coord_compact_plan() on its meta). */
static int plan(struct coord_store *s, struct coord_segjob *job)
{
	const struct layout_meta *m = &s->meta;
	uint32_t n = m->segment_count, first = 0;
	uint64_t lens[LAYOUT_MAX_SEGMENTS];
	for (uint32_t i = 0; i < n; i++)
		lens[i] = m->segments[i].length;
	struct coord_plan_input in = {
		.seg_len = lens,
		.nsegs = n,
		.segment_bytes = s->seg.segment_bytes,
		.newest_last_epoch = n ? s->seg.info[n - 1].last_epoch : 0,
		.epoch = m->epoch,
		.tail_bytes = s->seg.tail_commit_bytes,
		.tail_items = s->seg.tail_items,
		.idle = coord_mono_ms() - s->seg.last_commit_ms >= COORD_COMPACT_IDLE_MS,
	};
	memset(job, 0, sizeof *job);
	job->end = m->published_end;
	switch (coord_compact_plan(&in, &first)) {
	case COORD_PLAN_MERGE:
		job->merge = 1;
		job->first_index = first;
		job->nsegs = n - first;
		memcpy(job->segs, &m->segments[first], job->nsegs * sizeof job->segs[0]);
		job->first_epoch = s->seg.info[first].first_epoch;
		job->last_epoch = s->seg.info[n - 1].last_epoch;
		job->next_ordinal = s->seg.info[n - 1].next_ordinal;
		job->base_segment = first == 0;
		return 1;
	case COORD_PLAN_FLUSH:
		job->from = m->tail_start;
		job->to = m->published_end;
		job->first_epoch = n ? s->seg.info[n - 1].last_epoch + 1 : 1;
		job->last_epoch = m->epoch;
		job->next_ordinal = m->next_ordinal;
		job->base_segment = n == 0;
		s->seg.job_tail_bytes = s->seg.tail_commit_bytes;
		s->seg.job_tail_items = s->seg.tail_items;
		return 1;
	case COORD_PLAN_NONE:
		break;
	}
	return 0;
}

/* ---- The hand-off with the builder thread ---------------------------------- */

/* Lists a segment whose sections the builder has made durable: changes
 * the segment list and tail start that the next commit publishes. */
static int list_segment(struct coord_store *s, const struct coord_segjob *job, uint64_t offset,
			uint64_t len)
{
	struct layout_meta *m = &s->meta;
	struct layout_segment_ref ref = { offset, len };
	struct coord_seginfo info = { job->first_epoch, job->last_epoch, job->next_ordinal };
	if (job->merge) {
		/* Room first: a partly retired list would free listed space. */
		if (coord_reclaim_reserve(s, job->nsegs))
			return -ENOMEM; /* the block stays unlisted: only space is lost */
		for (uint32_t i = job->first_index; i < m->segment_count; i++)
			coord_reclaim_retire(s, m->segments[i].offset, m->segments[i].length,
					     m->epoch + 1);
		for (uint32_t i = job->first_index + 1; i < m->segment_count; i++)
			m->segments[i] = (struct layout_segment_ref){ 0, 0 };
		m->segments[job->first_index] = ref;
		s->seg.info[job->first_index] = info;
		m->segment_count = job->first_index + 1;
	} else {
		if (coord_reclaim_add_tail(s, m->tail_start, job->to, m->epoch + 1))
			return -ENOMEM; /* the block stays unlisted: only space is lost */
		m->segments[m->segment_count] = ref;
		s->seg.info[m->segment_count] = info;
		m->segment_count++;
		m->tail_start = job->to;
		s->seg.tail_commit_bytes -= s->seg.job_tail_bytes;
		s->seg.tail_items -= s->seg.job_tail_items;
	}
	coord_logf(&s->log, COORD_LOG_INFO,
		   "%s segment of epochs %llu..%llu: %llu bytes at offset %llu; %u segments",
		   job->merge ? "merged" : "wrote", (unsigned long long)job->first_epoch,
		   (unsigned long long)job->last_epoch, (unsigned long long)len,
		   (unsigned long long)offset, m->segment_count);
	return 0;
}

int coord_store_maintain(struct coord_store *s, int *committed, uint64_t *epoch)
{
	*committed = 0;
	if (s->failed || !s->seg.segmenter)
		return s->failed;
	struct coord_segjob job;
	const unsigned char *blk;
	uint64_t len, head;
	int rc, brc;
	struct sutra_detail why;
	switch (coord_segmenter_poll(s->seg.segmenter, &job, &blk, &len, &head, &brc, &why)) {
	case COORD_SEG_BUILT:
		if (brc) {
			/* The published log verified at start: a failed build
			 * is memory, or damage that appeared since. Keep going
			 * without it; the tail just stays longer. */
			coord_logf(&s->log, COORD_LOG_ERR, "building a segment failed: %s (%s)",
				   brc == -ENOMEM ? "out of memory" : sutra_strerror(brc), why.what);
			break;
		}
		/* Reserve its range, write what a walk of the log checks, and
		 * go on; the builder writes the sections (segmenter.h). */
		if ((rc = coord_io_write_long(s->io, s->log_end, blk, head, 0))) {
			s->failed = rc;
			coord_logf(&s->log, COORD_LOG_ERR,
				   "writing a segment failed: %s; refusing writes", strerror(-rc));
			return rc;
		}
		s->seg.placing_offset = s->log_end;
		s->log_end += len;
		if (s->log_end > s->file_size)
			s->file_size = s->log_end;
		coord_segmenter_place(s->seg.segmenter, s->seg.placing_offset);
		break;
	case COORD_SEG_WRITTEN:
		if (brc) {
			/* An I/O error is fatal here as for a commit. */
			s->failed = brc;
			coord_logf(&s->log, COORD_LOG_ERR, "%s; refusing writes", why.what);
			return brc;
		}
		if ((rc = list_segment(s, &job, s->seg.placing_offset, len))) {
			coord_logf(&s->log, COORD_LOG_ERR, "listing a segment failed: out of memory");
			break;
		}
		if ((rc = coord_commit_empty(s, epoch, committed)))
			return rc;
		break;
	default:
		break;
	}
	if (!coord_segmenter_busy(s->seg.segmenter) && plan(s, &job))
		coord_segmenter_submit(s->seg.segmenter, &job);
	if (coord_reclaim(s) && !*committed) {
		/* Only the older meta slot still names what could be freed:
		 * an empty epoch rewrites it, and the next pass frees. */
		return coord_commit_empty(s, epoch, committed);
	}
	return 0;
}

int coord_store_maintenance_due_ms(const struct coord_store *s)
{
	if (!s->seg.segmenter || s->failed)
		return -1;
	uint64_t now = coord_mono_ms(), due = coord_reclaim_due(s);
	/* Only commits with records move last_commit_ms, so an idle flush
	 * (itself an empty commit) does not ask for another. */
	if ((coord_compact_idle_flush_wanted(s->seg.tail_items, s->seg.tail_commit_bytes) ||
	     s->meta.segment_count >= 2) &&
	    s->seg.last_commit_ms + COORD_COMPACT_IDLE_MS < due &&
	    !coord_segmenter_busy(s->seg.segmenter))
		due = s->seg.last_commit_ms + COORD_COMPACT_IDLE_MS;
	if (due == UINT64_MAX)
		return -1;
	return due <= now ? 0 : (int)(due - now);
}

void coord_store_on_segment_done(struct coord_store *s, void (*fn)(void *arg), void *arg)
{
	if (s->seg.segmenter)
		coord_segmenter_on_done(s->seg.segmenter, fn, arg);
}
