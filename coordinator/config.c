/* SPDX-License-Identifier: MIT */
/* The coordinator's options: defaults, default URLs, setting them by name and reading a config file. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "coordinator/server_internal.h"
#include "sutra/coordinator.h"
#include "util/detail.h"
#include "util/hash.h"

_Static_assert((int)SUTRA_LOG_ERROR == (int)COORD_LOG_ERR &&
		       (int)SUTRA_LOG_WARNING == (int)COORD_LOG_WARN &&
		       (int)SUTRA_LOG_NOTICE == (int)COORD_LOG_NOTICE &&
		       (int)SUTRA_LOG_INFO == (int)COORD_LOG_INFO &&
		       (int)SUTRA_LOG_DEBUG == (int)COORD_LOG_DEBUG,
	       "the public log levels are the library's");

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

/*
 * Where a socket goes when the path next to the store is too long for a
 * socket address: $XDG_RUNTIME_DIR (private to its user by definition),
 * else /tmp/sutra-UID, UID being the owner of the directory that holds the
 * store, so that every user of the store computes the same name. Never a
 * guessable name straight in a world-writable directory: a squatter could
 * bind it first. The coordinator makes that directory its own before it
 * binds (coord_fallback_dir_ready).
 */
static void fallback_dir(const char *data_path, char *dir, size_t len)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");
	if (rt && *rt) {
		snprintf(dir, len, "%s", rt);
		return;
	}
	char parent[PATH_MAX];
	const char *slash = strrchr(data_path, '/');
	if (!slash)
		snprintf(parent, sizeof parent, ".");
	else if (slash == data_path)
		snprintf(parent, sizeof parent, "/");
	else
		snprintf(parent, sizeof parent, "%.*s", (int)(slash - data_path), data_path);
	struct stat st;
	unsigned long uid = stat(parent, &st) == 0 ? (unsigned long)st.st_uid
						   : (unsigned long)geteuid();
	snprintf(dir, len, "/tmp/sutra-%lu", uid);
}

