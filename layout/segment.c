/* SPDX-License-Identifier: MIT */
/* Segment block header and section table decoder. */
#include "layout/layout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/crc32c.h"
#include "util/endian.h"

#define SH(f) offsetof(struct layout_segment_header_disk, f)
#define SE(f) offsetof(struct layout_section_entry_disk, f)

static int by_offset(const void *a, const void *b)
{
	const struct layout_section *x = a, *y = b;
	return (x->offset > y->offset) - (x->offset < y->offset);
}

static int decode(const void *buf, const struct layout_block *blk, struct layout_segment *out,
		  struct layout_section *sections, uint32_t max, int check_crc,
		  struct sutra_detail *pb)
{
	const unsigned char *blockp = (const unsigned char *)buf + blk->offset;
	const unsigned char *p = blockp + LAYOUT_BLOCK_HEADER_SIZE;
	uint64_t poff = blk->offset + LAYOUT_BLOCK_HEADER_SIZE;
	struct layout_segment seg;

	if (blk->type != LAYOUT_BLOCK_SEGMENT) {
		util_detail_set(pb, blk->offset, "block is not a segment");
		return SUTRA_ECORRUPT;
	}
	if (blk->payload_length < LAYOUT_SEGMENT_HEADER_SIZE) {
		util_detail_set(pb, poff, "segment payload too short for its header");
		return SUTRA_ECORRUPT;
	}
	seg.seg_version = util_get_le32(p + SH(seg_version));
	seg.section_count = util_get_le32(p + SH(section_count));
	seg.first_epoch = util_get_le64(p + SH(first_epoch));
	seg.last_epoch = util_get_le64(p + SH(last_epoch));
	seg.concept_count = util_get_le64(p + SH(concept_count));
	seg.association_count = util_get_le64(p + SH(association_count));
	seg.next_ordinal = util_get_le32(p + SH(next_ordinal));
	if (seg.seg_version != LAYOUT_SEG_VERSION) {
		util_detail_set(pb, poff + SH(seg_version),
				   seg.seg_version == 1
					   ? "segment version 1 (from a build without vector and text "
					     "indexes) is not read by this one: recreate the store"
					   : "unknown segment version %u",
				   seg.seg_version);
		return SUTRA_ECORRUPT;
	}
	if (util_get_le32(p + SH(reserved))) {
		util_detail_set(pb, poff + SH(reserved), "segment reserved field is not zero");
		return SUTRA_ECORRUPT;
	}
	if (seg.first_epoch > seg.last_epoch || seg.last_epoch > blk->epoch) {
		util_detail_set(pb, poff + SH(first_epoch), "segment epoch range is inconsistent");
		return SUTRA_ECORRUPT;
	}
	if (seg.section_count > LAYOUT_MAX_SECTIONS || seg.section_count != blk->item_count ||
	    blk->payload_length != LAYOUT_SEGMENT_HEADER_SIZE +
					   (uint64_t)seg.section_count * LAYOUT_SECTION_ENTRY_SIZE) {
		util_detail_set(pb, poff + SH(section_count),
				   "segment section count %u does not match its payload",
				   seg.section_count);
		return SUTRA_ECORRUPT;
	}

	/* Entries in file order, then a copy sorted by offset for the overlap check. */
	struct layout_section *all = calloc(2 * (size_t)seg.section_count + 1, sizeof *all);
	if (!all)
		return -ENOMEM;
	int rc = 0;
	uint64_t data_start = layout_align_up(LAYOUT_BLOCK_HEADER_SIZE + blk->payload_length,
					      LAYOUT_SECTION_ALIGN);
	for (uint32_t i = 0; i < seg.section_count; i++) {
		const unsigned char *e = p + LAYOUT_SEGMENT_HEADER_SIZE + i * LAYOUT_SECTION_ENTRY_SIZE;
		uint64_t eoff = poff + LAYOUT_SEGMENT_HEADER_SIZE + i * LAYOUT_SECTION_ENTRY_SIZE;
		struct layout_section *s = &all[i];
		s->kind = util_get_le32(e + SE(kind));
		s->flags = util_get_le32(e + SE(flags));
		s->offset = util_get_le64(e + SE(offset));
		s->length = util_get_le64(e + SE(length));
		s->crc32c = util_get_le32(e + SE(crc32c));
		if (util_get_le32(e + SE(reserved))) {
			util_detail_set(pb, eoff + SE(reserved), "section reserved field not zero");
			rc = SUTRA_ECORRUPT;
			goto out;
		}
		if (s->offset % LAYOUT_SECTION_ALIGN || s->offset < data_start ||
		    s->offset > blk->length || s->length > blk->length - s->offset) {
			util_detail_set(pb, eoff + SE(offset),
					   "section %u lies outside its block or is misaligned", i);
			rc = SUTRA_ECORRUPT;
			goto out;
		}
		uint32_t crc = check_crc ? util_crc32c(0, blockp + s->offset, (size_t)s->length)
					 : s->crc32c;
		if (crc != s->crc32c) {
			util_detail_set(pb, blk->offset + s->offset,
					   "section %u checksum mismatch (stored %08x, computed %08x)",
					   i, s->crc32c, crc);
			rc = SUTRA_ECORRUPT;
			goto out;
		}
	}
	struct layout_section *sorted = all + seg.section_count;
	memcpy(sorted, all, seg.section_count * sizeof *all);
	qsort(sorted, seg.section_count, sizeof *sorted, by_offset);
	for (uint32_t i = 1; i < seg.section_count; i++) {
		if (sorted[i - 1].offset + sorted[i - 1].length > sorted[i].offset) {
			util_detail_set(pb, blk->offset + sorted[i].offset,
					   "segment sections overlap");
			rc = SUTRA_ECORRUPT;
			goto out;
		}
	}
	if (sections) {
		for (uint32_t i = 0; i < seg.section_count && i < max; i++)
			sections[i] = all[i];
	}
	*out = seg;
out:
	free(all);
	return rc;
}

