/* SPDX-License-Identifier: MIT */
/* Tests of the text postings: build, look up against a naive scan, determinism, damaged bytes. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layout/textidx.h"
#include "tests/common/tcheck.h"
#include "util/crc32c.h"
#include "util/endian.h"
#include "util/grow.h"
#include "util/tokenize.h"

/* ---- A corpus and its naive index ----------------------------------------- */

static const char *const words[] = {
	"alpha", "Beta", "GAMMA", "delta", "42", "x2", "Stra\xc3\x9f" "e", "STRA\xe1\xba\x9e" "E",
	"\xce\xa3\xce\x9f\xce\xa6\xce\x9f\xce\xa3", "\xcf\x83\xce\xbf\xcf\x86\xce\xbf\xcf\x82",
	"\xd0\x9c\xd0\x98\xd0\xa0", "\xe6\x97\xa5\xe6\x9c\xac", "cafe\xcc\x81", "caf\xc3\xa9",
	"\xc4\xb0stanbul", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu", "xi",
	"omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};
static const char *const seps[] = { " ", ", ", "! ", "\xf0\x9f\x98\x80", "\x80", " -- ", "\n" };

struct doc {
	uint32_t ordinal;
	char text[512];
	size_t len;
};

struct corpus {
	struct doc *docs;
	size_t n;
};

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static void add_doc(struct corpus *c, uint32_t ordinal, const char *text)
{
	struct doc *d = &c->docs[c->n++];
	d->ordinal = ordinal;
	d->len = strlen(text);
	ck_assert_uint_lt(d->len, sizeof d->text);
	memcpy(d->text, text, d->len + 1);
}

/* ndocs random documents, and with big = 1 two words whose postings are
 * a bitset container ("even") and a run container ("run"). */
static void make_corpus(struct corpus *c, size_t ndocs, int big)
{
	size_t cap = ndocs + (big ? 15000 : 0);
	c->docs = malloc(cap * sizeof *c->docs);
	c->n = 0;
	ck_assert_ptr_nonnull(c->docs);
	rng_state = 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < ndocs; i++) {
		char t[512] = "";
		size_t nw = 1 + rnd(8);
		for (size_t w = 0; w < nw; w++) {
			if (w)
				strcat(t, seps[rnd(sizeof seps / sizeof seps[0])]);
			strcat(t, words[rnd(sizeof words / sizeof words[0])]);
		}
		add_doc(c, (uint32_t)(i * 37 + rnd(37)), t);
	}
	if (big) {
		for (uint32_t k = 0; k < 5000; k++)
			add_doc(c, 200000 + 2 * k, "even");
		for (uint32_t k = 0; k < 10000; k++)
			add_doc(c, 300000 + k, "run");
	}
}

struct tokset {
	char (*tok)[UTIL_TOKEN_MAX + 1];
	size_t n, cap;
};

static int tokset_add(void *arg, const char *tok, size_t len)
{
	struct tokset *s = arg;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->tok[i], tok) == 0)
			return 0;
	ck_assert_int_eq(UTIL_GROW(s->tok, s->cap, s->n + 1, 64), 0);
	memcpy(s->tok[s->n], tok, len + 1);
	s->n++;
	return 0;
}

/* Every distinct token of the corpus. */
static void corpus_tokens(const struct corpus *c, struct tokset *s)
{
	memset(s, 0, sizeof *s);
	for (size_t i = 0; i < c->n; i++)
		util_tokenize(c->docs[i].text, c->docs[i].len, tokset_add, s);
}

struct has_ctx {
	const char *tok;
	int found;
};

static int has_token(void *arg, const char *tok, size_t len)
{
	struct has_ctx *h = arg;
	(void)len;
	if (strcmp(tok, h->tok) == 0) {
		h->found = 1;
		return 1;
	}
	return 0;
}

/* The naive answer: the ordinals of the documents holding tok. */
static roaring_bitmap_t *naive(const struct corpus *c, const char *tok)
{
	roaring_bitmap_t *r = roaring_bitmap_create();
	for (size_t i = 0; i < c->n; i++) {
		struct has_ctx h = { .tok = tok };
		util_tokenize(c->docs[i].text, c->docs[i].len, has_token, &h);
		if (h.found)
			roaring_bitmap_add(r, c->docs[i].ordinal);
	}
	return r;
}

