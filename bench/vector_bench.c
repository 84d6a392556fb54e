/* SPDX-License-Identifier: MIT */
/* sutra-bench-vector: our HNSW section against hnswlib (C++ and Python) and exact search, on real vectors. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <limits.h>
#include <signal.h>
#include <sys/wait.h>

#include "bench/benchutil.h"
#include "sutra/client.h"
#include "sutra/reader.h"
#include "layout/hnsw.h"
#include "util/crc32c.h"
#include "util/vecdist.h"
#ifdef BENCH_HAVE_HNSWLIB
#include "bench/vector_anchor.h"
#endif

/*
 * One run builds each engine once over the same unit vectors (M = 16,
 * ef_construction = 200, one thread) and searches the same queries at
 * each ef of efs[], reporting recall@10 against exact search and
 * queries/s. Each engine is one function filling a struct figures, so a
 * column ("through the store", say) is one more function and one more
 * line in main().
 *
 * Data: Fashion-MNIST from Debian's dataset-fashion-mnist (60,000 train
 * images as the base, the 10,000 test images as queries; --quick takes
 * 10,000 and 1,000), 784 pixel values as a vector; or, with --fiori DIR,
 * the 778 all-MiniLM-L6-v2 embeddings (384-d) of the npm package
 * @sap-ux/fiori-docs-embeddings unpacked in DIR, each document also a query.
 */

#define K 10
#define M 16
#define EFC 200
#define SEED 100
static const uint32_t efs[] = { 10, 16, 32, 64, 128, 256 };
#define NEF (sizeof efs / sizeof efs[0])

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

struct dataset {
	char name[128];
	uint32_t dim, n, nq;
	float *base;     /* n × dim, unit length */
	float *queries;  /* nq × dim, unit length */
	uint32_t *truth; /* nq × K, exact nearest by cosine */
};

struct figures {
	const char *name;
	int ran;
	char note[160];
	double build_rate; /* inserts/s, 0: not applicable */
	double recall[NEF], qps[NEF];
};

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

/* ---- Data ---------------------------------------------------------------------- */

