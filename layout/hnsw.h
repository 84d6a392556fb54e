/* SPDX-License-Identifier: MIT */
/* HNSW graphs: building one in memory, serialising it as a segment section, and searching it in place. */
#ifndef LAYOUT_HNSW_H
#define LAYOUT_HNSW_H

/*
 * One HNSW graph (Malkov & Yashunin) over the unit-length vectors of one
 * index segment, cosine distance d(a, b) = 1 - a.b. The builder runs in the
 * coordinator's segment builder thread; the serialised graph is one
 * contiguous section (kind HNSW, docs/FORMAT.md section 10.5) that readers
 * search where it lies in the mapping, with no copy.
 *
 * Labels are the concepts' ordinals. Nodes are numbered 0..count-1 in the
 * order they were added; every link, entry point and level read from a
 * section is bounds-checked before use, so a damaged section gives
 * SUTRA_ECORRUPT, never a read outside it.
 *
 * Reads go through a touch callback before any byte range of the section
 * is used, so that the segment view can check the 64 KiB chunks it covers
 * against their CRCs the first time (lazy checking, FORMAT.md 10.2).
 *
 * Thread-safety: a builder is used by one thread. A view is read-only and
 * may be searched by many threads at once (each search takes its own
 * scratch memory from a per-thread pool).
 *
 * The builder and the encoder are in hnsw_build.c, the view and the search
 * in hnsw_search.c; the section's layout and the graph walk both use are
 * in hnsw_internal.h.
 */

#include <stddef.h>
#include <stdint.h>

#include "layout/layout.h"

#define LAYOUT_HNSW_MAX_M 128u      /* M up to this; level 0 keeps 2*M links */
#define LAYOUT_HNSW_MAX_LEVEL 31u
#define LAYOUT_HNSW_MAX_K 1000u     /* the most results one search returns */

struct layout_hnsw_params {
	uint32_t dim;              /* 1..65536 */
	uint32_t m;                /* 2..LAYOUT_HNSW_MAX_M */
	uint32_t ef_construction;  /* >= 1 */
	uint64_t seed;             /* level draws: the same inputs give the same bytes */
};

/* ---- Building -------------------------------------------------------------- */

struct layout_hnsw_builder;

/* Creates an empty graph with room for capacity nodes (it grows past it).
 * Returns 0, -EINVAL (bad params) or -ENOMEM. */
int layout_hnsw_builder_create(const struct layout_hnsw_params *p, uint32_t capacity,
			       struct layout_hnsw_builder **out);
void layout_hnsw_builder_destroy(struct layout_hnsw_builder *b);

/* Adds a node labelled label (an ordinal) with vector vec (dim floats, any
 * length but zero; the builder stores it normalised to unit length).
 * Returns 0, SUTRA_EVALUE (zero, NaN or Inf component), -ENOMEM. */
int layout_hnsw_add(struct layout_hnsw_builder *b, uint32_t label, const float *vec);

/* Nodes added so far. */
uint32_t layout_hnsw_count(const struct layout_hnsw_builder *b);

/* The exact size of the serialised section (a multiple of 64). */
uint64_t layout_hnsw_serialized_size(const struct layout_hnsw_builder *b);

/* Writes the section into buf (layout_hnsw_serialized_size() bytes, the
 * caller zeroes nothing: every byte is written). buf must be 64-aligned
 * relative to the section's place in the file, as sections are. */
void layout_hnsw_serialize(const struct layout_hnsw_builder *b, unsigned char *buf);

/* ---- Reading in place ------------------------------------------------------ */

/* Called before bytes [off, off+len) of the section are read (offsets from
 * the section's start). Returns 0 or SUTRA_ECORRUPT (with *pb filled). */
typedef int (*layout_hnsw_touch_fn)(void *arg, uint64_t off, uint64_t len,
				    struct sutra_detail *pb);

struct layout_hnsw_view {
	const unsigned char *base;   /* the section's first byte (borrowed) */
	uint64_t len;
	uint64_t file_off;           /* the section's offset in the file, for problems */
	layout_hnsw_touch_fn touch;  /* may be NULL: bytes already checked */
	void *touch_arg;
	/* decoded from the section header by layout_hnsw_view_open() */
	uint32_t dim, m, m0, count, max_level, entry;
	uint64_t node_stride, nodes_off, levels_off, upper_off, upper_len;
};

/* Checks the section header and geometry (constant cost, touches only the
 * header) against the store's dimension. 0 or SUTRA_ECORRUPT. */
int layout_hnsw_view_open(struct layout_hnsw_view *v, const void *section, uint64_t len,
			  uint64_t file_off, uint32_t dim, layout_hnsw_touch_fn touch,
			  void *touch_arg, struct sutra_detail *pb);

/* Decides whether a node may be a result. Return 1 yes, 0 no (the node is
 * still traversed), or a negative error that ends the search. */
typedef int (*layout_hnsw_accept_fn)(void *arg, uint32_t label);

struct layout_hnsw_hit {
	uint32_t label;
	float distance;              /* 1 - cosine similarity */
};

/* The k nearest accepted nodes to q (dim floats, unit length) found with a
 * beam of max(ef, k), nearest first. accept NULL accepts every node.
 * Returns 0 (*n <= k results in out), SUTRA_EVALUE (k = 0 or k > MAX_K),
 * SUTRA_ECORRUPT (*pb), accept's error, or -ENOMEM. */
int layout_hnsw_search(const struct layout_hnsw_view *v, const float *q, uint32_t k, uint32_t ef,
		       layout_hnsw_accept_fn accept, void *accept_arg,
		       struct layout_hnsw_hit *out, uint32_t *n, struct sutra_detail *pb);

/* The stored (unit) vector and label of node i < count, or SUTRA_ECORRUPT. */
int layout_hnsw_node(const struct layout_hnsw_view *v, uint32_t i, uint32_t *label,
		     const float **vec, struct sutra_detail *pb);

/* Checks every node's links, levels and label against the geometry
 * (verify): 0 or SUTRA_ECORRUPT. */
int layout_hnsw_check(const struct layout_hnsw_view *v, struct sutra_detail *pb);

#endif /* LAYOUT_HNSW_H */
