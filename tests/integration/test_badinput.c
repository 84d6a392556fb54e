/* SPDX-License-Identifier: MIT */
/* sutra-coordinator as a process under bad input: every case gets a clear error reply, the store stays unchanged and the coordinator keeps serving. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tests/common/tcheck.h"
#include "wire/proto.h"
#include "layout/layout.h"
#include "sutra/client.h"
#include "tests/common/daemon.h"
#include "util/endian.h"

/*
 * Each test starts the real sutra-coordinator on a store holding two
 * concepts (a, b) and an association a -> b, records its statistics, sends
 * bad requests (through the public client where it can express them, as
 * hand-built bytes on raw nng REQ sockets where it cannot), and after each
 * one checks the exact status, that a ping still works and that the epoch,
 * published end and counts did not move. At the end the stopped store is
 * verified through the layout library.
 */

#define DIM 8u

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void id_of(uint8_t id[16], uint32_t n)
{
	memset(id, 0, 16);
	id[0] = 0xba;
	id[1] = 0xd1;
	util_put_le32(id + 12, n);
}

static void vec(float *v, uint32_t dim, uint32_t seed)
{
	for (uint32_t i = 0; i < dim; i++)
		v[i] = (float)((seed * 13u + i * 5u) % 89u) / 89.0f - 0.5f;
}

static struct sutra_concept_in concept(const uint8_t *id, const char *content, size_t len,
				       const float *emb, uint32_t dim)
{
	struct sutra_concept_in in = { .id = id,
				       .content = content,
				       .content_len = len,
				       .embedding = emb,
				       .vector_dim = emb ? dim : 0,
				       .strength = 1.0f,
				       .confidence = 1.0f };
	return in;
}

/* ---- The fixture: a coordinator with a small store ---------------------- */

static struct {
	struct tdaemon d;
	sutra_client *c;
	struct sutra_coord_stats before;
	uint8_t a[16], b[16];
	uint8_t unknown[16];
} fx;

static struct sutra_coord_stats stats_of(sutra_client *c)
{
	struct sutra_coord_stats st;
	int rc = sutra_client_stats(c, &st);
	ck_assert_msg(rc == 0, "stats: %s (%s)", sutra_errname(rc), sutra_client_last_error(c));
	return st;
}

/* Starts the coordinator with --vector-dimension 8 and extra (may be
 * NULL), and writes a, b, a -> b. */
static void fx_start(const char *const *extra)
{
	const char *args[32] = { "--vector-dimension", "8" };
	int n = 2;
	for (int i = 0; extra && extra[i] && n < 31; i++)
		args[n++] = extra[i];
	args[n] = NULL;

	memset(&fx, 0, sizeof fx);
	ck_assert_ok(tdaemon_mkdir(&fx.d));
	ck_assert_msg(tdaemon_start(&fx.d, args) == 0, "sutra-coordinator did not start");
	struct sutra_client_options o;
	sutra_client_options_init(&o);
	o.timeout_ms = 5000;
	ck_assert_ok(sutra_client_connect(fx.d.url, &o, &fx.c));

	float v[DIM];
	vec(v, DIM, 1);
	id_of(fx.a, 1);
	id_of(fx.b, 2);
	id_of(fx.unknown, 0xdead);
	struct sutra_concept_in in = concept(fx.a, "alpha", 5, v, DIM);
	ck_assert_ok(sutra_client_learn_concept(fx.c, &in, NULL));
	in = concept(fx.b, "beta", 4, NULL, 0);
	ck_assert_ok(sutra_client_learn_concept(fx.c, &in, NULL));
	ck_assert_ok(sutra_client_learn_association(fx.c, fx.a, fx.b, SUTRA_ASSOC_CAUSAL, 1.0f,
							1.0f, NULL));
	fx.before = stats_of(fx.c);
	ck_assert_uint_eq(fx.before.concept_count, 2);
	ck_assert_uint_eq(fx.before.association_count, 1);
}

/* The coordinator still answers, and nothing of the store changed. */
static void fx_check(const char *what)
{
	uint64_t e = 0;
	int rc = sutra_client_ping(fx.c, &e);
	ck_assert_msg(rc == 0, "%s: ping afterwards: %s (%s)", what, sutra_errname(rc),
		      sutra_client_last_error(fx.c));
	struct sutra_coord_stats st = stats_of(fx.c);
	const struct sutra_coord_stats *b = &fx.before;
	ck_assert_msg(st.epoch == b->epoch && e == b->epoch,
		      "%s: epoch moved from %llu to %llu", what, (unsigned long long)b->epoch,
		      (unsigned long long)st.epoch);
	ck_assert_msg(st.published_end == b->published_end, "%s: published end moved", what);
	ck_assert_msg(st.concept_count == b->concept_count &&
			      st.association_count == b->association_count &&
			      st.next_ordinal == b->next_ordinal,
		      "%s: counts moved: %llu concepts, %llu associations, next ordinal %llu", what,
		      (unsigned long long)st.concept_count,
		      (unsigned long long)st.association_count,
		      (unsigned long long)st.next_ordinal);
}

/* Stops the coordinator (SIGTERM must give exit 0: checked last), and
 * verifies the file and its counts through the layout library. */
static void fx_finish(void)
{
	struct layout_map map;
	struct layout_view v;
	struct layout_replay r;
	struct sutra_detail pb;

	sutra_client_close(fx.c);
	fx.c = NULL;
	int st = tdaemon_stop(&fx.d);
	ck_assert_ok(layout_map_open(fx.d.data, &map));
	int rc = layout_open(map.base, map.size, &v, &pb);
	ck_assert_msg(rc == 0, "store does not open: offset %llu: %s",
		      (unsigned long long)pb.offset, pb.what);
	ck_assert_ok(layout_replay_init(&r, v.sb.vector_dim));
	rc = layout_verify(&v, &r, &pb);
	ck_assert_msg(rc == 0, "store does not verify: offset %llu: %s",
		      (unsigned long long)pb.offset, pb.what);
	ck_assert_uint_eq(v.meta.epoch, fx.before.epoch);
	ck_assert_uint_eq(v.meta.concept_count, fx.before.concept_count);
	ck_assert_uint_eq(v.meta.association_count, fx.before.association_count);
	ck_assert_uint_eq(r.concept_count, fx.before.concept_count);
	layout_replay_finish(&r);
	layout_map_close(&map);
	ck_assert_msg(st == 0,
		      "SIGTERM not answered by exit status 0 within 20 s (status %d; -1: still "
		      "running, then killed)",
		      st);
	tdaemon_cleanup(&fx.d);
}

/* The explanation and batch index of the last failed client call, saved
 * by expect_client() before its own checks reset them. */
static char last_error[1024];
static int last_index;

/* A failed public-client call: exact status, an explanation, nothing
 * changed. Returns the failing batch entry (or -1). */
static int expect_client(int rc, int status, const char *what)
{
	snprintf(last_error, sizeof last_error, "%s", sutra_client_last_error(fx.c));
	last_index = sutra_client_last_error_index(fx.c);
	ck_assert_msg(rc == status, "%s: %s (%d), expected %s (%d): %s", what, sutra_errname(rc), rc,
		      sutra_errname(status), status, last_error);
	ck_assert_msg(last_error[0] != 0, "%s: error without explanation", what);
	fx_check(what);
	return last_index;
}

