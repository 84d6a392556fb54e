/* SPDX-License-Identifier: MIT */
/* HNSW graphs: the builder, the section encoder, and the bounds-checked search over the section in place. */
#include "layout/hnsw.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/endian.h"
#include "util/grow.h"
#include "util/heap.h"
#include "util/random.h"
#include "util/vecdist.h"

/*
 * The section (docs/FORMAT.md 10.5) is three arrays after a 128-byte header:
 *
 *   nodes   count records of node_stride bytes: link count (u32), m0 level-0
 *           links (u32), label (u32), the unit vector (dim f32) at a 32-byte
 *           boundary of the record; a record starts on a 64-byte boundary;
 *   levels  count entries of 8 bytes: the node's top level (u32) and the
 *           index of its first upper block (u32);
 *   upper   blocks of 1 + m u32 (link count, links): node i's level l >= 1
 *           links are block first_i + l - 1.
 *
 * The builder keeps its graph in memory in exactly that form (host order is
 * little-endian on every target we build for, checked below), so the same
 * search code runs while building and over a mapped section, and writing
 * the section is a few copies. Searching reads links and vectors straight
 * from the bytes: the vector a kernel sees is the one in the file.
 *
 * Every value read from a section is checked before it is used: a link
 * count against m0 or m, a link against count, a level entry against
 * max_level and the number of upper blocks. With a touch callback, the
 * bytes of a node record, a level entry or an upper block are touched
 * before they are read; a node record is touched once per search, when the
 * node is first visited (its links are read later, when it is expanded).
 */

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "HNSW sections are searched in place and need a little-endian host"
#endif

#define HNSW_MAGIC 0x574E4853u /* "SHNW" */
#define HNSW_VERSION 1u
#define HNSW_HEADER_SIZE 128u
#define HNSW_LEVEL_ENTRY 8u

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static uint64_t vec_offset(uint32_t m0)
{
	return align_up(8 + 4 * (uint64_t)m0, 32);
}

static uint64_t stride_of(uint32_t m0, uint32_t dim)
{
	return align_up(vec_offset(m0) + 4 * (uint64_t)dim, 64);
}

/* ---- The graph as the search sees it ---------------------------------------- */

struct graph {
	const unsigned char *nodes;
	const uint32_t *levels; /* 2 per node */
	const uint32_t *upper;
	uint64_t nblocks;
	uint64_t stride, vec_off;
	uint32_t count, dim, m, m0, max_level, entry;
	util_dot_fn dot;
	layout_hnsw_touch_fn touch;
	void *touch_arg;
	uint64_t nodes_off, levels_off, upper_off, file_off;
};

/* Scratch memory of one search: visited tags (a node is visited in this
 * search when its tag equals epoch, so starting a search is one increment),
 * the candidate min-heap and the result max-heap. */
struct scratch {
	uint16_t *tags;
	size_t ntags;
	uint16_t epoch;
	struct util_hent *cand;
	size_t ccap;
	struct util_hent *res;
	size_t rcap;
};

static void scratch_free(struct scratch *s)
{
	if (!s)
		return;
	free(s->tags);
	free(s->cand);
	free(s->res);
	memset(s, 0, sizeof *s);
}

/* Makes s ready for a search of a graph of count nodes with beam ef. */
static int scratch_ready(struct scratch *s, uint32_t count, uint32_t ef)
{
	if (s->ntags < count) {
		if (UTIL_GROW(s->tags, s->ntags, count, 1024))
			return -ENOMEM;
		memset(s->tags, 0, s->ntags * sizeof *s->tags);
		s->epoch = 0;
	}
	if (UTIL_GROW(s->res, s->rcap, (size_t)ef + 1, 64) || UTIL_GROW(s->cand, s->ccap, 256, 64))
		return -ENOMEM;
	if (++s->epoch == 0) {
		memset(s->tags, 0, s->ntags * sizeof *s->tags);
		s->epoch = 1;
	}
	return 0;
}

/* One scratch per thread, freed when the thread ends. */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;
static _Thread_local struct scratch *tls_scratch;

