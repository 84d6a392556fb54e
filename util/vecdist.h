/* SPDX-License-Identifier: MIT */
/* Vector kernels for search: dot products and norms, vectorised for the CPU found at run time. */
#ifndef UTIL_VECDIST_H
#define UTIL_VECDIST_H

/*
 * Distance computation is where vector search spends its time, so these
 * kernels have an AVX2+FMA form (x86-64) chosen once at run time from
 * what the CPU reports, and a portable form used everywhere else. Both
 * give the same results up to float rounding (the order of additions
 * differs). Thread-safe.
 */

#include <stddef.h>

/* The dot product of a and b (n floats each, any alignment). */
float util_dot(const float *a, const float *b, size_t n);

/* The squared Euclidean norm of a. */
float util_norm2(const float *a, size_t n);

/* Writes a / |a| into out (may equal a). Returns 0, or -1 when a has a
 * zero, NaN or Inf norm (out is then untouched). */
int util_normalize(const float *a, float *out, size_t n);

/* The dot product kernel in use, for loops that call it many times: fetch
 * it once and call through the pointer, with no dispatch per call. */
typedef float (*util_dot_fn)(const float *a, const float *b, size_t n);
util_dot_fn util_vec_dot_fn(void);

/* The name of the kernel in use ("avx2+fma" or "portable"), for benchmarks. */
const char *util_vec_kernel(void);

#endif /* UTIL_VECDIST_H */
