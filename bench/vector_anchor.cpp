// SPDX-License-Identifier: MIT
// The hnswlib anchor of sutra-bench-vector: Debian's hnswlib headers behind a C interface.
#include "vector_anchor.h"

#include <hnswlib/hnswlib.h>

struct anchor {
	hnswlib::InnerProductSpace space;
	hnswlib::HierarchicalNSW<float> index;
	anchor(uint32_t dim, uint32_t n, uint32_t m, uint32_t efc)
		: space(dim), index(&space, n, m, efc)
	{
	}
};

struct anchor *anchor_create(uint32_t dim, uint32_t n, uint32_t m, uint32_t ef_construction)
{
	try {
		return new anchor(dim, n, m, ef_construction);
	} catch (...) {
		return nullptr;
	}
}

void anchor_add(struct anchor *a, const float *vec, uint32_t label)
{
	a->index.addPoint(vec, label);
}

void anchor_set_ef(struct anchor *a, uint32_t ef)
{
	a->index.setEf(ef);
}

uint32_t anchor_search(struct anchor *a, const float *q, uint32_t k, uint32_t *labels)
{
	auto pq = a->index.searchKnn(q, k);
	uint32_t n = static_cast<uint32_t>(pq.size());
	for (uint32_t i = n; i > 0; i--) {
		labels[i - 1] = static_cast<uint32_t>(pq.top().second);
		pq.pop();
	}
	return n;
}

void anchor_destroy(struct anchor *a)
{
	delete a;
}

const char *anchor_flags(void)
{
	return BENCH_ANCHOR_FLAGS;
}
