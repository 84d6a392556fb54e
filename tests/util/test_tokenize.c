/* SPDX-License-Identifier: MIT */
/* Tests of the text tokenizer: classes, folding, invalid UTF-8, the length cut, the hash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/common/tcheck.h"
#include "util/tokenize.h"
#include "util/utf8.h"

/* Collects the tokens joined by '|'. */
struct joined {
	char buf[4096];
	size_t len;
	int calls;
	int stop_at;  /* return 7 from this call (1-based); 0 never */
	int bad;      /* a token broke the rules of util/tokenize.h */
};

static int collect(void *arg, const char *tok, size_t len)
{
	struct joined *j = arg;
	/* Plain checks here (Check records every ck_assert, which is slow
	 * in the loop over every code point); toks_n asserts the result. */
	if (len == 0 || len > UTIL_TOKEN_MAX || tok[len] != '\0' ||
	    !util_utf8_valid(tok, len, NULL) || j->len + len + 1 >= sizeof j->buf) {
		j->bad = 1;
		return 99;
	}
	if (j->calls++)
		j->buf[j->len++] = '|';
	memcpy(j->buf + j->len, tok, len);
	j->len += len;
	j->buf[j->len] = '\0';
	return j->calls == j->stop_at ? 7 : 0;
}

static const char *toks_n(struct joined *j, const char *s, size_t n)
{
	j->len = 0;
	j->calls = j->stop_at = j->bad = 0;
	j->buf[0] = '\0';
	if (util_tokenize(s, n, collect, j) != 0 || j->bad)
		ck_abort_msg("bad token from \"%.*s\"", (int)n, s);
	return j->buf;
}

#define TOKS(s, want)                                                                      \
	do {                                                                               \
		struct joined j_;                                                          \
		ck_assert_str_eq(toks_n(&j_, (s), strlen(s)), (want));                     \
	} while (0)

START_TEST(test_tokenize_ascii)
{
	TOKS("Hello, World! foo_bar baz-qux it's 42abc", "hello|world|foo|bar|baz|qux|it|s|42abc");
	TOKS("  \t\n...!!", "");
	TOKS("MiXeD CaSe", "mixed|case");
	TOKS("3.14 v2 2026-11-26", "3|14|v2|2026|11|26");
	TOKS("a\0b", "a"); /* strlen stops at NUL; see the next case */
	struct joined j;
	ck_assert_str_eq(toks_n(&j, "a\0b", 3), "a|b"); /* NUL is a separator */
}
END_TEST

START_TEST(test_tokenize_fold_pairs)
{
	/* Upper/lower pairs that alternate (Latin Extended-A: Ā ā Ă ă),
	 * the DŽ triple (upper, title, lower), and a sign that folds into
	 * another block (U+2126 OHM SIGN to ω). */
	TOKS("\xc4\x80\xc4\x81\xc4\x82\xc4\x83", "\xc4\x81\xc4\x81\xc4\x83\xc4\x83");
	TOKS("\xc7\x84\xc7\x85\xc7\x86\xc7\x87", "\xc7\x86\xc7\x86\xc7\x86\xc7\x89");
	TOKS("\xe2\x84\xa6\xce\xa9\xcf\x89", "\xcf\x89\xcf\x89\xcf\x89");
}
END_TEST

START_TEST(test_tokenize_numbers_and_symbols)
{
	/* No (superscripts, fractions) and Nl (Roman numerals) are numbers. */
	TOKS("x\xc2\xb2 \xc2\xbd \xe2\x85\xa0", "x\xc2\xb2|\xc2\xbd|\xe2\x85\xb0"); /* Ⅰ folds to ⅰ */
	/* Symbols and punctuation separate: © € → − ‘’ “” … */
	TOKS("a\xc2\xa9" "b\xe2\x82\xac" "c\xe2\x86\x92" "d\xe2\x88\x92" "e\xe2\x80\x99" "f\xe2\x80\xa6" "g",
	     "a|b|c|d|e|f|g");
	/* U+24B6 CIRCLED LATIN CAPITAL LETTER A is a symbol (So). */
	TOKS("x\xe2\x92\xb6y", "x|y");
	/* No-break space, ideographic space, zero-width joiner separate. */
	TOKS("a\xc2\xa0" "b\xe3\x80\x80" "c\xe2\x80\x8d" "d", "a|b|c|d");
}
END_TEST