/* ---- Raw requests ------------------------------------------------------- */

struct reply {
	int rv;      /* nng result of the round trip */
	int decoded; /* proto_rep_header_decode() result */
	struct proto_rep_header h;
	uint32_t index; /* error body: failing batch entry, UINT32_MAX: none */
	char msg[512];
};

static nng_socket raw_open(const char *url, int timeout_ms)
{
	nng_socket s;
	ck_assert_int_eq(nng_req0_open(&s), 0);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout_ms);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout_ms);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, 60000);
	nng_socket_set_ms(s, NNG_OPT_RECONNMINT, 10);
	nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, 100);
	int rv = nng_dial(s, url, NULL, 0);
	ck_assert_msg(rv == 0, "dial %s: %s", url, nng_strerror(rv));
	return s;
}

static struct reply raw_send(nng_socket s, const void *msg, size_t len)
{
	struct reply r;
	void *rep;
	size_t rl;

	memset(&r, 0, sizeof r);
	r.index = UINT32_MAX;
	r.decoded = SUTRA_EPROTO;
	if ((r.rv = nng_send(s, (void *)msg, len, 0)) != 0)
		return r;
	if ((r.rv = nng_recv(s, &rep, &rl, NNG_FLAG_ALLOC)) != 0)
		return r;
	r.decoded = proto_rep_header_decode(rep, rl, &r.h);
	if (r.decoded == 0 && r.h.status != 0) {
		const char *m;
		uint32_t ml;
		if (proto_error_body_decode((const unsigned char *)rep + PROTO_REP_HEADER,
					    r.h.body_len, &r.index, &m, &ml) == 0)
			snprintf(r.msg, sizeof r.msg, "%.*s", (int)ml, m);
	}
	nng_free(rep, rl);
	return r;
}

/* One request on a new connection to the fixture's coordinator. */
static struct reply raw(const void *msg, size_t len)
{
	nng_socket s = raw_open(fx.d.url, 5000);
	struct reply r = raw_send(s, msg, len);
	nng_close(s);
	return r;
}

static void expect_status(const struct reply *r, int status, const char *what)
{
	ck_assert_msg(r->rv == 0, "%s: no reply (%s)", what, nng_strerror(r->rv));
	ck_assert_msg(r->decoded == 0, "%s: malformed reply", what);
	ck_assert_msg(r->h.status == status, "%s: status %s (%d), expected %s (%d): %s", what,
		      sutra_errname(r->h.status), r->h.status, sutra_errname(status), status,
		      r->msg);
	if (status)
		ck_assert_msg(r->msg[0] != 0, "%s: error reply without explanation", what);
}

/* Sends msg raw, expects status, checks the store did not change. */
static struct reply expect_raw(const void *msg, size_t len, int status, const char *what)
{
	struct reply r = raw(msg, len);
	expect_status(&r, status, what);
	fx_check(what);
	return r;
}

/* Writes a request header claiming body_len (not necessarily the truth). */
static void header(unsigned char *out, uint16_t op, uint64_t client, uint64_t seq,
		   uint32_t body_len)
{
	struct proto_req_header h = { .version = PROTO_VERSION,
				      .op = op,
				      .client_id = client,
				      .seq = seq,
				      .body_len = body_len };
	proto_req_header_encode(&h, out);
}

/* A request buffer: header + body, body_len the body's true length. */
static unsigned char *request(uint16_t op, const void *body, size_t body_len, size_t *len)
{
	unsigned char *m = malloc(PROTO_REQ_HEADER + body_len + 1);
	ck_assert_ptr_nonnull(m);
	header(m, op, 0, 0, (uint32_t)body_len);
	if (body_len)
		memcpy(m + PROTO_REQ_HEADER, body, body_len);
	*len = PROTO_REQ_HEADER + body_len;
	return m;
}

/* The body of a learn_concept (malloc'ed); emb may be NULL. */
static unsigned char *concept_body(const uint8_t id[16], const char *content, const float *emb,
				   uint32_t dim, size_t *len)
{
	struct proto_op_body op;
	memset(&op, 0, sizeof op);
	op.op = PROTO_OP_LEARN_CONCEPT;
	memcpy(op.u.concept.id, id, 16);
	op.u.concept.strength = 1.0f;
	op.u.concept.confidence = 1.0f;
	op.u.concept.vector_dim = emb ? dim : 0;
	op.u.concept.content = content;
	op.u.concept.content_len = (uint32_t)strlen(content);
	*len = proto_op_size(&op);
	unsigned char *b = malloc(*len);
	ck_assert_ptr_nonnull(b);
	proto_op_encode(&op, emb, b);
	return b;
}

/* A batch body of n learn_concept entries (ids 100 + i). */
static unsigned char *batch_body(uint32_t n, size_t *len, size_t *entry_off)
{
	unsigned char *b = malloc(4096);
	size_t pos = PROTO_BATCH_FIXED;
	ck_assert_ptr_nonnull(b);
	memset(b, 0, PROTO_BATCH_FIXED);
	util_put_le32(b, n);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t id[16];
		size_t el;
		id_of(id, 100 + i);
		unsigned char *e = concept_body(id, "batched content", NULL, 0, &el);
		if (entry_off)
			entry_off[i] = pos;
		memset(b + pos, 0, PROTO_BATCH_ENTRY);
		util_put_le16(b + pos, PROTO_OP_LEARN_CONCEPT);
		util_put_le32(b + pos + 4, (uint32_t)el);
		memcpy(b + pos + PROTO_BATCH_ENTRY, e, el);
		pos += PROTO_BATCH_ENTRY + el;
		free(e);
	}
	*len = pos;
	return b;
}

/* ---- A REQ peer without nng -------------------------------------------- */

/*
 * nng's ipc wire format, spoken by hand: each side sends an 8-byte
 * handshake (0, 'S', 'P', 0, protocol id big-endian, 0, 0; REQ is 0x30,
 * REP 0x31), then frames of one type byte (1), a 64-bit big-endian length
 * and the payload; a REQ payload starts with a 32-bit big-endian request
 * id with its top bit set. Used where the test must see exactly what the
 * coordinator does with a connection, without nng's resends.
 */

static void unix_addr(const char *url, struct sockaddr_un *sa)
{
	ck_assert(strncmp(url, "ipc://", 6) == 0);
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	ck_assert_uint_lt(strlen(url + 6), sizeof sa->sun_path);
	strcpy(sa->sun_path, url + 6);
}

/* Waits for fd to become readable; 1, or 0 after timeout_ms. */
static int readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n;
	while ((n = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
		;
	return n > 0;
}

/* Reads exactly len bytes: 1, 0 on end of file or reset, -ETIMEDOUT. */
static int read_full(int fd, unsigned char *buf, size_t len, int timeout_ms)
{
	size_t got = 0;
	while (got < len) {
		if (!readable(fd, timeout_ms))
			return -ETIMEDOUT;
		ssize_t n = recv(fd, buf + got, len - got, 0);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return 0;
		}
		got += (size_t)n;
	}
	return 1;
}

