/* SPDX-License-Identifier: MIT */
/* The single writer of a store: lock, recovery, in-memory state, applying operations, committing epochs. */
#include "coordinator/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <roaring/roaring.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "coordinator/segmenter.h"
#include "layout/layout.h"
#include "layout/lockfile.h"
#include "layout/segindex.h"
#include "sutra/errors.h"
#include "util/detail.h"
#include "util/endian.h"
#include "util/hex.h"
#include "util/idmap.h"
#include "util/random.h"

#define DEFAULT_DIM 768u

/* One association end as seen from a concept. */
struct edge {
	uint32_t other;
	uint8_t type;
	uint8_t out; /* 1: this concept is the source */
};

struct cstate {
	uint8_t id[16];
	uint64_t created_us;
	struct edge *edges;
	uint32_t nedges, capedges;
	uint8_t live;
};

enum undo_kind { UNDO_NEW_CONCEPT, UNDO_DEL_CONCEPT, UNDO_NEW_EDGE, UNDO_DEL_EDGE };

struct undo {
	uint8_t kind;
	uint8_t type;
	uint32_t a, b;
	uint64_t created_us; /* of a deleted association */
};

/* Request markers found in the log at open (FORMAT.md 8.5). */
struct marker {
	uint64_t seq;
	uint64_t epoch;
	uint32_t crc;
	uint8_t used;
};

struct marker_client {
	uint64_t id;
	uint64_t last_epoch;
	struct marker ring[COORD_MARKER_RING];
};

struct seginfo {
	uint64_t first_epoch, last_epoch;
	uint32_t next_ordinal;
};

/* A segment block merged away at `epoch` (the first epoch whose meta does
 * not list it): its sections can be freed once no reader and no meta slot
 * can be at an older epoch. */
struct retired {
	uint64_t offset, length, epoch;
};

/* Commit blocks [from, to) that a flush covered at `epoch`: freed once
 * nothing can use an older epoch and both meta slots start their walks
 * at `to` or later (log_start, FORMAT.md 10.4). */
struct tail_range {
	uint64_t from, to, epoch;
};

struct coord_store {
	char *path;
	int fd;
	int lock_fd;
	int lock_held;
	struct coord_io *io;
	struct coord_log log;
	enum coord_durability durability;
	struct layout_superblock sb;
	struct layout_meta meta;     /* the published epoch */
	uint64_t slot_seq[LAYOUT_META_SLOT_COUNT];
	int durable_slot;            /* slot holding the newest durable epoch */
	uint64_t durable_end;
	uint64_t durable_epoch;
	uint64_t file_size;
	int failed;

	/* logical state */
	struct util_idmap ids;   /* id -> ordinal */
	struct util_idmap edges; /* (src, dst, type) -> 1 */
	struct cstate *cs;
	uint32_t cs_cap;
	uint32_t next_ordinal;
	uint64_t concept_count;
	uint64_t association_count;

	/* the epoch being built */
	struct layout_builder b;
	uint64_t now_us;
	struct undo *undo;
	size_t undo_len, undo_cap;
	size_t mark_undo;
	size_t mark_len;
	uint32_t mark_items;
	uint32_t *req_touched; /* ordinals touched by the current request */
	size_t req_touched_len, req_touched_cap;
	roaring_bitmap_t *touched;      /* of the epoch being built */
	roaring_bitmap_t *last_touched; /* of the last committed epoch */
	float *scratch;                 /* host floats of one embedding */

	/* request markers replayed at open */
	struct marker_client *markers;
	uint32_t nmarkers;
	struct util_idmap marker_ix;

	/* index segments (FORMAT.md section 10) */
	uint64_t log_end;           /* where the next block goes */
	uint64_t segment_bytes;     /* tail commit bytes that start a flush; 0: never */
	uint64_t tail_commit_bytes; /* commit block bytes from tail_start on */
	uint64_t job_tail_bytes;    /* of the flush being built */
	uint64_t tail_items;        /* records in the tail's commit blocks */
	uint64_t job_tail_items;
	uint64_t placing_offset;    /* of the block the builder is writing */
	struct seginfo seginfo[LAYOUT_MAX_SEGMENTS]; /* of meta.segments[i] */
	struct coord_segmenter *segmenter;
	struct retired *retired;    /* segment blocks no meta lists any more */
	size_t nretired, capretired;
	struct tail_range *tails;   /* flushed commit blocks waiting to be freed */
	uint64_t log_retention;     /* bytes of flushed log kept below tail_start */
	size_t ntails, captails;
	uint64_t slot_log_start[LAYOUT_META_SLOT_COUNT];
	uint64_t slot_epoch[LAYOUT_META_SLOT_COUNT];
	uint64_t last_reclaim_ms;
	uint64_t last_commit_ms;    /* of a commit with records: idle flushes wait */
	struct layout_lockfile *lockf; /* reader slots; NULL: space is never freed */

	/* statistics */
	uint64_t commits, syncs;
};

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- Lock --------------------------------------------------------------- */

/* The process also keeps the lock files it holds, so that a second open in
 * this process is refused with a message naming this process, before it
 * even tries the kernel lock. */
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;
static struct held {
	dev_t dev;
	ino_t ino;
	struct held *next;
} *held;

static int held_add(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	pthread_mutex_lock(&held_mu);
	for (struct held *h = held; h; h = h->next) {
		if (h->dev == st.st_dev && h->ino == st.st_ino) {
			pthread_mutex_unlock(&held_mu);
			return SUTRA_ELOCKED;
		}
	}
	struct held *h = malloc(sizeof *h);
	if (!h) {
		pthread_mutex_unlock(&held_mu);
		return -ENOMEM;
	}
	h->dev = st.st_dev;
	h->ino = st.st_ino;
	h->next = held;
	held = h;
	pthread_mutex_unlock(&held_mu);
	return 0;
}

static void held_del(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return;
	pthread_mutex_lock(&held_mu);
	for (struct held **p = &held; *p; p = &(*p)->next) {
		if ((*p)->dev == st.st_dev && (*p)->ino == st.st_ino) {
			struct held *h = *p;
			*p = h->next;
			free(h);
			break;
		}
	}
	pthread_mutex_unlock(&held_mu);
}

/* An OFD write lock on byte 0 of "<path>.lock". Not a classic fcntl lock:
 * a process drops all its classic locks on a file when it closes any
 * descriptor of that file, and readers in this process (lock-file slots)
 * or a refused second open would do exactly that. The lock goes away with
 * the process, however it dies. */
static int take_lock(struct coord_store *s, struct sutra_detail *why)
{
	size_t n = strlen(s->path) + sizeof ".lock";
	char *lp = malloc(n);
	if (!lp)
		return -ENOMEM;
	snprintf(lp, n, "%s.lock", s->path);
	s->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (s->lock_fd < 0) {
		int err = -errno;
		util_fail(err, why, "cannot open lock file %s: %s", lp, strerror(errno));
		free(lp);
		return err;
	}
	int rc = held_add(s->lock_fd);
	if (rc) {
		if (rc == SUTRA_ELOCKED)
			util_fail(rc, why,
			     "store %s is already open for writing in this process, pid %ld",
			     s->path, (long)getpid());
		close(s->lock_fd);
		s->lock_fd = -1;
		free(lp);
		return rc;
	}
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
	if (fcntl(s->lock_fd, F_OFD_SETLK, &fl) == 0) {
		/* The pid names this writer to a refused one (F_OFD_GETLK
		 * cannot); without it the lock still holds. */
		if (layout_lockfile_write_writer_pid(s->lock_fd, (int64_t)getpid()))
			coord_logf(&s->log, COORD_LOG_WARN, "cannot write the pid into %s", lp);
		s->lock_held = 1;
		free(lp);
		return 0;
	}
	held_del(s->lock_fd);
	int err = errno;
	if (err == EACCES || err == EAGAIN) {
		long holder = (long)layout_lockfile_read_writer_pid(s->lock_fd);
		if (holder > 0)
			util_fail(SUTRA_ELOCKED, why,
			     "store %s is locked by another writer, pid %ld (lock file %s)", s->path,
			     holder, lp);
		else
			util_fail(SUTRA_ELOCKED, why,
			     "store %s is locked by another writer (lock file %s)", s->path, lp);
		free(lp);
		return SUTRA_ELOCKED;
	}
	util_fail(-err, why, "cannot lock %s: %s", lp, strerror(err));
	free(lp);
	return -err;
}

/* ---- Logical state ------------------------------------------------------ */

