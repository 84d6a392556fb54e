/* SPDX-License-Identifier: MIT */
/* The coordinator as a library: run a store's single writer inside a program (libsutra-coordinator). */
#ifndef SUTRA_COORDINATOR_H
#define SUTRA_COORDINATOR_H

#include <stddef.h>
#include <stdint.h>

#include "sutra/common.h"
#include "sutra/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A sutra_coordinator is what sutra-coordinator(8) runs: the single writer
 * of one storage.dat. It takes writes over nng REQ/REP (libsutra-client
 * talks to it), commits them in epochs (group commit) and announces each
 * epoch over nng PUB (libsutra-reader listens). The program is a thin
 * shell over this API; an embedding program (the Python binding's
 * embedded mode) runs the same coordinator in its own process.
 *
 * Set up a sutra_coordinator_config with the daemon's long option names,
 * start, and later stop and destroy:
 *
 *     sutra_coordinator_config *cfg;
 *     sutra_coordinator *co;
 *     struct sutra_detail why;
 *     if (sutra_coordinator_config_create(&cfg) == 0 &&
 *         sutra_coordinator_config_set(cfg, "data", "/srv/kb", &why) == 0 &&
 *         sutra_coordinator_start(cfg, &co, &why) == 0) {
 *             ... write through sutra_client_connect(sutra_coordinator_listen_url(co)) ...
 *             sutra_coordinator_stop(co);
 *             rc = sutra_coordinator_destroy(co);
 *     }
 *     sutra_coordinator_config_destroy(cfg);
 *
 * Threads: a started coordinator runs its own threads (a writer, a
 * listener self check, an index segment builder) and nng's. The log
 * callback may be called from any of them, from two at the same time. The
 * library installs no signal handler;
 * a program that handles signals should block them in every thread before
 * sutra_coordinator_start() (threads inherit the mask) and take them in
 * one, as sutra-coordinator does with SIGTERM and SIGINT. It should
 * ignore SIGPIPE. Do not fork() while a coordinator runs and use it in
 * the child.
 *
 * Only one writer per store: a second coordinator on the same file, in
 * this process or another, fails to start with SUTRA_ELOCKED.
 */
typedef struct sutra_coordinator sutra_coordinator;

/** The options of a coordinator, set by name before it starts. Used by one
 *  thread at a time (no locking); a started coordinator has its own copy. */
typedef struct sutra_coordinator_config sutra_coordinator_config;

/** Severity of a log message: the syslog values, named as --log-level names them. */
enum sutra_log_level {
	SUTRA_LOG_ERROR = 3,   /**< the coordinator stops, or a listener cannot be re-opened */
	SUTRA_LOG_WARNING = 4, /**< something was repaired, fell back or was skipped */
	SUTRA_LOG_NOTICE = 5,  /**< a store was created or recovered */
	SUTRA_LOG_INFO = 6,    /**< what it opened and serves, segment and space work */
	SUTRA_LOG_DEBUG = 7,   /**< more detail */
};

/**
 * Receives one log message.
 * @param arg the pointer given to sutra_coordinator_config_set_log()
 * @param level a sutra_log_level, at or below the "log-level" option
 * @param msg one line without a newline, borrowed for the call
 */
typedef void (*sutra_log_fn)(void *arg, int level, const char *msg);

/* ---- Configuration ------------------------------------------------------- */

/**
 * Creates a configuration with the defaults of sutra-coordinator(8): no
 * data path (one must be set), listen and events URLs next to the data
 * path (see sutra_coordinator_default_url()), a new store's dimension
 * 768, sync durability, sync-interval-ms 100, commit-window-us 0, io
 * uring, max-request-size 67108864, max-content-size 1048576,
 * max-metadata-size 1048576, max-batch 100000, contexts 64,
 * check-interval-ms 1000, segment-threshold-kib 16384, log-retention-mib
 * 64, log-level info and no log callback (messages are dropped).
 * @param out the new configuration, to free with sutra_coordinator_config_destroy()
 * @return 0, -EINVAL (out is NULL), -ENOMEM
 */
SUTRA_API int sutra_coordinator_config_create(sutra_coordinator_config **out);

/** Frees a configuration; a coordinator started from it is not affected. NULL is allowed. */
SUTRA_API void sutra_coordinator_config_destroy(sutra_coordinator_config *cfg);