/* ---- Building -------------------------------------------------------------- */

struct built {
	unsigned char *terms, *postings;
	uint64_t terms_len, postings_len;
};

static void build(const struct corpus *c, int reverse, struct built *out)
{
	struct layout_textidx_builder *b;
	ck_assert_ok(layout_textidx_builder_create(&b));
	for (size_t k = 0; k < c->n; k++) {
		const struct doc *d = &c->docs[reverse ? c->n - 1 - k : k];
		ck_assert_ok(layout_textidx_add(b, d->ordinal, d->text, d->len));
	}
	ck_assert_ok(layout_textidx_finish(b, &out->terms_len, &out->postings_len));
	ck_assert_uint_eq(out->terms_len % 64, 0);
	ck_assert_uint_eq(out->postings_len % 64, 0);
	/* As in the file: 32-byte aligned (here 64). */
	out->terms = aligned_alloc(64, out->terms_len + 64);
	out->postings = aligned_alloc(64, out->postings_len + 64);
	ck_assert(out->terms && out->postings);
	/* Garbage first: serialize must write every byte. */
	memset(out->terms, 0xA5, out->terms_len);
	memset(out->postings, 0xA5, out->postings_len);
	layout_textidx_serialize(b, out->terms, out->postings);
	layout_textidx_builder_destroy(b);
}

static void built_free(struct built *b)
{
	free(b->terms);
	free(b->postings);
}

/* A touch callback standing in for the segment's chunk CRCs, with 64-byte
 * chunks so that a damaged byte is caught only by the reads that use it;
 * fail_which/fail_from make it refuse a range outright. */
#define TCHUNK 64u
struct toucher {
	uint32_t *crc[2];
	const unsigned char *base[2];
	uint64_t len[2];
	int fail_which;      /* -1: none */
	uint64_t fail_from;  /* fail touches of fail_which reaching at or past this offset */
	unsigned calls;
};

static void toucher_init(struct toucher *t, const struct built *b)
{
	memset(t, 0, sizeof *t);
	t->fail_which = -1;
	t->base[0] = b->terms;
	t->base[1] = b->postings;
	t->len[0] = b->terms_len;
	t->len[1] = b->postings_len;
	for (int w = 0; w < 2; w++) {
		t->crc[w] = calloc(t->len[w] / TCHUNK + 1, sizeof(uint32_t));
		for (uint64_t c = 0; c < t->len[w] / TCHUNK; c++)
			t->crc[w][c] = util_crc32c(0, t->base[w] + c * TCHUNK, TCHUNK);
	}
}

static void toucher_free(struct toucher *t)
{
	free(t->crc[0]);
	free(t->crc[1]);
}

static int do_touch(void *arg, unsigned which, uint64_t off, uint64_t len,
		    struct sutra_detail *pb)
{
	struct toucher *t = arg;
	t->calls++;
	/* The index must bounds-check before it touches. (Plain checks in
	 * hot paths: Check records every ck_assert.) */
	if (which > 1 || off > t->len[which] || len > t->len[which] - off)
		ck_abort_msg("touch of %u [%llu, +%llu) outside the section", which,
			     (unsigned long long)off, (unsigned long long)len);
	if ((int)which == t->fail_which && off + len > t->fail_from) {
		util_detail_set(pb, off, "touch refused");
		return SUTRA_ECORRUPT;
	}
	if (!len)
		return 0;
	for (uint64_t c = off / TCHUNK; c <= (off + len - 1) / TCHUNK; c++) {
		if (util_crc32c(0, t->base[which] + c * TCHUNK, TCHUNK) != t->crc[which][c]) {
			util_detail_set(pb, c * TCHUNK, "chunk checksum mismatch");
			return SUTRA_ECORRUPT;
		}
	}
	return 0;
}

static int open_view(struct layout_textidx_view *v, const struct built *b, struct toucher *t,
		     struct sutra_detail *pb)
{
	return layout_textidx_view_open(v, b->terms, b->terms_len, 4096, b->postings,
					b->postings_len, 8192, t ? do_touch : NULL, t, pb);
}

/* Uses every value of a looked-up bitmap the way a query would (an array
 * sized by the cardinality), so that a view whose stored counts lie
 * would write out of bounds under ASan. */