static int sp_connect(const char *url)
{
	struct sockaddr_un sa;
	unsigned char hs[8] = { 0, 'S', 'P', 0, 0x00, 0x30, 0, 0 }, peer[8];

	unix_addr(url, &sa);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect %s: %s", url,
		      strerror(errno));
	ck_assert_int_eq(send(fd, hs, sizeof hs, MSG_NOSIGNAL), (ssize_t)sizeof hs);
	ck_assert_int_eq(read_full(fd, peer, sizeof peer, 5000), 1);
	ck_assert_msg(peer[0] == 0 && peer[1] == 'S' && peer[2] == 'P' && peer[4] == 0 &&
			      peer[5] == 0x31,
		      "not a REP peer");
	return fd;
}

/* Sends one request. Returns 0, or -errno when the peer dropped the
 * connection while it was being written. */
static int sp_send(int fd, uint32_t id, const void *body, size_t len)
{
	unsigned char h[13];
	h[0] = 1;
	for (int i = 0; i < 8; i++)
		h[1 + i] = (unsigned char)((uint64_t)(len + 4) >> (56 - 8 * i));
	id |= 0x80000000u;
	for (int i = 0; i < 4; i++)
		h[9 + i] = (unsigned char)(id >> (24 - 8 * i));
	struct iovec iov[2] = { { h, sizeof h }, { (void *)body, len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	size_t left = sizeof h + len;
	while (left) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		left -= (size_t)n;
		while (n > 0) {
			size_t take = (size_t)n < mh.msg_iov->iov_len ? (size_t)n : mh.msg_iov->iov_len;
			mh.msg_iov->iov_base = (unsigned char *)mh.msg_iov->iov_base + take;
			mh.msg_iov->iov_len -= take;
			n -= (ssize_t)take;
			if (mh.msg_iov->iov_len == 0 && mh.msg_iovlen > 1) {
				mh.msg_iov++;
				mh.msg_iovlen--;
			}
		}
	}
	return 0;
}

/* Receives one reply into r: 1, 0 when the peer closed the connection,
 * -ETIMEDOUT when nothing came. */
static int sp_recv(int fd, int timeout_ms, struct reply *r)
{
	unsigned char h[9], *msg;
	memset(r, 0, sizeof *r);
	int rc = read_full(fd, h, sizeof h, timeout_ms);
	if (rc != 1)
		return rc;
	ck_assert_uint_eq(h[0], 1);
	uint64_t len = 0;
	for (int i = 1; i < 9; i++)
		len = len << 8 | h[i];
	ck_assert_uint_ge(len, 4 + PROTO_REP_HEADER);
	ck_assert_uint_le(len, 1u << 20);
	msg = malloc((size_t)len);
	ck_assert_ptr_nonnull(msg);
	ck_assert_int_eq(read_full(fd, msg, (size_t)len, timeout_ms), 1);
	r->decoded = proto_rep_header_decode(msg + 4, (size_t)len - 4, &r->h);
	free(msg);
	return 1;
}

/* ---- Truncated and malformed messages ----------------------------------- */

START_TEST(test_badinput_truncated_messages)
{
	unsigned char hdr[PROTO_REQ_HEADER];
	size_t bl, ml;

	fx_start(NULL);
	/* Shorter than the header. */
	header(hdr, PROTO_OP_PING, 7, 1, 0);
	expect_raw(hdr, 0, SUTRA_EPROTO, "empty message");
	expect_raw(hdr, 1, SUTRA_EPROTO, "1-byte message");
	expect_raw(hdr, PROTO_REQ_HEADER - 1, SUTRA_EPROTO, "31-byte message");

	/* A header alone for each op that needs a body; the error reply
	 * still names the request. */
	static const uint16_t ops[] = { PROTO_OP_LEARN_CONCEPT, PROTO_OP_LEARN_ASSOCIATION,
					PROTO_OP_DELETE_CONCEPT, PROTO_OP_DELETE_ASSOCIATION,
					PROTO_OP_BATCH };
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		char what[64];
		snprintf(what, sizeof what, "header only, op %u", ops[i]);
		header(hdr, ops[i], 0x42, 1000 + i, 0);
		struct reply r = expect_raw(hdr, sizeof hdr, SUTRA_EPROTO, what);
		ck_assert_uint_eq(r.h.client_id, 0x42);
		ck_assert_uint_eq(r.h.seq, 1000 + i);
		ck_assert_uint_eq(r.h.op, ops[i]);
	}

	/* A learn_concept with an embedding cut in the middle of its body:
	 * with the header's length left as it was, and made to match. */
	uint8_t id[16];
	float v[DIM];
	id_of(id, 50);
	vec(v, DIM, 50);
	unsigned char *body = concept_body(id, "cut in the middle", v, DIM, &bl);
	unsigned char *m = request(PROTO_OP_LEARN_CONCEPT, body, bl, &ml);
	size_t cut = PROTO_REQ_HEADER + bl / 2;
	expect_raw(m, cut, SUTRA_EPROTO, "concept cut, header length unchanged");
	header(m, PROTO_OP_LEARN_CONCEPT, 0, 0, (uint32_t)(bl / 2));
	expect_raw(m, cut, SUTRA_EPROTO, "concept cut, header length matching");
	header(m, PROTO_OP_LEARN_CONCEPT, 0, 0, PROTO_CONCEPT_FIXED - 1);
	expect_raw(m, PROTO_REQ_HEADER + PROTO_CONCEPT_FIXED - 1, SUTRA_EPROTO,
		   "concept cut inside its fixed part");
	free(m);
	free(body);

	/* An association one byte short. */
	unsigned char assoc[PROTO_ASSOC_SIZE] = { 0 };
	memcpy(assoc, fx.a, 16);
	memcpy(assoc + 16, fx.b, 16);
	util_put_lef32(assoc + 36, 1.0f);
	util_put_lef32(assoc + 40, 1.0f);
	m = request(PROTO_OP_LEARN_ASSOCIATION, assoc, sizeof assoc - 1, &ml);
	expect_raw(m, ml, SUTRA_EPROTO, "association one byte short");
	free(m);

	/* A batch cut in the middle of its second entry: the error names it. */
	size_t off[2];
	body = batch_body(2, &bl, off);
	size_t keep = off[1] + PROTO_BATCH_ENTRY + 10;
	m = request(PROTO_OP_BATCH, body, keep, &ml);
	struct reply r = expect_raw(m, ml, SUTRA_EPROTO, "batch cut in entry 1");
	ck_assert_uint_eq(r.index, 1);
	free(m);
	/* ... and cut inside an entry header. */
	m = request(PROTO_OP_BATCH, body, off[1] + 3, &ml);
	r = expect_raw(m, ml, SUTRA_EPROTO, "batch cut in the header of entry 1");
	ck_assert_uint_eq(r.index, 1);
	free(m);
	/* The whole batch is fine (and is not sent). */
	free(body);
	fx_finish();
}
END_TEST