/**
 * Sets one option by the long name sutra-coordinator(8) gives it, without
 * the dashes, to a value written as on its command line:
 *
 * | name                  | value                                          |
 * |-----------------------|------------------------------------------------|
 * | data                  | the store file; a directory means DIR/storage.dat |
 * | listen, events        | nng URLs (ipc://, tcp://)                      |
 * | vector-dimension      | 1..65536; an existing store must have it       |
 * | durability            | sync or relaxed                                |
 * | sync-interval-ms      | 1..3600000                                     |
 * | commit-window-us      | 0..1000000                                     |
 * | io                    | uring or sync                                  |
 * | max-request-size      | 4096..1073741824                               |
 * | max-content-size      | 1..67108864                                    |
 * | max-metadata-size     | 0..67108864                                    |
 * | max-batch             | 1..10000000                                    |
 * | contexts              | 1..1024                                        |
 * | check-interval-ms     | 0..3600000 (0: no listener self check)         |
 * | segment-threshold-kib | 0..16777216 (0: no index segments)             |
 * | log-retention-mib     | 0..1048576                                     |
 * | log-level             | error, warning, notice, info or debug          |
 *
 * Two more are not options of the program (a config file does not take
 * them): "default-vector-dimension" (1..65536), the dimension of a new
 * store when "vector-dimension" is not set, an existing store keeping its
 * own; and "io-fault", for tests only, the I/O faults to inject as the
 * program's SUTRA_COORD_FAULT variable describes them. A later call for
 * the same name replaces the value.
 * @param cfg the configuration
 * @param name an option name as above
 * @param value the value, copied
 * @param why if not NULL, filled on failure with the program's message
 *   ("invalid value 'x' for --contexts", "unknown option 'x'")
 * @return 0, -EINVAL (cfg or name NULL, an unknown name), SUTRA_EVALUE
 *   (value NULL, not a number, out of range or not one of the words),
 *   -ENOMEM. On failure the option keeps its value.
 */
SUTRA_API int sutra_coordinator_config_set(sutra_coordinator_config *cfg, const char *name,
					   const char *value, struct sutra_detail *why);

/**
 * Writes an option's current value, as sutra_coordinator_config_set()
 * takes it ("relaxed", "768", "info"), into out. "vector-dimension" gives
 * the dimension a new store would get.
 * @param cfg the configuration
 * @param name an option name, as for sutra_coordinator_config_set()
 * @param out where the NUL-terminated value goes (only on success)
 * @param len bytes at out
 * @return 0, -EINVAL (cfg, name or out NULL, an unknown name), -ENOENT (a
 *   path or URL that was never set: listen and events then default next
 *   to the data path), -ERANGE (len too small)
 */
SUTRA_API int sutra_coordinator_config_get(const sutra_coordinator_config *cfg, const char *name,
					   char *out, size_t len);

/**
 * Reads options from a file in the format of sutra-coordinator's --config:
 * one option per line, its long name, then '=' or blanks, then the value
 * ("durability = relaxed"); '#' starts a comment; blank lines are skipped.
 * The options are applied in order, each as by sutra_coordinator_config_set(),
 * up to the first bad line.
 * @param cfg the configuration
 * @param path the file
 * @param why if not NULL, filled on failure with a sentence that names the
 *   file and line ("FILE:3: unknown option 'x'", "FILE:4: option 'io'
 *   needs a value", "FILE:5: invalid value ...", "cannot read config FILE: ...")
 * @return 0, -errno (the file cannot be read), -EINVAL (cfg or path NULL;
 *   an unknown option, "config", or one of the two that are not options of
 *   the program), SUTRA_EVALUE (a missing or bad value), -ENOMEM
 */
SUTRA_API int sutra_coordinator_config_load(sutra_coordinator_config *cfg, const char *path,
					    struct sutra_detail *why);

/**
 * Sets where log messages go. Messages above the "log-level" option are
 * dropped before they are formatted.
 * @param cfg the configuration
 * @param fn the callback, or NULL to drop every message; it must not call
 *   back into the coordinator that logs
 * @param arg passed to fn as is
 */
SUTRA_API void sutra_coordinator_config_set_log(sutra_coordinator_config *cfg, sutra_log_fn fn,
						void *arg);

/* ---- Running ------------------------------------------------------------- */

