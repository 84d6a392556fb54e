/* SPDX-License-Identifier: MIT */
/* libsutra-reader's internal structures, shared by reader.c (views, snapshots, lookups) and search.c. */
#ifndef READER_INTERNAL_H
#define READER_INTERNAL_H

/*
 * reader.c owns the reader, its views and snapshots (see the comments on
 * struct rdr_view); search.c answers vector and text queries through the
 * same lookups. A snapshot holds its view and the tail index generations it
 * started with, so everything here is read without locks.
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
	/* notices */
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
	struct layout_seg_concept c;
};

/* The ordinal index key of (ordinal, tag). */
void rdr_okey(uint8_t key[16], uint32_t ordinal, uint8_t tag);

/* The ordinal index key that heads the tail's list of the ids whose
 * content holds a token (by its util_token_hash): byte 15 is TKEY_MARK,
 * which no ordinal key has. The list's nodes hold ids. */
#define TKEY_MARK 0xA5u
void rdr_tkey(uint8_t key[16], uint64_t hash);

/* 1 with *f when id is live in the snapshot, 0 when not, or an error. */
int rdr_lookup(const sutra_snapshot *s, const uint8_t id[16], struct found *f);

/* The id of the concept that was given ordinal o, if a layer of the
 * snapshot has it (live or deleted): 1 with id, 0 when none, or an error. */
int rdr_find_id(const sutra_snapshot *s, uint32_t o, uint8_t id[16]);

/* Decodes the record f names into a concept view. */
int rdr_view_of(const sutra_snapshot *s, const struct found *f, struct sutra_concept_view *out);

/* Whether a layer newer than segment j (the tail, or a newer segment)
 * says anything about id: 1, 0, or an error. */
int rdr_shadowed(const sutra_snapshot *s, uint32_t j, const uint8_t id[16]);

/* The tail id i (i < the snapshot's nids). */
static inline const uint8_t *rdr_tail_id(const struct rdr_view *v, uint32_t i)
{
	return v->ids[i >> RDR_CHUNK_BITS]->id[i & (RDR_CHUNK - 1)];
}

#endif /* READER_INTERNAL_H */
