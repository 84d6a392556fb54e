/* SPDX-License-Identifier: MIT */
/* libsutra-reader: live read-only mapping, incremental private index of the log, snapshots, zero-copy gets. */
#include "sutra/reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <roaring/roaring.h>

#include "coordinator/proto.h"
#include "layout/layout.h"
#include "reader/tindex.h"
#include "util/endian.h"
#include "util/idmap.h"

/* The mapping reserves this much address space once, so that the file can
 * grow under it without a remap; only bytes below a validated published
 * end are ever touched. */
#define MAP_LEN (1ull << 40)

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "embeddings are handed out as host floats: little-endian hosts only");

struct idchunk {
	uint8_t id[RDR_CHUNK][16];
};

/* Adjacency: per ordinal, a list (newest first) of the association keys
 * that ever touched it; whether an association is live at an epoch is the
 * edge index's answer. Nodes and heads are append-only chunks, written by
 * the refreshing thread and published with a release-store of the head. */
struct enode {
	uint8_t key[16];
	uint32_t next; /* index + 1, 0: end */
};

struct nodechunk {
	struct enode n[RDR_CHUNK];
};

struct headchunk {
	uint32_t head[RDR_CHUNK]; /* atomic */
};

struct sutra_reader {
	int fd;
	const unsigned char *map;
	pthread_mutex_t mu; /* refresh, acquire */
	struct rdr_tindex ix;
	struct idchunk **ords; /* ordinal -> id, append-only, RDR_MAX_CHUNKS entries */
	struct rdr_tindex eix;  /* association key -> versions (offset of the record) */
	struct util_idmap eseen; /* refreshing thread only: keys already listed */
	struct nodechunk **nodes;
	struct headchunk **heads;
	uint32_t nnodes;
	struct layout_superblock sb;
	/* the newest indexed epoch (under mu) */
	uint64_t epoch;
	uint64_t published_end;
	uint64_t concepts, assocs, file_size;
	uint32_t next_ordinal;
	uint32_t segment_count;
	/* notices */
	pthread_mutex_t nmu;
	int subscribed;
	nng_socket sub;
};

struct sutra_snapshot {
	sutra_reader *r;
	struct rdr_gen *gen;
	struct rdr_gen *egen;
	uint64_t epoch;
	uint64_t published_end;
	uint64_t concepts, assocs, file_size;
	uint32_t next_ordinal;
	uint32_t segment_count;
};

static int put_ordinal(sutra_reader *r, uint32_t ordinal, const uint8_t id[16])
{
	uint32_t c = ordinal >> RDR_CHUNK_BITS;
	if (c >= RDR_MAX_CHUNKS)
		return -ENOMEM;
	if (!r->ords[c]) {
		struct idchunk *k = calloc(1, sizeof *k);
		if (!k)
			return -ENOMEM;
		__atomic_store_n(&r->ords[c], k, __ATOMIC_RELEASE);
	}
	memcpy(r->ords[c]->id[ordinal & (RDR_CHUNK - 1)], id, 16);
	return 0;
}

static const uint8_t *id_of_ordinal(const sutra_reader *r, uint32_t ordinal)
{
	struct idchunk *k = __atomic_load_n(&r->ords[ordinal >> RDR_CHUNK_BITS], __ATOMIC_ACQUIRE);
	return k->id[ordinal & (RDR_CHUNK - 1)];
}

static int add_node(sutra_reader *r, uint32_t ordinal, const uint8_t key[16])
{
	uint32_t i = r->nnodes, c = i >> RDR_CHUNK_BITS, hc = ordinal >> RDR_CHUNK_BITS;
	if (c >= RDR_MAX_CHUNKS || hc >= RDR_MAX_CHUNKS || i == UINT32_MAX - 1)
		return -ENOMEM;
	if (!r->nodes[c]) {
		struct nodechunk *k = calloc(1, sizeof *k);
		if (!k)
			return -ENOMEM;
		__atomic_store_n(&r->nodes[c], k, __ATOMIC_RELEASE);
	}
	if (!r->heads[hc]) {
		struct headchunk *k = calloc(1, sizeof *k);
		if (!k)
			return -ENOMEM;
		__atomic_store_n(&r->heads[hc], k, __ATOMIC_RELEASE);
	}
	uint32_t *head = &r->heads[hc]->head[ordinal & (RDR_CHUNK - 1)];
	struct enode *n = &r->nodes[c]->n[i & (RDR_CHUNK - 1)];
	memcpy(n->key, key, 16);
	n->next = *head;
	r->nnodes = i + 1;
	__atomic_store_n(head, i + 1, __ATOMIC_RELEASE);
	return 0;
}

