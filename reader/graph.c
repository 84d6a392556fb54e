/* SPDX-License-Identifier: MIT */
/* The association graph through a snapshot: neighbours, shortest paths (bidirectional BFS) and k shortest simple paths (Yen). */
#include "sutra/reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "layout/layout.h"
#include "layout/segindex.h"
#include "reader/internal.h"
#include "reader/tindex.h"
#include "util/endian.h"
#include "util/grow.h"
#include "util/idmap.h"

/* The id of a concept the snapshot reached by ordinal (through an edge). */
static int id_of_ordinal(const sutra_snapshot *s, uint32_t o, uint8_t id[16])
{
	int rc = rdr_find_id(s, o, id);
	return rc == 1 ? 0 : rc < 0 ? rc : SUTRA_ECORRUPT; /* an edge named an ordinal no layer has */
}

/* ---- Associations ---------------------------------------------------------------- */

/* One association end as seen from the concept asked about. */
struct edge_end {
	uint32_t other;
	uint8_t type;
	uint8_t outgoing;
	float confidence;
	float weight;
	uint64_t created_us;
	uint8_t id[16]; /* of other; filled only when details were asked */
};

/* Per segment: where ordinal's out and in lists are. */
struct seglists {
	uint64_t out_first, in_first;
	uint32_t out_count, in_count;
};

/*
 * Calls fn(arg, e) for each association of ordinal o live in the snapshot,
 * of type (-1: any), leaving o (out) or arriving at it (in) as dir asks; a
 * loop o -> o once, as outgoing. With details, e has the values and the
 * other end's id. The tail decides first, then segments newest first: the
 * first layer that mentions a key (upsert or delete) decides it. Returns
 * 0, fn's non-zero value, or an error.
 */
static int each_edge(const sutra_snapshot *s, uint32_t o, int type, enum sutra_direction dir,
		     int details, int (*fn)(void *arg, const struct edge_end *e), void *arg)
{
	const struct rdr_view *v = s->v;
	struct sutra_detail pb;
	struct edge_end e;
	int rc = 0;

	uint32_t k = rdr_tail_head(v, s->ogen, o);
	int tail_has = k != 0;
	while (k) {
		const struct enode *node = rdr_tail_node(v, k);
		k = node->next;
		uint32_t src = util_get_le32(node->key), dst = util_get_le32(node->key + 4);
		uint8_t atype = node->key[8];
		int outgoing = src == o;
		if ((type >= 0 && atype != type) || (dir == SUTRA_DIR_OUT && !outgoing) ||
		    (dir == SUTRA_DIR_IN && dst != o))
			continue;
		uint64_t aoff;
		uint32_t unused;
		if (!rdr_tindex_get(&v->eix, s->egen, node->key, s->epoch, &aoff, &unused))
			continue;
		e.other = outgoing ? dst : src;
		e.type = atype;
		e.outgoing = (uint8_t)outgoing;
		if (details) {
			struct layout_record rec;
			if ((rc = layout_record_at(s->r->map, s->published_end, aoff,
						   s->r->sb.vector_dim, &rec, &pb)))
				return rc;
			if (rec.type != LAYOUT_REC_ASSOCIATION)
				return SUTRA_ECORRUPT;
			e.confidence = rec.u.association.confidence;
			e.weight = rec.u.association.weight;
			e.created_us = rec.u.association.created_us;
			memcpy(e.id, outgoing ? rec.u.association.dst : rec.u.association.src, 16);
		}
		if ((rc = fn(arg, &e)))
			return rc;
	}

	struct seglists sl[LAYOUT_MAX_SEGMENTS];
	uint32_t layers = 0;
	for (uint32_t j = 0; j < v->nseg; j++) {
		struct layout_segview *sv = &v->seg[j]->sv;
		memset(&sl[j], 0, sizeof sl[j]);
		if (dir != SUTRA_DIR_IN &&
		    (rc = layout_segview_adjacent(sv, 1, o, &sl[j].out_first, &sl[j].out_count, &pb)))
			return rc;
		if (dir != SUTRA_DIR_OUT &&
		    (rc = layout_segview_adjacent(sv, 0, o, &sl[j].in_first, &sl[j].in_count, &pb)))
			return rc;
		layers += sl[j].out_count || sl[j].in_count;
	}
	/* Keys decided by a newer segment, when an older one may repeat them. */
	struct util_idmap seen;
	util_idmap_init(&seen);
	for (uint32_t j = v->nseg; j-- > 0 && rc == 0;) {
		struct layout_segview *sv = &v->seg[j]->sv;
		if (!sl[j].out_count && !sl[j].in_count)
			continue;
		layers--;
		for (int out = 1; out >= 0 && rc == 0; out--) {
			uint32_t n = out ? sl[j].out_count : sl[j].in_count;
			uint64_t first = out ? sl[j].out_first : sl[j].in_first;
			for (uint32_t i = 0; i < n && rc == 0; i++) {
				struct layout_seg_edge se;
				uint8_t key[16];
				rc = out ? layout_segview_edge(sv, first + i, &se, &pb)
					 : layout_segview_in_edge(sv, first + i, &se, &pb);
				if (rc)
					break;
				if ((out ? se.src_ordinal : se.dst_ordinal) != o) {
					rc = SUTRA_ECORRUPT;
					break;
				}
				/* A loop is in both lists: take it from the out list. */
				if ((type >= 0 && se.type != type) ||
				    (!out && se.src_ordinal == o && dir != SUTRA_DIR_IN))
					continue;
				layout_edge_key(key, se.src_ordinal, se.dst_ordinal, se.type);
				uint64_t aoff;
				uint32_t unused;
				if (tail_has && rdr_tindex_find(&v->eix, s->egen, key, s->epoch, &aoff,
								&unused) != RDR_ABSENT)
					continue;
				if (seen.len && util_idmap_get(&seen, key, NULL))
					continue;
				if (layers && (rc = util_idmap_put(&seen, key, 1)))
					break;
				if (se.flags & LAYOUT_SEG_DELETED)
					continue;
				e.other = out ? se.dst_ordinal : se.src_ordinal;
				e.type = se.type;
				/* A loop is outgoing whichever list gave it (as
				 * in the tail): under SUTRA_DIR_IN it comes from
				 * the in list. */
				e.outgoing = (uint8_t)(out || se.src_ordinal == o);
				e.confidence = se.confidence;
				e.weight = se.weight;
				e.created_us = se.created_us;
				memcpy(e.id, out ? se.dst : se.src, 16);
				/* Defence in depth: an end deleted in a newer
				 * segment cannot have live associations. */
				int dead = 0;
				for (uint32_t k2 = j + 1; details && k2 < v->nseg && !dead; k2++)
					dead = layout_segview_dead(&v->seg[k2]->sv, e.other, &pb);
				if (dead < 0) {
					rc = dead;
					break;
				}
				if (!dead)
					rc = fn(arg, &e);
			}
		}
	}
	util_idmap_finish(&seen);
	return rc;
}

