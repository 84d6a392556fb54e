/* SPDX-License-Identifier: MIT */
/* The wire protocol's encoders and checked decoders: round trips of every message and every rejection with its exact code. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/common/tcheck.h"
#include "wire/proto.h"
#include "sutra/errors.h"
#include "util/endian.h"

/* Small limits, so that every limit can be reached with small buffers. */
static const struct proto_limits lim = {
	.max_request = 4096,
	.max_content = 64,
	.max_metadata = 16,
	.max_batch = 4,
	.vector_dim = 4,
};

static const uint8_t id_a[16] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
				  0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x01 };
static const uint8_t id_b[16] = { 0xB0, 0xB1, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7,
				  0xB8, 0xB9, 0xBA, 0xBB, 0xBC, 0xBD, 0xBE, 0xBF };

/* ---- Helpers ------------------------------------------------------------- */

/* A heap copy of exactly len bytes: a decoder that reads past the end of
 * its range is caught by AddressSanitizer (the sanitizer builds). */
static unsigned char *exact(const void *p, size_t len)
{
	unsigned char *c = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(c);
	if (len)
		memcpy(c, p, len);
	return c;
}

/* Decodes one op body and returns its code. The body is decoded twice:
 * from an exact-size copy (for the bounds) and in place (so that *o may
 * point into p); both must agree. Every rejection must come with a
 * sentence, since the coordinator sends it back to the client. */
static int dec(uint16_t op, const unsigned char *p, size_t len, const struct proto_limits *l,
	       struct proto_op_body *o)
{
	struct proto_op_body tmp;
	struct sutra_detail why = { .what = "" };
	unsigned char *c = exact(p, len);
	int rc = proto_op_decode(op, c, len, l, &tmp, &why);
	free(c);
	if (rc)
		ck_assert_msg(why.what[0] != 0, "rejection %d without a reason", rc);
	ck_assert_int_eq(proto_op_decode(op, p, len, l, o ? o : &tmp, NULL), rc);
	return rc;
}

/* Writes a learn_concept body byte by byte, as docs/PROTOCOL.md lays it out:
 * id, strength, confidence, dim, content_len, metadata_len, flags, then dim
 * f32 values (1, 2, 3, ...), content, metadata. Returns its length. */
static size_t concept_raw(unsigned char *b, uint32_t dim, const char *content, uint32_t clen,
			  const void *meta, uint32_t mlen)
{
	memcpy(b, id_a, 16);
	util_put_lef32(b + 16, 0.5f);
	util_put_lef32(b + 20, 0.25f);
	util_put_le32(b + 24, dim);
	util_put_le32(b + 28, clen);
	util_put_le32(b + 32, mlen);
	util_put_le32(b + 36, 0);
	size_t pos = PROTO_CONCEPT_FIXED;
	for (uint32_t i = 0; i < dim; i++, pos += 4)
		util_put_lef32(b + pos, (float)(i + 1));
	memcpy(b + pos, content, clen);
	pos += clen;
	if (mlen)
		memcpy(b + pos, meta, mlen);
	return pos + mlen;
}

/* Writes a learn_association body byte by byte; returns its length. */
static size_t assoc_raw(unsigned char *b, uint8_t type, float confidence, float weight)
{
	memset(b, 0, PROTO_ASSOC_SIZE);
	memcpy(b, id_a, 16);
	memcpy(b + 16, id_b, 16);
	b[32] = type;
	util_put_lef32(b + 36, confidence);
	util_put_lef32(b + 40, weight);
	return PROTO_ASSOC_SIZE;
}

/* Writes a delete_association body byte by byte; returns its length. */
static size_t delassoc_raw(unsigned char *b, uint8_t type)
{
	memset(b, 0, PROTO_DELASSOC_SIZE);
	memcpy(b, id_a, 16);
	memcpy(b + 16, id_b, 16);
	b[32] = type;
	return PROTO_DELASSOC_SIZE;
}

/* Starts a batch body of count entries (the count need not be honest). */
static size_t batch_start(unsigned char *b, uint32_t count)
{
	util_put_le32(b, count);
	util_put_le32(b + 4, 0);
	return PROTO_BATCH_FIXED;
}

/* Appends an entry (op, body) at b + pos; returns the new length. */
static size_t batch_put(unsigned char *b, size_t pos, uint16_t op, const void *body, uint32_t len)
{
	util_put_le16(b + pos, op);
	util_put_le16(b + pos + 2, 0);
	util_put_le32(b + pos + 4, len);
	memcpy(b + pos + PROTO_BATCH_ENTRY, body, len);
	return pos + PROTO_BATCH_ENTRY + len;
}

/* Runs the batch iterator to its end. Returns the first error (or 0 at a
 * clean end); *done is the number of entries decoded and *index the
 * iterator's index when it stopped (the server reports it). */
static int batch_run(const unsigned char *b, size_t len, const struct proto_limits *l,
		     uint32_t *done, uint32_t *index)
{
	struct proto_batch_iter it;
	struct proto_op_body op;
	struct sutra_detail why = { .what = "" };
	uint32_t n = 0;
	unsigned char *c = exact(b, len);
	int rc = proto_batch_begin(&it, c, len, l, &why);
	while (rc == 0) {
		rc = proto_batch_next(&it, l, &op, &why);
		if (rc <= 0)
			break;
		n++;
		rc = 0;
	}
	free(c);
	if (rc)
		ck_assert_msg(why.what[0] != 0, "batch rejection %d without a reason", rc);
	if (done)
		*done = n;
	if (index)
		*index = it.index;
	return rc;
}

/* A request: header for op/body, then the body (NULL: leave the bytes as
 * they are). Returns the total length. */
static size_t request(unsigned char *m, uint16_t op, const void *body, uint32_t body_len)
{
	struct proto_req_header h = { .version = PROTO_VERSION,
				      .op = op,
				      .client_id = 0x0102030405060708ull,
				      .seq = 0x1112131415161718ull,
				      .body_len = body_len };
	proto_req_header_encode(&h, m);
	if (body_len && body)
		memcpy(m + PROTO_REQ_HEADER, body, body_len);
	return PROTO_REQ_HEADER + body_len;
}

static int req_decode(const unsigned char *m, size_t len, const struct proto_limits *l,
		      struct proto_req_header *h)
{
	struct proto_req_header tmp;
	struct sutra_detail why = { .what = "" };
	unsigned char *c = exact(m, len);
	int rc = proto_req_header_decode(c, len, l, h ? h : &tmp, &why);
	free(c);
	if (rc)
		ck_assert_msg(why.what[0] != 0, "header rejection %d without a reason", rc);
	return rc;
}

/* ---- Request and reply headers ------------------------------------------- */

START_TEST(test_proto_req_header_roundtrip)
{
	unsigned char m[PROTO_REQ_HEADER + 16];
	struct proto_req_header h;
	size_t len = request(m, PROTO_OP_DELETE_CONCEPT, id_a, 16);

	/* The documented layout. */
	ck_assert_mem_eq(m, "SURQ", 4);
	ck_assert_uint_eq(util_get_le16(m + 4), 1);
	ck_assert_uint_eq(util_get_le16(m + 6), PROTO_OP_DELETE_CONCEPT);
	ck_assert_uint_eq(util_get_le64(m + 8), 0x0102030405060708ull);
	ck_assert_uint_eq(util_get_le64(m + 16), 0x1112131415161718ull);
	ck_assert_uint_eq(util_get_le32(m + 24), 16);
	ck_assert_uint_eq(util_get_le32(m + 28), 0);

	ck_assert_ok(req_decode(m, len, &lim, &h));
	ck_assert_uint_eq(h.version, PROTO_VERSION);
	ck_assert_uint_eq(h.op, PROTO_OP_DELETE_CONCEPT);
	ck_assert_uint_eq(h.client_id, 0x0102030405060708ull);
	ck_assert_uint_eq(h.seq, 0x1112131415161718ull);
	ck_assert_uint_eq(h.body_len, 16);

	/* A header alone (PING, STATS, SYNC) and a NULL reason buffer. */
	len = request(m, PROTO_OP_PING, NULL, 0);
	ck_assert_ok(proto_req_header_decode(m, len, &lim, &h, NULL));
	ck_assert_uint_eq(h.op, PROTO_OP_PING);
	ck_assert_uint_eq(h.body_len, 0);
}
END_TEST

