/* SPDX-License-Identifier: MIT */
/* sutra-coordinator: arguments, signals and logging to stderr over the public coordinator API. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "sutra/coordinator.h"
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
	case SUTRA_LOG_ERROR:
		return "error";
	case SUTRA_LOG_WARNING:
		return "warning";
	case SUTRA_LOG_NOTICE:
		return "notice";
	case SUTRA_LOG_INFO:
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

/* Each option goes to the library under its long name, and
 * sutra_coordinator_config_set() checks its value; the numbers from 256
 * only tell apart the options without a short form. */
static const struct option long_opts[] = {
	{ "data", required_argument, NULL, 'd' },
	{ "vector-dimension", required_argument, NULL, 256 },
	{ "listen", required_argument, NULL, 'l' },
	{ "events", required_argument, NULL, 'e' },
	{ "durability", required_argument, NULL, 257 },
	{ "sync-interval-ms", required_argument, NULL, 258 },
	{ "commit-window-us", required_argument, NULL, 259 },
	{ "io", required_argument, NULL, 260 },
	{ "max-request-size", required_argument, NULL, 261 },
	{ "max-content-size", required_argument, NULL, 262 },
	{ "max-metadata-size", required_argument, NULL, 263 },
	{ "max-batch", required_argument, NULL, 264 },
	{ "contexts", required_argument, NULL, 265 },
	{ "check-interval-ms", required_argument, NULL, 266 },
	{ "log-level", required_argument, NULL, 267 },
	{ "segment-threshold-kib", required_argument, NULL, 268 },
	{ "log-retention-mib", required_argument, NULL, 269 },
	{ "config", required_argument, NULL, 'c' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static const char *opt_name(int opt)
{
	for (const struct option *o = long_opts; o->name; o++)
		if (o->val == opt)
			return o->name;
	return "?";
}

int main(int argc, char **argv)
{
	sutra_coordinator_config *cfg;
	sutra_coordinator *co;
	struct sutra_detail why = { .what = "" };
	char probe[2];
	int opt, rc;

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
			printf("sutra-coordinator %s (storage.dat format %d, protocol %d)\n",
			       COORDINATOR_VERSION, SUTRA_FORMAT_VERSION, SUTRA_PROTOCOL_VERSION);
			return 0;
		}
		if (opt == 'c')
			config = optarg;
	}
	if ((rc = sutra_coordinator_config_create(&cfg))) {
		fprintf(stderr, "sutra-coordinator: %s\n", sutra_strerror(rc));
		return 1;
	}
	if (config && sutra_coordinator_config_load(cfg, config, &why)) {
		fprintf(stderr, "sutra-coordinator: %s\n", why.what);
		goto usage;
	}
	optind = 1;
	opterr = 1;
	while ((opt = getopt_long(argc, argv, "d:l:e:c:hV", long_opts, NULL)) != -1) {
		if (opt == '?')
			goto try_help;
		if (opt == 'c')
			continue;
		if (sutra_coordinator_config_set(cfg, opt_name(opt), optarg, &why)) {
			fprintf(stderr, "sutra-coordinator: command line: %s\n", why.what);
			goto usage;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "sutra-coordinator: unexpected argument '%s'\n", argv[optind]);
		goto try_help;
	}
	if (sutra_coordinator_config_get(cfg, "data", probe, sizeof probe) == -ENOENT) {
		fprintf(stderr, "sutra-coordinator: --data PATH is required\n");
		goto try_help;
	}
	const char *fault = getenv("SUTRA_COORD_FAULT");
	if (fault && sutra_coordinator_config_set(cfg, "io-fault", fault, &why)) {
		log_stderr(NULL, SUTRA_LOG_ERROR, why.what);
		sutra_coordinator_config_destroy(cfg);
		return 1;
	}
	sutra_coordinator_config_set_log(cfg, log_stderr, NULL);

	/* Every thread inherits this mask; the main thread takes the
	 * signals synchronously. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = sutra_coordinator_start(cfg, &co, &why);
	sutra_coordinator_config_destroy(cfg);
	if (rc) {
		log_stderr(NULL, SUTRA_LOG_ERROR, why.what[0] ? why.what : sutra_strerror(rc));
		return 1;
	}
	for (;;) {
		struct timespec ts = { 0, 200 * 1000000 };
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			char msg[64];
			snprintf(msg, sizeof msg, "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			log_stderr(NULL, SUTRA_LOG_NOTICE, msg);
			sutra_coordinator_stop(co);
			break;
		}
		if (sutra_coordinator_wait(co, 0))
			break;
	}
	rc = sutra_coordinator_destroy(co);
	if (rc) {
		snprintf(why.what, sizeof why.what, "stopped after an error: %s", sutra_strerror(rc));
		log_stderr(NULL, SUTRA_LOG_ERROR, why.what);
	} else {
		log_stderr(NULL, SUTRA_LOG_INFO, "stopped cleanly");
	}
	/* nng may have left threads behind (see sutra_coordinator_destroy()):
	 * exit without running library destructors that could wait for them. */
	fflush(stderr);
	fflush(stdout);
	_exit(rc ? 1 : 0);

try_help:
	fprintf(stderr, "Try 'sutra-coordinator --help'.\n");
usage:
	sutra_coordinator_config_destroy(cfg);
	return 2;
}
