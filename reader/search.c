/* SPDX-License-Identifier: MIT */
/* Vector and text search through a snapshot: each segment's HNSW graph and postings read in place, the tail compared one by one. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <roaring/roaring.h>

#include "layout/hnsw.h"
#include "layout/segindex.h"
#include "layout/textidx.h"
#include "reader/internal.h"
#include "sutra/reader.h"
#include "util/endian.h"
#include "util/grow.h"
#include "util/heap.h"
#include "util/idmap.h"
#include "util/tokenize.h"
#include "util/vecdist.h"

/*
 * Layers are searched as lookups read them (FORMAT.md 10.3): the tail
 * decides first, then segments newest first, and the first layer that
 * mentions an id decides it. A segment's graph and postings hold the
 * segment's own live concepts; a candidate from segment j is taken only
 * when no newer layer mentions its id (rdr_shadowed), so that a concept
 * deleted or updated since is never returned by its old values: an
 * updated vector lives in the newer layer's graph, or in the tail.
 */

/* A filter at most this big, or under 1/FILTER_RATIO of the concepts, is
 * scanned exactly: a graph search among few accepted nodes would wander
 * through the whole graph and still miss some of them. */
#define FILTER_EXACT 4096u
#define FILTER_RATIO 50u
/* The most distinct terms a text query may have. */
#define MAX_TERMS 64u

/* A candidate: where its concept lies (seg < 0: the tail, at record). */
struct cand {
	uint32_t ordinal;
	int32_t seg;
	uint64_t record;
	float score;     /* similarity, or the number of terms matched */
	float strength;
};

/* The k best candidates by score: c holds them in no order, h is a
 * min-heap on score of their indices in c, so the worst kept is on top
 * and a better candidate takes its place in c. */
struct topk {
	struct cand *c;
	struct util_hent *h;
	size_t n, k;
};

static void topk_push(struct topk *t, const struct cand *c)
{
	uint32_t slot = t->n < t->k ? (uint32_t)t->n : t->h[0].id;
	if (util_minheap_offer(t->h, &t->n, t->k, (struct util_hent){ c->score, slot }))
		t->c[slot] = *c;
}

static int cmp_score(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return (x->ordinal > y->ordinal) - (x->ordinal < y->ordinal);
}

/* Reads a candidate's id and strength into a hit. */
static int fill_hit(const sutra_snapshot *s, const struct cand *c, struct sutra_search_hit *h)
{
	struct found f = { .ordinal = c->ordinal, .record = c->record };
	struct sutra_concept_view cv;
	struct sutra_detail pb;
	int rc;
	if (c->seg >= 0) {
		f.seg = s->v->seg[c->seg];
		if ((rc = layout_segview_find_ordinal(&f.seg->sv, c->ordinal, &f.c, &pb)) < 0)
			return rc;
		if (rc == 0 || (f.c.flags & LAYOUT_SEG_DELETED))
			return SUTRA_ECORRUPT; /* the index named a concept the segment lacks */
		f.record = f.c.record;
	}
	if ((rc = rdr_view_of(s, &f, &cv)))
		return rc;
	memcpy(h->id, cv.id, 16);
	h->ordinal = cv.ordinal;
	h->strength = cv.strength;
	return 0;
}

/* ---- Vector search ------------------------------------------------------------ */

struct vsearch {
	const sutra_snapshot *s;
	const float *q;
	const roaring_bitmap_t *filter;
	struct topk top;
	int32_t seg;      /* the segment being searched */
};

/* The cosine similarity of the unit query and a stored vector of that
 * norm. */
static float cosine(const float *q, const float *e, uint32_t dim, float norm)
{
	return norm > 0.0f ? util_dot(q, e, dim) / norm : 0.0f;
}

/* A concept of the tail (or found through the filter) as a candidate. */
static int consider(struct vsearch *vs, const struct found *f)
{
	struct sutra_concept_view cv;
	int rc = rdr_view_of(vs->s, f, &cv);
	if (rc)
		return rc;
	if (!cv.embedding)
		return 0;
	/* A tail record's norm was computed once, when it was indexed. */
	float norm = f->seg ? sqrtf(util_norm2(cv.embedding, cv.vector_dim))
			    : rdr_tail_norm(vs->s->v, f->ver);
	struct cand c = {
		.ordinal = f->ordinal,
		.seg = -1,
		.record = f->record,
		.score = cosine(vs->q, cv.embedding, cv.vector_dim, norm),
	};
	if (f->seg) {
		for (uint32_t j = 0; j < vs->s->v->nseg; j++)
			if (vs->s->v->seg[j] == f->seg)
				c.seg = (int32_t)j;
	}
	topk_push(&vs->top, &c);
	return 0;
}

