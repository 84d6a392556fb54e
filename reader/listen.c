/* SPDX-License-Identifier: MIT */
/* Notices through a callback thread, built on the reader's public notice calls. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "sutra/reader.h"

/*
 * The thread sleeps in poll() on two descriptors: the reader's notice fd
 * (readable while a notice is queued) and the read end of a pipe that
 * sutra_listener_stop() writes to. So a stop is seen at once, not after a
 * receive timeout, and the thread never sits in a blocking receive that
 * another thread's timeout setting could stretch: it only takes notices
 * with sutra_reader_next_notice(r, 0, ...), which does not wait.
 */
struct sutra_listener {
	sutra_reader *r;
	void (*fn)(void *arg, const struct sutra_notice *n);
	void *arg;
	pthread_t thread;
	int notice_fd;
	int wake[2];       /* stop writes a byte to wake[1] */
	int stopping;      /* atomic: set once by stop */
	int self_stopped;  /* stop was called from the callback (only the thread touches it) */
};

/* A safety net only: the descriptors wake the thread, not this timeout. */
#define POLL_MS 100

static void destroy(sutra_listener *l)
{
	if (l->wake[0] >= 0)
		close(l->wake[0]);
	if (l->wake[1] >= 0)
		close(l->wake[1]);
	free(l);
}

static int stopping(const sutra_listener *l)
{
	return __atomic_load_n(&l->stopping, __ATOMIC_ACQUIRE);
}

static void *run(void *p)
{
	sutra_listener *l = p;
	struct pollfd pf[2] = {
		{ .fd = l->notice_fd, .events = POLLIN },
		{ .fd = l->wake[0], .events = POLLIN },
	};
	while (!stopping(l)) {
		struct sutra_notice n;
		int rc = sutra_reader_next_notice(l->r, 0, &n);
		if (rc == 0) {
			l->fn(l->arg, &n);
			sutra_notice_clear(&n);
			/* The callback may have stopped this listener: then
			 * neither l->r nor anything else but l is touched again. */
			continue;
		}
		/* -ENOMEM lost one notice (a hint): take the next. */
		if (rc == -ENOMEM)
			continue;
		/* Nothing queued (-ETIMEDOUT): wait for a notice or a stop.
		 * No subscription (-ENOTCONN, only when the reader is
		 * misused): wait on the stop pipe alone, not to spin. */
		nfds_t nfds = rc == -ETIMEDOUT ? 2 : 1;
		struct pollfd *wait = rc == -ETIMEDOUT ? pf : pf + 1;
		if (poll(wait, nfds, POLL_MS) < 0 && errno != EINTR)
			break;
	}
	if (l->self_stopped)
		destroy(l);
	return NULL;
}

int sutra_reader_listen(sutra_reader *r, void (*fn)(void *arg, const struct sutra_notice *n),
			void *arg, sutra_listener **out)
{
	if (!r || !fn || !out)
		return -EINVAL;
	int fd, rc = sutra_reader_notice_fd(r, &fd);
	if (rc)
		return rc;
	sutra_listener *l = calloc(1, sizeof *l);
	if (!l)
		return -ENOMEM;
	l->r = r;
	l->fn = fn;
	l->arg = arg;
	l->notice_fd = fd;
	l->wake[0] = l->wake[1] = -1;
	if (pipe2(l->wake, O_CLOEXEC | O_NONBLOCK)) {
		rc = -errno;
		goto fail;
	}
	/* The thread inherits a full signal mask: signals stay with the
	 * application's own threads. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int err = pthread_create(&l->thread, NULL, run, l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		rc = -err;
		goto fail;
	}
	*out = l;
	return 0;
fail:
	destroy(l);
	return rc;
}

void sutra_listener_stop(sutra_listener *l)
{
	if (!l)
		return;
	__atomic_store_n(&l->stopping, 1, __ATOMIC_RELEASE);
	/* If the write fails, the pipe is full, so readable already. */
	ssize_t woke = write(l->wake[1], "", 1);
	(void)woke;
	if (pthread_equal(pthread_self(), l->thread)) {
		/* Called from the callback: a thread cannot join itself. It
		 * frees the listener once the callback returns. */
		l->self_stopped = 1;
		pthread_detach(l->thread);
		return;
	}
	pthread_join(l->thread, NULL);
	destroy(l);
}
