/* SPDX-License-Identifier: MIT */
/* The coordinator's options: defaults and default URLs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "coordinator/server_internal.h"

void coord_config_defaults(struct coord_config *c)
{
	memset(c, 0, sizeof *c);
	c->vector_dim = 768;
	c->durability = COORD_DURABILITY_SYNC;
	c->sync_interval_ms = 100;
	c->commit_window_us = 0;
	c->io = COORD_IO_AUTO;
	c->max_request = 64u << 20;
	c->max_content = 1u << 20;
	c->max_metadata = 1u << 20;
	c->max_batch = 100000;
	c->contexts = 64;
	c->check_interval_ms = 1000;
	c->segment_kib = 16384;
	c->log_retention_mib = 64;
	c->log.max_level = COORD_LOG_INFO;
}

int coord_default_url(const char *data_path, const char *suffix, char *out, size_t len)
{
	struct sockaddr_un sa;
	const char *slash = strrchr(data_path, '/');
	const char *name = slash ? slash + 1 : data_path;
	int dirlen = slash ? (int)(slash - data_path) : 1;
	const char *dir = slash ? data_path : ".";

	if (slash == data_path)
		dirlen = 0; /* a file in / */
	int n = snprintf(out, len, "ipc://%.*s/%s.%s", dirlen, dir, name, suffix);
	if (n > 0 && (size_t)n < len && (size_t)n - 6 < sizeof sa.sun_path)
		return 0;
	/* Too long for a Unix socket address: a name under the runtime
	 * directory derived from the whole path, so that it is stable. */
	uint64_t h = 1469598103934665603ull;
	for (const char *p = data_path; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	const char *rt = getenv("XDG_RUNTIME_DIR");
	if (!rt || !*rt)
		rt = "/tmp";
	n = snprintf(out, len, "ipc://%s/sutra-%016llx.%s", rt, (unsigned long long)h, suffix);
	if (n < 0 || (size_t)n >= len || (size_t)n - 6 >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	return 0;
}