static bool count_value(uint32_t value, void *arg)
{
	(void)value;
	++*(uint64_t *)arg;
	return true;
}

static void exercise(const roaring_bitmap_t *r)
{
	uint64_t n = roaring_bitmap_get_cardinality(r), seen = 0;
	roaring_iterate(r, count_value, &seen);
	if (seen != n)
		ck_abort_msg("bitmap holds %llu values but says %llu", (unsigned long long)seen,
			     (unsigned long long)n);
	uint32_t *a = malloc((n ? n : 1) * sizeof *a);
	ck_assert_ptr_nonnull(a);
	roaring_bitmap_to_uint32_array(r, a);
	for (uint64_t i = 0; i < n; i++) {
		if (i && a[i] <= a[i - 1])
			ck_abort_msg("bitmap values out of order");
		/* A run reaching past its container lists values that the
		 * bitmap then says it does not hold. */
		if (!roaring_bitmap_contains(r, a[i]))
			ck_abort_msg("bitmap lists %u but does not contain it", a[i]);
	}
	free(a);
}

/* ---- Tests ------------------------------------------------------------------ */

START_TEST(test_textidx_lookup_matches_naive_scan)
{
	struct corpus c;
	struct tokset ts;
	struct built b;
	struct layout_textidx_view v;
	struct sutra_detail pb = { 0 };
	make_corpus(&c, 3000, 1);
	corpus_tokens(&c, &ts);
	build(&c, 0, &b);
	struct toucher t;
	toucher_init(&t, &b);
	ck_assert_ok(open_view(&v, &b, &t, &pb));
	ck_assert_uint_eq(v.nterms, ts.n);
	for (size_t i = 0; i < ts.n; i++) {
		roaring_bitmap_t *got = NULL, *want = naive(&c, ts.tok[i]);
		int rc = layout_textidx_lookup(&v, ts.tok[i], strlen(ts.tok[i]), &got, &pb);
		ck_assert_msg(rc == 1, "token %s: %d %s", ts.tok[i], rc, pb.what);
		ck_assert_msg(roaring_bitmap_equals(got, want), "token %s differs", ts.tok[i]);
		exercise(got);
		roaring_bitmap_free(got);
		roaring_bitmap_free(want);
	}
	/* Folded forms only; both spellings of Straße fold together. */
	roaring_bitmap_t *r;
	ck_assert_int_eq(layout_textidx_lookup(&v, "stra\xc3\x9f" "e", 7, &r, &pb), 1);
	ck_assert_uint_gt(roaring_bitmap_get_cardinality(r), 0);
	roaring_bitmap_free(r);
	ck_assert_int_eq(layout_textidx_lookup(&v, "even", 4, &r, &pb), 1);
	ck_assert_uint_eq(roaring_bitmap_get_cardinality(r), 5000);
	roaring_bitmap_free(r);
	ck_assert_int_eq(layout_textidx_lookup(&v, "run", 3, &r, &pb), 1);
	ck_assert_uint_eq(roaring_bitmap_get_cardinality(r), 10000);
	ck_assert(roaring_bitmap_contains(r, 309999) && !roaring_bitmap_contains(r, 310000));
	roaring_bitmap_free(r);
	/* Absent: unknown, unfolded, empty, longer than a token can be. */
	static const char *const absent[] = { "zzz", "Alpha", "alph", "alphaa", "", "strasse" };
	for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
		r = (roaring_bitmap_t *)0x1;
		ck_assert_ok(layout_textidx_lookup(&v, absent[i], strlen(absent[i]), &r, &pb));
		ck_assert_ptr_eq(r, (roaring_bitmap_t *)0x1); /* out untouched */
	}
	char longtok[80];
	memset(longtok, 'a', sizeof longtok);
	ck_assert_ok(layout_textidx_lookup(&v, longtok, 80, &r, &pb));
	ck_assert_int_eq(layout_textidx_lookup(&v, longtok, 64, &r, &pb), 1); /* the cut word */
	roaring_bitmap_free(r);
	ck_assert_ok(layout_textidx_check(&v, &pb));
	toucher_free(&t);
	built_free(&b);
	free(ts.tok);
	free(c.docs);
}
END_TEST

