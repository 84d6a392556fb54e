/* SPDX-License-Identifier: MIT */
/* Full verification of a store image, and the scan of its unpublished tail. */
#include "layout/layout.h"
#include "layout/segindex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/grow.h"

/* Offsets of the segment blocks met during the walk, to check the meta's
 * segment references against. */
struct seglist {
	struct layout_segment_ref *refs;
	size_t len, cap;
};

static int seglist_add(struct seglist *l, uint64_t off, uint64_t len)
{
	if (UTIL_GROW(l->refs, l->cap, l->len + 1, 16))
		return -ENOMEM;
	l->refs[l->len].offset = off;
	l->refs[l->len].length = len;
	l->len++;
	return 0;
}

static int counts_match(const struct layout_replay *r, const struct layout_meta *m, uint64_t at,
			struct sutra_detail *pb)
{
	if (r->concept_count != m->concept_count || r->association_count != m->association_count ||
	    r->next_ordinal != m->next_ordinal) {
		util_detail_set(pb, at,
				   "meta of epoch %llu says %llu concepts, %llu associations, next "
				   "ordinal %u; the log gives %llu, %llu, %u",
				   (unsigned long long)m->epoch, (unsigned long long)m->concept_count,
				   (unsigned long long)m->association_count, m->next_ordinal,
				   (unsigned long long)r->concept_count,
				   (unsigned long long)r->association_count, r->next_ordinal);
		return SUTRA_ECORRUPT;
	}
	return 0;
}

/* The segments a meta lists: each a segment block of the log (in segs),
 * whole (every section's checksum), oldest first with contiguous epoch
 * ranges from epoch 1 to tail_epoch, the epoch of the last commit block
 * before the meta's tail_start (UINT64_MAX: not known, the walk started
 * after it). */
static int check_segments(const struct layout_view *v, const struct layout_meta *m,
			  const struct seglist *segs, uint64_t tail_epoch, uint64_t at,
			  struct sutra_detail *pb)
{
	uint64_t next_epoch = 1;
	if (m->segment_count == 0 && m->tail_start != v->sb.data_offset) {
		util_detail_set(pb, at, "meta has no segments but a tail start of %llu",
				   (unsigned long long)m->tail_start);
		return SUTRA_ECORRUPT;
	}
	for (uint32_t i = 0; i < m->segment_count; i++) {
		size_t k = 0;
		while (k < segs->len && (segs->refs[k].offset != m->segments[i].offset ||
					 segs->refs[k].length != m->segments[i].length))
			k++;
		if (k == segs->len) {
			util_detail_set(pb, at,
					   "segment %u (offset %llu) is not a segment block of the log",
					   i, (unsigned long long)m->segments[i].offset);
			return SUTRA_ECORRUPT;
		}
		struct layout_segview sv;
		int rc = layout_segview_open(&sv, v->base, m->published_end, &m->segments[i],
					     v->sb.vector_dim, pb);
		if (rc == 0)
			rc = layout_segview_check_all(&sv, pb);
		/* The search sections' structure: links, levels, slots, bitmaps. */
		if (rc == 0)
			rc = layout_hnsw_check(&sv.hnsw, pb);
		if (rc == 0)
			rc = layout_textidx_check(&sv.text, pb);
		if (rc == 0 && (sv.hdr.first_epoch != next_epoch ||
				(i + 1 == m->segment_count && tail_epoch != UINT64_MAX &&
				 sv.hdr.last_epoch != tail_epoch))) {
			util_detail_set(pb, m->segments[i].offset,
					   "segment %u covers epochs %llu..%llu, expected %llu..%s", i,
					   (unsigned long long)sv.hdr.first_epoch,
					   (unsigned long long)sv.hdr.last_epoch,
					   (unsigned long long)next_epoch,
					   i + 1 == m->segment_count ? "the tail start" : "");
			rc = SUTRA_ECORRUPT;
		}
		/* Every entry found through its slot, every record whole:
		 * readers decode records without checking their values
		 * (layout_record_at_trusted), so this is where they are. */
		for (uint64_t e = 0; rc == 0 && e < sv.nconcepts; e++) {
			struct layout_seg_concept c, f;
			struct layout_record rec;
			uint64_t idx;
			rc = layout_segview_concept(&sv, e, &c, pb);
			if (rc == 0 && (layout_segview_find(&sv, c.id, &f, &idx, pb) != 1 || idx != e)) {
				util_detail_set(pb, sv.sec_off[LAYOUT_SEC_ID_HASH],
						   "segment entry %llu is not found by its id",
						   (unsigned long long)e);
				rc = SUTRA_ECORRUPT;
			}
			if (rc == 0 && !(c.flags & LAYOUT_SEG_DELETED) &&
			    (rc = layout_record_at(v->base, sv.sec_off[LAYOUT_SEC_RECORDS] +
								   sv.sec_len[LAYOUT_SEC_RECORDS],
						   c.record, v->sb.vector_dim, &rec, pb)) == 0 &&
			    (rec.type != LAYOUT_REC_CONCEPT || rec.u.concept.ordinal != c.ordinal ||
			     memcmp(rec.u.concept.id, c.id, 16) != 0 || f.record != c.record)) {
				util_detail_set(pb, c.record, "segment record does not match its entry");
				rc = SUTRA_ECORRUPT;
			}
		}
		next_epoch = sv.hdr.last_epoch + 1;
		layout_segview_close(&sv);
		if (rc)
			return rc;
	}
	return 0;
}

