/* SPDX-License-Identifier: MIT */
/* The reader-slot table in <storage.dat>.lock: who pins which epoch, and who is still alive. */
#ifndef LAYOUT_LOCKFILE_H
#define LAYOUT_LOCKFILE_H

/*
 * docs/LOCKFILE.md is the normative description; this header mirrors it.
 *
 * The lock file beside storage.dat holds, after a 4096-byte header page, a
 * table of 1024 reader slots of 64 bytes each (one cache line). A reader
 * process owns slot i while it holds an OFD write lock (F_OFD_SETLK) on the
 * first byte of slot i. OFD locks belong to an open file description, not
 * to a process, so one process may own several slots through several
 * handles, closing one handle never drops another's slot, and the kernel
 * drops the lock when the last descriptor of the description is closed,
 * including when the process dies by kill -9. Liveness is therefore never
 * decided from a pid: the pid in a slot is for display only, and a slot
 * whose byte is not locked belongs to a reader that has gone, whatever its
 * pid says and whoever now has that pid.
 *
 * Every party maps the table MAP_SHARED. A slot's owner is the only one
 * that writes it while it owns it; a sweeper writes a slot only while it
 * holds the slot's lock itself, that is while no reader owns it. pid and
 * pinned_epoch are accessed with __atomic loads and stores (seq_cst for
 * pinned_epoch), as native 64-bit words: the project runs on little-endian
 * hosts only, where that is the on-disk little-endian encoding.
 *
 * Ordering protocol (why a writer may free space without ever blocking a
 * reader):
 *
 *   reader: claim a slot; pin(P) (seq_cst store); then read the meta slot
 *           it will use, whose epoch U >= P (P is an epoch it saw before,
 *           or the epoch it just read, re-read after the pin).
 *   writer: publish the meta of epoch W; then scan the slots (seq_cst loads)
 *           for the oldest pin, O (UINT64_MAX when none pins).
 *
 * In the single total order of seq_cst operations, either the writer's scan
 * sees the pin (so O <= P <= U), or the scan came before the pin's store,
 * hence the publish of W came before the reader's meta read, and U >= W.
 * A range retired at epoch R (no longer referenced from epoch R on) is
 * freed only when O >= R, and R <= W, so in both cases U >= R: no reader
 * still uses an epoch that references the range. A sweeper that takes a
 * free slot's lock and releases it orders itself before the next owner's
 * claim in the same way (the lock operations are full barriers).
 *
 * Creation is idempotent and lock-free: whoever opens with
 * LAYOUT_LOCKFILE_CREATE extends the file to its full size if it is
 * shorter (never shrinking it), and writes the header if its magic is
 * still zero, storing the magic last (release), so that concurrent
 * creators write the same bytes and an opener that sees the magic sees
 * the whole header.
 *
 * The OFD lock the coordinator holds on byte 0 is the writer lock and has
 * nothing to do with the slots (docs/LOCKFILE.md, section 6.1); being an OFD
 * lock, closing a handle of this module in the writer's process does not
 * drop it.
 *
 * A handle is not thread-safe: calls on one handle must not run
 * concurrently, except layout_lockfile_pin(), which is one atomic store
 * and may be called from any thread while no claim or close runs. Do not
 * use a handle in a child after fork(): the child shares the open file
 * description and with it the slot's lock.
 */

#include <errno.h>
#include <stdint.h>

#include "layout/layout.h"

/* ---- Constants --------------------------------------------------------- */

/* The writer lock's holder writes its pid here as a u64 (section 6.1). */
#define LAYOUT_LOCK_WRITER_PID_OFFSET 8u
#define LAYOUT_LOCK_HEADER_OFFSET 64u
#define LAYOUT_LOCK_HEADER_SIZE 64u
#define LAYOUT_LOCK_MAGIC 0x4B434C53u /* bytes 53 4C 43 4B, ASCII "SLCK" */
#define LAYOUT_LOCK_VERSION 1u
#define LAYOUT_LOCK_SLOTS_OFFSET 4096u
#define LAYOUT_LOCK_SLOT_SIZE 64u
#define LAYOUT_LOCK_SLOT_COUNT 1024u
#define LAYOUT_LOCK_FILE_SIZE (LAYOUT_LOCK_SLOTS_OFFSET + LAYOUT_LOCK_SLOT_SIZE * LAYOUT_LOCK_SLOT_COUNT)

