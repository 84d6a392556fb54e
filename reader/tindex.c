/* SPDX-License-Identifier: MIT */
/* The reader's private tail index: versioned id lookups, one writer, lock-free readers. */
#include "reader/tindex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/endian.h"
#include "util/hash.h"

struct slot {
	uint8_t id[16];
	uint32_t head; /* index + 1 of the newest version; 0: empty. Atomic. */
	uint32_t pad;
};

struct rdr_gen {
	uint64_t cap;  /* power of two */
	uint64_t used; /* writer only */
	struct slot *slots;
	int refs;      /* atomic: holders, the index itself included while current */
};

static uint64_t hash_id(const uint8_t id[16])
{
	/* Ids are usually random, but content-derived or crafted ones need
	 * not be: mix both halves. In memory only, so free to change. */
	return util_mix128(util_get_le64(id), util_get_le64(id + 8));
}

static struct rdr_gen *gen_create(uint64_t cap)
{
	struct rdr_gen *g = calloc(1, sizeof *g);
	if (!g)
		return NULL;
	g->slots = calloc(cap, sizeof *g->slots);
	if (!g->slots) {
		free(g);
		return NULL;
	}
	g->cap = cap;
	g->refs = 1;
	return g;
}

static void gen_free(struct rdr_gen *g)
{
	free(g->slots);
	free(g);
}

int rdr_tindex_init(struct rdr_tindex *t)
{
	memset(t, 0, sizeof *t);
	t->chunks = calloc(RDR_MAX_CHUNKS, sizeof *t->chunks);
	t->cur = gen_create(1024);
	if (!t->chunks || !t->cur) {
		free(t->chunks);
		if (t->cur)
			gen_free(t->cur);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->mu, NULL);
	return 0;
}

void rdr_tindex_finish(struct rdr_tindex *t)
{
	if (!t->chunks)
		return;
	for (uint32_t c = 0; c < RDR_MAX_CHUNKS && t->chunks[c]; c++)
		free(t->chunks[c]);
	free(t->chunks);
	rdr_tindex_release(t->cur);
	pthread_mutex_destroy(&t->mu);
	memset(t, 0, sizeof *t);
}

static const struct rdr_version *version_at(const struct rdr_tindex *t, uint32_t i)
{
	struct rdr_version *chunk = __atomic_load_n(&t->chunks[i >> RDR_CHUNK_BITS], __ATOMIC_ACQUIRE);
	return &chunk[i & (RDR_CHUNK - 1)];
}

/* The slot of id in g: its own, or the empty one where it would go. */
static struct slot *find(struct rdr_gen *g, const uint8_t id[16])
{
	uint64_t mask = g->cap - 1;
	for (uint64_t i = hash_id(id) & mask;; i = (i + 1) & mask) {
		struct slot *s = &g->slots[i];
		if (!s->head || memcmp(s->id, id, 16) == 0)
			return s;
	}
}

/* Doubles the table into a new generation and makes it current. */
static int grow(struct rdr_tindex *t)
{
	struct rdr_gen *old = t->cur;
	struct rdr_gen *g = gen_create(old->cap * 2);
	if (!g)
		return -ENOMEM;
	for (uint64_t i = 0; i < old->cap; i++) {
		const struct slot *s = &old->slots[i];
		if (!s->head)
			continue;
		*find(g, s->id) = *s;
		g->used++;
	}
	pthread_mutex_lock(&t->mu);
	__atomic_store_n(&t->cur, g, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&t->mu);
	rdr_tindex_release(old); /* the index's own hold */
	return 0;
}

int rdr_tindex_put(struct rdr_tindex *t, const uint8_t id[16], uint64_t epoch, uint64_t offset,
		   uint32_t ordinal)
{
	uint32_t v = t->nversions;
	if (v == UINT32_MAX - 1 || (v >> RDR_CHUNK_BITS) >= RDR_MAX_CHUNKS)
		return -ENOMEM;
	struct slot *s = find(t->cur, id);
	if (!s->head && (t->cur->used + 1) * 2 > t->cur->cap) {
		int rc = grow(t);
		if (rc)
			return rc;
		s = find(t->cur, id);
	}
	uint32_t c = v >> RDR_CHUNK_BITS;
	if (!t->chunks[c]) {
		struct rdr_version *chunk = calloc(RDR_CHUNK, sizeof *chunk);
		if (!chunk)
			return -ENOMEM;
		__atomic_store_n(&t->chunks[c], chunk, __ATOMIC_RELEASE);
	}
	struct rdr_version *ver = &t->chunks[c][v & (RDR_CHUNK - 1)];
	ver->epoch = epoch;
	ver->offset = offset;
	ver->ordinal = ordinal;
	ver->prev = s->head;
	t->nversions = v + 1;
	if (!s->head) {
		memcpy(s->id, id, 16);
		t->cur->used++;
		t->ids++;
	}
	/* Publishes the key (for a new slot) and the version together. */
	__atomic_store_n(&s->head, v + 1, __ATOMIC_RELEASE);
	return 0;
}

struct rdr_gen *rdr_tindex_acquire(struct rdr_tindex *t)
{
	pthread_mutex_lock(&t->mu);
	struct rdr_gen *g = __atomic_load_n(&t->cur, __ATOMIC_ACQUIRE);
	__atomic_fetch_add(&g->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&t->mu);
	return g;
}

void rdr_tindex_release(struct rdr_gen *g)
{
	if (g && __atomic_fetch_sub(&g->refs, 1, __ATOMIC_ACQ_REL) == 1)
		gen_free(g);
}

int rdr_tindex_get(const struct rdr_tindex *t, const struct rdr_gen *g, const uint8_t id[16],
		   uint64_t epoch, uint64_t *offset, uint32_t *ordinal)
{
	return rdr_tindex_find(t, g, id, epoch, offset, ordinal) == RDR_LIVE;
}

int rdr_tindex_find(const struct rdr_tindex *t, const struct rdr_gen *g, const uint8_t id[16],
		    uint64_t epoch, uint64_t *offset, uint32_t *ordinal)
{
	uint32_t ver;
	return rdr_tindex_find_version(t, g, id, epoch, offset, ordinal, &ver);
}

int rdr_tindex_find_version(const struct rdr_tindex *t, const struct rdr_gen *g,
			    const uint8_t id[16], uint64_t epoch, uint64_t *offset,
			    uint32_t *ordinal, uint32_t *ver)
{
	uint64_t mask = g->cap - 1;
	for (uint64_t i = hash_id(id) & mask;; i = (i + 1) & mask) {
		const struct slot *s = &g->slots[i];
		uint32_t head = __atomic_load_n(&s->head, __ATOMIC_ACQUIRE);
		if (!head)
			return RDR_ABSENT;
		if (memcmp(s->id, id, 16) != 0)
			continue;
		for (uint32_t k = head; k;) {
			const struct rdr_version *v = version_at(t, k - 1);
			if (v->epoch <= epoch) {
				*offset = v->offset;
				*ordinal = v->ordinal;
				*ver = k - 1;
				return v->offset ? RDR_LIVE : RDR_DELETED;
			}
			k = v->prev;
		}
		return RDR_ABSENT;
	}
}
