/* SPDX-License-Identifier: MIT */
/* Background segment building on a thread of its own, over a read-only mapping. */
#include "coordinator/segmenter.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "layout/segindex.h"

/* Address space reserved once, as the readers do: the file grows under it. */
#define MAP_LEN (1ull << 40)

/* IDLE -> QUEUED -> RUNNING (building) -> BUILT -> HANDED (the writer
 * reserves a place and writes the headers) -> WRITING (this thread writes
 * the sections) -> WRITTEN -> IDLE.
 * A failed build goes from RUNNING to BUILT with rc set, then IDLE. */
enum { IDLE, QUEUED, RUNNING, BUILT, HANDED, WRITING, WRITTEN };

/* Sections are written in pieces this big, each flushed before the next
 * (sync_file_range), so that little of the segment is ever dirty: the
 * writer's own fdatasync of a commit must not wait for gigabytes. */
#define WRITE_PIECE (4u << 20)

struct coord_segmenter {
	int fd;
	const unsigned char *map;
	uint32_t vector_dim;
	uint32_t hnsw_m, hnsw_ef_construction;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int state;
	int stopping;
	struct coord_segjob job;
	unsigned char *blk;
	uint64_t len;
	uint64_t head;   /* bytes the writer writes itself: headers and table */
	uint64_t offset; /* where the writer placed the block */
	int rc;
	struct sutra_detail why;
	void (*on_done)(void *arg);
	void *on_done_arg;
};

static int run(struct coord_segmenter *g, const struct coord_segjob *job, unsigned char **blk,
	       uint64_t *len, struct sutra_detail *why)
{
	struct layout_segview views[LAYOUT_MAX_SEGMENTS];
	struct layout_segview *pv[LAYOUT_MAX_SEGMENTS];
	struct sutra_detail pb = { 0 };
	uint32_t opened = 0;
	int rc = 0;

	for (; opened < job->nsegs; opened++) {
		pv[opened] = &views[opened];
		if ((rc = layout_segview_open(&views[opened], g->map, job->end, &job->segs[opened],
					      g->vector_dim, &pb)))
			break;
	}
	if (rc == 0) {
		struct layout_segbuild_in in = {
			.base = g->map,
			.end = job->end,
			.vector_dim = g->vector_dim,
			.hnsw_m = g->hnsw_m,
			.hnsw_ef_construction = g->hnsw_ef_construction,
			.segs = pv,
			.nsegs = job->nsegs,
			.from = job->from,
			.to = job->to,
			.first_epoch = job->first_epoch,
			.last_epoch = job->last_epoch,
			.next_ordinal = job->next_ordinal,
			.base_segment = job->base_segment,
			.cancel = &g->stopping,
		};
		rc = layout_segment_build(&in, blk, len, &pb);
	}
	for (uint32_t i = 0; i < opened; i++)
		layout_segview_close(&views[i]);
	if (rc)
		util_detail_set(why, pb.offset, "%s at offset %llu", pb.what,
				(unsigned long long)pb.offset);
	return rc;
}

/* Writes blk[from, len) at offset + from, a piece at a time, then
 * fdatasyncs. 0, -ECANCELED (stopping) or -errno. */
