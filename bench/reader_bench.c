/* SPDX-License-Identifier: MIT */
/* sutra-bench-reader: read-path latency, open time and per-reader memory of libsutra-reader, side by side with LMDB. */

/*
 * One run builds its stores through the real sutra-coordinator (relaxed
 * durability, batched learns through libsutra-client), from seeded data
 * that every run regenerates identically, and measures:
 *
 *   gets        sutra_snapshot_get through one held snapshot on a store of
 *               N concepts with 100-byte contents, against mdb_get through
 *               one held read transaction on an LMDB environment holding
 *               the same N keys and values, with the same random key order,
 *               in interleaved slices; both sum the content bytes;
 *   graph       neighbours (both directions, any type, limit 32) of random
 *               concepts, and shortest paths (max depth 3) between pairs
 *               that this program's own BFS found to be exactly 3 hops
 *               apart, on a seeded random graph of N concepts and 5N
 *               associations (two types);
 *   open        sutra_reader_open + first snapshot acquire + release +
 *               close on a store of about 100 MiB and one of about 2 GiB
 *               (the graph store grown with 4 KiB concepts);
 *   memory      8 reader processes on the same store, all alive when each
 *               reads its /proc/self/smaps_rollup and smaps;
 *
 * and prints the goals of the read path, each marked PASS or MISS.
 *
 * nng is not fork-safe, so this process never starts it: the store
 * builders (libsutra-client) and the reader processes of the memory test
 * are this same binary exec'd with a hidden mode argument. This process
 * only uses libsutra-reader without subscribing (which starts no nng) and
 * LMDB.
 *
 * Identifiers and contents are functions of (seed, index), so that the
 * builder, this process and the reader children agree on them without
 * passing them around.
 */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef BENCH_HAVE_LMDB
#include <lmdb.h>
#endif

#include "bench/benchutil.h"
#include "sutra/client.h"
#include "sutra/errors.h"
#include "sutra/reader.h"
#include "util/hash.h"

const char *bench_name = "sutra-bench-reader";

#ifndef BENCH_BUILDTYPE
#define BENCH_BUILDTYPE "unknown"
#endif

#define CONTENT_LEN 100u      /* bytes of content of an ordinary concept */
#define FILLER_LEN 4096u      /* bytes of content of a filler concept */
#define VECTOR_DIM "8"        /* the stores' dimension; no concept has an embedding */
#define CONCEPT_BATCH 10000u  /* 100-byte concepts per request */
#define FILLER_BATCH 1000u    /* 4 KiB concepts per request */
#define ASSOC_BATCH 50000u    /* associations per request */
#define EDGES_PER_NODE 5u
#define NEIGHBOR_LIMIT 32u
#define PATH_HOPS 3u
#define NREADERS 8
#define SLICES 4              /* interleaved slices of each get line */
#define RESULT_MAGIC 0x5355545241524244ull
#define MIB (1024.0 * 1024.0)

/* Seeds of the stores' data and of the query sequences. */
#define SEED_GET 0x67657473746f7265ull
#define SEED_GRAPH 0x6772617068737472ull
#define SEED_SMALL 0x736d616c6c737472ull
#define SEED_QUERY 0x7175657279736571ull
#define EDGE_SALT 0x65646765735f5f5full

/* ---- Small helpers ------------------------------------------------------ */

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "sutra-bench-reader: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		die("out of memory");
	return p;
}

static int write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	int rc = write_all(fd, buf, len);
	return close(fd) || rc ? -1 : 0;
}

