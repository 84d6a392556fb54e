/* SPDX-License-Identifier: MIT */
/* Text postings: build TERMS and POSTINGS in memory, read them in place (docs/FORMAT-text.md 10.6). */
#include "layout/textidx.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/endian.h"
#include "util/grow.h"
#include "util/tokenize.h"

/* TERMS header (64 bytes) and slot (32 bytes) fields. */
#define TH_MAGIC 0
#define TH_VERSION 4
#define TH_TOKENIZER 8
#define TH_RESERVED0 12
#define TH_NSLOTS 16
#define TH_NTERMS 24
#define TH_TOKENS_OFF 32
#define TH_TOKENS_LEN 40
#define TH_POSTINGS_LEN 48
#define TH_RESERVED1 56
#define TERMS_HEADER 64u
#define TERMS_MAGIC 0x534D5254u /* "TRMS" */
#define TERMS_VERSION 1u
#define TOKENIZER_VERSION 1u    /* section 10.6 rules, Unicode 14.0.0 tables */

#define SL_HASH 0
#define SL_TOKEN_OFF 8
#define SL_TOKEN_LEN 12
#define SL_POST_OFF 16
#define SL_POST_LEN 24
#define SLOT 32u

#define MIN_SLOTS 8u
#define POST_ALIGN 32u

/* ---- Frozen bitmaps ------------------------------------------------------- */

/* The frozen serialization of CRoaring 0.2.66 (little-endian hosts), as
 * roaring_bitmap_frozen_serialize() writes it: the bitset containers
 * (8192 bytes each), then the run containers (4 bytes a run), then the
 * array containers (2 bytes a value), each group in container order; then
 * n u16 keys, n u16 counts (cardinality - 1 for bitsets and arrays, runs
 * for run containers), n u8 type codes, and a u32 whose low 15 bits are
 * the cookie and whose high bits are n. */
#define FROZEN_COOKIE 13766u
#define FZ_BITSET 1u
#define FZ_ARRAY 2u
#define FZ_RUN 3u
#define FZ_MIN 11u /* one array container with one value */

static unsigned popcount64(uint64_t w)
{
	return (unsigned)__builtin_popcountll(w);
}

/* Whether buf[0..len) is a non-empty frozen bitmap that CRoaring can view
 * and that is internally consistent (keys ascending, arrays and runs
 * sorted and within their container, every stored cardinality true), so
 * that no use of the view reads or writes out of bounds, however the
 * bytes were damaged. Costs one pass over the bytes. */
static int frozen_valid(const unsigned char *buf, uint64_t len)
{
	if (len < FZ_MIN)
		return 0;
	uint32_t head = util_get_le32(buf + len - 4);
	uint64_t n = head >> 15;
	if ((head & 0x7FFFu) != FROZEN_COOKIE || n == 0 || n > 65536 || len - 4 < 5 * n)
		return 0;
	const unsigned char *keys = buf + len - 4 - 5 * n, *counts = keys + 2 * n,
			    *types = counts + 2 * n;
	uint64_t bitsets = 0, runs = 0, arrays = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t c = util_get_le16(counts + 2 * i);
		if (i && util_get_le16(keys + 2 * i) <= util_get_le16(keys + 2 * (i - 1)))
			return 0;
		switch (types[i]) {
		case FZ_BITSET: bitsets += 8192; break;
		case FZ_RUN: runs += 4 * c; break;
		case FZ_ARRAY: arrays += 2 * (c + 1); break;
		default: return 0;
		}
	}
	if (bitsets + runs + arrays != len - 4 - 5 * n)
		return 0;
	const unsigned char *pb = buf, *pr = buf + bitsets, *pa = pr + runs;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t c = util_get_le16(counts + 2 * i);
		if (types[i] == FZ_BITSET) {
			uint64_t card = 0;
			for (unsigned w = 0; w < 1024; w++)
				card += popcount64(util_get_le64(pb + 8 * w));
			if (card != c + 1)
				return 0;
			pb += 8192;
		} else if (types[i] == FZ_RUN) {
			uint64_t next = 0; /* the least value the next run may start at */
			if (c == 0)
				return 0;
			for (uint64_t r = 0; r < c; r++) {
				uint64_t start = util_get_le16(pr + 4 * r);
				uint64_t extra = util_get_le16(pr + 4 * r + 2);
				if (start < next || start + extra > 0xFFFF)
					return 0;
				next = start + extra + 2; /* runs neither touch nor overlap */
			}
			pr += 4 * c;
		} else {
			for (uint64_t v = 1; v <= c; v++)
				if (util_get_le16(pa + 2 * v) <= util_get_le16(pa + 2 * (v - 1)))
					return 0;
			pa += 2 * (c + 1);
		}
	}
	return 1;
}

