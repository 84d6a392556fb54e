/* SPDX-License-Identifier: MIT */
/* Index segments: built from commit blocks and from older segments, read in place, damage caught. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout/segindex.h"
#include "tests/common/tcheck.h"
#include "tests/common/tstore.h"
#include "util/crc32c.h"
#include "util/endian.h"
#include "util/idmap.h"

static struct tstore ts;

static void setup(void)
{
	ck_assert_ok(tstore_build(&ts));
}

static void teardown(void)
{
	tstore_finish(&ts);
}

/* Builds a segment from the blocks of epochs [e0, e1] of the test store
 * and (optionally) older segments. */
static unsigned char *build(uint64_t e0, uint64_t e1, struct layout_segview **segs, uint32_t n,
			    int base, uint64_t *len)
{
	struct layout_segbuild_in in = {
		.base = ts.buf,
		.end = ts.len,
		.vector_dim = TSTORE_DIM,
		.segs = segs,
		.nsegs = n,
		.from = e0 ? ts.counts[e0 - 1].published_end : 0,
		.to = e0 ? ts.counts[e1].published_end : 0,
		.first_epoch = e0 ? e0 : 1,
		.last_epoch = e1,
		.next_ordinal = ts.counts[e1].next_ordinal,
		.base_segment = base,
	};
	unsigned char *out = NULL;
	struct sutra_detail pb;
	int rc = layout_segment_build(&in, &out, len, &pb);
	ck_assert_msg(rc == 0, "build: %d %s", rc, pb.what);
	return out;
}

static int open_view(struct layout_segview *sv, const unsigned char *blk, uint64_t len,
		     struct sutra_detail *pb)
{
	struct layout_segment_ref ref = { 0, len };
	return layout_segview_open(sv, blk, len, &ref, TSTORE_DIM, pb);
}

/* What replaying the test store up to epoch e gives, per id: the newest
 * concept record (offset in ts.buf), or 0 once deleted. */
static void expected(uint64_t e, struct util_idmap *ids, struct util_idmap *edges)
{
	struct sutra_detail pb;
	util_idmap_init(ids);
	util_idmap_init(edges);
	for (uint64_t pos = LAYOUT_DATA_OFFSET; pos < ts.counts[e].published_end;) {
		struct layout_block blk;
		struct layout_record_iter it;
		struct layout_record rec;
		ck_assert_ok(layout_block_decode(ts.buf, ts.len, pos, &blk, &pb));
		pos += blk.length;
		layout_records_init(&it, ts.buf, &blk, TSTORE_DIM);
		while (layout_records_next(&it, &rec, &pb) == 1) {
			uint8_t key[16];
			const struct layout_association *a = &rec.u.association;
			if (rec.type == LAYOUT_REC_CONCEPT)
				util_idmap_put(ids, rec.u.concept.id, rec.offset);
			else if (rec.type == LAYOUT_REC_CONCEPT_DELETE)
				util_idmap_put(ids, rec.u.concept.id, 0);
			layout_edge_key(key, a->src_ordinal, a->dst_ordinal, a->type);
			if (rec.type == LAYOUT_REC_ASSOCIATION)
				util_idmap_put(edges, key, rec.offset);
			else if (rec.type == LAYOUT_REC_ASSOCIATION_DELETE)
				util_idmap_put(edges, key, 0);
		}
	}
}