static int write_sections(struct coord_segmenter *g, const unsigned char *blk, uint64_t from,
			  uint64_t len, uint64_t offset)
{
	for (uint64_t pos = from; pos < len;) {
		if (__atomic_load_n(&g->stopping, __ATOMIC_RELAXED))
			return -ECANCELED;
		uint64_t n = len - pos < WRITE_PIECE ? len - pos : WRITE_PIECE;
		for (uint64_t done = 0; done < n;) {
			ssize_t w = pwrite(g->fd, blk + pos + done, (size_t)(n - done),
					   (off_t)(offset + pos + done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return w < 0 ? -errno : -EIO;
			done += (uint64_t)w;
		}
		if (sync_file_range(g->fd, (off_t)(offset + pos), (off_t)n,
				    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
					    SYNC_FILE_RANGE_WAIT_AFTER) < 0)
			return -errno;
		pos += n;
	}
	return fdatasync(g->fd) < 0 ? -errno : 0;
}

static void *thread_main(void *arg)
{
	struct coord_segmenter *g = arg;
	pthread_mutex_lock(&g->mu);
	for (;;) {
		while (g->state != QUEUED && g->state != WRITING &&
		       !__atomic_load_n(&g->stopping, __ATOMIC_RELAXED))
			pthread_cond_wait(&g->cv, &g->mu);
		if (__atomic_load_n(&g->stopping, __ATOMIC_RELAXED))
			break;
		if (g->state == WRITING) {
			unsigned char *blk = g->blk;
			uint64_t head = g->head, len = g->len, offset = g->offset;
			pthread_mutex_unlock(&g->mu);
			int rc = write_sections(g, blk, head, len, offset);
			pthread_mutex_lock(&g->mu);
			g->rc = rc;
			if (rc)
				util_detail_set(&g->why, offset, "writing the sections at %llu: %s",
						(unsigned long long)offset, strerror(-rc));
			g->state = WRITTEN;
		} else {
			g->state = RUNNING;
			struct coord_segjob job = g->job;
			pthread_mutex_unlock(&g->mu);
			unsigned char *blk = NULL;
			uint64_t len = 0;
			struct sutra_detail why = { .what = "" };
			int rc = run(g, &job, &blk, &len, &why);
			pthread_mutex_lock(&g->mu);
			g->blk = blk;
			g->len = len;
			g->head = rc ? 0 : layout_segment_data_start(LAYOUT_SEG_SECTIONS);
			g->rc = rc;
			g->why = why;
			g->state = BUILT;
		}
		/* Outside mu: the callback takes the writer's lock, and the
		 * writer asks coord_segmenter_busy() while it holds that lock
		 * (a lock-order inversion the crash test caught as a hang). */
		void (*fn)(void *) = g->on_done;
		void *fn_arg = g->on_done_arg;
		if (fn) {
			pthread_mutex_unlock(&g->mu);
			fn(fn_arg);
			pthread_mutex_lock(&g->mu);
		}
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

int coord_segmenter_start(const char *path, const struct layout_superblock *sb,
			  struct coord_segmenter **out)
{
	struct coord_segmenter *g = calloc(1, sizeof *g);
	int rc;
	if (!g)
		return -ENOMEM;
	g->vector_dim = sb->vector_dim;
	g->hnsw_m = sb->hnsw_m;
	g->hnsw_ef_construction = sb->hnsw_ef_construction;
	g->fd = open(path, O_RDWR | O_CLOEXEC);
	if (g->fd < 0) {
		rc = -errno;
		free(g);
		return rc;
	}
	void *map = mmap(NULL, MAP_LEN, PROT_READ, MAP_SHARED | MAP_NORESERVE, g->fd, 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		close(g->fd);
		free(g);
		return rc;
	}
	g->map = map;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	if ((rc = pthread_create(&g->thread, NULL, thread_main, g))) {
		munmap(map, MAP_LEN);
		close(g->fd);
		free(g);
		return -rc;
	}
	*out = g;
	return 0;
}

void coord_segmenter_stop(struct coord_segmenter *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->mu);
	/* A build in progress sees it too (a merge of gigabytes would
	 * otherwise hold up the coordinator's stop). */
	__atomic_store_n(&g->stopping, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	pthread_join(g->thread, NULL);
	free(g->blk);
	munmap((void *)g->map, MAP_LEN);
	close(g->fd);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

int coord_segmenter_busy(struct coord_segmenter *g)
{
	pthread_mutex_lock(&g->mu);
	int busy = g->state != IDLE;
	pthread_mutex_unlock(&g->mu);
	return busy;
}

int coord_segmenter_submit(struct coord_segmenter *g, const struct coord_segjob *job)
{
	pthread_mutex_lock(&g->mu);
	if (g->state != IDLE) {
		pthread_mutex_unlock(&g->mu);
		return -EBUSY;
	}
	g->job = *job;
	g->state = QUEUED;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	return 0;
}

int coord_segmenter_poll(struct coord_segmenter *g, struct coord_segjob *job,
			 const unsigned char **blk, uint64_t *len, uint64_t *head, int *rc, struct sutra_detail *why)
{
	int what = 0;
	pthread_mutex_lock(&g->mu);
	if (g->state == BUILT || g->state == WRITTEN) {
		what = g->state == BUILT ? COORD_SEG_BUILT : COORD_SEG_WRITTEN;
		*job = g->job;
		*blk = g->blk;
		*len = g->len;
		*head = g->head;
		*rc = g->rc;
		if (why)
			*why = g->why;
		if (g->state == WRITTEN || g->rc) {
			/* Taken: the block is the caller's to forget. */
			free(g->blk);
			g->blk = NULL;
			*blk = NULL;
			g->state = IDLE;
		} else {
			g->state = HANDED; /* until coord_segmenter_place() */
		}
	}
	pthread_mutex_unlock(&g->mu);
	return what;
}

void coord_segmenter_place(struct coord_segmenter *g, uint64_t offset)
{
	pthread_mutex_lock(&g->mu);
	g->offset = offset;
	g->state = WRITING;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

void coord_segmenter_on_done(struct coord_segmenter *g, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&g->mu);
	g->on_done = fn;
	g->on_done_arg = arg;
	pthread_mutex_unlock(&g->mu);
}
