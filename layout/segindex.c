/* SPDX-License-Identifier: MIT */
/* Index segments: build one in memory, read one in place with lazily checked chunks. */
#include "layout/segindex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/crc32c.h"
#include "util/endian.h"
#include "util/grow.h"
#include "util/hash.h"
#include "util/idmap.h"

/* Entry layouts (docs/FORMAT.md section 10.2). */
#define CE_ID 0
#define CE_ORDINAL 16
#define CE_FLAGS 20
#define CE_RECORD 24
#define EE_SRC 0
#define EE_DST 16
#define EE_SRC_ORD 32
#define EE_DST_ORD 36
#define EE_TYPE 40
#define EE_FLAGS 41
#define EE_RES0 42
#define EE_CONF 44
#define EE_WEIGHT 48
#define EE_RES1 52
#define EE_CREATED 56
#define IH_ENTRY 0
#define IH_TAG 4
#define IH_RECORD 8
#define IH_DELETED UINT64_MAX
#define SL_ORD 0
#define SL_COUNT 4
#define SL_FIRST 8

/* The hashes of the ID_HASH, OUT_INDEX and IN_INDEX tables (FORMAT.md
 * section 10.1): on disk, so pinned by tests/layout/test_segindex.c. */
static uint64_t hash_id(const uint8_t id[16])
{
	return util_mix128(util_get_le64(id), util_get_le64(id + 8));
}

static uint64_t hash_ordinal(uint32_t o)
{
	return util_mix64((uint64_t)o + 0x9E3779B97F4A7C15ull);
}

static int is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* ---- Reading ------------------------------------------------------------- */

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

static int tombstones(struct layout_segview *sv, const roaring_bitmap_t **out,
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
	int rc = tombstones(sv, &t, pb);
	return rc ? rc : roaring_bitmap_contains(t, ordinal);
}

int layout_segview_tombstones(struct layout_segview *sv, const roaring_bitmap_t **out,
			      struct sutra_detail *pb)
{
	return tombstones(sv, out, pb);
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

/* ---- Building ------------------------------------------------------------ */

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
	if ((rc = tombstones(sv, &t, pb)))
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