static int grow_cs(struct coord_store *s, uint32_t ordinal)
{
	if (ordinal < s->cs_cap)
		return 0;
	uint32_t cap = s->cs_cap ? s->cs_cap : 1024;
	while (cap <= ordinal) {
		if (cap > UINT32_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	struct cstate *n = realloc(s->cs, (size_t)cap * sizeof *n);
	if (!n)
		return -ENOMEM;
	memset(n + s->cs_cap, 0, (size_t)(cap - s->cs_cap) * sizeof *n);
	s->cs = n;
	s->cs_cap = cap;
	return 0;
}

static int adj_add(struct cstate *c, uint32_t other, uint8_t type, uint8_t out)
{
	if (c->nedges == c->capedges) {
		uint32_t cap = c->capedges ? 2 * c->capedges : 4;
		struct edge *e = realloc(c->edges, (size_t)cap * sizeof *e);
		if (!e)
			return -ENOMEM;
		c->edges = e;
		c->capedges = cap;
	}
	c->edges[c->nedges++] = (struct edge){ .other = other, .type = type, .out = out };
	return 0;
}

static void adj_del(struct cstate *c, uint32_t other, uint8_t type, uint8_t out)
{
	for (uint32_t i = 0; i < c->nedges; i++) {
		struct edge *e = &c->edges[i];
		if (e->other == other && e->type == type && e->out == out) {
			*e = c->edges[--c->nedges];
			return;
		}
	}
}

/* Adds an association to the state (set with its creation time, both
 * adjacencies, count). */
static int edge_insert(struct coord_store *s, uint32_t src, uint32_t dst, uint8_t type,
		       uint64_t created_us)
{
	unsigned char key[16];
	layout_edge_key(key, src, dst, type);
	int rc = util_idmap_put(&s->edges, key, created_us);
	if (rc)
		return rc;
	if ((rc = adj_add(&s->cs[src], dst, type, 1)) ||
	    (rc = adj_add(&s->cs[dst], src, type, 0))) {
		adj_del(&s->cs[src], dst, type, 1);
		util_idmap_del(&s->edges, key);
		return rc;
	}
	s->association_count++;
	return 0;
}

static void edge_remove(struct coord_store *s, uint32_t src, uint32_t dst, uint8_t type)
{
	unsigned char key[16];
	layout_edge_key(key, src, dst, type);
	util_idmap_del(&s->edges, key);
	adj_del(&s->cs[src], dst, type, 1);
	adj_del(&s->cs[dst], src, type, 0);
	s->association_count--;
}

/* 1 if the association exists (its creation time in *created_us). */
static int edge_find(const struct coord_store *s, uint32_t src, uint32_t dst, uint8_t type,
		     uint64_t *created_us)
{
	unsigned char key[16];
	layout_edge_key(key, src, dst, type);
	return util_idmap_get(&s->edges, key, created_us);
}

static int lookup(const struct coord_store *s, const uint8_t id[16], uint32_t *ordinal)
{
	uint64_t v;
	if (!util_idmap_get(&s->ids, id, &v))
		return 0;
	*ordinal = (uint32_t)v;
	return 1;
}

/* Remembers a request marker met during replay: per client a ring of the
 * last COORD_MARKER_RING, for the COORD_MARKER_CLIENTS clients seen last. */
static int remember_marker(struct coord_store *s, uint64_t client_id, uint64_t seq, uint32_t crc,
			   uint64_t epoch)
{
	unsigned char key[16] = { 0 };
	uint64_t ix;

	util_put_le64(key, client_id);
	if (!util_idmap_get(&s->marker_ix, key, &ix)) {
		if (!s->markers &&
		    !(s->markers = calloc(COORD_MARKER_CLIENTS, sizeof *s->markers)))
			return -ENOMEM;
		if (s->nmarkers < COORD_MARKER_CLIENTS) {
			ix = s->nmarkers++;
		} else {
			ix = 0;
			for (uint32_t i = 1; i < s->nmarkers; i++)
				if (s->markers[i].last_epoch < s->markers[ix].last_epoch)
					ix = i;
			unsigned char old[16] = { 0 };
			util_put_le64(old, s->markers[ix].id);
			util_idmap_del(&s->marker_ix, old);
		}
		int rc = util_idmap_put(&s->marker_ix, key, ix);
		if (rc)
			return rc;
		memset(&s->markers[ix], 0, sizeof s->markers[ix]);
		s->markers[ix].id = client_id;
	}
	struct marker_client *mc = &s->markers[ix];
	mc->last_epoch = epoch;
	mc->ring[seq % COORD_MARKER_RING] =
		(struct marker){ .seq = seq, .epoch = epoch, .crc = crc, .used = 1 };
	return 0;
}

/* Replays the verified log of the current epoch into the state. */
static void concept_gone(struct coord_store *s, uint32_t ordinal)
{
	uint64_t have;
	struct cstate *cs = &s->cs[ordinal];
	if (!cs->live)
		return;
	cs->live = 0;
	if (util_idmap_get(&s->ids, cs->id, &have) && have == ordinal)
		util_idmap_del(&s->ids, cs->id);
	s->concept_count--;
}

/* The state the current meta's segments give (oldest first), for a log
 * whose commit blocks below log_start may be freed. */
static int load_from_segments(struct coord_store *s, const struct layout_view *v,
			      struct sutra_detail *pb)
{
	const struct layout_meta *m = &v->meta;
	int rc = 0;
	for (uint32_t j = 0; j < m->segment_count && !rc; j++) {
		struct layout_segview sv;
		const roaring_bitmap_t *dead;
		if ((rc = layout_segview_open(&sv, v->base, m->published_end, &m->segments[j],
					      v->sb.vector_dim, pb)))
			return rc;
		if ((rc = layout_segview_tombstones(&sv, &dead, pb)) == 0) {
			roaring_uint32_iterator_t *it = roaring_create_iterator(dead);
			for (; it && it->has_value; roaring_advance_uint32_iterator(it))
				if (it->current_value < s->cs_cap)
					concept_gone(s, it->current_value);
			roaring_free_uint32_iterator(it);
		}
		for (uint64_t i = 0; i < sv.nconcepts && !rc; i++) {
			struct layout_seg_concept c;
			struct layout_record rec;
			if ((rc = layout_segview_concept(&sv, i, &c, pb)) || (rc = grow_cs(s, c.ordinal)))
				break;
			if (c.flags & LAYOUT_SEG_DELETED) {
				concept_gone(s, c.ordinal);
				continue;
			}
			if ((rc = layout_segview_record(&sv, &c, &rec, pb)))
				break;
			struct cstate *cs = &s->cs[c.ordinal];
			if (!cs->live) {
				memcpy(cs->id, c.id, 16);
				cs->live = 1;
				if ((rc = util_idmap_put(&s->ids, c.id, c.ordinal)))
					break;
				s->concept_count++;
			}
			cs->created_us = rec.u.concept.created_us;
		}
		for (uint64_t i = 0; i < sv.nedges && !rc; i++) {
			struct layout_seg_edge e;
			if ((rc = layout_segview_edge(&sv, i, &e, pb)))
				break;
			if (e.src_ordinal >= s->cs_cap || e.dst_ordinal >= s->cs_cap) {
				util_detail_set(pb, sv.offset, "segment edge names an unknown ordinal");
				rc = SUTRA_ECORRUPT;
				break;
			}
			int have = edge_find(s, e.src_ordinal, e.dst_ordinal, e.type, NULL);
			if (e.flags & LAYOUT_SEG_DELETED) {
				if (have)
					edge_remove(s, e.src_ordinal, e.dst_ordinal, e.type);
			} else if (!have) {
				rc = edge_insert(s, e.src_ordinal, e.dst_ordinal, e.type, e.created_us);
			}
		}
		layout_segview_close(&sv);
	}
	return rc;
}

static int replay(struct coord_store *s, const struct layout_view *v, struct sutra_detail *pb)
{
	uint64_t pos = layout_log_start(&v->sb, &v->meta);
	int from_segments = pos > v->sb.data_offset;
	int rc;
	if (from_segments && (rc = load_from_segments(s, v, pb)))
		return rc;

	while (pos < v->meta.published_end) {
		struct layout_block blk;
		struct layout_record_iter it;
		struct layout_record rec;
		rc = layout_block_decode(v->base, v->meta.published_end, pos, &blk, pb);
		if (rc)
			return rc;
		pos = blk.offset + blk.length;
		if (blk.type != LAYOUT_BLOCK_COMMIT)
			continue;
		/* Covered by the segments: only its request markers matter. */
		int covered = from_segments && blk.offset < v->meta.tail_start;
		layout_records_init(&it, v->base, &blk, v->sb.vector_dim);
		while ((rc = layout_records_next(&it, &rec, pb)) == 1) {
			if (covered && rec.type != LAYOUT_REC_REQUEST)
				continue;
			if (rec.type == LAYOUT_REC_CONCEPT) {
				const struct layout_concept *c = &rec.u.concept;
				if ((rc = grow_cs(s, c->ordinal)))
					return rc;
				struct cstate *cs = &s->cs[c->ordinal];
				if (!cs->live) {
					memcpy(cs->id, c->id, 16);
					cs->live = 1;
					if ((rc = util_idmap_put(&s->ids, c->id, c->ordinal)))
						return rc;
					s->concept_count++;
				}
				cs->created_us = c->created_us;
			} else if (rec.type == LAYOUT_REC_REQUEST) {
				if ((rc = remember_marker(s, rec.u.request.client_id,
							  rec.u.request.seq,
							  rec.u.request.request_crc32c, blk.epoch)))
					return rc;
			} else if (rec.type == LAYOUT_REC_CONCEPT_DELETE) {
				struct cstate *cs = &s->cs[rec.u.concept.ordinal];
				cs->live = 0;
				util_idmap_del(&s->ids, cs->id);
				s->concept_count--;
			} else if (rec.type == LAYOUT_REC_ASSOCIATION) {
				const struct layout_association *a = &rec.u.association;
				if (!edge_find(s, a->src_ordinal, a->dst_ordinal, a->type, NULL) &&
				    (rc = edge_insert(s, a->src_ordinal, a->dst_ordinal, a->type,
						      a->created_us)))
					return rc;
			} else {
				const struct layout_association *a = &rec.u.association;
				edge_remove(s, a->src_ordinal, a->dst_ordinal, a->type);
			}
		}
		if (rc < 0)
			return rc;
	}
	s->next_ordinal = v->meta.next_ordinal;
	return 0;
}

/* ---- Open and recovery -------------------------------------------------- */

static int retire(struct coord_store *s, uint64_t offset, uint64_t length, uint64_t epoch)
{
	if (s->nretired == s->capretired) {
		size_t nc = s->capretired ? 2 * s->capretired : 16;
		struct retired *p = realloc(s->retired, nc * sizeof *p);
		if (!p)
			return -ENOMEM;
		s->retired = p;
		s->capretired = nc;
	}
	s->retired[s->nretired++] = (struct retired){ offset, length, epoch };
	return 0;
}

/* The reader-slot table of the lock file (docs/LOCKFILE.md). An OFD lock
 * holds the writer lock, so this second descriptor of the file is safe. */
static int open_slots(struct coord_store *s)
{
	size_t n = strlen(s->path) + sizeof ".lock";
	char *lp = malloc(n);
	if (!lp)
		return -ENOMEM;
	snprintf(lp, n, "%s.lock", s->path);
	int rc = layout_lockfile_open(lp, LAYOUT_LOCKFILE_CREATE, &s->lockf, NULL);
	free(lp);
	return rc;
}

static int add_tail(struct coord_store *s, uint64_t from, uint64_t to, uint64_t epoch)
{
	if (s->ntails == s->captails) {
		size_t nc = s->captails ? 2 * s->captails : 16;
		struct tail_range *p = realloc(s->tails, nc * sizeof *p);
		if (!p)
			return -ENOMEM;
		s->tails = p;
		s->captails = nc;
	}
	s->tails[s->ntails++] = (struct tail_range){ from, to, epoch };
	return 0;
}

static int listed(const struct layout_meta *m, uint64_t off)
{
	for (uint32_t i = 0; i < m->segment_count; i++)
		if (m->segments[i].offset == off)
			return 1;
	return 0;
}

/* From the verified log: what the current meta's segments cover, the
 * commit bytes of the tail, and the segment blocks no slot lists (merged
 * away before a restart: freed once every reader is past this epoch). */
static int load_segments(struct coord_store *s, const struct layout_view *v, struct sutra_detail *why)
{
	struct sutra_detail pb;
	const struct layout_meta *m = &v->meta, *om = NULL;
	uint64_t start = layout_log_start(&v->sb, m);
	int rc;
	for (int i = 0; i < (int)LAYOUT_META_SLOT_COUNT; i++) {
		int valid = v->slot_state[i] == LAYOUT_SLOT_VALID;
		s->slot_epoch[i] = valid ? v->slots[i].epoch : 0;
		s->slot_log_start[i] = valid ? layout_log_start(&v->sb, &v->slots[i])
					     : v->sb.data_offset;
		if (i != v->current && valid)
			om = &v->slots[i];
	}
	for (uint32_t i = 0; i < m->segment_count; i++) {
		struct layout_block blk;
		struct layout_segment seg;
		if ((rc = layout_block_decode(v->base, m->published_end, m->segments[i].offset, &blk,
					      &pb)) ||
		    (rc = layout_segment_decode_table(v->base, &blk, &seg, NULL, 0, &pb)))
			return util_fail(rc, why, "%s: %s", s->path, pb.what);
		s->seginfo[i].first_epoch = seg.first_epoch;
		s->seginfo[i].last_epoch = seg.last_epoch;
		s->seginfo[i].next_ordinal = seg.next_ordinal;
	}
	/* Whatever only the older slot lists is garbage once that slot is
	 * rewritten: retired at the next epoch. */
	for (uint32_t i = 0; om && i < om->segment_count; i++)
		if (om->segments[i].offset < start && !listed(m, om->segments[i].offset) &&
		    (rc = retire(s, om->segments[i].offset, om->segments[i].length, m->epoch + 1)))
			return rc;
	/* Commit blocks before log_start were flushed before this start;
	 * freeing them again is harmless. */
	if (start > v->sb.data_offset && (rc = add_tail(s, v->sb.data_offset, start, 0)))
		return rc;
	for (uint64_t pos = start; pos < m->published_end;) {
		struct layout_block blk;
		struct layout_segment seg;
		if ((rc = layout_block_decode(v->base, m->published_end, pos, &blk, &pb)))
			return util_fail(rc, why, "%s: %s", s->path, pb.what);
		pos = blk.offset + blk.length;
		if (blk.type == LAYOUT_BLOCK_COMMIT) {
			if (blk.offset >= m->tail_start) {
				s->tail_commit_bytes += blk.length;
				s->tail_items += blk.item_count;
			}
			continue;
		}
		if ((rc = layout_segment_decode_table(v->base, &blk, &seg, NULL, 0, &pb)))
			return util_fail(rc, why, "%s: %s", s->path, pb.what);
		if (!listed(m, blk.offset) && (rc = retire(s, blk.offset, blk.length, m->epoch + 1)))
			return rc;
	}
	/* Flushed commit blocks between log_start and tail_start. */
	if (m->tail_start > start && (rc = add_tail(s, start, m->tail_start, m->epoch + 1)))
		return rc;
	return 0;
}

static int map_file(int fd, const unsigned char **base, uint64_t *size)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	*base = NULL;
	if (st.st_size == 0)
		return 0;
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	*base = p;
	return 0;
}

static int create_store(const struct coord_store_options *o, struct sutra_detail *why)
{
	struct layout_superblock sb;
	uint32_t dim = o->vector_dim ? o->vector_dim : DEFAULT_DIM;

	if (dim > LAYOUT_MAX_VECTOR_DIM)
		return util_fail(SUTRA_EVALUE, why, "vector dimension %u exceeds %u", dim,
			    LAYOUT_MAX_VECTOR_DIM);
	layout_superblock_defaults(&sb, dim);
	sb.created_us = now_us();
	int rc = util_random_uuid(sb.uuid);
	if (rc == 0)
		rc = layout_create_file(o->path, &sb, sb.created_us);
	if (rc == -EEXIST)
		return 0; /* created by someone else in between: recover it */
	if (rc)
		return util_fail(rc, why, "cannot create %s: %s", o->path, sutra_strerror(rc));
	coord_logf(&o->log, COORD_LOG_NOTICE, "created %s (dimension %u, cosine)", o->path, dim);
	return 0;
}

/* Recovery (FORMAT.md 11.4). v is the opened image; other_bad is NULL
 * when the other meta slot is sound (an older epoch of this log, or empty
 * at epoch 0), else why not. Fixes the file so that the next commit starts
 * from a clean state, and reports in *need_commit whether the other slot
 * must be written again (it was cleared, or is empty past epoch 0). */
static int repair(struct coord_store *s, const struct layout_view *v, uint64_t size,
		  const char *other_bad, int *need_commit, struct sutra_detail *why)
{
	int other = 1 - v->current;

	*need_commit = 0;
	if (size > v->meta.published_end) {
		coord_logf(&s->log, COORD_LOG_NOTICE,
			   "recovery: discarding %llu unpublished bytes after offset %llu",
			   (unsigned long long)(size - v->meta.published_end),
			   (unsigned long long)v->meta.published_end);
		if (ftruncate(s->fd, (off_t)v->meta.published_end) < 0)
			return util_fail(-errno, why, "cannot truncate %s: %s", s->path,
				    strerror(errno));
	}
	if (other_bad && v->slot_state[other] != LAYOUT_SLOT_EMPTY) {
		static const unsigned char zero[LAYOUT_META_SLOT_SIZE];
		coord_logf(&s->log, COORD_LOG_NOTICE, "recovery: clearing meta slot %d (%s)", other,
			   other_bad);
		uint64_t off = v->sb.meta_offset + (uint64_t)other * v->sb.meta_slot_size;
		struct coord_io_write w = { .offset = off, .buf = zero, .len = sizeof zero };
		int rc = coord_io_submit(s->io, &w, 1, 0);
		if (rc)
			return util_fail(rc, why, "cannot clear meta slot %d: %s", other,
				    strerror(-rc));
	}
	if (other_bad)
		*need_commit = 1;
	/* Always sync at start: in relaxed mode the previous life may have left
	 * published epochs that are not durable yet. */
	int rc = coord_io_sync(s->io);
	if (rc)
		return util_fail(rc, why, "fdatasync of %s failed: %s", s->path, strerror(-rc));
	s->syncs++;
	return 0;
}

int coord_store_open(const struct coord_store_options *o, struct coord_store **out, struct sutra_detail *why)
{
	struct coord_store *s = calloc(1, sizeof *s);
	const unsigned char *base = NULL;
	uint64_t size = 0;
	struct layout_view v;
	struct sutra_detail pb;
	int rc, fell_back_rc = 0;

	if (!s)
		return -ENOMEM;
	s->fd = -1;
	s->lock_fd = -1;
	s->log = o->log;
	s->durability = o->durability;
	util_idmap_init(&s->ids);
	util_idmap_init(&s->edges);
	util_idmap_init(&s->marker_ix);
	s->touched = roaring_bitmap_create();
	s->last_touched = roaring_bitmap_create();
	if (!(s->path = strdup(o->path)) || !s->touched || !s->last_touched) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = take_lock(s, why)))
		goto fail;
	if (access(o->path, F_OK) != 0 && errno == ENOENT && (rc = create_store(o, why)))
		goto fail;
	s->fd = open(o->path, O_RDWR | O_CLOEXEC);
	if (s->fd < 0) {
		rc = util_fail(-errno, why, "cannot open %s: %s", o->path, strerror(errno));
		goto fail;
	}
	if ((rc = coord_io_open(s->fd, o->io, o->fault_spec, &s->io, &fell_back_rc))) {
		util_fail(rc, why, "cannot start the %s I/O backend: %s",
		     o->io == COORD_IO_URING ? "io_uring" : "requested", strerror(-rc));
		goto fail;
	}
	if (fell_back_rc)
		coord_logf(&s->log, COORD_LOG_WARN,
			   "io_uring unavailable (%s): using pwrite/fdatasync instead",
			   strerror(-fell_back_rc));

	if ((rc = map_file(s->fd, &base, &size))) {
		util_fail(rc, why, "cannot map %s: %s", o->path, strerror(-rc));
		goto fail;
	}
	if ((rc = layout_open(base, size, &v, &pb))) {
		util_fail(rc, why, "%s: %s at offset %llu", o->path, pb.what,
		     (unsigned long long)pb.offset);
		goto fail;
	}
	if (o->vector_dim_explicit && o->vector_dim != v.sb.vector_dim) {
		rc = util_fail(SUTRA_EDIM, why,
			  "%s has vector dimension %u, not the %u asked for", o->path,
			  v.sb.vector_dim, o->vector_dim);
		goto fail;
	}
	if (v.fell_back)
		coord_logf(&s->log, COORD_LOG_WARN,
			   "recovery: newest meta slot rejected (%s at offset %llu); opening at "
			   "epoch %llu",
			   v.fallback_problem.what, (unsigned long long)v.fallback_problem.offset,
			   (unsigned long long)v.meta.epoch);
	/* The whole file first; when that fails, the published log alone:
	 * a bad other slot is repaired below, a bad log is not. */
	struct sutra_detail other_pb;
	int other_sound = layout_verify(&v, NULL, &other_pb) == 0;
	if (!other_sound && (rc = layout_verify_log(&v, NULL, &pb))) {
		util_fail(rc, why, "%s does not verify: %s at offset %llu", o->path, pb.what,
		     (unsigned long long)pb.offset);
		goto fail;
	}
	s->sb = v.sb;
	s->meta = v.meta;
	for (int i = 0; i < (int)LAYOUT_META_SLOT_COUNT; i++)
		s->slot_seq[i] = v.slot_state[i] == LAYOUT_SLOT_VALID ? v.slots[i].seq : 0;
	if ((rc = replay(s, &v, &pb))) {
		util_fail(rc, why, "%s: replay failed: %s", o->path,
		     rc == -ENOMEM ? "out of memory" : pb.what);
		goto fail;
	}
	if ((rc = load_segments(s, &v, why)))
		goto fail;
	int need_commit;
	if ((rc = repair(s, &v, size, other_sound ? NULL : other_pb.what, &need_commit, why)))
		goto fail;
	munmap((void *)base, (size_t)size);
	base = NULL;

	s->durable_slot = v.current;
	s->durable_end = s->meta.published_end;
	s->durable_epoch = s->meta.epoch;
	s->file_size = s->meta.published_end;
	s->log_end = s->meta.published_end;
	layout_builder_init(&s->b, s->sb.vector_dim);
	s->segment_bytes = o->segment_bytes;
	s->log_retention = o->log_retention;
	if (s->segment_bytes &&
	    (rc = coord_segmenter_start(s->path, &s->sb, &s->segmenter))) {
		util_fail(rc, why, "cannot start the segment builder: %s", strerror(-rc));
		goto fail;
	}
	if ((rc = open_slots(s)))
		coord_logf(&s->log, COORD_LOG_WARN,
			   "reader slots unavailable (%s): merged-away segments are kept",
			   sutra_strerror(rc));
	if (!(s->scratch = malloc((size_t)s->sb.vector_dim * sizeof(float)))) {
		rc = -ENOMEM;
		goto fail;
	}
	if (need_commit) {
		/* The other slot was cleared: an empty epoch fills it again, so
		 * that both slots hold epochs of this log (FORMAT.md 11.4). */
		uint64_t e;
		int committed;
		coord_store_request_begin(s);
		coord_store_request_end(s, 1);
		s->durability = COORD_DURABILITY_SYNC;
		rc = coord_store_commit(s, 1, &e, &committed);
		s->durability = o->durability;
		if (rc) {
			util_fail(rc, why, "recovery commit failed: %s", strerror(-rc));
			goto fail;
		}
	}
	coord_logf(&s->log, COORD_LOG_INFO,
		   "opened %s at epoch %llu: %llu concepts, %llu associations, %llu bytes, I/O %s",
		   s->path, (unsigned long long)s->meta.epoch,
		   (unsigned long long)s->concept_count, (unsigned long long)s->association_count,
		   (unsigned long long)s->meta.published_end, coord_io_name(s->io));
	*out = s;
	return 0;