static void scratch_destroy(void *p)
{
	scratch_free(p);
	free(p);
}

static void scratch_key_init(void)
{
	scratch_key_ok = pthread_key_create(&scratch_key, scratch_destroy) == 0;
}

static struct scratch *thread_scratch(void)
{
	if (tls_scratch)
		return tls_scratch;
	pthread_once(&scratch_once, scratch_key_init);
	if (!scratch_key_ok)
		return NULL;
	struct scratch *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	if (pthread_setspecific(scratch_key, s)) {
		free(s);
		return NULL;
	}
	tls_scratch = s;
	return s;
}

/* ---- Reading the graph --------------------------------------------------------- */

static int corrupt(const struct graph *g, struct sutra_detail *pb, uint64_t off, const char *what,
		   uint64_t val)
{
	if (pb) {
		pb->offset = g->file_off + off;
		snprintf(pb->what, sizeof pb->what, "hnsw: %s (%llu)", what, (unsigned long long)val);
	}
	return SUTRA_ECORRUPT;
}

static inline const unsigned char *node_at(const struct graph *g, uint32_t i)
{
	return g->nodes + (size_t)i * g->stride;
}

static inline const float *vec_of(const struct graph *g, uint32_t i)
{
	return (const float *)(const void *)(node_at(g, i) + g->vec_off);
}

static inline int touch_node(const struct graph *g, uint32_t i, struct sutra_detail *pb)
{
	if (!g->touch)
		return 0;
	return g->touch(g->touch_arg, g->nodes_off + (uint64_t)i * g->stride, g->stride, pb);
}

static inline float dist(const struct graph *g, const float *q, uint32_t i)
{
	return 1.0f - g->dot(q, vec_of(g, i), g->dim);
}

/* The links of node i at level: *links points at the count, followed by the
 * links. Checks the count, and for upper levels the node's level entry. */
static int links_of(const struct graph *g, uint32_t i, uint32_t level, const uint32_t **links,
		    uint32_t *n, struct sutra_detail *pb)
{
	const uint32_t *l;
	uint32_t cap;
	int rc;

	if (level == 0) {
		l = (const uint32_t *)(const void *)node_at(g, i);
		cap = g->m0;
	} else {
		if (g->touch && (rc = g->touch(g->touch_arg, g->levels_off + (uint64_t)i * HNSW_LEVEL_ENTRY,
					       HNSW_LEVEL_ENTRY, pb)))
			return rc;
		uint32_t top = g->levels[2 * (size_t)i], first = g->levels[2 * (size_t)i + 1];
		if (top < level || top > g->max_level || (uint64_t)first + top > g->nblocks)
			return corrupt(g, pb, g->levels_off + (uint64_t)i * HNSW_LEVEL_ENTRY,
				       "node level out of range", top);
		uint64_t blk = (uint64_t)first + level - 1;
		size_t bw = 1 + (size_t)g->m;
		l = g->upper + blk * bw;
		if (g->touch && (rc = g->touch(g->touch_arg, g->upper_off + blk * bw * 4, bw * 4, pb)))
			return rc;
		cap = g->m;
	}
	if (l[0] > cap) {
		uint64_t off = level ? g->upper_off + (uint64_t)((const unsigned char *)l -
								 (const unsigned char *)g->upper)
				     : g->nodes_off + (uint64_t)i * g->stride;
		return corrupt(g, pb, off, "link count out of range", l[0]);
	}
	*links = l;
	*n = l[0];
	return 0;
}

static int bad_link(const struct graph *g, const uint32_t *l, uint32_t level, uint32_t i, uint32_t j,
		    struct sutra_detail *pb)
{
	uint64_t off = level ? g->upper_off + (uint64_t)((const unsigned char *)(l + 1 + j) -
							 (const unsigned char *)g->upper)
			     : g->nodes_off + (uint64_t)i * g->stride + 4 + 4 * (uint64_t)j;
	return corrupt(g, pb, off, "link out of range", l[1 + j]);
}

