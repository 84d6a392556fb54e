/* SPDX-License-Identifier: MIT */
/* Encoders and bounds-checked decoders of the coordinator's wire protocol. */
#include "wire/proto.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sutra/errors.h"
#include "util/detail.h"
#include "util/endian.h"
#include "util/utf8.h"

void proto_req_header_encode(const struct proto_req_header *h, unsigned char out[PROTO_REQ_HEADER])
{
	memset(out, 0, PROTO_REQ_HEADER);
	util_put_le32(out, PROTO_REQ_MAGIC);
	util_put_le16(out + 4, h->version);
	util_put_le16(out + 6, h->op);
	util_put_le64(out + 8, h->client_id);
	util_put_le64(out + 16, h->seq);
	util_put_le32(out + 24, h->body_len);
}

int proto_req_header_decode(const void *msg, size_t len, const struct proto_limits *lim,
			    struct proto_req_header *h, struct sutra_detail *why)
{
	const unsigned char *b = msg;

	memset(h, 0, sizeof *h);
	if (len < PROTO_REQ_HEADER)
		return util_fail(SUTRA_EPROTO, why,
			    "request of %zu bytes is shorter than its %u-byte header", len,
			    PROTO_REQ_HEADER);
	h->version = util_get_le16(b + 4);
	h->op = util_get_le16(b + 6);
	h->client_id = util_get_le64(b + 8);
	h->seq = util_get_le64(b + 16);
	h->body_len = util_get_le32(b + 24);
	if (util_get_le32(b) != PROTO_REQ_MAGIC)
		return util_fail(SUTRA_EPROTO, why, "bad request magic 0x%08x",
			    util_get_le32(b));
	if (h->version != PROTO_VERSION)
		return util_fail(SUTRA_EPROTO, why, "protocol version %u, this coordinator speaks %u",
			    h->version, PROTO_VERSION);
	if (util_get_le32(b + 28))
		return util_fail(SUTRA_EPROTO, why, "request header flags 0x%08x are not zero",
			    util_get_le32(b + 28));
	if (len > lim->max_request)
		return util_fail(SUTRA_ETOOBIG, why,
			    "request of %zu bytes exceeds the limit of %u bytes", len,
			    lim->max_request);
	if ((size_t)h->body_len != len - PROTO_REQ_HEADER)
		return util_fail(SUTRA_EPROTO, why,
			    "body length %u does not match the %zu bytes after the header",
			    h->body_len, len - PROTO_REQ_HEADER);
	return 0;
}

static int finite_f32(const unsigned char *p, float *out)
{
	float f = util_get_lef32(p);
	*out = f;
	return isfinite(f);
}

