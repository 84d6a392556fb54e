/* SPDX-License-Identifier: MIT */
/* The smallest complete writer: learns two concepts and an association through sutra-coordinator. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sutra/client.h"

int main(int argc, char **argv)
{
	sutra_client *c;
	uint64_t epoch = 0;
	uint8_t a[16] = { 0xa1 }, b[16] = { 0xb2 };
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: sutra-example-writer URL   (the coordinator's --listen URL)\n");
		return 2;
	}
	if ((rc = sutra_client_connect(argv[1], NULL, &c))) {
		fprintf(stderr, "connect %s: %s\n", argv[1], sutra_strerror(rc));
		return 1;
	}
	/* Embeddings of the store's dimension (a real caller takes them from
	 * a model; these two point in nearby directions). */
	struct sutra_coord_stats st;
	if ((rc = sutra_client_stats(c, &st)))
		goto fail;
	float *va = calloc(st.vector_dim, sizeof *va), *vb = calloc(st.vector_dim, sizeof *vb);
	if (!va || !vb) {
		rc = -12; /* -ENOMEM */
		goto fail;
	}
	for (uint32_t i = 0; i < st.vector_dim; i++) {
		va[i] = sinf((float)i);
		vb[i] = sinf((float)i) + 0.5f * cosf(3.0f * (float)i);
	}
	const char *text = "photosynthesis turns light into sugar";
	struct sutra_concept_in in = { .id = a, .content = text, .content_len = strlen(text),
				       .embedding = va, .vector_dim = st.vector_dim,
				       .strength = 1.0f, .confidence = 1.0f };
	if ((rc = sutra_client_learn_concept(c, &in, &epoch)))
		goto fail;
	printf("learned concept a1... in epoch %llu\n", (unsigned long long)epoch);

	/* An atomic batch: a second concept and an association, one epoch. */
	sutra_batch *batch = sutra_batch_create();
	in.id = b;
	in.content = "chlorophyll absorbs light";
	in.content_len = strlen(in.content);
	in.embedding = vb;
	if (!batch || (rc = sutra_batch_learn_concept(batch, &in)) ||
	    (rc = sutra_batch_learn_association(batch, a, b, SUTRA_ASSOC_CAUSAL, 0.9f, 1.0f)) ||
	    (rc = sutra_client_commit(c, batch, &epoch))) {
		sutra_batch_destroy(batch);
		goto fail;
	}
	sutra_batch_destroy(batch);
	printf("learned concept b2... and a1 -> b2 (causal) in epoch %llu\n",
	       (unsigned long long)epoch);

	free(va);
	free(vb);
	if ((rc = sutra_client_stats(c, &st)))
		goto fail;
	printf("store: epoch %llu, %llu concepts, %llu associations, %llu bytes\n",
	       (unsigned long long)st.epoch, (unsigned long long)st.concept_count,
	       (unsigned long long)st.association_count, (unsigned long long)st.published_end);
	sutra_client_close(c);
	return 0;
fail:
	fprintf(stderr, "write failed: %s (%s)\n", sutra_strerror(rc), sutra_client_last_error(c));
	sutra_client_close(c);
	return 1;
}
