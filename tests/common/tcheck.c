/* SPDX-License-Identifier: MIT */
/* The Check runner every test program shares (tests/common/tcheck.h). */
#include "tests/common/tcheck.h"

#include <stdlib.h>

int tcheck_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

int tcheck_run(const char *suite, const char *tcase, int timeout_s, void (*setup)(void),
	       void (*teardown)(void), const TTest *const *tests, size_t n)
{
	Suite *s = suite_create(suite);
	TCase *tc = tcase_create(tcase);
	if (timeout_s > 0)
		tcase_set_timeout(tc, timeout_s);
	if (setup || teardown)
		tcase_add_checked_fixture(tc, setup, teardown);
	for (size_t i = 0; i < n; i++)
		tcase_add_test(tc, tests[i]);
	suite_add_tcase(s, tc);
	return tcheck_run_suite(s);
}