static uint32_t be32(const unsigned char *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* The first want images of an IDX3 file (gzip), as unit vectors; images
 * that are all zero are left out. Returns the count read. */
static uint32_t load_idx(const char *path, uint32_t want, uint32_t *dim, float **out)
{
	char cmd[512];
	unsigned char hdr[16];
	snprintf(cmd, sizeof cmd, "gzip -dc '%s'", path);
	FILE *f = popen(cmd, "r");
	if (!f || fread(hdr, 1, 16, f) != 16 || be32(hdr) != 0x803)
		die("%s: not an IDX3 image file (is dataset-fashion-mnist installed?)", path);
	uint32_t n = be32(hdr + 4), d = be32(hdr + 8) * be32(hdr + 12);
	if (want > n)
		want = n;
	float *v = xmalloc((size_t)want * d * sizeof *v);
	unsigned char *px = xmalloc(d);
	uint32_t got = 0;
	for (uint32_t i = 0; i < want; i++) {
		if (fread(px, 1, d, f) != d)
			die("%s: short read", path);
		float *row = v + (size_t)got * d;
		for (uint32_t j = 0; j < d; j++)
			row[j] = px[j];
		if (util_normalize(row, row, d) == 0)
			got++;
	}
	pclose(f);
	free(px);
	*dim = d;
	*out = v;
	return got;
}

static void load_fashion(struct dataset *ds, uint32_t n, uint32_t nq)
{
	uint32_t d2;
	ds->n = load_idx(FASHION_DIR "/train-images-idx3-ubyte.gz", n, &ds->dim, &ds->base);
	ds->nq = load_idx(FASHION_DIR "/t10k-images-idx3-ubyte.gz", nq, &d2, &ds->queries);
	snprintf(ds->name, sizeof ds->name, "fashion-mnist, %u base vectors, %u queries, dim %u", ds->n,
		 ds->nq, ds->dim);
}

static void load_fiori(struct dataset *ds, const char *dir)
{
	char path[1024];
	struct stat st;
	snprintf(path, sizeof path, "%s/data/embeddings/embeddings.bin", dir);
	FILE *f = fopen(path, "rb");
	if (!f || fstat(fileno(f), &st))
		die("%s: %s", path, strerror(errno));
	/* A flat array of little-endian float32, 384 per document, in the order
	 * of records.jsonl (metadata.json: dimensions 384, totalVectors 778). */
	ds->dim = 384;
	if (st.st_size % (4 * ds->dim))
		die("%s: %lld bytes is not a whole number of 384-d vectors", path, (long long)st.st_size);
	ds->n = (uint32_t)(st.st_size / (4 * ds->dim));
	ds->base = xmalloc((size_t)st.st_size);
	if (fread(ds->base, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
		die("%s: short read", path);
	fclose(f);
	uint32_t kept = 0;
	for (uint32_t i = 0; i < ds->n; i++)
		if (util_normalize(ds->base + (size_t)i * ds->dim, ds->base + (size_t)kept * ds->dim, ds->dim) == 0)
			kept++;
	ds->n = kept;
	/* Every document is also a query (its own nearest neighbour is itself). */
	ds->nq = ds->n;
	ds->queries = xmalloc((size_t)ds->n * ds->dim * sizeof(float));
	memcpy(ds->queries, ds->base, (size_t)ds->n * ds->dim * sizeof(float));
	snprintf(ds->name, sizeof ds->name, "fiori-docs-embeddings, %u base vectors, %u queries, dim %u",
		 ds->n, ds->nq, ds->dim);
}

/* ---- Scoring ------------------------------------------------------------------- */

static double recall_of(const struct dataset *ds, const uint32_t *found)
{
	uint64_t hits = 0;
	for (uint32_t q = 0; q < ds->nq; q++)
		for (uint32_t i = 0; i < K; i++)
			for (uint32_t j = 0; j < K; j++)
				if (found[(size_t)q * K + i] == ds->truth[(size_t)q * K + j]) {
					hits++;
					break;
				}
	return (double)hits / ((double)ds->nq * K);
}

/* ---- Engines ------------------------------------------------------------------- */

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * An engine builds once over the base vectors and then searches all the
 * queries at one ef per call. main() runs the passes of all engines
 * interleaved (ef by ef, REPS rounds) and keeps each engine's fastest pass,
 * so that a burst of load from other processes on the machine hits them
 * alike and rarely decides a figure. Times are the thread's CPU time.
 */
struct engine {
	const char *name;
	/* Builds; fills f->build_rate and f->note. NULL: not available (the
	 * note says why), or nothing more to do (f filled in). */
	void *(*build)(const struct dataset *ds, struct figures *f);
	/* Searches every query at ef: K labels per query into found. */
	void (*search)(void *st, const struct dataset *ds, uint32_t ef, uint32_t *found);
	void (*destroy)(void *st);
};

/* (d) Exact search with util_dot: it also gives the ground truth. Queries
 * go in blocks of 16 against each base vector in turn, so that the base
 * streams from memory once per block rather than once per query. */
static void exact_truth(struct dataset *ds, struct figures *f)
{
	enum { QB = 16 };
	float best[QB][K];
	uint32_t lab[QB][K];

	ds->truth = xmalloc((size_t)ds->nq * K * sizeof *ds->truth);
	double t0 = cpu_s();
	for (uint32_t q0 = 0; q0 < ds->nq; q0 += QB) {
		uint32_t nb = ds->nq - q0 < QB ? ds->nq - q0 : QB;
		for (uint32_t b = 0; b < nb; b++)
			for (uint32_t i = 0; i < K; i++) {
				best[b][i] = -INFINITY;
				lab[b][i] = UINT32_MAX;
			}
		for (uint32_t x = 0; x < ds->n; x++) {
			const float *v = ds->base + (size_t)x * ds->dim;
			for (uint32_t b = 0; b < nb; b++) {
				float s = util_dot(ds->queries + (size_t)(q0 + b) * ds->dim, v, ds->dim);
				if (!(s > best[b][K - 1]))
					continue;
				uint32_t i = K - 1;
				while (i > 0 && s > best[b][i - 1]) {
					best[b][i] = best[b][i - 1];
					lab[b][i] = lab[b][i - 1];
					i--;
				}
				best[b][i] = s;
				lab[b][i] = x;
			}
		}
		for (uint32_t b = 0; b < nb; b++)
			memcpy(ds->truth + (size_t)(q0 + b) * K, lab[b], sizeof lab[b]);
	}
	double qps = ds->nq / (cpu_s() - t0);
	f->ran = 1;
	for (size_t e = 0; e < NEF; e++) {
		f->recall[e] = 1.0;
		f->qps[e] = qps;
	}
	snprintf(f->note, sizeof f->note, "util_dot (%s), queries in blocks of 16, one pass", util_vec_kernel());
}

/* (a) Ours: layout_hnsw built, serialised into a buffer and searched in
 * place through a view (no touch callback: the bytes are our own). */
struct ours {
	void *sec;
	struct layout_hnsw_view v;
};

/* The last section ours_build() made, which touch_build() searches again
 * rather than building the same graph twice. */
static const struct ours *built_ours;

static void *ours_build(const struct dataset *ds, struct figures *f)
{
	struct layout_hnsw_params p = { .dim = ds->dim, .m = M, .ef_construction = EFC, .seed = SEED };
	struct layout_hnsw_builder *b;
	struct ours *o = xmalloc(sizeof *o);
	double t0 = cpu_s();
	if (layout_hnsw_builder_create(&p, ds->n, &b))
		die("layout_hnsw_builder_create failed");
	for (uint32_t i = 0; i < ds->n; i++)
		if (layout_hnsw_add(b, i, ds->base + (size_t)i * ds->dim))
			die("layout_hnsw_add failed");
	uint64_t len = layout_hnsw_serialized_size(b);
	if (posix_memalign(&o->sec, 64, (size_t)len))
		die("out of memory");
	layout_hnsw_serialize(b, o->sec);
	f->build_rate = ds->n / (cpu_s() - t0);
	layout_hnsw_builder_destroy(b);

	struct sutra_detail pb;
	if (layout_hnsw_view_open(&o->v, o->sec, len, 0, ds->dim, NULL, NULL, &pb))
		die("layout_hnsw_view_open: %s", pb.what);
	snprintf(f->note, sizeof f->note, "layout_hnsw, section of %.1f MiB built and serialised, kernel %s",
		 len / 1048576.0, util_vec_kernel());
	built_ours = o;
	return o;
}

static void ours_search(void *st, const struct dataset *ds, uint32_t ef, uint32_t *found)
{
	struct ours *o = st;
	struct layout_hnsw_hit hits[K];
	struct sutra_detail pb;
	for (uint32_t q = 0; q < ds->nq; q++) {
		uint32_t n;
		if (layout_hnsw_search(&o->v, ds->queries + (size_t)q * ds->dim, K, ef, NULL, NULL, hits, &n,
				       &pb))
			die("layout_hnsw_search failed");
		for (uint32_t i = 0; i < n; i++)
			found[(size_t)q * K + i] = hits[i].label;
	}
}

static void ours_destroy(void *st)
{
	struct ours *o = st;
	free(o->sec);
	free(o);
}

/* (a') The same, searched through a touch callback that does what the
 * segment view's does (layout_segview_touch): bounds, then for each 64 KiB
 * chunk of the range an atomic bit test, and the chunk's CRC32C checked
 * against a table the first time. This is the cost of lazy checking. */
#define CHUNK 65536u

struct ours_touch {
	struct ours o;
	uint64_t len, *checked;
	uint32_t *crcs;
};

static int chunk_touch(void *arg, uint64_t off, uint64_t len, struct sutra_detail *pb)
{
	struct ours_touch *t = arg;
	if (off > t->len || len > t->len - off) {
		pb->offset = off;
		snprintf(pb->what, sizeof pb->what, "read past the end of the section");
		return SUTRA_ECORRUPT;
	}
	if (!len)
		return 0;
	for (uint64_t c = off / CHUNK; c <= (off + len - 1) / CHUNK; c++) {
		uint64_t bit = 1ull << (c % 64);
		if (__atomic_load_n(&t->checked[c / 64], __ATOMIC_ACQUIRE) & bit)
			continue;
		uint64_t n = t->len - c * CHUNK < CHUNK ? t->len - c * CHUNK : CHUNK;
		if (util_crc32c(0, (const unsigned char *)t->o.sec + c * CHUNK, (size_t)n) != t->crcs[c]) {
			pb->offset = c * CHUNK;
			snprintf(pb->what, sizeof pb->what, "chunk checksum mismatch");
			return SUTRA_ECORRUPT;
		}
		__atomic_fetch_or(&t->checked[c / 64], bit, __ATOMIC_RELEASE);
	}
	return 0;
}

static void *touch_build(const struct dataset *ds, struct figures *f)
{
	if (!built_ours) {
		snprintf(f->note, sizeof f->note, "not run (needs ours)");
		return NULL;
	}
	struct ours_touch *t = xmalloc(sizeof *t);
	struct sutra_detail pb;
	t->len = built_ours->v.len;
	if (posix_memalign(&t->o.sec, 64, (size_t)t->len))
		die("out of memory");
	memcpy(t->o.sec, built_ours->sec, (size_t)t->len);
	uint64_t nchunks = (t->len + CHUNK - 1) / CHUNK;
	t->crcs = xmalloc(nchunks * sizeof *t->crcs);
	t->checked = calloc((nchunks + 63) / 64, sizeof *t->checked);
	for (uint64_t c = 0; c < nchunks; c++) {
		uint64_t n = t->len - c * CHUNK < CHUNK ? t->len - c * CHUNK : CHUNK;
		t->crcs[c] = util_crc32c(0, (const unsigned char *)t->o.sec + c * CHUNK, (size_t)n);
	}
	if (!t->checked || layout_hnsw_view_open(&t->o.v, t->o.sec, t->len, 0, ds->dim, chunk_touch, t, &pb))
		die("layout_hnsw_view_open with touch failed");
	snprintf(f->note, sizeof f->note,
		 "ours' section searched through a lazy-CRC touch callback (64 KiB chunks, as the segment view)");
	return t;
}

static void touch_destroy(void *st)
{
	struct ours_touch *t = st;
	free(t->o.sec);
	free(t->crcs);
	free(t->checked);
	free(t);
}

/* (b) hnswlib compiled here with -O3 -march=native. */
static void *anchor_build(const struct dataset *ds, struct figures *f)
{
#ifdef BENCH_HAVE_HNSWLIB
	double t0 = cpu_s();
	struct anchor *a = anchor_create(ds->dim, ds->n, M, EFC);
	if (!a)
		die("anchor_create failed");
	for (uint32_t i = 0; i < ds->n; i++)
		anchor_add(a, ds->base + (size_t)i * ds->dim, i);
	f->build_rate = ds->n / (cpu_s() - t0);
	snprintf(f->note, sizeof f->note, "hnswlib %s headers, InnerProductSpace, %s", "0.6.2", anchor_flags());
	return a;
#else
	(void)ds;
	snprintf(f->note, sizeof f->note, "not built (needs a C++ compiler and libhnswlib-dev)");
	return NULL;
#endif
}

static void anchor_search_all(void *st, const struct dataset *ds, uint32_t ef, uint32_t *found)
{
#ifdef BENCH_HAVE_HNSWLIB
	anchor_set_ef(st, ef > K ? ef : K);
	for (uint32_t q = 0; q < ds->nq; q++)
		anchor_search(st, ds->queries + (size_t)q * ds->dim, K, found + (size_t)q * K);
#else
	(void)st;
	(void)ds;
	(void)ef;
	(void)found;
#endif
}

static void anchor_free(void *st)
{
#ifdef BENCH_HAVE_HNSWLIB
	anchor_destroy(st);
#else
	(void)st;
#endif
}

static void write_file(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f))
		die("%s: %s", path, strerror(errno));
}

static const char *py_script;
static int py_reps;

/* (c) python3-hnswlib, in a child /usr/bin/python3 given the same vectors
 * and ground truth in files; batch queries (knn_query) on one thread, its
 * own best of the same number of passes, process CPU time. It does all
 * its work in "build". */
static void *python_build(const struct dataset *ds, struct figures *f)
{
	char dir[] = "/tmp/sutra-vbench-XXXXXX", base[64], qs[64], tr[64], cmd[1024], efl[128] = "";
	const char *script = py_script;
	if (!script) {
		snprintf(f->note, sizeof f->note, "not run (--no-python)");
		return NULL;
	}
	if (access(script, R_OK) || access("/usr/bin/python3", X_OK)) {
		snprintf(f->note, sizeof f->note, "not run (no %s)", script);
		return NULL;
	}
	if (!mkdtemp(dir))
		die("mkdtemp: %s", strerror(errno));
	snprintf(base, sizeof base, "%s/base", dir);
	snprintf(qs, sizeof qs, "%s/queries", dir);
	snprintf(tr, sizeof tr, "%s/truth", dir);
	write_file(base, ds->base, (size_t)ds->n * ds->dim * sizeof(float));
	write_file(qs, ds->queries, (size_t)ds->nq * ds->dim * sizeof(float));
	write_file(tr, ds->truth, (size_t)ds->nq * K * sizeof(uint32_t));
	for (size_t e = 0; e < NEF; e++)
		snprintf(efl + strlen(efl), sizeof efl - strlen(efl), "%s%u", e ? "," : "", efs[e]);
	snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' %u %s %s %s %d %d %d %s %d %d", script, ds->dim, base,
		 qs, tr, K, M, EFC, efl, SEED, py_reps);
	FILE *p = popen(cmd, "r");
	char line[256];
	size_t got = 0;
	while (p && fgets(line, sizeof line, p)) {
		double a, b, c;
		if (sscanf(line, "build %lf", &a) == 1 && a > 0)
			f->build_rate = ds->n / a;
		else if (sscanf(line, "ef %lf %lf %lf", &a, &b, &c) == 3) {
			for (size_t e = 0; e < NEF; e++)
				if (efs[e] == (uint32_t)a) {
					f->recall[e] = b;
					f->qps[e] = c;
					got++;
				}
		}
	}
	int st = p ? pclose(p) : -1;
	unlink(base);
	unlink(qs);
	unlink(tr);
	rmdir(dir);
	if (st != 0 || got != NEF) {
		snprintf(f->note, sizeof f->note, "failed (exit status %d, %zu of %zu ef lines)", st, got, NEF);
		return NULL;
	}
	f->ran = 1;
	snprintf(f->note, sizeof f->note, "python3-hnswlib, knn_query batches, num_threads=1");
	return NULL;
}

