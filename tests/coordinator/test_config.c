/* SPDX-License-Identifier: MIT */
/* The coordinator's options through the public API: defaults, ranges, config files, default URLs. */
#include "sutra/coordinator.h" /* first: the public header stands alone */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coordinator/server.h"
#include "tests/common/tcheck.h"

/* Each test starts from a fresh configuration and an empty directory. */
static sutra_coordinator_config *cfg;
static char dir[64];

static void setup(void)
{
	ck_assert_ok(sutra_coordinator_config_create(&cfg));
	snprintf(dir, sizeof dir, "/tmp/sutra-config-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	sutra_coordinator_config_destroy(cfg);
	cfg = NULL;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Asserts the option's current value. */
static void expect(const char *name, const char *want)
{
	char got[512];
	ck_assert_ok(sutra_coordinator_config_get(cfg, name, got, sizeof got));
	ck_assert_msg(strcmp(got, want) == 0, "%s is '%s', want '%s'", name, got, want);
}

/* Asserts that name refuses value with the program's sentence. */
static void refused(const char *name, const char *value)
{
	struct sutra_detail why = { .what = "" };
	char want[256];
	ck_assert_err(sutra_coordinator_config_set(cfg, name, value, &why), SUTRA_EVALUE);
	snprintf(want, sizeof want, "invalid value '%s' for --%s", value, name);
	ck_assert_str_eq(why.what, want);
}

static void accepted(const char *name, const char *value)
{
	ck_assert_ok(sutra_coordinator_config_set(cfg, name, value, NULL));
	expect(name, value);
}

/* Writes a config file into the test's directory; returns its path. */
static const char *write_file(const char *name, const char *text)
{
	static char path[128];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

START_TEST(test_config_defaults_are_documented_ones)
{
	setup();
	static const char *const want[][2] = {
		{ "vector-dimension", "768" },	     { "default-vector-dimension", "768" },
		{ "durability", "sync" },	     { "sync-interval-ms", "100" },
		{ "commit-window-us", "0" },	     { "io", "uring" },
		{ "max-request-size", "67108864" },  { "max-content-size", "1048576" },
		{ "max-metadata-size", "1048576" },  { "max-batch", "100000" },
		{ "contexts", "64" },		     { "check-interval-ms", "1000" },
		{ "segment-threshold-kib", "16384" }, { "log-retention-mib", "64" },
		{ "log-level", "info" },
	};
	char buf[64];

	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		expect(want[i][0], want[i][1]);
	/* Paths and URLs are unset: the URLs then default next to the data. */
	ck_assert_err(sutra_coordinator_config_get(cfg, "data", buf, sizeof buf), -ENOENT);
	ck_assert_err(sutra_coordinator_config_get(cfg, "listen", buf, sizeof buf), -ENOENT);
	ck_assert_err(sutra_coordinator_config_get(cfg, "events", buf, sizeof buf), -ENOENT);
	ck_assert_err(sutra_coordinator_config_get(cfg, "io-fault", buf, sizeof buf), -ENOENT);
	ck_assert_err(sutra_coordinator_config_get(cfg, "bogus", buf, sizeof buf), -EINVAL);
	strcpy(buf, "kept");
	ck_assert_err(sutra_coordinator_config_get(cfg, "max-batch", buf, 6), -ERANGE);
	ck_assert_str_eq(buf, "kept");
	ck_assert_ok(sutra_coordinator_config_get(cfg, "max-batch", buf, 7));
	ck_assert_str_eq(buf, "100000");
	teardown();
}
END_TEST

START_TEST(test_config_numbers_keep_their_ranges)
{
	setup();
	static const struct {
		const char *name, *lo, *hi, *below, *above;
	} nums[] = {
		{ "vector-dimension", "1", "65536", "0", "65537" },
		{ "default-vector-dimension", "1", "65536", "0", "65537" },
		{ "sync-interval-ms", "1", "3600000", "0", "3600001" },
		{ "commit-window-us", "0", "1000000", NULL, "1000001" },
		{ "max-request-size", "4096", "1073741824", "4095", "1073741825" },
		{ "max-content-size", "1", "67108864", "0", "67108865" },
		{ "max-metadata-size", "0", "67108864", NULL, "67108865" },
		{ "max-batch", "1", "10000000", "0", "10000001" },
		{ "contexts", "1", "1024", "0", "1025" },
		{ "check-interval-ms", "0", "3600000", NULL, "3600001" },
		{ "segment-threshold-kib", "0", "16777216", NULL, "16777217" },
		{ "log-retention-mib", "0", "1048576", NULL, "1048577" },
	};

	for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
		const char *n = nums[i].name;
		accepted(n, nums[i].lo);
		accepted(n, nums[i].hi);
		if (nums[i].below)
			refused(n, nums[i].below);
		refused(n, nums[i].above);
		refused(n, "");
		refused(n, "abc");
		refused(n, "-1");
		refused(n, "12x");
		refused(n, "99999999999999999999");
		/* A refused value leaves the option as it was. */
		expect(n, nums[i].hi);
	}
	teardown();
}
END_TEST

START_TEST(test_config_words_take_their_words)
{
	setup();
	accepted("durability", "relaxed");
	accepted("durability", "sync");
	refused("durability", "SYNC");
	refused("durability", "");
	accepted("io", "sync");
	accepted("io", "uring");
	refused("io", "fast");
	accepted("log-level", "error");
	accepted("log-level", "warning");
	accepted("log-level", "notice");
	accepted("log-level", "debug");
	accepted("log-level", "info");
	refused("log-level", "warn");
	expect("log-level", "info");
	/* Strings are taken as they come. */
	accepted("data", "/srv/kb");
	accepted("listen", "tcp://127.0.0.1:7000");
	accepted("events", "ipc:///run/kb.events");
	accepted("io-fault", "sync:3");
	accepted("data", "");
	teardown();
}
END_TEST

START_TEST(test_config_unknown_names_are_refused)
{
	setup();
	struct sutra_detail why = { .what = "" };

	ck_assert_err(sutra_coordinator_config_set(cfg, "bogus", "1", &why), -EINVAL);
	ck_assert_str_eq(why.what, "unknown option 'bogus'");
	/* Command-line-only switches are no options of the configuration. */
	ck_assert_err(sutra_coordinator_config_set(cfg, "config", "x", NULL), -EINVAL);
	ck_assert_err(sutra_coordinator_config_set(cfg, "help", "1", NULL), -EINVAL);
	ck_assert_err(sutra_coordinator_config_set(cfg, "--data", "x", NULL), -EINVAL);
	ck_assert_err(sutra_coordinator_config_set(cfg, "io", NULL, &why), SUTRA_EVALUE);
	ck_assert_str_eq(why.what, "option 'io' needs a value");
	ck_assert_err(sutra_coordinator_config_set(NULL, "io", "sync", NULL), -EINVAL);
	ck_assert_err(sutra_coordinator_config_set(cfg, NULL, "sync", NULL), -EINVAL);
	teardown();
}
END_TEST

START_TEST(test_config_explicit_dimension_wins)
{
	setup();
	/* default-vector-dimension is a new store's dimension only until
	 * vector-dimension (which an existing store must match) is set. */
	accepted("default-vector-dimension", "16");
	expect("vector-dimension", "16");
	accepted("vector-dimension", "8");
	ck_assert_ok(sutra_coordinator_config_set(cfg, "default-vector-dimension", "32", NULL));
	expect("vector-dimension", "8");
	teardown();
}
END_TEST

START_TEST(test_config_file_is_read)
{
	setup();
	const char *path = write_file("ok.conf", "# a comment line\n"
						 "\n"
						 "   \t\n"
						 "durability = relaxed   # a comment after\n"
						 "vector-dimension 16\n"
						 "max-batch=7\r\n"
						 "\tlisten\t=\tipc:///tmp/x # url\n"
						 "log-level =debug");
	ck_assert_ok(sutra_coordinator_config_load(cfg, path, NULL));
	expect("durability", "relaxed");
	expect("vector-dimension", "16");
	expect("max-batch", "7");
	expect("listen", "ipc:///tmp/x");
	expect("log-level", "debug");
	expect("io", "uring");
	teardown();
}
END_TEST

START_TEST(test_config_file_errors_name_file_and_line)
{
	setup();
	struct sutra_detail why = { .what = "" };
	char want[256];
	const char *path;

	path = write_file("unknown.conf", "durability = relaxed\n# two\nbogus = 1\nio = sync\n");
	ck_assert_err(sutra_coordinator_config_load(cfg, path, &why), -EINVAL);
	snprintf(want, sizeof want, "%s:3: unknown option 'bogus'", path);
	ck_assert_str_eq(why.what, want);
	/* The lines before the bad one are applied, none after it. */
	expect("durability", "relaxed");
	expect("io", "uring");

	path = write_file("novalue.conf", "\nsync-interval-ms =   # none\n");
	ck_assert_err(sutra_coordinator_config_load(cfg, path, &why), SUTRA_EVALUE);
	snprintf(want, sizeof want, "%s:2: option 'sync-interval-ms' needs a value", path);
	ck_assert_str_eq(why.what, want);

	path = write_file("badval.conf", "io = fast\n");
	ck_assert_err(sutra_coordinator_config_load(cfg, path, &why), SUTRA_EVALUE);
	snprintf(want, sizeof want, "%s:1: invalid value 'fast' for --io", path);
	ck_assert_str_eq(why.what, want);

	/* A file takes the program's options only. */
	path = write_file("config.conf", "config = other.conf\n");
	ck_assert_err(sutra_coordinator_config_load(cfg, path, &why), -EINVAL);
	snprintf(want, sizeof want, "%s:1: unknown option 'config'", path);
	ck_assert_str_eq(why.what, want);
	path = write_file("fault.conf", "io-fault = sync:1\n");
	ck_assert_err(sutra_coordinator_config_load(cfg, path, &why), -EINVAL);
	path = write_file("dim.conf", "default-vector-dimension = 8\n");
	ck_assert_err(sutra_coordinator_config_load(cfg, path, &why), -EINVAL);

	snprintf(want, sizeof want, "%s/missing.conf", dir);
	ck_assert_err(sutra_coordinator_config_load(cfg, want, &why), -ENOENT);
	ck_assert_ptr_nonnull(strstr(why.what, "cannot read config "));
	ck_assert_ptr_nonnull(strstr(why.what, "missing.conf: No such file or directory"));
	teardown();
}
END_TEST

START_TEST(test_config_command_line_overrides_file)
{
	setup();
	/* sutra-coordinator loads --config first, then sets each option of
	 * its command line: the later value wins. */
	const char *path = write_file("base.conf", "durability = relaxed\ncontexts = 8\n");
	ck_assert_ok(sutra_coordinator_config_load(cfg, path, NULL));
	ck_assert_ok(sutra_coordinator_config_set(cfg, "contexts", "16", NULL));
	expect("contexts", "16");
	expect("durability", "relaxed");
	teardown();
}
END_TEST

START_TEST(test_config_default_url_sits_next_to_the_data)
{
	setup();
	char url[256], longpath[200];

	ck_assert_ok(sutra_coordinator_default_url("/srv/kb/storage.dat", "write", url, sizeof url));
	ck_assert_str_eq(url, "ipc:///srv/kb/storage.dat.write");
	ck_assert_ok(sutra_coordinator_default_url("/storage.dat", "events", url, sizeof url));
	ck_assert_str_eq(url, "ipc:///storage.dat.events");
	ck_assert_ok(sutra_coordinator_default_url("kb.dat", "write", url, sizeof url));
	ck_assert_str_eq(url, "ipc://./kb.dat.write");

	/* Too long for a Unix socket address: a stable name under the
	 * runtime directory. */
	memset(longpath, 'a', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = 0;
	ck_assert_int_eq(setenv("XDG_RUNTIME_DIR", "/run/user/1", 1), 0);
	ck_assert_ok(sutra_coordinator_default_url(longpath, "write", url, sizeof url));
	/* The name PROTOCOL.md section 2 gives: FNV-1a 64 of the path (basis
	 * 0xcbf29ce484222325), computed from the spec outside this code. The
	 * code once used a basis a digit short, so that a client written from
	 * the spec could not find the socket. */
	ck_assert_str_eq(url, "ipc:///run/user/1/sutra-036ebef39e554600.write");
	char again[256];
	ck_assert_ok(sutra_coordinator_default_url(longpath, "write", again, sizeof again));
	ck_assert_str_eq(url, again);

	ck_assert_err(sutra_coordinator_default_url("/srv/kb/storage.dat", "write", url, 8),
		      -ENAMETOOLONG);
	ck_assert_err(sutra_coordinator_default_url(NULL, "write", url, sizeof url), -EINVAL);
	teardown();
}
END_TEST

START_TEST(test_config_start_needs_data)
{
	setup();
	struct sutra_detail why = { .what = "" };
	sutra_coordinator *co = NULL;

	ck_assert_err(sutra_coordinator_start(cfg, &co, &why), -EINVAL);
	ck_assert_str_eq(why.what, "no data path");
	ck_assert_ptr_null(co);
	ck_assert_err(sutra_coordinator_start(NULL, &co, NULL), -EINVAL);
	teardown();
}
END_TEST

/*
 * Without XDG_RUNTIME_DIR, a data path too long for a socket address used
 * to put the sockets at /tmp/sutra-HASH.write, a name another local user
 * could bind first (issue 14, defect 5). They now go in /tmp/sutra-UID
 * (UID: the owner of the store's directory), which the coordinator makes
 * 0711 and refuses when anyone else owns it or may write it.
 */
START_TEST(test_config_fallback_dir_is_the_owners)
{
	char tdir[] = "/tmp/sutra-fallback-XXXXXX", path[400], url[256], want[64];
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	snprintf(path, sizeof path, "%s/", tdir);
	while (strlen(path) < 150)
		strcat(path, "a");
	ck_assert_int_eq(unsetenv("XDG_RUNTIME_DIR"), 0);
	ck_assert_ok(coord_default_url(path, "write", url, sizeof url));
	snprintf(want, sizeof want, "ipc:///tmp/sutra-%lu/sutra-", (unsigned long)geteuid());
	ck_assert_msg(strncmp(url, want, strlen(want)) == 0, "%s is not under %s", url, want);
	ck_assert_ok(coord_fallback_dir_ready(path, url, NULL));
	struct stat st;
	snprintf(want, sizeof want, "/tmp/sutra-%lu", (unsigned long)geteuid());
	ck_assert_int_eq(lstat(want, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_uint_eq(st.st_uid, geteuid());
	ck_assert_uint_eq(st.st_mode & 022, 0);
	/* Any other URL is not its business. */
	ck_assert_ok(coord_fallback_dir_ready(path, "ipc:///elsewhere/x.write", NULL));

	/* Squatted: a store owned by another user whose directory name this
	 * user took first. Only root can make a directory another's. */
	if (geteuid() == 0) {
		ck_assert_int_eq(chown(tdir, 65534, 65534), 0);
		ck_assert_ok(coord_default_url(path, "write", url, sizeof url));
		ck_assert_int_eq(strncmp(url, "ipc:///tmp/sutra-65534/", 23), 0);
		int made = mkdir("/tmp/sutra-65534", 0700) == 0;
		if (made || (lstat("/tmp/sutra-65534", &st) == 0 && st.st_uid != 65534)) {
			struct sutra_detail why = { .what = "" };
			ck_assert_err(coord_fallback_dir_ready(path, url, &why), -EACCES);
			ck_assert_ptr_nonnull(strstr(why.what, "another user"));
		}
		if (made)
			rmdir("/tmp/sutra-65534");
	}
	rmdir(tdir);
}
END_TEST

TCHECK_MAIN("coordinator", "config", 0, test_config_defaults_are_documented_ones,
	    test_config_numbers_keep_their_ranges, test_config_words_take_their_words,
	    test_config_unknown_names_are_refused, test_config_explicit_dimension_wins,
	    test_config_file_is_read, test_config_file_errors_name_file_and_line,
	    test_config_command_line_overrides_file, test_config_default_url_sits_next_to_the_data,
	    test_config_start_needs_data, test_config_fallback_dir_is_the_owners)