START_TEST(test_badinput_bad_header)
{
	unsigned char m[PROTO_REQ_HEADER + PROTO_DELCONCEPT_SIZE];

	fx_start(NULL);
	header(m, PROTO_OP_DELETE_CONCEPT, 0, 0, PROTO_DELCONCEPT_SIZE);
	memcpy(m + PROTO_REQ_HEADER, fx.a, 16);
	m[0] ^= 0xff;
	expect_raw(m, sizeof m, SUTRA_EPROTO, "bad magic");
	m[0] ^= 0xff;
	util_put_le16(m + 4, 0);
	expect_raw(m, sizeof m, SUTRA_EPROTO, "protocol version 0");
	util_put_le16(m + 4, PROTO_VERSION + 1);
	expect_raw(m, sizeof m, SUTRA_EPROTO, "protocol version 2");
	util_put_le16(m + 4, PROTO_VERSION);
	util_put_le32(m + 28, 1);
	expect_raw(m, sizeof m, SUTRA_EPROTO, "header flags not zero");
	/* A reply header is not a request. */
	struct proto_rep_header rh = { .version = PROTO_VERSION, .op = PROTO_OP_PING };
	unsigned char rep[PROTO_REP_HEADER];
	proto_rep_header_encode(&rh, rep);
	expect_raw(rep, sizeof rep, SUTRA_EPROTO, "a reply sent as a request");
	fx_finish();
}
END_TEST

/* ---- Oversized requests ------------------------------------------------- */

START_TEST(test_badinput_oversized_request)
{
	const char *extra[] = { "--max-request-size", "65536", "--check-interval-ms", "200", NULL };
	size_t ml;

	fx_start(extra);
	/* Through the public client: 100 KiB of content (the content limit,
	 * 1 MiB, is not the one that bites). */
	size_t big = 100 * 1024;
	char *content = malloc(big);
	ck_assert_ptr_nonnull(content);
	memset(content, 'x', big);
	uint8_t id[16];
	id_of(id, 60);
	struct sutra_concept_in in = concept(id, content, big, NULL, 0);
	expect_client(sutra_client_learn_concept(fx.c, &in, NULL), SUTRA_ETOOBIG,
		      "100 KiB request through the client");
	free(content);

	/* Raw, 100 KiB with a consistent header. */
	unsigned char *body = calloc(1, big);
	ck_assert_ptr_nonnull(body);
	unsigned char *m = request(PROTO_OP_LEARN_CONCEPT, body, big - PROTO_REQ_HEADER, &ml);
	expect_raw(m, ml, SUTRA_ETOOBIG, "100 KiB raw request");
	free(m);
	free(body);
	/* More than twice the limit, but within max(2 x limit, limit + 1 MiB)
	 * (docs/PROTOCOL.md 2.3): still received and answered. */
	body = calloc(1, 200 * 1024);
	ck_assert_ptr_nonnull(body);
	m = request(PROTO_OP_LEARN_CONCEPT, body, 200 * 1024 - PROTO_REQ_HEADER, &ml);
	expect_raw(m, ml, SUTRA_ETOOBIG, "200 KiB raw request");
	free(m);
	free(body);

	/* Far over the limit (4 MiB: more than twice the limit, and more
	 * than the limit + 1 MiB): dropped with the connection, no reply.
	 * Spoken without nng, whose REQ would resend it on every reconnect
	 * (test_badinput_oversized_request_client covers the client). */
	size_t huge = 4u << 20;
	body = calloc(1, huge);
	ck_assert_ptr_nonnull(body);
	m = request(PROTO_OP_LEARN_CONCEPT, body, huge - PROTO_REQ_HEADER, &ml);
	int fd = sp_connect(fx.d.url);
	unsigned char ping[PROTO_REQ_HEADER];
	header(ping, PROTO_OP_PING, 0, 0, 0);
	struct reply r;
	ck_assert_int_eq(sp_send(fd, 1, ping, sizeof ping), 0);
	ck_assert_int_eq(sp_recv(fd, 5000, &r), 1); /* the hand-made peer works */
	expect_status(&r, 0, "ping over the hand-made connection");
	int sent = sp_send(fd, 2, m, ml);
	ck_assert_msg(sent == 0 || sent == -EPIPE || sent == -ECONNRESET, "send: %s",
		      strerror(-sent));
	int got = sp_recv(fd, 1500, &r);
	ck_assert_msg(got != 1, "4 MiB request: a reply (%s) instead of no reply",
		      sutra_errname(r.h.status));
	close(fd);
	free(m);
	free(body);
	ck_assert_msg(tdaemon_wait(&fx.d, 0) == -1, "the coordinator exited");

	/* New connections are still served. */
	uint64_t deadline = now_ms() + 5000;
	do {
		nng_socket s = raw_open(fx.d.url, 500);
		r = raw_send(s, ping, sizeof ping);
		nng_close(s);
	} while (r.rv != 0 && now_ms() < deadline);
	expect_status(&r, 0, "ping on a new connection after the dropped request");
	fx_check("4 MiB raw request");
	fx_finish();
}
END_TEST

/* Client mode (a separate process: this one has used nng): sends a 4 MiB
 * learn_concept through the public client, writes "rc N" to out, closes
 * the client and writes "closed". */
static int bigwrite_run(const char *url, const char *out)
{
	FILE *f = fopen(out, "we");
	if (!f)
		return 2;
	setvbuf(f, NULL, _IONBF, 0);
	struct sutra_client_options o;
	sutra_client_options_init(&o);
	o.timeout_ms = 2000;
	o.resend_ms = 500;
	sutra_client *c = NULL;
	int rc = sutra_client_connect(url, &o, &c);
	if (rc == 0) {
		size_t big = 4u << 20;
		char *content = malloc(big);
		uint8_t id[16];
		if (!content)
			return 2;
		memset(content, 'z', big);
		id_of(id, 300);
		struct sutra_concept_in in = concept(id, content, big, NULL, 0);
		rc = sutra_client_learn_concept(c, &in, NULL);
		free(content);
	}
	fprintf(f, "rc %d\n", rc);
	sutra_client_close(c);
	fprintf(f, "closed\n");
	fclose(f);
	return 0;
}

/* Polls path until it holds needle or timeout_ms passed; returns 1 if found. */
static int file_has(const char *path, const char *needle, int timeout_ms, char *copy,
		    size_t copy_len)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		FILE *f = fopen(path, "re");
		if (f) {
			size_t n = fread(copy, 1, copy_len - 1, f);
			copy[n] = 0;
			fclose(f);
			if (strstr(copy, needle))
				return 1;
		}
		if (now_ms() >= deadline)
			return 0;
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
}

START_TEST(test_badinput_oversized_request_client)
{
	const char *extra[] = { "--max-request-size", "65536", "--check-interval-ms", "200", NULL };
	char out[400], text[256];

	fx_start(extra);
	snprintf(out, sizeof out, "%s/bigwrite.txt", fx.d.dir);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execl("/proc/self/exe", "test_int_badinput", "--bigwrite", fx.d.url, out,
		      (char *)NULL);
		_exit(127);
	}
	/* The public client gives up after its timeout: no reply comes. */
	ck_assert_msg(file_has(out, "rc ", 15000, text, sizeof text),
		      "the client call did not return within 15 s");
	int rc = atoi(strstr(text, "rc ") + 3);
	ck_assert_msg(rc == SUTRA_EUNAVAIL, "4 MiB through the client: %s (%d), expected %s",
		      sutra_errname(rc), rc, sutra_errname(SUTRA_EUNAVAIL));
	fx_check("4 MiB request through the client");
	/* New connections are served. */
	unsigned char ping[PROTO_REQ_HEADER];
	header(ping, PROTO_OP_PING, 0, 0, 0);
	expect_raw(ping, sizeof ping, 0, "ping on a new connection");

	/* The client can be closed afterwards. */
	int closed = file_has(out, "closed", 5000, text, sizeof text);
	int st;
	if (!closed)
		kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	fx_finish();
	ck_assert_msg(closed,
		      "sutra_client_close() did not return within 5 s after the coordinator "
		      "dropped the client's oversized request");
}
END_TEST

