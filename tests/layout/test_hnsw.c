/* SPDX-License-Identifier: MIT */
/* HNSW sections: recall against exact search, same bytes from the same inputs, filters, bounds, damage. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout/hnsw.h"
#include "tests/common/datasets.h"
#include "tests/common/tcheck.h"
#include "util/endian.h"
#include "util/random.h"
#include "util/vecdist.h"

/* Debian's dataset-fashion-mnist (scripts/deps installs it); the variable
 * lets a machine without it point at a copy. */

struct data {
	uint32_t dim, n, nq;
	float *base, *queries; /* unit length */
};

static float urand(uint64_t *s)
{
	return (float)((double)(util_splitmix64(s) >> 11) * 0x1p-53);
}

/* n points around 40 random centres in [-1, 1]^dim, noise 2 per
 * component (a sum of three uniforms: the clusters overlap, so that
 * the graph has work to do), normalised. */
static float *clustered(uint32_t n, uint32_t dim, uint64_t seed)
{
	uint64_t cs = 1234, s = seed;
	float *centres = malloc(sizeof(float) * 40 * dim);
	float *v = malloc(sizeof(float) * n * dim);
	for (uint32_t i = 0; i < 40 * dim; i++)
		centres[i] = urand(&cs) * 2 - 1;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t c = (uint32_t)(util_splitmix64(&s) % 40);
		float *row = v + (size_t)i * dim;
		for (uint32_t j = 0; j < dim; j++)
			row[j] = centres[c * dim + j] +
				 2.0f * (urand(&s) + urand(&s) + urand(&s) - 1.5f);
		ck_assert_ok(util_normalize(row, row, dim));
	}
	free(centres);
	return v;
}

/* The first n images of fashion-mnist's training (test = 0) or test set
 * as unit vectors (tests/common/datasets.c reads them; all-zero images,
 * which have no direction, are skipped, so a few spare ones are read). */
static float *load_fashion(int test, uint32_t n, uint32_t *dim)
{
	enum { SPARE = 64 };
	float *v;
	ck_assert_msg(tdata_fashion(test, n + SPARE, &v) == 0,
		      "cannot read fashion-mnist (install dataset-fashion-mnist: scripts/deps)");
	uint32_t got = 0;
	for (uint32_t i = 0; i < n + SPARE && got < n; i++) {
		float *row = v + (size_t)got * TDATA_FASHION_DIM;
		memmove(row, v + (size_t)i * TDATA_FASHION_DIM, TDATA_FASHION_DIM * sizeof *row);
		if (util_normalize(row, row, TDATA_FASHION_DIM) == 0)
			got++;
	}
	ck_assert_uint_eq(got, n);
	*dim = TDATA_FASHION_DIM;
	return v;
}

static struct layout_hnsw_builder *build(const float *v, uint32_t n, uint32_t dim, uint32_t m, uint32_t efc,
					 uint64_t seed)
{
	struct layout_hnsw_params p = { .dim = dim, .m = m, .ef_construction = efc, .seed = seed };
	struct layout_hnsw_builder *b;
	ck_assert_ok(layout_hnsw_builder_create(&p, n / 2, &b));
	for (uint32_t i = 0; i < n; i++)
		ck_assert_ok(layout_hnsw_add(b, 1000 + i, v + (size_t)i * dim));
	ck_assert_uint_eq(layout_hnsw_count(b), n);
	return b;
}

static unsigned char *serialise(const struct layout_hnsw_builder *b, uint64_t *len)
{
	void *p;
	*len = layout_hnsw_serialized_size(b);
	ck_assert_uint_eq(*len % 64, 0);
	ck_assert_int_eq(posix_memalign(&p, 64, *len), 0);
	memset(p, 0xA5, *len); /* serialize must write every byte */
	layout_hnsw_serialize(b, p);
	return p;
}

