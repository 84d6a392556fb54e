/* SPDX-License-Identifier: MIT */
/* Text postings: building a segment's TERMS and POSTINGS sections, and looking tokens up in place. */
#ifndef LAYOUT_TEXTIDX_H
#define LAYOUT_TEXTIDX_H

/*
 * A segment's text index maps each token (util/tokenize.h) of its live
 * concepts' contents to the set of their ordinals: a CRoaring bitmap in
 * frozen form (32-byte aligned within POSTINGS, so in the file, since
 * sections are 32-aligned). TERMS is an open-addressing hash table of
 * 32-byte slots over the token hash (docs/FORMAT.md section 10.6; for now
 * docs/FORMAT-text.md), whose
 * slots name the token's bytes (in TERMS after the slots) and its
 * bitmap's range in POSTINGS.
 *
 * Reads go through a touch callback before any byte range is used (lazy
 * chunk CRC checks); CRoaring's frozen view checks little, so a bitmap's
 * whole range is touched before it is viewed, and every offset and length
 * read from a slot is bounds-checked first.
 */

#include <stddef.h>
#include <stdint.h>

#include <roaring/roaring.h>

#include "layout/layout.h"

struct layout_textidx_builder;

int layout_textidx_builder_create(struct layout_textidx_builder **out);
void layout_textidx_builder_destroy(struct layout_textidx_builder *b);

/* Tokenizes content and adds ordinal to the postings of each token.
 * Returns 0, -ENOMEM, or SUTRA_ETOOBIG past 2^32 - 2 distinct tokens.
 * (CRoaring 0.2.66 reports no allocation failure of its own.) */
int layout_textidx_add(struct layout_textidx_builder *b, uint32_t ordinal, const char *content,
		       size_t len);

/* Distinct tokens so far. */
uint64_t layout_textidx_terms(const struct layout_textidx_builder *b);

/* Exact sizes (multiples of 64) of the two sections, once every concept is
 * added; then layout_textidx_serialize() fills buffers of those sizes
 * (every byte written; postings should be 32-byte aligned for the
 * bitmaps to be viewable in place). Returns 0, -ENOMEM, or SUTRA_ETOOBIG
 * past 4 GiB of token bytes. */
int layout_textidx_finish(struct layout_textidx_builder *b, uint64_t *terms_len,
			  uint64_t *postings_len);
void layout_textidx_serialize(const struct layout_textidx_builder *b, unsigned char *terms,
			      unsigned char *postings);

/* ---- Reading in place ------------------------------------------------------ */

typedef int (*layout_textidx_touch_fn)(void *arg, unsigned which /* 0 TERMS, 1 POSTINGS */,
				       uint64_t off, uint64_t len, struct sutra_detail *pb);

struct layout_textidx_view {
	const unsigned char *terms, *postings;  /* section starts (borrowed) */
	uint64_t terms_len, postings_len;
	uint64_t terms_file_off, postings_file_off;
	layout_textidx_touch_fn touch;           /* may be NULL */
	void *touch_arg;
	uint64_t nslots, nterms;                 /* from the TERMS header */
};

/* Checks the TERMS header (constant cost). 0 or SUTRA_ECORRUPT. */
int layout_textidx_view_open(struct layout_textidx_view *v, const void *terms, uint64_t terms_len,
			     uint64_t terms_file_off, const void *postings, uint64_t postings_len,
			     uint64_t postings_file_off, layout_textidx_touch_fn touch,
			     void *touch_arg, struct sutra_detail *pb);

/* The postings of a folded token: 1 with *out a frozen view into the
 * mapping (free it with roaring_bitmap_free(); it stays valid while the
 * mapping does), 0 when the token is absent, SUTRA_ECORRUPT, -ENOMEM. */
int layout_textidx_lookup(const struct layout_textidx_view *v, const char *tok, size_t len,
			  roaring_bitmap_t **out, struct sutra_detail *pb);

/* Checks every slot, token and bitmap, and that the layout is exactly the
 * writer's (verify). 0, SUTRA_ECORRUPT or -ENOMEM. */
int layout_textidx_check(const struct layout_textidx_view *v, struct sutra_detail *pb);

#endif /* LAYOUT_TEXTIDX_H */
