/* SPDX-License-Identifier: MIT */
/* libsutra-reader against the real coordinator: read-your-writes across processes, batch atomicity in snapshots, corrupt files. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sutra/client.h"
#include "sutra/reader.h"
#include "tests/common/daemon.h"
#include "tests/common/tcheck.h"
#include "tests/common/tstore.h"

#define BATCH 5
#define NREADERS 4
#define NWRITERS 2
#define WRITER_SPAN 30000 /* batch numbers of writer w: w * WRITER_SPAN + 1 ... */
#define RUN_MS 2500

static void id_of(uint8_t id[16], uint32_t batch, uint32_t k)
{
	memset(id, 0, 16);
	memcpy(id, &batch, 4);
	id[4] = (uint8_t)k;
	id[15] = 0xBE;
}

/* ---- Child processes: re-executed test binary, no nng inherited --------- */

/* Learns one concept and prints the epoch that holds it. */
static int once_main(const char *url)
{
	sutra_client *c;
	uint8_t id[16];
	uint64_t epoch;
	if (sutra_client_connect(url, NULL, &c))
		return 3;
	id_of(id, 999999, 1);
	const char *text = "written by another process";
	struct sutra_concept_in in = { .id = id, .content = text, .content_len = strlen(text),
				       .strength = 0.5f, .confidence = 0.75f };
	if (sutra_client_learn_concept(c, &in, &epoch))
		return 4;
	printf("%" PRIu64 "\n", epoch);
	fflush(stdout);
	sutra_client_close(c);
	return 0;
}

/* Reads the epoch on stdin, waits for it, and checks the write is there. */
static int ryw_main(const char *path)
{
	uint64_t epoch;
	sutra_reader *r;
	sutra_snapshot *s;
	struct sutra_concept_view v;
	uint8_t id[16];
	if (scanf("%" SCNu64, &epoch) != 1)
		return 3;
	if (sutra_reader_open(path, &r))
		return 4;
	if (sutra_reader_wait_for_epoch(r, epoch, 10000))
		return 5;
	if (sutra_snapshot_acquire(r, epoch, &s))
		return 6;
	id_of(id, 999999, 1);
	if (sutra_snapshot_get(s, id, &v))
		return 7;
	const char *text = "written by another process";
	if (v.content_len != strlen(text) || memcmp(v.content, text, v.content_len) ||
	    v.strength != 0.5f || v.confidence != 0.75f)
		return 8;
	sutra_snapshot_release(s);
	sutra_reader_close(r);
	return 0;
}

/* FNV-1a of a content's text before its checksum. */
static uint32_t sum_of(const char *text, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)text[i]) * 16777619u;
	return h;
}

/* "b<b> v<ver> k/5 s<checksum>" */
static size_t content_of(char *text, size_t len, uint32_t b, unsigned ver, uint32_t k)
{
	int n = snprintf(text, len, "b%u v%u %u/%u ", b, ver, k, BATCH);
	n += snprintf(text + n, len - (size_t)n, "s%08x", sum_of(text, (size_t)n));
	return (size_t)n;
}

/*
 * Writer w: its batch b learns BATCH concepts "b<b> v1 k/5 s<sum>",
 * rewrites the BATCH concepts of its batch b-3 as "v2", and deletes those
 * of its batch b-6, all in one atomic batch. Batch numbers of writer w
 * start at w * WRITER_SPAN.
 */
static int writer_main(const char *url, int ms, uint32_t w)
{
	sutra_client *c;
	if (sutra_client_connect(url, NULL, &c))
		return 3;
	sutra_batch *bt = sutra_batch_create();
	double end = tdaemon_now_s() + ms / 1000.0;
	uint32_t base = w * WRITER_SPAN;
	for (uint32_t b = base + 1; tdaemon_now_s() < end && b < base + WRITER_SPAN; b++) {
		sutra_batch_clear(bt);
		for (uint32_t k = 0; k < BATCH; k++) {
			uint8_t id[16];
			char text[64];
			id_of(id, b, k);
			struct sutra_concept_in in = { .id = id, .content = text,
						       .content_len = content_of(text, sizeof text, b, 1, k),
						       .strength = 1, .confidence = 1 };
			if (sutra_batch_learn_concept(bt, &in))
				return 4;
			if (b > base + 3) {
				id_of(id, b - 3, k);
				in.content_len = content_of(text, sizeof text, b - 3, 2, k);
				if (sutra_batch_learn_concept(bt, &in))
					return 4;
			}
			if (b > base + 6) {
				id_of(id, b - 6, k);
				if (sutra_batch_delete_concept(bt, id))
					return 4;
			}
		}
		if (sutra_client_commit(c, bt, NULL))
			return 5;
	}
	sutra_batch_destroy(bt);
	sutra_client_close(c);
	return 0;
}

