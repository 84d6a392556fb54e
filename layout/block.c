/* SPDX-License-Identifier: MIT */
/* Block headers, commit block records, and the commit block builder. */
#include "layout/layout.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/crc32c.h"
#include "util/endian.h"
#include "util/grow.h"
#include "util/utf8.h"

#define BH(f) offsetof(struct layout_block_header_disk, f)
#define CD(f) offsetof(struct layout_concept_disk, f)
#define AD(f) offsetof(struct layout_association_disk, f)
#define XD(f) offsetof(struct layout_association_delete_disk, f)

int layout_block_decode(const void *buf, uint64_t size, uint64_t off, struct layout_block *out,
			struct sutra_detail *pb)
{
	const unsigned char *b;
	struct layout_block blk;

	if (off % LAYOUT_BLOCK_ALIGN) {
		util_detail_set(pb, off, "block offset is not %u-byte aligned", LAYOUT_BLOCK_ALIGN);
		return SUTRA_ECORRUPT;
	}
	if (off > size || size - off < LAYOUT_BLOCK_HEADER_SIZE) {
		util_detail_set(pb, off, "block header extends past the end of the data");
		return SUTRA_ECORRUPT;
	}
	b = (const unsigned char *)buf + off;
	if (util_get_le32(b + BH(magic)) != LAYOUT_BLOCK_MAGIC) {
		util_detail_set(pb, off, "bad block magic");
		return SUTRA_ECORRUPT;
	}
	uint32_t crc = util_crc32c(0, b, BH(header_crc32c));
	if (util_get_le32(b + BH(header_crc32c)) != crc) {
		util_detail_set(pb, off + BH(header_crc32c),
				   "block header checksum mismatch (stored %08x, computed %08x)",
				   util_get_le32(b + BH(header_crc32c)), crc);
		return SUTRA_ECORRUPT;
	}
	blk.offset = off;
	blk.type = util_get_le16(b + BH(type));
	blk.version = util_get_le16(b + BH(version));
	blk.epoch = util_get_le64(b + BH(epoch));
	blk.length = util_get_le64(b + BH(length));
	blk.payload_length = util_get_le64(b + BH(payload_length));
	blk.item_count = util_get_le32(b + BH(item_count));
	blk.flags = util_get_le32(b + BH(flags));
	blk.payload_crc32c = util_get_le32(b + BH(payload_crc32c));

	if (blk.type != LAYOUT_BLOCK_COMMIT && blk.type != LAYOUT_BLOCK_SEGMENT) {
		util_detail_set(pb, off + BH(type), "unknown block type %u", blk.type);
		return SUTRA_ECORRUPT;
	}
	if (blk.version != LAYOUT_BLOCK_VERSION) {
		util_detail_set(pb, off + BH(version), "unknown block version %u", blk.version);
		return SUTRA_ECORRUPT;
	}
	if (blk.flags != 0 || !util_is_zero(b + BH(reserved), 16)) {
		util_detail_set(pb, off + BH(flags), "block flags or reserved bytes are not zero");
		return SUTRA_ECORRUPT;
	}
	if (blk.length < LAYOUT_BLOCK_HEADER_SIZE || blk.length > LAYOUT_MAX_BLOCK ||
	    blk.length % LAYOUT_BLOCK_ALIGN) {
		util_detail_set(pb, off + BH(length), "bad block length %llu",
				   (unsigned long long)blk.length);
		return SUTRA_ECORRUPT;
	}
	if (blk.payload_length > blk.length - LAYOUT_BLOCK_HEADER_SIZE) {
		util_detail_set(pb, off + BH(payload_length),
				   "payload length %llu exceeds the block",
				   (unsigned long long)blk.payload_length);
		return SUTRA_ECORRUPT;
	}
	/* A commit block is exactly its payload rounded up; only segment blocks
	 * carry sections after the payload. */
	if (blk.type == LAYOUT_BLOCK_COMMIT &&
	    blk.length != layout_align_up(LAYOUT_BLOCK_HEADER_SIZE + blk.payload_length,
					  LAYOUT_BLOCK_ALIGN)) {
		util_detail_set(pb, off + BH(length),
				   "commit block length %llu does not match its payload",
				   (unsigned long long)blk.length);
		return SUTRA_ECORRUPT;
	}
	if (blk.length > size - off) {
		util_detail_set(pb, off + BH(length),
				   "block of %llu bytes extends past the end of the data",
				   (unsigned long long)blk.length);
		return SUTRA_ECORRUPT;
	}
	*out = blk;
	return 0;
}

