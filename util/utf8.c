/* SPDX-License-Identifier: MIT */
/* Strict UTF-8 (RFC 3629, table 3-7 of the Unicode standard): the stepper and the validator. */
#include "util/utf8.h"

#include <string.h>

/* A bad sequence: its first byte is passed over, the rest looked at again. */
static enum util_utf8_status skip_one(size_t *i, enum util_utf8_status why)
{
	++*i;
	return why;
}

/* The stepper's body, inlined into the validator too, where the unused
 * code point then costs nothing. */
static inline __attribute__((always_inline)) enum util_utf8_status
step(const unsigned char *s, size_t len, size_t *i, uint32_t *cp)
{
	const unsigned char *p = s + *i;
	size_t avail = len - *i, n;
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */
	enum util_utf8_status outside = UTIL_UTF8_OK; /* a second byte out of them */
	uint32_t v;

	if (c < 0xC0)
		return skip_one(i, UTIL_UTF8_STRAY);
	if (c < 0xC2)
		return skip_one(i, UTIL_UTF8_OVERLONG); /* C0, C1 start only overlong forms */
	if (c <= 0xDF) {
		n = 1;
		v = c & 0x1Fu;
	} else if (c <= 0xEF) {
		n = 2;
		v = c & 0x0Fu;
		if (c == 0xE0)
			lo = 0xA0, outside = UTIL_UTF8_OVERLONG;
		else if (c == 0xED)
			hi = 0x9F, outside = UTIL_UTF8_SURROGATE;
	} else if (c <= 0xF4) {
		n = 3;
		v = c & 0x07u;
		if (c == 0xF0)
			lo = 0x90, outside = UTIL_UTF8_OVERLONG;
		else if (c == 0xF4)
			hi = 0x8F, outside = UTIL_UTF8_TOO_BIG;
	} else {
		return skip_one(i, c <= 0xF7 ? UTIL_UTF8_TOO_BIG : UTIL_UTF8_BAD_BYTE);
	}
	/* The earliest problem is the one reported: a missing or foreign
	 * byte, or a second byte out of the lead's bounds. */
	for (size_t k = 1; k <= n; k++) {
		if (k >= avail || (p[k] & 0xC0) != 0x80)
			return skip_one(i, UTIL_UTF8_TRUNCATED);
		if (k == 1 && (p[1] < lo || p[1] > hi))
			return skip_one(i, outside);
		v = v << 6 | (p[k] & 0x3Fu);
	}
	*cp = v;
	*i += n + 1;
	return UTIL_UTF8_OK;
}

enum util_utf8_status util_utf8_next_multi(const unsigned char *s, size_t len, size_t *i,
					   uint32_t *cp)
{
	return step(s, len, i, cp);
}

int util_utf8_valid(const void *s, size_t len, size_t *bad_at)
{
	const unsigned char *p = s;
	size_t i = 0;

	while (i < len) {
		if (p[i] < 0x80) {
			/* ASCII runs, the common case, 8 bytes at a time. */
			i++;
			while (len - i >= 8) {
				uint64_t w;
				memcpy(&w, p + i, 8);
				if (w & 0x8080808080808080ull)
					break;
				i += 8;
			}
			continue;
		}
		size_t at = i;
		uint32_t cp;
		if (step(p, len, &i, &cp) != UTIL_UTF8_OK) {
			if (bad_at)
				*bad_at = at;
			return 0;
		}
	}
	return 1;
}
