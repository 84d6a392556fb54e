/* SPDX-License-Identifier: MIT */
/* The association graph through a snapshot: neighbours by type and direction, shortest paths, k paths, across layers. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sutra/reader.h"
#include "tests/common/tcheck.h"
#include "tests/reader/rstore.h"

#define DIM 4u

static sutra_reader *rd;

static sutra_snapshot *snap(const struct rstore *st)
{
	sutra_snapshot *s = NULL;
	if (!rd)
		ck_assert_ok(sutra_reader_open(st->path, &rd));
	ck_assert_ok(sutra_snapshot_acquire(rd, 0, &s));
	return s;
}

static void done(struct rstore *st)
{
	sutra_reader_close(rd);
	rd = NULL;
	rstore_finish(st);
}

static uint32_t number_of(const uint8_t id[16])
{
	uint32_t n;
	memcpy(&n, id, sizeof n);
	return n;
}

/* ---- Neighbours ---------------------------------------------------------------- */

/* X = concept 1 (ordinal 0), A, B, C, D = 2..5 (ordinals 1..4). */
enum { X = 1, A, B, C, D };

/* The edges around X, committed so that `split` of them land in a
 * segment and the rest in the tail (all of them: 6). */
static void build_star(struct rstore *st, int split)
{
	static const struct {
		uint32_t a, b;
		uint8_t type;
		float conf;
	} e[] = {
		{ X, A, 1, 0.9f }, { D, X, 1, 0.8f }, { X, C, 2, 0.7f },
		{ X, X, 3, 0.6f }, { X, B, 1, 0.5f }, { A, B, 1, 0.4f },
	};
	rstore_init(st, DIM);
	for (uint32_t n = X; n <= D; n++)
		rstore_concept(st, n, n - 1, "node", NULL);
	for (int i = 0; i < 6; i++) {
		if (i == split) {
			rstore_commit(st);
			rstore_flush(st);
		}
		rstore_assoc(st, e[i].a, e[i].a - 1, e[i].b, e[i].b - 1, e[i].type, e[i].conf);
	}
	rstore_commit(st);
	if (split == 6)
		rstore_flush(st);
}

/* The neighbours of n as "number type direction" in order, e.g. "2:1>"
 * for concept 2 through an outgoing association of type 1. */
static int neighbours(const sutra_snapshot *s, uint32_t n, int type, enum sutra_direction dir,
		      size_t limit, char *out, size_t *total)
{
	struct sutra_neighbor nb[16];
	uint8_t id[16];
	size_t k = 0;
	rstore_id(id, n);
	int rc = sutra_snapshot_neighbors(s, id, type, dir, limit, nb, &k, total);
	out[0] = 0;
	for (size_t i = 0; rc == 0 && i < k; i++) {
		char one[32];
		snprintf(one, sizeof one, "%s%u:%u%c", i ? " " : "", number_of(nb[i].id),
			 nb[i].type, nb[i].outgoing ? '>' : '<');
		strcat(out, one);
		ck_assert_uint_eq(nb[i].ordinal, number_of(nb[i].id) - 1);
	}
	return rc;
}

/* The same answers whether the edges are in the tail, in a segment, or
 * split between the two. */
