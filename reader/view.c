/* SPDX-License-Identifier: MIT */
/* A reader's view of the store: the segments a meta lists, the private index of the tail after them, and lookups through those layers. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "layout/layout.h"
#include "layout/segindex.h"
#include "reader/internal.h"
#include "reader/tindex.h"
#include "util/endian.h"
#include "util/grow.h"
#include "util/idmap.h"
#include "util/tokenize.h"
#include "util/vecdist.h"

void rdr_okey(uint8_t key[16], uint32_t ordinal, uint8_t tag)
{
	memset(key, 0, 16);
	util_put_le32(key, ordinal);
	key[4] = tag;
}

/* ---- Segments and views --------------------------------------------------- */

static void seg_release(struct rdr_seg *g)
{
	if (g && __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		layout_segview_close(&g->sv);
		free(g);
	}
}

/*
 * A chunk directory: RDR_MAX_CHUNKS pointers (512 KiB), written by the
 * refresh that adds a chunk and read without a lock, so it never moves.
 * It is mapped rather than calloc'ed: a tail touches one page of it, and
 * once glibc's malloc serves blocks this size from its heap, calloc would
 * zero all of it at every open (three directories, 1.5 MiB per view).
 */
static void *dir_create(void)
{
	void *p = mmap(NULL, RDR_MAX_CHUNKS * sizeof(void *), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void dir_destroy(void *dir)
{
	if (dir)
		munmap(dir, RDR_MAX_CHUNKS * sizeof(void *));
}

void rdr_view_release(struct rdr_view *v)
{
	if (!v || __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (uint32_t i = 0; i < v->nseg; i++)
		seg_release(v->seg[i]);
	rdr_tindex_finish(&v->ix);
	rdr_tindex_finish(&v->eix);
	rdr_tindex_finish(&v->oix);
	util_idmap_finish(&v->idseen);
	util_idmap_finish(&v->eseen);
	for (uint32_t c = 0; c < RDR_MAX_CHUNKS && v->ids && v->ids[c]; c++)
		free(v->ids[c]);
	for (uint32_t c = 0; c < RDR_MAX_CHUNKS && v->nodes && v->nodes[c]; c++)
		free(v->nodes[c]);
	for (uint32_t c = 0; c < RDR_MAX_CHUNKS && v->norms && v->norms[c]; c++)
		free(v->norms[c]);
	dir_destroy(v->ids);
	dir_destroy(v->nodes);
	dir_destroy(v->norms);
	free(v);
}

int rdr_view_create(const sutra_reader *r, const struct layout_meta *m,
		    const struct rdr_view *old, struct rdr_view **out)
{
	struct rdr_view *v = calloc(1, sizeof *v);
	struct sutra_detail pb;
	int rc = 0;
	if (!v)
		return -ENOMEM;
	v->refs = 1;
	util_idmap_init(&v->idseen);
	util_idmap_init(&v->eseen);
	if ((rc = rdr_tindex_init(&v->ix)) || (rc = rdr_tindex_init(&v->eix)) ||
	    (rc = rdr_tindex_init(&v->oix)) || !(v->ids = dir_create()) ||
	    !(v->nodes = dir_create()) || !(v->norms = dir_create())) {
		rdr_view_release(v);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < m->segment_count; i++) {
		struct rdr_seg *g = NULL;
		for (uint32_t j = 0; old && j < old->nseg && !g; j++)
			if (old->seg[j]->sv.offset == m->segments[i].offset &&
			    old->seg[j]->sv.length == m->segments[i].length)
				g = old->seg[j];
		if (g) {
			__atomic_add_fetch(&g->refs, 1, __ATOMIC_ACQ_REL);
		} else {
			if (!(g = calloc(1, sizeof *g))) {
				rc = -ENOMEM;
				break;
			}
			g->refs = 1;
			if ((rc = layout_segview_open(&g->sv, r->map, m->published_end,
						      &m->segments[i], r->sb.vector_dim, &pb))) {
				free(g);
				break;
			}
		}
		v->seg[v->nseg++] = g;
		/* Oldest first, contiguous epoch ranges (FORMAT.md 10.3). */
		uint64_t want = i ? v->seg[i - 1]->sv.hdr.last_epoch + 1 : 1;
		if (g->sv.hdr.first_epoch != want || g->sv.hdr.last_epoch > m->epoch) {
			rc = SUTRA_ECORRUPT;
			break;
		}
	}
	if (rc) {
		rdr_view_release(v);
		return rc;
	}
	v->tail_start = m->tail_start;
	v->indexed_end = m->tail_start;
	if (v->nseg) {
		v->epoch = v->seg[v->nseg - 1]->sv.hdr.last_epoch;
		v->next_ordinal = (uint32_t)v->seg[v->nseg - 1]->sv.next_ordinal;
	}
	*out = v;
	return 0;
}

int rdr_view_same_segments(const struct rdr_view *v, const struct layout_meta *m)
{
	if (v->nseg != m->segment_count || v->tail_start != m->tail_start)
		return 0;
	for (uint32_t i = 0; i < v->nseg; i++)
		if (v->seg[i]->sv.offset != m->segments[i].offset ||
		    v->seg[i]->sv.length != m->segments[i].length)
			return 0;
	return 1;
}

/* ---- The tail index ----------------------------------------------------------- */

static int chunk_at(void **dir, uint32_t i, size_t size)
{
	uint32_t c = i >> RDR_CHUNK_BITS;
	if (c >= RDR_MAX_CHUNKS)
		return -ENOMEM;
	if (!dir[c]) {
		void *k = calloc(1, size);
		if (!k)
			return -ENOMEM;
		__atomic_store_n(&dir[c], k, __ATOMIC_RELEASE);
	}
	return 0;
}

static int add_id(struct rdr_view *v, const uint8_t id[16])
{
	if (util_idmap_get(&v->idseen, id, NULL))
		return 0;
	uint32_t i = v->nids;
	int rc = chunk_at((void **)v->ids, i, sizeof(struct idchunk));
	if (rc || (rc = util_idmap_put(&v->idseen, id, 1)))
		return rc;
	memcpy(v->ids[i >> RDR_CHUNK_BITS]->id[i & (RDR_CHUNK - 1)], id, 16);
	__atomic_store_n(&v->nids, i + 1, __ATOMIC_RELEASE);
	return 0;
}

uint32_t rdr_tail_head(const struct rdr_view *v, const struct rdr_gen *og, uint32_t ordinal)
{
	uint8_t key[16];
	uint64_t head;
	uint32_t unused;
	rdr_okey(key, ordinal, TAG_HEAD);
	return rdr_tindex_get(&v->oix, og, key, UINT64_MAX, &head, &unused) ? (uint32_t)head : 0;
}

/* Appends key to the list whose head is the ordinal index entry hk. */
static int add_node_at(struct rdr_view *v, const uint8_t hk[16], const uint8_t key[16],
		       uint64_t epoch)
{
	uint32_t i = v->nnodes;
	uint64_t head;
	uint32_t unused;
	if (i == UINT32_MAX - 1)
		return -ENOMEM;
	int rc = chunk_at((void **)v->nodes, i, sizeof(struct nodechunk));
	if (rc)
		return rc;
	struct rdr_gen *g = rdr_tindex_acquire(&v->oix);
	int had = rdr_tindex_get(&v->oix, g, hk, UINT64_MAX, &head, &unused);
	rdr_tindex_release(g);
	struct enode *n = &v->nodes[i >> RDR_CHUNK_BITS]->n[i & (RDR_CHUNK - 1)];
	memcpy(n->key, key, 16);
	n->next = had ? (uint32_t)head : 0;
	v->nnodes = i + 1;
	/* Published by the version's release-store of its slot's head. */
	return rdr_tindex_put(&v->oix, hk, epoch, i + 1, 0);
}

static int add_node(struct rdr_view *v, uint32_t ordinal, const uint8_t key[16], uint64_t epoch)
{
	uint8_t hk[16];
	rdr_okey(hk, ordinal, TAG_HEAD);
	return add_node_at(v, hk, key, epoch);
}

void rdr_tkey(uint8_t key[16], uint64_t hash)
{
	memset(key, 0, 16);
	util_put_le64(key, hash);
	key[15] = TKEY_MARK;
}

/* Puts the version of id that a concept record (c, at offset) or, with c
 * NULL, its delete makes at epoch, and first the norm of the record's
 * embedding at that version's index: the put publishes both. */
static int put_concept(struct rdr_view *v, const uint8_t id[16], uint64_t epoch,
		       const struct layout_concept *c, uint64_t offset, uint32_t ordinal)
{
	uint32_t ver = rdr_tindex_next(&v->ix);
	int rc = chunk_at((void **)v->norms, ver, sizeof(struct normchunk));
	if (rc)
		return rc;
	float norm = 0.0f;
	if (c && c->embedding)
		norm = sqrtf(util_norm2(c->embedding, c->vector_dim));
	v->norms[ver >> RDR_CHUNK_BITS]->n[ver & (RDR_CHUNK - 1)] = norm;
	return rdr_tindex_put(&v->ix, id, epoch, offset, ordinal);
}

/* Token hashes of one content (growable). */
struct toks {
	uint64_t *h;
	size_t n, cap;
	int nomem;
};

static int collect_token(void *arg, const char *tok, size_t len)
{
	struct toks *t = arg;
	if (UTIL_GROW(t->h, t->cap, t->n + 1, 64)) {
		t->nomem = 1;
		return 1;
	}
	t->h[t->n++] = util_token_hash(tok, len);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Lists the id under each distinct token of content (the tail's text
 * index). A query checks each listed id's content as of its snapshot, so
 * a list may hold an id whose newer version no longer matches. */
static int index_text(struct rdr_view *v, const uint8_t id[16], const char *content, size_t len,
		      uint64_t epoch)
{
	struct toks t = { 0 };
	int rc = 0;
	util_tokenize(content, len, collect_token, &t);
	if (t.nomem)
		rc = -ENOMEM;
	if (t.n > 1)
		qsort(t.h, t.n, sizeof t.h[0], cmp_u64);
	for (size_t i = 0; i < t.n && !rc; i++) {
		uint8_t hk[16];
		if (i && t.h[i] == t.h[i - 1])
			continue;
		rdr_tkey(hk, t.h[i]);
		rc = add_node_at(v, hk, id, epoch);
	}
	free(t.h);
	return rc;
}

/* Indexes one association record (or its delete) of epoch. The first
 * mention of a key, whatever it says, lists it at both ends: a delete in
 * the tail must shadow the segments as much as an upsert. */
static int index_edge(struct rdr_view *v, const struct layout_record *rec, uint64_t epoch)
{
	const struct layout_association *a = &rec->u.association;
	uint8_t key[16];
	int rc;
	layout_edge_key(key, a->src_ordinal, a->dst_ordinal, a->type);
	if (!util_idmap_get(&v->eseen, key, NULL)) {
		if ((rc = util_idmap_put(&v->eseen, key, 1)) ||
		    (rc = add_node(v, a->src_ordinal, key, epoch)) ||
		    (a->dst_ordinal != a->src_ordinal &&
		     (rc = add_node(v, a->dst_ordinal, key, epoch))))
			return rc;
	}
	return rdr_tindex_put(&v->eix, key, epoch,
			      rec->type == LAYOUT_REC_ASSOCIATION ? rec->offset : 0, a->type);
}

/* Indexes the commit blocks in [v->indexed_end, lv->meta.published_end). */
int rdr_view_index(const sutra_reader *r, struct rdr_view *v, const struct layout_view *lv)
{
	struct sutra_detail pb;
	uint64_t pos = v->indexed_end, end = lv->meta.published_end;
	uint64_t epoch = v->epoch, bytes = 0;
	uint32_t next = v->next_ordinal;

	while (pos < end) {
		struct layout_block blk;
		struct layout_record_iter it;
		struct layout_record rec;
		int rc = layout_block_decode(r->map, end, pos, &blk, &pb);
		if (rc == 0)
			rc = layout_block_check_payload(r->map, &blk, &pb);
		if (rc)
			return rc;
		pos = blk.offset + blk.length;
		if (blk.type != LAYOUT_BLOCK_COMMIT)
			continue;
		if (blk.epoch != epoch + 1)
			return SUTRA_ECORRUPT;
		epoch = blk.epoch;
		bytes += blk.length;
		layout_records_init(&it, r->map, &blk, r->sb.vector_dim);
		while ((rc = layout_records_next(&it, &rec, &pb)) == 1) {
			const struct layout_concept *c = &rec.u.concept;
			uint8_t key[16];
			if (rec.type == LAYOUT_REC_CONCEPT) {
				if (c->ordinal == next) {
					rdr_okey(key, c->ordinal, TAG_BORN);
					if ((rc = rdr_tindex_put(&v->oix, key, epoch, rec.offset,
								 c->ordinal)))
						return rc;
					next++;
				} else if (c->ordinal > next) {
					return SUTRA_ECORRUPT;
				}
				if ((rc = add_id(v, c->id)) ||
				    (rc = index_text(v, c->id, c->content, c->content_len, epoch)) ||
				    (rc = put_concept(v, c->id, epoch, c, rec.offset, c->ordinal)))
					return rc;
			} else if (rec.type == LAYOUT_REC_CONCEPT_DELETE) {
				if ((rc = add_id(v, c->id)) ||
				    (rc = put_concept(v, c->id, epoch, NULL, 0, c->ordinal)))
					return rc;
			} else if (rec.type == LAYOUT_REC_ASSOCIATION ||
				   rec.type == LAYOUT_REC_ASSOCIATION_DELETE) {
				if ((rc = index_edge(v, &rec, epoch)))
					return rc;
			}
		}
		if (rc < 0)
			return rc;
	}
	if (epoch != lv->meta.epoch)
		return SUTRA_ECORRUPT;
	v->epoch = epoch;
	v->next_ordinal = next;
	v->indexed_end = end;
	v->tail_bytes += bytes;
	return 0;
}

/* ---- Lookups: the tail, then segments newest first ----------------------------- */

int rdr_lookup(const sutra_snapshot *s, const uint8_t id[16], struct found *f)
{
	const struct rdr_view *v = s->v;
	struct sutra_detail pb;
	uint64_t off;
	uint32_t ordinal, ver;
	/* An empty tail (an idle store) has nothing to ask. */
	switch (s->nids ? rdr_tindex_find_version(&v->ix, s->gen, id, s->epoch, &off, &ordinal,
						  &ver)
			: RDR_ABSENT) {
	case RDR_LIVE:
		f->ordinal = ordinal;
		f->record = off;
		f->seg = NULL;
		f->ver = ver;
		return 1;
	case RDR_DELETED:
		return 0;
	default:
		break;
	}
	for (uint32_t j = v->nseg; j-- > 0;) {
		int rc = layout_segview_find(&v->seg[j]->sv, id, &f->c, NULL, &pb);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			if (f->c.flags & LAYOUT_SEG_DELETED)
				return 0;
			f->ordinal = f->c.ordinal;
			f->record = f->c.record;
			f->seg = v->seg[j];
			return 1;
		}
	}
	return 0;
}

int rdr_find_id(const sutra_snapshot *s, uint32_t o, uint8_t id[16])
{
	const struct rdr_view *v = s->v;
	uint8_t key[16];
	uint64_t off;
	uint32_t unused;
	rdr_okey(key, o, TAG_BORN);
	if (s->nids && rdr_tindex_get(&v->oix, s->ogen, key, s->epoch, &off, &unused)) {
		/* A concept record checked when it was indexed: its id is at 8. */
		memcpy(id, s->r->map + off + 8, 16);
		return 1;
	}
	for (uint32_t j = v->nseg; j-- > 0;) {
		struct layout_seg_concept c;
		struct sutra_detail pb;
		int rc = layout_segview_find_ordinal(&v->seg[j]->sv, o, &c, &pb);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			memcpy(id, c.id, 16);
			return 1;
		}
	}
	return 0;
}

/* The id of a concept the snapshot reached by ordinal (through an edge). */
int rdr_shadowed(const sutra_snapshot *s, uint32_t j, const uint8_t id[16])
{
	const struct rdr_view *v = s->v;
	uint64_t off;
	uint32_t ordinal;
	if (rdr_tindex_find(&v->ix, s->gen, id, s->epoch, &off, &ordinal) != RDR_ABSENT)
		return 1;
	for (uint32_t k = j + 1; k < v->nseg; k++) {
		struct layout_seg_concept c;
		struct sutra_detail pb;
		int rc = layout_segview_find(&v->seg[k]->sv, id, &c, NULL, &pb);
		if (rc)
			return rc;
	}
	return 0;
}

