/* SPDX-License-Identifier: MIT */
/* Index segments against the real coordinator: shadowing, damage, and space held only while a reader pins it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "layout/layout.h"
#include "layout/segindex.h"
#include "sutra/client.h"
#include "sutra/reader.h"
#include "tests/common/daemon.h"
#include "tests/common/tcheck.h"

#define PER_BATCH 200

/* Segments at 64 KiB, and no flushed log kept: what segments hold is freed
 * from the log as soon as no reader needs it. */
static const char *const seg_args[] = { "--vector-dimension", "4", "--segment-threshold-kib",
					"64", "--log-retention-mib", "0", NULL };

static void id_of(uint8_t id[16], uint32_t n)
{
	memset(id, 0, 16);
	memcpy(id, &n, 4);
	id[15] = 0x5E;
}

/* Concepts [first, first + PER_BATCH) in one batch, each with 300 bytes of
 * content naming its number and version, and an edge to the previous one. */
static uint64_t write_batch(sutra_client *c, uint32_t first, unsigned version)
{
	sutra_batch *b = sutra_batch_create();
	uint64_t epoch;
	for (uint32_t n = first; n < first + PER_BATCH; n++) {
		uint8_t id[16], prev[16];
		char text[320];
		int len = snprintf(text, sizeof text, "n%u v%u ", n, version);
		memset(text + len, 'x', 300 - (size_t)len);
		id_of(id, n);
		struct sutra_concept_in in = { .id = id, .content = text, .content_len = 300,
					       .strength = 1, .confidence = 1 };
		ck_assert_ok(sutra_batch_learn_concept(b, &in));
		if (n > first) {
			id_of(prev, n - 1);
			ck_assert_ok(sutra_batch_learn_association(b, prev, id, 1, 0.5f, 1));
		}
	}
	ck_assert_ok(sutra_client_commit(c, b, &epoch));
	sutra_batch_destroy(b);
	return epoch;
}

/* The current meta of the file. */
static void read_meta(const char *path, struct layout_meta *m)
{
	struct layout_map map;
	struct layout_view v;
	struct sutra_detail pb;
	ck_assert_ok(layout_map_open(path, &map));
	ck_assert_msg(layout_open(map.base, map.size, &v, &pb) == 0, "%s", pb.what);
	*m = v.meta;
	layout_map_close(&map);
}

/* Waits (up to 20 s) until the meta lists at least n segments and the
 * coordinator has nothing left to publish (two reads 300 ms apart agree). */
