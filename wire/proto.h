/* SPDX-License-Identifier: MIT */
/* The coordinator's wire protocol (docs/PROTOCOL.md): message layouts, encoders and checked decoders. */
#ifndef WIRE_PROTO_H
#define WIRE_PROTO_H

/*
 * Every message is little-endian and starts with a fixed header. A request
 * is a 32-byte header (magic, version, op, client id, sequence, body length)
 * and a body whose layout depends on the op; a reply is a 40-byte header
 * (magic, version, op, client id, sequence, status, body length, epoch) and
 * a body. Nothing here trusts a length: every decoder takes the byte range
 * it may read, checks each length against it and against the limits, and
 * returns SUTRA_EPROTO (malformed), SUTRA_ETOOBIG (over a limit) or
 * SUTRA_EVALUE (a value no store may hold) with a sentence in the caller's
 * buffer. Decoded ops borrow from the message (pointers into it); floats
 * and embeddings stay in their little-endian wire form until used.
 *
 * Shared by the coordinator (decodes requests, encodes replies) and the
 * client library (the reverse), so both ends agree by construction.
 */

#include <stddef.h>
#include <stdint.h>

#include "sutra/common.h"
#include "util/detail.h"

#define PROTO_VERSION 1u
#define PROTO_REQ_MAGIC 0x51525553u   /* "SURQ" */
#define PROTO_REP_MAGIC 0x50525553u   /* "SURP" */
#define PROTO_NOTICE_MAGIC 0x43544E53u /* "SNTC" */
#define PROTO_REQ_HEADER 32u
#define PROTO_REP_HEADER 40u
#define PROTO_NOTICE_HEADER 64u

enum proto_op {
	PROTO_OP_PING = 1,
	PROTO_OP_STATS = 2,
	PROTO_OP_SYNC = 3,
	PROTO_OP_LEARN_CONCEPT = 16,
	PROTO_OP_LEARN_ASSOCIATION = 17,
	PROTO_OP_DELETE_CONCEPT = 18,
	PROTO_OP_DELETE_ASSOCIATION = 19,
	PROTO_OP_BATCH = 32,
};

/* Fixed parts of the op bodies (docs/PROTOCOL.md section "Operations"). */
#define PROTO_CONCEPT_FIXED 40u  /* then embedding, content, metadata */
#define PROTO_ASSOC_SIZE 48u
#define PROTO_DELCONCEPT_SIZE 16u
#define PROTO_DELASSOC_SIZE 40u
#define PROTO_BATCH_FIXED 8u     /* u32 count, u32 reserved */
#define PROTO_BATCH_ENTRY 8u     /* u16 op, u16 reserved, u32 length */
#define PROTO_STATS_SIZE 128u
#define PROTO_PING_SIZE 32u

enum proto_notice_kind {
	PROTO_NOTICE_EPOCH = 1,     /* a new epoch was published */
	PROTO_NOTICE_HEARTBEAT = 2, /* periodic: the current epoch, no changes */
};

/* The limits a decoder enforces. */
struct proto_limits {
	uint32_t max_request;  /* bytes of one request message */
	uint32_t max_content;  /* bytes of one concept's content */
	uint32_t max_metadata; /* bytes of one concept's metadata */
	uint32_t max_batch;    /* operations in one request */
	uint32_t vector_dim;   /* the store's dimension (0: not checked) */
};

struct proto_req_header {
	uint16_t version;
	uint16_t op;
	uint64_t client_id;
	uint64_t seq;
	uint32_t body_len;
};

struct proto_rep_header {
	uint16_t version;
	uint16_t op;
	uint64_t client_id;
	uint64_t seq;
	int32_t status;
	uint32_t body_len;
	uint64_t epoch;
};

/* One write operation, decoded. Pointers borrow from the message. */
struct proto_op_body {
	uint16_t op;
	union {
		struct {
			uint8_t id[16];
			float strength;
			float confidence;
			uint32_t vector_dim;      /* 0: no embedding */
			const unsigned char *embedding; /* vector_dim LE f32, unaligned */
			const char *content;
			uint32_t content_len;
			const unsigned char *metadata;
			uint32_t metadata_len;
		} concept;
		struct {
			uint8_t src[16];
			uint8_t dst[16];
			uint8_t type;
			float confidence;
			float weight;
		} assoc;
		struct {
			uint8_t id[16];
		} del;
	} u;
};

