/* SPDX-License-Identifier: MIT */
/* libsutra-reader's private structures and the calls its files share: views, snapshots, lookups through the layers. */
#ifndef READER_INTERNAL_H
#define READER_INTERNAL_H

/*
 * A reader maps storage.dat once and keeps a *view* of it (struct
 * rdr_view): the index segments the current meta lists, opened once and
 * read in place, plus a private index of the commit blocks after their
 * tail_start (the tail), built by whichever thread refreshes (under the
 * reader's mu) and read without locks by every thread holding a snapshot.
 * A snapshot holds its view, the tail index generations it started with
 * and its epoch; it is the reader's pin in the lock file, so the
 * coordinator frees nothing it reads. The invariants everything relies on:
 *
 *  - Published bytes never change, and only bytes below a published end
 *    that a meta validated are read.
 *  - Layers are read newest first: the tail, then segments from the newest
 *    (FORMAT.md 10.3). The first layer that mentions an id, or an
 *    association key, decides it: a live entry is the answer, a deleted one
 *    (or a delete in the tail) means absent. rdr_lookup, rdr_find_id and
 *    rdr_shadowed apply it to concepts, graph.c's each_edge to association
 *    keys; foreach and the searches walk each layer's own entries and ask
 *    rdr_shadowed whether a newer layer decides them.
 *  - The tail index only grows while its view lives: versions, ids and
 *    list nodes are appended, never moved or rewritten. A version carries
 *    the epoch it became true at and a lookup at epoch E takes the newest
 *    at or before E, so a snapshot sees exactly its epoch however far the
 *    refreshing thread has moved on. What a version refers to (the list
 *    node it heads, the norm of its record's embedding) is written before
 *    the release-store that publishes it.
 *  - When the segment list changes, a new view indexes the new, short tail
 *    from scratch; the old view lives on while snapshots hold it.
 *
 * Files: reader.c (open, close, refresh, pins, snapshots), view.c (views,
 * indexing the tail, lookups through the layers; the versioned key index
 * itself is tindex.c), concepts.c (get, contains, foreach), graph.c
 * (neighbours and paths), search.c (vector and text search), notices.c
 * (subscription, notices, wait_for_epoch, the callback listener).
 */

#include <pthread.h>
#include <stdint.h>

#include <nng/nng.h>

#include "layout/layout.h"
#include "layout/lockfile.h"
#include "layout/segindex.h"
#include "reader/tindex.h"
#include "sutra/reader.h"
#include "util/idmap.h"

/* Keys of the ordinal index (oix): the ordinal, then a tag. */
enum { TAG_HEAD = 1, TAG_BORN = 2 };

struct idchunk {
	uint8_t id[RDR_CHUNK][16];
};

/* Tail lists, newest first: per ordinal, the association keys the tail
 * mentions (whether one is live at an epoch is the edge index's answer);
 * per token hash, the ids whose content held the token (rdr_tkey). Nodes
 * are append-only chunks written by the refreshing thread; the head of
 * each list is a version in the ordinal index. */
struct enode {
	uint8_t key[16];
	uint32_t next; /* index + 1, 0: end */
};

struct nodechunk {
	struct enode n[RDR_CHUNK];
};

/* Per version of the id index (ix), by its version index: the norm of the
 * record's embedding (0 without one), computed once when the record is
 * indexed, so that a vector search does not compute it again for every
 * query. Written before the version's put publishes it. */
struct normchunk {
	float n[RDR_CHUNK];
};

/* A segment opened once and shared by the views that list it. */
struct rdr_seg {
	int refs; /* atomic */
	struct layout_segview sv;
};

/*
 * A view: the segments one meta lists, and the private index of the log
 * after their tail_start. While the coordinator publishes epochs with the
 * same segments, the refreshing thread extends the view's tail index in
 * place (versions carry epochs, so older snapshots see their own); when the
 * segment list changes, a new view indexes the new, short tail from
 * scratch and the old one lives on while snapshots hold it.
 */
struct rdr_view {
	int refs; /* atomic: the reader's current view and each snapshot */
	uint32_t nseg;
	struct rdr_seg *seg[LAYOUT_MAX_SEGMENTS]; /* oldest first */
	uint64_t tail_start;
	struct rdr_tindex ix;  /* id -> concept versions */
	struct rdr_tindex eix; /* association key -> versions (record offset) */
	struct rdr_tindex oix; /* ordinal keys: adjacency heads, born records;
				  token keys: text list heads */
	struct util_idmap idseen, eseen; /* refreshing thread only */
	struct idchunk **ids;  /* ids met in the tail, first mention order */
	uint32_t nids;         /* atomic */
	struct nodechunk **nodes;
	uint32_t nnodes;
	struct normchunk **norms; /* by ix version index */
	/* refreshing thread (under the reader's mu) */
	uint64_t indexed_end;
	uint64_t epoch;
	uint32_t next_ordinal;
	uint64_t tail_bytes;   /* of the commit blocks indexed */
};

