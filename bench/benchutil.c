/* SPDX-License-Identifier: MIT */
/* What the benchmarks share: clocks, percentiles, child processes, machine facts. */
#include "bench/benchutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", bench_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

double pct_us(const uint32_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t k = (size_t)(p * (double)n + 0.999999);
	if (k == 0)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1000.0;
}

int write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int read_all(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

pid_t spawn(const char *const argv[], const int *keep, int nkeep, int out, int err)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid > 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (int i = 0; i < nkeep; i++)
		fcntl(keep[i], F_SETFD, 0);
	if (out >= 0)
		dup2(out, 1);
	if (err >= 0)
		dup2(err, 2);
	execv(argv[0], (char *const *)argv);
	fprintf(stderr, "%s: cannot run %s: %s\n", bench_name, argv[0], strerror(errno));
	_exit(127);
}

int reap(pid_t pid, double timeout_s)
{
	int status = 0;
	double until = now_s() + timeout_s;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0)
			return -1;
		if (now_s() > until) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return status;
		}
		struct timespec ts = { 0, 2000000 };
		nanosleep(&ts, NULL);
	}
}

int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

void loadavg(char *out, size_t len)
{
	snprintf(out, len, "?");
	FILE *f = fopen("/proc/loadavg", "re");
	if (!f)
		return;
	double a, b, c;
	if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
		snprintf(out, len, "%.2f %.2f %.2f", a, b, c);
	fclose(f);
}

void fs_of(const char *path, char *type, size_t tl, char *dev, size_t dl, char *mnt,
	   size_t ml)
{
	char real[PATH_MAX], line[4096];
	size_t best = 0;
	snprintf(type, tl, "?");
	snprintf(dev, dl, "?");
	snprintf(mnt, ml, "?");
	if (!realpath(path, real))
		return;
	FILE *f = fopen("/proc/self/mounts", "re");
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		char d[1024], m[1024], t[64];
		if (sscanf(line, "%1023s %1023s %63s", d, m, t) != 3)
			continue;
		size_t n = strlen(m);
		int under = strncmp(real, m, n) == 0 &&
			    (real[n] == '/' || real[n] == 0 || (n == 1 && m[0] == '/'));
		if (under && n >= best) {
			best = n;
			snprintf(type, tl, "%s", t);
			snprintf(dev, dl, "%s", d);
			snprintf(mnt, ml, "%s", m);
		}
	}
	fclose(f);
}