START_TEST(test_textidx_deterministic)
{
	struct corpus c;
	struct built a, b, r;
	make_corpus(&c, 500, 1);
	build(&c, 0, &a);
	build(&c, 0, &b);
	build(&c, 1, &r);
	ck_assert_uint_eq(a.terms_len, b.terms_len);
	ck_assert_uint_eq(a.postings_len, b.postings_len);
	ck_assert(memcmp(a.terms, b.terms, a.terms_len) == 0);
	ck_assert(memcmp(a.postings, b.postings, a.postings_len) == 0);
	/* Added in the opposite order: the same terms, the same bytes. */
	ck_assert_uint_eq(a.terms_len, r.terms_len);
	ck_assert_uint_eq(a.postings_len, r.postings_len);
	ck_assert(memcmp(a.terms, r.terms, a.terms_len) == 0);
	ck_assert(memcmp(a.postings, r.postings, a.postings_len) == 0);
	built_free(&a);
	built_free(&b);
	built_free(&r);
	free(c.docs);
}
END_TEST

START_TEST(test_textidx_empty_builder)
{
	struct corpus c = { 0 };
	struct built b;
	struct layout_textidx_view v;
	struct sutra_detail pb = { 0 };
	roaring_bitmap_t *r;
	c.docs = malloc(sizeof *c.docs);
	add_doc(&c, 5, " ,;!\xf0\x9f\x98\x80 "); /* content without a token */
	build(&c, 0, &b);
	ck_assert_uint_eq(b.postings_len, 0);
	ck_assert_uint_eq(b.terms_len, 64 + 8 * 32);
	ck_assert_ok(open_view(&v, &b, NULL, &pb));
	ck_assert_uint_eq(v.nterms, 0);
	ck_assert_ok(layout_textidx_lookup(&v, "a", 1, &r, &pb));
	ck_assert_ok(layout_textidx_check(&v, &pb));
	built_free(&b);
	free(c.docs);

	struct layout_textidx_builder *bl;
	uint64_t tl, pl;
	ck_assert_ok(layout_textidx_builder_create(&bl));
	ck_assert_uint_eq(layout_textidx_terms(bl), 0);
	ck_assert_ok(layout_textidx_finish(bl, &tl, &pl));
	ck_assert_uint_eq(tl, 64 + 8 * 32);
	ck_assert_uint_eq(pl, 0);
	layout_textidx_builder_destroy(bl);
	layout_textidx_builder_destroy(NULL);
}
END_TEST

START_TEST(test_textidx_terms_counts_distinct)
{
	struct layout_textidx_builder *b;
	ck_assert_ok(layout_textidx_builder_create(&b));
	ck_assert_ok(layout_textidx_add(b, 1, "a b A", 5));
	ck_assert_uint_eq(layout_textidx_terms(b), 2);
	ck_assert_ok(layout_textidx_add(b, 2, "B c", 3));
	ck_assert_uint_eq(layout_textidx_terms(b), 3);
	/* Enough tokens to grow the builder's table several times. */
	char w[16];
	for (int i = 0; i < 5000; i++) {
		int n = snprintf(w, sizeof w, "w%d", i);
		ck_assert_ok(layout_textidx_add(b, (uint32_t)i, w, (size_t)n));
	}
	ck_assert_uint_eq(layout_textidx_terms(b), 5003);
	layout_textidx_builder_destroy(b);
}
END_TEST

/* Lookup of every token (and a few absent ones) after damage: each is
 * SUTRA_ECORRUPT or the right answer when crcs is set; with no touch
 * callback, any answer but memory-safe. Returns how many were caught. */
