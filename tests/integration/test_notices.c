/* SPDX-License-Identifier: MIT */
/* Notices against the real coordinator: the callback thread, and readers that keep up when notices are lost. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sutra/client.h"
#include "sutra/reader.h"
#include "tests/common/daemon.h"
#include "tests/common/tcheck.h"

#define FLOOD_WRITERS 4
#define FLOOD_EACH 1000
#define MAX_LOGGED 64

static void id_of(uint8_t id[16], uint32_t group, uint32_t k)
{
	memset(id, 0, 16);
	memcpy(id, &group, 4);
	memcpy(id + 4, &k, 4);
	id[15] = 0xC0;
}

static void learn(sutra_client *c, const uint8_t id[16], const char *text, uint64_t *epoch)
{
	struct sutra_concept_in in = { .id = id, .content = text, .content_len = strlen(text),
				       .strength = 1, .confidence = 1 };
	ck_assert_ok(sutra_client_learn_concept(c, &in, epoch));
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Resident set size of this process in KiB, from /proc. */
static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* ---- What a listener saw ---------------------------------------------- */

/* One epoch notice as the callback copied it. */
struct logged {
	uint64_t epoch;
	uint32_t changed[8];
	size_t changed_count;
	int acquire_rc;  /* sutra_snapshot_acquire(r, epoch) inside the callback */
};

struct seen {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	sutra_reader *r;          /* acquire a snapshot of each epoch notice (or NULL) */
	pthread_t test_thread;
	int entered, returned;    /* calls begun, calls returned */
	int calls, heartbeats, on_test_thread, out_of_order;
	uint64_t max_epoch, last_notice_epoch;
	struct logged log[MAX_LOGGED];
	int nlog;
	int hold_ms;              /* each call sleeps this long (a slow consumer) */
	int current_hold_ms;      /* hold_ms of the last call begun */
	double entered_at;        /* when the last call began */
	sutra_listener *self;     /* stop_self(): the listener to stop from its callback */
};

static void seen_init(struct seen *s, sutra_reader *r)
{
	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->r = r;
	s->test_thread = pthread_self();
}

static void seen_finish(struct seen *s)
{
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
}