static void open_view(struct layout_hnsw_view *v, const unsigned char *sec, uint64_t len, uint32_t dim)
{
	struct sutra_detail pb;
	int rc = layout_hnsw_view_open(v, sec, len, 4096, dim, NULL, NULL, &pb);
	ck_assert_msg(rc == 0, "view_open: %d %s", rc, pb.what);
	ck_assert_ok(layout_hnsw_check(v, &pb));
}

/* The exact k nearest of q among base (labels 1000 + i) that keep(label)
 * accepts (all when keep is NULL), nearest first; returns how many. */
static uint32_t exact(const struct data *d, const float *q, uint32_t k, int (*keep)(uint32_t),
		      uint32_t *out)
{
	float best[64];
	uint32_t n = 0;
	for (uint32_t i = 0; i < d->n; i++) {
		if (keep && !keep(1000 + i))
			continue;
		float s = util_dot(q, d->base + (size_t)i * d->dim, d->dim);
		if (n == k && !(s > best[k - 1]))
			continue;
		uint32_t j = n < k ? n++ : k - 1;
		while (j > 0 && s > best[j - 1]) {
			best[j] = best[j - 1];
			out[j] = out[j - 1];
			j--;
		}
		best[j] = s;
		out[j] = 1000 + i;
	}
	return n;
}

static int accept_tenth(void *arg, uint32_t label)
{
	(void)arg;
	return label % 10 == 3;
}

static int keep_tenth(uint32_t label)
{
	return label % 10 == 3;
}

/* Mean recall@10 of searches at ef over all queries of d; with a filter,
 * also checks that every hit is accepted. */
static double recall(const struct data *d, const struct layout_hnsw_view *v, uint32_t ef, int filtered)
{
	uint64_t hits = 0, want = 0;
	for (uint32_t q = 0; q < d->nq; q++) {
		const float *qv = d->queries + (size_t)q * d->dim;
		struct layout_hnsw_hit h[10];
		struct sutra_detail pb;
		uint32_t truth[10], n, nt;
		ck_assert_ok(layout_hnsw_search(v, qv, 10, ef, filtered ? accept_tenth : NULL, NULL, h,
						    &n, &pb));
		nt = exact(d, qv, 10, filtered ? keep_tenth : NULL, truth);
		ck_assert_uint_eq(n, nt);
		for (uint32_t i = 0; i < n; i++) {
			if (filtered)
				ck_assert_uint_eq(h[i].label % 10, 3);
			if (i)
				ck_assert(h[i - 1].distance <= h[i].distance);
			for (uint32_t j = 0; j < nt; j++)
				if (h[i].label == truth[j])
					hits++;
		}
		want += nt;
	}
	return (double)hits / (double)want;
}

START_TEST(test_hnsw_recall_on_clustered_data)
{
	struct data d = { .dim = 64, .n = 5000, .nq = 200 };
	d.base = clustered(d.n, d.dim, 1);
	d.queries = clustered(d.nq, d.dim, 2);
	struct layout_hnsw_builder *b = build(d.base, d.n, d.dim, 16, 200, 42);
	uint64_t len;
	unsigned char *sec = serialise(b, &len);
	struct layout_hnsw_view v;
	open_view(&v, sec, len, d.dim);
	double r = recall(&d, &v, 64, 0);
	fprintf(stderr, "clustered: recall@10 at ef=64 %.4f\n", r);
	ck_assert_msg(r >= 0.95, "recall@10 at ef=64: %.4f", r);
	/* A wider beam finds at least as much (on average over the queries). */
	ck_assert(recall(&d, &v, 256, 0) >= r - 0.002);
	layout_hnsw_builder_destroy(b);
	free(sec);
	free(d.base);
	free(d.queries);
}
END_TEST

