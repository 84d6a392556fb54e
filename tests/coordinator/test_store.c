/* SPDX-License-Identifier: MIT */
/* The writer's store in-process: lock, apply and roll back, cascades, commit, recovery, relaxed slots, I/O faults. */
#include <errno.h>
#include <fcntl.h>
#include <roaring/roaring.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coordinator/store.h"
#include "layout/lockfile.h"
#include "layout/layout.h"
#include "sutra/errors.h"
#include "tests/common/tcheck.h"
#include "util/endian.h"

static char dir[64];
static char path[96];
static struct coord_store *st;
static struct sutra_detail why;

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/sutra-store-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/storage.dat", dir);
	st = NULL;
}

static void teardown(void)
{
	char p[128];
	coord_store_close(st);
	unlink(path);
	snprintf(p, sizeof p, "%s.lock", path);
	unlink(p);
	rmdir(dir);
}

static int open_store(enum coord_durability d, const char *fault)
{
	struct coord_store_options o = { .path = path, .vector_dim = 4, .durability = d,
					 .io = COORD_IO_AUTO, .fault_spec = fault };
	why.what[0] = 0;
	return coord_store_open(&o, &st, &why);
}

static void reopen(enum coord_durability d)
{
	ck_assert_ok(coord_store_close(st));
	st = NULL;
	ck_assert_msg(open_store(d, NULL) == 0, "%s", why.what);
}

static struct proto_op_body concept(int n, const char *content)
{
	struct proto_op_body op;
	memset(&op, 0, sizeof op);
	op.op = PROTO_OP_LEARN_CONCEPT;
	memset(op.u.concept.id, n, 16);
	op.u.concept.strength = 1;
	op.u.concept.confidence = 1;
	op.u.concept.content = content;
	op.u.concept.content_len = (uint32_t)strlen(content);
	return op;
}

static struct proto_op_body assoc(uint16_t kind, int s, int d, uint8_t type)
{
	struct proto_op_body op;
	memset(&op, 0, sizeof op);
	op.op = kind;
	memset(op.u.assoc.src, s, 16);
	memset(op.u.assoc.dst, d, 16);
	op.u.assoc.type = type;
	op.u.assoc.confidence = 0.5f;
	op.u.assoc.weight = 1;
	return op;
}

static struct proto_op_body del(int n)
{
	struct proto_op_body op;
	memset(&op, 0, sizeof op);
	op.op = PROTO_OP_DELETE_CONCEPT;
	memset(op.u.del.id, n, 16);
	return op;
}

/* Applies ops as one request; returns the first failure (rolled back) or 0. */
static int request(const struct proto_op_body *ops, size_t n)
{
	int rc = 0;
	coord_store_request_begin(st);
	for (size_t i = 0; i < n && !rc; i++)
		rc = coord_store_apply(st, &ops[i], &why);
	coord_store_request_end(st, rc == 0);
	return rc;
}

static uint64_t commit(void)
{
	uint64_t e;
	int committed;
	ck_assert_ok(coord_store_commit(st, 0, &e, &committed));
	ck_assert(committed);
	return e;
}

/* Maps the file and checks it verifies; returns the view's meta. */
static struct layout_meta verify_file(void)
{
	struct layout_map map;
	struct layout_view v;
	struct sutra_detail pb;
	ck_assert_ok(layout_map_open(path, &map));
	ck_assert_msg(layout_open(map.base, map.size, &v, &pb) == 0, "%s", pb.what);
	ck_assert_msg(layout_verify(&v, NULL, &pb) == 0, "verify: %s at %llu", pb.what,
		      (unsigned long long)pb.offset);
	struct layout_meta m = v.meta;
	layout_map_close(&map);
	return m;
}

/* Copies out the records of one type from the verified file, in log order
 * (pointers in them are not valid after return: scalar fields only), and
 * returns how many; *meta gets the current meta. */