static void wait_segments(const char *path, uint32_t n, struct layout_meta *m)
{
	double end = tdaemon_now_s() + 20;
	struct layout_meta prev = { 0 };
	for (;;) {
		read_meta(path, m);
		if (m->segment_count >= n && m->epoch == prev.epoch)
			return;
		ck_assert_msg(tdaemon_now_s() < end, "%u segments after 20 s, want %u",
			      m->segment_count, n);
		prev = *m;
		struct timespec ts = { 0, 300 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* [from, to): the part of a segment block the coordinator frees. */
static void freeable(const struct layout_segment_ref *r, uint64_t *from, uint64_t *to)
{
	*from = layout_align_up(r->offset + layout_segment_data_start(LAYOUT_SEG_SECTIONS), 4096);
	*to = (r->offset + r->length) & ~(uint64_t)4095;
}

static int is_hole(int fd, uint64_t from)
{
	off_t h = lseek(fd, (off_t)from, SEEK_HOLE);
	return h == (off_t)from;
}

/* The segment blocks of the log that the current meta does not list, and
 * how many of them still hold their sections' space. */
static void unlisted(const char *path, int *count, int *allocated)
{
	struct layout_map map;
	struct layout_view v;
	struct sutra_detail pb;
	*count = *allocated = 0;
	ck_assert_ok(layout_map_open(path, &map));
	ck_assert_msg(layout_open(map.base, map.size, &v, &pb) == 0, "%s", pb.what);
	for (uint64_t pos = layout_log_start(&v.sb, &v.meta); pos < v.meta.published_end;) {
		struct layout_block blk;
		ck_assert_ok(layout_block_decode(map.base, v.meta.published_end, pos, &blk, &pb));
		pos = blk.offset + blk.length;
		int listed = 0;
		for (uint32_t i = 0; i < v.meta.segment_count; i++)
			listed |= v.meta.segments[i].offset == blk.offset;
		if (blk.type != LAYOUT_BLOCK_SEGMENT || listed)
			continue;
		struct layout_segment_ref r = { blk.offset, blk.length };
		uint64_t from, to;
		freeable(&r, &from, &to);
		(*count)++;
		*allocated += to > from && !is_hole(map.fd, from);
	}
	layout_map_close(&map);
}

/* ---- Child: a reader that pins one snapshot until told to go ---------------- */

static int count_concept(void *arg, const struct sutra_concept_view *v)
{
	(*(uint64_t *)arg)++;
	return v->content_len == 300 ? 0 : 1;
}

static int count_all(void *arg, const struct sutra_concept_view *v)
{
	(void)v;
	(*(uint64_t *)arg)++;
	return 0;
}

static int pin_main(const char *path)
{
	sutra_reader *r;
	sutra_snapshot *s;
	char line[32];
	if (sutra_reader_open(path, &r) || sutra_snapshot_acquire(r, 0, &s))
		return 3;
	struct sutra_reader_stats st;
	sutra_snapshot_stats(s, &st);
	printf("%" PRIu64 " %" PRIu64 "\n", st.epoch, st.concept_count);
	fflush(stdout);
	while (fgets(line, sizeof line, stdin)) {
		uint64_t n = 0;
		int rc = sutra_snapshot_foreach(s, count_concept, &n);
		printf("%s %" PRIu64 "\n", rc ? "err" : "ok", n);
		fflush(stdout);
	}
	return 0;
}

/* ---- Tests ----------------------------------------------------------------- */

/* A reader killed with -9 while its snapshot pins segments that were since
 * merged away: the space stays while it lives (and its snapshot still
 * reads), and is freed once it is gone. */
START_TEST(test_segments_space_held_only_while_pinned)
{
	struct tdaemon d;
	struct layout_meta m;
	sutra_client *c;
	ck_assert_ok(tdaemon_mkdir(&d));
	ck_assert_ok(tdaemon_start(&d, seg_args));
	ck_assert_ok(sutra_client_connect(d.url, NULL, &c));
	uint32_t next = 0;
	for (int i = 0; i < 2; i++, next += PER_BATCH)
		write_batch(c, next, 1);
	wait_segments(d.data, 2, &m);
	struct layout_meta pinned = m;

	int to_child[2], from_child[2];
	ck_assert_int_eq(pipe(to_child), 0);
	ck_assert_int_eq(pipe(from_child), 0);
	const char *argv[] = { "test_int_segments", "--pin", d.data, NULL };
	pid_t child = tdaemon_spawn_self(argv, to_child[0], from_child[1]);
	close(to_child[0]);
	close(from_child[1]);
	FILE *in = fdopen(from_child[0], "r");
	uint64_t e, count, n2;
	char word[8];
	ck_assert_int_eq(fscanf(in, "%" SCNu64 " %" SCNu64, &e, &count), 2);
	ck_assert_uint_eq(count, next);

	/* More batches until every segment the child uses is merged away. */
	double end = tdaemon_now_s() + 60;
	for (;;) {
		int still = 0;
		read_meta(d.data, &m);
		for (uint32_t i = 0; i < pinned.segment_count; i++)
			for (uint32_t j = 0; j < m.segment_count; j++)
				still += m.segments[j].offset == pinned.segments[i].offset;
		if (!still)
			break;
		ck_assert_msg(tdaemon_now_s() < end, "segments never merged away");
		write_batch(c, next, 1);
		next += PER_BATCH;
	}
	wait_segments(d.data, 1, &m);
	int fd = open(d.data, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	int freeable_count = 0;
	for (uint32_t i = 0; i < pinned.segment_count; i++) {
		uint64_t from, to;
		freeable(&pinned.segments[i], &from, &to);
		if (to > from) {
			freeable_count++;
			ck_assert_msg(!is_hole(fd, from), "segment at %" PRIu64 " freed under a reader",
				      pinned.segments[i].offset);
		}
	}
	ck_assert_int_gt(freeable_count, 0);
	/* The pinned snapshot still reads every concept it had. */
	ck_assert_int_eq(write(to_child[1], "check\n", 6), 6);
	ck_assert_int_eq(fscanf(in, "%7s %" SCNu64, word, &n2), 2);
	ck_assert_str_eq(word, "ok");
	ck_assert_uint_eq(n2, count);

	kill(child, SIGKILL);
	ck_assert_int_eq(tdaemon_reap(child), 128 + SIGKILL);
	/* Without a word from anyone, the coordinator sweeps the dead slot. */
	end = tdaemon_now_s() + 10;
	for (;;) {
		int holes = 0;
		for (uint32_t i = 0; i < pinned.segment_count; i++) {
			uint64_t from, to;
			freeable(&pinned.segments[i], &from, &to);
			holes += to > from && is_hole(fd, from);
		}
		/* The flushed commit blocks go too: log_start moves past them
		 * and the pages before it (but listed segments) are holes. */
		read_meta(d.data, &m);
		int log_freed = m.log_start > 3 * 4096 && is_hole(fd, 3 * 4096);
		if (holes == freeable_count && log_freed)
			break;
		ck_assert_msg(tdaemon_now_s() < end,
			      "space not freed 10 s after the reader died (%d of %d segments, "
			      "log_start %" PRIu64 ")",
			      holes, freeable_count, m.log_start);
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	close(fd);
	fclose(in);
	close(to_child[1]);
	sutra_client_close(c);
	ck_assert_ok(tdaemon_stop(&d));

	/* The file with its freed space verifies and opens again. */
	char cmd[800];
	snprintf(cmd, sizeof cmd, "%s --verify %s >/dev/null", tdaemon_env("SUTRA_LAYOUTDUMP"),
		 d.data);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_ok(tdaemon_start(&d, seg_args));
	sutra_reader *r;
	sutra_snapshot *s;
	uint64_t all = 0;
	ck_assert_ok(sutra_reader_open(d.data, &r));
	ck_assert_ok(sutra_snapshot_acquire(r, 0, &s));
	ck_assert_ok(sutra_snapshot_foreach(s, count_concept, &all));
	ck_assert_uint_eq(all, next);
	sutra_snapshot_release(s);
	/* The restarted coordinator rebuilt its state from the segments (the
	 * log before log_start is gone): rewriting an old concept keeps its
	 * ordinal, and the counts it writes verify. */
	ck_assert_ok(sutra_client_connect(d.url, NULL, &c));
	uint8_t old_id[16];
	id_of(old_id, 5);
	struct sutra_concept_in again = { .id = old_id, .content = "rewritten", .content_len = 9,
					  .strength = 1, .confidence = 1 };
	ck_assert_ok(sutra_client_learn_concept(c, &again, &e));
	ck_assert_ok(sutra_client_learn_association(c, old_id, old_id, 2, 0.5f, 1, &e));
	sutra_client_close(c);
	ck_assert_ok(sutra_snapshot_acquire(r, e, &s));
	struct sutra_concept_view cv;
	ck_assert_ok(sutra_snapshot_get(s, old_id, &cv));
	ck_assert_uint_eq(cv.content_len, 9);
	ck_assert_uint_eq(cv.ordinal, 5);
	struct sutra_reader_stats st;
	sutra_snapshot_stats(s, &st);
	ck_assert_uint_eq(st.concept_count, next);
	sutra_snapshot_release(s);
	sutra_reader_close(r);
	ck_assert_ok(tdaemon_stop(&d));
	ck_assert_int_eq(system(cmd), 0);
	tdaemon_cleanup(&d);
}
END_TEST

/* Updates and deletes in newer segments (and in the tail) shadow older
 * segments in get, neighbours, paths and iteration. */
START_TEST(test_segments_newer_versions_shadow_older)
{
	struct tdaemon d;
	struct layout_meta m;
	sutra_client *c;
	uint64_t e;
	ck_assert_ok(tdaemon_mkdir(&d));
	ck_assert_ok(tdaemon_start(&d, seg_args));
	ck_assert_ok(sutra_client_connect(d.url, NULL, &c));
	write_batch(c, 0, 1); /* a chain 0 - 1 - ... - 199 */
	wait_segments(d.data, 1, &m);
	/* Rewrite them (a newer segment, until an idle merge makes one of
	 * both), then cut the chain at 100 in the tail. */
	uint64_t e2 = write_batch(c, 0, 2);
	do
		wait_segments(d.data, 1, &m);
	while (m.epoch <= e2 || m.tail_start < m.segments[m.segment_count - 1].offset);
	uint8_t a[16], b[16], mid[16], z[16];
	id_of(a, 99);
	id_of(mid, 100);
	id_of(b, 101);
	id_of(z, 150);
	ck_assert_ok(sutra_client_delete_concept(c, mid, &e));
	/* 150 learnt again after a delete: a new ordinal in the tail. */
	ck_assert_ok(sutra_client_delete_concept(c, z, &e));
	struct sutra_concept_in in = { .id = z, .content = "again", .content_len = 5,
				       .strength = 1, .confidence = 1 };
	ck_assert_ok(sutra_client_learn_concept(c, &in, &e));

	sutra_reader *r;
	sutra_snapshot *s;
	struct sutra_concept_view v;
	ck_assert_ok(sutra_reader_open(d.data, &r));
	ck_assert_ok(sutra_snapshot_acquire(r, e, &s));
	struct sutra_reader_stats st;
	sutra_snapshot_stats(s, &st);
	ck_assert_uint_ge(st.segment_count, 1);
	ck_assert_ok(sutra_snapshot_get(s, a, &v));
	ck_assert_int_eq(memcmp(v.content, "n99 v2 ", 7), 0);
	ck_assert_err(sutra_snapshot_get(s, mid, &v), SUTRA_ENOTFOUND);
	ck_assert_ok(sutra_snapshot_contains(s, mid));
	ck_assert_ok(sutra_snapshot_get(s, z, &v));
	ck_assert_uint_eq(v.content_len, 5);
	struct sutra_neighbor nb[8];
	size_t n, total;
	ck_assert_ok(sutra_snapshot_neighbors(s, a, -1, SUTRA_DIR_BOTH, 8, nb, &n, &total));
	ck_assert_uint_eq(n, 1); /* 98 only: the edge to 100 went with it */
	id_of(b, 98);
	ck_assert_mem_eq(nb[0].id, b, 16);
	ck_assert_ok(sutra_snapshot_neighbors(s, z, -1, SUTRA_DIR_BOTH, 8, nb, &n, &total));
	ck_assert_uint_eq(n, 0); /* the new 150 has none of the old one's edges */
	uint8_t path[21][16];
	size_t len;
	id_of(b, 101);
	ck_assert_err(sutra_snapshot_shortest_path(s, a, b, -1, SUTRA_DIR_BOTH, 20, path, &len),
	              SUTRA_ENOTFOUND);
	id_of(b, 90);
	ck_assert_ok(sutra_snapshot_shortest_path(s, a, b, -1, SUTRA_DIR_BOTH, 20, path, &len));
	ck_assert_uint_eq(len, 10);
	ck_assert_mem_eq(path[9], b, 16);
	uint64_t all = 0;
	ck_assert_ok(sutra_snapshot_foreach(s, count_all, &all));
	ck_assert_uint_eq(all, PER_BATCH - 1); /* 100 is gone, 150 is back */
	sutra_snapshot_release(s);
	sutra_reader_close(r);
	sutra_client_close(c);
	ck_assert_ok(tdaemon_stop(&d));
	tdaemon_cleanup(&d);
}
END_TEST

/* A damaged segment: open still succeeds when the damage is in a section
 * (checked lazily), and the read that touches it says SUTRA_ECORRUPT; a
 * damaged chunk table or meta slots fail the open. Never a crash. */
START_TEST(test_segments_damage_is_ecorrupt)
{
	struct tdaemon d;
	struct layout_meta m;
	sutra_client *c;
	ck_assert_ok(tdaemon_mkdir(&d));
	ck_assert_ok(tdaemon_start(&d, seg_args));
	ck_assert_ok(sutra_client_connect(d.url, NULL, &c));
	write_batch(c, 0, 1);
	wait_segments(d.data, 1, &m);
	sutra_client_close(c);
	ck_assert_ok(tdaemon_stop(&d));

	struct layout_map map;
	struct layout_segview sv;
	struct sutra_detail pb;
	struct layout_seg_concept ce;
	ck_assert_ok(layout_map_open(d.data, &map));
	ck_assert_ok(layout_segview_open(&sv, map.base, map.size, &m.segments[0], 4, &pb));
	ck_assert_ok(layout_segview_concept(&sv, 0, &ce, &pb));
	uint64_t rec = ce.record + 80; /* inside its content */
	uint64_t chunks = sv.sec_off[LAYOUT_SEC_CHUNK_CRCS];
	layout_segview_close(&sv);
	layout_map_close(&map);

	int fd = open(d.data, O_RDWR);
	unsigned char orig, bad;
	ck_assert_int_eq(pread(fd, &orig, 1, (off_t)rec), 1);
	bad = orig ^ 0x20;
	ck_assert_int_eq(pwrite(fd, &bad, 1, (off_t)rec), 1);
	sutra_reader *r;
	sutra_snapshot *s;
	struct sutra_concept_view v;
	ck_assert_ok(sutra_reader_open(d.data, &r));
	ck_assert_ok(sutra_snapshot_acquire(r, 0, &s));
	ck_assert_err(sutra_snapshot_get(s, ce.id, &v), SUTRA_ECORRUPT);
	uint64_t all = 0;
	ck_assert_err(sutra_snapshot_foreach(s, count_concept, &all), SUTRA_ECORRUPT);
	sutra_snapshot_release(s);
	sutra_reader_close(r);
	ck_assert_int_eq(pwrite(fd, &orig, 1, (off_t)rec), 1);

	ck_assert_int_eq(pread(fd, &orig, 1, (off_t)chunks), 1);
	bad = orig ^ 0x01;
	ck_assert_int_eq(pwrite(fd, &bad, 1, (off_t)chunks), 1);
	ck_assert_err(sutra_reader_open(d.data, &r), SUTRA_ECORRUPT);
	ck_assert_int_eq(pwrite(fd, &orig, 1, (off_t)chunks), 1);

	/* Both meta slots damaged: nothing to open. */
	unsigned char slot[2];
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(pread(fd, &slot[i], 1, 4096 * (i + 1) + 20), 1);
		bad = slot[i] ^ 0x40;
		ck_assert_int_eq(pwrite(fd, &bad, 1, 4096 * (i + 1) + 20), 1);
	}
	ck_assert_err(sutra_reader_open(d.data, &r), SUTRA_ECORRUPT);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pwrite(fd, &slot[i], 1, 4096 * (i + 1) + 20), 1);
	ck_assert_ok(sutra_reader_open(d.data, &r));
	sutra_reader_close(r);
	close(fd);
	tdaemon_cleanup(&d);
}
END_TEST

/* A store that goes idle gets its tail flushed into a segment even below
 * the threshold, so that readers opening it index next to nothing. */
START_TEST(test_segments_idle_tail_is_flushed)
{
	struct tdaemon d;
	struct layout_meta m;
	sutra_client *c;
	const char *args[] = { "--vector-dimension", "4", NULL }; /* default threshold */
	ck_assert_ok(tdaemon_mkdir(&d));
	ck_assert_ok(tdaemon_start(&d, args));
	ck_assert_ok(sutra_client_connect(d.url, NULL, &c));
	write_batch(c, 0, 1); /* about 80 KiB: over 64 KiB, far below 16 MiB */
	read_meta(d.data, &m);
	ck_assert_uint_eq(m.segment_count, 0);
	wait_segments(d.data, 1, &m);
	ck_assert_uint_eq(m.segment_count, 1);
	sutra_reader *r;
	sutra_snapshot *s;
	struct sutra_reader_stats st;
	ck_assert_ok(sutra_reader_open(d.data, &r));
	ck_assert_ok(sutra_snapshot_acquire(r, 0, &s));
	sutra_snapshot_stats(s, &st);
	ck_assert_uint_eq(st.concept_count, PER_BATCH);
	ck_assert_uint_lt(st.tail_bytes, 4096); /* the segment block and an empty commit */
	sutra_snapshot_release(s);
	sutra_reader_close(r);

	/* A second idle flush, then the idle merge of both into one: the two
	 * merged-away segments are freed although nothing is written after
	 * the merge (the coordinator rewrites the older meta slot itself). */
	write_batch(c, PER_BATCH, 1);
	double end = tdaemon_now_s() + 20;
	int count, allocated;
	for (;;) {
		read_meta(d.data, &m);
		unlisted(d.data, &count, &allocated);
		if (m.segment_count == 1 && count == 2 && allocated == 0)
			break;
		ck_assert_msg(tdaemon_now_s() < end,
			      "idle store: %u segments, %d merged away, %d still allocated",
			      m.segment_count, count, allocated);
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	sutra_client_close(c);
	ck_assert_ok(tdaemon_stop(&d));
	tdaemon_cleanup(&d);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--pin") == 0)
		return pin_main(argv[2]);
	Suite *s = suite_create("segments");
	TCase *tc = tcase_create("segments");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_segments_space_held_only_while_pinned);
	tcase_add_test(tc, test_segments_newer_versions_shadow_older);
	tcase_add_test(tc, test_segments_damage_is_ecorrupt);
	tcase_add_test(tc, test_segments_idle_tail_is_flushed);
	suite_add_tcase(s, tc);
	return tcheck_run_suite(s);
}
