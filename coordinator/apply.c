/* SPDX-License-Identifier: MIT */
/* Applying operations to the epoch being built: checks against the state, records, and an undo log per request. */
#include <string.h>

#include "coordinator/store_internal.h"
#include "sutra/errors.h"
#include "util/detail.h"
#include "util/endian.h"
#include "util/grow.h"
#include "util/hex.h"

static int push_undo(struct coord_next *n, uint8_t kind, uint32_t a, uint32_t b, uint8_t type,
		     uint64_t created_us)
{
	int rc = UTIL_GROW(n->undo, n->undo_cap, n->undo_len + 1, 256);
	if (rc)
		return rc;
	n->undo[n->undo_len++] = (struct coord_undo){ .kind = kind, .type = type, .a = a, .b = b,
						      .created_us = created_us };
	return 0;
}

static int touch(struct coord_next *n, uint32_t ordinal)
{
	int rc = UTIL_GROW(n->req_touched, n->req_touched_cap, n->req_touched_len + 1, 64);
	if (rc)
		return rc;
	n->req_touched[n->req_touched_len++] = ordinal;
	return 0;
}

void coord_store_request_begin(struct coord_store *s)
{
	struct coord_next *n = &s->next;
	if (n->b.items == 0 && n->undo_len == 0)
		n->now_us = coord_wall_us(); /* first request of the epoch: its time */
	n->mark_undo = n->undo_len;
	n->mark_len = n->b.len;
	n->mark_items = n->b.items;
	n->req_touched_len = 0;
}

void coord_store_request_end(struct coord_store *s, int ok)
{
	struct coord_next *n = &s->next;
	struct coord_state *st = &s->st;
	if (ok) {
		for (size_t i = 0; i < n->req_touched_len; i++)
			roaring_bitmap_add(n->touched, n->req_touched[i]);
		return;
	}
	while (n->undo_len > n->mark_undo) {
		struct coord_undo *u = &n->undo[--n->undo_len];
		struct coord_concept *c = &st->cs[u->a];
		switch (u->kind) {
		case COORD_UNDO_NEW_CONCEPT:
			util_idmap_del(&st->ids, c->id);
			c->live = 0;
			st->next_ordinal--;
			st->concept_count--;
			break;
		case COORD_UNDO_DEL_CONCEPT:
			/* The id's slot was freed by the delete; putting it back
			 * cannot need memory the map did not have a moment ago
			 * unless it was rebuilt, and a rebuild only shrinks. */
			(void)util_idmap_put(&st->ids, c->id, u->a);
			c->live = 1;
			st->concept_count++;
			break;
		case COORD_UNDO_NEW_EDGE:
			coord_state_edge_remove(st, u->a, u->b, u->type);
			break;
		case COORD_UNDO_DEL_EDGE:
			(void)coord_state_edge_insert(st, u->a, u->b, u->type, u->created_us);
			break;
		}
	}
	n->b.len = n->mark_len;
	n->b.items = n->mark_items;
	n->req_touched_len = 0;
}

int coord_store_mark_request(struct coord_store *s, uint64_t client_id, uint64_t seq,
			     uint32_t crc)
{
	if (s->failed)
		return s->failed;
	return layout_builder_add_request(&s->next.b, client_id, seq, crc);
}

size_t coord_store_pending_bytes(const struct coord_store *s)
{
	return s->next.b.items ? s->next.b.len : 0;
}

