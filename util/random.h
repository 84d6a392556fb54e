/* SPDX-License-Identifier: MIT */
/* Random bytes from the kernel, for store uuids and client ids. */
#ifndef UTIL_RANDOM_H
#define UTIL_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Fills buf with len bytes from getrandom(2). Returns 0 or -errno. */
int util_random_bytes(void *buf, size_t len);

/* A random RFC 4122 version 4 uuid. Returns 0 or -errno. */
int util_random_uuid(uint8_t uuid[16]);

#endif /* UTIL_RANDOM_H */