struct seen {
	uint32_t count[1 << 16];
	uint8_t version[1 << 16];
	int bad;
	char why[200];
};

static int visit(void *arg, const struct sutra_concept_view *v)
{
	struct seen *s = arg;
	uint32_t b, k, n, sum;
	unsigned ver;
	char text[80];
	int at = 0;
	if (v->content_len >= sizeof text)
		return 1;
	memcpy(text, v->content, v->content_len);
	text[v->content_len] = 0;
	if (sscanf(text, "b%u v%u %u/%u %ns%x", &b, &ver, &k, &n, &at, &sum) != 5 ||
	    n != BATCH || b >= (1u << 16) || sum != sum_of(text, (size_t)at)) {
		snprintf(s->why, sizeof s->why, "torn or foreign content '%s'", text);
		return 1;
	}
	uint8_t id[16];
	id_of(id, b, k);
	if (memcmp(id, v->id, 16) != 0) {
		snprintf(s->why, sizeof s->why, "content '%s' under another id", text);
		return 1;
	}
	if (s->count[b] && s->version[b] != ver) {
		snprintf(s->why, sizeof s->why, "batch %u mixes versions", b);
		return 1;
	}
	s->count[b]++;
	s->version[b] = (uint8_t)ver;
	return 0;
}

/* Reader: snapshots in a loop; every batch is all there or not at all,
 * in one version; epochs never go backwards. */
static int reader_main(const char *path, int ms)
{
	sutra_reader *r;
	if (sutra_reader_open(path, &r))
		return 3;
	struct seen *s = malloc(sizeof *s);
	uint64_t prev = 0, snaps = 0;
	double end = tdaemon_now_s() + ms / 1000.0;
	while (tdaemon_now_s() < end) {
		sutra_snapshot *sn;
		int rc = sutra_snapshot_acquire(r, 0, &sn);
		if (rc) {
			printf("acquire: %s\n", sutra_strerror(rc));
			return 10;
		}
		uint64_t e = sutra_snapshot_epoch(sn);
		if (e < prev) {
			printf("epoch %" PRIu64 " after %" PRIu64 "\n", e, prev);
			return 11;
		}
		prev = e;
		memset(s, 0, sizeof *s);
		rc = sutra_snapshot_foreach(sn, visit, s);
		if (rc) {
			printf("epoch %" PRIu64 ": %s\n", e, s->why[0] ? s->why : sutra_strerror(rc));
			return 12;
		}
		uint64_t live = 0;
		for (uint32_t b = 0; b < (1u << 16); b++) {
			if (s->count[b] && s->count[b] != BATCH) {
				printf("epoch %" PRIu64 ": batch %u has %u of %u concepts\n", e, b,
				       s->count[b], BATCH);
				return 13;
			}
			live += s->count[b];
		}
		struct sutra_reader_stats st;
		sutra_snapshot_stats(sn, &st);
		if (live != st.concept_count) {
			printf("epoch %" PRIu64 ": %" PRIu64 " concepts iterated, meta says %" PRIu64 "\n",
			       e, live, st.concept_count);
			return 14;
		}
		sutra_snapshot_release(sn);
		snaps++;
	}
	sutra_snapshot *last;
	struct sutra_reader_stats st;
	if (sutra_snapshot_acquire(r, 0, &last))
		return 15;
	sutra_snapshot_stats(last, &st);
	sutra_snapshot_release(last);
	printf("snapshots %" PRIu64 " last epoch %" PRIu64 " segments %u\n", snaps, prev,
	       st.segment_count);
	free(s);
	sutra_reader_close(r);
	return 0;
}

/* ---- The tests ----------------------------------------------------------- */

/* A process writes; the epoch it got goes through a pipe to another
 * process, which waits for it and reads the write. No sleeps. */