static unsigned lookups_after_damage(const struct corpus *c, const struct tokset *ts,
				     roaring_bitmap_t *const *want, const struct built *b,
				     struct toucher *t)
{
	struct layout_textidx_view v;
	struct sutra_detail pb;
	unsigned caught = 0;
	if (open_view(&v, b, t, &pb) != 0)
		return 1;
	for (size_t i = 0; i <= ts->n; i++) {
		const char *tok = i < ts->n ? ts->tok[i] : "absent";
		roaring_bitmap_t *got = NULL;
		int rc = layout_textidx_lookup(&v, tok, strlen(tok), &got, &pb);
		ck_assert(rc == 0 || rc == 1 || rc == SUTRA_ECORRUPT);
		if (rc == SUTRA_ECORRUPT) {
			caught++;
			continue;
		}
		if (rc == 1)
			exercise(got);
		if (t) {
			ck_assert_int_eq(rc, i < ts->n ? 1 : 0);
			if (rc == 1)
				ck_assert(roaring_bitmap_equals(got, want[i]));
		}
		if (rc == 1)
			roaring_bitmap_free(got);
	}
	int rc = layout_textidx_check(&v, &pb);
	ck_assert(rc == 0 || rc == SUTRA_ECORRUPT);
	(void)c;
	return caught + (rc != 0);
}

START_TEST(test_textidx_flipped_bytes)
{
	struct corpus c;
	struct tokset ts;
	struct built b;
	make_corpus(&c, 40, 0);
	corpus_tokens(&c, &ts);
	build(&c, 0, &b);
	roaring_bitmap_t **want = calloc(ts.n, sizeof *want);
	for (size_t i = 0; i < ts.n; i++)
		want[i] = naive(&c, ts.tok[i]);
	struct toucher t;
	toucher_init(&t, &b);
	unsigned char *sec[2] = { b.terms, b.postings };
	uint64_t len[2] = { b.terms_len, b.postings_len };
	for (int w = 0; w < 2; w++) {
		for (uint64_t i = 0; i < len[w]; i++) {
			for (unsigned m = 0; m < 2; m++) {
				unsigned char mask = m ? 0xFF : (unsigned char)(1u << (i % 8));
				sec[w][i] ^= mask;
				/* With checksums: caught or right. */
				unsigned caught = lookups_after_damage(&c, &ts, want, &b, &t);
				ck_assert_uint_gt(caught, 0); /* check() at least */
				/* Without: never a crash; and every TERMS
				 * byte is covered by check()'s own rules. */
				struct layout_textidx_view v;
				struct sutra_detail pb;
				lookups_after_damage(&c, &ts, want, &b, NULL);
				if (w == 0 && open_view(&v, &b, NULL, &pb) == 0)
					ck_assert_msg(layout_textidx_check(&v, &pb) == SUTRA_ECORRUPT,
						      "TERMS byte %llu ^ %02x not caught",
						      (unsigned long long)i, mask);
				sec[w][i] ^= mask;
			}
		}
	}
	/* Undamaged again: all good. */
	ck_assert_uint_eq(lookups_after_damage(&c, &ts, want, &b, &t), 0);
	for (size_t i = 0; i < ts.n; i++)
		roaring_bitmap_free(want[i]);
	free(want);
	toucher_free(&t);
	built_free(&b);
	free(ts.tok);
	free(c.docs);
}
END_TEST

/* Offsets and lengths set to hostile values, no checksums to hide
 * behind: lookups say SUTRA_ECORRUPT (or a right answer for tokens the
 * damage does not concern), never read outside the sections. */