fail:
	if (base)
		munmap((void *)base, (size_t)size);
	coord_store_close(s);
	return rc;
}

int coord_store_close(struct coord_store *s)
{
	if (!s)
		return 0;
	int rc = s->failed;
	if (!rc && s->io && coord_store_has_unsynced(s))
		rc = coord_store_sync(s);
	coord_segmenter_stop(s->segmenter);
	free(s->retired);
	free(s->tails);
	layout_lockfile_close(s->lockf);
	coord_io_close(s->io);
	if (s->fd >= 0)
		close(s->fd);
	if (s->lock_fd >= 0) {
		if (s->lock_held)
			held_del(s->lock_fd);
		close(s->lock_fd);
	}
	for (uint32_t i = 0; i < s->cs_cap; i++)
		free(s->cs[i].edges);
	free(s->cs);
	util_idmap_finish(&s->ids);
	util_idmap_finish(&s->edges);
	util_idmap_finish(&s->marker_ix);
	free(s->markers);
	layout_builder_finish(&s->b);
	free(s->undo);
	free(s->req_touched);
	free(s->scratch);
	if (s->touched)
		roaring_bitmap_free(s->touched);
	if (s->last_touched)
		roaring_bitmap_free(s->last_touched);
	free(s->path);
	free(s);
	return rc;
}

