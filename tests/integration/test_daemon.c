/* SPDX-License-Identifier: MIT */
/* sutra-coordinator as a process: writes checked in the file, restarts, resends, a second writer, I/O backends and failures, shutdown under load, notices. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <roaring/roaring.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/common/tcheck.h"
#include "wire/proto.h"
#include "layout/layout.h"
#include "sutra/client.h"
#include "tests/common/daemon.h"
#include "util/endian.h"
#include "util/idmap.h"

/*
 * Every test starts the real sutra-coordinator (tests/common/daemon.h) in a
 * fresh directory, talks to it over ipc:// sockets, stops it and reads the
 * store back through the layout library, which is what a reader trusts.
 * Check runs each test in its own forked process (and kills that process
 * group afterwards, daemons included), and nng is used only inside the
 * test functions, so no process uses nng after a fork. Extra client
 * processes are this binary re-executed in writer mode (see main()).
 */

#define DIM 8u

/* ---- Small helpers ------------------------------------------------------ */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* A distinct, recognisable id for every n. */
static void id_of(uint8_t id[16], uint32_t n)
{
	memset(id, 0, 16);
	id[0] = 0xc0;
	id[1] = 0xde;
	util_put_le32(id + 8, n * 2654435761u);
	util_put_le32(id + 12, n);
}

static void vec(float *v, uint32_t dim, uint32_t seed)
{
	for (uint32_t i = 0; i < dim; i++)
		v[i] = (float)((seed * 31u + i * 7u) % 97u) / 97.0f - 0.5f;
}

static struct sutra_concept_in concept(const uint8_t *id, const char *content, const float *emb,
				       uint32_t dim, const char *meta)
{
	struct sutra_concept_in in = { .id = id,
				       .content = content,
				       .content_len = strlen(content),
				       .embedding = emb,
				       .vector_dim = emb ? dim : 0,
				       .strength = 1.0f,
				       .confidence = 1.0f,
				       .metadata = meta,
				       .metadata_len = meta ? strlen(meta) : 0 };
	return in;
}

static sutra_client *client_open(const struct tdaemon *d, uint32_t timeout_ms)
{
	struct sutra_client_options o;
	sutra_client *c = NULL;

	sutra_client_options_init(&o);
	o.timeout_ms = timeout_ms;
	ck_assert_ok(sutra_client_connect(d->url, &o, &c));
	return c;
}

static uint64_t learn_ok(sutra_client *c, const struct sutra_concept_in *in)
{
	uint64_t e = 0;
	int rc = sutra_client_learn_concept(c, in, &e);
	ck_assert_msg(rc == 0, "learn_concept: %s (%s)", sutra_errname(rc),
		      sutra_client_last_error(c));
	return e;
}

static struct sutra_coord_stats stats_of(sutra_client *c)
{
	struct sutra_coord_stats st;
	int rc = sutra_client_stats(c, &st);
	ck_assert_msg(rc == 0, "stats: %s (%s)", sutra_errname(rc), sutra_client_last_error(c));
	return st;
}

static void start(struct tdaemon *d, const char *const *extra)
{
	ck_assert_ok(tdaemon_mkdir(d));
	ck_assert_msg(tdaemon_start(d, extra) == 0, "sutra-coordinator did not start");
}

/*
 * SIGTERM must make the coordinator exit 0. A stop that does not is
 * counted here and asserted by expect_clean_stops() at the end of the
 * test, so that the checks of the file still run (tdaemon_stop kills a
 * coordinator that is still running after 20 s).
 */
static int bad_stops, bad_stop_status;

static void stop_daemon(struct tdaemon *d)
{
	int st = tdaemon_stop(d);
	if (st != 0) {
		bad_stops++;
		bad_stop_status = st;
	}
}

static void expect_clean_stops(void)
{
	ck_assert_msg(bad_stops == 0,
		      "%d SIGTERM(s) not answered by exit status 0 within 20 s (last status %d; "
		      "-1: still running after 20 s, then killed)",
		      bad_stops, bad_stop_status);
}

static void reset_stops(void)
{
	bad_stops = 0;
	bad_stop_status = 0;
}

