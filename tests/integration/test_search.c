/* SPDX-License-Identifier: MIT */
/* Vector and text search against the real coordinator: recall on real data, exactness under concurrent writes from other processes, filters, errors. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <roaring/roaring.h>

#include "sutra/client.h"
#include "sutra/reader.h"
#include "tests/common/daemon.h"
#include "tests/common/datasets.h"
#include "tests/common/tcheck.h"

#define DIM 16
#define RUN_MS 2500

/* Small segments, so that searches cross several segments and a tail. */
static const char *const small_args[] = { "--vector-dimension", "16", "--segment-threshold-kib",
					  "4", NULL };

static void id_of(uint8_t id[16], uint32_t n)
{
	memset(id, 0, 16);
	memcpy(id, &n, 4);
	id[15] = 0x5E;
}

static uint32_t num_of(const uint8_t id[16])
{
	uint32_t n;
	memcpy(&n, id, 4);
	return n;
}

static uint64_t mix(uint64_t h)
{
	h ^= h >> 30;
	h *= 0xBF58476D1CE4E5B9ull;
	h ^= h >> 27;
	h *= 0x94D049BB133111EBull;
	return h ^ (h >> 31);
}

/* Vector number n, version ver: seeded, in [-0.5, 0.5). */
static void vec_of(float *v, unsigned dim, uint32_t n, uint32_t ver)
{
	for (unsigned i = 0; i < dim; i++)
		v[i] = (float)(mix((uint64_t)n << 32 ^ (uint64_t)ver << 16 ^ i) >> 40) / 16777216.0f -
		       0.5f;
}

static double cosine(const float *a, const float *b, unsigned dim)
{
	double d = 0, na = 0, nb = 0;
	for (unsigned i = 0; i < dim; i++) {
		d += (double)a[i] * (double)b[i];
		na += (double)a[i] * (double)a[i];
		nb += (double)b[i] * (double)b[i];
	}
	return d / sqrt(na * nb);
}

static sutra_snapshot *snap_at(sutra_reader *r, uint64_t epoch)
{
	sutra_snapshot *s;
	ck_assert_ok(sutra_reader_wait_for_epoch(r, epoch, 20000));
	ck_assert_ok(sutra_snapshot_acquire(r, epoch, &s));
	return s;
}

/* Learns concepts [from, to) with vector version ver (every seventh has
 * none) and content "w<n%10> w<n%7> n<n>", in batches. */
static uint64_t learn_range(sutra_client *c, uint32_t from, uint32_t to, uint32_t ver)
{
	sutra_batch *b = sutra_batch_create();
	uint64_t epoch = 0;
	for (uint32_t n = from; n < to; n++) {
		uint8_t id[16];
		float v[DIM];
		char text[64];
		id_of(id, n);
		vec_of(v, DIM, n, ver);
		int len = snprintf(text, sizeof text, "w%u w%u n%u", n % 10, n % 7, n);
		struct sutra_concept_in in = { .id = id, .content = text, .content_len = (size_t)len,
					       .embedding = n % 7 == 3 ? NULL : v,
					       .vector_dim = n % 7 == 3 ? 0 : DIM,
					       .strength = (float)(n % 5), .confidence = 1 };
		ck_assert_ok(sutra_batch_learn_concept(b, &in));
		if (sutra_batch_count(b) == 50 || n + 1 == to) {
			ck_assert_ok(sutra_client_commit(c, b, &epoch));
			sutra_batch_clear(b);
		}
	}
	sutra_batch_destroy(b);
	return epoch;
}

/* Every hit is live in s, has an embedding whose cosine with q is the
 * similarity reported, and hits come most similar first. */
