/* SPDX-License-Identifier: MIT */
/* The storage.dat format, version 1: encoders, decoders and validation. */
#ifndef LAYOUT_LAYOUT_H
#define LAYOUT_LAYOUT_H

/*
 * This library is the only code that parses or writes storage.dat; the
 * coordinator, the reader and the tools all go through it. docs/FORMAT.md is
 * the normative description; this header mirrors it.
 *
 * The file is: a superblock (page 0), two meta slots (pages 1 and 2), then a
 * log of 64-byte-aligned blocks starting at data_offset. Bytes below a meta
 * slot's published_end never change while a reader may see them; a commit
 * appends a commit block for epoch E+1 and writes it into the meta slot that
 * does not hold the newest durable epoch. Opening picks the newest meta slot
 * whose checksum and bounds check out and whose blocks since its durable_end
 * (one block in sync mode) are intact, so a torn or lost write falls back to
 * the durable epoch in the other slot.
 *
 * Every decoder here works on a byte range (pointer + length) that the
 * caller owns, typically a read-only mapping; none of them reads outside it,
 * whatever the bytes say: each offset and length taken from the file is
 * checked against the range before it is used. Failures are reported as
 * SUTRA_ECORRUPT (or SUTRA_EVERSION for a newer format) together with a
 * struct sutra_detail naming the file offset and what is wrong.
 *
 * The in-memory structs (struct layout_superblock, ...) are plain decoded
 * values; the struct layout_*_disk types only document the byte layout and
 * give the offsets to the explicit little-endian encoders. Nothing is ever
 * copied between a C struct and the disk with memcpy.
 */

#include <stddef.h>
#include <stdint.h>

#include "sutra/errors.h"
#include "util/detail.h"
#include "util/idmap.h"

/* ---- Constants --------------------------------------------------------- */

#define LAYOUT_MAGIC "SUTRADAT"
#define LAYOUT_FORMAT_VERSION 1u
#define LAYOUT_PAGE_SIZE 4096u
#define LAYOUT_SUPERBLOCK_SIZE 256u
#define LAYOUT_META_OFFSET 4096u
#define LAYOUT_META_SLOT_SIZE 4096u
#define LAYOUT_META_SLOT_COUNT 2u
#define LAYOUT_META_SIZE 1152u
#define LAYOUT_META_MAGIC 0x54454D53u /* "SMET" */
#define LAYOUT_DATA_OFFSET 12288u
#define LAYOUT_BLOCK_ALIGN 64u
#define LAYOUT_BLOCK_HEADER_SIZE 64u
#define LAYOUT_BLOCK_MAGIC 0x4B4C4253u /* "SBLK" */
#define LAYOUT_BLOCK_VERSION 1u
#define LAYOUT_MAX_SEGMENTS 64u
#define LAYOUT_RECORD_ALIGN 8u
#define LAYOUT_MAX_VECTOR_DIM 65536u
#define LAYOUT_MAX_CONTENT (64u << 20)  /* bytes of content in one concept */
#define LAYOUT_MAX_METADATA (64u << 20) /* bytes of metadata in one concept */
#define LAYOUT_MAX_BLOCK ((uint64_t)1 << 40)
#define LAYOUT_SEGMENT_HEADER_SIZE 48u
#define LAYOUT_SECTION_ENTRY_SIZE 32u
#define LAYOUT_SECTION_ALIGN 32u
#define LAYOUT_MAX_SECTIONS 256u

/* Feature flags: none defined in version 1. An unknown incompatible bit
 * makes a file unreadable (SUTRA_EVERSION); unknown compatible bits are
 * ignored by readers. */
#define LAYOUT_INCOMPAT_KNOWN 0ull
#define LAYOUT_COMPAT_KNOWN 0ull

enum layout_metric { LAYOUT_METRIC_COSINE = 0 };

enum layout_block_type {
	LAYOUT_BLOCK_COMMIT = 1,
	LAYOUT_BLOCK_SEGMENT = 2,
};

