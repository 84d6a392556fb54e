/* SPDX-License-Identifier: MIT */
/* The reader-slot table of the lock file: creation, claims, pins, sweeping of dead readers. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "layout/lockfile.h"
#include "tests/common/tcheck.h"
#include "util/endian.h"

static char dir[64];
static char path[128];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/sutra-lockfile-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/storage.dat.lock", dir);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

static struct layout_lockfile *open_ok(unsigned flags)
{
	struct layout_lockfile *lf = NULL;
	int rc = layout_lockfile_open(path, flags, &lf, NULL);

	ck_assert_msg(rc == 0, "open gave %d (%s)", rc, sutra_strerror(rc));
	ck_assert_ptr_nonnull(lf);
	return lf;
}

static void read_file(unsigned char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, len, 0), (ssize_t)len);
	close(fd);
}

static void write_at(uint64_t off, const void *p, size_t len)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, p, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static uint64_t file_size(void)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

/* One slot as seen by layout_lockfile_foreach. */
struct seen {
	uint32_t n;
	uint32_t slot[8];
	int64_t pid[8];
	uint64_t pinned[8];
	int alive[8];
};

static int collect(void *arg, uint32_t slot, int64_t pid, uint64_t pinned, int alive)
{
	struct seen *s = arg;

	ck_assert_uint_lt(s->n, 8);
	s->slot[s->n] = slot;
	s->pid[s->n] = pid;
	s->pinned[s->n] = pinned;
	s->alive[s->n] = alive;
	s->n++;
	return 0;
}

static struct seen scan(struct layout_lockfile *lf)
{
	struct seen s = { 0 };

	ck_assert_ok(layout_lockfile_foreach(lf, collect, &s));
	return s;
}

static void oldest_is(struct layout_lockfile *lf, uint64_t want_oldest, uint32_t want_swept)
{
	uint64_t oldest = 0;
	uint32_t swept = 12345;

	ck_assert_ok(layout_lockfile_oldest_pinned(lf, &oldest, &swept));
	ck_assert_uint_eq(oldest, want_oldest);
	ck_assert_uint_eq(swept, want_swept);
}

/* Reads a u32 from fd, waiting at most 10 s; -1 on timeout or EOF. */
static int64_t read_u32(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint32_t v;

	if (poll(&p, 1, 10000) != 1 || read(fd, &v, sizeof v) != (ssize_t)sizeof v)
		return -1;
	return v;
}

/*
 * Forks a reader process: it opens its own handle, claims a slot, pins
 * epoch, writes the slot index to the pipe, then either exits at once
 * without closing the handle (linger = 0) or waits to be killed.
 */
