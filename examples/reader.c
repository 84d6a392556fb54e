/* SPDX-License-Identifier: MIT */
/* The smallest complete reader: a snapshot of a store, its concepts and their neighbours, zero-copy. */
#include <inttypes.h>
#include <stdio.h>

#include "sutra/reader.h"

static const sutra_snapshot *snap;

static int show(void *arg, const struct sutra_concept_view *c)
{
	struct sutra_neighbor nb[8];
	size_t n, total;
	(void)arg;
	printf("  %02x%02x... ordinal %" PRIu32 ": \"%.*s\"", c->id[0], c->id[1], c->ordinal,
	       (int)c->content_len, c->content);
	if (sutra_snapshot_neighbors(snap, c->id, -1, SUTRA_DIR_BOTH, 8, nb, &n, &total) == 0) {
		for (size_t i = 0; i < n; i++)
			printf("%s%s %02x%02x... (type %u, confidence %.2f)", i ? "," : "  ",
			       nb[i].outgoing ? " ->" : " <-", nb[i].id[0], nb[i].id[1], nb[i].type,
			       (double)nb[i].confidence);
	}
	putchar('\n');
	return 0;
}

int main(int argc, char **argv)
{
	sutra_reader *r;
	sutra_snapshot *s;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: sutra-example-reader STORAGE.DAT\n");
		return 2;
	}
	if ((rc = sutra_reader_open(argv[1], &r))) {
		fprintf(stderr, "open %s: %s\n", argv[1], sutra_strerror(rc));
		return 1;
	}
	if ((rc = sutra_snapshot_acquire(r, 0, &s))) {
		fprintf(stderr, "snapshot: %s\n", sutra_strerror(rc));
		sutra_reader_close(r);
		return 1;
	}
	struct sutra_reader_stats st;
	sutra_snapshot_stats(s, &st);
	printf("snapshot of epoch %" PRIu64 ": %" PRIu64 " concepts, %" PRIu64 " associations\n",
	       st.epoch, st.concept_count, st.association_count);
	snap = s;
	rc = sutra_snapshot_foreach(s, show, NULL);

	/* Text search: every concept whose content holds "light". */
	struct sutra_search_hit hits[4];
	size_t n = 0;
	if (rc == 0 && (rc = sutra_snapshot_text_search(s, "Light", 5, SUTRA_TEXT_ANY, 4, hits, &n,
							NULL)) == 0) {
		printf("text search \"Light\": %zu hit(s)\n", n);
		for (size_t i = 0; i < n; i++)
			printf("  %02x...  terms matched %u, strength %.2f\n", hits[i].id[0],
			       hits[i].matched, (double)hits[i].strength);
	}
	/* Vector search with the first hit's own embedding: itself, then its
	 * nearest neighbours by cosine similarity. */
	struct sutra_concept_view cv;
	if (rc == 0 && n > 0 && sutra_snapshot_get(s, hits[0].id, &cv) == 0 && cv.embedding &&
	    (rc = sutra_snapshot_vector_search(s, cv.embedding, cv.vector_dim, 4, 0, NULL, hits,
					       &n)) == 0) {
		printf("vector search (k=4) near %02x...:\n", cv.id[0]);
		for (size_t i = 0; i < n; i++)
			printf("  %02x...  similarity %.4f\n", hits[i].id[0],
			       (double)hits[i].similarity);
	}
	sutra_snapshot_release(s);
	sutra_reader_close(r);
	if (rc) {
		fprintf(stderr, "read: %s\n", sutra_strerror(rc));
		return 1;
	}
	return 0;
}