/* ---- Lengths that lie --------------------------------------------------- */

START_TEST(test_badinput_length_prefix_too_large)
{
	unsigned char m[PROTO_REQ_HEADER + PROTO_DELCONCEPT_SIZE];
	size_t bl, ml;
	struct reply r;

	fx_start(NULL);
	memcpy(m + PROTO_REQ_HEADER, fx.a, 16);
	/* The header's body length. */
	header(m, PROTO_OP_DELETE_CONCEPT, 0, 0, 1000);
	expect_raw(m, sizeof m, SUTRA_EPROTO, "body_len 1000, body 16");
	header(m, PROTO_OP_DELETE_CONCEPT, 0, 0, UINT32_MAX);
	expect_raw(m, sizeof m, SUTRA_EPROTO, "body_len 2^32-1, body 16");
	header(m, PROTO_OP_DELETE_CONCEPT, 0, 0, PROTO_DELCONCEPT_SIZE + 1);
	expect_raw(m, sizeof m, SUTRA_EPROTO, "body_len one more than the body");
	header(m, PROTO_OP_DELETE_CONCEPT, 0, 0, PROTO_DELCONCEPT_SIZE - 1);
	expect_raw(m, sizeof m, SUTRA_EPROTO, "body_len one less than the body");

	/* The lengths inside a learn_concept body. */
	uint8_t id[16];
	float v[DIM];
	id_of(id, 70);
	vec(v, DIM, 70);
	unsigned char *body = concept_body(id, "lengths", v, DIM, &bl);
	unsigned char *req = request(PROTO_OP_LEARN_CONCEPT, body, bl, &ml);
	unsigned char *p = req + PROTO_REQ_HEADER;
	util_put_le32(p + 28, 1u << 20);
	expect_raw(req, ml, SUTRA_EPROTO, "content_len past the end");
	util_put_le32(p + 28, UINT32_MAX);
	expect_raw(req, ml, SUTRA_EPROTO, "content_len 2^32-1");
	util_put_le32(p + 28, 7);
	util_put_le32(p + 32, UINT32_MAX);
	expect_raw(req, ml, SUTRA_EPROTO, "metadata_len 2^32-1");
	util_put_le32(p + 32, 0);
	util_put_le32(p + 24, 0x40000000u);
	expect_raw(req, ml, SUTRA_EPROTO, "vector dimension 2^30");
	util_put_le32(p + 24, UINT32_MAX);
	expect_raw(req, ml, SUTRA_EPROTO, "vector dimension 2^32-1");
	free(req);
	free(body);

	/* The lengths inside a batch. */
	size_t off[2];
	body = batch_body(2, &bl, off);
	req = request(PROTO_OP_BATCH, body, bl, &ml);
	p = req + PROTO_REQ_HEADER;
	uint32_t el = util_get_le32(p + off[1] + 4);
	util_put_le32(p + off[1] + 4, el + 1);
	r = expect_raw(req, ml, SUTRA_EPROTO, "batch entry 1 one byte longer than the message");
	ck_assert_uint_eq(r.index, 1);
	util_put_le32(p + off[1] + 4, UINT32_MAX);
	r = expect_raw(req, ml, SUTRA_EPROTO, "batch entry 1 of length 2^32-1");
	ck_assert_uint_eq(r.index, 1);
	util_put_le32(p + off[1] + 4, el);
	util_put_le32(p + off[0] + 4, el - 1);
	r = expect_raw(req, ml, SUTRA_EPROTO, "batch entry 0 one byte short");
	ck_assert_uint_eq(r.index, 0);
	util_put_le32(p + off[0] + 4, el);
	util_put_le32(p, 1000);
	expect_raw(req, ml, SUTRA_EPROTO, "batch count 1000, two entries");
	util_put_le32(p, 1);
	expect_raw(req, ml, SUTRA_EPROTO, "batch count 1, two entries");
	util_put_le32(p, 200000);
	expect_raw(req, ml, SUTRA_ETOOBIG, "batch count over --max-batch");
	util_put_le32(p, UINT32_MAX);
	expect_raw(req, ml, SUTRA_ETOOBIG, "batch count 2^32-1");
	util_put_le32(p, 2);
	util_put_le32(p + 4, 1);
	expect_raw(req, ml, SUTRA_EPROTO, "batch reserved bytes");
	free(req);
	free(body);
	fx_finish();
}
END_TEST

/* ---- Unknown operations ------------------------------------------------- */

START_TEST(test_badinput_unknown_operation)
{
	static const uint16_t ops[] = { 0, 4, 15, 20, 31, 33, 99, 0x7fff, 0xffff };
	unsigned char m[PROTO_REQ_HEADER + 16];

	fx_start(NULL);
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		char what[64];
		snprintf(what, sizeof what, "operation %u", ops[i]);
		header(m, ops[i], 0, 0, 16);
		memcpy(m + PROTO_REQ_HEADER, fx.a, 16);
		expect_raw(m, sizeof m, SUTRA_EPROTO, what);
		header(m, ops[i], 0x77, i + 1, 0);
		expect_raw(m, PROTO_REQ_HEADER, SUTRA_EPROTO, what);
	}

	/* Inside a batch: a nested batch and the non-write operations. */
	static const uint16_t inner[] = { PROTO_OP_BATCH, PROTO_OP_PING, PROTO_OP_STATS,
					  PROTO_OP_SYNC, 99 };
	for (size_t i = 0; i < sizeof inner / sizeof inner[0]; i++) {
		char what[64];
		size_t bl, ml, off[2];
		snprintf(what, sizeof what, "operation %u inside a batch", inner[i]);
		unsigned char *body = batch_body(2, &bl, off);
		util_put_le16(body + off[1], inner[i]);
		unsigned char *req = request(PROTO_OP_BATCH, body, bl, &ml);
		struct reply r = expect_raw(req, ml, SUTRA_EPROTO, what);
		ck_assert_uint_eq(r.index, 1);
		free(req);
		free(body);
	}
	fx_finish();
}
END_TEST

/* ---- Values ------------------------------------------------------------- */