/* Every concept and edge of the view agrees with the replayed state. */
static void check_view(struct layout_segview *sv, uint64_t e, int base)
{
	struct util_idmap ids, edges;
	struct sutra_detail pb;
	uint64_t live = 0, dead = 0, ledges = 0;
	expected(e, &ids, &edges);
	for (size_t i = 0; i < ids.cap; i++) {
		const struct util_idmap_slot *s = &ids.slots[i];
		if (s->state != 1)
			continue;
		struct layout_seg_concept c;
		int rc = layout_segview_find(sv, s->key, &c, NULL, &pb);
		if (s->value == 0 && base) {
			ck_assert_ok(rc);
			continue;
		}
		ck_assert_int_eq(rc, 1);
		if (s->value == 0) {
			ck_assert_uint_eq(c.flags, LAYOUT_SEG_DELETED);
			ck_assert_int_eq(layout_segview_dead(sv, c.ordinal, &pb), 1);
			dead++;
			continue;
		}
		struct layout_record want, got;
		ck_assert_ok(layout_record_at(ts.buf, ts.len, s->value, TSTORE_DIM, &want, &pb));
		ck_assert_ok(layout_segview_record(sv, &c, &got, &pb));
		ck_assert_uint_eq(got.length, want.length);
		ck_assert_mem_eq(ts.buf + s->value, sv->base + c.record, want.length);
		ck_assert_ok(layout_segview_dead(sv, c.ordinal, &pb));
		struct layout_seg_concept byord;
		ck_assert_int_eq(layout_segview_find_ordinal(sv, c.ordinal, &byord, &pb), 1);
		ck_assert_mem_eq(byord.id, s->key, 16);
		live++;
	}
	ck_assert_uint_eq(sv->hdr.concept_count, live);
	ck_assert_uint_eq(sv->nconcepts, live + dead);
	/* Each expected edge is in the out list of its source and the in
	 * list of its target, with the record's values. */
	for (size_t i = 0; i < edges.cap; i++) {
		const struct util_idmap_slot *s = &edges.slots[i];
		if (s->state != 1 || (s->value == 0 && base))
			continue;
		uint32_t src = util_get_le32(s->key), dst = util_get_le32(s->key + 4);
		int found_out = 0, found_in = 0;
		uint64_t first;
		uint32_t count;
		struct layout_seg_edge ed;
		ck_assert_ok(layout_segview_adjacent(sv, 1, src, &first, &count, &pb));
		for (uint32_t k = 0; k < count; k++) {
			ck_assert_ok(layout_segview_edge(sv, first + k, &ed, &pb));
			ck_assert_uint_eq(ed.src_ordinal, src);
			if (ed.dst_ordinal == dst && ed.type == s->key[8]) {
				found_out++;
				ck_assert_uint_eq(ed.flags, s->value ? 0 : LAYOUT_SEG_DELETED);
				if (s->value) {
					struct layout_record r;
					ck_assert_ok(layout_record_at(ts.buf, ts.len, s->value,
									  TSTORE_DIM, &r, &pb));
					ck_assert(ed.confidence == r.u.association.confidence);
					ck_assert_mem_eq(ed.src, r.u.association.src, 16);
					ck_assert_mem_eq(ed.dst, r.u.association.dst, 16);
				}
			}
		}
		ck_assert_ok(layout_segview_adjacent(sv, 0, dst, &first, &count, &pb));
		for (uint32_t k = 0; k < count; k++) {
			ck_assert_ok(layout_segview_in_edge(sv, first + k, &ed, &pb));
			ck_assert_uint_eq(ed.dst_ordinal, dst);
			found_in += ed.src_ordinal == src && ed.type == s->key[8];
		}
		ck_assert_int_eq(found_out, 1);
		ck_assert_int_eq(found_in, 1);
		ledges += s->value != 0;
	}
	ck_assert_uint_eq(sv->hdr.association_count, ledges);
	util_idmap_finish(&ids);
	util_idmap_finish(&edges);
}

START_TEST(test_build_from_blocks)
{
	for (int base = 0; base <= 1; base++) {
		uint64_t len;
		unsigned char *blk = build(1, ts.epochs, NULL, 0, base, &len);
		struct layout_segview sv;
		struct sutra_detail pb;
		ck_assert_ok(open_view(&sv, blk, len, &pb));
		ck_assert_uint_eq(sv.hdr.last_epoch, ts.epochs);
		ck_assert_uint_eq(sv.next_ordinal, ts.counts[ts.epochs].next_ordinal);
		check_view(&sv, ts.epochs, base);
		/* A full check agrees with the lazy one. */
		ck_assert_ok(layout_segview_check_all(&sv, &pb));
		struct layout_block b;
		struct layout_segment seg;
		ck_assert_ok(layout_block_decode(blk, len, 0, &b, &pb));
		ck_assert_ok(layout_segment_decode(blk, &b, &seg, NULL, 0, &pb));
		layout_segview_close(&sv);
		free(blk);
	}
}
END_TEST

