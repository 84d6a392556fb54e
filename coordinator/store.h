/* SPDX-License-Identifier: MIT */
/* The writer's view of a store: lock, recovery, the logical state, applying operations, committing epochs. */
#ifndef COORDINATOR_STORE_H
#define COORDINATOR_STORE_H

/*
 * One coord_store is the single writer of one storage.dat. It is used by
 * one thread at a time (the server's writer thread).
 *
 * Open takes an exclusive OFD lock on byte 0 of "<path>.lock" (a second writer gets
 * SUTRA_ELOCKED naming the holder's pid), creates the store if the file does
 * not exist, and recovers it (docs/FORMAT.md section 11.4): it chooses the
 * current epoch, verifies the whole file (layout_verify) or, when only the
 * other meta slot is at fault, the published log (layout_verify_log),
 * rebuilds its state from the index segments (when the log before them was
 * freed) and replays the commit blocks after them, truncates whatever lies
 * after the published
 * end, clears the other slot if it is not an older epoch of this log,
 * fdatasyncs, and commits an empty epoch if that slot must be written
 * again. It refuses to start on a log that does not verify.
 *
 * The logical state kept in memory is what the writer needs to turn a
 * request into records that obey the replay rules: id -> ordinal, per
 * ordinal its id, creation time and adjacency (to delete a concept's
 * associations before the concept), the set of associations, the counts.
 * Content and embeddings are not kept: the file has them.
 *
 * Requests are applied one operation at a time into the commit block being
 * built. coord_store_request_begin() marks the builder and the undo log;
 * coord_store_request_end(s, 0) rolls the request back exactly (records and
 * state), so a failed operation leaves nothing of its request in the epoch
 * while the other requests of the group stay. coord_store_commit() seals
 * the block as the next epoch, writes it and the meta slot (the slot not
 * holding the newest durable epoch) and, in sync mode, fdatasyncs both in
 * one go. Any I/O error there is fatal: the store refuses every further
 * call with the same error, and the next start recovers from the disk.
 *
 * The implementation is split by concern over several files;
 * coordinator/store_internal.h says which holds what.
 */

#include <stddef.h>
#include <stdint.h>

#include "coordinator/io.h"
#include "coordinator/log.h"
#include "wire/proto.h"

enum coord_durability {
	COORD_DURABILITY_SYNC = 0,
	COORD_DURABILITY_RELAXED = 1,
};

struct coord_store_options {
	const char *path;          /* storage.dat */
	uint32_t vector_dim;       /* for a new store; 0: 768 */
	int vector_dim_explicit;   /* an existing store of another dimension is an error */
	enum coord_durability durability;
	enum coord_io_kind io;
	const char *fault_spec;    /* coord_io fault injection, tests only */
	uint64_t segment_bytes;    /* tail commit bytes that start a segment; 0: none */
	uint64_t log_retention;    /* flushed log bytes kept below the tail; the rest is freed */
	struct coord_log log;
};

struct coord_store;

/* Opens (creating or recovering) the store. Returns 0, SUTRA_ELOCKED,
 * SUTRA_ECORRUPT, SUTRA_EVERSION, SUTRA_EDIM (explicit dimension differs),
 * or -errno; why holds a sentence for the log. */
int coord_store_open(const struct coord_store_options *o, struct coord_store **out, struct sutra_detail *why);

/* Makes everything durable (relaxed mode) and closes. NULL is allowed.
 * Returns the last fatal error, or 0. */
int coord_store_close(struct coord_store *s);

/* Begins one request: later operations can be rolled back together. */
void coord_store_request_begin(struct coord_store *s);

/* Applies one decoded operation to the epoch being built. Returns 0,
 * SUTRA_ENOTFOUND (unknown concept or association, unknown endpoint),
 * SUTRA_EDIM, SUTRA_EVALUE, SUTRA_ETOOBIG, or -ENOMEM, with a sentence in
 * why. The store is unchanged by a failed operation; the request's earlier
 * operations stay until coord_store_request_end(). */
