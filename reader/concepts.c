/* SPDX-License-Identifier: MIT */
/* Concepts through a snapshot: zero-copy get, contains and iteration over the tail and the segments. */
#include "sutra/reader.h"

#include <string.h>

#include "layout/layout.h"
#include "layout/segindex.h"
#include "reader/internal.h"
#include "reader/tindex.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "embeddings are handed out as host floats: little-endian hosts only");

int rdr_view_of(const sutra_snapshot *s, const struct found *f, struct sutra_concept_view *out)
{
	struct layout_record rec;
	struct sutra_detail pb;
	/* Tail records were checked whole when indexed, and published bytes
	 * do not change: bounds are checked again, values need not be. */
	int rc = f->seg ? layout_segview_record(&f->seg->sv, &f->c, &rec, &pb)
			: layout_record_at_trusted(s->r->map, s->published_end, f->record,
						   s->r->sb.vector_dim, &rec, &pb);
	if (rc)
		return rc;
	if (rec.type != LAYOUT_REC_CONCEPT)
		return SUTRA_ECORRUPT;
	const struct layout_concept *c = &rec.u.concept;
	memcpy(out->id, c->id, 16);
	out->ordinal = c->ordinal;
	out->content = c->content;
	out->content_len = c->content_len;
	out->embedding = c->embedding; /* 8-aligned little-endian f32 in the file */
	out->vector_dim = c->embedding ? c->vector_dim : 0;
	out->strength = c->strength;
	out->confidence = c->confidence;
	out->created_us = c->created_us;
	out->updated_us = c->updated_us;
	out->metadata = c->metadata_len ? c->metadata : NULL;
	out->metadata_len = c->metadata_len;
	return 0;
}

int sutra_snapshot_get(const sutra_snapshot *s, const uint8_t id[16],
		       struct sutra_concept_view *out)
{
	struct found f;
	int rc = rdr_lookup(s, id, &f);
	return rc < 0 ? rc : rc == 0 ? SUTRA_ENOTFOUND : rdr_view_of(s, &f, out);
}

int sutra_snapshot_contains(const sutra_snapshot *s, const uint8_t id[16])
{
	struct found f;
	return rdr_lookup(s, id, &f);
}

int sutra_snapshot_foreach(const sutra_snapshot *s,
			   int (*fn)(void *arg, const struct sutra_concept_view *c), void *arg)
{
	const struct rdr_view *v = s->v;
	struct sutra_concept_view cv;
	struct sutra_detail pb;
	int rc;
	/* The tail's concepts, then each segment's that no newer layer
	 * mentions (deleted in a newer segment: its tombstones say so). */
	for (uint32_t i = 0; i < s->nids; i++) {
		const uint8_t *id = rdr_tail_id(v, i);
		struct found f;
		uint64_t off;
		uint32_t ordinal;
		if (rdr_tindex_find(&v->ix, s->gen, id, s->epoch, &off, &ordinal) != RDR_LIVE)
			continue;
		f.ordinal = ordinal;
		f.record = off;
		f.seg = NULL;
		if ((rc = rdr_view_of(s, &f, &cv)) || (rc = fn(arg, &cv)))
			return rc;
	}
	for (uint32_t j = v->nseg; j-- > 0;) {
		struct layout_segview *sv = &v->seg[j]->sv;
		for (uint64_t i = 0; i < sv->nconcepts; i++) {
			struct found f = { .seg = v->seg[j] };
			if ((rc = layout_segview_concept(sv, i, &f.c, &pb)))
				return rc;
			if (f.c.flags & LAYOUT_SEG_DELETED)
				continue;
			int dead = 0;
			for (uint32_t k = j + 1; k < v->nseg && !dead; k++)
				if ((dead = layout_segview_dead(&v->seg[k]->sv, f.c.ordinal, &pb)) < 0)
					return dead;
			if (dead)
				continue;
			if ((rc = rdr_shadowed(s, j, f.c.id)) < 0)
				return rc;
			if (rc)
				continue;
			f.ordinal = f.c.ordinal;
			f.record = f.c.record;
			if ((rc = rdr_view_of(s, &f, &cv)) || (rc = fn(arg, &cv)))
				return rc;
		}
	}
	return 0;
}

