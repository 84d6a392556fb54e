/* SPDX-License-Identifier: MIT */
/* The writer's I/O backends (io_uring, pwrite/fdatasync) behind one small interface, with a fault-injection seam. */
#ifndef COORDINATOR_IO_H
#define COORDINATOR_IO_H

/*
 * A commit is a handful of positioned writes (the commit block, the meta
 * slot) optionally followed by one fdatasync. coord_io_submit() performs
 * them all and returns only when every one has completed:
 *
 *  - io_uring: the writes and the fdatasync are linked (IOSQE_IO_LINK) in
 *    one submission, so the fdatasync starts only after the writes
 *    succeeded and the whole commit costs one system call;
 *  - pwrite: pwrite() each buffer, then fdatasync().
 *
 * Any error or short write is reported as a negative errno (a short write
 * as -EIO) and is fatal for the caller: the writer never retries a failed
 * fdatasync, because the kernel may have dropped the dirty pages it failed
 * to write (DESIGN.md, guarantee 4).
 *
 * LD_PRELOAD fault injectors cannot see io_uring submissions, so faults are
 * injected here, in front of both backends: a spec "KIND:N[,KIND:N...]"
 * makes the Nth write (KIND "write": fails with -EIO after the previous
 * writes of that commit were done), the Nth write cut short ("short": half
 * of it is written), or the Nth fdatasync ("sync": the writes are done, the
 * sync is not, -EIO) fail. Counting starts at 1 and spans the process.
 */

#include <stddef.h>
#include <stdint.h>

enum coord_io_kind {
	COORD_IO_AUTO = 0,  /* io_uring, or pwrite when io_uring cannot start */
	COORD_IO_URING = 1,
	COORD_IO_SYNC = 2,
};

struct coord_io_write {
	uint64_t offset;
	const void *buf;
	size_t len;
};

struct coord_io;

/* Opens a backend of the given kind on fd (not owned). With COORD_IO_AUTO a
 * failing io_uring setup falls back to pwrite and *fell_back_rc holds the
 * setup error (0 otherwise). Returns 0, -EINVAL (bad fault spec), -ENOMEM,
 * or the io_uring setup error when COORD_IO_URING was asked for. */
int coord_io_open(int fd, enum coord_io_kind kind, const char *fault_spec, struct coord_io **out,
		  int *fell_back_rc);
void coord_io_close(struct coord_io *io);

/* COORD_IO_URING or COORD_IO_SYNC: the backend in use. */
enum coord_io_kind coord_io_kind(const struct coord_io *io);
const char *coord_io_name(const struct coord_io *io);

/* Performs the n writes and, when sync is non-zero, an fdatasync after
 * them. Returns 0 or a negative errno; on error the file holds an unknown
 * subset of the writes. */
int coord_io_submit(struct coord_io *io, const struct coord_io_write *w, unsigned n, int sync);

/* The longest single write coord_io_submit() takes. */
#define COORD_IO_MAX_WRITE (1u << 30)

/* Writes len bytes at offset in pieces of at most piece bytes (0 or more
 * than COORD_IO_MAX_WRITE: COORD_IO_MAX_WRITE), one coord_io_submit()
 * each, without a sync: for blocks that may exceed one write (a merged
 * index segment can pass 2 GiB). Returns 0 or a negative errno. */
int coord_io_write_long(struct coord_io *io, uint64_t offset, const void *buf, uint64_t len,
			uint64_t piece);

/* fdatasync alone (the periodic sync of relaxed mode, sync requests). */
int coord_io_sync(struct coord_io *io);

#endif /* COORDINATOR_IO_H */