/* Adds the segment blocks a meta lists below the walk's start to segs
 * (read where the refs say), then sets r to the state the current meta's
 * segments give. */
static int start_from_segments(const struct layout_view *v, const struct layout_meta *om,
			       struct layout_replay *r, struct seglist *segs,
			       struct sutra_detail *pb)
{
	const struct layout_meta *m = &v->meta;
	struct layout_segview views[LAYOUT_MAX_SEGMENTS];
	struct layout_segview *pv[LAYOUT_MAX_SEGMENTS];
	uint64_t start = layout_log_start(&v->sb, m);
	int rc = 0;
	for (int k = 0; k < 2; k++) {
		const struct layout_meta *x = k ? om : m;
		for (uint32_t i = 0; x && i < x->segment_count && !rc; i++) {
			struct layout_block blk;
			struct layout_segment seg;
			if (x->segments[i].offset >= start)
				continue;
			if ((rc = layout_block_decode(v->base, m->published_end, x->segments[i].offset,
						      &blk, pb)) ||
			    (rc = layout_block_check_payload(v->base, &blk, pb)) ||
			    (rc = layout_segment_decode_table(v->base, &blk, &seg, NULL, 0, pb)))
				return rc;
			rc = seglist_add(segs, blk.offset, blk.length);
		}
	}
	uint32_t n = 0;
	for (; n < m->segment_count && !rc; n++) {
		pv[n] = &views[n];
		rc = layout_segview_open(&views[n], v->base, m->published_end, &m->segments[n],
					 v->sb.vector_dim, pb);
		if (rc)
			break;
	}
	if (!rc)
		rc = layout_replay_from_segments(r, pv, n, pb);
	for (uint32_t i = 0; i < n; i++)
		layout_segview_close(&views[i]);
	return rc;
}

static int verify(const struct layout_view *v, struct layout_replay *rp, int check_other,
		  struct sutra_detail *pb)
{
	const struct layout_meta *m = &v->meta;
	int other = 1 - v->current;
	uint64_t other_base = v->sb.meta_offset + (uint64_t)other * v->sb.meta_slot_size;
	uint64_t cur_base = v->sb.meta_offset + (uint64_t)v->current * v->sb.meta_slot_size;
	struct layout_replay local;
	struct layout_replay *r = rp;
	struct seglist segs = { 0 };
	int rc = 0;