static int decode_concept(const unsigned char *p, size_t len, const struct proto_limits *lim,
			  struct proto_op_body *o, struct sutra_detail *why)
{
	if (len < PROTO_CONCEPT_FIXED)
		return util_fail(SUTRA_EPROTO, why,
			    "learn_concept body of %zu bytes is shorter than its %u fixed bytes", len,
			    PROTO_CONCEPT_FIXED);
	memcpy(o->u.concept.id, p, 16);
	if (!finite_f32(p + 16, &o->u.concept.strength))
		return util_fail(SUTRA_EVALUE, why, "strength is not a finite number");
	if (!finite_f32(p + 20, &o->u.concept.confidence))
		return util_fail(SUTRA_EVALUE, why, "confidence is not a finite number");
	uint32_t dim = util_get_le32(p + 24);
	uint32_t clen = util_get_le32(p + 28);
	uint32_t mlen = util_get_le32(p + 32);
	if (util_get_le32(p + 36))
		return util_fail(SUTRA_EPROTO, why, "learn_concept flags are not zero");
	/* 64-bit sums: none of these can overflow. */
	uint64_t need = (uint64_t)PROTO_CONCEPT_FIXED + (uint64_t)dim * 4 + clen + mlen;
	if (need != len)
		return util_fail(SUTRA_EPROTO, why,
			    "learn_concept lengths (dimension %u, content %u, metadata %u) need %llu "
			    "bytes, the body has %zu",
			    dim, clen, mlen, (unsigned long long)need, len);
	if (dim && lim->vector_dim && dim != lim->vector_dim)
		return util_fail(SUTRA_EDIM, why,
			    "embedding has %u values, the store's dimension is %u", dim,
			    lim->vector_dim);
	if (clen == 0)
		return util_fail(SUTRA_EVALUE, why, "content is empty");
	if (clen > lim->max_content)
		return util_fail(SUTRA_ETOOBIG, why,
			    "content of %u bytes exceeds the limit of %u bytes", clen,
			    lim->max_content);
	if (mlen > lim->max_metadata)
		return util_fail(SUTRA_ETOOBIG, why,
			    "metadata of %u bytes exceeds the limit of %u bytes", mlen,
			    lim->max_metadata);
	const unsigned char *emb = p + PROTO_CONCEPT_FIXED;
	int nonzero = 0;
	for (uint32_t i = 0; i < dim; i++) {
		float f;
		if (!finite_f32(emb + 4 * (size_t)i, &f))
			return util_fail(SUTRA_EVALUE, why,
				    "embedding value %u is not a finite number", i);
		nonzero |= f != 0.0f;
	}
	/* Cosine similarity needs a direction: vector search normalises. */
	if (dim && !nonzero)
		return util_fail(SUTRA_EVALUE, why,
			    "embedding is all zeros (cosine similarity needs a direction)");
	const char *content = (const char *)emb + 4 * (size_t)dim;
	size_t bad;
	if (!util_utf8_valid(content, clen, &bad))
		return util_fail(SUTRA_EVALUE, why, "content is not valid UTF-8 (byte %zu)",
			    bad);
	o->u.concept.vector_dim = dim;
	o->u.concept.embedding = dim ? emb : NULL;
	o->u.concept.content = content;
	o->u.concept.content_len = clen;
	o->u.concept.metadata = mlen ? (const unsigned char *)content + clen : NULL;
	o->u.concept.metadata_len = mlen;
	return 0;
}

int proto_op_decode(uint16_t op, const unsigned char *p, size_t len, const struct proto_limits *lim,
		    struct proto_op_body *o, struct sutra_detail *why)
{
	memset(o, 0, sizeof *o);
	o->op = op;
	switch (op) {
	case PROTO_OP_LEARN_CONCEPT:
		return decode_concept(p, len, lim, o, why);
	case PROTO_OP_LEARN_ASSOCIATION:
		if (len != PROTO_ASSOC_SIZE)
			return util_fail(SUTRA_EPROTO, why,
				    "learn_association body is %zu bytes, expected %u", len,
				    PROTO_ASSOC_SIZE);
		memcpy(o->u.assoc.src, p, 16);
		memcpy(o->u.assoc.dst, p + 16, 16);
		o->u.assoc.type = p[32];
		if (p[33] || p[34] || p[35] || util_get_le32(p + 44))
			return util_fail(SUTRA_EPROTO, why,
				    "learn_association reserved bytes are not zero");
		if (!finite_f32(p + 36, &o->u.assoc.confidence))
			return util_fail(SUTRA_EVALUE, why, "confidence is not a finite number");
		if (!finite_f32(p + 40, &o->u.assoc.weight))
			return util_fail(SUTRA_EVALUE, why, "weight is not a finite number");
		return 0;
	case PROTO_OP_DELETE_CONCEPT:
		if (len != PROTO_DELCONCEPT_SIZE)
			return util_fail(SUTRA_EPROTO, why,
				    "delete_concept body is %zu bytes, expected %u", len,
				    PROTO_DELCONCEPT_SIZE);
		memcpy(o->u.del.id, p, 16);
		return 0;
	case PROTO_OP_DELETE_ASSOCIATION:
		if (len != PROTO_DELASSOC_SIZE)
			return util_fail(SUTRA_EPROTO, why,
				    "delete_association body is %zu bytes, expected %u", len,
				    PROTO_DELASSOC_SIZE);
		memcpy(o->u.assoc.src, p, 16);
		memcpy(o->u.assoc.dst, p + 16, 16);
		o->u.assoc.type = p[32];
		if (!util_is_zero(p + 33, 7))
			return util_fail(SUTRA_EPROTO, why,
				    "delete_association reserved bytes are not zero");
		return 0;
	default:
		return util_fail(SUTRA_EPROTO, why, "unknown operation %u", op);
	}
}