START_TEST(test_proto_req_header_rejects_short)
{
	unsigned char m[PROTO_REQ_HEADER];
	struct proto_req_header h;

	request(m, PROTO_OP_PING, NULL, 0);
	ck_assert_err(req_decode(m, 0, &lim, &h), SUTRA_EPROTO);
	ck_assert_err(req_decode(m, 1, &lim, &h), SUTRA_EPROTO);
	ck_assert_err(req_decode(m, PROTO_REQ_HEADER - 1, &lim, &h), SUTRA_EPROTO);
	/* Nothing could be read: the reply names no client. */
	ck_assert_uint_eq(h.client_id, 0);
	ck_assert_uint_eq(h.seq, 0);
	ck_assert_uint_eq(h.op, 0);
	ck_assert_ok(req_decode(m, PROTO_REQ_HEADER, &lim, &h));
}
END_TEST

START_TEST(test_proto_req_header_rejects_bad_magic)
{
	unsigned char m[PROTO_REQ_HEADER];
	struct proto_req_header h;

	for (int i = 0; i < 4; i++) {
		request(m, PROTO_OP_STATS, NULL, 0);
		m[i] ^= 0x20;
		ck_assert_err(req_decode(m, sizeof m, &lim, &h), SUTRA_EPROTO);
		/* The fields are still read, so that the error reply can name
		 * the client and sequence. */
		ck_assert_uint_eq(h.client_id, 0x0102030405060708ull);
		ck_assert_uint_eq(h.seq, 0x1112131415161718ull);
		ck_assert_uint_eq(h.op, PROTO_OP_STATS);
	}
	/* A reply is not a request. */
	request(m, PROTO_OP_STATS, NULL, 0);
	util_put_le32(m, PROTO_REP_MAGIC);
	ck_assert_err(req_decode(m, sizeof m, &lim, &h), SUTRA_EPROTO);
}
END_TEST

START_TEST(test_proto_req_header_rejects_bad_version)
{
	unsigned char m[PROTO_REQ_HEADER];
	struct proto_req_header h;
	const uint16_t bad[] = { 0, 2, 0x0100, 0xFFFF };

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		request(m, PROTO_OP_PING, NULL, 0);
		util_put_le16(m + 4, bad[i]);
		ck_assert_err(req_decode(m, sizeof m, &lim, &h), SUTRA_EPROTO);
		ck_assert_uint_eq(h.version, bad[i]);
		ck_assert_uint_eq(h.seq, 0x1112131415161718ull);
	}
}
END_TEST

START_TEST(test_proto_req_header_rejects_flags)
{
	unsigned char m[PROTO_REQ_HEADER];

	for (int i = 28; i < 32; i++) {
		request(m, PROTO_OP_PING, NULL, 0);
		m[i] = 0x01;
		ck_assert_err(req_decode(m, sizeof m, &lim, NULL), SUTRA_EPROTO);
		m[i] = 0x80;
		ck_assert_err(req_decode(m, sizeof m, &lim, NULL), SUTRA_EPROTO);
	}
}
END_TEST

START_TEST(test_proto_req_header_rejects_body_len_mismatch)
{
	unsigned char m[PROTO_REQ_HEADER + 16];
	size_t len = request(m, PROTO_OP_DELETE_CONCEPT, id_a, 16);

	/* body_len larger than the bytes that follow. */
	util_put_le32(m + 24, 17);
	ck_assert_err(req_decode(m, len, &lim, NULL), SUTRA_EPROTO);
	util_put_le32(m + 24, UINT32_MAX);
	ck_assert_err(req_decode(m, len, &lim, NULL), SUTRA_EPROTO);
	/* body_len smaller than the bytes that follow. */
	util_put_le32(m + 24, 15);
	ck_assert_err(req_decode(m, len, &lim, NULL), SUTRA_EPROTO);
	util_put_le32(m + 24, 0);
	ck_assert_err(req_decode(m, len, &lim, NULL), SUTRA_EPROTO);
	/* A header-only message that claims a body. */
	util_put_le32(m + 24, 16);
	ck_assert_err(req_decode(m, PROTO_REQ_HEADER, &lim, NULL), SUTRA_EPROTO);
	ck_assert_ok(req_decode(m, len, &lim, NULL));
}
END_TEST

START_TEST(test_proto_req_header_rejects_too_big)
{
	struct proto_limits l = lim;
	size_t max = l.max_request;
	unsigned char *m = calloc(1, max + 2);
	ck_assert_ptr_nonnull(m);

	/* Exactly the limit (header included) is allowed. */
	size_t len = request(m, PROTO_OP_BATCH, NULL, (uint32_t)(max - PROTO_REQ_HEADER));
	ck_assert_uint_eq(len, max);
	ck_assert_ok(req_decode(m, len, &l, NULL));
	/* One byte more is SUTRA_ETOOBIG, with an honest body_len. */
	len = request(m, PROTO_OP_BATCH, NULL, (uint32_t)(max + 1 - PROTO_REQ_HEADER));
	ck_assert_err(req_decode(m, len, &l, NULL), SUTRA_ETOOBIG);
	/* And a smaller limit turns a small request away. */
	l.max_request = PROTO_REQ_HEADER + 15;
	len = request(m, PROTO_OP_DELETE_CONCEPT, id_a, 16);
	ck_assert_err(req_decode(m, len, &l, NULL), SUTRA_ETOOBIG);
	free(m);
}
END_TEST

START_TEST(test_proto_rep_header_roundtrip)
{
	unsigned char m[PROTO_REP_HEADER + 8];
	struct proto_rep_header a = { .version = PROTO_VERSION,
				      .op = PROTO_OP_LEARN_ASSOCIATION,
				      .client_id = 0xFEDCBA9876543210ull,
				      .seq = 77,
				      .status = SUTRA_ENOTFOUND,
				      .body_len = 8,
				      .epoch = 0x0000000100000002ull };
	struct proto_rep_header b;

	memset(m, 0xEE, sizeof m);
	proto_rep_header_encode(&a, m);
	ck_assert_mem_eq(m, "SURP", 4);
	ck_assert_uint_eq(util_get_le16(m + 4), 1);
	ck_assert_uint_eq(util_get_le16(m + 6), PROTO_OP_LEARN_ASSOCIATION);
	ck_assert_uint_eq(util_get_le64(m + 8), 0xFEDCBA9876543210ull);
	ck_assert_uint_eq(util_get_le64(m + 16), 77);
	ck_assert_uint_eq(util_get_le32(m + 24), (uint32_t)-1003);
	ck_assert_uint_eq(util_get_le32(m + 28), 8);
	ck_assert_uint_eq(util_get_le64(m + 32), 0x0000000100000002ull);
	ck_assert_ok(proto_rep_header_decode(m, sizeof m, &b));
	ck_assert_uint_eq(b.version, a.version);
	ck_assert_uint_eq(b.op, a.op);
	ck_assert_uint_eq(b.client_id, a.client_id);
	ck_assert_uint_eq(b.seq, a.seq);
	ck_assert_int_eq(b.status, SUTRA_ENOTFOUND);
	ck_assert_uint_eq(b.body_len, 8);
	ck_assert_uint_eq(b.epoch, a.epoch);

	/* A negative errno survives too. */
	a.status = -5;
	a.body_len = 0;
	proto_rep_header_encode(&a, m);
	ck_assert_ok(proto_rep_header_decode(m, PROTO_REP_HEADER, &b));
	ck_assert_int_eq(b.status, -5);
}
END_TEST

START_TEST(test_proto_rep_header_rejects_malformed)
{
	unsigned char m[PROTO_REP_HEADER + 8];
	struct proto_rep_header a = { .version = PROTO_VERSION, .op = PROTO_OP_PING, .body_len = 8 };
	struct proto_rep_header b;

	proto_rep_header_encode(&a, m);
	ck_assert_ok(proto_rep_header_decode(m, sizeof m, &b));
	/* Shorter than the header. */
	ck_assert_err(proto_rep_header_decode(m, 0, &b), SUTRA_EPROTO);
	ck_assert_err(proto_rep_header_decode(m, PROTO_REP_HEADER - 1, &b), SUTRA_EPROTO);
	/* body_len in both directions. */
	ck_assert_err(proto_rep_header_decode(m, sizeof m - 1, &b), SUTRA_EPROTO);
	ck_assert_err(proto_rep_header_decode(m, PROTO_REP_HEADER, &b), SUTRA_EPROTO);
	a.body_len = 7;
	proto_rep_header_encode(&a, m);
	ck_assert_err(proto_rep_header_decode(m, sizeof m, &b), SUTRA_EPROTO);
	/* Version. */
	a.body_len = 8;
	a.version = 2;
	proto_rep_header_encode(&a, m);
	ck_assert_err(proto_rep_header_decode(m, sizeof m, &b), SUTRA_EPROTO);
	/* Magic: a request header is not a reply. */
	a.version = PROTO_VERSION;
	proto_rep_header_encode(&a, m);
	util_put_le32(m, PROTO_REQ_MAGIC);
	ck_assert_err(proto_rep_header_decode(m, sizeof m, &b), SUTRA_EPROTO);
}
END_TEST

