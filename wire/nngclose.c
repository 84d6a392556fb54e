/* SPDX-License-Identifier: MIT */
/* Closing nng sockets on a helper thread, with a deadline. */
#include "wire/nngclose.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

struct closer {
	nng_socket socks[WIRE_NNG_CLOSE_MAX];
	unsigned n;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int orphan; /* the caller gave up: the thread frees this */
};

static void close_all(const struct closer *k)
{
	for (unsigned i = 0; i < k->n; i++)
		if (nng_socket_id(k->socks[i]) > 0)
			nng_close(k->socks[i]);
}

static void free_closer(struct closer *k)
{
	pthread_mutex_destroy(&k->mu);
	pthread_cond_destroy(&k->cv);
	free(k);
}

static void *closer_main(void *arg)
{
	struct closer *k = arg;
	close_all(k);
	pthread_mutex_lock(&k->mu);
	k->done = 1;
	int orphan = k->orphan;
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->mu);
	if (orphan)
		free_closer(k);
	return NULL;
}

int wire_nng_close_bounded(const nng_socket *socks, unsigned n, unsigned ms)
{
	struct closer *k = calloc(1, sizeof *k);
	pthread_t t;
	if (n > WIRE_NNG_CLOSE_MAX)
		n = WIRE_NNG_CLOSE_MAX;
	if (!k) {
		struct closer local = { .n = n };
		for (unsigned i = 0; i < n; i++)
			local.socks[i] = socks[i];
		close_all(&local);
		return 1;
	}
	k->n = n;
	for (unsigned i = 0; i < n; i++)
		k->socks[i] = socks[i];
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	if (pthread_create(&t, NULL, closer_main, k) != 0) {
		close_all(k);
		free_closer(k);
		return 1;
	}
	pthread_detach(t);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)ms * 1000000u;
	ts.tv_sec += (time_t)(ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	pthread_mutex_lock(&k->mu);
	while (!k->done && pthread_cond_timedwait(&k->cv, &k->mu, &ts) != ETIMEDOUT)
		;
	int done = k->done;
	if (!done)
		k->orphan = 1;
	pthread_mutex_unlock(&k->mu);
	if (done)
		free_closer(k);
	return done;
}
