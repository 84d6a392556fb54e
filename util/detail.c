/* SPDX-License-Identifier: MIT */
/* Filling a caller's struct sutra_detail (util/detail.h). */
#include <stdarg.h>
#include <stdio.h>

#include "util/detail.h"

void util_detail_set(struct sutra_detail *d, uint64_t offset, const char *fmt, ...)
{
	va_list ap;

	if (!d)
		return;
	d->offset = offset;
	va_start(ap, fmt);
	vsnprintf(d->what, sizeof d->what, fmt, ap);
	va_end(ap);
}

int util_fail(int rc, struct sutra_detail *d, const char *fmt, ...)
{
	va_list ap;

	if (!d)
		return rc;
	d->offset = SUTRA_DETAIL_NO_OFFSET;
	va_start(ap, fmt);
	vsnprintf(d->what, sizeof d->what, fmt, ap);
	va_end(ap);
	return rc;
}
