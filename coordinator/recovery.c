/* SPDX-License-Identifier: MIT */
/* Opening a store's file: creating it, choosing the epoch, verifying, rebuilding the state, repairing (FORMAT.md 11.4). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coordinator/store_internal.h"
#include "layout/segindex.h"
#include "sutra/errors.h"
#include "util/detail.h"
#include "util/endian.h"
#include "util/random.h"

#define DEFAULT_DIM 768u

/* ---- Request markers ------------------------------------------------------ */

/* Remembers a request marker met during replay: per client a ring of the
 * last COORD_MARKER_RING, for the COORD_MARKER_CLIENTS clients seen last. */
static int remember_marker(struct coord_markers *mk, uint64_t client_id, uint64_t seq, uint32_t crc,
			   uint64_t epoch)
{
	unsigned char key[16] = { 0 };
	uint64_t ix;

	util_put_le64(key, client_id);
	if (!util_idmap_get(&mk->ix, key, &ix)) {
		if (!mk->clients &&
		    !(mk->clients = calloc(COORD_MARKER_CLIENTS, sizeof *mk->clients)))
			return -ENOMEM;
		if (mk->n < COORD_MARKER_CLIENTS) {
			ix = mk->n++;
		} else {
			ix = 0;
			for (uint32_t i = 1; i < mk->n; i++)
				if (mk->clients[i].last_epoch < mk->clients[ix].last_epoch)
					ix = i;
			unsigned char old[16] = { 0 };
			util_put_le64(old, mk->clients[ix].id);
			util_idmap_del(&mk->ix, old);
		}
		int rc = util_idmap_put(&mk->ix, key, ix);
		if (rc)
			return rc;
		memset(&mk->clients[ix], 0, sizeof mk->clients[ix]);
		mk->clients[ix].id = client_id;
	}
	struct coord_marker_client *mc = &mk->clients[ix];
	mc->last_epoch = epoch;
	mc->ring[seq % COORD_MARKER_RING] =
		(struct coord_marker){ .seq = seq, .epoch = epoch, .crc = crc, .used = 1 };
	return 0;
}

void coord_store_foreach_marker(const struct coord_store *s,
				void (*fn)(void *arg, uint64_t client_id, uint64_t seq, uint32_t crc,
					   uint64_t epoch),
				void *arg)
{
	for (uint32_t i = 0; i < s->markers.n; i++) {
		const struct coord_marker_client *mc = &s->markers.clients[i];
		/* Oldest first: the ring is indexed by seq, so order by seq. */
		const struct coord_marker *order[COORD_MARKER_RING];
		unsigned n = 0;
		for (unsigned r = 0; r < COORD_MARKER_RING; r++)
			if (mc->ring[r].used)
				order[n++] = &mc->ring[r];
		for (unsigned a = 1; a < n; a++)
			for (unsigned b = a; b > 0 && order[b - 1]->seq > order[b]->seq; b--) {
				const struct coord_marker *t = order[b];
				order[b] = order[b - 1];
				order[b - 1] = t;
			}
		for (unsigned k = 0; k < n; k++)
			fn(arg, mc->id, order[k]->seq, order[k]->crc, order[k]->epoch);
	}
}

/* ---- Rebuilding the state ------------------------------------------------- */

/* The state the current meta's segments give (oldest first), for a log
 * whose commit blocks below log_start may be freed. */
