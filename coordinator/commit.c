/* SPDX-License-Identifier: MIT */
/* Committing: sealing the epoch being built, writing it with a meta slot, fdatasync, and what it touched. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/store_internal.h"
#include "util/endian.h"

int coord_store_commit(struct coord_store *s, int force_empty, uint64_t *epoch, int *committed)
{
	struct coord_next *n = &s->next;
	const void *data;
	size_t len;
	int rc;

	*committed = 0;
	*epoch = s->meta.epoch;
	if (s->failed)
		return s->failed;
	if (n->b.items == 0 && !force_empty)
		return 0;
	uint64_t e = s->meta.epoch + 1;
	if ((rc = layout_builder_seal(&n->b, e, &data, &len)))
		return rc; /* -ENOMEM: the epoch is lost, the store is intact */

	struct layout_meta m = s->meta;
	int slot = 1 - s->durable.slot;
	m.seq = s->slot[slot].seq + 2;
	m.epoch = e;
	m.last_block_offset = s->log_end;
	m.last_block_crc32c = util_get_le32((const unsigned char *)data + 40);
	m.durable_end = s->durable.end;
	m.published_end = s->log_end + len;
	m.commit_time_us = n->now_us ? n->now_us : coord_wall_us();
	m.concept_count = s->st.concept_count;
	m.association_count = s->st.association_count;
	m.next_ordinal = s->st.next_ordinal;

	unsigned char slotbuf[LAYOUT_META_SIZE];
	layout_meta_encode(&m, slotbuf);
	struct coord_io_write w[2] = {
		{ .offset = m.last_block_offset, .buf = data, .len = len },
		{ .offset = s->sb.meta_offset + (uint64_t)slot * s->sb.meta_slot_size,
		  .buf = slotbuf,
		  .len = sizeof slotbuf },
	};
	int sync = s->durability == COORD_DURABILITY_SYNC;
	rc = coord_io_submit(s->io, w, 2, sync);
	if (rc) {
		s->failed = rc;
		coord_logf(&s->log, COORD_LOG_ERR,
			   "commit of epoch %llu failed: %s; refusing further writes",
			   (unsigned long long)e, strerror(-rc));
		return rc;
	}
	if (sync)
		s->syncs++;
	s->meta = m;
	s->slot[slot].seq = m.seq;
	s->slot[slot].epoch = e;
	s->slot[slot].log_start = layout_log_start(&s->sb, &m);
	s->log_end = m.published_end;
	s->seg.tail_commit_bytes += len;
	if (m.published_end > s->file_size)
		s->file_size = m.published_end;
	if (sync) {
		s->durable.slot = slot;
		s->durable.end = m.published_end;
		s->durable.epoch = e;
	}
	s->commits++;
	if (n->b.items) {
		s->seg.last_commit_ms = coord_mono_ms();
		s->seg.tail_items += n->b.items;
	}
	roaring_bitmap_t *t = s->last_touched;
	s->last_touched = n->touched;
	n->touched = t;
	roaring_bitmap_clear(n->touched);
	layout_builder_reset(&n->b);
	n->undo_len = 0;
	n->now_us = 0;
	*epoch = e;
	*committed = 1;
	return 0;
}

int coord_commit_empty(struct coord_store *s, uint64_t *epoch, int *committed)
{
	coord_store_request_begin(s);
	coord_store_request_end(s, 1);
	return coord_store_commit(s, 1, epoch, committed);
}

int coord_store_sync(struct coord_store *s)
{
	if (s->failed)
		return s->failed;
	if (!coord_store_has_unsynced(s))
		return 0;
	int rc = coord_io_sync(s->io);
	if (rc) {
		s->failed = rc;
		coord_logf(&s->log, COORD_LOG_ERR, "fdatasync failed: %s; refusing further writes",
			   strerror(-rc));
		return rc;
	}
	s->syncs++;
	/* Everything written so far is durable, the current slot included. */
	s->durable.slot = 1 - s->durable.slot;
	s->durable.end = s->meta.published_end;
	s->durable.epoch = s->meta.epoch;
	return 0;
}

int coord_store_has_unsynced(const struct coord_store *s)
{
	return s->durable.epoch != s->meta.epoch;
}

unsigned char *coord_store_touched(const struct coord_store *s, size_t *len)
{
	*len = 0;
	if (roaring_bitmap_is_empty(s->last_touched))
		return NULL;
	roaring_bitmap_t *copy = roaring_bitmap_copy(s->last_touched);
	if (!copy)
		return NULL;
	roaring_bitmap_run_optimize(copy);
	size_t n = roaring_bitmap_portable_size_in_bytes(copy);
	unsigned char *buf = malloc(n);
	if (buf)
		*len = roaring_bitmap_portable_serialize(copy, (char *)buf);
	roaring_bitmap_free(copy);
	return buf;
}
