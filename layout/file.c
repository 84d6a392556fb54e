/* SPDX-License-Identifier: MIT */
/* Opening a store image (choosing the current meta slot), mapping and creating files. */
#include "layout/layout.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/endian.h"

/* Checks that meta m (decoded from slot `slot`) can be the current state of
 * the file: bounds, and every block written since the log was last known
 * durable (from durable_end to published_end: valid headers and payloads,
 * commit epochs contiguous and ending with the commit block of m's epoch at
 * last_block_offset, carrying the payload CRC m names). In sync mode that
 * range is the one commit block of the epoch, so open stays O(1). */
static int check_meta(const struct layout_view *v, int slot, const struct layout_meta *m,
		      struct sutra_detail *pb)
{
	uint64_t base = v->sb.meta_offset + (uint64_t)slot * v->sb.meta_slot_size;
	struct layout_block blk;

	if (m->published_end < v->sb.data_offset || m->published_end % LAYOUT_BLOCK_ALIGN) {
		util_detail_set(pb, base, "published end %llu is not a valid block boundary",
				   (unsigned long long)m->published_end);
		return SUTRA_ECORRUPT;
	}
	if (m->published_end > v->size) {
		util_detail_set(pb, v->size,
				   "file ends at %llu, before the published end %llu of epoch %llu",
				   (unsigned long long)v->size, (unsigned long long)m->published_end,
				   (unsigned long long)m->epoch);
		return SUTRA_ECORRUPT;
	}
	if (m->tail_start < v->sb.data_offset || m->tail_start > m->published_end ||
	    m->tail_start % LAYOUT_BLOCK_ALIGN) {
		util_detail_set(pb, base, "tail start %llu out of range",
				   (unsigned long long)m->tail_start);
		return SUTRA_ECORRUPT;
	}
	if (m->log_start && (m->log_start < v->sb.data_offset || m->log_start > m->tail_start ||
			     m->log_start > m->durable_end || m->log_start % LAYOUT_BLOCK_ALIGN)) {
		util_detail_set(pb, base, "log start %llu out of range",
				   (unsigned long long)m->log_start);
		return SUTRA_ECORRUPT;
	}
	if (m->epoch == 0) {
		if (m->published_end != v->sb.data_offset || m->last_block_offset != 0 ||
		    m->last_block_crc32c != 0 || m->durable_end != v->sb.data_offset ||
		    m->concept_count || m->association_count || m->next_ordinal ||
		    m->segment_count) {
			util_detail_set(pb, base, "epoch 0 meta slot describes a non-empty store");
			return SUTRA_ECORRUPT;
		}
		return 0;
	}
	if (m->last_block_offset < v->sb.data_offset || m->last_block_offset >= m->published_end) {
		util_detail_set(pb, base, "last block offset %llu lies outside the published log",
				   (unsigned long long)m->last_block_offset);
		return SUTRA_ECORRUPT;
	}
	if (m->durable_end < v->sb.data_offset || m->durable_end > m->last_block_offset ||
	    m->durable_end % LAYOUT_BLOCK_ALIGN) {
		util_detail_set(pb, base, "durable end %llu out of range",
				   (unsigned long long)m->durable_end);
		return SUTRA_ECORRUPT;
	}

	uint64_t pos = m->durable_end, prev_epoch = 0;
	int seen_commit = 0;
	while (pos < m->published_end) {
		int rc = layout_block_decode(v->base, m->published_end, pos, &blk, pb);
		if (rc == 0)
			rc = layout_block_check_payload(v->base, &blk, pb);
		if (rc)
			return rc;
		if (blk.type == LAYOUT_BLOCK_COMMIT) {
			if (seen_commit && blk.epoch != prev_epoch + 1) {
				util_detail_set(pb, blk.offset,
						   "commit block of epoch %llu follows epoch %llu",
						   (unsigned long long)blk.epoch,
						   (unsigned long long)prev_epoch);
				return SUTRA_ECORRUPT;
			}
			seen_commit = 1;
			prev_epoch = blk.epoch;
		}
		pos = blk.offset + blk.length;
		if (pos > m->last_block_offset && pos != m->published_end)
			break; /* a block straddles last_block_offset */
	}
	if (blk.offset != m->last_block_offset || blk.type != LAYOUT_BLOCK_COMMIT ||
	    blk.epoch != m->epoch || blk.offset + blk.length != m->published_end) {
		util_detail_set(pb, m->last_block_offset,
				   "last block of epoch %llu is not its commit block ending at %llu",
				   (unsigned long long)m->epoch, (unsigned long long)m->published_end);
		return SUTRA_ECORRUPT;
	}
	if (blk.payload_crc32c != m->last_block_crc32c) {
		util_detail_set(pb, blk.offset,
				   "commit block of epoch %llu has payload checksum %08x, meta names %08x",
				   (unsigned long long)m->epoch, blk.payload_crc32c,
				   m->last_block_crc32c);
		return SUTRA_ECORRUPT;
	}
	return 0;
}

