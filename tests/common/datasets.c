/* SPDX-License-Identifier: MIT */
/* Real vector data sets for recall tests: Debian's fashion-mnist and the npm fiori-docs embeddings. */
#include "tests/common/datasets.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

const char *tdata_missing(const char *name)
{
	static char why[1400];
	char path[1200];
	if (strcmp(name, "fashion") == 0) {
		if (access(FASHION_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0 ||
		    access(FASHION_DIR "/t10k-images-idx3-ubyte.gz", R_OK) != 0)
			return "fashion-mnist is not in " FASHION_DIR
			       " (install Debian's dataset-fashion-mnist: scripts/deps)";
		return NULL;
	}
	const char *dir = getenv("SUTRA_FIORI_DIR");
	if (!dir)
		return "SUTRA_FIORI_DIR is not set (meson test sets it; scripts/fetch-data "
		       "fetches the npm package)";
	snprintf(path, sizeof path, "%s/package/data/embeddings/embeddings.bin", dir);
	if (access(path, R_OK) != 0) {
		snprintf(why, sizeof why, "the fiori embeddings are not at %s (run scripts/fetch-data)",
			 path);
		return why;
	}
	return NULL;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int tdata_fashion(int test, size_t n, float **out)
{
	char cmd[256];
	unsigned char hdr[16];
	snprintf(cmd, sizeof cmd, "gzip -dc %s/%s-images-idx3-ubyte.gz", FASHION_DIR,
		 test ? "t10k" : "train");
	FILE *f = popen(cmd, "r");
	if (!f) {
		perror("popen gzip");
		return -1;
	}
	int rc = -1;
	float *v = NULL;
	unsigned char *px = malloc(TDATA_FASHION_DIM);
	if (!px || fread(hdr, 1, 16, f) != 16 || be32(hdr) != 0x803 || be32(hdr + 4) < n ||
	    be32(hdr + 8) * be32(hdr + 12) != TDATA_FASHION_DIM) {
		fprintf(stderr, "fashion-mnist: %s is missing or not an IDX image file "
				"(install Debian's dataset-fashion-mnist: scripts/deps)\n", FASHION_DIR);
		goto out;
	}
	if (!(v = malloc(n * TDATA_FASHION_DIM * sizeof *v)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (fread(px, 1, TDATA_FASHION_DIM, f) != TDATA_FASHION_DIM)
			goto out;
		for (size_t j = 0; j < TDATA_FASHION_DIM; j++)
			v[i * TDATA_FASHION_DIM + j] = px[j];
	}
	*out = v;
	v = NULL;
	rc = 0;
out:
	free(v);
	free(px);
	pclose(f);
	return rc;
}

int tdata_fiori(float **out)
{
	const char *dir = getenv("SUTRA_FIORI_DIR");
	char path[1024];
	if (!dir) {
		fprintf(stderr, "fiori: SUTRA_FIORI_DIR is not set (scripts/fetch-data fetches "
				"the npm package; meson test sets it)\n");
		return -1;
	}
	snprintf(path, sizeof path, "%s/package/data/embeddings/embeddings.bin", dir);
	FILE *f = fopen(path, "rb");
	size_t n = (size_t)TDATA_FIORI_COUNT * TDATA_FIORI_DIM;
	float *v = malloc(n * sizeof *v);
	int rc = -1;
	if (!f || !v || fread(v, sizeof *v, n, f) != n || fgetc(f) != EOF) {
		fprintf(stderr, "fiori: %s is missing or not %u x %u floats (run scripts/fetch-data)\n",
			path, TDATA_FIORI_COUNT, TDATA_FIORI_DIM);
		free(v);
	} else {
		*out = v;
		rc = 0;
	}
	if (f)
		fclose(f);
	return rc;
}

void tdata_exact_knn(const float *base, size_t n, unsigned dim, const float *q, size_t k,
		     size_t *out)
{
	double *best = malloc(k * sizeof *best);
	size_t have = 0;
	double qn = 0;
	for (unsigned j = 0; j < dim; j++)
		qn += (double)q[j] * (double)q[j];
	for (size_t i = 0; i < n; i++) {
		double dot = 0, en = 0;
		for (unsigned j = 0; j < dim; j++) {
			dot += (double)q[j] * (double)base[i * dim + j];
			en += (double)base[i * dim + j] * (double)base[i * dim + j];
		}
		double sim = en > 0 ? dot / sqrt(en * qn) : -2;
		/* Insertion into the sorted best list. */
		size_t p = have < k ? have : k;
		if (p == k && sim <= best[k - 1])
			continue;
		while (p > 0 && best[p - 1] < sim) {
			if (p < k) {
				best[p] = best[p - 1];
				out[p] = out[p - 1];
			}
			p--;
		}
		best[p] = sim;
		out[p] = i;
		if (have < k)
			have++;
	}
	free(best);
}
