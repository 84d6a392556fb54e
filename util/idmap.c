/* SPDX-License-Identifier: MIT */
/* Open-addressing hash map from 16-byte keys to u64 values. */
#include "util/idmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"

enum { EMPTY = 0, FULL = 1, DELETED = 2 };

static size_t hash_key(const unsigned char *k)
{
	uint64_t a, b;
	memcpy(&a, k, 8);
	memcpy(&b, k + 8, 8);
	return (size_t)util_mix128(a, b);
}

void util_idmap_init(struct util_idmap *m)
{
	memset(m, 0, sizeof *m);
}

void util_idmap_finish(struct util_idmap *m)
{
	if (!m)
		return;
	free(m->slots);
	memset(m, 0, sizeof *m);
}

static struct util_idmap_slot *find(const struct util_idmap *m, const void *key)
{
	if (m->cap == 0)
		return NULL;
	size_t mask = m->cap - 1;
	for (size_t i = hash_key(key) & mask;; i = (i + 1) & mask) {
		struct util_idmap_slot *s = &m->slots[i];
		if (s->state == EMPTY)
			return NULL;
		if (s->state == FULL && memcmp(s->key, key, 16) == 0)
			return s;
	}
}

static int rehash(struct util_idmap *m, size_t cap)
{
	struct util_idmap_slot *slots = calloc(cap, sizeof *slots);
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		struct util_idmap_slot *o = &m->slots[i];
		if (o->state != FULL)
			continue;
		size_t j = hash_key(o->key) & (cap - 1);
		while (slots[j].state != EMPTY)
			j = (j + 1) & (cap - 1);
		slots[j] = *o;
	}
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	m->dead = 0;
	return 0;
}

int util_idmap_get(const struct util_idmap *m, const void *key, uint64_t *value)
{
	const struct util_idmap_slot *s = find(m, key);
	if (!s)
		return 0;
	if (value)
		*value = s->value;
	return 1;
}

int util_idmap_put(struct util_idmap *m, const void *key, uint64_t value)
{
	struct util_idmap_slot *s = find(m, key);
	if (s) {
		s->value = value;
		return 0;
	}
	if ((m->len + m->dead + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap : 16;
		while ((m->len + 1) * 2 > cap)
			cap *= 2;
		if (cap > SIZE_MAX / sizeof(struct util_idmap_slot))
			return -ENOMEM;
		int rc = rehash(m, cap);
		if (rc)
			return rc;
	}
	size_t mask = m->cap - 1;
	size_t i = hash_key(key) & mask;
	while (m->slots[i].state == FULL)
		i = (i + 1) & mask;
	s = &m->slots[i];
	if (s->state == DELETED)
		m->dead--;
	memcpy(s->key, key, 16);
	s->value = value;
	s->state = FULL;
	m->len++;
	return 0;
}

int util_idmap_del(struct util_idmap *m, const void *key)
{
	struct util_idmap_slot *s = find(m, key);
	if (!s)
		return 0;
	s->state = DELETED;
	m->len--;
	m->dead++;
	return 1;
}