START_TEST(test_reader_read_your_writes_across_processes)
{
	struct tdaemon d;
	const char *args[] = { "--vector-dimension", "4", NULL };
	int p[2];
	ck_assert_ok(tdaemon_mkdir(&d));
	ck_assert_ok(tdaemon_start(&d, args));
	ck_assert_int_eq(pipe(p), 0);
	const char *rargv[] = { "test_int_reader", "--ryw", d.data, NULL };
	pid_t reader = tdaemon_spawn_self(rargv, p[0], -1);
	const char *wargv[] = { "test_int_reader", "--once", d.url, NULL };
	pid_t writer = tdaemon_spawn_self(wargv, -1, p[1]);
	close(p[0]);
	close(p[1]);
	ck_assert_ok(tdaemon_reap(writer));
	ck_assert_ok(tdaemon_reap(reader));
	ck_assert_ok(tdaemon_stop(&d));
	tdaemon_cleanup(&d);
}
END_TEST

START_TEST(test_reader_snapshots_never_see_part_of_a_batch)
{
	struct tdaemon d;
	const char *args[] = { "--vector-dimension", "4", NULL };
	char ms[16], out[NREADERS][300];
	FILE *outf[NREADERS];
	pid_t readers[NREADERS];
	ck_assert_ok(tdaemon_mkdir(&d));
	ck_assert_ok(tdaemon_start(&d, args));
	snprintf(ms, sizeof ms, "%d", RUN_MS);
	pid_t writers[NWRITERS];
	for (int w = 0; w < NWRITERS; w++) {
		char wn[8];
		snprintf(wn, sizeof wn, "%d", w);
		const char *wargv[] = { "test_int_reader", "--writer", d.url, ms, wn, NULL };
		writers[w] = tdaemon_spawn_self(wargv, -1, -1);
	}
	const char *rargv[] = { "test_int_reader", "--reader", d.data, ms, NULL };
	for (int i = 0; i < NREADERS; i++) {
		outf[i] = tmpfile();
		readers[i] = tdaemon_spawn_self(rargv, -1, fileno(outf[i]));
	}
	for (int w = 0; w < NWRITERS; w++)
		ck_assert_ok(tdaemon_reap(writers[w]));
	for (int i = 0; i < NREADERS; i++) {
		int rc = tdaemon_reap(readers[i]);
		rewind(outf[i]);
		if (!fgets(out[i], sizeof out[i], outf[i]))
			snprintf(out[i], sizeof out[i], "(no output)");
		fclose(outf[i]);
		ck_assert_msg(rc == 0, "reader %d exited %d: %s", i, rc, out[i]);
		uint64_t snaps, last;
		unsigned segs;
		ck_assert_int_eq(sscanf(out[i], "snapshots %" SCNu64 " last epoch %" SCNu64
						" segments %u",
					&snaps, &last, &segs),
				 3);
		/* With tiny segments (the -segments run), reads went through them. */
		const char *seg = getenv("SUTRA_TEST_SEGMENT_KIB");
		if (seg && *seg)
			ck_assert_uint_gt(segs, 0);
		ck_assert_uint_gt(snaps, 10);
		ck_assert_uint_gt(last, 10);
		printf("reader %d: %s", i, out[i]);
	}
	ck_assert_ok(tdaemon_stop(&d));
	tdaemon_cleanup(&d);
}
END_TEST

static void learn(sutra_client *c, const uint8_t id[16], const char *text, uint64_t *epoch)
{
	struct sutra_concept_in in = { .id = id, .content = text, .content_len = strlen(text),
				       .strength = 1, .confidence = 1 };
	ck_assert_ok(sutra_client_learn_concept(c, &in, epoch));
}

/* Neighbours through two snapshots: the older one keeps its associations
 * while the newer sees deletes, new edges and a deleted concept. */