START_TEST(test_hnsw_recall_on_fashion_mnist)
{
	struct data d = { .n = 10000, .nq = 200 };
	uint32_t qdim;
	d.base = load_fashion(0, d.n, &d.dim);
	d.queries = load_fashion(1, d.nq, &qdim);
	ck_assert_uint_eq(d.dim, 784);
	struct layout_hnsw_builder *b = build(d.base, d.n, d.dim, 16, 200, 100);
	uint64_t len;
	unsigned char *sec = serialise(b, &len);
	struct layout_hnsw_view v;
	open_view(&v, sec, len, d.dim);
	double r = recall(&d, &v, 64, 0);
	ck_assert_msg(r >= 0.95, "recall@10 at ef=64: %.4f", r);
	/* Only one label in ten accepted: results honour the filter and the
	 * beam goes on past the rejected nodes. */
	double rf = recall(&d, &v, 64, 1);
	fprintf(stderr, "fashion-mnist: recall@10 at ef=64 %.4f, with a 10%% filter %.4f\n", r, rf);
	ck_assert_msg(rf >= 0.90, "filtered recall@10 at ef=64: %.4f", rf);
	layout_hnsw_builder_destroy(b);
	free(sec);
	free(d.base);
	free(d.queries);
}
END_TEST

START_TEST(test_hnsw_same_inputs_give_the_same_bytes)
{
	float *v = clustered(2000, 24, 3);
	struct layout_hnsw_builder *b1 = build(v, 2000, 24, 8, 64, 7);
	struct layout_hnsw_builder *b2 = build(v, 2000, 24, 8, 64, 7);
	struct layout_hnsw_builder *b3 = build(v, 2000, 24, 8, 64, 8);
	uint64_t l1, l2, l3;
	unsigned char *s1 = serialise(b1, &l1), *s2 = serialise(b2, &l2), *s3 = serialise(b3, &l3);
	ck_assert_uint_eq(l1, l2);
	ck_assert(memcmp(s1, s2, l1) == 0);
	/* The seed is what chooses the levels: another seed, another graph. */
	ck_assert(l1 != l3 || memcmp(s1, s3, l1) != 0);
	layout_hnsw_builder_destroy(b1);
	layout_hnsw_builder_destroy(b2);
	layout_hnsw_builder_destroy(b3);
	free(s1);
	free(s2);
	free(s3);
	free(v);
}
END_TEST

static int accept_fails(void *arg, uint32_t label)
{
	(void)label;
	return (*(int *)arg)++ == 5 ? -EIO : 1;
}

static int accept_none(void *arg, uint32_t label)
{
	(void)arg;
	(void)label;
	return 0;
}

START_TEST(test_hnsw_filter_errors_and_no_match)
{
	float *v = clustered(500, 16, 4);
	struct layout_hnsw_builder *b = build(v, 500, 16, 8, 64, 1);
	uint64_t len;
	unsigned char *sec = serialise(b, &len);
	struct layout_hnsw_view view;
	struct layout_hnsw_hit h[10];
	struct sutra_detail pb;
	uint32_t n = 99;
	int calls = 0;
	open_view(&view, sec, len, 16);
	/* accept's error ends the search and is returned as it is. */
	ck_assert_err(layout_hnsw_search(&view, v, 10, 32, accept_fails, &calls, h, &n, &pb), -EIO);
	ck_assert_int_eq(calls, 6);
	ck_assert_uint_eq(n, 99); /* out-parameters untouched on failure */
	/* Nothing accepted: the whole graph is searched and nothing returned. */
	ck_assert_ok(layout_hnsw_search(&view, v, 10, 32, accept_none, NULL, h, &n, &pb));
	ck_assert_uint_eq(n, 0);
	layout_hnsw_builder_destroy(b);
	free(sec);
	free(v);
}
END_TEST

