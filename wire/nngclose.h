/* SPDX-License-Identifier: MIT */
/* Closing nng sockets with a deadline (a workaround for a close deadlock of nng 1.5.2). */
#ifndef WIRE_NNGCLOSE_H
#define WIRE_NNGCLOSE_H

/*
 * nng 1.5.2 can block for ever in nng_close() while a pipe the peer
 * dropped is being torn down (an endpoint close deadlock fixed upstream
 * after 1.5.2; seen after the coordinator drops an oversized request, and
 * when a coordinator goes away under a subscriber). The closes run on a
 * helper thread; the caller waits up to a deadline and, past it, abandons
 * the sockets (and the helper, which frees itself if nng ever returns)
 * rather than hang. Used by the coordinator, libsutra-client and
 * libsutra-reader alike.
 */

#include <nng/nng.h>

#define WIRE_NNG_CLOSE_MAX 4

/* Closes the n (<= WIRE_NNG_CLOSE_MAX) sockets, skipping those never
 * opened (id 0 or less), waiting at most ms milliseconds. Returns 1 when
 * all closed in time, 0 when they were abandoned. Without a thread to
 * spare it closes them here, without a deadline. */
int wire_nng_close_bounded(const nng_socket *socks, unsigned n, unsigned ms);

#endif /* WIRE_NNGCLOSE_H */
