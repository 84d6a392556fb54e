/* SPDX-License-Identifier: MIT */
/* Writes the deterministic test store (tests/common/tstore.h) to a path. */
#include <stdio.h>

#include "sutra/errors.h"
#include "tests/common/tstore.h"

int main(int argc, char **argv)
{
	struct tstore t;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: mkfixture PATH\n");
		return 2;
	}
	if ((rc = tstore_build(&t)) || (rc = tstore_write(&t, argv[1]))) {
		fprintf(stderr, "mkfixture: %s: %s\n", argv[1], sutra_strerror(rc));
		return 1;
	}
	tstore_finish(&t);
	return 0;
}
