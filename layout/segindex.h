/* SPDX-License-Identifier: MIT */
/* Index segments: building one from commit blocks and older segments, and reading one in place. */
#ifndef LAYOUT_SEGINDEX_H
#define LAYOUT_SEGINDEX_H

/*
 * A segment (docs/FORMAT.md section 10) is the final state, over a range of
 * commit epochs, of every concept and association those epochs touched:
 * live ones with their values, deleted ones as tombstones. It is immutable
 * once written. Twelve sections, one of each kind, in kind order:
 *
 *   RECORDS     concept records, in the commit-record encoding, 8-aligned
 *   CONCEPTS    32-byte entries sorted by ordinal: id, ordinal, flags, record
 *   ID_HASH     u32 slots (entry index + 1), linear probing on the id
 *   EDGES       64-byte entries sorted by (src ordinal, dst ordinal, type)
 *   OUT_INDEX   16-byte slots: ordinal + 1, count, first EDGES index
 *   IN_INDEX    16-byte slots: ordinal + 1, count, first IN_LIST index
 *   IN_LIST     u32 EDGES indices grouped by dst ordinal
 *   TOMBSTONES  CRoaring frozen bitmap of the ordinals deleted in the range
 *   HNSW        the HNSW graph of the live concepts' unit vectors (hnsw.h)
 *   TERMS       token hash table of the text index (textidx.h)
 *   POSTINGS    frozen CRoaring bitmaps of ordinals, one per token
 *   CHUNK_CRCS  CRC32C of every 64 KiB chunk of the eleven sections above
 *
 * Readers map a segment and check only the header, the section table and
 * CHUNK_CRCS at open (a cost independent of the segment's size); every
 * other byte is checked, one 64 KiB chunk at a time, the first time a read
 * touches it (layout_segview keeps the set of checked chunks). A bad chunk
 * is SUTRA_ECORRUPT from the read that touches it, never a crash: every
 * index and offset read from a section is bounds-checked before use.
 *
 * Reading is in segview.c, building in segbuild.c; the entry layouts and
 * slot hashes both must agree on are in segindex_internal.h.
 */

#include <stddef.h>
#include <stdint.h>

#include <roaring/roaring.h>

#include "layout/hnsw.h"
#include "layout/layout.h"
#include "layout/textidx.h"

enum layout_section_kind {
	LAYOUT_SEC_RECORDS = 1,
	LAYOUT_SEC_CONCEPTS = 2,
	LAYOUT_SEC_ID_HASH = 3,
	LAYOUT_SEC_EDGES = 4,
	LAYOUT_SEC_OUT_INDEX = 5,
	LAYOUT_SEC_IN_INDEX = 6,
	LAYOUT_SEC_IN_LIST = 7,
	LAYOUT_SEC_TOMBSTONES = 8,
	LAYOUT_SEC_HNSW = 9,
	LAYOUT_SEC_TERMS = 10,
	LAYOUT_SEC_POSTINGS = 11,
	LAYOUT_SEC_CHUNK_CRCS = 12,
};

#define LAYOUT_SEG_SECTIONS 12u
#define LAYOUT_SEG_CHUNK (64u * 1024u)
#define LAYOUT_SEG_CONCEPT_SIZE 32u
#define LAYOUT_SEG_EDGE_SIZE 64u
#define LAYOUT_SEG_SLOT_SIZE 16u
#define LAYOUT_SEG_DELETED 1u /* flags bit of a concept or edge entry */

/* A concept entry (CONCEPTS). */
struct layout_seg_concept {
	uint8_t id[16];
	uint32_t ordinal;
	uint32_t flags;          /* LAYOUT_SEG_DELETED */
	uint64_t record;         /* file offset of the record; 0 when deleted */
};

/* An association entry (EDGES). */
struct layout_seg_edge {
	uint8_t src[16];
	uint8_t dst[16];
	uint32_t src_ordinal;
	uint32_t dst_ordinal;
	uint8_t type;
	uint8_t flags;           /* LAYOUT_SEG_DELETED */
	float confidence;
	float weight;
	uint64_t created_us;
};

/* ---- Reading a segment in place ------------------------------------------ */

struct layout_segview {
	const unsigned char *base;   /* the file mapping (borrowed) */
	uint64_t offset, length;     /* the block */
	uint32_t vector_dim;
	struct layout_segment hdr;
	uint64_t next_ordinal;       /* the segment header's */
	uint64_t sec_off[LAYOUT_SEG_SECTIONS + 1]; /* file offsets, by kind */
	uint64_t sec_len[LAYOUT_SEG_SECTIONS + 1];
	uint64_t chunk_first[LAYOUT_SEG_SECTIONS + 1]; /* index of a kind's first chunk */
	uint64_t nchunks;            /* chunks of kinds 1..11 */
	uint64_t *checked;           /* atomic bitmap over the chunks */
	uint32_t id_cap, out_cap, in_cap; /* slot counts, powers of two */
	uint64_t nconcepts, nedges, ninlist;
	const roaring_bitmap_t *tombstones; /* atomic; NULL until first used */
	struct layout_hnsw_view hnsw;    /* the graph, read in place */
	struct layout_textidx_view text; /* the text index, read in place */
};