void layout_block_header_encode(const struct layout_block *blk, void *out)
{
	unsigned char *h = out;

	memset(h, 0, LAYOUT_BLOCK_HEADER_SIZE);
	util_put_le32(h + BH(magic), LAYOUT_BLOCK_MAGIC);
	util_put_le16(h + BH(type), blk->type);
	util_put_le16(h + BH(version), LAYOUT_BLOCK_VERSION);
	util_put_le64(h + BH(epoch), blk->epoch);
	util_put_le64(h + BH(length), blk->length);
	util_put_le64(h + BH(payload_length), blk->payload_length);
	util_put_le32(h + BH(item_count), blk->item_count);
	util_put_le32(h + BH(payload_crc32c), blk->payload_crc32c);
	util_put_le32(h + BH(header_crc32c), util_crc32c(0, h, BH(header_crc32c)));
}

int layout_block_check_payload(const void *buf, const struct layout_block *blk,
			       struct sutra_detail *pb)
{
	const unsigned char *p = (const unsigned char *)buf + blk->offset + LAYOUT_BLOCK_HEADER_SIZE;
	uint32_t crc = util_crc32c(0, p, (size_t)blk->payload_length);

	if (crc != blk->payload_crc32c) {
		util_detail_set(pb, blk->offset + LAYOUT_BLOCK_HEADER_SIZE,
				   "block payload checksum mismatch (stored %08x, computed %08x)",
				   blk->payload_crc32c, crc);
		return SUTRA_ECORRUPT;
	}
	if (blk->type == LAYOUT_BLOCK_COMMIT) {
		uint64_t pad = blk->length - LAYOUT_BLOCK_HEADER_SIZE - blk->payload_length;
		const unsigned char *q = p + blk->payload_length;
		for (uint64_t i = 0; i < pad; i++) {
			if (q[i]) {
				util_detail_set(pb, blk->offset + LAYOUT_BLOCK_HEADER_SIZE +
							       blk->payload_length + i,
						   "block padding is not zero");
				return SUTRA_ECORRUPT;
			}
		}
	}
	return 0;
}

void layout_records_init(struct layout_record_iter *it, const void *buf,
			 const struct layout_block *blk, uint32_t vector_dim)
{
	it->base = buf;
	it->pos = blk->offset + LAYOUT_BLOCK_HEADER_SIZE;
	it->end = it->pos + blk->payload_length;
	it->left = blk->type == LAYOUT_BLOCK_COMMIT ? blk->item_count : 0;
	it->vector_dim = vector_dim;
	it->trusted = 0;
}

static int record_at(const void *buf, uint64_t end, uint64_t off, uint32_t vector_dim,
		     int trusted, struct layout_record *rec, struct sutra_detail *pb)
{
	struct layout_record_iter it = { .base = buf, .pos = off, .end = end, .left = 1,
					 .vector_dim = vector_dim, .trusted = trusted };
	if (off % LAYOUT_RECORD_ALIGN || off >= end) {
		util_detail_set(pb, off, "no record can start at offset %llu",
				   (unsigned long long)off);
		return SUTRA_ECORRUPT;
	}
	int rc = layout_records_next(&it, rec, pb);
	return rc == 1 ? 0 : rc == 0 ? SUTRA_ECORRUPT : rc;
}