enum layout_record_type {
	LAYOUT_REC_CONCEPT = 1,
	LAYOUT_REC_ASSOCIATION = 2,
	LAYOUT_REC_CONCEPT_DELETE = 3,
	LAYOUT_REC_ASSOCIATION_DELETE = 4,
	LAYOUT_REC_REQUEST = 5, /* marker: the block applied a client's request */
};

#define LAYOUT_CONCEPT_HAS_EMBEDDING 0x1u
#define LAYOUT_CONCEPT_FLAGS_KNOWN LAYOUT_CONCEPT_HAS_EMBEDDING

/* ---- Byte layouts (documentation and offsets only) --------------------- */

struct layout_superblock_disk {
	char magic[8];               /*   0 "SUTRADAT" */
	uint32_t format_version;     /*   8 */
	uint32_t header_size;        /*  12 = 256 */
	uint64_t incompat_features;  /*  16 */
	uint64_t compat_features;    /*  24 */
	uint32_t page_size;          /*  32 */
	uint32_t vector_dim;         /*  36 */
	uint32_t metric;             /*  40 */
	uint16_t hnsw_m;             /*  44 */
	uint16_t hnsw_ef_construction; /* 46 */
	uint8_t uuid[16];            /*  48 */
	uint64_t created_us;         /*  64 */
	uint64_t meta_offset;        /*  72 */
	uint32_t meta_slot_size;     /*  80 */
	uint32_t meta_slot_count;    /*  84 */
	uint64_t data_offset;        /*  88 */
	uint32_t block_align;        /*  96 */
	uint8_t reserved[152];       /* 100 zero */
	uint32_t crc32c;             /* 252 over bytes 0..251 */
};
_Static_assert(sizeof(struct layout_superblock_disk) == LAYOUT_SUPERBLOCK_SIZE, "superblock");

struct layout_segment_ref_disk {
	uint64_t offset;             /*   0 block offset */
	uint64_t length;             /*   8 block length */
};
_Static_assert(sizeof(struct layout_segment_ref_disk) == 16, "segment ref");

struct layout_meta_disk {
	uint32_t magic;              /*   0 "SMET" */
	uint32_t length;             /*   4 = 1152 */
	uint64_t seq;                /*   8 even when stable, odd while written */
	uint64_t epoch;              /*  16 */
	uint64_t published_end;      /*  24 */
	uint64_t last_block_offset;  /*  32 commit block of this epoch, 0 at epoch 0 */
	uint64_t tail_start;         /*  40 first block not covered by a segment */
	uint64_t commit_time_us;     /*  48 */
	uint64_t concept_count;      /*  56 live concepts */
	uint64_t association_count;  /*  64 live associations */
	uint32_t next_ordinal;       /*  72 */
	uint32_t segment_count;      /*  76 */
	struct layout_segment_ref_disk segments[LAYOUT_MAX_SEGMENTS]; /* 80, unused entries zero */
	uint32_t last_block_crc32c;  /* 1104 payload CRC32C of that commit block, 0 at epoch 0 */
	uint32_t reserved0;          /* 1108 zero */
	uint64_t durable_end;        /* 1112 log below it was durable when this slot was written */
	uint64_t log_start;          /* 1120 first block a walk reads; 0: data_offset */
	uint8_t reserved[20];        /* 1128 zero */
	uint32_t crc32c;             /* 1148 over bytes 0..1147 */
};
_Static_assert(sizeof(struct layout_meta_disk) == LAYOUT_META_SIZE, "meta");

