/* SPDX-License-Identifier: MIT */
/* Reader processes open the store live (layout_open_live) while the real coordinator commits: never torn, never backwards. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "layout/layout.h"
#include "sutra/client.h"
#include "tests/common/daemon.h"
#include "tests/common/tcheck.h"

#define MAP_LEN (1ull << 36) /* a reservation far beyond the file */
#define RUN_MS 2500
#define NREADERS 2

/* ---- Child processes (re-executed test binary, no nng inherited) -------- */

/* Writes batches of 4 concepts with 32 bytes of content until ms passed. */
static int writer_main(const char *url, int ms)
{
	sutra_client *c;
	struct sutra_client_options o;
	sutra_client_options_init(&o);
	o.timeout_ms = 5000;
	if (sutra_client_connect(url, &o, &c))
		return 3;
	sutra_batch *b = sutra_batch_create();
	double end = tdaemon_now_s() + ms / 1000.0;
	uint32_t n = 0;
	while (tdaemon_now_s() < end) {
		sutra_batch_clear(b);
		for (int k = 0; k < 4; k++, n++) {
			uint8_t id[16] = { 0 };
			char content[33];
			memcpy(id, &n, sizeof n);
			id[15] = 0x77;
			snprintf(content, sizeof content, "live concept %010u %08x", n, n * 2654435761u);
			struct sutra_concept_in in = { .id = id, .content = content,
						       .content_len = strlen(content), .strength = 1,
						       .confidence = 1 };
			if (sutra_batch_learn_concept(b, &in))
				return 4;
		}
		if (sutra_client_commit(c, b, NULL))
			return 5;
	}
	sutra_batch_destroy(b);
	sutra_client_close(c);
	return 0;
}

/*
 * Opens the store live in a loop until ms passed. Every open must succeed;
 * epochs never go backwards; the blocks published since the previous open
 * are walked and every record decoded (a reader indexing its tail does
 * exactly this), with commit epochs contiguous. Prints one summary line.
 */
static int reader_main(const char *path, int ms)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 3;
	const unsigned char *map = mmap(NULL, MAP_LEN, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return 4;
	uint64_t prev_epoch = 0, walked_end = 0, first = UINT64_MAX, opens = 0, blocks = 0;
	uint64_t records = 0, walked_epoch = 0;
	double end = tdaemon_now_s() + ms / 1000.0;
	while (tdaemon_now_s() < end) {
		struct layout_view v;
		struct sutra_detail pb;
		int rc = layout_open_live(map, MAP_LEN, fd, &v, &pb);
		if (rc) {
			printf("open failed after %" PRIu64 " opens: %s at offset %" PRIu64 "\n", opens,
			       pb.what, pb.offset);
			return 10;
		}
		opens++;
		if (v.meta.epoch < prev_epoch) {
			printf("epoch went backwards: %" PRIu64 " after %" PRIu64 "\n", v.meta.epoch,
			       prev_epoch);
			return 11;
		}
		if (first == UINT64_MAX) {
			first = v.meta.epoch;
			walked_end = layout_log_start(&v.sb, &v.meta);
		}
		prev_epoch = v.meta.epoch;
		uint64_t pos = walked_end;
		while (pos < v.meta.published_end) {
			struct layout_block blk;
			struct layout_record_iter it;
			struct layout_record rec;
			if (layout_block_decode(map, v.meta.published_end, pos, &blk, &pb) ||
			    layout_block_check_payload(map, &blk, &pb)) {
				printf("published block at %" PRIu64 ": %s at offset %" PRIu64 "\n", pos,
				       pb.what, pb.offset);
				return 12;
			}
			if (blk.type == LAYOUT_BLOCK_COMMIT) {
				if (walked_epoch && blk.epoch != walked_epoch + 1) {
					printf("commit epoch %" PRIu64 " after %" PRIu64 "\n", blk.epoch,
					       walked_epoch);
					return 13;
				}
				walked_epoch = blk.epoch;
				layout_records_init(&it, map, &blk, v.sb.vector_dim);
				while ((rc = layout_records_next(&it, &rec, &pb)) == 1)
					records++;
				if (rc < 0) {
					printf("record: %s at offset %" PRIu64 "\n", pb.what, pb.offset);
					return 14;
				}
			}
			blocks++;
			pos = blk.offset + blk.length;
		}
		walked_end = pos;
	}
	printf("opens %" PRIu64 " epochs %" PRIu64 "..%" PRIu64 " blocks %" PRIu64
	       " records %" PRIu64 "\n",
	       opens, first, prev_epoch, blocks, records);
	munmap((void *)map, MAP_LEN);
	close(fd);
	return 0;
}

/* ---- The test ------------------------------------------------------------ */

static void run_live(const char *const *coord_args)
{
	struct tdaemon d;
	char ms[16], out[NREADERS][400];
	pid_t readers[NREADERS];
	FILE *outf[NREADERS];

	ck_assert_ok(tdaemon_mkdir(&d));
	ck_assert_msg(tdaemon_start(&d, coord_args) == 0, "sutra-coordinator did not start");
	snprintf(ms, sizeof ms, "%d", RUN_MS);
	const char *wargv[] = { "test_int_live", "--writer", d.url, ms, NULL };
	pid_t writer = tdaemon_spawn_self(wargv, -1, -1);
	const char *rargv[] = { "test_int_live", "--reader", d.data, ms, NULL };
	for (int i = 0; i < NREADERS; i++) {
		outf[i] = tmpfile();
		ck_assert_ptr_nonnull(outf[i]);
		readers[i] = tdaemon_spawn_self(rargv, -1, fileno(outf[i]));
	}
	ck_assert_ok(tdaemon_reap(writer));
	for (int i = 0; i < NREADERS; i++) {
		int rc = tdaemon_reap(readers[i]);
		rewind(outf[i]);
		if (!fgets(out[i], sizeof out[i], outf[i]))
			snprintf(out[i], sizeof out[i], "(no output)");
		fclose(outf[i]);
		ck_assert_msg(rc == 0, "reader %d exited %d: %s", i, rc, out[i]);
		uint64_t opens, first, last, blocks, records;
		ck_assert_int_eq(sscanf(out[i],
					"opens %" SCNu64 " epochs %" SCNu64 "..%" SCNu64
					" blocks %" SCNu64 " records %" SCNu64,
					&opens, &first, &last, &blocks, &records),
				 5);
		/* It saw the store move while it read. */
		ck_assert_msg(last > first + 10, "reader %d saw only epochs %" PRIu64 "..%" PRIu64,
			      i, first, last);
		printf("reader %d: %s", i, out[i]);
	}
	ck_assert_ok(tdaemon_stop(&d));
	tdaemon_cleanup(&d);
}

START_TEST(test_live_sync_mode)
{
	const char *args[] = { "--vector-dimension", "4", NULL };
	run_live(args);
}
END_TEST

/* Relaxed: the same slot is rewritten by every epoch between two syncs,
 * and the slots swap roles at each sync (every 20 ms here). */
START_TEST(test_live_relaxed_mode)
{
	const char *args[] = { "--vector-dimension", "4", "--durability", "relaxed",
			       "--sync-interval-ms", "20", NULL };
	run_live(args);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--writer") == 0)
		return writer_main(argv[2], atoi(argv[3]));
	if (argc == 4 && strcmp(argv[1], "--reader") == 0)
		return reader_main(argv[2], atoi(argv[3]));

	Suite *s = suite_create("live");
	TCase *tc = tcase_create("live");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_live_sync_mode);
	tcase_add_test(tc, test_live_relaxed_mode);
	suite_add_tcase(s, tc);
	return tcheck_run_suite(s);
}