/* ---- Applying operations ------------------------------------------------ */

static int push_undo(struct coord_store *s, uint8_t kind, uint32_t a, uint32_t b, uint8_t type,
		     uint64_t created_us)
{
	if (s->undo_len == s->undo_cap) {
		size_t cap = s->undo_cap ? 2 * s->undo_cap : 256;
		struct undo *u = realloc(s->undo, cap * sizeof *u);
		if (!u)
			return -ENOMEM;
		s->undo = u;
		s->undo_cap = cap;
	}
	s->undo[s->undo_len++] =
		(struct undo){ .kind = kind, .type = type, .a = a, .b = b, .created_us = created_us };
	return 0;
}

static int touch(struct coord_store *s, uint32_t ordinal)
{
	if (s->req_touched_len == s->req_touched_cap) {
		size_t cap = s->req_touched_cap ? 2 * s->req_touched_cap : 64;
		uint32_t *t = realloc(s->req_touched, cap * sizeof *t);
		if (!t)
			return -ENOMEM;
		s->req_touched = t;
		s->req_touched_cap = cap;
	}
	s->req_touched[s->req_touched_len++] = ordinal;
	return 0;
}

void coord_store_request_begin(struct coord_store *s)
{
	if (s->b.items == 0 && s->undo_len == 0)
		s->now_us = now_us(); /* first request of the epoch: its time */
	s->mark_undo = s->undo_len;
	s->mark_len = s->b.len;
	s->mark_items = s->b.items;
	s->req_touched_len = 0;
}

