/* SPDX-License-Identifier: MIT */
/* Tests of strict UTF-8: the stepper and the validator. */
#include <stdint.h>
#include <string.h>

#include "tests/common/tcheck.h"
#include "util/utf8.h"

static int valid(const char *s, size_t *bad)
{
	return util_utf8_valid(s, strlen(s), bad);
}

START_TEST(test_utf8_accepts_well_formed)
{
	ck_assert(valid("", NULL));
	ck_assert(valid("plain ascii", NULL));
	ck_assert(valid("caf\xc3\xa9 \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8c\xb1", NULL));
	ck_assert(valid("\xed\x9f\xbf", NULL));     /* U+D7FF, just below surrogates */
	ck_assert(valid("\xf4\x8f\xbf\xbf", NULL)); /* U+10FFFF */
	ck_assert(util_utf8_valid("a\0b", 3, NULL));
}
END_TEST

/* The ASCII fast path reads 8 bytes at a time: a bad byte (or a
 * multi-byte character) at any offset of a long ASCII run must still be
 * found at its exact position. */
START_TEST(test_utf8_ascii_runs_at_every_offset)
{
	char buf[80];
	size_t bad;
	for (size_t len = 1; len <= sizeof buf; len++) {
		memset(buf, 'a', len);
		ck_assert(util_utf8_valid(buf, len, NULL));
		for (size_t k = 0; k < len; k++) {
			memset(buf, 'a', len);
			buf[k] = (char)0xFF;
			bad = 12345;
			ck_assert(!util_utf8_valid(buf, len, &bad));
			ck_assert_uint_eq(bad, k);
			if (k + 1 < len) {
				buf[k] = (char)0xC3; /* é: valid */
				buf[k + 1] = (char)0xA9;
				ck_assert(util_utf8_valid(buf, len, NULL));
				buf[k + 1] = 'a'; /* truncated sequence */
				ck_assert(!util_utf8_valid(buf, len, &bad));
				ck_assert_uint_eq(bad, k);
			}
		}
	}
}
END_TEST

START_TEST(test_utf8_rejects_ill_formed)
{
	static const struct {
		const char *s;
		size_t bad;
	} cases[] = {
		{ "ab\x80", 2 },             /* lone continuation */
		{ "\xc0\xaf", 0 },           /* overlong '/' */
		{ "\xc1\xbf", 0 },           /* overlong */
		{ "x\xe0\x80\xaf", 1 },      /* overlong 3-byte */
		{ "\xed\xa0\x80", 0 },       /* surrogate U+D800 */
		{ "\xf0\x80\x80\xaf", 0 },   /* overlong 4-byte */
		{ "\xf4\x90\x80\x80", 0 },   /* above U+10FFFF */
		{ "\xf5\x80\x80\x80", 0 },   /* invalid lead */
		{ "\xff", 0 },
		{ "ok\xe2\x82", 2 },         /* truncated */
		{ "\xc3", 0 },               /* truncated */
		{ "\xe2\x28\xa1", 0 },       /* bad continuation */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t bad = 999;
		ck_assert_msg(!valid(cases[i].s, &bad), "case %zu accepted", i);
		ck_assert_uint_eq(bad, cases[i].bad);
	}
}
END_TEST

/* Each boundary of each length decodes to its code point and is stepped
 * over whole. */
START_TEST(test_utf8_next_decodes_every_length)
{
	static const struct {
		const char *s;
		size_t len;
		uint32_t cp;
	} cases[] = {
		{ "\x00", 1, 0x0 },
		{ "\x7f", 1, 0x7F },
		{ "\xc2\x80", 2, 0x80 },
		{ "\xc3\xa9", 2, 0xE9 },
		{ "\xdf\xbf", 2, 0x7FF },
		{ "\xe0\xa0\x80", 3, 0x800 },
		{ "\xe2\x82\xac", 3, 0x20AC },
		{ "\xed\x9f\xbf", 3, 0xD7FF },
		{ "\xee\x80\x80", 3, 0xE000 },
		{ "\xef\xbf\xbf", 3, 0xFFFF },
		{ "\xf0\x90\x80\x80", 4, 0x10000 },
		{ "\xf0\x9d\x84\x9e", 4, 0x1D11E },
		{ "\xf4\x8f\xbf\xbf", 4, 0x10FFFF },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		unsigned char buf[8] = "xxxxxxx";
		uint32_t cp = 0xDEADBEEF;
		size_t i = 1;
		memcpy(buf + 1, cases[k].s, cases[k].len);
		ck_assert_int_eq(util_utf8_next(buf, 1 + cases[k].len, &i, &cp), UTIL_UTF8_OK);
		ck_assert_uint_eq(cp, cases[k].cp);
		ck_assert_uint_eq(i, 1 + cases[k].len);
	}
}
END_TEST