struct collect {
	struct sutra_neighbor *all;
	size_t len, cap;
};

static int collect_edge(void *arg, const struct edge_end *e)
{
	struct collect *c = arg;
	int rc = UTIL_GROW(c->all, c->cap, c->len + 1, 16);
	if (rc)
		return rc;
	struct sutra_neighbor *nb = &c->all[c->len++];
	memcpy(nb->id, e->id, 16);
	nb->ordinal = e->other;
	nb->type = e->type;
	nb->outgoing = e->outgoing;
	nb->confidence = e->confidence;
	nb->weight = e->weight;
	nb->created_us = e->created_us;
	return 0;
}

static int cmp_neighbor(const void *a, const void *b)
{
	const struct sutra_neighbor *x = a, *y = b;
	if (x->confidence != y->confidence)
		return x->confidence > y->confidence ? -1 : 1;
	if (x->ordinal != y->ordinal)
		return x->ordinal < y->ordinal ? -1 : 1;
	if (x->outgoing != y->outgoing)
		return (int)y->outgoing - (int)x->outgoing;
	return (int)x->type - (int)y->type;
}

int sutra_snapshot_neighbors(const sutra_snapshot *s, const uint8_t id[16], int type,
			     enum sutra_direction dir, size_t limit, struct sutra_neighbor *out,
			     size_t *n, size_t *total)
{
	struct found f;
	struct collect c = { 0 };
	if (type < -1 || type > 255 || (dir != SUTRA_DIR_BOTH && dir != SUTRA_DIR_OUT &&
					dir != SUTRA_DIR_IN))
		return SUTRA_EVALUE;
	int rc = rdr_lookup(s, id, &f);
	if (rc <= 0)
		return rc < 0 ? rc : SUTRA_ENOTFOUND;
	rc = each_edge(s, f.ordinal, type, dir, 1, collect_edge, &c);
	if (rc == 0) {
		if (c.len > 1)
			qsort(c.all, c.len, sizeof *c.all, cmp_neighbor);
		size_t m = c.len < limit ? c.len : limit;
		if (m)
			memcpy(out, c.all, m * sizeof *out);
		*n = m;
		if (total)
			*total = c.len;
	}
	free(c.all);
	return rc;
}

