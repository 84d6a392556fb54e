/* SPDX-License-Identifier: MIT */
/* Crash test: kill -9 the real coordinator during a stream of sync batches, restart, and check durability and atomicity in the file. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "layout/layout.h"
#include "sutra/client.h"
#include "sutra/reader.h"
#include "tests/common/daemon.h"
#include "tests/common/tcheck.h"
#include "util/endian.h"
#include "util/idmap.h"

/*
 * How it works. Each iteration starts the coordinator (default sync
 * durability; even iterations with the default io_uring backend, odd ones
 * with --io sync), starts NWRITERS writer processes, lets them stream
 * batches, kills the coordinator with SIGKILL at a random moment, restarts
 * it (which recovers the file), stops it cleanly and checks the whole log.
 *
 * Writers are this very binary, run with "--writer ..." through fork() and
 * execv("/proc/self/exe"): nng is not fork-safe and the parent has used it
 * (tdaemon_start pings the coordinator), so a forked child must exec
 * before it touches nng. A writer sends one batch per request; the batch,
 * its concepts' ids and every byte of their content are a deterministic
 * function of (writer, batch number), so the checker can recompute them.
 * For each acknowledged batch the writer appends "writer batch epoch\n" to
 * its own ack file with one write(2): nothing waits in a buffer when the
 * writer is killed.
 *
 * The checker walks every commit block of the published log. Within one
 * block, a batch that has any record must have all of them: its n concepts
 * and its m associations, each with exactly the expected bytes (a batch is
 * applied in one epoch, all or nothing). Every acknowledged batch must be in
 * the block of the epoch its acknowledgement named (sync mode acknowledges
 * only after fdatasync). No batch may be applied twice, not even when a
 * writer resends it to the coordinator of the next run (the iterations
 * whose writers live through the restart): the request marker each commit
 * block carries for each request lets the restarted coordinator answer the
 * resend instead (FORMAT.md 8.5). Every applied batch has one marker.
 *
 * Some iterations add two twists: the writers survive the kill and keep
 * writing (resending) to the restarted coordinator, and the coordinator is
 * killed a second time during its start-up recovery.
 *
 * The file is checked with the coordinator stopped by SIGTERM, as systemd
 * stops it: layout_open (no fall-back), layout_verify, the walk above and
 * the meta's counts. A stop that takes more than STOP_WAIT_MS is a failure
 * of its own, reported at the end with the hung threads' stacks (when gdb
 * is installed); the coordinator is then killed and the test goes on, so
 * that one bug does not hide the others. At the end sutra-layoutdump
 * --verify must pass.
 *
 * Environment: SUTRA_CRASH_ITERATIONS (default 50), SUTRA_CRASH_SEED (to
 * replay a run; the seed is printed), SUTRA_CRASH_BUDGET_S (wall-clock
 * budget, default 480 s: past it the test stops early and says so).
 */

#define NWRITERS 4
#define DIM 16                 /* the store's vector dimension */
#define BATCH_STRIDE 10000000u /* batch numbers of iteration i start at i * BATCH_STRIDE */
#define MAX_PROBLEMS 20

/* ---- The deterministic workload (shared by writers and checker) --------- */

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t bhash(uint32_t w, uint64_t b, uint32_t salt)
{
	return mix64(mix64(((uint64_t)w << 56) ^ b) ^ ((uint64_t)salt * 0x2545f4914f6cdd1dull));
}

/* Concepts in batch (w, b): 3..8. */
static uint32_t batch_n(uint32_t w, uint64_t b)
{
	return 3 + (uint32_t)(bhash(w, b, 1000) % 6);
}

/* Associations in batch (w, b): 1..3, association j going from concept j
 * to concept j + 1. */
static uint32_t batch_m(uint32_t w, uint64_t b)
{
	uint32_t m = 1 + (uint32_t)(bhash(w, b, 1001) % 3);
	uint32_t n = batch_n(w, b);
	return m < n - 1 ? m : n - 1;
}

static void concept_id(uint32_t w, uint64_t b, uint32_t k, uint8_t id[16])
{
	memcpy(id, "CRSH", 4);
	util_put_le32(id + 4, w);
	util_put_le64(id + 8, (b << 8) | k);
}

/* Decodes an id made by concept_id(); 0 if it is not one. */
static int parse_id(const uint8_t id[16], uint32_t *w, uint64_t *b, uint32_t *k)
{
	if (memcmp(id, "CRSH", 4) != 0)
		return 0;
	*w = util_get_le32(id + 4);
	uint64_t v = util_get_le64(id + 8);
	*b = v >> 8;
	*k = (uint32_t)(v & 0xff);
	return 1;
}

static uint32_t fnv1a(const char *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 16777619u;
	}
	return h;
}

/* Everything a concept of the workload carries. */
struct want_concept {
	uint8_t id[16];
	char content[256];
	size_t content_len;
	float strength, confidence;
	int has_embedding;
	float embedding[DIM];
	char metadata[64];
	size_t metadata_len;
};

