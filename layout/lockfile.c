/* SPDX-License-Identifier: MIT */
/* The reader-slot table of the lock file: creation, claiming with OFD locks, pins and sweeping; the writer's pid. */
#include "layout/lockfile.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/detail.h"
#include "util/endian.h"

/* Slots are read and written as native 64-bit words with __atomic
 * operations, which is the on-disk encoding only on a little-endian host. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the lock file's slot table is only supported on little-endian hosts"
#endif

/* Field offsets, from the start of the file (header) or of a slot. */
#define H_MAGIC (LAYOUT_LOCK_HEADER_OFFSET + 0u)
#define H_VERSION (LAYOUT_LOCK_HEADER_OFFSET + 4u)
#define H_SLOT_SIZE (LAYOUT_LOCK_HEADER_OFFSET + 8u)
#define H_SLOT_COUNT (LAYOUT_LOCK_HEADER_OFFSET + 12u)
#define H_SLOTS_OFFSET (LAYOUT_LOCK_HEADER_OFFSET + 16u)
#define H_RESERVED (LAYOUT_LOCK_HEADER_OFFSET + 24u)
#define H_END (LAYOUT_LOCK_HEADER_OFFSET + LAYOUT_LOCK_HEADER_SIZE)
#define S_PID 0u
#define S_PINNED 8u
#define S_CLAIMS 16u

struct layout_lockfile {
	int fd;
	bool writable;
	unsigned char *base; /* LAYOUT_LOCK_FILE_SIZE bytes, MAP_SHARED */
	int64_t slot;        /* the slot this handle owns, or -1 */
};

static uint32_t *word32(const struct layout_lockfile *lf, uint64_t off)
{
	return (uint32_t *)(void *)(lf->base + off);
}

static uint64_t *word64(const struct layout_lockfile *lf, uint64_t off)
{
	return (uint64_t *)(void *)(lf->base + off);
}

static uint64_t slot_offset(uint32_t i)
{
	return LAYOUT_LOCK_SLOTS_OFFSET + (uint64_t)i * LAYOUT_LOCK_SLOT_SIZE;
}

static int64_t *slot_pid(const struct layout_lockfile *lf, uint32_t i)
{
	return (int64_t *)(void *)(lf->base + slot_offset(i) + S_PID);
}

static uint64_t *slot_pinned(const struct layout_lockfile *lf, uint32_t i)
{
	return word64(lf, slot_offset(i) + S_PINNED);
}

static uint64_t *slot_claims(const struct layout_lockfile *lf, uint32_t i)
{
	return word64(lf, slot_offset(i) + S_CLAIMS);
}

/* ---- OFD locks on a slot's first byte ------------------------------------ */

static struct flock slot_flock(uint32_t i, short type)
{
	/* OFD commands require l_pid = 0. */
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET,
			    .l_start = (off_t)slot_offset(i), .l_len = 1, .l_pid = 0 };
	return fl;
}

/* Takes slot i's lock without waiting: 1 when taken, 0 when another open
 * file description holds it, or -errno. */
static int try_lock(int fd, uint32_t i)
{
	struct flock fl = slot_flock(i, F_WRLCK);

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 1;
	return errno == EAGAIN || errno == EACCES ? 0 : -errno;
}

static int unlock(int fd, uint32_t i)
{
	struct flock fl = slot_flock(i, F_UNLCK);

	return fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 0 : -errno;
}

/* Whether another open file description holds slot i's lock: 1, 0, or
 * -errno. Takes nothing, so a read-only descriptor can ask. */
static int held_elsewhere(int fd, uint32_t i)
{
	struct flock fl = slot_flock(i, F_WRLCK);

	if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
		return -errno;
	return fl.l_type != F_UNLCK;
}

/* ---- Opening ---------------------------------------------------------------- */

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* A file shorter than the table, opened without CREATE: a creator has not
 * extended it yet (or an older coordinator made it empty) when the header
 * page is zero, and it is damaged otherwise. Bytes 0..63 are not ours. */
