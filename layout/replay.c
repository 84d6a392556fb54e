/* SPDX-License-Identifier: MIT */
/* Replaying commit blocks into the logical state, checking the replay rules. */
#include "layout/layout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/endian.h"
#include "util/grow.h"
#include "util/hex.h"

int layout_replay_init(struct layout_replay *r, uint32_t vector_dim)
{
	memset(r, 0, sizeof *r);
	r->vector_dim = vector_dim;
	util_idmap_init(&r->ids);
	util_idmap_init(&r->edges);
	return 0;
}

void layout_replay_finish(struct layout_replay *r)
{
	if (!r)
		return;
	util_idmap_finish(&r->ids);
	util_idmap_finish(&r->edges);
	free(r->degree);
	memset(r, 0, sizeof *r);
}

static int grow_degree(struct layout_replay *r, uint32_t ordinal)
{
	size_t old = r->degree_cap;
	if (ordinal < old)
		return 0;
	if (UTIL_GROW(r->degree, r->degree_cap, (size_t)ordinal + 1, 64))
		return -ENOMEM;
	memset(r->degree + old, 0, (r->degree_cap - old) * sizeof *r->degree);
	return 0;
}

/* Checks that id is live with the given ordinal. */
static int endpoint_ok(const struct layout_replay *r, const uint8_t id[16], uint32_t ordinal,
		       uint64_t off, const char *role, struct sutra_detail *pb)
{
	uint64_t have;
	char hex[33];

	if (!util_idmap_get(&r->ids, id, &have)) {
		util_hex_id(hex, id);
		util_detail_set(pb, off, "%s concept %s is not live", role, hex);
		return SUTRA_ECORRUPT;
	}
	if (have != ordinal) {
		util_hex_id(hex, id);
		util_detail_set(pb, off, "%s concept %s has ordinal %llu, record says %u", role, hex,
				   (unsigned long long)have, ordinal);
		return SUTRA_ECORRUPT;
	}
	return 0;
}

static int apply(struct layout_replay *r, const struct layout_record *rec, struct sutra_detail *pb)
{
	unsigned char key[16];
	uint64_t have;
	int rc;

	switch (rec->type) {
	case LAYOUT_REC_CONCEPT: {
		const struct layout_concept *c = &rec->u.concept;
		if (util_idmap_get(&r->ids, c->id, &have)) {
			if (have != c->ordinal) {
				util_detail_set(pb, rec->offset + 24,
						   "update of a live concept changes its ordinal "
						   "from %llu to %u",
						   (unsigned long long)have, c->ordinal);
				return SUTRA_ECORRUPT;
			}
			return 0;
		}
		if (c->ordinal != r->next_ordinal || r->next_ordinal == UINT32_MAX) {
			util_detail_set(pb, rec->offset + 24,
					   "new concept has ordinal %u, expected %u", c->ordinal,
					   r->next_ordinal);
			return SUTRA_ECORRUPT;
		}
		if ((rc = grow_degree(r, c->ordinal)) || (rc = util_idmap_put(&r->ids, c->id, c->ordinal)))
			return rc;
		r->next_ordinal++;
		r->concept_count++;
		return 0;
	}
	case LAYOUT_REC_ASSOCIATION:
	case LAYOUT_REC_ASSOCIATION_DELETE: {
		const struct layout_association *a = &rec->u.association;
		if ((rc = endpoint_ok(r, a->src, a->src_ordinal, rec->offset + 8, "source", pb)) ||
		    (rc = endpoint_ok(r, a->dst, a->dst_ordinal, rec->offset + 24, "target", pb)))
			return rc;
		layout_edge_key(key, a->src_ordinal, a->dst_ordinal, a->type);
		int exists = util_idmap_get(&r->edges, key, NULL);
		if (rec->type == LAYOUT_REC_ASSOCIATION) {
			if (exists)
				return 0; /* upsert of an existing edge */
			if ((rc = util_idmap_put(&r->edges, key, 1)))
				return rc;
			r->degree[a->src_ordinal]++;
			r->degree[a->dst_ordinal]++;
			r->association_count++;
			return 0;
		}
		if (!exists) {
			util_detail_set(pb, rec->offset,
					   "delete of association %u -> %u type %u that does not exist",
					   a->src_ordinal, a->dst_ordinal, a->type);
			return SUTRA_ECORRUPT;
		}
		util_idmap_del(&r->edges, key);
		r->degree[a->src_ordinal]--;
		r->degree[a->dst_ordinal]--;
		r->association_count--;
		return 0;
	}
	case LAYOUT_REC_CONCEPT_DELETE: {
		const struct layout_concept *c = &rec->u.concept;
		if ((rc = endpoint_ok(r, c->id, c->ordinal, rec->offset + 8, "deleted", pb)))
			return rc;
		if (r->degree[c->ordinal]) {
			util_detail_set(pb, rec->offset,
					   "concept %u deleted while %u association ends remain",
					   c->ordinal, r->degree[c->ordinal]);
			return SUTRA_ECORRUPT;
		}
		util_idmap_del(&r->ids, c->id);
		r->concept_count--;
		return 0;
	}
	case LAYOUT_REC_REQUEST:
		return 0; /* a marker: changes nothing */
	default:
		util_detail_set(pb, rec->offset, "unknown record type %u", rec->type);
		return SUTRA_ECORRUPT;
	}
}

int layout_replay_block(struct layout_replay *r, const void *buf, const struct layout_block *blk,
			struct sutra_detail *pb)
{
	struct layout_record_iter it;
	struct layout_record rec;
	int rc;

	if (blk->type != LAYOUT_BLOCK_COMMIT) {
		util_detail_set(pb, blk->offset, "replay of a block that is not a commit");
		return SUTRA_ECORRUPT;
	}
	if (blk->epoch != r->epoch + 1) {
		util_detail_set(pb, blk->offset + 8, "commit block has epoch %llu, expected %llu",
				   (unsigned long long)blk->epoch, (unsigned long long)(r->epoch + 1));
		return SUTRA_ECORRUPT;
	}
	layout_records_init(&it, buf, blk, r->vector_dim);
	while ((rc = layout_records_next(&it, &rec, pb)) == 1) {
		if ((rc = apply(r, &rec, pb)))
			return rc;
	}
	if (rc)
		return rc;
	r->epoch = blk->epoch;
	return 0;
}