int proto_batch_begin(struct proto_batch_iter *it, const unsigned char *body, size_t len,
		      const struct proto_limits *lim, struct sutra_detail *why)
{
	memset(it, 0, sizeof *it);
	if (len < PROTO_BATCH_FIXED)
		return util_fail(SUTRA_EPROTO, why, "batch body of %zu bytes is too short", len);
	it->p = body;
	it->len = len;
	it->pos = PROTO_BATCH_FIXED;
	it->count = util_get_le32(body);
	if (util_get_le32(body + 4))
		return util_fail(SUTRA_EPROTO, why, "batch reserved bytes are not zero");
	if (it->count > lim->max_batch)
		return util_fail(SUTRA_ETOOBIG, why,
			    "batch of %u operations exceeds the limit of %u", it->count,
			    lim->max_batch);
	/* Each entry takes at least its header: a count the body cannot hold
	 * is malformed, whatever the entries say. */
	if ((uint64_t)it->count * PROTO_BATCH_ENTRY > len - PROTO_BATCH_FIXED)
		return util_fail(SUTRA_EPROTO, why,
			    "batch claims %u operations, the body holds at most %zu", it->count,
			    (len - PROTO_BATCH_FIXED) / PROTO_BATCH_ENTRY);
	return 0;
}

int proto_batch_next(struct proto_batch_iter *it, const struct proto_limits *lim,
		     struct proto_op_body *op, struct sutra_detail *why)
{
	if (it->index == it->count) {
		if (it->pos != it->len)
			return util_fail(SUTRA_EPROTO, why,
				    "%zu bytes after the last of %u batch operations",
				    it->len - it->pos, it->count);
		return 0;
	}
	if (it->len - it->pos < PROTO_BATCH_ENTRY)
		return util_fail(SUTRA_EPROTO, why, "batch entry %u: header truncated",
			    it->index);
	const unsigned char *e = it->p + it->pos;
	uint16_t type = util_get_le16(e);
	uint32_t elen = util_get_le32(e + 4);
	if (util_get_le16(e + 2))
		return util_fail(SUTRA_EPROTO, why, "batch entry %u: reserved bytes not zero",
			    it->index);
	if (elen > it->len - it->pos - PROTO_BATCH_ENTRY)
		return util_fail(SUTRA_EPROTO, why,
			    "batch entry %u: length %u runs past the end of the message", it->index,
			    elen);
	if (type == PROTO_OP_BATCH)
		return util_fail(SUTRA_EPROTO, why, "batch entry %u: batches do not nest",
			    it->index);
	int rc = proto_op_decode(type, e + PROTO_BATCH_ENTRY, elen, lim, op, why);
	if (rc)
		return rc;
	it->pos += PROTO_BATCH_ENTRY + (size_t)elen;
	it->index++;
	return 1;
}

size_t proto_op_size(const struct proto_op_body *op)
{
	switch (op->op) {
	case PROTO_OP_LEARN_CONCEPT:
		return PROTO_CONCEPT_FIXED + (size_t)op->u.concept.vector_dim * 4 +
		       op->u.concept.content_len + op->u.concept.metadata_len;
	case PROTO_OP_LEARN_ASSOCIATION:
		return PROTO_ASSOC_SIZE;
	case PROTO_OP_DELETE_CONCEPT:
		return PROTO_DELCONCEPT_SIZE;
	case PROTO_OP_DELETE_ASSOCIATION:
		return PROTO_DELASSOC_SIZE;
	default:
		return 0;
	}
}