void coord_store_request_end(struct coord_store *s, int ok)
{
	if (ok) {
		for (size_t i = 0; i < s->req_touched_len; i++)
			roaring_bitmap_add(s->touched, s->req_touched[i]);
		return;
	}
	while (s->undo_len > s->mark_undo) {
		struct undo *u = &s->undo[--s->undo_len];
		struct cstate *c = &s->cs[u->a];
		switch (u->kind) {
		case UNDO_NEW_CONCEPT:
			util_idmap_del(&s->ids, c->id);
			c->live = 0;
			s->next_ordinal--;
			s->concept_count--;
			break;
		case UNDO_DEL_CONCEPT:
			/* The id's slot was freed by the delete; putting it back
			 * cannot need memory the map did not have a moment ago
			 * unless it was rebuilt, and a rebuild only shrinks. */
			(void)util_idmap_put(&s->ids, c->id, u->a);
			c->live = 1;
			s->concept_count++;
			break;
		case UNDO_NEW_EDGE:
			edge_remove(s, u->a, u->b, u->type);
			break;
		case UNDO_DEL_EDGE:
			(void)edge_insert(s, u->a, u->b, u->type, u->created_us);
			break;
		}
	}
	s->b.len = s->mark_len;
	s->b.items = s->mark_items;
	s->req_touched_len = 0;
}

int coord_store_mark_request(struct coord_store *s, uint64_t client_id, uint64_t seq,
			     uint32_t crc)
{
	if (s->failed)
		return s->failed;
	return layout_builder_add_request(&s->b, client_id, seq, crc);
}

void coord_store_foreach_marker(const struct coord_store *s,
				void (*fn)(void *arg, uint64_t client_id, uint64_t seq, uint32_t crc,
					   uint64_t epoch),
				void *arg)
{
	for (uint32_t i = 0; i < s->nmarkers; i++) {
		const struct marker_client *mc = &s->markers[i];
		/* Oldest first: the ring is indexed by seq, so order by seq. */
		const struct marker *order[COORD_MARKER_RING];
		unsigned n = 0;
		for (unsigned r = 0; r < COORD_MARKER_RING; r++)
			if (mc->ring[r].used)
				order[n++] = &mc->ring[r];
		for (unsigned a = 1; a < n; a++)
			for (unsigned b = a; b > 0 && order[b - 1]->seq > order[b]->seq; b--) {
				const struct marker *t = order[b];
				order[b] = order[b - 1];
				order[b - 1] = t;
			}
		for (unsigned k = 0; k < n; k++)
			fn(arg, mc->id, order[k]->seq, order[k]->crc, order[k]->epoch);
	}
}

size_t coord_store_pending_bytes(const struct coord_store *s)
{
	return s->b.items ? s->b.len : 0;
}

static int learn_concept(struct coord_store *s, const struct proto_op_body *op, struct sutra_detail *why)
{
	struct layout_concept c;
	uint32_t ordinal;
	int existed = lookup(s, op->u.concept.id, &ordinal);
	int rc;

	if (op->u.concept.vector_dim && op->u.concept.vector_dim != s->sb.vector_dim)
		return util_fail(SUTRA_EDIM, why,
			    "embedding has %u values, the store's dimension is %u",
			    op->u.concept.vector_dim, s->sb.vector_dim);
	if (!existed) {
		if (s->next_ordinal == UINT32_MAX)
			return util_fail(SUTRA_ETOOBIG, why, "no ordinal left for a new concept");
		ordinal = s->next_ordinal;
		if ((rc = grow_cs(s, ordinal)))
			return util_fail(rc, why, "out of memory");
	}
	memset(&c, 0, sizeof c);
	memcpy(c.id, op->u.concept.id, 16);
	c.ordinal = ordinal;
	c.strength = op->u.concept.strength;
	c.confidence = op->u.concept.confidence;
	c.created_us = existed ? s->cs[ordinal].created_us : s->now_us;
	c.updated_us = s->now_us;
	c.content = op->u.concept.content;
	c.content_len = op->u.concept.content_len;
	c.metadata = op->u.concept.metadata;
	c.metadata_len = op->u.concept.metadata_len;
	if (op->u.concept.vector_dim) {
		for (uint32_t i = 0; i < s->sb.vector_dim; i++)
			s->scratch[i] = util_get_lef32(op->u.concept.embedding + 4 * (size_t)i);
		c.embedding = s->scratch;
		c.vector_dim = s->sb.vector_dim;
	}
	if ((rc = layout_builder_add_concept(&s->b, &c)))
		return util_fail(rc, why, "learn_concept: %s", sutra_strerror(rc));
	if (!existed) {
		if ((rc = util_idmap_put(&s->ids, c.id, ordinal)) ||
		    (rc = push_undo(s, UNDO_NEW_CONCEPT, ordinal, 0, 0, 0))) {
			util_idmap_del(&s->ids, c.id);
			return util_fail(rc, why, "out of memory");
		}
		struct cstate *cs = &s->cs[ordinal];
		memcpy(cs->id, c.id, 16);
		cs->created_us = c.created_us;
		cs->live = 1;
		s->next_ordinal++;
		s->concept_count++;
	}
	if ((rc = touch(s, ordinal)))
		return util_fail(rc, why, "out of memory");
	return 0;
}

static int assoc_endpoints(struct coord_store *s, const struct proto_op_body *op, uint32_t *src,
			   uint32_t *dst, struct sutra_detail *why)
{
	char h[33];
	if (!lookup(s, op->u.assoc.src, src)) {
		util_hex_id(h, op->u.assoc.src);
		return util_fail(SUTRA_ENOTFOUND, why, "unknown source concept %s", h);
	}
	if (!lookup(s, op->u.assoc.dst, dst)) {
		util_hex_id(h, op->u.assoc.dst);
		return util_fail(SUTRA_ENOTFOUND, why, "unknown target concept %s", h);
	}
	return 0;
}