	if (check_other && v->fell_back) {
		util_detail_set(pb, v->fallback_problem.offset,
				   "newest meta slot rejected, store opens at older epoch %llu: %s",
				   (unsigned long long)m->epoch, v->fallback_problem.what);
		return SUTRA_ECORRUPT;
	}
	/* The other slot holds an older epoch of the same log, or nothing yet
	 * while the store is at epoch 0. */
	const struct layout_meta *om = NULL;
	switch (check_other ? v->slot_state[other] : LAYOUT_SLOT_EMPTY) {
	case LAYOUT_SLOT_CORRUPT:
		*pb = v->slot_problem[other];
		return SUTRA_ECORRUPT;
	case LAYOUT_SLOT_EMPTY:
		if (check_other && m->epoch > 0) {
			util_detail_set(pb, other_base, "meta slot %d is empty at epoch %llu", other,
					   (unsigned long long)m->epoch);
			return SUTRA_ECORRUPT;
		}
		break;
	case LAYOUT_SLOT_VALID:
		om = &v->slots[other];
		if (om->epoch >= m->epoch) {
			util_detail_set(pb, other_base,
					   "meta slot %d holds epoch %llu beside current epoch %llu",
					   other, (unsigned long long)om->epoch,
					   (unsigned long long)m->epoch);
			return SUTRA_ECORRUPT;
		}
		break;
	}

	if (!r) {
		r = &local;
		layout_replay_init(r, v->sb.vector_dim);
	}

	int other_seen = om == NULL || om->epoch == 0;
	int tail_seen = 0;
	uint64_t tail_epoch = 0, other_tail_epoch = 0;
	/* Below log_start the commit blocks may be freed (FORMAT.md 10.4):
	 * the state there is the segments', and the walk starts at it. */
	uint64_t start = layout_log_start(&v->sb, m), pos = start;
	int from_segments = start > v->sb.data_offset;
	if (from_segments && (rc = start_from_segments(v, om, r, &segs, pb)))
		goto out;
	if (from_segments && om && om->tail_start < m->tail_start)
		other_tail_epoch = UINT64_MAX; /* the walk does not see that epoch's state */
	if (om && om->epoch == 0 && (om->published_end != v->sb.data_offset ||
		   om->last_block_offset || om->last_block_crc32c ||
		   om->durable_end != v->sb.data_offset)) {
		util_detail_set(pb, other_base, "epoch 0 meta slot describes a non-empty store");
		rc = SUTRA_ECORRUPT;
		goto out;
	}
	while (pos < m->published_end) {
		struct layout_block blk;
		if (pos == m->tail_start) {
			tail_seen = 1;
			tail_epoch = r->epoch;
		}
		if (om && pos == om->tail_start && other_tail_epoch != UINT64_MAX)
			other_tail_epoch = r->epoch;
		if ((rc = layout_block_decode(v->base, m->published_end, pos, &blk, pb)) ||
		    (rc = layout_block_check_payload(v->base, &blk, pb)))
			goto out;
		if (blk.type == LAYOUT_BLOCK_COMMIT) {
			/* Blocks the segments already cover are checked, not
			 * replayed. */
			int covered = from_segments && blk.offset < m->tail_start;
			if (!covered && (rc = layout_replay_block(r, v->base, &blk, pb)))
				goto out;
			if (om && blk.epoch == om->epoch) {
				other_seen = 1;
				if (om->published_end != blk.offset + blk.length ||
				    om->last_block_offset != blk.offset ||
				    om->last_block_crc32c != blk.payload_crc32c ||
				    om->durable_end > blk.offset) {
					util_detail_set(pb, other_base,
							   "older meta slot of epoch %llu does not "
							   "match its commit block at %llu",
							   (unsigned long long)om->epoch,
							   (unsigned long long)blk.offset);
					rc = SUTRA_ECORRUPT;
					goto out;
				}
				if (!covered && (rc = counts_match(r, om, other_base, pb)))
					goto out;
			}
		} else {
			struct layout_segment seg;
			if (blk.epoch > r->epoch && !(from_segments && blk.offset < m->tail_start)) {
				util_detail_set(pb, blk.offset + 8,
						   "segment block of epoch %llu precedes that epoch",
						   (unsigned long long)blk.epoch);
				rc = SUTRA_ECORRUPT;
				goto out;
			}
			/* Only the table here: a segment no meta lists any more
			 * may have had its sections' space freed (FORMAT.md
			 * 10.4); the listed ones are checked whole below. */
			if ((rc = layout_segment_decode_table(v->base, &blk, &seg, NULL, 0, pb)) ||
			    (rc = seglist_add(&segs, blk.offset, blk.length)))
				goto out;
		}
		pos = blk.offset + blk.length;
	}
	if (pos == m->tail_start) {
		tail_seen = 1;
		tail_epoch = r->epoch;
	}
	if (om && pos == om->tail_start && other_tail_epoch != UINT64_MAX)
		other_tail_epoch = r->epoch;
	if (!other_seen && from_segments && om && om->last_block_offset < start) {
		/* The older slot's block lies before the walk: its own
		 * log_start is older, so the block is still whole. */
		struct layout_block blk;
		if ((rc = layout_block_decode(v->base, m->published_end, om->last_block_offset, &blk,
					      pb)) ||
		    (rc = layout_block_check_payload(v->base, &blk, pb)))
			goto out;
		other_seen = blk.type == LAYOUT_BLOCK_COMMIT && blk.epoch == om->epoch &&
			     blk.payload_crc32c == om->last_block_crc32c &&
			     blk.offset + blk.length == om->published_end;
	}
	if (r->epoch != m->epoch) {
		util_detail_set(pb, cur_base, "meta says epoch %llu, the log ends at epoch %llu",
				   (unsigned long long)m->epoch, (unsigned long long)r->epoch);
		rc = SUTRA_ECORRUPT;
		goto out;
	}
	if ((rc = counts_match(r, m, cur_base, pb)))
		goto out;
	if (!other_seen) {
		util_detail_set(pb, other_base, "older meta slot's epoch %llu is not in the log",
				   (unsigned long long)om->epoch);
		rc = SUTRA_ECORRUPT;
		goto out;
	}
	if (!tail_seen) {
		util_detail_set(pb, cur_base, "tail start %llu is not a block boundary",
				   (unsigned long long)m->tail_start);
		rc = SUTRA_ECORRUPT;
		goto out;
	}
	if ((rc = check_segments(v, m, &segs, tail_epoch, cur_base, pb)))
		goto out;
	if (om && om->epoch > 0)
		rc = check_segments(v, om, &segs, other_tail_epoch, other_base, pb);
out:
	free(segs.refs);
	if (r == &local)
		layout_replay_finish(&local);
	return rc;
}