START_TEST(test_badinput_wrong_dimension)
{
	static const uint32_t dims[] = { 1, 3, DIM - 1, DIM + 1, 768 };
	float *v = calloc(1024, sizeof *v);
	uint8_t id[16];

	ck_assert_ptr_nonnull(v);
	fx_start(NULL);
	id_of(id, 80);
	for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
		char what[64];
		snprintf(what, sizeof what, "embedding of %u values", dims[i]);
		vec(v, dims[i], 3);
		struct sutra_concept_in in = concept(id, "dimension", 9, v, dims[i]);
		expect_client(sutra_client_learn_concept(fx.c, &in, NULL), SUTRA_EDIM, what);
		/* An update of an existing concept is checked the same way. */
		in.id = fx.a;
		expect_client(sutra_client_learn_concept(fx.c, &in, NULL), SUTRA_EDIM, what);
	}
	/* In a batch: the second of three operations. */
	sutra_batch *b = sutra_batch_create();
	ck_assert_ptr_nonnull(b);
	vec(v, DIM, 4);
	struct sutra_concept_in ok = concept(id, "fine", 4, v, DIM);
	struct sutra_concept_in bad = concept(fx.b, "wrong", 5, v, DIM + 1);
	ck_assert_ok(sutra_batch_learn_concept(b, &ok));
	ck_assert_ok(sutra_batch_learn_concept(b, &bad));
	ck_assert_ok(sutra_batch_learn_concept(b, &ok));
	expect_client(sutra_client_commit(fx.c, b, NULL), SUTRA_EDIM, "batch with a wrong dimension");
	ck_assert_int_eq(last_index, 1);
	sutra_batch_destroy(b);
	free(v);
	fx_finish();
}
END_TEST

START_TEST(test_badinput_non_finite_values)
{
	static const struct {
		uint32_t at;
		float value;
	} vals[] = { { 0, NAN }, { 5, INFINITY }, { DIM - 1, -INFINITY }, { 2, -NAN } };
	static const float bad[] = { NAN, INFINITY, -INFINITY };
	float v[DIM];
	uint8_t id[16];

	fx_start(NULL);
	id_of(id, 90);
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		char what[64];
		snprintf(what, sizeof what, "non-finite embedding value at %u", vals[i].at);
		vec(v, DIM, 5);
		v[vals[i].at] = vals[i].value;
		struct sutra_concept_in in = concept(id, "not finite", 10, v, DIM);
		expect_client(sutra_client_learn_concept(fx.c, &in, NULL), SUTRA_EVALUE, what);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		vec(v, DIM, 6);
		struct sutra_concept_in in = concept(id, "finite vector", 13, v, DIM);
		in.confidence = bad[i];
		expect_client(sutra_client_learn_concept(fx.c, &in, NULL), SUTRA_EVALUE,
			      "non-finite confidence");
		in.confidence = 1.0f;
		in.strength = bad[i];
		expect_client(sutra_client_learn_concept(fx.c, &in, NULL), SUTRA_EVALUE,
			      "non-finite strength");
		expect_client(sutra_client_learn_association(fx.c, fx.a, fx.b, 0, bad[i], 1.0f,
							     NULL),
			      SUTRA_EVALUE, "non-finite association confidence");
		expect_client(sutra_client_learn_association(fx.c, fx.a, fx.b, 0, 1.0f, bad[i],
							     NULL),
			      SUTRA_EVALUE, "non-finite association weight");
	}
	/* The same in the middle of a batch. */
	sutra_batch *b = sutra_batch_create();
	ck_assert_ptr_nonnull(b);
	vec(v, DIM, 7);
	struct sutra_concept_in in = concept(id, "finite", 6, v, DIM);
	ck_assert_ok(sutra_batch_learn_concept(b, &in));
	ck_assert_ok(sutra_batch_learn_association(b, fx.b, fx.a, 2, NAN, 1.0f));
	ck_assert_ok(sutra_batch_learn_association(b, fx.a, fx.b, 2, 1.0f, 1.0f));
	expect_client(sutra_client_commit(fx.c, b, NULL), SUTRA_EVALUE, "batch with a NaN");
	ck_assert_int_eq(last_index, 1);
	sutra_batch_destroy(b);
	fx_finish();
}
END_TEST

START_TEST(test_badinput_empty_content)
{
	float v[DIM];
	uint8_t id[16];

	fx_start(NULL);
	id_of(id, 91);
	vec(v, DIM, 8);
	struct sutra_concept_in in = concept(id, "", 0, NULL, 0);
	expect_client(sutra_client_learn_concept(fx.c, &in, NULL), SUTRA_EVALUE, "empty content");
	in = concept(id, NULL, 0, v, DIM);
	expect_client(sutra_client_learn_concept(fx.c, &in, NULL), SUTRA_EVALUE,
		      "no content, with an embedding");
	in = concept(fx.a, "", 0, v, DIM);
	expect_client(sutra_client_learn_concept(fx.c, &in, NULL), SUTRA_EVALUE,
		      "an update to empty content");
	sutra_batch *b = sutra_batch_create();
	ck_assert_ptr_nonnull(b);
	struct sutra_concept_in ok = concept(id, "fine", 4, NULL, 0);
	in = concept(fx.b, "", 0, NULL, 0);
	ck_assert_ok(sutra_batch_learn_concept(b, &ok));
	ck_assert_ok(sutra_batch_learn_concept(b, &in));
	expect_client(sutra_client_commit(fx.c, b, NULL), SUTRA_EVALUE, "batch with empty content");
	ck_assert_int_eq(last_index, 1);
	sutra_batch_destroy(b);
	fx_finish();
}
END_TEST

START_TEST(test_badinput_oversized_content)
{
	const char *extra[] = { "--max-content-size", "1024", "--max-metadata-size", "512", NULL };
	char *big = malloc(2u << 20);
	uint8_t id[16];

	ck_assert_ptr_nonnull(big);
	memset(big, 'y', 2u << 20);
	fx_start(extra);
	id_of(id, 92);
	struct sutra_concept_in in = concept(id, big, 1025, NULL, 0);
	expect_client(sutra_client_learn_concept(fx.c, &in, NULL), SUTRA_ETOOBIG,
		      "content one byte over --max-content-size");
	in = concept(id, big, 1u << 20, NULL, 0);
	expect_client(sutra_client_learn_concept(fx.c, &in, NULL), SUTRA_ETOOBIG,
		      "1 MiB of content");
	in = concept(id, "small", 5, NULL, 0);
	in.metadata = big;
	in.metadata_len = 513;
	expect_client(sutra_client_learn_concept(fx.c, &in, NULL), SUTRA_ETOOBIG,
		      "metadata one byte over --max-metadata-size");
	/* At the limits exactly: accepted. */
	in = concept(id, big, 1024, NULL, 0);
	in.metadata = big;
	in.metadata_len = 512;
	uint64_t e = 0;
	ck_assert_ok(sutra_client_learn_concept(fx.c, &in, &e));
	ck_assert_uint_eq(e, fx.before.epoch + 1);
	fx.before = stats_of(fx.c);
	ck_assert_uint_eq(fx.before.concept_count, 3);
	free(big);
	fx_finish();
}
END_TEST

START_TEST(test_badinput_invalid_utf8)
{
	static const char *const bad[] = {
		"\xff",               /* never valid */
		"abc\x80",            /* lone continuation byte */
		"\xc0\xaf",           /* overlong '/' */
		"\xe0\x80\xaf",       /* overlong, three bytes */
		"\xed\xa0\x80",       /* UTF-16 surrogate */
		"caf\xc3",            /* truncated sequence at the end */
		"\xe2\x82 euro",      /* truncated sequence in the middle */
		"\xf4\x90\x80\x80",   /* above U+10FFFF */
		"\xf8\x88\x80\x80\x80", /* five-byte form */
	};
	uint8_t id[16];

	fx_start(NULL);
	id_of(id, 93);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char what[64];
		snprintf(what, sizeof what, "invalid UTF-8 case %zu", i);
		struct sutra_concept_in in = concept(id, bad[i], strlen(bad[i]), NULL, 0);
		expect_client(sutra_client_learn_concept(fx.c, &in, NULL), SUTRA_EVALUE, what);
		in.id = fx.a;
		expect_client(sutra_client_learn_concept(fx.c, &in, NULL), SUTRA_EVALUE, what);
	}
	fx_finish();
}
END_TEST