/* ---- Reply bodies --------------------------------------------------------- */

START_TEST(test_proto_error_body_roundtrip)
{
	const char text[] = "unknown target concept b0b1";
	size_t n = proto_error_body_size(strlen(text));
	unsigned char b[64];
	uint32_t index, ml;
	const char *msg;

	ck_assert_uint_eq(n, 8 + strlen(text));
	proto_error_body_encode(3, text, strlen(text), b);
	ck_assert_uint_eq(util_get_le32(b), 3);
	ck_assert_uint_eq(util_get_le32(b + 4), strlen(text));
	ck_assert_mem_eq(b + 8, text, strlen(text));
	ck_assert_ok(proto_error_body_decode(b, n, &index, &msg, &ml));
	ck_assert_uint_eq(index, 3);
	ck_assert_uint_eq(ml, strlen(text));
	ck_assert_ptr_eq(msg, (const char *)b + 8);

	/* No entry, no message. */
	proto_error_body_encode(UINT32_MAX, NULL, 0, b);
	ck_assert_ok(proto_error_body_decode(b, 8, &index, &msg, &ml));
	ck_assert_uint_eq(index, UINT32_MAX);
	ck_assert_uint_eq(ml, 0);
}
END_TEST

START_TEST(test_proto_error_body_rejects_malformed)
{
	unsigned char b[16];
	uint32_t index = 42, ml = 42;
	const char *msg = NULL;

	proto_error_body_encode(1, "abcd", 4, b);
	ck_assert_err(proto_error_body_decode(b, 7, &index, &msg, &ml), SUTRA_EPROTO);
	ck_assert_err(proto_error_body_decode(b, 0, &index, &msg, &ml), SUTRA_EPROTO);
	ck_assert_err(proto_error_body_decode(b, 11, &index, &msg, &ml), SUTRA_EPROTO);
	ck_assert_err(proto_error_body_decode(b, 13, &index, &msg, &ml), SUTRA_EPROTO);
	util_put_le32(b + 4, UINT32_MAX);
	ck_assert_err(proto_error_body_decode(b, 12, &index, &msg, &ml), SUTRA_EPROTO);
	/* Out-parameters are written only on success. */
	ck_assert_uint_eq(index, 42);
	ck_assert_uint_eq(ml, 42);
	ck_assert_ptr_null(msg);
}
END_TEST

START_TEST(test_proto_stats_roundtrip)
{
	struct proto_stats a = { .epoch = 1,
				 .durable_epoch = 2,
				 .published_end = 3,
				 .file_size = 4,
				 .concept_count = 5,
				 .association_count = 6,
				 .next_ordinal = 7,
				 .commits = 8,
				 .requests = 9,
				 .rejected = 10,
				 .duplicates = 11,
				 .syncs = 0x8000000000000001ull,
				 .vector_dim = 13,
				 .durability = 1,
				 .io_backend = 1,
				 .relistens = 16 };
	struct proto_stats b;
	unsigned char buf[PROTO_STATS_SIZE + 1];

	memset(buf, 0xEE, sizeof buf);
	proto_stats_encode(&a, buf);
	/* Documented offsets; the tail (112..127) is reserved, zero. */
	for (int i = 0; i < 11; i++)
		ck_assert_uint_eq(util_get_le64(buf + 8 * i), (uint64_t)i + 1);
	ck_assert_uint_eq(util_get_le64(buf + 88), 0x8000000000000001ull);
	ck_assert_uint_eq(util_get_le32(buf + 96), 13);
	ck_assert_uint_eq(util_get_le32(buf + 100), 1);
	ck_assert_uint_eq(util_get_le32(buf + 104), 1);
	ck_assert_uint_eq(util_get_le32(buf + 108), 16);
	for (int i = 112; i < 128; i++)
		ck_assert_uint_eq(buf[i], 0);
	ck_assert_ok(proto_stats_decode(buf, PROTO_STATS_SIZE, &b));
	ck_assert_mem_eq(&a, &b, sizeof a);

	ck_assert_err(proto_stats_decode(buf, PROTO_STATS_SIZE - 1, &b), SUTRA_EPROTO);
	ck_assert_err(proto_stats_decode(buf, PROTO_STATS_SIZE + 1, &b), SUTRA_EPROTO);
	ck_assert_err(proto_stats_decode(buf, 0, &b), SUTRA_EPROTO);
}
END_TEST

START_TEST(test_proto_ping_roundtrip)
{
	unsigned char buf[PROTO_PING_SIZE + 1];
	uint64_t end = 0;
	uint8_t uuid[16] = { 0 };
	uint32_t dim = 0;

	memset(buf, 0xEE, sizeof buf);
	proto_ping_encode(0x123456789ull, id_b, 768, buf);
	ck_assert_uint_eq(util_get_le64(buf), 0x123456789ull);
	ck_assert_mem_eq(buf + 8, id_b, 16);
	ck_assert_uint_eq(util_get_le32(buf + 24), 768);
	ck_assert_uint_eq(util_get_le32(buf + 28), 0);
	ck_assert_ok(proto_ping_decode(buf, PROTO_PING_SIZE, &end, uuid, &dim));
	ck_assert_uint_eq(end, 0x123456789ull);
	ck_assert_mem_eq(uuid, id_b, 16);
	ck_assert_uint_eq(dim, 768);

	ck_assert_err(proto_ping_decode(buf, PROTO_PING_SIZE - 1, &end, uuid, &dim), SUTRA_EPROTO);
	ck_assert_err(proto_ping_decode(buf, PROTO_PING_SIZE + 1, &end, uuid, &dim), SUTRA_EPROTO);
	ck_assert_err(proto_ping_decode(buf, 0, &end, uuid, &dim), SUTRA_EPROTO);
}
END_TEST

/* ---- Notices --------------------------------------------------------------- */

START_TEST(test_proto_notice_roundtrip)
{
	const unsigned char bits[] = { 0x3B, 0x30, 0x00, 0x00, 0x01, 0x00 };
	unsigned char m[PROTO_NOTICE_HEADER + sizeof bits];
	struct proto_notice a = { .kind = PROTO_NOTICE_EPOCH,
				  .epoch = 41,
				  .published_end = 0x10000,
				  .durable_epoch = 40,
				  .changed_len = sizeof bits };
	struct proto_notice b;

	memcpy(a.store_uuid, id_a, 16);
	memset(m, 0xEE, sizeof m);
	proto_notice_header_encode(&a, m);
	memcpy(m + PROTO_NOTICE_HEADER, bits, sizeof bits);
	ck_assert_mem_eq(m, "SNTC", 4);
	ck_assert_uint_eq(util_get_le16(m + 4), 1);
	ck_assert_uint_eq(util_get_le16(m + 6), PROTO_NOTICE_EPOCH);
	ck_assert_uint_eq(util_get_le64(m + 8), 41);
	ck_assert_uint_eq(util_get_le64(m + 16), 0x10000);
	ck_assert_uint_eq(util_get_le64(m + 24), 40);
	ck_assert_mem_eq(m + 32, id_a, 16);
	ck_assert_uint_eq(util_get_le32(m + 48), sizeof bits);
	for (int i = 52; i < 64; i++)
		ck_assert_uint_eq(m[i], 0);

	ck_assert_ok(proto_notice_decode(m, sizeof m, &b));
	ck_assert_uint_eq(b.kind, PROTO_NOTICE_EPOCH);
	ck_assert_uint_eq(b.epoch, 41);
	ck_assert_uint_eq(b.published_end, 0x10000);
	ck_assert_uint_eq(b.durable_epoch, 40);
	ck_assert_mem_eq(b.store_uuid, id_a, 16);
	ck_assert_uint_eq(b.changed_len, sizeof bits);
	ck_assert_ptr_eq(b.changed, m + PROTO_NOTICE_HEADER);

	/* A heartbeat: no changes. */
	a.kind = PROTO_NOTICE_HEARTBEAT;
	a.changed_len = 0;
	proto_notice_header_encode(&a, m);
	ck_assert_ok(proto_notice_decode(m, PROTO_NOTICE_HEADER, &b));
	ck_assert_uint_eq(b.kind, PROTO_NOTICE_HEARTBEAT);
	ck_assert_uint_eq(b.changed_len, 0);
	ck_assert_ptr_null(b.changed);
}
END_TEST

