/* SPDX-License-Identifier: MIT */
/* Strict UTF-8 validation (RFC 3629, table 3-7 of the Unicode standard). */
#include "util/utf8.h"

#include <stdint.h>
#include <string.h>

int util_utf8_valid(const void *s, size_t len, size_t *bad_at)
{
	const unsigned char *p = s;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		size_t n;
		unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */

		if (c < 0x80) {
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
		} else if (c >= 0xC2 && c <= 0xDF) {
			n = 1;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 2;
			if (c == 0xE0)
				lo = 0xA0; /* overlong */
			else if (c == 0xED)
				hi = 0x9F; /* surrogates */
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 3;
			if (c == 0xF0)
				lo = 0x90; /* overlong */
			else if (c == 0xF4)
				hi = 0x8F; /* above U+10FFFF */
		} else {
			goto bad;
		}
		if (len - i <= n)
			goto bad;
		if (p[i + 1] < lo || p[i + 1] > hi)
			goto bad;
		for (size_t k = 2; k <= n; k++)
			if ((p[i + k] & 0xC0) != 0x80)
				goto bad;
		i += n + 1;
	}
	return 1;
bad:
	if (bad_at)
		*bad_at = i;
	return 0;
}