static void check_hits(const sutra_snapshot *s, const float *q, unsigned dim,
		       const struct sutra_search_hit *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct sutra_concept_view cv;
		ck_assert_msg(sutra_snapshot_get(s, h[i].id, &cv) == 0,
			      "hit %zu (concept %u) is not live in the snapshot", i, num_of(h[i].id));
		ck_assert_ptr_nonnull(cv.embedding);
		ck_assert_uint_eq(cv.ordinal, h[i].ordinal);
		double want = cosine(q, cv.embedding, dim);
		ck_assert_msg(fabs(want - (double)h[i].similarity) < 1e-4,
			      "hit %zu (concept %u): similarity %f, its current vector gives %f", i,
			      num_of(h[i].id), (double)h[i].similarity, want);
		ck_assert(h[i].strength == cv.strength);
		if (i)
			ck_assert(h[i - 1].similarity >= h[i].similarity);
	}
}

/* ---- Vectors: exact answers across segments and the tail ---------------- */

struct live {
	uint32_t n;
	uint32_t ver;
};

/* The exact top k of the live concepts with vectors (ver[n] = 0: absent). */
static size_t exact_top(const uint32_t *ver, uint32_t count, const float *q, size_t k,
			const roaring_bitmap_t *filter, const uint32_t *ordinal, uint32_t *out)
{
	double *sim = malloc(count * sizeof *sim);
	size_t m = 0;
	for (uint32_t n = 0; n < count; n++) {
		float v[DIM];
		sim[n] = -3;
		if (!ver[n] || n % 7 == 3)
			continue;
		if (filter && !roaring_bitmap_contains(filter, ordinal[n]))
			continue;
		vec_of(v, DIM, n, ver[n]);
		sim[n] = cosine(q, v, DIM);
	}
	for (; m < k; m++) {
		uint32_t b = UINT32_MAX;
		for (uint32_t n = 0; n < count; n++)
			if (sim[n] > -2 && (b == UINT32_MAX || sim[n] > sim[b]))
				b = n;
		if (b == UINT32_MAX)
			break;
		out[m] = b;
		sim[b] = -3;
	}
	free(sim);
	return m;
}