static void record(void *arg, const struct sutra_notice *n)
{
	struct seen *s = arg;
	int hold;
	pthread_mutex_lock(&s->mu);
	s->entered++;
	s->entered_at = tdaemon_now_s();
	hold = s->current_hold_ms = s->hold_ms;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if (hold)
		sleep_ms(hold);

	/* The callback may use the reader: the file holds the epoch a
	 * notice announces (the coordinator publishes, then notifies). */
	int acquire_rc = 0;
	if (!n->heartbeat && s->r) {
		sutra_snapshot *sn;
		acquire_rc = sutra_snapshot_acquire(s->r, n->epoch, &sn);
		if (acquire_rc == 0 && sutra_snapshot_epoch(sn) < n->epoch)
			acquire_rc = -1;
		sutra_snapshot_release(sn);
	}

	pthread_mutex_lock(&s->mu);
	s->calls++;
	if (pthread_equal(pthread_self(), s->test_thread))
		s->on_test_thread++;
	if (n->epoch > s->max_epoch)
		s->max_epoch = n->epoch;
	if (n->heartbeat) {
		s->heartbeats++;
	} else {
		/* Epoch notices come from the coordinator's one writer thread
		 * over one connection: lost ones leave gaps, never reorder. */
		if (n->epoch <= s->last_notice_epoch)
			s->out_of_order++;
		s->last_notice_epoch = n->epoch;
		if (s->nlog < MAX_LOGGED) {
			struct logged *l = &s->log[s->nlog++];
			l->epoch = n->epoch;
			l->changed_count = n->changed_count;
			for (size_t i = 0; i < n->changed_count && i < 8; i++)
				l->changed[i] = n->changed[i];
			l->acquire_rc = acquire_rc;
		}
	}
	s->returned++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Stops its own listener on the first call. */
static void stop_self(void *arg, const struct sutra_notice *n)
{
	struct seen *s = arg;
	(void)n;
	pthread_mutex_lock(&s->mu);
	while (!s->self)
		pthread_cond_wait(&s->cv, &s->mu); /* until listen() has returned */
	s->calls++;
	sutra_listener *self = s->self;
	pthread_mutex_unlock(&s->mu);
	sutra_listener_stop(self);
	pthread_mutex_lock(&s->mu);
	s->returned++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

enum until { UNTIL_ANY, UNTIL_EPOCH, UNTIL_NOTICE_OF, UNTIL_SLOW_CALL };

/* Waits up to timeout_s for the listener to have seen: a call returned
 * (UNTIL_ANY), a notice or heartbeat of epoch or later (UNTIL_EPOCH), the
 * epoch notice of exactly epoch (UNTIL_NOTICE_OF), or to be inside a call
 * holding epoch ms (UNTIL_SLOW_CALL). Returns 1 when it did. */
static int wait_seen(struct seen *s, enum until what, uint64_t epoch, double timeout_s)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += (time_t)timeout_s;
	dl.tv_nsec += (long)((timeout_s - (double)(time_t)timeout_s) * 1e9);
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	int ok = 0;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		if (what == UNTIL_ANY)
			ok = s->returned > 0;
		else if (what == UNTIL_EPOCH)
			ok = s->max_epoch >= epoch;
		else if (what == UNTIL_SLOW_CALL)
			ok = s->entered > s->returned && (uint64_t)s->current_hold_ms == epoch;
		else
			for (int i = 0; i < s->nlog && !ok; i++)
				ok = s->log[i].epoch == epoch;
		if (ok || pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&s->mu);
	return ok;
}

static const struct logged *find_notice(struct seen *s, uint64_t epoch)
{
	for (int i = 0; i < s->nlog; i++)
		if (s->log[i].epoch == epoch)
			return &s->log[i];
	return NULL;
}

static void assert_changed(struct seen *s, uint64_t epoch, const uint32_t *want, size_t n)
{
	const struct logged *l = find_notice(s, epoch);
	ck_assert_msg(l, "no notice of epoch %" PRIu64, epoch);
	ck_assert_int_eq(l->acquire_rc, 0);
	ck_assert_uint_eq(l->changed_count, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(l->changed[i], want[i]);
}

/* ---- Child process: a flood writer ------------------------------------ */

/* Learns `count` concepts of group `group`, one request each, and prints
 * the epoch of the last. */
static int flood_main(const char *url, uint32_t group, uint32_t count)
{
	sutra_client *c;
	uint64_t epoch = 0;
	if (sutra_client_connect(url, NULL, &c))
		return 3;
	for (uint32_t k = 0; k < count; k++) {
		uint8_t id[16];
		char text[48];
		id_of(id, group, k);
		snprintf(text, sizeof text, "flood %u/%u", group, k);
		struct sutra_concept_in in = { .id = id, .content = text,
					       .content_len = strlen(text), .strength = 1,
					       .confidence = 1 };
		int rc = sutra_client_learn_concept(c, &in, &epoch);
		if (rc) {
			fprintf(stderr, "flood %u/%u: %s\n", group, k, sutra_strerror(rc));
			return 4;
		}
	}
	printf("%" PRIu64 "\n", epoch);
	fflush(stdout);
	sutra_client_close(c);
	return 0;
}

/* ---- The tests -------------------------------------------------------- */

/* The callback form: each write's notice arrives with its epoch and the
 * ordinals it touched, the reader can be used inside the callback, stop
 * waits for a callback in progress and is prompt, and a callback may stop
 * its own listener. */
START_TEST(test_notices_callback)
{
	struct tdaemon d;
	const char *args[] = { "--vector-dimension", "4", "--check-interval-ms", "100", NULL };
	uint8_t a[16], b[16], c[16], dd[16], e5id[16];
	uint64_t e1, e2, e3, e4, e5;
	struct seen s1, s2, s3;
	sutra_listener *l1, *l2, *l3;
	id_of(a, 1, 0);
	id_of(b, 1, 1);
	id_of(c, 1, 2);
	id_of(dd, 1, 3);
	id_of(e5id, 1, 4);
	ck_assert_ok(tdaemon_mkdir(&d));
	ck_assert_ok(tdaemon_start(&d, args));
	sutra_reader *r;
	ck_assert_ok(sutra_reader_open(d.data, &r));
	seen_init(&s1, r);

	/* Not subscribed yet; bad arguments. */
	ck_assert_err(sutra_reader_listen(r, record, &s1, &l1), -ENOTCONN);
	ck_assert_ok(sutra_reader_subscribe(r, d.events));
	ck_assert_err(sutra_reader_listen(r, NULL, &s1, &l1), -EINVAL);
	ck_assert_err(sutra_reader_listen(NULL, record, &s1, &l1), -EINVAL);
	ck_assert_err(sutra_reader_listen(r, record, &s1, NULL), -EINVAL);
	sutra_listener_stop(NULL);

	ck_assert_ok(sutra_reader_listen(r, record, &s1, &l1));
	/* The subscription connects in the background: a heartbeat shows it. */
	ck_assert_msg(wait_seen(&s1, UNTIL_ANY, 0, 5), "no notice within 5 s");

	sutra_client *cl;
	ck_assert_ok(sutra_client_connect(d.url, NULL, &cl));
	learn(cl, a, "a", &e1);
	learn(cl, b, "b", &e2);
	sutra_batch *bt = sutra_batch_create();
	struct sutra_concept_in in = { .id = c, .content = "c", .content_len = 1, .strength = 1,
				       .confidence = 1 };
	ck_assert_ok(sutra_batch_learn_concept(bt, &in));
	in.id = dd;
	in.content = "d";
	ck_assert_ok(sutra_batch_learn_concept(bt, &in));
	ck_assert_ok(sutra_batch_learn_association(bt, a, b, 1, 0.5f, 1));
	ck_assert_ok(sutra_client_commit(cl, bt, &e3));
	sutra_batch_destroy(bt);
	ck_assert_ok(sutra_client_delete_association(cl, a, b, 1, &e4));
	ck_assert_uint_eq(e2, e1 + 1);
	ck_assert_uint_eq(e3, e2 + 1);
	ck_assert_uint_eq(e4, e3 + 1);

	ck_assert_msg(wait_seen(&s1, UNTIL_NOTICE_OF, e4, 5), "no notice of epoch %" PRIu64, e4);
	pthread_mutex_lock(&s1.mu);
	{
		const uint32_t w1[] = { 0 }, w2[] = { 1 }, w3[] = { 0, 1, 2, 3 }, w4[] = { 0, 1 };
		assert_changed(&s1, e1, w1, 1);
		assert_changed(&s1, e2, w2, 1);
		assert_changed(&s1, e3, w3, 4);
		assert_changed(&s1, e4, w4, 2);
	}
	ck_assert_int_eq(s1.on_test_thread, 0);
	ck_assert_int_eq(s1.out_of_order, 0);
	ck_assert_int_gt(s1.heartbeats, 0);
	ck_assert_uint_eq(s1.max_epoch, e4);
	/* Slow the callback down; the next heartbeat (every 100 ms) enters
	 * it, and stop is called while that call is in progress. */
	s1.hold_ms = 300;
	pthread_mutex_unlock(&s1.mu);
	ck_assert_msg(wait_seen(&s1, UNTIL_SLOW_CALL, 300, 5), "no slow call began within 5 s");
	double t0 = tdaemon_now_s();
	sutra_listener_stop(l1);
	double t1 = tdaemon_now_s();
	pthread_mutex_lock(&s1.mu);
	double entered = s1.entered_at;
	ck_assert_int_eq(s1.returned, s1.entered); /* stop waited for it */
	int calls_at_stop = s1.calls;
	pthread_mutex_unlock(&s1.mu);
	ck_assert_msg(t1 >= entered + 0.29, "stop returned %.3f s into a 0.3 s callback",
		      t1 - entered);
	ck_assert_msg(t1 - t0 < 0.5, "stop took %.3f s", t1 - t0);

	/* A listener that stops itself from its callback. */
	seen_init(&s2, NULL);
	ck_assert_ok(sutra_reader_listen(r, stop_self, &s2, &l2));
	pthread_mutex_lock(&s2.mu);
	s2.self = l2;
	pthread_cond_broadcast(&s2.cv);
	pthread_mutex_unlock(&s2.mu);
	ck_assert_msg(wait_seen(&s2, UNTIL_ANY, 0, 5), "the self-stopping callback never returned");

	/* A third listener hears the next write; the stopped ones nothing. */
	seen_init(&s3, r);
	ck_assert_ok(sutra_reader_listen(r, record, &s3, &l3));
	ck_assert_msg(wait_seen(&s3, UNTIL_ANY, 0, 5), "no notice within 5 s");
	learn(cl, e5id, "e", &e5);
	ck_assert_msg(wait_seen(&s3, UNTIL_NOTICE_OF, e5, 5), "no notice of epoch %" PRIu64, e5);
	pthread_mutex_lock(&s3.mu);
	{
		const uint32_t w5[] = { 4 };
		assert_changed(&s3, e5, w5, 1);
	}
	pthread_mutex_unlock(&s3.mu);
	t0 = tdaemon_now_s();
	sutra_listener_stop(l3);
	t1 = tdaemon_now_s();
	ck_assert_msg(t1 - t0 < 0.2, "stop took %.3f s", t1 - t0);
	pthread_mutex_lock(&s1.mu);
	ck_assert_int_eq(s1.calls, calls_at_stop);
	pthread_mutex_unlock(&s1.mu);
	pthread_mutex_lock(&s2.mu);
	ck_assert_int_eq(s2.calls, 1);
	ck_assert_int_eq(s2.returned, 1);
	pthread_mutex_unlock(&s2.mu);

	sutra_client_close(cl);
	sutra_reader_close(r);
	seen_finish(&s1);
	seen_finish(&s3);
	ck_assert_ok(tdaemon_stop(&d));
	tdaemon_cleanup(&d);
}
END_TEST

/* A coordinator restarted (SIGTERM, then SIGKILL) under a subscribed
 * reader: the listener hears it again, epoch notices resume with their
 * ordinals, and a second subscribed reader waits for a new epoch. */
START_TEST(test_notices_survive_coordinator_restart)
{
	struct tdaemon d;
	const char *args[] = { "--vector-dimension", "4", "--check-interval-ms", "100", NULL };
	uint64_t e;
	uint32_t ordinal = 0;
	struct seen s;
	sutra_listener *l;
	ck_assert_ok(tdaemon_mkdir(&d));
	ck_assert_ok(tdaemon_start(&d, args));
	sutra_reader *r, *r2;
	ck_assert_ok(sutra_reader_open(d.data, &r));
	ck_assert_ok(sutra_reader_open(d.data, &r2));
	ck_assert_ok(sutra_reader_subscribe(r, d.events));
	ck_assert_ok(sutra_reader_subscribe(r2, d.events));
	seen_init(&s, r);
	ck_assert_ok(sutra_reader_listen(r, record, &s, &l));
	ck_assert_msg(wait_seen(&s, UNTIL_ANY, 0, 5), "no notice within 5 s");

	sutra_client *cl;
	uint8_t id[16];
	ck_assert_ok(sutra_client_connect(d.url, NULL, &cl));
	id_of(id, 2, ordinal);
	learn(cl, id, "before", &e);
	ck_assert_msg(wait_seen(&s, UNTIL_NOTICE_OF, e, 5), "no notice of epoch %" PRIu64, e);
	ordinal++;
	sutra_client_close(cl);

	for (int round = 0; round < 2; round++) {
		if (round == 0)
			ck_assert_ok(tdaemon_stop(&d));
		else
			tdaemon_kill9(&d);
		ck_assert_ok(tdaemon_start(&d, args));
		ck_assert_ok(sutra_client_connect(d.url, NULL, &cl));

		/* Written before the subscriber has necessarily reconnected:
		 * its notice may be lost, but heartbeats carry its epoch. */
		uint64_t prev = e;
		id_of(id, 2, ordinal++);
		learn(cl, id, "just after the restart", &e);
		ck_assert_uint_gt(e, prev);
		ck_assert_msg(wait_seen(&s, UNTIL_EPOCH, e, 5),
			      "round %d: the listener never heard epoch %" PRIu64, round, e);
		ck_assert_ok(sutra_reader_wait_for_epoch(r2, e, 5000));
		sutra_snapshot *sn;
		ck_assert_ok(sutra_snapshot_acquire(r2, e, &sn));
		ck_assert_int_eq(sutra_snapshot_contains(sn, id), 1);
		sutra_snapshot_release(sn);

		/* Now reconnected: an epoch notice, with its ordinal. */
		uint32_t o = ordinal;
		id_of(id, 2, ordinal++);
		learn(cl, id, "once reconnected", &e);
		ck_assert_msg(wait_seen(&s, UNTIL_NOTICE_OF, e, 5),
			      "round %d: no notice of epoch %" PRIu64, round, e);
		pthread_mutex_lock(&s.mu);
		assert_changed(&s, e, &o, 1);
		pthread_mutex_unlock(&s.mu);
		ck_assert_ok(sutra_reader_wait_for_epoch(r2, e, 5000));
		sutra_client_close(cl);
	}
	double t0 = tdaemon_now_s();
	sutra_listener_stop(l);
	ck_assert_msg(tdaemon_now_s() - t0 < 0.2, "stop took %.3f s", tdaemon_now_s() - t0);
	pthread_mutex_lock(&s.mu);
	ck_assert_int_eq(s.out_of_order, 0);
	pthread_mutex_unlock(&s.mu);
	sutra_reader_close(r);
	sutra_reader_close(r2);
	seen_finish(&s);
	ck_assert_ok(tdaemon_stop(&d));
	tdaemon_cleanup(&d);
}
END_TEST

#define DEAD_ROUNDS 10

struct paced {
	const char *url;
	uint64_t epoch[DEAD_ROUNDS];
	double acked[DEAD_ROUNDS];
	int rc;
};

/* Writes one concept every 30 ms, so that the reader is already waiting. */
static void *paced_writer(void *arg)
{
	struct paced *p = arg;
	sutra_client *c;
	if ((p->rc = sutra_client_connect(p->url, NULL, &c)))
		return NULL;
	for (int k = 0; k < DEAD_ROUNDS; k++) {
		uint8_t id[16];
		id_of(id, 3, (uint32_t)k);
		struct sutra_concept_in in = { .id = id, .content = "paced", .content_len = 5,
					       .strength = 1, .confidence = 1 };
		sleep_ms(30);
		if ((p->rc = sutra_client_learn_concept(c, &in, &p->epoch[k])))
			break;
		p->acked[k] = tdaemon_now_s();
	}
	sutra_client_close(c);
	return NULL;
}

/* Subscribed to an events URL nobody serves: no notice ever comes, yet
 * wait_for_epoch returns within about 50 ms of each write (it reads the
 * file while it waits for notices), and an idle listener stops at once. */
START_TEST(test_notices_dead_subscription)
{
	struct tdaemon d;
	const char *args[] = { "--vector-dimension", "4", "--check-interval-ms", "100", NULL };
	char dead[400];
	struct seen s;
	sutra_listener *l;
	ck_assert_ok(tdaemon_mkdir(&d));
	ck_assert_ok(tdaemon_start(&d, args));
	snprintf(dead, sizeof dead, "ipc://%s/nobody.sock", d.dir);
	sutra_reader *r;
	ck_assert_ok(sutra_reader_open(d.data, &r));
	ck_assert_ok(sutra_reader_subscribe(r, dead));
	seen_init(&s, r);
	ck_assert_ok(sutra_reader_listen(r, record, &s, &l));

	uint64_t e0;
	ck_assert_ok(sutra_reader_refresh(r, &e0));
	struct paced p = { .url = d.url };
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, paced_writer, &p), 0);
	double returned[DEAD_ROUNDS];
	for (int k = 0; k < DEAD_ROUNDS; k++) {
		int rc = sutra_reader_wait_for_epoch(r, e0 + 1 + (uint64_t)k, 5000);
		returned[k] = tdaemon_now_s();
		ck_assert_msg(rc == 0, "round %d: %s", k, sutra_strerror(rc));
	}
	pthread_join(th, NULL);
	ck_assert_int_eq(p.rc, 0);
	double worst = 0;
	for (int k = 0; k < DEAD_ROUNDS; k++) {
		ck_assert_uint_eq(p.epoch[k], e0 + 1 + (uint64_t)k);
		if (returned[k] - p.acked[k] > worst)
			worst = returned[k] - p.acked[k];
	}
	printf("dead subscription: wait_for_epoch returned at most %.1f ms after the ack\n",
	       worst * 1000);
	ck_assert_msg(worst < 0.25, "wait_for_epoch lagged %.3f s behind a write", worst);

	double t0 = tdaemon_now_s();
	sutra_listener_stop(l);
	double took = tdaemon_now_s() - t0;
	ck_assert_msg(took < 0.1, "an idle listener took %.3f s to stop", took);
	ck_assert_int_eq(s.calls, 0);
	sutra_reader_close(r);
	seen_finish(&s);
	ck_assert_ok(tdaemon_stop(&d));
	tdaemon_cleanup(&d);
}
END_TEST

