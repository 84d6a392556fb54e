/* SPDX-License-Identifier: MIT */
/* What the benchmarks share: clocks, percentiles, child processes, machine facts. */
#ifndef BENCH_BENCHUTIL_H
#define BENCH_BENCHUTIL_H

#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* The program's name, for messages ("sutra-bench-coord: ..."). */
extern const char *bench_name;

uint64_t now_ns(void); /* CLOCK_MONOTONIC */
double now_s(void);
/* Prints "bench_name: message" to stderr and exits 1. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
int cmp_u32(const void *a, const void *b);
/* The p quantile (0..1) of n sorted nanosecond values, in µs. */
double pct_us(const uint32_t *v, size_t n, double p);
/* Whole writes and reads, retried on EINTR: 0 or -1. */
int write_all(int fd, const void *buf, size_t len);
int read_all(int fd, void *buf, size_t len);
/* fork + exec argv (argv[0] a path) with the keep descriptors inherited,
 * stdout to out and stderr to err when >= 0; the child dies with us. */
pid_t spawn(const char *const argv[], const int *keep, int nkeep, int out, int err);
/* waitpid with a deadline (then SIGKILL): the status, or -1. */
int reap(pid_t pid, double timeout_s);
/* nftw callback removing everything (FTW_DEPTH). */
int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw);
void loadavg(char *out, size_t len);
/* Filesystem type, device and mount point of path (from /proc/self/mounts). */
void fs_of(const char *path, char *type, size_t tl, char *dev, size_t dl, char *mnt, size_t ml);

#endif /* BENCH_BENCHUTIL_H */