START_TEST(test_reader_neighbors_by_snapshot)
{
	struct tdaemon d;
	const char *args[] = { "--vector-dimension", "4", NULL };
	uint8_t a[16], b[16], c[16];
	uint64_t e;
	struct sutra_neighbor nb[8];
	size_t n, total;
	id_of(a, 7001, 0);
	id_of(b, 7002, 0);
	id_of(c, 7003, 0);
	ck_assert_ok(tdaemon_mkdir(&d));
	ck_assert_ok(tdaemon_start(&d, args));
	sutra_client *cl;
	ck_assert_ok(sutra_client_connect(d.url, NULL, &cl));
	learn(cl, a, "a", &e);
	learn(cl, b, "b", &e);
	learn(cl, c, "c", &e);
	ck_assert_ok(sutra_client_learn_association(cl, a, b, 1, 0.9f, 1, &e));
	ck_assert_ok(sutra_client_learn_association(cl, c, a, 3, 0.5f, 2, &e));
	ck_assert_ok(sutra_client_learn_association(cl, a, c, 0, 0.7f, 3, &e));
	sutra_reader *r;
	sutra_snapshot *s1, *s2;
	ck_assert_ok(sutra_reader_open(d.data, &r));
	ck_assert_ok(sutra_reader_wait_for_epoch(r, e, 5000));
	ck_assert_ok(sutra_snapshot_acquire(r, e, &s1));

	ck_assert_ok(sutra_client_delete_association(cl, a, b, 1, &e));
	ck_assert_ok(sutra_client_learn_association(cl, b, a, 2, 0.95f, 4, &e));
	ck_assert_ok(sutra_client_delete_concept(cl, c, &e));
	ck_assert_ok(sutra_reader_wait_for_epoch(r, e, 5000));
	ck_assert_ok(sutra_snapshot_acquire(r, e, &s2));

	/* The old snapshot: a -> b (0.9), a -> c (0.7), c -> a (0.5). */
	ck_assert_ok(sutra_snapshot_neighbors(s1, a, -1, SUTRA_DIR_BOTH, 8, nb, &n, &total));
	ck_assert_uint_eq(n, 3);
	ck_assert_mem_eq(nb[0].id, b, 16);
	ck_assert(nb[0].outgoing && nb[0].type == 1 && nb[0].confidence == 0.9f);
	ck_assert_mem_eq(nb[1].id, c, 16);
	ck_assert(nb[1].outgoing && nb[1].type == 0 && nb[1].weight == 3);
	ck_assert_mem_eq(nb[2].id, c, 16);
	ck_assert(!nb[2].outgoing && nb[2].type == 3);
	ck_assert_ok(sutra_snapshot_neighbors(s1, a, 3, SUTRA_DIR_BOTH, 8, nb, &n, NULL));
	ck_assert_uint_eq(n, 1);
	ck_assert_ok(sutra_snapshot_neighbors(s1, a, -1, SUTRA_DIR_OUT, 8, nb, &n, NULL));
	ck_assert_uint_eq(n, 2);
	ck_assert_ok(sutra_snapshot_neighbors(s1, a, -1, SUTRA_DIR_IN, 8, nb, &n, NULL));
	ck_assert_uint_eq(n, 1);
	ck_assert_mem_eq(nb[0].id, c, 16);
	ck_assert_ok(sutra_snapshot_neighbors(s1, a, -1, SUTRA_DIR_BOTH, 1, nb, &n, &total));
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(total, 3);
	ck_assert_mem_eq(nb[0].id, b, 16);
	ck_assert_int_eq(sutra_snapshot_contains(s1, c), 1);

	/* The new one: only b -> a (0.95); c and its edges are gone. */
	ck_assert_ok(sutra_snapshot_neighbors(s2, a, -1, SUTRA_DIR_BOTH, 8, nb, &n, &total));
	ck_assert_uint_eq(n, 1);
	ck_assert_mem_eq(nb[0].id, b, 16);
	ck_assert(!nb[0].outgoing && nb[0].type == 2 && nb[0].confidence == 0.95f);
	ck_assert_err(sutra_snapshot_neighbors(s2, c, -1, SUTRA_DIR_BOTH, 8, nb, &n, NULL),
	              SUTRA_ENOTFOUND);
	ck_assert_ok(sutra_snapshot_contains(s2, c));
	ck_assert_err(sutra_snapshot_neighbors(s2, a, 300, SUTRA_DIR_BOTH, 8, nb, &n, NULL),
	              SUTRA_EVALUE);

	sutra_snapshot_release(s1);
	sutra_snapshot_release(s2);
	sutra_reader_close(r);
	sutra_client_close(cl);
	ck_assert_ok(tdaemon_stop(&d));
	tdaemon_cleanup(&d);
}
END_TEST

/* Path length by plain BFS over sutra_snapshot_neighbors (an independent
 * implementation), or -1. */