/* Merging the segments of epochs 1..2 and 3..4 gives the same bytes as
 * building one segment from all the blocks. */
START_TEST(test_merge_equals_direct_build)
{
	uint64_t la, lb, lm, ld;
	struct sutra_detail pb;
	unsigned char *a = build(1, 2, NULL, 0, 1, &la);
	struct layout_segview va, vb;
	ck_assert_ok(open_view(&va, a, la, &pb));
	check_view(&va, 2, 1);
	/* b covers epochs 3..4 on top of a: not a base, keeps its deletes. */
	unsigned char *b = build(3, ts.epochs, NULL, 0, 0, &lb);
	ck_assert_ok(open_view(&vb, b, lb, &pb));
	ck_assert_uint_gt(vb.nconcepts, vb.hdr.concept_count); /* a delete is remembered */

	struct layout_segview *both[2] = { &va, &vb };
	unsigned char *m = build(0, ts.epochs, both, 2, 1, &lm);
	unsigned char *d = build(1, ts.epochs, NULL, 0, 1, &ld);
	ck_assert_uint_eq(lm, ld);
	ck_assert_mem_eq(m, d, ld);
	/* Not a base: the merge of a and b keeps b's deletes. */
	unsigned char *m2 = build(0, ts.epochs, both, 2, 0, &lm);
	struct layout_segview vm;
	ck_assert_ok(open_view(&vm, m2, lm, &pb));
	check_view(&vm, ts.epochs, 0);
	layout_segview_close(&vm);
	layout_segview_close(&va);
	layout_segview_close(&vb);
	free(a);
	free(b);
	free(m);
	free(m2);
	free(d);
}
END_TEST

/* Epoch 4 is an empty commit: a segment of nothing is still a segment. */
START_TEST(test_build_of_an_empty_range)
{
	uint64_t len;
	struct layout_segview sv;
	struct sutra_detail pb;
	unsigned char *blk = build(4, 4, NULL, 0, 0, &len);
	ck_assert_ok(open_view(&sv, blk, len, &pb));
	ck_assert_uint_eq(sv.nconcepts, 0);
	ck_assert_uint_eq(sv.nedges, 0);
	struct layout_seg_concept c;
	uint64_t first;
	uint32_t count;
	ck_assert_ok(layout_segview_find(&sv, ts.buf, &c, NULL, &pb));
	ck_assert_ok(layout_segview_adjacent(&sv, 1, 0, &first, &count, &pb));
	ck_assert_uint_eq(count, 0);
	ck_assert_ok(layout_segview_dead(&sv, 0, &pb));
	ck_assert_ok(layout_segview_check_all(&sv, &pb));
	layout_segview_close(&sv);
	free(blk);
}
END_TEST

/* A build asked to stop stops, and says so. */
START_TEST(test_build_can_be_cancelled)
{
	int stop = 1;
	struct layout_segbuild_in in = {
		.base = ts.buf, .end = ts.len, .vector_dim = TSTORE_DIM,
		.from = LAYOUT_DATA_OFFSET, .to = ts.counts[ts.epochs].published_end,
		.first_epoch = 1, .last_epoch = ts.epochs,
		.next_ordinal = ts.counts[ts.epochs].next_ordinal, .cancel = &stop,
	};
	unsigned char *out = NULL;
	uint64_t len;
	struct sutra_detail pb;
	ck_assert_err(layout_segment_build(&in, &out, &len, &pb), -ECANCELED);
	ck_assert_ptr_null(out);
	stop = 0;
	ck_assert_ok(layout_segment_build(&in, &out, &len, &pb));
	free(out);
}
END_TEST

