/* SPDX-License-Identifier: MIT */
/* sutra-bench-coord: write-path latency and throughput of sutra-coordinator, side by side with its anchors. */

/*
 * One run measures, on one filesystem (a temporary directory under --dir):
 *
 *   anchors   a bare 4 KiB pwrite + fdatasync loop, appending; redis-server
 *             SET with appendfsync always and without persistence; LMDB
 *             one-put commits, synced and MDB_NOSYNC; a raw nng REQ/REP ping
 *             over ipc://. For information: fdatasync into preallocated
 *             space, the coordinator's own I/O pattern without the
 *             coordinator, and a REP server answering from its own thread;
 *   learns    single learn_concept round trips against sutra-coordinator,
 *             1, 4 and 16 client processes, sync and relaxed;
 *   batches   1,000 concepts per request, relaxed, 1 and 4 clients;
 *
 * and prints the ratios the goals are stated in, each marked PASS or MISS.
 *
 * The machine's speed drifts (shared hosts, other work), so the lines a
 * goal compares are measured in rounds: one coordinator per round, and
 * SLICES short slices of each line in rotating order (fdatasync, 1, 4, 16
 * clients, fdatasync, 4, 16, 1, ...), merged per line.
 *
 * nng is not fork-safe (DESIGN.md, "Known traps"), so this process never
 * touches nng: every nng user (the clients, the raw ping servers and client,
 * the stats query) is this same binary exec'd with a hidden mode argument.
 * The anchors that need no nng (fdatasync, LMDB) run in this process.
 * Clients start together: each one connects and warms up, writes a byte to
 * a "ready" pipe, and blocks on a "go" pipe that the parent closes once all
 * are ready. Each client runs for the same number of seconds, measures its
 * own latencies and CPU time and writes them to a file the parent merges.
 */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#ifdef BENCH_HAVE_LMDB
#include <lmdb.h>
#endif

#include "bench/benchutil.h"
#include "sutra/client.h"
#include "sutra/errors.h"
#include "util/grow.h"

const char *bench_name = "sutra-bench-coord";

#define CONTENT_LEN 100u     /* bytes of content per concept */
#define LEARN_WIRE_LEN 172u  /* request header 32 + concept fixed 40 + content 100 */
#define REPLY_WIRE_LEN 40u   /* reply header */
#define BATCH_SIZE 1000u     /* concepts per batched request */
#define RESULT_MAGIC 0x5355545241424e43ull
#define READY_TIMEOUT_MS 60000
#define SLICES 4             /* interleaved slices per line in a round */

/* ---- Small helpers ------------------------------------------------------ */

