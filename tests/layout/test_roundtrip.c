/* SPDX-License-Identifier: MIT */
/* Round trips of every on-disk structure through its encoder and decoder. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layout/layout.h"
#include "sutra/errors.h"
#include "tests/common/tcheck.h"
#include "util/endian.h"

START_TEST(test_roundtrip_superblock)
{
	struct layout_superblock a, b;
	struct sutra_detail pb;
	unsigned char buf[LAYOUT_SUPERBLOCK_SIZE];

	layout_superblock_defaults(&a, 384);
	a.hnsw_m = 32;
	a.hnsw_ef_construction = 400;
	a.created_us = 0x0123456789ABCDEFull;
	for (int i = 0; i < 16; i++)
		a.uuid[i] = (uint8_t)(255 - i);
	a.compat_features = 0x8000000000000000ull; /* unknown compat bits are ignored */
	layout_superblock_encode(&a, buf);
	ck_assert_mem_eq(buf, "SUTRADAT", 8);
	ck_assert_uint_eq(util_get_le32(buf + 36), 384); /* documented offset of vector_dim */
	ck_assert_ok(layout_superblock_decode(buf, sizeof buf, &b, &pb));
	ck_assert_mem_eq(&a, &b, sizeof a);

	/* Too short, newer version, unknown incompatible feature. */
	ck_assert_err(layout_superblock_decode(buf, 255, &b, &pb), SUTRA_ECORRUPT);
	a.format_version = 2;
	layout_superblock_encode(&a, buf);
	ck_assert_err(layout_superblock_decode(buf, sizeof buf, &b, &pb), SUTRA_EVERSION);
	ck_assert_uint_eq(pb.offset, 8);
	a.format_version = 1;
	a.incompat_features = 1;
	layout_superblock_encode(&a, buf);
	ck_assert_err(layout_superblock_decode(buf, sizeof buf, &b, &pb), SUTRA_EVERSION);
}
END_TEST

START_TEST(test_roundtrip_meta)
{
	struct layout_meta a, b;
	struct sutra_detail pb;
	unsigned char slot[LAYOUT_META_SLOT_SIZE] = { 0 };

	memset(&a, 0, sizeof a);
	ck_assert_int_eq(layout_meta_decode(slot, sizeof slot, 4096, &b, &pb), LAYOUT_SLOT_EMPTY);
	a.seq = 42;
	a.epoch = 7;
	a.published_end = 1ull << 36;
	a.last_block_offset = (1ull << 36) - 128;
	a.last_block_crc32c = 0xC0FFEE42u;
	a.durable_end = (1ull << 36) - 4096;
	a.tail_start = 1ull << 20;
	a.commit_time_us = 1700000000123456ull;
	a.concept_count = 5000000000ull;
	a.association_count = 3;
	a.next_ordinal = 0xFFFFFFF0u;
	a.segment_count = LAYOUT_MAX_SEGMENTS;
	for (uint32_t i = 0; i < LAYOUT_MAX_SEGMENTS; i++) {
		a.segments[i].offset = 12288 + 64ull * i;
		a.segments[i].length = 64ull * (i + 1);
	}
	layout_meta_encode(&a, slot);
	ck_assert_uint_eq(util_get_le64(slot + 16), 7); /* epoch at 16 */
	ck_assert_int_eq(layout_meta_decode(slot, sizeof slot, 4096, &b, &pb), LAYOUT_SLOT_VALID);
	ck_assert_mem_eq(&a, &b, sizeof a);

	/* An odd sequence (write in progress) is never accepted. */
	a.seq = 43;
	layout_meta_encode(&a, slot);
	ck_assert_int_eq(layout_meta_decode(slot, sizeof slot, 4096, &b, &pb), LAYOUT_SLOT_CORRUPT);
	ck_assert_uint_eq(pb.offset, 4096 + 8);
}
END_TEST

static void id_of(uint8_t id[16], int n)
{
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)(n * 31 + i);
}