/* The size of the open file fd, capped at cap. */
static int live_size(int fd, uint64_t cap, uint64_t *size)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size < cap ? (uint64_t)st.st_size : cap;
	return 0;
}

/* Decodes slot i of a file that a writer may be rewriting: the slot is
 * copied to private memory (a seqlock read: seq, copy, seq again) and
 * decoded from the copy, retried while it reads as torn or in progress.
 * A slot that stays so is reported corrupt for this open. A torn read
 * lasts as long as the writer's copy of 1,152 bytes; a reader that keeps
 * meeting one is being preempted in the middle of its own copy (relaxed
 * mode rewrites one slot per epoch), so after the quick tries it yields
 * the CPU, then sleeps a little: about 2 ms in all before giving up. */
#define LIVE_TRIES 64
#define LIVE_YIELDS 64
#define LIVE_NAPS 32
static enum layout_slot_state decode_live(const unsigned char *b, const struct layout_view *v,
					  uint32_t i, struct layout_meta *m,
					  struct sutra_detail *pb)
{
	uint64_t base = v->sb.meta_offset + (uint64_t)i * v->sb.meta_slot_size;
	const volatile uint64_t *seqp = (const volatile uint64_t *)(const void *)(b + base + 8);
	unsigned char copy[LAYOUT_META_SLOT_SIZE];
	enum layout_slot_state st = LAYOUT_SLOT_CORRUPT;

	for (int t = 0; t < LIVE_TRIES + LIVE_YIELDS + LIVE_NAPS; t++) {
		if (t >= LIVE_TRIES + LIVE_YIELDS) {
			struct timespec nap = { 0, 50000 };
			nanosleep(&nap, NULL);
		} else if (t >= LIVE_TRIES) {
			sched_yield();
		}
		uint64_t s1 = *seqp;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		memcpy(copy, b + base, sizeof copy);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		uint64_t s2 = *seqp;
		if (s1 != s2 || (s1 & 1))
			continue;
		st = layout_meta_decode(copy, sizeof copy, base, m, pb);
		if (st != LAYOUT_SLOT_CORRUPT)
			return st;
	}
	return st;
}

static int open_impl(const void *buf, uint64_t size, int live_fd, struct layout_view *out,
		     struct sutra_detail *pb)
{
	struct layout_view *v;
	uint64_t cap = size;
	int rc;

	if ((uintptr_t)buf % LAYOUT_IMAGE_ALIGN)
		return util_fail(-EINVAL, pb,
				 "the image of the file is not %d-byte aligned in memory (at %p): "
				 "map the file, or copy it into aligned_alloc() memory",
				 LAYOUT_IMAGE_ALIGN, buf);
	if (!(v = calloc(1, sizeof *v)))
		return -ENOMEM;
	if (live_fd >= 0 && (rc = live_size(live_fd, cap, &size))) {
		free(v);
		return rc;
	}
	v->base = buf;
	v->size = size;
	rc = layout_superblock_decode(buf, size < SIZE_MAX ? (size_t)size : SIZE_MAX, &v->sb, pb);
	if (rc)
		goto out;
	if (size < v->sb.data_offset) {
		util_detail_set(pb, size, "file of %llu bytes is shorter than its header pages",
				   (unsigned long long)size);
		rc = SUTRA_ECORRUPT;
		goto out;
	}
	const unsigned char *b = buf;
	if (!util_is_zero(b + LAYOUT_SUPERBLOCK_SIZE, v->sb.page_size - LAYOUT_SUPERBLOCK_SIZE)) {
		size_t at = LAYOUT_SUPERBLOCK_SIZE;
		while (b[at] == 0)
			at++;
		util_detail_set(pb, at, "bytes after the superblock are not zero");
		rc = SUTRA_ECORRUPT;
		goto out;
	}
	for (uint32_t i = 0; i < LAYOUT_META_SLOT_COUNT; i++) {
		uint64_t base = v->sb.meta_offset + (uint64_t)i * v->sb.meta_slot_size;
		if (live_fd >= 0)
			v->slot_state[i] =
				decode_live(b, v, i, &v->slots[i], &v->slot_problem[i]);
		else
			v->slot_state[i] = layout_meta_decode(b + base, v->sb.meta_slot_size, base,
							      &v->slots[i], &v->slot_problem[i]);
	}
	/* The writer writes a block before the meta that names it, so the
	 * size read after the slots covers every block they name. */
	if (live_fd >= 0) {
		if ((rc = live_size(live_fd, cap, &size)))
			goto out;
		v->size = size;
	}

