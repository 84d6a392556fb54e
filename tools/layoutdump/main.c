/* SPDX-License-Identifier: MIT */
/* sutra-layoutdump: prints the structure of a storage.dat file and optionally verifies it. */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "layout/layout.h"
#include "layout/lockfile.h"
#include "sutra/errors.h"
#include "util/endian.h"
#include "util/utf8.h"

#ifndef LAYOUTDUMP_VERSION
#define LAYOUTDUMP_VERSION "unknown"
#endif

#define PROG "sutra-layoutdump"

/* Exit statuses, documented in --help and the man page. */
enum { STATUS_OK = 0, STATUS_BAD = 1, STATUS_USAGE = 2 };

/* Without --full, contents are cut to this many bytes and embeddings to
 * this many values, so that one record stays on a few short lines. */
#define CONTENT_PREVIEW 60u
#define EMBEDDING_PREVIEW 4u

/* Deepest JSON nesting used: root, blocks, block, records, record, embedding. */
#define JSON_MAX_DEPTH 8

struct options {
	bool records;
	bool full;
	bool json;
	bool verify;
	bool quiet;
	bool slots;
	const char *path;
};

/*
 * Everything known about the file. When layout_open() succeeds it all comes
 * from the view; when it fails the view is not written, so the superblock
 * and the meta slots are decoded again here to show as much as can be.
 */
struct dump {
	const struct options *opt;
	const unsigned char *base;
	uint64_t size;

	int open_rc;
	struct sutra_detail open_pb;
	struct layout_view v; /* only when open_rc == 0 */

	bool have_sb;
	struct layout_superblock sb;
	struct sutra_detail sb_pb; /* when !have_sb */

	bool have_slots;
	uint64_t slot_off[LAYOUT_META_SLOT_COUNT];
	enum layout_slot_state slot_state[LAYOUT_META_SLOT_COUNT];
	struct layout_meta slots[LAYOUT_META_SLOT_COUNT];
	struct sutra_detail slot_pb[LAYOUT_META_SLOT_COUNT];

	/* JSON writer: nesting depth (-1 before the root) and whether the
	 * object or array at each depth has a member yet. */
	int jdepth;
	bool jmember[JSON_MAX_DEPTH];
};

/* ---- Small formatting helpers ------------------------------------------ */

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* 9999-12-31T23:59:59Z: beyond it the year no longer has four digits. */
#define MAX_ISO_SECONDS UINT64_C(253402300799)

/* Formats a microsecond Unix time as ISO 8601 UTC. Never uses the current
 * time or zone, so the output is the same on every machine. */
static const char *iso_time(uint64_t us, char *buf, size_t cap)
{
	uint64_t secs = us / 1000000;
	struct tm tm;
	time_t t;

	if (secs > MAX_ISO_SECONDS)
		return "out of range";
	t = (time_t)secs;
	if (!gmtime_r(&t, &tm))
		return "out of range";
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(us % 1000000));
	return buf;
}

static const char *metric_name(uint32_t metric)
{
	return metric == LAYOUT_METRIC_COSINE ? "cosine" : NULL;
}

static const char *block_type_name(uint16_t type)
{
	switch (type) {
	case LAYOUT_BLOCK_COMMIT:
		return "commit";
	case LAYOUT_BLOCK_SEGMENT:
		return "segment";
	default:
		return NULL;
	}
}

static const char *assoc_type_name(uint8_t type)
{
	static const char *const names[] = {
		"semantic", "causal", "temporal", "hierarchical", "compositional",
	};

	return type < sizeof names / sizeof names[0] ? names[type] : NULL;
}

static const char *slot_state_name(enum layout_slot_state st)
{
	switch (st) {
	case LAYOUT_SLOT_EMPTY:
		return "empty";
	case LAYOUT_SLOT_VALID:
		return "valid";
	default:
		return "corrupt";
	}
}

/*
 * Writes [s, s+len) between double quotes, escaped as in JSON: quote and
 * backslash, C0 and C1 control characters and DEL; other valid UTF-8 is
 * copied as is. A byte that is not part of valid UTF-8 becomes \uFFFD in
 * JSON (which must be valid Unicode) and \xNN in text (which keeps the
 * byte). Stops before the character that would pass limit bytes, so a
 * multi-byte character is never cut; returns the bytes consumed.
 */
static size_t put_quoted(const void *data, size_t len, size_t limit, bool json)
{
	const unsigned char *s = data;
	size_t i = 0;

	if (limit > len)
		limit = len;
	putchar('"');
	while (i < limit) {
		/* The content was checked by the library already, but paths
		 * and problem strings were not: the escaper trusts nothing. */
		uint32_t cp;
		size_t at = i;

		if (util_utf8_next(s, len, &i, &cp) != UTIL_UTF8_OK) {
			if (json)
				fputs("\\ufffd", stdout);
			else
				printf("\\x%02x", s[at]);
			continue;
		}
		size_t n = i - at;
		if (i > limit) {
			i = at;
			break;
		}
		switch (cp) {
		case '"':
			fputs("\\\"", stdout);
			break;
		case '\\':
			fputs("\\\\", stdout);
			break;
		case '\b':
			fputs("\\b", stdout);
			break;
		case '\f':
			fputs("\\f", stdout);
			break;
		case '\n':
			fputs("\\n", stdout);
			break;
		case '\r':
			fputs("\\r", stdout);
			break;
		case '\t':
			fputs("\\t", stdout);
			break;
		default:
			if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
				printf("\\u%04" PRIx32, cp);
			else
				fwrite(s + at, 1, n, stdout);
			break;
		}
	}
	putchar('"');
	return i;
}

/* ---- JSON writer --------------------------------------------------------- */

/* Starts a member (key not NULL) or an array element (key NULL). */
static void jkey(struct dump *d, const char *key)
{
	if (d->jmember[d->jdepth])
		putchar(',');
	d->jmember[d->jdepth] = true;
	printf("\n%*s", 2 * (d->jdepth + 1), "");
	if (key) {
		put_quoted(key, strlen(key), SIZE_MAX, true);
		fputs(": ", stdout);
	}
}