void proto_op_encode(const struct proto_op_body *op, const float *embedding, unsigned char *out)
{
	/* Zero the fixed part: reserved bytes go out as zero. */
	memset(out, 0, op->op == PROTO_OP_LEARN_CONCEPT ? PROTO_CONCEPT_FIXED : proto_op_size(op));
	switch (op->op) {
	case PROTO_OP_LEARN_CONCEPT: {
		const uint32_t dim = op->u.concept.vector_dim;
		memcpy(out, op->u.concept.id, 16);
		util_put_lef32(out + 16, op->u.concept.strength);
		util_put_lef32(out + 20, op->u.concept.confidence);
		util_put_le32(out + 24, dim);
		util_put_le32(out + 28, op->u.concept.content_len);
		util_put_le32(out + 32, op->u.concept.metadata_len);
		unsigned char *q = out + PROTO_CONCEPT_FIXED;
		for (uint32_t i = 0; i < dim; i++, q += 4)
			util_put_lef32(q, embedding[i]);
		if (op->u.concept.content_len)
			memcpy(q, op->u.concept.content, op->u.concept.content_len);
		q += op->u.concept.content_len;
		if (op->u.concept.metadata_len)
			memcpy(q, op->u.concept.metadata, op->u.concept.metadata_len);
		break;
	}
	case PROTO_OP_LEARN_ASSOCIATION:
		memcpy(out, op->u.assoc.src, 16);
		memcpy(out + 16, op->u.assoc.dst, 16);
		out[32] = op->u.assoc.type;
		util_put_lef32(out + 36, op->u.assoc.confidence);
		util_put_lef32(out + 40, op->u.assoc.weight);
		break;
	case PROTO_OP_DELETE_CONCEPT:
		memcpy(out, op->u.del.id, 16);
		break;
	case PROTO_OP_DELETE_ASSOCIATION:
		memcpy(out, op->u.assoc.src, 16);
		memcpy(out + 16, op->u.assoc.dst, 16);
		out[32] = op->u.assoc.type;
		break;
	default:
		break;
	}
}

void proto_rep_header_encode(const struct proto_rep_header *h, unsigned char out[PROTO_REP_HEADER])
{
	util_put_le32(out, PROTO_REP_MAGIC);
	util_put_le16(out + 4, h->version);
	util_put_le16(out + 6, h->op);
	util_put_le64(out + 8, h->client_id);
	util_put_le64(out + 16, h->seq);
	util_put_le32(out + 24, (uint32_t)h->status);
	util_put_le32(out + 28, h->body_len);
	util_put_le64(out + 32, h->epoch);
}

int proto_rep_header_decode(const void *msg, size_t len, struct proto_rep_header *h)
{
	const unsigned char *b = msg;

	if (len < PROTO_REP_HEADER || util_get_le32(b) != PROTO_REP_MAGIC)
		return SUTRA_EPROTO;
	h->version = util_get_le16(b + 4);
	h->op = util_get_le16(b + 6);
	h->client_id = util_get_le64(b + 8);
	h->seq = util_get_le64(b + 16);
	h->status = (int32_t)util_get_le32(b + 24);
	h->body_len = util_get_le32(b + 28);
	h->epoch = util_get_le64(b + 32);
	if (h->version != PROTO_VERSION || (size_t)h->body_len != len - PROTO_REP_HEADER)
		return SUTRA_EPROTO;
	return 0;
}

size_t proto_error_body_size(size_t msg_len)
{
	return 8 + msg_len;
}

void proto_error_body_encode(uint32_t index, const char *msg, size_t msg_len, unsigned char *out)
{
	util_put_le32(out, index);
	util_put_le32(out + 4, (uint32_t)msg_len);
	if (msg_len)
		memcpy(out + 8, msg, msg_len);
}

int proto_error_body_decode(const unsigned char *p, size_t len, uint32_t *index, const char **msg,
			    uint32_t *msg_len)
{
	if (len < 8)
		return SUTRA_EPROTO;
	uint32_t n = util_get_le32(p + 4);
	if (n != len - 8)
		return SUTRA_EPROTO;
	*index = util_get_le32(p);
	*msg = (const char *)p + 8;
	*msg_len = n;
	return 0;
}

void proto_stats_encode(const struct proto_stats *s, unsigned char out[PROTO_STATS_SIZE])
{
	memset(out, 0, PROTO_STATS_SIZE);
	util_put_le64(out + 0, s->epoch);
	util_put_le64(out + 8, s->durable_epoch);
	util_put_le64(out + 16, s->published_end);
	util_put_le64(out + 24, s->file_size);
	util_put_le64(out + 32, s->concept_count);
	util_put_le64(out + 40, s->association_count);
	util_put_le64(out + 48, s->next_ordinal);
	util_put_le64(out + 56, s->commits);
	util_put_le64(out + 64, s->requests);
	util_put_le64(out + 72, s->rejected);
	util_put_le64(out + 80, s->duplicates);
	util_put_le64(out + 88, s->syncs);
	util_put_le32(out + 96, s->vector_dim);
	util_put_le32(out + 100, s->durability);
	util_put_le32(out + 104, s->io_backend);
	util_put_le32(out + 108, s->relistens);
}