static inline void prefetch_node(const struct graph *g, uint32_t i)
{
	const unsigned char *p = (const unsigned char *)vec_of(g, i);
	__builtin_prefetch(p);
	__builtin_prefetch(p + 64);
}

/* The rest of a vector whose first two lines prefetch_node() asked for:
 * issued one neighbour ahead of the distance loop, so that a long vector
 * (784 floats are 49 lines) arrives while the previous one is computed
 * rather than line by line as the kernel reaches it. */
static inline void prefetch_rest(const struct graph *g, uint32_t i)
{
	const unsigned char *p = (const unsigned char *)vec_of(g, i);
	size_t end = (size_t)g->dim * 4;
	for (size_t o = 128; o < end; o += 64)
		__builtin_prefetch(p + o);
}

/* Greedy descent at one upper level: moves *cur to a neighbour nearer to q
 * while there is one (distances strictly decrease, so it ends). */
static int greedy(const struct graph *g, const float *q, uint32_t level, uint32_t *cur, float *curd,
		  struct sutra_detail *pb)
{
	int changed = 1, rc;

	while (changed) {
		const uint32_t *l;
		uint32_t n;
		changed = 0;
		if ((rc = links_of(g, *cur, level, &l, &n, pb)))
			return rc;
		for (uint32_t j = 0; j < n; j++) {
			uint32_t id = l[1 + j];
			if (id >= g->count)
				return bad_link(g, l, level, *cur, j, pb);
			if (j + 1 < n && l[2 + j] < g->count)
				prefetch_node(g, l[2 + j]);
			if ((rc = touch_node(g, id, pb)))
				return rc;
			float d = dist(g, q, id);
			if (d < *curd) {
				*curd = d;
				*cur = id;
				changed = 1;
			}
		}
	}
	return 0;
}

static inline uint32_t label_of(const struct graph *g, uint32_t i)
{
	return util_get_le32(node_at(g, i) + 4 + 4 * (size_t)g->m0);
}

/*
 * The beam search of one level from ep (already touched, at distance epd):
 * leaves the up to ef nearest accepted nodes found in s->res (a max-heap of
 * *nres entries). Rejected nodes are expanded like the others but never
 * enter the results, and the search ends only when the nearest unexpanded
 * candidate is farther than the ef-th result, so with a filter it goes on
 * until ef accepted nodes are found or every reachable node is seen.
 */
static int beam(const struct graph *g, struct scratch *s, const float *q, uint32_t ep, float epd,
		uint32_t level, uint32_t ef, layout_hnsw_accept_fn accept, void *accept_arg, size_t *nres,
		struct sutra_detail *pb)
{
	size_t nc = 0, nr = 0;
	uint16_t epoch = s->epoch;
	uint16_t *tags = s->tags;
	float lower = INFINITY;
	uint32_t nb[2 * LAYOUT_HNSW_MAX_M];
	int rc;

	tags[ep] = epoch;
	s->cand[nc++] = (struct util_hent){ epd, ep };
	rc = accept ? accept(accept_arg, label_of(g, ep)) : 1;
	if (rc < 0)
		return rc;
	if (rc) {
		s->res[nr++] = (struct util_hent){ epd, ep };
		lower = epd;
	}
	while (nc) {
		struct util_hent c = s->cand[0];
		if (c.d > lower && nr == ef)
			break;
		util_minheap_pop(s->cand, &nc);

		const uint32_t *l;
		uint32_t n, k = 0;
		if ((rc = links_of(g, c.id, level, &l, &n, pb)))
			return rc;
		for (uint32_t j = 0; j < n; j++) {
			uint32_t id = l[1 + j];
			if (id >= g->count)
				return bad_link(g, l, level, c.id, j, pb);
			if (tags[id] == epoch)
				continue;
			tags[id] = epoch;
			prefetch_node(g, id);
			nb[k++] = id;
		}
		if (nc + k > s->ccap && UTIL_GROW(s->cand, s->ccap, nc + k, 64))
			return -ENOMEM;
		for (uint32_t j = 0; j < k; j++) {
			uint32_t id = nb[j];
			if (j + 1 < k)
				prefetch_rest(g, nb[j + 1]);
			if ((rc = touch_node(g, id, pb)))
				return rc;
			float d = dist(g, q, id);
			if (nr < ef || d < lower) {
				util_minheap_push(s->cand, &nc, (struct util_hent){ d, id });
				rc = accept ? accept(accept_arg, label_of(g, id)) : 1;
				if (rc < 0)
					return rc;
				if (rc) {
					util_maxheap_push(s->res, &nr, (struct util_hent){ d, id });
					if (nr > ef)
						util_maxheap_pop(s->res, &nr);
					lower = s->res[0].d;
				}
			}
		}
	}
	*nres = nr;
	return 0;
}