static int load_from_segments(struct coord_store *s, const struct layout_view *v,
			      struct sutra_detail *pb)
{
	struct coord_state *st = &s->st;
	const struct layout_meta *m = &v->meta;
	int rc = 0;
	for (uint32_t j = 0; j < m->segment_count && !rc; j++) {
		struct layout_segview sv;
		const roaring_bitmap_t *dead;
		if ((rc = layout_segview_open(&sv, v->base, m->published_end, &m->segments[j],
					      v->sb.vector_dim, pb)))
			return rc;
		if ((rc = layout_segview_tombstones(&sv, &dead, pb)) == 0) {
			roaring_uint32_iterator_t *it = roaring_create_iterator(dead);
			for (; it && it->has_value; roaring_advance_uint32_iterator(it))
				if (it->current_value < st->cs_cap)
					coord_state_concept_gone(st, it->current_value);
			roaring_free_uint32_iterator(it);
		}
		for (uint64_t i = 0; i < sv.nconcepts && !rc; i++) {
			struct layout_seg_concept c;
			struct layout_record rec;
			if ((rc = layout_segview_concept(&sv, i, &c, pb)) ||
			    (rc = coord_state_reserve(st, c.ordinal)))
				break;
			if (c.flags & LAYOUT_SEG_DELETED) {
				coord_state_concept_gone(st, c.ordinal);
				continue;
			}
			if ((rc = layout_segview_record(&sv, &c, &rec, pb)) ||
			    (rc = coord_state_concept_seen(st, c.ordinal, c.id,
							   rec.u.concept.created_us)))
				break;
		}
		for (uint64_t i = 0; i < sv.nedges && !rc; i++) {
			struct layout_seg_edge e;
			if ((rc = layout_segview_edge(&sv, i, &e, pb)))
				break;
			if (e.src_ordinal >= st->cs_cap || e.dst_ordinal >= st->cs_cap) {
				util_detail_set(pb, sv.offset, "segment edge names an unknown ordinal");
				rc = SUTRA_ECORRUPT;
				break;
			}
			int have = coord_state_edge_find(st, e.src_ordinal, e.dst_ordinal, e.type, NULL);
			if (e.flags & LAYOUT_SEG_DELETED) {
				if (have)
					coord_state_edge_remove(st, e.src_ordinal, e.dst_ordinal, e.type);
			} else if (!have) {
				rc = coord_state_edge_insert(st, e.src_ordinal, e.dst_ordinal, e.type,
							     e.created_us);
			}
		}
		layout_segview_close(&sv);
	}
	return rc;
}

/* Replays the verified log of the current epoch into the state: from its
 * segments and the commit blocks after them, or from the first block. */
static int replay(struct coord_store *s, const struct layout_view *v, struct sutra_detail *pb)
{
	struct coord_state *st = &s->st;
	uint64_t pos = layout_log_start(&v->sb, &v->meta);
	int from_segments = pos > v->sb.data_offset;
	int rc;
	if (from_segments && (rc = load_from_segments(s, v, pb)))
		return rc;

	while (pos < v->meta.published_end) {
		struct layout_block blk;
		struct layout_record_iter it;
		struct layout_record rec;
		rc = layout_block_decode(v->base, v->meta.published_end, pos, &blk, pb);
		if (rc)
			return rc;
		pos = blk.offset + blk.length;
		if (blk.type != LAYOUT_BLOCK_COMMIT)
			continue;
		/* Covered by the segments: only its request markers matter. */
		int covered = from_segments && blk.offset < v->meta.tail_start;
		layout_records_init(&it, v->base, &blk, v->sb.vector_dim);
		while ((rc = layout_records_next(&it, &rec, pb)) == 1) {
			if (covered && rec.type != LAYOUT_REC_REQUEST)
				continue;
			if (rec.type == LAYOUT_REC_CONCEPT) {
				const struct layout_concept *c = &rec.u.concept;
				if ((rc = coord_state_reserve(st, c->ordinal)) ||
				    (rc = coord_state_concept_seen(st, c->ordinal, c->id, c->created_us)))
					return rc;
			} else if (rec.type == LAYOUT_REC_REQUEST) {
				if ((rc = remember_marker(&s->markers, rec.u.request.client_id,
							  rec.u.request.seq,
							  rec.u.request.request_crc32c, blk.epoch)))
					return rc;
			} else if (rec.type == LAYOUT_REC_CONCEPT_DELETE) {
				struct coord_concept *cs = &st->cs[rec.u.concept.ordinal];
				cs->live = 0;
				util_idmap_del(&st->ids, cs->id);
				st->concept_count--;
			} else if (rec.type == LAYOUT_REC_ASSOCIATION) {
				const struct layout_association *a = &rec.u.association;
				if (!coord_state_edge_find(st, a->src_ordinal, a->dst_ordinal, a->type,
							   NULL) &&
				    (rc = coord_state_edge_insert(st, a->src_ordinal, a->dst_ordinal,
								  a->type, a->created_us)))
					return rc;
			} else {
				const struct layout_association *a = &rec.u.association;
				coord_state_edge_remove(st, a->src_ordinal, a->dst_ordinal, a->type);
			}
		}
		if (rc < 0)
			return rc;
	}
	st->next_ordinal = v->meta.next_ordinal;
	return 0;
}

/* ---- What the segments cover and what waits to be freed ------------------- */

static int listed(const struct layout_meta *m, uint64_t off)
{
	for (uint32_t i = 0; i < m->segment_count; i++)
		if (m->segments[i].offset == off)
			return 1;
	return 0;
}

/* From the verified log: what the current meta's segments cover, the
 * commit bytes of the tail, and the segment blocks no slot lists (merged
 * away before a restart: freed once every reader is past this epoch). */