/* ---- Building ------------------------------------------------------------- */

struct term {
	uint64_t hash;
	size_t off;             /* of the token in the arena */
	uint32_t len;
	roaring_bitmap_t *ordinals;
};

struct layout_textidx_builder {
	struct term *terms;
	size_t nterms, capterms;
	uint32_t *map;          /* open addressing: term index + 1, 0 empty */
	size_t mapcap;          /* a power of two, more than twice nterms */
	char *arena;            /* token bytes */
	size_t alen, acap;
	/* Set by finish, cleared by add. */
	int finished;
	size_t *order;          /* term indices, tokens ascending */
	uint64_t *post_off;     /* by position in order */
	uint64_t nslots, tokens_len, terms_len, postings_len;
};

int layout_textidx_builder_create(struct layout_textidx_builder **out)
{
	struct layout_textidx_builder *b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	b->mapcap = 64;
	if (!(b->map = calloc(b->mapcap, sizeof *b->map))) {
		free(b);
		return -ENOMEM;
	}
	*out = b;
	return 0;
}

void layout_textidx_builder_destroy(struct layout_textidx_builder *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nterms; i++)
		roaring_bitmap_free(b->terms[i].ordinals);
	free(b->terms);
	free(b->map);
	free(b->arena);
	free(b->order);
	free(b->post_off);
	free(b);
}

static int grow_map(struct layout_textidx_builder *b)
{
	size_t cap = b->mapcap * 2, mask = cap - 1;
	uint32_t *m = calloc(cap, sizeof *m);
	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < b->nterms; i++) {
		size_t s = (size_t)b->terms[i].hash & mask;
		while (m[s])
			s = (s + 1) & mask;
		m[s] = (uint32_t)i + 1;
	}
	free(b->map);
	b->map = m;
	b->mapcap = cap;
	return 0;
}

struct add_ctx {
	struct layout_textidx_builder *b;
	uint32_t ordinal;
};

static int add_token(void *arg, const char *tok, size_t len)
{
	struct add_ctx *a = arg;
	struct layout_textidx_builder *b = a->b;
	uint64_t h = util_token_hash(tok, len);
	size_t mask = b->mapcap - 1, s = (size_t)h & mask;
	for (; b->map[s]; s = (s + 1) & mask) {
		struct term *t = &b->terms[b->map[s] - 1];
		if (t->hash == h && t->len == len && memcmp(b->arena + t->off, tok, len) == 0) {
			roaring_bitmap_add(t->ordinals, a->ordinal);
			return 0;
		}
	}
	/* A new token. Term indices are stored + 1 in a u32. */
	if (b->nterms >= UINT32_MAX - 1)
		return SUTRA_ETOOBIG;
	if (UTIL_GROW(b->terms, b->capterms, b->nterms + 1, 256) ||
	    UTIL_GROW(b->arena, b->acap, b->alen + len, 4096))
		return -ENOMEM;
	roaring_bitmap_t *r = roaring_bitmap_create();
	if (!r)
		return -ENOMEM;
	roaring_bitmap_add(r, a->ordinal);
	memcpy(b->arena + b->alen, tok, len);
	b->terms[b->nterms] = (struct term){ .hash = h, .off = b->alen, .len = (uint32_t)len,
					     .ordinals = r };
	b->alen += len;
	b->map[s] = (uint32_t)++b->nterms;
	if (2 * b->nterms >= b->mapcap)
		return grow_map(b);
	return 0;
}

int layout_textidx_add(struct layout_textidx_builder *b, uint32_t ordinal, const char *content,
		       size_t len)
{
	struct add_ctx a = { .b = b, .ordinal = ordinal };
	b->finished = 0;
	return util_tokenize(content, len, add_token, &a);
}