START_TEST(test_tokenize_german_sharp_s)
{
	/* Simple folding: ẞ (U+1E9E) folds to ß; ß stays ß (full folding
	 * would give "ss", which simple folding never does). */
	TOKS("Stra\xc3\x9f" "e STRASSE STRA\xe1\xba\x9e" "E",
	     "stra\xc3\x9f" "e|strasse|stra\xc3\x9f" "e");
	TOKS("\xc3\x84RGER \xc3\xa4rger", "\xc3\xa4rger|\xc3\xa4rger");
}
END_TEST

START_TEST(test_tokenize_turkish_i)
{
	/* İ (U+0130) has only full and Turkic foldings: it stays İ. ı
	 * (U+0131) has none. I folds to i (no Turkic rule). */
	TOKS("\xc4\xb0stanbul ISTANBUL istanbul \xc4\xb1rmak",
	     "\xc4\xb0stanbul|istanbul|istanbul|\xc4\xb1rmak");
}
END_TEST

START_TEST(test_tokenize_greek_sigma)
{
	/* Σ, σ and final ς all fold to σ. */
	TOKS("\xce\xa3\xce\x9f\xce\xa6\xce\x9f\xce\xa3 \xcf\x83\xce\xbf\xcf\x86\xce\xbf\xcf\x82 "
	     "\xcf\x83\xce\xbf\xcf\x86\xce\xbf\xcf\x83",
	     "\xcf\x83\xce\xbf\xcf\x86\xce\xbf\xcf\x83|\xcf\x83\xce\xbf\xcf\x86\xce\xbf\xcf\x83|"
	     "\xcf\x83\xce\xbf\xcf\x86\xce\xbf\xcf\x83");
	/* ᾼ (U+1FBC) has a full folding "αι" and the simple one ᾳ (U+1FB3). */
	TOKS("\xe1\xbe\xbc", "\xe1\xbe\xb3");
}
END_TEST

START_TEST(test_tokenize_cyrillic_cjk)
{
	TOKS("\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\x9c\xd0\x98\xd0\xa0!",
	     "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82|\xd0\xbc\xd0\xb8\xd1\x80");
	/* CJK runs are not segmented: one token up to a separator (here
	 * the fullwidth comma U+FF0C). Kana (Lo, Lm) too. */
	TOKS("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xef\xbc\x8c\xe6\xbc\xa2\xe5\xad\x97",
	     "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e|\xe6\xbc\xa2\xe5\xad\x97");
	TOKS("\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88\xe3\x83\xbc",
	     "\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88\xe3\x83\xbc");
	/* Fullwidth Latin folds within its block: Ａ → ａ. */
	TOKS("\xef\xbc\xa1\xef\xbc\xa2", "\xef\xbd\x81\xef\xbd\x82");
}
END_TEST

START_TEST(test_tokenize_emoji_separate)
{
	TOKS("a\xf0\x9f\x98\x80" "b \xf0\x9f\x8c\xb1 c\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd" "d",
	     "a|b|c|d");
	/* A 4-byte letter is a letter: 𝐀 (U+1D400, Lu, no folding). */
	TOKS("\xf0\x9d\x90\x80x", "\xf0\x9d\x90\x80x");
}
END_TEST

START_TEST(test_tokenize_combining_marks)
{
	/* A mark after a letter stays in the word (no normalisation: the
	 * decomposed é is a different token from the precomposed one). */
	TOKS("cafe\xcc\x81 caf\xc3\xa9", "cafe\xcc\x81|caf\xc3\xa9");
	TOKS("O\xcc\x88l", "o\xcc\x88l");
	/* With no word before it, a mark is a separator. */
	TOKS("\xcc\x81" "abc", "abc");
	TOKS("x \xcc\x81\xcc\x81y", "x|y");
	/* Devanagari: virama (Mn) and vowel sign (Mc) inside one word. */
	TOKS("\xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8\xe0\xa5\x8d\xe0\xa4\xa4\xe0\xa5\x87 x",
	     "\xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8\xe0\xa5\x8d\xe0\xa4\xa4\xe0\xa5\x87|x");
	/* U+0345 (Mn) folds to ι inside a word. */
	TOKS("\xce\xb1\xcd\x85", "\xce\xb1\xce\xb9");
}
END_TEST