/* "w<w> b<b> i<k>/<n> <filler> #<fnv1a of what precedes>" */
static void want_concept(uint32_t w, uint64_t b, uint32_t k, struct want_concept *c)
{
	uint32_t n = batch_n(w, b);
	uint64_t h = bhash(w, b, k);
	memset(c, 0, sizeof *c);
	concept_id(w, b, k, c->id);
	int len = snprintf(c->content, sizeof c->content, "w%u b%" PRIu64 " i%u/%u ", w, b, k, n);
	size_t filler = 8 + (size_t)(h % 120);
	for (size_t i = 0; i < filler; i++)
		c->content[len++] = (char)('a' + mix64(h + i) % 26);
	len += snprintf(c->content + len, sizeof c->content - (size_t)len, " #%08x",
			fnv1a(c->content, (size_t)len));
	c->content_len = (size_t)len;
	c->strength = 0.5f + (float)k / 16.0f;
	c->confidence = 1.0f - (float)k / 32.0f;
	c->has_embedding = (int)((h >> 20) & 1);
	for (uint32_t i = 0; i < DIM; i++)
		c->embedding[i] = (float)(mix64(h ^ (i + 1)) >> 40) / 16777216.0f - 0.5f;
	if (k == 0)
		c->metadata_len = (size_t)snprintf(c->metadata, sizeof c->metadata,
						   "{\"w\":%u,\"b\":%" PRIu64 "}", w, b);
}

static uint8_t assoc_type(uint64_t b, uint32_t j)
{
	return (uint8_t)((b + j) % 5);
}

static float assoc_confidence(uint32_t j)
{
	return 0.25f * (float)(j + 1);
}

static float assoc_weight(uint32_t j)
{
	return 1.0f + (float)j;
}

/* ---- Writer process ----------------------------------------------------- */

static int build_batch(sutra_batch *bt, uint32_t w, uint64_t b)
{
	uint32_t n = batch_n(w, b), m = batch_m(w, b);
	struct want_concept c;
	int rc;

	sutra_batch_clear(bt);
	for (uint32_t k = 0; k < n; k++) {
		want_concept(w, b, k, &c);
		struct sutra_concept_in in = {
			.id = c.id,
			.content = c.content,
			.content_len = c.content_len,
			.embedding = c.has_embedding ? c.embedding : NULL,
			.vector_dim = c.has_embedding ? DIM : 0,
			.strength = c.strength,
			.confidence = c.confidence,
			.metadata = c.metadata_len ? c.metadata : NULL,
			.metadata_len = c.metadata_len,
		};
		if ((rc = sutra_batch_learn_concept(bt, &in)))
			return rc;
	}
	for (uint32_t j = 0; j < m; j++) {
		uint8_t src[16], dst[16];
		concept_id(w, b, j, src);
		concept_id(w, b, j + 1, dst);
		if ((rc = sutra_batch_learn_association(bt, src, dst, assoc_type(b, j),
							assoc_confidence(j), assoc_weight(j))))
			return rc;
	}
	return 0;
}

/* argv: --writer URL WRITER START_BATCH ACKFILE. Writes batches until a
 * write fails (exit 0 when the coordinator is simply gone, 3 on any other
 * error) or it is killed. */
static int writer_main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: --writer URL WRITER START_BATCH ACKFILE\n");
		return 2;
	}
	const char *url = argv[2];
	uint32_t w = (uint32_t)strtoul(argv[3], NULL, 10);
	uint64_t b = strtoull(argv[4], NULL, 10);
	int fd = open(argv[5], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "writer %u: cannot open %s: %s\n", w, argv[5], strerror(errno));
		return 3;
	}
	struct sutra_client_options o;
	sutra_client_options_init(&o);
	o.timeout_ms = 2000;
	o.resend_ms = 200;
	o.reconnect_min_ms = 5;
	o.reconnect_max_ms = 50;
	sutra_client *c;
	int rc = sutra_client_connect(url, &o, &c);
	if (rc) {
		fprintf(stderr, "writer %u: connect: %s\n", w, sutra_strerror(rc));
		return 3;
	}
	sutra_batch *bt = sutra_batch_create();
	if (!bt)
		return 3;
	for (uint64_t end = b + BATCH_STRIDE / 2; b < end; b++) {
		if ((rc = build_batch(bt, w, b))) {
			fprintf(stderr, "writer %u: building batch %" PRIu64 ": %s\n", w, b,
				sutra_strerror(rc));
			return 3;
		}
		uint64_t epoch = 0;
		rc = sutra_client_commit(c, bt, &epoch);
		if (rc == SUTRA_EUNAVAIL)
			break;
		if (rc) {
			fprintf(stderr, "writer %u: batch %" PRIu64 " failed: %s (%s, op %d)\n", w,
				b, sutra_strerror(rc), sutra_client_last_error(c),
				sutra_client_last_error_index(c));
			return 3;
		}
		char line[96];
		int len = snprintf(line, sizeof line, "%u %" PRIu64 " %" PRIu64 "\n", w, b, epoch);
		if (write(fd, line, (size_t)len) != len) {
			fprintf(stderr, "writer %u: ack file: %s\n", w, strerror(errno));
			return 3;
		}
	}
	sutra_batch_destroy(bt);
	sutra_client_close(c);
	close(fd);
	return 0;
}

