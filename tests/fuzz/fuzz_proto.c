/* SPDX-License-Identifier: MIT */
/* libFuzzer target: decode arbitrary bytes as every kind of protocol message, and re-encode what decodes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/proto.h"
#include "util/endian.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The input is one message as it arrives from nng. It is decoded as a
 * request the way the server does (header, then the op body or the batch
 * entries), and as a reply, an error body, a STATS or PING body and a
 * notice the way the client and subscribers do. Beyond "no crash, no read
 * out of bounds", whatever decodes must encode back to the same bytes:
 * the decoders check every reserved field, so accepting two spellings of
 * one message would be a bug. A mismatch aborts.
 */

/* Two sets of limits: the defaults' shape with a small dimension (so that
 * valid embeddings are easy to reach), and tight ones (so that every limit
 * is easy to hit). */
static const struct proto_limits limits[] = {
	{ .max_request = 1u << 20,
	  .max_content = 1u << 16,
	  .max_metadata = 1u << 16,
	  .max_batch = 1000,
	  .vector_dim = 4 },
	{ .max_request = 256, .max_content = 8, .max_metadata = 4, .max_batch = 2, .vector_dim = 0 },
};

#define CHECK(cond)                  \
	do {                         \
		if (!(cond))         \
			abort();     \
	} while (0)

/* Re-encodes a decoded op and compares it with the bytes it came from. */
static void reencode(const struct proto_op_body *op, const unsigned char *p, size_t len)
{
	size_t n = proto_op_size(op);
	CHECK(n == len);
	float *emb = NULL;
	if (op->op == PROTO_OP_LEARN_CONCEPT) {
		uint32_t dim = op->u.concept.vector_dim;
		CHECK(op->u.concept.content_len > 0);
		CHECK(op->u.concept.content >= (const char *)p &&
		      op->u.concept.content + op->u.concept.content_len <= (const char *)p + len);
		if (dim) {
			emb = malloc((size_t)dim * sizeof *emb);
			if (!emb)
				return;
			for (uint32_t i = 0; i < dim; i++)
				emb[i] = util_get_lef32(op->u.concept.embedding + 4 * (size_t)i);
		}
	}
	unsigned char *out = malloc(n ? n : 1);
	if (!out) {
		free(emb);
		return;
	}
	proto_op_encode(op, emb, out);
	CHECK(memcmp(out, p, n) == 0);
	free(out);
	free(emb);
}

static void fuzz_request(const uint8_t *data, size_t size, const struct proto_limits *lim)
{
	struct proto_req_header h;
	struct proto_op_body op;
	struct sutra_detail why;

	if (proto_req_header_decode(data, size, lim, &h, &why) != 0)
		return;
	unsigned char hdr[PROTO_REQ_HEADER];
	proto_req_header_encode(&h, hdr);
	CHECK(memcmp(hdr, data, PROTO_REQ_HEADER) == 0);
	CHECK((size_t)h.body_len == size - PROTO_REQ_HEADER);

	const unsigned char *body = data + PROTO_REQ_HEADER;
	switch (h.op) {
	case PROTO_OP_PING:
	case PROTO_OP_STATS:
	case PROTO_OP_SYNC:
		return; /* the server ignores their bodies */
	case PROTO_OP_BATCH: {
		struct proto_batch_iter it;
		if (proto_batch_begin(&it, body, h.body_len, lim, &why) != 0)
			return;
		CHECK(it.count <= lim->max_batch);
		for (;;) {
			size_t at = it.pos;
			int rc = proto_batch_next(&it, lim, &op, &why);
			if (rc <= 0) {
				if (rc == 0)
					CHECK(it.pos == h.body_len && it.index == it.count);
				return;
			}
			CHECK(it.pos <= h.body_len);
			CHECK(util_get_le16(body + at) == op.op);
			reencode(&op, body + at + PROTO_BATCH_ENTRY,
				 it.pos - at - PROTO_BATCH_ENTRY);
		}
	}
	default:
		if (proto_op_decode(h.op, body, h.body_len, lim, &op, &why) == 0)
			reencode(&op, body, h.body_len);
		return;
	}
}

static void fuzz_reply(const uint8_t *data, size_t size)
{
	struct proto_rep_header r;
	struct proto_stats st;
	uint32_t index, ml;
	const char *msg;
	uint64_t end;
	uint8_t uuid[16];
	uint32_t dim;
	unsigned char buf[PROTO_STATS_SIZE];

	if (proto_rep_header_decode(data, size, &r) == 0) {
		unsigned char hdr[PROTO_REP_HEADER];
		proto_rep_header_encode(&r, hdr);
		CHECK(memcmp(hdr, data, PROTO_REP_HEADER) == 0);
		const unsigned char *body = data + PROTO_REP_HEADER;
		/* What the client does with the body. */
		if (r.status != 0)
			(void)proto_error_body_decode(body, r.body_len, &index, &msg, &ml);
		else if (r.op == PROTO_OP_STATS)
			(void)proto_stats_decode(body, r.body_len, &st);
		else if (r.op == PROTO_OP_PING)
			(void)proto_ping_decode(body, r.body_len, &end, uuid, &dim);
	}

	/* The bodies on their own. */
	if (proto_error_body_decode(data, size, &index, &msg, &ml) == 0) {
		CHECK(msg == (const char *)data + 8 && (size_t)ml == size - 8);
		unsigned char *out = malloc(proto_error_body_size(ml));
		if (out) {
			proto_error_body_encode(index, msg, ml, out);
			CHECK(memcmp(out, data, size) == 0);
			free(out);
		}
	}
	if (proto_stats_decode(data, size, &st) == 0) {
		proto_stats_encode(&st, buf);
		CHECK(memcmp(buf, data, 112) == 0); /* 112..127 are not read */
	}
	if (proto_ping_decode(data, size, &end, uuid, &dim) == 0) {
		proto_ping_encode(end, uuid, dim, buf);
		CHECK(memcmp(buf, data, 28) == 0); /* 28..31 are not read */
	}
}

static void fuzz_notice(const uint8_t *data, size_t size)
{
	struct proto_notice n;

	if (proto_notice_decode(data, size, &n) != 0)
		return;
	CHECK((size_t)n.changed_len == size - PROTO_NOTICE_HEADER);
	CHECK(n.changed_len ? n.changed == data + PROTO_NOTICE_HEADER : n.changed == NULL);
	unsigned char hdr[PROTO_NOTICE_HEADER];
	proto_notice_header_encode(&n, hdr);
	CHECK(memcmp(hdr, data, 52) == 0); /* 52..63 are not read */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
		fuzz_request(data, size, &limits[i]);
	fuzz_reply(data, size);
	fuzz_notice(data, size);
	return 0;
}