static int read_file(const char *path, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = read_all(fd, buf, len);
	close(fd);
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array of nanoseconds, in microseconds. */
static uint32_t clamp_ns(uint64_t ns)
{
	return ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

/* A sum of the bytes, so that a lookup cannot skip reading its value. */
static uint64_t touch(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += b[i];
	return s;
}

static volatile uint64_t sink;

/* ---- Deterministic data ------------------------------------------------- */

static uint64_t hash2(uint64_t seed, uint64_t k)
{
	return util_mix64(seed ^ util_mix64(k + 0x9e3779b97f4a7c15ull));
}

/* A sequence of pseudo-random numbers (splitmix64). */
struct rng {
	uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
	return util_mix64(r->s += 0x9e3779b97f4a7c15ull);
}

static uint64_t rng_below(struct rng *r, uint64_t n)
{
	return rng_next(r) % n; /* the bias is below 2^-32 for n < 2^32 */
}

/* The id of concept k of a store. The first 8 bytes are a bijection of k
 * for a given seed, so the ids of one store are distinct. */
static void make_id(uint8_t id[16], uint64_t seed, uint64_t k)
{
	uint64_t a = hash2(seed, k), b = util_mix64(a ^ seed ^ 0x5a5a5a5a5a5a5a5aull);
	for (int i = 0; i < 8; i++) {
		id[i] = (uint8_t)(a >> (8 * i));
		id[8 + i] = (uint8_t)(b >> (8 * i));
	}
}

/* The content of concept k: "concept K: " and then lowercase words, ASCII. */
static void make_content(char *buf, size_t len, uint64_t seed, uint64_t k)
{
	static const char alpha[33] = "abcdefghijklmnopqrstuvwxyz eaiot";
	char head[32];
	int n = snprintf(head, sizeof head, "concept %llu: ", (unsigned long long)k);
	size_t i = (size_t)n < len ? (size_t)n : len;
	memcpy(buf, head, i);
	struct rng r = { hash2(seed ^ 0xc0ffee, k) };
	while (i < len) {
		uint64_t x = rng_next(&r);
		for (int j = 0; j < 12 && i < len; j++, x >>= 5)
			buf[i++] = alpha[x & 31];
	}
}

/* Association e of a store: endpoints among its first nodes concepts, one
 * of two types, a confidence in [0.5, 1). */
struct edge {
	uint32_t src, dst;
	uint8_t type;
	float confidence;
};

static void make_edge(struct edge *e, uint64_t seed, uint64_t k, uint64_t nodes)
{
	uint64_t s = seed ^ EDGE_SALT;
	uint64_t attr = hash2(s, 3 * k + 2);
	e->src = (uint32_t)(hash2(s, 3 * k) % nodes);
	e->dst = (uint32_t)(hash2(s, 3 * k + 1) % nodes);
	e->type = attr & 1 ? SUTRA_ASSOC_CAUSAL : SUTRA_ASSOC_SEMANTIC;
	e->confidence = 0.5f + (float)((attr >> 8) & 0xffff) / 131072.0f;
}

/* ---- Child: store builder (the only nng user) --------------------------- */

/* What a builder writes to its result file. */
struct build_result {
	uint64_t magic;
	struct sutra_coord_stats st;
	double secs;
};

static int commit_batch(sutra_client *c, sutra_batch *b)
{
	int rc = sutra_client_commit(c, b, NULL);
	if (rc)
		die("builder: commit: %s (%s)", sutra_strerror(rc), sutra_client_last_error(c));
	sutra_batch_clear(b);
	return 0;
}

/* --build URL SEED FIRST COUNT LEN NODES EDGES RESULT: learns concepts
 * FIRST..FIRST+COUNT-1 with LEN bytes of content, then EDGES associations
 * among concepts 0..NODES-1, in batches. */
static int build_main(char **argv)
{
	const char *url = argv[0];
	uint64_t seed = strtoull(argv[1], NULL, 16);
	uint64_t first = strtoull(argv[2], NULL, 10), count = strtoull(argv[3], NULL, 10);
	size_t len = (size_t)strtoull(argv[4], NULL, 10);
	uint64_t nodes = strtoull(argv[5], NULL, 10), edges = strtoull(argv[6], NULL, 10);
	struct sutra_client_options o;
	sutra_client *c;
	sutra_batch *b;
	int rc;

	sutra_client_options_init(&o);
	o.timeout_ms = 300000; /* a batch of 50,000 associations on a busy machine */
	if ((rc = sutra_client_connect(url, &o, &c)))
		die("builder: connect %s: %s", url, sutra_strerror(rc));
	if (!(b = sutra_batch_create()))
		die("builder: out of memory");
	double t0 = now_s();

	uint8_t id[16], src[16], dst[16];
	char *content = xmalloc(len);
	struct sutra_concept_in in = { .id = id, .content = content, .content_len = len,
				       .strength = 1.0f, .confidence = 1.0f };
	unsigned per = len > 1024 ? FILLER_BATCH : CONCEPT_BATCH;
	for (uint64_t k = first; k < first + count; k++) {
		make_id(id, seed, k);
		make_content(content, len, seed, k);
		if ((rc = sutra_batch_learn_concept(b, &in)))
			die("builder: batch: %s", sutra_strerror(rc));
		if (sutra_batch_count(b) == per)
			commit_batch(c, b);
	}
	if (sutra_batch_count(b))
		commit_batch(c, b);
	for (uint64_t k = 0; k < edges; k++) {
		struct edge e;
		make_edge(&e, seed, k, nodes);
		make_id(src, seed, e.src);
		make_id(dst, seed, e.dst);
		if ((rc = sutra_batch_learn_association(b, src, dst, e.type, e.confidence, 1.0f)))
			die("builder: batch: %s", sutra_strerror(rc));
		if (sutra_batch_count(b) == ASSOC_BATCH)
			commit_batch(c, b);
	}
	if (sutra_batch_count(b))
		commit_batch(c, b);

	struct build_result res = { .magic = RESULT_MAGIC };
	if ((rc = sutra_client_sync(c, NULL)) || (rc = sutra_client_stats(c, &res.st)))
		die("builder: %s", sutra_strerror(rc));
	res.secs = now_s() - t0;
	if (write_file(argv[7], &res, sizeof res))
		die("builder: cannot write %s: %s", argv[7], strerror(errno));
	free(content);
	sutra_batch_destroy(b);
	sutra_client_close(c);
	return 0;
}

/* ---- Child: one reader of the memory test ------------------------------- */

/* Memory of this process in kB, from /proc/self/smaps: the totals, and
 * the mapping of the store apart from everything else. */
struct mem {
	uint64_t rss, pss, priv_clean, priv_dirty;  /* all mappings */
	uint64_t map_rss, map_pss, map_priv;         /* the store's mapping */
	uint64_t own_priv;                           /* private, outside the store's mapping */
};

static void read_smaps(const char *store, struct mem *m)
{
	char line[4096];
	int in_store = 0;
	FILE *f = fopen("/proc/self/smaps", "re");

	memset(m, 0, sizeof *m);
	if (!f)
		die("cannot open /proc/self/smaps: %s", strerror(errno));
	while (fgets(line, sizeof line, f)) {
		char key[64];
		unsigned long long v;
		size_t tok = strcspn(line, " \t\n");
		if (tok == 0 || line[tok - 1] != ':') {
			/* a mapping's header: address range, perms, offset, dev, inode, path */
			char *nl = strchr(line, '\n');
			if (nl)
				*nl = 0;
			size_t ll = strlen(line), sl = strlen(store);
			in_store = ll >= sl && strcmp(line + ll - sl, store) == 0;
			continue;
		}
		if (sscanf(line, "%63s %llu kB", key, &v) != 2)
			continue;
		if (strcmp(key, "Rss:") == 0) {
			m->rss += v;
			if (in_store)
				m->map_rss += v;
		} else if (strcmp(key, "Pss:") == 0) {
			m->pss += v;
			if (in_store)
				m->map_pss += v;
		} else if (strcmp(key, "Private_Clean:") == 0 ||
			   strcmp(key, "Private_Dirty:") == 0) {
			if (key[8] == 'C')
				m->priv_clean += v;
			else
				m->priv_dirty += v;
			if (in_store)
				m->map_priv += v;
			else
				m->own_priv += v;
		}
	}
	fclose(f);
}

/* The rollup the kernel sums itself (Pss, Private_Clean, Private_Dirty). */
static void read_rollup(uint64_t *pss, uint64_t *clean, uint64_t *dirty)
{
	char line[256];
	FILE *f = fopen("/proc/self/smaps_rollup", "re");

	*pss = *clean = *dirty = 0;
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		unsigned long long v;
		if (sscanf(line, "Pss: %llu kB", &v) == 1)
			*pss = v;
		else if (sscanf(line, "Private_Clean: %llu kB", &v) == 1)
			*clean = v;
		else if (sscanf(line, "Private_Dirty: %llu kB", &v) == 1)
			*dirty = v;
	}
	fclose(f);
}

struct reader_result {
	uint64_t magic;
	double open_s;
	uint64_t gets, misses;
	struct mem before, after;
	uint64_t rollup_pss, rollup_clean, rollup_dirty;
};

/* --pss-child PATH SEED TOTAL NGETS INDEX READYFD GOFD RESULT: opens the
 * store, takes a snapshot, gets NGETS random concepts of 0..TOTAL-1, says
 * ready, waits until every reader is ready (so that shared pages are
 * shared while it measures), then reads its memory. */
static int reader_child_main(char **argv)
{
	const char *path = argv[0];
	uint64_t seed = strtoull(argv[1], NULL, 16);
	uint64_t total = strtoull(argv[2], NULL, 10), ngets = strtoull(argv[3], NULL, 10);
	unsigned index = (unsigned)atoi(argv[4]);
	int ready_fd = atoi(argv[5]), go_fd = atoi(argv[6]);
	struct reader_result res = { .magic = RESULT_MAGIC };
	sutra_reader *r;
	sutra_snapshot *s;
	int rc;

	read_smaps(path, &res.before);
	double t0 = now_s();
	if ((rc = sutra_reader_open(path, &r)) || (rc = sutra_snapshot_acquire(r, 0, &s)))
		die("reader %u: %s: %s", index, path, sutra_strerror(rc));
	res.open_s = now_s() - t0;

	struct rng g = { SEED_QUERY ^ util_mix64(index + 1) };
	uint8_t id[16];
	uint64_t sum = 0;
	for (uint64_t i = 0; i < ngets; i++) {
		struct sutra_concept_view v;
		make_id(id, seed, rng_below(&g, total));
		if (sutra_snapshot_get(s, id, &v)) {
			res.misses++;
			continue;
		}
		sum += touch(v.content, v.content_len);
		res.gets++;
	}
	sink = sum;

	if (write_all(ready_fd, "r", 1))
		die("reader %u: ready pipe: %s", index, strerror(errno));
	close(ready_fd);
	char b;
	while (read(go_fd, &b, 1) < 0 && errno == EINTR)
		;
	close(go_fd);
	read_smaps(path, &res.after);
	read_rollup(&res.rollup_pss, &res.rollup_clean, &res.rollup_dirty);
	if (write_file(argv[7], &res, sizeof res))
		die("reader %u: cannot write %s: %s", index, argv[7], strerror(errno));
	sutra_snapshot_release(s);
	sutra_reader_close(r);
	return 0;
}

/* ---- Parent: processes -------------------------------------------------- */

static char self_path[PATH_MAX];
static char tmp_dir[256]; /* short: the coordinators' sockets live under it */
static const char *coord_bin;

/* fork + exec argv. keep[] are descriptors the child keeps across exec
 * (everything here is opened O_CLOEXEC); out/err redirect stdout/stderr
 * when >= 0. The child dies with the parent. */
/* Waits for pid up to timeout_s; then SIGKILL. Returns the wait status. */
static int exited_ok(int status)
{
	return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- Parent: stores ----------------------------------------------------- */

/* A store and the seeded data in it: concepts 0..nodes-1 have 100-byte
 * contents and edges associations among them; concepts nodes.. are
 * fillers with 4 KiB contents (enough to reach grow_to bytes). */
struct store {
	const char *name;
	const char *what;
	char dir[PATH_MAX];
	char path[PATH_MAX + 16];
	uint64_t seed;
	uint64_t nodes, edges, fillers;
	uint64_t grow_to; /* 0, or the size the fillers bring it to */
	struct sutra_coord_stats st;
	double build_s;
	int reused;
};

static void store_init(struct store *s, const char *base, const char *name, const char *what,
		       uint64_t seed, uint64_t nodes, uint64_t edges)
{
	memset(s, 0, sizeof *s);
	s->name = name;
	s->what = what;
	s->seed = seed;
	s->nodes = nodes;
	s->edges = edges;
	snprintf(s->dir, sizeof s->dir, "%s/%s", base, name);
	snprintf(s->path, sizeof s->path, "%s/storage.dat", s->dir);
}

/* The line that says what a store was built from; a reused store must
 * have been built from the same. */
static void store_params(const struct store *s, char *buf, size_t len)
{
	snprintf(buf, len, "sutra-bench-reader store v1 seed=%016llx nodes=%llu edges=%llu "
			   "grow_to=%llu dim=%s content=%u filler=%u\n",
		 (unsigned long long)s->seed, (unsigned long long)s->nodes,
		 (unsigned long long)s->edges, (unsigned long long)s->grow_to, VECTOR_DIM,
		 CONTENT_LEN, FILLER_LEN);
}

/* Reads DIR/bench.params back: 1 if the store there was built from the
 * same parameters (and fills in what the build reported), else 0. */
static int store_load(struct store *s)
{
	char want[512], got[512], stats[512], file[PATH_MAX + 32];
	unsigned long long c, a, pe, fs, ep, fl;
	double bs;
	struct stat sb;

	snprintf(file, sizeof file, "%s/bench.params", s->dir);
	store_params(s, want, sizeof want);
	FILE *f = fopen(file, "re");
	if (!f)
		return 0;
	int ok = fgets(got, sizeof got, f) && strcmp(got, want) == 0 &&
		 fgets(stats, sizeof stats, f) &&
		 sscanf(stats, "concepts=%llu associations=%llu published_end=%llu file_size=%llu "
			       "epoch=%llu fillers=%llu build_s=%lf",
			&c, &a, &pe, &fs, &ep, &fl, &bs) == 7 &&
		 stat(s->path, &sb) == 0 && (unsigned long long)sb.st_size == fs;
	fclose(f);
	if (!ok)
		return 0;
	s->st.concept_count = c;
	s->st.association_count = a;
	s->st.published_end = pe;
	s->st.file_size = fs;
	s->st.epoch = ep;
	s->fillers = fl;
	s->build_s = bs;
	s->reused = 1;
	return 1;
}

static void store_save(const struct store *s)
{
	char buf[1024], file[PATH_MAX + 32];
	struct stat sb;
	size_t n;

	if (stat(s->path, &sb))
		die("stat %s: %s", s->path, strerror(errno));
	store_params(s, buf, sizeof buf);
	n = strlen(buf);
	snprintf(buf + n, sizeof buf - n,
		 "concepts=%llu associations=%llu published_end=%llu file_size=%llu epoch=%llu "
		 "fillers=%llu build_s=%.3f\n",
		 (unsigned long long)s->st.concept_count,
		 (unsigned long long)s->st.association_count,
		 (unsigned long long)s->st.published_end, (unsigned long long)sb.st_size,
		 (unsigned long long)s->st.epoch, (unsigned long long)s->fillers, s->build_s);
	snprintf(file, sizeof file, "%s/bench.params", s->dir);
	if (write_file(file, buf, strlen(buf)))
		die("cannot write %s: %s", file, strerror(errno));
}

/* Forgets whatever a store directory held and makes it anew. */
static void store_reset(const struct store *s)
{
	nftw(s->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	if (mkdir(s->dir, 0755))
		die("mkdir %s: %s", s->dir, strerror(errno));
}

struct coord {
	pid_t pid;
	char url[320];
	char sock[300]; /* under tmp_dir, which is short */
	char log[PATH_MAX + 32];
};

/* Starts sutra-coordinator on the store, relaxed, and waits until it listens. */
static void coord_start(const struct store *s, struct coord *c)
{
	char events[320];

	snprintf(c->sock, sizeof c->sock, "%s/w-%s", tmp_dir, s->name);
	snprintf(c->url, sizeof c->url, "ipc://%s", c->sock);
	snprintf(events, sizeof events, "ipc://%s/e-%s", tmp_dir, s->name);
	snprintf(c->log, sizeof c->log, "%s/coordinator.log", s->dir);
	if (strlen(c->sock) >= 100)
		die("%s is too long for a Unix socket path: use a shorter --dir", c->sock);
	unlink(c->sock);
	const char *argv[] = { coord_bin, "--data", s->path, "--listen", c->url, "--events",
			       events, "--durability", "relaxed", "--vector-dimension",
			       VECTOR_DIM, "--log-level", "warning", NULL };
	int lf = open(c->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (lf < 0)
		die("open %s: %s", c->log, strerror(errno));
	c->pid = spawn(argv, NULL, 0, lf, lf);
	close(lf);

	double until = now_s() + 120; /* a restart replays the whole log */
	struct stat st;
	while (stat(c->sock, &st) != 0) {
		int status;
		if (waitpid(c->pid, &status, WNOHANG) == c->pid)
			die("%s exited at start (log: %s)", coord_bin, c->log);
		if (now_s() > until)
			die("%s did not start listening within 120 s (log: %s)", coord_bin, c->log);
		struct timespec ts = { 0, 5000000 };
		nanosleep(&ts, NULL);
	}
}

static void coord_stop(struct coord *c)
{
	kill(c->pid, SIGTERM);
	int status = reap(c->pid, 120);
	if (!exited_ok(status))
		die("the coordinator did not stop cleanly (status 0x%x; log %s)", (unsigned)status,
		    c->log);
}

/* Lets the coordinator finish its background work on the store (segment
 * builds and merges, the idle flush of the tail and the merge of an idle
 * store into one segment) before it is stopped, so that the store is
 * measured at rest: waits until the tail is under 128 KiB in one segment
 * and no epoch has come for 3 s (at most 15 min). */
static void coord_settle(const struct store *s, const struct coord *c)
{
	sutra_reader *r;
	uint64_t last = 0;
	double since = now_s(), until = now_s() + 900;
	if (sutra_reader_open(s->path, &r))
		die("cannot open the %s store to wait for its segments", s->name);
	while (now_s() < until) {
		sutra_snapshot *sn;
		struct sutra_reader_stats st;
		int status;
		if (waitpid(c->pid, &status, WNOHANG) == c->pid)
			die("the coordinator of the %s store stopped (status 0x%x; log %s)", s->name,
			    (unsigned)status, c->log);
		if (sutra_snapshot_acquire(r, 0, &sn))
			die("refresh of the %s store failed", s->name);
		sutra_snapshot_stats(sn, &st);
		sutra_snapshot_release(sn);
		if (st.epoch != last) {
			last = st.epoch;
			since = now_s();
		} else if (now_s() - since >= 3 && st.segment_count <= 1 &&
			   st.tail_bytes < 128 * 1024) {
			break;
		}
		struct timespec ts = { 0, 100000000 };
		nanosleep(&ts, NULL);
	}
	sutra_reader_close(r);
}

/* Runs one builder child against the coordinator at url. */
static void run_builder(const struct coord *c, const struct store *s, uint64_t first,
			uint64_t count, unsigned len, uint64_t edges, struct build_result *res)
{
	char seed[32], sfirst[32], scount[32], slen[16], snodes[32], sedges[32], result[PATH_MAX];
	snprintf(seed, sizeof seed, "%llx", (unsigned long long)s->seed);
	snprintf(sfirst, sizeof sfirst, "%llu", (unsigned long long)first);
	snprintf(scount, sizeof scount, "%llu", (unsigned long long)count);
	snprintf(slen, sizeof slen, "%u", len);
	snprintf(snodes, sizeof snodes, "%llu", (unsigned long long)s->nodes);
	snprintf(sedges, sizeof sedges, "%llu", (unsigned long long)edges);
	snprintf(result, sizeof result, "%s/build-%s", tmp_dir, s->name);
	const char *argv[] = { self_path, "--build", c->url, seed, sfirst, scount, slen,
			       snodes, sedges, result, NULL };
	pid_t pid = spawn(argv, NULL, 0, -1, -1);
	int status = reap(pid, 3600);
	if (!exited_ok(status) || read_file(result, res, sizeof *res) ||
	    res->magic != RESULT_MAGIC)
		die("building the %s store failed (coordinator log: %s)", s->name, c->log);
	unlink(result);
}

/* Builds a store of nodes concepts and edges associations, unless an
 * identical one is there already. */
static void store_build(struct store *s)
{
	struct coord c;
	struct build_result res;

	if (store_load(s)) {
		note("reusing the %s store in %s", s->name, s->dir);
		return;
	}
	note("building the %s store: %llu concepts, %llu associations...", s->name,
	     (unsigned long long)s->nodes, (unsigned long long)s->edges);
	store_reset(s);
	coord_start(s, &c);
	run_builder(&c, s, 0, s->nodes, CONTENT_LEN, s->edges, &res);
	coord_settle(s, &c);
	coord_stop(&c);
	s->st = res.st;
	s->build_s = res.secs;
	store_save(s);
}

/* Copies a file (copy_file_range, so a filesystem may share the blocks). */
static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	struct stat st;

	if (in < 0 || out < 0 || fstat(in, &st))
		die("cannot copy %s to %s: %s", from, to, strerror(errno));
	off_t left = st.st_size;
	while (left > 0) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
		if (n <= 0)
			die("copy %s: %s", from, n < 0 ? strerror(errno) : "short copy");
		left -= n;
	}
	if (fsync(out) || close(out))
		die("copy %s: %s", to, strerror(errno));
	close(in);
}

/* Makes big: a copy of base grown with 4 KiB concepts to big->grow_to bytes
 * of published log. */
static void store_grow(struct store *big, const struct store *base)
{
	struct coord c;
	struct build_result res;

	if (store_load(big)) {
		note("reusing the %s store in %s", big->name, big->dir);
		return;
	}
	uint64_t rec = 72 + FILLER_LEN; /* a concept record without embedding, 8-aligned */
	uint64_t have = base->st.published_end;
	big->fillers = big->grow_to > have ? (big->grow_to - have + rec - 1) / rec : 0;
	note("building the %s store: the %s store and %llu concepts of %u bytes...", big->name,
	     base->name, (unsigned long long)big->fillers, FILLER_LEN);
	store_reset(big);
	double t0 = now_s();
	copy_file(base->path, big->path);
	coord_start(big, &c);
	run_builder(&c, big, base->nodes, big->fillers, FILLER_LEN, 0, &res);
	coord_settle(big, &c);
	coord_stop(&c);
	big->st = res.st;
	big->build_s = now_s() - t0;
	store_save(big);
}

static double file_mib(const struct store *s)
{
	struct stat st;
	return stat(s->path, &st) == 0 ? (double)st.st_size / MIB : 0;
}

/* What the file occupies on disk (freed segment space is a hole). */
static double disk_mib(const struct store *s)
{
	struct stat st;
	return stat(s->path, &st) == 0 ? (double)st.st_blocks * 512 / MIB : 0;
}

/* ---- Parent: LMDB ------------------------------------------------------- */

#ifdef BENCH_HAVE_LMDB
static void lmdb_check(int rc, const char *what)
{
	if (rc)
		die("lmdb: %s: %s", what, mdb_strerror(rc));
}

/* The same keys and values as the get store, put in the same order, 100,000
 * per write transaction; reused when DIR/bench.params says so. */
static void lmdb_build(const char *dir, const struct store *s, double *secs, int *reused)
{
	char file[PATH_MAX + 32], want[256], got[256];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;

	snprintf(file, sizeof file, "%s/bench.params", dir);
	snprintf(want, sizeof want, "sutra-bench-reader lmdb v1 seed=%016llx nodes=%llu content=%u\n",
		 (unsigned long long)s->seed, (unsigned long long)s->nodes, CONTENT_LEN);
	FILE *f = fopen(file, "re");
	if (f) {
		int same = fgets(got, sizeof got, f) && strcmp(got, want) == 0;
		fclose(f);
		if (same) {
			note("reusing the LMDB environment in %s", dir);
			*secs = 0;
			*reused = 1;
			return;
		}
	}
	note("building the LMDB environment: %llu keys...", (unsigned long long)s->nodes);
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	if (mkdir(dir, 0755))
		die("mkdir %s: %s", dir, strerror(errno));
	double t0 = now_s();
	lmdb_check(mdb_env_create(&env), "env_create");
	lmdb_check(mdb_env_set_mapsize(env, (size_t)8 << 30), "set_mapsize");
	lmdb_check(mdb_env_open(env, dir, MDB_NOSYNC | MDB_WRITEMAP, 0644), "env_open");
	lmdb_check(mdb_txn_begin(env, NULL, 0, &txn), "txn_begin");
	lmdb_check(mdb_dbi_open(txn, NULL, 0, &dbi), "dbi_open");
	uint8_t key[16];
	char val[CONTENT_LEN];
	for (uint64_t k = 0; k < s->nodes; k++) {
		make_id(key, s->seed, k);
		make_content(val, CONTENT_LEN, s->seed, k);
		MDB_val mk = { .mv_size = sizeof key, .mv_data = key };
		MDB_val mv = { .mv_size = CONTENT_LEN, .mv_data = val };
		lmdb_check(mdb_put(txn, dbi, &mk, &mv, 0), "put");
		if ((k + 1) % 100000 == 0) {
			lmdb_check(mdb_txn_commit(txn), "commit");
			lmdb_check(mdb_txn_begin(env, NULL, 0, &txn), "txn_begin");
		}
	}
	lmdb_check(mdb_txn_commit(txn), "commit");
	lmdb_check(mdb_env_sync(env, 1), "env_sync");
	mdb_env_close(env);
	*secs = now_s() - t0;
	*reused = 0;
	if (write_file(file, want, strlen(want)))
		die("cannot write %s: %s", file, strerror(errno));
}
#endif

/* ---- Parent: the random graph, in memory -------------------------------- */

/* The store's associations as an undirected adjacency (CSR). */
struct graph {
	uint32_t n;
	uint32_t *off; /* n + 1 */
	uint32_t *adj; /* 2 per association */
};

static void graph_build(struct graph *g, const struct store *s)
{
	uint32_t n = (uint32_t)s->nodes;
	uint64_t m = s->edges;
	struct edge e;

	if (2 * m > UINT32_MAX)
		die("too many associations for the in-memory graph");
	g->n = n;
	g->off = xcalloc((size_t)n + 1, sizeof *g->off);
	g->adj = xmalloc((size_t)(2 * m) * sizeof *g->adj);
	for (uint64_t k = 0; k < m; k++) {
		make_edge(&e, s->seed, k, n);
		g->off[e.src + 1]++;
		g->off[e.dst + 1]++;
	}
	for (uint32_t i = 0; i < n; i++)
		g->off[i + 1] += g->off[i];
	uint32_t *pos = xmalloc((size_t)n * sizeof *pos);
	memcpy(pos, g->off, (size_t)n * sizeof *pos);
	for (uint64_t k = 0; k < m; k++) {
		make_edge(&e, s->seed, k, n);
		g->adj[pos[e.src]++] = e.dst;
		g->adj[pos[e.dst]++] = e.src;
	}
	free(pos);
}

/* Breadth-first from src: a random concept exactly hops away (returned
 * in *dst), or -1 when there is none. stamp[] marks visits of this search
 * (gen); q has room for n entries. */
static int graph_pick(const struct graph *g, uint32_t src, unsigned hops, uint32_t *stamp,
		      uint32_t gen, uint32_t *q, struct rng *r, uint32_t *dst)
{
	size_t head = 0, tail = 0, level_end;

	stamp[src] = gen;
	q[tail++] = src;
	for (unsigned d = 0; d < hops; d++) {
		level_end = tail;
		if (head == level_end)
			return -1;
		for (; head < level_end; head++) {
			uint32_t u = q[head];
			for (uint32_t i = g->off[u]; i < g->off[u + 1]; i++) {
				uint32_t v = g->adj[i];
				if (stamp[v] != gen) {
					stamp[v] = gen;
					q[tail++] = v;
				}
			}
		}
	}
	if (head == tail)
		return -1;
	*dst = q[head + rng_below(r, tail - head)];
	return 0;
}

/* ---- Parent: results ---------------------------------------------------- */

struct lat {
	uint32_t *v;
	size_t n;
	double p50, p99;
};

static void lat_init(struct lat *l, size_t cap)
{
	l->v = xmalloc(cap * sizeof *l->v);
	l->n = 0;
}

static void lat_finish(struct lat *l)
{
	qsort(l->v, l->n, sizeof *l->v, cmp_u32);
	l->p50 = pct_us(l->v, l->n, 0.50);
	l->p99 = pct_us(l->v, l->n, 0.99);
}

static int goals, misses;

static void goal_line(const char *name, double v, const char *unit, int ok, int at_most,
		      double goal)
{
	goals++;
	if (!ok) {
		misses++;
		printf("  %-58s %10s      goal %s %-6g n/a\n", name, "n/a", at_most ? "<" : ">=",
		       goal);
		return;
	}
	int pass = at_most ? v < goal : v >= goal;
	if (!pass)
		misses++;
	printf("  %-58s %10.3f %-4s goal %s %-6g %s\n", name, v, unit, at_most ? "<" : ">=", goal,
	       pass ? "PASS" : "MISS");
}

/* ---- Parent: the measurements ------------------------------------------- */

static void check_rc(int rc, const char *what)
{
	if (rc)
		die("%s: %s", what, sutra_strerror(rc));
}

/* Timer overhead: back-to-back clock reads, nanoseconds at the median. */
static double timer_overhead_ns(void)
{
	enum { N = 200000 };
	static uint32_t v[N];
	for (int i = 0; i < N; i++) {
		uint64_t a = now_ns();
		v[i] = clamp_ns(now_ns() - a);
	}
	qsort(v, N, sizeof *v, cmp_u32);
	return (double)v[N / 2];
}

struct get_figures {
	struct lat sutra, lmdb;
	double sutra_mean_ns, lmdb_mean_ns; /* one untimed pass each */
	int lmdb_ran;
	uint64_t verified;
};

/* Gets through a held snapshot against mdb_get through a held read
 * transaction: same keys, same order, interleaved slices. */
static void bench_gets(const struct store *s, const char *lmdb_dir, uint64_t nq,
		       struct get_figures *gf)
{
	sutra_reader *r;
	sutra_snapshot *snap;
	uint32_t n = (uint32_t)s->nodes;
	uint8_t *ids = xmalloc((size_t)n * 16);
	uint32_t *seq = xmalloc((size_t)nq * sizeof *seq);
	char expect[CONTENT_LEN];
	struct rng g = { SEED_QUERY };
	uint64_t sum = 0;

	for (uint32_t k = 0; k < n; k++)
		make_id(ids + 16 * (size_t)k, s->seed, k);
	for (uint64_t i = 0; i < nq; i++)
		seq[i] = (uint32_t)rng_below(&g, n);
	lat_init(&gf->sutra, nq);
	lat_init(&gf->lmdb, nq);

	check_rc(sutra_reader_open(s->path, &r), s->path);
	check_rc(sutra_snapshot_acquire(r, 0, &snap), "snapshot");
#ifdef BENCH_HAVE_LMDB
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	lmdb_check(mdb_env_create(&env), "env_create");
	lmdb_check(mdb_env_set_mapsize(env, (size_t)8 << 30), "set_mapsize");
	lmdb_check(mdb_env_open(env, lmdb_dir, MDB_RDONLY, 0644), "env_open");
	lmdb_check(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), "txn_begin");
	lmdb_check(mdb_dbi_open(txn, NULL, 0, &dbi), "dbi_open");
	gf->lmdb_ran = 1;
#else
	(void)lmdb_dir;
#endif

	/* Warm-up over every key, checking every value: afterwards both have
	 * every page they need mapped in this process. */
	for (uint32_t k = 0; k < n; k++) {
		struct sutra_concept_view v;
		make_content(expect, CONTENT_LEN, s->seed, k);
		check_rc(sutra_snapshot_get(snap, ids + 16 * (size_t)k, &v), "get");
		if (v.content_len != CONTENT_LEN || memcmp(v.content, expect, CONTENT_LEN))
			die("concept %u: wrong content in the store", k);
#ifdef BENCH_HAVE_LMDB
		MDB_val mk = { .mv_size = 16, .mv_data = ids + 16 * (size_t)k }, mv;
		lmdb_check(mdb_get(txn, dbi, &mk, &mv), "get");
		if (mv.mv_size != CONTENT_LEN || memcmp(mv.mv_data, expect, CONTENT_LEN))
			die("key %u: wrong value in LMDB", k);
#endif
		gf->verified++;
	}

	for (int sl = 0; sl < SLICES; sl++) {
		uint64_t from = nq * (uint64_t)sl / SLICES, to = nq * (uint64_t)(sl + 1) / SLICES;
		for (int side = 0; side < 2; side++) {
			int lmdb_side = (side + sl) % 2; /* alternate which goes first */
			for (uint64_t i = from; i < to; i++) {
				uint8_t key[16];
				memcpy(key, ids + 16 * (size_t)seq[i], 16);
				if (!lmdb_side) {
					struct sutra_concept_view v;
					uint64_t t0 = now_ns();
					int rc = sutra_snapshot_get(snap, key, &v);
					if (rc == 0)
						sum += touch(v.content, v.content_len);
					uint64_t t1 = now_ns();
					check_rc(rc, "get");
					gf->sutra.v[gf->sutra.n++] = clamp_ns(t1 - t0);
				} else {
#ifdef BENCH_HAVE_LMDB
					MDB_val mk = { .mv_size = 16, .mv_data = key }, mv;
					uint64_t t0 = now_ns();
					int rc = mdb_get(txn, dbi, &mk, &mv);
					if (rc == 0)
						sum += touch(mv.mv_data, mv.mv_size);
					uint64_t t1 = now_ns();
					lmdb_check(rc, "get");
					gf->lmdb.v[gf->lmdb.n++] = clamp_ns(t1 - t0);
#endif
				}
			}
		}
	}

	/* One untimed pass each over the same sequence: the mean without the
	 * clock reads. */
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < nq; i++) {
		struct sutra_concept_view v;
		if (sutra_snapshot_get(snap, ids + 16 * (size_t)seq[i], &v) == 0)
			sum += touch(v.content, v.content_len);
	}
	gf->sutra_mean_ns = (double)(now_ns() - t0) / (double)nq;
#ifdef BENCH_HAVE_LMDB
	t0 = now_ns();
	for (uint64_t i = 0; i < nq; i++) {
		MDB_val mk = { .mv_size = 16, .mv_data = ids + 16 * (size_t)seq[i] }, mv;
		if (mdb_get(txn, dbi, &mk, &mv) == 0)
			sum += touch(mv.mv_data, mv.mv_size);
	}
	gf->lmdb_mean_ns = (double)(now_ns() - t0) / (double)nq;
	mdb_txn_abort(txn);
	mdb_env_close(env);
#endif
	sink = sum;
	sutra_snapshot_release(snap);
	sutra_reader_close(r);
	lat_finish(&gf->sutra);
	lat_finish(&gf->lmdb);
	free(ids);
	free(seq);
}