/* Indexes one association record (or its delete) of epoch. */
static int index_edge(sutra_reader *r, const struct layout_record *rec, uint64_t epoch)
{
	const struct layout_association *a = &rec->u.association;
	uint8_t key[16];
	int rc;
	layout_edge_key(key, a->src_ordinal, a->dst_ordinal, a->type);
	if (rec->type == LAYOUT_REC_ASSOCIATION && !util_idmap_get(&r->eseen, key, NULL)) {
		if ((rc = util_idmap_put(&r->eseen, key, 1)) ||
		    (rc = add_node(r, a->src_ordinal, key)) ||
		    (a->dst_ordinal != a->src_ordinal && (rc = add_node(r, a->dst_ordinal, key))))
			return rc;
	}
	return rdr_tindex_put(&r->eix, key, epoch,
			      rec->type == LAYOUT_REC_ASSOCIATION ? rec->offset : 0, a->type);
}

/* Indexes the commit blocks in [from, v->meta.published_end). Called with
 * mu held. On error nothing of the reader's published state changes (the
 * versions already put carry epochs no snapshot can see yet). */
static int index_blocks(sutra_reader *r, const struct layout_view *v, uint64_t from)
{
	struct layout_problem pb;
	uint64_t pos = from, end = v->meta.published_end;
	uint64_t epoch = r->epoch;
	uint32_t next = r->next_ordinal;

	while (pos < end) {
		struct layout_block blk;
		struct layout_record_iter it;
		struct layout_record rec;
		int rc = layout_block_decode(r->map, end, pos, &blk, &pb);
		if (rc == 0)
			rc = layout_block_check_payload(r->map, &blk, &pb);
		if (rc)
			return rc;
		pos = blk.offset + blk.length;
		if (blk.type != LAYOUT_BLOCK_COMMIT)
			continue;
		if (blk.epoch != epoch + 1)
			return SUTRA_ECORRUPT;
		epoch = blk.epoch;
		layout_records_init(&it, r->map, &blk, r->sb.vector_dim);
		while ((rc = layout_records_next(&it, &rec, &pb)) == 1) {
			if (rec.type == LAYOUT_REC_CONCEPT) {
				const struct layout_concept *c = &rec.u.concept;
				if (c->ordinal == next) {
					if ((rc = put_ordinal(r, c->ordinal, c->id)))
						return rc;
					next++;
				} else if (c->ordinal > next) {
					return SUTRA_ECORRUPT;
				}
				if ((rc = rdr_tindex_put(&r->ix, c->id, blk.epoch, rec.offset,
							 c->ordinal)))
					return rc;
			} else if (rec.type == LAYOUT_REC_CONCEPT_DELETE) {
				if ((rc = rdr_tindex_put(&r->ix, rec.u.concept.id, blk.epoch, 0,
							 rec.u.concept.ordinal)))
					return rc;
			} else if (rec.type == LAYOUT_REC_ASSOCIATION ||
				   rec.type == LAYOUT_REC_ASSOCIATION_DELETE) {
				if ((rc = index_edge(r, &rec, blk.epoch)))
					return rc;
			}
		}
		if (rc < 0)
			return rc;
	}
	if (epoch != v->meta.epoch)
		return SUTRA_ECORRUPT;
	r->next_ordinal = next;
	return 0;
}

static int refresh_locked(sutra_reader *r)
{
	struct layout_view v;
	struct layout_problem pb;
	int rc = layout_open_live(r->map, MAP_LEN, r->fd, &v, &pb);
	if (rc)
		return rc;
	if (r->published_end == 0) {
		r->sb = v.sb;
		r->published_end = v.sb.data_offset;
	} else if (memcmp(v.sb.uuid, r->sb.uuid, 16) != 0) {
		return SUTRA_ECORRUPT; /* another store under the same path */
	}
	/* A slot read as torn many times (relaxed mode rewrites one slot per
	 * epoch) can make the open fall back to an older epoch: keep ours. */
	if (v.meta.epoch <= r->epoch)
		return 0;
	if (v.meta.published_end < r->published_end)
		return SUTRA_ECORRUPT;
	if ((rc = index_blocks(r, &v, r->published_end)))
		return rc;
	r->epoch = v.meta.epoch;
	r->published_end = v.meta.published_end;
	r->concepts = v.meta.concept_count;
	r->assocs = v.meta.association_count;
	r->file_size = v.size;
	r->segment_count = v.meta.segment_count;
	return 0;
}

