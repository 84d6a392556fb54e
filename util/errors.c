/* SPDX-License-Identifier: MIT */
/* sutra_strerror() and sutra_errname(): one table for every error code. */
#include "sutra/errors.h"

#include <string.h>

static const struct {
	int code;
	const char *name;
	const char *text;
} sutra_errors[] = {
	{ SUTRA_ECORRUPT, "SUTRA_ECORRUPT", "store file is corrupt" },
	{ SUTRA_EVERSION, "SUTRA_EVERSION", "unsupported format version or feature" },
	{ SUTRA_EPROTO, "SUTRA_EPROTO", "malformed or unsupported protocol message" },
	{ SUTRA_ENOTFOUND, "SUTRA_ENOTFOUND", "no such concept or association" },
	{ SUTRA_EDIM, "SUTRA_EDIM", "vector dimension does not match the store" },
	{ SUTRA_EVALUE, "SUTRA_EVALUE", "invalid argument value" },
	{ SUTRA_ETOOBIG, "SUTRA_ETOOBIG", "size exceeds a configured or format limit" },
	{ SUTRA_ELOCKED, "SUTRA_ELOCKED", "store is locked by another writer" },
	{ SUTRA_EUNAVAIL, "SUTRA_EUNAVAIL", "coordinator unavailable" },
};

const char *sutra_strerror(int err)
{
	if (err == 0)
		return "success";
	for (size_t i = 0; i < sizeof sutra_errors / sizeof sutra_errors[0]; i++)
		if (sutra_errors[i].code == err)
			return sutra_errors[i].text;
	if (err < 0 && err > -1000) {
		/* strerrordesc_np returns a static string, unlike strerror. */
		const char *s = strerrordesc_np(-err);
		if (s)
			return s;
	}
	return "unknown error";
}

const char *sutra_errname(int err)
{
	if (err == 0)
		return "OK";
	for (size_t i = 0; i < sizeof sutra_errors / sizeof sutra_errors[0]; i++)
		if (sutra_errors[i].code == err)
			return sutra_errors[i].name;
	if (err < 0 && err > -1000) {
		const char *s = strerrorname_np(-err);
		if (s)
			return s;
	}
	return "UNKNOWN";
}