static void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warnx_(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "sutra-bench-coord: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Nearest-rank percentile of a sorted array, in microseconds. */
/* A growing array of latencies in nanoseconds. */
struct lat {
	uint32_t *v;
	size_t n, cap;
};

static void lat_add(struct lat *l, uint64_t ns)
{
	if (UTIL_GROW(l->v, l->cap, l->n + 1, 65536))
		die("out of memory");
	l->v[l->n++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

/* user + system CPU seconds of this process (all its threads). */
static double cpu_self(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* Fills the 100-byte content of concept number k. */
static void fill_content(char *buf, unsigned client, uint64_t k)
{
	static const char filler[] = "the quick brown fox jumps over the lazy dog while the "
				     "coordinator commits epochs; ";
	int n = snprintf(buf, CONTENT_LEN + 1, "bench concept %u/%llu: ", client,
			 (unsigned long long)k);
	size_t i = n > 0 ? (size_t)n : 0;
	for (size_t j = 0; i < CONTENT_LEN; i++, j++)
		buf[i] = filler[j % (sizeof filler - 1)];
}

/* Unique id: 8 random bytes of this client, then a counter. */
static void make_id(uint8_t id[16], const uint8_t salt[8], uint64_t k)
{
	memcpy(id, salt, 8);
	for (int i = 0; i < 8; i++)
		id[8 + i] = (uint8_t)(k >> (8 * i));
}

/* ---- Child modes (the only places that use nng) ------------------------- */

/* What a client child writes to its result file: this, then nlat uint32
 * latencies in nanoseconds. */
struct child_result {
	uint64_t magic;
	uint64_t ops;    /* round trips in the measured window */
	uint64_t items;  /* concepts written (ops x batch for batches) */
	uint64_t errors;
	double secs;     /* from "go" to the end of the last round trip */
	double build_s;  /* time spent building batches (batch mode) */
	double cpu_s;    /* user + system CPU of this process in the window */
	uint64_t nlat;
};

enum kind { K_LEARN, K_BATCH, K_CPING, K_RAWPING };

static int kind_of(const char *s)
{
	if (strcmp(s, "learn") == 0)
		return K_LEARN;
	if (strcmp(s, "batch") == 0)
		return K_BATCH;
	if (strcmp(s, "cping") == 0)
		return K_CPING;
	if (strcmp(s, "rawping") == 0)
		return K_RAWPING;
	return -1;
}

/* A client child's state. */
struct child {
	int kind;
	unsigned batch, index;
	sutra_client *c;
	sutra_batch *b;
	nng_socket raw;
	uint8_t salt[8], id[16];
	char content[CONTENT_LEN + 1];
	struct sutra_concept_in in;
	uint64_t k;      /* concepts made so far */
	double build_s;  /* time spent building batches */
	int nng_rv;      /* the last nng error (raw pings) */
};

/* One round trip of the child's kind. *t0 is set when the round trip
 * starts (after any client-side preparation). Returns its status. */
static int one_op(struct child *ch, uint64_t *t0)
{
	int rc;

	switch (ch->kind) {
	case K_LEARN:
		make_id(ch->id, ch->salt, ch->k);
		fill_content(ch->content, ch->index, ch->k);
		ch->k++;
		*t0 = now_ns();
		return sutra_client_learn_concept(ch->c, &ch->in, NULL);
	case K_BATCH: {
		double b0 = now_s();
		sutra_batch_clear(ch->b);
		for (unsigned j = 0; j < ch->batch; j++, ch->k++) {
			make_id(ch->id, ch->salt, ch->k);
			fill_content(ch->content, ch->index, ch->k);
			if ((rc = sutra_batch_learn_concept(ch->b, &ch->in)))
				die("child: batch: %s", sutra_strerror(rc));
		}
		ch->build_s += now_s() - b0;
		*t0 = now_ns();
		return sutra_client_commit(ch->c, ch->b, NULL);
	}
	case K_CPING:
		*t0 = now_ns();
		return sutra_client_ping(ch->c, NULL);
	default: {
		/* What the client library does per call: allocate, fill, send,
		 * receive, free; a learn-sized request. */
		nng_msg *m;
		*t0 = now_ns();
		if ((ch->nng_rv = nng_msg_alloc(&m, LEARN_WIRE_LEN)))
			die("child: nng_msg_alloc: %s", nng_strerror(ch->nng_rv));
		memset(nng_msg_body(m), 0x5a, LEARN_WIRE_LEN);
		if ((ch->nng_rv = nng_sendmsg(ch->raw, m, 0))) {
			nng_msg_free(m);
			return SUTRA_EUNAVAIL;
		}
		if ((ch->nng_rv = nng_recvmsg(ch->raw, &m, 0)))
			return SUTRA_EUNAVAIL;
		nng_msg_free(m);
		return 0;
	}
	}
}

static const char *child_error(const struct child *ch)
{
	return ch->c ? sutra_client_last_error(ch->c) : nng_strerror(ch->nng_rv);
}

/* One client: --child KIND URL SECONDS BATCH INDEX RESULT READYFD GOFD */
static int child_main(char **argv)
{
	struct child ch = { .kind = kind_of(argv[0]), .raw = NNG_SOCKET_INITIALIZER };
	const char *url = argv[1];
	double secs = atof(argv[2]);
	const char *result = argv[5];
	int ready_fd = atoi(argv[6]);
	int go_fd = atoi(argv[7]);
	struct child_result res = { .magic = RESULT_MAGIC };
	struct lat lat = { 0 };
	uint64_t t0 = 0;
	int rc, rv;

	ch.batch = (unsigned)atoi(argv[3]);
	ch.index = (unsigned)atoi(argv[4]);
	if (ch.kind < 0 || secs <= 0)
		die("child: bad arguments");
	if (getrandom(ch.salt, sizeof ch.salt, 0) != (ssize_t)sizeof ch.salt)
		die("child: getrandom: %s", strerror(errno));
	ch.in = (struct sutra_concept_in){ .id = ch.id, .content = ch.content,
					   .content_len = CONTENT_LEN, .strength = 1.0f,
					   .confidence = 1.0f };

	if (ch.kind == K_RAWPING) {
		if ((rv = nng_req0_open(&ch.raw)))
			die("child: nng_req0_open: %s", nng_strerror(rv));
		nng_socket_set_ms(ch.raw, NNG_OPT_RECVTIMEO, 10000);
		nng_socket_set_ms(ch.raw, NNG_OPT_SENDTIMEO, 10000);
		nng_socket_set_ms(ch.raw, NNG_OPT_RECONNMINT, 10);
		if ((rv = nng_dial(ch.raw, url, NULL, NNG_FLAG_NONBLOCK)))
			die("child: nng_dial %s: %s", url, nng_strerror(rv));
	} else {
		struct sutra_client_options o;
		sutra_client_options_init(&o);
		o.timeout_ms = 60000; /* sixteen clients on two cores: be patient */
		if ((rc = sutra_client_connect(url, &o, &ch.c)))
			die("child: connect %s: %s", url, sutra_strerror(rc));
		if (ch.kind == K_BATCH && !(ch.b = sutra_batch_create()))
			die("child: out of memory");
	}

	/* Warm up: the connection is made, the code paths are hot. */
	for (int i = 0; i < (ch.kind == K_BATCH ? 1 : 20); i++)
		if ((rc = one_op(&ch, &t0)))
			die("child %u: warm-up failed: %s (%s)", ch.index, sutra_strerror(rc),
			    child_error(&ch));
	ch.build_s = 0;
	if (write_all(ready_fd, "r", 1))
		die("child: ready pipe: %s", strerror(errno));
	close(ready_fd);
	char gobuf;
	while (read(go_fd, &gobuf, 1) < 0 && errno == EINTR)
		;
	close(go_fd);

	double cpu0 = cpu_self();
	double start = now_s(), end = start + secs, t = start;
	while (t < end) {
		rc = one_op(&ch, &t0);
		uint64_t t1 = now_ns();
		t = now_s();
		if (rc) {
			if (res.errors++ == 0)
				warnx_("child %u: %s (%s)", ch.index, sutra_strerror(rc),
				       child_error(&ch));
			if (res.errors > 100)
				break;
			continue;
		}
		lat_add(&lat, t1 - t0);
		res.ops++;
		res.items += ch.kind == K_BATCH ? ch.batch : 1;
	}
	res.secs = t - start;
	res.build_s = ch.build_s;
	res.cpu_s = cpu_self() - cpu0;
	res.nlat = lat.n;

	int fd = open(result, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, &res, sizeof res) ||
	    write_all(fd, lat.v, lat.n * sizeof *lat.v) || close(fd))
		die("child: cannot write %s: %s", result, strerror(errno));
	sutra_batch_destroy(ch.b);
	sutra_client_close(ch.c);
	if (ch.kind == K_RAWPING)
		nng_close(ch.raw);
	free(lat.v);
	return res.errors ? 1 : 0;
}

/* The raw REP servers: --ping-server URL READYFD MODE. Each answers every
 * request with a reply-header-sized message until killed.
 *
 * "async" is the fastest REP nng offers and the anchor: the reply is sent
 * from the receive callback on nng's own thread (nng's demo/async pattern,
 * as the coordinator answers PING). "sync" receives and sends from the
 * application thread (nng_recvmsg/nng_sendmsg), which costs a hand-off
 * between nng's threads and the application's each way: that is the price
 * of any design that hands requests to a thread of its own. */
struct ping_srv {
	nng_aio *aio;
	nng_ctx ctx;
	int sending;
};

static void ping_cb(void *arg)
{
	struct ping_srv *p = arg;
	int rv = nng_aio_result(p->aio);

	if (p->sending) {
		if (rv)
			nng_msg_free(nng_aio_get_msg(p->aio));
		p->sending = 0;
		nng_ctx_recv(p->ctx, p->aio);
		return;
	}
	if (rv) {
		if (rv != NNG_ECLOSED)
			nng_ctx_recv(p->ctx, p->aio);
		return;
	}
	nng_msg *m = nng_aio_get_msg(p->aio);
	nng_msg_realloc(m, REPLY_WIRE_LEN);
	nng_aio_set_msg(p->aio, m);
	p->sending = 1;
	nng_ctx_send(p->ctx, p->aio);
}

static int ping_server_main(char **argv)
{
	nng_socket s;
	int rv;
	int async = strcmp(argv[2], "async") == 0;

	if ((rv = nng_rep0_open(&s)))
		die("ping server: %s", nng_strerror(rv));
	if ((rv = nng_listen(s, argv[0], NULL, 0)))
		die("ping server: listen %s: %s", argv[0], nng_strerror(rv));
	if (async) {
		/* a few contexts, as a server would have; one client uses one */
		static struct ping_srv p[4];
		for (int i = 0; i < 4; i++) {
			if ((rv = nng_aio_alloc(&p[i].aio, ping_cb, &p[i])) ||
			    (rv = nng_ctx_open(&p[i].ctx, s)))
				die("ping server: %s", nng_strerror(rv));
			nng_ctx_recv(p[i].ctx, p[i].aio);
		}
	}
	int ready_fd = atoi(argv[1]);
	if (write_all(ready_fd, "r", 1))
		die("ping server: ready pipe: %s", strerror(errno));
	close(ready_fd);
	for (;;) {
		if (async) {
			pause();
			continue;
		}
		nng_msg *m;
		if ((rv = nng_recvmsg(s, &m, 0))) {
			if (rv == NNG_ECLOSED)
				break;
			continue;
		}
		nng_msg_realloc(m, REPLY_WIRE_LEN);
		if (nng_sendmsg(s, m, 0))
			nng_msg_free(m);
	}
	return 0;
}

/* --stats URL RESULT: the coordinator's counters, as a raw struct. */
static int stats_main(char **argv)
{
	sutra_client *c;
	struct sutra_coord_stats st;
	int rc = sutra_client_connect(argv[0], NULL, &c);
	if (rc || (rc = sutra_client_stats(c, &st)))
		die("stats: %s", sutra_strerror(rc));
	sutra_client_close(c);
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, &st, sizeof st) || close(fd))
		die("stats: cannot write %s: %s", argv[1], strerror(errno));
	return 0;
}

/* ---- Parent: processes -------------------------------------------------- */

static char self_path[PATH_MAX];
static char tmp_dir[256]; /* short: Unix socket paths live under it */
static unsigned run_seq;

/* fork + exec argv. keep[] are descriptors the child keeps across exec
 * (everything here is opened O_CLOEXEC); out/err redirect stdout/stderr
 * when >= 0. The child dies with the parent. */
/* Waits for pid up to timeout_s; then SIGKILL. Returns the wait status. */
/* Busy and total jiffies of the whole machine (busy includes time stolen
 * by the hypervisor, v[7]). */
static unsigned long long steal_jiffies;

static void cpu_machine(unsigned long long *busy, unsigned long long *total)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "re");
	*busy = *total = 0;
	steal_jiffies = 0;
	if (!f)
		return;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]) == 8) {
		for (int i = 0; i < 8; i++)
			*total += v[i];
		*busy = *total - v[3] - v[4];
		steal_jiffies = v[7];
	}
	fclose(f);
}

