/* SPDX-License-Identifier: MIT */
/* sutra-coordinator: arguments and config file, signals, logging; the rest is the coordinator library. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "coordinator/server.h"
#include "sutra/errors.h"

#ifndef COORDINATOR_VERSION
#define COORDINATOR_VERSION "unknown"
#endif

static int journald;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: sutra-coordinator --data PATH [OPTION]...\n"
		"The single writer of a Sutra store: creates PATH on first start (recovers it\n"
		"on every start), takes writes over nng REQ/REP, commits them in epochs\n"
		"(group commit) and announces each epoch over nng PUB.\n"
		"\n"
		"  -d, --data PATH            the store file; a directory means PATH/storage.dat\n"
		"      --vector-dimension N   embedding dimension of a new store, 1..65536\n"
		"                             (default 768; for an existing store it must match)\n"
		"  -l, --listen URL           where writes arrive (default ipc://DIR/NAME.write)\n"
		"  -e, --events URL           where notices go (default ipc://DIR/NAME.events)\n"
		"      --durability MODE      sync (default): reply once durable; relaxed: reply\n"
		"                             once published, fdatasync every --sync-interval-ms\n"
		"      --sync-interval-ms N   relaxed mode's sync period (default 100)\n"
		"      --commit-window-us N   longest a request waits for others to join its\n"
		"                             group commit (default 0: commit what is queued)\n"
		"      --io BACKEND           uring (default; falls back to sync if io_uring\n"
		"                             cannot start) or sync (pwrite + fdatasync)\n"
		"      --max-request-size N   bytes of one request (default 67108864)\n"
		"      --max-content-size N   bytes of one concept's content (default 1048576)\n"
		"      --max-metadata-size N  bytes of one concept's metadata (default 1048576)\n"
		"      --max-batch N          operations in one request (default 100000)\n"
		"      --contexts N           requests received concurrently, 1..1024 (default 64)\n"
		"      --check-interval-ms N  self round trip and heartbeat period (default\n"
		"                             1000; 0 disables the listener self check)\n"
		"      --segment-threshold-kib N  tail KiB of commits that start a new index\n"
		"                             segment, built in the background (default\n"
		"                             16384; 0: never)\n"
		"      --log-retention-mib N  MiB of log already in segments to keep (default\n"
		"                             64; request markers there still catch resends\n"
		"                             after a restart); older is freed once no reader\n"
		"                             needs it\n"
		"      --log-level LEVEL      error, warning, notice, info (default) or debug\n"
		"  -c, --config FILE          read options from FILE first (see below)\n"
		"  -h, --help                 print this help and exit\n"
		"  -V, --version              print the version and exit\n"
		"\n"
		"Config file: one option per line, its long name without the dashes, then\n"
		"'=' or blanks, then the value (\"durability = relaxed\"); '#' starts a\n"
		"comment. Options on the command line override the file.\n"
		"\n"
		"Signals: SIGTERM and SIGINT stop taking requests, finish and acknowledge\n"
		"what was received, make it durable, publish, and exit 0.\n"
		"\n"
		"Exit status: 0 after a clean stop; 1 when the store cannot be opened (locked\n"
		"by another writer, corrupt, ...) or a write or fdatasync failed (the next\n"
		"start recovers from the disk); 2 on a usage error.\n"
		"\n"
		"Logs go to stderr, with a <N> syslog level prefix when run under systemd.\n"
		"Protocol: docs/PROTOCOL.md. Format: docs/FORMAT.md.\n");
}

static const char *level_name(int level)
{
	switch (level) {
	case COORD_LOG_ERR:
		return "error";
	case COORD_LOG_WARN:
		return "warning";
	case COORD_LOG_NOTICE:
		return "notice";
	case COORD_LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

static void log_stderr(void *arg, int level, const char *msg)
{
	(void)arg;
	if (journald)
		fprintf(stderr, "<%d>%s\n", level, msg);
	else
		fprintf(stderr, "sutra-coordinator: %s: %s\n", level_name(level), msg);
}

enum {
	OPT_DIM = 256,
	OPT_DURABILITY,
	OPT_SYNC_INTERVAL,
	OPT_WINDOW,
	OPT_IO,
	OPT_MAX_REQUEST,
	OPT_MAX_CONTENT,
	OPT_MAX_METADATA,
	OPT_MAX_BATCH,
	OPT_CONTEXTS,
	OPT_CHECK,
	OPT_LOG_LEVEL,
	OPT_SEGMENT,
	OPT_RETENTION,
};

static const struct option long_opts[] = {
	{ "data", required_argument, NULL, 'd' },
	{ "vector-dimension", required_argument, NULL, OPT_DIM },
	{ "listen", required_argument, NULL, 'l' },
	{ "events", required_argument, NULL, 'e' },
	{ "durability", required_argument, NULL, OPT_DURABILITY },
	{ "sync-interval-ms", required_argument, NULL, OPT_SYNC_INTERVAL },
	{ "commit-window-us", required_argument, NULL, OPT_WINDOW },
	{ "io", required_argument, NULL, OPT_IO },
	{ "max-request-size", required_argument, NULL, OPT_MAX_REQUEST },
	{ "max-content-size", required_argument, NULL, OPT_MAX_CONTENT },
	{ "max-metadata-size", required_argument, NULL, OPT_MAX_METADATA },
	{ "max-batch", required_argument, NULL, OPT_MAX_BATCH },
	{ "contexts", required_argument, NULL, OPT_CONTEXTS },
	{ "check-interval-ms", required_argument, NULL, OPT_CHECK },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "segment-threshold-kib", required_argument, NULL, OPT_SEGMENT },
	{ "log-retention-mib", required_argument, NULL, OPT_RETENTION },
	{ "config", required_argument, NULL, 'c' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* Strings given by options live as long as the program. */
