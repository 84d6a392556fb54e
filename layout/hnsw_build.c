/* SPDX-License-Identifier: MIT */
/* HNSW graphs, building: the builder that inserts nodes into a graph in memory, and its encoding as a section. */
#include "layout/hnsw.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layout/hnsw_internal.h"
#include "util/endian.h"
#include "util/grow.h"
#include "util/heap.h"
#include "util/random.h"
#include "util/vecdist.h"

struct layout_hnsw_builder {
	struct layout_hnsw_params p;
	uint32_t m0, count, cap, max_level, entry;
	uint64_t stride, vec_off;
	unsigned char *nodes; /* cap × stride, 64-aligned */
	uint32_t *levels;     /* 2 × cap */
	uint32_t *upper;      /* nblocks × (1 + m) */
	uint64_t nblocks, ublocks_cap;
	uint64_t rng;
	double mult;
	util_dot_fn dot;
	struct scratch s;
	struct util_hent *list, *sel; /* ef_construction or m0 + 1 entries */
	size_t list_cap;
};

void layout_hnsw_builder_destroy(struct layout_hnsw_builder *b)
{
	if (!b)
		return;
	free(b->nodes);
	free(b->levels);
	free(b->upper);
	free(b->list);
	free(b->sel);
	layout_hnsw_scratch_finish(&b->s);
	free(b);
}

static int reserve_nodes(struct layout_hnsw_builder *b, uint32_t need)
{
	if (need <= b->cap)
		return 0;
	uint64_t n = b->cap ? b->cap : 64;
	while (n < need)
		n *= 2;
	if (n > UINT32_MAX)
		n = UINT32_MAX;
	if (n * b->stride > SIZE_MAX / 2)
		return -ENOMEM;
	void *nodes;
	if (posix_memalign(&nodes, 64, (size_t)(n * b->stride)))
		return -ENOMEM;
	uint32_t *lv = realloc(b->levels, (size_t)n * 2 * sizeof *lv);
	if (!lv) {
		free(nodes);
		return -ENOMEM;
	}
	b->levels = lv;
	if (b->count)
		memcpy(nodes, b->nodes, (size_t)(b->count * b->stride));
	free(b->nodes);
	b->nodes = nodes;
	b->cap = (uint32_t)n;
	return 0;
}

int layout_hnsw_builder_create(const struct layout_hnsw_params *p, uint32_t capacity,
			       struct layout_hnsw_builder **out)
{
	if (!p || p->dim < 1 || p->dim > LAYOUT_MAX_VECTOR_DIM || p->m < 2 || p->m > LAYOUT_HNSW_MAX_M ||
	    p->ef_construction < 1)
		return -EINVAL;
	struct layout_hnsw_builder *b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	b->p = *p;
	b->m0 = 2 * p->m;
	b->stride = stride_of(b->m0, p->dim);
	b->vec_off = vec_offset(b->m0);
	b->rng = p->seed;
	b->mult = 1.0 / log((double)p->m);
	b->dot = util_vec_dot_fn();
	b->list_cap = p->ef_construction > b->m0 + 1 ? p->ef_construction : b->m0 + 1;
	b->list = malloc(b->list_cap * sizeof *b->list);
	b->sel = malloc(b->list_cap * sizeof *b->sel);
	if (!b->list || !b->sel || reserve_nodes(b, capacity ? capacity : 1))
		goto fail;
	*out = b;
	return 0;
fail:
	layout_hnsw_builder_destroy(b);
	return -ENOMEM;
}

uint32_t layout_hnsw_count(const struct layout_hnsw_builder *b)
{
	return b->count;
}

static struct graph builder_graph(const struct layout_hnsw_builder *b)
{
	return (struct graph){
		.nodes = b->nodes,
		.levels = b->levels,
		.upper = b->upper,
		.nblocks = b->nblocks,
		.stride = b->stride,
		.vec_off = b->vec_off,
		.count = b->count,
		.dim = b->p.dim,
		.m = b->p.m,
		.m0 = b->m0,
		.max_level = b->max_level,
		.entry = b->entry,
		.dot = b->dot,
	};
}

/* Writable links of node i at level (the builder's own memory). */
static uint32_t *wlinks(struct layout_hnsw_builder *b, uint32_t i, uint32_t level)
{
	if (level == 0)
		return (uint32_t *)(void *)(b->nodes + (size_t)i * b->stride);
	return b->upper + ((size_t)b->levels[2 * (size_t)i + 1] + level - 1) * (1 + (size_t)b->p.m);
}

