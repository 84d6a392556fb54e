/* SPDX-License-Identifier: MIT */
/* libsutra-reader: the read-only mapping, the lock-file slot and its pins, refresh, and snapshots pinned to an epoch. */
#include "sutra/reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout/layout.h"
#include "layout/lockfile.h"
#include "reader/internal.h"
#include "reader/tindex.h"
#include "util/grow.h"

/* The mapping reserves this much address space once, so that the file can
 * grow under it without a remap; only bytes below a validated published
 * end are ever touched. */
#define MAP_LEN (1ull << 40)

/* ---- Pins (docs/LOCKFILE.md section 7) ------------------------------------------ */

/* The oldest epoch a snapshot of this reader holds, or 0. Under mu. */
static uint64_t oldest_held(const sutra_reader *r)
{
	uint64_t o = 0;
	for (size_t i = 0; i < r->nheld; i++)
		if (!o || r->held[i] < o)
			o = r->held[i];
	return o;
}

/* Pins what the snapshots hold, and (while a refresh reads the meta) the
 * epoch the reader has indexed, which is never newer than the one it will
 * read next. Under mu. */
static void pin(sutra_reader *r, int refreshing)
{
	uint64_t e = oldest_held(r);
	if (refreshing) {
		uint64_t now = r->epoch ? r->epoch : 1;
		if (!e || now < e)
			e = now;
	}
	layout_lockfile_pin(r->lf, e);
}

/* ---- Refresh ---------------------------------------------------------------------- */

/* Reads the newest meta and brings the view up to it: the same segments,
 * and the view's tail index grows by the new commit blocks; a new list,
 * and a new view indexes the tail after it. Under mu. */
static int refresh_locked(sutra_reader *r)
{
	struct layout_view lv;
	struct sutra_detail pb;
	pin(r, 1);
	int rc = layout_open_live(r->map, MAP_LEN, r->fd, &lv, &pb);
	if (rc == 0 && r->published_end == 0) {
		r->sb = lv.sb;
		r->published_end = lv.sb.data_offset;
	} else if (rc == 0 && memcmp(lv.sb.uuid, r->sb.uuid, 16) != 0) {
		rc = SUTRA_ECORRUPT; /* another store under the same path */
	}
	/* A slot read as torn many times (relaxed mode rewrites one slot per
	 * epoch) can make the open fall back to an older epoch: keep ours. */
	if (rc == 0 && (lv.meta.epoch > r->epoch || !r->cur)) {
		if (lv.meta.published_end < r->published_end) {
			rc = SUTRA_ECORRUPT;
		} else if (r->cur && rdr_view_same_segments(r->cur, &lv.meta)) {
			rc = rdr_view_index(r, r->cur, &lv);
		} else {
			struct rdr_view *v;
			if ((rc = rdr_view_create(r, &lv.meta, r->cur, &v)) == 0 &&
			    (rc = rdr_view_index(r, v, &lv)) != 0)
				rdr_view_release(v);
			if (rc == 0) {
				rdr_view_release(r->cur);
				r->cur = v;
			}
		}
		if (rc == 0) {
			r->epoch = lv.meta.epoch;
			r->published_end = lv.meta.published_end;
			r->concepts = lv.meta.concept_count;
			r->assocs = lv.meta.association_count;
			r->file_size = lv.size;
			r->next_ordinal = lv.meta.next_ordinal;
		}
	}
	pin(r, 0);
	return rc;
}

/* ---- Open and close ---------------------------------------------------------------- */

/* Claims a reader slot in <path>.lock, where this reader's pin lives. */
static int open_lockfile(sutra_reader *r, const char *path)
{
	size_t n = strlen(path) + sizeof ".lock";
	char *lp = malloc(n);
	uint32_t slot;
	if (!lp)
		return -ENOMEM;
	snprintf(lp, n, "%s.lock", path);
	int rc = layout_lockfile_open(lp, LAYOUT_LOCKFILE_CREATE, &r->lf, NULL);
	free(lp);
	if (rc == 0 && (rc = layout_lockfile_claim(r->lf, &slot)) != 0) {
		layout_lockfile_close(r->lf);
		r->lf = NULL;
	}
	return rc;
}