/* ---- Paths ------------------------------------------------------------------------ */

/* Ordinal -> (parent + 1, depth) for the nodes one side of a search has
 * reached: open addressing, so that a search costs what it visits, not
 * the store's size. */
struct reached {
	uint32_t *key; /* ordinal + 1; 0: empty */
	uint32_t *parent, *depth;
	size_t cap, len;
};

static size_t reached_slot(const struct reached *m, uint32_t o)
{
	uint64_t h = ((uint64_t)o + 1) * 0x9E3779B97F4A7C15ull;
	size_t i = (size_t)(h >> 32) & (m->cap - 1);
	while (m->key[i] && m->key[i] != o + 1)
		i = (i + 1) & (m->cap - 1);
	return i;
}

/* parent + 1 of o, 0 when not reached. */
static uint32_t reached_get(const struct reached *m, uint32_t o, uint32_t *depth)
{
	size_t i = reached_slot(m, o);
	if (!m->key[i])
		return 0;
	if (depth)
		*depth = m->depth[i];
	return m->parent[i];
}

static int reached_put(struct reached *m, uint32_t o, uint32_t parent, uint32_t depth)
{
	if (2 * (m->len + 1) > m->cap) {
		struct reached n = { .cap = m->cap ? 2 * m->cap : 64 };
		n.key = calloc(n.cap, sizeof *n.key);
		n.parent = malloc(n.cap * sizeof *n.parent);
		n.depth = malloc(n.cap * sizeof *n.depth);
		if (!n.key || !n.parent || !n.depth) {
			free(n.key);
			free(n.parent);
			free(n.depth);
			return -ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->key[i])
				continue;
			size_t j = reached_slot(&n, m->key[i] - 1);
			n.key[j] = m->key[i];
			n.parent[j] = m->parent[i];
			n.depth[j] = m->depth[i];
		}
		n.len = m->len;
		free(m->key);
		free(m->parent);
		free(m->depth);
		*m = n;
	}
	size_t i = reached_slot(m, o);
	m->key[i] = o + 1;
	m->parent[i] = parent;
	m->depth[i] = depth;
	m->len++;
	return 0;
}

static void reached_free(struct reached *m)
{
	free(m->key);
	free(m->parent);
	free(m->depth);
}

/* What a search must avoid (for k paths): nodes, and steps u -> v in the
 * path's direction. */
struct ban {
	const uint32_t *node;
	size_t nnodes;
	const uint32_t (*step)[2];
	size_t nsteps;
};

struct list {
	uint32_t *o;
	size_t n, cap;
};

static int list_push(struct list *l, uint32_t o)
{
	int rc = UTIL_GROW(l->o, l->cap, l->n + 1, 64);
	if (rc == 0)
		l->o[l->n++] = o;
	return rc;
}

/* One side of the bidirectional search. */
struct side {
	const struct ban *ban;
	int forward;      /* 1: from the start (steps from -> other) */
	struct reached seen;
	struct list frontier, next;
	uint32_t level;   /* depth of the frontier being expanded */
	const struct side *other;
	uint32_t from;    /* the ordinal being expanded */
	uint32_t meet;    /* best meeting ordinal + 1 */
	uint32_t best;    /* its path length */
};

/* Reaches e->other from sd->from. A node the other side reached is a
 * meeting point; the whole level is expanded and the shortest total kept,
 * since the first meeting found need not be the closest to the other
 * start. */
static int visit_edge(void *arg, const struct edge_end *e)
{
	struct side *sd = arg;
	uint32_t other = e->other, odepth;
	if (reached_get(&sd->seen, other, NULL))
		return 0;
	if (sd->ban) {
		for (size_t i = 0; i < sd->ban->nnodes; i++)
			if (sd->ban->node[i] == other)
				return 0;
		uint32_t u = sd->forward ? sd->from : other, w = sd->forward ? other : sd->from;
		for (size_t i = 0; i < sd->ban->nsteps; i++)
			if (sd->ban->step[i][0] == u && sd->ban->step[i][1] == w)
				return 0;
	}
	int rc = reached_put(&sd->seen, other, sd->from + 1, sd->level + 1);
	if (rc == 0)
		rc = list_push(&sd->next, other);
	if (rc)
		return rc;
	if (reached_get(&sd->other->seen, other, &odepth)) {
		uint32_t total = sd->level + 1 + odepth;
		if (!sd->meet || total < sd->best) {
			sd->meet = other + 1;
			sd->best = total;
		}
	}
	return 0;
}

