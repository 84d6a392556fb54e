/* SPDX-License-Identifier: MIT */
/* Stores written by hand for the reader's unit tests (rstore.h). */
#include "tests/reader/rstore.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layout/segindex.h"
#include "tests/common/tcheck.h"

#define T0 1700000000000000ull

/* Writes the whole buffer over the file without truncating it: the bytes
 * a reader has mapped are the same, only the meta slots and the end are
 * new, as when the coordinator writes. */
static void sync_file(const struct rstore *s)
{
	int fd = open(s->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_msg(fd >= 0, "open %s: %s", s->path, strerror(errno));
	size_t done = 0;
	while (done < s->t.len) {
		ssize_t n = pwrite(fd, s->t.buf + done, s->t.len - done, (off_t)done);
		ck_assert_msg(n > 0, "write: %s", strerror(errno));
		done += (size_t)n;
	}
	ck_assert_int_eq(close(fd), 0);
}

void rstore_init(struct rstore *s, uint32_t dim)
{
	memset(s, 0, sizeof *s);
	ck_assert_ok(tstore_init_empty(&s->t, dim));
	layout_builder_init(&s->b, dim);
	s->dim = dim;
	util_idmap_init(&s->edges);
	const char *tmp = getenv("TMPDIR");
	int w = snprintf(s->dir, sizeof s->dir, "%s/sutra-rdr-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	ck_assert_int_lt(w, (int)sizeof s->dir);
	ck_assert_ptr_nonnull(mkdtemp(s->dir));
	snprintf(s->path, sizeof s->path, "%s/storage.dat", s->dir);
	sync_file(s);
}

void rstore_finish(struct rstore *s)
{
	char lock[sizeof s->path + 8];
	snprintf(lock, sizeof lock, "%s.lock", s->path);
	unlink(lock);
	unlink(s->path);
	rmdir(s->dir);
	layout_builder_finish(&s->b);
	tstore_finish(&s->t);
	util_idmap_finish(&s->edges);
}

void rstore_id(uint8_t id[16], uint32_t n)
{
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)(0x5A ^ (i * 17));
	memcpy(id, &n, sizeof n);
}

void rstore_concept(struct rstore *s, uint32_t n, uint32_t ordinal, const char *content,
		    const float *embedding)
{
	struct layout_concept c;
	memset(&c, 0, sizeof c);
	ck_assert_uint_lt(n, RSTORE_MAX_N);
	rstore_id(c.id, n);
	c.ordinal = ordinal;
	c.strength = 1.0f + (float)(n % 7); /* distinct strengths rank text hits */
	c.confidence = 0.5f;
	c.created_us = T0;
	c.updated_us = T0;
	c.content = content;
	c.content_len = (uint32_t)strlen(content);
	c.embedding = embedding;
	c.vector_dim = embedding ? s->dim : 0;
	ck_assert_ok(layout_builder_add_concept(&s->b, &c));
	if (!s->live[n])
		s->concepts++;
	s->live[n] = 1;
	if (ordinal >= s->next_ordinal)
		s->next_ordinal = ordinal + 1;
}

void rstore_delete(struct rstore *s, uint32_t n, uint32_t ordinal)
{
	uint8_t id[16];
	rstore_id(id, n);
	ck_assert_ok(layout_builder_add_concept_delete(&s->b, id, ordinal));
	if (s->live[n])
		s->concepts--;
	s->live[n] = 0;
}

static struct layout_association assoc(uint32_t a, uint32_t ao, uint32_t b, uint32_t bo,
				       uint8_t type)
{
	struct layout_association x;
	memset(&x, 0, sizeof x);
	rstore_id(x.src, a);
	rstore_id(x.dst, b);
	x.src_ordinal = ao;
	x.dst_ordinal = bo;
	x.type = type;
	x.weight = 1.0f;
	x.created_us = T0;
	return x;
}

void rstore_assoc(struct rstore *s, uint32_t a, uint32_t ao, uint32_t b, uint32_t bo,
		  uint8_t type, float confidence)
{
	struct layout_association x = assoc(a, ao, b, bo, type);
	uint8_t key[16];
	x.confidence = confidence;
	ck_assert_ok(layout_builder_add_association(&s->b, &x));
	layout_edge_key(key, ao, bo, type);
	if (!util_idmap_get(&s->edges, key, NULL))
		s->associations++;
	ck_assert_ok(util_idmap_put(&s->edges, key, 1));
}

void rstore_assoc_delete(struct rstore *s, uint32_t a, uint32_t ao, uint32_t b, uint32_t bo,
			 uint8_t type)
{
	struct layout_association x = assoc(a, ao, b, bo, type);
	uint8_t key[16];
	ck_assert_ok(layout_builder_add_association_delete(&s->b, &x));
	layout_edge_key(key, ao, bo, type);
	if (util_idmap_del(&s->edges, key))
		s->associations--;
}

uint64_t rstore_commit(struct rstore *s)
{
	ck_assert_ok(tstore_commit(&s->t, &s->b, s->concepts, s->associations, s->next_ordinal));
	sync_file(s);
	return s->t.meta.epoch;
}

uint64_t rstore_flush(struct rstore *s)
{
	struct layout_superblock sb;
	struct sutra_detail pb;
	ck_assert_ok(layout_superblock_decode(s->t.buf, s->t.len, &sb, &pb));
	ck_assert_uint_gt(s->t.meta.epoch, s->last_flushed);
	ck_assert_uint_lt(s->segments, LAYOUT_MAX_SEGMENTS);
	struct layout_segbuild_in in = {
		.base = s->t.buf,
		.end = s->t.len,
		.vector_dim = s->dim,
		.hnsw_m = sb.hnsw_m,
		.hnsw_ef_construction = sb.hnsw_ef_construction,
		.from = s->t.meta.tail_start,
		.to = s->t.meta.published_end,
		.first_epoch = s->last_flushed + 1,
		.last_epoch = s->t.meta.epoch,
		.next_ordinal = s->t.meta.next_ordinal,
		.base_segment = s->segments == 0,
	};
	unsigned char *blk = NULL;
	uint64_t len = 0;
	int rc = layout_segment_build(&in, &blk, &len, &pb);
	ck_assert_msg(rc == 0, "segment build: %s: %s", sutra_errname(rc), pb.what);
	uint64_t off = s->t.len;
	ck_assert_ok(tstore_append(&s->t, blk, (size_t)len));
	free(blk);
	s->t.meta.segments[s->segments].offset = off;
	s->t.meta.segments[s->segments].length = len;
	s->t.meta.segment_count = ++s->segments;
	s->t.meta.tail_start = in.to;
	s->last_flushed = in.last_epoch;
	return rstore_commit(s);
}