int layout_record_at(const void *buf, uint64_t end, uint64_t off, uint32_t vector_dim,
		     struct layout_record *rec, struct sutra_detail *pb)
{
	return record_at(buf, end, off, vector_dim, 0, rec, pb);
}

int layout_record_at_trusted(const void *buf, uint64_t end, uint64_t off, uint32_t vector_dim,
			     struct layout_record *rec, struct sutra_detail *pb)
{
	return record_at(buf, end, off, vector_dim, 1, rec, pb);
}

static int finite_f(float f)
{
	return isfinite(f);
}

static int decode_concept(const struct layout_record_iter *it, const unsigned char *r,
			  uint32_t len, uint64_t off, struct layout_concept *c,
			  struct sutra_detail *pb)
{
	if (len < sizeof(struct layout_concept_disk)) {
		util_detail_set(pb, off, "concept record too short (%u bytes)", len);
		return SUTRA_ECORRUPT;
	}
	memcpy(c->id, r + CD(id), 16);
	c->ordinal = util_get_le32(r + CD(ordinal));
	c->flags = util_get_le32(r + CD(flags));
	c->strength = util_get_lef32(r + CD(strength));
	c->confidence = util_get_lef32(r + CD(confidence));
	c->created_us = util_get_le64(r + CD(created_us));
	c->updated_us = util_get_le64(r + CD(updated_us));
	c->content_len = util_get_le32(r + CD(content_len));
	c->metadata_len = util_get_le32(r + CD(metadata_len));
	c->vector_dim = util_get_le32(r + CD(vector_dim));

	if (util_get_le32(r + CD(reserved))) {
		util_detail_set(pb, off + CD(reserved), "concept reserved field is not zero");
		return SUTRA_ECORRUPT;
	}
	if (c->flags & ~LAYOUT_CONCEPT_FLAGS_KNOWN) {
		util_detail_set(pb, off + CD(flags), "unknown concept flags 0x%x", c->flags);
		return SUTRA_ECORRUPT;
	}
	if (c->vector_dim != 0 && c->vector_dim != it->vector_dim) {
		util_detail_set(pb, off + CD(vector_dim),
				   "concept vector dimension %u, store dimension %u", c->vector_dim,
				   it->vector_dim);
		return SUTRA_ECORRUPT;
	}
	if (!!(c->flags & LAYOUT_CONCEPT_HAS_EMBEDDING) != (c->vector_dim != 0)) {
		util_detail_set(pb, off + CD(flags),
				   "concept embedding flag disagrees with its dimension");
		return SUTRA_ECORRUPT;
	}
	if (c->content_len > LAYOUT_MAX_CONTENT || c->metadata_len > LAYOUT_MAX_METADATA) {
		util_detail_set(pb, off + CD(content_len), "concept content or metadata too long");
		return SUTRA_ECORRUPT;
	}
	/* All terms are bounded above (64 KiB dims, 64 MiB each), so the sum
	 * cannot overflow 64 bits. */
	uint64_t want = sizeof(struct layout_concept_disk) + 4ull * c->vector_dim +
			c->content_len + c->metadata_len;
	if (want != len) {
		util_detail_set(pb, off + 4, "concept record length %u, its fields need %llu", len,
				   (unsigned long long)want);
		return SUTRA_ECORRUPT;
	}
	const unsigned char *v = r + sizeof(struct layout_concept_disk);
	c->embedding = c->vector_dim ? v : NULL;
	c->content = (const char *)(v + 4ull * c->vector_dim);
	c->metadata = c->content + c->content_len;
	if (it->trusted)
		return 0;
	if (!finite_f(c->strength) || !finite_f(c->confidence)) {
		util_detail_set(pb, off + CD(strength), "concept strength or confidence not finite");
		return SUTRA_ECORRUPT;
	}
	for (uint32_t i = 0; i < c->vector_dim; i++) {
		if (!finite_f(util_get_lef32(v + 4 * i))) {
			util_detail_set(pb, off + sizeof(struct layout_concept_disk) + 4 * i,
					   "embedding value %u is not finite", i);
			return SUTRA_ECORRUPT;
		}
	}
	size_t bad;
	if (!util_utf8_valid(c->content, c->content_len, &bad)) {
		util_detail_set(pb,
				   off + sizeof(struct layout_concept_disk) + 4ull * c->vector_dim + bad,
				   "concept content is not valid UTF-8");
		return SUTRA_ECORRUPT;
	}
	return 0;
}