struct layout_block_header_disk {
	uint32_t magic;              /*   0 "SBLK" */
	uint16_t type;               /*   4 enum layout_block_type */
	uint16_t version;            /*   6 = 1 */
	uint64_t epoch;              /*   8 */
	uint64_t length;             /*  16 whole block, multiple of 64 */
	uint64_t payload_length;     /*  24 bytes after the header */
	uint32_t item_count;         /*  32 records (commit) or sections (segment) */
	uint32_t flags;              /*  36 zero in version 1 */
	uint32_t payload_crc32c;     /*  40 over the payload */
	uint8_t reserved[16];        /*  44 zero */
	uint32_t header_crc32c;      /*  60 over bytes 0..59 */
};
_Static_assert(sizeof(struct layout_block_header_disk) == LAYOUT_BLOCK_HEADER_SIZE, "block");

struct layout_record_header_disk {
	uint8_t type;                /*   0 enum layout_record_type */
	uint8_t flags;               /*   1 zero */
	uint16_t reserved;           /*   2 zero */
	uint32_t length;             /*   4 unpadded record length, header included */
};
_Static_assert(sizeof(struct layout_record_header_disk) == 8, "record header");

struct layout_concept_disk {
	struct layout_record_header_disk h; /* 0 */
	uint8_t id[16];              /*   8 */
	uint32_t ordinal;            /*  24 */
	uint32_t flags;              /*  28 LAYOUT_CONCEPT_* */
	float strength;              /*  32 */
	float confidence;            /*  36 */
	uint64_t created_us;         /*  40 */
	uint64_t updated_us;         /*  48 */
	uint32_t content_len;        /*  56 */
	uint32_t metadata_len;       /*  60 */
	uint32_t vector_dim;         /*  64 0 or the store's dimension */
	uint32_t reserved;           /*  68 zero */
	/* 72: vector_dim f32, then content, then metadata, then zero padding */
};
_Static_assert(sizeof(struct layout_concept_disk) == 72, "concept");

struct layout_association_disk {
	struct layout_record_header_disk h; /* 0 */
	uint8_t src[16];             /*   8 */
	uint8_t dst[16];             /*  24 */
	uint32_t src_ordinal;        /*  40 */
	uint32_t dst_ordinal;        /*  44 */
	uint8_t type;                /*  48 */
	uint8_t reserved[3];         /*  49 zero */
	float confidence;            /*  52 */
	float weight;                /*  56 */
	uint32_t reserved2;          /*  60 zero */
	uint64_t created_us;         /*  64 */
};
_Static_assert(sizeof(struct layout_association_disk) == 72, "association");

struct layout_concept_delete_disk {
	struct layout_record_header_disk h; /* 0 */
	uint8_t id[16];              /*   8 */
	uint32_t ordinal;            /*  24 */
	uint32_t reserved;           /*  28 zero */
};
_Static_assert(sizeof(struct layout_concept_delete_disk) == 32, "concept delete");

struct layout_association_delete_disk {
	struct layout_record_header_disk h; /* 0 */
	uint8_t src[16];             /*   8 */
	uint8_t dst[16];             /*  24 */
	uint32_t src_ordinal;        /*  40 */
	uint32_t dst_ordinal;        /*  44 */
	uint8_t type;                /*  48 */
	uint8_t reserved[7];         /*  49 zero */
};
_Static_assert(sizeof(struct layout_association_delete_disk) == 56, "association delete");

/* Changes nothing: says that this commit block applied the request
 * (client_id, seq) whose message had request_crc32c, so that a writer
 * restarted after a crash answers a resend of it instead of applying it
 * again. */
struct layout_request_disk {
	struct layout_record_header_disk h; /* 0 */
	uint64_t client_id;          /*   8 non-zero */
	uint64_t seq;                /*  16 */
	uint32_t request_crc32c;     /*  24 CRC32C of the whole request message */
	uint32_t reserved;           /*  28 zero */
};
_Static_assert(sizeof(struct layout_request_disk) == 32, "request marker");

/* 2: twelve sections, with the HNSW graph and the text index. */
#define LAYOUT_SEG_VERSION 2u