struct graph_figures {
	struct lat nb, path;
	double mean_degree;   /* neighbours in all (total), per query */
	double mean_returned; /* written, at most the limit */
	uint64_t pairs_tried, wrong_paths;
	double pick_s;
};

static void bench_graph(const struct store *s, uint64_t nqueries, uint64_t npairs,
			struct graph_figures *gf)
{
	struct graph g;
	sutra_reader *r;
	sutra_snapshot *snap;
	struct sutra_neighbor nb[NEIGHBOR_LIMIT];
	struct rng rq = { SEED_QUERY ^ 1 }, rp = { SEED_QUERY ^ 2 };
	uint64_t sum = 0, total_sum = 0, n_sum = 0;
	uint8_t id[16];

	graph_build(&g, s);
	check_rc(sutra_reader_open(s->path, &r), s->path);
	check_rc(sutra_snapshot_acquire(r, 0, &snap), "snapshot");

	/* Warm-up: every concept's neighbours once, so that the file pages
	 * the queries read are mapped in this process. */
	for (uint32_t k = 0; k < g.n; k++) {
		size_t n;
		make_id(id, s->seed, k);
		check_rc(sutra_snapshot_neighbors(snap, id, -1, SUTRA_DIR_BOTH, NEIGHBOR_LIMIT, nb,
						  &n, NULL),
			 "neighbors");
	}