START_TEST(test_graph_neighbours_by_type_and_direction)
{
	for (int split = 0; split <= 6; split += 3) {
		struct rstore st;
		char got[256];
		size_t total;
		build_star(&st, split);
		sutra_snapshot *s = snap(&st);

		ck_assert_ok(neighbours(s, X, -1, SUTRA_DIR_BOTH, 16, got, &total));
		ck_assert_str_eq(got, "2:1> 5:1< 4:2> 1:3> 3:1>"); /* by confidence */
		ck_assert_uint_eq(total, 5);
		ck_assert_ok(neighbours(s, X, -1, SUTRA_DIR_OUT, 16, got, &total));
		ck_assert_str_eq(got, "2:1> 4:2> 1:3> 3:1>");
		/* In: D, and the loop once, as outgoing wherever it lies (a
		 * loop in a segment used to come back as incoming). */
		ck_assert_ok(neighbours(s, X, -1, SUTRA_DIR_IN, 16, got, &total));
		ck_assert_uint_eq(total, 2);
		ck_assert_str_eq(got, "5:1< 1:3>");
		ck_assert_ok(neighbours(s, X, 1, SUTRA_DIR_BOTH, 16, got, &total));
		ck_assert_str_eq(got, "2:1> 5:1< 3:1>");
		ck_assert_ok(neighbours(s, X, 2, SUTRA_DIR_IN, 16, got, &total));
		ck_assert_str_eq(got, "");
		ck_assert_uint_eq(total, 0);
		ck_assert_ok(neighbours(s, X, 9, SUTRA_DIR_BOTH, 16, got, &total));
		ck_assert_uint_eq(total, 0);
		ck_assert_ok(neighbours(s, B, -1, SUTRA_DIR_BOTH, 16, got, &total));
		ck_assert_str_eq(got, "1:1< 2:1<");
		/* A limit keeps the first ones and still counts them all. */
		ck_assert_ok(neighbours(s, X, -1, SUTRA_DIR_BOTH, 2, got, &total));
		ck_assert_str_eq(got, "2:1> 5:1<");
		ck_assert_uint_eq(total, 5);
		ck_assert_ok(neighbours(s, X, -1, SUTRA_DIR_BOTH, 0, got, NULL));
		ck_assert_str_eq(got, "");

		/* The values travel with the neighbour. */
		struct sutra_neighbor nb[4];
		size_t n;
		uint8_t id[16];
		rstore_id(id, D);
		ck_assert_ok(sutra_snapshot_neighbors(s, id, -1, SUTRA_DIR_OUT, 4, nb, &n, NULL));
		ck_assert_uint_eq(n, 1);
		ck_assert(nb[0].confidence == 0.8f);
		ck_assert(nb[0].weight == 1.0f);
		ck_assert_uint_eq(nb[0].outgoing, 1);
		sutra_snapshot_release(s);
		done(&st);
	}
}
END_TEST

/* Upserts and deletes of a newer layer decide over an older one's, for a
 * snapshot of their epoch only. */
START_TEST(test_graph_neighbours_across_layers)
{
	struct rstore st;
	char got[256];
	size_t total;
	build_star(&st, 6);                      /* all in segment 0 */
	rstore_assoc_delete(&st, X, 0, C, 3, 2);
	rstore_commit(&st);
	rstore_flush(&st);                       /* segment 1 deletes X -> C */
	rstore_assoc(&st, X, 0, A, 1, 1, 0.1f);  /* the tail lowers X -> A */
	rstore_assoc_delete(&st, X, 0, B, 2, 1); /* and deletes X -> B */
	rstore_commit(&st);
	sutra_snapshot *s = snap(&st);
	ck_assert_ok(neighbours(s, X, -1, SUTRA_DIR_BOTH, 16, got, &total));
	ck_assert_str_eq(got, "5:1< 1:3> 2:1>");
	ck_assert_ok(neighbours(s, A, -1, SUTRA_DIR_BOTH, 16, got, &total));
	ck_assert_str_eq(got, "3:1> 1:1<");

	/* A delete of the loop, and of the concept once it has no edges. */
	rstore_assoc_delete(&st, X, 0, X, 0, 3);
	rstore_assoc_delete(&st, D, 4, X, 0, 1);
	rstore_assoc_delete(&st, X, 0, A, 1, 1);
	rstore_commit(&st);
	sutra_snapshot *s2 = snap(&st);
	ck_assert_ok(neighbours(s2, X, -1, SUTRA_DIR_BOTH, 16, got, &total));
	ck_assert_str_eq(got, "");
	ck_assert_ok(neighbours(s, X, -1, SUTRA_DIR_BOTH, 16, got, &total));
	ck_assert_str_eq(got, "5:1< 1:3> 2:1>"); /* the older snapshot */
	rstore_delete(&st, X, 0);
	rstore_commit(&st);
	sutra_snapshot *s3 = snap(&st);
	ck_assert_err(neighbours(s3, X, -1, SUTRA_DIR_BOTH, 16, got, &total), SUTRA_ENOTFOUND);
	sutra_snapshot_release(s);
	sutra_snapshot_release(s2);
	sutra_snapshot_release(s3);
	done(&st);
}
END_TEST