static int bfs_len(const sutra_snapshot *s, uint32_t n, uint32_t from, uint32_t to, int type,
		   enum sutra_direction dir, unsigned max_depth)
{
	int *dist = malloc(n * sizeof *dist);
	uint32_t *queue = malloc(n * sizeof *queue);
	size_t head = 0, tail = 0;
	for (uint32_t i = 0; i < n; i++)
		dist[i] = -1;
	dist[from] = 0;
	queue[tail++] = from;
	while (head < tail) {
		uint32_t o = queue[head++];
		if ((unsigned)dist[o] >= max_depth)
			continue;
		uint8_t id[16];
		struct sutra_neighbor nb[64];
		size_t k;
		id_of(id, 8000 + o, 0);
		ck_assert_ok(sutra_snapshot_neighbors(s, id, type, dir, 64, nb, &k, NULL));
		for (size_t i = 0; i < k; i++) {
			uint32_t other = 0;
			memcpy(&other, nb[i].id, 4);
			other -= 8000;
			if (dist[other] < 0) {
				dist[other] = dist[o] + 1;
				queue[tail++] = other;
			}
		}
	}
	int d = dist[to];
	free(dist);
	free(queue);
	return d;
}

/* All simple paths a -> b of at most depth steps, by DFS over the
 * neighbours API: counts them by length into hist. */
static void dfs_paths(const sutra_snapshot *s, uint32_t o, uint32_t b, int type,
		      enum sutra_direction dir, unsigned depth, uint8_t *on, unsigned used,
		      unsigned *hist)
{
	if (o == b) {
		hist[used]++;
		return;
	}
	if (used == depth)
		return;
	uint8_t id[16];
	struct sutra_neighbor nb[64];
	size_t k;
	id_of(id, 8000 + o, 0);
	ck_assert_ok(sutra_snapshot_neighbors(s, id, type, dir, 64, nb, &k, NULL));
	/* Parallel associations of several types lead to the same node: one
	 * path per node sequence, as the k-paths search counts them. */
	uint8_t seen_here[256] = { 0 };
	for (size_t i = 0; i < k; i++) {
		uint32_t other = 0;
		memcpy(&other, nb[i].id, 4);
		other -= 8000;
		if (on[other] || seen_here[other])
			continue;
		seen_here[other] = 1;
		on[other] = 1;
		dfs_paths(s, other, b, type, dir, depth, on, used + 1, hist);
		on[other] = 0;
	}
}

/* Shortest paths: hand-built cases, then random pairs of a random graph
 * checked against plain BFS (length) and edge by edge (validity). */
