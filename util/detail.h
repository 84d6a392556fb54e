/* SPDX-License-Identifier: MIT */
/* Filling a caller's struct sutra_detail, the one convention for error detail. */
#ifndef UTIL_DETAIL_H
#define UTIL_DETAIL_H

/*
 * Every internal function that can say more than its return code takes a
 * struct sutra_detail * (include/sutra/common.h) as its last argument,
 * named why, which may be NULL. On failure it fills why with a sentence
 * (and the file offset, when the failure is about a file's bytes) and
 * returns the code; on success it leaves why alone. Callers that add
 * context write a new sentence around why->what.
 */

#include <stdint.h>

#include "sutra/common.h"

/* Fills d (if not NULL) with offset and the formatted sentence. */
__attribute__((format(printf, 3, 4))) void util_detail_set(struct sutra_detail *d,
							    uint64_t offset, const char *fmt,
							    ...);

/* Fills d (if not NULL) with the formatted sentence and no offset; returns
 * rc, so that a failure reads "return util_fail(rc, why, ...)". */
__attribute__((format(printf, 3, 4))) int util_fail(int rc, struct sutra_detail *d,
						     const char *fmt, ...);

#endif /* UTIL_DETAIL_H */