/* Reads every entry through the view; returns the first error or 0. */
static int read_all(struct layout_segview *sv)
{
	struct sutra_detail pb;
	int rc = 0;
	for (uint64_t i = 0; i < sv->nconcepts && !rc; i++) {
		struct layout_seg_concept c, f;
		struct layout_record r;
		rc = layout_segview_concept(sv, i, &c, &pb);
		if (!rc) {
			int found = layout_segview_find(sv, c.id, &f, NULL, &pb);
			rc = found < 0 ? found : 0;
		}
		if (!rc && !c.flags)
			rc = layout_segview_record(sv, &c, &r, &pb);
		if (!rc) {
			int d = layout_segview_dead(sv, c.ordinal, &pb);
			rc = d < 0 ? d : 0;
		}
		for (int out = 0; out <= 1 && !rc; out++) {
			uint64_t first;
			uint32_t count;
			struct layout_seg_edge e;
			rc = layout_segview_adjacent(sv, out, c.ordinal, &first, &count, &pb);
			for (uint32_t k = 0; k < count && !rc; k++)
				rc = out ? layout_segview_edge(sv, first + k, &e, &pb)
					 : layout_segview_in_edge(sv, first + k, &e, &pb);
		}
	}
	return rc;
}

/* Every byte of a segment flipped in turn: open or a read reports
 * SUTRA_ECORRUPT, or (a byte no check covers, such as padding) every read
 * still succeeds; never a crash (ASan runs this too). */
START_TEST(test_every_flipped_byte_is_caught_or_harmless)
{
	uint64_t len;
	unsigned char *blk = build(3, ts.epochs, NULL, 0, 0, &len);
	/* Page-aligned like a mapping: the frozen bitmap needs 32-byte alignment. */
	unsigned char *copy = aligned_alloc(4096, layout_align_up(len, 4096));
	struct layout_segview sv;
	struct sutra_detail pb;
	uint64_t caught = 0, harmless = 0;
	ck_assert_ok(open_view(&sv, blk, len, &pb));
	/* The bytes a checksum covers: header, payload, each section. */
	uint8_t *covered = calloc(len, 1);
	memset(covered, 1, LAYOUT_BLOCK_HEADER_SIZE + LAYOUT_SEGMENT_HEADER_SIZE +
				   LAYOUT_SEG_SECTIONS * LAYOUT_SECTION_ENTRY_SIZE);
	for (unsigned k = 1; k <= LAYOUT_SEG_SECTIONS; k++)
		memset(covered + sv.sec_off[k], 1, sv.sec_len[k]);
	layout_segview_close(&sv);
	for (uint64_t i = 0; i < len; i++) {
		memcpy(copy, blk, len);
		copy[i] ^= 0x5A;
		int rc = open_view(&sv, copy, len, &pb);
		if (rc == 0) {
			rc = read_all(&sv);
			if (rc == 0)
				rc = layout_segview_check_all(&sv, &pb);
			layout_segview_close(&sv);
		}
		if (rc) {
			ck_assert_err(rc, SUTRA_ECORRUPT);
			caught++;
		} else {
			harmless++;
			/* Only bytes outside every checksum may go unnoticed. */
			ck_assert_msg(!covered[i], "byte %llu changed without notice",
				      (unsigned long long)i);
		}
	}
	ck_assert_uint_gt(caught, 0);
	ck_assert_uint_gt(harmless, 0); /* the padding exists, and is not checked */
	free(covered);
	free(copy);
	free(blk);
}
END_TEST