/* Opens the segment block named by ref in the mapping base, whose bytes
 * below end are immutable: checks the block header, the payload (segment
 * header and section table), the layout of the twelve sections, the headers
 * of the HNSW and TERMS sections, and the CRC of
 * CHUNK_CRCS. Returns 0, SUTRA_ECORRUPT (with *pb) or -ENOMEM. */
int layout_segview_open(struct layout_segview *sv, const void *base, uint64_t end,
			const struct layout_segment_ref *ref, uint32_t vector_dim,
			struct sutra_detail *pb);
void layout_segview_close(struct layout_segview *sv);

/* Checks (once) the chunks holding bytes [off, off+len) of section kind.
 * Returns 0 or SUTRA_ECORRUPT. Thread-safe. */
int layout_segview_touch(struct layout_segview *sv, unsigned kind, uint64_t off, uint64_t len,
			 struct sutra_detail *pb);

/* Checks every chunk now (tools; verify). */
int layout_segview_check_all(struct layout_segview *sv, struct sutra_detail *pb);

/* Concept entry i (i < nconcepts). 0 or SUTRA_ECORRUPT. */
int layout_segview_concept(struct layout_segview *sv, uint64_t i, struct layout_seg_concept *c,
			   struct sutra_detail *pb);

/* The entry for id: 1 found (in *c, *index if not NULL), 0 absent, or
 * SUTRA_ECORRUPT. */
int layout_segview_find(struct layout_segview *sv, const uint8_t id[16],
			struct layout_seg_concept *c, uint64_t *index, struct sutra_detail *pb);

/* The entry for an ordinal (binary search over CONCEPTS): 1, 0 or error. */
int layout_segview_find_ordinal(struct layout_segview *sv, uint32_t ordinal,
				struct layout_seg_concept *c, struct sutra_detail *pb);

/* Decodes the record of a live concept entry. */
int layout_segview_record(struct layout_segview *sv, const struct layout_seg_concept *c,
			  struct layout_record *rec, struct sutra_detail *pb);

/* The associations of ordinal that leave it (out = 1: EDGES [*first,
 * *first + *count)) or arrive at it (out = 0: IN_LIST [*first, ...)). */
int layout_segview_adjacent(struct layout_segview *sv, int out, uint32_t ordinal,
			    uint64_t *first, uint32_t *count, struct sutra_detail *pb);

/* EDGES entry i, or the EDGES entry named by IN_LIST entry i. */
int layout_segview_edge(struct layout_segview *sv, uint64_t i, struct layout_seg_edge *e,
			struct sutra_detail *pb);
int layout_segview_in_edge(struct layout_segview *sv, uint64_t i, struct layout_seg_edge *e,
			   struct sutra_detail *pb);

/* The TOMBSTONES bitmap (checked in full on first use; owned by sv). */
int layout_segview_tombstones(struct layout_segview *sv, const roaring_bitmap_t **out,
			      struct sutra_detail *pb);

/* Whether ordinal was deleted in this segment's range: 1, 0, or error. */
int layout_segview_dead(struct layout_segview *sv, uint32_t ordinal, struct sutra_detail *pb);

/* Sets the replay state r (freshly initialised) to what the segments give,
 * oldest first: the state at the newest one's last_epoch. Every entry is
 * read through the view, so bad bytes are SUTRA_ECORRUPT. For recovery and
 * verify once the commit blocks below the tail may have been freed. */
int layout_replay_from_segments(struct layout_replay *r, struct layout_segview *const *segs,
				uint32_t n, struct sutra_detail *pb);

/* ---- Building one ----------------------------------------------------------- */

struct layout_segbuild_in {
	const void *base;          /* the file mapping */
	uint64_t end;              /* immutable bytes below it */
	uint32_t vector_dim;
	uint32_t hnsw_m;           /* the superblock's; clamped to 2..LAYOUT_HNSW_MAX_M */
	uint32_t hnsw_ef_construction; /* the superblock's; at least 1 */
	struct layout_segview **segs; /* inputs, oldest first (may be 0) */
	uint32_t nsegs;
	uint64_t from, to;         /* then the commit blocks in [from, to) */
	uint64_t first_epoch;      /* the range the result covers */
	uint64_t last_epoch;
	uint32_t next_ordinal;     /* at last_epoch */
	int base_segment;          /* 1: nothing older exists; drop tombstones */
	const int *cancel;         /* may be NULL; when it reads non-zero (atomic),
				      the build stops with -ECANCELED */
};

/* Builds a segment block in malloc'd memory (*out, *len; the block's epoch
 * is last_epoch). Every input byte is checked (chunk CRCs, block CRCs,
 * records). Returns 0, SUTRA_ECORRUPT (*pb), -ECANCELED or -ENOMEM. */
int layout_segment_build(const struct layout_segbuild_in *in, unsigned char **out, uint64_t *len,
			 struct sutra_detail *pb);

#endif /* LAYOUT_SEGINDEX_H */
