/* SPDX-License-Identifier: MIT */
/* Index segments, reading: one opened in place with lazily checked chunks, and the replay state its entries give. */
#include "layout/segindex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "layout/segindex_internal.h"
#include "util/crc32c.h"
#include "util/endian.h"
#include "util/idmap.h"

static int is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* The search sections check their bytes through these (lazy chunk CRCs);
 * the views keep sv as their argument, so a segview must not move once
 * open. */
static int touch_hnsw(void *arg, uint64_t off, uint64_t len, struct sutra_detail *pb)
{
	return layout_segview_touch(arg, LAYOUT_SEC_HNSW, off, len, pb);
}

static int touch_text(void *arg, unsigned which, uint64_t off, uint64_t len,
		      struct sutra_detail *pb)
{
	return layout_segview_touch(arg, which ? LAYOUT_SEC_POSTINGS : LAYOUT_SEC_TERMS, off, len,
				    pb);
}

int layout_segview_open(struct layout_segview *sv, const void *base, uint64_t end,
			const struct layout_segment_ref *ref, uint32_t vector_dim,
			struct sutra_detail *pb)
{
	struct layout_block blk;
	struct layout_section sec[LAYOUT_SEG_SECTIONS];
	int rc;

	memset(sv, 0, sizeof *sv);
	if ((rc = layout_block_decode(base, end, ref->offset, &blk, pb)) ||
	    (rc = layout_block_check_payload(base, &blk, pb)))
		return rc;
	if (blk.type != LAYOUT_BLOCK_SEGMENT || blk.length != ref->length) {
		util_detail_set(pb, ref->offset, "meta names a segment that is not there");
		return SUTRA_ECORRUPT;
	}
	if ((rc = layout_segment_decode_table(base, &blk, &sv->hdr, sec, LAYOUT_SEG_SECTIONS, pb)))
		return rc;
	if (sv->hdr.section_count != LAYOUT_SEG_SECTIONS) {
		util_detail_set(pb, ref->offset, "segment has %u sections, not %u",
				   sv->hdr.section_count, LAYOUT_SEG_SECTIONS);
		return SUTRA_ECORRUPT;
	}
	sv->base = base;
	sv->offset = ref->offset;
	sv->length = ref->length;
	sv->vector_dim = vector_dim;
	sv->next_ordinal = sv->hdr.next_ordinal;
	for (unsigned k = 1; k <= LAYOUT_SEG_SECTIONS; k++) {
		const struct layout_section *s = &sec[k - 1];
		if (s->kind != k || s->flags) {
			util_detail_set(pb, ref->offset, "segment section %u has kind %u", k - 1,
					   s->kind);
			return SUTRA_ECORRUPT;
		}
		sv->sec_off[k] = ref->offset + s->offset;
		sv->sec_len[k] = s->length;
		if (k < LAYOUT_SEC_CHUNK_CRCS) {
			sv->chunk_first[k] = sv->nchunks;
			sv->nchunks += (s->length + LAYOUT_SEG_CHUNK - 1) / LAYOUT_SEG_CHUNK;
		}
	}
	uint64_t id_slots = sv->sec_len[LAYOUT_SEC_ID_HASH] / LAYOUT_SEG_SLOT_SIZE;
	uint64_t out_slots = sv->sec_len[LAYOUT_SEC_OUT_INDEX] / LAYOUT_SEG_SLOT_SIZE;
	uint64_t in_slots = sv->sec_len[LAYOUT_SEC_IN_INDEX] / LAYOUT_SEG_SLOT_SIZE;
	sv->nconcepts = sv->sec_len[LAYOUT_SEC_CONCEPTS] / LAYOUT_SEG_CONCEPT_SIZE;
	sv->nedges = sv->sec_len[LAYOUT_SEC_EDGES] / LAYOUT_SEG_EDGE_SIZE;
	sv->ninlist = sv->sec_len[LAYOUT_SEC_IN_LIST] / 4;
	const struct layout_section *bad = NULL;
	if (sv->sec_len[LAYOUT_SEC_RECORDS] % 8)
		bad = &sec[0];
	else if (sv->sec_len[LAYOUT_SEC_CONCEPTS] % LAYOUT_SEG_CONCEPT_SIZE)
		bad = &sec[1];
	else if (sv->sec_len[LAYOUT_SEC_ID_HASH] % LAYOUT_SEG_SLOT_SIZE || !is_pow2(id_slots) ||
		 id_slots <= sv->nconcepts || id_slots > UINT32_MAX)
		bad = &sec[2];
	else if (sv->sec_len[LAYOUT_SEC_EDGES] % LAYOUT_SEG_EDGE_SIZE)
		bad = &sec[3];
	else if (sv->sec_len[LAYOUT_SEC_OUT_INDEX] % LAYOUT_SEG_SLOT_SIZE || !is_pow2(out_slots) ||
		 out_slots > UINT32_MAX)
		bad = &sec[4];
	else if (sv->sec_len[LAYOUT_SEC_IN_INDEX] % LAYOUT_SEG_SLOT_SIZE || !is_pow2(in_slots) ||
		 in_slots > UINT32_MAX)
		bad = &sec[5];
	else if (sv->sec_len[LAYOUT_SEC_IN_LIST] % 4 || sv->ninlist != sv->nedges)
		bad = &sec[6];
	else if (sv->sec_len[LAYOUT_SEC_CHUNK_CRCS] != 4 * sv->nchunks)
		bad = &sec[LAYOUT_SEC_CHUNK_CRCS - 1];
	if (bad) {
		util_detail_set(pb, ref->offset + bad->offset,
				   "segment section of kind %u has an impossible length %llu",
				   bad->kind, (unsigned long long)bad->length);
		return SUTRA_ECORRUPT;
	}
	sv->id_cap = (uint32_t)id_slots;
	sv->out_cap = (uint32_t)out_slots;
	sv->in_cap = (uint32_t)in_slots;
	/* The chunk table itself is small: check all of it now. */
	const struct layout_section *cs = &sec[LAYOUT_SEC_CHUNK_CRCS - 1];
	uint32_t crc = util_crc32c(0, sv->base + sv->sec_off[LAYOUT_SEC_CHUNK_CRCS],
				   (size_t)cs->length);
	if (crc != cs->crc32c) {
		util_detail_set(pb, sv->sec_off[LAYOUT_SEC_CHUNK_CRCS],
				   "segment chunk table checksum mismatch");
		return SUTRA_ECORRUPT;
	}
	sv->checked = calloc(sv->nchunks / 64 + 1, sizeof *sv->checked);
	if (!sv->checked)
		return -ENOMEM;
	/* The search sections' headers: constant cost (their first chunk). */
	if ((rc = layout_hnsw_view_open(&sv->hnsw, sv->base + sv->sec_off[LAYOUT_SEC_HNSW],
					sv->sec_len[LAYOUT_SEC_HNSW], sv->sec_off[LAYOUT_SEC_HNSW],
					vector_dim, touch_hnsw, sv, pb)) ||
	    (rc = layout_textidx_view_open(&sv->text, sv->base + sv->sec_off[LAYOUT_SEC_TERMS],
					   sv->sec_len[LAYOUT_SEC_TERMS],
					   sv->sec_off[LAYOUT_SEC_TERMS],
					   sv->base + sv->sec_off[LAYOUT_SEC_POSTINGS],
					   sv->sec_len[LAYOUT_SEC_POSTINGS],
					   sv->sec_off[LAYOUT_SEC_POSTINGS], touch_text, sv, pb))) {
		free(sv->checked);
		sv->checked = NULL;
		return rc;
	}
	return 0;
}

