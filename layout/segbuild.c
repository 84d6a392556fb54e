/* SPDX-License-Identifier: MIT */
/* Index segments, building: the final state of a range of commit blocks and older segments, emitted as one segment block. */
#include "layout/segindex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "layout/segindex_internal.h"
#include "util/crc32c.h"
#include "util/endian.h"
#include "util/grow.h"
#include "util/hash.h"
#include "util/idmap.h"

struct bconcept {
	uint8_t id[16];
	uint32_t ordinal;
	uint32_t deleted;
	const unsigned char *rec; /* the record's bytes in the mapping */
	uint32_t rec_len;
};

struct builder {
	const struct layout_segbuild_in *in;
	struct util_idmap cmap; /* id -> index in cs */
	struct bconcept *cs;
	size_t ncs, capcs;
	struct util_idmap emap; /* edge key -> index in es */
	struct layout_seg_edge *es;
	size_t nes, capes;
	roaring_bitmap_t *dead;
};

/* Every few thousand items: whether the owner asked the build to stop. */
static int cancelled(const struct builder *b, uint64_t i)
{
	return (i & 4095) == 0 && b->in->cancel && __atomic_load_n(b->in->cancel, __ATOMIC_RELAXED);
}

static int put_concept(struct builder *b, const uint8_t id[16], uint32_t ordinal, int deleted,
		       const unsigned char *rec, uint32_t rec_len)
{
	uint64_t i;
	if (!util_idmap_get(&b->cmap, id, &i)) {
		if (UTIL_GROW(b->cs, b->capcs, b->ncs + 1, 1024))
			return -ENOMEM;
		i = b->ncs;
		if (util_idmap_put(&b->cmap, id, i))
			return -ENOMEM;
		b->ncs++;
		memcpy(b->cs[i].id, id, 16);
	}
	struct bconcept *c = &b->cs[i];
	c->ordinal = ordinal;
	c->deleted = (uint32_t)deleted;
	c->rec = rec;
	c->rec_len = rec_len;
	if (deleted)
		roaring_bitmap_add(b->dead, ordinal);
	return 0;
}

static int put_edge(struct builder *b, const struct layout_seg_edge *e)
{
	uint8_t key[16];
	uint64_t i;
	layout_edge_key(key, e->src_ordinal, e->dst_ordinal, e->type);
	if (!util_idmap_get(&b->emap, key, &i)) {
		if (UTIL_GROW(b->es, b->capes, b->nes + 1, 1024))
			return -ENOMEM;
		i = b->nes++;
		if (util_idmap_put(&b->emap, key, i))
			return -ENOMEM;
	}
	b->es[i] = *e;
	return 0;
}

static int take_segment(struct builder *b, struct layout_segview *sv, struct sutra_detail *pb)
{
	int rc;
	const roaring_bitmap_t *t;
	if ((rc = layout_segview_tombstones(sv, &t, pb)))
		return rc;
	roaring_bitmap_or_inplace(b->dead, t);
	for (uint64_t i = 0; i < sv->nconcepts; i++) {
		struct layout_seg_concept c;
		struct layout_record rec;
		if (cancelled(b, i))
			return -ECANCELED;
		if ((rc = layout_segview_concept(sv, i, &c, pb)))
			return rc;
		if (c.flags & LAYOUT_SEG_DELETED) {
			rc = put_concept(b, c.id, c.ordinal, 1, NULL, 0);
		} else {
			if ((rc = layout_segview_record(sv, &c, &rec, pb)))
				return rc;
			rc = put_concept(b, c.id, c.ordinal, 0, sv->base + c.record, rec.length);
		}
		if (rc)
			return rc;
	}
	for (uint64_t i = 0; i < sv->nedges; i++) {
		struct layout_seg_edge e;
		if (cancelled(b, i))
			return -ECANCELED;
		if ((rc = layout_segview_edge(sv, i, &e, pb)) || (rc = put_edge(b, &e)))
			return rc;
	}
	return 0;
}