struct layout_segment_header_disk {
	uint32_t seg_version;        /*   0 = LAYOUT_SEG_VERSION */
	uint32_t section_count;      /*   4 */
	uint64_t first_epoch;        /*   8 */
	uint64_t last_epoch;         /*  16 */
	uint64_t concept_count;      /*  24 */
	uint64_t association_count;  /*  32 */
	uint32_t next_ordinal;       /*  40 at last_epoch */
	uint32_t reserved;           /*  44 zero */
};
_Static_assert(sizeof(struct layout_segment_header_disk) == LAYOUT_SEGMENT_HEADER_SIZE, "seg");

struct layout_section_entry_disk {
	uint32_t kind;               /*   0 defined by the read-path issue */
	uint32_t flags;              /*   4 */
	uint64_t offset;             /*   8 from the start of the block */
	uint64_t length;             /*  16 */
	uint32_t crc32c;             /*  24 over the section's bytes */
	uint32_t reserved;           /*  28 zero */
};
_Static_assert(sizeof(struct layout_section_entry_disk) == LAYOUT_SECTION_ENTRY_SIZE, "section");

/* ---- Decoded values ---------------------------------------------------- */

/* Where a check failed: the file offset of the first bad byte (or of the
 * structure that is wrong) and a sentence saying what. */
struct layout_superblock {
	uint32_t format_version;
	uint64_t incompat_features;
	uint64_t compat_features;
	uint32_t page_size;
	uint32_t vector_dim;
	uint32_t metric;
	uint16_t hnsw_m;
	uint16_t hnsw_ef_construction;
	uint8_t uuid[16];
	uint64_t created_us;
	uint64_t meta_offset;
	uint32_t meta_slot_size;
	uint32_t meta_slot_count;
	uint64_t data_offset;
	uint32_t block_align;
};

struct layout_segment_ref {
	uint64_t offset;
	uint64_t length;
};

struct layout_meta {
	uint64_t seq;
	uint64_t epoch;
	uint64_t published_end;
	uint64_t last_block_offset;
	uint32_t last_block_crc32c;
	uint64_t durable_end;
	uint64_t log_start; /* as stored: 0 means data_offset (layout_log_start) */
	uint64_t tail_start;
	uint64_t commit_time_us;
	uint64_t concept_count;
	uint64_t association_count;
	uint32_t next_ordinal;
	uint32_t segment_count;
	struct layout_segment_ref segments[LAYOUT_MAX_SEGMENTS];
};

struct layout_block {
	uint64_t offset; /* file offset of the header */
	uint16_t type;
	uint16_t version;
	uint64_t epoch;
	uint64_t length;
	uint64_t payload_length;
	uint32_t item_count;
	uint32_t flags;
	uint32_t payload_crc32c;
};

/* A concept as stored. Pointers borrow from the byte range that was decoded
 * and stay valid as long as it does. embedding points at vector_dim
 * little-endian f32 values (8-byte aligned within the file) or is NULL. */
struct layout_concept {
	uint8_t id[16];
	uint32_t ordinal;
	uint32_t flags;
	float strength;
	float confidence;
	uint64_t created_us;
	uint64_t updated_us;
	const void *embedding;
	uint32_t vector_dim;
	const char *content;
	uint32_t content_len;
	const void *metadata;
	uint32_t metadata_len;
};

struct layout_association {
	uint8_t src[16];
	uint8_t dst[16];
	uint32_t src_ordinal;
	uint32_t dst_ordinal;
	uint8_t type;
	float confidence;
	float weight;
	uint64_t created_us;
};

/* One record of a commit block. For LAYOUT_REC_CONCEPT_DELETE only
 * concept.id and concept.ordinal are set; for LAYOUT_REC_ASSOCIATION_DELETE
 * only the key fields of association (src, dst, ordinals, type). */
struct layout_record {
	uint8_t type;
	uint64_t offset; /* file offset of the record */
	uint32_t length; /* unpadded */
	union {
		struct layout_concept concept;
		struct layout_association association;
		struct {
			uint64_t client_id;
			uint64_t seq;
			uint32_t request_crc32c;
		} request;
	} u;
};