int sutra_reader_open(const char *path, sutra_reader **out)
{
	sutra_reader *r = calloc(1, sizeof *r);
	int rc;

	if (!r)
		return -ENOMEM;
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		rc = -errno;
		free(r);
		return rc;
	}
	struct stat st;
	rc = fstat(r->fd, &st) < 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL : 0;
	if (rc) {
		close(r->fd);
		free(r);
		return rc;
	}
	void *map = mmap(NULL, MAP_LEN, PROT_READ, MAP_SHARED | MAP_NORESERVE, r->fd, 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		close(r->fd);
		free(r);
		return rc;
	}
	r->map = map;
	pthread_mutex_init(&r->mu, NULL);
	pthread_mutex_init(&r->nmu, NULL);
	util_idmap_init(&r->eseen);
	if ((rc = rdr_tindex_init(&r->ix)) || (rc = rdr_tindex_init(&r->eix)) ||
	    !(r->ords = calloc(RDR_MAX_CHUNKS, sizeof *r->ords)) ||
	    !(r->nodes = calloc(RDR_MAX_CHUNKS, sizeof *r->nodes)) ||
	    !(r->heads = calloc(RDR_MAX_CHUNKS, sizeof *r->heads))) {
		sutra_reader_close(r);
		return -ENOMEM;
	}
	if ((rc = refresh_locked(r))) {
		sutra_reader_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

void sutra_reader_close(sutra_reader *r)
{
	if (!r)
		return;
	if (r->subscribed)
		nng_close(r->sub);
	pthread_mutex_destroy(&r->nmu);
	rdr_tindex_finish(&r->ix);
	rdr_tindex_finish(&r->eix);
	util_idmap_finish(&r->eseen);
	for (uint32_t c = 0; c < RDR_MAX_CHUNKS && r->ords && r->ords[c]; c++)
		free(r->ords[c]);
	for (uint32_t c = 0; c < RDR_MAX_CHUNKS && r->nodes && r->nodes[c]; c++)
		free(r->nodes[c]);
	for (uint32_t c = 0; c < RDR_MAX_CHUNKS && r->heads; c++)
		free(r->heads[c]);
	free(r->ords);
	free(r->nodes);
	free(r->heads);
	munmap((void *)r->map, MAP_LEN);
	close(r->fd);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

int sutra_reader_refresh(sutra_reader *r, uint64_t *epoch)
{
	pthread_mutex_lock(&r->mu);
	int rc = refresh_locked(r);
	if (epoch)
		*epoch = r->epoch;
	pthread_mutex_unlock(&r->mu);
	return rc;
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int sutra_reader_wait_for_epoch(sutra_reader *r, uint64_t epoch, int timeout_ms)
{
	uint64_t start = mono_us(), nap = 20;
	for (;;) {
		uint64_t now_epoch;
		int rc = sutra_reader_refresh(r, &now_epoch);
		if (rc)
			return rc;
		if (now_epoch >= epoch)
			return 0;
		uint64_t spent = mono_us() - start;
		if (timeout_ms >= 0 && spent >= (uint64_t)timeout_ms * 1000u)
			return -ETIMEDOUT;
		if (__atomic_load_n(&r->subscribed, __ATOMIC_ACQUIRE)) {
			/* Wake on the next notice, but read the file at least
			 * every 50 ms: notices can be lost. */
			int wait = 50;
			if (timeout_ms >= 0 && (uint64_t)timeout_ms * 1000u - spent < 50000u)
				wait = (int)(((uint64_t)timeout_ms * 1000u - spent) / 1000u) + 1;
			struct sutra_notice n;
			if (sutra_reader_next_notice(r, wait, &n) == 0)
				sutra_notice_clear(&n);
			continue;
		}
		/* Polling the file: back off from 20 µs to 1 ms. */
		struct timespec ts = { 0, (long)nap * 1000 };
		nanosleep(&ts, NULL);
		if (nap < 1000)
			nap *= 2;
	}
}

int sutra_reader_subscribe(sutra_reader *r, const char *events_url)
{
	int rv, rc = 0;
	if (!events_url)
		return -EINVAL;
	pthread_mutex_lock(&r->nmu);
	if (r->subscribed) {
		pthread_mutex_unlock(&r->nmu);
		return -EALREADY;
	}
	if ((rv = nng_sub0_open(&r->sub))) {
		pthread_mutex_unlock(&r->nmu);
		return rv == NNG_ENOMEM ? -ENOMEM : SUTRA_EUNAVAIL;
	}
	nng_socket_set(r->sub, NNG_OPT_SUB_SUBSCRIBE, "", 0);
	/* DESIGN.md: the default reconnect wait is 1 s; a restarted
	 * coordinator should be heard again at once. */
	nng_socket_set_ms(r->sub, NNG_OPT_RECONNMINT, 10);
	nng_socket_set_ms(r->sub, NNG_OPT_RECONNMAXT, 200);
	if ((rv = nng_dial(r->sub, events_url, NULL, NNG_FLAG_NONBLOCK))) {
		nng_close(r->sub);
		rc = rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP || rv == NNG_EINVAL ? -EINVAL
										     : SUTRA_EUNAVAIL;
	} else {
		__atomic_store_n(&r->subscribed, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&r->nmu);
	return rc;
}

int sutra_reader_notice_fd(sutra_reader *r, int *fd)
{
	if (!__atomic_load_n(&r->subscribed, __ATOMIC_ACQUIRE))
		return -ENOTCONN;
	int v;
	if (nng_socket_get_int(r->sub, NNG_OPT_RECVFD, &v))
		return -ENOTCONN;
	*fd = v;
	return 0;
}

void sutra_notice_clear(struct sutra_notice *n)
{
	free(n->changed);
	memset(n, 0, sizeof *n);
}

int sutra_reader_next_notice(sutra_reader *r, int timeout_ms, struct sutra_notice *out)
{
	if (!__atomic_load_n(&r->subscribed, __ATOMIC_ACQUIRE))
		return -ENOTCONN;
	uint64_t start = mono_us();
	for (;;) {
		int left = timeout_ms;
		if (timeout_ms > 0) {
			uint64_t spent = (mono_us() - start) / 1000u;
			if (spent >= (uint64_t)timeout_ms)
				return -ETIMEDOUT;
			left = timeout_ms - (int)spent;
		}
		void *m;
		size_t len;
		int rv;
		if (left == 0) {
			rv = nng_recv(r->sub, &m, &len, NNG_FLAG_ALLOC | NNG_FLAG_NONBLOCK);
		} else {
			nng_socket_set_ms(r->sub, NNG_OPT_RECVTIMEO,
					  left < 0 ? NNG_DURATION_INFINITE : (nng_duration)left);
			rv = nng_recv(r->sub, &m, &len, NNG_FLAG_ALLOC);
		}
		if (rv == NNG_EAGAIN || rv == NNG_ETIMEDOUT)
			return -ETIMEDOUT;
		if (rv == NNG_ENOMEM)
			return -ENOMEM;
		if (rv)
			return -ENOTCONN;
		struct proto_notice pn;
		/* Skip what is not a notice of this store. */
		if (proto_notice_decode(m, len, &pn) ||
		    memcmp(pn.store_uuid, r->sb.uuid, 16) != 0) {
			nng_free(m, len);
			continue;
		}
		memset(out, 0, sizeof *out);
		out->epoch = pn.epoch;
		out->published_end = pn.published_end;
		out->durable_epoch = pn.durable_epoch;
		out->heartbeat = pn.kind == PROTO_NOTICE_HEARTBEAT;
		int rc = 0;
		if (pn.changed_len) {
			roaring_bitmap_t *b = roaring_bitmap_portable_deserialize_safe(
				(const char *)pn.changed, pn.changed_len);
			if (b) {
				uint64_t n = roaring_bitmap_get_cardinality(b);
				out->changed = malloc((n ? n : 1) * sizeof *out->changed);
				if (out->changed) {
					roaring_bitmap_to_uint32_array(b, out->changed);
					out->changed_count = (size_t)n;
				} else {
					rc = -ENOMEM;
				}
				roaring_bitmap_free(b);
			}
			/* An undecodable bitmap is a hint lost, not an error. */
		}
		nng_free(m, len);
		return rc;
	}
}

int sutra_snapshot_acquire(sutra_reader *r, uint64_t min_epoch, sutra_snapshot **out)
{
	sutra_snapshot *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	pthread_mutex_lock(&r->mu);
	int rc = refresh_locked(r);
	if (rc == 0 && r->epoch < min_epoch)
		rc = -EAGAIN;
	if (rc) {
		pthread_mutex_unlock(&r->mu);
		free(s);
		return rc;
	}
	s->r = r;
	s->gen = rdr_tindex_acquire(&r->ix);
	s->egen = rdr_tindex_acquire(&r->eix);
	s->epoch = r->epoch;
	s->published_end = r->published_end;
	s->concepts = r->concepts;
	s->assocs = r->assocs;
	s->file_size = r->file_size;
	s->next_ordinal = r->next_ordinal;
	s->segment_count = r->segment_count;
	pthread_mutex_unlock(&r->mu);
	*out = s;
	return 0;
}

void sutra_snapshot_release(sutra_snapshot *s)
{
	if (!s)
		return;
	rdr_tindex_release(s->gen);
	rdr_tindex_release(s->egen);
	free(s);
}

uint64_t sutra_snapshot_epoch(const sutra_snapshot *s)
{
	return s->epoch;
}

static int view_at(const sutra_snapshot *s, uint64_t off, struct sutra_concept_view *out)
{
	struct layout_record rec;
	struct layout_problem pb;
	int rc = layout_record_at(s->r->map, s->published_end, off, s->r->sb.vector_dim, &rec, &pb);
	if (rc)
		return rc;
	if (rec.type != LAYOUT_REC_CONCEPT)
		return SUTRA_ECORRUPT;
	const struct layout_concept *c = &rec.u.concept;
	memcpy(out->id, c->id, 16);
	out->ordinal = c->ordinal;
	out->content = c->content;
	out->content_len = c->content_len;
	out->embedding = c->embedding; /* 8-aligned little-endian f32 in the file */
	out->vector_dim = c->embedding ? c->vector_dim : 0;
	out->strength = c->strength;
	out->confidence = c->confidence;
	out->created_us = c->created_us;
	out->updated_us = c->updated_us;
	out->metadata = c->metadata_len ? c->metadata : NULL;
	out->metadata_len = c->metadata_len;
	return 0;
}

int sutra_snapshot_get(const sutra_snapshot *s, const uint8_t id[16],
		       struct sutra_concept_view *out)
{
	uint64_t off;
	uint32_t ordinal;
	if (!rdr_tindex_get(&s->r->ix, s->gen, id, s->epoch, &off, &ordinal))
		return SUTRA_ENOTFOUND;
	return view_at(s, off, out);
}

int sutra_snapshot_contains(const sutra_snapshot *s, const uint8_t id[16])
{
	uint64_t off;
	uint32_t ordinal;
	return rdr_tindex_get(&s->r->ix, s->gen, id, s->epoch, &off, &ordinal);
}

int sutra_snapshot_foreach(const sutra_snapshot *s,
			   int (*fn)(void *arg, const struct sutra_concept_view *c), void *arg)
{
	for (uint32_t o = 0; o < s->next_ordinal; o++) {
		const uint8_t *id = id_of_ordinal(s->r, o);
		uint64_t off;
		uint32_t ordinal;
		/* An id learnt again after a delete has a newer ordinal: the
		 * old one is dead. */
		if (!rdr_tindex_get(&s->r->ix, s->gen, id, s->epoch, &off, &ordinal) || ordinal != o)
			continue;
		struct sutra_concept_view v;
		int rc = view_at(s, off, &v);
		if (rc)
			return rc;
		if ((rc = fn(arg, &v)))
			return rc;
	}
	return 0;
}

void sutra_snapshot_stats(const sutra_snapshot *s, struct sutra_reader_stats *st)
{
	memset(st, 0, sizeof *st);
	st->epoch = s->epoch;
	st->concept_count = s->concepts;
	st->association_count = s->assocs;
	st->published_end = s->published_end;
	st->file_size = s->file_size;
	st->tail_bytes = s->published_end - s->r->sb.data_offset;
	st->segment_count = s->segment_count;
	st->vector_dim = s->r->sb.vector_dim;
}

static int cmp_neighbor(const void *a, const void *b)
{
	const struct sutra_neighbor *x = a, *y = b;
	if (x->confidence != y->confidence)
		return x->confidence > y->confidence ? -1 : 1;
	if (x->ordinal != y->ordinal)
		return x->ordinal < y->ordinal ? -1 : 1;
	return (int)y->outgoing - (int)x->outgoing;
}

int sutra_snapshot_neighbors(const sutra_snapshot *s, const uint8_t id[16], int type,
			     enum sutra_direction dir, size_t limit, struct sutra_neighbor *out,
			     size_t *n, size_t *total)
{
	const sutra_reader *r = s->r;
	uint64_t off;
	uint32_t o;
	struct sutra_neighbor *all = NULL;
	size_t len = 0, cap = 0;
	int rc = 0;

	if (type < -1 || type > 255 || (dir != SUTRA_DIR_BOTH && dir != SUTRA_DIR_OUT &&
					dir != SUTRA_DIR_IN))
		return SUTRA_EVALUE;
	if (!rdr_tindex_get(&r->ix, s->gen, id, s->epoch, &off, &o))
		return SUTRA_ENOTFOUND;
	struct headchunk *hk = __atomic_load_n(&r->heads[o >> RDR_CHUNK_BITS], __ATOMIC_ACQUIRE);
	uint32_t k = hk ? __atomic_load_n(&hk->head[o & (RDR_CHUNK - 1)], __ATOMIC_ACQUIRE) : 0;
	for (; k; ) {
		const struct nodechunk *nc =
			__atomic_load_n(&r->nodes[(k - 1) >> RDR_CHUNK_BITS], __ATOMIC_ACQUIRE);
		const struct enode *node = &nc->n[(k - 1) & (RDR_CHUNK - 1)];
		k = node->next;
		uint32_t src = util_get_le32(node->key), dst = util_get_le32(node->key + 4);
		uint8_t atype = node->key[8];
		int outgoing = src == o;
		if ((type >= 0 && atype != type) || (dir == SUTRA_DIR_OUT && !outgoing) ||
		    (dir == SUTRA_DIR_IN && dst != o))
			continue;
		uint64_t aoff;
		uint32_t unused;
		if (!rdr_tindex_get(&r->eix, s->egen, node->key, s->epoch, &aoff, &unused))
			continue;
		struct layout_record rec;
		struct layout_problem pb;
		if ((rc = layout_record_at(r->map, s->published_end, aoff, r->sb.vector_dim, &rec,
					   &pb)))
			break;
		if (rec.type != LAYOUT_REC_ASSOCIATION) {
			rc = SUTRA_ECORRUPT;
			break;
		}
		if (len == cap) {
			size_t nc2 = cap ? 2 * cap : 16;
			struct sutra_neighbor *p = realloc(all, nc2 * sizeof *p);
			if (!p) {
				rc = -ENOMEM;
				break;
			}
			all = p;
			cap = nc2;
		}
		struct sutra_neighbor *nb = &all[len++];
		uint32_t other = outgoing ? dst : src;
		memcpy(nb->id, id_of_ordinal(r, other), 16);
		nb->ordinal = other;
		nb->type = atype;
		nb->outgoing = (uint8_t)outgoing;
		nb->confidence = rec.u.association.confidence;
		nb->weight = rec.u.association.weight;
		nb->created_us = rec.u.association.created_us;
	}
	if (rc == 0) {
		if (len > 1)
			qsort(all, len, sizeof *all, cmp_neighbor);
		size_t m = len < limit ? len : limit;
		if (m)
			memcpy(out, all, m * sizeof *out);
		*n = m;
		if (total)
			*total = len;
	}
	free(all);
	return rc;
}

/* Calls fn(arg, other) for each association of ordinal o live in the
 * snapshot, of type (-1: any), that leaves o (out) or arrives at it (in)
 * as dir asks. Returns 0, or what fn returned when it was not 0. */
static int each_edge(const sutra_snapshot *s, uint32_t o, int type, enum sutra_direction dir,
		     int (*fn)(void *arg, uint32_t other), void *arg)
{
	const sutra_reader *r = s->r;
	struct headchunk *hk = __atomic_load_n(&r->heads[o >> RDR_CHUNK_BITS], __ATOMIC_ACQUIRE);
	uint32_t k = hk ? __atomic_load_n(&hk->head[o & (RDR_CHUNK - 1)], __ATOMIC_ACQUIRE) : 0;
	while (k) {
		const struct nodechunk *nc =
			__atomic_load_n(&r->nodes[(k - 1) >> RDR_CHUNK_BITS], __ATOMIC_ACQUIRE);
		const struct enode *node = &nc->n[(k - 1) & (RDR_CHUNK - 1)];
		k = node->next;
		uint32_t src = util_get_le32(node->key), dst = util_get_le32(node->key + 4);
		if (type >= 0 && node->key[8] != type)
			continue;
		uint64_t off;
		uint32_t unused;
		if (!rdr_tindex_get(&r->eix, s->egen, node->key, s->epoch, &off, &unused))
			continue;
		int rc = 0;
		if (src == o && dir != SUTRA_DIR_IN)
			rc = fn(arg, dst);
		if (!rc && dst == o && src != o && dir != SUTRA_DIR_OUT)
			rc = fn(arg, src);
		if (rc)
			return rc;
	}
	return 0;
}

/* One side of the bidirectional search. parent[o] = predecessor + 1 on
 * this side (the start points to itself), 0: not reached. */
/* What a search must avoid (for k paths): nodes, and steps u -> v in the
 * path's direction. */
struct ban {
	const uint8_t *node;      /* per ordinal, or NULL */
	const uint32_t (*step)[2];
	size_t nsteps;
};

struct side {
	const struct ban *ban;
	int forward;      /* 1: from the start (steps from -> other) */
	uint32_t *parent;
	uint32_t *depth;  /* edges from this side's start */
	uint32_t *frontier, *next;
	size_t nf, nn;
	uint32_t level;   /* depth of the frontier being expanded */
	const struct side *other;
	uint32_t from;    /* the ordinal being expanded */
	uint32_t meet;    /* best meeting ordinal + 1 */
	uint32_t best;    /* its path length */
};

/* Reaches other from sd->from. A node the other side reached is a meeting
 * point; the whole level is expanded and the shortest total kept, since the
 * first meeting found need not be the closest to the other start. */
static int visit_edge(void *arg, uint32_t other)
{
	struct side *sd = arg;
	if (sd->parent[other])
		return 0;
	if (sd->ban) {
		if (sd->ban->node && sd->ban->node[other])
			return 0;
		uint32_t u = sd->forward ? sd->from : other, v = sd->forward ? other : sd->from;
		for (size_t i = 0; i < sd->ban->nsteps; i++)
			if (sd->ban->step[i][0] == u && sd->ban->step[i][1] == v)
				return 0;
	}
	sd->parent[other] = sd->from + 1;
	sd->depth[other] = sd->level + 1;
	sd->next[sd->nn++] = other;
	if (sd->other->parent[other]) {
		uint32_t total = sd->level + 1 + sd->other->depth[other];
		if (!sd->meet || total < sd->best) {
			sd->meet = other + 1;
			sd->best = total;
		}
	}
	return 0;
}

/* Shortest path a -> b as ordinals into path (room for max_depth + 1),
 * avoiding ban (may be NULL). Returns 0, SUTRA_ENOTFOUND or -ENOMEM. */
static int bfs_path(const sutra_snapshot *s, uint32_t a, uint32_t b, int type,
		    enum sutra_direction dir, unsigned max_depth, const struct ban *ban,
		    uint32_t *path, size_t *len)
{
	if (a == b) {
		path[0] = a;
		*len = 1;
		return 0;
	}
	size_t n = s->next_ordinal;
	uint32_t *mem = calloc(8 * n, sizeof *mem);
	if (!mem)
		return -ENOMEM;
	/* Forward follows dir; backward follows it reversed. */
	enum sutra_direction back = dir == SUTRA_DIR_OUT ? SUTRA_DIR_IN
				    : dir == SUTRA_DIR_IN ? SUTRA_DIR_OUT
							  : SUTRA_DIR_BOTH;
	struct side f = { .parent = mem, .frontier = mem + 2 * n, .next = mem + 3 * n,
			  .depth = mem + 6 * n, .ban = ban, .forward = 1 };
	struct side g = { .parent = mem + n, .frontier = mem + 4 * n, .next = mem + 5 * n,
			  .depth = mem + 7 * n, .ban = ban, .forward = 0 };
	f.other = &g;
	g.other = &f;
	f.parent[a] = a + 1;
	g.parent[b] = b + 1;
	f.frontier[f.nf++] = a;
	g.frontier[g.nf++] = b;
	uint32_t meet = 0;
	for (unsigned depth = 0; depth < max_depth && !meet && f.nf && g.nf; depth++) {
		/* Expand the smaller frontier: one more edge on the path. */
		struct side *sd = f.nf <= g.nf ? &f : &g;
		enum sutra_direction d = sd == &f ? dir : back;
		sd->nn = 0;
		for (size_t i = 0; i < sd->nf; i++) {
			sd->from = sd->frontier[i];
			each_edge(s, sd->from, type, d, visit_edge, sd);
		}
		meet = sd->meet;
		sd->level++;
		uint32_t *t = sd->frontier;
		sd->frontier = sd->next;
		sd->next = t;
		sd->nf = sd->nn;
	}
	int rc = SUTRA_ENOTFOUND;
	if (meet) {
		uint32_t m = meet - 1;
		size_t k = 0;
		/* a ... m along f's parents (reversed), then m ... b. */
		for (uint32_t o = m;; o = f.parent[o] - 1) {
			path[k++] = o;
			if (o == a)
				break;
		}
		for (size_t i = 0; i < k / 2; i++) {
			uint32_t t = path[i];
			path[i] = path[k - 1 - i];
			path[k - 1 - i] = t;
		}
		for (uint32_t o = m; o != b;) {
			o = g.parent[o] - 1;
			path[k++] = o;
		}
		*len = k;
		rc = 0;
	}
	free(mem);
	return rc;
}

static int check_path_args(const sutra_snapshot *s, const uint8_t from[16], const uint8_t to[16],
			   int type, enum sutra_direction dir, unsigned max_depth, uint32_t *a,
			   uint32_t *b)
{
	uint64_t off;
	if (max_depth < 1 || max_depth > SUTRA_MAX_PATH_DEPTH || type < -1 || type > 255 ||
	    (dir != SUTRA_DIR_BOTH && dir != SUTRA_DIR_OUT && dir != SUTRA_DIR_IN))
		return SUTRA_EVALUE;
	if (!rdr_tindex_get(&s->r->ix, s->gen, from, s->epoch, &off, a) ||
	    !rdr_tindex_get(&s->r->ix, s->gen, to, s->epoch, &off, b))
		return SUTRA_ENOTFOUND;
	return 0;
}

int sutra_snapshot_shortest_path(const sutra_snapshot *s, const uint8_t from[16],
				 const uint8_t to[16], int type, enum sutra_direction dir,
				 unsigned max_depth, uint8_t (*out)[16], size_t *len)
{
	uint32_t a, b, path[SUTRA_MAX_PATH_DEPTH + 1];
	size_t k;
	int rc = check_path_args(s, from, to, type, dir, max_depth, &a, &b);
	if (rc == 0)
		rc = bfs_path(s, a, b, type, dir, max_depth, NULL, path, &k);
	if (rc)
		return rc;
	for (size_t i = 0; i < k; i++)
		memcpy(out[i], id_of_ordinal(s->r, path[i]), 16);
	*len = k;
	return 0;
}

#define PMAX (SUTRA_MAX_PATH_DEPTH + 1)
struct kpath {
	uint32_t o[PMAX];
	size_t len;
};

static int same_path(const struct kpath *x, const struct kpath *y)
{
	return x->len == y->len && memcmp(x->o, y->o, x->len * sizeof x->o[0]) == 0;
}

/* Yen's algorithm over bfs_path: each next path deviates from an accepted
 * one at some spur node, avoiding the accepted paths' next steps there and
 * the nodes of the root before it, so that every path is simple. */
int sutra_snapshot_paths(const sutra_snapshot *s, const uint8_t from[16], const uint8_t to[16],
			 int type, enum sutra_direction dir, unsigned max_depth, size_t k,
			 uint8_t (*out)[16], size_t *lens, size_t *count)
{
	uint32_t a, b;
	int rc = check_path_args(s, from, to, type, dir, max_depth, &a, &b);
	if (rc)
		return rc;
	if (k == 0 || k > SUTRA_MAX_PATHS)
		return SUTRA_EVALUE;
	struct kpath *acc = calloc(k, sizeof *acc);
	struct kpath *cand = NULL;
	size_t ncand = 0, capcand = 0, nacc = 0;
	uint8_t *banned = calloc(s->next_ordinal ? s->next_ordinal : 1, 1);
	uint32_t (*steps)[2] = calloc(k, sizeof *steps);
	if (!acc || !banned || !steps) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = bfs_path(s, a, b, type, dir, max_depth, NULL, acc[0].o, &acc[0].len)))
		goto out;
	nacc = 1;
	while (nacc < k && acc[nacc - 1].len > 1) {
		const struct kpath *prev = &acc[nacc - 1];
		for (size_t i = 0; i + 1 < prev->len; i++) {
			struct ban ban = { .node = banned, .step = (const uint32_t (*)[2])steps };
			for (size_t j = 0; j < nacc; j++) {
				if (acc[j].len > i + 1 &&
				    memcmp(acc[j].o, prev->o, (i + 1) * sizeof prev->o[0]) == 0) {
					steps[ban.nsteps][0] = acc[j].o[i];
					steps[ban.nsteps][1] = acc[j].o[i + 1];
					ban.nsteps++;
				}
			}
			for (size_t j = 0; j < i; j++)
				banned[prev->o[j]] = 1;
			struct kpath p;
			size_t slen;
			memcpy(p.o, prev->o, i * sizeof p.o[0]);
			rc = bfs_path(s, prev->o[i], b, type, dir, max_depth - (unsigned)i, &ban,
				      p.o + i, &slen);
			for (size_t j = 0; j < i; j++)
				banned[prev->o[j]] = 0;
			if (rc == SUTRA_ENOTFOUND)
				continue;
			if (rc)
				goto out;
			p.len = i + slen;
			int dup = 0;
			for (size_t j = 0; j < ncand && !dup; j++)
				dup = same_path(&cand[j], &p);
			for (size_t j = 0; j < nacc && !dup; j++)
				dup = same_path(&acc[j], &p);
			if (dup)
				continue;
			if (ncand == capcand) {
				size_t nc = capcand ? 2 * capcand : 16;
				struct kpath *q = realloc(cand, nc * sizeof *q);
				if (!q) {
					rc = -ENOMEM;
					goto out;
				}
				cand = q;
				capcand = nc;
			}
			cand[ncand++] = p;
		}
		rc = 0;
		if (!ncand)
			break;
		size_t best = 0;
		for (size_t j = 1; j < ncand; j++)
			if (cand[j].len < cand[best].len)
				best = j;
		acc[nacc++] = cand[best];
		cand[best] = cand[--ncand];
	}
	for (size_t j = 0; j < nacc; j++) {
		for (size_t i = 0; i < acc[j].len; i++)
			memcpy(out[j * (max_depth + 1) + i], id_of_ordinal(s->r, acc[j].o[i]), 16);
		lens[j] = acc[j].len;
	}
	*count = nacc;
	rc = 0;
out:
	free(acc);
	free(cand);
	free(banned);
	free(steps);
	return rc;
}