START_TEST(test_tokenize_invalid_utf8)
{
	TOKS("ab\x80" "cd", "ab|cd");                  /* lone continuation */
	TOKS("ab\xbf\xbf", "ab");
	TOKS("ab\xe2\x82", "ab");                      /* truncated at the end */
	TOKS("ab\xe2\x82" "cd", "ab|cd");              /* truncated mid-text */
	TOKS("ab\xf0\x9f\x98", "ab");
	TOKS("x\xc0\xaf" "y", "x|y");                  /* overlong '/' */
	TOKS("x\xc1\x81" "y", "x|y");                  /* overlong 'A' is not a letter */
	TOKS("x\xe0\x81\x81" "y", "x|y");
	TOKS("x\xf0\x80\x81\x81" "y", "x|y");
	TOKS("a\xed\xa0\x80" "b", "a|b");              /* surrogate U+D800 */
	TOKS("a\xed\xbf\xbf" "b", "a|b");              /* U+DFFF */
	TOKS("a\xf4\x90\x80\x80" "b", "a|b");          /* above U+10FFFF */
	TOKS("a\xf8\x88\x80\x80\x80" "b\xff" "c\xfe", "a|b|c");
	/* A bad byte between two halves of a word splits it. */
	TOKS("hel\x80lo", "hel|lo");
}
END_TEST

START_TEST(test_tokenize_cut_at_limit)
{
	char s[256], want[256];
	memset(s, 'A', 70);
	strcpy(s + 70, " next");
	memset(want, 'a', 64);
	strcpy(want + 64, "|next");
	TOKS(s, want);
	/* 63 bytes, then a 2-byte é that does not fit: cut before it, and
	 * the rest of the word (even 'b', which would fit) is dropped. */
	memset(s, 'a', 63);
	strcpy(s + 63, "\xc3\xa9" "bc z");
	memset(want, 'a', 63);
	strcpy(want + 63, "|z");
	TOKS(s, want);
	/* 62 + 2 = 64 bytes fit exactly. */
	memset(s, 'a', 62);
	strcpy(s + 62, "\xc3\xa9");
	TOKS(s, s);
	/* The limit applies after folding: Ⱥ (U+023A, 2 bytes) folds to ⱥ
	 * (U+2C65, 3 bytes); 22 of them make 66 folded bytes, cut to 21. */
	s[0] = want[0] = '\0';
	for (int i = 0; i < 22; i++) {
		strcat(s, "\xc8\xba");
		if (i < 21)
			strcat(want, "\xe2\xb1\xa5");
	}
	TOKS(s, want);
	/* And the other way: K (U+212A KELVIN SIGN, 3 bytes) folds to 'k'. */
	s[0] = want[0] = '\0';
	for (int i = 0; i < 40; i++) {
		strcat(s, "\xe2\x84\xaa");
		strcat(want, "k");
	}
	TOKS(s, want);
}
END_TEST

START_TEST(test_tokenize_empty_and_stop)
{
	struct joined j;
	ck_assert_str_eq(toks_n(&j, "", 0), "");
	ck_assert_int_eq(j.calls, 0);
	ck_assert_ok(util_tokenize(NULL, 0, collect, &j));
	memset(&j, 0, sizeof j);
	j.stop_at = 2;
	ck_assert_int_eq(util_tokenize("one two three", 13, collect, &j), 7);
	ck_assert_int_eq(j.calls, 2);
	ck_assert_str_eq(j.buf, "one|two");
	/* A stop on the last token, which ends the input. */
	memset(&j, 0, sizeof j);
	j.stop_at = 3;
	ck_assert_int_eq(util_tokenize("one two three", 13, collect, &j), 7);
}
END_TEST