static size_t records_of(uint8_t type, struct layout_record *out, size_t cap,
			 struct layout_meta *meta)
{
	struct layout_map map;
	struct layout_view v;
	struct sutra_detail pb;
	size_t n = 0;
	ck_assert_ok(layout_map_open(path, &map));
	ck_assert_ok(layout_open(map.base, map.size, &v, &pb));
	ck_assert_msg(layout_verify(&v, NULL, &pb) == 0, "%s", pb.what);
	for (uint64_t pos = v.sb.data_offset; pos < v.meta.published_end;) {
		struct layout_block blk;
		struct layout_record_iter it;
		struct layout_record rec;
		ck_assert_ok(layout_block_decode(map.base, map.size, pos, &blk, &pb));
		layout_records_init(&it, map.base, &blk, v.sb.vector_dim);
		while (layout_records_next(&it, &rec, &pb) == 1)
			if (rec.type == type && n < cap)
				out[n++] = rec;
		pos = blk.offset + blk.length;
	}
	*meta = v.meta;
	layout_map_close(&map);
	return n;
}

START_TEST(test_store_creates_with_dimension)
{
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, NULL) == 0, "%s", why.what);
	ck_assert_uint_eq(coord_store_vector_dim(st), 4);
	ck_assert_uint_eq(coord_store_epoch(st), 0);
	struct layout_meta m = verify_file();
	ck_assert_uint_eq(m.epoch, 0);
	/* An explicit other dimension is refused for the existing store. */
	coord_store_close(st);
	st = NULL;
	struct coord_store_options o = { .path = path, .vector_dim = 8, .vector_dim_explicit = 1 };
	ck_assert_err(coord_store_open(&o, &st, &why), SUTRA_EDIM);
	ck_assert_ptr_nonnull(strstr(why.what, "dimension 4"));
}
END_TEST

START_TEST(test_store_second_open_in_process_is_locked)
{
	struct coord_store *other;
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, NULL) == 0, "%s", why.what);
	struct coord_store_options o = { .path = path };
	ck_assert_err(coord_store_open(&o, &other, &why), SUTRA_ELOCKED);
	/* Neither the refused open nor a reader's lock-file handle opened and
	 * closed in this process may drop the first one's lock (closing any
	 * descriptor of a file drops a process's classic fcntl locks). */
	struct layout_lockfile *lf;
	char lp[600];
	snprintf(lp, sizeof lp, "%s.lock", path);
	ck_assert_ok(layout_lockfile_open(lp, LAYOUT_LOCKFILE_CREATE, &lf, NULL));
	layout_lockfile_close(lf);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* Straight to the kernel: the child's copy of the in-process
		 * registry would refuse it anyway. */
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1 };
		int fd = open(lp, O_RDWR);
		_exit(fd >= 0 && fcntl(fd, F_SETLK, &fl) < 0 && (errno == EAGAIN || errno == EACCES)
			      ? 0
			      : 1);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "another process could take the writer lock");
	struct proto_op_body c = concept(1, "still mine");
	ck_assert_ok(request(&c, 1));
	ck_assert_uint_eq(commit(), 1);
}
END_TEST

START_TEST(test_store_other_process_lock_names_pid)
{
	int ready[2], go[2];
	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(go), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char c = 0;
		int rc = open_store(COORD_DURABILITY_SYNC, NULL);
		if (write(ready[1], &rc, sizeof rc) != sizeof rc || read(go[0], &c, 1) < 0)
			_exit(3);
		_exit(rc ? 1 : 0);
	}
	int rc = -1;
	ck_assert_int_eq(read(ready[0], &rc, sizeof rc), (ssize_t)sizeof rc);
	ck_assert_ok(rc);
	ck_assert_err(open_store(COORD_DURABILITY_SYNC, NULL), SUTRA_ELOCKED);
	char want[32];
	snprintf(want, sizeof want, "pid %ld", (long)pid);
	ck_assert_msg(strstr(why.what, want) != NULL, "'%s' does not name %s", why.what, want);
	/* The holder dies: the lock goes with it. */
	kill(pid, SIGKILL);
	int status;
	waitpid(pid, &status, 0);
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, NULL) == 0, "%s", why.what);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
}
END_TEST

