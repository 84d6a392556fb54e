/* SPDX-License-Identifier: MIT */
/* Error codes returned by every Sutra function, and their descriptions. */
#ifndef SUTRA_ERRORS_H
#define SUTRA_ERRORS_H

#include "sutra/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Every Sutra function that can fail returns an int: 0 on success, a
 * negative errno value (-ENOENT, -EIO, ...) for a failure of the operating
 * system, or one of the SUTRA_E* codes below, all at or below -1000.
 * docs/ERRORS.md is the table with what each means and what to do.
 */
enum sutra_error {
	/** Bytes read from storage.dat (or the lock file) are inconsistent. */
	SUTRA_ECORRUPT = -1000,
	/** The file uses a format version or feature this build does not know. */
	SUTRA_EVERSION = -1001,
	/** A message on the wire is malformed or of an unknown version. */
	SUTRA_EPROTO = -1002,
	/** The concept or association does not exist. */
	SUTRA_ENOTFOUND = -1003,
	/** A vector's dimension differs from the store's. */
	SUTRA_EDIM = -1004,
	/** An argument is invalid: NaN/Inf float, bad UTF-8, unknown option value. */
	SUTRA_EVALUE = -1005,
	/** A request, record or content exceeds a configured or format limit. */
	SUTRA_ETOOBIG = -1006,
	/** The store is already opened for writing by another process. */
	SUTRA_ELOCKED = -1007,
	/** The coordinator cannot be reached, or has stopped accepting writes. */
	SUTRA_EUNAVAIL = -1008,
};

/**
 * Describes an error code.
 *
 * @param err  0, a negative errno value, or a SUTRA_E* code.
 * @return A static, NUL-terminated English description; never NULL. Unknown
 *         codes give "unknown error". Thread-safe.
 */
SUTRA_API const char *sutra_strerror(int err);

/**
 * Gives the symbolic name of an error code ("SUTRA_ECORRUPT", "ENOENT").
 *
 * @param err  as for sutra_strerror().
 * @return A static string; "UNKNOWN" for codes without a name. Thread-safe.
 */
SUTRA_API const char *sutra_errname(int err);

#ifdef __cplusplus
}
#endif

#endif /* SUTRA_ERRORS_H */