struct settings {
	struct coord_config cfg;
	char *data;
	char *listen;
	char *events;
};

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

/* Applies one option; where says where it came from for the error. */
static int apply(struct settings *st, int opt, const char *name, const char *val,
		 const char *where)
{
	struct coord_config *c = &st->cfg;
	uint32_t v = 0;
	int bad = 0;

	switch (opt) {
	case 'd':
		free(st->data);
		st->data = strdup(val);
		break;
	case 'l':
		free(st->listen);
		st->listen = strdup(val);
		break;
	case 'e':
		free(st->events);
		st->events = strdup(val);
		break;
	case OPT_DIM:
		bad = parse_u32(val, 1, 65536, &c->vector_dim);
		c->vector_dim_explicit = 1;
		break;
	case OPT_DURABILITY:
		if (strcmp(val, "sync") == 0)
			c->durability = COORD_DURABILITY_SYNC;
		else if (strcmp(val, "relaxed") == 0)
			c->durability = COORD_DURABILITY_RELAXED;
		else
			bad = 1;
		break;
	case OPT_SYNC_INTERVAL:
		bad = parse_u32(val, 1, 3600000, &c->sync_interval_ms);
		break;
	case OPT_WINDOW:
		bad = parse_u32(val, 0, 1000000, &c->commit_window_us);
		break;
	case OPT_IO:
		if (strcmp(val, "uring") == 0)
			c->io = COORD_IO_AUTO;
		else if (strcmp(val, "sync") == 0)
			c->io = COORD_IO_SYNC;
		else
			bad = 1;
		break;
	case OPT_MAX_REQUEST:
		bad = parse_u32(val, 4096, 1u << 30, &c->max_request);
		break;
	case OPT_MAX_CONTENT:
		bad = parse_u32(val, 1, 64u << 20, &c->max_content);
		break;
	case OPT_MAX_METADATA:
		bad = parse_u32(val, 0, 64u << 20, &c->max_metadata);
		break;
	case OPT_MAX_BATCH:
		bad = parse_u32(val, 1, 10000000, &c->max_batch);
		break;
	case OPT_CONTEXTS:
		bad = parse_u32(val, 1, 1024, &c->contexts);
		break;
	case OPT_CHECK:
		bad = parse_u32(val, 0, 3600000, &c->check_interval_ms);
		break;
	case OPT_SEGMENT:
		bad = parse_u32(val, 0, 1u << 24, &c->segment_kib);
		break;
	case OPT_RETENTION:
		bad = parse_u32(val, 0, 1u << 20, &c->log_retention_mib);
		break;
	case OPT_LOG_LEVEL:
		if (strcmp(val, "error") == 0)
			c->log.max_level = COORD_LOG_ERR;
		else if (strcmp(val, "warning") == 0)
			c->log.max_level = COORD_LOG_WARN;
		else if (strcmp(val, "notice") == 0)
			c->log.max_level = COORD_LOG_NOTICE;
		else if (strcmp(val, "info") == 0)
			c->log.max_level = COORD_LOG_INFO;
		else if (strcmp(val, "debug") == 0)
			c->log.max_level = COORD_LOG_DEBUG;
		else
			bad = 1;
		break;
	default:
		bad = 1;
		break;
	}
	(void)v;
	if (bad) {
		fprintf(stderr, "sutra-coordinator: %s: invalid value '%s' for --%s\n", where, val,
			name);
		return -1;
	}
	return 0;
}

