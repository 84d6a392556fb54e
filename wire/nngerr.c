/* SPDX-License-Identifier: MIT */
/* The one conversion of nng's error codes into the project's, and listening with the ipc mode (wire/nngerr.h). */
#include <errno.h>
#include <string.h>

#include <nng/nng.h>

#include "sutra/errors.h"
#include "wire/nngerr.h"

int wire_listen(nng_socket sock, const char *url, nng_listener *l)
{
	nng_listener lst;
	int rv = nng_listener_create(&lst, sock, url);
	if (rv)
		return rv;
	if (strncmp(url, "ipc://", 6) == 0 &&
	    (rv = nng_listener_set_int(lst, NNG_OPT_IPC_PERMISSIONS, WIRE_IPC_MODE))) {
		nng_listener_close(lst);
		return rv;
	}
	if ((rv = nng_listener_start(lst, 0))) {
		nng_listener_close(lst);
		return rv;
	}
	if (l)
		*l = lst;
	return 0;
}

int wire_nng_error(int nng_rv)
{
	switch (nng_rv) {
	case 0:
		return 0;
	case NNG_ENOMEM:
		return -ENOMEM;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP:
		return -EINVAL;
	case NNG_EADDRINUSE:
		return -EADDRINUSE;
	case NNG_EPERM:
		return -EPERM;
	case NNG_ETIMEDOUT:
	case NNG_EAGAIN:
		return -ETIMEDOUT;
	default:
		return SUTRA_EUNAVAIL;
	}
}
