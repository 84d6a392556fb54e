/* SPDX-License-Identifier: MIT */
/* The resend cache: resends get the remembered reply, everything else that reuses a sequence is refused. */
#include <errno.h>
#include <string.h>

#include "coordinator/dedup.h"
#include "sutra/errors.h"
#include "tests/common/tcheck.h"

#define RING COORD_DEDUP_RING

/* A request seen for the first time is claimed; answered, it is remembered. */
static struct coord_dedup_entry *claim(struct coord_dedup *d, uint64_t client, uint64_t seq,
				       uint32_t crc)
{
	struct coord_dedup_entry *e = NULL;
	ck_assert_int_eq(coord_dedup_check(d, client, seq, 1, crc, &e), COORD_DEDUP_NEW);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->state, COORD_DEDUP_PENDING);
	ck_assert_uint_eq(e->seq, seq);
	return e;
}

START_TEST(test_dedup_resend_gets_the_cached_reply)
{
	struct coord_dedup d;
	struct coord_dedup_entry *e, *again = NULL;
	ck_assert_ok(coord_dedup_init(&d, 8));

	e = claim(&d, 7, 1, 0xabc);
	coord_dedup_done(e, SUTRA_ENOTFOUND, 42, 3, "unknown target concept");
	ck_assert_int_eq(coord_dedup_check(&d, 7, 1, 1, 0xabc, &again), COORD_DEDUP_CACHED);
	ck_assert_ptr_eq(again, e);
	ck_assert_int_eq(again->status, SUTRA_ENOTFOUND);
	ck_assert_uint_eq(again->epoch, 42);
	ck_assert_uint_eq(again->index, 3);
	ck_assert_str_eq(again->msg, "unknown target concept");

	/* A success has no text. */
	e = claim(&d, 7, 2, 0xdef);
	coord_dedup_done(e, 0, 43, UINT32_MAX, NULL);
	ck_assert_int_eq(coord_dedup_check(&d, 7, 2, 1, 0xdef, &again), COORD_DEDUP_CACHED);
	ck_assert_int_eq(again->status, 0);
	ck_assert_uint_eq(again->epoch, 43);
	ck_assert_ptr_null(again->msg);
	coord_dedup_finish(&d);
}
END_TEST

START_TEST(test_dedup_resend_of_pending_request_waits)
{
	struct coord_dedup d;
	struct coord_dedup_entry *e, *again = NULL;
	ck_assert_ok(coord_dedup_init(&d, 8));

	e = claim(&d, 7, 5, 0x111);
	ck_assert_int_eq(coord_dedup_check(&d, 7, 5, 1, 0x111, &again), COORD_DEDUP_WAIT);
	ck_assert_ptr_eq(again, e);
	coord_dedup_done(e, 0, 9, UINT32_MAX, NULL);
	ck_assert_int_eq(coord_dedup_check(&d, 7, 5, 1, 0x111, &again), COORD_DEDUP_CACHED);
	coord_dedup_finish(&d);
}
END_TEST

START_TEST(test_dedup_reused_sequence_is_refused)
{
	struct coord_dedup d;
	struct coord_dedup_entry *e, *again = NULL;
	ck_assert_ok(coord_dedup_init(&d, 8));

	e = claim(&d, 7, 1, 0xabc);
	/* Other bytes under the same number, pending or answered: never
	 * the other request's reply, and the remembered one stays. */
	ck_assert_int_eq(coord_dedup_check(&d, 7, 1, 1, 0xabd, &again), COORD_DEDUP_REUSED);
	coord_dedup_done(e, 0, 5, UINT32_MAX, NULL);
	ck_assert_int_eq(coord_dedup_check(&d, 7, 1, 1, 0xabd, &again), COORD_DEDUP_REUSED);
	ck_assert_int_eq(coord_dedup_check(&d, 7, 1, 1, 0xabc, &again), COORD_DEDUP_CACHED);
	ck_assert_uint_eq(again->epoch, 5);
	coord_dedup_finish(&d);
}
END_TEST

START_TEST(test_dedup_ring_wraps_around)
{
	struct coord_dedup d;
	struct coord_dedup_entry *e, *again = NULL;
	ck_assert_ok(coord_dedup_init(&d, 8));

	for (uint64_t seq = 1; seq <= 3 * RING; seq++) {
		e = claim(&d, 7, seq, (uint32_t)seq);
		coord_dedup_done(e, 0, seq, UINT32_MAX, NULL);
	}
	/* The last RING are remembered, each in its own slot. */
	for (uint64_t seq = 2 * RING + 1; seq <= 3 * RING; seq++) {
		ck_assert_int_eq(coord_dedup_check(&d, 7, seq, 1, (uint32_t)seq, &again),
				 COORD_DEDUP_CACHED);
		ck_assert_uint_eq(again->epoch, seq);
	}
	/* Older ones are too old to tell, even byte for byte the same. */
	ck_assert_int_eq(coord_dedup_check(&d, 7, 2 * RING, 1, 2 * RING, &again),
			 COORD_DEDUP_STALE);
	ck_assert_int_eq(coord_dedup_check(&d, 7, 1, 1, 1, &again), COORD_DEDUP_STALE);
	/* The next one reuses the oldest remembered slot. */
	e = claim(&d, 7, 3 * RING + 1, 77);
	ck_assert_int_eq(coord_dedup_check(&d, 7, 2 * RING + 1, 1, 2 * RING + 1, &again),
			 COORD_DEDUP_STALE);
	coord_dedup_done(e, 0, 1, UINT32_MAX, NULL);
	coord_dedup_finish(&d);
}
END_TEST