static float node_dist(const struct graph *g, uint32_t a, uint32_t c)
{
	return 1.0f - g->dot(vec_of(g, a), vec_of(g, c), g->dim);
}

/*
 * The neighbour-selection heuristic of the HNSW paper (algorithm 4 without
 * extension or pruned-connection keeping): going through the candidates
 * nearest first, keep one only if it is nearer to the base than to every
 * one kept so far, until max are kept. Fewer than max candidates are all
 * kept. list is sorted nearest first; the kept ones go to sel.
 */
static uint32_t select_neighbours(const struct graph *g, const struct util_hent *list, uint32_t n,
				  uint32_t max, struct util_hent *sel)
{
	if (n < max) {
		memcpy(sel, list, n * sizeof *list);
		return n;
	}
	uint32_t k = 0;
	for (uint32_t i = 0; i < n && k < max; i++) {
		int good = 1;
		for (uint32_t j = 0; j < k; j++) {
			if (node_dist(g, list[i].id, sel[j].id) < list[i].d) {
				good = 0;
				break;
			}
		}
		if (good)
			sel[k++] = list[i];
	}
	return k;
}

static int cmp_hent(const void *a, const void *b)
{
	const struct util_hent *x = a, *y = b;
	if (x->d != y->d)
		return x->d < y->d ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Adds the link s -> i at level, pruning s's links with the heuristic when
 * s has no room left. */
static void connect(struct layout_hnsw_builder *b, const struct graph *g, uint32_t s, uint32_t i,
		    uint32_t level)
{
	uint32_t cap = level ? b->p.m : b->m0;
	uint32_t *l = wlinks(b, s, level);
	if (l[0] < cap) {
		l[1 + l[0]] = i;
		l[0]++;
		return;
	}
	uint32_t n = 0;
	for (uint32_t j = 0; j < l[0]; j++)
		b->list[n++] = (struct util_hent){ node_dist(g, s, l[1 + j]), l[1 + j] };
	b->list[n++] = (struct util_hent){ node_dist(g, s, i), i };
	qsort(b->list, n, sizeof *b->list, cmp_hent);
	uint32_t k = select_neighbours(g, b->list, n, cap, b->sel);
	for (uint32_t j = 0; j < k; j++)
		l[1 + j] = b->sel[j].id;
	for (uint32_t j = k; j < cap; j++)
		l[1 + j] = 0;
	l[0] = k;
}

/* Empties the result max-heap into out[0..n) nearest first. */
static void drain(struct scratch *s, size_t n, struct util_hent *out)
{
	while (n) {
		out[n - 1] = s->res[0];
		util_maxheap_pop(s->res, &n);
	}
}

static uint32_t draw_level(struct layout_hnsw_builder *b)
{
	/* u in (0, 1]: 53 random bits, never zero. */
	double u = (double)((util_splitmix64(&b->rng) >> 11) + 1) * 0x1p-53;
	double lv = floor(-log(u) * b->mult);
	return lv >= LAYOUT_HNSW_MAX_LEVEL ? LAYOUT_HNSW_MAX_LEVEL : (uint32_t)lv;
}

int layout_hnsw_add(struct layout_hnsw_builder *b, uint32_t label, const float *vec)
{
	if (b->count == UINT32_MAX)
		return -ENOMEM;
	if (reserve_nodes(b, b->count + 1))
		return -ENOMEM;
	uint32_t i = b->count;
	unsigned char *node = b->nodes + (size_t)i * b->stride;
	float *v = (float *)(void *)(node + b->vec_off);
	if (util_normalize(vec, v, b->p.dim))
		return SUTRA_EVALUE;

	/* The level draw comes after the checks, so that a refused vector does
	 * not shift the levels of the nodes after it. */
	uint32_t level = draw_level(b);
	size_t bw = 1 + (size_t)b->p.m;
	if (b->nblocks + level > b->ublocks_cap) {
		uint64_t n = b->ublocks_cap ? b->ublocks_cap : 64;
		while (n < b->nblocks + level)
			n *= 2;
		if (n > UINT32_MAX || n * bw > SIZE_MAX / 8)
			return -ENOMEM;
		uint32_t *u = realloc(b->upper, (size_t)n * bw * sizeof *u);
		if (!u)
			return -ENOMEM;
		b->upper = u;
		b->ublocks_cap = n;
	}
	/* A beam holds at most every node as a candidate: with this much room
	 * it never grows, so the searches below cannot fail. */
	if (layout_hnsw_scratch_ready(&b->s, i + 1, b->p.ef_construction) ||
	    UTIL_GROW(b->s.cand, b->s.ccap, (size_t)i + 2, 64))
		return -ENOMEM;

	/* From here nothing fails. */
	memset(node, 0, (size_t)b->vec_off);
	memset(node + b->vec_off + 4 * (size_t)b->p.dim, 0,
	       (size_t)(b->stride - b->vec_off - 4 * (uint64_t)b->p.dim));
	util_put_le32(node + 4 + 4 * (size_t)b->m0, label);
	b->levels[2 * (size_t)i] = level;
	b->levels[2 * (size_t)i + 1] = level ? (uint32_t)b->nblocks : 0;
	if (level)
		memset(b->upper + b->nblocks * bw, 0, level * bw * sizeof *b->upper);
	b->nblocks += level;
	b->count++;
	if (i == 0) {
		b->entry = 0;
		b->max_level = level;
		return 0;
	}

	struct graph g = builder_graph(b);
	uint32_t ep = b->entry;
	float epd = dist(&g, v, ep);
	for (uint32_t l = b->max_level; l > level; l--)
		(void)layout_hnsw_greedy(&g, v, l, &ep, &epd, NULL);
	for (uint32_t l = level < b->max_level ? level : b->max_level;; l--) {
		size_t nr;
		/* Sized above: this only starts a new epoch of visited tags. */
		(void)layout_hnsw_scratch_ready(&b->s, b->count, b->p.ef_construction);
		(void)layout_hnsw_beam(&g, &b->s, v, ep, epd, l, b->p.ef_construction, NULL, NULL,
				       &nr, NULL);
		drain(&b->s, nr, b->list);
		uint32_t cap = l ? b->p.m : b->m0;
		uint32_t k = select_neighbours(&g, b->list, (uint32_t)nr, b->p.m, b->sel);
		uint32_t *mine = wlinks(b, i, l);
		for (uint32_t j = 0; j < k && j < cap; j++)
			mine[1 + j] = b->sel[j].id;
		mine[0] = k;
		if (k) {
			ep = b->sel[0].id;
			epd = b->sel[0].d;
		}
		/* connect() reuses list and sel: go through the copy in mine. */
		for (uint32_t j = 0; j < k; j++)
			connect(b, &g, mine[1 + j], i, l);
		if (l == 0)
			break;
	}
	if (level > b->max_level) {
		b->max_level = level;
		b->entry = i;
	}
	return 0;
}

/* ---- The section ------------------------------------------------------------------ */

uint64_t layout_hnsw_serialized_size(const struct layout_hnsw_builder *b)
{
	return geometry_of(b->p.m, b->p.dim, b->count, b->nblocks).total;
}

void layout_hnsw_serialize(const struct layout_hnsw_builder *b, unsigned char *buf)
{
	struct geometry ge = geometry_of(b->p.m, b->p.dim, b->count, b->nblocks);

	memset(buf, 0, HNSW_HEADER_SIZE);
	util_put_le32(buf + 0, HNSW_MAGIC);
	util_put_le32(buf + 4, HNSW_VERSION);
	util_put_le32(buf + 8, b->p.dim);
	util_put_le32(buf + 12, b->p.m);
	util_put_le32(buf + 16, b->m0);
	util_put_le32(buf + 20, b->count);
	util_put_le32(buf + 24, b->max_level);
	util_put_le32(buf + 28, b->entry);
	util_put_le64(buf + 32, ge.stride);
	util_put_le64(buf + 40, ge.nodes_off);
	util_put_le64(buf + 48, ge.levels_off);
	util_put_le64(buf + 56, ge.upper_off);
	util_put_le64(buf + 64, ge.upper_len);
	/* The node records are kept in their on-disk form (little-endian host). */
	if (b->count)
		memcpy(buf + ge.nodes_off, b->nodes, (size_t)(ge.levels_off - ge.nodes_off));
	for (uint64_t i = 0; i < 2 * (uint64_t)b->count; i++)
		util_put_le32(buf + ge.levels_off + 4 * i, b->levels[i]);
	uint64_t lv_end = ge.levels_off + HNSW_LEVEL_ENTRY * (uint64_t)b->count;
	memset(buf + lv_end, 0, (size_t)(ge.upper_off - lv_end));
	for (uint64_t i = 0; i < ge.upper_len / 4; i++)
		util_put_le32(buf + ge.upper_off + 4 * i, b->upper[i]);
	memset(buf + ge.upper_off + ge.upper_len, 0, (size_t)(ge.total - ge.upper_off - ge.upper_len));
}