static int scan_tail(struct vsearch *vs)
{
	const sutra_snapshot *s = vs->s;
	for (uint32_t i = 0; i < s->nids; i++) {
		struct found f = { .seg = NULL };
		uint64_t off;
		uint32_t ordinal, ver;
		if (rdr_tindex_find_version(&s->v->ix, s->gen, rdr_tail_id(s->v, i), s->epoch,
					    &off, &ordinal, &ver) != RDR_LIVE)
			continue;
		if (vs->filter && !roaring_bitmap_contains(vs->filter, ordinal))
			continue;
		f.ordinal = ordinal;
		f.record = off;
		f.ver = ver;
		int rc = consider(vs, &f);
		if (rc)
			return rc;
	}
	return 0;
}

struct fscan {
	struct vsearch *vs;
	int rc;
};

/* The exact form: every concept of a small filter, wherever it lives. */
static bool scan_filter_one(uint32_t o, void *arg)
{
	struct fscan *fs = arg;
	uint8_t id[16];
	struct found f;
	int rc = rdr_find_id(fs->vs->s, o, id);
	if (rc == 1 && (rc = rdr_lookup(fs->vs->s, id, &f)) == 1)
		rc = f.ordinal == o ? consider(fs->vs, &f) : 0; /* an older life of the id */
	if (rc < 0) {
		fs->rc = rc;
		return false;
	}
	return true;
}

/* Whether a node of segment vs->seg may be a result: in the filter, and
 * not decided by a newer layer. */
static int accept_node(void *arg, uint32_t label)
{
	struct vsearch *vs = arg;
	const sutra_snapshot *s = vs->s;
	struct layout_seg_concept c;
	struct sutra_detail pb;
	if (vs->filter && !roaring_bitmap_contains(vs->filter, label))
		return 0;
	if (!s->nids && (uint32_t)vs->seg + 1 == s->v->nseg)
		return 1; /* the newest layer */
	int rc = layout_segview_find_ordinal(&s->v->seg[vs->seg]->sv, label, &c, &pb);
	if (rc <= 0)
		return rc < 0 ? rc : SUTRA_ECORRUPT;
	rc = rdr_shadowed(s, (uint32_t)vs->seg, c.id);
	return rc < 0 ? rc : !rc;
}

static int search_segment(struct vsearch *vs, uint32_t j, uint32_t k, uint32_t ef,
			  struct layout_hnsw_hit *hits)
{
	const sutra_snapshot *s = vs->s;
	struct layout_segview *sv = &s->v->seg[j]->sv;
	struct sutra_detail pb;
	uint32_t n = 0;
	if (!sv->hnsw.count)
		return 0;
	vs->seg = (int32_t)j;
	int plain = !vs->filter && !s->nids && j + 1 == s->v->nseg;
	int rc = layout_hnsw_search(&sv->hnsw, vs->q, k, ef, plain ? NULL : accept_node, vs, hits,
				    &n, &pb);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		struct cand c = {
			.ordinal = hits[i].label,
			.seg = (int32_t)j,
			.score = 1.0f - hits[i].distance,
		};
		topk_push(&vs->top, &c);
	}
	return 0;
}