static pid_t spawn_reader(uint64_t epoch, int linger, uint32_t *slot)
{
	int p[2];
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct layout_lockfile *lf;
		uint32_t s;

		close(p[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
		if (layout_lockfile_open(path, LAYOUT_LOCKFILE_CREATE, &lf, NULL) ||
		    layout_lockfile_claim(lf, &s))
			_exit(3);
		layout_lockfile_pin(lf, epoch);
		if (write(p[1], &s, sizeof s) != (ssize_t)sizeof s)
			_exit(4);
		if (!linger)
			_exit(0); /* no close: the kernel drops the lock */
		for (;;)
			pause();
	}
	close(p[1]);
	int64_t v = read_u32(p[0]);
	close(p[0]);
	ck_assert_msg(v >= 0, "reader child did not report a slot");
	*slot = (uint32_t)v;
	return pid;
}

START_TEST(test_lockfile_create_idempotent)
{
	struct layout_lockfile *lf = NULL;
	unsigned char first[LAYOUT_LOCK_FILE_SIZE], again[LAYOUT_LOCK_FILE_SIZE];

	/* Without CREATE a missing file is reported as such. */
	ck_assert_err(layout_lockfile_open(path, 0, &lf, NULL), -ENOENT);
	ck_assert_ptr_null(lf);

	lf = open_ok(LAYOUT_LOCKFILE_CREATE);
	ck_assert_uint_eq(file_size(), 4096 + 64 * 1024);
	read_file(first, sizeof first);
	ck_assert_uint_eq(util_get_le32(first + 64), 0x4B434C53u);
	ck_assert_int_eq(memcmp(first + 64, "SLCK", 4), 0);
	ck_assert_uint_eq(util_get_le32(first + 68), 1);
	ck_assert_uint_eq(util_get_le32(first + 72), 64);
	ck_assert_uint_eq(util_get_le32(first + 76), 1024);
	ck_assert_uint_eq(util_get_le64(first + 80), 4096);
	for (size_t i = 88; i < sizeof first; i++)
		ck_assert_msg(first[i] == 0, "byte %zu is %u", i, first[i]);

	/* Opening again, with or without CREATE or read-only, changes nothing. */
	struct layout_lockfile *b = open_ok(LAYOUT_LOCKFILE_CREATE);
	struct layout_lockfile *c = open_ok(0);
	struct layout_lockfile *d = open_ok(LAYOUT_LOCKFILE_RDONLY);
	read_file(again, sizeof again);
	ck_assert_int_eq(memcmp(first, again, sizeof first), 0);
	ck_assert_uint_eq(file_size(), LAYOUT_LOCK_FILE_SIZE);

	/* Bytes 0..63 belong to the writer lock: whatever is there is ignored. */
	write_at(0, "writer", 6);
	layout_lockfile_close(open_ok(0));

	layout_lockfile_close(d);
	layout_lockfile_close(c);
	layout_lockfile_close(b);
	layout_lockfile_close(lf);
	layout_lockfile_close(NULL);
}
END_TEST

START_TEST(test_lockfile_old_empty_file)
{
	struct layout_lockfile *lf = NULL;

	/* What a coordinator without the table leaves: an empty file. */
	write_at(0, "", 0);
	ck_assert_uint_eq(file_size(), 0);
	ck_assert_err(layout_lockfile_open(path, 0, &lf, NULL), -ENODATA);
	ck_assert_err(layout_lockfile_open(path, LAYOUT_LOCKFILE_RDONLY, &lf, NULL), -ENODATA);
	ck_assert_ptr_null(lf);
	/* A full-size file whose header is still zero: a creator is at work. */
	ck_assert_int_eq(truncate(path, LAYOUT_LOCK_FILE_SIZE), 0);
	ck_assert_err(layout_lockfile_open(path, 0, &lf, NULL), -ENODATA);
	/* A half-written header (magic last) is completed, not refused. */
	unsigned char v1[4] = { 1, 0, 0, 0 };
	write_at(68, v1, 4);
	ck_assert_err(layout_lockfile_open(path, 0, &lf, NULL), -ENODATA);
	lf = open_ok(LAYOUT_LOCKFILE_CREATE);
	layout_lockfile_close(lf);
	layout_lockfile_close(open_ok(0));
}
END_TEST

START_TEST(test_lockfile_claim_distinct)
{
	struct layout_lockfile *a = open_ok(LAYOUT_LOCKFILE_CREATE);
	struct layout_lockfile *b = open_ok(LAYOUT_LOCKFILE_CREATE);
	struct layout_lockfile *ro = open_ok(LAYOUT_LOCKFILE_RDONLY);
	uint32_t sa = 999, sb = 999, sx = 999;

	ck_assert_ok(layout_lockfile_claim(a, &sa));
	ck_assert_ok(layout_lockfile_claim(b, &sb));
	ck_assert_uint_eq(sa, 0);
	ck_assert_uint_eq(sb, 1);
	ck_assert_err(layout_lockfile_claim(a, &sx), -EALREADY);
	ck_assert_err(layout_lockfile_claim(ro, &sx), -EBADF);
	ck_assert_uint_eq(sx, 999);

	layout_lockfile_pin(a, 4);
	struct seen s = scan(ro);
	ck_assert_uint_eq(s.n, 2);
	ck_assert_uint_eq(s.slot[0], 0);
	ck_assert_uint_eq(s.slot[1], 1);
	ck_assert_int_eq(s.pid[0], getpid());
	ck_assert_int_eq(s.pid[1], getpid());
	ck_assert_uint_eq(s.pinned[0], 4);
	ck_assert_uint_eq(s.pinned[1], 0);
	ck_assert_int_eq(s.alive[0], 1);
	ck_assert_int_eq(s.alive[1], 1);
	/* A handle sees its own slot as alive too. */
	s = scan(a);
	ck_assert_uint_eq(s.n, 2);
	ck_assert_int_eq(s.alive[0], 1);

	/* Each claim is counted in the slot. */
	unsigned char slot0[64];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(pread(fd, slot0, 64, 4096), 64);
	close(fd);
	ck_assert_uint_eq(util_get_le64(slot0 + 0), (uint64_t)getpid());
	ck_assert_uint_eq(util_get_le64(slot0 + 8), 4);
	ck_assert_uint_eq(util_get_le64(slot0 + 16), 1);

	layout_lockfile_close(ro);
	layout_lockfile_close(b);
	layout_lockfile_close(a);
}
END_TEST

START_TEST(test_lockfile_pin_oldest)
{
	struct layout_lockfile *w = open_ok(LAYOUT_LOCKFILE_CREATE);
	struct layout_lockfile *r[3];
	uint32_t s;

	oldest_is(w, UINT64_MAX, 0);
	for (int i = 0; i < 3; i++) {
		r[i] = open_ok(LAYOUT_LOCKFILE_CREATE);
		ck_assert_ok(layout_lockfile_claim(r[i], &s));
		ck_assert_uint_eq(s, (uint32_t)i);
	}
	/* Claimed but not pinning: nothing is held back. */
	oldest_is(w, UINT64_MAX, 0);
	layout_lockfile_pin(r[0], 10);
	layout_lockfile_pin(r[1], 7);
	oldest_is(w, 7, 0);
	layout_lockfile_pin(r[1], 0);
	oldest_is(w, 10, 0);
	layout_lockfile_pin(r[2], 11);
	layout_lockfile_pin(r[0], 12);
	oldest_is(w, 11, 0);
	/* The scanning handle's own slot counts as well. */
	ck_assert_ok(layout_lockfile_claim(w, &s));
	ck_assert_uint_eq(s, 3);
	layout_lockfile_pin(w, 2);
	oldest_is(w, 2, 0);
	layout_lockfile_pin(w, 0);
	oldest_is(w, 11, 0);
	/* A read-only handle cannot sweep. */
	struct layout_lockfile *ro = open_ok(LAYOUT_LOCKFILE_RDONLY);
	uint64_t o = 5;
	ck_assert_err(layout_lockfile_oldest_pinned(ro, &o, NULL), -EBADF);
	ck_assert_uint_eq(o, 5);
	layout_lockfile_close(ro);
	for (int i = 0; i < 3; i++)
		layout_lockfile_close(r[i]);
	oldest_is(w, UINT64_MAX, 0);
	layout_lockfile_close(w);
}
END_TEST

START_TEST(test_lockfile_close_releases)
{
	struct layout_lockfile *w = open_ok(LAYOUT_LOCKFILE_CREATE);
	struct layout_lockfile *a = open_ok(LAYOUT_LOCKFILE_CREATE);
	struct layout_lockfile *b = open_ok(LAYOUT_LOCKFILE_CREATE);
	uint32_t s;

	ck_assert_ok(layout_lockfile_claim(a, &s));
	ck_assert_uint_eq(s, 0);
	ck_assert_ok(layout_lockfile_claim(b, &s));
	ck_assert_uint_eq(s, 1);
	layout_lockfile_pin(a, 5);
	layout_lockfile_pin(b, 6);
	oldest_is(w, 5, 0);
	/* Closing one handle drops only its own slot, in the same process. */
	layout_lockfile_close(a);
	oldest_is(w, 6, 0);
	struct seen seen = scan(w);
	ck_assert_uint_eq(seen.n, 1);
	ck_assert_uint_eq(seen.slot[0], 1);
	ck_assert_int_eq(seen.alive[0], 1);
	/* The freed slot is the first one claimed next. */
	a = open_ok(0);
	ck_assert_ok(layout_lockfile_claim(a, &s));
	ck_assert_uint_eq(s, 0);
	layout_lockfile_close(a);
	layout_lockfile_close(b);
	oldest_is(w, UINT64_MAX, 0);
	ck_assert_uint_eq(scan(w).n, 0);
	layout_lockfile_close(w);
}
END_TEST

START_TEST(test_lockfile_departed_child_swept)
{
	struct layout_lockfile *w = open_ok(LAYOUT_LOCKFILE_CREATE);
	uint32_t slot;
	int status;

	/* The child exits without closing its handle: its slot keeps the pid
	 * and the pin, but the kernel dropped the lock. */
	pid_t pid = spawn_reader(42, 0, &slot);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_uint_eq(slot, 0);

	struct seen s = scan(w);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_int_eq(s.pid[0], pid);
	ck_assert_uint_eq(s.pinned[0], 42);
	ck_assert_int_eq(s.alive[0], 0);

	oldest_is(w, UINT64_MAX, 1);
	oldest_is(w, UINT64_MAX, 0);
	ck_assert_uint_eq(scan(w).n, 0);
	layout_lockfile_close(w);
}
END_TEST

START_TEST(test_lockfile_killed_child_swept)
{
	uint32_t cslot, s;
	int status;

	/* Fork first, so that the child shares none of our descriptions. */
	pid_t pid = spawn_reader(3, 1, &cslot);
	struct layout_lockfile *w = open_ok(LAYOUT_LOCKFILE_CREATE);
	struct layout_lockfile *r = open_ok(LAYOUT_LOCKFILE_CREATE);
	ck_assert_uint_eq(cslot, 0);
	ck_assert_ok(layout_lockfile_claim(r, &s));
	ck_assert_uint_eq(s, 1);
	layout_lockfile_pin(r, 9);

	/* Alive: its pin holds the oldest epoch back and is not swept. */
	oldest_is(w, 3, 0);
	struct seen seen = scan(w);
	ck_assert_uint_eq(seen.n, 2);
	ck_assert_int_eq(seen.pid[0], pid);
	ck_assert_uint_eq(seen.pinned[0], 3);
	ck_assert_int_eq(seen.alive[0], 1);

	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	seen = scan(w);
	ck_assert_uint_eq(seen.n, 2);
	ck_assert_uint_eq(seen.slot[0], cslot);
	ck_assert_int_eq(seen.alive[0], 0);
	ck_assert_int_eq(seen.alive[1], 1);
	oldest_is(w, 9, 1);
	oldest_is(w, 9, 0);
	seen = scan(w);
	ck_assert_uint_eq(seen.n, 1);
	ck_assert_uint_eq(seen.slot[0], 1);

	/* Its slot is free for the next reader. */
	struct layout_lockfile *n = open_ok(0);
	ck_assert_ok(layout_lockfile_claim(n, &s));
	ck_assert_uint_eq(s, cslot);
	layout_lockfile_close(n);
	layout_lockfile_close(r);
	layout_lockfile_close(w);
}
END_TEST

START_TEST(test_lockfile_concurrent_create)
{
	enum { N = 8 };
	int go[2], rep[2];
	pid_t pids[N];
	int seen[N] = { 0 };

	/* N processes open the missing file with CREATE at the same moment
	 * and claim; every one must succeed, each with its own slot. */
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(rep), 0);
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			struct layout_lockfile *lf;
			uint32_t s;
			char c;

			close(go[1]);
			close(rep[0]);
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (read(go[0], &c, 1) != 0)
				_exit(5);
			int rc = layout_lockfile_open(path, LAYOUT_LOCKFILE_CREATE, &lf, NULL);
			if (rc == 0)
				rc = layout_lockfile_claim(lf, &s);
			uint32_t v = rc ? 0xFFFFFFFFu : s;
			if (write(rep[1], &v, sizeof v) != (ssize_t)sizeof v)
				_exit(4);
			for (;;)
				pause();
		}
	}
	close(go[0]);
	close(rep[1]);
	close(go[1]); /* all start */
	for (int i = 0; i < N; i++) {
		int64_t v = read_u32(rep[0]);
		ck_assert_msg(v >= 0 && v < N, "child reported %lld", (long long)v);
		ck_assert_int_eq(seen[v], 0);
		seen[v] = 1;
	}
	close(rep[0]);
	struct layout_lockfile *w = open_ok(0);
	ck_assert_uint_eq(file_size(), LAYOUT_LOCK_FILE_SIZE);
	for (int i = 0; i < N; i++) {
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
	oldest_is(w, UINT64_MAX, N);
	layout_lockfile_close(w);
}
END_TEST

