/* SPDX-License-Identifier: MIT */
/* Pins util_mix64(): segment hash tables and token hashes on disk depend on its exact output. */
#include <stdint.h>

#include "tests/common/tcheck.h"
#include "util/hash.h"

START_TEST(test_hash_mix64_is_pinned)
{
	/* Values of the splitmix64 finaliser, computed independently. */
	ck_assert_uint_eq(util_mix64(0), 0);
	ck_assert_uint_eq(util_mix64(1), 0x5692161d100b05e5ull);
	ck_assert_uint_eq(util_mix64(0x0123456789abcdefull), 0xb2c058e4ebb5112cull);
	ck_assert_uint_eq(util_mix64(UINT64_MAX), 0xb4d055fcf2cbbd7bull);
}
END_TEST

START_TEST(test_hash_mix128_is_pinned)
{
	ck_assert_uint_eq(util_mix128(0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull),
			  0xb7664a43b32059efull);
	/* Both halves matter. */
	ck_assert_uint_ne(util_mix128(1, 2), util_mix128(2, 1));
}
END_TEST

/* The published FNV-1a 64 test vectors. */
START_TEST(test_hash_fnv1a64_is_pinned)
{
	ck_assert_uint_eq(util_fnv1a64("", 0), 0xcbf29ce484222325ull);
	ck_assert_uint_eq(util_fnv1a64("a", 1), 0xaf63dc4c8601ec8cull);
	ck_assert_uint_eq(util_fnv1a64("foobar", 6), 0x85944171f73967e8ull);
}
END_TEST

TCHECK_MAIN("util", "hash", 0, test_hash_mix64_is_pinned, test_hash_mix128_is_pinned,
	    test_hash_fnv1a64_is_pinned)