static int decode_association(const unsigned char *r, uint32_t len, uint64_t off,
			      struct layout_association *a, struct sutra_detail *pb)
{
	if (len != sizeof(struct layout_association_disk)) {
		util_detail_set(pb, off + 4, "association record length %u, expected %zu", len,
				   sizeof(struct layout_association_disk));
		return SUTRA_ECORRUPT;
	}
	memcpy(a->src, r + AD(src), 16);
	memcpy(a->dst, r + AD(dst), 16);
	a->src_ordinal = util_get_le32(r + AD(src_ordinal));
	a->dst_ordinal = util_get_le32(r + AD(dst_ordinal));
	a->type = r[AD(type)];
	a->confidence = util_get_lef32(r + AD(confidence));
	a->weight = util_get_lef32(r + AD(weight));
	a->created_us = util_get_le64(r + AD(created_us));
	if (!util_is_zero(r + AD(reserved), 3) || util_get_le32(r + AD(reserved2))) {
		util_detail_set(pb, off + AD(reserved), "association reserved bytes are not zero");
		return SUTRA_ECORRUPT;
	}
	if (!finite_f(a->confidence) || !finite_f(a->weight)) {
		util_detail_set(pb, off + AD(confidence),
				   "association confidence or weight not finite");
		return SUTRA_ECORRUPT;
	}
	return 0;
}

static int decode_association_delete(const unsigned char *r, uint32_t len, uint64_t off,
				     struct layout_association *a, struct sutra_detail *pb)
{
	if (len != sizeof(struct layout_association_delete_disk)) {
		util_detail_set(pb, off + 4, "association delete length %u, expected %zu", len,
				   sizeof(struct layout_association_delete_disk));
		return SUTRA_ECORRUPT;
	}
	memset(a, 0, sizeof *a);
	memcpy(a->src, r + XD(src), 16);
	memcpy(a->dst, r + XD(dst), 16);
	a->src_ordinal = util_get_le32(r + XD(src_ordinal));
	a->dst_ordinal = util_get_le32(r + XD(dst_ordinal));
	a->type = r[XD(type)];
	if (!util_is_zero(r + XD(reserved), 7)) {
		util_detail_set(pb, off + XD(reserved),
				   "association delete reserved bytes are not zero");
		return SUTRA_ECORRUPT;
	}
	return 0;
}

int layout_records_next(struct layout_record_iter *it, struct layout_record *rec,
			struct sutra_detail *pb)
{
	if (it->pos == it->end) {
		if (it->left) {
			util_detail_set(pb, it->pos, "payload ends with %u records missing",
					   it->left);
			return SUTRA_ECORRUPT;
		}
		return 0;
	}
	if (it->left == 0) {
		util_detail_set(pb, it->pos, "payload holds more records than its item count");
		return SUTRA_ECORRUPT;
	}
	if (it->end - it->pos < sizeof(struct layout_record_header_disk)) {
		util_detail_set(pb, it->pos, "record header extends past the payload");
		return SUTRA_ECORRUPT;
	}
	const unsigned char *r = it->base + it->pos;
	uint64_t off = it->pos;
	uint8_t type = r[0];
	uint32_t len = util_get_le32(r + 4);

