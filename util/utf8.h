/* SPDX-License-Identifier: MIT */
/* Strict UTF-8 validation of concept content. */
#ifndef UTIL_UTF8_H
#define UTIL_UTF8_H

#include <stddef.h>

/*
 * Returns 1 when [s, s+len) is well-formed UTF-8 as defined by RFC 3629:
 * shortest form only, no surrogates (U+D800..U+DFFF), nothing above
 * U+10FFFF. NUL bytes are allowed (content carries its length). Returns 0
 * otherwise, and stores the offset of the first bad byte in *bad_at when
 * bad_at is not NULL.
 */
int util_utf8_valid(const void *s, size_t len, size_t *bad_at);

#endif /* UTIL_UTF8_H */
