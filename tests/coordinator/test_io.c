/* SPDX-License-Identifier: MIT */
/* The writer's I/O backends: both write what they are given, and the fault seam fails them as specified. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coordinator/io.h"
#include "tests/common/tcheck.h"

static char path[64];
static int fd = -1;

static void setup(void)
{
	snprintf(path, sizeof path, "/tmp/sutra-io-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
}

static void teardown(void)
{
	close(fd);
	unlink(path);
}

static void check_bytes(uint64_t off, const void *want, size_t len)
{
	unsigned char *got = malloc(len);
	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(pread(fd, got, len, (off_t)off), (ssize_t)len);
	ck_assert_mem_eq(got, want, len);
	free(got);
}

static uint64_t file_size(void)
{
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	return (uint64_t)st.st_size;
}

/* Both backends: the writes land where asked, with and without sync. */
static void write_and_read(enum coord_io_kind kind)
{
	struct coord_io *io;
	unsigned char a[8192], b[100];
	memset(a, 0xA5, sizeof a);
	memset(b, 0x5A, sizeof b);
	ck_assert_ok(coord_io_open(fd, kind, NULL, &io, NULL));
	ck_assert_int_eq(coord_io_kind(io), kind);
	struct coord_io_write w[2] = { { .offset = 4096, .buf = a, .len = sizeof a },
				       { .offset = 0, .buf = b, .len = sizeof b } };
	ck_assert_ok(coord_io_submit(io, w, 2, 1));
	check_bytes(4096, a, sizeof a);
	check_bytes(0, b, sizeof b);
	ck_assert_uint_eq(file_size(), 4096 + sizeof a);
	ck_assert_ok(coord_io_submit(io, w + 1, 1, 0));
	ck_assert_ok(coord_io_sync(io));
	coord_io_close(io);
}

START_TEST(test_io_uring_writes)
{
	write_and_read(COORD_IO_URING);
}
END_TEST

START_TEST(test_io_pwrite_writes)
{
	write_and_read(COORD_IO_SYNC);
}
END_TEST

START_TEST(test_io_auto_picks_uring_here)
{
	struct coord_io *io;
	int fell = 1;
	ck_assert_ok(coord_io_open(fd, COORD_IO_AUTO, NULL, &io, &fell));
	/* io_uring works on these machines (DESIGN.md): no fallback. */
	ck_assert_int_eq(fell, 0);
	ck_assert_int_eq(coord_io_kind(io), COORD_IO_URING);
	ck_assert_str_eq(coord_io_name(io), "io_uring");
	coord_io_close(io);
}
END_TEST