static int take_blocks(struct builder *b, struct sutra_detail *pb)
{
	const struct layout_segbuild_in *in = b->in;
	const unsigned char *base = in->base;
	for (uint64_t pos = in->from; pos < in->to;) {
		struct layout_block blk;
		struct layout_record_iter it;
		struct layout_record rec;
		int rc = layout_block_decode(base, in->to, pos, &blk, pb);
		if (rc == 0)
			rc = layout_block_check_payload(base, &blk, pb);
		if (rc)
			return rc;
		pos = blk.offset + blk.length;
		if (blk.type != LAYOUT_BLOCK_COMMIT)
			continue;
		if (cancelled(b, 0)) /* each block: a relaxed load */
			return -ECANCELED;
		layout_records_init(&it, base, &blk, in->vector_dim);
		while ((rc = layout_records_next(&it, &rec, pb)) == 1) {
			const struct layout_association *a = &rec.u.association;
			struct layout_seg_edge e = { 0 };
			switch (rec.type) {
			case LAYOUT_REC_CONCEPT:
				rc = put_concept(b, rec.u.concept.id, rec.u.concept.ordinal, 0,
						 base + rec.offset, rec.length);
				break;
			case LAYOUT_REC_CONCEPT_DELETE:
				rc = put_concept(b, rec.u.concept.id, rec.u.concept.ordinal, 1, NULL,
						 0);
				break;
			case LAYOUT_REC_ASSOCIATION:
			case LAYOUT_REC_ASSOCIATION_DELETE:
				memcpy(e.src, a->src, 16);
				memcpy(e.dst, a->dst, 16);
				e.src_ordinal = a->src_ordinal;
				e.dst_ordinal = a->dst_ordinal;
				e.type = a->type;
				if (rec.type == LAYOUT_REC_ASSOCIATION) {
					e.confidence = a->confidence;
					e.weight = a->weight;
					e.created_us = a->created_us;
				} else {
					e.flags = LAYOUT_SEG_DELETED;
				}
				rc = put_edge(b, &e);
				break;
			default:
				rc = 0;
				break;
			}
			if (rc)
				return rc;
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int cmp_concept(const void *x, const void *y)
{
	const struct bconcept *a = x, *b = y;
	return (a->ordinal > b->ordinal) - (a->ordinal < b->ordinal);
}

static int cmp_edge(const void *x, const void *y)
{
	const struct layout_seg_edge *a = x, *b = y;
	if (a->src_ordinal != b->src_ordinal)
		return a->src_ordinal < b->src_ordinal ? -1 : 1;
	if (a->dst_ordinal != b->dst_ordinal)
		return a->dst_ordinal < b->dst_ordinal ? -1 : 1;
	return (a->type > b->type) - (a->type < b->type);
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return (a > b) - (a < b);
}

static uint64_t slots_for(uint64_t n)
{
	uint64_t cap = 8;
	while (cap < 2 * n)
		cap *= 2;
	return cap;
}

/* Fills a slot table (cap slots at p) for the groups of a sorted list. */
static void fill_slots(unsigned char *p, uint64_t cap, uint32_t ordinal, uint32_t count,
		       uint64_t first)
{
	uint64_t mask = cap - 1, s = hash_ordinal(ordinal) & mask;
	while (util_get_le32(p + s * LAYOUT_SEG_SLOT_SIZE + SL_ORD))
		s = (s + 1) & mask;
	unsigned char *q = p + s * LAYOUT_SEG_SLOT_SIZE;
	util_put_le32(q + SL_ORD, ordinal + 1);
	util_put_le32(q + SL_COUNT, count);
	util_put_le64(q + SL_FIRST, first);
}

/* The HNSW graph and the text index of the live concepts cs[0..nc), which
 * are sorted by ordinal: nodes are added in ordinal order with a seed drawn
 * from the epoch range, so that the same range gives the same bytes
 * whether built from commit blocks or merged from segments. */
static int build_search(struct builder *b, size_t nc, struct layout_hnsw_builder **hbp,
			struct layout_textidx_builder **tbp, struct sutra_detail *pb)
{
	const struct layout_segbuild_in *in = b->in;
	struct layout_hnsw_params hp = {
		.dim = in->vector_dim,
		.m = in->hnsw_m < 2 ? 2 : in->hnsw_m > LAYOUT_HNSW_MAX_M ? LAYOUT_HNSW_MAX_M
									 : in->hnsw_m,
		.ef_construction = in->hnsw_ef_construction ? in->hnsw_ef_construction : 1,
		.seed = util_mix64(in->first_epoch * 0x9E3779B97F4A7C15ull ^ in->last_epoch),
	};
	uint32_t nvec = 0;
	int rc;
	for (size_t i = 0; i < nc; i++)
		nvec += !b->cs[i].deleted; /* room: not every concept has a vector */
	if ((rc = layout_hnsw_builder_create(&hp, nvec, hbp)))
		return rc;
	if ((rc = layout_textidx_builder_create(tbp)))
		return rc;
	for (size_t i = 0; i < nc; i++) {
		const struct bconcept *c = &b->cs[i];
		struct layout_record rec;
		if (c->deleted)
			continue;
		if (cancelled(b, i))
			return -ECANCELED;
		/* The record's own bytes: inputs may come from other mappings. */
		if ((rc = layout_record_at_trusted(c->rec, layout_align_up(c->rec_len, 8), 0,
						   in->vector_dim, &rec, pb)))
			return rc;
		const struct layout_concept *k = &rec.u.concept;
		if ((rc = layout_textidx_add(*tbp, c->ordinal, k->content, k->content_len)))
			return rc;
		if (k->vector_dim &&
		    (rc = layout_hnsw_add(*hbp, c->ordinal, (const float *)k->embedding))) {
			/* The coordinator refuses such vectors; one on disk is damage. */
			if (rc == SUTRA_EVALUE) {
				util_detail_set(pb, rec.offset,
						   "concept embedding cannot be normalised");
				rc = SUTRA_ECORRUPT;
			}
			return rc;
		}
	}
	return 0;
}

static int emit(struct builder *b, unsigned char **out, uint64_t *out_len,
		struct sutra_detail *pb)
{
	const struct layout_segbuild_in *in = b->in;
	int drop = in->base_segment;
	size_t nc = 0, ne = 0, live_c = 0, live_e = 0;
	uint64_t rec_bytes = 0;
	int rc = 0;

	/* Compact away what a base segment need not remember. */
	for (size_t i = 0; i < b->ncs; i++) {
		if (drop && b->cs[i].deleted)
			continue;
		b->cs[nc++] = b->cs[i];
		if (!b->cs[nc - 1].deleted) {
			live_c++;
			rec_bytes += layout_align_up(b->cs[nc - 1].rec_len, 8);
		}
	}
	for (size_t i = 0; i < b->nes; i++) {
		if (drop && (b->es[i].flags & LAYOUT_SEG_DELETED))
			continue;
		b->es[ne++] = b->es[i];
		live_e += !(b->es[ne - 1].flags & LAYOUT_SEG_DELETED);
	}
	if (ne > UINT32_MAX || nc > UINT32_MAX - 1)
		return SUTRA_ETOOBIG;
	if (drop)
		roaring_bitmap_clear(b->dead);
	if (nc > 1)
		qsort(b->cs, nc, sizeof *b->cs, cmp_concept);
	if (ne > 1)
		qsort(b->es, ne, sizeof *b->es, cmp_edge);
	/* IN_LIST: edge indices by (dst ordinal, index), sorted as one u64. */
	uint64_t *inl = malloc((ne ? ne : 1) * sizeof *inl);
	if (!inl)
		return -ENOMEM;
	for (size_t i = 0; i < ne; i++)
		inl[i] = (uint64_t)b->es[i].dst_ordinal << 32 | i;
	if (ne > 1)
		qsort(inl, ne, sizeof *inl, cmp_u64);
	uint64_t nout = 0, nin = 0;
	for (size_t i = 0; i < ne; i++) {
		nout += i == 0 || b->es[i].src_ordinal != b->es[i - 1].src_ordinal;
		nin += i == 0 || inl[i] >> 32 != inl[i - 1] >> 32;
	}
	roaring_bitmap_run_optimize(b->dead);

	struct layout_hnsw_builder *hb = NULL;
	struct layout_textidx_builder *tb = NULL;
	uint64_t terms_len = 0, postings_len = 0;
	if ((rc = build_search(b, nc, &hb, &tb, pb)) ||
	    (rc = layout_textidx_finish(tb, &terms_len, &postings_len))) {
		layout_hnsw_builder_destroy(hb);
		layout_textidx_builder_destroy(tb);
		free(inl);
		return rc;
	}

	uint64_t len[LAYOUT_SEG_SECTIONS + 1] = { 0 };
	uint64_t id_cap = slots_for(nc), out_cap = slots_for(nout), in_cap = slots_for(nin);
	len[LAYOUT_SEC_RECORDS] = rec_bytes;
	len[LAYOUT_SEC_CONCEPTS] = (uint64_t)nc * LAYOUT_SEG_CONCEPT_SIZE;
	len[LAYOUT_SEC_ID_HASH] = LAYOUT_SEG_SLOT_SIZE * id_cap;
	len[LAYOUT_SEC_EDGES] = (uint64_t)ne * LAYOUT_SEG_EDGE_SIZE;
	len[LAYOUT_SEC_OUT_INDEX] = out_cap * LAYOUT_SEG_SLOT_SIZE;
	len[LAYOUT_SEC_IN_INDEX] = in_cap * LAYOUT_SEG_SLOT_SIZE;
	len[LAYOUT_SEC_IN_LIST] = 4 * (uint64_t)ne;
	len[LAYOUT_SEC_TOMBSTONES] = roaring_bitmap_frozen_size_in_bytes(b->dead);
	len[LAYOUT_SEC_HNSW] = layout_hnsw_serialized_size(hb);
	len[LAYOUT_SEC_TERMS] = terms_len;
	len[LAYOUT_SEC_POSTINGS] = postings_len;
	uint64_t nchunks = 0;
	for (unsigned k = 1; k < LAYOUT_SEC_CHUNK_CRCS; k++)
		nchunks += (len[k] + LAYOUT_SEG_CHUNK - 1) / LAYOUT_SEG_CHUNK;
	len[LAYOUT_SEC_CHUNK_CRCS] = 4 * nchunks;

	struct layout_section sec[LAYOUT_SEG_SECTIONS];
	uint64_t pos = layout_segment_data_start(LAYOUT_SEG_SECTIONS);
	for (unsigned k = 1; k <= LAYOUT_SEG_SECTIONS; k++) {
		pos = layout_align_up(pos, 64); /* cache-line aligned entries */
		sec[k - 1] = (struct layout_section){ .kind = k, .offset = pos, .length = len[k] };
		pos += len[k];
	}
	uint64_t total = layout_align_up(pos, LAYOUT_BLOCK_ALIGN);
	/* Page-aligned like the block in the file: the frozen bitmap view
	 * wants 32-byte alignment of its section. */
	unsigned char *blk = NULL;
	if (total > LAYOUT_MAX_BLOCK)
		rc = SUTRA_ETOOBIG;
	else if (!(blk = aligned_alloc(4096, (size_t)layout_align_up(total, 4096))))
		rc = -ENOMEM;
	if (rc) {
		layout_hnsw_builder_destroy(hb);
		layout_textidx_builder_destroy(tb);
		free(inl);
		return rc;
	}
	memset(blk, 0, (size_t)total);
#define SEC(k) (blk + sec[(k) - 1].offset)
	/* RECORDS and CONCEPTS, ID_HASH */
	uint64_t rpos = 0;
	for (size_t i = 0; i < nc; i++) {
		const struct bconcept *c = &b->cs[i];
		unsigned char *e = SEC(LAYOUT_SEC_CONCEPTS) + i * LAYOUT_SEG_CONCEPT_SIZE;
		memcpy(e + CE_ID, c->id, 16);
		util_put_le32(e + CE_ORDINAL, c->ordinal);
		util_put_le32(e + CE_FLAGS, c->deleted ? LAYOUT_SEG_DELETED : 0);
		if (!c->deleted) {
			memcpy(SEC(LAYOUT_SEC_RECORDS) + rpos, c->rec, c->rec_len);
			util_put_le64(e + CE_RECORD, rpos);
			rpos += layout_align_up(c->rec_len, 8);
		}
		uint64_t hv = hash_id(c->id), mask = id_cap - 1, s = hv & mask;
		unsigned char *h = SEC(LAYOUT_SEC_ID_HASH);
		while (util_get_le32(h + s * LAYOUT_SEG_SLOT_SIZE + IH_ENTRY))
			s = (s + 1) & mask;
		unsigned char *slot = h + s * LAYOUT_SEG_SLOT_SIZE;
		util_put_le32(slot + IH_ENTRY, (uint32_t)i + 1);
		util_put_le32(slot + IH_TAG, (uint32_t)(hv >> 32));
		util_put_le64(slot + IH_RECORD, c->deleted ? IH_DELETED : util_get_le64(e + CE_RECORD));
	}
	/* EDGES, OUT_INDEX, IN_LIST, IN_INDEX */
	for (size_t i = 0; i < ne; i++) {
		const struct layout_seg_edge *e = &b->es[i];
		unsigned char *p = SEC(LAYOUT_SEC_EDGES) + i * LAYOUT_SEG_EDGE_SIZE;
		memcpy(p + EE_SRC, e->src, 16);
		memcpy(p + EE_DST, e->dst, 16);
		util_put_le32(p + EE_SRC_ORD, e->src_ordinal);
		util_put_le32(p + EE_DST_ORD, e->dst_ordinal);
		p[EE_TYPE] = e->type;
		p[EE_FLAGS] = e->flags;
		util_put_lef32(p + EE_CONF, e->confidence);
		util_put_lef32(p + EE_WEIGHT, e->weight);
		util_put_le64(p + EE_CREATED, e->created_us);
		util_put_le32(SEC(LAYOUT_SEC_IN_LIST) + 4 * i, (uint32_t)inl[i]);
	}
	for (size_t i = 0, j; i < ne; i = j) {
		for (j = i + 1; j < ne && b->es[j].src_ordinal == b->es[i].src_ordinal; j++)
			;
		fill_slots(SEC(LAYOUT_SEC_OUT_INDEX), out_cap, b->es[i].src_ordinal,
			   (uint32_t)(j - i), i);
	}
	for (size_t i = 0, j; i < ne; i = j) {
		uint32_t d = (uint32_t)(inl[i] >> 32);
		for (j = i + 1; j < ne && inl[j] >> 32 == d; j++)
			;
		fill_slots(SEC(LAYOUT_SEC_IN_INDEX), in_cap, d, (uint32_t)(j - i), i);
	}
	free(inl);
	roaring_bitmap_frozen_serialize(b->dead, (char *)SEC(LAYOUT_SEC_TOMBSTONES));
	layout_hnsw_serialize(hb, SEC(LAYOUT_SEC_HNSW));
	layout_textidx_serialize(tb, SEC(LAYOUT_SEC_TERMS), SEC(LAYOUT_SEC_POSTINGS));
	layout_hnsw_builder_destroy(hb);
	layout_textidx_builder_destroy(tb);
	/* CHUNK_CRCS */
	uint64_t ci = 0;
	for (unsigned k = 1; k < LAYOUT_SEC_CHUNK_CRCS; k++) {
		for (uint64_t off = 0; off < len[k]; off += LAYOUT_SEG_CHUNK, ci++) {
			uint64_t n = len[k] - off < LAYOUT_SEG_CHUNK ? len[k] - off : LAYOUT_SEG_CHUNK;
			util_put_le32(SEC(LAYOUT_SEC_CHUNK_CRCS) + 4 * ci,
				      util_crc32c(0, SEC(k) + off, (size_t)n));
		}
	}
#undef SEC
	struct layout_segment hdr = {
		.first_epoch = in->first_epoch,
		.last_epoch = in->last_epoch,
		.concept_count = live_c,
		.association_count = live_e,
		.next_ordinal = in->next_ordinal,
	};
	if ((rc = layout_segment_seal(blk, total, in->last_epoch, &hdr, sec, LAYOUT_SEG_SECTIONS))) {
		util_detail_set(pb, 0, "segment layout does not seal");
		free(blk);
		return rc;
	}
	*out = blk;
	*out_len = total;
	return 0;
}

int layout_segment_build(const struct layout_segbuild_in *in, unsigned char **out, uint64_t *len,
			 struct sutra_detail *pb)
{
	struct builder b = { .in = in };
	int rc = 0;
	util_idmap_init(&b.cmap);
	util_idmap_init(&b.emap);
	if (!(b.dead = roaring_bitmap_create()))
		return -ENOMEM;
	for (uint32_t i = 0; i < in->nsegs && !rc; i++)
		rc = take_segment(&b, in->segs[i], pb);
	if (!rc)
		rc = take_blocks(&b, pb);
	if (!rc)
		rc = emit(&b, out, len, pb);
	util_idmap_finish(&b.cmap);
	util_idmap_finish(&b.emap);
	free(b.cs);
	free(b.es);
	roaring_bitmap_free(b.dead);
	return rc;
}