int sutra_snapshot_vector_search(const sutra_snapshot *s, const float *query, uint32_t dim,
				 uint32_t k, uint32_t ef, const roaring_bitmap_t *filter,
				 struct sutra_search_hit *out, size_t *n)
{
	if (!s || !query || !out || !n || k == 0 || k > SUTRA_MAX_K)
		return SUTRA_EVALUE;
	if (dim != s->r->sb.vector_dim)
		return SUTRA_EDIM;
	struct vsearch vs = { .s = s, .filter = filter, .top = { .k = k } };
	/* One allocation for the query's scratch: the kept candidates, a
	 * segment's hits, the heap and the normalised query, in decreasing
	 * order of alignment. */
	_Static_assert(sizeof(struct cand) % _Alignof(struct layout_hnsw_hit) == 0 &&
			       sizeof(struct layout_hnsw_hit) % _Alignof(struct util_hent) == 0 &&
			       sizeof(struct util_hent) % _Alignof(float) == 0,
		       "scratch parts keep their alignment");
	unsigned char *scratch = malloc(k * (sizeof(struct cand) + sizeof(struct layout_hnsw_hit) +
					     sizeof(struct util_hent)) +
					(size_t)dim * sizeof(float));
	int rc = 0;
	if (!scratch)
		return -ENOMEM;
	vs.top.c = (struct cand *)scratch;
	struct layout_hnsw_hit *hits = (struct layout_hnsw_hit *)(vs.top.c + k);
	vs.top.h = (struct util_hent *)(hits + k);
	float *q = (float *)(vs.top.h + k);
	if (util_normalize(query, q, dim)) {
		rc = SUTRA_EVALUE; /* NaN, Inf or all zeros */
		goto out;
	}
	vs.q = q;
	if (!ef)
		ef = SUTRA_DEFAULT_EF;
	if (ef < k)
		ef = k;
	uint64_t fcard = filter ? roaring_bitmap_get_cardinality(filter) : 0;
	if (filter && (fcard <= FILTER_EXACT || fcard * FILTER_RATIO <= s->concepts)) {
		struct fscan fs = { .vs = &vs };
		roaring_iterate(filter, scan_filter_one, &fs);
		rc = fs.rc;
	} else {
		rc = scan_tail(&vs);
		for (uint32_t j = s->v->nseg; rc == 0 && j-- > 0;)
			rc = search_segment(&vs, j, k, ef, hits);
	}
	if (rc)
		goto out;
	qsort(vs.top.c, vs.top.n, sizeof *vs.top.c, cmp_score);
	for (size_t i = 0; i < vs.top.n && rc == 0; i++) {
		rc = fill_hit(s, &vs.top.c[i], &out[i]);
		out[i].similarity = vs.top.c[i].score;
		out[i].matched = 0;
	}
	if (rc == 0)
		*n = vs.top.n;
out:
	free(scratch);
	return rc;
}

/* ---- Text search ---------------------------------------------------------------- */

struct terms {
	char tok[MAX_TERMS][UTIL_TOKEN_MAX + 1];
	size_t len[MAX_TERMS];
	uint64_t hash[MAX_TERMS];
	size_t n;
	int too_many;
};

static int add_term(void *arg, const char *tok, size_t len)
{
	struct terms *t = arg;
	uint64_t h = util_token_hash(tok, len);
	for (size_t i = 0; i < t->n; i++)
		if (t->hash[i] == h && t->len[i] == len && !memcmp(t->tok[i], tok, len))
			return 0;
	if (t->n == MAX_TERMS) {
		t->too_many = 1;
		return 1;
	}
	memcpy(t->tok[t->n], tok, len);
	t->tok[t->n][len] = 0;
	t->len[t->n] = len;
	t->hash[t->n++] = h;
	return 0;
}

/* Which query terms a content holds: a bit per term. */
struct holds {
	const struct terms *t;
	uint64_t bits;
};

static int hold_term(void *arg, const char *tok, size_t len)
{
	struct holds *h = arg;
	uint64_t hv = util_token_hash(tok, len);
	for (size_t i = 0; i < h->t->n; i++)
		if (h->t->hash[i] == hv && h->t->len[i] == len && !memcmp(h->t->tok[i], tok, len))
			h->bits |= 1ull << i;
	return 0;
}

/* The matches, growable. */
struct cands {
	struct cand *c;
	size_t n, cap;
};

static int cands_push(struct cands *cs, const struct cand *c)
{
	int rc = UTIL_GROW(cs->c, cs->cap, cs->n + 1, 256);
	if (rc)
		return rc;
	cs->c[cs->n++] = *c;
	return 0;
}

/* The tail's matches: the ids listed under any query term, each checked
 * against its content as of the snapshot. */
