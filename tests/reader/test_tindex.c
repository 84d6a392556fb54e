/* SPDX-License-Identifier: MIT */
/* The tail index: versions by epoch, growth under pinned generations, concurrent lock-free lookups. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reader/tindex.h"
#include "tests/common/tcheck.h"

static void id_of(uint8_t id[16], uint32_t k)
{
	memset(id, 0, 16);
	memcpy(id, &k, sizeof k);
	id[15] = 0xA5;
}

START_TEST(test_tindex_versions_by_epoch)
{
	struct rdr_tindex t;
	uint8_t a[16], b[16];
	uint64_t off;
	uint32_t ord;
	id_of(a, 1);
	id_of(b, 2);
	ck_assert_ok(rdr_tindex_init(&t));
	ck_assert_ok(rdr_tindex_put(&t, a, 3, 1000, 0));  /* learnt at 3 */
	ck_assert_ok(rdr_tindex_put(&t, a, 5, 2000, 0));  /* updated at 5 */
	ck_assert_ok(rdr_tindex_put(&t, a, 7, 0, 0));     /* deleted at 7 */
	ck_assert_ok(rdr_tindex_put(&t, a, 9, 3000, 4));  /* learnt again */
	ck_assert_ok(rdr_tindex_put(&t, b, 4, 1500, 1));
	struct rdr_gen *g = rdr_tindex_acquire(&t);
	ck_assert_ok(rdr_tindex_get(&t, g, a, 2, &off, &ord));
	ck_assert_int_eq(rdr_tindex_get(&t, g, a, 3, &off, &ord), 1);
	ck_assert_uint_eq(off, 1000);
	ck_assert_int_eq(rdr_tindex_get(&t, g, a, 6, &off, &ord), 1);
	ck_assert_uint_eq(off, 2000);
	ck_assert_ok(rdr_tindex_get(&t, g, a, 7, &off, &ord));
	ck_assert_ok(rdr_tindex_get(&t, g, a, 8, &off, &ord));
	ck_assert_int_eq(rdr_tindex_get(&t, g, a, 9, &off, &ord), 1);
	ck_assert_uint_eq(off, 3000);
	ck_assert_uint_eq(ord, 4);
	ck_assert_ok(rdr_tindex_get(&t, g, b, 3, &off, &ord));
	ck_assert_int_eq(rdr_tindex_get(&t, g, b, 100, &off, &ord), 1);
	ck_assert_uint_eq(ord, 1);
	uint8_t c[16];
	id_of(c, 3);
	ck_assert_ok(rdr_tindex_get(&t, g, c, 100, &off, &ord));
	rdr_tindex_release(g);
	rdr_tindex_finish(&t);
}
END_TEST

/* A generation pinned before many inserts (and table doublings) still
 * answers for its own epoch, and the new one for everything. */
START_TEST(test_tindex_pinned_generation_survives_growth)
{
	struct rdr_tindex t;
	uint8_t id[16];
	uint64_t off;
	uint32_t ord;
	ck_assert_ok(rdr_tindex_init(&t));
	for (uint32_t k = 0; k < 100; k++) {
		id_of(id, k);
		ck_assert_ok(rdr_tindex_put(&t, id, 1, 64 + 8 * k, k));
	}
	struct rdr_gen *old = rdr_tindex_acquire(&t);
	for (uint32_t k = 100; k < 200000; k++) {
		id_of(id, k);
		ck_assert_ok(rdr_tindex_put(&t, id, 2 + k / 1000, 64 + 8 * k, k));
	}
	id_of(id, 5);
	ck_assert_ok(rdr_tindex_put(&t, id, 500, 0, 0)); /* deleted later */
	for (uint32_t k = 0; k < 100; k++) {
		id_of(id, k);
		ck_assert_int_eq(rdr_tindex_get(&t, old, id, 1, &off, &ord), 1);
		ck_assert_uint_eq(off, 64 + 8 * k);
	}
	struct rdr_gen *now = rdr_tindex_acquire(&t);
	ck_assert_ptr_ne(now, old);
	for (uint32_t k = 0; k < 200000; k += 7) {
		id_of(id, k);
		int want = k != 5;
		ck_assert_int_eq(rdr_tindex_get(&t, now, id, 1000, &off, &ord), want);
		if (want)
			ck_assert_uint_eq(ord, k);
	}
	id_of(id, 5);
	ck_assert_int_eq(rdr_tindex_get(&t, now, id, 499, &off, &ord), 1);
	rdr_tindex_release(old);
	rdr_tindex_release(now);
	rdr_tindex_finish(&t);
}
END_TEST

