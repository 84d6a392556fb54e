/* SPDX-License-Identifier: MIT */
/* Index segments on the writer's side: planning flushes and merges, and the hand-off with the builder thread. */
#include <errno.h>
#include <string.h>

#include "coordinator/segmenter.h"
#include "coordinator/store_internal.h"
#include "sutra/errors.h"

/* ---- Planning ------------------------------------------------------------ */

/* Size tiers of FANOUT: a run of FANOUT segments of one tier is merged;
 * a store idle for IDLE_FLUSH_MS gets its tail flushed (if it holds
 * IDLE_FLUSH_BYTES) and then all its segments merged into one. */
#define FANOUT 4u
#define MAX_LIVE_SEGMENTS 32u
/* A store idle this long gets its tail flushed once it holds this much, so
 * that readers opening an idle store index next to nothing. */
#define IDLE_FLUSH_MS 1000u
#define IDLE_FLUSH_BYTES (64u * 1024u)

static unsigned tier(const struct coord_store *s, uint64_t len)
{
	unsigned t = 0;
	for (uint64_t x = len / s->seg.segment_bytes; x >= FANOUT; x /= FANOUT)
		t++;
	return t;
}

static int idle_flush_wanted(const struct coord_store *s)
{
	return s->seg.tail_items && s->seg.tail_commit_bytes >= IDLE_FLUSH_BYTES;
}

/* The next job, if one is due: a merge of the newest run of FANOUT
 * segments of one tier (or of the newest FANOUT when there are too many),
 * else a flush of the tail once its commits pass segment_bytes. */
static int plan(struct coord_store *s, struct coord_segjob *job)
{
	const struct layout_meta *m = &s->meta;
	uint32_t n = m->segment_count;
	memset(job, 0, sizeof *job);
	job->end = m->published_end;
	int idle = coord_mono_ms() - s->seg.last_commit_ms >= IDLE_FLUSH_MS;
	if (n >= 2) {
		uint32_t i = n - 1;
		unsigned t = tier(s, m->segments[n - 1].length);
		while (i > 0 && tier(s, m->segments[i - 1].length) == t)
			i--;
		if (n - i < FANOUT && n >= MAX_LIVE_SEGMENTS)
			i = n - FANOUT;
		/* An idle store with nothing to flush is merged into one base
		 * segment: a get then probes one table. */
		int full = idle && !idle_flush_wanted(s);
		if (full)
			i = 0;
		if (n - i >= FANOUT || full) {
			job->merge = 1;
			job->first_index = i;
			job->nsegs = n - i;
			memcpy(job->segs, &m->segments[i], job->nsegs * sizeof job->segs[0]);
			job->first_epoch = s->seg.info[i].first_epoch;
			job->last_epoch = s->seg.info[n - 1].last_epoch;
			job->next_ordinal = s->seg.info[n - 1].next_ordinal;
			job->base_segment = i == 0;
			return 1;
		}
	}
	if (n < LAYOUT_MAX_SEGMENTS &&
	    (s->seg.tail_commit_bytes >= s->seg.segment_bytes || (idle && idle_flush_wanted(s))) &&
	    m->epoch > (n ? s->seg.info[n - 1].last_epoch : 0)) {
		job->from = m->tail_start;
		job->to = m->published_end;
		job->first_epoch = n ? s->seg.info[n - 1].last_epoch + 1 : 1;
		job->last_epoch = m->epoch;
		job->next_ordinal = m->next_ordinal;
		job->base_segment = n == 0;
		s->seg.job_tail_bytes = s->seg.tail_commit_bytes;
		s->seg.job_tail_items = s->seg.tail_items;
		return 1;
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
	if ((idle_flush_wanted(s) || s->meta.segment_count >= 2) &&
	    s->seg.last_commit_ms + IDLE_FLUSH_MS < due &&
	    !coord_segmenter_busy(s->seg.segmenter))
		due = s->seg.last_commit_ms + IDLE_FLUSH_MS;
	if (due == UINT64_MAX)
		return -1;
	return due <= now ? 0 : (int)(due - now);
}

void coord_store_on_segment_done(struct coord_store *s, void (*fn)(void *arg), void *arg)
{
	if (s->seg.segmenter)
		coord_segmenter_on_done(s->seg.segmenter, fn, arg);
}
