/* SPDX-License-Identifier: MIT */
/* libsutra-reader: live read-only mapping, index segments read in place, a private incremental index of the tail, snapshots pinned in the lock file. */
#include "sutra/reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <roaring/roaring.h>

#include "wire/nngclose.h"
#include "wire/nngerr.h"
#include "wire/proto.h"
#include "layout/layout.h"
#include "layout/lockfile.h"
#include "layout/segindex.h"
#include "reader/internal.h"
#include "reader/tindex.h"
#include "util/endian.h"
#include "util/idmap.h"
#include "util/tokenize.h"

/* The mapping reserves this much address space once, so that the file can
 * grow under it without a remap; only bytes below a validated published
 * end are ever touched. */
#define MAP_LEN (1ull << 40)

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "embeddings are handed out as host floats: little-endian hosts only");

void rdr_okey(uint8_t key[16], uint32_t ordinal, uint8_t tag)
{
	memset(key, 0, 16);
	util_put_le32(key, ordinal);
	key[4] = tag;
}

/* ---- Segments and views --------------------------------------------------- */

static void seg_release(struct rdr_seg *g)
{
	if (g && __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		layout_segview_close(&g->sv);
		free(g);
	}
}

static void view_release(struct rdr_view *v)
{
	if (!v || __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (uint32_t i = 0; i < v->nseg; i++)
		seg_release(v->seg[i]);
	rdr_tindex_finish(&v->ix);
	rdr_tindex_finish(&v->eix);
	rdr_tindex_finish(&v->oix);
	util_idmap_finish(&v->idseen);
	util_idmap_finish(&v->eseen);
	for (uint32_t c = 0; c < RDR_MAX_CHUNKS && v->ids && v->ids[c]; c++)
		free(v->ids[c]);
	for (uint32_t c = 0; c < RDR_MAX_CHUNKS && v->nodes && v->nodes[c]; c++)
		free(v->nodes[c]);
	free(v->ids);
	free(v->nodes);
	free(v);
}

/* A new view of the segments m lists, reusing those old already has open.
 * Its tail is empty: index_blocks() fills it from m->tail_start. */
static int view_create(sutra_reader *r, const struct layout_meta *m, const struct rdr_view *old,
		       struct rdr_view **out)
{
	struct rdr_view *v = calloc(1, sizeof *v);
	struct sutra_detail pb;
	int rc = 0;
	if (!v)
		return -ENOMEM;
	v->refs = 1;
	util_idmap_init(&v->idseen);
	util_idmap_init(&v->eseen);
	if ((rc = rdr_tindex_init(&v->ix)) || (rc = rdr_tindex_init(&v->eix)) ||
	    (rc = rdr_tindex_init(&v->oix)) || !(v->ids = calloc(RDR_MAX_CHUNKS, sizeof *v->ids)) ||
	    !(v->nodes = calloc(RDR_MAX_CHUNKS, sizeof *v->nodes))) {
		view_release(v);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < m->segment_count; i++) {
		struct rdr_seg *g = NULL;
		for (uint32_t j = 0; old && j < old->nseg && !g; j++)
			if (old->seg[j]->sv.offset == m->segments[i].offset &&
			    old->seg[j]->sv.length == m->segments[i].length)
				g = old->seg[j];
		if (g) {
			__atomic_add_fetch(&g->refs, 1, __ATOMIC_ACQ_REL);
		} else {
			if (!(g = calloc(1, sizeof *g))) {
				rc = -ENOMEM;
				break;
			}
			g->refs = 1;
			if ((rc = layout_segview_open(&g->sv, r->map, m->published_end,
						      &m->segments[i], r->sb.vector_dim, &pb))) {
				free(g);
				break;
			}
		}
		v->seg[v->nseg++] = g;
		/* Oldest first, contiguous epoch ranges (FORMAT.md 10.3). */
		uint64_t want = i ? v->seg[i - 1]->sv.hdr.last_epoch + 1 : 1;
		if (g->sv.hdr.first_epoch != want || g->sv.hdr.last_epoch > m->epoch) {
			rc = SUTRA_ECORRUPT;
			break;
		}
	}
	if (rc) {
		view_release(v);
		return rc;
	}
	v->tail_start = m->tail_start;
	v->indexed_end = m->tail_start;
	if (v->nseg) {
		v->epoch = v->seg[v->nseg - 1]->sv.hdr.last_epoch;
		v->next_ordinal = (uint32_t)v->seg[v->nseg - 1]->sv.next_ordinal;
	}
	*out = v;
	return 0;
}

static int same_segments(const struct rdr_view *v, const struct layout_meta *m)
{
	if (v->nseg != m->segment_count || v->tail_start != m->tail_start)
		return 0;
	for (uint32_t i = 0; i < v->nseg; i++)
		if (v->seg[i]->sv.offset != m->segments[i].offset ||
		    v->seg[i]->sv.length != m->segments[i].length)
			return 0;
	return 1;
}

/* ---- The tail index ----------------------------------------------------------- */

static int chunk_at(void **dir, uint32_t i, size_t size)
{
	uint32_t c = i >> RDR_CHUNK_BITS;
	if (c >= RDR_MAX_CHUNKS)
		return -ENOMEM;
	if (!dir[c]) {
		void *k = calloc(1, size);
		if (!k)
			return -ENOMEM;
		__atomic_store_n(&dir[c], k, __ATOMIC_RELEASE);
	}
	return 0;
}

static int add_id(struct rdr_view *v, const uint8_t id[16])
{
	if (util_idmap_get(&v->idseen, id, NULL))
		return 0;
	uint32_t i = v->nids;
	int rc = chunk_at((void **)v->ids, i, sizeof(struct idchunk));
	if (rc || (rc = util_idmap_put(&v->idseen, id, 1)))
		return rc;
	memcpy(v->ids[i >> RDR_CHUNK_BITS]->id[i & (RDR_CHUNK - 1)], id, 16);
	__atomic_store_n(&v->nids, i + 1, __ATOMIC_RELEASE);
	return 0;
}

/* The newest head of ordinal's tail list (index + 1), 0 when none. */
static uint32_t tail_head(const struct rdr_view *v, const struct rdr_gen *og, uint32_t ordinal)
{
	uint8_t key[16];
	uint64_t head;
	uint32_t unused;
	rdr_okey(key, ordinal, TAG_HEAD);
	return rdr_tindex_get(&v->oix, og, key, UINT64_MAX, &head, &unused) ? (uint32_t)head : 0;
}

/* Appends key to the list whose head is the ordinal index entry hk. */
static int add_node_at(struct rdr_view *v, const uint8_t hk[16], const uint8_t key[16],
		       uint64_t epoch)
{
	uint32_t i = v->nnodes;
	uint64_t head;
	uint32_t unused;
	if (i == UINT32_MAX - 1)
		return -ENOMEM;
	int rc = chunk_at((void **)v->nodes, i, sizeof(struct nodechunk));
	if (rc)
		return rc;
	struct rdr_gen *g = rdr_tindex_acquire(&v->oix);
	int had = rdr_tindex_get(&v->oix, g, hk, UINT64_MAX, &head, &unused);
	rdr_tindex_release(g);
	struct enode *n = &v->nodes[i >> RDR_CHUNK_BITS]->n[i & (RDR_CHUNK - 1)];
	memcpy(n->key, key, 16);
	n->next = had ? (uint32_t)head : 0;
	v->nnodes = i + 1;
	/* Published by the version's release-store of its slot's head. */
	return rdr_tindex_put(&v->oix, hk, epoch, i + 1, 0);
}

static int add_node(struct rdr_view *v, uint32_t ordinal, const uint8_t key[16], uint64_t epoch)
{
	uint8_t hk[16];
	rdr_okey(hk, ordinal, TAG_HEAD);
	return add_node_at(v, hk, key, epoch);
}

void rdr_tkey(uint8_t key[16], uint64_t hash)
{
	memset(key, 0, 16);
	util_put_le64(key, hash);
	key[15] = TKEY_MARK;
}

/* Token hashes of one content (growable). */
struct toks {
	uint64_t *h;
	size_t n, cap;
	int nomem;
};

static int collect_token(void *arg, const char *tok, size_t len)
{
	struct toks *t = arg;
	if (t->n == t->cap) {
		size_t nc = t->cap ? 2 * t->cap : 64;
		uint64_t *p = realloc(t->h, nc * sizeof *p);
		if (!p) {
			t->nomem = 1;
			return 1;
		}
		t->h = p;
		t->cap = nc;
	}
	t->h[t->n++] = util_token_hash(tok, len);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Lists the id under each distinct token of content (the tail's text
 * index). A query checks each listed id's content as of its snapshot, so
 * a list may hold an id whose newer version no longer matches. */
static int index_text(struct rdr_view *v, const uint8_t id[16], const char *content, size_t len,
		      uint64_t epoch)
{
	struct toks t = { 0 };
	int rc = 0;
	util_tokenize(content, len, collect_token, &t);
	if (t.nomem)
		rc = -ENOMEM;
	if (t.n > 1)
		qsort(t.h, t.n, sizeof t.h[0], cmp_u64);
	for (size_t i = 0; i < t.n && !rc; i++) {
		uint8_t hk[16];
		if (i && t.h[i] == t.h[i - 1])
			continue;
		rdr_tkey(hk, t.h[i]);
		rc = add_node_at(v, hk, id, epoch);
	}
	free(t.h);
	return rc;
}

/* Indexes one association record (or its delete) of epoch. The first
 * mention of a key, whatever it says, lists it at both ends: a delete in
 * the tail must shadow the segments as much as an upsert. */
static int index_edge(struct rdr_view *v, const struct layout_record *rec, uint64_t epoch)
{
	const struct layout_association *a = &rec->u.association;
	uint8_t key[16];
	int rc;
	layout_edge_key(key, a->src_ordinal, a->dst_ordinal, a->type);
	if (!util_idmap_get(&v->eseen, key, NULL)) {
		if ((rc = util_idmap_put(&v->eseen, key, 1)) ||
		    (rc = add_node(v, a->src_ordinal, key, epoch)) ||
		    (a->dst_ordinal != a->src_ordinal &&
		     (rc = add_node(v, a->dst_ordinal, key, epoch))))
			return rc;
	}
	return rdr_tindex_put(&v->eix, key, epoch,
			      rec->type == LAYOUT_REC_ASSOCIATION ? rec->offset : 0, a->type);
}

/* Indexes the commit blocks in [v->indexed_end, lv->meta.published_end).
 * Called with mu held. On error nothing a snapshot can see changes (the
 * versions already put carry epochs no snapshot has yet). */
static int index_blocks(const sutra_reader *r, struct rdr_view *v, const struct layout_view *lv)
{
	struct sutra_detail pb;
	uint64_t pos = v->indexed_end, end = lv->meta.published_end;
	uint64_t epoch = v->epoch, bytes = 0;
	uint32_t next = v->next_ordinal;

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
		bytes += blk.length;
		layout_records_init(&it, r->map, &blk, r->sb.vector_dim);
		while ((rc = layout_records_next(&it, &rec, &pb)) == 1) {
			const struct layout_concept *c = &rec.u.concept;
			uint8_t key[16];
			if (rec.type == LAYOUT_REC_CONCEPT) {
				if (c->ordinal == next) {
					rdr_okey(key, c->ordinal, TAG_BORN);
					if ((rc = rdr_tindex_put(&v->oix, key, epoch, rec.offset,
								 c->ordinal)))
						return rc;
					next++;
				} else if (c->ordinal > next) {
					return SUTRA_ECORRUPT;
				}
				if ((rc = add_id(v, c->id)) ||
				    (rc = index_text(v, c->id, c->content, c->content_len, epoch)) ||
				    (rc = rdr_tindex_put(&v->ix, c->id, epoch, rec.offset, c->ordinal)))
					return rc;
			} else if (rec.type == LAYOUT_REC_CONCEPT_DELETE) {
				if ((rc = add_id(v, c->id)) ||
				    (rc = rdr_tindex_put(&v->ix, c->id, epoch, 0, c->ordinal)))
					return rc;
			} else if (rec.type == LAYOUT_REC_ASSOCIATION ||
				   rec.type == LAYOUT_REC_ASSOCIATION_DELETE) {
				if ((rc = index_edge(v, &rec, epoch)))
					return rc;
			}
		}
		if (rc < 0)
			return rc;
	}
	if (epoch != lv->meta.epoch)
		return SUTRA_ECORRUPT;
	v->epoch = epoch;
	v->next_ordinal = next;
	v->indexed_end = end;
	v->tail_bytes += bytes;
	return 0;
}

/* ---- Pins (docs/LOCKFILE.md section 7) ------------------------------------------ */

/* The oldest epoch a snapshot of this reader holds, or 0. Under mu. */
static uint64_t oldest_held(const sutra_reader *r)
{
	uint64_t o = 0;
	for (size_t i = 0; i < r->nheld; i++)
		if (!o || r->held[i] < o)
			o = r->held[i];
	return o;
}

/* Pins what the snapshots hold, and (while a refresh reads the meta) the
 * epoch the reader has indexed, which is never newer than the one it will
 * read next. Under mu. */
static void pin(sutra_reader *r, int refreshing)
{
	uint64_t e = oldest_held(r);
	if (refreshing) {
		uint64_t now = r->epoch ? r->epoch : 1;
		if (!e || now < e)
			e = now;
	}
	layout_lockfile_pin(r->lf, e);
}

static int refresh_locked(sutra_reader *r)
{
	struct layout_view lv;
	struct sutra_detail pb;
	pin(r, 1);
	int rc = layout_open_live(r->map, MAP_LEN, r->fd, &lv, &pb);
	if (rc == 0 && r->published_end == 0) {
		r->sb = lv.sb;
		r->published_end = lv.sb.data_offset;
	} else if (rc == 0 && memcmp(lv.sb.uuid, r->sb.uuid, 16) != 0) {
		rc = SUTRA_ECORRUPT; /* another store under the same path */
	}
	/* A slot read as torn many times (relaxed mode rewrites one slot per
	 * epoch) can make the open fall back to an older epoch: keep ours. */
	if (rc == 0 && (lv.meta.epoch > r->epoch || !r->cur)) {
		if (lv.meta.published_end < r->published_end) {
			rc = SUTRA_ECORRUPT;
		} else if (r->cur && same_segments(r->cur, &lv.meta)) {
			rc = index_blocks(r, r->cur, &lv);
		} else {
			struct rdr_view *v;
			if ((rc = view_create(r, &lv.meta, r->cur, &v)) == 0 &&
			    (rc = index_blocks(r, v, &lv)) != 0)
				view_release(v);
			if (rc == 0) {
				view_release(r->cur);
				r->cur = v;
			}
		}
		if (rc == 0) {
			r->epoch = lv.meta.epoch;
			r->published_end = lv.meta.published_end;
			r->concepts = lv.meta.concept_count;
			r->assocs = lv.meta.association_count;
			r->file_size = lv.size;
			r->next_ordinal = lv.meta.next_ordinal;
		}
	}
	pin(r, 0);
	return rc;
}

static int open_lockfile(sutra_reader *r, const char *path)
{
	size_t n = strlen(path) + sizeof ".lock";
	char *lp = malloc(n);
	uint32_t slot;
	if (!lp)
		return -ENOMEM;
	snprintf(lp, n, "%s.lock", path);
	int rc = layout_lockfile_open(lp, LAYOUT_LOCKFILE_CREATE, &r->lf, NULL);
	free(lp);
	if (rc == 0 && (rc = layout_lockfile_claim(r->lf, &slot)) != 0) {
		layout_lockfile_close(r->lf);
		r->lf = NULL;
	}
	return rc;
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
	if ((rc = open_lockfile(r, path)) == 0) {
		pthread_mutex_lock(&r->mu);
		rc = refresh_locked(r);
		pthread_mutex_unlock(&r->mu);
	}
	if (rc) {
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
		wire_nng_close_bounded(&r->sub, 1, 2000); /* wire/nngclose.h */
	pthread_mutex_destroy(&r->nmu);
	view_release(r->cur);
	layout_lockfile_close(r->lf);
	free(r->held);
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
		return wire_nng_error(rv);
	}
	nng_socket_set(r->sub, NNG_OPT_SUB_SUBSCRIBE, "", 0);
	/* DESIGN.md: the default reconnect wait is 1 s; a restarted
	 * coordinator should be heard again at once. */
	nng_socket_set_ms(r->sub, NNG_OPT_RECONNMINT, 10);
	nng_socket_set_ms(r->sub, NNG_OPT_RECONNMAXT, 200);
	if ((rv = nng_dial(r->sub, events_url, NULL, NNG_FLAG_NONBLOCK))) {
		nng_close(r->sub);
		rc = wire_nng_error(rv);
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
		if (rv) {
			/* A closed or failed socket means no more notices. */
			int rc = wire_nng_error(rv);
			return rc == -ETIMEDOUT || rc == -ENOMEM ? rc : -ENOTCONN;
		}
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


/* ---- Snapshots ------------------------------------------------------------------ */

int sutra_snapshot_acquire(sutra_reader *r, uint64_t min_epoch, sutra_snapshot **out)
{
	sutra_snapshot *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	pthread_mutex_lock(&r->mu);
	int rc = refresh_locked(r);
	if (rc == 0 && r->epoch < min_epoch)
		rc = -EAGAIN;
	if (rc == 0 && r->nheld == r->capheld) {
		size_t nc = r->capheld ? 2 * r->capheld : 8;
		uint64_t *p = realloc(r->held, nc * sizeof *p);
		if (!p)
			rc = -ENOMEM;
		else {
			r->held = p;
			r->capheld = nc;
		}
	}
	if (rc) {
		pthread_mutex_unlock(&r->mu);
		free(s);
		return rc;
	}
	struct rdr_view *v = r->cur;
	__atomic_add_fetch(&v->refs, 1, __ATOMIC_ACQ_REL);
	s->r = r;
	s->v = v;
	s->gen = rdr_tindex_acquire(&v->ix);
	s->egen = rdr_tindex_acquire(&v->eix);
	s->ogen = rdr_tindex_acquire(&v->oix);
	s->nids = __atomic_load_n(&v->nids, __ATOMIC_ACQUIRE);
	s->epoch = r->epoch;
	s->published_end = r->published_end;
	s->concepts = r->concepts;
	s->assocs = r->assocs;
	s->file_size = r->file_size;
	s->next_ordinal = r->next_ordinal;
	s->tail_bytes = v->tail_bytes;
	r->held[r->nheld++] = s->epoch;
	pin(r, 0);
	pthread_mutex_unlock(&r->mu);
	*out = s;
	return 0;
}

void sutra_snapshot_release(sutra_snapshot *s)
{
	if (!s)
		return;
	sutra_reader *r = s->r;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->nheld; i++) {
		if (r->held[i] == s->epoch) {
			r->held[i] = r->held[--r->nheld];
			break;
		}
	}
	pin(r, 0);
	pthread_mutex_unlock(&r->mu);
	rdr_tindex_release(s->gen);
	rdr_tindex_release(s->egen);
	rdr_tindex_release(s->ogen);
	view_release(s->v);
	free(s);
}

uint64_t sutra_snapshot_epoch(const sutra_snapshot *s)
{
	return s->epoch;
}

/* ---- Concepts: the tail, then segments newest first ---------------------------- */


int rdr_lookup(const sutra_snapshot *s, const uint8_t id[16], struct found *f)
{
	const struct rdr_view *v = s->v;
	struct sutra_detail pb;
	uint64_t off;
	uint32_t ordinal;
	/* An empty tail (an idle store) has nothing to ask. */
	switch (s->nids ? rdr_tindex_find(&v->ix, s->gen, id, s->epoch, &off, &ordinal)
			: RDR_ABSENT) {
	case RDR_LIVE:
		f->ordinal = ordinal;
		f->record = off;
		f->seg = NULL;
		return 1;
	case RDR_DELETED:
		return 0;
	default:
		break;
	}
	for (uint32_t j = v->nseg; j-- > 0;) {
		int rc = layout_segview_find(&v->seg[j]->sv, id, &f->c, NULL, &pb);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			if (f->c.flags & LAYOUT_SEG_DELETED)
				return 0;
			f->ordinal = f->c.ordinal;
			f->record = f->c.record;
			f->seg = v->seg[j];
			return 1;
		}
	}
	return 0;
}

int rdr_view_of(const sutra_snapshot *s, const struct found *f, struct sutra_concept_view *out)
{
	struct layout_record rec;
	struct sutra_detail pb;
	/* Tail records were checked whole when indexed, and published bytes
	 * do not change: bounds are checked again, values need not be. */
	int rc = f->seg ? layout_segview_record(&f->seg->sv, &f->c, &rec, &pb)
			: layout_record_at_trusted(s->r->map, s->published_end, f->record,
						   s->r->sb.vector_dim, &rec, &pb);
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
	struct found f;
	int rc = rdr_lookup(s, id, &f);
	return rc < 0 ? rc : rc == 0 ? SUTRA_ENOTFOUND : rdr_view_of(s, &f, out);
}

int sutra_snapshot_contains(const sutra_snapshot *s, const uint8_t id[16])
{
	struct found f;
	return rdr_lookup(s, id, &f);
}

int rdr_find_id(const sutra_snapshot *s, uint32_t o, uint8_t id[16])
{
	const struct rdr_view *v = s->v;
	uint8_t key[16];
	uint64_t off;
	uint32_t unused;
	rdr_okey(key, o, TAG_BORN);
	if (s->nids && rdr_tindex_get(&v->oix, s->ogen, key, s->epoch, &off, &unused)) {
		/* A concept record checked when it was indexed: its id is at 8. */
		memcpy(id, s->r->map + off + 8, 16);
		return 1;
	}
	for (uint32_t j = v->nseg; j-- > 0;) {
		struct layout_seg_concept c;
		struct sutra_detail pb;
		int rc = layout_segview_find_ordinal(&v->seg[j]->sv, o, &c, &pb);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			memcpy(id, c.id, 16);
			return 1;
		}
	}
	return 0;
}