START_TEST(test_proto_notice_rejects_malformed)
{
	unsigned char m[PROTO_NOTICE_HEADER + 4];
	struct proto_notice a = { .kind = PROTO_NOTICE_EPOCH, .epoch = 1, .changed_len = 4 };
	struct proto_notice b;

	proto_notice_header_encode(&a, m);
	memset(m + PROTO_NOTICE_HEADER, 0, 4);
	ck_assert_ok(proto_notice_decode(m, sizeof m, &b));
	ck_assert_err(proto_notice_decode(m, PROTO_NOTICE_HEADER - 1, &b), SUTRA_EPROTO);
	ck_assert_err(proto_notice_decode(m, 0, &b), SUTRA_EPROTO);
	ck_assert_err(proto_notice_decode(m, sizeof m - 1, &b), SUTRA_EPROTO);
	ck_assert_err(proto_notice_decode(m, PROTO_NOTICE_HEADER, &b), SUTRA_EPROTO);
	util_put_le32(m + 48, 3);
	ck_assert_err(proto_notice_decode(m, sizeof m, &b), SUTRA_EPROTO);
	util_put_le32(m + 48, 4);
	util_put_le16(m + 4, 2);
	ck_assert_err(proto_notice_decode(m, sizeof m, &b), SUTRA_EPROTO);
	util_put_le16(m + 4, 1);
	m[3] ^= 1;
	ck_assert_err(proto_notice_decode(m, sizeof m, &b), SUTRA_EPROTO);
}
END_TEST

/* ---- Op bodies: round trips ----------------------------------------------- */

START_TEST(test_proto_op_concept_roundtrip)
{
	const float emb[4] = { 1.5f, -2.0f, 0.0f, 3.25e-3f };
	const char content[] = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"; /* héllo € 😀 */
	const unsigned char meta[] = { 0, 1, 2, 0xFF, 0xFE };
	struct proto_op_body a, b;
	unsigned char buf[256];

	memset(&a, 0, sizeof a);
	a.op = PROTO_OP_LEARN_CONCEPT;
	memcpy(a.u.concept.id, id_a, 16);
	a.u.concept.strength = 0.75f;
	a.u.concept.confidence = -1.0f;
	a.u.concept.vector_dim = 4;
	a.u.concept.content = content;
	a.u.concept.content_len = (uint32_t)strlen(content);
	a.u.concept.metadata = meta;
	a.u.concept.metadata_len = sizeof meta;
	size_t n = proto_op_size(&a);
	ck_assert_uint_eq(n, PROTO_CONCEPT_FIXED + 16 + strlen(content) + sizeof meta);
	memset(buf, 0xEE, sizeof buf);
	proto_op_encode(&a, emb, buf);

	/* The documented layout, byte for byte. */
	ck_assert_mem_eq(buf, id_a, 16);
	ck_assert_uint_eq(util_get_le32(buf + 16), 0x3F400000u); /* 0.75f */
	ck_assert_uint_eq(util_get_le32(buf + 20), 0xBF800000u); /* -1.0f */
	ck_assert_uint_eq(util_get_le32(buf + 24), 4);
	ck_assert_uint_eq(util_get_le32(buf + 28), strlen(content));
	ck_assert_uint_eq(util_get_le32(buf + 32), sizeof meta);
	ck_assert_uint_eq(util_get_le32(buf + 36), 0);
	ck_assert_uint_eq(util_get_le32(buf + 40), 0x3FC00000u); /* 1.5f */
	ck_assert_mem_eq(buf + 56, content, strlen(content));
	ck_assert_mem_eq(buf + 56 + strlen(content), meta, sizeof meta);

	ck_assert_ok(dec(PROTO_OP_LEARN_CONCEPT, buf, n, &lim, &b));
	ck_assert_uint_eq(b.op, PROTO_OP_LEARN_CONCEPT);
	ck_assert_mem_eq(b.u.concept.id, id_a, 16);
	ck_assert(b.u.concept.strength == 0.75f);
	ck_assert(b.u.concept.confidence == -1.0f);
	ck_assert_uint_eq(b.u.concept.vector_dim, 4);
	ck_assert_ptr_eq(b.u.concept.embedding, buf + PROTO_CONCEPT_FIXED);
	for (int i = 0; i < 4; i++)
		ck_assert(util_get_lef32(b.u.concept.embedding + 4 * i) == emb[i]);
	ck_assert_uint_eq(b.u.concept.content_len, strlen(content));
	ck_assert_mem_eq(b.u.concept.content, content, strlen(content));
	ck_assert_uint_eq(b.u.concept.metadata_len, sizeof meta);
	ck_assert_mem_eq(b.u.concept.metadata, meta, sizeof meta);
}
END_TEST

START_TEST(test_proto_op_concept_minimal_roundtrip)
{
	struct proto_op_body a, b;
	unsigned char buf[PROTO_CONCEPT_FIXED + 1];
	struct proto_limits any_dim = lim;

	memset(&a, 0, sizeof a);
	a.op = PROTO_OP_LEARN_CONCEPT;
	memcpy(a.u.concept.id, id_b, 16);
	a.u.concept.strength = 1.0f;
	a.u.concept.confidence = 1.0f;
	a.u.concept.content = "x";
	a.u.concept.content_len = 1;
	ck_assert_uint_eq(proto_op_size(&a), sizeof buf);
	proto_op_encode(&a, NULL, buf);
	ck_assert_ok(dec(PROTO_OP_LEARN_CONCEPT, buf, sizeof buf, &lim, &b));
	ck_assert_uint_eq(b.u.concept.vector_dim, 0);
	ck_assert_ptr_null(b.u.concept.embedding);
	ck_assert_uint_eq(b.u.concept.metadata_len, 0);
	ck_assert_ptr_null(b.u.concept.metadata);
	ck_assert_uint_eq(b.u.concept.content_len, 1);
	ck_assert_int_eq(b.u.concept.content[0], 'x');

	/* Without a store dimension to check, any dimension decodes. */
	unsigned char big[PROTO_CONCEPT_FIXED + 7 * 4 + 1];
	size_t n = concept_raw(big, 7, "y", 1, NULL, 0);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, big, n, &lim, NULL), SUTRA_EDIM);
	any_dim.vector_dim = 0;
	ck_assert_ok(dec(PROTO_OP_LEARN_CONCEPT, big, n, &any_dim, &b));
	ck_assert_uint_eq(b.u.concept.vector_dim, 7);
}
END_TEST

START_TEST(test_proto_op_assoc_roundtrip)
{
	struct proto_op_body a, b;
	unsigned char buf[PROTO_ASSOC_SIZE + 8], want[PROTO_ASSOC_SIZE];

	memset(&a, 0, sizeof a);
	a.op = PROTO_OP_LEARN_ASSOCIATION;
	memcpy(a.u.assoc.src, id_a, 16);
	memcpy(a.u.assoc.dst, id_b, 16);
	a.u.assoc.type = 255;
	a.u.assoc.confidence = 0.5f;
	a.u.assoc.weight = -7.0f;
	ck_assert_uint_eq(proto_op_size(&a), PROTO_ASSOC_SIZE);
	memset(buf, 0xEE, sizeof buf);
	proto_op_encode(&a, NULL, buf);
	assoc_raw(want, 255, 0.5f, -7.0f);
	ck_assert_mem_eq(buf, want, PROTO_ASSOC_SIZE);
	ck_assert_uint_eq(buf[PROTO_ASSOC_SIZE], 0xEE); /* writes exactly its size */
	ck_assert_ok(dec(PROTO_OP_LEARN_ASSOCIATION, buf, PROTO_ASSOC_SIZE, &lim, &b));
	ck_assert_uint_eq(b.op, PROTO_OP_LEARN_ASSOCIATION);
	ck_assert_mem_eq(b.u.assoc.src, id_a, 16);
	ck_assert_mem_eq(b.u.assoc.dst, id_b, 16);
	ck_assert_uint_eq(b.u.assoc.type, 255);
	ck_assert(b.u.assoc.confidence == 0.5f);
	ck_assert(b.u.assoc.weight == -7.0f);
}
END_TEST