/* ---- Report -------------------------------------------------------------------- */

/* (e) The store: the same vectors learnt through a real sutra-coordinator
 * (batches of 500 over ipc://), indexed by its segment builder (flushes,
 * tiered merges, the idle merge into one segment), then searched through
 * libsutra-reader (sutra_snapshot_vector_search) from this process. Its
 * build rate is end to end: from the first learn until one segment holds
 * every vector (the graph the searches use). */
static char self_dir[PATH_MAX];

struct store {
	char dir[PATH_MAX];
	char url[PATH_MAX + 16];
	pid_t pid;
	sutra_reader *r;
	sutra_snapshot *s;
};

static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *store_build(const struct dataset *ds, struct figures *f)
{
	struct store *st = xmalloc(sizeof *st);
	char bin[PATH_MAX + 64], data[PATH_MAX + 16], url[PATH_MAX + 16], ev[PATH_MAX + 16];
	char dim[16], logp[PATH_MAX + 16];
	snprintf(st->dir, sizeof st->dir, "/tmp/sutra-bench-vector-XXXXXX");
	if (!mkdtemp(st->dir))
		die("mkdtemp: %s", strerror(errno));
	snprintf(bin, sizeof bin, "%s/../coordinator/sutra-coordinator", self_dir);
	snprintf(data, sizeof data, "%s/storage.dat", st->dir);
	snprintf(url, sizeof url, "ipc://%s/w.sock", st->dir);
	snprintf(st->url, sizeof st->url, "%s", url);
	snprintf(ev, sizeof ev, "ipc://%s/e.sock", st->dir);
	snprintf(logp, sizeof logp, "%s/coord.log", st->dir);
	snprintf(dim, sizeof dim, "%u", ds->dim);
	const char *argv[] = { bin, "--data", data, "--listen", url, "--events", ev,
			       "--vector-dimension", dim, "--log-level", "warning", NULL };
	int lf = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	st->pid = spawn(argv, NULL, 0, lf, lf);
	close(lf);
	sutra_client *c = NULL;
	for (double until = wall_s() + 15; sutra_client_connect(url, NULL, &c) != 0 ||
					    sutra_client_ping(c, NULL) != 0;) {
		sutra_client_close(c);
		c = NULL;
		if (wall_s() > until)
			die("the coordinator did not answer (log: %s)", logp);
		usleep(20000);
	}
	double t0 = wall_s();
	sutra_batch *b = sutra_batch_create();
	uint64_t epoch = 0;
	for (uint32_t i = 0; i < ds->n; i++) {
		uint8_t id[16] = { 0 };
		memcpy(id, &i, 4);
		id[15] = 0x7E;
		struct sutra_concept_in in = { .id = id, .content = "v", .content_len = 1,
					       .embedding = ds->base + (size_t)i * ds->dim,
					       .vector_dim = ds->dim, .strength = 1, .confidence = 1 };
		if (sutra_batch_learn_concept(b, &in))
			die("sutra_batch_learn_concept failed");
		if (sutra_batch_count(b) == 500 || i + 1 == ds->n) {
			int rc = sutra_client_commit(c, b, &epoch);
			if (rc)
				die("commit: %s", sutra_strerror(rc));
			sutra_batch_clear(b);
		}
	}
	double ingest = wall_s() - t0;
	sutra_batch_destroy(b);
	sutra_client_close(c);
	if (sutra_reader_open(data, &st->r))
		die("sutra_reader_open failed");
	struct sutra_reader_stats rs = { 0 };
	for (;;) {
		/* One segment, and a tail of the coordinator's empty commits. */
		if (sutra_reader_wait_for_epoch(st->r, epoch, 60000) ||
		    sutra_snapshot_acquire(st->r, epoch, &st->s))
			die("no snapshot of epoch %llu", (unsigned long long)epoch);
		sutra_snapshot_stats(st->s, &rs);
		if (rs.segment_count == 1 && rs.tail_bytes < 1024)
			break;
		sutra_snapshot_release(st->s);
		if (wall_s() - t0 > 3600)
			die("the store did not settle into one segment within an hour");
		usleep(50000);
		sutra_reader_refresh(st->r, NULL);
	}
	double indexed = wall_s() - t0;
	f->build_rate = ds->n / indexed;
	/* Open cost of another reader of the same store (the median of 21). */
	double opens[21];
	for (int i = 0; i < 21; i++) {
		sutra_reader *r2;
		sutra_snapshot *s2;
		double t = wall_s();
		if (sutra_reader_open(data, &r2) || sutra_snapshot_acquire(r2, 0, &s2))
			die("reopen failed");
		opens[i] = wall_s() - t;
		sutra_snapshot_release(s2);
		sutra_reader_close(r2);
	}
	for (int i = 1; i < 21; i++)
		for (int j = i; j > 0 && opens[j] < opens[j - 1]; j--) {
			double x = opens[j];
			opens[j] = opens[j - 1];
			opens[j - 1] = x;
		}
	snprintf(f->note, sizeof f->note,
		 "sutra-coordinator + libsutra-reader: learnt in %.1f s (%.0f/s), one segment "
		 "after %.1f s; reader open + snapshot %.3f ms",
		 ingest, ds->n / ingest, indexed, opens[10] * 1e3);
	return st;
}