/* The whole text of a file (NUL-terminated, caller frees), or NULL. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (len + 1024 > cap)
			buf = realloc(buf, cap *= 2);
		ck_assert_ptr_nonnull(buf);
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		if (n == 0)
			break;
		len += n;
	}
	buf[len] = 0;
	fclose(f);
	return buf;
}

/* Runs sutra-layoutdump --verify --quiet on path; returns its exit status. */
static int layoutdump_verify(const char *path)
{
	const char *bin = tdaemon_env("SUTRA_LAYOUTDUMP");
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (fd >= 0)
			dup2(fd, 1);
		execl(bin, bin, "--verify", "--quiet", path, (char *)NULL);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		ck_assert_int_eq(errno, EINTR);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- Reading the store back through the layout library ------------------ */

struct fconcept {
	uint8_t id[16];
	int live;
	uint32_t versions;         /* concept records of this id */
	uint64_t epoch;            /* of the block holding the newest record */
	struct layout_concept rec; /* the newest record; borrows the mapping */
};

struct fassoc {
	int live;
	uint32_t versions;
	uint64_t epoch;
	struct layout_association rec;
};

struct fscan {
	struct layout_map map;
	struct layout_view v;
	uint64_t nrec[LAYOUT_REC_REQUEST + 1]; /* records of each LAYOUT_REC_* type */
	uint64_t blocks;
	struct fconcept *c;
	size_t nc, capc;
	struct fassoc *a;
	size_t na, capa;
	struct util_idmap ix; /* id -> index in c */
};

static struct fconcept *fscan_concept(const struct fscan *f, const uint8_t id[16])
{
	uint64_t ix;
	return util_idmap_get(&f->ix, id, &ix) ? &f->c[ix] : NULL;
}

static struct fassoc *fscan_assoc(const struct fscan *f, const uint8_t src[16],
				  const uint8_t dst[16], uint8_t type)
{
	for (size_t i = 0; i < f->na; i++)
		if (!memcmp(f->a[i].rec.src, src, 16) && !memcmp(f->a[i].rec.dst, dst, 16) &&
		    f->a[i].rec.type == type)
			return &f->a[i];
	return NULL;
}

static void fscan_record(struct fscan *f, const struct layout_record *rec, uint64_t epoch)
{
	ck_assert_uint_ge(rec->type, LAYOUT_REC_CONCEPT);
	ck_assert_uint_le(rec->type, LAYOUT_REC_REQUEST);
	f->nrec[rec->type]++;
	if (rec->type == LAYOUT_REC_REQUEST)
		return; /* a marker: counted only */
	if (rec->type == LAYOUT_REC_CONCEPT || rec->type == LAYOUT_REC_CONCEPT_DELETE) {
		struct fconcept *c = fscan_concept(f, rec->u.concept.id);
		if (!c) {
			ck_assert_msg(rec->type == LAYOUT_REC_CONCEPT,
				      "delete of a concept never learned at offset %llu",
				      (unsigned long long)rec->offset);
			if (f->nc == f->capc) {
				f->capc = f->capc ? 2 * f->capc : 64;
				f->c = realloc(f->c, f->capc * sizeof *f->c);
				ck_assert_ptr_nonnull(f->c);
			}
			c = &f->c[f->nc];
			memset(c, 0, sizeof *c);
			memcpy(c->id, rec->u.concept.id, 16);
			ck_assert_ok(util_idmap_put(&f->ix, c->id, f->nc));
			f->nc++;
		}
		c->epoch = epoch;
		if (rec->type == LAYOUT_REC_CONCEPT) {
			c->live = 1;
			c->versions++;
			c->rec = rec->u.concept;
		} else {
			c->live = 0;
		}
		return;
	}
	const struct layout_association *r = &rec->u.association;
	struct fassoc *a = fscan_assoc(f, r->src, r->dst, r->type);
	if (!a) {
		ck_assert_msg(rec->type == LAYOUT_REC_ASSOCIATION,
			      "delete of an association never learned at offset %llu",
			      (unsigned long long)rec->offset);
		if (f->na == f->capa) {
			f->capa = f->capa ? 2 * f->capa : 16;
			f->a = realloc(f->a, f->capa * sizeof *f->a);
			ck_assert_ptr_nonnull(f->a);
		}
		a = &f->a[f->na++];
		memset(a, 0, sizeof *a);
	}
	a->epoch = epoch;
	if (rec->type == LAYOUT_REC_ASSOCIATION) {
		a->live = 1;
		a->versions++;
		a->rec = *r;
	} else {
		a->live = 0;
	}
}

/* Maps path, opens and fully verifies it (replayed counts equal to the
 * meta's), then walks every published commit block. */
static void fscan_open(struct fscan *f, const char *path)
{
	struct sutra_detail pb;
	struct layout_replay r;
	int rc;

	memset(f, 0, sizeof *f);
	util_idmap_init(&f->ix);
	rc = layout_map_open(path, &f->map);
	ck_assert_msg(rc == 0, "cannot map %s: %s", path, sutra_strerror(rc));
	rc = layout_open(f->map.base, f->map.size, &f->v, &pb);
	ck_assert_msg(rc == 0, "%s does not open: offset %llu: %s", path,
		      (unsigned long long)pb.offset, pb.what);
	ck_assert_ok(layout_replay_init(&r, f->v.sb.vector_dim));
	rc = layout_verify(&f->v, &r, &pb);
	ck_assert_msg(rc == 0, "%s does not verify: offset %llu: %s", path,
		      (unsigned long long)pb.offset, pb.what);
	ck_assert_uint_eq(r.epoch, f->v.meta.epoch);
	ck_assert_uint_eq(r.concept_count, f->v.meta.concept_count);
	ck_assert_uint_eq(r.association_count, f->v.meta.association_count);
	ck_assert_uint_eq(r.next_ordinal, f->v.meta.next_ordinal);
	layout_replay_finish(&r);

	const uint64_t end = f->v.meta.published_end;
	uint64_t pos = f->v.sb.data_offset;
	while (pos < end) {
		struct layout_block blk;
		struct layout_record_iter it;
		struct layout_record rec;
		ck_assert_ok(layout_block_decode(f->map.base, end, pos, &blk, &pb));
		ck_assert_ok(layout_block_check_payload(f->map.base, &blk, &pb));
		f->blocks++;
		if (blk.type == LAYOUT_BLOCK_COMMIT) {
			layout_records_init(&it, f->map.base, &blk, f->v.sb.vector_dim);
			while ((rc = layout_records_next(&it, &rec, &pb)) == 1)
				fscan_record(f, &rec, blk.epoch);
			ck_assert_msg(rc == 0, "records: offset %llu: %s",
				      (unsigned long long)pb.offset, pb.what);
		}
		pos = blk.offset + blk.length;
	}
	uint64_t live = 0;
	for (size_t i = 0; i < f->nc; i++)
		live += f->c[i].live != 0;
	ck_assert_uint_eq(live, f->v.meta.concept_count);
	live = 0;
	for (size_t i = 0; i < f->na; i++)
		live += f->a[i].live != 0;
	ck_assert_uint_eq(live, f->v.meta.association_count);
}

static void fscan_close(struct fscan *f)
{
	layout_map_close(&f->map);
	util_idmap_finish(&f->ix);
	free(f->c);
	free(f->a);
}

/* Checks that id is live with exactly this content, written at epoch (0: any). */
static const struct fconcept *expect_concept(const struct fscan *f, const uint8_t id[16],
					     const char *content, uint64_t epoch)
{
	const struct fconcept *c = fscan_concept(f, id);
	ck_assert_msg(c != NULL, "concept %s is not in the file", content);
	ck_assert_msg(c->live, "concept %s was deleted", content);
	ck_assert_uint_eq(c->rec.content_len, strlen(content));
	ck_assert_mem_eq(c->rec.content, content, c->rec.content_len);
	if (epoch)
		ck_assert_uint_eq(c->epoch, epoch);
	return c;
}

static void expect_embedding(const struct fconcept *c, const float *v, uint32_t dim)
{
	ck_assert_ptr_nonnull(c->rec.embedding);
	ck_assert_uint_eq(c->rec.vector_dim, dim);
	ck_assert_uint_eq(c->rec.flags & LAYOUT_CONCEPT_HAS_EMBEDDING, LAYOUT_CONCEPT_HAS_EMBEDDING);
	const unsigned char *p = c->rec.embedding;
	for (uint32_t i = 0; i < dim; i++)
		ck_assert_msg(util_get_lef32(p + 4 * (size_t)i) == v[i], "embedding value %u differs",
			      i);
}

/* ---- Learn, then read the file ------------------------------------------ */

START_TEST(test_daemon_learn_and_verify_file)
{
	const char *args[] = { "--vector-dimension", "8", NULL };
	struct tdaemon d;
	uint8_t a[16], b[16], c3[16], dd[16], e[16];
	float va[DIM], va2[DIM], vc[DIM], vd[DIM];
	uint64_t ep[9] = { 0 };

	id_of(a, 1);
	id_of(b, 2);
	id_of(c3, 3);
	id_of(dd, 4);
	id_of(e, 5);
	vec(va, DIM, 1);
	vec(va2, DIM, 11);
	vec(vc, DIM, 3);
	vec(vd, DIM, 4);
	start(&d, args);
	sutra_client *cl = client_open(&d, 5000);
	struct sutra_coord_stats st = stats_of(cl);
	ck_assert_uint_eq(st.epoch, 0);
	ck_assert_uint_eq(st.vector_dim, DIM);

	/* 1: with an embedding, no metadata. 2: no embedding, metadata. 3: both. */
	struct sutra_concept_in in = concept(a, "alpha", va, DIM, NULL);
	in.strength = 0.25f;
	in.confidence = 0.75f;
	ep[1] = learn_ok(cl, &in);
	in = concept(b, "b\xc3\xa9ta \xe2\x82\xac", NULL, 0, "{\"k\":1}");
	ep[2] = learn_ok(cl, &in);
	in = concept(c3, "gamma", vc, DIM, "{\"g\":true}");
	ep[3] = learn_ok(cl, &in);
	/* 4: an association. */
	int rc = sutra_client_learn_association(cl, a, b, SUTRA_ASSOC_CAUSAL, 0.5f, 2.0f, &ep[4]);
	ck_assert_msg(rc == 0, "learn_association: %s", sutra_client_last_error(cl));
	/* 5: a batch: two concepts and two associations, one epoch. */
	sutra_batch *bt = sutra_batch_create();
	ck_assert_ptr_nonnull(bt);
	in = concept(dd, "delta", vd, DIM, NULL);
	ck_assert_ok(sutra_batch_learn_concept(bt, &in));
	in = concept(e, "epsilon", NULL, 0, NULL);
	ck_assert_ok(sutra_batch_learn_concept(bt, &in));
	ck_assert_ok(sutra_batch_learn_association(bt, dd, e, SUTRA_ASSOC_TEMPORAL, 1.0f, 1.0f));
	ck_assert_ok(sutra_batch_learn_association(bt, a, c3, SUTRA_ASSOC_SEMANTIC, 0.9f, 0.1f));
	ck_assert_uint_eq(sutra_batch_count(bt), 4);
	rc = sutra_client_commit(cl, bt, &ep[5]);
	ck_assert_msg(rc == 0, "batch: %s", sutra_client_last_error(cl));
	sutra_batch_destroy(bt);
	st = stats_of(cl);
	ck_assert_uint_eq(st.concept_count, 5);
	ck_assert_uint_eq(st.association_count, 3);
	/* 6: an update of a concept keeps its edges. */
	in = concept(a, "alpha, second version", va2, DIM, "{\"v\":2}");
	ep[6] = learn_ok(cl, &in);
	st = stats_of(cl);
	ck_assert_uint_eq(st.concept_count, 5);
	ck_assert_uint_eq(st.association_count, 3);
	ck_assert_uint_eq(st.next_ordinal, 5);
	/* 7: delete_association. */
	rc = sutra_client_delete_association(cl, a, b, SUTRA_ASSOC_CAUSAL, &ep[7]);
	ck_assert_msg(rc == 0, "delete_association: %s", sutra_client_last_error(cl));
	st = stats_of(cl);
	ck_assert_uint_eq(st.association_count, 2);
	/* 8: delete_concept removes its association a -> c3 too. */
	rc = sutra_client_delete_concept(cl, c3, &ep[8]);
	ck_assert_msg(rc == 0, "delete_concept: %s", sutra_client_last_error(cl));
	for (int i = 1; i <= 8; i++)
		ck_assert_msg(ep[i] > ep[i - 1], "epoch %d (%llu) does not follow %llu", i,
			      (unsigned long long)ep[i], (unsigned long long)ep[i - 1]);
	st = stats_of(cl);
	ck_assert_uint_eq(st.epoch, ep[8]);
	ck_assert_uint_eq(st.durable_epoch, ep[8]);
	ck_assert_uint_eq(st.concept_count, 4);
	ck_assert_uint_eq(st.association_count, 1);
	ck_assert_uint_eq(st.requests, 8);
	ck_assert_uint_eq(st.rejected, 0);
	sutra_client_close(cl);

	stop_daemon(&d);

	struct fscan f;
	fscan_open(&f, d.data);
	ck_assert_uint_eq(f.v.sb.vector_dim, DIM);
	ck_assert_uint_eq(f.v.meta.epoch, ep[8]);
	ck_assert_uint_eq(f.v.meta.concept_count, 4);
	ck_assert_uint_eq(f.v.meta.association_count, 1);
	ck_assert_uint_eq(f.v.meta.next_ordinal, 5);
	/* Exactly the records written: a twice, b, c3, dd, e; a->b, dd->e,
	 * a->c3; the two association deletes; c3's delete. */
	ck_assert_uint_eq(f.nrec[LAYOUT_REC_CONCEPT], 6);
	ck_assert_uint_eq(f.nrec[LAYOUT_REC_ASSOCIATION], 3);
	ck_assert_uint_eq(f.nrec[LAYOUT_REC_ASSOCIATION_DELETE], 2);
	ck_assert_uint_eq(f.nrec[LAYOUT_REC_CONCEPT_DELETE], 1);
	ck_assert_uint_eq(f.blocks, 8);

	const struct fconcept *fc = expect_concept(&f, a, "alpha, second version", ep[6]);
	ck_assert_uint_eq(fc->versions, 2);
	ck_assert_uint_eq(fc->rec.ordinal, 0);
	ck_assert_uint_eq(fc->rec.metadata_len, 7);
	ck_assert_mem_eq(fc->rec.metadata, "{\"v\":2}", 7);
	ck_assert(fc->rec.strength == 1.0f);
	ck_assert(fc->rec.updated_us > fc->rec.created_us);
	expect_embedding(fc, va2, DIM);
	fc = expect_concept(&f, b, "b\xc3\xa9ta \xe2\x82\xac", ep[2]);
	ck_assert_uint_eq(fc->rec.ordinal, 1);
	ck_assert_ptr_null(fc->rec.embedding);
	ck_assert_uint_eq(fc->rec.flags & LAYOUT_CONCEPT_HAS_EMBEDDING, 0);
	ck_assert_uint_eq(fc->rec.metadata_len, 7);
	ck_assert_mem_eq(fc->rec.metadata, "{\"k\":1}", 7);
	fc = fscan_concept(&f, c3);
	ck_assert_ptr_nonnull(fc);
	ck_assert_int_eq(fc->live, 0);
	ck_assert_uint_eq(fc->epoch, ep[8]);
	ck_assert_uint_eq(fc->rec.ordinal, 2);
	ck_assert_mem_eq(fc->rec.content, "gamma", 5);
	expect_embedding(fc, vc, DIM);
	fc = expect_concept(&f, dd, "delta", ep[5]);
	ck_assert_uint_eq(fc->rec.ordinal, 3);
	expect_embedding(fc, vd, DIM);
	fc = expect_concept(&f, e, "epsilon", ep[5]);
	ck_assert_uint_eq(fc->rec.ordinal, 4);
	ck_assert_uint_eq(fc->rec.created_us, fc->rec.updated_us);

	/* The associations: values as sent, ordinals, which epoch ended them. */
	const struct fassoc *fa = fscan_assoc(&f, a, b, SUTRA_ASSOC_CAUSAL);
	ck_assert_ptr_nonnull(fa);
	ck_assert_int_eq(fa->live, 0);
	ck_assert_uint_eq(fa->epoch, ep[7]);
	ck_assert(fa->rec.confidence == 0.5f && fa->rec.weight == 2.0f);
	ck_assert_uint_eq(fa->rec.src_ordinal, 0);
	ck_assert_uint_eq(fa->rec.dst_ordinal, 1);
	fa = fscan_assoc(&f, a, c3, SUTRA_ASSOC_SEMANTIC);
	ck_assert_ptr_nonnull(fa);
	ck_assert_int_eq(fa->live, 0);
	ck_assert_uint_eq(fa->epoch, ep[8]);
	fa = fscan_assoc(&f, dd, e, SUTRA_ASSOC_TEMPORAL);
	ck_assert_ptr_nonnull(fa);
	ck_assert_int_eq(fa->live, 1);
	ck_assert_uint_eq(fa->epoch, ep[5]);
	ck_assert_uint_eq(fa->rec.src_ordinal, 3);
	ck_assert_uint_eq(fa->rec.dst_ordinal, 4);
	fscan_close(&f);

	ck_assert_int_eq(layoutdump_verify(d.data), 0);
	expect_clean_stops();
	tdaemon_cleanup(&d);
}
END_TEST

/* The strength and confidence of a first version survive in its record. */
START_TEST(test_daemon_learn_keeps_values)
{
	const char *args[] = { "--vector-dimension", "8", NULL };
	struct tdaemon d;
	uint8_t a[16];
	float v[DIM];

	id_of(a, 1);
	vec(v, DIM, 9);
	start(&d, args);
	sutra_client *cl = client_open(&d, 5000);
	struct sutra_concept_in in = concept(a, "alpha", v, DIM, NULL);
	in.strength = 0.25f;
	in.confidence = 0.75f;
	uint64_t e1 = learn_ok(cl, &in);
	sutra_client_close(cl);
	stop_daemon(&d);

	struct fscan f;
	fscan_open(&f, d.data);
	const struct fconcept *fc = expect_concept(&f, a, "alpha", e1);
	ck_assert(fc->rec.strength == 0.25f);
	ck_assert(fc->rec.confidence == 0.75f);
	ck_assert_uint_eq(fc->rec.metadata_len, 0);
	expect_embedding(fc, v, DIM);
	fscan_close(&f);
	expect_clean_stops();
	tdaemon_cleanup(&d);
}
END_TEST

/* ---- Restart ------------------------------------------------------------ */

START_TEST(test_daemon_restart_continues)
{
	const char *args[] = { "--vector-dimension", "8", NULL };
	struct tdaemon d;
	uint8_t a[16], b[16], c3[16];

	id_of(a, 1);
	id_of(b, 2);
	id_of(c3, 3);
	start(&d, args);
	sutra_client *cl = client_open(&d, 5000);
	struct sutra_concept_in in = concept(a, "alpha", NULL, 0, NULL);
	learn_ok(cl, &in);
	in = concept(b, "beta", NULL, 0, NULL);
	learn_ok(cl, &in);
	uint64_t e = 0;
	ck_assert_ok(sutra_client_learn_association(cl, a, b, 0, 1.0f, 1.0f, &e));
	struct sutra_coord_stats s1 = stats_of(cl);
	ck_assert_uint_eq(s1.epoch, e);
	sutra_client_close(cl);
	stop_daemon(&d);

	/* Same store: epoch and counts continue where they were. */
	ck_assert_ok(tdaemon_start(&d, args));
	cl = client_open(&d, 5000);
	struct sutra_coord_stats s2 = stats_of(cl);
	ck_assert_uint_eq(s2.epoch, s1.epoch);
	ck_assert_uint_eq(s2.durable_epoch, s1.epoch);
	ck_assert_uint_eq(s2.published_end, s1.published_end);
	ck_assert_uint_eq(s2.concept_count, 2);
	ck_assert_uint_eq(s2.association_count, 1);
	ck_assert_uint_eq(s2.next_ordinal, 2);
	ck_assert_uint_eq(s2.commits, 0);
	uint64_t ping_epoch = 0;
	ck_assert_ok(sutra_client_ping(cl, &ping_epoch));
	ck_assert_uint_eq(ping_epoch, s1.epoch);

	/* Writes after the restart: a new concept gets the next ordinal and
	 * epoch; an update keeps the edge recovered from the file; a delete
	 * removes it (the adjacency was rebuilt by recovery). */
	in = concept(c3, "gamma", NULL, 0, NULL);
	uint64_t e3 = learn_ok(cl, &in);
	ck_assert_uint_eq(e3, s1.epoch + 1);
	in = concept(a, "alpha again", NULL, 0, NULL);
	uint64_t e4 = learn_ok(cl, &in);
	ck_assert_uint_eq(e4, e3 + 1);
	struct sutra_coord_stats s3 = stats_of(cl);
	ck_assert_uint_eq(s3.concept_count, 3);
	ck_assert_uint_eq(s3.association_count, 1);
	uint64_t e5 = 0;
	ck_assert_ok(sutra_client_delete_concept(cl, b, &e5));
	ck_assert_uint_eq(e5, e4 + 1);
	s3 = stats_of(cl);
	ck_assert_uint_eq(s3.concept_count, 2);
	ck_assert_uint_eq(s3.association_count, 0);
	ck_assert_uint_eq(s3.next_ordinal, 3);
	sutra_client_close(cl);
	stop_daemon(&d);

	/* And once more: nothing is lost or repeated by a restart. */
	ck_assert_ok(tdaemon_start(&d, args));
	cl = client_open(&d, 5000);
	struct sutra_coord_stats s4 = stats_of(cl);
	ck_assert_uint_eq(s4.epoch, e5);
	ck_assert_uint_eq(s4.concept_count, 2);
	ck_assert_uint_eq(s4.association_count, 0);
	sutra_client_close(cl);
	stop_daemon(&d);

	struct fscan f;
	fscan_open(&f, d.data);
	ck_assert_uint_eq(f.v.meta.epoch, e5);
	ck_assert_uint_eq(f.v.meta.next_ordinal, 3);
	const struct fconcept *fc = expect_concept(&f, a, "alpha again", e4);
	ck_assert_uint_eq(fc->rec.ordinal, 0);
	ck_assert_uint_eq(fc->versions, 2);
	fc = expect_concept(&f, c3, "gamma", e3);
	ck_assert_uint_eq(fc->rec.ordinal, 2);
	fc = fscan_concept(&f, b);
	ck_assert_ptr_nonnull(fc);
	ck_assert_int_eq(fc->live, 0);
	ck_assert_uint_eq(f.nrec[LAYOUT_REC_CONCEPT], 4);
	ck_assert_uint_eq(f.nrec[LAYOUT_REC_ASSOCIATION], 1);
	ck_assert_uint_eq(f.nrec[LAYOUT_REC_ASSOCIATION_DELETE], 1);
	ck_assert_uint_eq(f.nrec[LAYOUT_REC_CONCEPT_DELETE], 1);
	fscan_close(&f);
	ck_assert_int_eq(layoutdump_verify(d.data), 0);
	expect_clean_stops();
	tdaemon_cleanup(&d);
}
END_TEST

/* ---- Resent requests ---------------------------------------------------- */

/* A LEARN_CONCEPT request as the client library would build it. */
static unsigned char *concept_request(uint64_t client, uint64_t seq, const uint8_t id[16],
				      const char *content, size_t *len)
{
	struct proto_op_body op;
	memset(&op, 0, sizeof op);
	op.op = PROTO_OP_LEARN_CONCEPT;
	memcpy(op.u.concept.id, id, 16);
	op.u.concept.strength = 1.0f;
	op.u.concept.confidence = 1.0f;
	op.u.concept.content = content;
	op.u.concept.content_len = (uint32_t)strlen(content);
	size_t n = proto_op_size(&op);
	unsigned char *m = malloc(PROTO_REQ_HEADER + n);
	ck_assert_ptr_nonnull(m);
	struct proto_req_header h = { .version = PROTO_VERSION,
				      .op = PROTO_OP_LEARN_CONCEPT,
				      .client_id = client,
				      .seq = seq,
				      .body_len = (uint32_t)n };
	proto_req_header_encode(&h, m);
	proto_op_encode(&op, NULL, m + PROTO_REQ_HEADER);
	*len = PROTO_REQ_HEADER + n;
	return m;
}

/* One request on a new REQ socket (a new connection); returns the reply header. */
static struct proto_rep_header raw_call(const char *url, const unsigned char *msg, size_t len)
{
	nng_socket s;
	struct proto_rep_header h;
	void *rep;
	size_t rl;

	ck_assert_int_eq(nng_req0_open(&s), 0);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
	ck_assert_int_eq(nng_dial(s, url, NULL, 0), 0);
	ck_assert_int_eq(nng_send(s, (void *)msg, len, 0), 0);
	int rv = nng_recv(s, &rep, &rl, NNG_FLAG_ALLOC);
	ck_assert_msg(rv == 0, "no reply: %s", nng_strerror(rv));
	ck_assert_ok(proto_rep_header_decode(rep, rl, &h));
	nng_free(rep, rl);
	nng_close(s);
	return h;
}

START_TEST(test_daemon_resend_applied_once)
{
	const char *args[] = { "--vector-dimension", "8", NULL };
	const uint64_t client = 0x5eed5eedcafe0001ull;
	struct tdaemon d;
	uint8_t x[16], y[16];
	size_t l1, l2;

	id_of(x, 100);
	id_of(y, 101);
	start(&d, args);
	sutra_client *cl = client_open(&d, 5000);
	struct sutra_coord_stats s0 = stats_of(cl);

	unsigned char *m1 = concept_request(client, 1, x, "applied once", &l1);
	struct proto_rep_header r1 = raw_call(d.url, m1, l1);
	ck_assert_int_eq(r1.status, 0);
	ck_assert_uint_eq(r1.client_id, client);
	ck_assert_uint_eq(r1.seq, 1);
	ck_assert_uint_eq(r1.op, PROTO_OP_LEARN_CONCEPT);
	ck_assert_uint_eq(r1.epoch, s0.epoch + 1);

	/* The identical bytes again over a new connection, as nng REQ does
	 * after a reconnect: the same reply, nothing applied. */
	struct proto_rep_header r2 = raw_call(d.url, m1, l1);
	ck_assert_int_eq(r2.status, 0);
	ck_assert_uint_eq(r2.epoch, r1.epoch);
	ck_assert_uint_eq(r2.client_id, client);
	ck_assert_uint_eq(r2.seq, 1);
	struct sutra_coord_stats s1 = stats_of(cl);
	ck_assert_uint_ge(s1.duplicates, 1);
	ck_assert_uint_eq(s1.epoch, r1.epoch);
	ck_assert_uint_eq(s1.concept_count, s0.concept_count + 1);
	ck_assert_uint_eq(s1.requests, 1);

	/* Same client, next sequence, another body: applied normally. */
	unsigned char *m2 = concept_request(client, 2, y, "second request", &l2);
	struct proto_rep_header r3 = raw_call(d.url, m2, l2);
	ck_assert_int_eq(r3.status, 0);
	ck_assert_uint_eq(r3.epoch, r1.epoch + 1);
	/* Both are still answered from the cache. */
	ck_assert_uint_eq(raw_call(d.url, m1, l1).epoch, r1.epoch);
	ck_assert_uint_eq(raw_call(d.url, m2, l2).epoch, r3.epoch);
	struct sutra_coord_stats s2 = stats_of(cl);
	ck_assert_uint_ge(s2.duplicates, 3);
	ck_assert_uint_eq(s2.epoch, r3.epoch);
	ck_assert_uint_eq(s2.concept_count, s0.concept_count + 2);
	free(m1);
	free(m2);
	sutra_client_close(cl);
	stop_daemon(&d);

	struct fscan f;
	fscan_open(&f, d.data);
	const struct fconcept *fc = expect_concept(&f, x, "applied once", r1.epoch);
	ck_assert_uint_eq(fc->versions, 1);
	fc = expect_concept(&f, y, "second request", r3.epoch);
	ck_assert_uint_eq(fc->versions, 1);
	ck_assert_uint_eq(f.nrec[LAYOUT_REC_CONCEPT], 2);
	ck_assert_uint_eq(f.v.meta.epoch, r3.epoch);
	fscan_close(&f);
	expect_clean_stops();
	tdaemon_cleanup(&d);
}
END_TEST

/* A request applied just before the coordinator was killed (its reply lost)
 * and resent to the restarted one is answered with the original epoch, not
 * applied again: the commit block carries a request marker. A reused
 * sequence with other bytes is refused, and not applied, after the restart
 * too. */
START_TEST(test_daemon_resend_after_restart_applied_once)
{
	const char *args[] = { "--vector-dimension", "8", NULL };
	const uint64_t client = 0x5eed5eedcafe0002ull;
	struct tdaemon d;
	uint8_t x[16], y[16];
	size_t l1, l2;

	id_of(x, 110);
	id_of(y, 111);
	start(&d, args);
	unsigned char *m1 = concept_request(client, 1, x, "applied before the crash", &l1);
	struct proto_rep_header r1 = raw_call(d.url, m1, l1);
	ck_assert_int_eq(r1.status, 0);
	tdaemon_kill9(&d);
	ck_assert_msg(tdaemon_start(&d, args) == 0, "restart failed");

	struct proto_rep_header r2 = raw_call(d.url, m1, l1);
	ck_assert_int_eq(r2.status, 0);
	ck_assert_uint_eq(r2.epoch, r1.epoch);
	unsigned char *m2 = concept_request(client, 1, y, "same seq, other bytes", &l2);
	struct proto_rep_header r3 = raw_call(d.url, m2, l2);
	ck_assert_int_eq(r3.status, SUTRA_EPROTO);
	sutra_client *cl = client_open(&d, 5000);
	struct sutra_coord_stats st = stats_of(cl);
	ck_assert_uint_eq(st.duplicates, 1);
	ck_assert_uint_eq(st.requests, 0);
	ck_assert_uint_eq(st.concept_count, 1);
	sutra_client_close(cl);
	free(m1);
	free(m2);
	stop_daemon(&d);

	struct fscan f;
	fscan_open(&f, d.data);
	const struct fconcept *fc = expect_concept(&f, x, "applied before the crash", r1.epoch);
	ck_assert_uint_eq(fc->versions, 1);
	ck_assert_uint_eq(f.nrec[LAYOUT_REC_CONCEPT], 1);
	ck_assert_uint_eq(f.nrec[LAYOUT_REC_REQUEST], 1);
	fscan_close(&f);
	expect_clean_stops();
	tdaemon_cleanup(&d);
}
END_TEST

/* ---- A second coordinator ----------------------------------------------- */

START_TEST(test_daemon_second_writer_refused)
{
	const char *args[] = { "--vector-dimension", "8", NULL };
	struct tdaemon d, d2;
	uint8_t a[16];

	id_of(a, 1);
	start(&d, args);
	sutra_client *cl = client_open(&d, 5000);
	struct sutra_concept_in in = concept(a, "alpha", NULL, 0, NULL);
	uint64_t e1 = learn_ok(cl, &in);

	/* Same data path, its own sockets and log. */
	d2 = d;
	d2.pid = -1;
	snprintf(d2.url, sizeof d2.url, "ipc://%s/w2.sock", d.dir);
	snprintf(d2.events, sizeof d2.events, "ipc://%s/e2.sock", d.dir);
	snprintf(d2.log, sizeof d2.log, "%s/coord2.log", d.dir);
	uint64_t t0 = now_ms();
	ck_assert_ok(tdaemon_spawn(&d2, args));
	int st = tdaemon_wait(&d2, 10000);
	uint64_t took = now_ms() - t0;
	ck_assert_msg(st == 1, "second coordinator exit status %d, expected 1", st);
	ck_assert_msg(took < 3000, "second coordinator took %llu ms to give up",
		      (unsigned long long)took);
	char *log = slurp(d2.log);
	ck_assert_ptr_nonnull(log);
	char pid[32];
	snprintf(pid, sizeof pid, "pid %ld", (long)d.pid);
	ck_assert_msg(strstr(log, pid) != NULL, "log does not name \"%s\": %s", pid, log);
	ck_assert_msg(strstr(log, "locked") != NULL, "log does not say locked: %s", log);
	free(log);

	/* The first one is unaffected. */
	in = concept(a, "alpha, still served", NULL, 0, NULL);
	uint64_t e2 = learn_ok(cl, &in);
	ck_assert_uint_eq(e2, e1 + 1);
	sutra_client_close(cl);
	stop_daemon(&d);
	struct fscan f;
	fscan_open(&f, d.data);
	expect_concept(&f, a, "alpha, still served", e2);
	fscan_close(&f);
	expect_clean_stops();
	tdaemon_cleanup(&d);
}
END_TEST

/* ---- I/O backends and durability modes ---------------------------------- */

/* Learns n concepts of the default dimension (768) one by one, then a
 * batch, with associations; checks the stats and, after SIGTERM, the file. */
static void learn_cycle(const char *const *args, int expect_uring, int relaxed)
{
	enum { N = 24, NB = 8, DEF_DIM = 768 };
	struct tdaemon d;
	uint8_t ids[N + NB][16];
	char content[N + NB][32];
	uint64_t epochs[N + NB];
	float *v = malloc(DEF_DIM * sizeof *v);

	ck_assert_ptr_nonnull(v);
	start(&d, args);
	sutra_client *cl = client_open(&d, 5000);
	struct sutra_coord_stats st = stats_of(cl);
	ck_assert_uint_eq(st.io_uring, (uint32_t)expect_uring);
	ck_assert_uint_eq(st.relaxed, (uint32_t)relaxed);
	ck_assert_uint_eq(st.vector_dim, DEF_DIM);

	uint64_t last = 0;
	for (uint32_t i = 0; i < N; i++) {
		id_of(ids[i], i);
		snprintf(content[i], sizeof content[i], "concept %u", i);
		vec(v, DEF_DIM, i);
		struct sutra_concept_in in = concept(ids[i], content[i], i % 3 ? v : NULL, DEF_DIM,
						     i % 2 ? "{}" : NULL);
		epochs[i] = learn_ok(cl, &in);
		ck_assert_uint_gt(epochs[i], last);
		last = epochs[i];
		if (i > 0) {
			uint64_t e;
			ck_assert_ok(sutra_client_learn_association(cl, ids[i - 1], ids[i], 0,
									1.0f, 1.0f, &e));
			ck_assert_uint_gt(e, last);
			last = e;
		}
	}
	sutra_batch *b = sutra_batch_create();
	ck_assert_ptr_nonnull(b);
	for (uint32_t i = N; i < N + NB; i++) {
		id_of(ids[i], i);
		snprintf(content[i], sizeof content[i], "batched %u", i);
		vec(v, DEF_DIM, i);
		struct sutra_concept_in in = concept(ids[i], content[i], v, DEF_DIM, NULL);
		ck_assert_ok(sutra_batch_learn_concept(b, &in));
	}
	uint64_t eb;
	ck_assert_ok(sutra_client_commit(cl, b, &eb));
	ck_assert_uint_gt(eb, last);
	last = eb;
	for (uint32_t i = N; i < N + NB; i++)
		epochs[i] = eb;
	sutra_batch_destroy(b);

	uint64_t synced = 0;
	ck_assert_ok(sutra_client_sync(cl, &synced));
	ck_assert_uint_ge(synced, last);
	st = stats_of(cl);
	ck_assert_uint_eq(st.epoch, last);
	ck_assert_uint_ge(st.durable_epoch, last);
	ck_assert_uint_eq(st.concept_count, N + NB);
	ck_assert_uint_eq(st.association_count, N - 1);
	ck_assert_uint_eq(st.io_uring, (uint32_t)expect_uring);

	if (relaxed) {
		/* The periodic sync makes a write durable without being asked. */
		uint8_t extra[16];
		id_of(extra, 999);
		struct sutra_concept_in in = concept(extra, "made durable by the timer", NULL, 0,
						     NULL);
		uint64_t e = learn_ok(cl, &in);
		uint64_t deadline = now_ms() + 3000;
		do {
			st = stats_of(cl);
			if (st.durable_epoch >= e)
				break;
			sleep_ms(10);
		} while (now_ms() < deadline);
		ck_assert_msg(st.durable_epoch >= e,
			      "relaxed mode: epoch %llu not durable after 3 s (durable %llu)",
			      (unsigned long long)e, (unsigned long long)st.durable_epoch);
		last = e;
	}
	sutra_client_close(cl);
	stop_daemon(&d);

	struct fscan f;
	fscan_open(&f, d.data);
	ck_assert_uint_eq(f.v.meta.epoch, last);
	for (uint32_t i = 0; i < N + NB; i++) {
		const struct fconcept *fc = expect_concept(&f, ids[i], content[i], epochs[i]);
		if (i >= N || i % 3) {
			vec(v, DEF_DIM, i);
			expect_embedding(fc, v, DEF_DIM);
		} else {
			ck_assert_ptr_null(fc->rec.embedding);
		}
	}
	ck_assert_uint_eq(f.v.meta.association_count, N - 1);
	fscan_close(&f);
	ck_assert_int_eq(layoutdump_verify(d.data), 0);
	free(v);
	expect_clean_stops();
	tdaemon_cleanup(&d);
}

START_TEST(test_daemon_backend_io_uring)
{
	learn_cycle(NULL, 1, 0);
}
END_TEST

START_TEST(test_daemon_backend_pwrite)
{
	const char *args[] = { "--io", "sync", NULL };
	learn_cycle(args, 0, 0);
}
END_TEST

START_TEST(test_daemon_relaxed_durability)
{
	const char *args[] = { "--durability", "relaxed", "--sync-interval-ms", "50", NULL };
	learn_cycle(args, 1, 1);
}
END_TEST

/* ---- I/O failure -------------------------------------------------------- */

struct fault_case {
	const char *spec;
	const char *io; /* NULL: the default backend */
};

static const struct fault_case fault_cases[] = {
	{ "sync:5", NULL }, { "write:4", NULL }, { "short:4", NULL },
	{ "sync:5", "sync" }, { "write:4", "sync" }, { "short:4", "sync" },
};

START_TEST(test_daemon_io_failure_is_fatal)
{
	const struct fault_case *fc = &fault_cases[_i];
	const char *args[8] = { "--vector-dimension", "8" };
	int na = 2;
	if (fc->io) {
		args[na++] = "--io";
		args[na++] = fc->io;
	}
	args[na] = NULL;
	enum { MAXW = 64 };
	uint8_t ids[MAXW][16];
	char content[MAXW][32];
	uint64_t epochs[MAXW];
	struct tdaemon d;
	int n = 0, rc = 0;

	ck_assert_int_eq(setenv("SUTRA_COORD_FAULT", fc->spec, 1), 0);
	start(&d, args);
	ck_assert_int_eq(unsetenv("SUTRA_COORD_FAULT"), 0);
	sutra_client *cl = client_open(&d, 5000);
	for (n = 0; n < MAXW; n++) {
		id_of(ids[n], (uint32_t)n);
		snprintf(content[n], sizeof content[n], "before the fault %d", n);
		struct sutra_concept_in in = concept(ids[n], content[n], NULL, 0, NULL);
		rc = sutra_client_learn_concept(cl, &in, &epochs[n]);
		if (rc)
			break;
	}
	ck_assert_msg(rc == -EIO, "%s: the failing write got %s (%s), expected -EIO", fc->spec,
		      sutra_errname(rc), sutra_client_last_error(cl));
	ck_assert_msg(n >= 1 && n < 8, "%s: %d writes before the fault", fc->spec, n);
	sutra_client_close(cl);

	/* It stops on its own, with status 1. */
	int st = tdaemon_wait(&d, 10000);
	ck_assert_msg(st == 1, "%s: exit status %d after the I/O error, expected 1", fc->spec, st);

	/* Restarted without the fault, it recovers with every acknowledged
	 * write, and takes new ones. */
	ck_assert_msg(tdaemon_start(&d, args) == 0, "%s: no restart", fc->spec);
	cl = client_open(&d, 5000);
	struct sutra_coord_stats s = stats_of(cl);
	ck_assert_uint_ge(s.epoch, epochs[n - 1]);
	ck_assert_uint_ge(s.concept_count, (uint64_t)n);
	ck_assert_uint_le(s.concept_count, (uint64_t)n + 1);
	uint8_t after[16];
	id_of(after, 1000);
	struct sutra_concept_in in = concept(after, "after the restart", NULL, 0, NULL);
	uint64_t ea = learn_ok(cl, &in);
	ck_assert_uint_gt(ea, s.epoch);
	sutra_client_close(cl);
	stop_daemon(&d);

	struct fscan f;
	fscan_open(&f, d.data);
	for (int i = 0; i < n; i++)
		expect_concept(&f, ids[i], content[i], epochs[i]);
	expect_concept(&f, after, "after the restart", ea);
	fscan_close(&f);
	ck_assert_int_eq(layoutdump_verify(d.data), 0);
	expect_clean_stops();
	tdaemon_cleanup(&d);
}
END_TEST

/* ---- Graceful shutdown under load --------------------------------------- */

#define WRITERS 4

static uint32_t writer_item(uint32_t writer, uint32_t i)
{
	return 0x01000000u * (writer + 1) + i;
}

/* Writer mode (a separate process started with execv): learns concepts
 * until a write fails, appending "ack I EPOCH" per acknowledged write and
 * "stop RC" at the end to out. */
static int writer_run(const char *url, uint32_t writer, const char *out)
{
	int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return 2;
	struct sutra_client_options o;
	sutra_client_options_init(&o);
	o.timeout_ms = 3000;
	o.resend_ms = 500;
	sutra_client *c = NULL;
	int rc = sutra_client_connect(url, &o, &c);
	for (uint32_t i = 0; rc == 0 && i < 10000000u; i++) {
		uint8_t id[16];
		char content[64];
		uint64_t e = 0;
		id_of(id, writer_item(writer, i));
		snprintf(content, sizeof content, "writer %u item %u", writer, i);
		struct sutra_concept_in in = concept(id, content, NULL, 0, NULL);
		rc = sutra_client_learn_concept(c, &in, &e);
		if (rc == 0)
			dprintf(fd, "ack %u %llu\n", i, (unsigned long long)e);
	}
	dprintf(fd, "stop %d\n", rc);
	sutra_client_close(c);
	close(fd);
	return 0;
}

static pid_t spawn_writer(const char *url, uint32_t writer, const char *out)
{
	char num[16];
	snprintf(num, sizeof num, "%u", writer);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* Only exec here: this process has used nng (DESIGN.md, traps). */
		execl("/proc/self/exe", "test_int_daemon", "--writer", url, num, out, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int count_acks(const char *path)
{
	char *s = slurp(path);
	int n = 0;
	for (const char *p = s; p && (p = strstr(p, "ack ")) != NULL; p += 4)
		n++;
	free(s);
	return n;
}

START_TEST(test_daemon_graceful_shutdown_under_load)
{
	const char *args[] = { "--vector-dimension", "8", NULL };
	struct tdaemon d;
	char out[WRITERS][400];
	pid_t pids[WRITERS];

	start(&d, args);
	for (uint32_t w = 0; w < WRITERS; w++) {
		snprintf(out[w], sizeof out[w], "%s/writer%u.txt", d.dir, w);
		pids[w] = spawn_writer(d.url, w, out[w]);
	}
	/* Let every writer get going, then keep the load on ~300 ms. */
	uint64_t t0 = now_ms(), deadline = t0 + 10000;
	for (uint32_t w = 0; w < WRITERS; w++) {
		while (count_acks(out[w]) == 0 && now_ms() < deadline)
			sleep_ms(5);
		ck_assert_msg(count_acks(out[w]) > 0, "writer %u made no write in 10 s", w);
	}
	uint64_t ran = now_ms() - t0;
	if (ran < 300)
		sleep_ms((unsigned)(300 - ran));
	stop_daemon(&d);

	/* The writers see errors and stop. */
	deadline = now_ms() + 20000;
	for (uint32_t w = 0; w < WRITERS; w++) {
		int st = 0;
		pid_t r;
		while ((r = waitpid(pids[w], &st, WNOHANG)) == 0 && now_ms() < deadline)
			sleep_ms(10);
		ck_assert_msg(r == pids[w], "writer %u still running 20 s after the stop", w);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer %u failed (%d)", w,
			      st);
	}

	struct fscan f;
	fscan_open(&f, d.data);
	uint64_t total = 0;
	for (uint32_t w = 0; w < WRITERS; w++) {
		FILE *in = fopen(out[w], "re");
		ck_assert_ptr_nonnull(in);
		char line[128];
		int stopped = 0;
		while (fgets(line, sizeof line, in)) {
			unsigned item;
			unsigned long long e;
			int rc;
			if (sscanf(line, "ack %u %llu", &item, &e) == 2) {
				uint8_t id[16];
				char content[64];
				ck_assert_int_eq(stopped, 0);
				id_of(id, writer_item(w, item));
				snprintf(content, sizeof content, "writer %u item %u", w, item);
				expect_concept(&f, id, content, e);
				ck_assert_uint_le(e, f.v.meta.epoch);
				total++;
			} else if (sscanf(line, "stop %d", &rc) == 1) {
				ck_assert_msg(rc != 0, "writer %u stopped without an error", w);
				stopped = 1;
			}
		}
		fclose(in);
		ck_assert_msg(stopped, "writer %u left no stop line", w);
	}
	/* Each writer has at most one write that was applied but never
	 * acknowledged (the one in flight at the stop). */
	ck_assert_uint_ge(f.v.meta.concept_count, total);
	ck_assert_uint_le(f.v.meta.concept_count, total + WRITERS);
	fscan_close(&f);
	ck_assert_int_eq(layoutdump_verify(d.data), 0);
	char *log = slurp(d.log);
	ck_assert_ptr_nonnull(log);
	ck_assert_msg(strstr(log, "SIGTERM") != NULL, "log: %s", log);
	free(log);
	expect_clean_stops();
	tdaemon_cleanup(&d);
}
END_TEST

/* ---- Notices ------------------------------------------------------------ */

struct notice {
	void *buf;
	size_t len;
	struct proto_notice n;
	uint64_t at_ms;
};

/* Receives notices until one of kind (and epoch, unless 0) arrives; 0 on timeout. */
static int notice_wait(nng_socket sub, uint16_t kind, uint64_t epoch, int timeout_ms,
		       struct notice *out)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline)
			return 0;
		nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, (nng_duration)(deadline - now));
		void *m;
		size_t len;
		int rv = nng_recv(sub, &m, &len, NNG_FLAG_ALLOC);
		if (rv == NNG_ETIMEDOUT)
			return 0;
		ck_assert_msg(rv == 0, "notice: %s", nng_strerror(rv));
		struct proto_notice pn;
		ck_assert_ok(proto_notice_decode(m, len, &pn));
		ck_assert_msg(pn.kind == PROTO_NOTICE_EPOCH || pn.kind == PROTO_NOTICE_HEARTBEAT,
			      "notice of kind %u", pn.kind);
		if (pn.kind == kind && (epoch == 0 || pn.epoch == epoch)) {
			out->buf = m;
			out->len = len;
			out->n = pn;
			out->at_ms = now_ms();
			return 1;
		}
		nng_free(m, len);
	}
}