	if (r[1] || util_get_le16(r + 2)) {
		util_detail_set(pb, off + 1, "record flags or reserved bytes are not zero");
		return SUTRA_ECORRUPT;
	}
	if (len < sizeof(struct layout_record_header_disk) || len > it->end - it->pos) {
		util_detail_set(pb, off + 4, "record length %u does not fit the payload", len);
		return SUTRA_ECORRUPT;
	}
	uint64_t padded = layout_align_up(len, LAYOUT_RECORD_ALIGN);
	if (padded > it->end - it->pos || !util_is_zero(r + len, (size_t)(padded - len))) {
		util_detail_set(pb, off + len, "record padding missing or not zero");
		return SUTRA_ECORRUPT;
	}

	memset(rec, 0, sizeof *rec);
	rec->type = type;
	rec->offset = off;
	rec->length = len;
	int rc;
	switch (type) {
	case LAYOUT_REC_CONCEPT:
		rc = decode_concept(it, r, len, off, &rec->u.concept, pb);
		break;
	case LAYOUT_REC_ASSOCIATION:
		rc = decode_association(r, len, off, &rec->u.association, pb);
		break;
	case LAYOUT_REC_CONCEPT_DELETE:
		if (len != sizeof(struct layout_concept_delete_disk)) {
			util_detail_set(pb, off + 4, "concept delete length %u, expected %zu", len,
					   sizeof(struct layout_concept_delete_disk));
			return SUTRA_ECORRUPT;
		}
		memcpy(rec->u.concept.id, r + 8, 16);
		rec->u.concept.ordinal = util_get_le32(r + 24);
		rc = 0;
		if (util_get_le32(r + 28)) {
			util_detail_set(pb, off + 28, "concept delete reserved field is not zero");
			rc = SUTRA_ECORRUPT;
		}
		break;
	case LAYOUT_REC_ASSOCIATION_DELETE:
		rc = decode_association_delete(r, len, off, &rec->u.association, pb);
		break;
	case LAYOUT_REC_REQUEST:
		if (len != sizeof(struct layout_request_disk)) {
			util_detail_set(pb, off + 4, "request marker length %u, expected %zu", len,
					   sizeof(struct layout_request_disk));
			return SUTRA_ECORRUPT;
		}
		rec->u.request.client_id = util_get_le64(r + 8);
		rec->u.request.seq = util_get_le64(r + 16);
		rec->u.request.request_crc32c = util_get_le32(r + 24);
		rc = 0;
		if (rec->u.request.client_id == 0) {
			util_detail_set(pb, off + 8, "request marker has client id 0");
			rc = SUTRA_ECORRUPT;
		} else if (util_get_le32(r + 28)) {
			util_detail_set(pb, off + 28, "request marker reserved field is not zero");
			rc = SUTRA_ECORRUPT;
		}
		break;
	default:
		util_detail_set(pb, off, "unknown record type %u", type);
		rc = SUTRA_ECORRUPT;
	}
	if (rc)
		return rc;
	it->pos += padded;
	it->left--;
	return 1;
}

/* ---- Builder ----------------------------------------------------------- */

void layout_builder_init(struct layout_builder *b, uint32_t vector_dim)
{
	memset(b, 0, sizeof *b);
	b->vector_dim = vector_dim;
	b->len = LAYOUT_BLOCK_HEADER_SIZE;
}

void layout_builder_finish(struct layout_builder *b)
{
	if (!b)
		return;
	free(b->buf);
	memset(b, 0, sizeof *b);
}

void layout_builder_reset(struct layout_builder *b)
{
	b->len = LAYOUT_BLOCK_HEADER_SIZE;
	b->items = 0;
}

/* Makes room for a record of len bytes (padded) and returns it zeroed. */
static unsigned char *reserve(struct layout_builder *b, uint64_t len)
{
	uint64_t padded = layout_align_up(len, LAYOUT_RECORD_ALIGN);
	/* Leave room for the block padding that seal() adds. */
	uint64_t need = b->len + padded + LAYOUT_BLOCK_ALIGN;

	if (need > LAYOUT_MAX_BLOCK || need > SIZE_MAX / 2 || b->items == UINT32_MAX)
		return NULL;
	if (UTIL_GROW(b->buf, b->cap, (size_t)need, 4096))
		return NULL;
	unsigned char *r = b->buf + b->len;
	memset(r, 0, (size_t)padded);
	return r;
}