START_TEST(test_textidx_damaged_offsets)
{
	struct corpus c;
	struct tokset ts;
	struct built b;
	make_corpus(&c, 60, 0);
	corpus_tokens(&c, &ts);
	build(&c, 0, &b);
	roaring_bitmap_t **want = calloc(ts.n, sizeof *want);
	for (size_t i = 0; i < ts.n; i++)
		want[i] = naive(&c, ts.tok[i]);
	uint64_t nslots = util_get_le64(b.terms + 16);
	static const uint64_t values[] = { 1, 31, 32, 33, 64, 0x7FFFFFFF, 0xFFFFFFFF,
					   UINT64_MAX, UINT64_MAX - 31, 1ull << 63 };
	unsigned char *saved = malloc(b.terms_len);
	memcpy(saved, b.terms, b.terms_len);
	/* Header fields. */
	for (unsigned f = 16; f < 64; f += 8) {
		for (size_t k = 0; k < sizeof values / sizeof values[0]; k++) {
			util_put_le64(b.terms + f, values[k]);
			lookups_after_damage(&c, &ts, want, &b, NULL);
			memcpy(b.terms, saved, b.terms_len);
		}
	}
	/* Every field of every used slot. */
	for (uint64_t s = 0; s < nslots; s++) {
		unsigned char *p = b.terms + 64 + 32 * s;
		if (!util_get_le32(p + 12))
			continue;
		for (unsigned f = 0; f < 5; f++) {
			static const unsigned foff[] = { 0, 8, 12, 16, 24 };
			for (size_t k = 0; k < sizeof values / sizeof values[0]; k++) {
				int narrow = foff[f] == 8 || foff[f] == 12;
				uint64_t was = narrow ? util_get_le32(p + foff[f])
						      : util_get_le64(p + foff[f]);
				if ((narrow ? (uint32_t)values[k] : values[k]) == was)
					continue; /* not damage */
				if (narrow)
					util_put_le32(p + foff[f], (uint32_t)values[k]);
				else
					util_put_le64(p + foff[f], values[k]);
				struct layout_textidx_view v;
				struct sutra_detail pb;
				lookups_after_damage(&c, &ts, want, &b, NULL);
				ck_assert_ok(open_view(&v, &b, NULL, &pb));
				ck_assert_err(layout_textidx_check(&v, &pb), SUTRA_ECORRUPT);
				memcpy(b.terms, saved, b.terms_len);
			}
		}
	}
	free(saved);
	for (size_t i = 0; i < ts.n; i++)
		roaring_bitmap_free(want[i]);
	free(want);
	built_free(&b);
	free(ts.tok);
	free(c.docs);
}
END_TEST

/* Damaged bitmaps with no checksum in front of them: the lookup of their
 * token says SUTRA_ECORRUPT or gives a bitmap whose stored counts, runs
 * and arrays are consistent (array, bitset and run containers all). */
START_TEST(test_textidx_damaged_bitmaps)
{
	struct corpus c;
	struct built b;
	struct layout_textidx_view v;
	struct sutra_detail pb;
	make_corpus(&c, 300, 1);
	build(&c, 0, &b);
	ck_assert_ok(open_view(&v, &b, NULL, &pb));
	uint64_t toff = 64 + 32 * v.nslots, flips = 0, caught = 0;
	for (uint64_t s = 0; s < v.nslots; s++) {
		const unsigned char *p = b.terms + 64 + 32 * s;
		uint32_t tlen = util_get_le32(p + 12);
		if (!tlen)
			continue;
		const char *tok = (const char *)b.terms + toff + util_get_le32(p + 8);
		uint64_t off = util_get_le64(p + 16), len = util_get_le64(p + 24);
		uint64_t n = util_get_le32(b.postings + off + len - 4) >> 15;
		uint64_t bitsets = 0;
		for (uint64_t k = 0; k < n; k++)
			bitsets += b.postings[off + len - 4 - n + k] == 1;
		for (uint64_t i = 0; i < len; i++) {
			/* Every byte, but only a sample of the bitset data. */
			if (i < 8192 * bitsets && i % 61)
				continue;
			for (unsigned m = 0; m < 3; m++) {
				unsigned char mask = m == 2 ? 0xFF : (unsigned char)(1u << (m ? 7 : i % 8));
				roaring_bitmap_t *r;
				b.postings[off + i] ^= mask;
				int rc = layout_textidx_lookup(&v, tok, tlen, &r, &pb);
				if (rc != 1 && rc != SUTRA_ECORRUPT)
					ck_abort_msg("lookup gave %d", rc);
				if (rc == 1) {
					exercise(r);
					roaring_bitmap_free(r);
				} else {
					caught++;
				}
				flips++;
				b.postings[off + i] ^= mask;
			}
		}
	}
	/* Most damage is caught; a flipped bit of a bitset or of an array
	 * value that stays in order is a different, well-formed set. */
	ck_assert_uint_gt(caught, flips / 2);
	ck_assert_ok(layout_textidx_check(&v, &pb));
	built_free(&b);
	free(c.docs);
}
END_TEST