struct layout_section {
	uint32_t kind;
	uint32_t flags;
	uint64_t offset;
	uint64_t length;
	uint32_t crc32c;
};

struct layout_segment {
	uint32_t seg_version;
	uint32_t section_count;
	uint64_t first_epoch;
	uint64_t last_epoch;
	uint64_t concept_count;
	uint64_t association_count;
	uint32_t next_ordinal;
};

/* ---- Superblock (superblock.c) ----------------------------------------- */

/* Fills *sb with the defaults of a new store of the given dimension. */
void layout_superblock_defaults(struct layout_superblock *sb, uint32_t vector_dim);

/* Encodes into exactly LAYOUT_SUPERBLOCK_SIZE bytes, computing the CRC. */
void layout_superblock_encode(const struct layout_superblock *sb, void *out);

/* Decodes and checks the first LAYOUT_SUPERBLOCK_SIZE bytes of buf (len is
 * what the caller has). Returns 0, SUTRA_ECORRUPT (bad magic, CRC, geometry)
 * or SUTRA_EVERSION (newer version or unknown incompatible feature). */
int layout_superblock_decode(const void *buf, size_t len, struct layout_superblock *sb,
			     struct sutra_detail *pb);

/* ---- Meta slots (meta.c) ----------------------------------------------- */

/* Encodes into exactly LAYOUT_META_SIZE bytes, computing the CRC. */
void layout_meta_encode(const struct layout_meta *m, void *out);

enum layout_slot_state {
	LAYOUT_SLOT_EMPTY = 0,   /* all zero: never written */
	LAYOUT_SLOT_VALID = 1,   /* decoded, CRC good */
	LAYOUT_SLOT_CORRUPT = 2, /* neither: torn write or damage */
};

/* Decodes one meta slot of slot_size bytes at file offset base (for the
 * problem report). Returns the slot state; *m is filled when VALID and the
 * reason is in *pb when CORRUPT. Checks the CRC, magic, length, even seq,
 * zero reserved bytes and zero rest of the slot, segment_count bound. */
enum layout_slot_state layout_meta_decode(const void *slot, size_t slot_size, uint64_t base,
					  struct layout_meta *m, struct sutra_detail *pb);

/* ---- Blocks and records (block.c) -------------------------------------- */

/* Decodes the block header at file offset off of the range [buf, buf+size).
 * Checks magic, header CRC, version, alignment, reserved bytes, and that the
 * whole block lies within size. Does not read the payload. */
int layout_block_decode(const void *buf, uint64_t size, uint64_t off, struct layout_block *blk,
			struct sutra_detail *pb);

/* Encodes a block header (LAYOUT_BLOCK_HEADER_SIZE bytes) from blk's type,
 * epoch, length, payload_length, item_count and payload_crc32c, computing
 * the header CRC; flags and reserved bytes are written as zero. */
void layout_block_header_encode(const struct layout_block *blk, void *out);

/* Checks the payload CRC and that padding after the payload is zero. */
int layout_block_check_payload(const void *buf, const struct layout_block *blk,
			       struct sutra_detail *pb);

/* Iterates over the records of a decoded, payload-checked commit block. */
struct layout_record_iter {
	const unsigned char *base; /* the whole mapped range */
	uint64_t pos;              /* file offset of the next record */
	uint64_t end;              /* file offset of the payload end */
	uint32_t left;             /* records still expected */
	uint32_t vector_dim;       /* the store's */
	int trusted;               /* skip value checks (see layout_record_at_trusted) */
};

void layout_records_init(struct layout_record_iter *it, const void *buf,
			 const struct layout_block *blk, uint32_t vector_dim);

/* Returns 1 with *rec filled, 0 at the end (after checking the payload held
 * exactly item_count records), or SUTRA_ECORRUPT. Checks each record's
 * bounds, reserved bytes, padding, lengths, dimension, finite floats and
 * UTF-8 content. */
int layout_records_next(struct layout_record_iter *it, struct layout_record *rec,
			struct sutra_detail *pb);