	lat_init(&gf->nb, nqueries);
	for (uint64_t i = 0; i < nqueries; i++) {
		size_t n, total;
		make_id(id, s->seed, rng_below(&rq, g.n));
		uint64_t t0 = now_ns();
		int rc = sutra_snapshot_neighbors(snap, id, -1, SUTRA_DIR_BOTH, NEIGHBOR_LIMIT, nb,
						  &n, &total);
		if (rc == 0)
			for (size_t j = 0; j < n; j++)
				sum += nb[j].ordinal;
		uint64_t t1 = now_ns();
		check_rc(rc, "neighbors");
		gf->nb.v[gf->nb.n++] = clamp_ns(t1 - t0);
		total_sum += total;
		n_sum += n;
	}
	gf->mean_degree = (double)total_sum / (double)nqueries;
	gf->mean_returned = (double)n_sum / (double)nqueries;

	/* Pairs exactly PATH_HOPS apart, found by our own BFS. */
	double p0 = now_s();
	uint32_t *stamp = xcalloc(g.n, sizeof *stamp), *q = xmalloc((size_t)g.n * sizeof *q);
	uint32_t (*pairs)[2] = xmalloc((size_t)npairs * sizeof *pairs);
	uint32_t gen = 0;
	for (uint64_t i = 0; i < npairs;) {
		uint32_t src = (uint32_t)rng_below(&rp, g.n), dst;
		gf->pairs_tried++;
		if (graph_pick(&g, src, PATH_HOPS, stamp, ++gen, q, &rp, &dst) == 0) {
			pairs[i][0] = src;
			pairs[i][1] = dst;
			i++;
		}
		if (gf->pairs_tried > 100 * npairs + 1000)
			die("the graph has too few pairs %u hops apart", PATH_HOPS);
	}
	gf->pick_s = now_s() - p0;
	free(stamp);
	free(q);