/* ---- Parent: processes, time, randomness -------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state += 0x9e3779b97f4a7c15ull;
	return mix64(rng_state);
}

/* Uniform in [lo, hi]. */
static uint64_t rnd_range(uint64_t lo, uint64_t hi)
{
	return lo + rnd() % (hi - lo + 1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = { (time_t)(us / 1000000), (long)(us % 1000000) * 1000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static pid_t start_writer(const char *url, uint32_t w, uint64_t start, const char *ackfile)
{
	char ws[16], ss[32];
	snprintf(ws, sizeof ws, "%u", w);
	snprintf(ss, sizeof ss, "%" PRIu64, start);
	const char *argv[] = { "test_int_crash", "--writer", url, ws, ss, ackfile, NULL };
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		/* Only async-signal-safe calls until exec. A writer outliving a
		 * crashed test would write to a store nobody checks. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		execv("/proc/self/exe", (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* Kills (unless already gone) and reaps a writer; returns its exit code,
 * or -1 when it died by a signal. */
static int reap_writer(pid_t pid, int kill9)
{
	int st;
	if (kill9)
		kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : 0;
}

/* ---- Acknowledgements ---------------------------------------------------- */

struct ack {
	uint32_t w;
	uint64_t b;
	uint64_t epoch;
	int iteration;
};

static struct ack *acks;
static size_t nacks, acks_cap;

/* Appends the complete lines of an ack file to acks. */
static void read_acks(const char *path, int iteration)
{
	FILE *f = fopen(path, "r");
	char line[128];
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		if (!strchr(line, '\n'))
			break; /* a torn last line cannot happen with write(2), but be safe */
		struct ack a = { .iteration = iteration };
		if (sscanf(line, "%" SCNu32 " %" SCNu64 " %" SCNu64, &a.w, &a.b, &a.epoch) != 3)
			ck_abort_msg("bad line in %s: %s", path, line);
		if (nacks == acks_cap) {
			acks_cap = acks_cap ? 2 * acks_cap : 4096;
			acks = realloc(acks, acks_cap * sizeof *acks);
			ck_assert_ptr_nonnull(acks);
		}
		acks[nacks++] = a;
	}
	fclose(f);
}

/* ---- Checking the file --------------------------------------------------- */

struct check_ctx {
	int iteration;
	uint64_t seed;
	const char *io;
	const int *survived; /* per iteration: writers lived through the restart */
	int problems;
	/* filled by the walk */
	struct util_idmap found;  /* 'B' w b -> occurrences of the batch */
	struct util_idmap placed; /* 'E' w b epoch -> 1 */
	uint64_t distinct, occurrences, blocks, records, markers;
	uint64_t want_concepts, want_assocs;
};

static void problem(struct check_ctx *cx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void problem(struct check_ctx *cx, const char *fmt, ...)
{
	cx->problems++;
	if (cx->problems > MAX_PROBLEMS)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "CRASH TEST FAILURE (iteration %d, %s I/O, seed %" PRIu64 "): ",
		cx->iteration, cx->io, cx->seed);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void key_batch(unsigned char key[16], uint32_t w, uint64_t b)
{
	memset(key, 0, 16);
	key[0] = 'B';
	util_put_le32(key + 1, w);
	util_put_le64(key + 5, b);
}

static void key_epoch(unsigned char key[16], uint32_t w, uint64_t b, uint64_t epoch)
{
	/* writer < 2^8 and batch < 2^48 in this test */
	memset(key, 0, 16);
	key[0] = 'E';
	key[1] = (unsigned char)w;
	util_put_le64(key + 2, b); /* bytes 8 and 9 are zero, then overwritten */
	util_put_le64(key + 8, epoch);
}

/* A batch's records within one commit block. */
struct seen {
	uint32_t w;
	uint64_t b;
	uint32_t concepts; /* bit k: concept k */
	uint32_t assocs;   /* bit j: association j */
};

static struct seen *seen_get(struct seen **tab, size_t *len, size_t *cap, uint32_t w, uint64_t b)
{
	for (size_t i = 0; i < *len; i++)
		if ((*tab)[i].w == w && (*tab)[i].b == b)
			return &(*tab)[i];
	if (*len == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		*tab = realloc(*tab, *cap * sizeof **tab);
		ck_assert_ptr_nonnull(*tab);
	}
	struct seen *s = &(*tab)[(*len)++];
	*s = (struct seen){ .w = w, .b = b };
	return s;
}

static int plausible(uint32_t w, uint64_t b, int iterations_so_far)
{
	return w < NWRITERS && b < (uint64_t)iterations_so_far * BATCH_STRIDE;
}

static void check_concept(struct check_ctx *cx, const struct layout_block *blk,
			  const struct layout_record *rec, struct seen **tab, size_t *len,
			  size_t *cap)
{
	const struct layout_concept *c = &rec->u.concept;
	uint32_t w, k;
	uint64_t b;
	char hex[33];
	for (int i = 0; i < 16; i++) {
		hex[2 * i] = "0123456789abcdef"[c->id[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[c->id[i] & 15];
	}
	hex[32] = 0;
	if (!parse_id(c->id, &w, &b, &k) || !plausible(w, b, cx->iteration + 1) ||
	    k >= batch_n(w, b)) {
		problem(cx, "epoch %" PRIu64 ": a concept %s at offset %" PRIu64
			    " that no writer sent",
			blk->epoch, hex, rec->offset);
		return;
	}
	struct seen *s = seen_get(tab, len, cap, w, b);
	if (s->concepts & (1u << k))
		problem(cx, "epoch %" PRIu64 ": concept %u of batch w%u b%" PRIu64
			    " twice in one commit block",
			blk->epoch, k, w, b);
	s->concepts |= 1u << k;

	struct want_concept want;
	want_concept(w, b, k, &want);
	if (c->content_len != want.content_len ||
	    memcmp(c->content, want.content, want.content_len) != 0)
		problem(cx, "epoch %" PRIu64 ": concept %s (w%u b%" PRIu64 " i%u): content \"%.*s\""
			    " differs from \"%s\"",
			blk->epoch, hex, w, b, k, (int)(c->content_len < 200 ? c->content_len : 200),
			c->content, want.content);
	if (c->strength != want.strength || c->confidence != want.confidence)
		problem(cx, "epoch %" PRIu64 ": concept %s: strength %g confidence %g, want %g %g",
			blk->epoch, hex, (double)c->strength, (double)c->confidence,
			(double)want.strength, (double)want.confidence);
	if (c->metadata_len != want.metadata_len ||
	    (want.metadata_len && memcmp(c->metadata, want.metadata, want.metadata_len) != 0))
		problem(cx, "epoch %" PRIu64 ": concept %s: metadata differs (%u bytes, want %zu)",
			blk->epoch, hex, c->metadata_len, want.metadata_len);
	if (!want.has_embedding != !c->embedding) {
		problem(cx, "epoch %" PRIu64 ": concept %s: embedding %s, want %s", blk->epoch, hex,
			c->embedding ? "present" : "absent", want.has_embedding ? "one" : "none");
	} else if (c->embedding) {
		const unsigned char *e = c->embedding;
		if (c->vector_dim != DIM)
			problem(cx, "epoch %" PRIu64 ": concept %s: dimension %u", blk->epoch, hex,
				c->vector_dim);
		else
			for (uint32_t i = 0; i < DIM; i++)
				if (util_get_lef32(e + 4 * i) != want.embedding[i]) {
					problem(cx, "epoch %" PRIu64 ": concept %s: embedding[%u] "
						    "is %g, want %g",
						blk->epoch, hex, i, (double)util_get_lef32(e + 4 * i),
						(double)want.embedding[i]);
					break;
				}
	}
}

static void check_assoc(struct check_ctx *cx, const struct layout_block *blk,
			const struct layout_record *rec, struct seen **tab, size_t *len,
			size_t *cap)
{
	const struct layout_association *a = &rec->u.association;
	uint32_t w, k, w2, k2;
	uint64_t b, b2;
	if (!parse_id(a->src, &w, &b, &k) || !parse_id(a->dst, &w2, &b2, &k2) || w != w2 ||
	    b != b2 || !plausible(w, b, cx->iteration + 1) || k2 != k + 1 || k >= batch_m(w, b)) {
		problem(cx, "epoch %" PRIu64 ": an association at offset %" PRIu64
			    " that no writer sent",
			blk->epoch, rec->offset);
		return;
	}
	uint32_t j = k;
	struct seen *s = seen_get(tab, len, cap, w, b);
	if (s->assocs & (1u << j))
		problem(cx, "epoch %" PRIu64 ": association %u of batch w%u b%" PRIu64
			    " twice in one commit block",
			blk->epoch, j, w, b);
	s->assocs |= 1u << j;
	if (a->type != assoc_type(b, j) || a->confidence != assoc_confidence(j) ||
	    a->weight != assoc_weight(j))
		problem(cx, "epoch %" PRIu64 ": association %u of batch w%u b%" PRIu64
			    ": type %u confidence %g weight %g, want %u %g %g",
			blk->epoch, j, w, b, a->type, (double)a->confidence, (double)a->weight,
			assoc_type(b, j), (double)assoc_confidence(j), (double)assoc_weight(j));
}

/* The batches of one commit block: each complete, then counted. */
static void close_block(struct check_ctx *cx, const struct layout_block *blk, struct seen *tab,
			size_t len)
{
	for (size_t i = 0; i < len; i++) {
		const struct seen *s = &tab[i];
		uint32_t n = batch_n(s->w, s->b), m = batch_m(s->w, s->b);
		uint32_t want_c = (1u << n) - 1, want_a = (1u << m) - 1;
		if (s->concepts != want_c || s->assocs != want_a)
			problem(cx, "HALF-PRESENT batch w%u b%" PRIu64 " in epoch %" PRIu64
				    " (block at offset %" PRIu64 "): concepts mask 0x%02x of 0x%02x,"
				    " associations mask 0x%x of 0x%x",
				s->w, s->b, blk->epoch, blk->offset, s->concepts, want_c, s->assocs,
				want_a);
		unsigned char key[16];
		uint64_t count = 0;
		key_batch(key, s->w, s->b);
		if (!util_idmap_get(&cx->found, key, &count)) {
			cx->distinct++;
			cx->want_concepts += n;
			cx->want_assocs += m;
		}
		ck_assert_ok(util_idmap_put(&cx->found, key, count + 1));
		key_epoch(key, s->w, s->b, blk->epoch);
		ck_assert_ok(util_idmap_put(&cx->placed, key, 1));
		cx->occurrences++;
		/* Never twice, even when the writers resent it to a restarted
		 * coordinator: the log's request markers let it recognise the
		 * resend (FORMAT.md 8.5). */
		int it = (int)(s->b / BATCH_STRIDE);
		if (count == 1)
			problem(cx, "batch w%u b%" PRIu64 " (sent in iteration %d%s) was applied"
				    " twice: again in epoch %" PRIu64,
				s->w, s->b, it,
				cx->survived[it] ? ", resent to the restarted coordinator" : "",
				blk->epoch);
	}
}

/* Frees the maps of the last walk (idempotent). */
static void check_done(struct check_ctx *cx)
{
	util_idmap_finish(&cx->found);
	util_idmap_finish(&cx->placed);
}

/* Checks storage.dat after a restart and a clean stop. */
static void check_file(struct check_ctx *cx, const char *path)
{
	struct layout_map map;
	struct layout_view v;
	struct sutra_detail pb;
	int rc;

	check_done(cx); /* the previous iteration's maps */
	util_idmap_init(&cx->found);
	util_idmap_init(&cx->placed);
	cx->distinct = cx->occurrences = cx->blocks = cx->records = cx->markers = 0;
	cx->want_concepts = cx->want_assocs = 0;

	if ((rc = layout_map_open(path, &map))) {
		problem(cx, "cannot map %s: %s", path, strerror(-rc));
		return;
	}
	if ((rc = layout_open(map.base, map.size, &v, &pb))) {
		problem(cx, "layout_open: %s at offset %" PRIu64, pb.what, pb.offset);
		goto out;
	}
	if (v.fell_back)
		problem(cx, "after a recovery and a clean stop, layout_open still falls back: %s"
			    " at offset %" PRIu64,
			v.fallback_problem.what, v.fallback_problem.offset);
	if ((rc = layout_verify(&v, NULL, &pb)))
		problem(cx, "layout_verify: %s at offset %" PRIu64, pb.what, pb.offset);

	/* Walk the published log (only below published_end). */
	uint64_t end = v.meta.published_end;
	struct seen *tab = NULL;
	size_t len = 0, cap = 0;
	for (uint64_t off = v.sb.data_offset; off < end;) {
		struct layout_block blk;
		if ((rc = layout_block_decode(map.base, end, off, &blk, &pb)) ||
		    (rc = layout_block_check_payload(map.base, &blk, &pb))) {
			problem(cx, "published block at offset %" PRIu64 ": %s at offset %" PRIu64,
				off, pb.what, pb.offset);
			break;
		}
		cx->blocks++;
		if (blk.type == LAYOUT_BLOCK_COMMIT) {
			struct layout_record_iter it;
			struct layout_record rec;
			layout_records_init(&it, map.base, &blk, v.sb.vector_dim);
			len = 0;
			while ((rc = layout_records_next(&it, &rec, &pb)) == 1) {
				cx->records++;
				if (rec.type == LAYOUT_REC_CONCEPT)
					check_concept(cx, &blk, &rec, &tab, &len, &cap);
				else if (rec.type == LAYOUT_REC_ASSOCIATION)
					check_assoc(cx, &blk, &rec, &tab, &len, &cap);
				else if (rec.type == LAYOUT_REC_REQUEST)
					cx->markers++;
				else
					problem(cx, "epoch %" PRIu64 ": a delete record (type %u) "
						    "at offset %" PRIu64 "; nobody deletes",
						blk.epoch, rec.type, rec.offset);
			}
			if (rc < 0)
				problem(cx, "epoch %" PRIu64 ": record: %s at offset %" PRIu64,
					blk.epoch, pb.what, pb.offset);
			close_block(cx, &blk, tab, len);
		}
		off += blk.length;
	}
	free(tab);

	/* Every applied batch carries its request marker, and nothing else. */
	if (cx->markers != cx->occurrences)
		problem(cx, "%" PRIu64 " request markers for %" PRIu64 " applied batches",
			cx->markers, cx->occurrences);

	/* Nothing is ever deleted: the live counts are what the batches hold. */
	if (v.meta.concept_count != cx->want_concepts ||
	    v.meta.association_count != cx->want_assocs)
		problem(cx, "meta counts %" PRIu64 " concepts, %" PRIu64 " associations; the log's"
			    " distinct batches hold %" PRIu64 " and %" PRIu64,
			v.meta.concept_count, v.meta.association_count, cx->want_concepts,
			cx->want_assocs);

	/* Durability: every acknowledged batch, complete, in the epoch named. */
	for (size_t i = 0; i < nacks; i++) {
		const struct ack *a = &acks[i];
		unsigned char key[16];
		key_epoch(key, a->w, a->b, a->epoch);
		if (util_idmap_get(&cx->placed, key, NULL))
			continue;
		uint64_t count = 0;
		key_batch(key, a->w, a->b);
		util_idmap_get(&cx->found, key, &count);
		problem(cx, "LOST acknowledged batch w%u b%" PRIu64 " (acknowledged at epoch %" PRIu64
			    " in iteration %d): not in that epoch's block; present in %" PRIu64
			    " other block(s); store now at epoch %" PRIu64,
			a->w, a->b, a->epoch, a->iteration, count, v.meta.epoch);
	}
out:
	layout_map_close(&map);
}

/* Per batch (w, b): how many of its concepts a snapshot holds. */
struct tally {
	struct check_ctx *cx;
	struct util_idmap n;
};

static int tally_concept(void *arg, const struct sutra_concept_view *v)
{
	struct tally *t = arg;
	uint32_t w, k;
	uint64_t b, n = 0;
	unsigned char key[16];
	if (!parse_id(v->id, &w, &b, &k)) {
		problem(t->cx, "a concept that no writer made");
		return 0;
	}
	struct want_concept want;
	want_concept(w, b, k, &want);
	if (v->content_len != want.content_len || memcmp(v->content, want.content, want.content_len))
		problem(t->cx, "concept %u of batch w%u b%" PRIu64 " is torn", k, w, b);
	key_batch(key, w, b);
	util_idmap_get(&t->n, key, &n);
	util_idmap_put(&t->n, key, n + 1);
	return 0;
}

/*
 * The freed-log form of check_file(): the commit blocks that segments
 * cover are gone, so the store is checked through what readers see:
 * layout_verify (segments' state plus the tail, the counts of both meta
 * slots), no batch in part and none torn (iterating a snapshot), and
 * every acknowledged batch whole, with its associations. Whether a batch
 * was applied twice cannot be told once its blocks are gone (it would
 * show only as the same concepts rewritten).
 */
static uint64_t freed_log_starts; /* iterations whose store had freed its log */

static void check_store(struct check_ctx *cx, const char *path)
{
	struct layout_map map;
	struct layout_view v;
	struct sutra_detail pb;
	int rc;
	if ((rc = layout_map_open(path, &map))) {
		problem(cx, "cannot map %s: %s", path, strerror(-rc));
		return;
	}
	if ((rc = layout_open(map.base, map.size, &v, &pb)) ||
	    (rc = layout_verify(&v, NULL, &pb)))
		problem(cx, "open/verify: %s at offset %" PRIu64, pb.what, pb.offset);
	else
		freed_log_starts += v.meta.log_start > v.sb.data_offset;
	layout_map_close(&map);

	sutra_reader *r;
	sutra_snapshot *sn;
	if ((rc = sutra_reader_open(path, &r))) {
		problem(cx, "sutra_reader_open: %s", sutra_strerror(rc));
		return;
	}
	if ((rc = sutra_snapshot_acquire(r, 0, &sn))) {
		problem(cx, "sutra_snapshot_acquire: %s", sutra_strerror(rc));
		sutra_reader_close(r);
		return;
	}
	struct tally t = { .cx = cx };
	util_idmap_init(&t.n);
	if ((rc = sutra_snapshot_foreach(sn, tally_concept, &t)))
		problem(cx, "iteration: %s", sutra_strerror(rc));
	for (size_t i = 0; i < t.n.cap; i++) {
		const struct util_idmap_slot *sl = &t.n.slots[i];
		if (sl->state != 1)
			continue;
		uint32_t w = util_get_le32(sl->key + 1);
		uint64_t b = util_get_le64(sl->key + 5);
		if (sl->value != batch_n(w, b))
			problem(cx, "batch w%u b%" PRIu64 " is there in part: %" PRIu64 " of %u "
				    "concepts", w, b, sl->value, batch_n(w, b));
	}
	for (size_t i = 0; i < nacks; i++) {
		const struct ack *a = &acks[i];
		unsigned char key[16];
		uint64_t n = 0;
		key_batch(key, a->w, a->b);
		if (!util_idmap_get(&t.n, key, &n) || n != batch_n(a->w, a->b)) {
			problem(cx, "LOST acknowledged batch w%u b%" PRIu64 " (acknowledged at epoch "
				    "%" PRIu64 " in iteration %d)",
				a->w, a->b, a->epoch, a->iteration);
			continue;
		}
		/* Its associations: concept j -> j + 1. */
		for (uint32_t j = 0; j < batch_m(a->w, a->b); j++) {
			uint8_t from[16], to[16];
			struct sutra_neighbor nb[16];
			size_t got, total;
			int found = 0;
			concept_id(a->w, a->b, j, from);
			concept_id(a->w, a->b, j + 1, to);
			if (sutra_snapshot_neighbors(sn, from, assoc_type(a->b, j), SUTRA_DIR_OUT, 16,
						     nb, &got, &total) == 0)
				for (size_t q = 0; q < got; q++)
					found |= memcmp(nb[q].id, to, 16) == 0;
			if (!found)
				problem(cx, "acknowledged batch w%u b%" PRIu64 " lost association %u",
					a->w, a->b, j);
		}
	}
	util_idmap_finish(&t.n);
	sutra_snapshot_release(sn);
	sutra_reader_close(r);
}

/* ---- The test ------------------------------------------------------------ */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);
	return s && *s ? strtoull(s, NULL, 0) : dflt;
}

static int count_in_file(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	int n = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

static int run_layoutdump(const char *path)
{
	const char *bin = tdaemon_env("SUTRA_LAYOUTDUMP");
	pid_t pid = fork();
	if (pid == 0) {
		execl(bin, bin, "--verify", "--quiet", path, (char *)NULL);
		_exit(127);
	}
	int st;
	ck_assert_int_gt(pid, 0);
	while (waitpid(pid, &st, 0) < 0)
		ck_assert_int_eq(errno, EINTR);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Prints the thread stacks of a hung process when gdb is installed (the
 * frames with a name: enough to see which call does not return). */
static void print_stacks(pid_t pid, const char *dir)
{
	if (access("/usr/bin/gdb", X_OK) != 0)
		return;
	char out[400], spid[16];
	snprintf(out, sizeof out, "%s/stacks-%d.txt", dir, (int)pid);
	snprintf(spid, sizeof spid, "%d", (int)pid);
	pid_t g = fork();
	if (g == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			_exit(127);
		dup2(fd, 1);
		dup2(fd, 2);
		execl("/usr/bin/gdb", "gdb", "-nx", "-batch", "-p", spid, "-ex",
		      "thread apply all bt", (char *)NULL);
		_exit(127);
	}
	int st;
	if (g < 0 || waitpid(g, &st, 0) < 0)
		return;
	FILE *f = fopen(out, "r");
	char line[1024];
	if (!f)
		return;
	char thread[128] = "";
	fprintf(stderr, "--- named frames of the hung coordinator's threads (gdb) ---\n");
	while (fgets(line, sizeof line, f)) {
		const char *in = strstr(line, " in ");
		if (strncmp(line, "Thread ", 7) == 0) {
			/* Thread 16 (Thread 0x... (LWP 2015) "sutra-coordinat"): */
			const char *q = strchr(line, '"');
			q = q ? q + 1 : line;
			int num = 0, n = (int)strcspn(q, "\"\n");
			sscanf(line, "Thread %d", &num);
			snprintf(thread, sizeof thread, "thread %d %.*s", num, n < 64 ? n : 64, q);
		} else if (line[0] == '#' && in && in[4] != '?' && in[4] != '_' &&
			   !strstr(line, "start_thread") && !strstr(line, "clone3")) {
			fprintf(stderr, "  %s: %s", thread, line);
		}
	}
	fclose(f);
}

/* SIGTERM, as systemd stops the service. A clean stop takes milliseconds;
 * after STOP_WAIT_MS the coordinator counts as hung: its stacks are
 * printed, it is killed with SIGKILL (the file is then recovered like after
 * any crash) and -1 is returned. Otherwise returns its exit status. */
#define STOP_WAIT_MS 10000
static int stop_daemon(struct tdaemon *d)
{
	pid_t pid = d->pid;
	if (pid <= 0)
		return -2;
	kill(pid, SIGTERM);
	int rc = tdaemon_wait(d, STOP_WAIT_MS);
	if (rc >= 0)
		return rc;
	print_stacks(pid, d->dir);
	tdaemon_kill9(d);
	return -1;
}

START_TEST(test_crash_kill9_sync_writes)
{
	uint64_t iterations = env_u64("SUTRA_CRASH_ITERATIONS", 50);
	int freed_log = env_u64("SUTRA_TEST_FREED_LOG", 0) != 0;
	double budget = (double)env_u64("SUTRA_CRASH_BUDGET_S", 480);
	uint64_t seed = env_u64("SUTRA_CRASH_SEED", 0);
	if (!seed) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid());
	}
	rng_state = seed;
	printf("crash test: %" PRIu64 " iterations, %d writers, seed %" PRIu64
	       " (rerun with SUTRA_CRASH_SEED=%" PRIu64 ")\n",
	       iterations, NWRITERS, seed, seed);
	fflush(stdout);
	ck_assert_uint_ge(iterations, 1);
	ck_assert_uint_le(iterations, 100000);

	struct tdaemon d;
	ck_assert_ok(tdaemon_mkdir(&d));
	int *survived = calloc(iterations, sizeof *survived);
	ck_assert_ptr_nonnull(survived);
	int hangs = 0, first_hang = -1;
	struct check_ctx cx = { .seed = seed, .survived = survived };
	double t0 = now_s();
	int done = 0, recovery_kills = 0, survivor_iterations = 0, no_ack_iterations = 0;
	uint64_t acked_in_survivors = 0;
	uint64_t recovery_us = 5000; /* how long a recovering start took, last time */

	for (int it = 0; it < (int)iterations; it++) {
		if (now_s() - t0 > budget) {
			printf("crash test: STOPPING EARLY: the wall-clock budget of %.0f s is spent "
			       "after %d of %" PRIu64 " iterations (set SUTRA_CRASH_BUDGET_S)\n",
			       budget, it, iterations);
			break;
		}
		int uring = it % 2 == 0;
		const char *io = uring ? "io_uring" : "sync";
		/* The checker reads every batch from the commit blocks, so the
		 * log is kept whole, unless this is the freed-log run
		 * (SUTRA_TEST_FREED_LOG): then nothing of it is kept and the
		 * checker reads the store through libsutra-reader. */
		const char *keep = freed_log ? "0" : "1048576";
		const char *args_uring[] = { "--vector-dimension", "16", "--log-retention-mib",
					     keep, NULL };
		const char *args_sync[] = { "--vector-dimension", "16", "--io", "sync",
					    "--log-retention-mib", keep, NULL };
		const char *const *args = uring ? args_uring : args_sync;
		survived[it] = it % 3 == 2;
		int kill_in_recovery = it % 5 == 4;
		cx.iteration = it;
		cx.io = io;

		double t_it = now_s();
		ck_assert_msg(tdaemon_start(&d, args) == 0, "iteration %d: coordinator did not start",
			      it);

		char ackpath[NWRITERS][400];
		pid_t pids[NWRITERS];
		for (uint32_t w = 0; w < NWRITERS; w++) {
			snprintf(ackpath[w], sizeof ackpath[w], "%s/ack-%d-%u", d.dir, it, w);
			pids[w] = start_writer(d.url, w, (uint64_t)it * BATCH_STRIDE, ackpath[w]);
			ck_assert_int_gt(pids[w], 0);
		}
		/* Let the stream start (the first acknowledgement), then kill the
		 * coordinator at a random moment in it. */
		double ts = now_s();
		for (;;) {
			int any = 0;
			for (int w = 0; w < NWRITERS; w++)
				any |= file_size(ackpath[w]) > 0;
			if (any)
				break;
			if (now_s() - ts > 5) {
				no_ack_iterations++;
				printf("crash test: iteration %d: no acknowledgement 5 s after the "
				       "writers started\n",
				       it);
				break;
			}
			sleep_us(500);
		}
		uint64_t delay = rnd_range(20000, 150000);
		sleep_us(delay);
		tdaemon_kill9(&d);

		if (!survived[it])
			for (int w = 0; w < NWRITERS; w++) {
				int rc = reap_writer(pids[w], 1);
				ck_assert_msg(rc < 0 || rc == 0,
					      "iteration %d: writer %d exited with %d (see its error "
					      "above)",
					      it, w, rc);
			}

		if (kill_in_recovery) {
			/* Kill it again while it recovers (start-up, truncation, the
			 * recovery commit). */
			ck_assert_ok(tdaemon_spawn(&d, args));
			sleep_us(rnd_range(0, recovery_us));
			tdaemon_kill9(&d);
			recovery_kills++;
		}

		double rs = now_s();
		int started = tdaemon_start(&d, args);
		/* The next kill during recovery lands somewhere in a start of this length. */
		recovery_us = (uint64_t)((now_s() - rs) * 1e6);
		ck_assert_msg(started == 0,
			      "iteration %d (seed %" PRIu64 "): coordinator did not recover after "
			      "kill -9",
			      it, seed);

		if (survived[it]) {
			/* The writers resend to the new run and go on for a while. */
			sleep_us(rnd_range(20000, 80000));
			for (int w = 0; w < NWRITERS; w++) {
				int rc = reap_writer(pids[w], 1);
				ck_assert_msg(rc < 0 || rc == 0,
					      "iteration %d: writer %d exited with %d (see its error "
					      "above)",
					      it, w, rc);
			}
		}
		double t_stop = now_s();
		int st = stop_daemon(&d);
		t_stop = now_s() - t_stop;
		if (st == -1) {
			/* A shutdown hang is a bug of its own; report it, and go on
			 * testing crash safety (the file is recovered as after a
			 * crash when the next iteration starts). */
			fprintf(stderr, "CRASH TEST FAILURE (iteration %d, %s I/O, seed %" PRIu64
					"): sutra-coordinator did not exit within %d ms of SIGTERM "
					"(writers %s); killed it with SIGKILL\n",
				it, io, seed, STOP_WAIT_MS,
				survived[it] ? "had written to it and were killed before"
					     : "never wrote to this run");
			if (!hangs++)
				first_hang = it;
		} else {
			ck_assert_msg(st == 0, "iteration %d: coordinator exited with %d on SIGTERM",
				      it, st);
		}

		size_t before = nacks;
		for (int w = 0; w < NWRITERS; w++)
			read_acks(ackpath[w], it);
		if (survived[it]) {
			acked_in_survivors += nacks - before;
			survivor_iterations++;
		}

		double t_check = now_s();
		if (freed_log)
			check_store(&cx, d.data);
		else
			check_file(&cx, d.data);
		t_check = now_s() - t_check;
		printf("iteration %2d: %-8s kill after %3" PRIu64 " ms%s%s: %4zu acked, %" PRIu64
		       " epochs, %" PRIu64 " batches in the log, %" PRIu64 " occurrences\n",
		       it, io, delay / 1000, survived[it] ? ", writers survive" : "",
		       kill_in_recovery ? ", killed in recovery" : "", nacks - before, cx.blocks,
		       cx.distinct, cx.occurrences);
		printf("              %.0f ms: recovering start %.0f ms, stop %.0f ms, check %.0f ms\n",
		       (now_s() - t_it) * 1e3, recovery_us / 1e3, t_stop * 1e3, t_check * 1e3);
		fflush(stdout);
		if (cx.problems) {
			check_done(&cx);
			ck_abort_msg("iteration %d (%s I/O, seed %" PRIu64 "): %d problem(s) in %s; "
				     "see the CRASH TEST FAILURE lines above (coordinator log: %s)",
				     it, io, seed, cx.problems, d.data, d.log);
		}
		done++;
	}

	int dump = run_layoutdump(d.data);
	ck_assert_msg(dump == 0, "sutra-layoutdump --verify failed with %d on %s", dump, d.data);

	double wall = now_s() - t0;
	int n_uring = count_in_file(d.log, "I/O io_uring");
	int n_pwrite = count_in_file(d.log, "I/O pwrite");
	printf("crash test summary: %d iterations (%d with a kill during recovery, %d with "
	       "writers living through the restart) in %.1f s, seed %" PRIu64 "\n"
	       "  acknowledged batches: %zu (%" PRIu64 " in survivor iterations)\n"
	       "  batches in the log: %" PRIu64 " distinct, %" PRIu64 " occurrences (%" PRIu64
	       " applied twice), %" PRIu64 " never acknowledged\n"
	       "  log: %" PRIu64 " blocks, %" PRIu64 " records; recoveries that discarded a "
	       "tail: %d, rejected the newest slot: %d, cleared a slot: %d\n"
	       "  starts that opened the store: %d with io_uring, %d with pwrite (%d killed in "
	       "recovery before that); iterations without an ack: %d; clean stops that hung: %d\n",
	       done, recovery_kills, survivor_iterations, wall, seed, nacks, acked_in_survivors,
	       cx.distinct, cx.occurrences, cx.occurrences - cx.distinct,
	       cx.distinct - (uint64_t)nacks, cx.blocks, cx.records,
	       count_in_file(d.log, "recovery: discarding"),
	       count_in_file(d.log, "recovery: newest meta slot rejected"),
	       count_in_file(d.log, "recovery: clearing meta slot"),
	       n_uring, n_pwrite, 2 * done + recovery_kills - n_uring - n_pwrite,
	       no_ack_iterations, hangs);
	fflush(stdout);
	check_done(&cx);
	free(survived);
	tdaemon_cleanup(&d);
	free(acks);
	acks = NULL;
	nacks = acks_cap = 0;
	ck_assert_int_gt(done, 0);
	if (freed_log) {
		/* The run must have freed flushed log, or it tested nothing new. */
		printf("crash test: the store had freed its flushed log in %" PRIu64
		       " of %d checks\n", freed_log_starts, done);
		ck_assert_uint_gt(freed_log_starts, 0);
	}
	ck_assert_msg(no_ack_iterations == 0,
		      "%d iteration(s) where no writer got an acknowledgement within 5 s",
		      no_ack_iterations);
	ck_assert_msg(hangs == 0,
		      "sutra-coordinator hung on SIGTERM in %d of %d clean stops (first in "
		      "iteration %d; seed %" PRIu64 "); see the CRASH TEST FAILURE lines and stacks "
		      "above. Durability and atomicity held in all %d iterations.",
		      hangs, done, first_hang, seed, done);
}
END_TEST

int main(int argc, char **argv)
{
	/* A writer process: before Check, before anything touches nng. */
	if (argc > 1 && strcmp(argv[1], "--writer") == 0)
		return writer_main(argc, argv);

	Suite *s = suite_create("integration");
	TCase *tc = tcase_create("crash");
	tcase_set_timeout(tc, 1100);
	tcase_add_test(tc, test_crash_kill9_sync_writes);
	suite_add_tcase(s, tc);
	return tcheck_run_suite(s);
}