START_TEST(test_search_vectors_exact_across_layers)
{
	struct tdaemon d;
	sutra_client *c;
	sutra_reader *r;
	enum { N = 600 };
	uint32_t ver[N] = { 0 }, ordinal[N] = { 0 };
	ck_assert_ok(tdaemon_mkdir(&d));
	ck_assert_ok(tdaemon_start(&d, small_args));
	ck_assert_ok(sutra_client_connect(d.url, NULL, &c));
	uint64_t epoch = learn_range(c, 0, N, 1);
	for (uint32_t n = 0; n < N; n++)
		ver[n] = 1;
	/* Updates (new vectors) and deletes, landing in newer layers. */
	sutra_batch *b = sutra_batch_create();
	for (uint32_t n = 0; n < N; n += 10) {
		uint8_t id[16];
		id_of(id, n);
		ck_assert_ok(sutra_batch_delete_concept(b, id));
		ver[n] = 0;
	}
	ck_assert_ok(sutra_client_commit(c, b, &epoch));
	ck_assert_ok(sutra_reader_open(d.data, &r));
	/* The updates, written again until a snapshot right after them sees
	 * them in the tail or a newer segment than the first: an idle second
	 * lets the coordinator merge everything into one segment. */
	sutra_snapshot *s = NULL;
	struct sutra_reader_stats st = { 0 };
	for (int attempt = 0; attempt < 5; attempt++) {
		sutra_batch_clear(b);
		for (uint32_t n = 5; n < N; n += 10) {
			uint8_t id[16];
			float v[DIM];
			char text[32];
			id_of(id, n);
			vec_of(v, DIM, n, 2);
			int len = snprintf(text, sizeof text, "updated n%u", n);
			struct sutra_concept_in in = { .id = id, .content = text,
						       .content_len = (size_t)len,
						       .embedding = n % 7 == 3 ? NULL : v,
						       .vector_dim = n % 7 == 3 ? 0 : DIM,
						       .strength = 1, .confidence = 1 };
			ck_assert_ok(sutra_batch_learn_concept(b, &in));
			ver[n] = 2;
		}
		ck_assert_ok(sutra_client_commit(c, b, &epoch));
		sutra_snapshot_release(s);
		s = snap_at(r, epoch);
		sutra_snapshot_stats(s, &st);
		if (st.segment_count >= 2 || (st.segment_count == 1 && st.tail_bytes >= 1024))
			break;
	}
	sutra_batch_destroy(b);
	ck_assert_msg(st.segment_count >= 2 || (st.segment_count == 1 && st.tail_bytes >= 1024),
		      "%u segments and %" PRIu64 " tail bytes: the test wants several layers",
		      st.segment_count, st.tail_bytes);
	for (uint32_t n = 0; n < N; n++) {
		uint8_t id[16];
		struct sutra_concept_view cv;
		id_of(id, n);
		if (ver[n])
			ck_assert_ok(sutra_snapshot_get(s, id, &cv));
		else
			ck_assert_err(sutra_snapshot_get(s, id, &cv), SUTRA_ENOTFOUND);
		ordinal[n] = ver[n] ? cv.ordinal : UINT32_MAX;
	}

	struct sutra_search_hit h[SUTRA_MAX_K];
	size_t n = 0, agree = 0, total = 0;
	for (uint32_t qi = 0; qi < 60; qi++) {
		float q[DIM];
		uint32_t want[10];
		vec_of(q, DIM, 100000 + qi, 9);
		ck_assert_ok(sutra_snapshot_vector_search(s, q, DIM, 10, 200, NULL, h, &n));
		ck_assert_uint_eq(n, 10);
		check_hits(s, q, DIM, h, n);
		size_t m = exact_top(ver, N, q, 10, NULL, ordinal, want);
		for (size_t i = 0; i < m; i++)
			for (size_t j = 0; j < n; j++)
				agree += num_of(h[j].id) == want[i];
		total += m;
	}
	ck_assert_msg(agree * 100 >= total * 95, "recall@10 at ef 200: %zu of %zu", agree, total);

	/* Updated vectors are found by their new values only. */
	for (uint32_t k = 5; k < N; k += 10) {
		float q[DIM];
		if (k % 7 == 3)
			continue;
		vec_of(q, DIM, k, 2);
		ck_assert_ok(sutra_snapshot_vector_search(s, q, DIM, 3, 64, NULL, h, &n));
		ck_assert_uint_eq(num_of(h[0].id), k);
		ck_assert(h[0].similarity > 0.9999f);
		vec_of(q, DIM, k, 1);
		ck_assert_ok(sutra_snapshot_vector_search(s, q, DIM, 3, 64, NULL, h, &n));
		check_hits(s, q, DIM, h, n); /* k is there only by its new vector's similarity */
	}

	/* k beyond the store: every live concept with a vector, once. */
	float q1[DIM] = { 1 };
	ck_assert_ok(sutra_snapshot_vector_search(s, q1, DIM, SUTRA_MAX_K, 0, NULL, h, &n));
	size_t with_vec = 0;
	for (uint32_t k = 0; k < N; k++)
		with_vec += ver[k] && k % 7 != 3;
	ck_assert_uint_eq(n, with_vec);
	roaring_bitmap_t *seen = roaring_bitmap_create();
	for (size_t i = 0; i < n; i++) {
		ck_assert(!roaring_bitmap_contains(seen, h[i].ordinal));
		roaring_bitmap_add(seen, h[i].ordinal);
	}
	roaring_bitmap_free(seen);

	/* Filters: a selective one is answered exactly; a broad one well. */
	roaring_bitmap_t *sel = roaring_bitmap_create(), *broad = roaring_bitmap_create();
	for (uint32_t k = 0; k < N; k++) {
		if (ordinal[k] == UINT32_MAX)
			continue;
		if (k % 37 == 1)
			roaring_bitmap_add(sel, ordinal[k]);
		if (k % 2 == 0)
			roaring_bitmap_add(broad, ordinal[k]);
	}
	roaring_bitmap_add(sel, 99999999); /* an ordinal nobody has */
	for (uint32_t qi = 0; qi < 20; qi++) {
		float q[DIM];
		uint32_t want[10];
		vec_of(q, DIM, 200000 + qi, 9);
		ck_assert_ok(sutra_snapshot_vector_search(s, q, DIM, 10, 0, sel, h, &n));
		check_hits(s, q, DIM, h, n);
		size_t m = exact_top(ver, N, q, 10, sel, ordinal, want);
		ck_assert_uint_eq(n, m);
		for (size_t i = 0; i < m; i++)
			ck_assert_uint_eq(num_of(h[i].id), want[i]);
		ck_assert_ok(sutra_snapshot_vector_search(s, q, DIM, 10, 100, broad, h, &n));
		check_hits(s, q, DIM, h, n);
		m = exact_top(ver, N, q, 10, broad, ordinal, want);
		ck_assert_uint_eq(n, 10);
		size_t ok = 0;
		for (size_t i = 0; i < n; i++) {
			ck_assert(roaring_bitmap_contains(broad, h[i].ordinal));
			for (size_t j = 0; j < m; j++)
				ok += num_of(h[i].id) == want[j];
		}
		ck_assert_msg(ok >= 9, "broad filter: %zu of 10", ok);
	}
	roaring_bitmap_free(sel);
	roaring_bitmap_free(broad);

	/* Bad queries: clear errors. */
	float q[DIM] = { 1 };
	ck_assert_err(sutra_snapshot_vector_search(s, q, DIM - 1, 10, 0, NULL, h, &n), SUTRA_EDIM);
	ck_assert_err(sutra_snapshot_vector_search(s, q, DIM, 0, 0, NULL, h, &n), SUTRA_EVALUE);
	ck_assert_err(sutra_snapshot_vector_search(s, q, DIM, SUTRA_MAX_K + 1, 0, NULL, h, &n),
	              SUTRA_EVALUE);
	q[3] = NAN;
	ck_assert_err(sutra_snapshot_vector_search(s, q, DIM, 10, 0, NULL, h, &n), SUTRA_EVALUE);
	q[3] = INFINITY;
	ck_assert_err(sutra_snapshot_vector_search(s, q, DIM, 10, 0, NULL, h, &n), SUTRA_EVALUE);
	memset(q, 0, sizeof q);
	ck_assert_err(sutra_snapshot_vector_search(s, q, DIM, 10, 0, NULL, h, &n), SUTRA_EVALUE);

	/* The coordinator refuses a vector with no direction. */
	uint8_t id[16];
	id_of(id, 777777);
	struct sutra_concept_in zero = { .id = id, .content = "zero", .content_len = 4,
					 .embedding = q, .vector_dim = DIM, .strength = 1,
					 .confidence = 1 };
	ck_assert_err(sutra_client_learn_concept(c, &zero, NULL), SUTRA_EVALUE);
	ck_assert_ptr_nonnull(strstr(sutra_client_last_error(c), "zero"));

	sutra_snapshot_release(s);
	sutra_reader_close(r);
	sutra_client_close(c);
	ck_assert_ok(tdaemon_stop(&d));
	tdaemon_cleanup(&d);
}
END_TEST