void layout_segview_close(struct layout_segview *sv)
{
	if (!sv)
		return;
	const roaring_bitmap_t *t = __atomic_load_n(&sv->tombstones, __ATOMIC_ACQUIRE);
	if (t)
		roaring_bitmap_free((roaring_bitmap_t *)t);
	free(sv->checked);
	memset(sv, 0, sizeof *sv);
}

int layout_segview_touch(struct layout_segview *sv, unsigned kind, uint64_t off, uint64_t len,
			 struct sutra_detail *pb)
{
	if (off > sv->sec_len[kind] || len > sv->sec_len[kind] - off) {
		util_detail_set(pb, sv->sec_off[kind], "read past the end of segment section %u",
				   kind);
		return SUTRA_ECORRUPT;
	}
	if (!len)
		return 0;
	uint64_t c0 = off / LAYOUT_SEG_CHUNK, c1 = (off + len - 1) / LAYOUT_SEG_CHUNK;
	for (uint64_t c = c0; c <= c1; c++) {
		uint64_t i = sv->chunk_first[kind] + c;
		uint64_t bit = 1ull << (i % 64);
		if (__atomic_load_n(&sv->checked[i / 64], __ATOMIC_ACQUIRE) & bit)
			continue;
		uint64_t start = c * LAYOUT_SEG_CHUNK;
		uint64_t n = sv->sec_len[kind] - start < LAYOUT_SEG_CHUNK ? sv->sec_len[kind] - start
									  : LAYOUT_SEG_CHUNK;
		uint32_t crc = util_crc32c(0, sv->base + sv->sec_off[kind] + start, (size_t)n);
		uint32_t want = util_get_le32(sv->base + sv->sec_off[LAYOUT_SEC_CHUNK_CRCS] + 4 * i);
		if (crc != want) {
			util_detail_set(pb, sv->sec_off[kind] + start,
					   "segment chunk checksum mismatch (stored %08x, computed %08x)",
					   want, crc);
			return SUTRA_ECORRUPT;
		}
		__atomic_fetch_or(&sv->checked[i / 64], bit, __ATOMIC_RELEASE);
	}
	return 0;
}

