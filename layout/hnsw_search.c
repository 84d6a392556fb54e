/* SPDX-License-Identifier: MIT */
/* HNSW graphs, searching: the bounds-checked walk over a graph, and the view that opens, searches and checks a section in place. */
#include "layout/hnsw.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout/hnsw_internal.h"
#include "util/endian.h"
#include "util/grow.h"
#include "util/heap.h"
#include "util/vecdist.h"

/* ---- Scratch memory ------------------------------------------------------------- */

void layout_hnsw_scratch_finish(struct scratch *s)
{
	if (!s)
		return;
	free(s->tags);
	free(s->cand);
	free(s->res);
	memset(s, 0, sizeof *s);
}

int layout_hnsw_scratch_ready(struct scratch *s, uint32_t count, uint32_t ef)
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
	layout_hnsw_scratch_finish(p);
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
	util_detail_set(pb, g->file_off + off, "hnsw: %s (%llu)", what, (unsigned long long)val);
	return SUTRA_ECORRUPT;
}

static inline int touch_node(const struct graph *g, uint32_t i, struct sutra_detail *pb)
{
	if (!g->touch)
		return 0;
	return g->touch(g->touch_arg, g->nodes_off + (uint64_t)i * g->stride, g->stride, pb);
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

/* Distances strictly decrease, so the descent ends. */
int layout_hnsw_greedy(const struct graph *g, const float *q, uint32_t level, uint32_t *cur,
		       float *curd, struct sutra_detail *pb)
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
int layout_hnsw_beam(const struct graph *g, struct scratch *s, const float *q, uint32_t ep,
		     float epd, uint32_t level, uint32_t ef, layout_hnsw_accept_fn accept,
		     void *accept_arg, size_t *nres, struct sutra_detail *pb)
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

/* ---- Reading in place --------------------------------------------------------------- */

static int bad_header(struct sutra_detail *pb, uint64_t file_off, uint64_t off, const char *what,
		      uint64_t val)
{
	util_detail_set(pb, file_off + off, "hnsw header: %s (%llu)", what,
			(unsigned long long)val);
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
	if (!s || layout_hnsw_scratch_ready(s, v->count, ef))
		return -ENOMEM;

	uint32_t ep = g.entry;
	int rc = touch_node(&g, ep, pb);
	if (rc)
		return rc;
	float epd = dist(&g, q, ep);
	for (uint32_t l = g.max_level; l > 0; l--)
		if ((rc = layout_hnsw_greedy(&g, q, l, &ep, &epd, pb)))
			return rc;
	size_t nr;
	if ((rc = layout_hnsw_beam(&g, s, q, ep, epd, 0, ef, accept, accept_arg, &nr, pb)))
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