/* ---- Text ------------------------------------------------------------------ */

static size_t text_hits(const sutra_snapshot *s, const char *q, enum sutra_text_mode mode,
			struct sutra_search_hit *h, size_t limit, size_t *total)
{
	size_t n = 0;
	ck_assert_ok(sutra_snapshot_text_search(s, q, strlen(q), mode, limit, h, &n, total));
	return n;
}

START_TEST(test_search_text_across_layers)
{
	struct tdaemon d;
	sutra_client *c;
	sutra_reader *r;
	enum { N = 400 };
	ck_assert_ok(tdaemon_mkdir(&d));
	ck_assert_ok(tdaemon_start(&d, small_args));
	ck_assert_ok(sutra_client_connect(d.url, NULL, &c));
	learn_range(c, 0, N, 1);
	/* Rewrites and deletes in newer layers; then a tail. */
	uint64_t epoch = 0;
	for (uint32_t n = 0; n < N; n += 20) {
		uint8_t id[16];
		id_of(id, n);
		if (n % 40 == 0) {
			ck_assert_ok(sutra_client_delete_concept(c, id, &epoch));
		} else {
			const char *t = "Ünïcode STRASSE, rewritten!";
			struct sutra_concept_in in = { .id = id, .content = t, .content_len = strlen(t),
						       .strength = 9, .confidence = 1 };
			ck_assert_ok(sutra_client_learn_concept(c, &in, &epoch));
		}
	}
	ck_assert_ok(sutra_reader_open(d.data, &r));
	sutra_snapshot *s = snap_at(r, epoch);
	struct sutra_search_hit h[SUTRA_MAX_K];
	size_t total, n;

	/* "w3": n % 10 == 3 or n % 7 == 3, minus rewritten ones (n % 20 == 0
	 * never has n % 10 == 3; n % 7 == 3 with n % 20 == 0 was rewritten). */
	size_t want = 0, want_and = 0;
	for (uint32_t k = 0; k < N; k++) {
		if (k % 20 == 0)
			continue;
		want += k % 10 == 3 || k % 7 == 3;
		want_and += k % 10 == 3 && k % 7 == 3;
	}
	n = text_hits(s, "w3", SUTRA_TEXT_ANY, h, SUTRA_MAX_K, &total);
	ck_assert_uint_eq(total, want);
	ck_assert_uint_eq(n, want);
	/* AND: both terms; OR ranks two-term matches first, by strength then. */
	n = text_hits(s, "W3 w3", SUTRA_TEXT_ALL, h, SUTRA_MAX_K, &total);
	ck_assert_uint_eq(total, want);
	n = text_hits(s, "w3 w4", SUTRA_TEXT_ALL, h, SUTRA_MAX_K, &total);
	size_t w34 = 0;
	for (uint32_t k = 0; k < N; k++)
		w34 += k % 20 && ((k % 10 == 3 && k % 7 == 4) || (k % 10 == 4 && k % 7 == 3));
	ck_assert_uint_eq(total, w34);
	n = text_hits(s, "w3 w4", SUTRA_TEXT_ANY, h, SUTRA_MAX_K, &total);
	for (size_t i = 0; i < n; i++) {
		ck_assert(i < w34 ? h[i].matched == 2 : h[i].matched == 1);
		if (i && h[i].matched == h[i - 1].matched)
			ck_assert(h[i].strength <= h[i - 1].strength);
	}
	/* A limit keeps the best. */
	struct sutra_search_hit top[3];
	ck_assert_ok(sutra_snapshot_text_search(s, "w3 w4", 5, SUTRA_TEXT_ANY, 3, top, &n, NULL));
	ck_assert_uint_eq(n, 3);
	for (size_t i = 0; i < 3; i++)
		ck_assert_mem_eq(top[i].id, h[i].id, 16);
	/* Rewritten contents: old words gone, new words there, case-folded. */
	n = text_hits(s, "n20", SUTRA_TEXT_ANY, h, 10, &total);
	ck_assert_uint_eq(total, 0);
	n = text_hits(s, "n21", SUTRA_TEXT_ANY, h, 10, &total);
	ck_assert_uint_eq(total, 1);
	ck_assert_uint_eq(num_of(h[0].id), 21);
	n = text_hits(s, "ünÏcode rewritten", SUTRA_TEXT_ALL, h, SUTRA_MAX_K, &total);
	ck_assert_uint_eq(total, N / 40);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(num_of(h[i].id) % 40, 20);
	/* Deleted: gone. A query with no token matches nothing. */
	n = text_hits(s, "n40", SUTRA_TEXT_ANY, h, 10, &total);
	ck_assert_uint_eq(total, 0);
	n = text_hits(s, " ,.;", SUTRA_TEXT_ANY, h, 10, &total);
	ck_assert_uint_eq(total, 0);
	ck_assert_err(sutra_snapshot_text_search(s, "x", 1, 7, 10, h, &n, NULL), SUTRA_EVALUE);
	ck_assert_err(sutra_snapshot_text_search(s, "x", 1, SUTRA_TEXT_ANY, 0, h, &n, NULL),
	              SUTRA_EVALUE);

	/* Combined: the hits of a text query as the filter of a vector search. */
	roaring_bitmap_t *f;
	ck_assert_ok(sutra_snapshot_text_filter(s, "w3", 2, SUTRA_TEXT_ANY, &f));
	ck_assert_uint_eq(roaring_bitmap_get_cardinality(f), want);
	float q[DIM];
	vec_of(q, DIM, 424242, 1);
	ck_assert_ok(sutra_snapshot_vector_search(s, q, DIM, 20, 0, f, h, &n));
	check_hits(s, q, DIM, h, n);
	for (size_t i = 0; i < n; i++) {
		uint32_t k = num_of(h[i].id);
		ck_assert(k % 10 == 3 || k % 7 == 3);
		ck_assert(roaring_bitmap_contains(f, h[i].ordinal));
	}
	roaring_bitmap_free(f);

	sutra_snapshot_release(s);
	sutra_reader_close(r);
	sutra_client_close(c);
	ck_assert_ok(tdaemon_stop(&d));
	tdaemon_cleanup(&d);
}
END_TEST

