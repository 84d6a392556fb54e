/* SPDX-License-Identifier: MIT */
/* I/O backends of the writer: io_uring with linked write and fdatasync, pwrite/fdatasync, and injected faults. */
#include "coordinator/io.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RING_DEPTH 16u
#define MAX_WRITES (RING_DEPTH - 1u)

enum fault_kind { FAULT_WRITE, FAULT_SHORT, FAULT_SYNC, FAULT_KINDS };

struct coord_io {
	int fd;
	enum coord_io_kind kind;
	struct io_uring ring;
	uint64_t faults[FAULT_KINDS]; /* 1-based index that fails; 0: none */
	uint64_t writes;              /* writes submitted so far */
	uint64_t syncs;               /* fdatasyncs submitted so far */
};

static int parse_faults(struct coord_io *io, const char *spec)
{
	static const char *const names[FAULT_KINDS] = { "write", "short", "sync" };

	if (!spec || !*spec)
		return 0;
	const char *p = spec;
	while (*p) {
		int k;
		size_t n = 0;
		for (k = 0; k < FAULT_KINDS; k++) {
			n = strlen(names[k]);
			if (strncmp(p, names[k], n) == 0 && p[n] == ':')
				break;
		}
		if (k == FAULT_KINDS)
			return -EINVAL;
		char *end;
		if (p[n + 1] < '0' || p[n + 1] > '9')
			return -EINVAL;
		errno = 0;
		unsigned long long v = strtoull(p + n + 1, &end, 10);
		if (errno || end == p + n + 1 || v == 0 || (*end && *end != ',') ||
		    (*end == ',' && !end[1]))
			return -EINVAL;
		io->faults[k] = v;
		p = *end ? end + 1 : end;
	}
	return 0;
}

int coord_io_open(int fd, enum coord_io_kind kind, const char *fault_spec, struct coord_io **out,
		  int *fell_back_rc)
{
	struct coord_io *io = calloc(1, sizeof *io);
	int rc;

	if (fell_back_rc)
		*fell_back_rc = 0;
	if (!io)
		return -ENOMEM;
	io->fd = fd;
	if ((rc = parse_faults(io, fault_spec))) {
		free(io);
		return rc;
	}
	if (kind == COORD_IO_SYNC) {
		io->kind = COORD_IO_SYNC;
	} else {
		rc = io_uring_queue_init(RING_DEPTH, &io->ring, 0);
		if (rc == 0) {
			io->kind = COORD_IO_URING;
		} else if (kind == COORD_IO_AUTO) {
			io->kind = COORD_IO_SYNC;
			if (fell_back_rc)
				*fell_back_rc = rc;
		} else {
			free(io);
			return rc;
		}
	}
	*out = io;
	return 0;
}

void coord_io_close(struct coord_io *io)
{
	if (!io)
		return;
	if (io->kind == COORD_IO_URING)
		io_uring_queue_exit(&io->ring);
	free(io);
}

enum coord_io_kind coord_io_kind(const struct coord_io *io)
{
	return io->kind;
}

const char *coord_io_name(const struct coord_io *io)
{
	return io->kind == COORD_IO_URING ? "io_uring" : "pwrite";
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const unsigned char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int sync_fd(int fd)
{
	return fdatasync(fd) < 0 ? -errno : 0;
}

/* One linked chain: every write, then (if sync) the fdatasync. A short
 * write is not retried: the link is broken at it (the kernel cancels the
 * rest with -ECANCELED) and the commit fails as a whole. */
static int uring_submit(struct coord_io *io, const struct coord_io_write *w, unsigned n, int sync)
{
	unsigned total = n + (sync ? 1u : 0u);
	int rc = 0;

	for (unsigned i = 0; i < total; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
		if (!sqe)
			return -EBUSY; /* cannot happen: the ring is empty between commits */
		if (i < n)
			io_uring_prep_write(sqe, io->fd, w[i].buf, (unsigned)w[i].len, w[i].offset);
		else
			io_uring_prep_fsync(sqe, io->fd, IORING_FSYNC_DATASYNC);
		sqe->user_data = i;
		if (i + 1 < total)
			sqe->flags |= IOSQE_IO_LINK;
	}
	int sub = io_uring_submit_and_wait(&io->ring, total);
	if (sub < 0)
		return sub;
	for (unsigned done = 0; done < total; done++) {
		struct io_uring_cqe *cqe;
		int wr = io_uring_wait_cqe(&io->ring, &cqe);
		if (wr < 0)
			return wr; /* the ring is unusable: fatal for the caller */
		unsigned i = (unsigned)cqe->user_data;
		int res = cqe->res;
		io_uring_cqe_seen(&io->ring, cqe);
		if (rc)
			continue;
		if (res < 0)
			rc = res;
		else if (i < n && (size_t)res != w[i].len)
			rc = -EIO;
	}
	return rc;
}

int coord_io_submit(struct coord_io *io, const struct coord_io_write *w, unsigned n, int sync)
{
	struct coord_io_write local[MAX_WRITES];
	int fault = 0;

	if (n > MAX_WRITES)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		if (w[i].len > COORD_IO_MAX_WRITE)
			return -EINVAL; /* longer ones: coord_io_write_long() */
		local[i] = w[i];
	}
	/* Injected faults: the commit stops at the failing write (the writes
	 * before it are done for real), or writes everything and skips the
	 * sync. Both look to the caller exactly like the real failure. */
	for (unsigned i = 0; i < n; i++) {
		uint64_t k = ++io->writes;
		if (k == io->faults[FAULT_WRITE]) {
			n = i;
			sync = 0;
			fault = -EIO;
			break;
		}
		if (k == io->faults[FAULT_SHORT]) {
			local[i].len /= 2;
			n = i + 1;
			sync = 0;
			fault = -EIO;
			break;
		}
	}
	if (sync && ++io->syncs == io->faults[FAULT_SYNC]) {
		sync = 0;
		fault = -EIO;
	}

	int rc = 0;
	if (io->kind == COORD_IO_URING) {
		if (n || sync)
			rc = uring_submit(io, local, n, sync);
	} else {
		for (unsigned i = 0; i < n && !rc; i++)
			rc = pwrite_all(io->fd, local[i].buf, local[i].len, local[i].offset);
		if (!rc && sync)
			rc = sync_fd(io->fd);
	}
	return rc ? rc : fault;
}

int coord_io_write_long(struct coord_io *io, uint64_t offset, const void *buf, uint64_t len,
			uint64_t piece)
{
	const unsigned char *p = buf;
	if (!piece || piece > COORD_IO_MAX_WRITE)
		piece = COORD_IO_MAX_WRITE;
	for (uint64_t done = 0; done < len;) {
		uint64_t n = len - done < piece ? len - done : piece;
		struct coord_io_write w = { .offset = offset + done, .buf = p + done, .len = (size_t)n };
		int rc = coord_io_submit(io, &w, 1, 0);
		if (rc)
			return rc;
		done += n;
	}
	return 0;
}

int coord_io_sync(struct coord_io *io)
{
	if (++io->syncs == io->faults[FAULT_SYNC])
		return -EIO;
	if (io->kind == COORD_IO_URING)
		return uring_submit(io, NULL, 0, 1);
	return sync_fd(io->fd);
}
