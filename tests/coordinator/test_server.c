/* SPDX-License-Identifier: MIT */
/* A coordinator run in-process through the public API: start, write, stats from other threads, stop. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sutra/client.h"
#include "sutra/coordinator.h"
#include "tests/common/tcheck.h"

#define DIM 8u

static char dir[64];

/* What the log callback saw, one message per line. */
static char logbuf[8192];
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static void log_keep(void *arg, int level, const char *msg)
{
	ck_assert_ptr_eq(arg, logbuf);
	ck_assert_int_ge(level, SUTRA_LOG_ERROR);
	ck_assert_int_le(level, SUTRA_LOG_DEBUG);
	pthread_mutex_lock(&log_mu);
	size_t n = strlen(logbuf);
	snprintf(logbuf + n, sizeof logbuf - n, "%d %s\n", level, msg);
	pthread_mutex_unlock(&log_mu);
}

static int log_has(const char *text)
{
	pthread_mutex_lock(&log_mu);
	int has = strstr(logbuf, text) != NULL;
	pthread_mutex_unlock(&log_mu);
	return has;
}

/* A configuration for a store in dir (the directory itself: the store is
 * dir/storage.dat) with its sockets there too. */
static sutra_coordinator_config *config(const char *level)
{
	sutra_coordinator_config *cfg;
	char url[128];
	ck_assert_ok(sutra_coordinator_config_create(&cfg));
	ck_assert_ok(sutra_coordinator_config_set(cfg, "data", dir, NULL));
	snprintf(url, sizeof url, "ipc://%s/w", dir);
	ck_assert_ok(sutra_coordinator_config_set(cfg, "listen", url, NULL));
	snprintf(url, sizeof url, "ipc://%s/e", dir);
	ck_assert_ok(sutra_coordinator_config_set(cfg, "events", url, NULL));
	ck_assert_ok(sutra_coordinator_config_set(cfg, "default-vector-dimension", "8", NULL));
	ck_assert_ok(sutra_coordinator_config_set(cfg, "log-level", level, NULL));
	sutra_coordinator_config_set_log(cfg, log_keep, logbuf);
	return cfg;
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/sutra-server-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	logbuf[0] = 0;
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void learn(sutra_client *c, uint32_t i)
{
	uint8_t id[16] = { 0 };
	float emb[DIM] = { 1.0f };
	char content[32];
	memcpy(id, &i, sizeof i);
	id[15] = 1;
	snprintf(content, sizeof content, "concept %u", i);
	struct sutra_concept_in in = { .id = id,
				       .content = content,
				       .content_len = strlen(content),
				       .embedding = emb,
				       .vector_dim = DIM,
				       .strength = 1.0f,
				       .confidence = 1.0f };
	ck_assert_ok(sutra_client_learn_concept(c, &in, NULL));
}

START_TEST(test_server_starts_serves_and_stops)
{
	setup();
	sutra_coordinator_config *cfg = config("info");
	sutra_coordinator *co;
	struct sutra_detail why = { .what = "" };
	struct sutra_coord_stats st;
	char path[128], url[128];

	ck_assert_ok(sutra_coordinator_start(cfg, &co, &why));
	/* The configuration was copied. */
	sutra_coordinator_config_destroy(cfg);
	snprintf(path, sizeof path, "%s/storage.dat", dir);
	struct stat sb;
	ck_assert_int_eq(stat(path, &sb), 0);
	snprintf(url, sizeof url, "ipc://%s/w", dir);
	ck_assert_str_eq(sutra_coordinator_listen_url(co), url);
	snprintf(url, sizeof url, "ipc://%s/e", dir);
	ck_assert_str_eq(sutra_coordinator_events_url(co), url);
	ck_assert(log_has("serving writes on ipc://"));
	ck_assert(log_has("created "));

	ck_assert_ok(sutra_coordinator_stats(co, &st));
	ck_assert_uint_eq(st.epoch, 0);
	ck_assert_uint_eq(st.vector_dim, DIM);
	ck_assert_uint_eq(st.relaxed, 0);
	ck_assert_uint_eq(st.requests, 0);

	sutra_client *c;
	ck_assert_ok(sutra_client_connect(sutra_coordinator_listen_url(co), NULL, &c));
	learn(c, 1);
	learn(c, 2);
	struct sutra_coord_stats wire;
	ck_assert_ok(sutra_client_stats(c, &wire));
	ck_assert_ok(sutra_coordinator_stats(co, &st));
	/* In the process or over the wire, the same figures. */
	ck_assert_uint_eq(st.requests, 2);
	ck_assert_uint_eq(st.concept_count, 2);
	ck_assert_uint_eq(st.epoch, wire.epoch);
	ck_assert_uint_eq(st.requests, wire.requests);
	ck_assert_uint_eq(st.concept_count, wire.concept_count);
	ck_assert_uint_eq(st.commits, wire.commits);
	sutra_client_close(c);

	ck_assert_ok(sutra_coordinator_wait(co, 0));
	sutra_coordinator_stop(co);
	sutra_coordinator_stop(co);
	ck_assert_int_eq(sutra_coordinator_wait(co, -1), 1);
	ck_assert_ok(sutra_coordinator_failed(co));
	/* Stopped, it still reports, read by this thread. */
	ck_assert_ok(sutra_coordinator_stats(co, &st));
	ck_assert_uint_eq(st.requests, 2);
	ck_assert_uint_eq(st.durable_epoch, st.epoch);
	ck_assert_ok(sutra_coordinator_destroy(co));
	ck_assert_ok(sutra_coordinator_destroy(NULL));
	teardown();
}
END_TEST

struct poller {
	sutra_coordinator *co;
	atomic_int stop;
	uint64_t calls;
	int monotonic;
};

static void *poll_stats(void *arg)
{
	struct poller *p = arg;
	uint64_t last = 0;
	p->monotonic = 1;
	while (!atomic_load(&p->stop)) {
		struct sutra_coord_stats st;
		if (sutra_coordinator_stats(p->co, &st) != 0) {
			p->monotonic = 0;
			break;
		}
		if (st.requests < last || st.epoch < st.durable_epoch)
			p->monotonic = 0;
		last = st.requests;
		p->calls++;
	}
	return NULL;
}

START_TEST(test_server_stats_from_other_threads_while_writing)
{
	setup();
	sutra_coordinator_config *cfg = config("warning");
	sutra_coordinator *co;
	struct sutra_coord_stats st;
	enum { WRITES = 200, POLLERS = 2 };

	ck_assert_ok(sutra_coordinator_start(cfg, &co, NULL));
	sutra_coordinator_config_destroy(cfg);
	struct poller p[POLLERS];
	pthread_t t[POLLERS];
	for (int i = 0; i < POLLERS; i++) {
		p[i] = (struct poller){ .co = co };
		ck_assert_int_eq(pthread_create(&t[i], NULL, poll_stats, &p[i]), 0);
	}
	sutra_client *c;
	ck_assert_ok(sutra_client_connect(sutra_coordinator_listen_url(co), NULL, &c));
	for (uint32_t i = 0; i < WRITES; i++)
		learn(c, i);
	sutra_client_close(c);
	/* Some of them still asking while it stops. */
	sutra_coordinator_stop(co);
	ck_assert_int_eq(sutra_coordinator_wait(co, -1), 1);
	for (int i = 0; i < POLLERS; i++) {
		atomic_store(&p[i].stop, 1);
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_msg(p[i].monotonic, "poller %d saw figures go backwards", i);
		ck_assert_uint_gt(p[i].calls, 0);
	}
	ck_assert_ok(sutra_coordinator_stats(co, &st));
	ck_assert_uint_eq(st.requests, WRITES);
	ck_assert_uint_eq(st.concept_count, WRITES);
	/* log-level warning: the info lines were dropped. */
	ck_assert(!log_has("serving writes"));
	ck_assert_ok(sutra_coordinator_destroy(co));
	teardown();
}
END_TEST

START_TEST(test_server_one_writer_per_store)
{
	setup();
	sutra_coordinator_config *cfg = config("info");
	sutra_coordinator *co, *second = NULL;
	struct sutra_detail why = { .what = "" };
	char url[128];

	ck_assert_ok(sutra_coordinator_start(cfg, &co, NULL));
	/* Other sockets, same store: the writer lock refuses it. */
	snprintf(url, sizeof url, "ipc://%s/w2", dir);
	ck_assert_ok(sutra_coordinator_config_set(cfg, "listen", url, NULL));
	ck_assert_err(sutra_coordinator_start(cfg, &second, &why), SUTRA_ELOCKED);
	ck_assert_ptr_null(second);
	ck_assert_str_ne(why.what, "");
	ck_assert_ok(sutra_coordinator_destroy(co));

	/* An explicit dimension must match the store's; a default one not. */
	ck_assert_ok(sutra_coordinator_config_set(cfg, "vector-dimension", "16", NULL));
	ck_assert_err(sutra_coordinator_start(cfg, &second, &why), SUTRA_EDIM);
	ck_assert_ok(sutra_coordinator_config_set(cfg, "vector-dimension", "8", NULL));
	ck_assert_ok(sutra_coordinator_start(cfg, &second, NULL));
	ck_assert_ok(sutra_coordinator_destroy(second));
	sutra_coordinator_config_destroy(cfg);
	teardown();
}
END_TEST

START_TEST(test_server_default_urls_sit_next_to_the_data)
{
	setup();
	sutra_coordinator_config *cfg;
	sutra_coordinator *co;
	char path[128], want[160];

	ck_assert_ok(sutra_coordinator_config_create(&cfg));
	snprintf(path, sizeof path, "%s/kb.dat", dir);
	ck_assert_ok(sutra_coordinator_config_set(cfg, "data", path, NULL));
	ck_assert_ok(sutra_coordinator_config_set(cfg, "check-interval-ms", "0", NULL));
	ck_assert_ok(sutra_coordinator_start(cfg, &co, NULL));
	sutra_coordinator_config_destroy(cfg);
	ck_assert_ok(sutra_coordinator_default_url(path, "write", want, sizeof want));
	ck_assert_str_eq(sutra_coordinator_listen_url(co), want);
	ck_assert_ok(sutra_coordinator_default_url(path, "events", want, sizeof want));
	ck_assert_str_eq(sutra_coordinator_events_url(co), want);
	ck_assert_ok(sutra_coordinator_destroy(co));
	teardown();
}
END_TEST

TCHECK_MAIN("coordinator", "server", 0, test_server_starts_serves_and_stops,
	    test_server_stats_from_other_threads_while_writing, test_server_one_writer_per_store,
	    test_server_default_urls_sit_next_to_the_data)