static int load_config(struct settings *st, const char *path)
{
	FILE *f = fopen(path, "re");
	char line[4096];
	int lineno = 0, rc = 0;

	if (!f) {
		fprintf(stderr, "sutra-coordinator: cannot read config %s: %s\n", path,
			strerror(errno));
		return -1;
	}
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
		const struct option *o = long_opts;
		while (o->name && strcmp(o->name, key) != 0)
			o++;
		if (!o->name || o->has_arg != required_argument || o->val == 'c') {
			fprintf(stderr, "sutra-coordinator: %s: unknown option '%s'\n", where, key);
			rc = -1;
			break;
		}
		if (!*val) {
			fprintf(stderr, "sutra-coordinator: %s: option '%s' needs a value\n", where,
				key);
			rc = -1;
			break;
		}
		if ((rc = apply(st, o->val, o->name, val, where)))
			break;
	}
	fclose(f);
	return rc;
}

static void settings_free(struct settings *st)
{
	free(st->data);
	free(st->listen);
	free(st->events);
}

static const char *opt_name(int opt)
{
	for (const struct option *o = long_opts; o->name; o++)
		if (o->val == opt)
			return o->name;
	return "?";
}

int main(int argc, char **argv)
{
	struct settings st;
	struct sutra_detail why = { .what = "" };
	int opt;

	memset(&st, 0, sizeof st);
	coord_config_defaults(&st.cfg);
	journald = getenv("JOURNAL_STREAM") != NULL;

	/* First pass: --help, --version, --config (the file comes first, the
	 * command line overrides it). */
	const char *config = NULL;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "d:l:e:c:hV", long_opts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 0;
		}
		if (opt == 'V') {
			printf("sutra-coordinator %s (storage.dat format %d, protocol %u)\n",
			       COORDINATOR_VERSION, SUTRA_FORMAT_VERSION, PROTO_VERSION);
			return 0;
		}
		if (opt == 'c')
			config = optarg;
	}
	if (config && load_config(&st, config)) {
		settings_free(&st);
		return 2;
	}
	optind = 1;
	opterr = 1;
	while ((opt = getopt_long(argc, argv, "d:l:e:c:hV", long_opts, NULL)) != -1) {
		if (opt == '?') {
			fprintf(stderr, "Try 'sutra-coordinator --help'.\n");
			settings_free(&st);
			return 2;
		}
		if (opt == 'c')
			continue;
		if (apply(&st, opt, opt_name(opt), optarg, "command line")) {
			settings_free(&st);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "sutra-coordinator: unexpected argument '%s'\n"
				"Try 'sutra-coordinator --help'.\n",
			argv[optind]);
		settings_free(&st);
		return 2;
	}
	if (!st.data) {
		fprintf(stderr, "sutra-coordinator: --data PATH is required\n"
				"Try 'sutra-coordinator --help'.\n");
		settings_free(&st);
		return 2;
	}
	struct stat sbuf;
	if (stat(st.data, &sbuf) == 0 && S_ISDIR(sbuf.st_mode)) {
		size_t n = strlen(st.data) + sizeof "/storage.dat";
		char *p = malloc(n);
		if (!p) {
			settings_free(&st);
			return 1;
		}
		snprintf(p, n, "%s/storage.dat", st.data);
		free(st.data);
		st.data = p;
	}
	st.cfg.data_path = st.data;
	st.cfg.listen_url = st.listen;
	st.cfg.events_url = st.events;
	st.cfg.fault_spec = getenv("SUTRA_COORD_FAULT");
	st.cfg.log.fn = log_stderr;

	/* Every thread inherits this mask; the main thread takes the
	 * signals synchronously. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct coord_server *srv;
	int rc = coord_server_start(&st.cfg, &srv, &why);
	if (rc) {
		log_stderr(NULL, COORD_LOG_ERR, why.what[0] ? why.what : sutra_strerror(rc));
		settings_free(&st);
		return 1;
	}
	for (;;) {
		struct timespec ts = { 0, 200 * 1000000 };
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			char msg[64];
			snprintf(msg, sizeof msg, "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			log_stderr(NULL, COORD_LOG_NOTICE, msg);
			coord_server_stop(srv);
			break;
		}
		if (coord_server_wait(srv, 0))
			break;
	}
	rc = coord_server_destroy(srv);
	if (rc) {
		snprintf(why.what, sizeof why.what, "stopped after an error: %s", sutra_strerror(rc));
		log_stderr(NULL, COORD_LOG_ERR, why.what);
	} else {
		log_stderr(NULL, COORD_LOG_INFO, "stopped cleanly");
	}
	settings_free(&st);
	/* nng may have left threads behind (see coord_server_destroy): exit
	 * without running library destructors that could wait for them. */
	fflush(stderr);
	fflush(stdout);
	_exit(rc ? 1 : 0);
}