static void notice_free(struct notice *n)
{
	nng_free(n->buf, n->len);
	n->buf = NULL;
}

/* The changed-ordinals bitmap of an epoch notice. */
static roaring_bitmap_t *notice_changed(const struct notice *n)
{
	ck_assert_uint_gt(n->n.changed_len, 0);
	roaring_bitmap_t *bm =
		roaring_bitmap_portable_deserialize_safe((const char *)n->n.changed, n->n.changed_len);
	ck_assert_ptr_nonnull(bm);
	return bm;
}

START_TEST(test_daemon_notices_announce_epochs)
{
	const char *args[] = { "--vector-dimension", "8", "--check-interval-ms", "100", NULL };
	struct tdaemon d;
	struct notice n;
	nng_socket sub;
	uint8_t a[16], b[16];

	id_of(a, 1);
	id_of(b, 2);
	start(&d, args);
	ck_assert_int_eq(nng_sub0_open(&sub), 0);
	ck_assert_int_eq(nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "", 0), 0);
	nng_socket_set_ms(sub, NNG_OPT_RECONNMINT, 10);
	nng_socket_set_ms(sub, NNG_OPT_RECONNMAXT, 100);
	ck_assert_int_eq(nng_dial(sub, d.events, NULL, NNG_FLAG_NONBLOCK), 0);
	/* A first heartbeat shows the subscription is connected (notices sent
	 * before that are gone by design). */
	ck_assert_msg(notice_wait(sub, PROTO_NOTICE_HEARTBEAT, 0, 5000, &n),
		      "no heartbeat within 5 s");
	ck_assert_uint_eq(n.n.epoch, 0);
	ck_assert_uint_eq(n.n.changed_len, 0);
	notice_free(&n);

	sutra_client *cl = client_open(&d, 5000);
	struct sutra_concept_in in = concept(a, "alpha", NULL, 0, NULL);
	uint64_t e1 = learn_ok(cl, &in);
	ck_assert_msg(notice_wait(sub, PROTO_NOTICE_EPOCH, e1, 5000, &n), "no notice of epoch %llu",
		      (unsigned long long)e1);
	ck_assert_uint_ge(n.n.durable_epoch, e1);
	ck_assert_uint_gt(n.n.published_end, LAYOUT_DATA_OFFSET);
	uint8_t uuid[16];
	memcpy(uuid, n.n.store_uuid, 16);
	roaring_bitmap_t *bm = notice_changed(&n);
	ck_assert(roaring_bitmap_contains(bm, 0));
	ck_assert_uint_eq(roaring_bitmap_get_cardinality(bm), 1);
	roaring_bitmap_free(bm);
	notice_free(&n);

	in = concept(b, "beta", NULL, 0, NULL);
	uint64_t e2 = learn_ok(cl, &in);
	ck_assert_msg(notice_wait(sub, PROTO_NOTICE_EPOCH, e2, 5000, &n), "no notice of epoch %llu",
		      (unsigned long long)e2);
	bm = notice_changed(&n);
	ck_assert(roaring_bitmap_contains(bm, 1));
	ck_assert_uint_eq(roaring_bitmap_get_cardinality(bm), 1);
	roaring_bitmap_free(bm);
	notice_free(&n);

	uint64_t e3 = 0;
	ck_assert_ok(sutra_client_learn_association(cl, b, a, 0, 1.0f, 1.0f, &e3));
	ck_assert_msg(notice_wait(sub, PROTO_NOTICE_EPOCH, e3, 5000, &n), "no notice of epoch %llu",
		      (unsigned long long)e3);
	bm = notice_changed(&n);
	ck_assert(roaring_bitmap_contains(bm, 0) && roaring_bitmap_contains(bm, 1));
	ck_assert_uint_eq(roaring_bitmap_get_cardinality(bm), 2);
	roaring_bitmap_free(bm);
	notice_free(&n);

	/* Idle: heartbeats with the current epoch, each within about two
	 * check intervals of the previous one (100 ms of slack for the
	 * scheduler). */
	ck_assert_msg(notice_wait(sub, PROTO_NOTICE_HEARTBEAT, 0, 1000, &n), "no heartbeat");
	uint64_t prev = n.at_ms;
	notice_free(&n);
	for (int i = 0; i < 5; i++) {
		ck_assert_msg(notice_wait(sub, PROTO_NOTICE_HEARTBEAT, 0, 1000, &n),
			      "no heartbeat within 1 s");
		ck_assert_uint_eq(n.n.epoch, e3);
		ck_assert_uint_eq(n.n.changed_len, 0);
		ck_assert_mem_eq(n.n.store_uuid, uuid, 16);
		ck_assert_msg(n.at_ms - prev <= 300, "heartbeat gap %llu ms with a 100 ms interval",
			      (unsigned long long)(n.at_ms - prev));
		prev = n.at_ms;
		notice_free(&n);
	}
	nng_close(sub);
	sutra_client_close(cl);
	stop_daemon(&d);

	/* The notices name this store. */
	struct fscan f;
	fscan_open(&f, d.data);
	ck_assert_mem_eq(f.v.sb.uuid, uuid, 16);
	ck_assert_uint_eq(f.v.meta.epoch, e3);
	fscan_close(&f);
	expect_clean_stops();
	tdaemon_cleanup(&d);
}
END_TEST

