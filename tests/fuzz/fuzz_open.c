/* SPDX-License-Identifier: MIT */
/* libFuzzer target: open, verify, tail-scan and record-walk an arbitrary storage.dat image. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layout/layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct layout_view v;
	struct layout_problem pb;
	struct layout_replay r;
	uint64_t end;

	if (layout_open(data, size, &v, &pb) != 0)
		return 0;
	layout_replay_init(&r, v.sb.vector_dim);
	(void)layout_verify(&v, &r, &pb);
	layout_replay_finish(&r);
	(void)layout_scan_tail(&v, &end, &pb);

	/* Walk the blocks as layoutdump does, decoding records and segments
	 * even where verify stopped early, to reach every decoder. */
	uint64_t pos = v.sb.data_offset;
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
	return 0;
}
