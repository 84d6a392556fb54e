/* SPDX-License-Identifier: MIT */
/* Test helper: a reader that claims a slot in a lock file, pins an epoch and waits to be killed. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "layout/lockfile.h"

int main(int argc, char **argv)
{
	struct layout_lockfile *lf;
	uint32_t slot;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: lockslot LOCK_PATH EPOCH\n");
		return 2;
	}
	if ((rc = layout_lockfile_open(argv[1], LAYOUT_LOCKFILE_CREATE, &lf, NULL)) ||
	    (rc = layout_lockfile_claim(lf, &slot))) {
		fprintf(stderr, "lockslot: %s: %s\n", argv[1], sutra_strerror(rc));
		return 1;
	}
	layout_lockfile_pin(lf, strtoull(argv[2], NULL, 10));
	printf("slot %" PRIu32 " pid %ld\n", slot, (long)getpid());
	fflush(stdout);
	/* Held until killed; never outlive a test that forgot us. */
	alarm(120);
	for (;;)
		pause();
}