/* Decodes the one record at file offset off (found through an index),
 * with every check of layout_records_next, reading nothing at or past end
 * (the published end it was found under). Returns 0 or SUTRA_ECORRUPT. */
int layout_record_at(const void *buf, uint64_t end, uint64_t off, uint32_t vector_dim,
		     struct layout_record *rec, struct sutra_detail *pb);

/* layout_record_at for a record whose values were checked before and whose
 * bytes a checksum has vouched for since (a commit block indexed earlier, a
 * segment chunk whose CRC matched): every length, bound and reserved field
 * is still checked, so it never reads out of range, but not the values
 * themselves (finite floats, UTF-8 content), which would cost a pass over
 * the embedding and the content on every read. */
int layout_record_at_trusted(const void *buf, uint64_t end, uint64_t off, uint32_t vector_dim,
			     struct layout_record *rec, struct sutra_detail *pb);

/* Builds one commit block in memory. */
struct layout_builder {
	unsigned char *buf;
	size_t len; /* bytes used, header included */
	size_t cap;
	uint32_t items;
	uint32_t vector_dim;
};

void layout_builder_init(struct layout_builder *b, uint32_t vector_dim);
void layout_builder_finish(struct layout_builder *b);
/* Drops the records added so far, keeping the allocation. */
void layout_builder_reset(struct layout_builder *b);

/* Appends a record. The values are checked as a reader would check them:
 * SUTRA_EDIM (embedding of another dimension), SUTRA_EVALUE (NaN/Inf, bad
 * UTF-8, unknown flags), SUTRA_ETOOBIG (content/metadata over the limits),
 * -ENOMEM. On error the builder is unchanged. The ordinals are the caller's
 * business (the coordinator assigns them). embedding, when not NULL, points
 * at vector_dim host floats. */
int layout_builder_add_concept(struct layout_builder *b, const struct layout_concept *c);
/* The same for a concept whose values were already checked exactly as
 * above by the caller (the protocol decoder checks finite floats and UTF-8
 * as it decodes a request): only the dimension and the sizes are checked
 * again, and c->embedding, when not NULL, points at vector_dim
 * little-endian floats (the request's bytes), copied into the record as
 * they are. The coordinator's learn path uses it so that an embedding is
 * validated once and copied once, from the request into the block. */
int layout_builder_add_concept_checked(struct layout_builder *b, const struct layout_concept *c);
int layout_builder_add_association(struct layout_builder *b, const struct layout_association *a);
int layout_builder_add_concept_delete(struct layout_builder *b, const uint8_t id[16],
				      uint32_t ordinal);
int layout_builder_add_association_delete(struct layout_builder *b,
					  const struct layout_association *key);
/* A request marker (client_id must not be 0: SUTRA_EVALUE). */
int layout_builder_add_request(struct layout_builder *b, uint64_t client_id, uint64_t seq,
			       uint32_t request_crc32c);

/* Seals the block for epoch: writes the header with both CRCs and zero
 * padding. *data and *len borrow the builder's buffer until the next add/reset/
 * finish. The length is a multiple of LAYOUT_BLOCK_ALIGN. */
int layout_builder_seal(struct layout_builder *b, uint64_t epoch, const void **data, size_t *len);

/* ---- Segments (segment.c) ----------------------------------------------- */

/* Decodes and checks the segment header and section table of a type-2 block
 * whose payload CRC has been checked, and each section's bounds, alignment,
 * overlap and CRC. If sections is not NULL it receives up to max entries. */
int layout_segment_decode(const void *buf, const struct layout_block *blk,
			  struct layout_segment *seg, struct layout_section *sections,
			  uint32_t max, struct sutra_detail *pb);

/* layout_segment_decode without the sections' CRCs (a reader checks those
 * lazily, see layout/segindex.h). */
int layout_segment_decode_table(const void *buf, const struct layout_block *blk,
				struct layout_segment *seg, struct layout_section *sections,
				uint32_t max, struct sutra_detail *pb);