START_TEST(test_proto_op_delete_concept_roundtrip)
{
	struct proto_op_body a, b;
	unsigned char buf[PROTO_DELCONCEPT_SIZE + 8];

	memset(&a, 0, sizeof a);
	a.op = PROTO_OP_DELETE_CONCEPT;
	memcpy(a.u.del.id, id_b, 16);
	ck_assert_uint_eq(proto_op_size(&a), PROTO_DELCONCEPT_SIZE);
	memset(buf, 0xEE, sizeof buf);
	proto_op_encode(&a, NULL, buf);
	ck_assert_mem_eq(buf, id_b, 16);
	ck_assert_uint_eq(buf[PROTO_DELCONCEPT_SIZE], 0xEE);
	ck_assert_ok(dec(PROTO_OP_DELETE_CONCEPT, buf, PROTO_DELCONCEPT_SIZE, &lim, &b));
	ck_assert_uint_eq(b.op, PROTO_OP_DELETE_CONCEPT);
	ck_assert_mem_eq(b.u.del.id, id_b, 16);
}
END_TEST

START_TEST(test_proto_op_delete_assoc_roundtrip)
{
	struct proto_op_body a, b;
	unsigned char buf[PROTO_DELASSOC_SIZE + 8], want[PROTO_DELASSOC_SIZE];

	memset(&a, 0, sizeof a);
	a.op = PROTO_OP_DELETE_ASSOCIATION;
	memcpy(a.u.assoc.src, id_a, 16);
	memcpy(a.u.assoc.dst, id_b, 16);
	a.u.assoc.type = 3;
	a.u.assoc.confidence = 9.0f; /* not on the wire */
	ck_assert_uint_eq(proto_op_size(&a), PROTO_DELASSOC_SIZE);
	memset(buf, 0xEE, sizeof buf);
	proto_op_encode(&a, NULL, buf);
	delassoc_raw(want, 3);
	ck_assert_mem_eq(buf, want, PROTO_DELASSOC_SIZE);
	ck_assert_uint_eq(buf[PROTO_DELASSOC_SIZE], 0xEE);
	ck_assert_ok(dec(PROTO_OP_DELETE_ASSOCIATION, buf, PROTO_DELASSOC_SIZE, &lim, &b));
	ck_assert_uint_eq(b.op, PROTO_OP_DELETE_ASSOCIATION);
	ck_assert_mem_eq(b.u.assoc.src, id_a, 16);
	ck_assert_mem_eq(b.u.assoc.dst, id_b, 16);
	ck_assert_uint_eq(b.u.assoc.type, 3);
}
END_TEST

/* ---- learn_concept rejections --------------------------------------------- */

START_TEST(test_proto_concept_rejects_short)
{
	unsigned char b[PROTO_CONCEPT_FIXED + 1];
	size_t n = concept_raw(b, 0, "a", 1, NULL, 0);

	ck_assert_ok(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL));
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, PROTO_CONCEPT_FIXED - 1, &lim, NULL),
	              SUTRA_EPROTO);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, 0, &lim, NULL), SUTRA_EPROTO);
}
END_TEST

START_TEST(test_proto_concept_rejects_length_mismatch)
{
	unsigned char b[128];
	size_t n = concept_raw(b, 4, "abc", 3, "m", 1);

	ck_assert_ok(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL));
	/* The body is longer or shorter than the lengths say. */
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n + 1, &lim, NULL), SUTRA_EPROTO);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n - 1, &lim, NULL), SUTRA_EPROTO);
	/* Each length off by one. */
	util_put_le32(b + 28, 4);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_EPROTO);
	util_put_le32(b + 28, 2);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_EPROTO);
	util_put_le32(b + 28, 3);
	util_put_le32(b + 32, 2);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_EPROTO);
	util_put_le32(b + 32, 0);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_EPROTO);
	util_put_le32(b + 32, 1);
	util_put_le32(b + 24, 3);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_EPROTO);
}
END_TEST

START_TEST(test_proto_concept_rejects_length_overflow)
{
	unsigned char b[128];
	struct proto_limits big = lim;

	/* Lengths whose sum wraps to the body length in 32-bit arithmetic. */
	big.vector_dim = 0;
	big.max_content = UINT32_MAX;
	big.max_metadata = UINT32_MAX;
	size_t n = concept_raw(b, 0, "a", 1, NULL, 0); /* 41 bytes */
	util_put_le32(b + 24, 0x40000000u);             /* 4 * dim == 2^32 */
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &big, NULL), SUTRA_EPROTO);
	util_put_le32(b + 24, 0);
	util_put_le32(b + 28, UINT32_MAX); /* content 2^32-1 + metadata 2 == 1 */
	util_put_le32(b + 32, 2);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &big, NULL), SUTRA_EPROTO);
	util_put_le32(b + 28, 1);
	util_put_le32(b + 32, 0);
	util_put_le32(b + 24, 0xC0000000u); /* 4 * dim == 3 * 2^32 */
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &big, NULL), SUTRA_EPROTO);
	/* Everything at its maximum. */
	util_put_le32(b + 24, UINT32_MAX);
	util_put_le32(b + 28, UINT32_MAX);
	util_put_le32(b + 32, UINT32_MAX);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &big, NULL), SUTRA_EPROTO);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_EPROTO);
}
END_TEST

START_TEST(test_proto_concept_rejects_flags)
{
	unsigned char b[64];
	size_t n = concept_raw(b, 0, "abc", 3, NULL, 0);

	for (int i = 36; i < 40; i++) {
		b[i] = 0x10;
		ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_EPROTO);
		b[i] = 0;
	}
	ck_assert_ok(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL));
}
END_TEST

START_TEST(test_proto_concept_rejects_empty_content)
{
	unsigned char b[64];
	size_t n = concept_raw(b, 4, "", 0, NULL, 0);

	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_EVALUE);
	n = concept_raw(b, 0, "", 0, "meta", 4);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_EVALUE);
}
END_TEST

START_TEST(test_proto_concept_rejects_content_over_limit)
{
	char content[80];
	unsigned char b[160];

	memset(content, 'c', sizeof content);
	size_t n = concept_raw(b, 0, content, lim.max_content, NULL, 0);
	ck_assert_ok(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL));
	n = concept_raw(b, 0, content, lim.max_content + 1, NULL, 0);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_ETOOBIG);
	n = concept_raw(b, 4, content, sizeof content, NULL, 0);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_ETOOBIG);
}
END_TEST

START_TEST(test_proto_concept_rejects_metadata_over_limit)
{
	unsigned char meta[32] = { 0 };
	unsigned char b[128];

	size_t n = concept_raw(b, 0, "c", 1, meta, lim.max_metadata);
	ck_assert_ok(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL));
	n = concept_raw(b, 0, "c", 1, meta, lim.max_metadata + 1);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_ETOOBIG);
	n = concept_raw(b, 4, "c", 1, meta, sizeof meta);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_ETOOBIG);
}
END_TEST

START_TEST(test_proto_concept_rejects_bad_utf8)
{
	static const char *const bad[] = {
		"\xFF",             /* never valid */
		"ab\x80",           /* lone continuation byte */
		"\xC3",             /* truncated sequence */
		"\xC0\x80",         /* overlong NUL */
		"\xE0\x80\xAF",     /* overlong '/' */
		"\xED\xA0\x80",     /* surrogate U+D800 */
		"\xF4\x90\x80\x80", /* above U+10FFFF */
		"ok\xE2\x82",       /* truncated at the end */
	};
	unsigned char b[128];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		size_t n = concept_raw(b, 4, bad[i], (uint32_t)strlen(bad[i]), NULL, 0);
		ck_assert_msg(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL) == SUTRA_EVALUE,
			      "bad UTF-8 case %zu accepted", i);
	}
	/* NUL bytes are valid UTF-8: content carries its length. */
	size_t n = concept_raw(b, 4, "a\0b", 3, NULL, 0);
	ck_assert_ok(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL));
	/* Metadata is opaque: no UTF-8 rule. */
	n = concept_raw(b, 4, "a", 1, "\xFF\xC0", 2);
	ck_assert_ok(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL));
}
END_TEST