START_TEST(test_hnsw_k_above_count_and_bad_k)
{
	float *v = clustered(20, 8, 5);
	struct layout_hnsw_builder *b = build(v, 20, 8, 4, 16, 1);
	uint64_t len;
	unsigned char *sec = serialise(b, &len);
	struct layout_hnsw_view view;
	struct layout_hnsw_hit h[50];
	struct sutra_detail pb;
	uint32_t n, seen[20] = { 0 };
	open_view(&view, sec, len, 8);
	ck_assert_ok(layout_hnsw_search(&view, v + 8, 50, 10, NULL, NULL, h, &n, &pb));
	ck_assert_uint_eq(n, 20);
	ck_assert_uint_eq(h[0].label, 1001); /* its own vector, distance ~0 */
	ck_assert(fabsf(h[0].distance) < 1e-5f);
	for (uint32_t i = 0; i < n; i++) {
		ck_assert_uint_ge(h[i].label, 1000);
		ck_assert_uint_lt(h[i].label, 1020);
		ck_assert_uint_eq(seen[h[i].label - 1000]++, 0);
		if (i)
			ck_assert(h[i - 1].distance <= h[i].distance);
	}
	ck_assert_err(layout_hnsw_search(&view, v, 0, 10, NULL, NULL, h, &n, &pb), SUTRA_EVALUE);
	ck_assert_err(layout_hnsw_search(&view, v, LAYOUT_HNSW_MAX_K + 1, 10, NULL, NULL, h, &n, &pb),
	              SUTRA_EVALUE);

	/* layout_hnsw_node gives back the normalised vector and its label. */
	uint32_t label;
	const float *vec;
	ck_assert_ok(layout_hnsw_node(&view, 7, &label, &vec, &pb));
	ck_assert_uint_eq(label, 1007);
	for (int i = 0; i < 8; i++)
		ck_assert(fabsf(vec[i] - v[7 * 8 + i]) < 1e-6f);
	ck_assert_err(layout_hnsw_node(&view, 20, &label, &vec, &pb), SUTRA_ECORRUPT);
	layout_hnsw_builder_destroy(b);
	free(sec);
	free(v);
}
END_TEST

START_TEST(test_hnsw_empty_graph_and_bad_vectors)
{
	struct layout_hnsw_params p = { .dim = 4, .m = 8, .ef_construction = 16, .seed = 1 };
	struct layout_hnsw_builder *b;
	struct layout_hnsw_view view;
	struct layout_hnsw_hit h[4];
	struct sutra_detail pb;
	uint32_t n = 99;
	float zero[4] = { 0 }, nan[4] = { 1, NAN, 0, 0 }, inf[4] = { 1, 0, INFINITY, 0 };
	float ok[4] = { 3, 0, 4, 0 };

	ck_assert_ok(layout_hnsw_builder_create(&p, 0, &b));
	ck_assert_err(layout_hnsw_add(b, 1, zero), SUTRA_EVALUE);
	ck_assert_err(layout_hnsw_add(b, 1, nan), SUTRA_EVALUE);
	ck_assert_err(layout_hnsw_add(b, 1, inf), SUTRA_EVALUE);
	ck_assert_uint_eq(layout_hnsw_count(b), 0);
	uint64_t len;
	unsigned char *sec = serialise(b, &len);
	ck_assert_ok(layout_hnsw_view_open(&view, sec, len, 0, 4, NULL, NULL, &pb));
	ck_assert_ok(layout_hnsw_check(&view, &pb));
	ck_assert_ok(layout_hnsw_search(&view, ok, 4, 10, NULL, NULL, h, &n, &pb));
	ck_assert_uint_eq(n, 0);
	free(sec);

	ck_assert_ok(layout_hnsw_add(b, 9, ok));
	sec = serialise(b, &len);
	ck_assert_ok(layout_hnsw_view_open(&view, sec, len, 0, 4, NULL, NULL, &pb));
	ck_assert_ok(layout_hnsw_search(&view, ok, 4, 10, NULL, NULL, h, &n, &pb));
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(h[0].label, 9);
	layout_hnsw_builder_destroy(b);
	free(sec);

	struct layout_hnsw_params bad = p;
	bad.m = 1;
	ck_assert_err(layout_hnsw_builder_create(&bad, 0, &b), -EINVAL);
	bad = p;
	bad.m = LAYOUT_HNSW_MAX_M + 1;
	ck_assert_err(layout_hnsw_builder_create(&bad, 0, &b), -EINVAL);
	bad = p;
	bad.dim = 0;
	ck_assert_err(layout_hnsw_builder_create(&bad, 0, &b), -EINVAL);
	bad = p;
	bad.ef_construction = 0;
	ck_assert_err(layout_hnsw_builder_create(&bad, 0, &b), -EINVAL);
}
END_TEST

