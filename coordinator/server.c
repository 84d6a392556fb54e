/* SPDX-License-Identifier: MIT */
/* Starting and stopping the coordinator server, and the public embedding API over it. */
#include "coordinator/server_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sutra/coordinator.h"
#include "sutra/errors.h"
#include "util/detail.h"

_Static_assert(COORD_DEDUP_RING == COORD_MARKER_RING,
	       "the resend cache remembers what the log's request markers do");
_Static_assert(SUTRA_PROTOCOL_VERSION == PROTO_VERSION, "the public protocol version");

/* Seeds the resend cache from the request markers of the log, so that a
 * request applied before a crash is answered, not applied again, when its
 * client resends it to the restarted coordinator. */
static void seed_marker(void *arg, uint64_t client_id, uint64_t seq, uint32_t crc,
			uint64_t epoch)
{
	struct coord_server *s = arg;
	coord_dedup_seed(&s->dedup, client_id, seq, crc, epoch);
}

int coord_server_start(const struct coord_config *c, struct coord_server **out, struct sutra_detail *why)
{
	struct coord_server *s = calloc(1, sizeof *s);
	int rc;

	if (!s)
		return -ENOMEM;
	s->cfg = *c;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->listen_mu, NULL);
	pthread_mutex_init(&s->check_mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_cond_init(&s->done_cv, NULL);
	pthread_cond_init(&s->check_cv, NULL);
	s->rep = (nng_socket)NNG_SOCKET_INITIALIZER;
	s->pub = (nng_socket)NNG_SOCKET_INITIALIZER;

	if ((rc = coord_dedup_init(&s->dedup, COORD_DEDUP_CLIENTS)))
		goto fail;
	if (!c->data_path) {
		rc = util_fail(-EINVAL, why, "no data path");
		goto fail;
	}
	if (c->listen_url) {
		snprintf(s->listen_url, sizeof s->listen_url, "%s", c->listen_url);
	} else if ((rc = coord_default_url(c->data_path, "write", s->listen_url,
					   sizeof s->listen_url))) {
		util_detail_set(why, SUTRA_DETAIL_NO_OFFSET, "no usable default write URL for %s", c->data_path);
		goto fail;
	} else if ((rc = coord_fallback_dir_ready(c->data_path, s->listen_url, why))) {
		goto fail;
	}
	if (c->events_url) {
		snprintf(s->events_url, sizeof s->events_url, "%s", c->events_url);
	} else if ((rc = coord_default_url(c->data_path, "events", s->events_url,
					   sizeof s->events_url))) {
		util_detail_set(why, SUTRA_DETAIL_NO_OFFSET, "no usable default events URL for %s", c->data_path);
		goto fail;
	} else if ((rc = coord_fallback_dir_ready(c->data_path, s->events_url, why))) {
		goto fail;
	}
	/* The caller's strings are not kept: the URLs are copied, the data
	 * path and fault spec serve only the store's open. */
	s->cfg.listen_url = s->listen_url;
	s->cfg.events_url = s->events_url;
	s->cfg.data_path = NULL;
	s->cfg.fault_spec = NULL;

	struct coord_store_options so = { .path = c->data_path,
					  .vector_dim = c->vector_dim,
					  .vector_dim_explicit = c->vector_dim_explicit,
					  .durability = c->durability,
					  .io = c->io,
					  .fault_spec = c->fault_spec,
					  .segment_bytes = (uint64_t)c->segment_kib << 10,
					  .log_retention = (uint64_t)c->log_retention_mib << 20,
					  .log = c->log };
	if ((rc = coord_store_open(&so, &s->store, why)))
		goto fail;
	coord_store_on_segment_done(s->store, coord_segment_done, s);
	coord_note_epoch(s);
	coord_store_foreach_marker(s->store, seed_marker, s);
	s->lim = (struct proto_limits){ .max_request = c->max_request,
					.max_content = c->max_content,
					.max_metadata = c->max_metadata,
					.max_batch = c->max_batch,
					.vector_dim = coord_store_vector_dim(s->store) };
	/* Copies for nng's threads, which may run after the store closed. */
	memcpy(s->uuid, coord_store_uuid(s->store), 16);
	s->vector_dim = coord_store_vector_dim(s->store);

	if ((rc = coord_sockets_open(s, why)))
		goto fail;
	if (pthread_create(&s->writer, NULL, coord_writer_main, s) != 0) {
		rc = -EAGAIN;
		goto fail;
	}
	s->writer_started = 1;
	coord_sockets_serve(s);
	if (c->check_interval_ms) {
		if (pthread_create(&s->checker, NULL, coord_checker_main, s) == 0)
			s->checker_started = 1;
	}
	coord_logf(&s->cfg.log, COORD_LOG_INFO, "serving writes on %s, notices on %s (%s, %s)",
		   s->listen_url, s->events_url,
		   c->durability == COORD_DURABILITY_SYNC ? "sync" : "relaxed",
		   coord_store_io_name(s->store));
	*out = s;
	return 0;

fail:
	coord_server_destroy(s);
	return rc;
}

void coord_server_stop(struct coord_server *s)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

