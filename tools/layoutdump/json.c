/* SPDX-License-Identifier: MIT */
/* sutra-layoutdump's JSON: the string escaper, a small writer, and the document it writes. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sutra/errors.h"
#include "tools/layoutdump/layoutdump.h"
#include "util/endian.h"
#include "util/hex.h"
#include "util/utf8.h"

/* ---- Strings ------------------------------------------------------------- */

size_t ld_put_quoted(const void *data, size_t len, size_t limit, bool json)
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

/* ---- The writer ------------------------------------------------------------ */

/* Starts a member (key not NULL) or an array element (key NULL). */
static void jkey(struct ld_dump *d, const char *key)
{
	if (d->jmember[d->jdepth])
		putchar(',');
	d->jmember[d->jdepth] = true;
	printf("\n%*s", 2 * (d->jdepth + 1), "");
	if (key) {
		ld_put_quoted(key, strlen(key), SIZE_MAX, true);
		fputs(": ", stdout);
	}
}

static void jopen(struct ld_dump *d, const char *key, char bracket)
{
	if (d->jdepth >= 0)
		jkey(d, key);
	putchar(bracket);
	d->jdepth++;
	/* Nesting is fixed by this file's code, not by the input. */
	assert(d->jdepth < LD_JSON_MAX_DEPTH);
	d->jmember[d->jdepth] = false;
}

static void jclose(struct ld_dump *d, char bracket)
{
	if (d->jmember[d->jdepth])
		printf("\n%*s", 2 * d->jdepth, "");
	d->jdepth--;
	putchar(bracket);
	if (d->jdepth < 0)
		putchar('\n');
}

static void ju64(struct ld_dump *d, const char *key, uint64_t v)
{
	jkey(d, key);
	printf("%" PRIu64, v);
}

static void jbool(struct ld_dump *d, const char *key, bool v)
{
	jkey(d, key);
	fputs(v ? "true" : "false", stdout);
}

static void jnull(struct ld_dump *d, const char *key)
{
	jkey(d, key);
	fputs("null", stdout);
}

/* JSON has no NaN or infinity; the library rejects them on disk anyway. */
static void jfloat(struct ld_dump *d, const char *key, double v)
{
	jkey(d, key);
	if (isfinite(v))
		printf("%.9g", v);
	else
		fputs("null", stdout);
}

static void jstr(struct ld_dump *d, const char *key, const char *s)
{
	jkey(d, key);
	if (s)
		ld_put_quoted(s, strlen(s), SIZE_MAX, true);
	else
		fputs("null", stdout);
}

/* A 16-byte id (or uuid) as 32 hex digits. */
static void jid(struct ld_dump *d, const char *key, const uint8_t id[16])
{
	char buf[33];

	util_hex_id(buf, id);
	jstr(d, key, buf);
}

static void jtime(struct ld_dump *d, const char *key, uint64_t us)
{
	char buf[96];

	jstr(d, key, ld_iso_time(us, buf, sizeof buf));
}

/* A 32-bit checksum as the string "0x%08x". */
static void jcrc(struct ld_dump *d, const char *key, uint32_t crc)
{
	char buf[16];

	snprintf(buf, sizeof buf, "0x%08" PRIx32, crc);
	jstr(d, key, buf);
}

/* A struct sutra_detail as {"offset": N, "what": "..."}, or null. */
static void jproblem(struct ld_dump *d, const char *key, const struct sutra_detail *pb)
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

/* An error code with its detail, or null for 0. */
static void jerror(struct ld_dump *d, const char *key, int rc, const struct sutra_detail *pb)
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

/* ---- Superblock and meta slots --------------------------------------------- */

static void json_superblock(struct ld_dump *d)
{
	const struct layout_superblock *sb = &d->sb;
	char buf[96];

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
	jstr(d, "metric_name", ld_metric_name(sb->metric));
	ju64(d, "hnsw_m", sb->hnsw_m);
	ju64(d, "hnsw_ef_construction", sb->hnsw_ef_construction);
	jid(d, "uuid", sb->uuid);
	ju64(d, "created_us", sb->created_us);
	jtime(d, "created", sb->created_us);
	ju64(d, "meta_offset", sb->meta_offset);
	ju64(d, "meta_slot_size", sb->meta_slot_size);
	ju64(d, "meta_slot_count", sb->meta_slot_count);
	ju64(d, "data_offset", sb->data_offset);
	ju64(d, "block_align", sb->block_align);
	jclose(d, '}');
	jnull(d, "superblock_problem");
}