START_TEST(test_reader_shortest_paths)
{
	struct tdaemon d;
	const char *args[] = { "--vector-dimension", "4", NULL };
	enum { N = 120, EDGES = 600 };
	uint8_t ids[N][16], path[SUTRA_MAX_PATH_DEPTH + 1][16];
	size_t len;
	uint64_t e = 0;
	ck_assert_ok(tdaemon_mkdir(&d));
	ck_assert_ok(tdaemon_start(&d, args));
	sutra_client *cl;
	ck_assert_ok(sutra_client_connect(d.url, NULL, &cl));
	sutra_batch *bt = sutra_batch_create();
	for (uint32_t i = 0; i < N; i++) {
		id_of(ids[i], 8000 + i, 0);
		struct sutra_concept_in in = { .id = ids[i], .content = "node", .content_len = 4,
					       .strength = 1, .confidence = 1 };
		ck_assert_ok(sutra_batch_learn_concept(bt, &in));
	}
	/* 0 -> 1 -> 2 -> 3 -> 4 (type 0), and 0 -> 5 -> 4 (type 1). */
	for (uint32_t i = 0; i < 4; i++)
		ck_assert_ok(sutra_batch_learn_association(bt, ids[i], ids[i + 1], 0, 1, 1));
	ck_assert_ok(sutra_batch_learn_association(bt, ids[0], ids[5], 1, 1, 1));
	ck_assert_ok(sutra_batch_learn_association(bt, ids[5], ids[4], 1, 1, 1));
	uint64_t seed = 12345;
	for (int k = 0; k < EDGES; k++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t a = 10 + (uint32_t)((seed >> 33) % (N - 10));
		uint32_t b = 10 + (uint32_t)((seed >> 13) % (N - 10));
		ck_assert_ok(sutra_batch_learn_association(bt, ids[a], ids[b],
							       (uint8_t)((seed >> 7) % 3), 1, 1));
	}
	ck_assert_ok(sutra_client_commit(cl, bt, &e));
	sutra_batch_destroy(bt);

	sutra_reader *r;
	sutra_snapshot *s;
	ck_assert_ok(sutra_reader_open(d.data, &r));
	ck_assert_ok(sutra_snapshot_acquire(r, e, &s));

	ck_assert_ok(sutra_snapshot_shortest_path(s, ids[0], ids[4], -1, SUTRA_DIR_BOTH, 20,
						      path, &len));
	ck_assert_uint_eq(len, 3);
	ck_assert_mem_eq(path[1], ids[5], 16);
	ck_assert_ok(sutra_snapshot_shortest_path(s, ids[0], ids[4], 0, SUTRA_DIR_BOTH, 20,
						      path, &len));
	ck_assert_uint_eq(len, 5);
	for (int i = 0; i < 5; i++)
		ck_assert_mem_eq(path[i], ids[i], 16);
	ck_assert_err(sutra_snapshot_shortest_path(s, ids[0], ids[4], 0, SUTRA_DIR_BOTH, 3,
						      path, &len), SUTRA_ENOTFOUND);
	ck_assert_err(sutra_snapshot_shortest_path(s, ids[4], ids[0], -1, SUTRA_DIR_OUT, 20,
						      path, &len), SUTRA_ENOTFOUND);
	ck_assert_ok(sutra_snapshot_shortest_path(s, ids[4], ids[0], -1, SUTRA_DIR_IN, 20,
						      path, &len));
	ck_assert_uint_eq(len, 3);
	ck_assert_ok(sutra_snapshot_shortest_path(s, ids[3], ids[3], -1, SUTRA_DIR_BOTH, 1,
						      path, &len));
	ck_assert_uint_eq(len, 1);
	ck_assert_err(sutra_snapshot_shortest_path(s, ids[0], ids[9], -1, SUTRA_DIR_BOTH, 20,
						      path, &len), SUTRA_ENOTFOUND); /* isolated */
	ck_assert_err(sutra_snapshot_shortest_path(s, ids[0], ids[4], -1, SUTRA_DIR_BOTH, 21,
						      path, &len), SUTRA_EVALUE);

	static const enum sutra_direction dirs[] = { SUTRA_DIR_BOTH, SUTRA_DIR_OUT, SUTRA_DIR_IN };
	int found = 0;
	for (int q = 0; q < 300; q++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t a = 10 + (uint32_t)((seed >> 33) % (N - 10));
		uint32_t b = 10 + (uint32_t)((seed >> 13) % (N - 10));
		int type = (int)((seed >> 5) % 4) - 1;
		enum sutra_direction dir = dirs[(seed >> 3) % 3];
		unsigned depth = 1 + (unsigned)((seed >> 40) % 8);
		int want = bfs_len(s, N, a, b, type, dir, depth);
		int rc = sutra_snapshot_shortest_path(s, ids[a], ids[b], type, dir, depth, path, &len);
		if (want < 0) {
			ck_assert_msg(rc == SUTRA_ENOTFOUND, "%u -> %u: found a path BFS did not", a, b);
			continue;
		}
		ck_assert_msg(rc == 0, "%u -> %u type %d dir %d depth %u: no path, BFS says %d", a,
			      b, type, dir, depth, want);
		ck_assert_uint_eq(len, (size_t)want + 1);
		ck_assert_mem_eq(path[0], ids[a], 16);
		ck_assert_mem_eq(path[len - 1], ids[b], 16);
		for (size_t i = 0; i + 1 < len; i++) {
			/* Each step is an association of the asked type and way. */
			struct sutra_neighbor nb[64];
			size_t k, j;
			ck_assert_ok(sutra_snapshot_neighbors(s, path[i], type, dir, 64, nb, &k,
								  NULL));
			for (j = 0; j < k && memcmp(nb[j].id, path[i + 1], 16); j++)
				;
			ck_assert_msg(j < k, "step %zu of %u -> %u is not an association", i, a, b);
		}
		found++;
	}
	ck_assert_int_gt(found, 50);

	/* k paths: the lengths are the k smallest of all simple paths (DFS),
	 * and each is simple, made of associations, and distinct. */
	enum { K = 6, DEPTH = 5 };
	static uint8_t kout[K * (DEPTH + 1)][16];
	size_t lens[K], count;
	int checked = 0;
	for (int q = 0; q < 40; q++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t a = 10 + (uint32_t)((seed >> 33) % (N - 10));
		uint32_t b = 10 + (uint32_t)((seed >> 13) % (N - 10));
		if (a == b)
			continue;
		enum sutra_direction dir = dirs[(seed >> 3) % 3];
		unsigned hist[DEPTH + 1] = { 0 };
		uint8_t on[N] = { 0 };
		on[a] = 1;
		dfs_paths(s, a, b, -1, dir, DEPTH, on, 0, hist);
		int rc = sutra_snapshot_paths(s, ids[a], ids[b], -1, dir, DEPTH, K, kout, lens, &count);
		unsigned all = 0;
		for (int l = 0; l <= DEPTH; l++)
			all += hist[l];
		if (!all) {
			ck_assert_err(rc, SUTRA_ENOTFOUND);
			continue;
		}
		ck_assert_ok(rc);
		ck_assert_uint_eq(count, all < K ? all : K);
		unsigned want[K], w = 0;
		for (int l = 0; l <= DEPTH && w < K; l++)
			for (unsigned c = 0; c < hist[l] && w < K; c++)
				want[w++] = (unsigned)l;
		for (size_t j = 0; j < count; j++) {
			uint8_t (*p)[16] = kout + j * (DEPTH + 1);
			ck_assert_uint_eq(lens[j] - 1, want[j]);
			ck_assert_mem_eq(p[0], ids[a], 16);
			ck_assert_mem_eq(p[lens[j] - 1], ids[b], 16);
			for (size_t i = 0; i < lens[j]; i++)
				for (size_t i2 = i + 1; i2 < lens[j]; i2++)
					ck_assert_msg(memcmp(p[i], p[i2], 16), "path %zu not simple", j);
			for (size_t j2 = 0; j2 < j; j2++)
				ck_assert_msg(lens[j2] != lens[j] ||
						      memcmp(kout + j2 * (DEPTH + 1), p, lens[j] * 16),
					      "paths %zu and %zu are the same", j2, j);
			for (size_t i = 0; i + 1 < lens[j]; i++) {
				struct sutra_neighbor nb[64];
				size_t k, t;
				ck_assert_ok(sutra_snapshot_neighbors(s, p[i], -1, dir, 64, nb, &k,
									  NULL));
				for (t = 0; t < k && memcmp(nb[t].id, p[i + 1], 16); t++)
					;
				ck_assert_msg(t < k, "path %zu step %zu is not an association", j, i);
			}
		}
		checked++;
	}
	ck_assert_int_gt(checked, 10);
	ck_assert_err(sutra_snapshot_paths(s, ids[0], ids[4], -1, SUTRA_DIR_BOTH, 20, 0, kout,
					      lens, &count), SUTRA_EVALUE);
	sutra_snapshot_release(s);
	sutra_reader_close(r);
	sutra_client_close(cl);
	ck_assert_ok(tdaemon_stop(&d));
	tdaemon_cleanup(&d);
}
END_TEST