START_TEST(test_lockfile_full)
{
	struct layout_lockfile *w = open_ok(LAYOUT_LOCKFILE_CREATE);
	uint32_t s = 4242;

	/* One foreign OFD lock over the whole table: every slot is owned. */
	int fd = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 4096,
			    .l_len = 64 * 1024 };
	ck_assert_int_eq(fcntl(fd, F_OFD_SETLK, &fl), 0);
	ck_assert_int_eq(layout_lockfile_claim(w, &s), LAYOUT_LOCK_EFULL);
	ck_assert_int_eq(LAYOUT_LOCK_EFULL, -EUSERS);
	ck_assert_uint_eq(s, 4242);
	/* Freeing one slot's byte frees exactly that slot. */
	struct flock one = { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 4096 + 64 * 517,
			     .l_len = 1 };
	ck_assert_int_eq(fcntl(fd, F_OFD_SETLK, &one), 0);
	ck_assert_ok(layout_lockfile_claim(w, &s));
	ck_assert_uint_eq(s, 517);
	close(fd);
	layout_lockfile_close(w);

	/* The same with 1024 real handles, when the descriptor limit allows. */
	struct rlimit rl;
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 1100 && rl.rlim_max >= 1100) {
		rl.rlim_cur = 1100;
		ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	if (rl.rlim_cur < 1100)
		return;
	static struct layout_lockfile *h[LAYOUT_LOCK_SLOT_COUNT + 1];
	for (uint32_t i = 0; i <= LAYOUT_LOCK_SLOT_COUNT; i++)
		h[i] = open_ok(0);
	for (uint32_t i = 0; i < LAYOUT_LOCK_SLOT_COUNT; i++) {
		ck_assert_ok(layout_lockfile_claim(h[i], &s));
		ck_assert_uint_eq(s, i);
	}
	ck_assert_err(layout_lockfile_claim(h[LAYOUT_LOCK_SLOT_COUNT], &s), -EUSERS);
	layout_lockfile_close(h[700]);
	ck_assert_ok(layout_lockfile_claim(h[LAYOUT_LOCK_SLOT_COUNT], &s));
	ck_assert_uint_eq(s, 700);
	for (uint32_t i = 0; i <= LAYOUT_LOCK_SLOT_COUNT; i++)
		if (i != 700)
			layout_lockfile_close(h[i]);
}
END_TEST