/* ---- Unknown ids -------------------------------------------------------- */

START_TEST(test_badinput_unknown_ids)
{
	char hex[33];

	fx_start(NULL);
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", fx.unknown[i]);
	expect_client(sutra_client_delete_concept(fx.c, fx.unknown, NULL), SUTRA_ENOTFOUND,
		      "delete of an unknown concept");
	ck_assert_msg(strstr(last_error, hex) != NULL, "the error does not name the id: %s",
		      last_error);
	expect_client(sutra_client_delete_association(fx.c, fx.a, fx.b, SUTRA_ASSOC_SEMANTIC, NULL),
		      SUTRA_ENOTFOUND, "delete of an association of another type");
	expect_client(sutra_client_delete_association(fx.c, fx.b, fx.a, SUTRA_ASSOC_CAUSAL, NULL),
		      SUTRA_ENOTFOUND, "delete of the reverse association");
	expect_client(sutra_client_delete_association(fx.c, fx.a, fx.unknown, SUTRA_ASSOC_CAUSAL,
						      NULL),
		      SUTRA_ENOTFOUND, "delete of an association to an unknown concept");
	expect_client(sutra_client_learn_association(fx.c, fx.unknown, fx.b, 0, 1.0f, 1.0f, NULL),
		      SUTRA_ENOTFOUND, "association from an unknown concept");
	ck_assert_msg(strstr(last_error, hex) != NULL, "the error does not name the id: %s",
		      last_error);
	expect_client(sutra_client_learn_association(fx.c, fx.a, fx.unknown, 0, 1.0f, 1.0f, NULL),
		      SUTRA_ENOTFOUND, "association to an unknown concept");
	ck_assert_msg(strstr(last_error, hex) != NULL, "the error does not name the id: %s",
		      last_error);
	fx_finish();
}
END_TEST

/* ---- Batches ------------------------------------------------------------ */

START_TEST(test_badinput_batch_bad_op_in_middle)
{
	uint8_t c[16], d[16], e[16];
	int index[3];

	fx_start(NULL);
	id_of(c, 200);
	id_of(d, 201);
	id_of(e, 202);
	sutra_batch *b = sutra_batch_create();
	ck_assert_ptr_nonnull(b);

	/* New concepts, then an association to an unknown one, then more. */
	struct sutra_concept_in in = concept(c, "gamma", 5, NULL, 0);
	ck_assert_ok(sutra_batch_learn_concept(b, &in));
	in = concept(d, "delta", 5, NULL, 0);
	ck_assert_ok(sutra_batch_learn_concept(b, &in));
	ck_assert_ok(sutra_batch_learn_association(b, c, fx.unknown, 0, 1.0f, 1.0f));
	in = concept(e, "epsilon", 7, NULL, 0);
	ck_assert_ok(sutra_batch_learn_concept(b, &in));
	index[0] = expect_client(sutra_client_commit(fx.c, b, NULL), SUTRA_ENOTFOUND,
				 "batch with an unknown endpoint at 2");
	/* Nothing of it exists: c cannot be an endpoint. */
	expect_client(sutra_client_learn_association(fx.c, fx.a, c, 0, 1.0f, 1.0f, NULL),
		      SUTRA_ENOTFOUND, "association to a concept of the failed batch");

	/* An update, an edge, a delete that removes edges, then a failure:
	 * a, b and a -> b must all be as they were. */
	sutra_batch_clear(b);
	in = concept(fx.a, "alpha changed", 13, NULL, 0);
	ck_assert_ok(sutra_batch_learn_concept(b, &in));
	ck_assert_ok(sutra_batch_learn_association(b, fx.b, fx.a, 3, 1.0f, 1.0f));
	ck_assert_ok(sutra_batch_delete_concept(b, fx.a));
	ck_assert_ok(sutra_batch_delete_association(b, fx.a, fx.b, SUTRA_ASSOC_CAUSAL));
	index[1] = expect_client(sutra_client_commit(fx.c, b, NULL), SUTRA_ENOTFOUND,
				 "batch deleting a concept, then its deleted association");

	/* A concept learned and deleted twice in one batch. */
	sutra_batch_clear(b);
	in = concept(c, "gamma", 5, NULL, 0);
	ck_assert_ok(sutra_batch_learn_concept(b, &in));
	ck_assert_ok(sutra_batch_learn_association(b, fx.a, c, 0, 1.0f, 1.0f));
	ck_assert_ok(sutra_batch_delete_concept(b, c));
	ck_assert_ok(sutra_batch_delete_concept(b, c));
	ck_assert_ok(sutra_batch_learn_concept(b, &in));
	index[2] = expect_client(sutra_client_commit(fx.c, b, NULL), SUTRA_ENOTFOUND,
				 "batch deleting a concept twice");

	/* The deletion that failed did not take a's edge with it: deleting
	 * the association now works (and is the one change of this test). */
	sutra_batch_destroy(b);
	uint64_t ep = 0;
	ck_assert_ok(sutra_client_delete_association(fx.c, fx.a, fx.b, SUTRA_ASSOC_CAUSAL, &ep));
	ck_assert_uint_eq(ep, fx.before.epoch + 1);
	fx.before = stats_of(fx.c);
	ck_assert_uint_eq(fx.before.association_count, 0);
	ck_assert_uint_eq(fx.before.concept_count, 2);
	fx_finish();

	/* The error names the operation that failed (checked last, so that
	 * a wrong index does not hide the checks above). */
	ck_assert_msg(index[0] == 2, "unknown endpoint at entry 2 reported at %d", index[0]);
	ck_assert_msg(index[1] == 3, "deleted endpoint at entry 3 reported at %d", index[1]);
	ck_assert_msg(index[2] == 3, "second delete at entry 3 reported at %d", index[2]);
}
END_TEST

/* ---- Garbage ------------------------------------------------------------ */

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64*: small, seeded, the same on every run. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