/* Empties the result max-heap into out[0..n) nearest first. */
static void drain(struct scratch *s, size_t n, struct util_hent *out)
{
	while (n) {
		out[n - 1] = s->res[0];
		util_maxheap_pop(s->res, &n);
	}
}

/* ---- Building ------------------------------------------------------------------- */

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
	scratch_free(&b->s);
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
	if (scratch_ready(&b->s, i + 1, b->p.ef_construction) ||
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
		(void)greedy(&g, v, l, &ep, &epd, NULL);
	for (uint32_t l = level < b->max_level ? level : b->max_level;; l--) {
		size_t nr;
		/* Sized above: this only starts a new epoch of visited tags. */
		(void)scratch_ready(&b->s, b->count, b->p.ef_construction);
		(void)beam(&g, &b->s, v, ep, epd, l, b->p.ef_construction, NULL, NULL, &nr, NULL);
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

struct geometry {
	uint64_t stride, nodes_off, levels_off, upper_off, upper_len, total;
};

static struct geometry geometry_of(uint32_t m, uint32_t dim, uint32_t count, uint64_t nblocks)
{
	struct geometry ge;
	ge.stride = stride_of(2 * m, dim);
	ge.nodes_off = HNSW_HEADER_SIZE;
	ge.levels_off = ge.nodes_off + (uint64_t)count * ge.stride;
	ge.upper_off = align_up(ge.levels_off + HNSW_LEVEL_ENTRY * (uint64_t)count, 64);
	ge.upper_len = nblocks * 4 * (1 + (uint64_t)m);
	ge.total = align_up(ge.upper_off + ge.upper_len, 64);
	return ge;
}

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

/* ---- Reading in place --------------------------------------------------------------- */

static int bad_header(struct sutra_detail *pb, uint64_t file_off, uint64_t off, const char *what,
		      uint64_t val)
{
	if (pb) {
		pb->offset = file_off + off;
		snprintf(pb->what, sizeof pb->what, "hnsw header: %s (%llu)", what, (unsigned long long)val);
	}
	return SUTRA_ECORRUPT;
}

int layout_hnsw_view_open(struct layout_hnsw_view *v, const void *section, uint64_t len,
			  uint64_t file_off, uint32_t dim, layout_hnsw_touch_fn touch,
			  void *touch_arg, struct sutra_detail *pb)
{
	const unsigned char *p = section;
	int rc;

	if (len < HNSW_HEADER_SIZE)
		return bad_header(pb, file_off, 0, "section shorter than its header", len);
	if ((uintptr_t)p % 32)
		return bad_header(pb, file_off, 0, "section not 32-byte aligned in memory", (uintptr_t)p % 32);
	if (touch && (rc = touch(touch_arg, 0, HNSW_HEADER_SIZE, pb)))
		return rc;
	if (util_get_le32(p) != HNSW_MAGIC)
		return bad_header(pb, file_off, 0, "bad magic", util_get_le32(p));
	if (util_get_le32(p + 4) != HNSW_VERSION)
		return bad_header(pb, file_off, 4, "unknown version", util_get_le32(p + 4));
	uint32_t d = util_get_le32(p + 8), m = util_get_le32(p + 12), m0 = util_get_le32(p + 16);
	uint32_t count = util_get_le32(p + 20), max_level = util_get_le32(p + 24);
	uint32_t entry = util_get_le32(p + 28);
	if (d != dim)
		return bad_header(pb, file_off, 8, "dimension differs from the store's", d);
	if (m < 2 || m > LAYOUT_HNSW_MAX_M)
		return bad_header(pb, file_off, 12, "m out of range", m);
	if (m0 != 2 * m)
		return bad_header(pb, file_off, 16, "m0 is not 2 m", m0);
	if (max_level > LAYOUT_HNSW_MAX_LEVEL)
		return bad_header(pb, file_off, 24, "max_level out of range", max_level);
	if (count ? entry >= count : (entry || max_level))
		return bad_header(pb, file_off, 28, "entry out of range", entry);
	if (!util_is_zero(p + 72, HNSW_HEADER_SIZE - 72))
		return bad_header(pb, file_off, 72, "reserved bytes not zero", 0);
	uint64_t upper_len = util_get_le64(p + 64);
	uint64_t bw = 4 * (1 + (uint64_t)m);
	if (upper_len % bw || upper_len > len)
		return bad_header(pb, file_off, 64, "bad upper_len", upper_len);
	/* All products below are < 2^32 · 2^19, no overflow. */
	struct geometry ge = geometry_of(m, dim, count, upper_len / bw);
	if (util_get_le64(p + 32) != ge.stride)
		return bad_header(pb, file_off, 32, "bad node_stride", util_get_le64(p + 32));
	if (util_get_le64(p + 40) != ge.nodes_off)
		return bad_header(pb, file_off, 40, "bad nodes_off", util_get_le64(p + 40));
	if (util_get_le64(p + 48) != ge.levels_off)
		return bad_header(pb, file_off, 48, "bad levels_off", util_get_le64(p + 48));
	if (util_get_le64(p + 56) != ge.upper_off)
		return bad_header(pb, file_off, 56, "bad upper_off", util_get_le64(p + 56));
	if (ge.total != len)
		return bad_header(pb, file_off, 0, "section length does not match the geometry", len);

	*v = (struct layout_hnsw_view){
		.base = p,
		.len = len,
		.file_off = file_off,
		.touch = touch,
		.touch_arg = touch_arg,
		.dim = dim,
		.m = m,
		.m0 = m0,
		.count = count,
		.max_level = max_level,
		.entry = entry,
		.node_stride = ge.stride,
		.nodes_off = ge.nodes_off,
		.levels_off = ge.levels_off,
		.upper_off = ge.upper_off,
		.upper_len = upper_len,
	};
	return 0;
}

static struct graph view_graph(const struct layout_hnsw_view *v)
{
	return (struct graph){
		.nodes = v->base + v->nodes_off,
		.levels = (const uint32_t *)(const void *)(v->base + v->levels_off),
		.upper = (const uint32_t *)(const void *)(v->base + v->upper_off),
		.nblocks = v->upper_len / (4 * (1 + (uint64_t)v->m)),
		.stride = v->node_stride,
		.vec_off = vec_offset(v->m0),
		.count = v->count,
		.dim = v->dim,
		.m = v->m,
		.m0 = v->m0,
		.max_level = v->max_level,
		.entry = v->entry,
		.dot = util_vec_dot_fn(),
		.touch = v->touch,
		.touch_arg = v->touch_arg,
		.nodes_off = v->nodes_off,
		.levels_off = v->levels_off,
		.upper_off = v->upper_off,
		.file_off = v->file_off,
	};
}

int layout_hnsw_search(const struct layout_hnsw_view *v, const float *q, uint32_t k, uint32_t ef,
		       layout_hnsw_accept_fn accept, void *accept_arg,
		       struct layout_hnsw_hit *out, uint32_t *n, struct sutra_detail *pb)
{
	if (k == 0 || k > LAYOUT_HNSW_MAX_K)
		return SUTRA_EVALUE;
	if (v->count == 0) {
		*n = 0;
		return 0;
	}
	struct graph g = view_graph(v);
	struct scratch *s = thread_scratch();
	if (ef < k)
		ef = k;
	if (ef > v->count)
		ef = v->count;
	if (!s || scratch_ready(s, v->count, ef))
		return -ENOMEM;

	uint32_t ep = g.entry;
	int rc = touch_node(&g, ep, pb);
	if (rc)
		return rc;
	float epd = dist(&g, q, ep);
	for (uint32_t l = g.max_level; l > 0; l--)
		if ((rc = greedy(&g, q, l, &ep, &epd, pb)))
			return rc;
	size_t nr;
	if ((rc = beam(&g, s, q, ep, epd, 0, ef, accept, accept_arg, &nr, pb)))
		return rc;
	while (nr > k)
		util_maxheap_pop(s->res, &nr);
	uint32_t found = (uint32_t)nr;
	for (size_t i = nr; i > 0; i--) {
		out[i - 1].label = label_of(&g, s->res[0].id);
		out[i - 1].distance = s->res[0].d;
		util_maxheap_pop(s->res, &nr);
	}
	*n = found;
	return 0;
}

int layout_hnsw_node(const struct layout_hnsw_view *v, uint32_t i, uint32_t *label,
		     const float **vec, struct sutra_detail *pb)
{
	struct graph g = view_graph(v);
	if (i >= v->count)
		return corrupt(&g, pb, v->nodes_off, "node out of range", i);
	int rc = touch_node(&g, i, pb);
	if (rc)
		return rc;
	*label = label_of(&g, i);
	*vec = vec_of(&g, i);
	return 0;
}

int layout_hnsw_check(const struct layout_hnsw_view *v, struct sutra_detail *pb)
{
	struct graph g = view_graph(v);
	uint64_t next_block = 0;
	int rc;

	if (g.count && g.touch &&
	    (rc = g.touch(g.touch_arg, g.levels_off, HNSW_LEVEL_ENTRY * (uint64_t)g.count, pb)))
		return rc;
	for (uint32_t i = 0; i < g.count; i++) {
		const uint32_t *l;
		uint32_t n;
		if ((rc = touch_node(&g, i, pb)))
			return rc;
		uint32_t top = g.levels[2 * (size_t)i], first = g.levels[2 * (size_t)i + 1];
		uint64_t lvoff = g.levels_off + (uint64_t)i * HNSW_LEVEL_ENTRY;
		if (top > g.max_level)
			return corrupt(&g, pb, lvoff, "node level above max_level", top);
		if (top && first != next_block)
			return corrupt(&g, pb, lvoff + 4, "upper blocks out of order", first);
		if (!top && first)
			return corrupt(&g, pb, lvoff + 4, "upper block of a level-0 node", first);
		next_block += top;
		if (next_block > g.nblocks)
			return corrupt(&g, pb, lvoff + 4, "upper blocks past the area", first);
		if (i == g.entry && top != g.max_level)
			return corrupt(&g, pb, lvoff, "entry node is not on the top level", top);
		for (uint32_t level = 0; level <= top; level++) {
			if ((rc = links_of(&g, i, level, &l, &n, pb)))
				return rc;
			for (uint32_t j = 0; j < n; j++) {
				uint32_t id = l[1 + j];
				if (id >= g.count || id == i)
					return bad_link(&g, l, level, i, j, pb);
				if (level && g.levels[2 * (size_t)id] < level)
					return corrupt(&g, pb, lvoff, "link to a node below the level", id);
			}
		}
		const float *vec = vec_of(&g, i);
		float n2 = util_norm2(vec, g.dim);
		if (!(fabsf(n2 - 1.0f) < 1e-3f))
			return corrupt(&g, pb, g.nodes_off + (uint64_t)i * g.stride + g.vec_off,
				       "vector not of unit length", i);
	}
	if (next_block != g.nblocks)
		return corrupt(&g, pb, g.upper_off, "upper blocks nobody owns", g.nblocks - next_block);
	return 0;
}