static void store_search(void *p, const struct dataset *ds, uint32_t ef, uint32_t *found)
{
	struct store *st = p;
	struct sutra_search_hit hits[K];
	for (uint32_t q = 0; q < ds->nq; q++) {
		size_t n;
		int rc = sutra_snapshot_vector_search(st->s, ds->queries + (size_t)q * ds->dim, ds->dim,
						      K, ef, NULL, hits, &n);
		if (rc)
			die("sutra_snapshot_vector_search: %s", sutra_strerror(rc));
		for (size_t i = 0; i < n; i++)
			memcpy(&found[(size_t)q * K + i], hits[i].id, 4);
	}
}

/* Searches while inserts go on: a thread learns new concepts (the base
 * vectors again, under new ids, in batches of 100) at a given rate (0: as
 * fast as it can) for as long as this thread searches, 10 s, at ef = 64 on
 * fresh snapshots; both rates are printed. (Recall is not: the new
 * concepts are copies of the old ones.) */
struct inserter {
	struct store *st;
	const struct dataset *ds;
	uint32_t first;  /* numbers of the new concepts start here */
	double rate;     /* learns/s, 0: unthrottled */
	int stop;        /* atomic */
	uint64_t done;
	int rc;
};

static void *insert_main(void *arg)
{
	struct inserter *in = arg;
	sutra_client *c;
	if ((in->rc = sutra_client_connect(in->st->url, NULL, &c)))
		return NULL;
	sutra_batch *b = sutra_batch_create();
	double t0 = wall_s();
	for (uint32_t i = 0; !__atomic_load_n(&in->stop, __ATOMIC_RELAXED); i++) {
		uint32_t n = in->first + i, src = i % in->ds->n;
		uint8_t id[16] = { 0 };
		memcpy(id, &n, 4);
		id[15] = 0x7E;
		struct sutra_concept_in ci = { .id = id, .content = "w", .content_len = 1,
					       .embedding = in->ds->base + (size_t)src * in->ds->dim,
					       .vector_dim = in->ds->dim, .strength = 1,
					       .confidence = 1 };
		if ((in->rc = sutra_batch_learn_concept(b, &ci)))
			break;
		if (sutra_batch_count(b) == 100) {
			if ((in->rc = sutra_client_commit(c, b, NULL)))
				break;
			sutra_batch_clear(b);
			in->done += 100;
			double ahead = in->rate > 0 ? (double)in->done / in->rate - (wall_s() - t0) : 0;
			if (ahead > 0)
				usleep((useconds_t)(ahead * 1e6));
		}
	}
	sutra_batch_destroy(b);
	sutra_client_close(c);
	return NULL;
}