static int check_short(int fd, uint64_t size, struct sutra_detail *pb)
{
	unsigned char page[LAYOUT_LOCK_SLOTS_OFFSET];
	size_t want = size < sizeof page ? (size_t)size : sizeof page;
	size_t got = 0;

	while (got < want) {
		ssize_t n = pread(fd, page + got, want - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got <= LAYOUT_LOCK_HEADER_OFFSET ||
	    all_zero(page + LAYOUT_LOCK_HEADER_OFFSET, got - LAYOUT_LOCK_HEADER_OFFSET))
		return -ENODATA;
	util_detail_set(pb, size, "lock file of %llu bytes is shorter than its slot table (%u)",
			   (unsigned long long)size, LAYOUT_LOCK_FILE_SIZE);
	return SUTRA_ECORRUPT;
}

/* One header field: its offset, width and required value. */
struct hfield {
	uint64_t off;
	unsigned width;
	uint64_t want;
	const char *name;
};

static const struct hfield hfields[] = {
	{ H_VERSION, 4, LAYOUT_LOCK_VERSION, "version" },
	{ H_SLOT_SIZE, 4, LAYOUT_LOCK_SLOT_SIZE, "slot_size" },
	{ H_SLOT_COUNT, 4, LAYOUT_LOCK_SLOT_COUNT, "slot_count" },
	{ H_SLOTS_OFFSET, 8, LAYOUT_LOCK_SLOTS_OFFSET, "slots_offset" },
};
#define NFIELDS (sizeof hfields / sizeof hfields[0])

/* Relaxed: a late creator may be storing the same value concurrently. */
static uint64_t load_field(const struct layout_lockfile *lf, const struct hfield *f)
{
	if (f->width == 4)
		return __atomic_load_n(word32(lf, f->off), __ATOMIC_RELAXED);
	return __atomic_load_n(word64(lf, f->off), __ATOMIC_RELAXED);
}

static void store_field(const struct layout_lockfile *lf, const struct hfield *f)
{
	if (f->width == 4)
		__atomic_store_n(word32(lf, f->off), (uint32_t)f->want, __ATOMIC_RELAXED);
	else
		__atomic_store_n(word64(lf, f->off), f->want, __ATOMIC_RELAXED);
}

/* Reserved header bytes and the rest of page 0 after the header. Nobody
 * writes them, so plain reads are fine. */
static int check_zero_tail(const struct layout_lockfile *lf, struct sutra_detail *pb)
{
	for (uint64_t off = H_RESERVED; off < LAYOUT_LOCK_SLOTS_OFFSET; off++) {
		if (lf->base[off]) {
			util_detail_set(pb, off, "lock file header: byte %llu is not zero",
					   (unsigned long long)off);
			return SUTRA_ECORRUPT;
		}
	}
	return 0;
}

/*
 * Checks the header and, when create is set and the magic is still zero,
 * writes it. A zero magic with every other field either zero or at its
 * required value is a header that is not written yet, or being written by
 * a concurrent creator (which stores the same values, magic last).
 */
static int check_header(struct layout_lockfile *lf, bool create, struct sutra_detail *pb)
{
	uint32_t magic = __atomic_load_n(word32(lf, H_MAGIC), __ATOMIC_ACQUIRE);
	int rc;

	if (magic != 0 && magic != LAYOUT_LOCK_MAGIC) {
		util_detail_set(pb, H_MAGIC, "not a Sutra lock file (magic 0x%08x)",
				   (unsigned)magic);
		return SUTRA_ECORRUPT;
	}
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct hfield *f = &hfields[i];
		uint64_t v = load_field(lf, f);

		if (v == f->want || (magic == 0 && v == 0))
			continue;
		util_detail_set(pb, f->off, "lock file %s is %llu, expected %llu", f->name,
				   (unsigned long long)v, (unsigned long long)f->want);
		return f->off == H_VERSION && magic ? SUTRA_EVERSION : SUTRA_ECORRUPT;
	}
	if ((rc = check_zero_tail(lf, pb)))
		return rc;
	if (magic == LAYOUT_LOCK_MAGIC)
		return 0;
	if (!create)
		return -ENODATA;
	for (size_t i = 0; i < NFIELDS; i++)
		store_field(lf, &hfields[i]);
	__atomic_store_n(word32(lf, H_MAGIC), LAYOUT_LOCK_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

int layout_lockfile_create_fd(const char *lock_path)
{
	int fd = open(lock_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, LAYOUT_LOCK_FILE_MODE);
	if (fd >= 0) {
		if (fchmod(fd, LAYOUT_LOCK_FILE_MODE) != 0) {
			int err = errno;
			close(fd);
			return -err;
		}
		return fd;
	}
	if (errno != EEXIST)
		return -errno;
	fd = open(lock_path, O_RDWR | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

/*
 * Makes the whole file exist on disk before anything writes it through the
 * shared mapping: a store of a page the file system cannot allocate (a
 * full disk, a sparse page) kills the writer with SIGBUS instead of
 * failing a call. fallocate with mode 0 only extends and fills holes, so a
 * concurrent creator's contents stay, and no version 1 process makes the
 * file longer. A file system without fallocate gets the sparse extension
 * it always had.
 */
static int allocate(int fd, uint64_t size, struct sutra_detail *pb)
{
	if (fallocate(fd, 0, 0, LAYOUT_LOCK_FILE_SIZE) == 0)
		return 0;
	int err = errno;
	if (err == EOPNOTSUPP) {
		if (size >= LAYOUT_LOCK_FILE_SIZE || ftruncate(fd, LAYOUT_LOCK_FILE_SIZE) == 0)
			return 0;
		err = errno;
	}
	util_detail_set(pb, 0, "cannot allocate the %u bytes of the lock file: %s",
			(unsigned)LAYOUT_LOCK_FILE_SIZE, strerror(err));
	return -err;
}

int layout_lockfile_open(const char *lock_path, unsigned flags, struct layout_lockfile **out,
			 struct sutra_detail *pb)
{
	bool create = flags & LAYOUT_LOCKFILE_CREATE;
	bool rdonly = !create && (flags & LAYOUT_LOCKFILE_RDONLY);
	struct layout_lockfile *lf = calloc(1, sizeof *lf);
	struct stat st;
	void *base;
	int rc;

	if (!lf)
		return -ENOMEM;
	lf->slot = -1;
	lf->writable = !rdonly;
	if (create) {
		lf->fd = layout_lockfile_create_fd(lock_path);
	} else {
		lf->fd = open(lock_path, (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (lf->fd < 0)
			lf->fd = -errno;
	}
	if (lf->fd < 0) {
		rc = lf->fd;
		goto fail;
	}
	if (fstat(lf->fd, &st) != 0) {
		rc = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto fail;
	}
	if ((uint64_t)st.st_size < LAYOUT_LOCK_FILE_SIZE && !create) {
		rc = check_short(lf->fd, (uint64_t)st.st_size, pb);
		goto fail;
	}
	if (!rdonly && (rc = allocate(lf->fd, (uint64_t)st.st_size, pb)))
		goto fail;
	base = mmap(NULL, LAYOUT_LOCK_FILE_SIZE, rdonly ? PROT_READ : PROT_READ | PROT_WRITE,
		    MAP_SHARED, lf->fd, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	lf->base = base;
	if ((rc = check_header(lf, create, pb)))
		goto fail;
	*out = lf;
	return 0;
fail:
	layout_lockfile_close(lf);
	return rc;
}

void layout_lockfile_close(struct layout_lockfile *lf)
{
	if (!lf)
		return;
	if (lf->slot >= 0) {
		/* Still owning the slot: nobody else writes it. The pin goes
		 * first, so that a pid is never seen without its pin gone. */
		uint32_t i = (uint32_t)lf->slot;
		__atomic_store_n(slot_pinned(lf, i), 0, __ATOMIC_SEQ_CST);
		__atomic_store_n(slot_pid(lf, i), 0, __ATOMIC_SEQ_CST);
	}
	if (lf->base)
		munmap(lf->base, LAYOUT_LOCK_FILE_SIZE);
	/* Closing the last descriptor of the open file description releases
	 * the slot's OFD lock. */
	if (lf->fd >= 0)
		close(lf->fd);
	free(lf);
}

/* ---- Reader side -------------------------------------------------------------- */

int layout_lockfile_claim(struct layout_lockfile *lf, uint32_t *slot)
{
	if (!lf->writable)
		return -EBADF;
	if (lf->slot >= 0)
		return -EALREADY;
	for (uint32_t i = 0; i < LAYOUT_LOCK_SLOT_COUNT; i++) {
		int rc = try_lock(lf->fd, i);

		if (rc < 0)
			return rc;
		if (rc == 0)
			continue;
		/* Ours now. A previous owner that died may have left its pin:
		 * it counted until this store, which only errs on the safe side. */
		__atomic_store_n(slot_pinned(lf, i), 0, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(slot_claims(lf, i), 1, __ATOMIC_SEQ_CST);
		__atomic_store_n(slot_pid(lf, i), (int64_t)getpid(), __ATOMIC_SEQ_CST);
		lf->slot = i;
		*slot = i;
		return 0;
	}
	return LAYOUT_LOCK_EFULL;
}

void layout_lockfile_pin(struct layout_lockfile *lf, uint64_t epoch)
{
	assert(lf->slot >= 0);
	__atomic_store_n(slot_pinned(lf, (uint32_t)lf->slot), epoch, __ATOMIC_SEQ_CST);
}

/* ---- Writer side ---------------------------------------------------------------- */

int layout_lockfile_oldest_pinned(struct layout_lockfile *lf, uint64_t *oldest, uint32_t *swept)
{
	uint64_t min = UINT64_MAX;
	uint32_t n = 0;

	if (!lf->writable)
		return -EBADF;
	for (uint32_t i = 0; i < LAYOUT_LOCK_SLOT_COUNT; i++) {
		uint64_t pin = __atomic_load_n(slot_pinned(lf, i), __ATOMIC_SEQ_CST);
		int64_t pid = __atomic_load_n(slot_pid(lf, i), __ATOMIC_SEQ_CST);
		int rc;

		/* Our own slot: F_OFD_SETLK would succeed on it (it is our lock)
		 * and it would look abandoned. */
		if ((int64_t)i == lf->slot) {
			if (pin && pin < min)
				min = pin;
			continue;
		}
		/* A clean slot pins nothing. If a reader claims it after these
		 * loads, its pin comes after them in the seq_cst order, and by
		 * the protocol it reads a meta at least as new as the one
		 * published before this scan. */
		if (pid == 0 && pin == 0)
			continue;
		rc = try_lock(lf->fd, i);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			/* Owned: take the pin as it is now. */
			pin = __atomic_load_n(slot_pinned(lf, i), __ATOMIC_SEQ_CST);
			if (pin && pin < min)
				min = pin;
			continue;
		}
		/* The reader is gone, and while we hold the lock no new one
		 * can claim the slot: clear it, then let it go. */
		__atomic_store_n(slot_pinned(lf, i), 0, __ATOMIC_SEQ_CST);
		__atomic_store_n(slot_pid(lf, i), 0, __ATOMIC_SEQ_CST);
		n++;
		if ((rc = unlock(lf->fd, i)))
			return rc;
	}
	*oldest = min;
	if (swept)
		*swept = n;
	return 0;
}

int layout_lockfile_write_writer_pid(int fd, int64_t pid)
{
	unsigned char b[8];
	util_put_le64(b, (uint64_t)pid);
	ssize_t n = pwrite(fd, b, sizeof b, LAYOUT_LOCK_WRITER_PID_OFFSET);
	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof b ? 0 : -EIO;
}

int64_t layout_lockfile_read_writer_pid(int fd)
{
	unsigned char b[8];
	if (pread(fd, b, sizeof b, LAYOUT_LOCK_WRITER_PID_OFFSET) != (ssize_t)sizeof b)
		return 0;
	return (int64_t)util_get_le64(b);
}

/* ---- Tools ------------------------------------------------------------------------ */

int layout_lockfile_foreach(struct layout_lockfile *lf,
			    int (*fn)(void *arg, uint32_t slot, int64_t pid, uint64_t pinned,
				      int alive),
			    void *arg)
{
	for (uint32_t i = 0; i < LAYOUT_LOCK_SLOT_COUNT; i++) {
		int64_t pid = __atomic_load_n(slot_pid(lf, i), __ATOMIC_SEQ_CST);
		uint64_t pin = __atomic_load_n(slot_pinned(lf, i), __ATOMIC_SEQ_CST);
		int alive = (int64_t)i == lf->slot ? 1 : held_elsewhere(lf->fd, i);
		int rc;

		if (alive < 0)
			return alive;
		if (!alive && pid == 0 && pin == 0)
			continue;
		if ((rc = fn(arg, i, pid, pin, alive)))
			return rc;
	}
	return 0;
}