int coord_fallback_dir_ready(const char *data_path, const char *url, struct sutra_detail *why)
{
	char dir[PATH_MAX], prefix[PATH_MAX + 16];
	const char *rt = getenv("XDG_RUNTIME_DIR");
	if (rt && *rt)
		return 0;
	fallback_dir(data_path, dir, sizeof dir);
	snprintf(prefix, sizeof prefix, "ipc://%s/", dir);
	if (strncmp(url, prefix, strlen(prefix)) != 0)
		return 0; /* not a fallback URL */
	unsigned long uid = strtoul(dir + strlen("/tmp/sutra-"), NULL, 10);
	if (mkdir(dir, 0711) != 0 && errno != EEXIST)
		return util_fail(-errno, why, "cannot make the socket directory %s: %s", dir,
				 strerror(errno));
	struct stat st;
	if (lstat(dir, &st) != 0)
		return util_fail(-errno, why, "cannot check the socket directory %s: %s", dir,
				 strerror(errno));
	if (!S_ISDIR(st.st_mode) || (unsigned long)st.st_uid != uid || (st.st_mode & 022))
		return util_fail(-EACCES, why,
				 "the socket directory %s is not a directory of uid %lu that "
				 "only it may write (owner %lu, mode %04o): another user may "
				 "have taken the name; remove it, or give --listen and --events",
				 dir, uid, (unsigned long)st.st_uid, (unsigned)(st.st_mode & 07777));
	return 0;
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
	 * directory derived from the whole path, so that it is stable: the
	 * 64-bit FNV-1a hash PROTOCOL.md section 2 names, so that a client
	 * written from the spec finds the socket. */
	uint64_t h = util_fnv1a64(data_path, strlen(data_path));
	char rt[PATH_MAX];
	fallback_dir(data_path, rt, sizeof rt);
	n = snprintf(out, len, "ipc://%s/sutra-%016llx.%s", rt, (unsigned long long)h, suffix);
	if (n < 0 || (size_t)n >= len || (size_t)n - 6 >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	return 0;
}

int sutra_coordinator_default_url(const char *data_path, const char *suffix, char *out, size_t len)
{
	if (!data_path || !suffix || !out)
		return -EINVAL;
	return coord_default_url(data_path, suffix, out, len);
}

/* ---- Options by name ------------------------------------------------------ */

/* The strings are the configuration's own copies. */
struct sutra_coordinator_config {
	struct coord_config c;
	char *data, *listen, *events, *fault;
	uint32_t default_dim; /* a new store's, unless vector-dimension is set */
};

enum opt_id {
	O_DATA,
	O_LISTEN,
	O_EVENTS,
	O_DIM,
	O_DEFAULT_DIM,
	O_DURABILITY,
	O_SYNC_INTERVAL,
	O_WINDOW,
	O_IO,
	O_MAX_REQUEST,
	O_MAX_CONTENT,
	O_MAX_METADATA,
	O_MAX_BATCH,
	O_CONTEXTS,
	O_CHECK,
	O_SEGMENT,
	O_RETENTION,
	O_LOG_LEVEL,
	O_IO_FAULT,
};

static const struct opt {
	const char *name;
	enum opt_id id;
	uint32_t lo, hi; /* the range of a number */
	int in_file;     /* an option of sutra-coordinator(8), taken by config files */
} opts[] = {
	{ "data", O_DATA, 0, 0, 1 },
	{ "vector-dimension", O_DIM, 1, 65536, 1 },
	{ "listen", O_LISTEN, 0, 0, 1 },
	{ "events", O_EVENTS, 0, 0, 1 },
	{ "durability", O_DURABILITY, 0, 0, 1 },
	{ "sync-interval-ms", O_SYNC_INTERVAL, 1, 3600000, 1 },
	{ "commit-window-us", O_WINDOW, 0, 1000000, 1 },
	{ "io", O_IO, 0, 0, 1 },
	{ "max-request-size", O_MAX_REQUEST, 4096, 1u << 30, 1 },
	{ "max-content-size", O_MAX_CONTENT, 1, 64u << 20, 1 },
	{ "max-metadata-size", O_MAX_METADATA, 0, 64u << 20, 1 },
	{ "max-batch", O_MAX_BATCH, 1, 10000000, 1 },
	{ "contexts", O_CONTEXTS, 1, 1024, 1 },
	{ "check-interval-ms", O_CHECK, 0, 3600000, 1 },
	{ "log-level", O_LOG_LEVEL, 0, 0, 1 },
	{ "segment-threshold-kib", O_SEGMENT, 0, 1u << 24, 1 },
	{ "log-retention-mib", O_RETENTION, 0, 1u << 20, 1 },
	{ "default-vector-dimension", O_DEFAULT_DIM, 1, 65536, 0 },
	{ "io-fault", O_IO_FAULT, 0, 0, 0 },
};

/* A word option's values, in the order of their enum values. */
static const char *const durability_words[] = { "sync", "relaxed", NULL };
static const char *const io_words[] = { "uring", "sync", NULL };
static const char *const level_words[] = { "error", "warning", "notice", "info", "debug", NULL };

static const struct opt *opt_find(const char *name)
{
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int parse_word(const char *s, const char *const *words, int *out)
{
	for (int i = 0; words[i]; i++) {
		if (strcmp(s, words[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	return -1;
}

/* The option's number, or NULL if it is not a number. */
static uint32_t *u32_field(struct sutra_coordinator_config *cfg, enum opt_id id)
{
	struct coord_config *c = &cfg->c;
	switch (id) {
	case O_DIM:
		return &c->vector_dim;
	case O_DEFAULT_DIM:
		return &cfg->default_dim;
	case O_SYNC_INTERVAL:
		return &c->sync_interval_ms;
	case O_WINDOW:
		return &c->commit_window_us;
	case O_MAX_REQUEST:
		return &c->max_request;
	case O_MAX_CONTENT:
		return &c->max_content;
	case O_MAX_METADATA:
		return &c->max_metadata;
	case O_MAX_BATCH:
		return &c->max_batch;
	case O_CONTEXTS:
		return &c->contexts;
	case O_CHECK:
		return &c->check_interval_ms;
	case O_SEGMENT:
		return &c->segment_kib;
	case O_RETENTION:
		return &c->log_retention_mib;
	default:
		return NULL;
	}
}

/* The option's string, or NULL if it is not a string. */
static char **str_field(struct sutra_coordinator_config *cfg, enum opt_id id)
{
	switch (id) {
	case O_DATA:
		return &cfg->data;
	case O_LISTEN:
		return &cfg->listen;
	case O_EVENTS:
		return &cfg->events;
	case O_IO_FAULT:
		return &cfg->fault;
	default:
		return NULL;
	}
}

/* Applies one option. where, if not NULL, starts the error sentence
 * ("FILE:LINE"); otherwise it is the program's "--name" sentence alone. */
static int apply(struct sutra_coordinator_config *cfg, const struct opt *o, const char *val,
		 const char *where, struct sutra_detail *why)
{
	struct coord_config *c = &cfg->c;
	char **str = str_field(cfg, o->id);
	uint32_t *num = u32_field(cfg, o->id);
	uint32_t v;
	int w, bad = 0;

	if (str) {
		char *copy = strdup(val);
		if (!copy)
			return util_fail(-ENOMEM, why, "out of memory");
		free(*str);
		*str = copy;
	} else if (num) {
		bad = parse_u32(val, o->lo, o->hi, &v);
		if (!bad)
			*num = v;
		if (!bad && o->id == O_DIM)
			c->vector_dim_explicit = 1;
	} else if (o->id == O_DURABILITY) {
		bad = parse_word(val, durability_words, &w);
		if (!bad)
			c->durability = w == 0 ? COORD_DURABILITY_SYNC : COORD_DURABILITY_RELAXED;
	} else if (o->id == O_IO) {
		bad = parse_word(val, io_words, &w);
		if (!bad)
			c->io = w == 0 ? COORD_IO_AUTO : COORD_IO_SYNC;
	} else if (o->id == O_LOG_LEVEL) {
		bad = parse_word(val, level_words, &w);
		if (!bad)
			c->log.max_level = COORD_LOG_ERR + w;
	}
	if (bad)
		return util_fail(SUTRA_EVALUE, why, "%s%sinvalid value '%s' for --%s", where ? where : "",
				 where ? ": " : "", val, o->name);
	return 0;
}

int sutra_coordinator_config_create(sutra_coordinator_config **out)
{
	if (!out)
		return -EINVAL;
	sutra_coordinator_config *cfg = calloc(1, sizeof *cfg);
	if (!cfg)
		return -ENOMEM;
	coord_config_defaults(&cfg->c);
	cfg->default_dim = cfg->c.vector_dim;
	*out = cfg;
	return 0;
}

void sutra_coordinator_config_destroy(sutra_coordinator_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->data);
	free(cfg->listen);
	free(cfg->events);
	free(cfg->fault);
	free(cfg);
}

int sutra_coordinator_config_set(sutra_coordinator_config *cfg, const char *name,
				 const char *value, struct sutra_detail *why)
{
	if (!cfg || !name)
		return util_fail(-EINVAL, why, "no configuration or option name");
	const struct opt *o = opt_find(name);
	if (!o)
		return util_fail(-EINVAL, why, "unknown option '%s'", name);
	if (!value)
		return util_fail(SUTRA_EVALUE, why, "option '%s' needs a value", name);
	return apply(cfg, o, value, NULL, why);
}

int sutra_coordinator_config_get(const sutra_coordinator_config *cfg, const char *name, char *out,
				 size_t len)
{
	if (!cfg || !name || !out)
		return -EINVAL;
	const struct opt *o = opt_find(name);
	if (!o)
		return -EINVAL;
	/* The lookups take a mutable configuration; nothing is changed. */
	sutra_coordinator_config *m = (sutra_coordinator_config *)cfg;
	const struct coord_config *c = &cfg->c;
	char **str = str_field(m, o->id);
	uint32_t *num = u32_field(m, o->id);
	char digits[16];
	const char *val;

	if (o->id == O_DIM) {
		snprintf(digits, sizeof digits, "%u",
			 c->vector_dim_explicit ? c->vector_dim : cfg->default_dim);
		val = digits;
	} else if (str) {
		if (!*str)
			return -ENOENT;
		val = *str;
	} else if (num) {
		snprintf(digits, sizeof digits, "%u", *num);
		val = digits;
	} else if (o->id == O_DURABILITY) {
		val = durability_words[c->durability == COORD_DURABILITY_SYNC ? 0 : 1];
	} else if (o->id == O_IO) {
		val = io_words[c->io == COORD_IO_SYNC ? 1 : 0];
	} else {
		val = level_words[c->log.max_level - COORD_LOG_ERR];
	}
	size_t n = strlen(val);
	if (n >= len)
		return -ERANGE; /* out is left alone */
	memcpy(out, val, n + 1);
	return 0;
}

void sutra_coordinator_config_set_log(sutra_coordinator_config *cfg, sutra_log_fn fn, void *arg)
{
	if (!cfg)
		return;
	cfg->c.log.fn = fn;
	cfg->c.log.arg = arg;
}

int sutra_coordinator_config_load(sutra_coordinator_config *cfg, const char *path,
				  struct sutra_detail *why)
{
	char line[4096];
	int lineno = 0, rc = 0;

	if (!cfg || !path)
		return util_fail(-EINVAL, why, "no configuration or file name");
	FILE *f = fopen(path, "re");
	if (!f)
		return util_fail(-errno, why, "cannot read config %s: %s", path, strerror(errno));
	while (fgets(line, sizeof line, f)) {
		char where[512];
		lineno++;
		snprintf(where, sizeof where, "%s:%d", path, lineno);
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *p = line + strspn(line, " \t\r\n");
		if (!*p)
			continue;
		char *key = p;
		p += strcspn(p, " \t=\r\n");
		char *kend = p;
		p += strspn(p, " \t");
		if (*p == '=')
			p++;
		p += strspn(p, " \t");
		*kend = 0;
		char *val = p;
		size_t vl = strlen(val);
		while (vl && (val[vl - 1] == '\n' || val[vl - 1] == '\r' || val[vl - 1] == ' ' ||
			      val[vl - 1] == '\t'))
			val[--vl] = 0;
		const struct opt *o = opt_find(key);
		if (!o || !o->in_file) {
			rc = util_fail(-EINVAL, why, "%s: unknown option '%s'", where, key);
			break;
		}
		if (!*val) {
			rc = util_fail(SUTRA_EVALUE, why, "%s: option '%s' needs a value", where, key);
			break;
		}
		if ((rc = apply(cfg, o, val, where, why)))
			break;
	}
	fclose(f);
	return rc;
}

/* ---- For sutra_coordinator_start() ---------------------------------------- */

int coord_config_resolve(const sutra_coordinator_config *cfg, struct coord_config *c, char **data,
			 struct sutra_detail *why)
{
	struct stat st;

	if (!cfg->data)
		return util_fail(-EINVAL, why, "no data path");
	*c = cfg->c;
	if (!c->vector_dim_explicit)
		c->vector_dim = cfg->default_dim;
	c->listen_url = cfg->listen;
	c->events_url = cfg->events;
	c->fault_spec = cfg->fault;
	/* A directory holds the store under its usual name. */
	if (stat(cfg->data, &st) == 0 && S_ISDIR(st.st_mode)) {
		size_t n = strlen(cfg->data) + sizeof "/storage.dat";
		if (!(*data = malloc(n)))
			return util_fail(-ENOMEM, why, "out of memory");
		snprintf(*data, n, "%s/storage.dat", cfg->data);
	} else if (!(*data = strdup(cfg->data))) {
		return util_fail(-ENOMEM, why, "out of memory");
	}
	c->data_path = *data;
	return 0;
}