START_TEST(test_dedup_slot_still_pending_is_busy)
{
	struct coord_dedup d;
	struct coord_dedup_entry *e, *again = NULL;
	ck_assert_ok(coord_dedup_init(&d, 8));

	/* RING requests in flight: the next needs the first one's slot. */
	for (uint64_t seq = 1; seq <= RING; seq++)
		claim(&d, 7, seq, (uint32_t)seq);
	ck_assert_int_eq(coord_dedup_check(&d, 7, RING + 1, 1, 99, &again), COORD_DEDUP_BUSY);
	ck_assert_int_eq(coord_dedup_check(&d, 7, 1, 1, 1, &e), COORD_DEDUP_WAIT);
	coord_dedup_done(e, 0, 1, UINT32_MAX, NULL);
	claim(&d, 7, RING + 1, 99);
	coord_dedup_finish(&d);
}
END_TEST

START_TEST(test_dedup_unknown_clients_are_new)
{
	struct coord_dedup d;
	struct coord_dedup_entry *e, *again = NULL;
	ck_assert_ok(coord_dedup_init(&d, 8));

	e = claim(&d, 7, 1, 0xabc);
	coord_dedup_done(e, 0, 1, UINT32_MAX, NULL);
	/* The same sequence and bytes from another client are its own. */
	claim(&d, 8, 1, 0xabc);
	/* A client's first request may have any number. */
	claim(&d, 9, 1000000, 5);
	ck_assert_int_eq(coord_dedup_check(&d, 7, 1, 1, 0xabc, &again), COORD_DEDUP_CACHED);
	ck_assert_uint_eq(d.n, 3);
	coord_dedup_finish(&d);
}
END_TEST

START_TEST(test_dedup_least_recently_seen_client_is_evicted)
{
	struct coord_dedup d;
	struct coord_dedup_entry *e, *again = NULL;
	ck_assert_ok(coord_dedup_init(&d, 3));

	for (uint64_t c = 1; c <= 3; c++) {
		e = claim(&d, c, 1, (uint32_t)c);
		coord_dedup_done(e, 0, c, UINT32_MAX, "kept");
	}
	/* Client 1 is seen again: client 2 is now the least recent. */
	ck_assert_int_eq(coord_dedup_check(&d, 1, 1, 1, 1, &again), COORD_DEDUP_CACHED);
	claim(&d, 4, 1, 4);
	ck_assert_uint_eq(d.n, 3);
	/* Client 2 is forgotten: its resend looks new (and is applied again). */
	ck_assert_int_eq(coord_dedup_check(&d, 2, 1, 1, 2, &again), COORD_DEDUP_NEW);
	/* That made client 3 the least recent, now gone in turn. */
	ck_assert_int_eq(coord_dedup_check(&d, 1, 1, 1, 1, &again), COORD_DEDUP_CACHED);
	ck_assert_str_eq(again->msg, "kept");
	ck_assert_int_eq(coord_dedup_check(&d, 3, 1, 1, 3, &again), COORD_DEDUP_NEW);
	coord_dedup_finish(&d);
}
END_TEST

START_TEST(test_dedup_seeded_requests_are_resends)
{
	struct coord_dedup d;
	struct coord_dedup_entry *again = NULL;
	ck_assert_ok(coord_dedup_init(&d, 8));

	/* What the log's request markers say was applied before a restart. */
	for (uint64_t seq = 1; seq <= RING + 2; seq++)
		coord_dedup_seed(&d, 7, seq, (uint32_t)(seq * 10), 100 + seq);
	ck_assert_int_eq(coord_dedup_check(&d, 7, RING + 2, 1, (RING + 2) * 10, &again),
			 COORD_DEDUP_CACHED);
	ck_assert_int_eq(again->status, 0);
	ck_assert_uint_eq(again->epoch, 100 + RING + 2);
	ck_assert_uint_eq(again->index, UINT32_MAX);
	ck_assert_int_eq(coord_dedup_check(&d, 7, RING + 2, 1, 1, &again), COORD_DEDUP_REUSED);
	ck_assert_int_eq(coord_dedup_check(&d, 7, 2, 1, 20, &again), COORD_DEDUP_STALE);
	claim(&d, 7, RING + 3, 5);
	coord_dedup_finish(&d);
}
END_TEST

START_TEST(test_dedup_init_refuses_no_room)
{
	struct coord_dedup d;
	ck_assert_err(coord_dedup_init(&d, 0), -EINVAL);
	coord_dedup_finish(&d);
	ck_assert_ok(coord_dedup_init(&d, COORD_DEDUP_CLIENTS));
	ck_assert_uint_eq(d.cap, COORD_DEDUP_CLIENTS);
	coord_dedup_finish(&d);
}
END_TEST

TCHECK_MAIN("coordinator", "dedup", 0, test_dedup_resend_gets_the_cached_reply,
	    test_dedup_resend_of_pending_request_waits, test_dedup_reused_sequence_is_refused,
	    test_dedup_ring_wraps_around, test_dedup_slot_still_pending_is_busy,
	    test_dedup_unknown_clients_are_new, test_dedup_least_recently_seen_client_is_evicted,
	    test_dedup_seeded_requests_are_resends, test_dedup_init_refuses_no_room)