START_TEST(test_badinput_random_garbage)
{
	static const uint64_t seeds[] = { 1, 0x5eed, 0xdeadbeefcafef00dull };
	static const uint16_t ops[] = { PROTO_OP_LEARN_CONCEPT, PROTO_OP_LEARN_ASSOCIATION,
					PROTO_OP_DELETE_CONCEPT, PROTO_OP_DELETE_ASSOCIATION,
					PROTO_OP_BATCH, 77 };
	unsigned char *buf = malloc(70000);

	ck_assert_ptr_nonnull(buf);
	fx_start(NULL);
	for (size_t si = 0; si < sizeof seeds / sizeof seeds[0]; si++) {
		uint64_t s = seeds[si];
		nng_socket sock = raw_open(fx.d.url, 5000);
		/* Pure garbage of random lengths. */
		for (int i = 0; i < 40; i++) {
			size_t len = rnd(&s) % 8 == 0 ? rnd(&s) % 65536 : rnd(&s) % 1500;
			for (size_t k = 0; k < len; k++)
				buf[k] = (unsigned char)rnd(&s);
			char what[96];
			snprintf(what, sizeof what, "seed %zu, garbage message %d of %zu bytes", si, i,
				 len);
			struct reply r = raw_send(sock, buf, len);
			expect_status(&r, SUTRA_EPROTO, what);
		}
		/* A valid header over a garbage body, of the ops' usual sizes
		 * and of random ones. */
		for (int i = 0; i < 40; i++) {
			static const size_t sizes[] = { PROTO_DELCONCEPT_SIZE, PROTO_DELASSOC_SIZE,
							 PROTO_ASSOC_SIZE, PROTO_CONCEPT_FIXED,
							 PROTO_BATCH_FIXED };
			uint16_t op = ops[rnd(&s) % (sizeof ops / sizeof ops[0])];
			size_t len = rnd(&s) % 2 ? sizes[rnd(&s) % 5] : rnd(&s) % 3000;
			for (size_t k = 0; k < len; k++)
				buf[PROTO_REQ_HEADER + k] = (unsigned char)rnd(&s);
			header(buf, op, rnd(&s), rnd(&s), (uint32_t)len);
			char what[96];
			snprintf(what, sizeof what, "seed %zu, op %u with a garbage body of %zu bytes",
				 si, op, len);
			struct reply r = raw_send(sock, buf, PROTO_REQ_HEADER + len);
			ck_assert_msg(r.rv == 0 && r.decoded == 0, "%s: no reply", what);
			ck_assert_msg(r.h.status == SUTRA_EPROTO || r.h.status == SUTRA_EVALUE ||
					      r.h.status == SUTRA_ETOOBIG ||
					      r.h.status == SUTRA_EDIM ||
					      r.h.status == SUTRA_ENOTFOUND,
				      "%s: status %s (%d): %s", what, sutra_errname(r.h.status),
				      r.h.status, r.msg);
			ck_assert_msg(r.msg[0] != 0, "%s: error without explanation", what);
		}
		nng_close(sock);
		fx_check("random garbage");
	}
	free(buf);
	fx_finish();
}
END_TEST

/* ---- Clients that leave before the handshake ---------------------------- */

/* Connects to the Unix socket behind an ipc:// URL and closes at once, n
 * times (non-blocking: a listener that stopped accepting must not hang
 * the test). Returns how many connects succeeded. */
static int connect_and_close(const char *url, int n)
{
	struct sockaddr_un sa;
	int ok = 0;

	unix_addr(url, &sa);
	for (int i = 0; i < n; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		ck_assert_int_ge(fd, 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
			ok++;
		close(fd);
	}
	return ok;
}

START_TEST(test_badinput_connect_close_before_handshake)
{
	const char *extra[] = { "--check-interval-ms", "200", NULL };

	fx_start(extra);
	ck_assert_int_gt(connect_and_close(fx.d.url, 200), 0);

	/* A fresh client can still ping within a few seconds (the self check
	 * re-opens a listener that stopped serving new connections). */
	struct sutra_client_options o;
	sutra_client_options_init(&o);
	o.timeout_ms = 500;
	o.resend_ms = 100;
	sutra_client *c;
	ck_assert_ok(sutra_client_connect(fx.d.url, &o, &c));
	uint64_t deadline = now_ms() + 5000;
	int rc;
	do
		rc = sutra_client_ping(c, NULL);
	while (rc != 0 && now_ms() < deadline);
	sutra_client_close(c);
	/* The connection made before the disconnects still works, and says
	 * what the self check did. */
	struct sutra_coord_stats st = stats_of(fx.c);
	fx_check("early disconnects");
	fx_finish();
	ck_assert_msg(rc == 0,
		      "no ping answered on a new connection within 5 s after 200 early "
		      "disconnects (%s), while an older connection still worked; listeners "
		      "re-opened %u times",
		      sutra_errname(rc), st.relistens);
}
END_TEST

START_TEST(test_badinput_connect_close_before_handshake_events)
{
	const char *extra[] = { "--check-interval-ms", "200", NULL };

	fx_start(extra);
	ck_assert_int_gt(connect_and_close(fx.d.events, 200), 0);

	/* A new subscriber hears a heartbeat within a few seconds. */
	nng_socket sub;
	ck_assert_int_eq(nng_sub0_open(&sub), 0);
	ck_assert_int_eq(nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "", 0), 0);
	nng_socket_set_ms(sub, NNG_OPT_RECONNMINT, 10);
	nng_socket_set_ms(sub, NNG_OPT_RECONNMAXT, 100);
	nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 5000);
	ck_assert_int_eq(nng_dial(sub, fx.d.events, NULL, NNG_FLAG_NONBLOCK), 0);
	void *m = NULL;
	size_t len = 0;
	struct proto_notice n;
	int rv = nng_recv(sub, &m, &len, NNG_FLAG_ALLOC);
	if (rv == 0) {
		ck_assert_ok(proto_notice_decode(m, len, &n));
		ck_assert_uint_eq(n.epoch, fx.before.epoch);
		nng_free(m, len);
	}
	nng_close(sub);
	struct sutra_coord_stats st = stats_of(fx.c);
	fx_check("early disconnects from the notice listener");
	fx_finish();
	ck_assert_msg(rv == 0,
		      "no notice on a new subscription within 5 s after 200 early disconnects "
		      "(%s); listeners re-opened %u times",
		      nng_strerror(rv), st.relistens);
}
END_TEST

/* One case per behaviour, named after it, so that CK_RUN_CASE=<behaviour>
 * runs a single one. */
static void add(Suite *s, const char *name, const TTest *t)
{
	TCase *tc = tcase_create(name);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t);
	suite_add_tcase(s, tc);
}

int main(int argc, char **argv)
{
	/* Client mode of test_badinput_oversized_request_client. */
	if (argc == 4 && strcmp(argv[1], "--bigwrite") == 0)
		return bigwrite_run(argv[2], argv[3]);

	Suite *s = suite_create("badinput");
	add(s, "truncated_messages", test_badinput_truncated_messages);
	add(s, "bad_header", test_badinput_bad_header);
	add(s, "oversized_request", test_badinput_oversized_request);
	add(s, "oversized_request_client", test_badinput_oversized_request_client);
	add(s, "length_prefix_too_large", test_badinput_length_prefix_too_large);
	add(s, "unknown_operation", test_badinput_unknown_operation);
	add(s, "wrong_dimension", test_badinput_wrong_dimension);
	add(s, "non_finite_values", test_badinput_non_finite_values);
	add(s, "empty_content", test_badinput_empty_content);
	add(s, "oversized_content", test_badinput_oversized_content);
	add(s, "invalid_utf8", test_badinput_invalid_utf8);
	add(s, "unknown_ids", test_badinput_unknown_ids);
	add(s, "batch_bad_op_in_middle", test_badinput_batch_bad_op_in_middle);
	add(s, "random_garbage", test_badinput_random_garbage);
	add(s, "connect_close_before_handshake", test_badinput_connect_close_before_handshake);
	add(s, "connect_close_before_handshake_events",
	    test_badinput_connect_close_before_handshake_events);
	return tcheck_run_suite(s);
}