START_TEST(test_damaged_chunk_fails_only_the_read_that_touches_it)
{
	uint64_t len;
	unsigned char *blk = build(1, ts.epochs, NULL, 0, 1, &len);
	struct layout_segview sv;
	struct sutra_detail pb;
	ck_assert_ok(open_view(&sv, blk, len, &pb));
	uint64_t rec_off = sv.sec_off[LAYOUT_SEC_RECORDS];
	layout_segview_close(&sv);
	blk[rec_off + 20] ^= 1; /* inside the first record */
	ck_assert_ok(open_view(&sv, blk, len, &pb)); /* open does not read it */
	struct layout_seg_concept c;
	ck_assert_ok(layout_segview_concept(&sv, 0, &c, &pb));
	struct layout_record r;
	ck_assert_err(layout_segview_record(&sv, &c, &r, &pb), SUTRA_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(pb.what, "chunk checksum"));
	ck_assert_err(layout_segview_check_all(&sv, &pb), SUTRA_ECORRUPT);
	layout_segview_close(&sv);
	/* A ref of the wrong length is refused. */
	struct layout_segment_ref ref = { 0, len + 64 };
	ck_assert_err(layout_segview_open(&sv, blk, len, &ref, TSTORE_DIM, &pb), SUTRA_ECORRUPT);
	free(blk);
}
END_TEST

/* The bytes a build writes for fixed input, pinned with the values the
 * code gave when the test was written: the ID_HASH slots come from a hash
 * of the id, OUT_INDEX and IN_INDEX from a hash of the ordinal, the HNSW
 * graph from a seed hashed from the epochs and TERMS from the token
 * hashes, and all of them are on disk, so none may ever change. */
#define PIN_N 48u

static void pin_id(uint8_t id[16], uint32_t i)
{
	for (uint32_t j = 0; j < 16; j++)
		id[j] = (uint8_t)(i * 37u + j * 11u + 5u);
}

static uint32_t section_crc(const struct layout_segview *sv, unsigned kind)
{
	return util_crc32c(0, sv->base + sv->sec_off[kind], (size_t)sv->sec_len[kind]);
}

