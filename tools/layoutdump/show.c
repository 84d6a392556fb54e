/* SPDX-License-Identifier: MIT */
/* sutra-layoutdump's text views: the file, its blocks and records, reader slots, verdict. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sutra/errors.h"
#include "tools/layoutdump/layoutdump.h"
#include "util/endian.h"
#include "util/hex.h"

/* ---- Names and formats (both printers) ------------------------------------ */

/* 9999-12-31T23:59:59Z: beyond it the year no longer has four digits. */
#define MAX_ISO_SECONDS UINT64_C(253402300799)

/* Formats a microsecond Unix time as ISO 8601 UTC. Never uses the current
 * time or zone, so the output is the same on every machine. */
const char *ld_iso_time(uint64_t us, char *buf, size_t cap)
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

const char *ld_metric_name(uint32_t metric)
{
	return metric == LAYOUT_METRIC_COSINE ? "cosine" : NULL;
}

const char *ld_block_type_name(uint16_t type)
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

const char *ld_assoc_type_name(uint8_t type)
{
	static const char *const names[] = {
		"semantic", "causal", "temporal", "hierarchical", "compositional",
	};

	return type < sizeof names / sizeof names[0] ? names[type] : NULL;
}

const char *ld_slot_state_name(enum layout_slot_state st)
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

const char *ld_record_kind(uint8_t type)
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
		return ld_record_kind(type);
	}
}

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

/* ---- Superblock and meta slots --------------------------------------------- */

static void show_superblock(const struct ld_dump *d)
{
	const struct layout_superblock *sb = &d->sb;
	char buf[96];

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
	if (ld_metric_name(sb->metric))
		field(2, "metric", "%s", ld_metric_name(sb->metric));
	else
		field(2, "metric", "unknown %" PRIu32, sb->metric);
	field(2, "hnsw_m", "%u", (unsigned)sb->hnsw_m);
	field(2, "hnsw_ef_construction", "%u", (unsigned)sb->hnsw_ef_construction);
	util_hex_id(buf, sb->uuid);
	field(2, "uuid", "%s", buf);
	field(2, "created_us", "%" PRIu64 " (%s)", sb->created_us,
	      ld_iso_time(sb->created_us, buf, sizeof buf));
	field(2, "meta_offset", "%" PRIu64, sb->meta_offset);
	field(2, "meta_slot_size", "%" PRIu32, sb->meta_slot_size);
	field(2, "meta_slot_count", "%" PRIu32, sb->meta_slot_count);
	field(2, "data_offset", "%" PRIu64, sb->data_offset);
	field(2, "block_align", "%" PRIu32, sb->block_align);
}

static void show_meta_fields(const struct layout_meta *m)
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
	      ld_iso_time(m->commit_time_us, buf, sizeof buf));
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