/* One case per behaviour, named after it, so that CK_RUN_CASE=<behaviour>
 * runs a single one. */
static TCase *add(Suite *s, const char *name, const TTest *t)
{
	TCase *tc = tcase_create(name);
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, reset_stops, NULL);
	if (t)
		tcase_add_test(tc, t);
	suite_add_tcase(s, tc);
	return tc;
}

/*
 * The store is not world-readable (issue 14, defect 7): under umask 0,
 * which left storage.dat and the lock file 0644 and the sockets open to
 * every local user, the coordinator creates storage.dat 0640, the lock
 * file 0660 (readers of the group claim slots in it) and its sockets
 * 0660, and nothing for "others".
 */
START_TEST(test_daemon_files_not_world_readable)
{
	struct tdaemon d;
	struct stat st;
	char lock[400];
	mode_t old = umask(0);
	start(&d, NULL);
	umask(old);
	ck_assert_int_eq(stat(d.data, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
	snprintf(lock, sizeof lock, "%s.lock", d.data);
	ck_assert_int_eq(stat(lock, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0660);
	ck_assert_int_eq(stat(d.url + strlen("ipc://"), &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0660);
	ck_assert_int_eq(stat(d.events + strlen("ipc://"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0660);
	/* The owner still writes and reads through them. */
	sutra_client *cl = client_open(&d, 60000);
	struct sutra_concept_in in = concept((const uint8_t *)"0123456789abcdef", "private", NULL,
					     0, NULL);
	learn_ok(cl, &in);
	sutra_client_close(cl);
	ck_assert_ok(tdaemon_stop(&d));
	tdaemon_cleanup(&d);
}
END_TEST

int main(int argc, char **argv)
{
	/* Writer mode: a client process of the shutdown test. */
	if (argc == 5 && strcmp(argv[1], "--writer") == 0)
		return writer_run(argv[2], (uint32_t)strtoul(argv[3], NULL, 10), argv[4]);

	Suite *s = suite_create("daemon");
	add(s, "learn_and_verify_file", test_daemon_learn_and_verify_file);
	add(s, "learn_keeps_values", test_daemon_learn_keeps_values);
	add(s, "restart_continues", test_daemon_restart_continues);
	add(s, "resend_applied_once", test_daemon_resend_applied_once);
	add(s, "resend_after_restart_applied_once", test_daemon_resend_after_restart_applied_once);
	add(s, "second_writer_refused", test_daemon_second_writer_refused);
	add(s, "backend_io_uring", test_daemon_backend_io_uring);
	add(s, "backend_pwrite", test_daemon_backend_pwrite);
	add(s, "relaxed_durability", test_daemon_relaxed_durability);
	tcase_add_loop_test(add(s, "io_failure_is_fatal", NULL), test_daemon_io_failure_is_fatal, 0,
			    (int)(sizeof fault_cases / sizeof fault_cases[0]));
	add(s, "graceful_shutdown_under_load", test_daemon_graceful_shutdown_under_load);
	add(s, "notices_announce_epochs", test_daemon_notices_announce_epochs);
	add(s, "files_not_world_readable", test_daemon_files_not_world_readable);
	return tcheck_run_suite(s);
}
