/* SPDX-License-Identifier: MIT */
/* The 64-bit mixing function every hash of the project ends with. */
#ifndef UTIL_HASH_H
#define UTIL_HASH_H

/*
 * util_mix64() is the finaliser of splitmix64 (Steele, Lea and Flood,
 * 2014): two xor-shift-multiply rounds that spread every input bit over
 * every output bit. Segment hash tables (FORMAT.md section 10) and the
 * text index's token hashes are stored on disk, so its output is part of
 * the file format: tests/util/test_hash.c pins it, and it must never
 * change.
 */

#include <stddef.h>
#include <stdint.h>

static inline uint64_t util_mix64(uint64_t h)
{
	h ^= h >> 30;
	h *= 0xBF58476D1CE4E5B9ull;
	h ^= h >> 27;
	h *= 0x94D049BB133111EBull;
	h ^= h >> 31;
	return h;
}

/* 64-bit FNV-1a over len bytes (offset basis 0xcbf29ce484222325, prime
 * 0x100000001b3). Part of the file format (token hashes, FORMAT.md 10.6)
 * and of the protocol (the fallback socket name, PROTOCOL.md section 2). */
static inline uint64_t util_fnv1a64(const void *p, size_t len)
{
	const unsigned char *b = p;
	uint64_t h = 0xCBF29CE484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001B3ull;
	}
	return h;
}

/* Two 64-bit halves (a 16-byte id, say) folded into one, then mixed. */
static inline uint64_t util_mix128(uint64_t a, uint64_t b)
{
	return util_mix64(a ^ (b * 0x9E3779B97F4A7C15ull));
}

#endif /* UTIL_HASH_H */