/* Every kind of ill-formed sequence is named, costs exactly one byte, and
 * leaves the code point alone. */
START_TEST(test_utf8_next_names_every_invalid_class)
{
	static const struct {
		const char *s;
		size_t len;
		enum util_utf8_status want;
	} cases[] = {
		{ "\x80", 1, UTIL_UTF8_STRAY },
		{ "\xbf\x80", 2, UTIL_UTF8_STRAY },
		{ "\xc0\xaf", 2, UTIL_UTF8_OVERLONG },          /* '/' in two bytes */
		{ "\xc1\xbf", 2, UTIL_UTF8_OVERLONG },
		{ "\xe0\x80\xaf", 3, UTIL_UTF8_OVERLONG },
		{ "\xe0\x9f\xbf", 3, UTIL_UTF8_OVERLONG },      /* U+07FF in three */
		{ "\xf0\x80\x80\xaf", 4, UTIL_UTF8_OVERLONG },
		{ "\xf0\x8f\xbf\xbf", 4, UTIL_UTF8_OVERLONG },  /* U+FFFF in four */
		{ "\xed\xa0\x80", 3, UTIL_UTF8_SURROGATE },     /* U+D800 */
		{ "\xed\xbf\xbf", 3, UTIL_UTF8_SURROGATE },     /* U+DFFF */
		{ "\xf4\x90\x80\x80", 4, UTIL_UTF8_TOO_BIG },   /* U+110000 */
		{ "\xf5\x80\x80\x80", 4, UTIL_UTF8_TOO_BIG },
		{ "\xf7\xbf\xbf\xbf", 4, UTIL_UTF8_TOO_BIG },
		{ "\xf8\x88\x80\x80\x80", 5, UTIL_UTF8_BAD_BYTE },
		{ "\xfe", 1, UTIL_UTF8_BAD_BYTE },
		{ "\xff", 1, UTIL_UTF8_BAD_BYTE },
		{ "\xc3", 1, UTIL_UTF8_TRUNCATED },             /* the input ends */
		{ "\xe2\x82", 2, UTIL_UTF8_TRUNCATED },
		{ "\xf0\x9f\x8c", 3, UTIL_UTF8_TRUNCATED },
		{ "\xc3\x41", 2, UTIL_UTF8_TRUNCATED },         /* a foreign byte comes */
		{ "\xe2\x28\xa1", 3, UTIL_UTF8_TRUNCATED },
		{ "\xf0\x9f\x8c\x41", 4, UTIL_UTF8_TRUNCATED },
		{ "\xe0\x80", 2, UTIL_UTF8_OVERLONG },          /* the second byte tells first */
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		const unsigned char *p = (const unsigned char *)cases[k].s;
		uint32_t cp = 0xDEADBEEF;
		size_t i = 0, bad = 99;
		ck_assert_msg(util_utf8_next(p, cases[k].len, &i, &cp) == cases[k].want,
			      "case %zu", k);
		ck_assert_uint_eq(i, 1);
		ck_assert_uint_eq(cp, 0xDEADBEEF);
		ck_assert(!util_utf8_valid(p, cases[k].len, &bad));
		ck_assert_uint_eq(bad, 0);
	}
}
END_TEST

/* A bad sequence is stepped one byte at a time, so each of its bytes is
 * reported and good bytes after it are decoded again. */