START_TEST(test_graph_neighbours_bad_arguments)
{
	struct rstore st;
	char got[256];
	build_star(&st, 3);
	sutra_snapshot *s = snap(&st);
	ck_assert_err(neighbours(s, 77, -1, SUTRA_DIR_BOTH, 16, got, NULL), SUTRA_ENOTFOUND);
	ck_assert_err(neighbours(s, X, 256, SUTRA_DIR_BOTH, 16, got, NULL), SUTRA_EVALUE);
	ck_assert_err(neighbours(s, X, -2, SUTRA_DIR_BOTH, 16, got, NULL), SUTRA_EVALUE);
	ck_assert_err(neighbours(s, X, -1, (enum sutra_direction)3, 16, got, NULL), SUTRA_EVALUE);
	sutra_snapshot_release(s);
	done(&st);
}
END_TEST

/* ---- Paths ------------------------------------------------------------------------- */

/* a -> b -> c -> d (type 1), a -> d (type 2), a -> e -> f -> g -> d
 * (type 1): concepts 10..16, ordinals 0..6. The chain is in a segment,
 * the rest in the tail. */
enum { PA = 10, PB, PC, PD, PE, PF, PG };

static void build_paths(struct rstore *st)
{
	rstore_init(st, DIM);
	for (uint32_t n = PA; n <= PG; n++)
		rstore_concept(st, n, n - PA, "node", NULL);
	rstore_assoc(st, PA, 0, PB, 1, 1, 0.5f);
	rstore_assoc(st, PB, 1, PC, 2, 1, 0.5f);
	rstore_assoc(st, PC, 2, PD, 3, 1, 0.5f);
	rstore_commit(st);
	rstore_flush(st);
	rstore_assoc(st, PA, 0, PD, 3, 2, 0.5f);
	rstore_assoc(st, PA, 0, PE, 4, 1, 0.5f);
	rstore_assoc(st, PE, 4, PF, 5, 1, 0.5f);
	rstore_assoc(st, PF, 5, PG, 6, 1, 0.5f);
	rstore_assoc(st, PG, 6, PD, 3, 1, 0.5f);
	rstore_commit(st);
}

/* The shortest path as "a b c" of concept numbers (offset by PA, as
 * letters), or the error. */
static int path(const sutra_snapshot *s, uint32_t from, uint32_t to, int type,
		enum sutra_direction dir, unsigned depth, char *out)
{
	uint8_t a[16], b[16], ids[SUTRA_MAX_PATH_DEPTH + 1][16];
	size_t len = 0;
	rstore_id(a, from);
	rstore_id(b, to);
	int rc = sutra_snapshot_shortest_path(s, a, b, type, dir, depth, ids, &len);
	out[0] = 0;
	for (size_t i = 0; rc == 0 && i < len; i++)
		out[i] = (char)('a' + number_of(ids[i]) - PA), out[i + 1] = 0;
	return rc;
}

