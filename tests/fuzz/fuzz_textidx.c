/* SPDX-License-Identifier: MIT */
/* libFuzzer target: tokenize arbitrary bytes, and open, look up in and check an arbitrary text index. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layout/textidx.h"
#include "util/endian.h"
#include "util/tokenize.h"
#include "util/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The tokenizer's promises (util/tokenize.h): 1..UTIL_TOKEN_MAX bytes of
 * well-formed UTF-8, NUL-terminated, and a fixed point of tokenizing. */
static int same(void *arg, const char *tok, size_t len)
{
	const char *want = arg;
	if (strlen(want) != len || memcmp(want, tok, len) != 0)
		abort();
	return 0;
}

static int token_ok(void *arg, const char *tok, size_t len)
{
	(void)arg;
	if (len == 0 || len > UTIL_TOKEN_MAX || tok[len] != '\0' || !util_utf8_valid(tok, len, NULL))
		abort();
	if (util_tokenize(tok, len, same, (void *)tok) != 0)
		abort();
	return 0;
}

/* Uses a looked-up bitmap as a query would: an array sized by its
 * cardinality, every value present. */
static void use(roaring_bitmap_t *r)
{
	uint64_t n = roaring_bitmap_get_cardinality(r);
	uint32_t *a = malloc((n ? n : 1) * sizeof *a);
	if (!a)
		abort();
	roaring_bitmap_to_uint32_array(r, a);
	for (uint64_t i = 0; i < n; i++)
		if ((i && a[i] <= a[i - 1]) || !roaring_bitmap_contains(r, a[i]))
			abort();
	free(a);
	roaring_bitmap_free(r);
}

/* Input: u64 terms length t, then t bytes of TERMS, then POSTINGS. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	util_tokenize((const char *)data, size, token_ok, NULL);
	if (size < 8)
		return 0;
	uint64_t t = util_get_le64(data);
	if (t > size - 8)
		return 0;
	size_t p = size - 8 - (size_t)t;
	/* Exact sizes, so that AddressSanitizer sees any read past an end;
	 * 64-aligned like the sections in the file. */
	void *terms_m, *post_m;
	if (posix_memalign(&terms_m, 64, t ? (size_t)t : 1) ||
	    posix_memalign(&post_m, 64, p ? p : 1))
		abort();
	unsigned char *terms = terms_m, *post = post_m;
	memcpy(terms, data + 8, (size_t)t);
	memcpy(post, data + 8 + t, p);
	struct layout_textidx_view v;
	struct sutra_detail pb;
	if (layout_textidx_view_open(&v, terms, t, 0, post, p, 0, NULL, NULL, &pb) == 0) {
		static const char *const probe[] = { "a", "alpha", "stra\xc3\x9f" "e", "42" };
		roaring_bitmap_t *r;
		for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++)
			if (layout_textidx_lookup(&v, probe[i], strlen(probe[i]), &r, &pb) == 1)
				use(r);
		/* And every token the slots name, where it lies in bounds. */
		uint64_t toff = 64 + 32 * v.nslots, tlen = util_get_le64(terms + 40);
		for (uint64_t s = 0; s < v.nslots && s < 4096; s++) {
			const unsigned char *q = terms + 64 + 32 * s;
			uint64_t o = util_get_le32(q + 8), n = util_get_le32(q + 12);
			if (!n || n > UTIL_TOKEN_MAX || o > tlen || n > tlen - o)
				continue;
			if (layout_textidx_lookup(&v, (const char *)terms + toff + o, (size_t)n, &r,
						  &pb) == 1)
				use(r);
		}
		layout_textidx_check(&v, &pb);
	}
	free(terms);
	free(post);
	return 0;
}