static int text_tail(const sutra_snapshot *s, const struct terms *t, enum sutra_text_mode mode,
		     struct cands *out)
{
	const struct rdr_view *v = s->v;
	struct util_idmap seen;
	int rc = 0;
	if (!s->nids)
		return 0;
	util_idmap_init(&seen);
	for (size_t i = 0; i < t->n && rc == 0; i++) {
		uint8_t hk[16];
		uint64_t head;
		uint32_t unused;
		rdr_tkey(hk, t->hash[i]);
		uint32_t node = rdr_tindex_get(&v->oix, s->ogen, hk, UINT64_MAX, &head, &unused)
					? (uint32_t)head
					: 0;
		while (node && rc == 0) {
			const struct nodechunk *nc = __atomic_load_n(
				&v->nodes[(node - 1) >> RDR_CHUNK_BITS], __ATOMIC_ACQUIRE);
			const struct enode *e = &nc->n[(node - 1) & (RDR_CHUNK - 1)];
			node = e->next;
			if (util_idmap_get(&seen, e->key, NULL))
				continue;
			if ((rc = util_idmap_put(&seen, e->key, 1)))
				break;
			uint64_t off;
			uint32_t ordinal;
			if (rdr_tindex_find(&v->ix, s->gen, e->key, s->epoch, &off, &ordinal) !=
			    RDR_LIVE)
				continue;
			struct found f = { .ordinal = ordinal, .record = off };
			struct sutra_concept_view cv;
			if ((rc = rdr_view_of(s, &f, &cv)))
				break;
			struct holds h = { .t = t };
			util_tokenize(cv.content, cv.content_len, hold_term, &h);
			unsigned m = (unsigned)__builtin_popcountll(h.bits);
			if (m == 0 || (mode == SUTRA_TEXT_ALL && m != t->n))
				continue;
			struct cand c = { .ordinal = ordinal, .seg = -1, .record = off,
					  .score = (float)m, .strength = cv.strength };
			rc = cands_push(out, &c);
		}
	}
	util_idmap_finish(&seen);
	return rc;
}

struct seg_walk {
	const sutra_snapshot *s;
	uint32_t j;
	roaring_bitmap_t *const *bm;
	size_t nbm;
	struct cands *out;
	int rc;
};

static bool text_seg_one(uint32_t o, void *arg)
{
	struct seg_walk *w = arg;
	const sutra_snapshot *s = w->s;
	unsigned m = 0;
	for (size_t i = 0; i < w->nbm; i++)
		m += w->bm[i] && roaring_bitmap_contains(w->bm[i], o);
	if (s->nids || w->j + 1 < s->v->nseg) {
		struct layout_seg_concept c;
		struct sutra_detail pb;
		int rc = layout_segview_find_ordinal(&s->v->seg[w->j]->sv, o, &c, &pb);
		if (rc == 1)
			rc = rdr_shadowed(s, w->j, c.id);
		else if (rc == 0)
			rc = SUTRA_ECORRUPT; /* postings named a concept the segment lacks */
		if (rc) {
			if (rc < 0)
				w->rc = rc;
			return rc > 0;
		}
	}
	struct cand c = { .ordinal = o, .seg = (int32_t)w->j, .score = (float)m,
			  .strength = NAN };
	if ((w->rc = cands_push(w->out, &c)))
		return false;
	return true;
}

/* Segment j's matches that no newer layer decides. */
static int text_segment(const sutra_snapshot *s, uint32_t j, const struct terms *t,
			enum sutra_text_mode mode, struct cands *out)
{
	struct layout_segview *sv = &s->v->seg[j]->sv;
	roaring_bitmap_t *bm[MAX_TERMS] = { 0 };
	roaring_bitmap_t *acc = NULL;
	struct sutra_detail pb;
	int rc = 0;
	for (size_t i = 0; i < t->n && rc == 0; i++) {
		int r = layout_textidx_lookup(&sv->text, t->tok[i], t->len[i], &bm[i], &pb);
		if (r < 0)
			rc = r;
		else if (r == 0 && mode == SUTRA_TEXT_ALL)
			goto done; /* a term the segment lacks: no match here */
	}
	if (rc)
		goto done;
	for (size_t i = 0; i < t->n; i++) {
		if (!bm[i])
			continue;
		if (!acc) {
			if (!(acc = roaring_bitmap_copy(bm[i]))) {
				rc = -ENOMEM;
				goto done;
			}
		} else if (mode == SUTRA_TEXT_ALL) {
			roaring_bitmap_and_inplace(acc, bm[i]);
		} else {
			roaring_bitmap_or_inplace(acc, bm[i]);
		}
	}
	if (acc) {
		struct seg_walk w = { .s = s, .j = j, .bm = bm, .nbm = t->n, .out = out };
		roaring_iterate(acc, text_seg_one, &w);
		rc = w.rc;
	}
done:
	for (size_t i = 0; i < t->n; i++)
		if (bm[i])
			roaring_bitmap_free(bm[i]);
	if (acc)
		roaring_bitmap_free(acc);
	return rc;
}