void proto_stats_to_public(const struct proto_stats *s, struct sutra_coord_stats *out)
{
	*out = (struct sutra_coord_stats){ .epoch = s->epoch,
					   .durable_epoch = s->durable_epoch,
					   .published_end = s->published_end,
					   .file_size = s->file_size,
					   .concept_count = s->concept_count,
					   .association_count = s->association_count,
					   .next_ordinal = s->next_ordinal,
					   .commits = s->commits,
					   .requests = s->requests,
					   .rejected = s->rejected,
					   .duplicates = s->duplicates,
					   .syncs = s->syncs,
					   .vector_dim = s->vector_dim,
					   .relaxed = s->durability == 1,
					   .io_uring = s->io_backend == 0,
					   .relistens = s->relistens };
}

int proto_stats_decode(const unsigned char *p, size_t len, struct proto_stats *s)
{
	if (len != PROTO_STATS_SIZE)
		return SUTRA_EPROTO;
	s->epoch = util_get_le64(p + 0);
	s->durable_epoch = util_get_le64(p + 8);
	s->published_end = util_get_le64(p + 16);
	s->file_size = util_get_le64(p + 24);
	s->concept_count = util_get_le64(p + 32);
	s->association_count = util_get_le64(p + 40);
	s->next_ordinal = util_get_le64(p + 48);
	s->commits = util_get_le64(p + 56);
	s->requests = util_get_le64(p + 64);
	s->rejected = util_get_le64(p + 72);
	s->duplicates = util_get_le64(p + 80);
	s->syncs = util_get_le64(p + 88);
	s->vector_dim = util_get_le32(p + 96);
	s->durability = util_get_le32(p + 100);
	s->io_backend = util_get_le32(p + 104);
	s->relistens = util_get_le32(p + 108);
	return 0;
}

void proto_ping_encode(uint64_t published_end, const uint8_t uuid[16], uint32_t vector_dim,
		       unsigned char out[PROTO_PING_SIZE])
{
	memset(out, 0, PROTO_PING_SIZE);
	util_put_le64(out, published_end);
	memcpy(out + 8, uuid, 16);
	util_put_le32(out + 24, vector_dim);
}

int proto_ping_decode(const unsigned char *p, size_t len, uint64_t *published_end,
		      uint8_t uuid[16], uint32_t *vector_dim)
{
	if (len != PROTO_PING_SIZE)
		return SUTRA_EPROTO;
	*published_end = util_get_le64(p);
	memcpy(uuid, p + 8, 16);
	*vector_dim = util_get_le32(p + 24);
	return 0;
}

void proto_notice_header_encode(const struct proto_notice *n, unsigned char out[PROTO_NOTICE_HEADER])
{
	memset(out, 0, PROTO_NOTICE_HEADER);
	util_put_le32(out, PROTO_NOTICE_MAGIC);
	util_put_le16(out + 4, PROTO_VERSION);
	util_put_le16(out + 6, n->kind);
	util_put_le64(out + 8, n->epoch);
	util_put_le64(out + 16, n->published_end);
	util_put_le64(out + 24, n->durable_epoch);
	memcpy(out + 32, n->store_uuid, 16);
	util_put_le32(out + 48, n->changed_len);
}

int proto_notice_decode(const void *msg, size_t len, struct proto_notice *n)
{
	const unsigned char *b = msg;

	if (len < PROTO_NOTICE_HEADER || util_get_le32(b) != PROTO_NOTICE_MAGIC ||
	    util_get_le16(b + 4) != PROTO_VERSION)
		return SUTRA_EPROTO;
	n->kind = util_get_le16(b + 6);
	n->epoch = util_get_le64(b + 8);
	n->published_end = util_get_le64(b + 16);
	n->durable_epoch = util_get_le64(b + 24);
	memcpy(n->store_uuid, b + 32, 16);
	n->changed_len = util_get_le32(b + 48);
	if ((size_t)n->changed_len != len - PROTO_NOTICE_HEADER)
		return SUTRA_EPROTO;
	n->changed = n->changed_len ? b + PROTO_NOTICE_HEADER : NULL;
	return 0;
}
