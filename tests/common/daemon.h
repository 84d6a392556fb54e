/* SPDX-License-Identifier: MIT */
/* Runs the real sutra-coordinator binary as a child process for integration tests. */
#ifndef TESTS_COMMON_DAEMON_H
#define TESTS_COMMON_DAEMON_H

/*
 * tdaemon_start() forks and execs the sutra-coordinator built by meson (its
 * path comes from the SUTRA_COORDINATOR environment variable that the test
 * registration sets) on DIR/storage.dat, with its write and event sockets
 * at ipc://DIR/w.sock and ipc://DIR/e.sock, stderr going to DIR/coord.log,
 * and waits until a ping succeeds. Extra arguments are appended.
 */

#include <stdint.h>
#include <sys/types.h>

struct tdaemon {
	pid_t pid;
	char dir[256];
	char data[320];
	char url[320];
	char events[320];
	char log[320];
};

/* Makes a fresh temporary directory for a store (removed by tdaemon_cleanup). */
int tdaemon_mkdir(struct tdaemon *d);

/* Starts the coordinator with extra args (NULL-terminated array, may be
 * NULL) and waits up to 10 s for it to answer a ping. Returns 0, or -1 if
 * it exited or never answered (its log is printed to stderr). */
int tdaemon_start(struct tdaemon *d, const char *const *extra);

/* Starts it and returns at once without waiting (for tests of start-up
 * failures). Returns 0 or -1. */
int tdaemon_spawn(struct tdaemon *d, const char *const *extra);

/* Waits for the child to exit; returns its exit status, 128+signal if it
 * was killed, or -1 after timeout_ms. */
int tdaemon_wait(struct tdaemon *d, int timeout_ms);

/* SIGTERM, then wait (up to 20 s). Returns the exit status. */
int tdaemon_stop(struct tdaemon *d);

/* SIGKILL and reap. */
void tdaemon_kill9(struct tdaemon *d);

/* Removes the directory and everything in it. */
void tdaemon_cleanup(struct tdaemon *d);

/* Runs this test binary again (fork + exec of /proc/self/exe) with argv,
 * stdin from in_fd and stdout to out_fd when they are >= 0: child
 * processes that start nng only after the exec, since nng is not
 * fork-safe. Returns the pid, or -1. */
pid_t tdaemon_spawn_self(const char *const *argv, int in_fd, int out_fd);

/* Waits for a child: its exit status, 128 + signal, or -1. */
int tdaemon_reap(pid_t pid);

/* CLOCK_MONOTONIC in seconds. */
double tdaemon_now_s(void);

/* Path of a sibling binary from the environment (SUTRA_COORDINATOR,
 * SUTRA_LAYOUTDUMP): aborts the test with a message when unset. */
const char *tdaemon_env(const char *name);

#endif /* TESTS_COMMON_DAEMON_H */