START_TEST(test_utf8_next_steps_through_bad_bytes)
{
	static const unsigned char s[] = "a\xe2\x82" "b\xed\xa0\x80\xc3\xa9";
	static const enum util_utf8_status want[] = {
		UTIL_UTF8_OK, UTIL_UTF8_TRUNCATED, UTIL_UTF8_STRAY, UTIL_UTF8_OK,
		UTIL_UTF8_SURROGATE, UTIL_UTF8_STRAY, UTIL_UTF8_STRAY, UTIL_UTF8_OK,
	};
	static const size_t after[] = { 1, 2, 3, 4, 5, 6, 7, 9 };
	size_t i = 0, k = 0, len = sizeof s - 1;
	uint32_t cp;
	while (i < len) {
		ck_assert_uint_lt(k, sizeof want / sizeof want[0]);
		ck_assert_int_eq(util_utf8_next(s, len, &i, &cp), want[k]);
		ck_assert_uint_eq(i, after[k]);
		k++;
	}
	ck_assert_uint_eq(k, sizeof want / sizeof want[0]);
	ck_assert_uint_eq(cp, 0xE9);
}
END_TEST

/* The definition, spelt out the long way: a lead's high bits give the
 * length, every later byte is 10xxxxxx, and the value is in range for
 * that length, not a surrogate and at most U+10FFFF. */
static int reference(const unsigned char *s, size_t len, uint32_t *cp)
{
	size_t n = s[0] < 0x80 ? 1 : s[0] >> 5 == 6 ? 2 : s[0] >> 4 == 14 ? 3 : s[0] >> 3 == 30 ? 4 : 0;
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (n == 0 || n > len)
		return 0;
	uint32_t v = n == 1 ? s[0] : s[0] & (0x7Fu >> n);
	for (size_t k = 1; k < n; k++) {
		if (s[k] >> 6 != 2)
			return 0;
		v = v << 6 | (s[k] & 0x3Fu);
	}
	if (v < min[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return (int)n;
}

/* Whether the stepper and the validator judge s as the reference does.
 * (Check's assertions are too slow for the millions of calls below.) */
static int agree(const unsigned char *s, size_t len)
{
	uint32_t want = 0, got = 0;
	size_t i = 0, bad = 99, at = 0;
	int n = reference(s, len, &want);
	enum util_utf8_status st = util_utf8_next(s, len, &i, &got);
	if ((st == UTIL_UTF8_OK) != (n > 0) || i != (n > 0 ? (size_t)n : 1) || (n > 0 && got != want))
		return 0;
	/* The validator agrees with stepping through the whole string. */
	while (at < len && (n = reference(s + at, len - at, &want)) > 0)
		at += (size_t)n;
	return util_utf8_valid(s, len, &bad) == (at == len) && (at == len || bad == at);
}

static void check_agree(const unsigned char *s, size_t len)
{
	if (!agree(s, len))
		ck_abort_msg("disagreement on %02x %02x %02x %02x (%zu bytes)", s[0],
			     len > 1 ? s[1] : 0, len > 2 ? s[2] : 0, len > 3 ? s[3] : 0, len);
}

/* Every string of one to three bytes, and four-byte strings over every
 * lead and second byte, are judged as the definition judges them. */
START_TEST(test_utf8_next_agrees_with_the_definition)
{
	static const unsigned char tails[] = { 0x00, 0x41, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF };
	unsigned char s[4];
	for (unsigned a = 0; a < 256; a++) {
		s[0] = (unsigned char)a;
		check_agree(s, 1);
		for (unsigned b = 0; b < 256; b++) {
			s[1] = (unsigned char)b;
			check_agree(s, 2);
			for (unsigned c = 0; c < 256; c++) {
				s[2] = (unsigned char)c;
				check_agree(s, 3);
			}
			for (size_t c = 0; c < sizeof tails; c++) {
				for (size_t d = 0; d < sizeof tails; d++) {
					s[2] = tails[c];
					s[3] = tails[d];
					check_agree(s, 4);
				}
			}
		}
	}
}
END_TEST

TCHECK_MAIN("util", "utf8", 0, test_utf8_accepts_well_formed, test_utf8_rejects_ill_formed,
	    test_utf8_ascii_runs_at_every_offset, test_utf8_next_decodes_every_length,
	    test_utf8_next_names_every_invalid_class, test_utf8_next_steps_through_bad_bytes,
	    test_utf8_next_agrees_with_the_definition)
