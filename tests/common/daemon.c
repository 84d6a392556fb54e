/* SPDX-License-Identifier: MIT */
/* Runs the real sutra-coordinator binary as a child process for integration tests. */
#include "tests/common/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sutra/client.h"

const char *tdaemon_env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		fprintf(stderr, "%s is not set: run this test through meson test\n", name);
		exit(1);
	}
	return v;
}

int tdaemon_mkdir(struct tdaemon *d)
{
	memset(d, 0, sizeof *d);
	d->pid = -1;
	const char *tmp = getenv("TMPDIR");
	snprintf(d->dir, sizeof d->dir, "%s/sutra-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(d->dir))
		return -1;
	snprintf(d->data, sizeof d->data, "%s/storage.dat", d->dir);
	snprintf(d->url, sizeof d->url, "ipc://%s/w.sock", d->dir);
	snprintf(d->events, sizeof d->events, "ipc://%s/e.sock", d->dir);
	snprintf(d->log, sizeof d->log, "%s/coord.log", d->dir);
	return 0;
}

int tdaemon_spawn(struct tdaemon *d, const char *const *extra)
{
	const char *bin = tdaemon_env("SUTRA_COORDINATOR");
	const char *argv[64];
	int n = 0;

	argv[n++] = bin;
	argv[n++] = "--data";
	argv[n++] = d->data;
	argv[n++] = "--listen";
	argv[n++] = d->url;
	argv[n++] = "--events";
	argv[n++] = d->events;
	/* The suites run again with tiny index segments (meson sets this),
	 * so that every read goes through segments, merges and a short tail. */
	const char *seg = getenv("SUTRA_TEST_SEGMENT_KIB");
	if (seg && *seg) {
		argv[n++] = "--segment-threshold-kib";
		argv[n++] = seg;
	}
	for (int i = 0; extra && extra[i] && n < 62; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;

	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0)
			dup2(fd, 2);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	d->pid = pid;
	return 0;
}

static void dump_log(const struct tdaemon *d)
{
	FILE *f = fopen(d->log, "r");
	char line[1024];
	if (!f)
		return;
	fprintf(stderr, "--- %s ---\n", d->log);
	while (fgets(line, sizeof line, f))
		fputs(line, stderr);
	fclose(f);
}

int tdaemon_start(struct tdaemon *d, const char *const *extra)
{
	if (tdaemon_spawn(d, extra))
		return -1;
	struct sutra_client_options o;
	sutra_client_options_init(&o);
	o.timeout_ms = 200;
	o.resend_ms = 100;
	sutra_client *c;
	if (sutra_client_connect(d->url, &o, &c))
		return -1;
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (sutra_client_ping(c, NULL) == 0) {
			sutra_client_close(c);
			return 0;
		}
		int st;
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = -1;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 10)
			break;
	}
	sutra_client_close(c);
	fprintf(stderr, "sutra-coordinator did not come up\n");
	dump_log(d);
	return -1;
}

int tdaemon_wait(struct tdaemon *d, int timeout_ms)
{
	if (d->pid <= 0)
		return -1;
	for (int waited = 0;; waited += 5) {
		int st;
		pid_t r = waitpid(d->pid, &st, timeout_ms < 0 ? 0 : WNOHANG);
		if (r == d->pid) {
			d->pid = -1;
			if (WIFEXITED(st))
				return WEXITSTATUS(st);
			return 128 + WTERMSIG(st);
		}
		if (r < 0 && errno != EINTR)
			return -1;
		if (timeout_ms >= 0 && waited >= timeout_ms)
			return -1;
		struct timespec ts = { 0, 5000000 };
		nanosleep(&ts, NULL);
	}
}

int tdaemon_stop(struct tdaemon *d)
{
	if (d->pid <= 0)
		return -1;
	kill(d->pid, SIGTERM);
	int rc = tdaemon_wait(d, 20000);
	if (rc < 0) {
		fprintf(stderr, "sutra-coordinator ignored SIGTERM for 20 s\n");
		dump_log(d);
		tdaemon_kill9(d);
	}
	return rc;
}

void tdaemon_kill9(struct tdaemon *d)
{
	if (d->pid <= 0)
		return;
	kill(d->pid, SIGKILL);
	int st;
	while (waitpid(d->pid, &st, 0) < 0 && errno == EINTR)
		;
	d->pid = -1;
}

void tdaemon_cleanup(struct tdaemon *d)
{
	if (d->pid > 0)
		tdaemon_kill9(d);
	if (!d->dir[0])
		return;
	pid_t pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", d->dir, (char *)NULL);
		_exit(127);
	}
	int st;
	if (pid > 0)
		waitpid(pid, &st, 0);
}

pid_t tdaemon_spawn_self(const char *const *argv, int in_fd, int out_fd)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (in_fd >= 0)
			dup2(in_fd, 0);
		if (out_fd >= 0)
			dup2(out_fd, 1);
		execv("/proc/self/exe", (char *const *)argv);
		_exit(127);
	}
	return pid;
}

int tdaemon_reap(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

double tdaemon_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
