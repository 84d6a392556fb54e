/* SPDX-License-Identifier: MIT */
/* The lock file on a full file system: an error from open, never a SIGBUS from a write through the mapping. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "layout/lockfile.h"
#include "tests/common/tcheck.h"

/*
 * A small tmpfs, mounted in a private mount namespace so that nothing
 * outside this process sees it, filled until it refuses a byte. Needs
 * root (CAP_SYS_ADMIN); without it the program reports a skip (exit 77)
 * with the reason.
 */
static char dir[] = "/tmp/sutra-fullfs-XXXXXX";

static int full_fs(char *why, size_t len)
{
	if (unshare(CLONE_NEWNS) != 0) {
		snprintf(why, len, "cannot make a mount namespace: %s", strerror(errno));
		return -1;
	}
	if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("tmpfs", dir, "tmpfs", 0, "size=64k") != 0) {
		snprintf(why, len, "cannot mount a small tmpfs: %s", strerror(errno));
		return -1;
	}
	char path[64];
	snprintf(path, sizeof path, "%s/filler", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	char block[4096] = { 0 };
	while (fd >= 0 && write(fd, block, sizeof block) > 0)
		;
	if (fd < 0 || errno != ENOSPC) {
		snprintf(why, len, "cannot fill the tmpfs: %s", strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/* Runs in a child: 0 when opening a lock file there failed with ENOSPC. */
static int open_on_full_fs(void)
{
	char why[256], path[64];
	if (full_fs(why, sizeof why))
		return 77;
	snprintf(path, sizeof path, "%s/storage.dat.lock", dir);
	struct layout_lockfile *lf = NULL;
	struct sutra_detail pb = { .what = "" };
	int rc = layout_lockfile_open(path, LAYOUT_LOCKFILE_CREATE, &lf, &pb);
	if (rc == 0) {
		/* Before the fix the header write above already died; should
		 * an open succeed, a claim must not die either. */
		uint32_t slot;
		rc = layout_lockfile_claim(lf, &slot);
		layout_lockfile_close(lf);
		return rc == -ENOSPC ? 0 : 2;
	}
	if (rc != -ENOSPC || !strstr(pb.what, "lock file")) {
		fprintf(stderr, "open gave %s (%s)\n", sutra_errname(rc), pb.what);
		return 3;
	}
	return 0;
}

static int run_child(int (*fn)(void))
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(fn());
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	if (WIFSIGNALED(st))
		return 1000 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

START_TEST(test_fullfs_lockfile_open_is_enospc_not_sigbus)
{
	int rc = run_child(open_on_full_fs);
	ck_assert_msg(rc < 1000, "the child was killed by signal %d (%s)", rc - 1000,
		      strsignal(rc - 1000));
	ck_assert_int_eq(rc, 0);
}
END_TEST

static int can_mount(void)
{
	char why[256];
	if (full_fs(why, sizeof why)) {
		printf("SKIP: %s\n", why);
		return 77;
	}
	return 0;
}

int main(void)
{
	if (geteuid() != 0) {
		printf("SKIP: mounting a small tmpfs needs root\n");
		return 77;
	}
	if (!mkdtemp(dir)) {
		printf("SKIP: cannot make a directory: %s\n", strerror(errno));
		return 77;
	}
	int rc = run_child(can_mount);
	if (rc == 0) {
		Suite *s = suite_create("layout");
		TCase *tc = tcase_create("fullfs");
		tcase_add_test(tc, test_fullfs_lockfile_open_is_enospc_not_sigbus);
		suite_add_tcase(s, tc);
		rc = tcheck_run_suite(s);
	} else if (rc != 77) {
		printf("SKIP: the mount check failed (%d)\n", rc);
		rc = 77;
	}
	rmdir(dir);
	return rc;
}