/* A copy of sec with one header field changed must be refused. */
static void refused(const unsigned char *sec, uint64_t len, uint32_t dim, size_t off, int width, uint64_t val)
{
	void *p;
	struct layout_hnsw_view v;
	struct sutra_detail pb;
	ck_assert_int_eq(posix_memalign(&p, 64, len), 0);
	memcpy(p, sec, len);
	if (width == 4)
		util_put_le32((unsigned char *)p + off, (uint32_t)val);
	else
		util_put_le64((unsigned char *)p + off, val);
	ck_assert_msg(layout_hnsw_view_open(&v, p, len, 4096, dim, NULL, NULL, &pb) == SUTRA_ECORRUPT,
		      "field at %zu = %llu accepted", off, (unsigned long long)val);
	ck_assert_uint_ge(pb.offset, 4096);
	free(p);
}

START_TEST(test_hnsw_view_open_refuses_bad_headers)
{
	float *v = clustered(300, 16, 6);
	struct layout_hnsw_builder *b = build(v, 300, 16, 8, 32, 1);
	uint64_t len;
	unsigned char *sec = serialise(b, &len);
	struct layout_hnsw_view view;
	struct sutra_detail pb;
	open_view(&view, sec, len, 16);
	ck_assert_uint_eq(view.count, 300);
	ck_assert_uint_eq(view.m0, 16);

	refused(sec, len, 16, 0, 4, 0x12345678);           /* magic */
	refused(sec, len, 16, 4, 4, 2);                    /* version */
	refused(sec, len, 16, 8, 4, 17);                   /* dim */
	refused(sec, len, 16, 12, 4, 1);                   /* m */
	refused(sec, len, 16, 12, 4, LAYOUT_HNSW_MAX_M + 1);
	refused(sec, len, 16, 16, 4, 17);                  /* m0 != 2m */
	refused(sec, len, 16, 20, 4, 301);                 /* count */
	refused(sec, len, 16, 24, 4, LAYOUT_HNSW_MAX_LEVEL + 1);
	refused(sec, len, 16, 28, 4, 300);                 /* entry */
	refused(sec, len, 16, 32, 8, view.node_stride + 64);
	refused(sec, len, 16, 40, 8, 192);
	refused(sec, len, 16, 48, 8, view.levels_off + 64);
	refused(sec, len, 16, 56, 8, view.upper_off - 64);
	refused(sec, len, 16, 64, 8, view.upper_len + 2 * 4 * 9); /* past the padding */
	refused(sec, len, 16, 64, 8, UINT64_MAX - 35);
	refused(sec, len, 16, 100, 4, 1);                  /* reserved */
	/* The store's dimension differs; truncated or longer sections. */
	ck_assert_err(layout_hnsw_view_open(&view, sec, len, 0, 15, NULL, NULL, &pb),
	              SUTRA_ECORRUPT);
	ck_assert_err(layout_hnsw_view_open(&view, sec, len - 64, 0, 16, NULL, NULL, &pb),
	              SUTRA_ECORRUPT);
	ck_assert_err(layout_hnsw_view_open(&view, sec, 100, 0, 16, NULL, NULL, &pb),
	              SUTRA_ECORRUPT);
	layout_hnsw_builder_destroy(b);
	free(sec);
	free(v);
}
END_TEST