/* Opens the file as it is now: the result, with the problem's offset. */
static int open_rc(unsigned flags, uint64_t *off)
{
	struct layout_lockfile *lf = NULL;
	struct sutra_detail pb = { .offset = UINT64_MAX };
	int rc = layout_lockfile_open(path, flags, &lf, &pb);

	if (rc == 0)
		layout_lockfile_close(lf);
	else
		ck_assert_ptr_null(lf);
	if (rc == SUTRA_ECORRUPT || rc == SUTRA_EVERSION)
		ck_assert(pb.what[0] != 0);
	*off = pb.offset;
	return rc;
}

/* Recreates a good file, then overwrites len bytes at off. */
static void damage(uint64_t off, const void *p, size_t len)
{
	unlink(path);
	layout_lockfile_close(open_ok(LAYOUT_LOCKFILE_CREATE));
	write_at(off, p, len);
}

START_TEST(test_lockfile_corrupt_header)
{
	unsigned char b[8];
	uint64_t off;

	/* Wrong magic, with or without CREATE: never overwritten. */
	damage(64, "XLCK", 4);
	ck_assert_err(open_rc(0, &off), SUTRA_ECORRUPT);
	ck_assert_uint_eq(off, 64);
	ck_assert_err(open_rc(LAYOUT_LOCKFILE_CREATE, &off), SUTRA_ECORRUPT);
	ck_assert_err(open_rc(LAYOUT_LOCKFILE_RDONLY, &off), SUTRA_ECORRUPT);
	unsigned char back[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(pread(fd, back, 4, 64), 4);
	close(fd);
	ck_assert_int_eq(memcmp(back, "XLCK", 4), 0);

	/* A newer version. */
	util_put_le32(b, 2);
	damage(68, b, 4);
	ck_assert_err(open_rc(0, &off), SUTRA_EVERSION);
	ck_assert_uint_eq(off, 68);

	/* Geometry. */
	util_put_le32(b, 32);
	damage(72, b, 4);
	ck_assert_err(open_rc(0, &off), SUTRA_ECORRUPT);
	ck_assert_uint_eq(off, 72);
	util_put_le32(b, 1000);
	damage(76, b, 4);
	ck_assert_err(open_rc(LAYOUT_LOCKFILE_CREATE, &off), SUTRA_ECORRUPT);
	ck_assert_uint_eq(off, 76);
	util_put_le64(b, 8192);
	damage(80, b, 8);
	ck_assert_err(open_rc(0, &off), SUTRA_ECORRUPT);
	ck_assert_uint_eq(off, 80);

	/* Reserved header bytes and the rest of page 0 are zero. */
	damage(100, "x", 1);
	ck_assert_err(open_rc(0, &off), SUTRA_ECORRUPT);
	ck_assert_uint_eq(off, 100);
	damage(4095, "x", 1);
	ck_assert_err(open_rc(0, &off), SUTRA_ECORRUPT);
	ck_assert_uint_eq(off, 4095);

	/* A zero magic with a field that no creator writes is not a
	 * header being written: refused, not completed. */
	util_put_le32(b, 0);
	damage(64, b, 4);
	util_put_le32(b, 99);
	write_at(72, b, 4);
	ck_assert_err(open_rc(LAYOUT_LOCKFILE_CREATE, &off), SUTRA_ECORRUPT);
	ck_assert_uint_eq(off, 72);

	/* A file cut short with data in it. */
	damage(0, "", 0);
	ck_assert_int_eq(truncate(path, 5000), 0);
	ck_assert_err(open_rc(0, &off), SUTRA_ECORRUPT);
	ck_assert_uint_eq(off, 5000);
	/* CREATE extends it back and finds the header good. */
	ck_assert_ok(open_rc(LAYOUT_LOCKFILE_CREATE, &off));
	ck_assert_uint_eq(file_size(), LAYOUT_LOCK_FILE_SIZE);

	/* A larger file (never shrunk) is accepted. */
	ck_assert_int_eq(truncate(path, LAYOUT_LOCK_FILE_SIZE + 4096), 0);
	ck_assert_ok(open_rc(LAYOUT_LOCKFILE_CREATE, &off));
	ck_assert_uint_eq(file_size(), LAYOUT_LOCK_FILE_SIZE + 4096);

	/* Not a regular file. */
	unlink(path);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_lt(open_rc(0, &off), 0);
	rmdir(path);
}
END_TEST

START_TEST(test_lockfile_writer_pid_at_offset_8)
{
	unsigned char raw[16];
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	/* An empty file (a writer that has not written yet) names nobody. */
	ck_assert_ok(layout_lockfile_read_writer_pid(fd));
	/* The writer writes before the table exists; creating the table then
	 * keeps the pid, and the pid does not upset the header checks. */
	ck_assert_ok(layout_lockfile_write_writer_pid(fd, 4242));
	layout_lockfile_close(open_ok(LAYOUT_LOCKFILE_CREATE));
	layout_lockfile_close(open_ok(0));
	ck_assert_int_eq(layout_lockfile_read_writer_pid(fd), 4242);
	/* Little-endian u64 at bytes 8..15 (docs/LOCKFILE.md 6.1), the rest
	 * of the writer lock area untouched. */
	read_file(raw, sizeof raw);
	ck_assert_uint_eq(LAYOUT_LOCK_WRITER_PID_OFFSET, 8);
	ck_assert_uint_eq(util_get_le64(raw + 8), 4242);
	ck_assert_uint_eq(util_get_le64(raw), 0);
	/* A later writer overwrites it. */
	ck_assert_ok(layout_lockfile_write_writer_pid(fd, 77));
	ck_assert_int_eq(layout_lockfile_read_writer_pid(fd), 77);
	close(fd);
	/* A descriptor that cannot be read names nobody either. */
	ck_assert_ok(layout_lockfile_read_writer_pid(-1));
	ck_assert_err(layout_lockfile_write_writer_pid(-1, 1), -EBADF);
}
END_TEST

TCHECK_MAIN_FIXTURE("layout", "lockfile", 0, setup, teardown, test_lockfile_create_idempotent,
		    test_lockfile_old_empty_file, test_lockfile_claim_distinct,
		    test_lockfile_pin_oldest, test_lockfile_close_releases,
		    test_lockfile_departed_child_swept, test_lockfile_killed_child_swept,
		    test_lockfile_concurrent_create, test_lockfile_full,
		    test_lockfile_corrupt_header, test_lockfile_writer_pid_at_offset_8)
