/* SPDX-License-Identifier: MIT */
/* The text tokenizer: UTF-8 in, case-folded alphanumeric tokens out. */
#ifndef UTIL_TOKENIZE_H
#define UTIL_TOKENIZE_H

/*
 * The one tokenizer of the store: the segment builder, each reader's tail
 * index and every text query use it, so that a query token matches the
 * tokens of the content it was built from. docs/FORMAT.md section 10.6
 * documents the rules exactly; changing them changes the format.
 *
 * In short: content is UTF-8; a token is a maximal run of alphanumeric
 * code points (Unicode letters and numbers, general categories L* and N*,
 * from util/unicode_tables.h), with the combining marks (M*) that follow
 * them; everything else (punctuation, spaces, symbols, marks with no
 * word before them, invalid UTF-8) separates tokens; each code point is
 * case-folded (simple folding); a token longer than UTIL_TOKEN_MAX bytes
 * after folding is cut at the last whole code point that fits and the
 * rest of its word is dropped. Thread-safe, no allocation.
 */

#include <stddef.h>

#define UTIL_TOKEN_MAX 64u   /* bytes of one folded token */

/* Calls fn(arg, token, len) for each token of s[0..n), in order (repeats
 * included; token is NUL-terminated, borrowed until fn returns). Stops
 * when fn returns non-zero and returns that value; otherwise 0. */
int util_tokenize(const char *s, size_t n, int (*fn)(void *arg, const char *tok, size_t len),
		  void *arg);

/* 64-bit hash of a folded token (for the TERMS table): FNV-1a 64 over the
 * bytes, then the splitmix64 finaliser (docs/FORMAT.md section 10.6). */
unsigned long long util_token_hash(const char *tok, size_t len);

#endif /* UTIL_TOKENIZE_H */