/* user + system CPU seconds of a process. */
static double cpu_proc(pid_t pid)
{
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	unsigned long long ut = 0, st = 0;
	/* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime(14) stime(15) */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- Parent: results ---------------------------------------------------- */

/* One line of the report. Measurements accumulate into it (a line may be
 * measured in several slices, interleaved with others); finish_result()
 * turns the sums into figures. */
struct result {
	int ran;           /* figures valid */
	int failed;        /* a slice could not run */
	int direct;        /* figures set directly (redis-benchmark) */
	const char *why;   /* when not measured */
	struct lat l;      /* every latency, nanoseconds */
	uint64_t ops, items, errors;
	double secs;       /* measured window, summed over slices */
	double p50, p99;   /* microseconds */
	double rate;       /* round trips per second, all clients */
	double item_rate;  /* concepts per second */
	double build_s;    /* batch building time, all clients */
	double client_cpu; /* CPU seconds of all clients in the windows */
	double coord_cpu;  /* CPU seconds of the server in the windows */
	unsigned clients;
	unsigned long long busy_j, total_j; /* machine, in the windows */
	uint64_t requests, commits, syncs;  /* coordinator counters, deltas */
	double busy;       /* machine busy fraction in the windows */
};

static void finish_result(struct result *r)
{
	if (r->direct)
		return;
	if (r->failed || !r->ops || r->secs <= 0) {
		r->ran = 0;
		if (!r->why)
			r->why = "not measured";
	} else {
		qsort(r->l.v, r->l.n, sizeof *r->l.v, cmp_u32);
		r->p50 = pct_us(r->l.v, r->l.n, 0.50);
		r->p99 = pct_us(r->l.v, r->l.n, 0.99);
		r->rate = (double)r->ops / r->secs;
		r->item_rate = (double)r->items / r->secs;
		r->busy = r->total_j ? (double)r->busy_j / (double)r->total_j : 0;
		r->ran = 1;
	}
	free(r->l.v);
	r->l.v = NULL;
	r->l.n = r->l.cap = 0;
}

/*
 * Runs n client children of a kind against url for secs seconds, all
 * starting together, and adds what they measured to r. watch (if > 0) is
 * the server, whose CPU time in the window is recorded.
 */
static int run_clients(const char *kind, const char *url, unsigned n, double secs,
		       unsigned batch, pid_t watch, struct result *r)
{
	int ready[2], go[2];
	pid_t pids[64];
	char paths[64][PATH_MAX];
	unsigned seq = ++run_seq;

	if (r->failed)
		return -1;
	if (n > 64)
		die("too many clients");
	if (pipe2(ready, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	for (unsigned i = 0; i < n; i++) {
		char s_secs[32], s_batch[16], s_ix[16], s_ready[16], s_go[16];
		snprintf(paths[i], sizeof paths[i], "%s/result-%u-%u", tmp_dir, seq, i);
		snprintf(s_secs, sizeof s_secs, "%.3f", secs);
		snprintf(s_batch, sizeof s_batch, "%u", batch);
		snprintf(s_ix, sizeof s_ix, "%u", i);
		snprintf(s_ready, sizeof s_ready, "%d", ready[1]);
		snprintf(s_go, sizeof s_go, "%d", go[0]);
		const char *argv[] = { self_path, "--child", kind, url, s_secs, s_batch, s_ix,
				       paths[i], s_ready, s_go, NULL };
		int keep[2] = { ready[1], go[0] };
		pids[i] = spawn(argv, keep, 2, -1, -1);
	}
	close(ready[1]);
	close(go[0]);

	/* All ready (each wrote a byte), or one died (EOF early). */
	unsigned got = 0;
	double until = now_s() + READY_TIMEOUT_MS / 1000.0;
	while (got < n && now_s() < until) {
		struct pollfd p = { .fd = ready[0], .events = POLLIN };
		if (poll(&p, 1, 200) <= 0)
			continue;
		char buf[64];
		ssize_t k = read(ready[0], buf, sizeof buf);
		if (k <= 0)
			break;
		got += (unsigned)k;
	}
	close(ready[0]);
	unsigned long long b0, t0, b1, t1;
	double c0 = watch > 0 ? cpu_proc(watch) : 0;
	cpu_machine(&b0, &t0);
	close(go[1]); /* go */

	int failed = got < n;
	for (unsigned i = 0; i < n; i++) {
		int status = reap(pids[i], failed ? 5 : secs + 120);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = 1;
	}
	cpu_machine(&b1, &t1);
	double c1 = watch > 0 ? cpu_proc(watch) : 0;
	if (failed) {
		r->why = "a client failed (see the messages above)";
		r->failed = 1;
		for (unsigned i = 0; i < n; i++)
			unlink(paths[i]);
		return -1;
	}

	double window = 0;
	for (unsigned i = 0; i < n; i++) {
		struct child_result cr;
		int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0 || read_all(fd, &cr, sizeof cr) || cr.magic != RESULT_MAGIC)
			die("cannot read %s", paths[i]);
		for (uint64_t j = 0; j < cr.nlat; j += 65536) {
			uint32_t chunk[65536];
			size_t m = cr.nlat - j < 65536 ? (size_t)(cr.nlat - j) : 65536;
			if (read_all(fd, chunk, m * sizeof *chunk))
				die("short %s", paths[i]);
			for (size_t q = 0; q < m; q++)
				lat_add(&r->l, chunk[q]);
		}
		close(fd);
		unlink(paths[i]);
		r->ops += cr.ops;
		r->items += cr.items;
		r->errors += cr.errors;
		r->build_s += cr.build_s;
		r->client_cpu += cr.cpu_s;
		if (cr.secs > window)
			window = cr.secs;
	}
	r->secs += window;
	r->coord_cpu += c1 - c0;
	r->busy_j += b1 - b0;
	r->total_j += t1 - t0;
	r->clients = n;
	return 0;
}

/* ---- Anchors that run in this process ----------------------------------- */

/* (a) 4 KiB pwrite + fdatasync, appending: the file grows each time, as the
 * coordinator's log does, so each fdatasync also commits the new size and
 * block allocation (on ext4 a jbd2 commit). For information, the same into
 * space that was written with zeros and made durable beforehand (what a log
 * preallocated ahead of its end would see), and "commit-shaped" I/O: what
 * the coordinator writes for one small epoch (a 256-byte commit block
 * appended, a 1152-byte meta slot overwritten in one of two pages, one
 * fdatasync), so that its I/O can be told apart from its other costs. */
#define PREFILL_BYTES (64u << 20)
#define LOG_START 12288u

static void bench_fdatasync(int append, int commit_shaped, double secs, struct result *r)
{
	char path[PATH_MAX];
	static unsigned char buf[4096];
	size_t wlen = commit_shaped ? 256 : sizeof buf;

	memset(buf, 0x5a, sizeof buf);
	snprintf(path, sizeof path, "%s/fdatasync-%d-%d.dat", tmp_dir, append, commit_shaped);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	uint64_t base = commit_shaped ? LOG_START : 0;
	if (commit_shaped) {
		/* superblock and both meta pages exist, as in a store */
		for (uint64_t off = 0; off < LOG_START; off += sizeof buf)
			if (pwrite(fd, buf, sizeof buf, (off_t)off) != (ssize_t)sizeof buf)
				die("pwrite: %s", strerror(errno));
	}
	if (!append) {
		unsigned char *zero = calloc(1, 1u << 20);
		if (!zero)
			die("out of memory");
		for (uint64_t off = 0; off < PREFILL_BYTES; off += 1u << 20)
			if (pwrite(fd, zero, 1u << 20, (off_t)(base + off)) != (ssize_t)(1u << 20))
				die("pwrite: %s", strerror(errno));
		free(zero);
	}
	if (fsync(fd))
		die("fsync: %s", strerror(errno));
	uint64_t off = 0, n = 0;
	double start = now_s(), end = start + secs, t = start;
	while (t < end) {
		uint64_t t0 = now_ns();
		if (pwrite(fd, buf, wlen, (off_t)(base + off)) != (ssize_t)wlen)
			die("pwrite: %s", strerror(errno));
		if (commit_shaped &&
		    pwrite(fd, buf, 1152, (off_t)(4096 * (1 + (n & 1)))) != 1152)
			die("pwrite: %s", strerror(errno));
		if (fdatasync(fd))
			die("fdatasync: %s", strerror(errno));
		lat_add(&r->l, now_ns() - t0);
		r->ops++;
		n++;
		off += wlen;
		if (!append && off >= PREFILL_BYTES)
			off = 0;
		t = now_s();
	}
	r->secs += t - start;
	close(fd);
	unlink(path);
}

/* (c) LMDB: one 16-byte key / 100-byte value put per transaction. */
static void bench_lmdb(int nosync, double secs, struct result *r)
{
#ifdef BENCH_HAVE_LMDB
	char path[PATH_MAX];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	uint8_t key[16], salt[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	char val[CONTENT_LEN + 1];
	int rc;

	snprintf(path, sizeof path, "%s/lmdb-%s", tmp_dir, nosync ? "nosync" : "sync");
	if (mkdir(path, 0755))
		die("mkdir %s: %s", path, strerror(errno));
	if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_mapsize(env, (size_t)4 << 30)) ||
	    (rc = mdb_env_open(env, path, nosync ? MDB_NOSYNC : 0, 0644)))
		die("lmdb: %s", mdb_strerror(rc));
	if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) || (rc = mdb_dbi_open(txn, NULL, 0, &dbi)) ||
	    (rc = mdb_txn_commit(txn)))
		die("lmdb: %s", mdb_strerror(rc));
	uint64_t k = 0;
	double start = now_s(), end = start + secs, t = start;
	while (t < end) {
		make_id(key, salt, k);
		fill_content(val, 0, k);
		k++;
		MDB_val mk = { .mv_size = sizeof key, .mv_data = key };
		MDB_val mv = { .mv_size = CONTENT_LEN, .mv_data = val };
		uint64_t t0 = now_ns();
		if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) || (rc = mdb_put(txn, dbi, &mk, &mv, 0)) ||
		    (rc = mdb_txn_commit(txn)))
			die("lmdb: %s", mdb_strerror(rc));
		lat_add(&r->l, now_ns() - t0);
		r->ops++;
		t = now_s();
	}
	r->secs += t - start;
	mdb_env_close(env);
