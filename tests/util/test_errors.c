/* SPDX-License-Identifier: MIT */
/* Tests that every error code has a name and a description. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sutra/errors.h"
#include "tests/common/tcheck.h"

START_TEST(test_errors_every_code_described)
{
	for (int e = SUTRA_EUNAVAIL; e <= SUTRA_ECORRUPT; e++) {
		ck_assert_str_ne(sutra_strerror(e), "unknown error");
		ck_assert_int_eq(strncmp(sutra_errname(e), "SUTRA_E", 7), 0);
	}
	ck_assert_str_eq(sutra_errname(SUTRA_ECORRUPT), "SUTRA_ECORRUPT");
	ck_assert_str_eq(sutra_strerror(0), "success");
	ck_assert_str_eq(sutra_strerror(-ENOENT), "No such file or directory");
	ck_assert_str_eq(sutra_errname(-ENOSPC), "ENOSPC");
	ck_assert_str_eq(sutra_strerror(-999999), "unknown error");
	ck_assert_str_eq(sutra_strerror(42), "unknown error");
	ck_assert_str_eq(sutra_errname(-1500), "UNKNOWN");
}
END_TEST

TCHECK_MAIN("util", "errors", 0, test_errors_every_code_described)
