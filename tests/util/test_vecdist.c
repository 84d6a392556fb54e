/* SPDX-License-Identifier: MIT */
/* Vector kernels: the dispatched dot product agrees with a double-precision sum, normalising refuses bad vectors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/common/tcheck.h"
#include "util/random.h"
#include "util/vecdist.h"

static float rnd(uint64_t *s)
{
	return (float)((double)(util_splitmix64(s) >> 11) * 0x1p-53 * 2.0 - 1.0);
}

START_TEST(test_vecdist_dot_matches_a_double_sum)
{
	/* Every length 0..300 (covers the 32-wide body, the 8-wide loop and the
	 * scalar tail) at every misalignment of a float within 32 bytes. */
	uint64_t s = 7;
	float *a = malloc(320 * sizeof *a), *b = malloc(320 * sizeof *b);
	for (int i = 0; i < 320; i++) {
		a[i] = rnd(&s);
		b[i] = rnd(&s);
	}
	util_dot_fn f = util_vec_dot_fn();
	for (size_t n = 0; n <= 300; n++)
		for (size_t off = 0; off < 8; off++) {
			double want = 0, mag = 0;
			for (size_t i = 0; i < n; i++) {
				want += (double)a[off + i] * (double)b[i];
				mag += fabs((double)a[off + i] * (double)b[i]);
			}
			float got = util_dot(a + off, b, n);
			ck_assert_msg(fabs((double)got - want) <= 5e-5 * (mag + 1), "n=%zu off=%zu: %g vs %g", n, off,
				      (double)got, want);
			ck_assert(f(a + off, b, n) == got);
		}
	ck_assert(util_norm2(a, 300) == util_dot(a, a, 300));
	free(a);
	free(b);
}
END_TEST

START_TEST(test_vecdist_normalize_gives_unit_length)
{
	float v[37], out[37];
	uint64_t s = 11;
	for (int i = 0; i < 37; i++)
		v[i] = rnd(&s) * 1e30f; /* a float sum of squares would overflow */
	ck_assert_ok(util_normalize(v, out, 37));
	ck_assert(fabsf(util_norm2(out, 37) - 1.0f) < 1e-5f);
	/* In place. */
	ck_assert_ok(util_normalize(v, v, 37));
	ck_assert(memcmp(v, out, sizeof v) == 0);
}
END_TEST

START_TEST(test_vecdist_normalize_refuses_zero_nan_inf)
{
	float v[5] = { 0 }, out[5] = { 42, 42, 42, 42, 42 };
	ck_assert_int_eq(util_normalize(v, out, 5), -1);
	v[2] = NAN;
	ck_assert_int_eq(util_normalize(v, out, 5), -1);
	v[2] = INFINITY;
	ck_assert_int_eq(util_normalize(v, out, 5), -1);
	/* out untouched on failure */
	for (int i = 0; i < 5; i++)
		ck_assert(out[i] == 42);
}
END_TEST

START_TEST(test_vecdist_kernel_name)
{
	const char *k = util_vec_kernel();
	ck_assert(!strcmp(k, "avx2+fma") || !strcmp(k, "portable"));
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		ck_assert_str_eq(k, "avx2+fma");
#endif
}
END_TEST

TCHECK_MAIN("util", "vecdist", 0, test_vecdist_dot_matches_a_double_sum,
	    test_vecdist_normalize_gives_unit_length, test_vecdist_normalize_refuses_zero_nan_inf,
	    test_vecdist_kernel_name)