/* ---- Searches from other processes while a writer changes the store ------ */

/*
 * The writer (a process) learns concepts with vector version 1, rewrites
 * them with version 2 and deletes them, in a rolling window, for RUN_MS.
 * Each searcher (a process) takes snapshots and checks every hit: live in
 * its snapshot, similarity equal to the cosine with the snapshot's current
 * vector (so never an old vector), and the concept's own current vector
 * finds it first.
 */
static int writer_main(const char *url)
{
	sutra_client *c;
	if (sutra_client_connect(url, NULL, &c))
		return 3;
	sutra_batch *b = sutra_batch_create();
	double end = tdaemon_now_s() + RUN_MS / 1000.0;
	for (uint32_t n = 0; tdaemon_now_s() < end && n < 1000000; n += 10) {
		sutra_batch_clear(b);
		for (uint32_t k = n; k < n + 10; k++) {
			uint8_t id[16];
			float v[DIM];
			id_of(id, k);
			vec_of(v, DIM, k, 1);
			struct sutra_concept_in in = { .id = id, .content = "c", .content_len = 1,
						       .embedding = v, .vector_dim = DIM,
						       .strength = 1, .confidence = 1 };
			if (sutra_batch_learn_concept(b, &in))
				return 4;
			if (k >= 60) { /* rewrite k - 60 with version 2 */
				id_of(id, k - 60);
				vec_of(v, DIM, k - 60, 2);
				if (sutra_batch_learn_concept(b, &in))
					return 4;
			}
			if (k >= 150) {
				id_of(id, k - 150);
				if (sutra_batch_delete_concept(b, id))
					return 4;
			}
		}
		if (sutra_client_commit(c, b, NULL))
			return 5;
	}
	sutra_batch_destroy(b);
	sutra_client_close(c);
	return 0;
}