START_TEST(test_graph_shortest_path)
{
	struct rstore st;
	char got[32];
	build_paths(&st);
	sutra_snapshot *s = snap(&st);
	ck_assert_ok(path(s, PA, PD, -1, SUTRA_DIR_OUT, 5, got));
	ck_assert_str_eq(got, "ad");
	ck_assert_ok(path(s, PA, PD, 1, SUTRA_DIR_OUT, 5, got));
	ck_assert_str_eq(got, "abcd");
	ck_assert_ok(path(s, PA, PD, 1, SUTRA_DIR_OUT, 3, got));
	ck_assert_str_eq(got, "abcd");
	ck_assert_err(path(s, PA, PD, 1, SUTRA_DIR_OUT, 2, got), SUTRA_ENOTFOUND);
	ck_assert_ok(path(s, PA, PD, 2, SUTRA_DIR_OUT, 1, got));
	ck_assert_str_eq(got, "ad");
	/* Direction: against the arrows only with IN (or BOTH). */
	ck_assert_err(path(s, PD, PA, -1, SUTRA_DIR_OUT, 5, got), SUTRA_ENOTFOUND);
	ck_assert_ok(path(s, PD, PA, 1, SUTRA_DIR_IN, 5, got));
	ck_assert_str_eq(got, "dcba");
	ck_assert_ok(path(s, PD, PA, 1, SUTRA_DIR_BOTH, 5, got));
	ck_assert_str_eq(got, "dcba");
	ck_assert_ok(path(s, PE, PB, -1, SUTRA_DIR_BOTH, 5, got));
	ck_assert_str_eq(got, "eab");
	ck_assert_ok(path(s, PC, PC, -1, SUTRA_DIR_OUT, 1, got));
	ck_assert_str_eq(got, "c");
	ck_assert_err(path(s, PG, PE, 3, SUTRA_DIR_BOTH, 20, got), SUTRA_ENOTFOUND);

	/* Bad arguments and unknown ends. */
	ck_assert_err(path(s, PA, PD, -1, SUTRA_DIR_OUT, 0, got), SUTRA_EVALUE);
	ck_assert_err(path(s, PA, PD, -1, SUTRA_DIR_OUT, SUTRA_MAX_PATH_DEPTH + 1, got),
		      SUTRA_EVALUE);
	ck_assert_err(path(s, PA, PD, 300, SUTRA_DIR_OUT, 5, got), SUTRA_EVALUE);
	ck_assert_err(path(s, PA, PD, -1, (enum sutra_direction)9, 5, got), SUTRA_EVALUE);
	ck_assert_err(path(s, 99, PD, -1, SUTRA_DIR_OUT, 5, got), SUTRA_ENOTFOUND);
	ck_assert_err(path(s, PA, 99, -1, SUTRA_DIR_OUT, 5, got), SUTRA_ENOTFOUND);

	/* The shortcut deleted in the tail: a newer snapshot goes round. */
	rstore_assoc_delete(&st, PA, 0, PD, 3, 2);
	rstore_commit(&st);
	sutra_snapshot *s2 = snap(&st);
	ck_assert_ok(path(s2, PA, PD, -1, SUTRA_DIR_OUT, 5, got));
	ck_assert_str_eq(got, "abcd");
	ck_assert_ok(path(s, PA, PD, -1, SUTRA_DIR_OUT, 5, got));
	ck_assert_str_eq(got, "ad");
	sutra_snapshot_release(s);
	sutra_snapshot_release(s2);
	done(&st);
}
END_TEST

/* Up to k simple paths, shortest first, as "ad,abcd,...". */
static int kpaths(const sutra_snapshot *s, uint32_t from, uint32_t to, int type,
		  enum sutra_direction dir, unsigned depth, size_t k, char *out)
{
	static uint8_t ids[SUTRA_MAX_PATHS * (SUTRA_MAX_PATH_DEPTH + 1)][16];
	size_t lens[SUTRA_MAX_PATHS], count = 0;
	uint8_t a[16], b[16];
	rstore_id(a, from);
	rstore_id(b, to);
	int rc = sutra_snapshot_paths(s, a, b, type, dir, depth, k, ids, lens, &count);
	size_t w = 0;
	out[0] = 0;
	for (size_t j = 0; rc == 0 && j < count; j++) {
		if (j)
			out[w++] = ',';
		for (size_t i = 0; i < lens[j]; i++)
			out[w++] = (char)('a' + number_of(ids[j * (depth + 1) + i]) - PA);
		out[w] = 0;
	}
	return rc;
}