int layout_segview_check_all(struct layout_segview *sv, struct sutra_detail *pb)
{
	for (unsigned k = 1; k < LAYOUT_SEC_CHUNK_CRCS; k++) {
		int rc = layout_segview_touch(sv, k, 0, sv->sec_len[k], pb);
		if (rc)
			return rc;
	}
	return 0;
}

static const unsigned char *at(const struct layout_segview *sv, unsigned kind, uint64_t off)
{
	return sv->base + sv->sec_off[kind] + off;
}

int layout_segview_concept(struct layout_segview *sv, uint64_t i, struct layout_seg_concept *c,
			   struct sutra_detail *pb)
{
	uint64_t off = i * LAYOUT_SEG_CONCEPT_SIZE;
	int rc = layout_segview_touch(sv, LAYOUT_SEC_CONCEPTS, off, LAYOUT_SEG_CONCEPT_SIZE, pb);
	if (rc)
		return rc;
	const unsigned char *p = at(sv, LAYOUT_SEC_CONCEPTS, off);
	memcpy(c->id, p + CE_ID, 16);
	c->ordinal = util_get_le32(p + CE_ORDINAL);
	c->flags = util_get_le32(p + CE_FLAGS);
	uint64_t rec = util_get_le64(p + CE_RECORD);
	if (c->flags & ~LAYOUT_SEG_DELETED || (c->flags && rec) || rec % 8 ||
	    rec >= sv->sec_len[LAYOUT_SEC_RECORDS] + (c->flags ? 1 : 0)) {
		util_detail_set(pb, sv->sec_off[LAYOUT_SEC_CONCEPTS] + off,
				   "segment concept entry %llu is malformed", (unsigned long long)i);
		return SUTRA_ECORRUPT;
	}
	c->record = c->flags ? 0 : sv->sec_off[LAYOUT_SEC_RECORDS] + rec;
	return 0;
}