START_TEST(test_io_rejects_bad_fault_spec)
{
	struct coord_io *io;
	static const char *const bad[] = { "sync", "sync:", "sync:0", "nope:1", "sync:1,",
					   "write:x", "sync:-1", "short:2;sync:1" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(coord_io_open(fd, COORD_IO_SYNC, bad[i], &io, NULL) == -EINVAL,
			      "spec '%s' accepted", bad[i]);
	ck_assert_ok(coord_io_open(fd, COORD_IO_SYNC, "write:3,sync:2", &io, NULL));
	coord_io_close(io);
}
END_TEST

/* The Nth fdatasync fails: the writes are done, the sync is reported failed. */
static void sync_fault(enum coord_io_kind kind)
{
	struct coord_io *io;
	unsigned char a[64];
	memset(a, 7, sizeof a);
	struct coord_io_write w = { .offset = 0, .buf = a, .len = sizeof a };
	ck_assert_ok(coord_io_open(fd, kind, "sync:2", &io, NULL));
	ck_assert_ok(coord_io_submit(io, &w, 1, 1));
	w.offset = 64;
	ck_assert_err(coord_io_submit(io, &w, 1, 1), -EIO);
	check_bytes(64, a, sizeof a);
	ck_assert_ok(coord_io_sync(io)); /* only the 2nd one fails */
	coord_io_close(io);
}

START_TEST(test_io_sync_fault_uring)
{
	sync_fault(COORD_IO_URING);
}
END_TEST

START_TEST(test_io_sync_fault_pwrite)
{
	sync_fault(COORD_IO_SYNC);
}
END_TEST

/* The Nth write fails: the writes before it in the same submission are
 * done, it and the ones after are not. */
static void write_fault(enum coord_io_kind kind)
{
	struct coord_io *io;
	unsigned char a[64], b[64];
	memset(a, 1, sizeof a);
	memset(b, 2, sizeof b);
	struct coord_io_write w[2] = { { .offset = 0, .buf = a, .len = sizeof a },
				       { .offset = 64, .buf = b, .len = sizeof b } };
	ck_assert_ok(coord_io_open(fd, kind, "write:2", &io, NULL));
	ck_assert_err(coord_io_submit(io, w, 2, 1), -EIO);
	check_bytes(0, a, sizeof a);
	ck_assert_uint_eq(file_size(), 64);
	coord_io_close(io);
}

START_TEST(test_io_write_fault_uring)
{
	write_fault(COORD_IO_URING);
}
END_TEST

START_TEST(test_io_write_fault_pwrite)
{
	write_fault(COORD_IO_SYNC);
}
END_TEST

/* A block longer than one write goes in pieces (a merged segment passed
 * 2 GiB and a single write of it was refused with -EINVAL, which stopped
 * the coordinator): with 4 KiB pieces, 10 KiB takes three writes, so a
 * fault on the third write shows; without it every byte lands. */
static void long_write(enum coord_io_kind kind)
{
	struct coord_io *io;
	unsigned char a[10240];
	for (size_t i = 0; i < sizeof a; i++)
		a[i] = (unsigned char)(i * 7);
	ck_assert_ok(coord_io_open(fd, kind, "write:3", &io, NULL));
	ck_assert_err(coord_io_write_long(io, 0, a, sizeof a, 4096), -EIO);
	ck_assert_uint_eq(file_size(), 8192);
	coord_io_close(io);
	ck_assert_ok(coord_io_open(fd, kind, NULL, &io, NULL));
	ck_assert_ok(coord_io_write_long(io, 4096, a, sizeof a, 4096));
	check_bytes(4096, a, sizeof a);
	/* One write over the limit is refused, not cut. */
	struct coord_io_write w = { .offset = 0, .buf = a, .len = (size_t)COORD_IO_MAX_WRITE + 1 };
	ck_assert_err(coord_io_submit(io, &w, 1, 0), -EINVAL);
	coord_io_close(io);
}

START_TEST(test_io_long_write_uring)
{
	long_write(COORD_IO_URING);
}
END_TEST

START_TEST(test_io_long_write_pwrite)
{
	long_write(COORD_IO_SYNC);
}
END_TEST

/* The Nth write is cut short: half of it reaches the file, -EIO. */
static void short_fault(enum coord_io_kind kind)
{
	struct coord_io *io;
	unsigned char a[128];
	memset(a, 3, sizeof a);
	struct coord_io_write w = { .offset = 0, .buf = a, .len = sizeof a };
	ck_assert_ok(coord_io_open(fd, kind, "short:1", &io, NULL));
	ck_assert_err(coord_io_submit(io, &w, 1, 1), -EIO);
	ck_assert_uint_eq(file_size(), 64);
	ck_assert_ok(coord_io_submit(io, &w, 1, 1));
	ck_assert_uint_eq(file_size(), 128);
	coord_io_close(io);
}

START_TEST(test_io_short_fault_uring)
{
	short_fault(COORD_IO_URING);
}
END_TEST

START_TEST(test_io_short_fault_pwrite)
{
	short_fault(COORD_IO_SYNC);
}
END_TEST

/* A real error from the kernel (not injected) comes back as -errno: a
 * descriptor opened read-only cannot be written. */
static void real_error(enum coord_io_kind kind)
{
	struct coord_io *io;
	unsigned char a[16] = { 0 };
	int ro = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(ro, 0);
	struct coord_io_write w = { .offset = 0, .buf = a, .len = sizeof a };
	ck_assert_ok(coord_io_open(ro, kind, NULL, &io, NULL));
	ck_assert_err(coord_io_submit(io, &w, 1, 1), -EBADF);
	coord_io_close(io);
	close(ro);
}

START_TEST(test_io_real_error_uring)
{
	real_error(COORD_IO_URING);
}
END_TEST

START_TEST(test_io_real_error_pwrite)
{
	real_error(COORD_IO_SYNC);
}
END_TEST

TCHECK_MAIN_FIXTURE("coordinator", "io", 0, setup, teardown, test_io_uring_writes,
		    test_io_pwrite_writes, test_io_auto_picks_uring_here,
		    test_io_rejects_bad_fault_spec, test_io_sync_fault_uring,
		    test_io_sync_fault_pwrite, test_io_write_fault_uring,
		    test_io_write_fault_pwrite, test_io_short_fault_uring,
		    test_io_long_write_uring, test_io_long_write_pwrite,
		    test_io_short_fault_pwrite, test_io_real_error_uring,
		    test_io_real_error_pwrite)
