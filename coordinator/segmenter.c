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

enum { IDLE, QUEUED, RUNNING, DONE };

struct coord_segmenter {
	int fd;
	const unsigned char *map;
	uint32_t vector_dim;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int state;
	int stopping;
	struct coord_segjob job;
	unsigned char *blk;
	uint64_t len;
	int rc;
	char why[224];
	void (*on_done)(void *arg);
	void *on_done_arg;
};

static int run(struct coord_segmenter *g, const struct coord_segjob *job, unsigned char **blk,
	       uint64_t *len, char *why, size_t why_len)
{
	struct layout_segview views[LAYOUT_MAX_SEGMENTS];
	struct layout_segview *pv[LAYOUT_MAX_SEGMENTS];
	struct layout_problem pb = { 0 };
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
		snprintf(why, why_len, "%s at offset %llu", pb.what, (unsigned long long)pb.offset);
	return rc;
}

static void *thread_main(void *arg)
{
	struct coord_segmenter *g = arg;
	pthread_mutex_lock(&g->mu);
	for (;;) {
		while (g->state != QUEUED && !__atomic_load_n(&g->stopping, __ATOMIC_RELAXED))
			pthread_cond_wait(&g->cv, &g->mu);
		if (__atomic_load_n(&g->stopping, __ATOMIC_RELAXED))
			break;
		g->state = RUNNING;
		struct coord_segjob job = g->job;
		pthread_mutex_unlock(&g->mu);
		unsigned char *blk = NULL;
		uint64_t len = 0;
		char why[sizeof g->why] = "";
		int rc = run(g, &job, &blk, &len, why, sizeof why);
		pthread_mutex_lock(&g->mu);
		g->blk = blk;
		g->len = len;
		g->rc = rc;
		memcpy(g->why, why, sizeof why);
		g->state = DONE;
		if (g->on_done)
			g->on_done(g->on_done_arg);
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

int coord_segmenter_start(const char *path, uint32_t vector_dim, struct coord_segmenter **out)
{
	struct coord_segmenter *g = calloc(1, sizeof *g);
	int rc;
	if (!g)
		return -ENOMEM;
	g->vector_dim = vector_dim;
	g->fd = open(path, O_RDONLY | O_CLOEXEC);
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

int coord_segmenter_poll(struct coord_segmenter *g, struct coord_segjob *job, unsigned char **blk,
			 uint64_t *len, int *rc, char *why, size_t why_len)
{
	pthread_mutex_lock(&g->mu);
	if (g->state != DONE) {
		pthread_mutex_unlock(&g->mu);
		return 0;
	}
	*job = g->job;
	*blk = g->blk;
	*len = g->len;
	*rc = g->rc;
	snprintf(why, why_len, "%s", g->why);
	g->blk = NULL;
	g->state = IDLE;
	pthread_mutex_unlock(&g->mu);
	return 1;
}

void coord_segmenter_on_done(struct coord_segmenter *g, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&g->mu);
	g->on_done = fn;
	g->on_done_arg = arg;
	pthread_mutex_unlock(&g->mu);
}