int layout_segment_decode(const void *buf, const struct layout_block *blk,
			  struct layout_segment *seg, struct layout_section *sections,
			  uint32_t max, struct sutra_detail *pb)
{
	return decode(buf, blk, seg, sections, max, 1, pb);
}

int layout_segment_decode_table(const void *buf, const struct layout_block *blk,
				struct layout_segment *seg, struct layout_section *sections,
				uint32_t max, struct sutra_detail *pb)
{
	return decode(buf, blk, seg, sections, max, 0, pb);
}

uint64_t layout_segment_data_start(uint32_t n)
{
	return layout_align_up(LAYOUT_BLOCK_HEADER_SIZE + LAYOUT_SEGMENT_HEADER_SIZE +
				       (uint64_t)n * LAYOUT_SECTION_ENTRY_SIZE,
			       LAYOUT_SECTION_ALIGN);
}

int layout_segment_seal(void *block, uint64_t length, uint64_t epoch,
			const struct layout_segment *seg, struct layout_section *sections,
			uint32_t n)
{
	unsigned char *b = block;
	unsigned char *p = b + LAYOUT_BLOCK_HEADER_SIZE;
	uint64_t payload = LAYOUT_SEGMENT_HEADER_SIZE + (uint64_t)n * LAYOUT_SECTION_ENTRY_SIZE;
	uint64_t start = layout_segment_data_start(n);

	if (n > LAYOUT_MAX_SECTIONS || length % LAYOUT_BLOCK_ALIGN || length < start ||
	    length > LAYOUT_MAX_BLOCK || seg->first_epoch > seg->last_epoch ||
	    seg->last_epoch > epoch)
		return SUTRA_EVALUE;
	for (uint32_t i = 0; i < n; i++) {
		const struct layout_section *s = &sections[i];
		if (s->offset % LAYOUT_SECTION_ALIGN || s->offset < start || s->offset > length ||
		    s->length > length - s->offset)
			return SUTRA_EVALUE;
		for (uint32_t j = 0; j < i; j++)
			if (s->offset < sections[j].offset + sections[j].length &&
			    sections[j].offset < s->offset + s->length)
				return SUTRA_EVALUE;
	}
	memset(b, 0, (size_t)start);
	util_put_le32(p + SH(seg_version), LAYOUT_SEG_VERSION);
	util_put_le32(p + SH(section_count), n);
	util_put_le64(p + SH(first_epoch), seg->first_epoch);
	util_put_le64(p + SH(last_epoch), seg->last_epoch);
	util_put_le64(p + SH(concept_count), seg->concept_count);
	util_put_le64(p + SH(association_count), seg->association_count);
	util_put_le32(p + SH(next_ordinal), seg->next_ordinal);
	for (uint32_t i = 0; i < n; i++) {
		unsigned char *e = p + LAYOUT_SEGMENT_HEADER_SIZE + i * LAYOUT_SECTION_ENTRY_SIZE;
		struct layout_section *s = &sections[i];
		s->crc32c = util_crc32c(0, b + s->offset, (size_t)s->length);
		util_put_le32(e + SE(kind), s->kind);
		util_put_le32(e + SE(flags), s->flags);
		util_put_le64(e + SE(offset), s->offset);
		util_put_le64(e + SE(length), s->length);
		util_put_le32(e + SE(crc32c), s->crc32c);
	}
	struct layout_block blk = {
		.type = LAYOUT_BLOCK_SEGMENT,
		.epoch = epoch,
		.length = length,
		.payload_length = payload,
		.item_count = n,
		.payload_crc32c = util_crc32c(0, p, (size_t)payload),
	};
	layout_block_header_encode(&blk, b);
	return 0;
}
