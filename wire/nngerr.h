/* SPDX-License-Identifier: MIT */
/* The one conversion of nng's error codes into the project's (-errno, SUTRA_E*). */
#ifndef WIRE_NNGERR_H
#define WIRE_NNGERR_H

#include <nng/nng.h>

/*
 * nng reports failures with its own positive codes (NNG_ENOMEM, ...). The
 * coordinator, libsutra-client and libsutra-reader all return the
 * project's codes instead (docs/ERRORS.md), and they convert here, so that
 * the same nng failure means the same thing whichever library met it:
 *
 *   0                                     -> 0
 *   NNG_ENOMEM                            -> -ENOMEM
 *   NNG_EINVAL, NNG_EADDRINVAL, NNG_ENOTSUP -> -EINVAL  (a bad URL or option)
 *   NNG_EADDRINUSE                        -> -EADDRINUSE
 *   NNG_EPERM                             -> -EPERM
 *   NNG_ETIMEDOUT, NNG_EAGAIN             -> -ETIMEDOUT
 *   anything else                         -> SUTRA_EUNAVAIL (the peer or the
 *                                            transport is not there)
 */

/* Converts an nng return value (0 or NNG_E*) as above. */
int wire_nng_error(int nng_rv);

/* The permissions of the coordinator's ipc:// sockets: the owner and the
 * store's group may connect (write, notices), nobody else. */
#define WIRE_IPC_MODE 0660

/* nng_listen(), but an ipc:// socket gets WIRE_IPC_MODE whatever the umask
 * (NNG_OPT_IPC_PERMISSIONS, set before the listener starts). Returns an
 * nng code like nng_listen. */
int wire_listen(nng_socket sock, const char *url, nng_listener *l);

#endif /* WIRE_NNGERR_H */