static void commit_record(struct layout_builder *b, unsigned char *r, uint8_t type, uint32_t len)
{
	r[0] = type;
	util_put_le32(r + 4, len);
	b->len += (size_t)layout_align_up(len, LAYOUT_RECORD_ALIGN);
	b->items++;
}

/* The checks every concept gets, however it was validated before. */
static int concept_shape(const struct layout_builder *b, const struct layout_concept *c)
{
	if (c->embedding && c->vector_dim != b->vector_dim)
		return SUTRA_EDIM;
	if (c->content_len > LAYOUT_MAX_CONTENT || c->metadata_len > LAYOUT_MAX_METADATA)
		return SUTRA_ETOOBIG;
	if ((c->content_len && !c->content) || (c->metadata_len && !c->metadata))
		return SUTRA_EVALUE;
	if (c->flags & ~LAYOUT_CONCEPT_FLAGS_KNOWN)
		return SUTRA_EVALUE;
	return 0;
}

/* Appends the record; embedding_le says whether c->embedding holds
 * little-endian bytes (copied as they are) or host floats (encoded). */
static int put_concept(struct layout_builder *b, const struct layout_concept *c, int embedding_le);

int layout_builder_add_concept(struct layout_builder *b, const struct layout_concept *c)
{
	uint32_t dim = c->embedding ? b->vector_dim : 0;
	int rc = concept_shape(b, c);

	if (rc)
		return rc;
	if (!finite_f(c->strength) || !finite_f(c->confidence))
		return SUTRA_EVALUE;
	if (!util_utf8_valid(c->content, c->content_len, NULL))
		return SUTRA_EVALUE;
	const float *e = c->embedding;
	for (uint32_t i = 0; i < dim; i++)
		if (!finite_f(e[i]))
			return SUTRA_EVALUE;
	return put_concept(b, c, 0);
}

int layout_builder_add_concept_checked(struct layout_builder *b, const struct layout_concept *c)
{
	int rc = concept_shape(b, c);
	return rc ? rc : put_concept(b, c, 1);
}

static int put_concept(struct layout_builder *b, const struct layout_concept *c, int embedding_le)
{
	uint32_t dim = c->embedding ? b->vector_dim : 0;
	uint64_t len = sizeof(struct layout_concept_disk) + 4ull * dim + c->content_len +
		       c->metadata_len;
	if (len > UINT32_MAX)
		return SUTRA_ETOOBIG;
	unsigned char *r = reserve(b, len);
	if (!r)
		return -ENOMEM;
	memcpy(r + CD(id), c->id, 16);
	util_put_le32(r + CD(ordinal), c->ordinal);
	util_put_le32(r + CD(flags), dim ? LAYOUT_CONCEPT_HAS_EMBEDDING : 0);
	util_put_lef32(r + CD(strength), c->strength);
	util_put_lef32(r + CD(confidence), c->confidence);
	util_put_le64(r + CD(created_us), c->created_us);
	util_put_le64(r + CD(updated_us), c->updated_us);
	util_put_le32(r + CD(content_len), c->content_len);
	util_put_le32(r + CD(metadata_len), c->metadata_len);
	util_put_le32(r + CD(vector_dim), dim);
	unsigned char *p = r + sizeof(struct layout_concept_disk);
	if (embedding_le) {
		if (dim)
			memcpy(p, c->embedding, 4ull * dim);
	} else {
		const float *e = c->embedding;
		for (uint32_t i = 0; i < dim; i++)
			util_put_lef32(p + 4 * i, e[i]);
	}
	p += 4ull * dim;
	if (c->content_len)
		memcpy(p, c->content, c->content_len);
	p += c->content_len;
	if (c->metadata_len)
		memcpy(p, c->metadata, c->metadata_len);
	commit_record(b, r, LAYOUT_REC_CONCEPT, (uint32_t)len);
	return 0;
}