/*
 * One writer indexes epochs 1, 2, ... as a refresh does, publishing each
 * epoch after indexing it: epoch e learns ids 4e..4e+3 (offset 8e), updates
 * id 4(e-3)+1 (offset 8e+1) and deletes id 4(e-10). Reader threads pin a
 * generation at the published epoch and check random lookups against that
 * model while the writer goes on (and the table doubles under them).
 */
#define EPOCHS 60000u
static struct rdr_tindex ct;
static uint64_t published;
static int stop_readers;

static int model(uint32_t k, uint64_t e, uint64_t *off)
{
	uint64_t born = k / 4;
	if (born < 1 || born > e)
		return 0;
	if (k % 4 == 0 && e >= born + 10)
		return 0;
	*off = k % 4 == 1 && e >= born + 3 ? (born + 3) * 8 + 1 : born * 8;
	return 1;
}

static void *writer(void *arg)
{
	(void)arg;
	uint8_t id[16];
	for (uint64_t e = 1; e <= EPOCHS; e++) {
		for (uint32_t j = 0; j < 4; j++) {
			uint32_t k = (uint32_t)(4 * e + j);
			id_of(id, k);
			ck_assert_ok(rdr_tindex_put(&ct, id, e, e * 8, k));
		}
		if (e > 3) {
			uint32_t k = (uint32_t)(4 * (e - 3) + 1);
			id_of(id, k);
			ck_assert_ok(rdr_tindex_put(&ct, id, e, e * 8 + 1, k));
		}
		if (e > 10) {
			id_of(id, (uint32_t)(4 * (e - 10)));
			ck_assert_ok(rdr_tindex_put(&ct, id, e, 0, 0));
		}
		__atomic_store_n(&published, e, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&stop_readers, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *reader(void *arg)
{
	uint64_t *checks = arg, seed = (uint64_t)(uintptr_t)arg;
	uint8_t id[16];
	while (!__atomic_load_n(&stop_readers, __ATOMIC_ACQUIRE)) {
		uint64_t e = __atomic_load_n(&published, __ATOMIC_ACQUIRE);
		struct rdr_gen *g = rdr_tindex_acquire(&ct);
		for (int n = 0; n < 64; n++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			uint32_t k = (uint32_t)((seed >> 33) % (4 * e + 8));
			uint64_t want = 0, off = 0;
			uint32_t ord = 0;
			int live = model(k, e, &want);
			id_of(id, k);
			int got = rdr_tindex_get(&ct, g, id, e, &off, &ord);
			ck_assert_msg(got == live, "id %u at epoch %llu: got %d, model %d", k,
				      (unsigned long long)e, got, live);
			if (live) {
				ck_assert_msg(off == want, "id %u at epoch %llu: offset %llu, model %llu",
					      k, (unsigned long long)e, (unsigned long long)off,
					      (unsigned long long)want);
				ck_assert_uint_eq(ord, k);
			}
			(*checks)++;
		}
		rdr_tindex_release(g);
	}
	return NULL;
}

START_TEST(test_tindex_concurrent_readers_see_their_epoch)
{
	pthread_t w, r[3];
	uint64_t checks[3] = { 0 };
	ck_assert_ok(rdr_tindex_init(&ct));
	published = 0;
	stop_readers = 0;
	for (int i = 0; i < 3; i++)
		pthread_create(&r[i], NULL, reader, &checks[i]);
	pthread_create(&w, NULL, writer, NULL);
	pthread_join(w, NULL);
	for (int i = 0; i < 3; i++) {
		pthread_join(r[i], NULL);
		ck_assert_uint_gt(checks[i], 0);
	}
	rdr_tindex_finish(&ct);
}
END_TEST

TCHECK_MAIN("reader", "tindex", 120, test_tindex_versions_by_epoch,
	    test_tindex_pinned_generation_survives_growth,
	    test_tindex_concurrent_readers_see_their_epoch)