int coord_server_wait(struct coord_server *s, int timeout_ms)
{
	struct timespec ts;
	int done;

	if (timeout_ms >= 0)
		coord_deadline_us(&ts, (uint64_t)timeout_ms * 1000u);
	pthread_mutex_lock(&s->mu);
	while (!s->writer_done && !atomic_load(&s->fatal)) {
		if (timeout_ms < 0)
			pthread_cond_wait(&s->done_cv, &s->mu);
		else if (pthread_cond_timedwait(&s->done_cv, &s->mu, &ts) == ETIMEDOUT)
			break;
	}
	done = s->writer_done || atomic_load(&s->fatal);
	pthread_mutex_unlock(&s->mu);
	return done;
}

int coord_server_failed(const struct coord_server *s)
{
	return atomic_load(&((struct coord_server *)s)->fatal);
}

int coord_server_destroy(struct coord_server *s)
{
	struct timespec ts;
	int abandoned = 0;

	if (!s)
		return 0;
	if (s->checker_started) {
		pthread_mutex_lock(&s->check_mu);
		s->check_stop = 1;
		pthread_cond_broadcast(&s->check_cv);
		pthread_mutex_unlock(&s->check_mu);
	}
	if (s->writer_started) {
		coord_server_stop(s);
		pthread_join(s->writer, NULL);
		/* Let the last replies leave before the socket closes. */
		uint64_t until = coord_mono_ms() + 2000;
		while (atomic_load(&s->sending) > 0 && coord_mono_ms() < until) {
			struct timespec nap = { 0, 1000000 };
			nanosleep(&nap, NULL);
		}
	}
	/* The data first: synced, lock released, whatever nng does next. */
	int rc = atomic_load(&s->fatal);
	int crc = coord_store_close(s->store);
	s->store = NULL;
	if (!rc)
		rc = crc;

	if (coord_sockets_close(s))
		abandoned = 1;
	if (s->checker_started && !abandoned) {
		coord_deadline_us(&ts, (uint64_t)COORD_CLOSE_DEADLINE_MS * 1000u);
		if (pthread_timedjoin_np(s->checker, NULL, &ts) != 0)
			abandoned = 1;
	}
	if (abandoned) {
		/* Threads may still touch s: leave it allocated. */
		coord_logf(&s->cfg.log, COORD_LOG_WARN,
			   "nng did not close its sockets within %u ms (nng 1.5.2 close "
			   "deadlock); the store is synced and closed, leaving them",
			   COORD_CLOSE_DEADLINE_MS);
		return rc;
	}
	coord_sockets_free(s);
	coord_dedup_finish(&s->dedup);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->listen_mu);
	pthread_mutex_destroy(&s->check_mu);
	pthread_cond_destroy(&s->cv);
	pthread_cond_destroy(&s->done_cv);
	pthread_cond_destroy(&s->check_cv);
	free(s);
	return rc;
}

const char *coord_server_listen_url(const struct coord_server *s)
{
	return s->listen_url;
}

const char *coord_server_events_url(const struct coord_server *s)
{
	return s->events_url;
}

/* ---- The public API (sutra/coordinator.h) -------------------------------- */

struct sutra_coordinator {
	struct coord_server *srv;
};

int sutra_coordinator_start(const sutra_coordinator_config *cfg, sutra_coordinator **out,
			    struct sutra_detail *why)
{
	struct coord_config c;
	char *data = NULL;
	int rc;

	if (!cfg || !out)
		return util_fail(-EINVAL, why, "no configuration");
	sutra_coordinator *co = calloc(1, sizeof *co);
	if (!co)
		return util_fail(-ENOMEM, why, "out of memory");
	rc = coord_config_resolve(cfg, &c, &data, why);
	if (rc == 0)
		rc = coord_server_start(&c, &co->srv, why);
	free(data);
	if (rc) {
		free(co);
		return rc;
	}
	*out = co;
	return 0;
}

void sutra_coordinator_stop(sutra_coordinator *co)
{
	if (co)
		coord_server_stop(co->srv);
}

int sutra_coordinator_wait(sutra_coordinator *co, int timeout_ms)
{
	return co ? coord_server_wait(co->srv, timeout_ms) : 1;
}

int sutra_coordinator_failed(const sutra_coordinator *co)
{
	return co ? coord_server_failed(co->srv) : 0;
}

int sutra_coordinator_destroy(sutra_coordinator *co)
{
	if (!co)
		return 0;
	int rc = coord_server_destroy(co->srv);
	free(co);
	return rc;
}

const char *sutra_coordinator_listen_url(const sutra_coordinator *co)
{
	return coord_server_listen_url(co->srv);
}

const char *sutra_coordinator_events_url(const sutra_coordinator *co)
{
	return coord_server_events_url(co->srv);
}

int sutra_coordinator_stats(sutra_coordinator *co, struct sutra_coord_stats *st)
{
	struct proto_stats ps;

	if (!co || !st)
		return -EINVAL;
	coord_server_stats(co->srv, &ps);
	proto_stats_to_public(&ps, st);
	return 0;
}