/* Shortest path a -> b as ordinals into path (room for max_depth + 1),
 * avoiding ban (may be NULL). Returns 0, SUTRA_ENOTFOUND, or an error. */
static int bfs_path(const sutra_snapshot *s, uint32_t a, uint32_t b, int type,
		    enum sutra_direction dir, unsigned max_depth, const struct ban *ban,
		    uint32_t *path, size_t *len)
{
	if (a == b) {
		path[0] = a;
		*len = 1;
		return 0;
	}
	/* Forward follows dir; backward follows it reversed. */
	enum sutra_direction back = dir == SUTRA_DIR_OUT ? SUTRA_DIR_IN
				    : dir == SUTRA_DIR_IN ? SUTRA_DIR_OUT
							  : SUTRA_DIR_BOTH;
	struct side f = { .ban = ban, .forward = 1 }, g = { .ban = ban, .forward = 0 };
	f.other = &g;
	g.other = &f;
	int rc = reached_put(&f.seen, a, a + 1, 0);
	if (rc == 0)
		rc = reached_put(&g.seen, b, b + 1, 0);
	if (rc == 0)
		rc = list_push(&f.frontier, a);
	if (rc == 0)
		rc = list_push(&g.frontier, b);
	uint32_t meet = 0;
	for (unsigned depth = 0; rc == 0 && depth < max_depth && !meet && f.frontier.n &&
				 g.frontier.n;
	     depth++) {
		/* Expand the smaller frontier: one more edge on the path. */
		struct side *sd = f.frontier.n <= g.frontier.n ? &f : &g;
		enum sutra_direction d = sd == &f ? dir : back;
		sd->next.n = 0;
		for (size_t i = 0; i < sd->frontier.n && rc == 0; i++) {
			sd->from = sd->frontier.o[i];
			rc = each_edge(s, sd->from, type, d, 0, visit_edge, sd);
		}
		meet = sd->meet;
		sd->level++;
		struct list t = sd->frontier;
		sd->frontier = sd->next;
		sd->next = t;
	}
	if (rc == 0)
		rc = SUTRA_ENOTFOUND;
	if (meet && rc == SUTRA_ENOTFOUND) {
		uint32_t m = meet - 1;
		size_t k = 0;
		/* a ... m along f's parents (reversed), then m ... b. */
		for (uint32_t o = m;; o = reached_get(&f.seen, o, NULL) - 1) {
			path[k++] = o;
			if (o == a)
				break;
		}
		for (size_t i = 0; i < k / 2; i++) {
			uint32_t t = path[i];
			path[i] = path[k - 1 - i];
			path[k - 1 - i] = t;
		}
		for (uint32_t o = m; o != b;) {
			o = reached_get(&g.seen, o, NULL) - 1;
			path[k++] = o;
		}
		*len = k;
		rc = 0;
	}
	reached_free(&f.seen);
	reached_free(&g.seen);
	free(f.frontier.o);
	free(f.next.o);
	free(g.frontier.o);
	free(g.next.o);
	return rc;
}

static int check_path_args(const sutra_snapshot *s, const uint8_t from[16], const uint8_t to[16],
			   int type, enum sutra_direction dir, unsigned max_depth, uint32_t *a,
			   uint32_t *b)
{
	struct found f;
	int rc;
	if (max_depth < 1 || max_depth > SUTRA_MAX_PATH_DEPTH || type < -1 || type > 255 ||
	    (dir != SUTRA_DIR_BOTH && dir != SUTRA_DIR_OUT && dir != SUTRA_DIR_IN))
		return SUTRA_EVALUE;
	if ((rc = rdr_lookup(s, from, &f)) <= 0)
		return rc < 0 ? rc : SUTRA_ENOTFOUND;
	*a = f.ordinal;
	if ((rc = rdr_lookup(s, to, &f)) <= 0)
		return rc < 0 ? rc : SUTRA_ENOTFOUND;
	*b = f.ordinal;
	return 0;
}

