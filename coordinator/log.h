/* SPDX-License-Identifier: MIT */
/* Logging of the coordinator library: a callback the program (or the Python binding) provides. */
#ifndef COORDINATOR_LOG_H
#define COORDINATOR_LOG_H

/*
 * The library never prints. It formats a message and hands it with a
 * syslog level to the callback; sutra-coordinator's main writes it to
 * stderr with a "<N>" prefix that journald understands. Levels above
 * max_level are dropped before formatting.
 */

enum coord_log_level {
	COORD_LOG_ERR = 3,
	COORD_LOG_WARN = 4,
	COORD_LOG_NOTICE = 5,
	COORD_LOG_INFO = 6,
	COORD_LOG_DEBUG = 7,
};

typedef void (*coord_log_fn)(void *arg, int level, const char *msg);

struct coord_log {
	coord_log_fn fn; /* NULL: discard */
	void *arg;
	int max_level;
};

void coord_logf(const struct coord_log *log, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* COORDINATOR_LOG_H */
