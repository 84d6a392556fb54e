/* SPDX-License-Identifier: MIT */
/* The hnswlib anchor of sutra-bench-vector: a C interface to hnswlib (C++), built only where hnswlib is installed. */
#ifndef BENCH_VECTOR_ANCHOR_H
#define BENCH_VECTOR_ANCHOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct anchor;

/* An hnswlib InnerProductSpace index for n vectors of dim floats (already
 * unit length), M and ef_construction as given, hnswlib's default seed.
 * NULL on failure. */
struct anchor *anchor_create(uint32_t dim, uint32_t n, uint32_t m, uint32_t ef_construction);
void anchor_add(struct anchor *a, const float *vec, uint32_t label);
void anchor_set_ef(struct anchor *a, uint32_t ef);
/* The k nearest labels to q, nearest first; returns how many. */
uint32_t anchor_search(struct anchor *a, const float *q, uint32_t k, uint32_t *labels);
void anchor_destroy(struct anchor *a);
/* How the anchor was compiled, for the report. */
const char *anchor_flags(void);

#ifdef __cplusplus
}
#endif

#endif /* BENCH_VECTOR_ANCHOR_H */