static int text_matches(const sutra_snapshot *s, const char *query, size_t len,
			enum sutra_text_mode mode, struct cands *out)
{
	if (!s || (!query && len) || (mode != SUTRA_TEXT_ALL && mode != SUTRA_TEXT_ANY))
		return SUTRA_EVALUE;
	struct terms *t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	int rc = 0;
	if (len)
		util_tokenize(query, len, add_term, t);
	if (t->too_many)
		rc = SUTRA_EVALUE;
	if (rc == 0 && t->n)
		rc = text_tail(s, t, mode, out);
	for (uint32_t j = s->v->nseg; rc == 0 && t->n && j-- > 0;)
		rc = text_segment(s, j, t, mode, out);
	free(t);
	return rc;
}

static int cmp_text(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	if (x->strength != y->strength)
		return x->strength > y->strength ? -1 : 1;
	return (x->ordinal > y->ordinal) - (x->ordinal < y->ordinal);
}

static int cmp_matched(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	return (x->score < y->score) - (x->score > y->score);
}

int sutra_snapshot_text_search(const sutra_snapshot *s, const char *query, size_t len,
			       enum sutra_text_mode mode, size_t limit,
			       struct sutra_search_hit *out, size_t *n, size_t *total)
{
	if (!out || !n || limit == 0 || limit > SUTRA_MAX_K)
		return SUTRA_EVALUE;
	struct cands cs = { 0 };
	int rc = text_matches(s, query, len, mode, &cs);
	if (rc)
		goto out;
	/* Rank by terms matched; strength orders within a group, so read it
	 * only for the groups that reach the limit. */
	if (cs.n > 1) /* cs.c is NULL when nothing matched */
		qsort(cs.c, cs.n, sizeof *cs.c, cmp_matched);
	size_t need = cs.n < limit ? cs.n : limit;
	while (need < cs.n && cs.c[need].score == cs.c[need - 1].score)
		need++;
	for (size_t i = 0; i < need && rc == 0; i++) {
		struct sutra_search_hit h;
		if (cs.c[i].seg >= 0 && (rc = fill_hit(s, &cs.c[i], &h)) == 0)
			cs.c[i].strength = h.strength;
	}
	if (rc)
		goto out;
	if (need > 1)
		qsort(cs.c, need, sizeof *cs.c, cmp_text);
	size_t w = need < limit ? need : limit;
	for (size_t i = 0; i < w && rc == 0; i++) {
		rc = fill_hit(s, &cs.c[i], &out[i]);
		out[i].similarity = 0.0f;
		out[i].matched = (uint32_t)cs.c[i].score;
	}
	if (rc == 0) {
		*n = w;
		if (total)
			*total = cs.n;
	}
out:
	free(cs.c);
	return rc;
}

int sutra_snapshot_text_filter(const sutra_snapshot *s, const char *query, size_t len,
			       enum sutra_text_mode mode, roaring_bitmap_t **out)
{
	if (!out)
		return SUTRA_EVALUE;
	struct cands cs = { 0 };
	int rc = text_matches(s, query, len, mode, &cs);
	roaring_bitmap_t *bm = NULL;
	if (rc == 0 && !(bm = roaring_bitmap_create()))
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < cs.n; i++)
		roaring_bitmap_add(bm, cs.c[i].ordinal);
	free(cs.c);
	if (rc) {
		if (bm)
			roaring_bitmap_free(bm);
		return rc;
	}
	roaring_bitmap_run_optimize(bm);
	*out = bm;
	return 0;
}