START_TEST(test_roundtrip_commit_block)
{
	const float emb[3] = { 1.5f, -0.0f, 3.25e-7f };
	struct layout_builder b;
	struct layout_concept c, c2;
	struct layout_association a, x;
	struct sutra_detail pb;
	const void *data;
	size_t len;

	memset(&c, 0, sizeof c);
	id_of(c.id, 1);
	c.ordinal = 9;
	c.strength = 0.25f;
	c.confidence = 1.0f;
	c.created_us = 11;
	c.updated_us = 12;
	c.embedding = emb;
	c.vector_dim = 3;
	c.content = "Grüße, мир";
	c.content_len = (uint32_t)strlen(c.content);
	c.metadata = "\x00\x01\x02";
	c.metadata_len = 3;
	c2 = c;
	id_of(c2.id, 2);
	c2.embedding = NULL;
	c2.vector_dim = 0;
	c2.content = "";
	c2.content_len = 0;
	c2.metadata = NULL;
	c2.metadata_len = 0;
	memset(&a, 0, sizeof a);
	id_of(a.src, 1);
	id_of(a.dst, 2);
	a.src_ordinal = 9;
	a.dst_ordinal = 10;
	a.type = 200;
	a.confidence = 0.5f;
	a.weight = -2.0f;
	a.created_us = 99;

	layout_builder_init(&b, 3);
	ck_assert_ok(layout_builder_add_concept(&b, &c));
	ck_assert_ok(layout_builder_add_concept(&b, &c2));
	ck_assert_ok(layout_builder_add_association(&b, &a));
	ck_assert_ok(layout_builder_add_association_delete(&b, &a));
	ck_assert_ok(layout_builder_add_concept_delete(&b, c2.id, 10));
	ck_assert_err(layout_builder_add_request(&b, 0, 1, 2), SUTRA_EVALUE);
	ck_assert_ok(layout_builder_add_request(&b, 0xFEDCBA9876543210ull, 1ull << 40,
						    0xC0FFEE11u));
	ck_assert_ok(layout_builder_seal(&b, 5, &data, &len));
	ck_assert_uint_eq(len % LAYOUT_BLOCK_ALIGN, 0);

	/* Place the block at a realistic file offset. */
	unsigned char *file = calloc(1, LAYOUT_DATA_OFFSET + len);
	memcpy(file + LAYOUT_DATA_OFFSET, data, len);
	uint64_t size = LAYOUT_DATA_OFFSET + len;
	struct layout_block blk;
	ck_assert_ok(layout_block_decode(file, size, LAYOUT_DATA_OFFSET, &blk, &pb));
	ck_assert_ok(layout_block_check_payload(file, &blk, &pb));
	ck_assert_uint_eq(blk.type, LAYOUT_BLOCK_COMMIT);
	ck_assert_uint_eq(blk.epoch, 5);
	ck_assert_uint_eq(blk.length, len);
	ck_assert_uint_eq(blk.item_count, 6);

	struct layout_record_iter it;
	struct layout_record r;
	layout_records_init(&it, file, &blk, 3);
	ck_assert_int_eq(layout_records_next(&it, &r, &pb), 1);
	ck_assert_uint_eq(r.type, LAYOUT_REC_CONCEPT);
	ck_assert_uint_eq(r.offset % 8, 0);
	ck_assert_mem_eq(r.u.concept.id, c.id, 16);
	ck_assert_uint_eq(r.u.concept.ordinal, 9);
	ck_assert_uint_eq(r.u.concept.flags, LAYOUT_CONCEPT_HAS_EMBEDDING);
	ck_assert(r.u.concept.strength == 0.25f && r.u.concept.confidence == 1.0f);
	ck_assert_uint_eq(r.u.concept.created_us, 11);
	ck_assert_uint_eq(r.u.concept.updated_us, 12);
	ck_assert_uint_eq(r.u.concept.vector_dim, 3);
	ck_assert_uint_eq((uintptr_t)r.u.concept.embedding % 8, 0);
	for (int i = 0; i < 3; i++) {
		float f = util_get_lef32((const unsigned char *)r.u.concept.embedding + 4 * i);
		ck_assert_mem_eq(&f, &emb[i], 4); /* bit-exact, -0.0 included */
	}
	ck_assert_uint_eq(r.u.concept.content_len, c.content_len);
	ck_assert_mem_eq(r.u.concept.content, c.content, c.content_len);
	ck_assert_uint_eq(r.u.concept.metadata_len, 3);
	ck_assert_mem_eq(r.u.concept.metadata, "\x00\x01\x02", 3);

	ck_assert_int_eq(layout_records_next(&it, &r, &pb), 1);
	ck_assert_uint_eq(r.type, LAYOUT_REC_CONCEPT);
	ck_assert_ptr_null(r.u.concept.embedding);
	ck_assert_uint_eq(r.u.concept.flags, 0);
	ck_assert_uint_eq(r.u.concept.content_len, 0);

	ck_assert_int_eq(layout_records_next(&it, &r, &pb), 1);
	ck_assert_uint_eq(r.type, LAYOUT_REC_ASSOCIATION);
	x = r.u.association;
	ck_assert_mem_eq(&x, &a, sizeof x);

	ck_assert_int_eq(layout_records_next(&it, &r, &pb), 1);
	ck_assert_uint_eq(r.type, LAYOUT_REC_ASSOCIATION_DELETE);
	ck_assert_mem_eq(r.u.association.src, a.src, 16);
	ck_assert_mem_eq(r.u.association.dst, a.dst, 16);
	ck_assert_uint_eq(r.u.association.src_ordinal, 9);
	ck_assert_uint_eq(r.u.association.dst_ordinal, 10);
	ck_assert_uint_eq(r.u.association.type, 200);

	ck_assert_int_eq(layout_records_next(&it, &r, &pb), 1);
	ck_assert_uint_eq(r.type, LAYOUT_REC_CONCEPT_DELETE);
	ck_assert_mem_eq(r.u.concept.id, c2.id, 16);
	ck_assert_uint_eq(r.u.concept.ordinal, 10);
	ck_assert_int_eq(layout_records_next(&it, &r, &pb), 1);
	ck_assert_uint_eq(r.type, LAYOUT_REC_REQUEST);
	ck_assert_uint_eq(r.length, 32);
	ck_assert_uint_eq(r.u.request.client_id, 0xFEDCBA9876543210ull);
	ck_assert_uint_eq(r.u.request.seq, 1ull << 40);
	ck_assert_uint_eq(r.u.request.request_crc32c, 0xC0FFEE11u);
	ck_assert_int_eq(layout_records_next(&it, &r, &pb), 0);

	free(file);
	layout_builder_finish(&b);
}
END_TEST

