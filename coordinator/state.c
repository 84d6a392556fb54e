/* SPDX-License-Identifier: MIT */
/* The writer's logical state: id -> ordinal, per ordinal its id, creation time and adjacency, the association set. */
#include <stdlib.h>
#include <string.h>

#include "coordinator/store_internal.h"
#include "util/grow.h"

void coord_state_init(struct coord_state *st)
{
	memset(st, 0, sizeof *st);
	util_idmap_init(&st->ids);
	util_idmap_init(&st->edges);
}

void coord_state_finish(struct coord_state *st)
{
	for (size_t i = 0; i < st->cs_cap; i++)
		free(st->cs[i].edges);
	free(st->cs);
	st->cs = NULL;
	st->cs_cap = 0;
	util_idmap_finish(&st->ids);
	util_idmap_finish(&st->edges);
}

int coord_state_reserve(struct coord_state *st, uint32_t ordinal)
{
	size_t old = st->cs_cap;
	int rc = UTIL_GROW(st->cs, st->cs_cap, (size_t)ordinal + 1, 1024);
	if (rc)
		return rc;
	/* Ordinals beyond next_ordinal are never live: new entries start zero. */
	memset(st->cs + old, 0, (st->cs_cap - old) * sizeof *st->cs);
	return 0;
}

static int adj_add(struct coord_concept *c, uint32_t other, uint8_t type, uint8_t out)
{
	int rc = UTIL_GROW(c->edges, c->capedges, (size_t)c->nedges + 1, 4);
	if (rc)
		return rc;
	c->edges[c->nedges++] = (struct coord_edge){ .other = other, .type = type, .out = out };
	return 0;
}

static void adj_del(struct coord_concept *c, uint32_t other, uint8_t type, uint8_t out)
{
	for (uint32_t i = 0; i < c->nedges; i++) {
		struct coord_edge *e = &c->edges[i];
		if (e->other == other && e->type == type && e->out == out) {
			*e = c->edges[--c->nedges];
			return;
		}
	}
}

int coord_state_edge_insert(struct coord_state *st, uint32_t src, uint32_t dst, uint8_t type,
			    uint64_t created_us)
{
	unsigned char key[16];
	layout_edge_key(key, src, dst, type);
	int rc = util_idmap_put(&st->edges, key, created_us);
	if (rc)
		return rc;
	if ((rc = adj_add(&st->cs[src], dst, type, 1)) ||
	    (rc = adj_add(&st->cs[dst], src, type, 0))) {
		adj_del(&st->cs[src], dst, type, 1);
		util_idmap_del(&st->edges, key);
		return rc;
	}
	st->association_count++;
	return 0;
}

void coord_state_edge_remove(struct coord_state *st, uint32_t src, uint32_t dst, uint8_t type)
{
	unsigned char key[16];
	layout_edge_key(key, src, dst, type);
	util_idmap_del(&st->edges, key);
	adj_del(&st->cs[src], dst, type, 1);
	adj_del(&st->cs[dst], src, type, 0);
	st->association_count--;
}

int coord_state_edge_find(const struct coord_state *st, uint32_t src, uint32_t dst, uint8_t type,
			  uint64_t *created_us)
{
	unsigned char key[16];
	layout_edge_key(key, src, dst, type);
	return util_idmap_get(&st->edges, key, created_us);
}

int coord_state_lookup(const struct coord_state *st, const uint8_t id[16], uint32_t *ordinal)
{
	uint64_t v;
	if (!util_idmap_get(&st->ids, id, &v))
		return 0;
	*ordinal = (uint32_t)v;
	return 1;
}

int coord_state_concept_seen(struct coord_state *st, uint32_t ordinal, const uint8_t id[16],
			     uint64_t created_us)
{
	struct coord_concept *cs = &st->cs[ordinal];
	if (!cs->live) {
		memcpy(cs->id, id, 16);
		cs->live = 1;
		int rc = util_idmap_put(&st->ids, id, ordinal);
		if (rc)
			return rc;
		st->concept_count++;
	}
	cs->created_us = created_us;
	return 0;
}

void coord_state_concept_gone(struct coord_state *st, uint32_t ordinal)
{
	uint64_t have;
	struct coord_concept *cs = &st->cs[ordinal];
	if (!cs->live)
		return;
	cs->live = 0;
	if (util_idmap_get(&st->ids, cs->id, &have) && have == ordinal)
		util_idmap_del(&st->ids, cs->id);
	st->concept_count--;
}
