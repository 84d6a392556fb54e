/* SPDX-License-Identifier: MIT */
/* Tests of CRC32C: known vectors, hardware against software, chaining. */
#include <stdlib.h>
#include <string.h>

#include "tests/common/tcheck.h"
#include "util/crc32c.h"

START_TEST(test_crc32c_known_vectors)
{
	unsigned char zeros[32] = { 0 }, ones[32];
	memset(ones, 0xFF, sizeof ones);
	ck_assert_uint_eq(util_crc32c(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(util_crc32c_sw(0, "123456789", 9), 0xE3069283u);
	/* RFC 3720 (iSCSI) appendix B.4 vectors. */
	ck_assert_uint_eq(util_crc32c(0, zeros, 32), 0x8A9136AAu);
	ck_assert_uint_eq(util_crc32c(0, ones, 32), 0x62A8AB43u);
	ck_assert_uint_eq(util_crc32c(0, "", 0), 0u);
}
END_TEST

START_TEST(test_crc32c_hw_matches_sw)
{
	unsigned char buf[1031];
	unsigned s = 12345;
	for (size_t i = 0; i < sizeof buf; i++) {
		s = s * 1103515245u + 12345u;
		buf[i] = (unsigned char)(s >> 16);
	}
	/* Every length and misalignment up to a few words exercises the tails. */
	for (size_t off = 0; off < 9; off++)
		for (size_t len = 0; len + off <= sizeof buf; len += 7)
			ck_assert_uint_eq(util_crc32c(0, buf + off, len),
					  util_crc32c_sw(0, buf + off, len));
}
END_TEST

START_TEST(test_crc32c_chains)
{
	const char *s = "the quick brown fox jumps over the lazy dog";
	size_t n = strlen(s);
	uint32_t whole = util_crc32c(0, s, n);
	for (size_t k = 0; k <= n; k++)
		ck_assert_uint_eq(util_crc32c(util_crc32c(0, s, k), s + k, n - k), whole);
}
END_TEST

TCHECK_MAIN("util", "crc32c", 0, test_crc32c_known_vectors, test_crc32c_hw_matches_sw,
	    test_crc32c_chains)