START_TEST(test_roundtrip_empty_commit_block)
{
	struct layout_builder b;
	const void *data;
	size_t len;
	struct layout_block blk;
	struct sutra_detail pb;

	layout_builder_init(&b, 8);
	ck_assert_ok(layout_builder_seal(&b, 1, &data, &len));
	ck_assert_uint_eq(len, LAYOUT_BLOCK_HEADER_SIZE);
	ck_assert_ok(layout_block_decode(data, len, 0, &blk, &pb));
	ck_assert_ok(layout_block_check_payload(data, &blk, &pb));
	ck_assert_uint_eq(blk.item_count, 0);
	layout_builder_finish(&b);
}
END_TEST

START_TEST(test_roundtrip_builder_rejects_bad_values)
{
	const float good[2] = { 1.0f, 2.0f };
	const float nan2[2] = { 1.0f, NAN };
	struct layout_builder b;
	struct layout_concept c;
	struct layout_association a;

	memset(&c, 0, sizeof c);
	c.content = "x";
	c.content_len = 1;
	c.embedding = good;
	c.vector_dim = 3;
	layout_builder_init(&b, 2);
	ck_assert_err(layout_builder_add_concept(&b, &c), SUTRA_EDIM);
	c.vector_dim = 2;
	c.embedding = nan2;
	ck_assert_err(layout_builder_add_concept(&b, &c), SUTRA_EVALUE);
	c.embedding = good;
	c.strength = INFINITY;
	ck_assert_err(layout_builder_add_concept(&b, &c), SUTRA_EVALUE);
	c.strength = 1.0f;
	c.content = "\xff";
	ck_assert_err(layout_builder_add_concept(&b, &c), SUTRA_EVALUE);
	c.content = "x";
	c.content_len = LAYOUT_MAX_CONTENT + 1;
	ck_assert_err(layout_builder_add_concept(&b, &c), SUTRA_ETOOBIG);
	memset(&a, 0, sizeof a);
	a.weight = NAN;
	ck_assert_err(layout_builder_add_association(&b, &a), SUTRA_EVALUE);
	/* Nothing was added. */
	ck_assert_uint_eq(b.items, 0);
	ck_assert_uint_eq(b.len, LAYOUT_BLOCK_HEADER_SIZE);
	layout_builder_finish(&b);
}
END_TEST

/* The checked entry (the coordinator's learn path) takes the request's
 * little-endian bytes and must produce exactly the record the host-float
 * entry produces; it still refuses a wrong dimension and oversize fields. */