	/* Try the valid slots newest first. */
	int order[LAYOUT_META_SLOT_COUNT] = { 0, 1 };
	if (v->slot_state[1] == LAYOUT_SLOT_VALID &&
	    (v->slot_state[0] != LAYOUT_SLOT_VALID || v->slots[1].epoch > v->slots[0].epoch)) {
		order[0] = 1;
		order[1] = 0;
	}
	rc = SUTRA_ECORRUPT;
	util_detail_set(pb, v->sb.meta_offset, "neither meta slot holds a valid epoch");
	for (int k = 0; k < 2; k++) {
		int s = order[k];
		struct sutra_detail why;
		if (v->slot_state[s] != LAYOUT_SLOT_VALID)
			continue;
		if (check_meta(v, s, &v->slots[s], &why) == 0) {
			v->current = s;
			v->meta = v->slots[s];
			rc = 0;
			break;
		}
		/* The newest slot was rejected: the older one may still give a
		 * clean epoch, and the caller learns why it was needed. */
		v->fell_back = 1;
		v->fallback_problem = why;
		if (pb)
			*pb = why;
	}
	if (rc == 0)
		*out = *v;
out:
	free(v);
	return rc;
}

int layout_open(const void *buf, uint64_t size, struct layout_view *out, struct sutra_detail *pb)
{
	return open_impl(buf, size, -1, out, pb);
}

int layout_open_live(const void *map, uint64_t map_len, int fd, struct layout_view *out,
		     struct sutra_detail *pb)
{
	if (fd < 0)
		return -EBADF;
	return open_impl(map, map_len, fd, out, pb);
}

int layout_map_open(const char *path, struct layout_map *map)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	map->fd = fd;
	map->size = (uint64_t)st.st_size;
	map->base = NULL;
	if (st.st_size == 0)
		return 0;
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int err = -errno;
		close(fd);
		return err;
	}
	map->base = p;
	return 0;
}

void layout_map_close(struct layout_map *map)
{
	if (!map)
		return;
	if (map->base)
		munmap((void *)map->base, (size_t)map->size);
	if (map->fd >= 0)
		close(map->fd);
	map->base = NULL;
	map->fd = -1;
	map->size = 0;
}

void layout_encode_empty(const struct layout_superblock *sb, uint64_t now_us, void *out)
{
	unsigned char *b = out;
	struct layout_meta m;

	memset(b, 0, LAYOUT_DATA_OFFSET);
	layout_superblock_encode(sb, b);
	memset(&m, 0, sizeof m);
	m.published_end = LAYOUT_DATA_OFFSET;
	m.tail_start = LAYOUT_DATA_OFFSET;
	m.durable_end = LAYOUT_DATA_OFFSET;
	m.commit_time_us = now_us;
	layout_meta_encode(&m, b + LAYOUT_META_OFFSET);
}

/* fsync the directory holding path, so that a new file's name is durable. */
static int sync_parent(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

int layout_create_file(const char *path, const struct layout_superblock *sb, uint64_t now_us)
{
	unsigned char *img = malloc(LAYOUT_DATA_OFFSET);
	int rc = 0;

	if (!img)
		return -ENOMEM;
	layout_encode_empty(sb, now_us, img);
	/* Not world-readable: the owner writes, the store's group reads. */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, LAYOUT_FILE_MODE);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	size_t done = 0;
	while (done < LAYOUT_DATA_OFFSET) {
		ssize_t n = pwrite(fd, img + done, LAYOUT_DATA_OFFSET - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)n;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0)
		rc = sync_parent(path);
	if (rc)
		unlink(path);
out:
	free(img);
	return rc;
}