START_TEST(test_store_failed_request_rolls_back_only_itself)
{
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, NULL) == 0, "%s", why.what);
	struct proto_op_body ok[] = { concept(1, "a"), concept(2, "b"),
				      assoc(PROTO_OP_LEARN_ASSOCIATION, 1, 2, 0) };
	ck_assert_ok(request(ok, 3));
	/* New concept 3, an edge to it, then an edge to an unknown concept:
	 * the whole request goes, the first one stays. */
	struct proto_op_body bad[] = { concept(3, "c"), assoc(PROTO_OP_LEARN_ASSOCIATION, 1, 3, 1),
				       assoc(PROTO_OP_LEARN_ASSOCIATION, 3, 9, 0) };
	ck_assert_err(request(bad, 3), SUTRA_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(why.what, "unknown target concept 0909"));
	/* Concept 3 is gone again: an edge to it is refused. */
	struct proto_op_body to3 = assoc(PROTO_OP_LEARN_ASSOCIATION, 1, 3, 1);
	ck_assert_err(request(&to3, 1), SUTRA_ENOTFOUND);
	/* Its ordinal is free again: the next new concept takes ordinal 2. */
	struct proto_op_body d = concept(4, "d");
	ck_assert_ok(request(&d, 1));
	ck_assert_uint_eq(commit(), 1);
	struct layout_meta m = verify_file();
	ck_assert_uint_eq(m.concept_count, 3);
	ck_assert_uint_eq(m.association_count, 1);
	ck_assert_uint_eq(m.next_ordinal, 3);
}
END_TEST

START_TEST(test_store_failed_delete_cascade_rolls_back)
{
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, NULL) == 0, "%s", why.what);
	struct proto_op_body ok[] = { concept(1, "a"), concept(2, "b"),
				      assoc(PROTO_OP_LEARN_ASSOCIATION, 1, 2, 0),
				      assoc(PROTO_OP_LEARN_ASSOCIATION, 2, 1, 3) };
	ck_assert_ok(request(ok, 4));
	ck_assert_uint_eq(commit(), 1);
	/* Delete 1 (removing both edges), then fail: the edges come back. */
	struct proto_op_body bad[] = { del(1), del(7) };
	ck_assert_err(request(bad, 2), SUTRA_ENOTFOUND);
	struct proto_op_body again = assoc(PROTO_OP_DELETE_ASSOCIATION, 2, 1, 3);
	ck_assert_ok(request(&again, 1)); /* the edge exists again */
	ck_assert_uint_eq(commit(), 2);
	struct layout_meta m = verify_file();
	ck_assert_uint_eq(m.concept_count, 2);
	ck_assert_uint_eq(m.association_count, 1);
}
END_TEST

START_TEST(test_store_delete_concept_removes_its_edges)
{
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, NULL) == 0, "%s", why.what);
	struct proto_op_body ops[] = { concept(1, "a"), concept(2, "b"), concept(3, "c"),
				       assoc(PROTO_OP_LEARN_ASSOCIATION, 1, 2, 0),
				       assoc(PROTO_OP_LEARN_ASSOCIATION, 3, 1, 2),
				       assoc(PROTO_OP_LEARN_ASSOCIATION, 1, 1, 4),
				       assoc(PROTO_OP_LEARN_ASSOCIATION, 2, 3, 1) };
	ck_assert_ok(request(ops, 7));
	ck_assert_uint_eq(commit(), 1);
	struct proto_op_body d = del(1);
	ck_assert_ok(request(&d, 1));
	ck_assert_uint_eq(commit(), 2);
	struct layout_meta m = verify_file(); /* replay rules: edges deleted first */
	ck_assert_uint_eq(m.concept_count, 2);
	ck_assert_uint_eq(m.association_count, 1);
	/* Deleting it again: unknown. */
	ck_assert_err(request(&d, 1), SUTRA_ENOTFOUND);
	/* Learnt again, it gets a new ordinal and no edges. */
	struct proto_op_body back = concept(1, "a again");
	ck_assert_ok(request(&back, 1));
	ck_assert_uint_eq(commit(), 3);
	m = verify_file();
	ck_assert_uint_eq(m.next_ordinal, 4);
	ck_assert_uint_eq(m.association_count, 1);
}
END_TEST

START_TEST(test_store_update_keeps_ordinal_edges_and_creation)
{
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, NULL) == 0, "%s", why.what);
	struct proto_op_body ops[] = { concept(1, "a"), concept(2, "b"),
				       assoc(PROTO_OP_LEARN_ASSOCIATION, 1, 2, 0) };
	ck_assert_ok(request(ops, 3));
	commit();
	usleep(2000);
	struct proto_op_body up = concept(1, "a, updated");
	ck_assert_ok(request(&up, 1));
	commit();
	reopen(COORD_DURABILITY_SYNC); /* the state is rebuilt from the file */
	struct proto_op_body up2 = concept(1, "a, updated twice");
	ck_assert_ok(request(&up2, 1));
	commit();

	struct layout_record recs[8];
	struct layout_meta m;
	size_t n = records_of(LAYOUT_REC_CONCEPT, recs, 8, &m);
	ck_assert_uint_eq(m.association_count, 1);
	int versions = 0;
	for (size_t i = 0; i < n; i++) {
		if (recs[i].u.concept.id[0] != 1)
			continue;
		versions++;
		ck_assert_uint_eq(recs[i].u.concept.ordinal, 0);
		ck_assert_uint_eq(recs[i].u.concept.created_us, recs[0].u.concept.created_us);
		ck_assert_uint_ge(recs[i].u.concept.updated_us, recs[0].u.concept.created_us);
	}
	ck_assert_int_eq(versions, 3);
}
END_TEST

