/* SPDX-License-Identifier: MIT */
/* Random bytes from the kernel, for store uuids and client ids, and a seeded generator for reproducible choices. */
#ifndef UTIL_RANDOM_H
#define UTIL_RANDOM_H

#include <stddef.h>
#include <stdint.h>

#include "util/hash.h"

/* Fills buf with len bytes from getrandom(2). Returns 0 or -errno. */
int util_random_bytes(void *buf, size_t len);

/* A random RFC 4122 version 4 uuid. Returns 0 or -errno. */
int util_random_uuid(uint8_t uuid[16]);

/* The next value of a seeded splitmix64 sequence (Steele, Lea, Flood 2014),
 * for choices that must be reproducible, such as HNSW node levels: the same
 * seed gives the same sequence on every host. Not for secrets. */
static inline uint64_t util_splitmix64(uint64_t *state)
{
	return util_mix64(*state += 0x9E3779B97F4A7C15ull);
}

#endif /* UTIL_RANDOM_H */