int layout_segview_find(struct layout_segview *sv, const uint8_t id[16],
			struct layout_seg_concept *c, uint64_t *index, struct sutra_detail *pb)
{
	uint64_t h = hash_id(id);
	uint32_t mask = sv->id_cap - 1, tag = (uint32_t)(h >> 32);
	uint32_t s = (uint32_t)h & mask;
	uint64_t rlen = sv->sec_len[LAYOUT_SEC_RECORDS];
	for (uint32_t n = 0; n < sv->id_cap; n++, s = (s + 1) & mask) {
		uint64_t soff = (uint64_t)s * LAYOUT_SEG_SLOT_SIZE;
		int rc = layout_segview_touch(sv, LAYOUT_SEC_ID_HASH, soff, LAYOUT_SEG_SLOT_SIZE, pb);
		if (rc)
			return rc;
		const unsigned char *p = at(sv, LAYOUT_SEC_ID_HASH, soff);
		uint32_t v = util_get_le32(p + IH_ENTRY);
		if (!v)
			return 0;
		uint64_t rec = util_get_le64(p + IH_RECORD);
		if (v > sv->nconcepts || (rec != IH_DELETED && (rec % 8 || rec >= rlen))) {
			util_detail_set(pb, sv->sec_off[LAYOUT_SEC_ID_HASH] + soff,
					   "segment id slot %u is malformed", s);
			return SUTRA_ECORRUPT;
		}
		if (util_get_le32(p + IH_TAG) != tag)
			continue;
		if (rec == IH_DELETED) {
			/* Rare: the id of a tombstone lives in its entry. */
			if ((rc = layout_segview_concept(sv, v - 1, c, pb)))
				return rc;
			if (memcmp(c->id, id, 16) != 0)
				continue;
			if (!(c->flags & LAYOUT_SEG_DELETED)) {
				util_detail_set(pb, sv->sec_off[LAYOUT_SEC_ID_HASH] + soff,
						   "segment id slot and entry disagree");
				return SUTRA_ECORRUPT;
			}
		} else {
			/* A live id: straight to its record, whose id is at 8 and
			 * ordinal at 24 (FORMAT.md 8.1): one cache miss fewer. */
			if ((rc = layout_segview_touch(sv, LAYOUT_SEC_RECORDS, rec, 32, pb)))
				return rc;
			const unsigned char *r = at(sv, LAYOUT_SEC_RECORDS, rec);
			if (memcmp(r + 8, id, 16) != 0)
				continue;
			memcpy(c->id, id, 16);
			c->ordinal = util_get_le32(r + 24);
			c->flags = 0;
			c->record = sv->sec_off[LAYOUT_SEC_RECORDS] + rec;
		}
		if (index)
			*index = v - 1;
		return 1;
	}
	util_detail_set(pb, sv->sec_off[LAYOUT_SEC_ID_HASH], "segment id table has no empty slot");
	return SUTRA_ECORRUPT;
}