static int load_segments(struct coord_store *s, const struct layout_view *v, struct sutra_detail *why)
{
	struct sutra_detail pb;
	const struct layout_meta *m = &v->meta, *om = NULL;
	uint64_t start = layout_log_start(&v->sb, m);
	int rc;
	for (int i = 0; i < (int)LAYOUT_META_SLOT_COUNT; i++) {
		int valid = v->slot_state[i] == LAYOUT_SLOT_VALID;
		s->slot[i].epoch = valid ? v->slots[i].epoch : 0;
		s->slot[i].log_start = valid ? layout_log_start(&v->sb, &v->slots[i])
					     : v->sb.data_offset;
		if (i != v->current && valid)
			om = &v->slots[i];
	}
	for (uint32_t i = 0; i < m->segment_count; i++) {
		struct layout_block blk;
		struct layout_segment seg;
		if ((rc = layout_block_decode(v->base, m->published_end, m->segments[i].offset, &blk,
					      &pb)) ||
		    (rc = layout_segment_decode_table(v->base, &blk, &seg, NULL, 0, &pb)))
			return util_fail(rc, why, "%s: %s", s->path, pb.what);
		s->seg.info[i].first_epoch = seg.first_epoch;
		s->seg.info[i].last_epoch = seg.last_epoch;
		s->seg.info[i].next_ordinal = seg.next_ordinal;
	}
	/* Whatever only the older slot lists is garbage once that slot is
	 * rewritten: retired at the next epoch. */
	for (uint32_t i = 0; om && i < om->segment_count; i++)
		if (om->segments[i].offset < start && !listed(m, om->segments[i].offset) &&
		    (rc = coord_reclaim_retire(s, om->segments[i].offset, om->segments[i].length,
					       m->epoch + 1)))
			return rc;
	/* Commit blocks before log_start were flushed before this start;
	 * freeing them again is harmless. */
	if (start > v->sb.data_offset && (rc = coord_reclaim_add_tail(s, v->sb.data_offset, start, 0)))
		return rc;
	for (uint64_t pos = start; pos < m->published_end;) {
		struct layout_block blk;
		struct layout_segment seg;
		if ((rc = layout_block_decode(v->base, m->published_end, pos, &blk, &pb)))
			return util_fail(rc, why, "%s: %s", s->path, pb.what);
		pos = blk.offset + blk.length;
		if (blk.type == LAYOUT_BLOCK_COMMIT) {
			if (blk.offset >= m->tail_start) {
				s->seg.tail_commit_bytes += blk.length;
				s->seg.tail_items += blk.item_count;
			}
			continue;
		}
		if ((rc = layout_segment_decode_table(v->base, &blk, &seg, NULL, 0, &pb)))
			return util_fail(rc, why, "%s: %s", s->path, pb.what);
		if (!listed(m, blk.offset) &&
		    (rc = coord_reclaim_retire(s, blk.offset, blk.length, m->epoch + 1)))
			return rc;
	}
	/* Flushed commit blocks between log_start and tail_start. */
	if (m->tail_start > start &&
	    (rc = coord_reclaim_add_tail(s, start, m->tail_start, m->epoch + 1)))
		return rc;
	return 0;
}

/* ---- Creating, repairing, recovering -------------------------------------- */

static int map_file(int fd, const unsigned char **base, uint64_t *size)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	*base = NULL;
	if (st.st_size == 0)
		return 0;
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	*base = p;
	return 0;
}

int coord_recover_create(const struct coord_store_options *o, struct sutra_detail *why)
{
	struct layout_superblock sb;
	uint32_t dim = o->vector_dim ? o->vector_dim : DEFAULT_DIM;

	if (dim > LAYOUT_MAX_VECTOR_DIM)
		return util_fail(SUTRA_EVALUE, why, "vector dimension %u exceeds %u", dim,
			    LAYOUT_MAX_VECTOR_DIM);
	layout_superblock_defaults(&sb, dim);
	sb.created_us = coord_wall_us();
	int rc = util_random_uuid(sb.uuid);
	if (rc == 0)
		rc = layout_create_file(o->path, &sb, sb.created_us);
	if (rc == -EEXIST)
		return 0; /* created by someone else in between: recover it */
	if (rc)
		return util_fail(rc, why, "cannot create %s: %s", o->path, sutra_strerror(rc));
	coord_logf(&o->log, COORD_LOG_NOTICE, "created %s (dimension %u, cosine)", o->path, dim);
	return 0;
}