/**
 * Opens the store (creating it if the file does not exist, recovering it
 * in any case), binds the listen and events URLs and starts serving. The
 * configuration is copied: it may be changed or destroyed afterwards.
 * @param cfg the configuration; its "data" option must be set
 * @param out the running coordinator, to free with sutra_coordinator_destroy()
 * @param why if not NULL, filled on failure with a sentence for the log
 * @return 0, -EINVAL (cfg or out NULL, no data path, a bad io-fault),
 *   -ENAMETOOLONG (no usable default URL), SUTRA_ELOCKED (another writer
 *   holds the store), SUTRA_ECORRUPT (the file does not verify),
 *   SUTRA_EVERSION, SUTRA_EDIM (vector-dimension differs from the
 *   store's), -EADDRINUSE, SUTRA_EUNAVAIL and other -errno (a URL cannot
 *   be bound; files cannot be opened, created or mapped), -EAGAIN (no
 *   thread could be started), -ENOMEM
 */
SUTRA_API int sutra_coordinator_start(const sutra_coordinator_config *cfg, sutra_coordinator **out,
				      struct sutra_detail *why);

/**
 * Stops taking requests (new ones are answered SUTRA_EUNAVAIL), lets the
 * writer apply, commit, sync and answer what it had received, and
 * returns without waiting for that (see sutra_coordinator_wait()). Safe to
 * call more than once, and from any thread (also a signal-taking one).
 */
SUTRA_API void sutra_coordinator_stop(sutra_coordinator *co);

/**
 * Waits until the writer has stopped, after sutra_coordinator_stop() or a
 * fatal I/O error. Any thread.
 * @param co the coordinator
 * @param timeout_ms longest wait; 0 only looks; -1 waits as long as it takes
 * @return 1 when stopped, 0 when the time ran out
 */
SUTRA_API int sutra_coordinator_wait(sutra_coordinator *co, int timeout_ms);

/**
 * The fatal error that stopped the writer: a write, short write or
 * fdatasync that failed (-EIO, -ENOSPC, ...); the store refuses further
 * writes and the next start recovers from the disk. Any thread.
 * @return the error, or 0 while none happened
 */
SUTRA_API int sutra_coordinator_failed(const sutra_coordinator *co);

/**
 * Stops (if not yet stopped) and waits for the writer, makes the store
 * durable, closes it (releasing the writer lock) and the sockets, and
 * frees co. Not concurrently with any other call on co. NULL is allowed.
 * If nng does not close its sockets within 3 s (a known nng 1.5.2
 * deadlock), they and the memory nng's threads may still touch are
 * abandoned, the store being closed first: the process should exit soon.
 * @return the fatal error if one stopped the writer, else the result of
 *   closing the store (0, or -errno from its last sync)
 */
SUTRA_API int sutra_coordinator_destroy(sutra_coordinator *co);

/** The URL writes are taken on, as bound. Borrowed until destroy. Any thread. */
SUTRA_API const char *sutra_coordinator_listen_url(const sutra_coordinator *co);

/** The URL notices are published on, as bound. Borrowed until destroy. Any thread. */
SUTRA_API const char *sutra_coordinator_events_url(const sutra_coordinator *co);

/**
 * The default URL of a store's sockets: "ipc://DIR/NAME.SUFFIX" for the
 * data file DIR/NAME, or, when that does not fit a Unix socket address,
 * "ipc://RUNDIR/sutra-HASH.SUFFIX" with RUNDIR $XDG_RUNTIME_DIR or /tmp
 * and HASH derived from the whole path. What a coordinator binds when
 * listen or events is not set, so clients and readers can find it.
 * @param data_path the store file (for a store given as a directory, its
 *   DIR/storage.dat)
 * @param suffix "write" (listen) or "events"
 * @param out where the NUL-terminated URL goes
 * @param len bytes at out
 * @return 0, -EINVAL (a NULL argument), -ENAMETOOLONG
 */
SUTRA_API int sutra_coordinator_default_url(const char *data_path, const char *suffix, char *out,
					    size_t len);

/**
 * The coordinator's figures, the same a client's sutra_client_stats()
 * gets over the wire. The writer fills them between two commits, so the
 * call waits for the commit in progress; after the writer stopped it
 * reads them itself. Any thread; not from the log callback.
 * @param co the coordinator
 * @param st filled on success
 * @return 0, -EINVAL (co or st NULL)
 */
SUTRA_API int sutra_coordinator_stats(sutra_coordinator *co, struct sutra_coord_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* SUTRA_COORDINATOR_H */