/* Notices: the fd wakes an event loop, the epoch notice lists the touched
 * ordinal, heartbeats come when idle; wait_for_epoch keeps up through a
 * flood of unread notices and across a coordinator restart. */
START_TEST(test_reader_notices)
{
	struct tdaemon d;
	const char *args[] = { "--vector-dimension", "4", "--check-interval-ms", "100", NULL };
	uint8_t a[16];
	uint64_t e;
	struct sutra_notice n;
	int fd;
	id_of(a, 9001, 0);
	ck_assert_ok(tdaemon_mkdir(&d));
	ck_assert_ok(tdaemon_start(&d, args));
	sutra_reader *r;
	ck_assert_ok(sutra_reader_open(d.data, &r));
	ck_assert_err(sutra_reader_next_notice(r, 0, &n), -ENOTCONN);
	ck_assert_ok(sutra_reader_subscribe(r, d.events));
	ck_assert_err(sutra_reader_subscribe(r, d.events), -EALREADY);
	ck_assert_ok(sutra_reader_notice_fd(r, &fd));
	/* The subscription is made in the background: heartbeats show it. */
	ck_assert_ok(sutra_reader_next_notice(r, 5000, &n));
	sutra_notice_clear(&n);

	sutra_client *cl;
	ck_assert_ok(sutra_client_connect(d.url, NULL, &cl));
	learn(cl, a, "announced", &e);
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
	int seen = 0;
	while (!seen) {
		ck_assert_ok(sutra_reader_next_notice(r, 5000, &n));
		if (!n.heartbeat && n.epoch == e) {
			ck_assert_uint_eq(n.changed_count, 1);
			ck_assert_uint_eq(n.changed[0], 0);
			seen = 1;
		}
		sutra_notice_clear(&n);
	}
	/* Idle: a heartbeat with the current epoch. */
	for (seen = 0; !seen;) {
		ck_assert_ok(sutra_reader_next_notice(r, 2000, &n));
		seen = n.heartbeat && n.epoch == e;
		sutra_notice_clear(&n);
	}
	/* A flood nobody reads (PUB and SUB queues drop): the file still
	 * says where things are. */
	for (int i = 0; i < 300; i++) {
		uint8_t id[16];
		id_of(id, 9100 + (uint32_t)i, 0);
		learn(cl, id, "flood", &e);
	}
	ck_assert_ok(sutra_reader_wait_for_epoch(r, e, 5000));
	sutra_client_close(cl);

	/* A restarted coordinator: notices resume, writes are seen. */
	ck_assert_ok(tdaemon_stop(&d));
	ck_assert_ok(tdaemon_start(&d, args));
	ck_assert_ok(sutra_client_connect(d.url, NULL, &cl));
	uint8_t b[16];
	id_of(b, 9002, 0);
	learn(cl, b, "after the restart", &e);
	ck_assert_ok(sutra_reader_wait_for_epoch(r, e, 5000));
	for (seen = 0; !seen;) {
		ck_assert_ok(sutra_reader_next_notice(r, 3000, &n));
		seen = n.epoch >= e;
		sutra_notice_clear(&n);
	}
	sutra_snapshot *sn;
	ck_assert_ok(sutra_snapshot_acquire(r, e, &sn));
	ck_assert_int_eq(sutra_snapshot_contains(sn, b), 1);
	sutra_snapshot_release(sn);
	sutra_client_close(cl);
	sutra_reader_close(r);
	ck_assert_ok(tdaemon_stop(&d));
	tdaemon_cleanup(&d);
}
END_TEST

