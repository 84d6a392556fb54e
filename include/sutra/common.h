/* SPDX-License-Identifier: MIT */
/* Shared definitions for every public Sutra header: export macro and version. */
#ifndef SUTRA_COMMON_H
#define SUTRA_COMMON_H

#if defined(__GNUC__) || defined(__clang__)
#define SUTRA_API __attribute__((visibility("default")))
#else
#define SUTRA_API
#endif

#include <stdint.h>

/** Version of the storage.dat format this build writes and reads. */
#define SUTRA_FORMAT_VERSION 1

/** The offset of a struct sutra_detail that is about no place in a file. */
#define SUTRA_DETAIL_NO_OFFSET UINT64_MAX

/**
 * What went wrong, in a sentence, for a call that failed: the one way every
 * Sutra library reports the detail behind an error code. A caller that wants
 * it passes a struct of its own (it may be NULL); the callee fills it only
 * when it fails. Being the caller's, it is never shared between threads.
 */
struct sutra_detail {
	/** Where in the file the problem is, or SUTRA_DETAIL_NO_OFFSET. */
	uint64_t offset;
	/** The sentence, NUL-terminated (truncated to fit). */
	char what[256];
};

#endif /* SUTRA_COMMON_H */
