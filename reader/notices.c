/* SPDX-License-Identifier: MIT */
/* Learning of new epochs: the notice subscription, its pollable fd and notices, wait_for_epoch, and the callback listener thread. */
#include "sutra/reader.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <roaring/roaring.h>

#include "reader/internal.h"
#include "wire/nngclose.h"
#include "wire/nngerr.h"
#include "wire/proto.h"

/*
 * nng is started only by sutra_reader_subscribe, so that a reader opened
 * before a fork, and never subscribed, is safe. Notices are hints: a lost
 * one costs at most the 50 ms after which wait_for_epoch reads the file
 * anyway.
 */

void rdr_notices_init(sutra_reader *r)
{
	pthread_mutex_init(&r->nmu, NULL);
}

void rdr_notices_finish(sutra_reader *r)
{
	if (r->subscribed)
		wire_nng_close_bounded(&r->sub, 1, 2000); /* wire/nngclose.h */
	pthread_mutex_destroy(&r->nmu);
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int sutra_reader_wait_for_epoch(sutra_reader *r, uint64_t epoch, int timeout_ms)
{
	uint64_t start = mono_us(), nap = 20;
	for (;;) {
		uint64_t now_epoch;
		int rc = sutra_reader_refresh(r, &now_epoch);
		if (rc)
			return rc;
		if (now_epoch >= epoch)
			return 0;
		uint64_t spent = mono_us() - start;
		if (timeout_ms >= 0 && spent >= (uint64_t)timeout_ms * 1000u)
			return -ETIMEDOUT;
		if (__atomic_load_n(&r->subscribed, __ATOMIC_ACQUIRE)) {
			/* Wake on the next notice, but read the file at least
			 * every 50 ms: notices can be lost. */
			int wait = 50;
			if (timeout_ms >= 0 && (uint64_t)timeout_ms * 1000u - spent < 50000u)
				wait = (int)(((uint64_t)timeout_ms * 1000u - spent) / 1000u) + 1;
			struct sutra_notice n;
			if (sutra_reader_next_notice(r, wait, &n) == 0)
				sutra_notice_clear(&n);
			continue;
		}
		/* Polling the file: back off from 20 µs to 1 ms. */
		struct timespec ts = { 0, (long)nap * 1000 };
		nanosleep(&ts, NULL);
		if (nap < 1000)
			nap *= 2;
	}
}

int sutra_reader_subscribe(sutra_reader *r, const char *events_url)
{
	int rv, rc = 0;
	if (!events_url)
		return -EINVAL;
	pthread_mutex_lock(&r->nmu);
	if (r->subscribed) {
		pthread_mutex_unlock(&r->nmu);
		return -EALREADY;
	}
	if ((rv = nng_sub0_open(&r->sub))) {
		pthread_mutex_unlock(&r->nmu);
		return wire_nng_error(rv);
	}
	nng_socket_set(r->sub, NNG_OPT_SUB_SUBSCRIBE, "", 0);
	/* DESIGN.md: the default reconnect wait is 1 s; a restarted
	 * coordinator should be heard again at once. */
	nng_socket_set_ms(r->sub, NNG_OPT_RECONNMINT, 10);
	nng_socket_set_ms(r->sub, NNG_OPT_RECONNMAXT, 200);
	if ((rv = nng_dial(r->sub, events_url, NULL, NNG_FLAG_NONBLOCK))) {
		nng_close(r->sub);
		rc = wire_nng_error(rv);
	} else {
		__atomic_store_n(&r->subscribed, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&r->nmu);
	return rc;
}

int sutra_reader_notice_fd(sutra_reader *r, int *fd)
{
	if (!__atomic_load_n(&r->subscribed, __ATOMIC_ACQUIRE))
		return -ENOTCONN;
	int v;
	if (nng_socket_get_int(r->sub, NNG_OPT_RECVFD, &v))
		return -ENOTCONN;
	*fd = v;
	return 0;
}

void sutra_notice_clear(struct sutra_notice *n)
{
	free(n->changed);
	memset(n, 0, sizeof *n);
}

int sutra_reader_next_notice(sutra_reader *r, int timeout_ms, struct sutra_notice *out)
{
	if (!__atomic_load_n(&r->subscribed, __ATOMIC_ACQUIRE))
		return -ENOTCONN;
	uint64_t start = mono_us();
	for (;;) {
		int left = timeout_ms;
		if (timeout_ms > 0) {
			uint64_t spent = (mono_us() - start) / 1000u;
			if (spent >= (uint64_t)timeout_ms)
				return -ETIMEDOUT;
			left = timeout_ms - (int)spent;
		}
		void *m;
		size_t len;
		int rv;
		if (left == 0) {
			rv = nng_recv(r->sub, &m, &len, NNG_FLAG_ALLOC | NNG_FLAG_NONBLOCK);
		} else {
			nng_socket_set_ms(r->sub, NNG_OPT_RECVTIMEO,
					  left < 0 ? NNG_DURATION_INFINITE : (nng_duration)left);
			rv = nng_recv(r->sub, &m, &len, NNG_FLAG_ALLOC);
		}
		if (rv) {
			/* A closed or failed socket means no more notices. */
			int rc = wire_nng_error(rv);
			return rc == -ETIMEDOUT || rc == -ENOMEM ? rc : -ENOTCONN;
		}
		struct proto_notice pn;
		/* Skip what is not a notice of this store. */
		if (proto_notice_decode(m, len, &pn) ||
		    memcmp(pn.store_uuid, r->sb.uuid, 16) != 0) {
			nng_free(m, len);
			continue;
		}
		memset(out, 0, sizeof *out);
		out->epoch = pn.epoch;
		out->published_end = pn.published_end;
		out->durable_epoch = pn.durable_epoch;
		out->heartbeat = pn.kind == PROTO_NOTICE_HEARTBEAT;
		int rc = 0;
		if (pn.changed_len) {
			roaring_bitmap_t *b = roaring_bitmap_portable_deserialize_safe(
				(const char *)pn.changed, pn.changed_len);
			if (b) {
				uint64_t n = roaring_bitmap_get_cardinality(b);
				out->changed = malloc((n ? n : 1) * sizeof *out->changed);
				if (out->changed) {
					roaring_bitmap_to_uint32_array(b, out->changed);
					out->changed_count = (size_t)n;
				} else {
					rc = -ENOMEM;
				}
				roaring_bitmap_free(b);
			}
			/* An undecodable bitmap is a hint lost, not an error. */
		}
		nng_free(m, len);
		return rc;
	}
}

/* ---- The callback listener ------------------------------------------------------ */

/*
 * The listener uses the public notice calls only, as an application's
 * own event loop would. Its thread sleeps in poll() on two descriptors:
 * the reader's notice fd (readable while a notice is queued) and the read
 * end of a pipe that sutra_listener_stop() writes to. So a stop is seen
 * at once, not after a receive timeout, and the thread never sits in a
 * blocking receive that another thread's timeout setting could stretch:
 * it only takes notices with sutra_reader_next_notice(r, 0, ...), which
 * does not wait.
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

static void listener_destroy(sutra_listener *l)
{
	if (l->wake[0] >= 0)
		close(l->wake[0]);
	if (l->wake[1] >= 0)
		close(l->wake[1]);
	free(l);
}

static int listener_stopping(const sutra_listener *l)
{
	return __atomic_load_n(&l->stopping, __ATOMIC_ACQUIRE);
}

static void *listener_run(void *p)
{
	sutra_listener *l = p;
	struct pollfd pf[2] = {
		{ .fd = l->notice_fd, .events = POLLIN },
		{ .fd = l->wake[0], .events = POLLIN },
	};
	while (!listener_stopping(l)) {
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
		listener_destroy(l);
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
	int err = pthread_create(&l->thread, NULL, listener_run, l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		rc = -err;
		goto fail;
	}
	*out = l;
	return 0;
fail:
	listener_destroy(l);
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
	listener_destroy(l);
}