static void jopen(struct dump *d, const char *key, char bracket)
{
	if (d->jdepth >= 0)
		jkey(d, key);
	putchar(bracket);
	d->jdepth++;
	/* Nesting is fixed by this file's code, not by the input. */
	assert(d->jdepth < JSON_MAX_DEPTH);
	d->jmember[d->jdepth] = false;
}

static void jclose(struct dump *d, char bracket)
{
	if (d->jmember[d->jdepth])
		printf("\n%*s", 2 * d->jdepth, "");
	d->jdepth--;
	putchar(bracket);
	if (d->jdepth < 0)
		putchar('\n');
}

static void ju64(struct dump *d, const char *key, uint64_t v)
{
	jkey(d, key);
	printf("%" PRIu64, v);
}

static void jbool(struct dump *d, const char *key, bool v)
{
	jkey(d, key);
	fputs(v ? "true" : "false", stdout);
}

static void jnull(struct dump *d, const char *key)
{
	jkey(d, key);
	fputs("null", stdout);
}

/* JSON has no NaN or infinity; the library rejects them on disk anyway. */
static void jfloat(struct dump *d, const char *key, double v)
{
	jkey(d, key);
	if (isfinite(v))
		printf("%.9g", v);
	else
		fputs("null", stdout);
}

static void jstr(struct dump *d, const char *key, const char *s)
{
	jkey(d, key);
	if (s)
		put_quoted(s, strlen(s), SIZE_MAX, true);
	else
		fputs("null", stdout);
}

static void jhex(struct dump *d, const char *key, const uint8_t *p, size_t n)
{
	char buf[2 * 16 + 1];

	hex(p, n, buf);
	jstr(d, key, buf);
}

static void jtime(struct dump *d, const char *key, uint64_t us)
{
	char buf[96];

	jstr(d, key, iso_time(us, buf, sizeof buf));
}

/* A struct sutra_detail as {"offset": N, "what": "..."}, or null. */
static void jproblem(struct dump *d, const char *key, const struct sutra_detail *pb)
{
	if (!pb) {
		jnull(d, key);
		return;
	}
	jopen(d, key, '{');
	ju64(d, "offset", pb->offset);
	jstr(d, "what", pb->what);
	jclose(d, '}');
}

/* ---- Text writer ---------------------------------------------------------- */