int layout_verify(const struct layout_view *v, struct layout_replay *r, struct sutra_detail *pb)
{
	return verify(v, r, 1, pb);
}

int layout_verify_log(const struct layout_view *v, struct layout_replay *r,
		      struct sutra_detail *pb)
{
	return verify(v, r, 0, pb);
}

uint64_t layout_scan_tail(const struct layout_view *v, uint64_t *end, struct sutra_detail *pb)
{
	uint64_t pos = v->meta.published_end;
	uint64_t epoch = v->meta.epoch;
	uint64_t found = 0;
	struct sutra_detail why;

	*end = pos;
	util_detail_set(&why, UINT64_MAX, "no unpublished tail");
	while (pos < v->size) {
		struct layout_block blk;
		if (layout_block_decode(v->base, v->size, pos, &blk, &why) ||
		    layout_block_check_payload(v->base, &blk, &why))
			break;
		if (blk.type == LAYOUT_BLOCK_COMMIT) {
			if (blk.epoch != epoch + 1) {
				util_detail_set(&why, pos, "tail block has epoch %llu, expected %llu",
						   (unsigned long long)blk.epoch,
						   (unsigned long long)(epoch + 1));
				break;
			}
			epoch++;
			found++;
			*end = blk.offset + blk.length;
		} else if (blk.epoch > epoch) {
			util_detail_set(&why, pos, "tail segment block ahead of its epoch");
			break;
		}
		pos = blk.offset + blk.length;
		util_detail_set(&why, UINT64_MAX, "no bytes after the last tail block");
	}
	if (pb)
		*pb = why;
	return found;
}