int layout_segview_find_ordinal(struct layout_segview *sv, uint32_t ordinal,
				struct layout_seg_concept *c, struct sutra_detail *pb)
{
	uint64_t lo = 0, hi = sv->nconcepts;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		int rc = layout_segview_concept(sv, mid, c, pb);
		if (rc)
			return rc;
		if (c->ordinal == ordinal)
			return 1;
		if (c->ordinal < ordinal)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

int layout_segview_record(struct layout_segview *sv, const struct layout_seg_concept *c,
			  struct layout_record *rec, struct sutra_detail *pb)
{
	uint64_t rel = c->record - sv->sec_off[LAYOUT_SEC_RECORDS];
	int rc = layout_segview_touch(sv, LAYOUT_SEC_RECORDS, rel, 8, pb);
	if (rc)
		return rc;
	uint64_t len = layout_align_up(util_get_le32(at(sv, LAYOUT_SEC_RECORDS, rel) + 4), 8);
	if ((rc = layout_segview_touch(sv, LAYOUT_SEC_RECORDS, rel, len, pb)) ||
	    (rc = layout_record_at_trusted(sv->base, sv->sec_off[LAYOUT_SEC_RECORDS] +
							      sv->sec_len[LAYOUT_SEC_RECORDS],
					   c->record, sv->vector_dim, rec, pb)))
		return rc;
	if (rec->type != LAYOUT_REC_CONCEPT || rec->u.concept.ordinal != c->ordinal ||
	    memcmp(rec->u.concept.id, c->id, 16) != 0) {
		util_detail_set(pb, c->record, "segment record does not match its entry");
		return SUTRA_ECORRUPT;
	}
	return 0;
}

int layout_segview_adjacent(struct layout_segview *sv, int out, uint32_t ordinal,
			    uint64_t *first, uint32_t *count, struct sutra_detail *pb)
{
	unsigned kind = out ? LAYOUT_SEC_OUT_INDEX : LAYOUT_SEC_IN_INDEX;
	uint32_t cap = out ? sv->out_cap : sv->in_cap, mask = cap - 1;
	uint64_t limit = out ? sv->nedges : sv->ninlist;
	uint32_t s = (uint32_t)hash_ordinal(ordinal) & mask;
	*first = 0;
	*count = 0;
	for (uint32_t n = 0; n < cap; n++, s = (s + 1) & mask) {
		uint64_t off = (uint64_t)s * LAYOUT_SEG_SLOT_SIZE;
		int rc = layout_segview_touch(sv, kind, off, LAYOUT_SEG_SLOT_SIZE, pb);
		if (rc)
			return rc;
		const unsigned char *p = at(sv, kind, off);
		uint32_t o = util_get_le32(p + SL_ORD);
		if (!o)
			return 0;
		if (o - 1 != ordinal)
			continue;
		uint32_t k = util_get_le32(p + SL_COUNT);
		uint64_t f = util_get_le64(p + SL_FIRST);
		if (f > limit || k > limit - f) {
			util_detail_set(pb, sv->sec_off[kind] + off,
					   "segment adjacency slot lies outside its list");
			return SUTRA_ECORRUPT;
		}
		*first = f;
		*count = k;
		return 0;
	}
	util_detail_set(pb, sv->sec_off[kind], "segment adjacency table has no empty slot");
	return SUTRA_ECORRUPT;
}

int layout_segview_edge(struct layout_segview *sv, uint64_t i, struct layout_seg_edge *e,
			struct sutra_detail *pb)
{
	uint64_t off = i * LAYOUT_SEG_EDGE_SIZE;
	int rc = i < sv->nedges ? layout_segview_touch(sv, LAYOUT_SEC_EDGES, off,
						       LAYOUT_SEG_EDGE_SIZE, pb)
				: SUTRA_ECORRUPT;
	if (rc) {
		if (i >= sv->nedges)
			util_detail_set(pb, sv->sec_off[LAYOUT_SEC_EDGES],
					   "segment edge %llu does not exist", (unsigned long long)i);
		return rc;
	}
	const unsigned char *p = at(sv, LAYOUT_SEC_EDGES, off);
	memcpy(e->src, p + EE_SRC, 16);
	memcpy(e->dst, p + EE_DST, 16);
	e->src_ordinal = util_get_le32(p + EE_SRC_ORD);
	e->dst_ordinal = util_get_le32(p + EE_DST_ORD);
	e->type = p[EE_TYPE];
	e->flags = p[EE_FLAGS];
	e->confidence = util_get_lef32(p + EE_CONF);
	e->weight = util_get_lef32(p + EE_WEIGHT);
	e->created_us = util_get_le64(p + EE_CREATED);
	if (e->flags & ~LAYOUT_SEG_DELETED || util_get_le16(p + EE_RES0) ||
	    util_get_le32(p + EE_RES1)) {
		util_detail_set(pb, sv->sec_off[LAYOUT_SEC_EDGES] + off,
				   "segment edge entry %llu is malformed", (unsigned long long)i);
		return SUTRA_ECORRUPT;
	}
	return 0;
}

int layout_segview_in_edge(struct layout_segview *sv, uint64_t i, struct layout_seg_edge *e,
			   struct sutra_detail *pb)
{
	int rc = layout_segview_touch(sv, LAYOUT_SEC_IN_LIST, 4 * i, 4, pb);
	if (rc)
		return rc;
	return layout_segview_edge(sv, util_get_le32(at(sv, LAYOUT_SEC_IN_LIST, 4 * i)), e, pb);
}

int layout_segview_tombstones(struct layout_segview *sv, const roaring_bitmap_t **out,
			      struct sutra_detail *pb)
{
	const roaring_bitmap_t *t = __atomic_load_n(&sv->tombstones, __ATOMIC_ACQUIRE);
	if (!t) {
		uint64_t len = sv->sec_len[LAYOUT_SEC_TOMBSTONES];
		int rc = layout_segview_touch(sv, LAYOUT_SEC_TOMBSTONES, 0, len, pb);
		if (rc)
			return rc;
		/* The checksum was good, so these are the bytes the writer's
		 * CRoaring produced: the view can trust them. */
		roaring_bitmap_t *v = (roaring_bitmap_t *)roaring_bitmap_frozen_view(
			(const char *)at(sv, LAYOUT_SEC_TOMBSTONES, 0), (size_t)len);
		if (!v) {
			util_detail_set(pb, sv->sec_off[LAYOUT_SEC_TOMBSTONES],
					   "segment tombstones are not a frozen bitmap");
			return SUTRA_ECORRUPT;
		}
		const roaring_bitmap_t *expected = NULL;
		if (__atomic_compare_exchange_n(&sv->tombstones, &expected, v, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			t = v;
		else {
			roaring_bitmap_free(v);
			t = expected;
		}
	}
	*out = t;
	return 0;
}

int layout_segview_dead(struct layout_segview *sv, uint32_t ordinal, struct sutra_detail *pb)
{
	const roaring_bitmap_t *t;
	int rc = layout_segview_tombstones(sv, &t, pb);
	return rc ? rc : roaring_bitmap_contains(t, ordinal);
}

/* ---- Replay state from segments ----------------------------------------- */

int layout_replay_from_segments(struct layout_replay *r, struct layout_segview *const *segs,
				uint32_t n, struct sutra_detail *pb)
{
	int rc;
	for (uint32_t j = 0; j < n; j++) {
		struct layout_segview *sv = segs[j];
		for (uint64_t i = 0; i < sv->nconcepts; i++) {
			struct layout_seg_concept c;
			uint64_t have;
			if ((rc = layout_segview_concept(sv, i, &c, pb)))
				return rc;
			if (!(c.flags & LAYOUT_SEG_DELETED)) {
				if ((rc = util_idmap_put(&r->ids, c.id, c.ordinal)))
					return rc;
			} else if (util_idmap_get(&r->ids, c.id, &have) && have == c.ordinal) {
				util_idmap_del(&r->ids, c.id);
			}
		}
		for (uint64_t i = 0; i < sv->nedges; i++) {
			struct layout_seg_edge e;
			uint8_t key[16];
			if ((rc = layout_segview_edge(sv, i, &e, pb)))
				return rc;
			layout_edge_key(key, e.src_ordinal, e.dst_ordinal, e.type);
			if (!(e.flags & LAYOUT_SEG_DELETED)) {
				if ((rc = util_idmap_put(&r->edges, key, 1)))
					return rc;
			} else {
				util_idmap_del(&r->edges, key);
			}
		}
	}
	if (!n)
		return 0;
	r->epoch = segs[n - 1]->hdr.last_epoch;
	r->next_ordinal = (uint32_t)segs[n - 1]->next_ordinal;
	r->concept_count = r->ids.len;
	r->association_count = r->edges.len;
	/* Degrees, for the rule that a concept delete has no live edges. */
	size_t cap = r->next_ordinal ? r->next_ordinal : 1;
	uint32_t *d = calloc(cap, sizeof *d);
	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < r->edges.cap; i++) {
		const struct util_idmap_slot *sl = &r->edges.slots[i];
		if (sl->state != 1)
			continue;
		uint32_t a = util_get_le32(sl->key), b = util_get_le32(sl->key + 4);
		if (a >= cap || b >= cap) {
			free(d);
			util_detail_set(pb, segs[n - 1]->offset,
					   "segment association names ordinal %u, beyond %u",
					   a > b ? a : b, r->next_ordinal);
			return SUTRA_ECORRUPT;
		}
		d[a]++; /* as replay counts them: a loop twice */
		d[b]++;
	}
	free(r->degree);
	r->degree = d;
	r->degree_cap = cap;
	return 0;
}