static int learn_association(struct coord_store *s, const struct proto_op_body *op, struct sutra_detail *why)
{
	struct layout_association a;
	uint32_t src, dst;
	int rc = assoc_endpoints(s, op, &src, &dst, why);
	if (rc)
		return rc;
	memset(&a, 0, sizeof a);
	memcpy(a.src, op->u.assoc.src, 16);
	memcpy(a.dst, op->u.assoc.dst, 16);
	a.src_ordinal = src;
	a.dst_ordinal = dst;
	a.type = op->u.assoc.type;
	a.confidence = op->u.assoc.confidence;
	a.weight = op->u.assoc.weight;
	/* An upsert keeps the association's creation time. */
	uint64_t created;
	int existed = edge_find(s, src, dst, a.type, &created);
	a.created_us = existed ? created : s->now_us;
	if ((rc = layout_builder_add_association(&s->b, &a)))
		return util_fail(rc, why, "learn_association: %s", sutra_strerror(rc));
	if (!existed) {
		if ((rc = edge_insert(s, src, dst, a.type, a.created_us)))
			return util_fail(rc, why, "out of memory");
		if ((rc = push_undo(s, UNDO_NEW_EDGE, src, dst, a.type, 0))) {
			edge_remove(s, src, dst, a.type);
			return util_fail(rc, why, "out of memory");
		}
	}
	if ((rc = touch(s, src)) || (rc = touch(s, dst)))
		return util_fail(rc, why, "out of memory");
	return 0;
}

static int remove_association(struct coord_store *s, uint32_t src, uint32_t dst, uint8_t type)
{
	struct layout_association a;
	int rc;

	memset(&a, 0, sizeof a);
	memcpy(a.src, s->cs[src].id, 16);
	memcpy(a.dst, s->cs[dst].id, 16);
	a.src_ordinal = src;
	a.dst_ordinal = dst;
	a.type = type;
	uint64_t created = 0;
	(void)edge_find(s, src, dst, type, &created);
	if ((rc = layout_builder_add_association_delete(&s->b, &a)))
		return rc;
	if ((rc = push_undo(s, UNDO_DEL_EDGE, src, dst, type, created)))
		return rc;
	edge_remove(s, src, dst, type);
	if ((rc = touch(s, src)) || (rc = touch(s, dst)))
		return rc;
	return 0;
}

static int delete_association(struct coord_store *s, const struct proto_op_body *op, struct sutra_detail *why)
{
	uint32_t src, dst;
	int rc = assoc_endpoints(s, op, &src, &dst, why);
	if (rc)
		return rc;
	if (!edge_find(s, src, dst, op->u.assoc.type, NULL)) {
		char a[33], b[33];
		util_hex_id(a, op->u.assoc.src);
		util_hex_id(b, op->u.assoc.dst);
		return util_fail(SUTRA_ENOTFOUND, why, "no association %s -> %s of type %u", a,
			    b, op->u.assoc.type);
	}
	if ((rc = remove_association(s, src, dst, op->u.assoc.type)))
		return util_fail(rc, why, "out of memory");
	return 0;
}

static int delete_concept(struct coord_store *s, const struct proto_op_body *op, struct sutra_detail *why)
{
	uint32_t ordinal;
	int rc;

	if (!lookup(s, op->u.del.id, &ordinal)) {
		char h[33];
		util_hex_id(h, op->u.del.id);
		return util_fail(SUTRA_ENOTFOUND, why, "unknown concept %s", h);
	}
	/* Its associations go first, in the same block: the replay rules
	 * allow a concept delete only once nothing refers to it. */
	struct cstate *c = &s->cs[ordinal];
	while (c->nedges) {
		struct edge e = c->edges[c->nedges - 1];
		uint32_t src = e.out ? ordinal : e.other, dst = e.out ? e.other : ordinal;
		if ((rc = remove_association(s, src, dst, e.type)))
			return util_fail(rc, why, "out of memory");
		c = &s->cs[ordinal];
	}
	if ((rc = layout_builder_add_concept_delete(&s->b, c->id, ordinal)) ||
	    (rc = push_undo(s, UNDO_DEL_CONCEPT, ordinal, 0, 0, 0)) || (rc = touch(s, ordinal)))
		return util_fail(rc, why, "out of memory");
	util_idmap_del(&s->ids, c->id);
	c->live = 0;
	s->concept_count--;
	return 0;
}

int coord_store_apply(struct coord_store *s, const struct proto_op_body *op, struct sutra_detail *why)
{
	/* A failed operation must leave nothing: undo what it did itself (a
	 * delete_concept may have removed edges before failing), then its
	 * request's earlier operations stay until request_end decides. */
	size_t undo = s->undo_len, len = s->b.len, tl = s->req_touched_len;
	uint32_t items = s->b.items;
	size_t mark_undo = s->mark_undo, mark_len = s->mark_len;
	uint32_t mark_items = s->mark_items;
	int rc;

	if (s->failed)
		return util_fail(s->failed, why, "the store stopped after an I/O error");
	switch (op->op) {
	case PROTO_OP_LEARN_CONCEPT:
		rc = learn_concept(s, op, why);
		break;
	case PROTO_OP_LEARN_ASSOCIATION:
		rc = learn_association(s, op, why);
		break;
	case PROTO_OP_DELETE_CONCEPT:
		rc = delete_concept(s, op, why);
		break;
	case PROTO_OP_DELETE_ASSOCIATION:
		rc = delete_association(s, op, why);
		break;
	default:
		rc = util_fail(SUTRA_EPROTO, why, "operation %u is not a write", op->op);
		break;
	}
	if (rc && (s->undo_len != undo || s->b.len != len)) {
		s->mark_undo = undo;
		s->mark_len = len;
		s->mark_items = items;
		coord_store_request_end(s, 0);
		s->mark_undo = mark_undo;
		s->mark_len = mark_len;
		s->mark_items = mark_items;
	}
	if (rc)
		s->req_touched_len = tl;
	return rc;
}

/* ---- Commit ------------------------------------------------------------- */

int coord_store_commit(struct coord_store *s, int force_empty, uint64_t *epoch, int *committed)
{
	const void *data;
	size_t len;
	int rc;

	*committed = 0;
	*epoch = s->meta.epoch;
	if (s->failed)
		return s->failed;
	if (s->b.items == 0 && !force_empty)
		return 0;
	uint64_t e = s->meta.epoch + 1;
	if ((rc = layout_builder_seal(&s->b, e, &data, &len)))
		return rc; /* -ENOMEM: the epoch is lost, the store is intact */

	struct layout_meta m = s->meta;
	int slot = 1 - s->durable_slot;
	m.seq = s->slot_seq[slot] + 2;
	m.epoch = e;
	m.last_block_offset = s->log_end;
	m.last_block_crc32c = util_get_le32((const unsigned char *)data + 40);
	m.durable_end = s->durable_end;
	m.published_end = s->log_end + len;
	m.commit_time_us = s->now_us ? s->now_us : now_us();
	m.concept_count = s->concept_count;
	m.association_count = s->association_count;
	m.next_ordinal = s->next_ordinal;

	unsigned char slotbuf[LAYOUT_META_SIZE];
	layout_meta_encode(&m, slotbuf);
	struct coord_io_write w[2] = {
		{ .offset = m.last_block_offset, .buf = data, .len = len },
		{ .offset = s->sb.meta_offset + (uint64_t)slot * s->sb.meta_slot_size,
		  .buf = slotbuf,
		  .len = sizeof slotbuf },
	};
	int sync = s->durability == COORD_DURABILITY_SYNC;
	rc = coord_io_submit(s->io, w, 2, sync);
	if (rc) {
		s->failed = rc;
		coord_logf(&s->log, COORD_LOG_ERR,
			   "commit of epoch %llu failed: %s; refusing further writes",
			   (unsigned long long)e, strerror(-rc));
		return rc;
	}
	if (sync)
		s->syncs++;
	s->meta = m;
	s->slot_seq[slot] = m.seq;
	s->slot_epoch[slot] = e;
	s->slot_log_start[slot] = layout_log_start(&s->sb, &m);
	s->log_end = m.published_end;
	s->tail_commit_bytes += len;
	if (m.published_end > s->file_size)
		s->file_size = m.published_end;
	if (sync) {
		s->durable_slot = slot;
		s->durable_end = m.published_end;
		s->durable_epoch = e;
	}
	s->commits++;
	if (s->b.items) {
		s->last_commit_ms = mono_ms();
		s->tail_items += s->b.items;
	}
	roaring_bitmap_t *t = s->last_touched;
	s->last_touched = s->touched;
	s->touched = t;
	roaring_bitmap_clear(s->touched);
	layout_builder_reset(&s->b);
	s->undo_len = 0;
	s->now_us = 0;
	*epoch = e;
	*committed = 1;
	return 0;
}