/* Every code point alone: at most one token, valid UTF-8 (checked by
 * collect), and folding is idempotent: the token tokenizes to itself. */
START_TEST(test_tokenize_every_code_point)
{
	int letters = 0;
	for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
		if (cp >= 0xD800 && cp <= 0xDFFF)
			continue;
		char s[8];
		size_t n;
		if (cp < 0x80) {
			s[0] = (char)cp;
			n = 1;
		} else if (cp < 0x800) {
			s[0] = (char)(0xC0 | cp >> 6);
			s[1] = (char)(0x80 | (cp & 0x3F));
			n = 2;
		} else if (cp < 0x10000) {
			s[0] = (char)(0xE0 | cp >> 12);
			s[1] = (char)(0x80 | (cp >> 6 & 0x3F));
			s[2] = (char)(0x80 | (cp & 0x3F));
			n = 3;
		} else {
			s[0] = (char)(0xF0 | cp >> 18);
			s[1] = (char)(0x80 | (cp >> 12 & 0x3F));
			s[2] = (char)(0x80 | (cp >> 6 & 0x3F));
			s[3] = (char)(0x80 | (cp & 0x3F));
			n = 4;
		}
		struct joined j, k;
		toks_n(&j, s, n);
		if (j.calls > 1)
			ck_abort_msg("U+%04X gives %d tokens", (unsigned)cp, j.calls);
		if (!j.calls)
			continue;
		letters++;
		toks_n(&k, j.buf, j.len);
		if (k.calls != 1 || strcmp(j.buf, k.buf) != 0)
			ck_abort_msg("U+%04X folds to a token that is not stable", (unsigned)cp);
	}
	/* Unicode 14.0.0 has 133,547 code points in L* and N*; marks
	 * alone make no token. */
	ck_assert_int_eq(letters, 133547);
}
END_TEST

START_TEST(test_tokenize_hash_values)
{
	/* FNV-1a 64 then splitmix64's finaliser (FORMAT 10.6); values
	 * computed independently. */
	ck_assert_uint_eq(util_token_hash("", 0), 0xf52a15e9a9b5e89bull);
	ck_assert_uint_eq(util_token_hash("a", 1), 0x02c0bdbf481420f8ull);
	ck_assert_uint_eq(util_token_hash("hello", 5), 0x16fe05a1c75bcd0full);
	ck_assert_uint_eq(util_token_hash("stra\xc3\x9f" "e", 7), 0x392b421b74e861baull);
	/* More, pinned with the values the code gave when util_mix64 took
	 * over the finaliser: the TERMS table on disk depends on them. */
	ck_assert_uint_eq(util_token_hash("photosynthesis", 14), 0x1a3e5cae373fc0f6ull);
	ck_assert_uint_eq(util_token_hash("42", 2), 0xa428ce5471163b02ull);
	ck_assert_uint_eq(util_token_hash("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 9),
			  0x77e327b1b6755706ull);
	ck_assert_uint_eq(util_token_hash("\xcf\x83\xce\xaf\xcf\x83\xcf\x85\xcf\x86\xce\xbf"
					  "\xcf\x83", 14),
			  0x5d9f03c1bd986d13ull);
	char longest[UTIL_TOKEN_MAX];
	memset(longest, 'a', sizeof longest);
	ck_assert_uint_eq(util_token_hash(longest, sizeof longest), 0xc0ec7c7004e81535ull);
}
END_TEST

TCHECK_MAIN("util", "tokenize", 120, test_tokenize_ascii, test_tokenize_fold_pairs,
	    test_tokenize_numbers_and_symbols, test_tokenize_german_sharp_s,
	    test_tokenize_turkish_i, test_tokenize_greek_sigma, test_tokenize_cyrillic_cjk,
	    test_tokenize_emoji_separate, test_tokenize_combining_marks,
	    test_tokenize_invalid_utf8, test_tokenize_cut_at_limit, test_tokenize_empty_and_stop,
	    test_tokenize_every_code_point, test_tokenize_hash_values)