int layout_builder_add_association(struct layout_builder *b, const struct layout_association *a)
{
	if (!finite_f(a->confidence) || !finite_f(a->weight))
		return SUTRA_EVALUE;
	unsigned char *r = reserve(b, sizeof(struct layout_association_disk));
	if (!r)
		return -ENOMEM;
	memcpy(r + AD(src), a->src, 16);
	memcpy(r + AD(dst), a->dst, 16);
	util_put_le32(r + AD(src_ordinal), a->src_ordinal);
	util_put_le32(r + AD(dst_ordinal), a->dst_ordinal);
	r[AD(type)] = a->type;
	util_put_lef32(r + AD(confidence), a->confidence);
	util_put_lef32(r + AD(weight), a->weight);
	util_put_le64(r + AD(created_us), a->created_us);
	commit_record(b, r, LAYOUT_REC_ASSOCIATION, sizeof(struct layout_association_disk));
	return 0;
}

int layout_builder_add_concept_delete(struct layout_builder *b, const uint8_t id[16],
				      uint32_t ordinal)
{
	unsigned char *r = reserve(b, sizeof(struct layout_concept_delete_disk));
	if (!r)
		return -ENOMEM;
	memcpy(r + 8, id, 16);
	util_put_le32(r + 24, ordinal);
	commit_record(b, r, LAYOUT_REC_CONCEPT_DELETE, sizeof(struct layout_concept_delete_disk));
	return 0;
}

int layout_builder_add_association_delete(struct layout_builder *b,
					  const struct layout_association *key)
{
	unsigned char *r = reserve(b, sizeof(struct layout_association_delete_disk));
	if (!r)
		return -ENOMEM;
	memcpy(r + XD(src), key->src, 16);
	memcpy(r + XD(dst), key->dst, 16);
	util_put_le32(r + XD(src_ordinal), key->src_ordinal);
	util_put_le32(r + XD(dst_ordinal), key->dst_ordinal);
	r[XD(type)] = key->type;
	commit_record(b, r, LAYOUT_REC_ASSOCIATION_DELETE,
		      sizeof(struct layout_association_delete_disk));
	return 0;
}

int layout_builder_add_request(struct layout_builder *b, uint64_t client_id, uint64_t seq,
			       uint32_t request_crc32c)
{
	if (client_id == 0)
		return SUTRA_EVALUE;
	unsigned char *r = reserve(b, sizeof(struct layout_request_disk));
	if (!r)
		return -ENOMEM;
	util_put_le64(r + 8, client_id);
	util_put_le64(r + 16, seq);
	util_put_le32(r + 24, request_crc32c);
	commit_record(b, r, LAYOUT_REC_REQUEST, sizeof(struct layout_request_disk));
	return 0;
}

int layout_builder_seal(struct layout_builder *b, uint64_t epoch, const void **data, size_t *len)
{
	/* An empty builder has no buffer yet: give it one for the header. */
	if (!b->buf && !reserve(b, 0))
		return -ENOMEM;
	uint64_t payload = b->len - LAYOUT_BLOCK_HEADER_SIZE;
	size_t total = (size_t)layout_align_up(b->len, LAYOUT_BLOCK_ALIGN);
	unsigned char *h = b->buf;

	/* reserve() kept LAYOUT_BLOCK_ALIGN spare bytes, so the padding fits. */
	memset(b->buf + b->len, 0, total - b->len);
	struct layout_block blk = {
		.type = LAYOUT_BLOCK_COMMIT,
		.epoch = epoch,
		.length = total,
		.payload_length = payload,
		.item_count = b->items,
		.payload_crc32c = util_crc32c(0, h + LAYOUT_BLOCK_HEADER_SIZE, (size_t)payload),
	};
	layout_block_header_encode(&blk, h);
	*data = b->buf;
	*len = total;
	return 0;
}