/* The id of a concept the snapshot reached by ordinal (through an edge). */
static int id_of_ordinal(const sutra_snapshot *s, uint32_t o, uint8_t id[16])
{
	int rc = rdr_find_id(s, o, id);
	return rc == 1 ? 0 : rc < 0 ? rc : SUTRA_ECORRUPT; /* an edge named an ordinal no layer has */
}

int rdr_shadowed(const sutra_snapshot *s, uint32_t j, const uint8_t id[16])
{
	const struct rdr_view *v = s->v;
	uint64_t off;
	uint32_t ordinal;
	if (rdr_tindex_find(&v->ix, s->gen, id, s->epoch, &off, &ordinal) != RDR_ABSENT)
		return 1;
	for (uint32_t k = j + 1; k < v->nseg; k++) {
		struct layout_seg_concept c;
		struct sutra_detail pb;
		int rc = layout_segview_find(&v->seg[k]->sv, id, &c, NULL, &pb);
		if (rc)
			return rc;
	}
	return 0;
}

int sutra_snapshot_foreach(const sutra_snapshot *s,
			   int (*fn)(void *arg, const struct sutra_concept_view *c), void *arg)
{
	const struct rdr_view *v = s->v;
	struct sutra_concept_view cv;
	struct sutra_detail pb;
	int rc;
	/* The tail's concepts, then each segment's that no newer layer
	 * mentions (deleted in a newer segment: its tombstones say so). */
	for (uint32_t i = 0; i < s->nids; i++) {
		const uint8_t *id = v->ids[i >> RDR_CHUNK_BITS]->id[i & (RDR_CHUNK - 1)];
		struct found f;
		uint64_t off;
		uint32_t ordinal;
		if (rdr_tindex_find(&v->ix, s->gen, id, s->epoch, &off, &ordinal) != RDR_LIVE)
			continue;
		f.ordinal = ordinal;
		f.record = off;
		f.seg = NULL;
		if ((rc = rdr_view_of(s, &f, &cv)) || (rc = fn(arg, &cv)))
			return rc;
	}
	for (uint32_t j = v->nseg; j-- > 0;) {
		struct layout_segview *sv = &v->seg[j]->sv;
		for (uint64_t i = 0; i < sv->nconcepts; i++) {
			struct found f = { .seg = v->seg[j] };
			if ((rc = layout_segview_concept(sv, i, &f.c, &pb)))
				return rc;
			if (f.c.flags & LAYOUT_SEG_DELETED)
				continue;
			int dead = 0;
			for (uint32_t k = j + 1; k < v->nseg && !dead; k++)
				if ((dead = layout_segview_dead(&v->seg[k]->sv, f.c.ordinal, &pb)) < 0)
					return dead;
			if (dead)
				continue;
			if ((rc = rdr_shadowed(s, j, f.c.id)) < 0)
				return rc;
			if (rc)
				continue;
			f.ordinal = f.c.ordinal;
			f.record = f.c.record;
			if ((rc = rdr_view_of(s, &f, &cv)) || (rc = fn(arg, &cv)))
				return rc;
		}
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
	st->tail_bytes = s->tail_bytes;
	st->segment_count = s->v->nseg;
	st->vector_dim = s->r->sb.vector_dim;
}

/* ---- Associations ---------------------------------------------------------------- */

/* One association end as seen from the concept asked about. */
struct edge_end {
	uint32_t other;
	uint8_t type;
	uint8_t outgoing;
	float confidence;
	float weight;
	uint64_t created_us;
	uint8_t id[16]; /* of other; filled only when details were asked */
};

/* Per segment: where ordinal's out and in lists are. */
struct seglists {
	uint64_t out_first, in_first;
	uint32_t out_count, in_count;
};

/*
 * Calls fn(arg, e) for each association of ordinal o live in the snapshot,
 * of type (-1: any), leaving o (out) or arriving at it (in) as dir asks; a
 * loop o -> o once, as outgoing. With details, e has the values and the
 * other end's id. The tail decides first, then segments newest first: the
 * first layer that mentions a key (upsert or delete) decides it. Returns
 * 0, fn's non-zero value, or an error.
 */
static int each_edge(const sutra_snapshot *s, uint32_t o, int type, enum sutra_direction dir,
		     int details, int (*fn)(void *arg, const struct edge_end *e), void *arg)
{
	const struct rdr_view *v = s->v;
	struct sutra_detail pb;
	struct edge_end e;
	int rc = 0;

	uint32_t k = tail_head(v, s->ogen, o);
	int tail_has = k != 0;
	while (k) {
		const struct nodechunk *nc =
			__atomic_load_n(&v->nodes[(k - 1) >> RDR_CHUNK_BITS], __ATOMIC_ACQUIRE);
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
		if (!rdr_tindex_get(&v->eix, s->egen, node->key, s->epoch, &aoff, &unused))
			continue;
		e.other = outgoing ? dst : src;
		e.type = atype;
		e.outgoing = (uint8_t)outgoing;
		if (details) {
			struct layout_record rec;
			if ((rc = layout_record_at(s->r->map, s->published_end, aoff,
						   s->r->sb.vector_dim, &rec, &pb)))
				return rc;
			if (rec.type != LAYOUT_REC_ASSOCIATION)
				return SUTRA_ECORRUPT;
			e.confidence = rec.u.association.confidence;
			e.weight = rec.u.association.weight;
			e.created_us = rec.u.association.created_us;
			memcpy(e.id, outgoing ? rec.u.association.dst : rec.u.association.src, 16);
		}
		if ((rc = fn(arg, &e)))
			return rc;
	}

	struct seglists sl[LAYOUT_MAX_SEGMENTS];
	uint32_t layers = 0;
	for (uint32_t j = 0; j < v->nseg; j++) {
		struct layout_segview *sv = &v->seg[j]->sv;
		memset(&sl[j], 0, sizeof sl[j]);
		if (dir != SUTRA_DIR_IN &&
		    (rc = layout_segview_adjacent(sv, 1, o, &sl[j].out_first, &sl[j].out_count, &pb)))
			return rc;
		if (dir != SUTRA_DIR_OUT &&
		    (rc = layout_segview_adjacent(sv, 0, o, &sl[j].in_first, &sl[j].in_count, &pb)))
			return rc;
		layers += sl[j].out_count || sl[j].in_count;
	}
	/* Keys decided by a newer segment, when an older one may repeat them. */
	struct util_idmap seen;
	util_idmap_init(&seen);
	for (uint32_t j = v->nseg; j-- > 0 && rc == 0;) {
		struct layout_segview *sv = &v->seg[j]->sv;
		if (!sl[j].out_count && !sl[j].in_count)
			continue;
		layers--;
		for (int out = 1; out >= 0 && rc == 0; out--) {
			uint32_t n = out ? sl[j].out_count : sl[j].in_count;
			uint64_t first = out ? sl[j].out_first : sl[j].in_first;
			for (uint32_t i = 0; i < n && rc == 0; i++) {
				struct layout_seg_edge se;
				uint8_t key[16];
				rc = out ? layout_segview_edge(sv, first + i, &se, &pb)
					 : layout_segview_in_edge(sv, first + i, &se, &pb);
				if (rc)
					break;
				if ((out ? se.src_ordinal : se.dst_ordinal) != o) {
					rc = SUTRA_ECORRUPT;
					break;
				}
				/* A loop is in both lists: take it from the out list. */
				if ((type >= 0 && se.type != type) ||
				    (!out && se.src_ordinal == o && dir != SUTRA_DIR_IN))
					continue;
				layout_edge_key(key, se.src_ordinal, se.dst_ordinal, se.type);
				uint64_t aoff;
				uint32_t unused;
				if (tail_has && rdr_tindex_find(&v->eix, s->egen, key, s->epoch, &aoff,
								&unused) != RDR_ABSENT)
					continue;
				if (seen.len && util_idmap_get(&seen, key, NULL))
					continue;
				if (layers && (rc = util_idmap_put(&seen, key, 1)))
					break;
				if (se.flags & LAYOUT_SEG_DELETED)
					continue;
				e.other = out ? se.dst_ordinal : se.src_ordinal;
				e.type = se.type;
				e.outgoing = (uint8_t)out;
				e.confidence = se.confidence;
				e.weight = se.weight;
				e.created_us = se.created_us;
				memcpy(e.id, out ? se.dst : se.src, 16);
				/* Defence in depth: an end deleted in a newer
				 * segment cannot have live associations. */
				int dead = 0;
				for (uint32_t k2 = j + 1; details && k2 < v->nseg && !dead; k2++)
					dead = layout_segview_dead(&v->seg[k2]->sv, e.other, &pb);
				if (dead < 0) {
					rc = dead;
					break;
				}
				if (!dead)
					rc = fn(arg, &e);
			}
		}
	}
	util_idmap_finish(&seen);
	return rc;
}

struct collect {
	struct sutra_neighbor *all;
	size_t len, cap;
};

static int collect_edge(void *arg, const struct edge_end *e)
{
	struct collect *c = arg;
	if (c->len == c->cap) {
		size_t nc = c->cap ? 2 * c->cap : 16;
		struct sutra_neighbor *p = realloc(c->all, nc * sizeof *p);
		if (!p)
			return -ENOMEM;
		c->all = p;
		c->cap = nc;
	}
	struct sutra_neighbor *nb = &c->all[c->len++];
	memcpy(nb->id, e->id, 16);
	nb->ordinal = e->other;
	nb->type = e->type;
	nb->outgoing = e->outgoing;
	nb->confidence = e->confidence;
	nb->weight = e->weight;
	nb->created_us = e->created_us;
	return 0;
}

static int cmp_neighbor(const void *a, const void *b)
{
	const struct sutra_neighbor *x = a, *y = b;
	if (x->confidence != y->confidence)
		return x->confidence > y->confidence ? -1 : 1;
	if (x->ordinal != y->ordinal)
		return x->ordinal < y->ordinal ? -1 : 1;
	if (x->outgoing != y->outgoing)
		return (int)y->outgoing - (int)x->outgoing;
	return (int)x->type - (int)y->type;
}

int sutra_snapshot_neighbors(const sutra_snapshot *s, const uint8_t id[16], int type,
			     enum sutra_direction dir, size_t limit, struct sutra_neighbor *out,
			     size_t *n, size_t *total)
{
	struct found f;
	struct collect c = { 0 };
	if (type < -1 || type > 255 || (dir != SUTRA_DIR_BOTH && dir != SUTRA_DIR_OUT &&
					dir != SUTRA_DIR_IN))
		return SUTRA_EVALUE;
	int rc = rdr_lookup(s, id, &f);
	if (rc <= 0)
		return rc < 0 ? rc : SUTRA_ENOTFOUND;
	rc = each_edge(s, f.ordinal, type, dir, 1, collect_edge, &c);
	if (rc == 0) {
		if (c.len > 1)
			qsort(c.all, c.len, sizeof *c.all, cmp_neighbor);
		size_t m = c.len < limit ? c.len : limit;
		if (m)
			memcpy(out, c.all, m * sizeof *out);
		*n = m;
		if (total)
			*total = c.len;
	}
	free(c.all);
	return rc;
}

/* ---- Paths ------------------------------------------------------------------------ */

/* Ordinal -> (parent + 1, depth) for the nodes one side of a search has
 * reached: open addressing, so that a search costs what it visits, not
 * the store's size. */
struct reached {
	uint32_t *key; /* ordinal + 1; 0: empty */
	uint32_t *parent, *depth;
	size_t cap, len;
};

static size_t reached_slot(const struct reached *m, uint32_t o)
{
	uint64_t h = ((uint64_t)o + 1) * 0x9E3779B97F4A7C15ull;
	size_t i = (size_t)(h >> 32) & (m->cap - 1);
	while (m->key[i] && m->key[i] != o + 1)
		i = (i + 1) & (m->cap - 1);
	return i;
}

/* parent + 1 of o, 0 when not reached. */
static uint32_t reached_get(const struct reached *m, uint32_t o, uint32_t *depth)
{
	size_t i = reached_slot(m, o);
	if (!m->key[i])
		return 0;
	if (depth)
		*depth = m->depth[i];
	return m->parent[i];
}

static int reached_put(struct reached *m, uint32_t o, uint32_t parent, uint32_t depth)
{
	if (2 * (m->len + 1) > m->cap) {
		struct reached n = { .cap = m->cap ? 2 * m->cap : 64 };
		n.key = calloc(n.cap, sizeof *n.key);
		n.parent = malloc(n.cap * sizeof *n.parent);
		n.depth = malloc(n.cap * sizeof *n.depth);
		if (!n.key || !n.parent || !n.depth) {
			free(n.key);
			free(n.parent);
			free(n.depth);
			return -ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->key[i])
				continue;
			size_t j = reached_slot(&n, m->key[i] - 1);
			n.key[j] = m->key[i];
			n.parent[j] = m->parent[i];
			n.depth[j] = m->depth[i];
		}
		n.len = m->len;
		free(m->key);
		free(m->parent);
		free(m->depth);
		*m = n;
	}
	size_t i = reached_slot(m, o);
	m->key[i] = o + 1;
	m->parent[i] = parent;
	m->depth[i] = depth;
	m->len++;
	return 0;
}