static int learn_concept(struct coord_store *s, const struct proto_op_body *op, struct sutra_detail *why)
{
	struct coord_state *st = &s->st;
	struct coord_next *n = &s->next;
	struct layout_concept c;
	uint32_t ordinal;
	int existed = coord_state_lookup(st, op->u.concept.id, &ordinal);
	int rc;

	if (op->u.concept.vector_dim && op->u.concept.vector_dim != s->sb.vector_dim)
		return util_fail(SUTRA_EDIM, why,
			    "embedding has %u values, the store's dimension is %u",
			    op->u.concept.vector_dim, s->sb.vector_dim);
	if (!existed) {
		if (st->next_ordinal == UINT32_MAX)
			return util_fail(SUTRA_ETOOBIG, why, "no ordinal left for a new concept");
		ordinal = st->next_ordinal;
		if ((rc = coord_state_reserve(st, ordinal)))
			return util_fail(rc, why, "out of memory");
	}
	memset(&c, 0, sizeof c);
	memcpy(c.id, op->u.concept.id, 16);
	c.ordinal = ordinal;
	c.strength = op->u.concept.strength;
	c.confidence = op->u.concept.confidence;
	c.created_us = existed ? st->cs[ordinal].created_us : n->now_us;
	c.updated_us = n->now_us;
	c.content = op->u.concept.content;
	c.content_len = op->u.concept.content_len;
	c.metadata = op->u.concept.metadata;
	c.metadata_len = op->u.concept.metadata_len;
	if (op->u.concept.vector_dim) {
		/* The request's little-endian bytes, which proto_op_decode
		 * checked (finite values, like the content's UTF-8): copied
		 * once, into the block. */
		c.embedding = op->u.concept.embedding;
		c.vector_dim = s->sb.vector_dim;
	}
	if ((rc = layout_builder_add_concept_checked(&n->b, &c)))
		return util_fail(rc, why, "learn_concept: %s", sutra_strerror(rc));
	if (!existed) {
		if ((rc = util_idmap_put(&st->ids, c.id, ordinal)) ||
		    (rc = push_undo(n, COORD_UNDO_NEW_CONCEPT, ordinal, 0, 0, 0))) {
			util_idmap_del(&st->ids, c.id);
			return util_fail(rc, why, "out of memory");
		}
		struct coord_concept *cs = &st->cs[ordinal];
		memcpy(cs->id, c.id, 16);
		cs->created_us = c.created_us;
		cs->live = 1;
		st->next_ordinal++;
		st->concept_count++;
	}
	if ((rc = touch(n, ordinal)))
		return util_fail(rc, why, "out of memory");
	return 0;
}

static int assoc_endpoints(const struct coord_state *st, const struct proto_op_body *op,
			   uint32_t *src, uint32_t *dst, struct sutra_detail *why)
{
	char h[33];
	if (!coord_state_lookup(st, op->u.assoc.src, src)) {
		util_hex_id(h, op->u.assoc.src);
		return util_fail(SUTRA_ENOTFOUND, why, "unknown source concept %s", h);
	}
	if (!coord_state_lookup(st, op->u.assoc.dst, dst)) {
		util_hex_id(h, op->u.assoc.dst);
		return util_fail(SUTRA_ENOTFOUND, why, "unknown target concept %s", h);
	}
	return 0;
}

static int learn_association(struct coord_store *s, const struct proto_op_body *op, struct sutra_detail *why)
{
	struct coord_state *st = &s->st;
	struct coord_next *n = &s->next;
	struct layout_association a;
	uint32_t src, dst;
	int rc = assoc_endpoints(st, op, &src, &dst, why);
	if (rc)
		return rc;
	memset(&a, 0, sizeof a);
	memcpy(a.src, op->u.assoc.src, 16);
	memcpy(a.dst, op->u.assoc.dst, 16);
	a.src_ordinal = src;
	a.dst_ordinal = dst;
	a.type = op->u.assoc.type;
	a.confidence = op->u.assoc.confidence;
	a.weight = op->u.assoc.weight;
	/* An upsert keeps the association's creation time. */
	uint64_t created;
	int existed = coord_state_edge_find(st, src, dst, a.type, &created);
	a.created_us = existed ? created : n->now_us;
	if ((rc = layout_builder_add_association(&n->b, &a)))
		return util_fail(rc, why, "learn_association: %s", sutra_strerror(rc));
	if (!existed) {
		if ((rc = coord_state_edge_insert(st, src, dst, a.type, a.created_us)))
			return util_fail(rc, why, "out of memory");
		if ((rc = push_undo(n, COORD_UNDO_NEW_EDGE, src, dst, a.type, 0))) {
			coord_state_edge_remove(st, src, dst, a.type);
			return util_fail(rc, why, "out of memory");
		}
	}
	if ((rc = touch(n, src)) || (rc = touch(n, dst)))
		return util_fail(rc, why, "out of memory");
	return 0;
}

