/* SPDX-License-Identifier: MIT */
/* Strict UTF-8: stepping through a string one code point at a time, and validating one. */
#ifndef UTIL_UTF8_H
#define UTIL_UTF8_H

/*
 * Well-formed UTF-8 is RFC 3629's (table 3-7 of the Unicode standard):
 * shortest form only, no surrogates (U+D800..U+DFFF), nothing above
 * U+10FFFF. util_utf8_next() is the one decoder of the project: content
 * validation, the tokenizer and sutra-layoutdump's string escaping all
 * step with it, so they agree on which bytes are well-formed.
 *
 * A bad sequence costs exactly one byte: the stepper reports it and moves
 * past its first byte only, so the caller looks at the bytes after it
 * again (a continuation byte alone is bad too, so every byte of a bad
 * sequence ends up reported). Every call makes progress. NUL is a code
 * point like any other: strings carry their length.
 */

#include <stddef.h>
#include <stdint.h>

enum util_utf8_status {
	UTIL_UTF8_OK = 0,       /* a well-formed sequence: *cp is its code point */
	UTIL_UTF8_STRAY,        /* a continuation byte (80..BF) where a sequence starts */
	UTIL_UTF8_BAD_BYTE,     /* a byte no UTF-8 holds (F8..FF) */
	UTIL_UTF8_OVERLONG,     /* a longer form than needed (C0, C1, E0 80..9F, F0 80..8F) */
	UTIL_UTF8_SURROGATE,    /* U+D800..U+DFFF (ED A0..BF) */
	UTIL_UTF8_TOO_BIG,      /* above U+10FFFF (F4 90..BF, F5..F7) */
	UTIL_UTF8_TRUNCATED,    /* the input ends, or a byte that is not a continuation
				   comes, before the sequence is complete */
};

/* The multi-byte part of util_utf8_next(); call that instead. */
enum util_utf8_status util_utf8_next_multi(const unsigned char *s, size_t len, size_t *i,
					   uint32_t *cp);

/*
 * Decodes the sequence at s[*i] (*i < len). On UTIL_UTF8_OK stores its
 * code point in *cp and moves *i past it; otherwise leaves *cp alone,
 * moves *i one byte on and says what is wrong. ASCII is handled inline.
 */
static inline enum util_utf8_status util_utf8_next(const unsigned char *s, size_t len, size_t *i,
						   uint32_t *cp)
{
	if (s[*i] < 0x80) {
		*cp = s[(*i)++];
		return UTIL_UTF8_OK;
	}
	return util_utf8_next_multi(s, len, i, cp);
}

/*
 * Returns 1 when [s, s+len) is well-formed UTF-8, NUL bytes allowed
 * (content carries its length). Returns 0 otherwise, and stores the
 * offset of the first byte of the first bad sequence in *bad_at when
 * bad_at is not NULL.
 */
int util_utf8_valid(const void *s, size_t len, size_t *bad_at);

#endif /* UTIL_UTF8_H */