START_TEST(test_proto_concept_rejects_non_finite)
{
	const float bad[] = { NAN, -NAN, INFINITY, -INFINITY };
	unsigned char b[128];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		size_t n = concept_raw(b, 4, "abc", 3, "m", 1);
		util_put_lef32(b + 16, bad[i]); /* strength */
		ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_EVALUE);
		n = concept_raw(b, 4, "abc", 3, "m", 1);
		util_put_lef32(b + 20, bad[i]); /* confidence */
		ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_EVALUE);
		for (int k = 0; k < 4; k++) { /* each embedding value, the last one too */
			n = concept_raw(b, 4, "abc", 3, "m", 1);
			util_put_lef32(b + PROTO_CONCEPT_FIXED + 4 * k, bad[i]);
			ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_EVALUE);
		}
	}
	/* A signalling NaN pattern too. */
	size_t n = concept_raw(b, 4, "abc", 3, NULL, 0);
	util_put_le32(b + PROTO_CONCEPT_FIXED + 8, 0x7F800001u);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_EVALUE);
	/* Extremes that are finite are fine. */
	n = concept_raw(b, 4, "abc", 3, NULL, 0);
	util_put_le32(b + 16, 0x7F7FFFFFu); /* FLT_MAX */
	util_put_le32(b + 20, 0x00000001u); /* smallest subnormal */
	util_put_le32(b + PROTO_CONCEPT_FIXED, 0xFF7FFFFFu);
	util_put_le32(b + PROTO_CONCEPT_FIXED + 4, 0x80000000u); /* -0 */
	ck_assert_ok(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL));
}
END_TEST

START_TEST(test_proto_concept_rejects_wrong_dimension)
{
	unsigned char b[128];
	size_t n;

	n = concept_raw(b, 3, "abc", 3, NULL, 0);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_EDIM);
	n = concept_raw(b, 5, "abc", 3, NULL, 0);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_EDIM);
	n = concept_raw(b, 1, "abc", 3, NULL, 0);
	ck_assert_err(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL), SUTRA_EDIM);
	/* No embedding at all is allowed. */
	n = concept_raw(b, 0, "abc", 3, NULL, 0);
	ck_assert_ok(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL));
	n = concept_raw(b, 4, "abc", 3, NULL, 0);
	ck_assert_ok(dec(PROTO_OP_LEARN_CONCEPT, b, n, &lim, NULL));
}
END_TEST

/* ---- Other op rejections -------------------------------------------------- */

START_TEST(test_proto_assoc_rejects_wrong_size)
{
	unsigned char b[PROTO_ASSOC_SIZE + 1] = { 0 };

	assoc_raw(b, 1, 1.0f, 1.0f);
	ck_assert_ok(dec(PROTO_OP_LEARN_ASSOCIATION, b, PROTO_ASSOC_SIZE, &lim, NULL));
	ck_assert_err(dec(PROTO_OP_LEARN_ASSOCIATION, b, PROTO_ASSOC_SIZE - 1, &lim, NULL),
	              SUTRA_EPROTO);
	ck_assert_err(dec(PROTO_OP_LEARN_ASSOCIATION, b, PROTO_ASSOC_SIZE + 1, &lim, NULL),
	              SUTRA_EPROTO);
	ck_assert_err(dec(PROTO_OP_LEARN_ASSOCIATION, b, 0, &lim, NULL), SUTRA_EPROTO);
}
END_TEST

START_TEST(test_proto_assoc_rejects_reserved)
{
	unsigned char b[PROTO_ASSOC_SIZE];
	const int at[] = { 33, 34, 35, 44, 45, 46, 47 };

	for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
		assoc_raw(b, 1, 1.0f, 1.0f);
		b[at[i]] = 0x01;
		ck_assert_msg(dec(PROTO_OP_LEARN_ASSOCIATION, b, sizeof b, &lim, NULL) == SUTRA_EPROTO,
			      "reserved byte %d not checked", at[i]);
	}
}
END_TEST

START_TEST(test_proto_assoc_rejects_non_finite)
{
	const float bad[] = { NAN, INFINITY, -INFINITY };
	unsigned char b[PROTO_ASSOC_SIZE];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assoc_raw(b, 1, bad[i], 1.0f);
		ck_assert_err(dec(PROTO_OP_LEARN_ASSOCIATION, b, sizeof b, &lim, NULL),
		              SUTRA_EVALUE);
		assoc_raw(b, 1, 1.0f, bad[i]);
		ck_assert_err(dec(PROTO_OP_LEARN_ASSOCIATION, b, sizeof b, &lim, NULL),
		              SUTRA_EVALUE);
	}
}
END_TEST

START_TEST(test_proto_delete_concept_rejects_wrong_size)
{
	unsigned char b[PROTO_DELCONCEPT_SIZE + 1] = { 0 };

	ck_assert_ok(dec(PROTO_OP_DELETE_CONCEPT, b, PROTO_DELCONCEPT_SIZE, &lim, NULL));
	ck_assert_err(dec(PROTO_OP_DELETE_CONCEPT, b, PROTO_DELCONCEPT_SIZE - 1, &lim, NULL),
	              SUTRA_EPROTO);
	ck_assert_err(dec(PROTO_OP_DELETE_CONCEPT, b, PROTO_DELCONCEPT_SIZE + 1, &lim, NULL),
	              SUTRA_EPROTO);
	ck_assert_err(dec(PROTO_OP_DELETE_CONCEPT, b, 0, &lim, NULL), SUTRA_EPROTO);
}
END_TEST

START_TEST(test_proto_delete_assoc_rejects_wrong_size)
{
	unsigned char b[PROTO_DELASSOC_SIZE + 8];

	memset(b, 0, sizeof b);
	delassoc_raw(b, 2);
	ck_assert_ok(dec(PROTO_OP_DELETE_ASSOCIATION, b, PROTO_DELASSOC_SIZE, &lim, NULL));
	ck_assert_err(dec(PROTO_OP_DELETE_ASSOCIATION, b, PROTO_DELASSOC_SIZE - 1, &lim, NULL),
	              SUTRA_EPROTO);
	ck_assert_err(dec(PROTO_OP_DELETE_ASSOCIATION, b, PROTO_DELASSOC_SIZE + 1, &lim, NULL),
	              SUTRA_EPROTO);
	/* A learn_association body is not a delete_association body. */
	ck_assert_err(dec(PROTO_OP_DELETE_ASSOCIATION, b, PROTO_ASSOC_SIZE, &lim, NULL),
	              SUTRA_EPROTO);
}
END_TEST

START_TEST(test_proto_delete_assoc_rejects_reserved)
{
	unsigned char b[PROTO_DELASSOC_SIZE];

	for (int i = 33; i < 40; i++) {
		delassoc_raw(b, 2);
		b[i] = 0x80;
		ck_assert_msg(dec(PROTO_OP_DELETE_ASSOCIATION, b, sizeof b, &lim, NULL) == SUTRA_EPROTO,
			      "reserved byte %d not checked", i);
	}
}
END_TEST

START_TEST(test_proto_op_rejects_unknown)
{
	/* Not write ops: PING, STATS, SYNC and BATCH have no op body of their
	 * own, and everything else is unknown. Each is tried with a body that
	 * would be valid for some write op. */
	const uint16_t ops[] = { 0, PROTO_OP_PING, PROTO_OP_STATS, PROTO_OP_SYNC, 4, 15, 20,
				 PROTO_OP_BATCH, 33, 0xFFFF };
	unsigned char assoc[PROTO_ASSOC_SIZE], delassoc[PROTO_DELASSOC_SIZE], concept[64];
	size_t cn = concept_raw(concept, 0, "abc", 3, NULL, 0);

	assoc_raw(assoc, 1, 1.0f, 1.0f);
	delassoc_raw(delassoc, 1);
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		ck_assert_msg(dec(ops[i], assoc, sizeof assoc, &lim, NULL) == SUTRA_EPROTO,
			      "op %u accepted", ops[i]);
		ck_assert_err(dec(ops[i], delassoc, sizeof delassoc, &lim, NULL), SUTRA_EPROTO);
		ck_assert_err(dec(ops[i], id_a, 16, &lim, NULL), SUTRA_EPROTO);
		ck_assert_err(dec(ops[i], concept, cn, &lim, NULL), SUTRA_EPROTO);
		ck_assert_err(dec(ops[i], id_a, 0, &lim, NULL), SUTRA_EPROTO);
	}
}
END_TEST

/* ---- Batches --------------------------------------------------------------- */

