/* SPDX-License-Identifier: MIT */
/* Little-endian load and store helpers for every on-disk and wire encoder. */
#ifndef UTIL_ENDIAN_H
#define UTIL_ENDIAN_H

/*
 * All multi-byte integers of storage.dat and of the wire protocol are
 * little-endian. These helpers read and write them byte by byte from any
 * alignment, so that no code ever copies a C struct to or from disk; the
 * compiler turns them into single loads and stores on x86_64. Floats travel
 * as the IEEE 754 bit pattern of a little-endian u32.
 */

#include <stdint.h>
#include <string.h>

static inline uint16_t util_get_le16(const void *p)
{
	const unsigned char *b = p;
	return (uint16_t)(b[0] | b[1] << 8);
}

static inline uint32_t util_get_le32(const void *p)
{
	const unsigned char *b = p;
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline uint64_t util_get_le64(const void *p)
{
	const unsigned char *b = p;
	return (uint64_t)util_get_le32(b) | (uint64_t)util_get_le32(b + 4) << 32;
}

static inline void util_put_le16(void *p, uint16_t v)
{
	unsigned char *b = p;
	b[0] = (unsigned char)v;
	b[1] = (unsigned char)(v >> 8);
}

static inline void util_put_le32(void *p, uint32_t v)
{
	unsigned char *b = p;
	b[0] = (unsigned char)v;
	b[1] = (unsigned char)(v >> 8);
	b[2] = (unsigned char)(v >> 16);
	b[3] = (unsigned char)(v >> 24);
}

static inline void util_put_le64(void *p, uint64_t v)
{
	unsigned char *b = p;
	util_put_le32(b, (uint32_t)v);
	util_put_le32(b + 4, (uint32_t)(v >> 32));
}

static inline float util_get_lef32(const void *p)
{
	uint32_t u = util_get_le32(p);
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

static inline void util_put_lef32(void *p, float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	util_put_le32(p, u);
}

/* True when every byte of [p, p+len) is zero. */
static inline int util_is_zero(const void *p, size_t len)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < len; i++)
		if (b[i])
			return 0;
	return 1;
}

#endif /* UTIL_ENDIAN_H */