/* A corrupt published block: open says so, and nothing crashes. */
START_TEST(test_reader_corrupt_file_is_an_error)
{
	struct tstore t;
	char path[] = "/tmp/sutra-reader-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_ok(tstore_build(&t));
	t.buf[t.counts[1].published_end + 80] ^= 0xFF; /* inside epoch 2's block */
	ck_assert_ok(tstore_write(&t, path));
	sutra_reader *r;
	ck_assert_err(sutra_reader_open(path, &r), SUTRA_ECORRUPT);
	/* The clean file opens, and reads the deterministic store. */
	t.buf[t.counts[1].published_end + 80] ^= 0xFF;
	ck_assert_ok(tstore_write(&t, path));
	ck_assert_ok(sutra_reader_open(path, &r));
	sutra_snapshot *s;
	ck_assert_ok(sutra_snapshot_acquire(r, 4, &s));
	ck_assert_uint_eq(sutra_snapshot_epoch(s), 4);
	struct sutra_reader_stats st;
	sutra_snapshot_stats(s, &st);
	ck_assert_uint_eq(st.concept_count, 3);
	ck_assert_err(sutra_snapshot_acquire(r, 5, &s), -EAGAIN);
	sutra_snapshot_release(s);
	sutra_reader_close(r);
	tstore_finish(&t);
	unlink(path);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--once") == 0)
		return once_main(argv[2]);
	if (argc == 3 && strcmp(argv[1], "--ryw") == 0)
		return ryw_main(argv[2]);
	if (argc == 5 && strcmp(argv[1], "--writer") == 0)
		return writer_main(argv[2], atoi(argv[3]), (uint32_t)atoi(argv[4]));
	if (argc == 4 && strcmp(argv[1], "--reader") == 0)
		return reader_main(argv[2], atoi(argv[3]));

	Suite *s = suite_create("reader");
	TCase *tc = tcase_create("reader");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_reader_read_your_writes_across_processes);
	tcase_add_test(tc, test_reader_snapshots_never_see_part_of_a_batch);
	tcase_add_test(tc, test_reader_corrupt_file_is_an_error);
	tcase_add_test(tc, test_reader_neighbors_by_snapshot);
	tcase_add_test(tc, test_reader_shortest_paths);
	tcase_add_test(tc, test_reader_notices);
	suite_add_tcase(s, tc);
	return tcheck_run_suite(s);
}