struct visit_count {
	uint64_t flood, other;
};

static int count_flood(void *arg, const struct sutra_concept_view *v)
{
	struct visit_count *c = arg;
	if (v->content_len > 6 && memcmp(v->content, "flood ", 6) == 0)
		c->flood++;
	else
		c->other++;
	return 0;
}

/* Checks that the snapshot of r at epoch holds every flooded concept. */
static void assert_all_flooded(sutra_reader *r, uint64_t epoch)
{
	sutra_snapshot *sn;
	struct sutra_reader_stats st;
	struct visit_count vc = { 0, 0 };
	ck_assert_ok(sutra_snapshot_acquire(r, epoch, &sn));
	ck_assert_uint_ge(sutra_snapshot_epoch(sn), epoch);
	for (uint32_t g = 0; g < FLOOD_WRITERS; g++)
		for (uint32_t k = 0; k < FLOOD_EACH; k++) {
			uint8_t id[16];
			id_of(id, 100 + g, k);
			ck_assert_msg(sutra_snapshot_contains(sn, id), "flood %u/%u missing", g, k);
		}
	ck_assert_ok(sutra_snapshot_foreach(sn, count_flood, &vc));
	ck_assert_uint_eq(vc.flood, FLOOD_WRITERS * FLOOD_EACH);
	ck_assert_uint_eq(vc.other, 0);
	sutra_snapshot_stats(sn, &st);
	ck_assert_uint_eq(st.concept_count, FLOOD_WRITERS * FLOOD_EACH);
	sutra_snapshot_release(sn);
}

