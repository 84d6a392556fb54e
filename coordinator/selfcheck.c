/* SPDX-License-Identifier: MIT */
/* The check thread: round trips to the server's own listeners, re-opening one that went silent, and heartbeats. */
#include "coordinator/server_internal.h"
#include "wire/nngerr.h"

#include <errno.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>

static int relisten(struct coord_server *s, nng_socket sock, nng_listener *l, const char *url)
{
	pthread_mutex_lock(&s->listen_mu);
	nng_listener_close(*l);
	int rv = wire_listen(sock, url, l);
	pthread_mutex_unlock(&s->listen_mu);
	atomic_fetch_add(&s->relistens, 1);
	coord_logf(&s->cfg.log, rv ? COORD_LOG_ERR : COORD_LOG_WARN,
		   "self check: %s did not answer; listener re-opened%s%s", url, rv ? ": " : "",
		   rv ? nng_strerror(rv) : "");
	return rv;
}

static int self_ping(nng_socket req)
{
	unsigned char buf[PROTO_REQ_HEADER];
	struct proto_req_header h = { .version = PROTO_VERSION, .op = PROTO_OP_PING };
	proto_req_header_encode(&h, buf);
	int rv = nng_send(req, buf, sizeof buf, 0);
	if (rv)
		return rv;
	void *reply;
	size_t len;
	rv = nng_recv(req, &reply, &len, NNG_FLAG_ALLOC);
	if (rv)
		return rv;
	struct proto_rep_header rh;
	rv = proto_rep_header_decode(reply, len, &rh) == 0 && rh.status == 0 ? 0 : NNG_EPROTO;
	nng_free(reply, len);
	return rv;
}

/* Waits up to ms for a stop; returns 1 when stopping. */
static int check_sleep(struct coord_server *s, uint32_t ms)
{
	struct timespec ts;
	coord_deadline_us(&ts, (uint64_t)ms * 1000u);
	pthread_mutex_lock(&s->check_mu);
	while (!s->check_stop) {
		if (pthread_cond_timedwait(&s->check_cv, &s->check_mu, &ts) == ETIMEDOUT)
			break;
	}
	int stop = s->check_stop;
	pthread_mutex_unlock(&s->check_mu);
	return stop;
}

/* A round trip to our own REP listener over a NEW connection: the nng
 * 1.5.2 bug leaves established connections working while new ones are
 * never served, so only a fresh connection tells. */
static int check_rep(struct coord_server *s, uint32_t iv)
{
	nng_socket req;
	int rv = nng_req0_open(&req);
	if (rv)
		return 0; /* cannot test: do not blame the listener */
	nng_socket_set_ms(req, NNG_OPT_SENDTIMEO, (nng_duration)iv);
	nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, (nng_duration)iv);
	nng_socket_set_ms(req, NNG_OPT_RECONNMINT, 10);
	rv = nng_dial(req, s->listen_url, NULL, NNG_FLAG_NONBLOCK);
	if (rv == 0)
		rv = self_ping(req);
	nng_close(req);
	return rv;
}

/* The same for the PUB listener: a new subscriber must hear a heartbeat
 * (sent every 50 ms until heard, since one sent before the new pipe is
 * attached is lost) within the interval. */
static int check_pub(struct coord_server *s, uint32_t iv)
{
	nng_socket sub;
	int heard = 0;
	if (nng_sub0_open(&sub) != 0)
		return 0;
	nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "", 0);
	nng_socket_set_ms(sub, NNG_OPT_RECONNMINT, 10);
	nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 50);
	if (nng_dial(sub, s->events_url, NULL, NNG_FLAG_NONBLOCK) == 0) {
		uint64_t until = coord_mono_ms() + iv;
		while (!heard && coord_mono_ms() < until && !check_sleep(s, 0)) {
			void *m;
			size_t len;
			coord_publish(s, PROTO_NOTICE_HEARTBEAT, NULL, 0);
			if (nng_recv(sub, &m, &len, NNG_FLAG_ALLOC) == 0) {
				heard = 1;
				nng_free(m, len);
			}
		}
	}
	nng_close(sub);
	return heard ? 0 : NNG_ETIMEDOUT;
}

void *coord_checker_main(void *arg)
{
	struct coord_server *s = arg;
	uint32_t iv = s->cfg.check_interval_ms;
	uint32_t rep_fail = 0, pub_fail = 0;

	/* Two failed checks in a row, so that one slow moment (a long
	 * commit keeping every context busy) does not restart a listener. */
	while (!check_sleep(s, iv)) {
		rep_fail = check_rep(s, iv) ? rep_fail + 1 : 0;
		if (rep_fail >= 2 && !check_sleep(s, 0)) {
			relisten(s, s->rep, &s->rep_l, s->listen_url);
			rep_fail = 0;
		}
		pub_fail = check_pub(s, iv) ? pub_fail + 1 : 0;
		if (pub_fail >= 2 && !check_sleep(s, 0)) {
			relisten(s, s->pub, &s->pub_l, s->events_url);
			pub_fail = 0;
		}
	}
	return NULL;
}