#else
	(void)nosync;
	(void)secs;
	r->why = "not built (no liblmdb-dev at configure time)";
#endif
}

/* ---- redis-server ------------------------------------------------------- */

static int find_in_path(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
	while (*path) {
		size_t n = strcspn(path, ":");
		snprintf(out, len, "%.*s/%s", (int)n, path, name);
		if (access(out, X_OK) == 0)
			return 0;
		path += n;
		if (*path == ':')
			path++;
	}
	return -1;
}

static int free_tcp_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
	    getsockname(fd, (struct sockaddr *)&a, &al))
		die("cannot find a free port: %s", strerror(errno));
	close(fd);
	return ntohs(a.sin_port);
}

static int tcp_up(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons((uint16_t)port) };
	int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Runs argv with stdout captured into buf (NUL-terminated). */
static int capture(const char *const argv[], char *buf, size_t len, double timeout_s)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	pid_t pid = spawn(argv, NULL, 0, p[1], devnull);
	close(p[1]);
	close(devnull);
	size_t used = 0;
	double until = now_s() + timeout_s;
	for (;;) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		if (now_s() > until)
			break;
		if (poll(&pf, 1, 200) <= 0)
			continue;
		char tmp[4096];
		ssize_t n = read(p[0], tmp, sizeof tmp);
		if (n <= 0)
			break;
		size_t c = (size_t)n < len - 1 - used ? (size_t)n : len - 1 - used;
		memcpy(buf + used, tmp, c);
		used += c;
	}
	buf[used] = 0;
	close(p[0]);
	int status = reap(pid, 1);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* One redis-benchmark SET run of n requests, one connection, 100-byte values. */