/* Recovery (FORMAT.md 11.4). v is the opened image; other_bad is NULL
 * when the other meta slot is sound (an older epoch of this log, or empty
 * at epoch 0), else why not. Fixes the file so that the next commit starts
 * from a clean state, and reports in *need_commit whether the other slot
 * must be written again (it was cleared, or is empty past epoch 0). */
static int repair(struct coord_store *s, const struct layout_view *v, uint64_t size,
		  const char *other_bad, int *need_commit, struct sutra_detail *why)
{
	int other = 1 - v->current;

	*need_commit = 0;
	if (size > v->meta.published_end) {
		coord_logf(&s->log, COORD_LOG_NOTICE,
			   "recovery: discarding %llu unpublished bytes after offset %llu",
			   (unsigned long long)(size - v->meta.published_end),
			   (unsigned long long)v->meta.published_end);
		if (ftruncate(s->fd, (off_t)v->meta.published_end) < 0)
			return util_fail(-errno, why, "cannot truncate %s: %s", s->path,
				    strerror(errno));
	}
	if (other_bad && v->slot_state[other] != LAYOUT_SLOT_EMPTY) {
		static const unsigned char zero[LAYOUT_META_SLOT_SIZE];
		coord_logf(&s->log, COORD_LOG_NOTICE, "recovery: clearing meta slot %d (%s)", other,
			   other_bad);
		uint64_t off = v->sb.meta_offset + (uint64_t)other * v->sb.meta_slot_size;
		struct coord_io_write w = { .offset = off, .buf = zero, .len = sizeof zero };
		int rc = coord_io_submit(s->io, &w, 1, 0);
		if (rc)
			return util_fail(rc, why, "cannot clear meta slot %d: %s", other,
				    strerror(-rc));
	}
	if (other_bad)
		*need_commit = 1;
	/* Always sync at start: in relaxed mode the previous life may have left
	 * published epochs that are not durable yet. */
	int rc = coord_io_sync(s->io);
	if (rc)
		return util_fail(rc, why, "fdatasync of %s failed: %s", s->path, strerror(-rc));
	s->syncs++;
	return 0;
}

int coord_recover(struct coord_store *s, const struct coord_store_options *o, int *need_commit,
		  struct sutra_detail *why)
{
	const unsigned char *base = NULL;
	uint64_t size = 0;
	struct layout_view v;
	struct sutra_detail pb;
	int rc;

	if ((rc = map_file(s->fd, &base, &size))) {
		util_fail(rc, why, "cannot map %s: %s", o->path, strerror(-rc));
		goto out;
	}
	if ((rc = layout_open(base, size, &v, &pb))) {
		util_fail(rc, why, "%s: %s at offset %llu", o->path, pb.what,
		     (unsigned long long)pb.offset);
		goto out;
	}
	if (o->vector_dim_explicit && o->vector_dim != v.sb.vector_dim) {
		rc = util_fail(SUTRA_EDIM, why,
			  "%s has vector dimension %u, not the %u asked for", o->path,
			  v.sb.vector_dim, o->vector_dim);
		goto out;
	}
	if (v.fell_back)
		coord_logf(&s->log, COORD_LOG_WARN,
			   "recovery: newest meta slot rejected (%s at offset %llu); opening at "
			   "epoch %llu",
			   v.fallback_problem.what, (unsigned long long)v.fallback_problem.offset,
			   (unsigned long long)v.meta.epoch);
	/* The whole file first; when that fails, the published log alone:
	 * a bad other slot is repaired below, a bad log is not. */
	struct sutra_detail other_pb;
	int other_sound = layout_verify(&v, NULL, &other_pb) == 0;
	if (!other_sound && (rc = layout_verify_log(&v, NULL, &pb))) {
		util_fail(rc, why, "%s does not verify: %s at offset %llu", o->path, pb.what,
		     (unsigned long long)pb.offset);
		goto out;
	}
	s->sb = v.sb;
	s->meta = v.meta;
	for (int i = 0; i < (int)LAYOUT_META_SLOT_COUNT; i++)
		s->slot[i].seq = v.slot_state[i] == LAYOUT_SLOT_VALID ? v.slots[i].seq : 0;
	if ((rc = replay(s, &v, &pb))) {
		util_fail(rc, why, "%s: replay failed: %s", o->path,
		     rc == -ENOMEM ? "out of memory" : pb.what);
		goto out;
	}
	if ((rc = load_segments(s, &v, why)))
		goto out;
	if ((rc = repair(s, &v, size, other_sound ? NULL : other_pb.what, need_commit, why)))
		goto out;
	s->durable.slot = v.current;
out:
	if (base)
		munmap((void *)base, (size_t)size);
	return rc;
}