static void json_meta_fields(struct ld_dump *d, const struct layout_meta *m)
{
	uint32_t nseg = m->segment_count < LAYOUT_MAX_SEGMENTS ? m->segment_count
							       : LAYOUT_MAX_SEGMENTS;

	ju64(d, "seq", m->seq);
	ju64(d, "epoch", m->epoch);
	ju64(d, "published_end", m->published_end);
	ju64(d, "last_block_offset", m->last_block_offset);
	jcrc(d, "last_block_crc32c", m->last_block_crc32c);
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

static void json_slots(struct ld_dump *d)
{
	bool opened = d->open_rc == 0;
	int cur = opened ? d->v.current : -1;

	if (!d->have_slots) {
		jnull(d, "meta_slots");
	} else {
		jopen(d, "meta_slots", '[');
		for (int i = 0; i < (int)LAYOUT_META_SLOT_COUNT; i++) {
			jopen(d, NULL, '{');
			ju64(d, "slot", (uint64_t)i);
			ju64(d, "offset", d->slot_off[i]);
			jstr(d, "state", ld_slot_state_name(d->slot_state[i]));
			jbool(d, "current", i == cur);
			if (d->slot_state[i] == LAYOUT_SLOT_VALID)
				json_meta_fields(d, &d->slots[i]);
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
	jproblem(d, "fallback_problem", opened && d->v.fell_back ? &d->v.fallback_problem : NULL);
}

/* ---- Records and segments ------------------------------------------------ */

static void json_concept(struct ld_dump *d, const struct layout_concept *c)
{
	uint32_t nvals = c->embedding ? c->vector_dim : 0;
	uint32_t shown = nvals;

	if (!d->opt->full && shown > LD_EMBEDDING_PREVIEW)
		shown = LD_EMBEDDING_PREVIEW;
	ju64(d, "ordinal", c->ordinal);
	jid(d, "id", c->id);
	ju64(d, "flags", c->flags);
	jfloat(d, "strength", (double)c->strength);
	jfloat(d, "confidence", (double)c->confidence);
	ju64(d, "created_us", c->created_us);
	ju64(d, "updated_us", c->updated_us);
	ju64(d, "content_length", c->content_len);
	jkey(d, "content");
	size_t limit = d->opt->full ? SIZE_MAX : LD_CONTENT_PREVIEW;
	size_t used = ld_put_quoted(c->content, c->content_len, limit, true);
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

/* Shared by associations and their deletes: the key of an edge. */
static void json_edge(struct ld_dump *d, const struct layout_association *a)
{
	jid(d, "src", a->src);
	ju64(d, "src_ordinal", a->src_ordinal);
	jid(d, "dst", a->dst);
	ju64(d, "dst_ordinal", a->dst_ordinal);
	ju64(d, "type", a->type);
	jstr(d, "type_name", ld_assoc_type_name(a->type));
}

static void json_record(struct ld_dump *d, const struct layout_record *rec)
{
	const struct layout_association *a = &rec->u.association;

	jopen(d, NULL, '{');
	ju64(d, "offset", rec->offset);
	jstr(d, "kind", ld_record_kind(rec->type));
	ju64(d, "record_type", rec->type);
	ju64(d, "length", rec->length);
	switch (rec->type) {
	case LAYOUT_REC_CONCEPT:
		json_concept(d, &rec->u.concept);
		break;
	case LAYOUT_REC_ASSOCIATION:
		json_edge(d, a);
		jfloat(d, "confidence", (double)a->confidence);
		jfloat(d, "weight", (double)a->weight);
		ju64(d, "created_us", a->created_us);
		break;
	case LAYOUT_REC_CONCEPT_DELETE:
		ju64(d, "ordinal", rec->u.concept.ordinal);
		jid(d, "id", rec->u.concept.id);
		break;
	case LAYOUT_REC_ASSOCIATION_DELETE:
		json_edge(d, a);
		break;
	case LAYOUT_REC_REQUEST:
		ju64(d, "client_id", rec->u.request.client_id);
		ju64(d, "seq", rec->u.request.seq);
		jcrc(d, "request_crc32c", rec->u.request.request_crc32c);
		break;
	default:
		break;
	}
	jclose(d, '}');
}

static void json_records(struct ld_dump *d, const struct layout_block *blk)
{
	struct layout_record_iter it;
	struct layout_record rec;
	struct sutra_detail pb;
	int rc;

	jopen(d, "records", '[');
	layout_records_init(&it, d->base, blk, d->sb.vector_dim);
	while ((rc = layout_records_next(&it, &rec, &pb)) == 1)
		json_record(d, &rec);
	if (rc < 0 && rc != SUTRA_ECORRUPT)
		ld_errno_problem(rc, blk->offset, &pb);
	jclose(d, ']');
	jproblem(d, "records_problem", rc < 0 ? &pb : NULL);
}

static void json_segment(struct ld_dump *d, const struct layout_block *blk)
{
	static struct layout_section sections[LAYOUT_MAX_SECTIONS];
	struct layout_segment seg;
	struct sutra_detail pb;

	if (ld_decode_segment(d, blk, &seg, sections, &pb) < 0) {
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
		jopen(d, NULL, '{');
		ju64(d, "kind", sections[i].kind);
		ju64(d, "flags", sections[i].flags);
		ju64(d, "offset", sections[i].offset);
		ju64(d, "length", sections[i].length);
		jcrc(d, "crc32c", sections[i].crc32c);
		jclose(d, '}');
	}
	jclose(d, ']');
	jclose(d, '}');
	jnull(d, "segment_problem");
}

/* ---- Blocks and tail ------------------------------------------------------ */

static void json_block(struct ld_dump *d, const struct layout_block *blk)
{
	struct sutra_detail pb;
	int crc_rc = ld_check_payload(d, blk, &pb);
	bool seg = blk->type == LAYOUT_BLOCK_SEGMENT;

	jopen(d, NULL, '{');
	ju64(d, "offset", blk->offset);
	ju64(d, "type", blk->type);
	jstr(d, "type_name", ld_block_type_name(blk->type));
	ju64(d, "epoch", blk->epoch);
	ju64(d, "length", blk->length);
	ju64(d, "payload_length", blk->payload_length);
	ju64(d, "item_count", blk->item_count);
	jstr(d, "checksum", crc_rc == 0 ? "ok" : "bad");
	jproblem(d, "checksum_problem", crc_rc == 0 ? NULL : &pb);
	if (d->opt->records && crc_rc == 0 && blk->type == LAYOUT_BLOCK_COMMIT) {
		json_records(d, blk);
	} else if (d->opt->records && crc_rc == 0 && seg) {
		json_segment(d, blk);
	} else if (d->opt->records) {
		/* Same keys as a listed block; checksum_problem says why not. */
		jnull(d, seg ? "segment" : "records");
		jnull(d, seg ? "segment_problem" : "records_problem");
	}
	jclose(d, '}');
}

static void json_blocks(struct ld_dump *d)
{
	/* Before log_start the flushed commit blocks may be freed. */
	uint64_t off = layout_log_start(&d->sb, &d->v.meta);
	struct layout_block blk;
	struct sutra_detail pb;
	int rc;

	jopen(d, "blocks", '[');
	while ((rc = ld_next_block(d, &off, &blk, &pb)) == 1)
		json_block(d, &blk);
	if (rc < 0) {
		jopen(d, NULL, '{');
		ju64(d, "offset", off);
		jproblem(d, "problem", &pb);
		jclose(d, '}');
	}
	jclose(d, ']');
}

static void json_tail(struct ld_dump *d)
{
	struct ld_tail t;

	ld_scan_tail(d, &t);
	jopen(d, "tail", '{');
	ju64(d, "offset", t.offset);
	ju64(d, "bytes", t.bytes);
	ju64(d, "extending_blocks", t.extending);
	ju64(d, "end", t.end);
	jproblem(d, "stop", t.stopped ? &t.pb : NULL);
	jclose(d, '}');
}

/* ---- The document ------------------------------------------------------------ */

void ld_json_file(struct ld_dump *d, bool mapped, bool dump)
{
	bool has_pb = d->open_rc == SUTRA_ECORRUPT || d->open_rc == SUTRA_EVERSION;

	jopen(d, NULL, '{');
	jstr(d, "path", d->opt->path);
	if (mapped)
		ju64(d, "size", d->size);
	else
		jnull(d, "size");
	if (dump && mapped) {
		json_superblock(d);
		json_slots(d);
		if (d->open_rc == 0) {
			json_blocks(d);
			json_tail(d);
		} else {
			jnull(d, "blocks");
			jnull(d, "tail");
		}
	}
	jerror(d, "error", d->open_rc, has_pb ? &d->open_pb : NULL);
}

static int json_reader_slot(void *arg, uint32_t slot, int64_t pid, uint64_t pinned, int alive)
{
	struct ld_dump *d = arg;

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

void ld_json_reader_slots(struct ld_dump *d, struct ld_lock *lk)
{
	int rc = lk->rc;

	jstr(d, "lock_file", lk->path);
	jstr(d, "lock_state", rc == 0 ? "ok"
			      : rc == -ENOENT ? "missing"
			      : rc == -ENODATA ? "no_table"
					       : "error");
	if (rc == 0) {
		jopen(d, "slots", '[');
		lk->rc = layout_lockfile_foreach(lk->lf, json_reader_slot, d);
		jclose(d, ']');
	} else {
		jnull(d, "slots");
	}
	bool quiet = lk->rc == -ENOENT || lk->rc == -ENODATA;
	jerror(d, "slots_error", quiet ? 0 : lk->rc, lk->pb);
}

void ld_json_verdict(struct ld_dump *d, const struct ld_verdict *vd)
{
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
}

void ld_json_end(struct ld_dump *d)
{
	jclose(d, '}');
}