uint64_t layout_textidx_terms(const struct layout_textidx_builder *b)
{
	return b->nterms;
}

static int cmp_tokens(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c)
		return c;
	return (alen > blen) - (alen < blen);
}

struct sortkey {
	const char *tok;
	size_t len, index;
};

static int cmp_key(const void *x, const void *y)
{
	const struct sortkey *a = x, *b = y;
	return cmp_tokens(a->tok, a->len, b->tok, b->len);
}

int layout_textidx_finish(struct layout_textidx_builder *b, uint64_t *terms_len,
			  uint64_t *postings_len)
{
	size_t n = b->nterms;
	size_t *order = malloc((n ? n : 1) * sizeof *order);
	uint64_t *post = malloc((n ? n : 1) * sizeof *post);
	struct sortkey *keys = malloc((n ? n : 1) * sizeof *keys);
	if (!order || !post || !keys) {
		free(order);
		free(post);
		free(keys);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		keys[i] = (struct sortkey){ b->arena + b->terms[i].off, b->terms[i].len, i };
	if (n > 1)
		qsort(keys, n, sizeof *keys, cmp_key);
	for (size_t i = 0; i < n; i++)
		order[i] = keys[i].index;
	free(keys);
	uint64_t pos = 0;
	for (size_t i = 0; i < n; i++) {
		roaring_bitmap_t *r = b->terms[order[i]].ordinals;
		roaring_bitmap_run_optimize(r);
		post[i] = pos;
		pos = layout_align_up(pos + roaring_bitmap_frozen_size_in_bytes(r), POST_ALIGN);
	}
	uint64_t nslots = MIN_SLOTS;
	while (nslots < 2 * (uint64_t)n)
		nslots *= 2;
	if (b->alen > UINT32_MAX) { /* slots hold u32 token offsets */
		free(order);
		free(post);
		return SUTRA_ETOOBIG;
	}
	free(b->order);
	free(b->post_off);
	b->order = order;
	b->post_off = post;
	b->nslots = nslots;
	b->tokens_len = b->alen;
	b->terms_len = layout_align_up(TERMS_HEADER + SLOT * nslots + b->alen, 64);
	b->postings_len = layout_align_up(pos, 64);
	b->finished = 1;
	*terms_len = b->terms_len;
	*postings_len = b->postings_len;
	return 0;
}

void layout_textidx_serialize(const struct layout_textidx_builder *b, unsigned char *terms,
			      unsigned char *postings)
{
	uint64_t tokens_off = TERMS_HEADER + SLOT * b->nslots, mask = b->nslots - 1;
	assert(b->finished);
	memset(terms, 0, (size_t)b->terms_len);
	memset(postings, 0, (size_t)b->postings_len);
	util_put_le32(terms + TH_MAGIC, TERMS_MAGIC);
	util_put_le32(terms + TH_VERSION, TERMS_VERSION);
	util_put_le32(terms + TH_TOKENIZER, TOKENIZER_VERSION);
	util_put_le64(terms + TH_NSLOTS, b->nslots);
	util_put_le64(terms + TH_NTERMS, b->nterms);
	util_put_le64(terms + TH_TOKENS_OFF, tokens_off);
	util_put_le64(terms + TH_TOKENS_LEN, b->tokens_len);
	util_put_le64(terms + TH_POSTINGS_LEN, b->postings_len);
	/* Tokens, slots and bitmaps all in token order: the same terms give
	 * the same bytes whatever order they were added in. */
	uint64_t tpos = 0;
	for (size_t i = 0; i < b->nterms; i++) {
		const struct term *t = &b->terms[b->order[i]];
		memcpy(terms + tokens_off + tpos, b->arena + t->off, t->len);
		uint64_t s = t->hash & mask;
		while (util_get_le32(terms + TERMS_HEADER + SLOT * s + SL_TOKEN_LEN))
			s = (s + 1) & mask;
		unsigned char *p = terms + TERMS_HEADER + SLOT * s;
		util_put_le64(p + SL_HASH, t->hash);
		util_put_le32(p + SL_TOKEN_OFF, (uint32_t)tpos);
		util_put_le32(p + SL_TOKEN_LEN, t->len);
		util_put_le64(p + SL_POST_OFF, b->post_off[i]);
		util_put_le64(p + SL_POST_LEN, roaring_bitmap_frozen_size_in_bytes(t->ordinals));
		roaring_bitmap_frozen_serialize(t->ordinals, (char *)postings + b->post_off[i]);
		tpos += t->len;
	}
}

/* ---- Reading -------------------------------------------------------------- */

static int touch(const struct layout_textidx_view *v, unsigned which, uint64_t off, uint64_t len,
		 struct sutra_detail *pb)
{
	return v->touch ? v->touch(v->touch_arg, which, off, len, pb) : 0;
}

static int bad(struct sutra_detail *pb, uint64_t off, const char *what)
{
	util_detail_set(pb, off, "%s", what);
	return SUTRA_ECORRUPT;
}

int layout_textidx_view_open(struct layout_textidx_view *v, const void *terms, uint64_t terms_len,
			     uint64_t terms_file_off, const void *postings, uint64_t postings_len,
			     uint64_t postings_file_off, layout_textidx_touch_fn touch_fn,
			     void *touch_arg, struct sutra_detail *pb)
{
	struct layout_textidx_view w = {
		.terms = terms,
		.postings = postings,
		.terms_len = terms_len,
		.postings_len = postings_len,
		.terms_file_off = terms_file_off,
		.postings_file_off = postings_file_off,
		.touch = touch_fn,
		.touch_arg = touch_arg,
	};
	int rc;
	if (terms_len < TERMS_HEADER || terms_len % 64)
		return bad(pb, terms_file_off, "text TERMS section has an impossible length");
	if (postings_len % 64 || (uintptr_t)postings % POST_ALIGN)
		return bad(pb, postings_file_off, "text POSTINGS section is misaligned");
	if ((rc = touch(&w, 0, 0, TERMS_HEADER, pb)))
		return rc;
	const unsigned char *h = w.terms;
	uint64_t nslots = util_get_le64(h + TH_NSLOTS), nterms = util_get_le64(h + TH_NTERMS);
	uint64_t toff = util_get_le64(h + TH_TOKENS_OFF), tlen = util_get_le64(h + TH_TOKENS_LEN);
	if (util_get_le32(h + TH_MAGIC) != TERMS_MAGIC ||
	    util_get_le32(h + TH_VERSION) != TERMS_VERSION ||
	    util_get_le32(h + TH_TOKENIZER) != TOKENIZER_VERSION ||
	    util_get_le32(h + TH_RESERVED0) || util_get_le64(h + TH_RESERVED1))
		return bad(pb, terms_file_off, "text TERMS header is not version 1");
	if (nslots < MIN_SLOTS || (nslots & (nslots - 1)) ||
	    nslots > (terms_len - TERMS_HEADER) / SLOT || nterms >= nslots ||
	    toff != TERMS_HEADER + SLOT * nslots || tlen > terms_len - toff || nterms > tlen ||
	    (nterms == 0) != (tlen == 0) || layout_align_up(toff + tlen, 64) != terms_len ||
	    util_get_le64(h + TH_POSTINGS_LEN) != postings_len ||
	    (nterms == 0) != (postings_len == 0) || postings_len / FZ_MIN < nterms)
		return bad(pb, terms_file_off, "text TERMS header does not fit its sections");
	w.nslots = nslots;
	w.nterms = nterms;
	*v = w;
	return 0;
}

struct slot {
	uint64_t hash, token_off, post_off, post_len;
	uint32_t token_len;
};

/* Reads slot s (touched first) and bounds-checks what it names: 1 for a
 * used slot, 0 for an empty one, or SUTRA_ECORRUPT. */
static int read_slot(const struct layout_textidx_view *v, uint64_t s, struct slot *sl,
		     struct sutra_detail *pb)
{
	uint64_t off = TERMS_HEADER + SLOT * s;
	int rc = touch(v, 0, off, SLOT, pb);
	if (rc)
		return rc;
	const unsigned char *p = v->terms + off;
	uint64_t tlen = util_get_le64(v->terms + TH_TOKENS_LEN);
	sl->hash = util_get_le64(p + SL_HASH);
	sl->token_off = util_get_le32(p + SL_TOKEN_OFF);
	sl->token_len = util_get_le32(p + SL_TOKEN_LEN);
	sl->post_off = util_get_le64(p + SL_POST_OFF);
	sl->post_len = util_get_le64(p + SL_POST_LEN);
	if (!sl->token_len) {
		if (sl->hash || sl->token_off || sl->post_off || sl->post_len)
			return bad(pb, v->terms_file_off + off, "text TERMS empty slot is not zero");
		return 0;
	}
	/* tlen fits in the section (checked at open). */
	if (sl->token_len > UTIL_TOKEN_MAX || sl->token_off > tlen - sl->token_len ||
	    sl->post_off % POST_ALIGN || sl->post_len < FZ_MIN ||
	    sl->post_off > v->postings_len || sl->post_len > v->postings_len - sl->post_off)
		return bad(pb, v->terms_file_off + off, "text TERMS slot points outside its sections");
	return 1;
}

static int view_postings(const struct layout_textidx_view *v, const struct slot *sl,
			 roaring_bitmap_t **out, struct sutra_detail *pb)
{
	int rc = touch(v, 1, sl->post_off, sl->post_len, pb);
	if (rc)
		return rc;
	const unsigned char *p = v->postings + sl->post_off;
	if (!frozen_valid(p, sl->post_len))
		return bad(pb, v->postings_file_off + sl->post_off,
			   "text POSTINGS entry is not a frozen bitmap");
	/* Checked above, so a failure here can only be the allocation. */
	roaring_bitmap_t *r =
		(roaring_bitmap_t *)roaring_bitmap_frozen_view((const char *)p, (size_t)sl->post_len);
	if (!r)
		return -ENOMEM;
	*out = r;
	return 0;
}

int layout_textidx_lookup(const struct layout_textidx_view *v, const char *tok, size_t len,
			  roaring_bitmap_t **out, struct sutra_detail *pb)
{
	if (len == 0 || len > UTIL_TOKEN_MAX || v->nterms == 0)
		return 0;
	uint64_t h = util_token_hash(tok, len), mask = v->nslots - 1, s = h & mask;
	uint64_t toff = TERMS_HEADER + SLOT * v->nslots;
	for (uint64_t n = 0; n < v->nslots; n++, s = (s + 1) & mask) {
		struct slot sl;
		int rc = read_slot(v, s, &sl, pb);
		if (rc <= 0)
			return rc;
		if (sl.hash != h || sl.token_len != len)
			continue;
		if ((rc = touch(v, 0, toff + sl.token_off, len, pb)))
			return rc;
		if (memcmp(v->terms + toff + sl.token_off, tok, len) != 0)
			continue;
		if ((rc = view_postings(v, &sl, out, pb)))
			return rc;
		return 1;
	}
	return bad(pb, v->terms_file_off, "text TERMS table has no empty slot");
}

struct entry {
	uint64_t slot;
	struct slot sl;
};

static int cmp_entry(const void *x, const void *y)
{
	const struct entry *a = x, *b = y;
	return (a->sl.token_off > b->sl.token_off) - (a->sl.token_off < b->sl.token_off);
}

static int all_zero(const unsigned char *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

struct one_token {
	const char *tok;
	size_t len;
	int seen;
};

static int same_token(void *arg, const char *tok, size_t len)
{
	struct one_token *o = arg;
	o->seen++;
	return o->seen == 1 && len == o->len && memcmp(tok, o->tok, len) == 0 ? 0 : 1;
}

/* Whether tok is a token the tokenizer produces: already folded, one
 * whole token. */
static int canonical(const char *tok, size_t len)
{
	struct one_token o = { .tok = tok, .len = len };
	return util_tokenize(tok, len, same_token, &o) == 0 && o.seen == 1;
}

int layout_textidx_check(const struct layout_textidx_view *v, struct sutra_detail *pb)
{
	uint64_t toff = TERMS_HEADER + SLOT * v->nslots, mask = v->nslots - 1;
	uint64_t tlen = util_get_le64(v->terms + TH_TOKENS_LEN);
	int rc;
	if ((rc = touch(v, 0, 0, v->terms_len, pb)) || (rc = touch(v, 1, 0, v->postings_len, pb)))
		return rc;
	struct entry *e = malloc((v->nterms ? v->nterms : 1) * sizeof *e);
	if (!e)
		return -ENOMEM;
	uint64_t n = 0, run = 0; /* used slots since the last empty one */
	/* A probe starting at a slot's home must reach it without meeting
	 * an empty slot; for the slots before the first empty one the run
	 * wraps around from the end of the table. */
	uint64_t first_empty = v->nslots;
	for (uint64_t s = 0; s < v->nslots; s++) {
		struct slot sl;
		if ((rc = read_slot(v, s, &sl, pb)) < 0)
			goto out;
		if (rc == 0) {
			first_empty = s;
			break;
		}
	}
	if (first_empty == v->nslots) {
		rc = bad(pb, v->terms_file_off, "text TERMS table has no empty slot");
		goto out;
	}
	for (uint64_t k = 1; k <= v->nslots; k++) {
		uint64_t s = (first_empty + k) & mask;
		uint64_t off = TERMS_HEADER + SLOT * s;
		struct slot sl;
		if ((rc = read_slot(v, s, &sl, pb)) < 0)
			goto out;
		if (rc == 0) {
			run = 0;
			continue;
		}
		run++;
		const char *tok = (const char *)v->terms + toff + sl.token_off;
		uint64_t dist = (s - (sl.hash & mask)) & mask;
		if (n == v->nterms || sl.hash != util_token_hash(tok, sl.token_len) ||
		    dist >= run || !canonical(tok, sl.token_len)) {
			rc = bad(pb, v->terms_file_off + off,
				 "text TERMS slot does not hold a reachable, well-formed token");
			goto out;
		}
		e[n].slot = s;
		e[n].sl = sl;
		n++;
	}
	if (n != v->nterms) {
		rc = bad(pb, v->terms_file_off, "text TERMS header miscounts its tokens");
		goto out;
	}
	/* The writer's layout exactly: tokens back to back in ascending
	 * order (so each once), their bitmaps in the same order at the next
	 * 32-byte boundary each, zeros everywhere else. */
	qsort(e, n, sizeof *e, cmp_entry);
	uint64_t tpos = 0, ppos = 0;
	for (uint64_t i = 0; i < n; i++) {
		const struct slot *sl = &e[i].sl;
		uint64_t off = TERMS_HEADER + SLOT * e[i].slot;
		const char *tok = (const char *)v->terms + toff + sl->token_off;
		const char *prev = (const char *)v->terms + toff + (i ? e[i - 1].sl.token_off : 0);
		if (sl->token_off != tpos || sl->post_off != ppos ||
		    (i && cmp_tokens(prev, e[i - 1].sl.token_len, tok, sl->token_len) >= 0)) {
			rc = bad(pb, v->terms_file_off + off, "text TERMS slot is out of order");
			goto out;
		}
		if (!frozen_valid(v->postings + sl->post_off, sl->post_len)) {
			rc = bad(pb, v->postings_file_off + sl->post_off,
				 "text POSTINGS entry is not a frozen bitmap");
			goto out;
		}
		uint64_t end = sl->post_off + sl->post_len;
		uint64_t next = layout_align_up(end, POST_ALIGN);
		if (next > v->postings_len || !all_zero(v->postings + end, next - end)) {
			rc = bad(pb, v->postings_file_off + end, "text POSTINGS padding is not zero");
			goto out;
		}
		tpos += sl->token_len;
		ppos = next;
	}
	if (tpos != tlen || !all_zero(v->terms + toff + tlen, v->terms_len - toff - tlen)) {
		rc = bad(pb, v->terms_file_off + toff + tpos, "text TERMS token bytes do not add up");
		goto out;
	}
	if (layout_align_up(ppos, 64) != v->postings_len ||
	    !all_zero(v->postings + ppos, v->postings_len - ppos)) {
		rc = bad(pb, v->postings_file_off + ppos, "text POSTINGS length does not add up");
		goto out;
	}
	rc = 0;
out:
	free(e);
	return rc;
}
