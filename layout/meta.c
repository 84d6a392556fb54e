/* SPDX-License-Identifier: MIT */
/* Meta slot encoder and decoder. */
#include "layout/layout.h"

#include <string.h>

#include "util/crc32c.h"
#include "util/endian.h"

#define MD(f) offsetof(struct layout_meta_disk, f)

void layout_meta_encode(const struct layout_meta *m, void *out)
{
	unsigned char *b = out;

	memset(b, 0, LAYOUT_META_SIZE);
	util_put_le32(b + MD(magic), LAYOUT_META_MAGIC);
	util_put_le32(b + MD(length), LAYOUT_META_SIZE);
	util_put_le64(b + MD(seq), m->seq);
	util_put_le64(b + MD(epoch), m->epoch);
	util_put_le64(b + MD(published_end), m->published_end);
	util_put_le64(b + MD(last_block_offset), m->last_block_offset);
	util_put_le32(b + MD(last_block_crc32c), m->last_block_crc32c);
	util_put_le64(b + MD(durable_end), m->durable_end);
	util_put_le64(b + MD(log_start), m->log_start);
	util_put_le64(b + MD(tail_start), m->tail_start);
	util_put_le64(b + MD(commit_time_us), m->commit_time_us);
	util_put_le64(b + MD(concept_count), m->concept_count);
	util_put_le64(b + MD(association_count), m->association_count);
	util_put_le32(b + MD(next_ordinal), m->next_ordinal);
	util_put_le32(b + MD(segment_count), m->segment_count);
	for (uint32_t i = 0; i < m->segment_count && i < LAYOUT_MAX_SEGMENTS; i++) {
		unsigned char *s = b + MD(segments) + i * sizeof(struct layout_segment_ref_disk);
		util_put_le64(s, m->segments[i].offset);
		util_put_le64(s + 8, m->segments[i].length);
	}
	util_put_le32(b + MD(crc32c), util_crc32c(0, b, MD(crc32c)));
}

enum layout_slot_state layout_meta_decode(const void *slot, size_t slot_size, uint64_t base,
					  struct layout_meta *out, struct sutra_detail *pb)
{
	const unsigned char *b = slot;
	struct layout_meta m;

	if (slot_size < LAYOUT_META_SIZE) {
		util_detail_set(pb, base + slot_size, "meta slot truncated (%zu of %u bytes)",
				   slot_size, LAYOUT_META_SIZE);
		return util_is_zero(b, slot_size) ? LAYOUT_SLOT_EMPTY : LAYOUT_SLOT_CORRUPT;
	}
	if (util_is_zero(b, slot_size))
		return LAYOUT_SLOT_EMPTY;

	uint32_t crc = util_crc32c(0, b, MD(crc32c));
	if (util_get_le32(b + MD(crc32c)) != crc) {
		util_detail_set(pb, base + MD(crc32c),
				   "meta slot checksum mismatch (stored %08x, computed %08x)",
				   util_get_le32(b + MD(crc32c)), crc);
		return LAYOUT_SLOT_CORRUPT;
	}
	if (util_get_le32(b + MD(magic)) != LAYOUT_META_MAGIC) {
		util_detail_set(pb, base + MD(magic), "bad meta slot magic");
		return LAYOUT_SLOT_CORRUPT;
	}
	if (util_get_le32(b + MD(length)) != LAYOUT_META_SIZE) {
		util_detail_set(pb, base + MD(length), "meta slot length %u, expected %u",
				   util_get_le32(b + MD(length)), LAYOUT_META_SIZE);
		return LAYOUT_SLOT_CORRUPT;
	}
	memset(&m, 0, sizeof m);
	m.seq = util_get_le64(b + MD(seq));
	m.epoch = util_get_le64(b + MD(epoch));
	m.published_end = util_get_le64(b + MD(published_end));
	m.last_block_offset = util_get_le64(b + MD(last_block_offset));
	m.last_block_crc32c = util_get_le32(b + MD(last_block_crc32c));
	m.durable_end = util_get_le64(b + MD(durable_end));
	m.log_start = util_get_le64(b + MD(log_start));
	m.tail_start = util_get_le64(b + MD(tail_start));
	m.commit_time_us = util_get_le64(b + MD(commit_time_us));
	m.concept_count = util_get_le64(b + MD(concept_count));
	m.association_count = util_get_le64(b + MD(association_count));
	m.next_ordinal = util_get_le32(b + MD(next_ordinal));
	m.segment_count = util_get_le32(b + MD(segment_count));

	if (m.seq & 1) {
		util_detail_set(pb, base + MD(seq), "meta slot sequence %llu is odd (write in progress)",
				   (unsigned long long)m.seq);
		return LAYOUT_SLOT_CORRUPT;
	}
	if (m.segment_count > LAYOUT_MAX_SEGMENTS) {
		util_detail_set(pb, base + MD(segment_count), "segment count %u exceeds %u",
				   m.segment_count, LAYOUT_MAX_SEGMENTS);
		return LAYOUT_SLOT_CORRUPT;
	}
	for (uint32_t i = 0; i < LAYOUT_MAX_SEGMENTS; i++) {
		size_t at = MD(segments) + i * sizeof(struct layout_segment_ref_disk);
		if (i < m.segment_count) {
			m.segments[i].offset = util_get_le64(b + at);
			m.segments[i].length = util_get_le64(b + at + 8);
		} else if (!util_is_zero(b + at, sizeof(struct layout_segment_ref_disk))) {
			util_detail_set(pb, base + at, "unused segment entry %u is not zero", i);
			return LAYOUT_SLOT_CORRUPT;
		}
	}
	if (util_get_le32(b + MD(reserved0)) ||
	    !util_is_zero(b + MD(reserved), sizeof(((struct layout_meta_disk *)0)->reserved))) {
		util_detail_set(pb, base + (util_get_le32(b + MD(reserved0)) ? MD(reserved0) : MD(reserved)),
				   "meta slot reserved bytes are not zero");
		return LAYOUT_SLOT_CORRUPT;
	}
	if (!util_is_zero(b + LAYOUT_META_SIZE, slot_size - LAYOUT_META_SIZE)) {
		size_t at = LAYOUT_META_SIZE;
		while (b[at] == 0)
			at++;
		util_detail_set(pb, base + at, "bytes after the meta slot are not zero");
		return LAYOUT_SLOT_CORRUPT;
	}
	*out = m;
	return LAYOUT_SLOT_VALID;
}
