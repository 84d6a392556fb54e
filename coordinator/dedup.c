/* SPDX-License-Identifier: MIT */
/* The resend cache: per client, a ring of its last requests and their replies. */
#include "coordinator/dedup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/endian.h"

int coord_dedup_init(struct coord_dedup *d, uint32_t cap)
{
	memset(d, 0, sizeof *d);
	util_idmap_init(&d->ix);
	if (cap == 0)
		return -EINVAL;
	if (!(d->clients = calloc(cap, sizeof *d->clients)))
		return -ENOMEM;
	d->cap = cap;
	return 0;
}

void coord_dedup_finish(struct coord_dedup *d)
{
	for (uint32_t i = 0; d->clients && i < d->n; i++)
		for (unsigned r = 0; r < COORD_DEDUP_RING; r++)
			free(d->clients[i].ring[r].msg);
	free(d->clients);
	util_idmap_finish(&d->ix);
	memset(d, 0, sizeof *d);
}

static void client_key(unsigned char key[16], uint64_t id)
{
	memset(key, 0, 16);
	util_put_le64(key, id);
}

/* The client's entry, made (forgetting the least recently seen client when
 * the table is full) if it is new; NULL when out of memory. */
static struct coord_dedup_client *client_get(struct coord_dedup *d, uint64_t id)
{
	unsigned char key[16];
	uint64_t ix;

	client_key(key, id);
	d->tick++;
	if (util_idmap_get(&d->ix, key, &ix)) {
		d->clients[ix].last_used = d->tick;
		return &d->clients[ix];
	}
	if (d->n < d->cap) {
		ix = d->n;
	} else {
		/* None of the forgotten client's requests is pending: see
		 * dedup.h on why the server's in-flight requests all belong to
		 * more recently seen clients. */
		ix = 0;
		for (uint32_t i = 1; i < d->n; i++)
			if (d->clients[i].last_used < d->clients[ix].last_used)
				ix = i;
		struct coord_dedup_client *old = &d->clients[ix];
		unsigned char ok[16];
		client_key(ok, old->id);
		util_idmap_del(&d->ix, ok);
		for (unsigned r = 0; r < COORD_DEDUP_RING; r++) {
			free(old->ring[r].msg);
			old->ring[r].msg = NULL;
		}
		old->id = 0;
	}
	if (util_idmap_put(&d->ix, key, ix) != 0)
		return NULL;
	if (ix == d->n)
		d->n++;
	struct coord_dedup_client *c = &d->clients[ix];
	memset(c, 0, sizeof *c);
	c->id = id;
	c->last_used = d->tick;
	return c;
}

int coord_dedup_check(struct coord_dedup *d, uint64_t client_id, uint64_t seq, uint16_t op,
		      uint32_t crc, struct coord_dedup_entry **e)
{
	struct coord_dedup_client *c = client_get(d, client_id);
	if (!c)
		return -ENOMEM;
	struct coord_dedup_entry *slot = &c->ring[seq % COORD_DEDUP_RING];
	int same_seq = slot->state != COORD_DEDUP_EMPTY && slot->seq == seq;

	/* A client that reuses a sequence number for another request must
	 * not get the old reply. */
	if (same_seq && slot->crc != crc)
		return COORD_DEDUP_REUSED;
	if (same_seq) {
		*e = slot;
		return slot->state == COORD_DEDUP_ANSWERED ? COORD_DEDUP_CACHED : COORD_DEDUP_WAIT;
	}
	if (c->max_seq >= COORD_DEDUP_RING && seq <= c->max_seq - COORD_DEDUP_RING)
		return COORD_DEDUP_STALE;
	if (slot->state == COORD_DEDUP_PENDING)
		return COORD_DEDUP_BUSY; /* the oldest request in flight still needs it */
	free(slot->msg);
	memset(slot, 0, sizeof *slot);
	slot->seq = seq;
	slot->state = COORD_DEDUP_PENDING;
	slot->op = op;
	slot->crc = crc;
	if (seq > c->max_seq)
		c->max_seq = seq;
	*e = slot;
	return COORD_DEDUP_NEW;
}

void coord_dedup_done(struct coord_dedup_entry *e, int32_t status, uint64_t epoch, uint32_t index,
		      const char *msg)
{
	e->state = COORD_DEDUP_ANSWERED;
	e->status = status;
	e->epoch = epoch;
	e->index = index;
	free(e->msg);
	e->msg = msg ? strdup(msg) : NULL;
}

void coord_dedup_seed(struct coord_dedup *d, uint64_t client_id, uint64_t seq, uint32_t crc,
		      uint64_t epoch)
{
	struct coord_dedup_client *c = client_get(d, client_id);
	if (!c)
		return;
	struct coord_dedup_entry *e = &c->ring[seq % COORD_DEDUP_RING];
	free(e->msg);
	memset(e, 0, sizeof *e);
	e->seq = seq;
	e->crc = crc;
	e->state = COORD_DEDUP_ANSWERED;
	e->status = 0;
	e->epoch = epoch;
	e->index = UINT32_MAX;
	if (seq > c->max_seq)
		c->max_seq = seq;
}