static void show_slots(const struct ld_dump *d)
{
	bool opened = d->open_rc == 0;
	int cur = opened ? d->v.current : -1;

	if (!d->have_slots)
		return;
	for (int i = 0; i < (int)LAYOUT_META_SLOT_COUNT; i++) {
		printf("\nmeta slot %d at offset %" PRIu64 ": %s", i, d->slot_off[i],
		       ld_slot_state_name(d->slot_state[i]));
		if (d->slot_state[i] == LAYOUT_SLOT_CORRUPT)
			printf(": offset %" PRIu64 ": %s", d->slot_pb[i].offset, d->slot_pb[i].what);
		if (i == cur)
			fputs(" (current)", stdout);
		putchar('\n');
		if (d->slot_state[i] == LAYOUT_SLOT_VALID)
			show_meta_fields(&d->slots[i]);
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

static void show_concept(const struct ld_options *opt, const struct layout_concept *c)
{
	char id[33];

	util_hex_id(id, c->id);
	printf("ordinal %" PRIu32 ", id %s, flags 0x%" PRIx32 "\n", c->ordinal, id, c->flags);
	printf("      strength %g, confidence %g, created_us %" PRIu64 ", updated_us %" PRIu64 "\n",
	       (double)c->strength, (double)c->confidence, c->created_us, c->updated_us);
	printf("      content_len %" PRIu32 ": ", c->content_len);
	size_t used = ld_put_quoted(c->content, c->content_len,
				    opt->full ? SIZE_MAX : LD_CONTENT_PREVIEW, false);
	if (used < c->content_len)
		fputs("...", stdout);
	printf("\n      metadata_len %" PRIu32 "\n", c->metadata_len);
	if (!c->embedding) {
		printf("      embedding: none\n");
		return;
	}
	const unsigned char *e = c->embedding;
	uint32_t shown = c->vector_dim;
	if (!opt->full && shown > LD_EMBEDDING_PREVIEW)
		shown = LD_EMBEDDING_PREVIEW;
	printf("      embedding: vector_dim %" PRIu32 " [", c->vector_dim);
	for (uint32_t i = 0; i < shown; i++)
		printf("%s%g", i ? ", " : "", (double)util_get_lef32(e + 4 * (size_t)i));
	printf("%s]\n", shown < c->vector_dim ? ", ..." : "");
}

/* Shared by associations and their deletes: the key of an edge. */
static void show_edge(const struct layout_association *a)
{
	char src[33], dst[33];
	const char *tname = ld_assoc_type_name(a->type);

	util_hex_id(src, a->src);
	util_hex_id(dst, a->dst);
	if (tname)
		printf("type %s", tname);
	else
		printf("type %u", (unsigned)a->type);
	printf("\n      src %s (ordinal %" PRIu32 ") -> dst %s (ordinal %" PRIu32 ")", src,
	       a->src_ordinal, dst, a->dst_ordinal);
}

static void show_record(const struct ld_dump *d, const struct layout_record *rec)
{
	const struct layout_association *a = &rec->u.association;

	if (!ld_record_kind(rec->type)) {
		printf("    record type %u at offset %" PRIu64 ", length %" PRIu32 "\n",
		       (unsigned)rec->type, rec->offset, rec->length);
		return;
	}
	printf("    %s at offset %" PRIu64 ", length %" PRIu32 ": ", record_text_name(rec->type),
	       rec->offset, rec->length);
	switch (rec->type) {
	case LAYOUT_REC_CONCEPT:
		show_concept(d->opt, &rec->u.concept);
		break;
	case LAYOUT_REC_ASSOCIATION:
		printf("confidence %g, weight %g, created_us %" PRIu64 ", ", (double)a->confidence,
		       (double)a->weight, a->created_us);
		show_edge(a);
		putchar('\n');
		break;
	case LAYOUT_REC_CONCEPT_DELETE: {
		char id[33];

		util_hex_id(id, rec->u.concept.id);
		printf("ordinal %" PRIu32 ", id %s\n", rec->u.concept.ordinal, id);
		break;
	}
	case LAYOUT_REC_REQUEST:
		printf("client %016" PRIx64 ", seq %" PRIu64 ", request crc32c 0x%08" PRIx32 "\n",
		       rec->u.request.client_id, rec->u.request.seq, rec->u.request.request_crc32c);
		break;
	default:
		show_edge(a);
		putchar('\n');
		break;
	}
}

static void show_records(const struct ld_dump *d, const struct layout_block *blk)
{
	struct layout_record_iter it;
	struct layout_record rec;
	struct sutra_detail pb;
	int rc;

	layout_records_init(&it, d->base, blk, d->sb.vector_dim);
	while ((rc = layout_records_next(&it, &rec, &pb)) == 1)
		show_record(d, &rec);
	if (rc < 0 && rc != SUTRA_ECORRUPT)
		ld_errno_problem(rc, blk->offset, &pb);
	if (rc < 0)
		printf("    records BAD: offset %" PRIu64 ": %s\n", pb.offset, pb.what);
}

static void show_segment(const struct ld_dump *d, const struct layout_block *blk)
{
	static struct layout_section sections[LAYOUT_MAX_SECTIONS];
	struct layout_segment seg;
	struct sutra_detail pb;

	if (ld_decode_segment(d, blk, &seg, sections, &pb) < 0) {
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

static void show_block(const struct ld_dump *d, const struct layout_block *blk)
{
	struct sutra_detail pb;
	int crc_rc = ld_check_payload(d, blk, &pb);
	const char *tname = ld_block_type_name(blk->type);

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

	if (!d->opt->records)
		return;
	if (crc_rc != 0)
		printf("    not listed: the payload is damaged\n");
	else if (blk->type == LAYOUT_BLOCK_COMMIT)
		show_records(d, blk);
	else if (blk->type == LAYOUT_BLOCK_SEGMENT)
		show_segment(d, blk);
}

static void show_blocks(const struct ld_dump *d)
{
	uint64_t end = d->v.meta.published_end;
	/* Before log_start the flushed commit blocks may be freed. */
	uint64_t off = layout_log_start(&d->sb, &d->v.meta);
	struct layout_block blk;
	struct sutra_detail pb;
	int rc;

	printf("\nblocks from offset %" PRIu64 " to published_end %" PRIu64 ":%s\n", off, end,
	       off >= end ? " none" : "");
	while ((rc = ld_next_block(d, &off, &blk, &pb)) == 1)
		show_block(d, &blk);
	if (rc < 0) {
		printf("  block at offset %" PRIu64 ": BAD header: offset %" PRIu64 ": %s\n", off,
		       pb.offset, pb.what);
		printf("  (walk stopped: the next block's offset is unknown)\n");
	}
}

static void show_tail(const struct ld_dump *d)
{
	struct ld_tail t;

	ld_scan_tail(d, &t);
	printf("\ntail: %" PRIu64 " bytes after published_end %" PRIu64 ", extending blocks: ",
	       t.bytes, t.offset);
	if (t.extending == 0)
		printf("none\n");
	else
		printf("%" PRIu64 ", ending at offset %" PRIu64 "\n", t.extending, t.end);
	if (t.stopped)
		printf("  scan stopped: offset %" PRIu64 ": %s\n", t.pb.offset, t.pb.what);
}

void ld_show_file(struct ld_dump *d)
{
	printf("file: %s\nsize: %" PRIu64 " bytes\n\n", d->opt->path, d->size);
	show_superblock(d);
	show_slots(d);
	if (d->open_rc == 0) {
		show_blocks(d);
		show_tail(d);
	}
}

/* ---- Reader slots and verdict ------------------------------------------------ */

static int show_reader_slot(void *arg, uint32_t slot, int64_t pid, uint64_t pinned, int alive)
{
	uint32_t *used = arg;

	++*used;
	printf("  slot %" PRIu32 ": pid %" PRId64 ", pinned epoch ", slot, pid);
	if (pinned)
		printf("%" PRIu64, pinned);
	else
		fputs("none", stdout);
	printf(", %s\n", alive ? "alive" : "dead");
	return 0;
}

void ld_show_reader_slots(struct ld_lock *lk, bool sep)
{
	uint32_t used = 0;

	if (sep)
		putchar('\n');
	if (lk->rc == -ENOENT) {
		printf("reader slots: no lock file %s\n", lk->path);
	} else if (lk->rc == -ENODATA) {
		printf("reader slots: %s has no slot table\n", lk->path);
	} else if (lk->rc == 0) {
		printf("reader slots in %s:\n", lk->path);
		lk->rc = layout_lockfile_foreach(lk->lf, show_reader_slot, &used);
		if (lk->rc == 0 && used == 0)
			printf("  none in use\n");
	} else {
		printf("reader slots in %s: BAD\n", lk->path);
	}
}

void ld_show_verdict(const struct ld_verdict *vd)
{
	if (vd->ok)
		printf("verify: ok (epoch %" PRIu64 ", %" PRIu64 " concepts, %" PRIu64
		       " associations)\n",
		       vd->epoch, vd->concepts, vd->associations);
	else if (vd->have_offset)
		printf("verify: FAILED at offset %" PRIu64 ": %s\n", vd->pb.offset, vd->pb.what);
	else
		printf("verify: FAILED: %s\n", vd->pb.what);
}
