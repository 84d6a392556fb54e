/* SPDX-License-Identifier: MIT */
/* Index segments, private to layout/: the entry layouts and slot hashes that segbuild.c writes and segview.c reads. */
#ifndef LAYOUT_SEGINDEX_INTERNAL_H
#define LAYOUT_SEGINDEX_INTERNAL_H

/*
 * A segment is written by one file (segbuild.c, in the coordinator's
 * segment builder) and read by another (segview.c, by every reader and by
 * recovery and verify); what they must agree on byte for byte lives here
 * and nowhere else. The offsets below are those of the entries of
 * docs/FORMAT.md section 10.2, and the two hashes choose the home slot of
 * an id in ID_HASH and of an ordinal in OUT_INDEX and IN_INDEX (section
 * 10.1). Both are on disk: changing either changes the bytes of every
 * segment, which tests/layout/test_segindex.c pins. Slot tables have a
 * power-of-two capacity, probe linearly from the home slot, and always
 * keep an empty slot, so a lookup ends at the first empty one; a slot's
 * first u32 is zero when empty, so the entry index or ordinal it holds is
 * stored plus one.
 */

#include <stdint.h>

#include "util/endian.h"
#include "util/hash.h"

/* CONCEPTS entry (32 bytes). */
#define CE_ID 0
#define CE_ORDINAL 16
#define CE_FLAGS 20
#define CE_RECORD 24

/* EDGES entry (64 bytes). */
#define EE_SRC 0
#define EE_DST 16
#define EE_SRC_ORD 32
#define EE_DST_ORD 36
#define EE_TYPE 40
#define EE_FLAGS 41
#define EE_RES0 42
#define EE_CONF 44
#define EE_WEIGHT 48
#define EE_RES1 52
#define EE_CREATED 56

/* ID_HASH slot (16 bytes): entry index + 1, the hash's high half, and the
 * RECORDS offset of a live concept or IH_DELETED for a tombstone. */
#define IH_ENTRY 0
#define IH_TAG 4
#define IH_RECORD 8
#define IH_DELETED UINT64_MAX

/* OUT_INDEX and IN_INDEX slot (16 bytes): ordinal + 1, count, first index. */
#define SL_ORD 0
#define SL_COUNT 4
#define SL_FIRST 8

static inline uint64_t hash_id(const uint8_t id[16])
{
	return util_mix128(util_get_le64(id), util_get_le64(id + 8));
}

static inline uint64_t hash_ordinal(uint32_t o)
{
	return util_mix64((uint64_t)o + 0x9E3779B97F4A7C15ull);
}

#endif /* LAYOUT_SEGINDEX_INTERNAL_H */
