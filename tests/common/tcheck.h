/* SPDX-License-Identifier: MIT */
/* The Check runner every test program shares, and assertions that name error codes. */
#ifndef TESTS_COMMON_TCHECK_H
#define TESTS_COMMON_TCHECK_H

/*
 * A test program is its START_TEST functions and one line:
 *
 *   TCHECK_MAIN("layout", "verify", 0, test_verify_a, test_verify_b)
 *
 * which builds the suite and its one test case, sets the case's timeout
 * (seconds; 0 keeps Check's default, CK_DEFAULT_TIMEOUT), runs every test
 * and exits non-zero if any failed. TCHECK_MAIN_FIXTURE adds a checked
 * setup/teardown pair. A program that needs more (several cases, loop
 * tests, a child mode in main) builds its Suite and ends main with
 * "return tcheck_run_suite(s);". Timeouts are hang guards, not
 * deadlines: a test waits for the event it needs and the timeout only
 * turns a hang into a failure.
 *
 * ck_assert_ok(expr) and ck_assert_err(expr, want) evaluate an expression
 * that returns 0 or an error code (-errno or SUTRA_E*) and, when it is not
 * what was wanted, fail with the codes' names ("SUTRA_ECORRUPT", "ENOENT")
 * rather than bare numbers.
 */

#include <check.h>
#include <stddef.h>

#include "sutra/errors.h"

/* Runs every test of s, frees it; returns the exit status for main. */
int tcheck_run_suite(Suite *s);

/* Runs the tests (n of them) as suite/tcase, with an optional checked
 * fixture; returns the exit status. */
int tcheck_run(const char *suite, const char *tcase, int timeout_s, void (*setup)(void),
	       void (*teardown)(void), const TTest *const *tests, size_t n);

#define TCHECK_MAIN_FIXTURE(suite, tcase, timeout_s, setup, teardown, ...)                 \
	int main(void)                                                                      \
	{                                                                                   \
		const TTest *const tcheck_tests_[] = { __VA_ARGS__ };                       \
		return tcheck_run(suite, tcase, timeout_s, setup, teardown, tcheck_tests_,  \
				  sizeof tcheck_tests_ / sizeof tcheck_tests_[0]);          \
	}

#define TCHECK_MAIN(suite, tcase, timeout_s, ...) \
	TCHECK_MAIN_FIXTURE(suite, tcase, timeout_s, NULL, NULL, __VA_ARGS__)

#define ck_assert_err(expr, want)                                                          \
	do {                                                                                \
		int tcheck_got_ = (expr), tcheck_want_ = (want);                            \
		ck_assert_msg(tcheck_got_ == tcheck_want_, "%s: got %s (%d), want %s (%d)", \
			      #expr, sutra_errname(tcheck_got_), tcheck_got_,                \
			      sutra_errname(tcheck_want_), tcheck_want_);                    \
	} while (0)

#define ck_assert_ok(expr) ck_assert_err(expr, 0)

#endif /* TESTS_COMMON_TCHECK_H */