	uint8_t out[PATH_HOPS + 1][16], from[16], to[16];
	lat_init(&gf->path, npairs);
	for (uint64_t i = 0; i < npairs + npairs / 10; i++) {
		int warm = i < npairs / 10; /* the first tenth again, untimed */
		uint64_t j = warm ? i : i - npairs / 10;
		size_t len = 0;
		make_id(from, s->seed, pairs[j][0]);
		make_id(to, s->seed, pairs[j][1]);
		uint64_t t0 = now_ns();
		int rc = sutra_snapshot_shortest_path(snap, from, to, -1, SUTRA_DIR_BOTH, PATH_HOPS,
						      out, &len);
		uint64_t t1 = now_ns();
		if (warm)
			continue;
		if (rc == SUTRA_ENOTFOUND)
			len = 0;
		else
			check_rc(rc, "shortest path");
		if (len != PATH_HOPS + 1 || memcmp(out[0], from, 16) ||
		    memcmp(out[PATH_HOPS], to, 16))
			gf->wrong_paths++;
		gf->path.v[gf->path.n++] = clamp_ns(t1 - t0);
	}
	sink = sum;
	free(pairs);
	free(g.off);
	free(g.adj);
	sutra_snapshot_release(snap);
	sutra_reader_close(r);
	lat_finish(&gf->nb);
	lat_finish(&gf->path);
}

