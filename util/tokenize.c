/* SPDX-License-Identifier: MIT */
/* The text tokenizer (docs/FORMAT-text.md, section 10.6) and the token hash. */
#include "util/tokenize.h"

#include <stdint.h>

#include "util/hash.h"
#include "util/unicode_tables.h"
#include "util/utf8.h"

enum { SEP = 0, ALNUM = 1, MARK = 2 };

static unsigned classify(uint32_t cp)
{
	if (cp < 0x80) {
		return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
		       (cp >= 'A' && cp <= 'Z') ? ALNUM : SEP;
	}
	size_t lo = 0, hi = sizeof util_uc_class / sizeof util_uc_class[0];
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cp < util_uc_class[mid].lo)
			hi = mid;
		else if (cp > util_uc_class[mid].hi)
			lo = mid + 1;
		else
			return util_uc_class[mid].cls;
	}
	return SEP;
}

static uint32_t fold(uint32_t cp)
{
	if (cp < 0x80)
		return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
	/* The last run starting at or below cp. */
	size_t lo = 0, hi = sizeof util_uc_fold / sizeof util_uc_fold[0];
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (util_uc_fold[mid].lo <= cp)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return cp;
	const struct util_uc_foldrun *r = &util_uc_fold[lo - 1];
	if (cp > r->hi || (cp - r->lo) % r->step)
		return cp;
	return (uint32_t)((int64_t)cp + r->delta);
}

static size_t encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

int util_tokenize(const char *s, size_t n, int (*fn)(void *arg, const char *tok, size_t len),
		  void *arg)
{
	const unsigned char *p = (const unsigned char *)s;
	char tok[UTIL_TOKEN_MAX + 1];
	size_t len = 0;
	int in_word = 0, full = 0, rc;

	for (size_t i = 0; i < n;) {
		/* A bad sequence costs one byte and separates like a symbol;
		 * its other bytes are bad on their own and separate too. */
		uint32_t cp;
		unsigned cls = util_utf8_next(p, n, &i, &cp) ? SEP : classify(cp);
		/* A mark belongs to the word it follows; one with no word
		 * before it is a separator like any other symbol. */
		if (cls == ALNUM || (cls == MARK && in_word)) {
			in_word = 1;
			if (full)
				continue;
			char enc[4];
			size_t k = encode(fold(cp), enc);
			if (len + k > UTIL_TOKEN_MAX) {
				/* Cut: the token keeps its whole code points so
				 * far and the rest of the word is dropped. */
				full = 1;
				continue;
			}
			for (size_t j = 0; j < k; j++)
				tok[len + j] = enc[j];
			len += k;
			continue;
		}
		if (in_word) {
			tok[len] = '\0';
			if ((rc = fn(arg, tok, len)))
				return rc;
		}
		in_word = full = 0;
		len = 0;
	}
	if (in_word) {
		tok[len] = '\0';
		return fn(arg, tok, len);
	}
	return 0;
}

/* FNV-1a (64-bit) over the bytes, then the splitmix64 finaliser of
 * docs/FORMAT.md section 10.1, which spreads FNV's weak low bits over
 * the whole word: the TERMS table takes the low bits as the start slot. */
unsigned long long util_token_hash(const char *tok, size_t len)
{
	return util_mix64(util_fnv1a64(tok, len));
}