static int searcher_main(const char *path)
{
	sutra_reader *r;
	struct sutra_search_hit h[20];
	if (sutra_reader_open(path, &r))
		return 3;
	double end = tdaemon_now_s() + RUN_MS / 1000.0 + 0.5;
	uint64_t searches = 0;
	for (uint32_t it = 0; tdaemon_now_s() < end; it++) {
		sutra_snapshot *s;
		size_t n;
		if (sutra_snapshot_acquire(r, 0, &s))
			return 4;
		float q[DIM];
		vec_of(q, DIM, 5000000 + it, 3);
		int rc = sutra_snapshot_vector_search(s, q, DIM, 20, 64, NULL, h, &n);
		if (rc)
			return 5;
		for (size_t i = 0; i < n; i++) {
			struct sutra_concept_view cv;
			if (sutra_snapshot_get(s, h[i].id, &cv)) {
				fprintf(stderr, "searcher: hit %u not live at epoch %" PRIu64 "\n",
					num_of(h[i].id), sutra_snapshot_epoch(s));
				return 6;
			}
			if (fabs(cosine(q, cv.embedding, DIM) - (double)h[i].similarity) > 1e-4) {
				fprintf(stderr, "searcher: hit %u has a stale similarity\n",
					num_of(h[i].id));
				return 7;
			}
			/* Its own current vector finds it first. */
			struct sutra_search_hit one[5];
			size_t m;
			if (sutra_snapshot_vector_search(s, cv.embedding, DIM, 5, 64, NULL, one, &m) ||
			    m == 0 || memcmp(one[0].id, h[i].id, 16) != 0) {
				fprintf(stderr, "searcher: concept %u not found by its vector\n",
					num_of(h[i].id));
				return 8;
			}
		}
		sutra_snapshot_release(s);
		searches++;
		sutra_reader_refresh(r, NULL);
	}
	sutra_reader_close(r);
	return searches > 10 ? 0 : 9;
}