/* The statistics a STATS reply carries. */
struct proto_stats {
	uint64_t epoch;
	uint64_t durable_epoch;
	uint64_t published_end;
	uint64_t file_size;
	uint64_t concept_count;
	uint64_t association_count;
	uint64_t next_ordinal;
	uint64_t commits;         /* epochs committed since start */
	uint64_t requests;        /* write requests applied since start */
	uint64_t rejected;        /* requests answered with an error */
	uint64_t duplicates;      /* resent requests answered from the cache */
	uint64_t syncs;           /* fdatasync calls since start */
	uint32_t vector_dim;
	uint32_t durability;      /* 0 sync, 1 relaxed */
	uint32_t io_backend;      /* 0 io_uring, 1 pwrite */
	uint32_t relistens;       /* listener restarts by the self check */
};

/* A decoded notice. changed/changed_len borrow the portable CRoaring bytes. */
struct proto_notice {
	uint16_t kind;
	uint64_t epoch;
	uint64_t published_end;
	uint64_t durable_epoch;
	uint8_t store_uuid[16];
	const unsigned char *changed;
	uint32_t changed_len;
};

/* ---- Requests ---------------------------------------------------------- */

void proto_req_header_encode(const struct proto_req_header *h, unsigned char out[PROTO_REQ_HEADER]);

/* Decodes and checks the header of a request of len bytes: magic, version,
 * body_len == len - header, len <= max_request. Returns 0, SUTRA_EPROTO,
 * SUTRA_ETOOBIG; the header fields it could read are in *h even on error
 * (so that the error reply can name the client and sequence). */
int proto_req_header_decode(const void *msg, size_t len, const struct proto_limits *lim,
			    struct proto_req_header *h, struct sutra_detail *why);

/* Decodes one write op body of type op occupying exactly len bytes. */
int proto_op_decode(uint16_t op, const unsigned char *p, size_t len, const struct proto_limits *lim,
		    struct proto_op_body *out, struct sutra_detail *why);

/* Iterates the entries of a BATCH body. proto_batch_begin checks the fixed
 * part and the count limit and stores the count; proto_batch_next decodes
 * the next entry (returns 1), or returns 0 at the end (after checking that
 * no bytes are left over), or a negative error. */
struct proto_batch_iter {
	const unsigned char *p;
	size_t len;
	size_t pos;
	uint32_t count;
	uint32_t index;
};
int proto_batch_begin(struct proto_batch_iter *it, const unsigned char *body, size_t len,
		      const struct proto_limits *lim, struct sutra_detail *why);
int proto_batch_next(struct proto_batch_iter *it, const struct proto_limits *lim,
		     struct proto_op_body *op, struct sutra_detail *why);

/* Encoded size of an op body (without batch entry header), and encoder:
 * writes exactly proto_op_size(op) bytes. Floats are written little-endian;
 * embedding points at vector_dim host floats here (not wire bytes). */
size_t proto_op_size(const struct proto_op_body *op);
void proto_op_encode(const struct proto_op_body *op, const float *embedding, unsigned char *out);

/* ---- Replies ----------------------------------------------------------- */

void proto_rep_header_encode(const struct proto_rep_header *h, unsigned char out[PROTO_REP_HEADER]);
int proto_rep_header_decode(const void *msg, size_t len, struct proto_rep_header *h);

/* Error body: u32 index of the failing batch entry (UINT32_MAX: not an
 * entry), u32 message length, message bytes. */
size_t proto_error_body_size(size_t msg_len);
void proto_error_body_encode(uint32_t index, const char *msg, size_t msg_len, unsigned char *out);
int proto_error_body_decode(const unsigned char *p, size_t len, uint32_t *index, const char **msg,
			    uint32_t *msg_len);

void proto_stats_encode(const struct proto_stats *s, unsigned char out[PROTO_STATS_SIZE]);

/* The public form of the figures (include/sutra/common.h), the same
 * whether they came over the wire (libsutra-client) or from the writer in
 * this process (libsutra-coordinator). */
void proto_stats_to_public(const struct proto_stats *s, struct sutra_coord_stats *out);
int proto_stats_decode(const unsigned char *p, size_t len, struct proto_stats *s);

/* PING body: u64 published_end, store uuid[16], u32 vector_dim, u32 zero. */
void proto_ping_encode(uint64_t published_end, const uint8_t uuid[16], uint32_t vector_dim,
		       unsigned char out[PROTO_PING_SIZE]);
int proto_ping_decode(const unsigned char *p, size_t len, uint64_t *published_end,
		      uint8_t uuid[16], uint32_t *vector_dim);

/* ---- Notices ----------------------------------------------------------- */

void proto_notice_header_encode(const struct proto_notice *n, unsigned char out[PROTO_NOTICE_HEADER]);
int proto_notice_decode(const void *msg, size_t len, struct proto_notice *n);

#endif /* WIRE_PROTO_H */