START_TEST(test_store_association_upsert_keeps_creation)
{
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, NULL) == 0, "%s", why.what);
	struct proto_op_body ops[] = { concept(1, "a"), concept(2, "b"),
				       assoc(PROTO_OP_LEARN_ASSOCIATION, 1, 2, 2) };
	ck_assert_ok(request(ops, 3));
	commit();
	usleep(2000);
	struct proto_op_body up = assoc(PROTO_OP_LEARN_ASSOCIATION, 1, 2, 2);
	up.u.assoc.confidence = 0.75f;
	ck_assert_ok(request(&up, 1));
	commit();
	reopen(COORD_DURABILITY_SYNC);
	usleep(2000);
	ck_assert_ok(request(&up, 1));
	commit();

	struct layout_record recs[8];
	struct layout_meta m;
	size_t n = records_of(LAYOUT_REC_ASSOCIATION, recs, 8, &m);
	ck_assert_uint_eq(n, 3);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(recs[i].u.association.created_us, recs[0].u.association.created_us);
	ck_assert_uint_eq(m.association_count, 1);
}
END_TEST

START_TEST(test_store_recovery_discards_tail)
{
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, NULL) == 0, "%s", why.what);
	struct proto_op_body c = concept(1, "a");
	ck_assert_ok(request(&c, 1));
	commit();
	coord_store_close(st);
	st = NULL;
	/* A torn commit: half a block after the published end. */
	int fd = open(path, O_WRONLY | O_APPEND);
	ck_assert_int_ge(fd, 0);
	unsigned char junk[100];
	memset(junk, 0x5B, sizeof junk);
	ck_assert_int_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
	close(fd);
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, NULL) == 0, "%s", why.what);
	ck_assert_uint_eq(coord_store_epoch(st), 1);
	struct proto_op_body d = concept(2, "b");
	ck_assert_ok(request(&d, 1));
	ck_assert_uint_eq(commit(), 2);
	struct layout_meta m = verify_file();
	ck_assert_uint_eq(m.concept_count, 2);
}
END_TEST

/* The newest meta slot torn (or its block lost): recovery opens at the
 * older epoch, clears the bad slot and commits an empty epoch into it so
 * that both slots are valid again. */
START_TEST(test_store_recovery_from_torn_meta)
{
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, NULL) == 0, "%s", why.what);
	struct proto_op_body a = concept(1, "a"), b = concept(2, "b");
	ck_assert_ok(request(&a, 1));
	commit();
	ck_assert_ok(request(&b, 1));
	ck_assert_uint_eq(commit(), 2);
	coord_store_close(st);
	st = NULL;
	/* Epoch 2 went to slot 0 (epoch 1 is durable in slot 1). Tear it. */
	int fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	unsigned char x = 0xEE;
	ck_assert_int_eq(pwrite(fd, &x, 1, LAYOUT_META_OFFSET + 20), 1);
	close(fd);
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, NULL) == 0, "%s", why.what);
	ck_assert_uint_eq(coord_store_epoch(st), 2); /* 1, then the empty recovery epoch */
	struct layout_meta m = verify_file();
	ck_assert_uint_eq(m.epoch, 2);
	ck_assert_uint_eq(m.concept_count, 1);
	/* b was never acknowledged as durable in this story: it is gone, and
	 * learning it again gives it a fresh ordinal. */
	ck_assert_ok(request(&b, 1));
	ck_assert_uint_eq(commit(), 3);
	m = verify_file();
	ck_assert_uint_eq(m.concept_count, 2);
}
END_TEST

/* The older slot is intact (valid CRC) but does not match the log: it
 * cannot be the fallback, so recovery rewrites it with an empty epoch
 * instead of refusing to start. */