int sutra_snapshot_shortest_path(const sutra_snapshot *s, const uint8_t from[16],
				 const uint8_t to[16], int type, enum sutra_direction dir,
				 unsigned max_depth, uint8_t (*out)[16], size_t *len)
{
	uint32_t a, b, path[SUTRA_MAX_PATH_DEPTH + 1];
	size_t k;
	int rc = check_path_args(s, from, to, type, dir, max_depth, &a, &b);
	if (rc == 0)
		rc = bfs_path(s, a, b, type, dir, max_depth, NULL, path, &k);
	for (size_t i = 0; rc == 0 && i < k; i++)
		rc = id_of_ordinal(s, path[i], out[i]);
	if (rc == 0)
		*len = k;
	return rc;
}

#define PMAX (SUTRA_MAX_PATH_DEPTH + 1)
struct kpath {
	uint32_t o[PMAX];
	size_t len;
};

static int same_path(const struct kpath *x, const struct kpath *y)
{
	return x->len == y->len && memcmp(x->o, y->o, x->len * sizeof x->o[0]) == 0;
}

/* Yen's algorithm over bfs_path: each next path deviates from an accepted
 * one at some spur node, avoiding the accepted paths' next steps there and
 * the nodes of the root before it, so that every path is simple. */
int sutra_snapshot_paths(const sutra_snapshot *s, const uint8_t from[16], const uint8_t to[16],
			 int type, enum sutra_direction dir, unsigned max_depth, size_t k,
			 uint8_t (*out)[16], size_t *lens, size_t *count)
{
	uint32_t a, b;
	int rc = check_path_args(s, from, to, type, dir, max_depth, &a, &b);
	if (rc)
		return rc;
	if (k == 0 || k > SUTRA_MAX_PATHS)
		return SUTRA_EVALUE;
	struct kpath *acc = calloc(k, sizeof *acc);
	struct kpath *cand = NULL;
	size_t ncand = 0, capcand = 0, nacc = 0;
	uint32_t (*steps)[2] = calloc(k, sizeof *steps);
	if (!acc || !steps) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = bfs_path(s, a, b, type, dir, max_depth, NULL, acc[0].o, &acc[0].len)))
		goto out;
	nacc = 1;
	while (nacc < k && acc[nacc - 1].len > 1) {
		const struct kpath *prev = &acc[nacc - 1];
		for (size_t i = 0; i + 1 < prev->len; i++) {
			/* The root's nodes before the spur are banned. */
			struct ban ban = { .node = prev->o, .nnodes = i,
					   .step = (const uint32_t (*)[2])steps };
			for (size_t j = 0; j < nacc; j++) {
				if (acc[j].len > i + 1 &&
				    memcmp(acc[j].o, prev->o, (i + 1) * sizeof prev->o[0]) == 0) {
					steps[ban.nsteps][0] = acc[j].o[i];
					steps[ban.nsteps][1] = acc[j].o[i + 1];
					ban.nsteps++;
				}
			}
			struct kpath p;
			size_t slen;
			memcpy(p.o, prev->o, i * sizeof p.o[0]);
			rc = bfs_path(s, prev->o[i], b, type, dir, max_depth - (unsigned)i, &ban,
				      p.o + i, &slen);
			if (rc == SUTRA_ENOTFOUND)
				continue;
			if (rc)
				goto out;
			p.len = i + slen;
			int dup = 0;
			for (size_t j = 0; j < ncand && !dup; j++)
				dup = same_path(&cand[j], &p);
			for (size_t j = 0; j < nacc && !dup; j++)
				dup = same_path(&acc[j], &p);
			if (dup)
				continue;
			if ((rc = UTIL_GROW(cand, capcand, ncand + 1, 16)))
				goto out;
			cand[ncand++] = p;
		}
		rc = 0;
		if (!ncand)
			break;
		size_t best = 0;
		for (size_t j = 1; j < ncand; j++)
			if (cand[j].len < cand[best].len)
				best = j;
		acc[nacc++] = cand[best];
		cand[best] = cand[--ncand];
	}
	for (size_t j = 0; j < nacc; j++) {
		for (size_t i = 0; i < acc[j].len; i++)
			if ((rc = id_of_ordinal(s, acc[j].o[i], out[j * (max_depth + 1) + i])))
				goto out;
		lens[j] = acc[j].len;
	}
	*count = nacc;
	rc = 0;
out:
	free(acc);
	free(cand);
	free(steps);
	return rc;
}