struct open_figures {
	double open_med, total_med, total_min, total_max; /* microseconds */
	int runs;
};

/* Open + first snapshot + release + close, after one untimed open (the
 * file is in the page cache either way: it was just written or read). */
static void bench_open(const struct store *s, int runs, struct open_figures *of)
{
	double *open_us = xmalloc((size_t)runs * sizeof *open_us);
	double *total_us = xmalloc((size_t)runs * sizeof *total_us);

	for (int i = -1; i < runs; i++) {
		sutra_reader *r;
		sutra_snapshot *snap;
		uint64_t t0 = now_ns();
		check_rc(sutra_reader_open(s->path, &r), s->path);
		uint64_t t1 = now_ns();
		check_rc(sutra_snapshot_acquire(r, 0, &snap), "snapshot");
		sutra_snapshot_release(snap);
		sutra_reader_close(r);
		uint64_t t2 = now_ns();
		if (i < 0)
			continue;
		open_us[i] = (double)(t1 - t0) / 1000.0;
		total_us[i] = (double)(t2 - t0) / 1000.0;
	}
	qsort(open_us, (size_t)runs, sizeof *open_us, cmp_double);
	qsort(total_us, (size_t)runs, sizeof *total_us, cmp_double);
	of->open_med = open_us[runs / 2];
	of->total_med = total_us[runs / 2];
	of->total_min = total_us[0];
	of->total_max = total_us[runs - 1];
	of->runs = runs;
	free(open_us);
	free(total_us);
}

struct mem_figures {
	int ran;
	/* medians over the readers, kB */
	uint64_t pss, priv_clean, priv_dirty, map_pss, map_priv, own_before, own_after, own_delta;
	uint64_t own_delta_min, own_delta_max;
	double open_s_med;
};

static uint64_t median_u64(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_u64);
	return v[n / 2];
}

/* NREADERS reader processes on the same store, measured while all are alive. */
static void bench_memory(const struct store *s, uint64_t ngets, struct mem_figures *mf)
{
	int ready[2], go[2];
	pid_t pids[NREADERS];
	char paths[NREADERS][PATH_MAX];
	char seed[32], total[32], sgets[32], s_ready[16], s_go[16];

	if (pipe2(ready, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	snprintf(seed, sizeof seed, "%llx", (unsigned long long)s->seed);
	snprintf(total, sizeof total, "%llu", (unsigned long long)s->st.concept_count);
	snprintf(sgets, sizeof sgets, "%llu", (unsigned long long)ngets);
	snprintf(s_ready, sizeof s_ready, "%d", ready[1]);
	snprintf(s_go, sizeof s_go, "%d", go[0]);
	for (int i = 0; i < NREADERS; i++) {
		char ix[16];
		snprintf(ix, sizeof ix, "%d", i);
		snprintf(paths[i], sizeof paths[i], "%s/reader-%s-%d", tmp_dir, s->name, i);
		const char *argv[] = { self_path, "--pss-child", s->path, seed, total, sgets,
				       ix, s_ready, s_go, paths[i], NULL };
		int keep[2] = { ready[1], go[0] };
		pids[i] = spawn(argv, keep, 2, -1, -1);
	}
	close(ready[1]);
	close(go[0]);
	int got = 0;
	while (got < NREADERS) {
		char b[16];
		ssize_t k = read(ready[0], b, sizeof b);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break; /* a reader died before it was ready */
		got += (int)k;
	}
	close(ready[0]);
	close(go[1]);
	int failed = got < NREADERS;
	for (int i = 0; i < NREADERS; i++)
		if (!exited_ok(reap(pids[i], failed ? 5 : 600)))
			failed = 1;
	if (failed) {
		note("a reader process failed on the %s store", s->name);
		return;
	}

	uint64_t v[8][NREADERS];
	double open_s[NREADERS];
	for (int i = 0; i < NREADERS; i++) {
		struct reader_result rr;
		if (read_file(paths[i], &rr, sizeof rr) || rr.magic != RESULT_MAGIC || rr.misses)
			die("reader %d on the %s store: bad result", i, s->name);
		unlink(paths[i]);
		v[0][i] = rr.rollup_pss;
		v[1][i] = rr.rollup_clean;
		v[2][i] = rr.rollup_dirty;
		v[3][i] = rr.after.map_pss;
		v[4][i] = rr.after.map_priv;
		v[5][i] = rr.before.own_priv;
		v[6][i] = rr.after.own_priv;
		v[7][i] = rr.after.own_priv > rr.before.own_priv
				  ? rr.after.own_priv - rr.before.own_priv
				  : 0;
		open_s[i] = rr.open_s;
	}
	mf->pss = median_u64(v[0], NREADERS);
	mf->priv_clean = median_u64(v[1], NREADERS);
	mf->priv_dirty = median_u64(v[2], NREADERS);
	mf->map_pss = median_u64(v[3], NREADERS);
	mf->map_priv = median_u64(v[4], NREADERS);
	mf->own_before = median_u64(v[5], NREADERS);
	mf->own_after = median_u64(v[6], NREADERS);
	mf->own_delta = median_u64(v[7], NREADERS); /* sorts v[7] */
	mf->own_delta_min = v[7][0];
	mf->own_delta_max = v[7][NREADERS - 1];
	qsort(open_s, NREADERS, sizeof *open_s, cmp_double);
	mf->open_s_med = open_s[NREADERS / 2];
	mf->ran = 1;
}

/* ---- Machine description ------------------------------------------------ */

/* Busy fraction of all CPUs over a short sleep, from /proc/stat. */
static double machine_busy(double secs)
{
	unsigned long long a[2][8] = { { 0 } };
	for (int k = 0; k < 2; k++) {
		FILE *f = fopen("/proc/stat", "re");
		if (f) {
			if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &a[k][0],
				   &a[k][1], &a[k][2], &a[k][3], &a[k][4], &a[k][5], &a[k][6],
				   &a[k][7]) != 8)
				memset(a[k], 0, sizeof a[k]);
			fclose(f);
		}
		if (k == 0) {
			struct timespec ts = { (time_t)secs,
					       (long)((secs - (double)(time_t)secs) * 1e9) };
			nanosleep(&ts, NULL);
		}
	}
	unsigned long long busy = 0, total = 0;
	for (int i = 0; i < 8; i++) {
		unsigned long long d = a[1][i] - a[0][i];
		total += d;
		if (i != 3 && i != 4)
			busy += d;
	}
	return total ? (double)busy / (double)total : 0;
}

