/* SPDX-License-Identifier: MIT */
/* A 16-byte id as 32 lowercase hex digits, the form users see. */
#ifndef UTIL_HEX_H
#define UTIL_HEX_H

#include <stdint.h>

static inline void util_hex_id(char out[33], const uint8_t id[16])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		out[2 * i] = digits[id[i] >> 4];
		out[2 * i + 1] = digits[id[i] & 15];
	}
	out[32] = 0;
}

#endif /* UTIL_HEX_H */
