/* SPDX-License-Identifier: MIT */
/* Superblock (page 0) encoder, decoder and the problem formatter. */
#include "layout/layout.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/crc32c.h"
#include "util/endian.h"

#define SB(f) offsetof(struct layout_superblock_disk, f)

void layout_superblock_defaults(struct layout_superblock *sb, uint32_t vector_dim)
{
	memset(sb, 0, sizeof *sb);
	sb->format_version = LAYOUT_FORMAT_VERSION;
	sb->page_size = LAYOUT_PAGE_SIZE;
	sb->vector_dim = vector_dim;
	sb->metric = LAYOUT_METRIC_COSINE;
	sb->hnsw_m = 16;
	sb->hnsw_ef_construction = 200;
	sb->meta_offset = LAYOUT_META_OFFSET;
	sb->meta_slot_size = LAYOUT_META_SLOT_SIZE;
	sb->meta_slot_count = LAYOUT_META_SLOT_COUNT;
	sb->data_offset = LAYOUT_DATA_OFFSET;
	sb->block_align = LAYOUT_BLOCK_ALIGN;
}

void layout_superblock_encode(const struct layout_superblock *sb, void *out)
{
	unsigned char *b = out;

	memset(b, 0, LAYOUT_SUPERBLOCK_SIZE);
	memcpy(b + SB(magic), LAYOUT_MAGIC, 8);
	util_put_le32(b + SB(format_version), sb->format_version);
	util_put_le32(b + SB(header_size), LAYOUT_SUPERBLOCK_SIZE);
	util_put_le64(b + SB(incompat_features), sb->incompat_features);
	util_put_le64(b + SB(compat_features), sb->compat_features);
	util_put_le32(b + SB(page_size), sb->page_size);
	util_put_le32(b + SB(vector_dim), sb->vector_dim);
	util_put_le32(b + SB(metric), sb->metric);
	util_put_le16(b + SB(hnsw_m), sb->hnsw_m);
	util_put_le16(b + SB(hnsw_ef_construction), sb->hnsw_ef_construction);
	memcpy(b + SB(uuid), sb->uuid, 16);
	util_put_le64(b + SB(created_us), sb->created_us);
	util_put_le64(b + SB(meta_offset), sb->meta_offset);
	util_put_le32(b + SB(meta_slot_size), sb->meta_slot_size);
	util_put_le32(b + SB(meta_slot_count), sb->meta_slot_count);
	util_put_le64(b + SB(data_offset), sb->data_offset);
	util_put_le32(b + SB(block_align), sb->block_align);
	util_put_le32(b + SB(crc32c), util_crc32c(0, b, SB(crc32c)));
}

int layout_superblock_decode(const void *buf, size_t len, struct layout_superblock *out,
			     struct sutra_detail *pb)
{
	const unsigned char *b = buf;
	struct layout_superblock sb;

	if (len < LAYOUT_SUPERBLOCK_SIZE) {
		util_detail_set(pb, len, "file too short for a superblock (%zu of %u bytes)", len,
				   LAYOUT_SUPERBLOCK_SIZE);
		return SUTRA_ECORRUPT;
	}
	if (memcmp(b + SB(magic), LAYOUT_MAGIC, 8) != 0) {
		util_detail_set(pb, SB(magic), "bad magic: not a Sutra storage file");
		return SUTRA_ECORRUPT;
	}
	if (util_get_le32(b + SB(header_size)) != LAYOUT_SUPERBLOCK_SIZE) {
		util_detail_set(pb, SB(header_size), "superblock header_size is %u, expected %u",
				   util_get_le32(b + SB(header_size)), LAYOUT_SUPERBLOCK_SIZE);
		return SUTRA_ECORRUPT;
	}
	uint32_t crc = util_crc32c(0, b, SB(crc32c));
	if (util_get_le32(b + SB(crc32c)) != crc) {
		util_detail_set(pb, SB(crc32c),
				   "superblock checksum mismatch (stored %08x, computed %08x)",
				   util_get_le32(b + SB(crc32c)), crc);
		return SUTRA_ECORRUPT;
	}

	memset(&sb, 0, sizeof sb);
	sb.format_version = util_get_le32(b + SB(format_version));
	sb.incompat_features = util_get_le64(b + SB(incompat_features));
	sb.compat_features = util_get_le64(b + SB(compat_features));
	sb.page_size = util_get_le32(b + SB(page_size));
	sb.vector_dim = util_get_le32(b + SB(vector_dim));
	sb.metric = util_get_le32(b + SB(metric));
	sb.hnsw_m = util_get_le16(b + SB(hnsw_m));
	sb.hnsw_ef_construction = util_get_le16(b + SB(hnsw_ef_construction));
	memcpy(sb.uuid, b + SB(uuid), 16);
	sb.created_us = util_get_le64(b + SB(created_us));
	sb.meta_offset = util_get_le64(b + SB(meta_offset));
	sb.meta_slot_size = util_get_le32(b + SB(meta_slot_size));
	sb.meta_slot_count = util_get_le32(b + SB(meta_slot_count));
	sb.data_offset = util_get_le64(b + SB(data_offset));
	sb.block_align = util_get_le32(b + SB(block_align));

	if (sb.format_version != LAYOUT_FORMAT_VERSION) {
		util_detail_set(pb, SB(format_version),
				   "format version %u is not supported (this build reads %u)",
				   sb.format_version, LAYOUT_FORMAT_VERSION);
		return SUTRA_EVERSION;
	}
	if (sb.incompat_features & ~LAYOUT_INCOMPAT_KNOWN) {
		util_detail_set(pb, SB(incompat_features),
				   "unknown incompatible features 0x%llx",
				   (unsigned long long)(sb.incompat_features & ~LAYOUT_INCOMPAT_KNOWN));
		return SUTRA_EVERSION;
	}
	/* Version 1 fixes the geometry; a different value is damage that the
	 * CRC happened to miss or a writer bug, so refuse rather than guess. */
	if (sb.page_size != LAYOUT_PAGE_SIZE || sb.meta_offset != LAYOUT_META_OFFSET ||
	    sb.meta_slot_size != LAYOUT_META_SLOT_SIZE ||
	    sb.meta_slot_count != LAYOUT_META_SLOT_COUNT || sb.data_offset != LAYOUT_DATA_OFFSET ||
	    sb.block_align != LAYOUT_BLOCK_ALIGN) {
		util_detail_set(pb, SB(page_size), "superblock geometry differs from version 1");
		return SUTRA_ECORRUPT;
	}
	if (sb.vector_dim == 0 || sb.vector_dim > LAYOUT_MAX_VECTOR_DIM) {
		util_detail_set(pb, SB(vector_dim), "vector dimension %u out of range 1..%u",
				   sb.vector_dim, LAYOUT_MAX_VECTOR_DIM);
		return SUTRA_ECORRUPT;
	}
	if (sb.metric != LAYOUT_METRIC_COSINE) {
		util_detail_set(pb, SB(metric), "unknown metric %u", sb.metric);
		return SUTRA_ECORRUPT;
	}
	if (!util_is_zero(b + SB(reserved), sizeof(((struct layout_superblock_disk *)0)->reserved))) {
		util_detail_set(pb, SB(reserved), "superblock reserved bytes are not zero");
		return SUTRA_ECORRUPT;
	}
	*out = sb;
	return 0;
}