/* One "key: value" line, values aligned in a column. */
__attribute__((format(printf, 3, 4))) static void field(int indent, const char *key,
							 const char *fmt, ...)
{
	va_list ap;
	int pad = 24 - indent - (int)strlen(key);

	printf("%*s%s:%*s", indent, "", key, pad > 1 ? pad : 1, "");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* ---- Gathering ------------------------------------------------------------- */

static void gather(struct dump *d)
{
	d->open_rc = layout_open(d->base, d->size, &d->v, &d->open_pb);
	if (d->open_rc == 0) {
		d->have_sb = true;
		d->sb = d->v.sb;
		d->have_slots = true;
		for (unsigned i = 0; i < LAYOUT_META_SLOT_COUNT; i++) {
			d->slot_off[i] = d->sb.meta_offset + (uint64_t)i * d->sb.meta_slot_size;
			d->slot_state[i] = d->v.slot_state[i];
			d->slots[i] = d->v.slots[i];
			d->slot_pb[i] = d->v.slot_problem[i];
		}
		return;
	}

	size_t len = d->size < SIZE_MAX ? (size_t)d->size : SIZE_MAX;
	if (layout_superblock_decode(d->base, len, &d->sb, &d->sb_pb) != 0)
		return;
	d->have_sb = true;
	d->have_slots = true;
	for (unsigned i = 0; i < LAYOUT_META_SLOT_COUNT; i++) {
		/* The decoded superblock has the fixed version 1 geometry, so
		 * this cannot overflow; the file may still be short. */
		uint64_t off = d->sb.meta_offset + (uint64_t)i * d->sb.meta_slot_size;

		d->slot_off[i] = off;
		if (off >= d->size) {
			d->slot_state[i] = LAYOUT_SLOT_CORRUPT;
			util_detail_set(&d->slot_pb[i], d->size,
					   "file of %" PRIu64 " bytes ends before meta slot %u",
					   d->size, i);
			continue;
		}
		/* A slot cut by the end of the file is still decoded from the
		 * bytes that are there: the decoder reports it if they are too
		 * few, and otherwise the slot's content is worth seeing. */
		uint64_t avail = d->size - off < d->sb.meta_slot_size ? d->size - off
								       : d->sb.meta_slot_size;
		d->slot_state[i] = layout_meta_decode(d->base + off, (size_t)avail, off,
						      &d->slots[i], &d->slot_pb[i]);
	}
}

/* ---- Superblock and meta slots --------------------------------------------- */

static void show_superblock(struct dump *d)
{
	const struct layout_superblock *sb = &d->sb;
	char buf[96];

	if (d->opt->json) {
		if (!d->have_sb) {
			jnull(d, "superblock");
			jproblem(d, "superblock_problem", &d->sb_pb);
			return;
		}
		jopen(d, "superblock", '{');
		ju64(d, "format_version", sb->format_version);
		snprintf(buf, sizeof buf, "0x%016" PRIx64, sb->incompat_features);
		jstr(d, "incompat_features", buf);
		snprintf(buf, sizeof buf, "0x%016" PRIx64, sb->compat_features);
		jstr(d, "compat_features", buf);
		ju64(d, "page_size", sb->page_size);
		ju64(d, "vector_dim", sb->vector_dim);
		ju64(d, "metric", sb->metric);
		jstr(d, "metric_name", metric_name(sb->metric));
		ju64(d, "hnsw_m", sb->hnsw_m);
		ju64(d, "hnsw_ef_construction", sb->hnsw_ef_construction);
		jhex(d, "uuid", sb->uuid, 16);
		ju64(d, "created_us", sb->created_us);
		jtime(d, "created", sb->created_us);
		ju64(d, "meta_offset", sb->meta_offset);
		ju64(d, "meta_slot_size", sb->meta_slot_size);
		ju64(d, "meta_slot_count", sb->meta_slot_count);
		ju64(d, "data_offset", sb->data_offset);
		ju64(d, "block_align", sb->block_align);
		jclose(d, '}');
		jnull(d, "superblock_problem");
		return;
	}

	if (!d->have_sb) {
		printf("superblock at offset 0: BAD: offset %" PRIu64 ": %s\n", d->sb_pb.offset,
		       d->sb_pb.what);
		return;
	}
	printf("superblock at offset 0:\n");
	field(2, "format_version", "%" PRIu32, sb->format_version);
	field(2, "incompat_features", "0x%016" PRIx64, sb->incompat_features);
	field(2, "compat_features", "0x%016" PRIx64, sb->compat_features);
	field(2, "page_size", "%" PRIu32, sb->page_size);
	field(2, "vector_dim", "%" PRIu32, sb->vector_dim);
	if (metric_name(sb->metric))
		field(2, "metric", "%s", metric_name(sb->metric));
	else
		field(2, "metric", "unknown %" PRIu32, sb->metric);
	field(2, "hnsw_m", "%u", (unsigned)sb->hnsw_m);
	field(2, "hnsw_ef_construction", "%u", (unsigned)sb->hnsw_ef_construction);
	hex(sb->uuid, 16, buf);
	field(2, "uuid", "%s", buf);
	field(2, "created_us", "%" PRIu64 " (%s)", sb->created_us,
	      iso_time(sb->created_us, buf, sizeof buf));
	field(2, "meta_offset", "%" PRIu64, sb->meta_offset);
	field(2, "meta_slot_size", "%" PRIu32, sb->meta_slot_size);
	field(2, "meta_slot_count", "%" PRIu32, sb->meta_slot_count);
	field(2, "data_offset", "%" PRIu64, sb->data_offset);
	field(2, "block_align", "%" PRIu32, sb->block_align);
}

static void show_meta_fields_json(struct dump *d, const struct layout_meta *m)
{
	uint32_t nseg = m->segment_count < LAYOUT_MAX_SEGMENTS ? m->segment_count
							       : LAYOUT_MAX_SEGMENTS;

	ju64(d, "seq", m->seq);
	ju64(d, "epoch", m->epoch);
	ju64(d, "published_end", m->published_end);
	ju64(d, "last_block_offset", m->last_block_offset);
	char crc[16];
	snprintf(crc, sizeof crc, "0x%08" PRIx32, m->last_block_crc32c);
	jstr(d, "last_block_crc32c", crc);
	ju64(d, "durable_end", m->durable_end);
	ju64(d, "tail_start", m->tail_start);
	if (m->log_start)
		ju64(d, "log_start", m->log_start);
	ju64(d, "commit_time_us", m->commit_time_us);
	jtime(d, "commit_time", m->commit_time_us);
	ju64(d, "concept_count", m->concept_count);
	ju64(d, "association_count", m->association_count);
	ju64(d, "next_ordinal", m->next_ordinal);
	ju64(d, "segment_count", m->segment_count);
	jopen(d, "segments", '[');
	for (uint32_t i = 0; i < nseg; i++) {
		jopen(d, NULL, '{');
		ju64(d, "offset", m->segments[i].offset);
		ju64(d, "length", m->segments[i].length);
		jclose(d, '}');
	}
	jclose(d, ']');
}

static void show_meta_fields_text(const struct layout_meta *m)
{
	uint32_t nseg = m->segment_count < LAYOUT_MAX_SEGMENTS ? m->segment_count
							       : LAYOUT_MAX_SEGMENTS;
	char buf[96];

	field(2, "seq", "%" PRIu64, m->seq);
	field(2, "epoch", "%" PRIu64, m->epoch);
	field(2, "published_end", "%" PRIu64, m->published_end);
	field(2, "last_block_offset", "%" PRIu64, m->last_block_offset);
	field(2, "last_block_crc32c", "0x%08" PRIx32, m->last_block_crc32c);
	field(2, "durable_end", "%" PRIu64, m->durable_end);
	field(2, "tail_start", "%" PRIu64, m->tail_start);
	if (m->log_start)
		field(2, "log_start", "%" PRIu64 " (blocks before it may be freed)", m->log_start);
	field(2, "commit_time_us", "%" PRIu64 " (%s)", m->commit_time_us,
	      iso_time(m->commit_time_us, buf, sizeof buf));
	field(2, "concept_count", "%" PRIu64, m->concept_count);
	field(2, "association_count", "%" PRIu64, m->association_count);
	field(2, "next_ordinal", "%" PRIu32, m->next_ordinal);
	field(2, "segment_count", "%" PRIu32, m->segment_count);
	for (uint32_t i = 0; i < nseg; i++) {
		snprintf(buf, sizeof buf, "segment %" PRIu32, i);
		field(4, buf, "offset %" PRIu64 ", length %" PRIu64, m->segments[i].offset,
		      m->segments[i].length);
	}
}

static void show_slots(struct dump *d)
{
	bool opened = d->open_rc == 0;
	int cur = opened ? d->v.current : -1;

	if (d->opt->json) {
		if (!d->have_slots) {
			jnull(d, "meta_slots");
		} else {
			jopen(d, "meta_slots", '[');
			for (int i = 0; i < (int)LAYOUT_META_SLOT_COUNT; i++) {
				jopen(d, NULL, '{');
				ju64(d, "slot", (uint64_t)i);
				ju64(d, "offset", d->slot_off[i]);
				jstr(d, "state", slot_state_name(d->slot_state[i]));
				jbool(d, "current", i == cur);
				if (d->slot_state[i] == LAYOUT_SLOT_VALID)
					show_meta_fields_json(d, &d->slots[i]);
				else if (d->slot_state[i] == LAYOUT_SLOT_CORRUPT)
					jproblem(d, "problem", &d->slot_pb[i]);
				jclose(d, '}');
			}
			jclose(d, ']');
		}
		if (opened)
			ju64(d, "current_slot", (uint64_t)cur);
		else
			jnull(d, "current_slot");
		if (opened)
			jbool(d, "fell_back", d->v.fell_back);
		else
			jnull(d, "fell_back");
		jproblem(d, "fallback_problem",
			 opened && d->v.fell_back ? &d->v.fallback_problem : NULL);
		return;
	}

	if (!d->have_slots)
		return;
	for (int i = 0; i < (int)LAYOUT_META_SLOT_COUNT; i++) {
		printf("\nmeta slot %d at offset %" PRIu64 ": %s", i, d->slot_off[i],
		       slot_state_name(d->slot_state[i]));
		if (d->slot_state[i] == LAYOUT_SLOT_CORRUPT)
			printf(": offset %" PRIu64 ": %s", d->slot_pb[i].offset, d->slot_pb[i].what);
		if (i == cur)
			fputs(" (current)", stdout);
		putchar('\n');
		if (d->slot_state[i] == LAYOUT_SLOT_VALID)
			show_meta_fields_text(&d->slots[i]);
	}
	if (!opened)
		return;
	printf("\ncurrent slot: %d (epoch %" PRIu64 ")\n", cur, d->v.meta.epoch);
	if (d->v.fell_back)
		printf("fell back: yes, the newer slot was rejected: offset %" PRIu64 ": %s\n",
		       d->v.fallback_problem.offset, d->v.fallback_problem.what);
	else
		printf("fell back: no\n");
}

/* ---- Records and segments ------------------------------------------------ */

static void show_concept_json(struct dump *d, const struct layout_concept *c)
{
	uint32_t nvals = c->embedding ? c->vector_dim : 0;
	uint32_t shown = nvals;

	if (!d->opt->full && shown > EMBEDDING_PREVIEW)
		shown = EMBEDDING_PREVIEW;
	ju64(d, "ordinal", c->ordinal);
	jhex(d, "id", c->id, 16);
	ju64(d, "flags", c->flags);
	jfloat(d, "strength", (double)c->strength);
	jfloat(d, "confidence", (double)c->confidence);
	ju64(d, "created_us", c->created_us);
	ju64(d, "updated_us", c->updated_us);
	ju64(d, "content_length", c->content_len);
	jkey(d, "content");
	size_t limit = d->opt->full ? SIZE_MAX : CONTENT_PREVIEW;
	size_t used = put_quoted(c->content, c->content_len, limit, true);
	jbool(d, "content_truncated", used < c->content_len);
	ju64(d, "metadata_length", c->metadata_len);
	ju64(d, "vector_dim", nvals);
	if (!c->embedding) {
		jnull(d, "embedding");
	} else {
		const unsigned char *e = c->embedding;

		jopen(d, "embedding", '[');
		for (uint32_t i = 0; i < shown; i++)
			jfloat(d, NULL, (double)util_get_lef32(e + 4 * (size_t)i));
		jclose(d, ']');
	}
	jbool(d, "embedding_truncated", shown < nvals);
}

static void show_concept_text(const struct options *opt, const struct layout_concept *c)
{
	char id[33];

	hex(c->id, 16, id);
	printf("ordinal %" PRIu32 ", id %s, flags 0x%" PRIx32 "\n", c->ordinal, id, c->flags);
	printf("      strength %g, confidence %g, created_us %" PRIu64 ", updated_us %" PRIu64 "\n",
	       (double)c->strength, (double)c->confidence, c->created_us, c->updated_us);
	printf("      content_len %" PRIu32 ": ", c->content_len);
	size_t used = put_quoted(c->content, c->content_len,
				 opt->full ? SIZE_MAX : CONTENT_PREVIEW, false);
	if (used < c->content_len)
		fputs("...", stdout);
	printf("\n      metadata_len %" PRIu32 "\n", c->metadata_len);
	if (!c->embedding) {
		printf("      embedding: none\n");
		return;
	}
	const unsigned char *e = c->embedding;
	uint32_t shown = c->vector_dim;
	if (!opt->full && shown > EMBEDDING_PREVIEW)
		shown = EMBEDDING_PREVIEW;
	printf("      embedding: vector_dim %" PRIu32 " [", c->vector_dim);
	for (uint32_t i = 0; i < shown; i++)
		printf("%s%g", i ? ", " : "", (double)util_get_lef32(e + 4 * (size_t)i));
	printf("%s]\n", shown < c->vector_dim ? ", ..." : "");
}

/* Shared by associations and their deletes: the key of an edge. */
static void show_edge_text(const struct layout_association *a)
{
	char src[33], dst[33];
	const char *tname = assoc_type_name(a->type);

	hex(a->src, 16, src);
	hex(a->dst, 16, dst);
	if (tname)
		printf("type %s", tname);
	else
		printf("type %u", (unsigned)a->type);
	printf("\n      src %s (ordinal %" PRIu32 ") -> dst %s (ordinal %" PRIu32 ")", src,
	       a->src_ordinal, dst, a->dst_ordinal);
}

static void show_edge_json(struct dump *d, const struct layout_association *a)
{
	jhex(d, "src", a->src, 16);
	ju64(d, "src_ordinal", a->src_ordinal);
	jhex(d, "dst", a->dst, 16);
	ju64(d, "dst_ordinal", a->dst_ordinal);
	ju64(d, "type", a->type);
	jstr(d, "type_name", assoc_type_name(a->type));
}

static const char *record_kind(uint8_t type)
{
	switch (type) {
	case LAYOUT_REC_CONCEPT:
		return "concept";
	case LAYOUT_REC_ASSOCIATION:
		return "association";
	case LAYOUT_REC_CONCEPT_DELETE:
		return "concept_delete";
	case LAYOUT_REC_ASSOCIATION_DELETE:
		return "association_delete";
	case LAYOUT_REC_REQUEST:
		return "request";
	default:
		return NULL;
	}
}

/* The kind as the text output names it: words rather than an identifier. */
static const char *record_text_name(uint8_t type)
{
	switch (type) {
	case LAYOUT_REC_CONCEPT_DELETE:
		return "concept delete";
	case LAYOUT_REC_ASSOCIATION_DELETE:
		return "association delete";
	case LAYOUT_REC_REQUEST:
		return "request marker";
	default:
		return record_kind(type);
	}
}

static void show_record(struct dump *d, const struct layout_record *rec)
{
	const struct layout_association *a = &rec->u.association;
	const char *kind = record_kind(rec->type);

	if (d->opt->json) {
		jopen(d, NULL, '{');
		ju64(d, "offset", rec->offset);
		jstr(d, "kind", kind);
		ju64(d, "record_type", rec->type);
		ju64(d, "length", rec->length);
		switch (rec->type) {
		case LAYOUT_REC_CONCEPT:
			show_concept_json(d, &rec->u.concept);
			break;
		case LAYOUT_REC_ASSOCIATION:
			show_edge_json(d, a);
			jfloat(d, "confidence", (double)a->confidence);
			jfloat(d, "weight", (double)a->weight);
			ju64(d, "created_us", a->created_us);
			break;
		case LAYOUT_REC_CONCEPT_DELETE:
			ju64(d, "ordinal", rec->u.concept.ordinal);
			jhex(d, "id", rec->u.concept.id, 16);
			break;
		case LAYOUT_REC_ASSOCIATION_DELETE:
			show_edge_json(d, a);
			break;
		case LAYOUT_REC_REQUEST: {
			char crc[16];
			ju64(d, "client_id", rec->u.request.client_id);
			ju64(d, "seq", rec->u.request.seq);
			snprintf(crc, sizeof crc, "0x%08" PRIx32, rec->u.request.request_crc32c);
			jstr(d, "request_crc32c", crc);
			break;
		}
		default:
			break;
		}
		jclose(d, '}');
		return;
	}

	if (!kind) {
		printf("    record type %u at offset %" PRIu64 ", length %" PRIu32 "\n",
		       (unsigned)rec->type, rec->offset, rec->length);
		return;
	}
	printf("    %s at offset %" PRIu64 ", length %" PRIu32 ": ", record_text_name(rec->type),
	       rec->offset, rec->length);
	switch (rec->type) {
	case LAYOUT_REC_CONCEPT:
		show_concept_text(d->opt, &rec->u.concept);
		break;
	case LAYOUT_REC_ASSOCIATION:
		printf("confidence %g, weight %g, created_us %" PRIu64 ", ", (double)a->confidence,
		       (double)a->weight, a->created_us);
		show_edge_text(a);
		putchar('\n');
		break;
	case LAYOUT_REC_CONCEPT_DELETE: {
		char id[33];

		hex(rec->u.concept.id, 16, id);
		printf("ordinal %" PRIu32 ", id %s\n", rec->u.concept.ordinal, id);
		break;
	}
	case LAYOUT_REC_REQUEST:
		printf("client %016" PRIx64 ", seq %" PRIu64 ", request crc32c 0x%08" PRIx32 "\n",
		       rec->u.request.client_id, rec->u.request.seq, rec->u.request.request_crc32c);
		break;
	default:
		show_edge_text(a);
		putchar('\n');
		break;
	}
}

/* A failure that is not about the bytes (in practice -ENOMEM) has no
 * struct sutra_detail; make one so that it is reported the same way. */
static void errno_problem(int rc, uint64_t off, struct sutra_detail *pb)
{
	util_detail_set(pb, off, "%s (%s)", sutra_strerror(rc), sutra_errname(rc));
}

static void show_records(struct dump *d, const struct layout_block *blk)
{
	struct layout_record_iter it;
	struct layout_record rec;
	struct sutra_detail pb;
	int rc;

	if (d->opt->json)
		jopen(d, "records", '[');
	layout_records_init(&it, d->base, blk, d->sb.vector_dim);
	while ((rc = layout_records_next(&it, &rec, &pb)) == 1)
		show_record(d, &rec);
	if (rc < 0 && rc != SUTRA_ECORRUPT)
		errno_problem(rc, blk->offset, &pb);
	if (d->opt->json) {
		jclose(d, ']');
		jproblem(d, "records_problem", rc < 0 ? &pb : NULL);
	} else if (rc < 0) {
		printf("    records BAD: offset %" PRIu64 ": %s\n", pb.offset, pb.what);
	}
}

static void show_segment(struct dump *d, const struct layout_block *blk)
{
	static struct layout_section sections[LAYOUT_MAX_SECTIONS];
	struct layout_segment seg;
	struct sutra_detail pb;
	int rc = layout_segment_decode(d->base, blk, &seg, sections, LAYOUT_MAX_SECTIONS, &pb);

	if (rc < 0 && rc != SUTRA_ECORRUPT)
		errno_problem(rc, blk->offset, &pb);
	if (d->opt->json) {
		if (rc < 0) {
			jnull(d, "segment");
			jproblem(d, "segment_problem", &pb);
			return;
		}
		jopen(d, "segment", '{');
		ju64(d, "seg_version", seg.seg_version);
		ju64(d, "section_count", seg.section_count);
		ju64(d, "first_epoch", seg.first_epoch);
		ju64(d, "last_epoch", seg.last_epoch);
		ju64(d, "concept_count", seg.concept_count);
		ju64(d, "association_count", seg.association_count);
		jopen(d, "sections", '[');
		for (uint32_t i = 0; i < seg.section_count && i < LAYOUT_MAX_SECTIONS; i++) {
			char crc[16];

			jopen(d, NULL, '{');
			ju64(d, "kind", sections[i].kind);
			ju64(d, "flags", sections[i].flags);
			ju64(d, "offset", sections[i].offset);
			ju64(d, "length", sections[i].length);
			snprintf(crc, sizeof crc, "0x%08" PRIx32, sections[i].crc32c);
			jstr(d, "crc32c", crc);
			jclose(d, '}');
		}
		jclose(d, ']');
		jclose(d, '}');
		jnull(d, "segment_problem");
		return;
	}

	if (rc < 0) {
		printf("    segment BAD: offset %" PRIu64 ": %s\n", pb.offset, pb.what);
		return;
	}
	printf("    segment: seg_version %" PRIu32 ", epochs %" PRIu64 "..%" PRIu64
	       ", concept_count %" PRIu64 ", association_count %" PRIu64 ", %" PRIu32
	       " sections\n",
	       seg.seg_version, seg.first_epoch, seg.last_epoch, seg.concept_count,
	       seg.association_count, seg.section_count);
	for (uint32_t i = 0; i < seg.section_count && i < LAYOUT_MAX_SECTIONS; i++)
		printf("      section %" PRIu32 ": kind %" PRIu32 ", flags 0x%" PRIx32
		       ", offset %" PRIu64 ", length %" PRIu64 ", crc32c 0x%08" PRIx32 "\n",
		       i, sections[i].kind, sections[i].flags, sections[i].offset,
		       sections[i].length, sections[i].crc32c);
}

/* ---- Blocks and tail ------------------------------------------------------ */

static void show_block(struct dump *d, const struct layout_block *blk)
{
	struct sutra_detail pb;
	int crc_rc = layout_block_check_payload(d->base, blk, &pb);
	const char *tname = block_type_name(blk->type);
	bool list = d->opt->records && crc_rc == 0;

	if (crc_rc < 0 && crc_rc != SUTRA_ECORRUPT)
		errno_problem(crc_rc, blk->offset, &pb);
	if (d->opt->json) {
		jopen(d, NULL, '{');
		ju64(d, "offset", blk->offset);
		ju64(d, "type", blk->type);
		jstr(d, "type_name", tname);
		ju64(d, "epoch", blk->epoch);
		ju64(d, "length", blk->length);
		ju64(d, "payload_length", blk->payload_length);
		ju64(d, "item_count", blk->item_count);
		jstr(d, "checksum", crc_rc == 0 ? "ok" : "bad");
		jproblem(d, "checksum_problem", crc_rc == 0 ? NULL : &pb);
	} else {
		printf("  block at offset %" PRIu64 ": ", blk->offset);
		if (tname)
			fputs(tname, stdout);
		else
			printf("unknown %u", (unsigned)blk->type);
		printf(", epoch %" PRIu64 ", length %" PRIu64 ", payload_length %" PRIu64
		       ", item_count %" PRIu32 ", checksum ",
		       blk->epoch, blk->length, blk->payload_length, blk->item_count);
		if (crc_rc == 0)
			printf("ok\n");
		else
			printf("BAD: offset %" PRIu64 ": %s\n", pb.offset, pb.what);
	}

	if (list && blk->type == LAYOUT_BLOCK_COMMIT) {
		show_records(d, blk);
	} else if (list && blk->type == LAYOUT_BLOCK_SEGMENT) {
		show_segment(d, blk);
	} else if (d->opt->records && d->opt->json) {
		/* Same keys as a listed block; checksum_problem says why not. */
		bool seg = blk->type == LAYOUT_BLOCK_SEGMENT;
		jnull(d, seg ? "segment" : "records");
		jnull(d, seg ? "segment_problem" : "records_problem");
	} else if (d->opt->records && crc_rc != 0) {
		printf("    not listed: the payload is damaged\n");
	}
	if (d->opt->json)
		jclose(d, '}');
}

static void show_blocks(struct dump *d)
{
	uint64_t end = d->v.meta.published_end;
	/* Before log_start the flushed commit blocks may be freed. */
	uint64_t off = layout_log_start(&d->sb, &d->v.meta);

	if (d->opt->json)
		jopen(d, "blocks", '[');
	else
		printf("\nblocks from offset %" PRIu64 " to published_end %" PRIu64 ":%s\n", off,
		       end, off >= end ? " none" : "");
	while (off < end) {
		struct layout_block blk;
		struct sutra_detail pb;

		/* Decoding against published_end, as layout_open() does, keeps the
		 * walk inside the published part of the log. */
		if (layout_block_decode(d->base, end, off, &blk, &pb) != 0) {
			if (d->opt->json) {
				jopen(d, NULL, '{');
				ju64(d, "offset", off);
				jproblem(d, "problem", &pb);
				jclose(d, '}');
			} else {
				printf("  block at offset %" PRIu64 ": BAD header: offset %" PRIu64
				       ": %s\n",
				       off, pb.offset, pb.what);
				printf("  (walk stopped: the next block's offset is unknown)\n");
			}
			break;
		}
		show_block(d, &blk);
		/* The decoder guarantees length >= 64 and off + length <= end,
		 * so the walk always advances and cannot wrap. */
		off += blk.length;
	}
	if (d->opt->json)
		jclose(d, ']');
}

static void show_tail(struct dump *d)
{
	uint64_t pend = d->v.meta.published_end;
	uint64_t bytes = d->size - pend;
	uint64_t end = pend;
	struct sutra_detail pb = { .offset = UINT64_MAX };
	uint64_t n = layout_scan_tail(&d->v, &end, &pb);
	bool stopped = pb.offset != UINT64_MAX;

	if (d->opt->json) {
		jopen(d, "tail", '{');
		ju64(d, "offset", pend);
		ju64(d, "bytes", bytes);
		ju64(d, "extending_blocks", n);
		ju64(d, "end", end);
		jproblem(d, "stop", stopped ? &pb : NULL);
		jclose(d, '}');
		return;
	}
	printf("\ntail: %" PRIu64 " bytes after published_end %" PRIu64 ", extending blocks: ",
	       bytes, pend);
	if (n == 0)
		printf("none\n");
	else
		printf("%" PRIu64 ", ending at offset %" PRIu64 "\n", n, end);
	if (stopped)
		printf("  scan stopped: offset %" PRIu64 ": %s\n", pb.offset, pb.what);
}

/* ---- Verify --------------------------------------------------------------- */

struct verdict {
	bool ok;
	bool have_offset;
	struct sutra_detail pb; /* what, and offset when have_offset */
	uint64_t epoch;
	uint64_t concepts;
	uint64_t associations;
};

static void run_verify(struct dump *d, struct verdict *vd)
{
	struct layout_replay r;
	int rc;

	memset(vd, 0, sizeof *vd);
	if (d->open_rc != 0) {
		/* A file that does not open cannot verify; its reason is the verdict. */
		vd->have_offset = d->open_rc == SUTRA_ECORRUPT || d->open_rc == SUTRA_EVERSION;
		if (vd->have_offset)
			vd->pb = d->open_pb;
		else
			errno_problem(d->open_rc, 0, &vd->pb);
		return;
	}
	rc = layout_replay_init(&r, d->sb.vector_dim);
	if (rc != 0) {
		errno_problem(rc, 0, &vd->pb);
		return;
	}
	rc = layout_verify(&d->v, &r, &vd->pb);
	if (rc == 0) {
		vd->ok = true;
		vd->epoch = r.epoch;
		vd->concepts = r.concept_count;
		vd->associations = r.association_count;
	} else if (rc == SUTRA_ECORRUPT || rc == SUTRA_EVERSION) {
		vd->have_offset = true;
	} else {
		errno_problem(rc, 0, &vd->pb);
	}
	layout_replay_finish(&r);
}

static void show_verdict(struct dump *d, const struct verdict *vd)
{
	if (d->opt->json) {
		jopen(d, "verify", '{');
		jbool(d, "ok", vd->ok);
		if (vd->have_offset)
			ju64(d, "offset", vd->pb.offset);
		else
			jnull(d, "offset");
		jstr(d, "problem", vd->ok ? NULL : vd->pb.what);
		if (vd->ok) {
			ju64(d, "epoch", vd->epoch);
			ju64(d, "concept_count", vd->concepts);
			ju64(d, "association_count", vd->associations);
		}
		jclose(d, '}');
		return;
	}
	if (vd->ok)
		printf("verify: ok (epoch %" PRIu64 ", %" PRIu64 " concepts, %" PRIu64
		       " associations)\n",
		       vd->epoch, vd->concepts, vd->associations);
	else if (vd->have_offset)
		printf("verify: FAILED at offset %" PRIu64 ": %s\n", vd->pb.offset, vd->pb.what);
	else
		printf("verify: FAILED: %s\n", vd->pb.what);
}

/* ---- Errors on stderr ------------------------------------------------------ */

static void report(const char *path, int rc, const struct sutra_detail *pb)
{
	struct stat st;

	/* Keep stdout and stderr in order on a terminal. */
	fflush(stdout);
	/* layout_map_open() refuses anything but a regular file with EINVAL,
	 * whose own text ("Invalid argument") would not say why. */
	if (rc == -EINVAL && stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		fprintf(stderr, "%s: %s: not a regular file (EINVAL)\n", PROG, path);
	else if (pb)
		fprintf(stderr, "%s: %s: offset %" PRIu64 ": %s (%s: %s)\n", PROG, path,
			pb->offset, pb->what, sutra_errname(rc), sutra_strerror(rc));
	else
		fprintf(stderr, "%s: %s: %s (%s)\n", PROG, path, sutra_strerror(rc),
			sutra_errname(rc));
}

static void jerror(struct dump *d, const char *key, int rc, const struct sutra_detail *pb)
{
	if (rc == 0) {
		jnull(d, key);
		return;
	}
	jopen(d, key, '{');
	jstr(d, "code", sutra_errname(rc));
	jstr(d, "message", sutra_strerror(rc));
	if (pb)
		ju64(d, "offset", pb->offset);
	else
		jnull(d, "offset");
	jstr(d, "what", pb ? pb->what : NULL);
	jclose(d, '}');
}

/* ---- Reader slots (the lock file) --------------------------------------------- */

struct slot_walk {
	struct dump *d;
	uint32_t used;
};

static int show_reader_slot(void *arg, uint32_t slot, int64_t pid, uint64_t pinned, int alive)
{
	struct slot_walk *w = arg;
	struct dump *d = w->d;

	w->used++;
	if (d->opt->json) {
		jopen(d, NULL, '{');
		ju64(d, "slot", slot);
		jkey(d, "pid");
		printf("%" PRId64, pid);
		if (pinned)
			ju64(d, "pinned_epoch", pinned);
		else
			jnull(d, "pinned_epoch");
		jbool(d, "alive", alive);
		jclose(d, '}');
		return 0;
	}
	printf("  slot %" PRIu32 ": pid %" PRId64 ", pinned epoch ", slot, pid);
	if (pinned)
		printf("%" PRIu64, pinned);
	else
		fputs("none", stdout);
	printf(", %s\n", alive ? "alive" : "dead");
	return 0;
}

/*
 * Lists the used reader slots of PATH.lock (docs/LOCKFILE.md), opened
 * read-only: the liveness test takes no lock and the tool writes nothing.
 * A missing lock file, or one without a table yet, is not an error. sep
 * says whether text output came before (an empty line separates them).
 * Returns the exit status this part calls for.
 */
static int show_reader_slots(struct dump *d, bool sep)
{
	const char *path = d->opt->path;
	size_t n = strlen(path) + sizeof ".lock";
	struct layout_lockfile *lf = NULL;
	struct sutra_detail pb;
	struct slot_walk w = { .d = d };
	char *lp = malloc(n);
	int rc;

	if (!lp) {
		report(path, -ENOMEM, NULL);
		return STATUS_BAD;
	}
	snprintf(lp, n, "%s.lock", path);
	rc = layout_lockfile_open(lp, LAYOUT_LOCKFILE_RDONLY, &lf, &pb);
	bool has_pb = rc == SUTRA_ECORRUPT || rc == SUTRA_EVERSION;
	if (d->opt->json) {
		jstr(d, "lock_file", lp);
		jstr(d, "lock_state", rc == 0 ? "ok"
				      : rc == -ENOENT ? "missing"
				      : rc == -ENODATA ? "no_table"
						       : "error");
		if (rc == 0) {
			jopen(d, "slots", '[');
			rc = layout_lockfile_foreach(lf, show_reader_slot, &w);
			jclose(d, ']');
		} else {
			jnull(d, "slots");
		}
		bool quiet_rc = rc == -ENOENT || rc == -ENODATA;
		jerror(d, "slots_error", quiet_rc ? 0 : rc, has_pb ? &pb : NULL);
	} else {
		if (sep)
			putchar('\n');
		if (rc == -ENOENT) {
			printf("reader slots: no lock file %s\n", lp);
		} else if (rc == -ENODATA) {
			printf("reader slots: %s has no slot table\n", lp);
		} else if (rc == 0) {
			printf("reader slots in %s:\n", lp);
			rc = layout_lockfile_foreach(lf, show_reader_slot, &w);
			if (rc == 0 && w.used == 0)
				printf("  none in use\n");
		} else {
			printf("reader slots in %s: BAD\n", lp);
		}
	}
	int status = rc == 0 || rc == -ENOENT || rc == -ENODATA ? STATUS_OK : STATUS_BAD;
	if (status != STATUS_OK)
		report(lp, rc, has_pb ? &pb : NULL);
	layout_lockfile_close(lf);
	free(lp);
	return status;
}

/* ---- Command line ---------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " [OPTION]... PATH\n"
		"Print the structure of a Sutra storage.dat file: superblock, meta slots,\n"
		"every published block and the unpublished tail; optionally verify it.\n"
		"\n"
		"  -r, --records   also list the records of each commit block and the\n"
		"                  header and sections of each segment block\n"
		"  -f, --full      with --records, print whole contents and embeddings\n"
		"                  (default: the first %u bytes and %u values)\n"
		"  -j, --json      print one JSON document instead of text\n"
		"  -v, --verify    check every block, record, segment and replay rule\n"
		"                  after the dump, and print the verdict\n"
		"  -s, --slots     also list the reader slots in PATH.lock: slot, pid,\n"
		"                  pinned epoch, alive or dead\n"
		"  -q, --quiet     print no dump; with --verify or --slots, only those\n"
		"  -h, --help      print this help and exit\n"
		"  -V, --version   print the version and the format version and exit\n"
		"\n"
		"Exit status:\n"
		"  0  the file opened (and, with --verify, verified) cleanly\n"
		"  1  the file is unreadable or corrupt, or --verify found a problem,\n"
		"     or with --slots the lock file is unreadable or corrupt\n"
		"  2  usage error\n"
		"\n"
		"See sutra-layoutdump(1), docs/FORMAT.md and docs/LOCKFILE.md.\n",
		CONTENT_PREVIEW, EMBEDDING_PREVIEW);
}

static int parse_args(int argc, char **argv, struct options *opt)
{
	static const struct option longopts[] = {
		{ "records", no_argument, NULL, 'r' },
		{ "full", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "verify", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "slots", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	/* getopt_long prefixes its messages with argv[0]; show the tool's
	 * name rather than however it was invoked. */
	static char name[] = PROG;
	int c;

	argv[0] = name;
	while ((c = getopt_long(argc, argv, "rfjvqshV", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			opt->records = true;
			break;
		case 'f':
			opt->full = true;
			break;
		case 'j':
			opt->json = true;
			break;
		case 'v':
			opt->verify = true;
			break;
		case 'q':
			opt->quiet = true;
			break;
		case 's':
			opt->slots = true;
			break;
		case 'h':
			usage(stdout);
			return -1;
		case 'V':
			printf(PROG " %s (storage.dat format version %u)\n", LAYOUTDUMP_VERSION,
			       LAYOUT_FORMAT_VERSION);
			return -1;
		default:
			goto bad;
		}
	}
	if (optind == argc) {
		fprintf(stderr, PROG ": missing PATH\n");
		goto bad;
	}
	if (argc - optind > 1) {
		fprintf(stderr, PROG ": too many arguments: only one PATH is allowed\n");
		goto bad;
	}
	opt->path = argv[optind];
	return 0;
bad:
	fprintf(stderr, "Try '" PROG " --help' for more information.\n");
	return -2;
}

/* A dump cut short by a full disk must not look complete: the status says so. */
static int flush_output(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "%s: error writing output: %s\n", PROG, strerror(errno));
		return STATUS_BAD;
	}
	return status;
}