int sutra_reader_open(const char *path, sutra_reader **out)
{
	sutra_reader *r = calloc(1, sizeof *r);
	int rc;

	if (!r)
		return -ENOMEM;
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		rc = -errno;
		free(r);
		return rc;
	}
	struct stat st;
	rc = fstat(r->fd, &st) < 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL : 0;
	if (rc) {
		close(r->fd);
		free(r);
		return rc;
	}
	void *map = mmap(NULL, MAP_LEN, PROT_READ, MAP_SHARED | MAP_NORESERVE, r->fd, 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		close(r->fd);
		free(r);
		return rc;
	}
	r->map = map;
	pthread_mutex_init(&r->mu, NULL);
	rdr_notices_init(r);
	if ((rc = open_lockfile(r, path)) == 0) {
		pthread_mutex_lock(&r->mu);
		rc = refresh_locked(r);
		pthread_mutex_unlock(&r->mu);
	}
	if (rc) {
		sutra_reader_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

void sutra_reader_close(sutra_reader *r)
{
	if (!r)
		return;
	rdr_notices_finish(r);
	rdr_view_release(r->cur);
	layout_lockfile_close(r->lf);
	free(r->held);
	munmap((void *)r->map, MAP_LEN);
	close(r->fd);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

int sutra_reader_refresh(sutra_reader *r, uint64_t *epoch)
{
	pthread_mutex_lock(&r->mu);
	int rc = refresh_locked(r);
	if (epoch)
		*epoch = r->epoch;
	pthread_mutex_unlock(&r->mu);
	return rc;
}

/* ---- Snapshots ------------------------------------------------------------------ */

int sutra_snapshot_acquire(sutra_reader *r, uint64_t min_epoch, sutra_snapshot **out)
{
	sutra_snapshot *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	pthread_mutex_lock(&r->mu);
	int rc = refresh_locked(r);
	if (rc == 0 && r->epoch < min_epoch)
		rc = -EAGAIN;
	if (rc == 0)
		rc = UTIL_GROW(r->held, r->capheld, r->nheld + 1, 8);
	if (rc) {
		pthread_mutex_unlock(&r->mu);
		free(s);
		return rc;
	}
	struct rdr_view *v = r->cur;
	__atomic_add_fetch(&v->refs, 1, __ATOMIC_ACQ_REL);
	s->r = r;
	s->v = v;
	s->gen = rdr_tindex_acquire(&v->ix);
	s->egen = rdr_tindex_acquire(&v->eix);
	s->ogen = rdr_tindex_acquire(&v->oix);
	s->nids = __atomic_load_n(&v->nids, __ATOMIC_ACQUIRE);
	s->epoch = r->epoch;
	s->published_end = r->published_end;
	s->concepts = r->concepts;
	s->assocs = r->assocs;
	s->file_size = r->file_size;
	s->next_ordinal = r->next_ordinal;
	s->tail_bytes = v->tail_bytes;
	r->held[r->nheld++] = s->epoch;
	pin(r, 0);
	pthread_mutex_unlock(&r->mu);
	*out = s;
	return 0;
}

void sutra_snapshot_release(sutra_snapshot *s)
{
	if (!s)
		return;
	sutra_reader *r = s->r;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->nheld; i++) {
		if (r->held[i] == s->epoch) {
			r->held[i] = r->held[--r->nheld];
			break;
		}
	}
	pin(r, 0);
	pthread_mutex_unlock(&r->mu);
	rdr_tindex_release(s->gen);
	rdr_tindex_release(s->egen);
	rdr_tindex_release(s->ogen);
	rdr_view_release(s->v);
	free(s);
}

uint64_t sutra_snapshot_epoch(const sutra_snapshot *s)
{
	return s->epoch;
}

void sutra_snapshot_stats(const sutra_snapshot *s, struct sutra_reader_stats *st)
{
	memset(st, 0, sizeof *st);
	st->epoch = s->epoch;
	st->concept_count = s->concepts;
	st->association_count = s->assocs;
	st->published_end = s->published_end;
	st->file_size = s->file_size;
	st->tail_bytes = s->tail_bytes;
	st->segment_count = s->v->nseg;
	st->vector_dim = s->r->sb.vector_dim;
}

