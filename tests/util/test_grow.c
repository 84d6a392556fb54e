/* SPDX-License-Identifier: MIT */
/* Tests of util_grow(): doubling, the first capacity, overflow, and the array kept on failure. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "tests/common/tcheck.h"
#include "util/grow.h"

START_TEST(test_grow_doubles_from_first)
{
	uint32_t *a = NULL;
	size_t cap = 0;
	ck_assert_ok(UTIL_GROW(a, cap, 1, 16));
	ck_assert_uint_eq(cap, 16);
	for (uint32_t i = 0; i < 16; i++)
		a[i] = i;
	ck_assert_ok(UTIL_GROW(a, cap, 16, 16));
	ck_assert_uint_eq(cap, 16);
	ck_assert_ok(UTIL_GROW(a, cap, 17, 16));
	ck_assert_uint_eq(cap, 32);
	/* A jump past the double goes straight to a power-of-two multiple. */
	ck_assert_ok(UTIL_GROW(a, cap, 200, 16));
	ck_assert_uint_eq(cap, 256);
	for (uint32_t i = 0; i < 16; i++)
		ck_assert_uint_eq(a[i], i);
	free(a);
}
END_TEST

START_TEST(test_grow_refuses_overflow_and_keeps_the_array)
{
	uint64_t *a = NULL;
	size_t cap = 0;
	ck_assert_ok(UTIL_GROW(a, cap, 4, 4));
	a[3] = 42;
	uint64_t *before = a;
	ck_assert_err(UTIL_GROW(a, cap, SIZE_MAX / 2, 4), -ENOMEM);
	ck_assert_err(UTIL_GROW(a, cap, SIZE_MAX, 4), -ENOMEM);
	ck_assert_ptr_eq(a, before);
	ck_assert_uint_eq(cap, 4);
	ck_assert_uint_eq(a[3], 42);
	free(a);
}
END_TEST

START_TEST(test_grow_first_zero_starts_at_one)
{
	char *a = NULL;
	size_t cap = 0;
	ck_assert_ok(UTIL_GROW(a, cap, 1, 0));
	ck_assert_uint_eq(cap, 1);
	ck_assert_ok(UTIL_GROW(a, cap, 3, 0));
	ck_assert_uint_eq(cap, 4);
	free(a);
}
END_TEST

TCHECK_MAIN("util", "grow", 0, test_grow_doubles_from_first,
	    test_grow_refuses_overflow_and_keeps_the_array, test_grow_first_zero_starts_at_one)
