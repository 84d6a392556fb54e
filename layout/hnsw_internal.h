/* SPDX-License-Identifier: MIT */
/* HNSW graphs, private to layout/: the section's layout and the graph walk that hnsw_build.c and hnsw_search.c share. */
#ifndef LAYOUT_HNSW_INTERNAL_H
#define LAYOUT_HNSW_INTERNAL_H

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
 * The builder (hnsw_build.c) keeps its graph in memory in exactly that form
 * (host order is little-endian on every target we build for, checked
 * below), so the same search code runs while building and over a mapped
 * section, and writing the section is a few copies. Searching reads links
 * and vectors straight from the bytes: the vector a kernel sees is the one
 * in the file. Both see the graph through struct graph, and the walk over
 * it (greedy descent, beam search, with the per-search scratch memory) has
 * one home, hnsw_search.c, beside the query path, so that the loops of a
 * search and the distance, link and heap helpers they call stay in one
 * translation unit; the builder calls the walk once per level of each
 * insertion.
 *
 * Every value read from a section is checked before it is used: a link
 * count against m0 or m, a link against count, a level entry against
 * max_level and the number of upper blocks. With a touch callback, the
 * bytes of a node record, a level entry or an upper block are touched
 * before they are read; a node record is touched once per search, when the
 * node is first visited (its links are read later, when it is expanded).
 * The builder's graph has no touch callback and is trusted.
 */

#include <stddef.h>
#include <stdint.h>

#include "layout/hnsw.h"
#include "layout/layout.h"
#include "util/heap.h"
#include "util/vecdist.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "HNSW sections are searched in place and need a little-endian host"
#endif

#define HNSW_MAGIC 0x574E4853u /* "SHNW" */
#define HNSW_VERSION 1u
#define HNSW_HEADER_SIZE 128u
#define HNSW_LEVEL_ENTRY 8u

/* ---- The section's geometry -------------------------------------------------- */

static inline uint64_t vec_offset(uint32_t m0)
{
	return layout_align_up(8 + 4 * (uint64_t)m0, 32);
}

static inline uint64_t stride_of(uint32_t m0, uint32_t dim)
{
	return layout_align_up(vec_offset(m0) + 4 * (uint64_t)dim, 64);
}

struct geometry {
	uint64_t stride, nodes_off, levels_off, upper_off, upper_len, total;
};

/* Where the arrays of a graph of count nodes and nblocks upper blocks lie:
 * what the builder writes and what a view requires of a section header. */
static inline struct geometry geometry_of(uint32_t m, uint32_t dim, uint32_t count,
					  uint64_t nblocks)
{
	struct geometry ge;
	ge.stride = stride_of(2 * m, dim);
	ge.nodes_off = HNSW_HEADER_SIZE;
	ge.levels_off = ge.nodes_off + (uint64_t)count * ge.stride;
	ge.upper_off = layout_align_up(ge.levels_off + HNSW_LEVEL_ENTRY * (uint64_t)count, 64);
	ge.upper_len = nblocks * 4 * (1 + (uint64_t)m);
	ge.total = layout_align_up(ge.upper_off + ge.upper_len, 64);
	return ge;
}

/* ---- The graph as the search sees it ----------------------------------------- */

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

static inline const unsigned char *node_at(const struct graph *g, uint32_t i)
{
	return g->nodes + (size_t)i * g->stride;
}

static inline const float *vec_of(const struct graph *g, uint32_t i)
{
	return (const float *)(const void *)(node_at(g, i) + g->vec_off);
}

static inline float dist(const struct graph *g, const float *q, uint32_t i)
{
	return 1.0f - g->dot(q, vec_of(g, i), g->dim);
}

/* Makes s ready for a search of a graph of count nodes with beam ef (a new
 * epoch of visited tags). 0 or -ENOMEM. */
int layout_hnsw_scratch_ready(struct scratch *s, uint32_t count, uint32_t ef);

/* Frees s's buffers (s itself is the caller's); s may be NULL. */
void layout_hnsw_scratch_finish(struct scratch *s);

/* Greedy descent at one upper level: moves *cur to a neighbour nearer to q
 * while there is one. 0, SUTRA_ECORRUPT (*pb) or the touch callback's
 * error; never fails on the builder's graph. */
int layout_hnsw_greedy(const struct graph *g, const float *q, uint32_t level, uint32_t *cur,
		       float *curd, struct sutra_detail *pb);

/* The beam search of one level from ep (already touched, at distance epd):
 * leaves the up to ef nearest accepted nodes found in s->res, a max-heap of
 * *nres entries. accept may be NULL (every node). 0, SUTRA_ECORRUPT (*pb),
 * the touch callback's or accept's error, or -ENOMEM when s->cand must
 * grow (never when it has room for every node). */
int layout_hnsw_beam(const struct graph *g, struct scratch *s, const float *q, uint32_t ep,
		     float epd, uint32_t level, uint32_t ef, layout_hnsw_accept_fn accept,
		     void *accept_arg, size_t *nres, struct sutra_detail *pb);

#endif /* LAYOUT_HNSW_INTERNAL_H */
