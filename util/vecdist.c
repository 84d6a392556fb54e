/* SPDX-License-Identifier: MIT */
/* Vector kernels: dot products and norms, AVX2+FMA when the CPU has it, portable C otherwise. */
#include "util/vecdist.h"

#include <math.h>

/*
 * The build targets baseline x86-64 (no -march=native), so the AVX2+FMA
 * forms are compiled with a target attribute and chosen at run time from
 * __builtin_cpu_supports(). The choice is made once, on first use, and
 * kept in a function pointer; util_vec_dot_fn() hands that pointer to hot
 * loops (HNSW search) so that they pay no dispatch per call.
 *
 * Four independent accumulators hide the FMA latency (4 cycles, two ports):
 * one accumulator would make the loop latency-bound.
 */

static float dot_portable(const float *a, const float *b, size_t n)
{
	/* Four partial sums: the compiler vectorises this at -O2 with SSE. */
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	size_t i = 0;
	for (; i + 4 <= n; i += 4) {
		s0 += a[i] * b[i];
		s1 += a[i + 1] * b[i + 1];
		s2 += a[i + 2] * b[i + 2];
		s3 += a[i + 3] * b[i + 3];
	}
	for (; i < n; i++)
		s0 += a[i] * b[i];
	return (s0 + s1) + (s2 + s3);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_AVX2_KERNEL 1

__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v)
{
	__m128 lo = _mm256_castps256_ps128(v);
	__m128 hi = _mm256_extractf128_ps(v, 1);
	lo = _mm_add_ps(lo, hi);
	lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
	lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
	return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, size_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	__m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
		s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
		s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
	}
	for (; i + 8 <= n; i += 8)
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
	float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
	for (; i < n; i++)
		s += a[i] * b[i];
	return s;
}
#endif

static float dot_first(const float *a, const float *b, size_t n);

/* Starts at a resolver that picks the kernel and replaces itself; racing
 * first calls all store the same value, so a relaxed atomic is enough. */
static util_dot_fn dot_impl = dot_first;

static util_dot_fn resolve(void)
{
	util_dot_fn f = dot_portable;
#ifdef HAVE_AVX2_KERNEL
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		f = dot_avx2;
#endif
	__atomic_store_n(&dot_impl, f, __ATOMIC_RELAXED);
	return f;
}

static float dot_first(const float *a, const float *b, size_t n)
{
	return resolve()(a, b, n);
}

util_dot_fn util_vec_dot_fn(void)
{
	util_dot_fn f = __atomic_load_n(&dot_impl, __ATOMIC_RELAXED);
	return f == dot_first ? resolve() : f;
}

float util_dot(const float *a, const float *b, size_t n)
{
	return __atomic_load_n(&dot_impl, __ATOMIC_RELAXED)(a, b, n);
}

float util_norm2(const float *a, size_t n)
{
	return util_dot(a, a, n);
}

int util_normalize(const float *a, float *out, size_t n)
{
	/* The norm in double: a float sum of squares could overflow to Inf for
	 * finite components above 2^64, and this runs once per stored vector. */
	double s = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(a[i]))
			return -1;
		s += (double)a[i] * (double)a[i];
	}
	if (!(s > 0) || !isfinite(s))
		return -1;
	double inv = 1.0 / sqrt(s);
	for (size_t i = 0; i < n; i++)
		out[i] = (float)((double)a[i] * inv);
	return 0;
}

const char *util_vec_kernel(void)
{
	util_dot_fn f = util_vec_dot_fn();
#ifdef HAVE_AVX2_KERNEL
	if (f == dot_avx2)
		return "avx2+fma";
#endif
	(void)f;
	return "portable";
}