/* Returns the offset, from the block start, where the first section of a
 * segment with n sections may begin. */
uint64_t layout_segment_data_start(uint32_t n);

/* Seals a segment block of length bytes (a multiple of LAYOUT_BLOCK_ALIGN)
 * in block, whose sections' bytes the caller has already placed at
 * sections[i].offset: computes each section's CRC into sections[i].crc32c,
 * writes the segment header, the section table and the block header.
 * Returns 0, or SUTRA_EVALUE when the sections do not fit, overlap or are
 * misaligned (the same rules layout_segment_decode checks). */
int layout_segment_seal(void *block, uint64_t length, uint64_t epoch,
			const struct layout_segment *seg, struct layout_section *sections,
			uint32_t n);

/* ---- Opening a whole file (file.c) ------------------------------------- */

struct layout_view {
	const unsigned char *base; /* borrowed */
	uint64_t size;
	struct layout_superblock sb;
	struct layout_meta slots[LAYOUT_META_SLOT_COUNT];
	enum layout_slot_state slot_state[LAYOUT_META_SLOT_COUNT];
	struct sutra_detail slot_problem[LAYOUT_META_SLOT_COUNT];
	int current;   /* index of the slot in use */
	int fell_back; /* 1 when a newer valid slot was rejected */
	struct sutra_detail fallback_problem; /* why, when fell_back */
	struct layout_meta meta; /* copy of slots[current] */
};

/* The mode storage.dat is created with: the coordinator's user writes, the
 * store's group (API processes) reads, nobody else. */
#define LAYOUT_FILE_MODE 0640

/* The alignment in memory an image of the file must have. Sections are
 * read where they lie: CRoaring's frozen bitmap views and the HNSW view
 * need their sections 32-byte aligned in memory, as they are in the file,
 * and records are 64-byte aligned in the file. A mapping is page-aligned;
 * an image in a buffer must come from aligned_alloc(LAYOUT_IMAGE_ALIGN, ...)
 * or the like (malloc gives only 16). */
#define LAYOUT_IMAGE_ALIGN 64

/* Opens the store held in [buf, buf+size), which must be
 * LAYOUT_IMAGE_ALIGN-aligned (else -EINVAL, with a sentence in *pb: the
 * caller's mistake, not the file's): checks the superblock, decodes
 * both meta slots, and picks the newest slot whose published_end lies in
 * the file and whose blocks from durable_end to published_end check out
 * (headers, payload CRCs, contiguous commit epochs, the last one being the
 * slot's epoch with the payload CRC it names). Cost is the bytes written
 * since the last sync, not the store's size. Returns 0, -EINVAL,
 * SUTRA_ECORRUPT or SUTRA_EVERSION with the reason in *pb. */
int layout_open(const void *buf, uint64_t size, struct layout_view *v, struct sutra_detail *pb);

/* layout_open for a file that the coordinator may be writing right now:
 * map is a read-only mapping of the file fd that may extend past its end
 * (map_len bytes). Each meta slot is copied to private memory under its
 * seq (FORMAT.md 5.3) and retried while it reads as torn; the file size is
 * taken (fstat) after the slots, so every block they name lies inside it.
 * The view's slots are private copies; only bytes below size (the file size
 * then, at most map_len) may be read through the mapping, and the bytes
 * below the chosen published_end never change. Returns as layout_open, or
 * -errno from fstat. */
int layout_open_live(const void *map, uint64_t map_len, int fd, struct layout_view *v,
		     struct sutra_detail *pb);

/* A read-only mapping of a whole file, for the tools and tests. */
struct layout_map {
	int fd;
	const unsigned char *base;
	uint64_t size;
};

/* Maps path read-only. Returns 0 or -errno. An empty file maps as size 0. */
int layout_map_open(const char *path, struct layout_map *map);
void layout_map_close(struct layout_map *map);

