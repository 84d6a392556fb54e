/* SPDX-License-Identifier: MIT */
/* sutra-layoutdump's private header: what main.c gathers and what show.c and json.c print. */
#ifndef TOOLS_LAYOUTDUMP_H
#define TOOLS_LAYOUTDUMP_H

/*
 * main.c parses the arguments, maps the file and gathers what there is to
 * show into a struct dump (layout_open()'s view, or when that fails the
 * superblock and meta slots decoded again, so a damaged file still shows
 * what it can), then hands it to one of two printers: show.c for text,
 * json.c for one JSON document. Both print the same things in the same
 * order, walking the blocks and records themselves through the layout
 * library's iterators; main.c then adds the reader slots and the verdict
 * and sets the exit status. The printers write only to stdout and decide
 * nothing about the status: what failed is in the data they are given.
 *
 * The output of both is pinned byte for byte by tests/tools/golden.sh.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout/layout.h"
#include "layout/lockfile.h"

#define PROG "sutra-layoutdump"

/* Without --full, contents are cut to this many bytes and embeddings to
 * this many values, so that one record stays on a few short lines. */
#define LD_CONTENT_PREVIEW 60u
#define LD_EMBEDDING_PREVIEW 4u

/* Deepest JSON nesting used: root, blocks, block, records, record, embedding. */
#define LD_JSON_MAX_DEPTH 8

struct ld_options {
	bool records;
	bool full;
	bool json;
	bool verify;
	bool quiet;
	bool slots;
	const char *path;
};

/* Everything known about the file (main.c, gather()). */
struct ld_dump {
	const struct ld_options *opt;
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
	bool jmember[LD_JSON_MAX_DEPTH];
};

/* The result of --verify. */
struct ld_verdict {
	bool ok;
	bool have_offset;
	struct sutra_detail pb; /* what, and offset when have_offset */
	uint64_t epoch;
	uint64_t concepts;
	uint64_t associations;
};

/* PATH.lock as opened for --slots. rc is the open's result and, once the
 * printer has walked the slots, the walk's. */
struct ld_lock {
	const char *path;
	struct layout_lockfile *lf;        /* when the open succeeded */
	int rc;
	const struct sutra_detail *pb;     /* the open's detail, or NULL */
};

/* ---- main.c: reading, for both printers ---------------------------------- */

/* A failure with no struct sutra_detail of its own (in practice -ENOMEM),
 * made into one so that it is reported the same way. */
void ld_errno_problem(int rc, uint64_t off, struct sutra_detail *pb);

/* layout_block_check_payload(), with such failures made into a detail. */
int ld_check_payload(const struct ld_dump *d, const struct layout_block *blk,
		     struct sutra_detail *pb);

/* layout_segment_decode() into sections[LAYOUT_MAX_SECTIONS], likewise. */
int ld_decode_segment(const struct ld_dump *d, const struct layout_block *blk,
		      struct layout_segment *seg, struct layout_section *sections,
		      struct sutra_detail *pb);

/* The next published block at *off (starting from layout_log_start()):
 * 1 with *blk (and *off moved past it), 0 at published_end, -1 when its
 * header does not decode (*pb says why; the walk cannot go on). */
int ld_next_block(const struct ld_dump *d, uint64_t *off, struct layout_block *blk,
		  struct sutra_detail *pb);

/* What lies after published_end. */
struct ld_tail {
	uint64_t offset, bytes, extending, end;
	bool stopped;
	struct sutra_detail pb; /* why the scan stopped, when it did */
};
void ld_scan_tail(const struct ld_dump *d, struct ld_tail *t);

/* ---- show.c: names and formats both printers use ------------------------- */

const char *ld_iso_time(uint64_t us, char *buf, size_t cap);  /* UTC, never local */
const char *ld_metric_name(uint32_t metric);                  /* NULL if unknown */
const char *ld_block_type_name(uint16_t type);                /* NULL if unknown */
const char *ld_assoc_type_name(uint8_t type);                 /* NULL if unknown */
const char *ld_slot_state_name(enum layout_slot_state st);
const char *ld_record_kind(uint8_t type);                     /* NULL if unknown */

/* ---- show.c: the text views ------------------------------------------------ */

/* The file, superblock, meta slots, blocks and tail. */
void ld_show_file(struct ld_dump *d);
/* The reader slots; sep: text came before (an empty line separates them). */
void ld_show_reader_slots(struct ld_lock *lk, bool sep);
void ld_show_verdict(const struct ld_verdict *vd);

/* ---- json.c: the JSON document --------------------------------------------- */

/*
 * Writes [s, s+len) between double quotes, escaped as in JSON: quote and
 * backslash, C0 and C1 control characters and DEL; other valid UTF-8 is
 * copied as is. A byte that is not part of valid UTF-8 becomes \uFFFD in
 * JSON (which must be valid Unicode) and \xNN in text (which keeps the
 * byte). Stops before the character that would pass limit bytes, so a
 * multi-byte character is never cut; returns the bytes consumed.
 */
size_t ld_put_quoted(const void *data, size_t len, size_t limit, bool json);

/* Opens the root object and writes the file's members: its path, its size
 * when mapped, the dump itself when mapped and dump is set, and the open
 * error. */
void ld_json_file(struct ld_dump *d, bool mapped, bool dump);
void ld_json_reader_slots(struct ld_dump *d, struct ld_lock *lk);
void ld_json_verdict(struct ld_dump *d, const struct ld_verdict *vd);
/* Closes the root object. */
void ld_json_end(struct ld_dump *d);

#endif /* TOOLS_LAYOUTDUMP_H */
