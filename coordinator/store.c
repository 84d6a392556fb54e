/* SPDX-License-Identifier: MIT */
/* A store's life: open (lock, create, recover, start), close, and what it tells about itself. */
#include "coordinator/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coordinator/segmenter.h"
#include "coordinator/store_internal.h"
#include "sutra/errors.h"
#include "util/detail.h"

int coord_store_open(const struct coord_store_options *o, struct coord_store **out, struct sutra_detail *why)
{
	struct coord_store *s = calloc(1, sizeof *s);
	int rc, fell_back_rc = 0;

	if (!s)
		return -ENOMEM;
	s->fd = -1;
	s->lock.fd = -1;
	s->log = o->log;
	s->durability = o->durability;
	coord_state_init(&s->st);
	util_idmap_init(&s->markers.ix);
	s->next.touched = roaring_bitmap_create();
	s->last_touched = roaring_bitmap_create();
	if (!(s->path = strdup(o->path)) || !s->next.touched || !s->last_touched) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = coord_lock_take(s, why)))
		goto fail;
	if (access(o->path, F_OK) != 0 && errno == ENOENT && (rc = coord_recover_create(o, why)))
		goto fail;
	s->fd = open(o->path, O_RDWR | O_CLOEXEC);
	if (s->fd < 0) {
		rc = util_fail(-errno, why, "cannot open %s: %s", o->path, strerror(errno));
		goto fail;
	}
	if ((rc = coord_io_open(s->fd, o->io, o->fault_spec, &s->io, &fell_back_rc))) {
		util_fail(rc, why, "cannot start the %s I/O backend: %s",
		     o->io == COORD_IO_URING ? "io_uring" : "requested", strerror(-rc));
		goto fail;
	}
	if (fell_back_rc)
		coord_logf(&s->log, COORD_LOG_WARN,
			   "io_uring unavailable (%s): using pwrite/fdatasync instead",
			   strerror(-fell_back_rc));

	int need_commit;
	if ((rc = coord_recover(s, o, &need_commit, why)))
		goto fail;
	s->durable.end = s->meta.published_end;
	s->durable.epoch = s->meta.epoch;
	s->file_size = s->meta.published_end;
	s->log_end = s->meta.published_end;
	layout_builder_init(&s->next.b, s->sb.vector_dim);
	s->seg.segment_bytes = o->segment_bytes;
	s->rec.log_retention = o->log_retention;
	if (s->seg.segment_bytes &&
	    (rc = coord_segmenter_start(s->path, &s->sb, &s->seg.segmenter))) {
		util_fail(rc, why, "cannot start the segment builder: %s", strerror(-rc));
		goto fail;
	}
	if ((rc = coord_reclaim_open_slots(s)))
		coord_logf(&s->log, COORD_LOG_WARN,
			   "reader slots unavailable (%s): merged-away segments are kept",
			   sutra_strerror(rc));
	if (need_commit) {
		/* The other slot was cleared: an empty epoch fills it again, so
		 * that both slots hold epochs of this log (FORMAT.md 11.4). */
		uint64_t e;
		int committed;
		s->durability = COORD_DURABILITY_SYNC;
		rc = coord_commit_empty(s, &e, &committed);
		s->durability = o->durability;
		if (rc) {
			util_fail(rc, why, "recovery commit failed: %s", strerror(-rc));
			goto fail;
		}
	}
	coord_logf(&s->log, COORD_LOG_INFO,
		   "opened %s at epoch %llu: %llu concepts, %llu associations, %llu bytes, I/O %s",
		   s->path, (unsigned long long)s->meta.epoch,
		   (unsigned long long)s->st.concept_count,
		   (unsigned long long)s->st.association_count,
		   (unsigned long long)s->meta.published_end, coord_io_name(s->io));
	*out = s;
	return 0;

fail:
	coord_store_close(s);
	return rc;
}

int coord_store_close(struct coord_store *s)
{
	if (!s)
		return 0;
	int rc = s->failed;
	if (!rc && s->io && coord_store_has_unsynced(s))
		rc = coord_store_sync(s);
	coord_segmenter_stop(s->seg.segmenter);
	coord_reclaim_finish(s);
	coord_io_close(s->io);
	if (s->fd >= 0)
		close(s->fd);
	coord_lock_release(s);
	coord_state_finish(&s->st);
	util_idmap_finish(&s->markers.ix);
	free(s->markers.clients);
	layout_builder_finish(&s->next.b);
	free(s->next.undo);
	free(s->next.req_touched);
	if (s->next.touched)
		roaring_bitmap_free(s->next.touched);
	if (s->last_touched)
		roaring_bitmap_free(s->last_touched);
	free(s->path);
	free(s);
	return rc;
}

int coord_store_failed(const struct coord_store *s)
{
	return s->failed;
}

uint64_t coord_store_epoch(const struct coord_store *s)
{
	return s->meta.epoch;
}

uint64_t coord_store_durable_epoch(const struct coord_store *s)
{
	return s->durable.epoch;
}

uint64_t coord_store_published_end(const struct coord_store *s)
{
	return s->meta.published_end;
}

uint32_t coord_store_vector_dim(const struct coord_store *s)
{
	return s->sb.vector_dim;
}

const uint8_t *coord_store_uuid(const struct coord_store *s)
{
	return s->sb.uuid;
}

const char *coord_store_io_name(const struct coord_store *s)
{
	return coord_io_name(s->io);
}

void coord_store_stats(const struct coord_store *s, struct proto_stats *st)
{
	memset(st, 0, sizeof *st);
	st->epoch = s->meta.epoch;
	st->durable_epoch = s->durable.epoch;
	st->published_end = s->meta.published_end;
	st->file_size = s->file_size;
	st->concept_count = s->meta.concept_count;
	st->association_count = s->meta.association_count;
	st->next_ordinal = s->meta.next_ordinal;
	st->commits = s->commits;
	st->syncs = s->syncs;
	st->vector_dim = s->sb.vector_dim;
	st->durability = (uint32_t)s->durability;
	st->io_backend = coord_io_kind(s->io) == COORD_IO_URING ? 0 : 1;
}