static void reached_free(struct reached *m)
{
	free(m->key);
	free(m->parent);
	free(m->depth);
}

/* What a search must avoid (for k paths): nodes, and steps u -> v in the
 * path's direction. */
struct ban {
	const uint32_t *node;
	size_t nnodes;
	const uint32_t (*step)[2];
	size_t nsteps;
};

struct list {
	uint32_t *o;
	size_t n, cap;
};

static int list_push(struct list *l, uint32_t o)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? 2 * l->cap : 64;
		uint32_t *p = realloc(l->o, nc * sizeof *p);
		if (!p)
			return -ENOMEM;
		l->o = p;
		l->cap = nc;
	}
	l->o[l->n++] = o;
	return 0;
}

/* One side of the bidirectional search. */
struct side {
	const struct ban *ban;
	int forward;      /* 1: from the start (steps from -> other) */
	struct reached seen;
	struct list frontier, next;
	uint32_t level;   /* depth of the frontier being expanded */
	const struct side *other;
	uint32_t from;    /* the ordinal being expanded */
	uint32_t meet;    /* best meeting ordinal + 1 */
	uint32_t best;    /* its path length */
};

/* Reaches e->other from sd->from. A node the other side reached is a
 * meeting point; the whole level is expanded and the shortest total kept,
 * since the first meeting found need not be the closest to the other
 * start. */