START_TEST(test_store_recovery_replaces_inconsistent_older_slot)
{
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, NULL) == 0, "%s", why.what);
	struct proto_op_body a = concept(1, "a"), b = concept(2, "b");
	ck_assert_ok(request(&a, 1));
	commit();
	ck_assert_ok(request(&b, 1));
	commit();
	coord_store_close(st);
	st = NULL;
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	unsigned char slot[LAYOUT_META_SLOT_SIZE];
	off_t off = LAYOUT_META_OFFSET + LAYOUT_META_SLOT_SIZE; /* epoch 1 */
	ck_assert_int_eq(pread(fd, slot, sizeof slot, off), (ssize_t)sizeof slot);
	struct layout_meta m;
	struct sutra_detail pb;
	ck_assert_int_eq(layout_meta_decode(slot, sizeof slot, (uint64_t)off, &m, &pb),
			 LAYOUT_SLOT_VALID);
	ck_assert_uint_eq(m.epoch, 1);
	m.concept_count = 99;
	layout_meta_encode(&m, slot);
	ck_assert_int_eq(pwrite(fd, slot, LAYOUT_META_SIZE, off), LAYOUT_META_SIZE);
	close(fd);
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, NULL) == 0, "%s", why.what);
	ck_assert_uint_eq(coord_store_epoch(st), 3); /* 2, then the recovery epoch */
	struct layout_meta now = verify_file();
	ck_assert_uint_eq(now.concept_count, 2);
}
END_TEST

static int current_slot(void)
{
	struct layout_map map;
	struct layout_view v;
	struct sutra_detail pb;
	ck_assert_ok(layout_map_open(path, &map));
	ck_assert_ok(layout_open(map.base, map.size, &v, &pb));
	int cur = v.current;
	layout_map_close(&map);
	return cur;
}

START_TEST(test_store_sync_mode_alternates_slots)
{
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, NULL) == 0, "%s", why.what);
	int prev = current_slot();
	for (int i = 1; i <= 4; i++) {
		struct proto_op_body c = concept(i, "x");
		ck_assert_ok(request(&c, 1));
		commit();
		ck_assert_uint_eq(coord_store_durable_epoch(st), (uint64_t)i);
		int cur = current_slot();
		ck_assert_int_ne(cur, prev);
		prev = cur;
	}
	verify_file();
}
END_TEST

/* Relaxed: the epochs between two syncs share the slot that does not hold
 * the durable epoch; after a sync the roles swap. A lost unsynced block
 * (power loss) makes open fall back to the durable epoch. */
START_TEST(test_store_relaxed_keeps_durable_slot)
{
	ck_assert_msg(open_store(COORD_DURABILITY_RELAXED, NULL) == 0, "%s", why.what);
	struct proto_op_body c = concept(1, "durable");
	ck_assert_ok(request(&c, 1));
	commit();
	ck_assert(coord_store_has_unsynced(st));
	ck_assert_ok(coord_store_sync(st));
	ck_assert_uint_eq(coord_store_durable_epoch(st), 1);
	int durable_slot = current_slot();
	uint64_t second_block = coord_store_published_end(st);
	for (int i = 2; i <= 4; i++) {
		struct proto_op_body d = concept(i, "unsynced");
		ck_assert_ok(request(&d, 1));
		commit();
		ck_assert_int_ne(current_slot(), durable_slot);
		ck_assert_uint_eq(coord_store_durable_epoch(st), 1);
	}
	verify_file();
	/* What a power loss could leave: epoch 2's block never reached the
	 * disk while epoch 4's block and meta did. Simulated on a copy. */
	char lost[128];
	snprintf(lost, sizeof lost, "%s/lost.dat", dir);
	char cmd[512];
	snprintf(cmd, sizeof cmd, "cp %s %s", path, lost);
	ck_assert_int_eq(system(cmd), 0);
	int fd = open(lost, O_WRONLY);
	unsigned char zero[64] = { 0 };
	ck_assert_int_eq(pwrite(fd, zero, sizeof zero, (off_t)second_block), 64);
	close(fd);
	struct layout_map map;
	struct layout_view v;
	struct sutra_detail pb;
	ck_assert_ok(layout_map_open(lost, &map));
	ck_assert_ok(layout_open(map.base, map.size, &v, &pb));
	ck_assert_uint_eq(v.meta.epoch, 1);
	ck_assert_int_eq(v.current, durable_slot);
	layout_map_close(&map);
	unlink(lost);

	/* After a sync, the next epoch goes to the other slot. */
	ck_assert_ok(coord_store_sync(st));
	ck_assert_uint_eq(coord_store_durable_epoch(st), 4);
	int new_durable = current_slot();
	ck_assert_int_ne(new_durable, durable_slot);
	struct proto_op_body e = concept(5, "next");
	ck_assert_ok(request(&e, 1));
	commit();
	ck_assert_int_eq(current_slot(), durable_slot);
	reopen(COORD_DURABILITY_RELAXED); /* close syncs */
	ck_assert_uint_eq(coord_store_epoch(st), 5);
	ck_assert_uint_eq(coord_store_durable_epoch(st), 5);
	verify_file();
}
END_TEST

