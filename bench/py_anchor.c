/* SPDX-License-Identifier: MIT */
/* sutra-bench-pyanchor: the C side of bench/python_bench.py, the same reads through libsutra-reader. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/benchutil.h"
#include "sutra/reader.h"

/*
 * Usage: sutra-bench-pyanchor STORE N OPS SEED [DIM]
 * The store holds concepts with ids 1..N (the number in the last 8 bytes,
 * big-endian: the zero-padded hex ids python_bench.py writes). Each
 * operation is timed alone, on ids drawn by the same xorshift as the Python
 * side. Prints one line per operation: "name p50_us p99_us mean_us".
 * With a dimension, also vector search (k=10, ef=50) on queries made
 * from the same xorshift.
 */

const char *bench_name = "sutra-bench-pyanchor";

static uint64_t rng;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void id_of(uint64_t k, uint8_t id[16])
{
	memset(id, 0, 16);
	for (int i = 0; i < 8; i++)
		id[15 - i] = (uint8_t)(k >> (8 * i));
}

static void report(const char *name, uint32_t *ns, size_t n)
{
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += ns[i];
	qsort(ns, n, sizeof *ns, cmp_u32);
	printf("%s %.3f %.3f %.3f\n", name, pct_us(ns, n, 0.5), pct_us(ns, n, 0.99),
	       sum / (double)n / 1000.0);
}

int main(int argc, char **argv)
{
	if (argc < 5)
		die("usage: sutra-bench-pyanchor STORE N OPS SEED [DIM]");
	uint64_t n = strtoull(argv[2], NULL, 10);
	size_t ops = strtoull(argv[3], NULL, 10);
	uint64_t seed = strtoull(argv[4], NULL, 10);
	sutra_reader *r;
	sutra_snapshot *s;
	int rc = sutra_reader_open(argv[1], &r);
	if (rc)
		die("open %s: %s", argv[1], sutra_strerror(rc));
	uint32_t *ns = malloc(ops * sizeof *ns);
	if (!ns || !n || !ops)
		die("bad arguments");
	uint8_t id[16];
	volatile float sink = 0;

	/* As query_concept() outside a snapshot: acquire, get, copy, release. */
	rng = seed;
	float *copy = malloc(65536 * sizeof *copy);
	for (size_t i = 0; i < ops; i++) {
		id_of(next() % n + 1, id);
		uint64_t t = now_ns();
		struct sutra_concept_view v;
		if ((rc = sutra_snapshot_acquire(r, 0, &s)))
			die("acquire: %s", sutra_strerror(rc));
		if ((rc = sutra_snapshot_get(s, id, &v)))
			die("get: %s", sutra_strerror(rc));
		if (v.embedding)
			memcpy(copy, v.embedding, v.vector_dim * sizeof(float));
		sink += copy[0];
		sutra_snapshot_release(s);
		ns[i] = (uint32_t)(now_ns() - t);
	}
	report("get_acquire_copy", ns, ops);

	/* What a read that keeps its snapshot while the epoch stays pays to
	 * learn the newest epoch. */
	for (size_t i = 0; i < ops; i++) {
		uint64_t e, t = now_ns();
		if ((rc = sutra_reader_refresh(r, &e)))
			die("refresh: %s", sutra_strerror(rc));
		ns[i] = (uint32_t)(now_ns() - t);
		sink += (float)e;
	}
	report("refresh", ns, ops);

	/* As snapshot.query_concept(): a get in a held snapshot, zero-copy. */
	if ((rc = sutra_snapshot_acquire(r, 0, &s)))
		die("acquire: %s", sutra_strerror(rc));
	rng = seed;
	for (size_t i = 0; i < ops; i++) {
		id_of(next() % n + 1, id);
		uint64_t t = now_ns();
		struct sutra_concept_view v;
		if ((rc = sutra_snapshot_get(s, id, &v)))
			die("get: %s", sutra_strerror(rc));
		sink += v.strength;
		ns[i] = (uint32_t)(now_ns() - t);
	}
	report("get_in_snapshot", ns, ops);

	rng = seed;
	for (size_t i = 0; i < ops; i++) {
		id_of(next() % n + 1, id);
		uint64_t t = now_ns();
		sink += (float)sutra_snapshot_contains(s, id);
		ns[i] = (uint32_t)(now_ns() - t);
	}
	report("contains_in_snapshot", ns, ops);

	rng = seed;
	struct sutra_neighbor nb[64];
	for (size_t i = 0; i < ops; i++) {
		id_of(next() % n + 1, id);
		size_t cnt, total;
		uint64_t t = now_ns();
		if ((rc = sutra_snapshot_neighbors(s, id, -1, SUTRA_DIR_BOTH, 64, nb, &cnt, &total)))
			die("neighbors: %s", sutra_strerror(rc));
		sink += (float)cnt;
		ns[i] = (uint32_t)(now_ns() - t);
	}
	report("neighbors_in_snapshot", ns, ops);

	if (argc > 5) {
		uint32_t dim = (uint32_t)strtoul(argv[5], NULL, 10);
		float *q = malloc(dim * sizeof *q);
		struct sutra_search_hit hits[10];
		size_t sops = ops < 2000 ? ops : 2000;
		rng = seed;
		for (size_t i = 0; i < sops; i++) {
			for (uint32_t d = 0; d < dim; d++)
				q[d] = (float)(next() % 2001) / 1000.0f - 1.0f;
			size_t got;
			uint64_t t = now_ns();
			if ((rc = sutra_snapshot_vector_search(s, q, dim, 10, 50, NULL, hits, &got)))
				die("vector search: %s", sutra_strerror(rc));
			ns[i] = (uint32_t)(now_ns() - t);
		}
		report("vector_search_k10_ef50", ns, sops);
		free(q);
	}
	(void)sink;
	sutra_snapshot_release(s);
	sutra_reader_close(r);
	free(copy);
	free(ns);
	return 0;
}
