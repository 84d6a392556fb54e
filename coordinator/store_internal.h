/* SPDX-License-Identifier: MIT */
/* The store's private half: the coord_store struct, grouped by concern, and the calls between its files. */
#ifndef COORDINATOR_STORE_INTERNAL_H
#define COORDINATOR_STORE_INTERNAL_H

/*
 * One coord_store is the single writer of one storage.dat, used by one
 * thread at a time (store.h). Its files split it by concern:
 *
 *   store.c       open (in order: lock, create, recover, start) and close,
 *                 and the read-only accessors;
 *   store_lock.c  the writer lock on byte 0 of "<path>.lock";
 *   recovery.c    choosing the epoch at open, verifying, rebuilding the
 *                 state from the segments and the log, repairing the file,
 *                 the request markers found on the way;
 *   state.c       the logical state: ordinals, ids, associations, counts;
 *   apply.c       turning operations into records of the epoch being built,
 *                 with an undo log so that a request rolls back exactly;
 *   commit.c      sealing that epoch, writing it and a meta slot, fdatasync;
 *   compact.c     planning segment flushes and merges (compact.h) and the
 *                 hand-off with the builder thread (segmenter.h);
 *   reclaim.c     freeing merged-away segments and flushed commit blocks
 *                 below the oldest epoch a reader pins (docs/LOCKFILE.md).
 *
 * Invariants the files rely on:
 *
 *  - The state is exactly what replaying the published log (meta, from its
 *    log start or its segments) gives, plus the requests applied to next.b
 *    since the last commit. A failed operation or request leaves neither
 *    records nor state behind: apply.c undoes both together.
 *  - meta is the newest published epoch; the meta slot written next is the
 *    one not holding the newest durable epoch (1 - durable.slot), so that a
 *    torn write never costs more than the epochs since the last fdatasync.
 *    log_end >= meta.published_end: segment blocks are placed past the
 *    published end before a meta lists them.
 *  - failed, once set by an I/O error in commit.c or compact.c, is never
 *    cleared: every later call returns it, and the next start recovers.
 *  - A byte range of the file is freed only when no meta slot and no pinned
 *    reader can reach an epoch that lists it (reclaim.c). Freeing flushed
 *    commit blocks skips the segment blocks among them that the current
 *    meta lists or that wait in rec.retired for their own turn.
 */

#include <roaring/roaring.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "coordinator/store.h"
#include "layout/layout.h"
#include "util/idmap.h"

struct coord_segmenter;
struct layout_lockfile;

/* ---- The logical state (state.c) ----------------------------------------- */

/* One association end as seen from a concept. */
struct coord_edge {
	uint32_t other;
	uint8_t type;
	uint8_t out; /* 1: this concept is the source */
};

/* What the writer keeps of one ordinal: enough to write a concept's records
 * and to delete its associations before it. 48 bytes in this order; there
 * is one per concept ever learnt. */
struct coord_concept {
	uint8_t id[16];
	uint64_t created_us;
	struct coord_edge *edges;
	size_t capedges;
	uint32_t nedges;
	uint8_t live;
};

struct coord_state {
	struct util_idmap ids;     /* id -> ordinal of a live concept */
	struct util_idmap edges;   /* layout_edge_key(src, dst, type) -> creation time */
	struct coord_concept *cs;  /* by ordinal; zeroed beyond what was used */
	size_t cs_cap;
	uint32_t next_ordinal;
	uint64_t concept_count;
	uint64_t association_count;
};

void coord_state_init(struct coord_state *st);
void coord_state_finish(struct coord_state *st);
/* Makes room for ordinal in st->cs. Returns 0 or -ENOMEM. */
int coord_state_reserve(struct coord_state *st, uint32_t ordinal);
/* 1 if id is a live concept (its ordinal in *ordinal). */
int coord_state_lookup(const struct coord_state *st, const uint8_t id[16], uint32_t *ordinal);
/* Replay: the concept at ordinal exists (with this id unless it already
 * lived) and was created at created_us. Returns 0 or -ENOMEM. */
int coord_state_concept_seen(struct coord_state *st, uint32_t ordinal, const uint8_t id[16],
			     uint64_t created_us);
