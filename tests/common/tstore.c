/* SPDX-License-Identifier: MIT */
/* Builds the small deterministic store that the layout tests and the golden dump use. */
#include "tests/common/tstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layout/layout.h"

#define T0 1700000000000000ull /* fixed "now" in µs, so the bytes never change */

int tstore_append(struct tstore *t, const void *data, size_t len)
{
	if (t->len + len > t->cap) {
		size_t cap = t->cap * 2;
		while (cap < t->len + len)
			cap *= 2;
		/* Not realloc: the image must stay LAYOUT_IMAGE_ALIGN-aligned
		 * for layout_open. */
		void *nb;
		if (posix_memalign(&nb, LAYOUT_IMAGE_ALIGN, cap))
			return -ENOMEM;
		memcpy(nb, t->buf, t->len);
		free(t->buf);
		t->buf = nb;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, data, len);
	t->len += len;
	return 0;
}

unsigned char *tstore_aligned_copy(const void *src, size_t len)
{
	void *p;
	if (posix_memalign(&p, LAYOUT_IMAGE_ALIGN, len ? len : 1))
		abort();
	if (src)
		memcpy(p, src, len);
	else
		memset(p, 0, len);
	return p;
}

int tstore_init_empty(struct tstore *t, uint32_t dim)
{
	struct layout_superblock sb;

	memset(t, 0, sizeof *t);
	t->cap = 4 * LAYOUT_DATA_OFFSET;
	void *buf;
	if (posix_memalign(&buf, LAYOUT_IMAGE_ALIGN, t->cap))
		return -ENOMEM;
	t->buf = buf;
	memset(t->buf, 0, t->cap);
	layout_superblock_defaults(&sb, dim);
	for (int i = 0; i < 16; i++)
		sb.uuid[i] = (uint8_t)(0xA0 + i);
	sb.created_us = T0;
	layout_encode_empty(&sb, T0, t->buf);
	t->len = LAYOUT_DATA_OFFSET;
	t->meta.published_end = LAYOUT_DATA_OFFSET;
	t->meta.durable_end = LAYOUT_DATA_OFFSET;
	t->meta.tail_start = LAYOUT_DATA_OFFSET;
	t->meta.commit_time_us = T0;
	t->counts[0].published_end = LAYOUT_DATA_OFFSET;
	return 0;
}

int tstore_commit(struct tstore *t, struct layout_builder *b, uint64_t concepts,
		  uint64_t associations, uint32_t next_ordinal)
{
	const void *data;
	size_t len;
	uint64_t epoch = t->meta.epoch + 1;
	int rc = layout_builder_seal(b, epoch, &data, &len);
	if (rc)
		return rc;
	uint64_t off = t->len;
	if ((rc = tstore_append(t, data, len)))
		return rc;
	layout_builder_reset(b);
	struct layout_block blk;
	if ((rc = layout_block_decode(t->buf, t->len, off, &blk, NULL)))
		return rc;

	t->meta.seq += 2;
	t->meta.epoch = epoch;
	t->meta.durable_end = t->meta.published_end; /* the previous epoch: synced */
	t->meta.published_end = t->len;
	t->meta.last_block_offset = off;
	t->meta.last_block_crc32c = blk.payload_crc32c;
	t->meta.commit_time_us = T0 + epoch * 1000;
	t->meta.concept_count = concepts;
	t->meta.association_count = associations;
	t->meta.next_ordinal = next_ordinal;
	layout_meta_encode(&t->meta, t->buf + LAYOUT_META_OFFSET +
					     (epoch % LAYOUT_META_SLOT_COUNT) * LAYOUT_META_SLOT_SIZE);
	if (epoch <= TSTORE_MAX_EPOCHS) {
		struct tstore_counts *c = &t->counts[epoch];
		c->concepts = concepts;
		c->associations = associations;
		c->next_ordinal = next_ordinal;
		c->published_end = t->len;
	}
	t->epochs = epoch;
	return 0;
}

static void make_id(uint8_t id[16], uint8_t n)
{
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)(0x10 * n + i);
}

static struct layout_concept concept(uint8_t n, uint32_t ord, const char *content,
				     const float *emb, uint64_t t)
{
	struct layout_concept c;
	memset(&c, 0, sizeof c);
	make_id(c.id, n);
	c.ordinal = ord;
	c.strength = 1.0f;
	c.confidence = 0.5f + 0.125f * (float)n;
	c.created_us = T0 + t;
	c.updated_us = T0 + t;
	c.content = content;
	c.content_len = (uint32_t)strlen(content);
	c.embedding = emb;
	c.vector_dim = emb ? TSTORE_DIM : 0;
	return c;
}