static int visit_edge(void *arg, const struct edge_end *e)
{
	struct side *sd = arg;
	uint32_t other = e->other, odepth;
	if (reached_get(&sd->seen, other, NULL))
		return 0;
	if (sd->ban) {
		for (size_t i = 0; i < sd->ban->nnodes; i++)
			if (sd->ban->node[i] == other)
				return 0;
		uint32_t u = sd->forward ? sd->from : other, w = sd->forward ? other : sd->from;
		for (size_t i = 0; i < sd->ban->nsteps; i++)
			if (sd->ban->step[i][0] == u && sd->ban->step[i][1] == w)
				return 0;
	}
	int rc = reached_put(&sd->seen, other, sd->from + 1, sd->level + 1);
	if (rc == 0)
		rc = list_push(&sd->next, other);
	if (rc)
		return rc;
	if (reached_get(&sd->other->seen, other, &odepth)) {
		uint32_t total = sd->level + 1 + odepth;
		if (!sd->meet || total < sd->best) {
			sd->meet = other + 1;
			sd->best = total;
		}
	}
	return 0;
}

/* Shortest path a -> b as ordinals into path (room for max_depth + 1),
 * avoiding ban (may be NULL). Returns 0, SUTRA_ENOTFOUND, or an error. */
static int bfs_path(const sutra_snapshot *s, uint32_t a, uint32_t b, int type,
		    enum sutra_direction dir, unsigned max_depth, const struct ban *ban,
		    uint32_t *path, size_t *len)
{
	if (a == b) {
		path[0] = a;
		*len = 1;
		return 0;
	}
	/* Forward follows dir; backward follows it reversed. */
	enum sutra_direction back = dir == SUTRA_DIR_OUT ? SUTRA_DIR_IN
				    : dir == SUTRA_DIR_IN ? SUTRA_DIR_OUT
							  : SUTRA_DIR_BOTH;
	struct side f = { .ban = ban, .forward = 1 }, g = { .ban = ban, .forward = 0 };
	f.other = &g;
	g.other = &f;
	int rc = reached_put(&f.seen, a, a + 1, 0);
	if (rc == 0)
		rc = reached_put(&g.seen, b, b + 1, 0);
	if (rc == 0)
		rc = list_push(&f.frontier, a);
	if (rc == 0)
		rc = list_push(&g.frontier, b);
	uint32_t meet = 0;
	for (unsigned depth = 0; rc == 0 && depth < max_depth && !meet && f.frontier.n &&
				 g.frontier.n;
	     depth++) {
		/* Expand the smaller frontier: one more edge on the path. */
		struct side *sd = f.frontier.n <= g.frontier.n ? &f : &g;
		enum sutra_direction d = sd == &f ? dir : back;
		sd->next.n = 0;
		for (size_t i = 0; i < sd->frontier.n && rc == 0; i++) {
			sd->from = sd->frontier.o[i];
			rc = each_edge(s, sd->from, type, d, 0, visit_edge, sd);
		}
		meet = sd->meet;
		sd->level++;
		struct list t = sd->frontier;
		sd->frontier = sd->next;
		sd->next = t;
	}
	if (rc == 0)
		rc = SUTRA_ENOTFOUND;
	if (meet && rc == SUTRA_ENOTFOUND) {
		uint32_t m = meet - 1;
		size_t k = 0;
		/* a ... m along f's parents (reversed), then m ... b. */
		for (uint32_t o = m;; o = reached_get(&f.seen, o, NULL) - 1) {
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
			o = reached_get(&g.seen, o, NULL) - 1;
			path[k++] = o;
		}
		*len = k;
		rc = 0;
	}
	reached_free(&f.seen);
	reached_free(&g.seen);
	free(f.frontier.o);
	free(f.next.o);
	free(g.frontier.o);
	free(g.next.o);
	return rc;
}