/* Replay: the concept at ordinal is gone, if it lived. */
void coord_state_concept_gone(struct coord_state *st, uint32_t ordinal);
/* Adds an association (set, both adjacencies, count). 0 or -ENOMEM, and
 * then nothing changed. */
int coord_state_edge_insert(struct coord_state *st, uint32_t src, uint32_t dst, uint8_t type,
			    uint64_t created_us);
void coord_state_edge_remove(struct coord_state *st, uint32_t src, uint32_t dst, uint8_t type);
/* 1 if the association exists (its creation time in *created_us, if not NULL). */
int coord_state_edge_find(const struct coord_state *st, uint32_t src, uint32_t dst, uint8_t type,
			  uint64_t *created_us);

/* ---- The epoch being built (apply.c, commit.c) ---------------------------- */

enum coord_undo_kind { COORD_UNDO_NEW_CONCEPT, COORD_UNDO_DEL_CONCEPT, COORD_UNDO_NEW_EDGE,
		       COORD_UNDO_DEL_EDGE };

/* One change to the state, to be reversed if its request fails. */
struct coord_undo {
	uint8_t kind;
	uint8_t type;
	uint32_t a, b;       /* the concept, or the association's src and dst */
	uint64_t created_us; /* of a deleted association */
};

struct coord_next {
	struct layout_builder b;      /* its records */
	uint64_t now_us;              /* time of its first request; 0 before */
	struct coord_undo *undo;      /* its changes to the state, oldest first */
	size_t undo_len, undo_cap;
	size_t mark_undo, mark_len;   /* where the current request began */
	uint32_t mark_items;
	uint32_t *req_touched;        /* ordinals the current request touched */
	size_t req_touched_len, req_touched_cap;
	roaring_bitmap_t *touched;    /* ordinals its kept requests touched */
};

/* ---- Request markers found in the log at open (recovery.c) -------------- */

struct coord_marker {
	uint64_t seq;
	uint64_t epoch;
	uint32_t crc;
	uint8_t used;
};

struct coord_marker_client {
	uint64_t id;
	uint64_t last_epoch;
	struct coord_marker ring[COORD_MARKER_RING]; /* indexed by seq */
};

struct coord_markers {
	struct coord_marker_client *clients; /* COORD_MARKER_CLIENTS once one is seen */
	uint32_t n;
	struct util_idmap ix;                /* client id -> index in clients */
};

/* ---- Index segments (compact.c) ------------------------------------------ */

/* What a listed segment covers, from its header. */
struct coord_seginfo {
	uint64_t first_epoch, last_epoch;
	uint32_t next_ordinal;
};

struct coord_compaction {
	struct coord_segmenter *segmenter; /* NULL: segments are never built */
	uint64_t segment_bytes;     /* tail commit bytes that start a flush */
	uint64_t tail_commit_bytes; /* commit block bytes from meta.tail_start on */
	uint64_t tail_items;        /* records in them */
	uint64_t job_tail_bytes;    /* the same, as the flush being built saw them */
	uint64_t job_tail_items;
	uint64_t placing_offset;    /* of the block the builder is writing */
	uint64_t last_commit_ms;    /* of a commit with records: idle flushes wait */
	struct coord_seginfo info[LAYOUT_MAX_SEGMENTS]; /* of meta.segments[i] */
};

/* ---- Freeing space (reclaim.c) ------------------------------------------- */

/* A segment block merged away at `epoch` (the first epoch whose meta does
 * not list it): its sections can be freed once no reader and no meta slot
 * can be at an older epoch. */
struct coord_retired {
	uint64_t offset, length, epoch;
};

/* Commit blocks [from, to) that a flush covered at `epoch`: freed once
 * nothing can use an older epoch and both meta slots start their walks
 * at `to` or later (log_start, FORMAT.md 10.4). */
struct coord_tail_range {
	uint64_t from, to, epoch;
};

struct coord_reclaim {
	struct layout_lockfile *lockf;  /* reader slots; NULL: space is never freed */
	struct coord_retired *retired;  /* segment blocks no meta lists any more */
	size_t nretired, capretired;
	struct coord_tail_range *tails; /* flushed commit blocks waiting to be freed */
	size_t ntails, captails;
	uint64_t log_retention;         /* bytes of flushed log kept below tail_start */
	uint64_t last_ms;               /* of the last pass */
};