int coord_store_sync(struct coord_store *s)
{
	if (s->failed)
		return s->failed;
	if (!coord_store_has_unsynced(s))
		return 0;
	int rc = coord_io_sync(s->io);
	if (rc) {
		s->failed = rc;
		coord_logf(&s->log, COORD_LOG_ERR, "fdatasync failed: %s; refusing further writes",
			   strerror(-rc));
		return rc;
	}
	s->syncs++;
	/* Everything written so far is durable, the current slot included. */
	s->durable_slot = 1 - s->durable_slot;
	s->durable_end = s->meta.published_end;
	s->durable_epoch = s->meta.epoch;
	return 0;
}

int coord_store_has_unsynced(const struct coord_store *s)
{
	return s->durable_epoch != s->meta.epoch;
}

unsigned char *coord_store_touched(const struct coord_store *s, size_t *len)
{
	*len = 0;
	if (roaring_bitmap_is_empty(s->last_touched))
		return NULL;
	roaring_bitmap_t *copy = roaring_bitmap_copy(s->last_touched);
	if (!copy)
		return NULL;
	roaring_bitmap_run_optimize(copy);
	size_t n = roaring_bitmap_portable_size_in_bytes(copy);
	unsigned char *buf = malloc(n);
	if (buf)
		*len = roaring_bitmap_portable_serialize(copy, (char *)buf);
	roaring_bitmap_free(copy);
	return buf;
}

int coord_store_failed(const struct coord_store *s)
{
	return s->failed;
}

uint64_t coord_store_epoch(const struct coord_store *s)
{
	return s->meta.epoch;
}

uint64_t coord_store_durable_epoch(const struct coord_store *s)
{
	return s->durable_epoch;
}

uint64_t coord_store_published_end(const struct coord_store *s)
{
	return s->meta.published_end;
}

uint32_t coord_store_vector_dim(const struct coord_store *s)
{
	return s->sb.vector_dim;
}

const uint8_t *coord_store_uuid(const struct coord_store *s)
{
	return s->sb.uuid;
}

const char *coord_store_io_name(const struct coord_store *s)
{
	return coord_io_name(s->io);
}

void coord_store_stats(const struct coord_store *s, struct proto_stats *st)
{
	memset(st, 0, sizeof *st);
	st->epoch = s->meta.epoch;
	st->durable_epoch = s->durable_epoch;
	st->published_end = s->meta.published_end;
	st->file_size = s->file_size;
	st->concept_count = s->meta.concept_count;
	st->association_count = s->meta.association_count;
	st->next_ordinal = s->meta.next_ordinal;
	st->commits = s->commits;
	st->syncs = s->syncs;
	st->vector_dim = s->sb.vector_dim;
	st->durability = (uint32_t)s->durability;
	st->io_backend = coord_io_kind(s->io) == COORD_IO_URING ? 0 : 1;
}

/* ---- Index segments ------------------------------------------------------ */

/* Size tiers of FANOUT: a run of FANOUT segments of one tier is merged;
 * a store idle for IDLE_FLUSH_MS gets its tail flushed (if it holds
 * IDLE_FLUSH_BYTES) and then all its segments merged into one. */
#define FANOUT 4u
#define MAX_LIVE_SEGMENTS 32u
#define RECLAIM_EVERY_MS 100u
/* A store idle this long gets its tail flushed once it holds this much, so
 * that readers opening an idle store index next to nothing. */
#define IDLE_FLUSH_MS 1000u
#define IDLE_FLUSH_BYTES (64u * 1024u)

static unsigned tier(const struct coord_store *s, uint64_t len)
{
	unsigned t = 0;
	for (uint64_t x = len / s->segment_bytes; x >= FANOUT; x /= FANOUT)
		t++;
	return t;
}

static int idle_flush_wanted(const struct coord_store *s)
{
	return s->tail_items && s->tail_commit_bytes >= IDLE_FLUSH_BYTES;
}

/* The next job, if one is due: a merge of the newest run of FANOUT
 * segments of one tier (or of the newest FANOUT when there are too many),
 * else a flush of the tail once its commits pass segment_bytes. */
static int plan(struct coord_store *s, struct coord_segjob *job)
{
	const struct layout_meta *m = &s->meta;
	uint32_t n = m->segment_count;
	memset(job, 0, sizeof *job);
	job->end = m->published_end;
	int idle = mono_ms() - s->last_commit_ms >= IDLE_FLUSH_MS;
	if (n >= 2) {
		uint32_t i = n - 1;
		unsigned t = tier(s, m->segments[n - 1].length);
		while (i > 0 && tier(s, m->segments[i - 1].length) == t)
			i--;
		if (n - i < FANOUT && n >= MAX_LIVE_SEGMENTS)
			i = n - FANOUT;
		/* An idle store with nothing to flush is merged into one base
		 * segment: a get then probes one table. */
		int full = idle && !idle_flush_wanted(s);
		if (full)
			i = 0;
		if (n - i >= FANOUT || full) {
			job->merge = 1;
			job->first_index = i;
			job->nsegs = n - i;
			memcpy(job->segs, &m->segments[i], job->nsegs * sizeof job->segs[0]);
			job->first_epoch = s->seginfo[i].first_epoch;
			job->last_epoch = s->seginfo[n - 1].last_epoch;
			job->next_ordinal = s->seginfo[n - 1].next_ordinal;
			job->base_segment = i == 0;
			return 1;
		}
	}
	if (n < LAYOUT_MAX_SEGMENTS &&
	    (s->tail_commit_bytes >= s->segment_bytes || (idle && idle_flush_wanted(s))) &&
	    m->epoch > (n ? s->seginfo[n - 1].last_epoch : 0)) {
		job->from = m->tail_start;
		job->to = m->published_end;
		job->first_epoch = n ? s->seginfo[n - 1].last_epoch + 1 : 1;
		job->last_epoch = m->epoch;
		job->next_ordinal = m->next_ordinal;
		job->base_segment = n == 0;
		s->job_tail_bytes = s->tail_commit_bytes;
		s->job_tail_items = s->tail_items;
		return 1;
	}
	return 0;
}

/* Lists a segment whose sections the builder has made durable: changes
 * the segment list and tail start that the next commit publishes. */
static int list_segment(struct coord_store *s, const struct coord_segjob *job, uint64_t offset,
			uint64_t len)
{
	struct layout_meta *m = &s->meta;
	struct layout_segment_ref ref = { offset, len };
	struct seginfo info = { job->first_epoch, job->last_epoch, job->next_ordinal };
	if (job->merge) {
		/* Room first: a partly retired list would free listed space. */
		struct retired *p = realloc(s->retired, (s->nretired + job->nsegs + 16) * sizeof *p);
		if (!p)
			return -ENOMEM; /* the block stays unlisted: only space is lost */
		s->retired = p;
		s->capretired = s->nretired + job->nsegs + 16;
		for (uint32_t i = job->first_index; i < m->segment_count; i++)
			retire(s, m->segments[i].offset, m->segments[i].length, m->epoch + 1);
		for (uint32_t i = job->first_index + 1; i < m->segment_count; i++)
			m->segments[i] = (struct layout_segment_ref){ 0, 0 };
		m->segments[job->first_index] = ref;
		s->seginfo[job->first_index] = info;
		m->segment_count = job->first_index + 1;
	} else {
		if (add_tail(s, m->tail_start, job->to, m->epoch + 1))
			return -ENOMEM; /* the block stays unlisted: only space is lost */
		m->segments[m->segment_count] = ref;
		s->seginfo[m->segment_count] = info;
		m->segment_count++;
		m->tail_start = job->to;
		s->tail_commit_bytes -= s->job_tail_bytes;
		s->tail_items -= s->job_tail_items;
	}
	coord_logf(&s->log, COORD_LOG_INFO,
		   "%s segment of epochs %llu..%llu: %llu bytes at offset %llu; %u segments",
		   job->merge ? "merged" : "wrote", (unsigned long long)job->first_epoch,
		   (unsigned long long)job->last_epoch, (unsigned long long)len,
		   (unsigned long long)offset, m->segment_count);
	return 0;
}

static int reclaim(struct coord_store *s);