static int check_path_args(const sutra_snapshot *s, const uint8_t from[16], const uint8_t to[16],
			   int type, enum sutra_direction dir, unsigned max_depth, uint32_t *a,
			   uint32_t *b)
{
	struct found f;
	int rc;
	if (max_depth < 1 || max_depth > SUTRA_MAX_PATH_DEPTH || type < -1 || type > 255 ||
	    (dir != SUTRA_DIR_BOTH && dir != SUTRA_DIR_OUT && dir != SUTRA_DIR_IN))
		return SUTRA_EVALUE;
	if ((rc = rdr_lookup(s, from, &f)) <= 0)
		return rc < 0 ? rc : SUTRA_ENOTFOUND;
	*a = f.ordinal;
	if ((rc = rdr_lookup(s, to, &f)) <= 0)
		return rc < 0 ? rc : SUTRA_ENOTFOUND;
	*b = f.ordinal;
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
	for (size_t i = 0; rc == 0 && i < k; i++)
		rc = id_of_ordinal(s, path[i], out[i]);
	if (rc == 0)
		*len = k;
	return rc;
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
	uint32_t (*steps)[2] = calloc(k, sizeof *steps);
	if (!acc || !steps) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = bfs_path(s, a, b, type, dir, max_depth, NULL, acc[0].o, &acc[0].len)))
		goto out;
	nacc = 1;
	while (nacc < k && acc[nacc - 1].len > 1) {
		const struct kpath *prev = &acc[nacc - 1];
		for (size_t i = 0; i + 1 < prev->len; i++) {
			/* The root's nodes before the spur are banned. */
			struct ban ban = { .node = prev->o, .nnodes = i,
					   .step = (const uint32_t (*)[2])steps };
			for (size_t j = 0; j < nacc; j++) {
				if (acc[j].len > i + 1 &&
				    memcmp(acc[j].o, prev->o, (i + 1) * sizeof prev->o[0]) == 0) {
					steps[ban.nsteps][0] = acc[j].o[i];
					steps[ban.nsteps][1] = acc[j].o[i + 1];
					ban.nsteps++;
				}
			}
			struct kpath p;
			size_t slen;
			memcpy(p.o, prev->o, i * sizeof p.o[0]);
			rc = bfs_path(s, prev->o[i], b, type, dir, max_depth - (unsigned)i, &ban,
				      p.o + i, &slen);
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
			if ((rc = id_of_ordinal(s, acc[j].o[i], out[j * (max_depth + 1) + i])))
				goto out;
		lens[j] = acc[j].len;
	}
	*count = nacc;
	rc = 0;
out:
	free(acc);
	free(cand);
	free(steps);
	return rc;
}