/* Writes a new empty store (superblock, meta slot 0 at epoch 0, zero slot 1)
 * to path, which must not exist, and fsyncs it and its directory. Returns 0,
 * -EEXIST, or another -errno. */
int layout_create_file(const char *path, const struct layout_superblock *sb, uint64_t now_us);

/* Encodes pages 0..2 of a new store (LAYOUT_DATA_OFFSET bytes) into out. */
void layout_encode_empty(const struct layout_superblock *sb, uint64_t now_us, void *out);

/* ---- Replay and verification (replay.c, verify.c) ---------------------- */

/* The logical state obtained by applying commit blocks in order: which ids
 * are live with which ordinal, which associations exist, degrees. Used to
 * check the semantic rules of the log and by the coordinator at recovery. */
struct layout_replay {
	uint32_t vector_dim;
	uint64_t epoch;
	uint64_t concept_count;
	uint64_t association_count;
	uint32_t next_ordinal;
	struct util_idmap ids;   /* id -> ordinal */
	struct util_idmap edges; /* (src ord, dst ord, type) -> 1 */
	uint32_t *degree;         /* live edges touching each ordinal */
	size_t degree_cap;
};

int layout_replay_init(struct layout_replay *r, uint32_t vector_dim);
void layout_replay_finish(struct layout_replay *r);

/* Applies one commit block (header and payload already checked). The block
 * must carry epoch r->epoch + 1. Returns 0, SUTRA_ECORRUPT (a rule of
 * docs/FORMAT.md section "Replay rules" is broken), or -ENOMEM. On error the
 * replay state is unspecified and should be discarded. */
int layout_replay_block(struct layout_replay *r, const void *buf, const struct layout_block *blk,
			struct sutra_detail *pb);

/* Walks every block from data_offset to published_end of the current meta,
 * checking each block, every record and the replay rules, each segment
 * referenced by the meta, and that the replayed counts equal the meta's.
 * Also checks the other meta slot. Returns 0 when the file is clean, else
 * the first error with its offset in *pb. If r is not NULL it must be
 * initialised, and is left holding the replayed state. */
int layout_verify(const struct layout_view *v, struct layout_replay *r, struct sutra_detail *pb);

/* layout_verify without the checks of the other meta slot (and without
 * treating a fall-back as a finding): the published log of the current
 * epoch alone. For the writer's recovery, which repairs that slot. */
int layout_verify_log(const struct layout_view *v, struct layout_replay *r,
		      struct sutra_detail *pb);

/* Scans the bytes after published_end for blocks that would extend the log
 * (commit epochs meta.epoch+1, +2, ... contiguous). Returns the number of
 * such valid blocks and stores the end of the last one in *end (the
 * published_end when none). Never fails: the first bad block ends the scan,
 * and its reason goes to *pb when pb is not NULL (offset UINT64_MAX if the
 * tail is empty). */
uint64_t layout_scan_tail(const struct layout_view *v, uint64_t *end, struct sutra_detail *pb);

/* The 16-byte key of an association: src ordinal, dst ordinal (both
 * little-endian u32), type, zeros. Used by replay, the writer's state and
 * the reader's edge index alike. */
static inline void layout_edge_key(uint8_t key[16], uint32_t src, uint32_t dst, uint8_t type)
{
	for (int i = 0; i < 16; i++)
		key[i] = 0;
	for (int i = 0; i < 4; i++) {
		key[i] = (uint8_t)(src >> (8 * i));
		key[4 + i] = (uint8_t)(dst >> (8 * i));
	}
	key[8] = type;
}

/* Where walks of the log start (FORMAT.md 5, 7.4): the bytes before it
 * may have been freed, except the segment blocks a meta lists. */
static inline uint64_t layout_log_start(const struct layout_superblock *sb,
					const struct layout_meta *m)
{
	return m->log_start ? m->log_start : sb->data_offset;
}

static inline uint64_t layout_align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

#endif /* LAYOUT_LAYOUT_H */