int coord_store_maintain(struct coord_store *s, int *committed, uint64_t *epoch)
{
	*committed = 0;
	if (s->failed || !s->segmenter)
		return s->failed;
	struct coord_segjob job;
	const unsigned char *blk;
	uint64_t len, head;
	int rc, brc;
	struct sutra_detail why;
	switch (coord_segmenter_poll(s->segmenter, &job, &blk, &len, &head, &brc, &why)) {
	case COORD_SEG_BUILT:
		if (brc) {
			/* The published log verified at start: a failed build
			 * is memory, or damage that appeared since. Keep going
			 * without it; the tail just stays longer. */
			coord_logf(&s->log, COORD_LOG_ERR, "building a segment failed: %s (%s)",
				   brc == -ENOMEM ? "out of memory" : sutra_strerror(brc), why.what);
			break;
		}
		/* Reserve its range, write what a walk of the log checks, and
		 * go on; the builder writes the sections (segmenter.h). */
		if ((rc = coord_io_write_long(s->io, s->log_end, blk, head, 0))) {
			s->failed = rc;
			coord_logf(&s->log, COORD_LOG_ERR,
				   "writing a segment failed: %s; refusing writes", strerror(-rc));
			return rc;
		}
		s->placing_offset = s->log_end;
		s->log_end += len;
		if (s->log_end > s->file_size)
			s->file_size = s->log_end;
		coord_segmenter_place(s->segmenter, s->placing_offset);
		break;
	case COORD_SEG_WRITTEN:
		if (brc) {
			/* An I/O error is fatal here as for a commit. */
			s->failed = brc;
			coord_logf(&s->log, COORD_LOG_ERR, "%s; refusing writes", why.what);
			return brc;
		}
		if ((rc = list_segment(s, &job, s->placing_offset, len))) {
			coord_logf(&s->log, COORD_LOG_ERR, "listing a segment failed: out of memory");
			break;
		}
		coord_store_request_begin(s);
		coord_store_request_end(s, 1);
		if ((rc = coord_store_commit(s, 1, epoch, committed)))
			return rc;
		break;
	default:
		break;
	}
	if (!coord_segmenter_busy(s->segmenter) && plan(s, &job))
		coord_segmenter_submit(s->segmenter, &job);
	if (reclaim(s) && !*committed) {
		/* Only the older meta slot still names what could be freed:
		 * an empty epoch rewrites it, and the next pass frees. */
		coord_store_request_begin(s);
		coord_store_request_end(s, 1);
		return coord_store_commit(s, 1, epoch, committed);
	}
	return 0;
}

/* Frees the sections of merged-away segments that nothing can reach any
 * more: no reader pins an older epoch than the one that retired them
 * (dead readers' slots are swept), and neither meta slot is older (a
 * reader may fall back to the other slot). The first page of the block,
 * with its header and section table, stays, so that the log still walks;
 * the rest becomes a hole (FORMAT.md 10.4). */
/* Frees the whole pages of [from, to): 0, or -1 when fallocate failed (the
 * space stays used; nothing else depends on it). */
static int punch(struct coord_store *s, uint64_t from, uint64_t to)
{
	from = layout_align_up(from, 4096);
	to &= ~(uint64_t)4095;
	if (to <= from)
		return 0;
	if (fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)from,
		      (off_t)(to - from)) < 0) {
		coord_logf(&s->log, COORD_LOG_WARN, "cannot free %llu bytes at %llu: %s",
			   (unsigned long long)(to - from), (unsigned long long)from,
			   strerror(errno));
		return -1;
	}
	return 0;
}

static int by_offset(const void *a, const void *b)
{
	const struct layout_segment_ref *x = a, *y = b;
	return (x->offset > y->offset) - (x->offset < y->offset);
}

/* Frees [from, to) but the segment blocks in it that a meta lists or
 * that wait to be freed on their own terms. */
static void free_commits(struct coord_store *s, uint64_t from, uint64_t to)
{
	size_t n = 0, cap = s->meta.segment_count + s->nretired;
	struct layout_segment_ref *keep = malloc((cap ? cap : 1) * sizeof *keep);
	if (!keep)
		return; /* only space is lost */
	for (uint32_t i = 0; i < s->meta.segment_count; i++)
		keep[n++] = s->meta.segments[i];
	for (size_t i = 0; i < s->nretired; i++)
		keep[n++] = (struct layout_segment_ref){ s->retired[i].offset, s->retired[i].length };
	qsort(keep, n, sizeof *keep, by_offset);
	uint64_t pos = from;
	for (size_t i = 0; i < n && pos < to; i++) {
		if (keep[i].offset + keep[i].length <= pos || keep[i].offset >= to)
			continue;
		if (keep[i].offset > pos)
			punch(s, pos, keep[i].offset);
		pos = keep[i].offset + keep[i].length;
	}
	if (pos < to)
		punch(s, pos, to);
	free(keep);
	coord_logf(&s->log, COORD_LOG_INFO, "freed the flushed log from %llu to %llu",
		   (unsigned long long)from, (unsigned long long)to);
}

static int reclaim(struct coord_store *s)
{
	uint64_t oldest;
	uint32_t swept;
	int rotate = 0;
	if ((!s->nretired && !s->ntails) || !s->lockf ||
	    mono_ms() - s->last_reclaim_ms < RECLAIM_EVERY_MS)
		return 0;
	s->last_reclaim_ms = mono_ms();
	if (layout_lockfile_oldest_pinned(s->lockf, &oldest, &swept))
		return 0;
	if (swept)
		coord_logf(&s->log, COORD_LOG_INFO, "swept %u reader slot(s) of dead processes",
			   swept);
	uint64_t readers = oldest < s->durable_epoch ? oldest : s->durable_epoch, limit = readers;
	for (int i = 0; i < (int)LAYOUT_META_SLOT_COUNT; i++)
		if (s->slot_epoch[i] < limit)
			limit = s->slot_epoch[i];
	size_t kept = 0;
	for (size_t i = 0; i < s->nretired; i++) {
		const struct retired *t = &s->retired[i];
		if (t->epoch > limit) {
			rotate |= t->epoch <= readers;
			s->retired[kept++] = *t;
			continue;
		}
		/* The first page, with the headers and table, stays. */
		if (punch(s, t->offset + layout_segment_data_start(LAYOUT_SEG_SECTIONS),
			  t->offset + t->length) == 0)
			coord_logf(&s->log, COORD_LOG_INFO,
				   "freed the merged-away segment at %llu (retired at epoch %llu)",
				   (unsigned long long)t->offset, (unsigned long long)t->epoch);
	}
	s->nretired = kept;

	/* Flushed commit blocks: first move log_start past them (a commit
	 * writes it), then, once both slots walk from there, free them. */
	uint64_t min_ls = s->slot_log_start[0] < s->slot_log_start[1] ? s->slot_log_start[0]
								     : s->slot_log_start[1];
	kept = 0;
	for (size_t i = 0; i < s->ntails; i++) {
		const struct tail_range *t = &s->tails[i];
		if (t->epoch > limit) {
			rotate |= t->epoch <= readers;
			s->tails[kept++] = *t;
			continue;
		}
		/* The newest log_retention bytes of flushed log stay: request
		 * markers there still catch a resend after a restart, and the
		 * log can still be read as it was written. */
		if (s->meta.tail_start - t->to < s->log_retention) {
			s->tails[kept++] = *t;
			continue;
		}
		if (layout_log_start(&s->sb, &s->meta) < t->to) {
			/* log_start may not pass the durable end (FORMAT.md 5.2) */
			if (t->to <= s->durable_end && t->to <= s->meta.tail_start) {
				s->meta.log_start = t->to;
				rotate = 1;
			}
			s->tails[kept++] = *t;
			continue;
		}
		if (min_ls < t->to) {
			rotate = 1;
			s->tails[kept++] = *t;
			continue;
		}
		free_commits(s, t->from, t->to);
	}
	s->ntails = kept;
	return rotate;
}

int coord_store_maintenance_due_ms(const struct coord_store *s)
{
	if (!s->segmenter || s->failed)
		return -1;
	uint64_t now = mono_ms(), due = UINT64_MAX;
	if ((s->nretired || s->ntails) && s->lockf)
		due = s->last_reclaim_ms + RECLAIM_EVERY_MS;
	/* Only commits with records move last_commit_ms, so an idle flush
	 * (itself an empty commit) does not ask for another. */
	if ((idle_flush_wanted(s) || s->meta.segment_count >= 2) &&
	    s->last_commit_ms + IDLE_FLUSH_MS < due &&
	    !coord_segmenter_busy(s->segmenter))
		due = s->last_commit_ms + IDLE_FLUSH_MS;
	if (due == UINT64_MAX)
		return -1;
	return due <= now ? 0 : (int)(due - now);
}

void coord_store_on_segment_done(struct coord_store *s, void (*fn)(void *arg), void *arg)
{
	if (s->segmenter)
		coord_segmenter_on_done(s->segmenter, fn, arg);
}

