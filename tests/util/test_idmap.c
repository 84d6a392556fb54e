/* SPDX-License-Identifier: MIT */
/* Tests of the 16-byte-key hash map against a simple reference array. */
#include <stdlib.h>
#include <string.h>

#include "tests/common/tcheck.h"
#include "util/idmap.h"

static void key_of(unsigned char k[16], unsigned n)
{
	memset(k, 0, 16);
	memcpy(k, &n, sizeof n);
	k[15] = (unsigned char)(n * 7);
}

START_TEST(test_idmap_put_get_del)
{
	struct util_idmap m;
	unsigned char k[16];
	uint64_t v;

	util_idmap_init(&m);
	ck_assert_ok(util_idmap_get(&m, "0123456789abcdef", &v));
	ck_assert_ok(util_idmap_del(&m, "0123456789abcdef"));
	for (unsigned i = 0; i < 5000; i++) {
		key_of(k, i);
		ck_assert_ok(util_idmap_put(&m, k, i * 3ull));
	}
	ck_assert_uint_eq(m.len, 5000);
	for (unsigned i = 0; i < 5000; i += 2) {
		key_of(k, i);
		ck_assert_int_eq(util_idmap_del(&m, k), 1);
	}
	for (unsigned i = 0; i < 5000; i++) {
		key_of(k, i);
		int found = util_idmap_get(&m, k, &v);
		ck_assert_int_eq(found, i % 2);
		if (found)
			ck_assert_uint_eq(v, i * 3ull);
	}
	/* Replace keeps one entry. */
	key_of(k, 1);
	ck_assert_ok(util_idmap_put(&m, k, 99));
	ck_assert_int_eq(util_idmap_get(&m, k, &v), 1);
	ck_assert_uint_eq(v, 99);
	ck_assert_uint_eq(m.len, 2500);
	util_idmap_finish(&m);
	util_idmap_finish(NULL);
}
END_TEST

START_TEST(test_idmap_churn_matches_reference)
{
	/* Random puts and deletes over a small key space, so tombstones are
	 * reused and the table is rebuilt many times. */
	enum { N = 300 };
	uint64_t ref[N];
	int live[N] = { 0 };
	struct util_idmap m;
	unsigned char k[16];
	unsigned s = 7;

	util_idmap_init(&m);
	for (int step = 0; step < 200000; step++) {
		s = s * 1103515245u + 12345u;
		unsigned n = (s >> 8) % N;
		key_of(k, n);
		if ((s >> 20) & 1) {
			ck_assert_ok(util_idmap_put(&m, k, step));
			ref[n] = (uint64_t)step;
			live[n] = 1;
		} else {
			ck_assert_int_eq(util_idmap_del(&m, k), live[n]);
			live[n] = 0;
		}
	}
	size_t count = 0;
	for (unsigned n = 0; n < N; n++) {
		uint64_t v;
		key_of(k, n);
		ck_assert_int_eq(util_idmap_get(&m, k, &v), live[n]);
		if (live[n]) {
			ck_assert_uint_eq(v, ref[n]);
			count++;
		}
	}
	ck_assert_uint_eq(m.len, count);
	ck_assert_uint_le(m.cap, 4096);
	util_idmap_finish(&m);
}
END_TEST

TCHECK_MAIN("util", "idmap", 0, test_idmap_put_get_del, test_idmap_churn_matches_reference)