START_TEST(test_graph_k_paths)
{
	struct rstore st;
	char got[256];
	build_paths(&st);
	sutra_snapshot *s = snap(&st);
	ck_assert_ok(kpaths(s, PA, PD, -1, SUTRA_DIR_OUT, 5, 10, got));
	ck_assert_str_eq(got, "ad,abcd,aefgd");
	ck_assert_ok(kpaths(s, PA, PD, -1, SUTRA_DIR_OUT, 5, 2, got));
	ck_assert_str_eq(got, "ad,abcd");
	ck_assert_ok(kpaths(s, PA, PD, -1, SUTRA_DIR_OUT, 3, 10, got));
	ck_assert_str_eq(got, "ad,abcd");
	ck_assert_ok(kpaths(s, PA, PD, 1, SUTRA_DIR_OUT, 5, 10, got));
	ck_assert_str_eq(got, "abcd,aefgd");
	ck_assert_ok(kpaths(s, PA, PA, -1, SUTRA_DIR_OUT, 5, 10, got));
	ck_assert_str_eq(got, "a");
	ck_assert_err(kpaths(s, PD, PA, -1, SUTRA_DIR_OUT, 5, 10, got), SUTRA_ENOTFOUND);
	ck_assert_err(kpaths(s, PA, PD, -1, SUTRA_DIR_OUT, 5, 0, got), SUTRA_EVALUE);
	ck_assert_err(kpaths(s, PA, PD, -1, SUTRA_DIR_OUT, 5, SUTRA_MAX_PATHS + 1, got),
		      SUTRA_EVALUE);
	ck_assert_err(kpaths(s, 99, PD, -1, SUTRA_DIR_OUT, 5, 3, got), SUTRA_ENOTFOUND);
	sutra_snapshot_release(s);
	done(&st);
}
END_TEST

/* Paths of the same length are each found once; every path is simple. */
START_TEST(test_graph_k_paths_ties_and_cycles)
{
	struct rstore st;
	char got[256];
	rstore_init(&st, DIM);
	for (uint32_t n = PA; n <= PE; n++)
		rstore_concept(&st, n, n - PA, "node", NULL);
	/* a -> b -> d, a -> c -> d, and a cycle b -> e -> a. */
	rstore_assoc(&st, PA, 0, PB, 1, 1, 0.5f);
	rstore_assoc(&st, PA, 0, PC, 2, 1, 0.5f);
	rstore_assoc(&st, PB, 1, PD, 3, 1, 0.5f);
	rstore_assoc(&st, PC, 2, PD, 3, 1, 0.5f);
	rstore_assoc(&st, PB, 1, PE, 4, 1, 0.5f);
	rstore_assoc(&st, PE, 4, PA, 0, 1, 0.5f);
	rstore_commit(&st);
	sutra_snapshot *s = snap(&st);
	ck_assert_ok(kpaths(s, PA, PD, -1, SUTRA_DIR_OUT, 6, 10, got));
	ck_assert_int_eq(strcmp(got, "abd,acd") == 0 || strcmp(got, "acd,abd") == 0, 1);
	/* Both ways, the cycle adds a e b d, and no path repeats a node. */
	ck_assert_ok(kpaths(s, PA, PD, -1, SUTRA_DIR_BOTH, 6, 10, got));
	ck_assert_int_eq(strncmp(got, "abd,acd", 7) == 0 || strncmp(got, "acd,abd", 7) == 0, 1);
	ck_assert_str_eq(got + 7, ",aebd");
	sutra_snapshot_release(s);
	done(&st);
}
END_TEST

TCHECK_MAIN("reader", "graph", 60, test_graph_neighbours_by_type_and_direction,
	    test_graph_neighbours_across_layers, test_graph_neighbours_bad_arguments,
	    test_graph_shortest_path, test_graph_k_paths, test_graph_k_paths_ties_and_cycles)