/* The mode the lock file is created with, whatever the umask: readers of
 * the store's group claim slots in it, so they write it; nobody else. */
#define LAYOUT_LOCK_FILE_MODE 0660

/* Opens the lock file read-write, creating it with LAYOUT_LOCK_FILE_MODE
 * (set with fchmod, so the umask does not take the group's write away)
 * when it does not exist; an existing file keeps the mode it has. Returns
 * the descriptor (O_CLOEXEC) or -errno. Used by the coordinator (the
 * writer lock) and by every writable layout_lockfile_open(). */
int layout_lockfile_create_fd(const char *lock_path);

/* Returned by layout_lockfile_claim() when every slot is owned. */
#define LAYOUT_LOCK_EFULL (-EUSERS)

/* ---- Byte layouts (documentation and offsets only) --------------------- */

/* At file offset 64; file bytes 0..63 are left to the writer lock (its
 * holder's pid at LAYOUT_LOCK_WRITER_PID_OFFSET). */
struct layout_lock_header_disk {
	uint32_t magic;              /*   0 "SLCK" */
	uint32_t version;            /*   4 = 1 */
	uint32_t slot_size;          /*   8 = 64 */
	uint32_t slot_count;         /*  12 = 1024 */
	uint64_t slots_offset;       /*  16 = 4096 */
	uint8_t reserved[40];        /*  24 zero */
};
_Static_assert(sizeof(struct layout_lock_header_disk) == LAYOUT_LOCK_HEADER_SIZE, "lock header");

/* Slot i is at file offset 4096 + 64 * i; its OFD lock covers its byte 0. */
struct layout_lock_slot_disk {
	int64_t pid;                 /*   0 owner's pid, 0 = never claimed or cleared */
	uint64_t pinned_epoch;       /*   8 oldest epoch the owner may use, 0 = none */
	uint64_t claims;             /*  16 incremented by every claim; informational */
	uint8_t reserved[40];        /*  24 zero */
};
_Static_assert(sizeof(struct layout_lock_slot_disk) == LAYOUT_LOCK_SLOT_SIZE, "lock slot");

/* ---- API ---------------------------------------------------------------- */

struct layout_lockfile;

enum layout_lockfile_flags {
	/* Create the file if missing (mode 0644) and initialise it if it is
	 * short or its header is still zero. Opens read-write. */
	LAYOUT_LOCKFILE_CREATE = 1u << 0,
	/* Open and map read-only: only layout_lockfile_foreach() may be used
	 * (for tools). Ignored with LAYOUT_LOCKFILE_CREATE. */
	LAYOUT_LOCKFILE_RDONLY = 1u << 1,
};

/*
 * Opens (with LAYOUT_LOCKFILE_CREATE, creates or completes) the lock file
 * at lock_path, checks its header and maps its slot table.
 *
 * flags: a combination of enum layout_lockfile_flags.
 * pb:    when not NULL, receives the offset and reason of a
 *        SUTRA_ECORRUPT or SUTRA_EVERSION.
 * out:   receives the handle, owned by the caller and freed with
 *        layout_lockfile_close().
 *
 * Returns 0; -ENOENT when the file does not exist (without CREATE);
 * -ENODATA, without CREATE, when the file has no table yet (shorter than
 * LAYOUT_LOCK_FILE_SIZE and zero, or with an all-zero header: a file being
 * created, or one written by a coordinator that predates the table);
 * SUTRA_ECORRUPT for a header that breaks docs/LOCKFILE.md (wrong magic,
 * geometry, non-zero reserved bytes, a short file holding data);
 * SUTRA_EVERSION for a version other than 1; -ENOSPC (with a sentence in
 * pb) when a writable open cannot allocate the whole file (it is
 * allocated before anything writes through the mapping, so a full disk
 * is an error, never a SIGBUS); -ENOMEM; or another -errno of open,
 * fstat, fallocate or mmap.
 */