/* ---- Main --------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: sutra-bench-reader [OPTION]...\n"
		"Measures libsutra-reader on stores built through the real sutra-coordinator\n"
		"from seeded data: random gets by id through a held snapshot, side by side\n"
		"with mdb_get on an LMDB environment of the same keys and values (same key\n"
		"order, interleaved); neighbours and 3-hop shortest paths on a random graph\n"
		"of 1,000,000 concepts and 5,000,000 associations; open + first snapshot on\n"
		"a 100 MiB and a 2 GiB store; private memory of each of 8 reader processes\n"
		"on the same store. Prints p50/p99 latencies and the goals marked PASS or\n"
		"MISS. A full run builds about 3 GiB of stores and takes several minutes;\n"
		"--quick uses small stores and takes well under a minute.\n"
		"\n"
		"  --dir DIR            where the temporary directory goes (default /var/tmp)\n"
		"  --stores DIR         build the stores (and the LMDB environment) in DIR and\n"
		"                       keep them; a later run with the same DIR reuses those\n"
		"                       built from the same parameters and rebuilds the others\n"
		"                       (so give --quick and full runs different DIRs)\n"
		"  --coordinator PATH   the sutra-coordinator binary (default: the build\n"
		"                       tree's, ../coordinator/sutra-coordinator from this\n"
		"                       program's directory)\n"
		"  --quick              small stores (50,000 concepts, 250,000 associations,\n"
		"                       10 MiB and 200 MiB for the open and memory lines)\n"
		"  --keep               keep the temporary directory\n"
		"  -h, --help           print this help and exit\n"
		"\n"
		"Exit status: 0 when everything was measured (whatever PASS/MISS says),\n"
		"1 when something could not run, 2 on a usage error.\n"
		"Needs liblmdb at build time for the LMDB line.\n");
}

int main(int argc, char **argv)
{
	if (argc == 10 && strcmp(argv[1], "--build") == 0)
		return build_main(argv + 2);
	if (argc == 10 && strcmp(argv[1], "--pss-child") == 0)
		return reader_child_main(argv + 2);

	const char *dir = "/var/tmp", *stores_dir = NULL;
	char coord_default[PATH_MAX];
	int quick = 0, keep = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		size_t eq = strcspn(a, "=");
#define OPTVAL(name)                                                                        \
	(strncmp(a, name, eq) == 0 && strlen(name) == eq &&                                 \
	 ((a[eq] == '=' && (val = a + eq + 1)) || (i + 1 < argc && (val = argv[++i]))))
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--quick") == 0) {
			quick = 1;
		} else if (strcmp(a, "--keep") == 0) {
			keep = 1;
		} else if (OPTVAL("--dir")) {
			dir = val;
		} else if (OPTVAL("--stores")) {
			stores_dir = val;
		} else if (OPTVAL("--coordinator")) {
			coord_bin = val;
		} else {
			fprintf(stderr, "sutra-bench-reader: unknown argument '%s'\n"
					"Try 'sutra-bench-reader --help'.\n",
				a);
			return 2;
		}
#undef OPTVAL
	}

	/* Sizes: the issue's, or a smoke run's. */
	uint64_t nodes = quick ? 50000 : 1000000;
	uint64_t small_bytes = quick ? 10u << 20 : 100u << 20;
	uint64_t big_bytes = quick ? 200ull << 20 : 2048ull << 20;
	uint64_t get_queries = quick ? 200000 : 2000000;
	uint64_t nb_queries = quick ? 20000 : 200000;
	uint64_t path_pairs = quick ? 1000 : 10000;
	int opens_small = quick ? 7 : 11, opens_big = quick ? 5 : 5;
	uint64_t reader_gets = quick ? 10000 : 100000;
	/* A 100-byte concept is a 176-byte record, an association 72 bytes. */
	uint64_t small_nodes = small_bytes / (176 + EDGES_PER_NODE * 72);

	ssize_t sl = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
	if (sl <= 0)
		die("readlink /proc/self/exe: %s", strerror(errno));
	self_path[sl] = 0;
	if (!coord_bin) {
		char *slash = strrchr(self_path, '/');
		snprintf(coord_default, sizeof coord_default, "%.*s/../coordinator/sutra-coordinator",
			 (int)(slash - self_path), self_path);
		coord_bin = coord_default;
	}
	if (access(coord_bin, X_OK))
		die("cannot run %s: %s (use --coordinator PATH)", coord_bin, strerror(errno));
	if (strlen(dir) > 150)
		die("--dir %s is too long (Unix socket paths live under it)", dir);
	snprintf(tmp_dir, sizeof tmp_dir, "%s/sutra-rbench.XXXXXX", dir);
	if (!mkdtemp(tmp_dir))
		die("mkdtemp in %s: %s", dir, strerror(errno));
	const char *base = tmp_dir;
	if (stores_dir) {
		if (mkdir(stores_dir, 0755) && errno != EEXIST)
			die("mkdir %s: %s", stores_dir, strerror(errno));
		base = stores_dir;
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* ---- Header ---- */
	struct utsname un;
	char fst[64], fsdev[1024], la[64], coord_real[PATH_MAX];
	uname(&un);
	char fsmnt[256];
	fs_of(base, fst, sizeof fst, fsdev, sizeof fsdev, fsmnt, sizeof fsmnt);
	loadavg(la, sizeof la);
	if (!realpath(coord_bin, coord_real))
		snprintf(coord_real, sizeof coord_real, "%s", coord_bin);
	printf("sutra-bench-reader: read path of libsutra-reader against LMDB\n");
	printf("  command      ");
	for (int i = 0; i < argc; i++)
		printf("%s%s", i ? " " : "", argv[i]);
	printf("\n  machine      %ld CPUs, %s %s, load average %s\n",
	       sysconf(_SC_NPROCESSORS_ONLN), un.sysname, un.release, la);
	printf("  build        %s%s, coordinator %s\n", BENCH_BUILDTYPE,
#ifdef NDEBUG
	       "",
#else
	       " (assertions on)",
#endif
	       coord_real);
	printf("  stores       %s (%s on %s)%s\n", base, fst, fsdev,
	       stores_dir ? ", kept and reused" : "");
#ifdef BENCH_HAVE_LMDB
	printf("  LMDB         %s\n", MDB_VERSION_STRING);
#else
	printf("  LMDB         not built (no liblmdb-dev at configure time)\n");
#endif
	double busy = machine_busy(quick ? 0.5 : 1.0);
	printf("  background   %.0f%% of all CPUs busy before the run%s\n", 100.0 * busy,
	       busy > 0.10 ? "\n               WARNING: other work on the machine; the figures "
			     "are noisy"
			   : "");

	/* ---- Stores ---- */
	struct store get, graph, small, big;
	store_init(&get, base, "get", "gets", SEED_GET, nodes, 0);
	store_init(&graph, base, "graph", "graph", SEED_GRAPH, nodes, EDGES_PER_NODE * nodes);
	store_init(&small, base, "small", "open, memory", SEED_SMALL, small_nodes,
		   EDGES_PER_NODE * small_nodes);
	store_init(&big, base, "big", "open, memory", SEED_GRAPH, nodes, EDGES_PER_NODE * nodes);
	big.grow_to = big_bytes;
	char lmdb_dir[PATH_MAX];
	snprintf(lmdb_dir, sizeof lmdb_dir, "%s/lmdb", base);

	store_build(&get);
#ifdef BENCH_HAVE_LMDB
	double lmdb_s = 0;
	int lmdb_reused = 0;
	lmdb_build(lmdb_dir, &get, &lmdb_s, &lmdb_reused);
#endif
	store_build(&graph);
	store_build(&small);
	store_grow(&big, &graph);

	printf("\nStores (built by sutra-coordinator --durability relaxed --vector-dimension %s,\n"
	       "batches of %u concepts, %u of %u bytes, %u associations; no embeddings)\n",
	       VECTOR_DIM, CONCEPT_BATCH, FILLER_BATCH, FILLER_LEN, ASSOC_BATCH);
	printf("  %-6s %-13s %10s %12s %10s %10s %9s\n", "store", "used for", "concepts",
	       "associations", "fillers", "file MiB", "build s");
	const struct store *all[] = { &get, &graph, &small, &big };
	for (int i = 0; i < 4; i++)
		printf("  %-6s %-13s %10llu %12llu %10llu %10.1f %9s\n", all[i]->name, all[i]->what,
		       (unsigned long long)all[i]->st.concept_count,
		       (unsigned long long)all[i]->st.association_count,
		       (unsigned long long)all[i]->fillers, file_mib(all[i]),
		       all[i]->reused ? "reused" : "");
	for (int i = 0; i < 4; i++)
		if (!all[i]->reused)
			printf("  %s store built in %.1f s\n", all[i]->name, all[i]->build_s);
	printf("  index segments (built by the coordinator in the background) and the\n"
	       "  tail a reader indexes privately at open:\n");
	for (int i = 0; i < 4; i++) {
		sutra_reader *r;
		sutra_snapshot *sn;
		struct sutra_reader_stats st;
		if (sutra_reader_open(all[i]->path, &r) || sutra_snapshot_acquire(r, 0, &sn))
			die("cannot open the %s store", all[i]->name);
		sutra_snapshot_stats(sn, &st);
		printf("  %-6s %u segments, tail %.1f KiB, %.1f MiB on disk of %.1f MiB file\n",
		       all[i]->name, st.segment_count, (double)st.tail_bytes / 1024, disk_mib(all[i]),
		       file_mib(all[i]));
		sutra_snapshot_release(sn);
		sutra_reader_close(r);
	}
#ifdef BENCH_HAVE_LMDB
	if (!lmdb_reused)
		printf("  LMDB environment (same keys and values as \"get\") built in %.1f s\n",
		       lmdb_s);
#endif

	/* ---- Measurements ---- */
	double tovh = timer_overhead_ns();
	struct get_figures gf = { 0 };
	note("gets: %llu random gets each, Sutra and LMDB...", (unsigned long long)get_queries);
	bench_gets(&get, lmdb_dir, get_queries, &gf);

	struct graph_figures grf = { 0 };
	note("graph: %llu neighbour queries, %llu paths...", (unsigned long long)nb_queries,
	     (unsigned long long)path_pairs);
	bench_graph(&graph, nb_queries, path_pairs, &grf);

	struct open_figures of_small, of_big;
	note("open: %d + %d opens...", opens_small, opens_big);
	bench_open(&small, opens_small, &of_small);
	bench_open(&big, opens_big, &of_big);

	struct mem_figures mf_small = { 0 }, mf_big = { 0 };
	note("memory: %d readers on the small store, then on the big one...", NREADERS);
	bench_memory(&small, reader_gets, &mf_small);
	bench_memory(&big, reader_gets, &mf_big);

	/* ---- Report ---- */
	printf("\nGets by id, store \"get\" (%llu concepts of %u bytes): %llu random keys,\n"
	       "the same sequence for both, in %d interleaved slices; every value checked once\n"
	       "in a warm-up pass over all keys; each get sums its %u content bytes.\n"
	       "Sutra: sutra_snapshot_get through one snapshot held throughout; LMDB: mdb_get\n"
	       "through one read-only transaction held throughout. Latencies include a clock\n"
	       "read (median back-to-back clock_gettime pair: %.0f ns).\n",
	       (unsigned long long)get.nodes, CONTENT_LEN, (unsigned long long)get_queries, SLICES,
	       CONTENT_LEN, tovh);
	printf("  %-44s %9s %9s %14s\n", "", "p50 us", "p99 us", "untimed mean");
	printf("  %-44s %9.3f %9.3f %11.0f ns\n", "sutra_snapshot_get", gf.sutra.p50, gf.sutra.p99,
	       gf.sutra_mean_ns);
	if (gf.lmdb_ran)
		printf("  %-44s %9.3f %9.3f %11.0f ns\n", "LMDB mdb_get", gf.lmdb.p50, gf.lmdb.p99,
		       gf.lmdb_mean_ns);
	else
		printf("  %-44s  not built (no liblmdb-dev at configure time)\n", "LMDB mdb_get");

	printf("\nGraph, store \"graph\" (%llu concepts, %llu associations among them, two types)\n",
	       (unsigned long long)graph.st.concept_count,
	       (unsigned long long)graph.st.association_count);
	printf("  %-44s %9s %9s\n", "", "p50 us", "p99 us");
	char name[128];
	snprintf(name, sizeof name, "neighbours, both directions, limit %u", NEIGHBOR_LIMIT);
	printf("  %-44s %9.2f %9.2f   %llu random concepts; %.1f neighbours each, %.1f returned\n",
	       name, grf.nb.p50, grf.nb.p99, (unsigned long long)nb_queries, grf.mean_degree,
	       grf.mean_returned);
	snprintf(name, sizeof name, "shortest path, pairs %u hops apart", PATH_HOPS);
	printf("  %-44s %9.2f %9.2f   %llu pairs, max depth %u, both directions; %llu wrong\n",
	       name, grf.path.p50, grf.path.p99, (unsigned long long)path_pairs, PATH_HOPS,
	       (unsigned long long)grf.wrong_paths);
	printf("  (pairs: a breadth-first search of this program's own copy of the graph from\n"
	       "   %llu random concepts found %llu with a concept exactly %u hops away, in %.1f s)\n",
	       (unsigned long long)grf.pairs_tried, (unsigned long long)path_pairs, PATH_HOPS,
	       grf.pick_s);

	printf("\nOpen: sutra_reader_open + sutra_snapshot_acquire + release + close, page cache\n"
	       "warm, after one untimed open\n");
	printf("  %-30s %9s %6s %12s %12s %12s %12s\n", "", "file MiB", "runs", "open med us",
	       "total med us", "min us", "max us");
	const struct store *os[2] = { &small, &big };
	const struct open_figures *ofs[2] = { &of_small, &of_big };
	for (int i = 0; i < 2; i++)
		printf("  store %-24s %9.1f %6d %12.0f %12.0f %12.0f %12.0f\n", os[i]->name,
		       file_mib(os[i]), ofs[i]->runs, ofs[i]->open_med, ofs[i]->total_med,
		       ofs[i]->total_min, ofs[i]->total_max);

	printf("\nMemory: %d reader processes on the same store, each: open, snapshot, %llu random\n"
	       "gets, then (all %d alive) its own /proc/self/smaps_rollup and smaps. Medians over\n"
	       "the readers, MiB. \"reader-private\": Private_Clean + Private_Dirty outside the\n"
	       "store's mapping, minus the same before the open (the reader library's own memory).\n",
	       NREADERS, (unsigned long long)reader_gets, NREADERS);
	printf("  %-8s %9s %8s %9s %9s %10s %10s %15s %9s\n", "store", "file MiB", "Pss",
	       "Priv_Cln", "Priv_Drt", "map Pss", "map priv", "reader-private", "open s");
	const struct mem_figures *mfs[2] = { &mf_small, &mf_big };
	for (int i = 0; i < 2; i++) {
		const struct mem_figures *m = mfs[i];
		if (!m->ran) {
			printf("  %-8s  a reader failed (see the messages above)\n", os[i]->name);
			continue;
		}
		printf("  %-8s %9.1f %8.1f %9.1f %9.1f %10.1f %10.1f %15.1f %9.3f\n", os[i]->name,
		       file_mib(os[i]), (double)m->pss / 1024, (double)m->priv_clean / 1024,
		       (double)m->priv_dirty / 1024, (double)m->map_pss / 1024,
		       (double)m->map_priv / 1024, (double)m->own_delta / 1024, m->open_s_med);
		printf("  %-8s %9s reader-private over the %d readers: %.1f .. %.1f MiB\n", "", "",
		       NREADERS, (double)m->own_delta_min / 1024, (double)m->own_delta_max / 1024);
	}

	printf("\nGoals\n");
	int gets_ok = gf.lmdb_ran && gf.sutra.p50 > 0;
	goal_line("get p50: LMDB p50 / Sutra p50", gets_ok ? gf.lmdb.p50 / gf.sutra.p50 : 0, "x",
		  gets_ok, 0, 3);
	goal_line("3-hop shortest path p50", grf.path.p50, "us", grf.path.n > 0, 1, 50);
	snprintf(name, sizeof name, "open + first snapshot, median, %.0f MiB store",
		 file_mib(&small));
	goal_line(name, of_small.total_med / 1000.0, "ms", 1, 1, 1);
	snprintf(name, sizeof name, "open + first snapshot, median, %.0f MiB store",
		 file_mib(&big));
	goal_line(name, of_big.total_med / 1000.0, "ms", 1, 1, 1);
	int mem_ok = mf_small.ran && mf_big.ran && mf_small.own_delta > 0;
	goal_line("reader-private memory, big / small store (near 1)",
		  mem_ok ? (double)mf_big.own_delta / (double)mf_small.own_delta : 0, "x", mem_ok,
		  1, 1.25);
	printf("  %d of %d goals met\n", goals - misses, goals);
	printf("Other ratios\n");
	if (gets_ok)
		printf("  %-58s %10.3f x (information)\n", "get untimed mean: LMDB / Sutra",
		       gf.lmdb_mean_ns / gf.sutra_mean_ns);
	printf("  %-58s %10.3f x (information)\n", "open median, big / small store",
	       of_big.total_med / of_small.total_med);
	printf("  %-58s %10.3f x (information)\n", "store size, big / small",
	       file_mib(&big) / file_mib(&small));
	if (mf_small.ran && mf_big.ran && mf_small.pss)
		printf("  %-58s %10.3f x (information)\n", "Pss (smaps_rollup), big / small store",
		       (double)mf_big.pss / (double)mf_small.pss);
	loadavg(la, sizeof la);
	printf("\nload average after the run: %s\n", la);

	if (keep)
		note("kept %s", tmp_dir);
	else
		nftw(tmp_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	int complete = mf_small.ran && mf_big.ran && grf.wrong_paths == 0;
	return complete ? 0 : 1;
}