static int remove_association(struct coord_store *s, uint32_t src, uint32_t dst, uint8_t type)
{
	struct coord_state *st = &s->st;
	struct coord_next *n = &s->next;
	struct layout_association a;
	int rc;

	memset(&a, 0, sizeof a);
	memcpy(a.src, st->cs[src].id, 16);
	memcpy(a.dst, st->cs[dst].id, 16);
	a.src_ordinal = src;
	a.dst_ordinal = dst;
	a.type = type;
	uint64_t created = 0;
	(void)coord_state_edge_find(st, src, dst, type, &created);
	if ((rc = layout_builder_add_association_delete(&n->b, &a)))
		return rc;
	if ((rc = push_undo(n, COORD_UNDO_DEL_EDGE, src, dst, type, created)))
		return rc;
	coord_state_edge_remove(st, src, dst, type);
	if ((rc = touch(n, src)) || (rc = touch(n, dst)))
		return rc;
	return 0;
}

static int delete_association(struct coord_store *s, const struct proto_op_body *op, struct sutra_detail *why)
{
	uint32_t src, dst;
	int rc = assoc_endpoints(&s->st, op, &src, &dst, why);
	if (rc)
		return rc;
	if (!coord_state_edge_find(&s->st, src, dst, op->u.assoc.type, NULL)) {
		char a[33], b[33];
		util_hex_id(a, op->u.assoc.src);
		util_hex_id(b, op->u.assoc.dst);
		return util_fail(SUTRA_ENOTFOUND, why, "no association %s -> %s of type %u", a,
			    b, op->u.assoc.type);
	}
	if ((rc = remove_association(s, src, dst, op->u.assoc.type)))
		return util_fail(rc, why, "out of memory");
	return 0;
}

static int delete_concept(struct coord_store *s, const struct proto_op_body *op, struct sutra_detail *why)
{
	struct coord_state *st = &s->st;
	struct coord_next *n = &s->next;
	uint32_t ordinal;
	int rc;

	if (!coord_state_lookup(st, op->u.del.id, &ordinal)) {
		char h[33];
		util_hex_id(h, op->u.del.id);
		return util_fail(SUTRA_ENOTFOUND, why, "unknown concept %s", h);
	}
	/* Its associations go first, in the same block: the replay rules
	 * allow a concept delete only once nothing refers to it. */
	struct coord_concept *c = &st->cs[ordinal];
	while (c->nedges) {
		struct coord_edge e = c->edges[c->nedges - 1];
		uint32_t src = e.out ? ordinal : e.other, dst = e.out ? e.other : ordinal;
		if ((rc = remove_association(s, src, dst, e.type)))
			return util_fail(rc, why, "out of memory");
		c = &st->cs[ordinal];
	}
	if ((rc = layout_builder_add_concept_delete(&n->b, c->id, ordinal)) ||
	    (rc = push_undo(n, COORD_UNDO_DEL_CONCEPT, ordinal, 0, 0, 0)) || (rc = touch(n, ordinal)))
		return util_fail(rc, why, "out of memory");
	util_idmap_del(&st->ids, c->id);
	c->live = 0;
	st->concept_count--;
	return 0;
}

int coord_store_apply(struct coord_store *s, const struct proto_op_body *op, struct sutra_detail *why)
{
	/* A failed operation must leave nothing: undo what it did itself (a
	 * delete_concept may have removed edges before failing), then its
	 * request's earlier operations stay until request_end decides. */
	struct coord_next *n = &s->next;
	size_t undo = n->undo_len, len = n->b.len, tl = n->req_touched_len;
	uint32_t items = n->b.items;
	size_t mark_undo = n->mark_undo, mark_len = n->mark_len;
	uint32_t mark_items = n->mark_items;
	int rc;

	if (s->failed)
		return util_fail(s->failed, why, "the store stopped after an I/O error");
	switch (op->op) {
	case PROTO_OP_LEARN_CONCEPT:
		rc = learn_concept(s, op, why);
		break;
	case PROTO_OP_LEARN_ASSOCIATION:
		rc = learn_association(s, op, why);
		break;
	case PROTO_OP_DELETE_CONCEPT:
		rc = delete_concept(s, op, why);
		break;
	case PROTO_OP_DELETE_ASSOCIATION:
		rc = delete_association(s, op, why);
		break;
	default:
		rc = util_fail(SUTRA_EPROTO, why, "operation %u is not a write", op->op);
		break;
	}
	if (rc && (n->undo_len != undo || n->b.len != len)) {
		n->mark_undo = undo;
		n->mark_len = len;
		n->mark_items = items;
		coord_store_request_end(s, 0);
		n->mark_undo = mark_undo;
		n->mark_len = mark_len;
		n->mark_items = mark_items;
	}
	if (rc)
		n->req_touched_len = tl;
	return rc;
}
