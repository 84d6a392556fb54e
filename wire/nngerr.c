/* SPDX-License-Identifier: MIT */
/* The one conversion of nng's error codes into the project's (wire/nngerr.h). */
#include <errno.h>

#include <nng/nng.h>

#include "sutra/errors.h"
#include "wire/nngerr.h"

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