struct sutra_reader {
	int fd;
	const unsigned char *map;
	pthread_mutex_t mu; /* refresh, acquire, release, pins */
	struct rdr_view *cur;
	struct layout_superblock sb;
	/* the newest indexed epoch (under mu) */
	uint64_t epoch;
	uint64_t published_end;
	uint64_t concepts, assocs, file_size;
	uint32_t next_ordinal;
	/* the lock-file slot and the epochs of live snapshots (under mu) */
	struct layout_lockfile *lf;
	uint64_t *held;
	size_t nheld, capheld;
	/* notices (notices.c) */
	pthread_mutex_t nmu;
	int subscribed;
	nng_socket sub;
};

struct sutra_snapshot {
	sutra_reader *r;
	struct rdr_view *v;
	struct rdr_gen *gen, *egen, *ogen;
	uint32_t nids;
	uint64_t epoch;
	uint64_t published_end;
	uint64_t concepts, assocs, file_size;
	uint32_t next_ordinal;
	uint64_t tail_bytes;
};


/* Where a live concept's record is. */
struct found {
	uint32_t ordinal;
	uint64_t record;           /* file offset */
	struct rdr_seg *seg;       /* NULL: in the tail */
	uint32_t ver;              /* in the tail: the ix version (rdr_tail_norm) */
	struct layout_seg_concept c;
};

/* ---- view.c: views and the tail index ---------------------------------------- */

/* The ordinal index key of (ordinal, tag). */
void rdr_okey(uint8_t key[16], uint32_t ordinal, uint8_t tag);

/* The ordinal index key that heads the tail's list of the ids whose
 * content holds a token (by its util_token_hash): byte 15 is TKEY_MARK,
 * which no ordinal key has. The list's nodes hold ids. */
#define TKEY_MARK 0xA5u
void rdr_tkey(uint8_t key[16], uint64_t hash);

/* A new view (one reference, the caller's) of the segments m lists,
 * sharing those that old (may be NULL) already has open, with an empty
 * tail from m->tail_start: rdr_view_index fills it. Returns 0,
 * SUTRA_ECORRUPT or -ENOMEM. */
int rdr_view_create(const sutra_reader *r, const struct layout_meta *m,
		    const struct rdr_view *old, struct rdr_view **out);

/* Drops a reference; the last one frees the view. Accepts NULL. */
void rdr_view_release(struct rdr_view *v);

/* Whether m lists exactly v's segments and tail start. */
int rdr_view_same_segments(const struct rdr_view *v, const struct layout_meta *m);

/* Indexes the commit blocks from where v stopped up to lv's published end
 * (with the reader's mu held). Returns 0, SUTRA_ECORRUPT or -ENOMEM; on
 * error nothing a snapshot can see changes (the versions already put
 * carry epochs no snapshot has yet). */
int rdr_view_index(const sutra_reader *r, struct rdr_view *v, const struct layout_view *lv);

/* The newest head of ordinal's tail list of association keys (node
 * index + 1), 0 when none. */
uint32_t rdr_tail_head(const struct rdr_view *v, const struct rdr_gen *og, uint32_t ordinal);

/* 1 with *f when id is live in the snapshot, 0 when not, or an error. */
int rdr_lookup(const sutra_snapshot *s, const uint8_t id[16], struct found *f);

/* The id of the concept that was given ordinal o, if a layer of the
 * snapshot has it (live or deleted): 1 with id, 0 when none, or an error. */
int rdr_find_id(const sutra_snapshot *s, uint32_t o, uint8_t id[16]);

/* Whether a layer newer than segment j (the tail, or a newer segment)
 * says anything about id: 1, 0, or an error. */
int rdr_shadowed(const sutra_snapshot *s, uint32_t j, const uint8_t id[16]);

/* The tail id i (i < the snapshot's nids). */
static inline const uint8_t *rdr_tail_id(const struct rdr_view *v, uint32_t i)
{
	return v->ids[i >> RDR_CHUNK_BITS]->id[i & (RDR_CHUNK - 1)];
}

/* The tail list node k (index + 1, as list heads and next links say). */
static inline const struct enode *rdr_tail_node(const struct rdr_view *v, uint32_t k)
{
	const struct nodechunk *nc =
		__atomic_load_n(&v->nodes[(k - 1) >> RDR_CHUNK_BITS], __ATOMIC_ACQUIRE);
	return &nc->n[(k - 1) & (RDR_CHUNK - 1)];
}

/* The norm of the embedding of the record that ix version ver names (a
 * version found through the snapshot): sqrtf(util_norm2()) of it, to the
 * bit, or 0 without one. */
static inline float rdr_tail_norm(const struct rdr_view *v, uint32_t ver)
{
	const struct normchunk *nc =
		__atomic_load_n(&v->norms[ver >> RDR_CHUNK_BITS], __ATOMIC_ACQUIRE);
	return nc->n[ver & (RDR_CHUNK - 1)];
}

/* ---- concepts.c ------------------------------------------------------------------- */

/* Decodes the record f names into a concept view. */
int rdr_view_of(const sutra_snapshot *s, const struct found *f, struct sutra_concept_view *out);

/* ---- notices.c -------------------------------------------------------------------- */

/* The notice side of a reader: set up at open (no socket until
 * subscribe), torn down at close. */
void rdr_notices_init(sutra_reader *r);
void rdr_notices_finish(sutra_reader *r);

#endif /* READER_INTERNAL_H */