START_TEST(test_proto_batch_roundtrip)
{
	unsigned char b[512], body[128];
	size_t pos = batch_start(b, 4);
	size_t n = concept_raw(body, 4, "abc", 3, "m", 1);
	pos = batch_put(b, pos, PROTO_OP_LEARN_CONCEPT, body, (uint32_t)n);
	pos = batch_put(b, pos, PROTO_OP_LEARN_ASSOCIATION, body, (uint32_t)assoc_raw(body, 4, 1, 2));
	pos = batch_put(b, pos, PROTO_OP_DELETE_ASSOCIATION, body, (uint32_t)delassoc_raw(body, 4));
	pos = batch_put(b, pos, PROTO_OP_DELETE_CONCEPT, id_b, 16);

	struct proto_batch_iter it;
	struct proto_op_body op;
	struct sutra_detail why;
	ck_assert_ok(proto_batch_begin(&it, b, pos, &lim, &why));
	ck_assert_uint_eq(it.count, 4);
	ck_assert_int_eq(proto_batch_next(&it, &lim, &op, &why), 1);
	ck_assert_uint_eq(op.op, PROTO_OP_LEARN_CONCEPT);
	ck_assert_uint_eq(op.u.concept.content_len, 3);
	ck_assert_mem_eq(op.u.concept.content, "abc", 3);
	ck_assert_uint_eq(op.u.concept.vector_dim, 4);
	ck_assert_int_eq(proto_batch_next(&it, &lim, &op, &why), 1);
	ck_assert_uint_eq(op.op, PROTO_OP_LEARN_ASSOCIATION);
	ck_assert_uint_eq(op.u.assoc.type, 4);
	ck_assert(op.u.assoc.weight == 2.0f);
	ck_assert_int_eq(proto_batch_next(&it, &lim, &op, &why), 1);
	ck_assert_uint_eq(op.op, PROTO_OP_DELETE_ASSOCIATION);
	ck_assert_mem_eq(op.u.assoc.dst, id_b, 16);
	ck_assert_int_eq(proto_batch_next(&it, &lim, &op, &why), 1);
	ck_assert_uint_eq(op.op, PROTO_OP_DELETE_CONCEPT);
	ck_assert_mem_eq(op.u.del.id, id_b, 16);
	ck_assert_uint_eq(it.index, 4);
	ck_assert_int_eq(proto_batch_next(&it, &lim, &op, &why), 0);
	/* The end stays the end. */
	ck_assert_int_eq(proto_batch_next(&it, &lim, &op, &why), 0);

	/* The same through the client's encoder: proto_op_encode per entry. */
	struct proto_op_body a;
	memset(&a, 0, sizeof a);
	a.op = PROTO_OP_DELETE_CONCEPT;
	memcpy(a.u.del.id, id_b, 16);
	size_t p2 = batch_start(b, 1);
	util_put_le16(b + p2, a.op);
	util_put_le16(b + p2 + 2, 0);
	util_put_le32(b + p2 + 4, (uint32_t)proto_op_size(&a));
	proto_op_encode(&a, NULL, b + p2 + PROTO_BATCH_ENTRY);
	p2 += PROTO_BATCH_ENTRY + proto_op_size(&a);
	uint32_t done;
	ck_assert_ok(batch_run(b, p2, &lim, &done, NULL));
	ck_assert_uint_eq(done, 1);
}
END_TEST

START_TEST(test_proto_batch_empty)
{
	unsigned char b[PROTO_BATCH_FIXED];
	uint32_t done = 99;

	batch_start(b, 0);
	ck_assert_ok(batch_run(b, sizeof b, &lim, &done, NULL));
	ck_assert_uint_eq(done, 0);
}
END_TEST

START_TEST(test_proto_batch_rejects_short_or_reserved)
{
	unsigned char b[PROTO_BATCH_FIXED];

	batch_start(b, 0);
	ck_assert_err(batch_run(b, 0, &lim, NULL, NULL), SUTRA_EPROTO);
	ck_assert_err(batch_run(b, PROTO_BATCH_FIXED - 1, &lim, NULL, NULL), SUTRA_EPROTO);
	for (int i = 4; i < 8; i++) {
		b[i] = 1;
		ck_assert_err(batch_run(b, sizeof b, &lim, NULL, NULL), SUTRA_EPROTO);
		b[i] = 0;
	}
}
END_TEST

START_TEST(test_proto_batch_rejects_count_over_limit)
{
	unsigned char b[PROTO_BATCH_FIXED + 8 * (PROTO_BATCH_ENTRY + 16)];
	size_t pos = batch_start(b, lim.max_batch);

	for (uint32_t i = 0; i < lim.max_batch; i++)
		pos = batch_put(b, pos, PROTO_OP_DELETE_CONCEPT, id_a, 16);
	ck_assert_ok(batch_run(b, pos, &lim, NULL, NULL));

	pos = batch_start(b, lim.max_batch + 1);
	for (uint32_t i = 0; i < lim.max_batch + 1; i++)
		pos = batch_put(b, pos, PROTO_OP_DELETE_CONCEPT, id_a, 16);
	ck_assert_err(batch_run(b, pos, &lim, NULL, NULL), SUTRA_ETOOBIG);
	batch_start(b, UINT32_MAX);
	ck_assert_err(batch_run(b, pos, &lim, NULL, NULL), SUTRA_ETOOBIG);
}
END_TEST

START_TEST(test_proto_batch_rejects_count_beyond_body)
{
	unsigned char b[PROTO_BATCH_FIXED + 3 * (PROTO_BATCH_ENTRY + 16)];
	struct proto_limits l = lim;
	uint32_t done = 99;

	/* Three delete_concept entries take 72 bytes, room for at most nine
	 * entry headers: a count of ten cannot fit, whatever the entries say,
	 * and is refused before any entry is read. */
	l.max_batch = UINT32_MAX;
	size_t pos = batch_start(b, 3);
	for (int i = 0; i < 3; i++)
		pos = batch_put(b, pos, PROTO_OP_DELETE_CONCEPT, id_a, 16);
	ck_assert_ok(batch_run(b, pos, &l, &done, NULL));
	ck_assert_uint_eq(done, 3);
	batch_start(b, 10);
	ck_assert_err(batch_run(b, pos, &l, &done, NULL), SUTRA_EPROTO);
	ck_assert_uint_eq(done, 0);
	batch_start(b, UINT32_MAX);
	ck_assert_err(batch_run(b, pos, &l, &done, NULL), SUTRA_EPROTO);
	ck_assert_uint_eq(done, 0);
	/* Nine fit the check (the entries then disagree). */
	batch_start(b, 9);
	ck_assert_err(batch_run(b, pos, &l, &done, NULL), SUTRA_EPROTO);
	ck_assert_uint_eq(done, 3);
	batch_start(b, 1);
	ck_assert_err(batch_run(b, PROTO_BATCH_FIXED, &l, &done, NULL), SUTRA_EPROTO);
	ck_assert_uint_eq(done, 0);
}
END_TEST

START_TEST(test_proto_batch_rejects_entry_past_end)
{
	unsigned char b[128];
	uint32_t index = 99, done = 99;
	size_t pos = batch_start(b, 2);

	pos = batch_put(b, pos, PROTO_OP_DELETE_CONCEPT, id_a, 16);
	pos = batch_put(b, pos, PROTO_OP_DELETE_CONCEPT, id_b, 16);
	ck_assert_ok(batch_run(b, pos, &lim, NULL, NULL));
	/* The second entry claims one byte more than there is. */
	util_put_le32(b + PROTO_BATCH_FIXED + PROTO_BATCH_ENTRY + 16 + 4, 17);
	ck_assert_err(batch_run(b, pos, &lim, &done, &index), SUTRA_EPROTO);
	ck_assert_uint_eq(done, 1);
	ck_assert_uint_eq(index, 1);
	/* A well-formed entry cut short by the end of the message: the
	 * entry is refused, not decoded from the bytes beyond. */
	util_put_le32(b + PROTO_BATCH_FIXED + PROTO_BATCH_ENTRY + 16 + 4, 16);
	ck_assert_err(batch_run(b, pos - 4, &lim, &done, &index), SUTRA_EPROTO);
	ck_assert_uint_eq(done, 1);
	ck_assert_uint_eq(index, 1);
	pos = batch_start(b, 1);
	pos = batch_put(b, pos, PROTO_OP_DELETE_CONCEPT, id_a, 16);
	ck_assert_err(batch_run(b, pos - 1, &lim, &done, &index), SUTRA_EPROTO);
	ck_assert_uint_eq(done, 0);
	ck_assert_uint_eq(index, 0);
	/* A length near 2^32. */
	util_put_le32(b + PROTO_BATCH_FIXED + 4, UINT32_MAX - 7);
	ck_assert_err(batch_run(b, pos, &lim, &done, &index), SUTRA_EPROTO);
	ck_assert_uint_eq(done, 0);
	util_put_le32(b + PROTO_BATCH_FIXED + 4, UINT32_MAX);
	ck_assert_err(batch_run(b, pos, &lim, &done, &index), SUTRA_EPROTO);
	ck_assert_uint_eq(done, 0);
}
END_TEST