int main(int argc, char **argv)
{
	struct options opt = { 0 };
	struct layout_map map = { .fd = -1 };
	static struct dump d; /* large: a view, slot copies */
	struct verdict vd;
	int status;

	switch (parse_args(argc, argv, &opt)) {
	case 0:
		break;
	case -1:
		return flush_output(STATUS_OK);
	default:
		return STATUS_USAGE;
	}
	d.opt = &opt;
	d.jdepth = -1;

	/* A file that cannot be mapped is reported like one that does not
	 * open, with nothing decoded. */
	int rc = layout_map_open(opt.path, &map);
	bool mapped = rc == 0;
	if (mapped) {
		d.base = map.base;
		d.size = map.size;
		gather(&d);
	} else {
		d.open_rc = rc;
	}

	bool opened = d.open_rc == 0;
	bool dump = !opt.quiet;
	bool has_pb = d.open_rc == SUTRA_ECORRUPT || d.open_rc == SUTRA_EVERSION;

	if (opt.json) {
		jopen(&d, NULL, '{');
		jstr(&d, "path", opt.path);
		if (mapped)
			ju64(&d, "size", d.size);
		else
			jnull(&d, "size");
		if (dump && mapped) {
			show_superblock(&d);
			show_slots(&d);
			if (opened) {
				show_blocks(&d);
				show_tail(&d);
			} else {
				jnull(&d, "blocks");
				jnull(&d, "tail");
			}
		}
		jerror(&d, "error", d.open_rc, has_pb ? &d.open_pb : NULL);
	} else if (dump && mapped) {
		printf("file: %s\nsize: %" PRIu64 " bytes\n\n", opt.path, d.size);
		show_superblock(&d);
		show_slots(&d);
		if (opened) {
			show_blocks(&d);
			show_tail(&d);
		}
	}

	if (!opened)
		report(opt.path, d.open_rc, has_pb ? &d.open_pb : NULL);
	status = opened ? STATUS_OK : STATUS_BAD;
	bool text_before = !opt.json && dump && mapped;
	if (opt.slots) {
		if (show_reader_slots(&d, text_before) != STATUS_OK)
			status = STATUS_BAD;
		text_before = !opt.json;
	}
	if (opt.verify) {
		run_verify(&d, &vd);
		if (text_before)
			putchar('\n');
		show_verdict(&d, &vd);
		if (!vd.ok)
			status = STATUS_BAD;
	}
	if (opt.json)
		jclose(&d, '}');

	layout_map_close(&map);
	return flush_output(status);
}