START_TEST(test_hnsw_check_catches_bad_links_and_levels)
{
	float *v = clustered(300, 16, 7);
	struct layout_hnsw_builder *b = build(v, 300, 16, 8, 32, 1);
	uint64_t len;
	unsigned char *sec = serialise(b, &len);
	struct layout_hnsw_view view;
	struct sutra_detail pb;
	struct layout_hnsw_hit h[10];
	uint32_t n;
	open_view(&view, sec, len, 16);
	unsigned char *node5 = sec + view.nodes_off + 5 * view.node_stride;

	/* A link past count: check finds it; a search that reads it says so. */
	uint32_t saved = util_get_le32(node5 + 4);
	util_put_le32(node5 + 4, 300);
	ck_assert_err(layout_hnsw_check(&view, &pb), SUTRA_ECORRUPT);
	ck_assert_uint_eq(pb.offset, view.file_off + view.nodes_off + 5 * view.node_stride + 4);
	util_put_le32(node5 + 4, saved);
	/* A link count above m0, on the node a search for its own vector
	 * expands first. */
	saved = util_get_le32(node5);
	util_put_le32(node5, view.m0 + 1);
	ck_assert_err(layout_hnsw_check(&view, &pb), SUTRA_ECORRUPT);
	ck_assert_err(layout_hnsw_search(&view, v + 5 * 16, 10, 32, NULL, NULL, h, &n, &pb),
	              SUTRA_ECORRUPT);
	util_put_le32(node5, saved);
	ck_assert_ok(layout_hnsw_check(&view, &pb));
	/* The entry node's level above max_level. */
	unsigned char *lv = sec + view.levels_off + 8 * (uint64_t)view.entry;
	saved = util_get_le32(lv);
	util_put_le32(lv, view.max_level + 1);
	ck_assert_err(layout_hnsw_check(&view, &pb), SUTRA_ECORRUPT);
	if (view.max_level)
		ck_assert_err(layout_hnsw_search(&view, v, 10, 32, NULL, NULL, h, &n, &pb),
		              SUTRA_ECORRUPT);
	util_put_le32(lv, saved);
	ck_assert_ok(layout_hnsw_check(&view, &pb));
	/* A vector that is not unit length. */
	uint32_t label;
	const float *vec;
	ck_assert_ok(layout_hnsw_node(&view, 5, &label, &vec, &pb));
	*(float *)(uintptr_t)vec = 3.0f;
	ck_assert_err(layout_hnsw_check(&view, &pb), SUTRA_ECORRUPT);
	layout_hnsw_builder_destroy(b);
	free(sec);
	free(v);
}
END_TEST

/* A touch callback that records what is touched and fails on one range. */
struct toucher {
	uint64_t len, bad_lo, bad_hi, calls;
	unsigned char *touched; /* a byte per section byte */
};

static int touch(void *arg, uint64_t off, uint64_t len, struct sutra_detail *pb)
{
	struct toucher *t = arg;
	ck_assert(off <= t->len && len <= t->len - off);
	t->calls++;
	if (off < t->bad_hi && off + len > t->bad_lo) {
		pb->offset = off;
		snprintf(pb->what, sizeof pb->what, "bad chunk");
		return SUTRA_ECORRUPT;
	}
	memset(t->touched + off, 1, len);
	return 0;
}

START_TEST(test_hnsw_touch_comes_before_every_read)
{
	float *v = clustered(1000, 32, 8);
	struct layout_hnsw_builder *b = build(v, 1000, 32, 8, 64, 1);
	uint64_t len;
	unsigned char *sec = serialise(b, &len);
	struct toucher t = { .len = len, .touched = calloc(1, len) };
	struct layout_hnsw_view view;
	struct sutra_detail pb;
	struct layout_hnsw_hit h[10];
	uint32_t n;
	ck_assert_ok(layout_hnsw_view_open(&view, sec, len, 0, 32, touch, &t, &pb));
	ck_assert(t.touched[0] && t.touched[127]);
	for (uint32_t q = 0; q < 50; q++) {
		ck_assert_ok(layout_hnsw_search(&view, v + q * 32, 10, 32, NULL, NULL, h, &n, &pb));
		ck_assert_uint_eq(n, 10);
		/* The records of the nodes returned were touched. */
		for (uint32_t i = 0; i < n; i++) {
			uint64_t off = view.nodes_off + (uint64_t)(h[i].label - 1000) * view.node_stride;
			ck_assert(t.touched[off] && t.touched[off + view.node_stride - 1]);
		}
	}
	ck_assert_uint_gt(t.calls, 50);
	/* A bad chunk under the entry node fails the search, with the problem. */
	t.bad_lo = view.nodes_off + (uint64_t)view.entry * view.node_stride;
	t.bad_hi = t.bad_lo + 1;
	ck_assert_err(layout_hnsw_search(&view, v, 10, 32, NULL, NULL, h, &n, &pb), SUTRA_ECORRUPT);
	ck_assert_str_eq(pb.what, "bad chunk");
	ck_assert_err(layout_hnsw_check(&view, &pb), SUTRA_ECORRUPT);
	/* A bad header chunk fails view_open. */
	t.bad_lo = 0;
	ck_assert_err(layout_hnsw_view_open(&view, sec, len, 0, 32, touch, &t, &pb),
	              SUTRA_ECORRUPT);
	layout_hnsw_builder_destroy(b);
	free(t.touched);
	free(sec);
	free(v);
}
END_TEST

