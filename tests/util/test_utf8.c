/* SPDX-License-Identifier: MIT */
/* Tests of strict UTF-8 validation. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("utf8");
	tcase_add_test(tc, test_utf8_accepts_well_formed);
	tcase_add_test(tc, test_utf8_rejects_ill_formed);
	tcase_add_test(tc, test_utf8_ascii_runs_at_every_offset);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
