/* SPDX-License-Identifier: MIT */
/* Formats a log message and hands it to the program's callback. */
#include "coordinator/log.h"

#include <stdarg.h>
#include <stdio.h>

void coord_logf(const struct coord_log *log, int level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (!log || !log->fn || level > log->max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	log->fn(log->arg, level, buf);
}