int coord_store_apply(struct coord_store *s, const struct proto_op_body *op, struct sutra_detail *why);

/* Records in the epoch being built that the current request is (client_id,
 * seq) with message CRC crc (a request marker, FORMAT.md 8.5), so that a
 * resend after a restart can be recognised. Call after its operations,
 * before coord_store_request_end(); rolled back with them. Returns 0 or
 * -ENOMEM. */
int coord_store_mark_request(struct coord_store *s, uint64_t client_id, uint64_t seq,
			     uint32_t crc);

/* The requests the log says were applied: for up to COORD_MARKER_CLIENTS
 * clients (the most recently seen), the last COORD_MARKER_RING of each,
 * with the epoch that applied them. Filled at open from the log; fn is
 * called once per remembered request, oldest first per client. */
#define COORD_MARKER_CLIENTS 4096u
#define COORD_MARKER_RING 16u
void coord_store_foreach_marker(const struct coord_store *s,
				void (*fn)(void *arg, uint64_t client_id, uint64_t seq, uint32_t crc,
					   uint64_t epoch),
				void *arg);

/* Ends the request: keeps its operations (ok != 0) or rolls them back. */
void coord_store_request_end(struct coord_store *s, int ok);

/* Bytes of records in the epoch being built. */
size_t coord_store_pending_bytes(const struct coord_store *s);

/* Commits the epoch being built (if it holds records, or force_empty).
 * On return 0, *epoch is the new epoch (or the current one when nothing
 * was committed) and *committed says whether an epoch was written.
 * Returns 0 or a fatal negative errno. */
int coord_store_commit(struct coord_store *s, int force_empty, uint64_t *epoch, int *committed);

/* fdatasync if any published epoch is not durable yet, then make the
 * current slot the durable one. Returns 0 or a fatal negative errno. */
int coord_store_sync(struct coord_store *s);

/* The ordinals touched by the last committed epoch (learned, updated or
 * deleted concepts, and both endpoints of every association written or
 * deleted), as portable CRoaring bytes. Returns a malloc'ed buffer (caller
 * frees) and its length in *len, or NULL with *len 0 when nothing was
 * touched or memory ran out. */
unsigned char *coord_store_touched(const struct coord_store *s, size_t *len);

/* The fatal error that stopped the store, or 0. */
int coord_store_failed(const struct coord_store *s);

uint64_t coord_store_epoch(const struct coord_store *s);
uint64_t coord_store_durable_epoch(const struct coord_store *s);
uint64_t coord_store_published_end(const struct coord_store *s);
uint32_t coord_store_vector_dim(const struct coord_store *s);
const uint8_t *coord_store_uuid(const struct coord_store *s);
int coord_store_has_unsynced(const struct coord_store *s);
void coord_store_stats(const struct coord_store *s, struct proto_stats *st);
const char *coord_store_io_name(const struct coord_store *s);

/* Index segments (FORMAT.md section 10), on the writer thread between
 * groups: takes a segment the background builder finished, appends it and
 * fdatasyncs, and commits an empty epoch whose meta lists it (*committed,
 * *epoch: publish a notice); then starts the next flush of the tail or
 * merge of segments when one is due; then frees the space of merged-away
 * segments below the oldest epoch a reader pins (docs/LOCKFILE.md). A failed build is logged and
 * skipped; returns 0 or a fatal I/O error. */
int coord_store_maintain(struct coord_store *s, int *committed, uint64_t *epoch);

/* fn(arg) is called from the builder thread when a build finishes. */
void coord_store_on_segment_done(struct coord_store *s, void (*fn)(void *arg), void *arg);

/* Milliseconds until coord_store_maintain() has something to do even
 * without new requests (free merged-away space, flush the tail of a store
 * idle for a second), 0 if now, -1 if nothing is due. */
int coord_store_maintenance_due_ms(const struct coord_store *s);

#endif /* COORDINATOR_STORE_H */