START_TEST(test_textidx_touch_failure_propagates)
{
	struct corpus c;
	struct built b;
	struct toucher t;
	struct layout_textidx_view v;
	struct sutra_detail pb;
	roaring_bitmap_t *r;
	make_corpus(&c, 100, 0);
	build(&c, 0, &b);
	toucher_init(&t, &b);
	/* The header. */
	t.fail_which = 0;
	t.fail_from = 0;
	memset(&pb, 0, sizeof pb);
	ck_assert_err(open_view(&v, &b, &t, &pb), SUTRA_ECORRUPT);
	ck_assert_str_eq(pb.what, "touch refused");
	/* The postings: a present token fails, an absent one is still 0. */
	t.fail_which = 1;
	ck_assert_ok(open_view(&v, &b, &t, &pb));
	memset(&pb, 0, sizeof pb);
	ck_assert_err(layout_textidx_lookup(&v, "alpha", 5, &r, &pb), SUTRA_ECORRUPT);
	ck_assert_str_eq(pb.what, "touch refused");
	ck_assert_ok(layout_textidx_lookup(&v, "nothing", 7, &r, &pb));
	ck_assert_err(layout_textidx_check(&v, &pb), SUTRA_ECORRUPT);
	/* The token bytes (after the slots). */
	t.fail_which = 0;
	t.fail_from = 64 + 32 * v.nslots;
	ck_assert_err(layout_textidx_lookup(&v, "alpha", 5, &r, &pb), SUTRA_ECORRUPT);
	/* The slots. */
	t.fail_from = 64;
	ck_assert_err(layout_textidx_lookup(&v, "nothing", 7, &r, &pb), SUTRA_ECORRUPT);
	/* Nothing refused: found, and every read went through the touch. */
	t.fail_which = -1;
	t.calls = 0;
	ck_assert_int_eq(layout_textidx_lookup(&v, "alpha", 5, &r, &pb), 1);
	ck_assert_uint_ge(t.calls, 3); /* slot, token bytes, bitmap */
	roaring_bitmap_free(r);
	toucher_free(&t);
	built_free(&b);
	free(c.docs);
}
END_TEST

/* check() catches slots that are each well-formed but wrong: a slot
 * moved where no probe finds it, a hash that is not the token's. */
START_TEST(test_textidx_check_catches_damaged_slot)
{
	struct corpus c;
	struct built b;
	struct layout_textidx_view v;
	struct sutra_detail pb;
	make_corpus(&c, 200, 0);
	build(&c, 0, &b);
	ck_assert_ok(open_view(&v, &b, NULL, &pb));
	ck_assert_ok(layout_textidx_check(&v, &pb));
	uint64_t n = v.nslots, mask = n - 1;
	unsigned char *saved = malloc(b.terms_len);
	memcpy(saved, b.terms, b.terms_len);
	unsigned moved = 0;
	for (uint64_t s = 0; s < n; s++) {
		unsigned char *p = b.terms + 64 + 32 * s;
		if (!util_get_le32(p + 12))
			continue;
		/* The empty slot farthest from the home: another empty
		 * slot lies between, so the probe stops short of it. */
		uint64_t home = util_get_le64(p) & mask, far = n, empties = 0;
		for (uint64_t d = 0; d < n; d++) {
			uint64_t e = (home + d) & mask;
			if (!util_get_le32(b.terms + 64 + 32 * e + 12)) {
				far = e;
				empties++;
			}
		}
		ck_assert_uint_ge(empties, 2);
		memcpy(b.terms + 64 + 32 * far, p, 32);
		memset(p, 0, 32);
		memset(&pb, 0, sizeof pb);
		ck_assert_err(layout_textidx_check(&v, &pb), SUTRA_ECORRUPT);
		ck_assert_uint_ge(pb.offset, 4096);
		memcpy(b.terms, saved, b.terms_len);
		/* A hash that is not the token's. */
		p[0] ^= 0x40;
		ck_assert_err(layout_textidx_check(&v, &pb), SUTRA_ECORRUPT);
		memcpy(b.terms, saved, b.terms_len);
		moved++;
	}
	ck_assert_uint_gt(moved, 10);
	ck_assert_ok(layout_textidx_check(&v, &pb));
	free(saved);
	built_free(&b);
	free(c.docs);
}
END_TEST

TCHECK_MAIN("layout", "textidx", 600, test_textidx_lookup_matches_naive_scan,
	    test_textidx_deterministic, test_textidx_empty_builder,
	    test_textidx_terms_counts_distinct, test_textidx_flipped_bytes,
	    test_textidx_damaged_offsets, test_textidx_damaged_bitmaps,
	    test_textidx_touch_failure_propagates, test_textidx_check_catches_damaged_slot)
