/* SPDX-License-Identifier: MIT */
/* Real vector data sets for recall tests: Debian's fashion-mnist and the npm fiori-docs embeddings. */
#ifndef TESTS_COMMON_DATASETS_H
#define TESTS_COMMON_DATASETS_H

/*
 * fashion-mnist comes from Debian's dataset-fashion-mnist package (IDX
 * files, gzip'ed, read through `gzip -dc`): 28x28 images as 784-d float
 * vectors of the pixel values. The fiori set is the npm package
 * @sap-ux/fiori-docs-embeddings, fetched by scripts/fetch-data into a
 * directory named by SUTRA_FIORI_DIR: 778 all-MiniLM-L6-v2 embeddings of
 * 384 floats in data/embeddings/embeddings.bin (row-major, little-endian,
 * no header). Both loaders print what is missing and return -1.
 */

#include <stddef.h>

#define TDATA_FASHION_DIM 784u
#define TDATA_FIORI_DIM 384u
#define TDATA_FIORI_COUNT 778u

/* The first n vectors of the training set (test = 0) or of the test set
 * (test = 1), malloc'ed into *out (n * 784 floats). 0 or -1. */
int tdata_fashion(int test, size_t n, float **out);

/* The 778 fiori embeddings, malloc'ed into *out. 0 or -1. */
int tdata_fiori(float **out);

/* NULL when the data set name ("fashion" or "fiori") is on this machine,
 * else a sentence saying what is missing and how to get it, for a test
 * that must then be reported as skipped (never failed: missing data is
 * not a defect of the code). */
const char *tdata_missing(const char *name);

/* The ids of the k nearest of base[0..n) to q by cosine, best first
 * (exact; ties by index). */
void tdata_exact_knn(const float *base, size_t n, unsigned dim, const float *q, size_t k,
		     size_t *out);

#endif /* TESTS_COMMON_DATASETS_H */
