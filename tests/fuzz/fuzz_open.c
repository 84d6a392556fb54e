/* SPDX-License-Identifier: MIT */
/* libFuzzer target: open, verify, tail-scan and record-walk an arbitrary storage.dat image. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layout/layout.h"
#include "util/crc32c.h"
#include "util/endian.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Random bytes almost never pass a CRC, so a fuzzer left alone would only
 * exercise the checksum checks. Each input is therefore tried twice: as is,
 * and with every checksum recomputed (superblock, both meta slots, every
 * block header and payload, every segment section it can find), which lets
 * the fuzzer reach the structural checks behind them. */
static void fix_checksums(uint8_t *b, size_t size)
{
	if (size >= LAYOUT_SUPERBLOCK_SIZE)
		util_put_le32(b + 252, util_crc32c(0, b, 252));
	uint64_t pos = LAYOUT_DATA_OFFSET;
	while (size >= LAYOUT_BLOCK_HEADER_SIZE && pos <= size - LAYOUT_BLOCK_HEADER_SIZE) {
		uint8_t *h = b + pos;
		uint64_t len = util_get_le64(h + 16), plen = util_get_le64(h + 24);
		if (len < LAYOUT_BLOCK_HEADER_SIZE || len % LAYOUT_BLOCK_ALIGN || len > size - pos ||
		    plen > len - LAYOUT_BLOCK_HEADER_SIZE)
			break;
		uint8_t *p = h + LAYOUT_BLOCK_HEADER_SIZE;
		if (util_get_le16(h + 4) == LAYOUT_BLOCK_SEGMENT && plen >= 48) {
			uint32_t n = util_get_le32(p + 4);
			for (uint32_t i = 0; i < n && 48 + 32ull * (i + 1) <= plen; i++) {
				uint8_t *e = p + 48 + 32 * i;
				uint64_t so = util_get_le64(e + 8), sl = util_get_le64(e + 16);
				if (so <= len && sl <= len - so)
					util_put_le32(e + 24, util_crc32c(0, h + so, (size_t)sl));
			}
		}
		util_put_le32(h + 40, util_crc32c(0, p, (size_t)plen));
		util_put_le32(h + 60, util_crc32c(0, h, 60));
		pos += len;
	}
	/* Meta slots last: each names its commit block's payload CRC. */
	for (uint64_t s = 0; s < LAYOUT_META_SLOT_COUNT; s++) {
		uint64_t at = LAYOUT_META_OFFSET + s * LAYOUT_META_SLOT_SIZE;
		if (size < at + LAYOUT_META_SIZE)
			continue;
		uint64_t last = util_get_le64(b + at + 32);
		if (last >= LAYOUT_DATA_OFFSET && size >= LAYOUT_BLOCK_HEADER_SIZE &&
		    last <= size - LAYOUT_BLOCK_HEADER_SIZE)
			util_put_le32(b + at + 1104, util_get_le32(b + last + 40));
		util_put_le32(b + at + 1148, util_crc32c(0, b + at, 1148));
	}
}

static void exercise(const uint8_t *data, size_t size)
{
	struct layout_view v;
	struct sutra_detail pb;
	struct layout_replay r;
	uint64_t end;

	if (layout_open(data, size, &v, &pb) != 0)
		return;
	layout_replay_init(&r, v.sb.vector_dim);
	(void)layout_verify(&v, &r, &pb);
	layout_replay_finish(&r);
	(void)layout_scan_tail(&v, &end, &pb);

	/* Walk the blocks as layoutdump does, decoding records and segments
	 * even where verify stopped early, to reach every decoder. */
	uint64_t pos = layout_log_start(&v.sb, &v.meta);
	while (pos < v.size) {
		struct layout_block blk;
		if (layout_block_decode(v.base, v.size, pos, &blk, &pb) ||
		    layout_block_check_payload(v.base, &blk, &pb))
			break;
		if (blk.type == LAYOUT_BLOCK_COMMIT) {
			struct layout_record_iter it;
			struct layout_record rec;
			layout_records_init(&it, v.base, &blk, v.sb.vector_dim);
			while (layout_records_next(&it, &rec, &pb) == 1)
				;
		} else {
			struct layout_segment seg;
			struct layout_section sec[4];
			(void)layout_segment_decode(v.base, &blk, &seg, sec, 4, &pb);
		}
		pos = blk.offset + blk.length;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* layout_open wants the image LAYOUT_IMAGE_ALIGN-aligned, as a mapping
	 * is; the fuzzer's buffer is not. Exactly size bytes, so that a read
	 * past the end is still caught. */
	void *p;
	if (posix_memalign(&p, LAYOUT_IMAGE_ALIGN, size ? size : 1))
		return 0;
	uint8_t *copy = p;
	memcpy(copy, data, size);
	exercise(copy, size);
	fix_checksums(copy, size);
	exercise(copy, size);
	free(copy);
	return 0;
}