START_TEST(test_segindex_hashed_bytes_are_pinned)
{
	static const char *const words[] = { "alpha", "beta", "gamma", "delta", "epsilon",
					     "zeta", "eta", "theta" };
	struct tstore t;
	struct layout_builder b;
	struct sutra_detail pb;
	char text[64];
	float emb[PIN_N][TSTORE_DIM];

	ck_assert_ok(tstore_init_empty(&t, TSTORE_DIM));
	layout_builder_init(&b, TSTORE_DIM);
	for (uint32_t i = 0; i < PIN_N; i++) {
		struct layout_concept c = { .ordinal = i, .strength = 1.0f, .confidence = 1.0f };
		pin_id(c.id, i);
		for (uint32_t k = 0; k < TSTORE_DIM; k++)
			emb[i][k] = (float)((i * 7u + k * 3u) % 11u) - 5.0f + 0.25f * (float)k;
		snprintf(text, sizeof text, "%s %s n%u", words[i % 8], words[(i / 8) % 8], i);
		c.content = text;
		c.content_len = (uint32_t)strlen(text);
		c.embedding = emb[i];
		c.vector_dim = TSTORE_DIM;
		ck_assert_ok(layout_builder_add_concept(&b, &c));
	}
	for (uint32_t i = 0; i + 1 < PIN_N; i += 2) {
		struct layout_association a = { .src_ordinal = i, .dst_ordinal = (i * 5u + 3u) % PIN_N,
						.type = (uint8_t)(i % 5u), .confidence = 0.5f,
						.weight = 1.0f };
		pin_id(a.src, a.src_ordinal);
		pin_id(a.dst, a.dst_ordinal);
		ck_assert_ok(layout_builder_add_association(&b, &a));
	}
	ck_assert_ok(tstore_commit(&t, &b, PIN_N, PIN_N / 2, PIN_N));
	layout_builder_finish(&b);

	struct layout_segbuild_in in = {
		.base = t.buf, .end = t.len, .vector_dim = TSTORE_DIM,
		.hnsw_m = 4, .hnsw_ef_construction = 16,
		.from = LAYOUT_DATA_OFFSET, .to = t.counts[1].published_end,
		.first_epoch = 1, .last_epoch = 1, .next_ordinal = PIN_N, .base_segment = 1,
	};
	unsigned char *blk = NULL;
	uint64_t len;
	ck_assert_ok(layout_segment_build(&in, &blk, &len, &pb));
	struct layout_segview sv;
	ck_assert_ok(open_view(&sv, blk, len, &pb));
	ck_assert_ok(layout_segview_check_all(&sv, &pb));

	/* Where a few ids sit in ID_HASH (16-byte slots: entry index + 1, the
	 * high half of the id's hash, record) and a few ordinals in OUT_INDEX
	 * (ordinal + 1, count, first edge). */
	static const uint32_t probe[] = { 0, 2, 16, 30, 46 };
	uint32_t id_slot[5], id_tag[5], out_slot[5];
	const unsigned char *ih = sv.base + sv.sec_off[LAYOUT_SEC_ID_HASH];
	const unsigned char *oi = sv.base + sv.sec_off[LAYOUT_SEC_OUT_INDEX];
	for (size_t p = 0; p < 5; p++) {
		uint8_t id[16];
		struct layout_seg_concept c;
		uint64_t index;
		pin_id(id, probe[p]);
		ck_assert_int_eq(layout_segview_find(&sv, id, &c, &index, &pb), 1);
		id_slot[p] = out_slot[p] = id_tag[p] = UINT32_MAX;
		for (uint32_t s = 0; s < sv.id_cap; s++) {
			const unsigned char *q = ih + (size_t)s * LAYOUT_SEG_SLOT_SIZE;
			if (util_get_le32(q) == index + 1) {
				id_slot[p] = s;
				id_tag[p] = util_get_le32(q + 4);
			}
		}
		for (uint32_t s = 0; s < sv.out_cap; s++)
			if (util_get_le32(oi + (size_t)s * LAYOUT_SEG_SLOT_SIZE) == probe[p] + 1)
				out_slot[p] = s;
	}
	static const uint32_t want_slot[] = { 35, 100, 16, 110, 4 };
	static const uint32_t want_tag[] = { 0xe656540d, 0x5e941bb2, 0x8995e812, 0x5c473b2f,
					     0x0df3f7b8 };
	static const uint32_t want_out[] = { 47, 14, 7, 15, 8 };
	ck_assert_uint_eq(sv.id_cap, 128);
	ck_assert_uint_eq(sv.out_cap, 64);
	ck_assert_uint_eq(sv.in_cap, 64);
	for (size_t p = 0; p < 5; p++) {
		ck_assert_uint_eq(id_slot[p], want_slot[p]);
		ck_assert_uint_eq(id_tag[p], want_tag[p]);
		ck_assert_uint_eq(out_slot[p], want_out[p]);
	}
	ck_assert_uint_eq(section_crc(&sv, LAYOUT_SEC_ID_HASH), 0x00b6fac7);
	ck_assert_uint_eq(section_crc(&sv, LAYOUT_SEC_OUT_INDEX), 0x51ba69ee);
	ck_assert_uint_eq(section_crc(&sv, LAYOUT_SEC_IN_INDEX), 0xd3d8498d);
	ck_assert_uint_eq(section_crc(&sv, LAYOUT_SEC_HNSW), 0x44cc8355);
	ck_assert_uint_eq(section_crc(&sv, LAYOUT_SEC_TERMS), 0x30fb180d);
	ck_assert_uint_eq(len, 26432);
	ck_assert_uint_eq(util_crc32c(0, blk, (size_t)len), 0x1e0cfd31);
	layout_segview_close(&sv);
	free(blk);
	tstore_finish(&t);
}
END_TEST

TCHECK_MAIN_FIXTURE("layout", "segindex", 300, setup, teardown, test_build_from_blocks,
		    test_merge_equals_direct_build, test_build_of_an_empty_range,
		    test_build_can_be_cancelled, test_every_flipped_byte_is_caught_or_harmless,
		    test_damaged_chunk_fails_only_the_read_that_touches_it,
		    test_segindex_hashed_bytes_are_pinned)