START_TEST(test_hnsw_flipped_bytes_never_crash)
{
	/* Random damage anywhere: opening, searching (with and without a
	 * filter) and checking give 0 or SUTRA_ECORRUPT, and never read
	 * outside the section (the ASan build checks that: the copy is an
	 * exact-size allocation). */
	float *v = clustered(400, 16, 9);
	struct layout_hnsw_builder *b = build(v, 400, 16, 4, 32, 1);
	uint64_t len, rng = 99;
	unsigned char *sec = serialise(b, &len);
	unsigned char *copy;
	uint32_t corrupt_found = 0;
	ck_assert_int_eq(posix_memalign((void **)&copy, 64, len), 0);
	for (int round = 0; round < 3000; round++) {
		memcpy(copy, sec, len);
		int flips = 1 + (int)(util_splitmix64(&rng) % 8);
		for (int i = 0; i < flips; i++) {
			uint64_t r = util_splitmix64(&rng);
			/* Half the flips in the first 4 KiB (header, first nodes). */
			uint64_t off = (r & 1) ? (r >> 8) % (len < 4096 ? len : 4096) : (r >> 8) % len;
			copy[off] ^= (unsigned char)(1u << ((r >> 1) % 8));
		}
		struct layout_hnsw_view view;
		struct sutra_detail pb;
		struct layout_hnsw_hit h[10];
		uint32_t n;
		int rc = layout_hnsw_view_open(&view, copy, len, 0, 16, NULL, NULL, &pb);
		ck_assert(rc == 0 || rc == SUTRA_ECORRUPT);
		if (rc)
			continue;
		for (uint32_t q = 0; q < 4; q++) {
			const float *qv = v + 16 * ((uint32_t)util_splitmix64(&rng) % 400);
			rc = layout_hnsw_search(&view, qv, 10, 16, q & 1 ? accept_tenth : NULL, NULL, h, &n, &pb);
			ck_assert(rc == 0 || rc == SUTRA_ECORRUPT);
			if (rc == 0)
				ck_assert_uint_le(n, 10);
			else
				corrupt_found++;
		}
		rc = layout_hnsw_check(&view, &pb);
		ck_assert(rc == 0 || rc == SUTRA_ECORRUPT);
	}
	ck_assert_uint_gt(corrupt_found, 0);
	free(copy);
	layout_hnsw_builder_destroy(b);
	free(sec);
	free(v);
}
END_TEST

TCHECK_MAIN("layout", "hnsw", 600, test_hnsw_recall_on_clustered_data,
	    test_hnsw_recall_on_fashion_mnist, test_hnsw_same_inputs_give_the_same_bytes,
	    test_hnsw_filter_errors_and_no_match, test_hnsw_k_above_count_and_bad_k,
	    test_hnsw_empty_graph_and_bad_vectors, test_hnsw_view_open_refuses_bad_headers,
	    test_hnsw_check_catches_bad_links_and_levels, test_hnsw_touch_comes_before_every_read,
	    test_hnsw_flipped_bytes_never_crash)