START_TEST(test_proto_batch_rejects_nested)
{
	unsigned char b[128], inner[PROTO_BATCH_FIXED];
	uint32_t index = 99, done = 99;
	size_t pos = batch_start(b, 2);

	batch_start(inner, 0);
	pos = batch_put(b, pos, PROTO_OP_DELETE_CONCEPT, id_a, 16);
	pos = batch_put(b, pos, PROTO_OP_BATCH, inner, sizeof inner);
	ck_assert_err(batch_run(b, pos, &lim, &done, &index), SUTRA_EPROTO);
	ck_assert_uint_eq(done, 1);
	ck_assert_uint_eq(index, 1);
}
END_TEST

START_TEST(test_proto_batch_rejects_trailing_bytes)
{
	unsigned char b[128];
	uint32_t index = 99, done = 99;
	size_t pos = batch_start(b, 1);

	pos = batch_put(b, pos, PROTO_OP_DELETE_CONCEPT, id_a, 16);
	ck_assert_ok(batch_run(b, pos, &lim, NULL, NULL));
	b[pos] = 0;
	ck_assert_err(batch_run(b, pos + 1, &lim, &done, &index), SUTRA_EPROTO);
	ck_assert_uint_eq(done, 1);
	ck_assert_uint_eq(index, 1); /* past the last entry */
	/* A whole extra entry the count does not announce. */
	pos = batch_put(b, pos, PROTO_OP_DELETE_CONCEPT, id_b, 16);
	ck_assert_err(batch_run(b, pos, &lim, NULL, NULL), SUTRA_EPROTO);
	/* An empty batch with bytes after it. */
	batch_start(b, 0);
	ck_assert_err(batch_run(b, PROTO_BATCH_FIXED + PROTO_BATCH_ENTRY, &lim, NULL, NULL),
	              SUTRA_EPROTO);
}
END_TEST

START_TEST(test_proto_batch_rejects_truncated_entry_header)
{
	unsigned char b[128];
	uint32_t index = 99, done = 99;

	/* Two entries announced; the first leaves 4 bytes, too few for the
	 * second's 8-byte header (the count check alone cannot see it). */
	size_t pos = batch_start(b, 2);
	pos = batch_put(b, pos, PROTO_OP_DELETE_CONCEPT, id_a, 16);
	memset(b + pos, 0, 4);
	pos += 4;
	ck_assert_err(batch_run(b, pos, &lim, &done, &index), SUTRA_EPROTO);
	ck_assert_uint_eq(done, 1);
	ck_assert_uint_eq(index, 1);
	/* 7 of 8 header bytes. */
	pos = batch_start(b, 2);
	pos = batch_put(b, pos, PROTO_OP_DELETE_CONCEPT, id_a, 16);
	memset(b + pos, 0, 7);
	ck_assert_err(batch_run(b, pos + 7, &lim, NULL, NULL), SUTRA_EPROTO);
}
END_TEST

START_TEST(test_proto_batch_rejects_entry_reserved)
{
	unsigned char b[64];
	size_t pos = batch_start(b, 1);

	pos = batch_put(b, pos, PROTO_OP_DELETE_CONCEPT, id_a, 16);
	for (int i = 2; i < 4; i++) {
		b[PROTO_BATCH_FIXED + i] = 1;
		ck_assert_err(batch_run(b, pos, &lim, NULL, NULL), SUTRA_EPROTO);
		b[PROTO_BATCH_FIXED + i] = 0;
	}
	ck_assert_ok(batch_run(b, pos, &lim, NULL, NULL));
}
END_TEST

START_TEST(test_proto_batch_entry_errors_keep_their_code)
{
	unsigned char b[512], body[128];
	uint32_t index = 99, done = 99;
	size_t pos, n;

	/* An entry's own rejection comes out unchanged, with its index. */
	pos = batch_start(b, 3);
	pos = batch_put(b, pos, PROTO_OP_DELETE_CONCEPT, id_a, 16);
	pos = batch_put(b, pos, PROTO_OP_LEARN_ASSOCIATION, body, (uint32_t)assoc_raw(body, 1, NAN, 1));
	pos = batch_put(b, pos, PROTO_OP_DELETE_CONCEPT, id_b, 16);
	ck_assert_err(batch_run(b, pos, &lim, &done, &index), SUTRA_EVALUE);
	ck_assert_uint_eq(done, 1);
	ck_assert_uint_eq(index, 1);

	pos = batch_start(b, 2);
	pos = batch_put(b, pos, PROTO_OP_DELETE_CONCEPT, id_a, 16);
	n = concept_raw(body, 3, "abc", 3, NULL, 0);
	pos = batch_put(b, pos, PROTO_OP_LEARN_CONCEPT, body, (uint32_t)n);
	ck_assert_err(batch_run(b, pos, &lim, NULL, &index), SUTRA_EDIM);
	ck_assert_uint_eq(index, 1);

	char content[80];
	memset(content, 'x', sizeof content);
	pos = batch_start(b, 1);
	n = concept_raw(body, 0, content, sizeof content, NULL, 0);
	pos = batch_put(b, pos, PROTO_OP_LEARN_CONCEPT, body, (uint32_t)n);
	ck_assert_err(batch_run(b, pos, &lim, NULL, &index), SUTRA_ETOOBIG);
	ck_assert_uint_eq(index, 0);

	/* Ops that are not writes are not batch entries. */
	const uint16_t notwrite[] = { PROTO_OP_PING, PROTO_OP_STATS, PROTO_OP_SYNC, 0, 99 };
	for (size_t i = 0; i < sizeof notwrite / sizeof notwrite[0]; i++) {
		pos = batch_start(b, 1);
		pos = batch_put(b, pos, notwrite[i], id_a, 0);
		ck_assert_err(batch_run(b, pos, &lim, NULL, NULL), SUTRA_EPROTO);
	}
	/* A concept entry whose own lengths disagree with the entry length. */
	pos = batch_start(b, 1);
	n = concept_raw(body, 4, "abc", 3, NULL, 0);
	pos = batch_put(b, pos, PROTO_OP_LEARN_CONCEPT, body, (uint32_t)n);
	util_put_le32(b + PROTO_BATCH_FIXED + PROTO_BATCH_ENTRY + 28, 2);
	ck_assert_err(batch_run(b, pos, &lim, NULL, NULL), SUTRA_EPROTO);
}
END_TEST

TCHECK_MAIN("coordinator", "proto", 0, test_proto_req_header_roundtrip,
	    test_proto_req_header_rejects_short, test_proto_req_header_rejects_bad_magic,
	    test_proto_req_header_rejects_bad_version, test_proto_req_header_rejects_flags,
	    test_proto_req_header_rejects_body_len_mismatch, test_proto_req_header_rejects_too_big,
	    test_proto_rep_header_roundtrip, test_proto_rep_header_rejects_malformed,
	    test_proto_error_body_roundtrip, test_proto_error_body_rejects_malformed,
	    test_proto_stats_roundtrip, test_proto_ping_roundtrip, test_proto_notice_roundtrip,
	    test_proto_notice_rejects_malformed, test_proto_op_concept_roundtrip,
	    test_proto_op_concept_minimal_roundtrip, test_proto_op_assoc_roundtrip,
	    test_proto_op_delete_concept_roundtrip, test_proto_op_delete_assoc_roundtrip,
	    test_proto_concept_rejects_short, test_proto_concept_rejects_length_mismatch,
	    test_proto_concept_rejects_length_overflow, test_proto_concept_rejects_flags,
	    test_proto_concept_rejects_empty_content,
	    test_proto_concept_rejects_content_over_limit,
	    test_proto_concept_rejects_metadata_over_limit, test_proto_concept_rejects_bad_utf8,
	    test_proto_concept_rejects_non_finite, test_proto_concept_rejects_wrong_dimension,
	    test_proto_assoc_rejects_wrong_size, test_proto_assoc_rejects_reserved,
	    test_proto_assoc_rejects_non_finite, test_proto_delete_concept_rejects_wrong_size,
	    test_proto_delete_assoc_rejects_wrong_size, test_proto_delete_assoc_rejects_reserved,
	    test_proto_op_rejects_unknown, test_proto_batch_roundtrip, test_proto_batch_empty,
	    test_proto_batch_rejects_short_or_reserved, test_proto_batch_rejects_count_over_limit,
	    test_proto_batch_rejects_count_beyond_body, test_proto_batch_rejects_entry_past_end,
	    test_proto_batch_rejects_nested, test_proto_batch_rejects_trailing_bytes,
	    test_proto_batch_rejects_truncated_entry_header,
	    test_proto_batch_rejects_entry_reserved, test_proto_batch_entry_errors_keep_their_code)