/* ---- The store ----------------------------------------------------------- */

/* What the store knows of one meta slot. */
struct coord_slot {
	uint64_t seq;       /* 0: empty or invalid */
	uint64_t epoch;     /* 0: empty or invalid */
	uint64_t log_start; /* where a walk from this slot begins */
};

struct coord_store {
	char *path;
	int fd;
	struct coord_io *io;
	struct coord_log log;
	enum coord_durability durability;
	struct layout_superblock sb;
	uint64_t file_size;
	int failed;                  /* the fatal error, or 0 */

	struct {                     /* store_lock.c */
		int fd;              /* of "<path>.lock", -1 when not open */
		int held;            /* registered in this process's table */
	} lock;

	/* What is published and what is durable. */
	struct layout_meta meta;     /* the newest published epoch */
	struct coord_slot slot[LAYOUT_META_SLOT_COUNT];
	struct {
		int slot;            /* the slot holding the newest durable epoch */
		uint64_t end;
		uint64_t epoch;
	} durable;
	uint64_t log_end;            /* where the next block goes */
	roaring_bitmap_t *last_touched; /* ordinals the last committed epoch touched */

	struct coord_state st;
	struct coord_next next;
	struct coord_markers markers;
	struct coord_compaction seg;
	struct coord_reclaim rec;

	/* statistics */
	uint64_t commits, syncs;
};

/* ---- Calls between the store's files -------------------------------------- */

/* store_lock.c. "<path>.lock", malloc'ed, or NULL. */
char *coord_lock_path(const char *path);
/* Takes the writer lock (s->path, s->log set). Returns 0, SUTRA_ELOCKED
 * (naming the holder in why), or -errno. */
int coord_lock_take(struct coord_store *s, struct sutra_detail *why);
/* Drops it and closes the lock file's descriptor; safe when never taken. */
void coord_lock_release(struct coord_store *s);

/* recovery.c. Creates the store at o->path unless someone else did. */
int coord_recover_create(const struct coord_store_options *o, struct sutra_detail *why);
/* Maps the file open on s->fd and recovers it (store.h): fills sb, meta,
 * slot, durable.slot, the state, the markers, seg.info and seg.tail_*,
 * rec.retired and rec.tails, repairs the file and fdatasyncs it.
 * *need_commit: the other meta slot must be written again. Returns 0,
 * SUTRA_ECORRUPT, SUTRA_EVERSION, SUTRA_EDIM or -errno, with why. */
int coord_recover(struct coord_store *s, const struct coord_store_options *o, int *need_commit,
		  struct sutra_detail *why);

/* commit.c. Commits an empty epoch (to rewrite a meta slot). */
int coord_commit_empty(struct coord_store *s, uint64_t *epoch, int *committed);

/* reclaim.c */
int coord_reclaim_open_slots(struct coord_store *s);
void coord_reclaim_finish(struct coord_store *s);
/* Room for n more retired ranges, so that retiring them cannot fail. */
int coord_reclaim_reserve(struct coord_store *s, size_t n);
int coord_reclaim_retire(struct coord_store *s, uint64_t offset, uint64_t length, uint64_t epoch);
int coord_reclaim_add_tail(struct coord_store *s, uint64_t from, uint64_t to, uint64_t epoch);
/* One pass, at most every COORD_RECLAIM_EVERY_MS: frees what nothing can
 * reach. Returns 1 when only the older meta slot still names something
 * that could be freed (an empty commit rewrites it), else 0. */
int coord_reclaim(struct coord_store *s);
/* The mono_ms time of the next pass that may free something, or
 * UINT64_MAX when there is nothing to free. */
uint64_t coord_reclaim_due(const struct coord_store *s);

#define COORD_RECLAIM_EVERY_MS 100u

/* Wall-clock microseconds (records' times) and monotonic milliseconds
 * (pacing of maintenance). */
static inline uint64_t coord_wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline uint64_t coord_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif /* COORDINATOR_STORE_INTERNAL_H */