static int redis_bench_once(const char *bench, int port, long n, struct result *r)
{
	char s_port[16], s_n[32], out[65536];
	snprintf(s_port, sizeof s_port, "%d", port);
	snprintf(s_n, sizeof s_n, "%ld", n);
	const char *argv[] = { bench, "-h", "127.0.0.1", "-p", s_port, "-t", "set", "-n", s_n,
			       "-c", "1", "-d", "100", "-r", "100000000", "--csv", NULL };
	if (capture(argv, out, sizeof out, 600))
		return -1;
	/* "SET","rps","avg","min","p50","p95","p99","max" (redis 7) */
	char *line = strstr(out, "\"SET\"");
	double rps, avg, mn, p50, p95, p99, mx;
	if (!line)
		return -1;
	int k = sscanf(line, "\"SET\",\"%lf\",\"%lf\",\"%lf\",\"%lf\",\"%lf\",\"%lf\",\"%lf\"", &rps,
		       &avg, &mn, &p50, &p95, &p99, &mx);
	if (k < 1)
		return -1;
	memset(r, 0, sizeof *r);
	r->direct = 1;
	r->rate = rps;
	r->ops = (uint64_t)n;
	if (k == 7) {
		r->p50 = p50 * 1000.0;
		r->p99 = p99 * 1000.0;
	} else {
		r->p50 = r->p99 = -1; /* older redis-benchmark: no percentiles */
	}
	r->ran = 1;
	return 0;
}

/* (b) redis-server on loopback, own instance, with AOF always or no
 * persistence at all. */