int layout_lockfile_open(const char *lock_path, unsigned flags, struct layout_lockfile **out,
			 struct sutra_detail *pb);

/* Clears and releases the slot the handle claimed (if any), unmaps and
 * closes the file. Accepts NULL. */
void layout_lockfile_close(struct layout_lockfile *lf);

/* ---- Reader side -------------------------------------------------------- */

/*
 * Claims a free slot for this handle: takes the OFD lock of the first slot
 * whose lock is free (a slot left by a dead reader is reused), resets its
 * pin to 0, counts the claim and writes the caller's pid. The slot stays
 * owned until layout_lockfile_close() or the death of every process
 * sharing the handle's open file description.
 *
 * slot: receives the slot index (0..1023).
 * Returns 0; LAYOUT_LOCK_EFULL (-EUSERS) when all 1024 slots are owned;
 * -EALREADY when this handle already owns a slot; -EBADF for a read-only
 * handle; another -errno of fcntl.
 */
int layout_lockfile_claim(struct layout_lockfile *lf, uint32_t *slot);

/*
 * Stores epoch into the claimed slot's pinned_epoch (seq_cst); 0 pins
 * nothing. Call it before reading the meta slot to be used, with an epoch
 * no newer than the one that will be used (see the protocol above). The
 * handle must own a slot (asserted).
 */
void layout_lockfile_pin(struct layout_lockfile *lf, uint64_t epoch);

/* ---- Writer side ------------------------------------------------------- */

/*
 * Sweeps and scans the table. A slot that holds a pid or a pin but whose
 * lock is free (its reader is gone) is taken for a moment and cleared (pin,
 * then pid). Among owned slots, including this handle's own, returns the
 * smallest non-zero pinned_epoch.
 *
 * oldest: receives that epoch, or UINT64_MAX when no slot pins.
 * swept:  receives the number of slots cleared (may be NULL).
 * Returns 0; -EBADF for a read-only handle; another -errno of fcntl.
 */
int layout_lockfile_oldest_pinned(struct layout_lockfile *lf, uint64_t *oldest, uint32_t *swept);

/*
 * The writer lock itself (an OFD lock on byte 0) is taken by the writer on
 * its own descriptor of the lock file, not through a handle: these two
 * functions only keep the holder's pid where a refused writer can name it
 * (F_OFD_GETLK cannot).
 *
 * layout_lockfile_write_writer_pid() stores pid as a little-endian u64 at
 * LAYOUT_LOCK_WRITER_PID_OFFSET of the file open on fd; call it while
 * holding the writer lock. Returns 0, -EIO on a short write, or -errno of
 * pwrite.
 *
 * layout_lockfile_read_writer_pid() returns the pid stored there, or 0 when
 * none can be read (a file too short, an I/O error, or nobody wrote one).
 * The value is for messages only: the lock, not the pid, says whether a
 * writer is alive.
 */
int layout_lockfile_write_writer_pid(int fd, int64_t pid);
int64_t layout_lockfile_read_writer_pid(int fd);

/* ---- Tools ---------------------------------------------------------------- */

/*
 * Calls fn for each slot in use, in index order: owned (alive = 1) or
 * holding a pid or a pin (alive = 0: its reader is gone and a sweep will
 * clear it). Liveness is tested with F_OFD_GETLK and changes nothing, so
 * a read-only handle is enough. The values are a racy snapshot: readers
 * come and go during the walk.
 *
 * Returns 0 after the last slot; the first non-zero value fn returns,
 * which stops the walk; or -errno of fcntl.
 */
int layout_lockfile_foreach(struct layout_lockfile *lf,
			    int (*fn)(void *arg, uint32_t slot, int64_t pid, uint64_t pinned,
				      int alive),
			    void *arg);

#endif /* LAYOUT_LOCKFILE_H */