START_TEST(test_search_while_writing)
{
	struct tdaemon d;
	ck_assert_ok(tdaemon_mkdir(&d));
	ck_assert_ok(tdaemon_start(&d, small_args));
	/* Something to search from the start. */
	sutra_client *c;
	ck_assert_ok(sutra_client_connect(d.url, NULL, &c));
	uint8_t id[16];
	float v[DIM];
	id_of(id, 99999999);
	vec_of(v, DIM, 99999999, 1);
	struct sutra_concept_in in = { .id = id, .content = "c", .content_len = 1, .embedding = v,
				       .vector_dim = DIM, .strength = 1, .confidence = 1 };
	ck_assert_ok(sutra_client_learn_concept(c, &in, NULL));
	sutra_client_close(c);

	/* argv[0] first: the children see argv[1] as their role. */
	const char *wargv[] = { "test_int_search", "search-writer", d.url, NULL };
	const char *sargv[] = { "test_int_search", "search-reader", d.data, NULL };
	pid_t w = tdaemon_spawn_self(wargv, -1, -1);
	pid_t rd[2] = { tdaemon_spawn_self(sargv, -1, -1), tdaemon_spawn_self(sargv, -1, -1) };
	ck_assert_int_gt(w, 0);
	ck_assert_ok(tdaemon_reap(w));
	for (int i = 0; i < 2; i++)
		ck_assert_ok(tdaemon_reap(rd[i]));
	ck_assert_ok(tdaemon_stop(&d));
	tdaemon_cleanup(&d);
}
END_TEST

/* ---- Recall on real data through the store ----------------------------------- */