static void store_under_writes(struct store *st, const struct dataset *ds, uint32_t first,
			       double rate)
{
	struct inserter in = { .st = st, .ds = ds, .first = first, .rate = rate };
	pthread_t t;
	if (pthread_create(&t, NULL, insert_main, &in))
		die("pthread_create failed");
	struct sutra_search_hit hits[K];
	double t0 = wall_s(), cpu0 = cpu_s();
	uint64_t searches = 0;
	while (wall_s() - t0 < 10.0) {
		sutra_snapshot *s;
		sutra_reader_refresh(st->r, NULL);
		if (sutra_snapshot_acquire(st->r, 0, &s))
			die("snapshot failed");
		for (uint32_t q = 0; q < 20; q++, searches++) {
			size_t n;
			const float *v = ds->queries + (size_t)(searches % ds->nq) * ds->dim;
			int rc = sutra_snapshot_vector_search(s, v, ds->dim, K, 64, NULL, hits, &n);
			if (rc)
				die("search under writes: %s", sutra_strerror(rc));
		}
		sutra_snapshot_release(s);
	}
	double wall = wall_s() - t0, cpu = cpu_s() - cpu0;
	__atomic_store_n(&in.stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	if (in.rc)
		die("inserts under search: %s", sutra_strerror(in.rc));
	struct sutra_reader_stats rs;
	sutra_snapshot *s;
	sutra_snapshot_acquire(st->r, 0, &s);
	sutra_snapshot_stats(s, &rs);
	sutra_snapshot_release(s);
	printf("store under writes (10 s, learns %s): %.0f searches/s at ef=64 (%.0f per CPU "
	       "second of the searching thread) while another thread learnt %.0f concepts/s in "
	       "batches of 100; at the end %u segments and %.1f MiB of tail\n",
	       rate > 0 ? "paced" : "unpaced", (double)searches / wall, (double)searches / cpu,
	       (double)in.done / wall, rs.segment_count, (double)rs.tail_bytes / 1048576.0);
	fflush(stdout);
}

static void store_destroy(void *p)
{
	struct store *st = p;
	sutra_snapshot_release(st->s);
	sutra_reader_close(st->r);
	kill(st->pid, SIGTERM);
	reap(st->pid, 60);
	nftw(st->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(st);
}

static void report(const struct dataset *ds, struct figures *f, size_t nf)
{
	printf("\n%s; M=%d, ef_construction=%d, k=%d, one thread\n\n", ds->name, M, EFC, K);
	for (size_t i = 0; i < nf; i++)
		printf("  %-16s %s\n", f[i].name, f[i].note);
	printf("\n| engine | build (inserts/s) |");
	for (size_t e = 0; e < NEF; e++)
		printf(" ef=%u recall | ef=%u q/s |", efs[e], efs[e]);
	printf("\n|---|---:|");
	for (size_t e = 0; e < NEF; e++)
		printf("---:|---:|");
	printf("\n");
	for (size_t i = 0; i < nf; i++) {
		if (!f[i].ran)
			continue;
		printf("| %s | ", f[i].name);
		if (f[i].build_rate > 0)
			printf("%.0f |", f[i].build_rate);
		else
			printf("- |");
		for (size_t e = 0; e < NEF; e++)
			printf(" %.4f | %.0f |", f[i].recall[e], f[i].qps[e]);
		printf("\n");
	}
	/* Ratios of ours (f[0]) to the native hnswlib anchor (f[1]). */
	if (f[0].ran && f[1].ran) {
		printf("\nours / hnswlib-native: build %.2f", f[0].build_rate / f[1].build_rate);
		for (size_t e = 0; e < NEF; e++)
			printf(", ef=%u q/s %.2f (recall %+.4f)", efs[e], f[0].qps[e] / f[1].qps[e],
			       f[0].recall[e] - f[1].recall[e]);
		printf("\n");
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: sutra-bench-vector [--quick] [--fiori DIR] [--reps N] [--no-python] [--python SCRIPT]\n");
	exit(2);
}

const char *bench_name = "sutra-bench-vector";

int main(int argc, char **argv)
{
	const char *fiori = NULL;
	int quick = 0, reps = 3;
	py_script = BENCH_VECTOR_PY;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else if (!strcmp(argv[i], "--fiori") && i + 1 < argc)
			fiori = argv[++i];
		else if (!strcmp(argv[i], "--python") && i + 1 < argc)
			py_script = argv[++i];
		else if (!strcmp(argv[i], "--no-python"))
			py_script = NULL;
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc && atoi(argv[i + 1]) > 0)
			reps = atoi(argv[++i]);
		else
			usage();
	}
	py_reps = reps;
	char exe[PATH_MAX];
	ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (el <= 0)
		die("readlink /proc/self/exe: %s", strerror(errno));
	exe[el] = 0;
	snprintf(self_dir, sizeof self_dir, "%s", exe);
	*strrchr(self_dir, '/') = 0;

	struct dataset ds = { 0 };
	char load[128];
	if (fiori)
		load_fiori(&ds, fiori);
	else
		load_fashion(&ds, quick ? 10000 : 60000, quick ? 1000 : 10000);
	loadavg(load, sizeof load);
	printf("sutra-bench-vector: build type %s, kernel %s, best of %d passes, load average %s\n",
	       BENCH_BUILDTYPE, util_vec_kernel(), reps, load);
	fflush(stdout);

	/* f[0] is ours and f[1] the native anchor (report() divides them). */
	static const struct engine engines[] = {
		{ "ours", ours_build, ours_search, ours_destroy },
		{ "hnswlib-native", anchor_build, anchor_search_all, anchor_free },
		{ "python3-hnswlib", python_build, NULL, NULL },
		{ "ours+touch", touch_build, ours_search, touch_destroy },
		{ "store", store_build, store_search, store_destroy },
	};
	enum { NENG = sizeof engines / sizeof engines[0] };
	struct figures f[NENG + 1] = { { 0 } };
	void *st[NENG] = { 0 };
	f[NENG].name = "exact";
	exact_truth(&ds, &f[NENG]); /* first: it makes the ground truth */
	for (size_t i = 0; i < NENG; i++) {
		f[i].name = engines[i].name;
		st[i] = engines[i].build(&ds, &f[i]);
	}
	uint32_t *found = xmalloc((size_t)ds.nq * K * sizeof *found);
	for (int r = 0; r < reps; r++)
		for (size_t e = 0; e < NEF; e++)
			for (size_t i = 0; i < NENG; i++) {
				if (!st[i])
					continue;
				memset(found, 0xff, (size_t)ds.nq * K * sizeof *found);
				double t = cpu_s();
				engines[i].search(st[i], &ds, efs[e], found);
				double qps = ds.nq / (cpu_s() - t);
				if (qps > f[i].qps[e])
					f[i].qps[e] = qps;
				f[i].recall[e] = recall_of(&ds, found);
				f[i].ran = 1;
			}
	report(&ds, f, NENG + 1);
	for (size_t i = 0; i < NENG; i++)
		if (st[i] && engines[i].build == store_build) {
			printf("\n");
			store_under_writes(st[i], &ds, ds.n, 500);
			store_under_writes(st[i], &ds, 2 * ds.n + 1000000, 0);
		}
	for (size_t i = 0; i < NENG; i++)
		if (st[i])
			engines[i].destroy(st[i]);
	free(found);
	free(ds.base);
	free(ds.queries);
	free(ds.truth);
	return 0;
}