START_TEST(test_roundtrip_builder_checked_concept_same_bytes)
{
	const float emb[3] = { 1.5f, -0.0f, 3.25e-7f };
	unsigned char le[12];
	struct layout_builder a, b;
	struct layout_concept c;

	for (int i = 0; i < 3; i++)
		util_put_lef32(le + 4 * i, emb[i]);
	memset(&c, 0, sizeof c);
	id_of(c.id, 3);
	c.ordinal = 4;
	c.strength = 0.5f;
	c.confidence = 0.75f;
	c.created_us = 1;
	c.updated_us = 2;
	c.content = "Grüße";
	c.content_len = (uint32_t)strlen(c.content);
	c.vector_dim = 3;
	layout_builder_init(&a, 3);
	layout_builder_init(&b, 3);
	c.embedding = emb;
	ck_assert_ok(layout_builder_add_concept(&a, &c));
	c.embedding = le;
	ck_assert_ok(layout_builder_add_concept_checked(&b, &c));
	ck_assert_uint_eq(a.len, b.len);
	ck_assert_mem_eq(a.buf, b.buf, a.len);

	c.vector_dim = 2;
	ck_assert_err(layout_builder_add_concept_checked(&b, &c), SUTRA_EDIM);
	c.vector_dim = 3;
	c.content_len = LAYOUT_MAX_CONTENT + 1;
	ck_assert_err(layout_builder_add_concept_checked(&b, &c), SUTRA_ETOOBIG);
	ck_assert_uint_eq(a.len, b.len);
	layout_builder_finish(&a);
	layout_builder_finish(&b);
}
END_TEST

START_TEST(test_roundtrip_segment_block)
{
	enum { LEN = 1024 };
	unsigned char *blockbuf = calloc(1, LAYOUT_DATA_OFFSET + LEN);
	unsigned char *block = blockbuf + LAYOUT_DATA_OFFSET;
	struct layout_segment seg = { .first_epoch = 1, .last_epoch = 4, .concept_count = 10,
				      .association_count = 20 };
	struct layout_section s[2] = {
		{ .kind = 7, .flags = 1, .offset = layout_segment_data_start(2), .length = 100 },
		{ .kind = 8, .offset = 512, .length = 512 },
	};
	memset(block + s[0].offset, 0xAB, 100);
	memset(block + s[1].offset, 0xCD, 512);
	ck_assert_ok(layout_segment_seal(block, LEN, 4, &seg, s, 2));

	struct layout_block blk;
	struct layout_segment got;
	struct layout_section gs[2];
	struct sutra_detail pb;
	ck_assert_ok(layout_block_decode(blockbuf, LAYOUT_DATA_OFFSET + LEN, LAYOUT_DATA_OFFSET,
					     &blk, &pb));
	ck_assert_ok(layout_block_check_payload(blockbuf, &blk, &pb));
	ck_assert_uint_eq(blk.type, LAYOUT_BLOCK_SEGMENT);
	ck_assert_ok(layout_segment_decode(blockbuf, &blk, &got, gs, 2, &pb));
	ck_assert_uint_eq(got.seg_version, LAYOUT_SEG_VERSION);
	ck_assert_uint_eq(got.section_count, 2);
	ck_assert_uint_eq(got.first_epoch, 1);
	ck_assert_uint_eq(got.last_epoch, 4);
	ck_assert_uint_eq(got.concept_count, 10);
	ck_assert_uint_eq(got.association_count, 20);
	for (int i = 0; i < 2; i++) {
		ck_assert_uint_eq(gs[i].kind, s[i].kind);
		ck_assert_uint_eq(gs[i].flags, s[i].flags);
		ck_assert_uint_eq(gs[i].offset, s[i].offset);
		ck_assert_uint_eq(gs[i].length, s[i].length);
		ck_assert_uint_eq(gs[i].crc32c, s[i].crc32c);
	}
	/* A flipped byte inside a section is caught by its own CRC. */
	block[600] ^= 1;
	ck_assert_err(layout_segment_decode(blockbuf, &blk, &got, NULL, 0, &pb), SUTRA_ECORRUPT);
	ck_assert_uint_eq(pb.offset, LAYOUT_DATA_OFFSET + 512);

	/* Overlapping or misaligned sections are refused by the encoder. */
	s[1].offset = 96;
	ck_assert_err(layout_segment_seal(block, LEN, 4, &seg, s, 2), SUTRA_EVALUE);
	s[1].offset = 520;
	ck_assert_err(layout_segment_seal(block, LEN, 4, &seg, s, 2), SUTRA_EVALUE);
	free(blockbuf);
}
END_TEST

TCHECK_MAIN("layout", "roundtrip", 0, test_roundtrip_superblock, test_roundtrip_meta,
	    test_roundtrip_commit_block, test_roundtrip_empty_commit_block,
	    test_roundtrip_builder_rejects_bad_values,
	    test_roundtrip_builder_checked_concept_same_bytes, test_roundtrip_segment_block)