static struct layout_association assoc(uint8_t s, uint32_t so, uint8_t d, uint32_t dof,
				       uint8_t type, uint64_t t)
{
	struct layout_association a;
	memset(&a, 0, sizeof a);
	make_id(a.src, s);
	make_id(a.dst, d);
	a.src_ordinal = so;
	a.dst_ordinal = dof;
	a.type = type;
	a.confidence = 0.75f;
	a.weight = 1.0f;
	a.created_us = T0 + t;
	return a;
}

int tstore_build(struct tstore *t)
{
	static const float e1[TSTORE_DIM] = { 1.0f, 0.0f, 0.0f, 0.0f };
	static const float e2[TSTORE_DIM] = { 0.5f, 0.5f, -0.5f, 0.25f };
	static const float e4[TSTORE_DIM] = { 0.0f, 0.0f, 1.0f, 0.0f };
	struct layout_builder b;
	struct layout_concept c;
	struct layout_association a;
	int rc;

	if ((rc = tstore_init_empty(t, TSTORE_DIM)))
		return rc;
	layout_builder_init(&b, TSTORE_DIM);

	/* Epoch 1: three concepts, two associations. */
	c = concept(1, 0, "photosynthesis converts light", e1, 1);
	if ((rc = layout_builder_add_concept(&b, &c)))
		goto fail;
	c = concept(2, 1, "chlorophyll — green pigment", NULL, 2);
	if ((rc = layout_builder_add_concept(&b, &c)))
		goto fail;
	c = concept(3, 2, "leaf", e2, 3);
	c.metadata = "{\"src\":\"test\"}";
	c.metadata_len = (uint32_t)strlen(c.metadata);
	if ((rc = layout_builder_add_concept(&b, &c)))
		goto fail;
	a = assoc(1, 0, 2, 1, 1, 4);
	if ((rc = layout_builder_add_association(&b, &a)))
		goto fail;
	a = assoc(3, 2, 1, 0, 3, 5);
	if ((rc = layout_builder_add_association(&b, &a)) || (rc = tstore_commit(t, &b, 3, 2, 3)))
		goto fail;

	/* Epoch 2: update concept 1 (keeps ordinal 0), new concept 4, upsert. */
	c = concept(1, 0, "photosynthesis converts light to chemical energy", e1, 1);
	c.updated_us = T0 + 10;
	c.strength = 2.0f;
	if ((rc = layout_builder_add_concept(&b, &c)))
		goto fail;
	c = concept(4, 3, "glucose", e4, 11);
	if ((rc = layout_builder_add_concept(&b, &c)))
		goto fail;
	a = assoc(1, 0, 2, 1, 1, 12);
	a.confidence = 0.875f;
	if ((rc = layout_builder_add_association(&b, &a)))
		goto fail;
	a = assoc(1, 0, 4, 3, 0, 13);
	if ((rc = layout_builder_add_association(&b, &a)) ||
	    (rc = layout_builder_add_request(&b, 0x5157A7E5C0FFEE01ull, 7, 0x1234ABCDu)) ||
	    (rc = tstore_commit(t, &b, 4, 3, 4)))
		goto fail;

	/* Epoch 3: delete the edge 3 -> 1, then concept 3 (no edges left). */
	a = assoc(3, 2, 1, 0, 3, 0);
	if ((rc = layout_builder_add_association_delete(&b, &a)))
		goto fail;
	make_id(c.id, 3);
	if ((rc = layout_builder_add_concept_delete(&b, c.id, 2)) || (rc = tstore_commit(t, &b, 3, 2, 4)))
		goto fail;

	/* Epoch 4: an empty commit. */
	if ((rc = tstore_commit(t, &b, 3, 2, 4)))
		goto fail;
	layout_builder_finish(&b);
	return 0;
fail:
	layout_builder_finish(&b);
	tstore_finish(t);
	return rc;
}

void tstore_finish(struct tstore *t)
{
	if (!t)
		return;
	free(t->buf);
	t->buf = NULL;
	t->len = 0;
}

int tstore_write(const struct tstore *t, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	size_t done = 0;
	int rc = 0;
	while (done < t->len) {
		ssize_t n = write(fd, t->buf + done, t->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)n;
	}
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}