static void recall_run(const float *base, size_t n, const float *queries, size_t nq, unsigned dim,
		       const char *name)
{
	struct tdaemon d;
	sutra_client *c;
	sutra_reader *r;
	char dimarg[16];
	snprintf(dimarg, sizeof dimarg, "%u", dim);
	const char *args[] = { "--vector-dimension", dimarg, NULL };
	ck_assert_ok(tdaemon_mkdir(&d));
	ck_assert_ok(tdaemon_start(&d, args));
	ck_assert_ok(sutra_client_connect(d.url, NULL, &c));
	sutra_batch *b = sutra_batch_create();
	uint64_t epoch = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t id[16];
		id_of(id, i);
		struct sutra_concept_in in = { .id = id, .content = "v", .content_len = 1,
					       .embedding = base + (size_t)i * dim, .vector_dim = dim,
					       .strength = 1, .confidence = 1 };
		ck_assert_ok(sutra_batch_learn_concept(b, &in));
		if (sutra_batch_count(b) == 200 || i + 1 == n) {
			ck_assert_ok(sutra_client_commit(c, b, &epoch));
			sutra_batch_clear(b);
		}
	}
	sutra_batch_destroy(b);
	ck_assert_ok(sutra_reader_open(d.data, &r));
	/* Once idle, the coordinator flushes the tail and merges: wait for
	 * one segment holding everything, so that the graph is searched. The
	 * tail then holds only the coordinator's empty commits (64 bytes
	 * each), far less than one concept with its vector. */
	struct sutra_reader_stats st = { 0 };
	for (int i = 0; i < 300; i++) {
		sutra_snapshot *s = snap_at(r, epoch);
		sutra_snapshot_stats(s, &st);
		sutra_snapshot_release(s);
		if (st.segment_count == 1 && st.tail_bytes < 1024)
			break;
		usleep(100000);
		sutra_reader_refresh(r, NULL);
	}
	ck_assert_msg(st.segment_count == 1 && st.tail_bytes < 1024,
		      "%s: the store did not settle into one segment (%u segments, %" PRIu64
		      " tail bytes)", name, st.segment_count, st.tail_bytes);
	sutra_snapshot *s = snap_at(r, epoch);
	struct sutra_search_hit h[10];
	size_t agree = 0;
	for (size_t qi = 0; qi < nq; qi++) {
		size_t want[10], got;
		const float *q = queries + qi * dim;
		tdata_exact_knn(base, n, dim, q, 10, want);
		ck_assert_ok(sutra_snapshot_vector_search(s, q, dim, 10, 0, NULL, h, &got));
		ck_assert_uint_eq(got, 10);
		for (size_t i = 0; i < 10; i++)
			for (size_t j = 0; j < 10; j++)
				agree += num_of(h[j].id) == want[i];
	}
	double recall = (double)agree / (double)(nq * 10);
	printf("%s: recall@10 at the default ef (%u) over %zu vectors, %zu queries: %.4f\n", name,
	       SUTRA_DEFAULT_EF, n, nq, recall);
	ck_assert_msg(recall >= 0.95, "%s: recall@10 %.4f below 0.95", name, recall);
	sutra_snapshot_release(s);
	sutra_reader_close(r);
	sutra_client_close(c);
	ck_assert_ok(tdaemon_stop(&d));
	tdaemon_cleanup(&d);
}

START_TEST(test_search_recall_fashion_mnist)
{
	float *base, *queries;
	ck_assert_ok(tdata_fashion(0, 10000, &base));
	ck_assert_ok(tdata_fashion(1, 200, &queries));
	recall_run(base, 10000, queries, 200, TDATA_FASHION_DIM, "fashion-mnist");
	free(base);
	free(queries);
}
END_TEST

START_TEST(test_search_recall_fiori)
{
	float *base;
	ck_assert_ok(tdata_fiori(&base));
	/* Every document as a query: its neighbours among the others. */
	recall_run(base, TDATA_FIORI_COUNT, base, TDATA_FIORI_COUNT, TDATA_FIORI_DIM, "fiori");
	free(base);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "search-writer") == 0)
		return writer_main(argv[2]);
	if (argc == 3 && strcmp(argv[1], "search-reader") == 0)
		return searcher_main(argv[2]);
	int recall = argc == 3 && strcmp(argv[1], "--recall") == 0;
	if (recall && tdata_missing(argv[2])) {
		/* One recall test on a real data set is its own meson test:
		 * when the data is not on this machine it is skipped (exit
		 * 77) with the reason, never failed. */
		printf("SKIP: %s\n", tdata_missing(argv[2]));
		return 77;
	}
	Suite *s = suite_create("integration");
	TCase *tc = tcase_create("search");
	tcase_set_timeout(tc, 600);
	if (recall) {
		tcase_add_test(tc, strcmp(argv[2], "fashion") == 0 ? test_search_recall_fashion_mnist
								  : test_search_recall_fiori);
	} else {
		tcase_add_test(tc, test_search_vectors_exact_across_layers);
		tcase_add_test(tc, test_search_text_across_layers);
		tcase_add_test(tc, test_search_while_writing);
	}
	suite_add_tcase(s, tc);
	return tcheck_run_suite(s);
}