/* Thousands of commits from writer processes while one reader's callback
 * sleeps on each notice and another reader never drains its fd: queues
 * drop, nothing blocks or grows, and both readers reach the last epoch. */
START_TEST(test_notices_flood)
{
	struct tdaemon d;
	const char *args[] = { "--vector-dimension", "4", "--check-interval-ms", "100",
			       "--durability", "relaxed", NULL };
	struct seen s;
	sutra_listener *l;
	ck_assert_ok(tdaemon_mkdir(&d));
	ck_assert_ok(tdaemon_start(&d, args));
	sutra_reader *slow, *deaf;
	ck_assert_ok(sutra_reader_open(d.data, &slow));
	ck_assert_ok(sutra_reader_open(d.data, &deaf));
	ck_assert_ok(sutra_reader_subscribe(slow, d.events));
	ck_assert_ok(sutra_reader_subscribe(deaf, d.events));
	seen_init(&s, NULL);
	s.hold_ms = 5;
	ck_assert_ok(sutra_reader_listen(slow, record, &s, &l));
	ck_assert_msg(wait_seen(&s, UNTIL_ANY, 0, 5), "no notice within 5 s");
	long rss0 = rss_kib();

	FILE *out[FLOOD_WRITERS];
	pid_t pid[FLOOD_WRITERS];
	char group[FLOOD_WRITERS][16], each[16];
	snprintf(each, sizeof each, "%d", FLOOD_EACH);
	double t0 = tdaemon_now_s();
	for (int w = 0; w < FLOOD_WRITERS; w++) {
		snprintf(group[w], sizeof group[w], "%d", 100 + w);
		const char *argv[] = { "test_int_notices", "--flood", d.url, group[w], each, NULL };
		out[w] = tmpfile();
		ck_assert_ptr_nonnull(out[w]);
		pid[w] = tdaemon_spawn_self(argv, -1, fileno(out[w]));
		ck_assert_int_gt(pid[w], 0);
	}
	uint64_t last = 0;
	for (int w = 0; w < FLOOD_WRITERS; w++) {
		uint64_t e;
		ck_assert_ok(tdaemon_reap(pid[w]));
		rewind(out[w]);
		ck_assert_int_eq(fscanf(out[w], "%" SCNu64, &e), 1);
		fclose(out[w]);
		if (e > last)
			last = e;
	}
	double t1 = tdaemon_now_s();

	ck_assert_ok(sutra_reader_wait_for_epoch(deaf, last, 10000));
	ck_assert_ok(sutra_reader_wait_for_epoch(slow, last, 10000));
	assert_all_flooded(deaf, last);
	assert_all_flooded(slow, last);
	/* The slow listener catches up too, through what was not dropped
	 * and then the heartbeats. */
	ck_assert_msg(wait_seen(&s, UNTIL_EPOCH, last, 10), "the listener never heard epoch %"
			      PRIu64, last);
	double t2 = tdaemon_now_s();
	sutra_listener_stop(l);
	double took = tdaemon_now_s() - t2;
	long rss1 = rss_kib();

	pthread_mutex_lock(&s.mu);
	printf("flood: %d commits in %.2f s (last epoch %" PRIu64 "); the slow listener got %d "
	       "notices (%d heartbeats), RSS %ld -> %ld KiB; stop took %.1f ms\n",
	       FLOOD_WRITERS * FLOOD_EACH, t1 - t0, last, s.calls, s.heartbeats, rss0, rss1,
	       took * 1000);
	ck_assert_int_eq(s.out_of_order, 0);
	ck_assert_int_lt(s.calls - s.heartbeats, FLOOD_WRITERS * FLOOD_EACH);
	pthread_mutex_unlock(&s.mu);
	ck_assert_msg(took < 0.1, "stop took %.3f s", took);
	ck_assert_msg(rss1 - rss0 < 64 * 1024, "RSS grew from %ld to %ld KiB", rss0, rss1);

	sutra_reader_close(slow);
	sutra_reader_close(deaf);
	seen_finish(&s);
	ck_assert_ok(tdaemon_stop(&d));
	tdaemon_cleanup(&d);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "--flood") == 0)
		return flood_main(argv[2], (uint32_t)atoi(argv[3]), (uint32_t)atoi(argv[4]));

	Suite *s = suite_create("integration");
	TCase *tc = tcase_create("notices");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_notices_callback);
	tcase_add_test(tc, test_notices_survive_coordinator_restart);
	tcase_add_test(tc, test_notices_dead_subscription);
	tcase_add_test(tc, test_notices_flood);
	suite_add_tcase(s, tc);
	return tcheck_run_suite(s);
}