static void bench_redis(int aof, double secs, struct result *r)
{
	char server[PATH_MAX], bench[PATH_MAX], dir[PATH_MAX], logf[PATH_MAX + 16], s_port[16];

	memset(r, 0, sizeof *r);
	r->direct = 1;
	if (find_in_path("redis-server", server, sizeof server) ||
	    find_in_path("redis-benchmark", bench, sizeof bench)) {
		r->why = "not found (apt-get install redis-server redis-tools)";
		return;
	}
	snprintf(dir, sizeof dir, "%s/redis-%s", tmp_dir, aof ? "aof" : "mem");
	snprintf(logf, sizeof logf, "%s/redis.log", dir);
	if (mkdir(dir, 0755))
		die("mkdir %s: %s", dir, strerror(errno));
	int port = free_tcp_port();
	snprintf(s_port, sizeof s_port, "%d", port);
	const char *argv[] = { server, "--port", s_port, "--bind", "127.0.0.1",
			       "--save", "", "--dir", dir,
			       "--appendonly", aof ? "yes" : "no", "--appendfsync", "always",
			       "--daemonize", "no", "--logfile", logf, NULL };
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	pid_t pid = spawn(argv, NULL, 0, devnull, devnull);
	close(devnull);
	double until = now_s() + 10;
	while (!tcp_up(port) && now_s() < until) {
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	if (!tcp_up(port)) {
		r->why = "redis-server did not start (see its log)";
		kill(pid, SIGKILL);
		reap(pid, 5);
		return;
	}
	/* Calibrate so that the measured run takes about secs seconds. */
	struct result cal;
	long n = 0;
	if (redis_bench_once(bench, port, aof ? 300 : 3000, &cal) == 0 && cal.rate > 0)
		n = (long)(cal.rate * secs);
	if (n < 200)
		n = 200;
	if (redis_bench_once(bench, port, n, r)) {
		r->ran = 0;
		r->why = "redis-benchmark failed or printed no CSV";
	}
	kill(pid, SIGTERM);
	reap(pid, 10);
}

/* ---- sutra-coordinator -------------------------------------------------- */

struct coord {
	pid_t pid;
	char dir[320];
	char url[PATH_MAX];
	char log[PATH_MAX];
};

static char **coord_extra; /* --coord-arg values */
static int ncoord_extra;

static void coord_start(const char *bin, const char *mode, struct coord *c)
{
	char data[400], events[400], sock[400];
	unsigned seq = ++run_seq;

	snprintf(c->dir, sizeof c->dir, "%s/coord-%u", tmp_dir, seq);
	if (mkdir(c->dir, 0755))
		die("mkdir %s: %s", c->dir, strerror(errno));
	snprintf(data, sizeof data, "%s/storage.dat", c->dir);
	snprintf(sock, sizeof sock, "%s/w", c->dir);
	snprintf(c->url, sizeof c->url, "ipc://%s", sock);
	snprintf(events, sizeof events, "ipc://%s/e", c->dir);
	snprintf(c->log, sizeof c->log, "%s/coordinator.log", c->dir);
	if (strlen(sock) >= 100)
		die("%s is too long for a Unix socket path: use a shorter --dir", sock);

	const char **argv = calloc(16 + (size_t)ncoord_extra, sizeof *argv);
	int k = 0;
	if (!argv)
		die("out of memory");
	argv[k++] = bin;
	argv[k++] = "--data";
	argv[k++] = data;
	argv[k++] = "--listen";
	argv[k++] = c->url;
	argv[k++] = "--events";
	argv[k++] = events;
	argv[k++] = "--durability";
	argv[k++] = mode;
	argv[k++] = "--vector-dimension";
	argv[k++] = "768";
	argv[k++] = "--log-level";
	argv[k++] = "warning";
	for (int i = 0; i < ncoord_extra; i++)
		argv[k++] = coord_extra[i];
	argv[k] = NULL;
	int lf = open(c->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (lf < 0)
		die("open %s: %s", c->log, strerror(errno));
	c->pid = spawn(argv, NULL, 0, lf, lf);
	close(lf);
	free((void *)argv);

	/* Listening once its socket exists. */
	double until = now_s() + 15;
	struct stat st;
	while (stat(sock, &st) != 0) {
		int status;
		if (waitpid(c->pid, &status, WNOHANG) == c->pid)
			die("%s exited at start (log: %s)", bin, c->log);
		if (now_s() > until)
			die("%s did not start listening within 15 s (log: %s)", bin, c->log);
		struct timespec ts = { 0, 5000000 };
		nanosleep(&ts, NULL);
	}
}

static int coord_stats(struct coord *c, struct sutra_coord_stats *st)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/stats", c->dir);
	const char *argv[] = { self_path, "--stats", c->url, path, NULL };
	pid_t pid = spawn(argv, NULL, 0, -1, -1);
	int status = reap(pid, 30);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = fd >= 0 && read_all(fd, st, sizeof *st) == 0 ? 0 : -1;
	if (fd >= 0)
		close(fd);
	return rc;
}

static void coord_stop(struct coord *c)
{
	kill(c->pid, SIGTERM);
	int status = reap(c->pid, 30);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		warnx_("coordinator in %s did not stop cleanly (status 0x%x; log %s)", c->dir,
		       (unsigned)status, c->log);
	else
		nftw(c->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* One line measured in a round: a fdatasync slice, or client children. */
struct slot {
	int fsync;           /* 1: the appending 4 KiB fdatasync anchor */
	const char *kind;    /* else: client kind, count, batch size */
	unsigned n, batch;
	const char *url;
	pid_t watch;         /* the server whose CPU is charged */
	struct result *r;
};

/*
 * Runs SLICES slices of every slot, rotating the order each time, so that
 * the lines compared by a goal are measured side by side in time rather
 * than one after the other (the machine's speed drifts). After each slice
 * against the coordinator, the change in its counters is added to the line.
 */
static void run_round(struct slot *sl, int m, double slice_secs, struct coord *c)
{
	struct sutra_coord_stats last, now;
	int have = coord_stats(c, &last) == 0;

	for (int k = 0; k < SLICES; k++)
		for (int j = 0; j < m; j++) {
			struct slot *x = &sl[(j + k) % m];
			if (x->fsync) {
				bench_fdatasync(1, 0, slice_secs, x->r);
				continue;
			}
			if (x->watch <= 0)
				continue;
			run_clients(x->kind, x->url, x->n, slice_secs, x->batch, x->watch, x->r);
			if (x->watch == c->pid && have && coord_stats(c, &now) == 0) {
				x->r->requests += now.requests - last.requests;
				x->r->commits += now.commits - last.commits;
				x->r->syncs += now.syncs - last.syncs;
				last = now;
			}
		}
}

/* Starts a raw REP server ("async" or "sync"); returns its pid, or -1. */
static pid_t ping_server_start(const char *mode, char *url, size_t len)
{
	int ready[2];
	char s_ready[16], b;

	snprintf(url, len, "ipc://%s/rawping-%s", tmp_dir, mode);
	if (pipe2(ready, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	snprintf(s_ready, sizeof s_ready, "%d", ready[1]);
	const char *av[] = { self_path, "--ping-server", url, s_ready, mode, NULL };
	pid_t srv = spawn(av, &ready[1], 1, -1, -1);
	close(ready[1]);
	struct pollfd p = { .fd = ready[0], .events = POLLIN };
	int ok = poll(&p, 1, 15000) == 1 && read(ready[0], &b, 1) == 1;
	close(ready[0]);
	if (!ok) {
		kill(srv, SIGKILL);
		reap(srv, 5);
		return -1;
	}
	return srv;
}

/* One SCHED_IDLE busy loop per CPU: the CPUs never go idle, so a wake-up
 * never has to bring a halted (virtual) CPU back, which on a VM costs tens
 * of microseconds per thread hand-off. Any real work preempts them. */
static pid_t spinners[256];
static int nspinners;

static void spinners_start(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	for (long i = 0; i < n && nspinners < 256; i++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0) {
			struct sched_param sp = { .sched_priority = 0 };
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (sched_setscheduler(0, SCHED_IDLE, &sp))
				_exit(1);
			for (volatile unsigned long x = 0;; x++)
				;
		}
		spinners[nspinners++] = pid;
	}
}

static void spinners_stop(void)
{
	for (int i = 0; i < nspinners; i++) {
		kill(spinners[i], SIGKILL);
		waitpid(spinners[i], NULL, 0);
	}
	nspinners = 0;
}

/* ---- Machine description ------------------------------------------------ */

/* ---- Output ------------------------------------------------------------- */

static void row(const char *name, const struct result *r, const char *unit)
{
	if (!r->ran) {
		printf("  %-44s  %s\n", name, r->why ? r->why : "not measured");
		return;
	}
	char p50[32], p99[32];
	if (r->p50 < 0) {
		snprintf(p50, sizeof p50, "n/a");
		snprintf(p99, sizeof p99, "n/a");
	} else {
		snprintf(p50, sizeof p50, "%.1f", r->p50);
		snprintf(p99, sizeof p99, "%.1f", r->p99);
	}
	printf("  %-44s %9s %9s %11.0f %s\n", name, p50, p99,
	       r->item_rate > 0 ? r->item_rate : r->rate, unit);
}

static void coord_row(const char *name, const struct result *r, const char *unit)
{
	row(name, r, unit);
	if (!r->ran)
		return;
	printf("  %-44s", "");
	if (r->commits)
		printf("   %.1f req/commit, %.2f syncs/commit;",
		       (double)r->requests / (double)r->commits,
		       (double)r->syncs / (double)r->commits);
	int per_op = r->ops == r->items;
	if (r->items)
		printf(per_op ? " CPU per op: server %.0f us, client %.0f us;"
			      : " CPU per concept: server %.2f us, client %.2f us;",
		       r->coord_cpu * 1e6 / (double)r->items, r->client_cpu * 1e6 / (double)r->items);
	printf(" machine %.0f%% busy", 100.0 * r->busy);
	if (r->build_s > 0 && r->secs > 0)
		printf(", batch building %.0f%% of client time",
		       100.0 * r->build_s / (r->secs * (double)r->clients));
	if (r->errors)
		printf(", %llu errors", (unsigned long long)r->errors);
	printf("\n");
}

static int goals, misses;

static void ratio(const char *name, double num, double den, int ok_num, int ok_den, double goal,
		  int at_most)
{
	if (!ok_num || !ok_den || den <= 0 || num < 0) {
		printf("  %-62s %8s   goal %s %-9g n/a\n", name, "n/a", at_most ? "<=" : ">=", goal);
		goals++;
		misses++;
		return;
	}
	double v = num / den;
	int pass = at_most ? v <= goal : v >= goal;
	goals++;
	if (!pass)
		misses++;
	printf("  %-62s %8.3f   goal %s %-9g %s\n", name, v, at_most ? "<=" : ">=", goal,
	       pass ? "PASS" : "MISS");
}

static void info_ratio(const char *name, double num, double den, int ok)
{
	if (!ok || den <= 0 || num < 0)
		printf("  %-62s %8s   (information)\n", name, "n/a");
	else
		printf("  %-62s %8.2f   (information)\n", name, num / den);
}

static void goal_value(const char *name, double v, int ok, double goal)
{
	if (!ok) {
		printf("  %-62s %8s   goal >= %-9.0f n/a\n", name, "n/a", goal);
		goals++;
		misses++;
		return;
	}
	int pass = v >= goal;
	goals++;
	if (!pass)
		misses++;
	printf("  %-62s %8.0f   goal >= %-9.0f %s\n", name, v, goal, pass ? "PASS" : "MISS");
}

/* ---- Main --------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: sutra-bench-coord [OPTION]...\n"
		"Measures sutra-coordinator's write path (learn round trips with 1, 4 and 16\n"
		"client processes, sync and relaxed; batches of 1,000 concepts) side by side\n"
		"with its anchors on the same filesystem: a bare 4 KiB pwrite + fdatasync\n"
		"loop, redis-server SET (appendfsync always, and no persistence), LMDB\n"
		"one-put commits (synced, and MDB_NOSYNC) and a raw nng REQ/REP ipc:// ping.\n"
		"For information it also times the coordinator's own I/O pattern without the\n"
		"coordinator (256-byte block appended, meta slot rewritten, fdatasync), and\n"
		"fdatasync into zero-filled preallocated space.\n"
		"Prints p50/p99 latencies, throughputs, and the goal ratios marked PASS or\n"
		"MISS. A full run takes about a minute, --quick about 15 s.\n"
		"\n"
		"  --dir DIR            where the temporary directory goes (default /var/tmp);\n"
		"                       every file of the run (store, anchors) lives there\n"
		"  --coordinator PATH   the sutra-coordinator binary (default: the build\n"
		"                       tree's, ../coordinator/sutra-coordinator from this\n"
		"                       program's directory)\n"
		"  --coord-arg ARG      pass ARG to every coordinator started (repeatable;\n"
		"                       e.g. --coord-arg=--io=sync)\n"
		"  --quick              short runs (about 15 s in all)\n"
		"  --seconds S          length of each measured run (overrides the default\n"
		"                       4 s, or 1 s with --quick)\n"
		"  --keep-cpus-busy     run a SCHED_IDLE busy loop on every CPU, so that\n"
		"                       no CPU halts between requests (on a VM, waking a\n"
		"                       halted CPU costs tens of microseconds per thread\n"
		"                       hand-off); steadier figures, but not an idle server's\n"
		"  --keep               keep the temporary directory\n"
		"  -h, --help           print this help and exit\n"
		"\n"
		"Exit status: 0 when everything was measured (whatever PASS/MISS says),\n"
		"1 when something could not run, 2 on a usage error.\n"
		"Needs: redis-server and redis-benchmark in PATH for (b) (Debian:\n"
		"redis-server, redis-tools); liblmdb at build time for (c).\n");
}

int main(int argc, char **argv)
{
	if (argc >= 10 && strcmp(argv[1], "--child") == 0)
		return child_main(argv + 2);
	if (argc == 5 && strcmp(argv[1], "--ping-server") == 0)
		return ping_server_main(argv + 2);
	if (argc == 4 && strcmp(argv[1], "--stats") == 0)
		return stats_main(argv + 2);

	const char *dir = "/var/tmp";
	const char *coord_bin = NULL;
	char coord_default[PATH_MAX];
	double secs = 0;
	int quick = 0, keep = 0, busy_cpus = 0;

	coord_extra = calloc((size_t)argc, sizeof *coord_extra);
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
		} else if (strcmp(a, "--keep-cpus-busy") == 0) {
			busy_cpus = 1;
		} else if (OPTVAL("--dir")) {
			dir = val;
		} else if (OPTVAL("--coordinator")) {
			coord_bin = val;
		} else if (OPTVAL("--coord-arg")) {
			coord_extra[ncoord_extra++] = (char *)val;
		} else if (OPTVAL("--seconds")) {
			secs = atof(val);
			if (secs <= 0 || secs > 600) {
				fprintf(stderr, "sutra-bench-coord: bad --seconds '%s'\n", val);
				return 2;
			}
		} else {
			fprintf(stderr, "sutra-bench-coord: unknown argument '%s'\n"
					"Try 'sutra-bench-coord --help'.\n",
				a);
			return 2;
		}
#undef OPTVAL
	}
	if (secs <= 0)
		secs = quick ? 1.0 : 4.0;
	double short_secs = secs / 2; /* anchors and pings */

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
	snprintf(tmp_dir, sizeof tmp_dir, "%s/sutra-bench.XXXXXX", dir);
	if (!mkdtemp(tmp_dir))
		die("mkdtemp in %s: %s", dir, strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* ---- Header ---- */
	struct utsname un;
	char fst[64], fsdev[1024], fsmnt[1024], la[64], coord_real[PATH_MAX];
	uname(&un);
	fs_of(tmp_dir, fst, sizeof fst, fsdev, sizeof fsdev, fsmnt, sizeof fsmnt);
	loadavg(la, sizeof la);
	if (!realpath(coord_bin, coord_real))
		snprintf(coord_real, sizeof coord_real, "%s", coord_bin);
	printf("sutra-bench-coord: write path of sutra-coordinator against its anchors\n");
	printf("  coordinator  %s", coord_real);
	for (int i = 0; i < ncoord_extra; i++)
		printf(" %s", coord_extra[i]);
	printf("\n  directory    %s (%s on %s, mounted at %s)\n", tmp_dir, fst, fsdev, fsmnt);
	printf("  machine      %ld CPUs, %s %s, load average %s\n", sysconf(_SC_NPROCESSORS_ONLN),
	       un.sysname, un.release, la);
	printf("  runs         %.1f s per line, in %d interleaved slices for the lines a goal\n"
	       "               compares; %.1f s per other anchor%s\n",
	       secs, SLICES, short_secs, quick ? " (--quick)" : "");
	printf("  workload     learn_concept: unique 16-byte id, %u bytes of content, no "
	       "embedding\n",
	       CONTENT_LEN);

	/* What else runs on the machine: the figures are only as good as this. */
	{
		unsigned long long b0, t0, b1, t1, s0, s1;
		cpu_machine(&b0, &t0);
		s0 = steal_jiffies;
		struct timespec ts = { quick ? 0 : 1, quick ? 500000000 : 0 };
		nanosleep(&ts, NULL);
		cpu_machine(&b1, &t1);
		s1 = steal_jiffies;
		double idle_busy = t1 > t0 ? 100.0 * (double)(b1 - b0) / (double)(t1 - t0) : 0;
		double stolen = t1 > t0 ? 100.0 * (double)(s1 - s0) / (double)(t1 - t0) : 0;
		printf("  background   %.0f%% of all CPUs busy before the run (%.0f%% stolen by the "
		       "hypervisor)%s\n\n",
		       idle_busy, stolen,
		       idle_busy > 10 ? "\n               WARNING: other work on the machine; the "
					"figures are noisy"
				      : "");
	}
	if (busy_cpus) {
		spinners_start();
		printf("  --keep-cpus-busy: a SCHED_IDLE busy loop runs on every CPU; \"machine "
		       "busy\" reads 100%%\n\n");
	}

	/* ---- Anchors measured alone ---- */
	static struct result fsync_app, fsync_ovw, commit_app, commit_pre, redis_aof, redis_mem,
		lmdb_sync, lmdb_nosync, rawping, rawping2, cping, learn[2][3], batch1, batch4;
	fprintf(stderr, "running anchors...\n");
	bench_fdatasync(0, 0, short_secs, &fsync_ovw);
	bench_fdatasync(1, 1, short_secs, &commit_app);
	bench_fdatasync(0, 1, short_secs, &commit_pre);
	bench_redis(1, short_secs, &redis_aof);
	bench_redis(0, short_secs, &redis_mem);
	bench_lmdb(0, short_secs, &lmdb_sync);
	bench_lmdb(1, short_secs, &lmdb_nosync);

	/* ---- Rounds: each goal's two sides in interleaved slices ---- */
	static const unsigned nclients[3] = { 1, 4, 16 };
	static const char *const modes[2] = { "sync", "relaxed" };
	double slice = secs / SLICES;
	struct coord c;

	fprintf(stderr, "running sync round: fdatasync anchor, 1, 4, 16 clients...\n");
	coord_start(coord_bin, "sync", &c);
	struct slot sync_round[4] = {
		{ .fsync = 1, .r = &fsync_app },
		{ .kind = "learn", .n = 1, .url = c.url, .watch = c.pid, .r = &learn[0][0] },
		{ .kind = "learn", .n = 4, .url = c.url, .watch = c.pid, .r = &learn[0][1] },
		{ .kind = "learn", .n = 16, .url = c.url, .watch = c.pid, .r = &learn[0][2] },
	};
	run_round(sync_round, 4, slice, &c);
	coord_stop(&c);

	fprintf(stderr, "running relaxed round: raw nng ping, coordinator ping, 1, 4, 16 "
			"clients...\n");
	char ping_url[PATH_MAX], ping2_url[PATH_MAX];
	pid_t ping_srv = ping_server_start("async", ping_url, sizeof ping_url);
	pid_t ping2_srv = ping_server_start("sync", ping2_url, sizeof ping2_url);
	if (ping_srv < 0) {
		rawping.failed = 1;
		rawping.why = "the ping server did not start";
	}
	if (ping2_srv < 0) {
		rawping2.failed = 1;
		rawping2.why = "the ping server did not start";
	}
	coord_start(coord_bin, "relaxed", &c);
	struct slot relaxed_round[6] = {
		{ .kind = "rawping", .n = 1, .url = ping_url, .watch = ping_srv, .r = &rawping },
		{ .kind = "rawping", .n = 1, .url = ping2_url, .watch = ping2_srv, .r = &rawping2 },
		{ .kind = "cping", .n = 1, .url = c.url, .watch = c.pid, .r = &cping },
		{ .kind = "learn", .n = 1, .url = c.url, .watch = c.pid, .r = &learn[1][0] },
		{ .kind = "learn", .n = 4, .url = c.url, .watch = c.pid, .r = &learn[1][1] },
		{ .kind = "learn", .n = 16, .url = c.url, .watch = c.pid, .r = &learn[1][2] },
	};
	run_round(relaxed_round, 6, slice, &c);
	coord_stop(&c);
	if (ping_srv > 0) {
		kill(ping_srv, SIGTERM);
		reap(ping_srv, 5);
	}
	if (ping2_srv > 0) {
		kill(ping2_srv, SIGTERM);
		reap(ping2_srv, 5);
	}

	fprintf(stderr, "running batch round: 1 and 4 clients...\n");
	coord_start(coord_bin, "relaxed", &c);
	struct slot batch_round[2] = {
		{ .kind = "batch", .n = 1, .batch = BATCH_SIZE, .url = c.url, .watch = c.pid,
		  .r = &batch1 },
		{ .kind = "batch", .n = 4, .batch = BATCH_SIZE, .url = c.url, .watch = c.pid,
		  .r = &batch4 },
	};
	run_round(batch_round, 2, slice, &c);
	coord_stop(&c);

	struct result *all[] = { &fsync_app, &fsync_ovw, &commit_app, &commit_pre, &redis_aof,
				 &redis_mem, &lmdb_sync, &lmdb_nosync, &rawping, &rawping2, &cping,
				 &learn[0][0], &learn[0][1], &learn[0][2], &learn[1][0],
				 &learn[1][1], &learn[1][2], &batch1, &batch4 };
	for (size_t i = 0; i < sizeof all / sizeof *all; i++)
		finish_result(all[i]);

	/* ---- Report ---- */
	loadavg(la, sizeof la);
	printf("%-46s %9s %9s %11s\n", "", "p50 us", "p99 us", "rate");
	printf("Anchors (same filesystem)\n");
	row("(a) 4 KiB pwrite+fdatasync, appending", &fsync_app, "ops/s");
	row("    same, into zero-filled preallocated space", &fsync_ovw, "ops/s");
	row("    commit-shaped I/O, appending", &commit_app, "ops/s");
	row("    commit-shaped I/O, preallocated space", &commit_pre, "ops/s");
	row("(b) redis SET, appendfsync always", &redis_aof, "req/s");
	row("(b) redis SET, no persistence", &redis_mem, "req/s");
	row("(c) LMDB put+commit, synced", &lmdb_sync, "commits/s");
	row("(c) LMDB put+commit, MDB_NOSYNC", &lmdb_nosync, "commits/s");
	coord_row("(d) raw nng REQ/REP ping, ipc://", &rawping, "pings/s");
	coord_row("    same, REP answering from its own thread", &rawping2, "pings/s");
	printf("sutra-coordinator, single learns (one coordinator and store per mode)\n");
	for (int m = 0; m < 2; m++)
		for (int i = 0; i < 3; i++) {
			char name[64];
			snprintf(name, sizeof name, "%s, %2u client%s", modes[m], nclients[i],
				 nclients[i] > 1 ? "s" : "");
			coord_row(name, &learn[m][i], "learns/s");
		}
	coord_row("coordinator PING (no store work, info)", &cping, "pings/s");
	printf("sutra-coordinator, batches of %u concepts, relaxed (latency per batch)\n",
	       BATCH_SIZE);
	coord_row("batched, 1 client", &batch1, "concepts/s");
	coord_row("batched, 4 clients", &batch4, "concepts/s");

	printf("\nGoals\n");
	struct result *s1 = &learn[0][0], *s16 = &learn[0][2], *r1 = &learn[1][0];
	ratio("sync learn p50 (1 client) / bare fdatasync p50", s1->p50, fsync_app.p50, s1->ran,
	      fsync_app.ran, 1.3, 1);
	ratio("relaxed learn p50 (1 client) / raw nng ping p50", r1->p50, rawping.p50, r1->ran,
	      rawping.ran, 1.5, 1);
	ratio("sync learns/s, 16 clients / 1 client", s16->rate, s1->rate, s16->ran, s1->ran, 10,
	      0);
	goal_value("batched relaxed concepts/s, 1 client", batch1.item_rate, batch1.ran, 1e6);
	goal_value("batched relaxed concepts/s, 4 clients", batch4.item_rate, batch4.ran, 1e6);
	printf("  %d of %d goals met\n", goals - misses, goals);
	printf("Other ratios\n");
	info_ratio("sync learn p50 / commit-shaped I/O p50 (appending)", s1->p50, commit_app.p50,
		   s1->ran && commit_app.ran);
	info_ratio("commit-shaped I/O p50, preallocated / appending", commit_pre.p50,
		   commit_app.p50, commit_pre.ran && commit_app.ran);
	info_ratio("sync learn p50 / redis appendfsync-always SET p50", s1->p50, redis_aof.p50,
		   s1->ran && redis_aof.ran && redis_aof.p50 > 0);
	info_ratio("sync learns/s (1 client) / LMDB synced commits/s", s1->rate, lmdb_sync.rate,
		   s1->ran && lmdb_sync.ran);
	info_ratio("sync learns/s (16 clients) / LMDB synced commits/s", s16->rate, lmdb_sync.rate,
		   s16->ran && lmdb_sync.ran);
	info_ratio("relaxed learn p50 / redis no-persistence SET p50", r1->p50, redis_mem.p50,
		   r1->ran && redis_mem.ran && redis_mem.p50 > 0);
	info_ratio("relaxed learn p50 / coordinator PING p50", r1->p50, cping.p50,
		   r1->ran && cping.ran);
	info_ratio("coordinator PING p50 / raw nng ping p50", cping.p50, rawping.p50,
		   cping.ran && rawping.ran);
	info_ratio("relaxed learn p50 / raw ping p50 with a thread hand-off", r1->p50,
		   rawping2.p50, r1->ran && rawping2.ran);
	info_ratio("relaxed learns/s, 16 clients / 1 client", learn[1][2].rate, r1->rate,
		   learn[1][2].ran && r1->ran);
	printf("\nload average after the run: %s\n", la);
	spinners_stop();

	int incomplete = 0;
	for (int m = 0; m < 2; m++)
		for (int i = 0; i < 3; i++)
			incomplete |= !learn[m][i].ran;
	incomplete |= !batch1.ran || !batch4.ran || !fsync_app.ran || !rawping.ran;
	if (keep)
		fprintf(stderr, "kept %s\n", tmp_dir);
	else
		nftw(tmp_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(coord_extra);
	return incomplete ? 1 : 0;
}