START_TEST(test_store_io_failure_is_fatal)
{
	/* fdatasyncs: 1 at open (recovery), 2 for epoch 1, 3 for epoch 2. */
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, "sync:3") == 0, "%s", why.what);
	struct proto_op_body a = concept(1, "a"), b = concept(2, "b");
	ck_assert_ok(request(&a, 1));
	commit();
	ck_assert_ok(request(&b, 1));
	uint64_t e;
	int committed;
	ck_assert_err(coord_store_commit(st, 0, &e, &committed), -EIO);
	ck_assert(!committed);
	ck_assert_int_eq(coord_store_failed(st), -EIO);
	/* Nothing more is accepted. */
	struct proto_op_body c = concept(3, "c");
	ck_assert_err(request(&c, 1), -EIO);
	ck_assert_err(coord_store_sync(st), -EIO);
	ck_assert_err(coord_store_close(st), -EIO);
	st = NULL;
	/* The next start recovers from the disk. */
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, NULL) == 0, "%s", why.what);
	ck_assert_uint_ge(coord_store_epoch(st), 1);
	verify_file();
}
END_TEST

START_TEST(test_store_refuses_corrupt_file)
{
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, NULL) == 0, "%s", why.what);
	coord_store_close(st);
	st = NULL;
	int fd = open(path, O_WRONLY);
	ck_assert_int_eq(pwrite(fd, "XXXX", 4, 0), 4);
	close(fd);
	ck_assert_err(open_store(COORD_DURABILITY_SYNC, NULL), SUTRA_ECORRUPT);
	ck_assert_msg(strstr(why.what, "offset") != NULL, "%s", why.what);
}
END_TEST

START_TEST(test_store_touched_lists_ordinals)
{
	ck_assert_msg(open_store(COORD_DURABILITY_SYNC, NULL) == 0, "%s", why.what);
	struct proto_op_body ops[] = { concept(1, "a"), concept(2, "b"), concept(3, "c") };
	ck_assert_ok(request(ops, 3));
	commit();
	struct proto_op_body e = assoc(PROTO_OP_LEARN_ASSOCIATION, 3, 1, 0);
	ck_assert_ok(request(&e, 1));
	commit();
	size_t len;
	unsigned char *bm = coord_store_touched(st, &len);
	ck_assert_ptr_nonnull(bm);
	/* Only the second epoch's: both endpoints (ordinals 2 and 0). */
	roaring_bitmap_t *r = roaring_bitmap_portable_deserialize_safe((const char *)bm, len);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(roaring_bitmap_get_cardinality(r), 2);
	ck_assert(roaring_bitmap_contains(r, 0));
	ck_assert(roaring_bitmap_contains(r, 2));
	roaring_bitmap_free(r);
	free(bm);
}
END_TEST

TCHECK_MAIN_FIXTURE("coordinator", "store", 60, setup, teardown, test_store_creates_with_dimension,
		    test_store_second_open_in_process_is_locked,
		    test_store_other_process_lock_names_pid,
		    test_store_failed_request_rolls_back_only_itself,
		    test_store_failed_delete_cascade_rolls_back,
		    test_store_delete_concept_removes_its_edges,
		    test_store_update_keeps_ordinal_edges_and_creation,
		    test_store_association_upsert_keeps_creation,
		    test_store_recovery_discards_tail, test_store_recovery_from_torn_meta,
		    test_store_recovery_replaces_inconsistent_older_slot,
		    test_store_sync_mode_alternates_slots, test_store_relaxed_keeps_durable_slot,
		    test_store_io_failure_is_fatal, test_store_refuses_corrupt_file,
		    test_store_touched_lists_ordinals)
