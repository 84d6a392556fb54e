/* SPDX-License-Identifier: MIT */
/* CRC32C (Castagnoli), the checksum of every checksummed structure on disk. */
#ifndef UTIL_CRC32C_H
#define UTIL_CRC32C_H

/*
 * CRC32C with the usual conventions (reflected, initial value and final xor
 * 0xFFFFFFFF): util_crc32c(0, "123456789", 9) == 0xE3069283. The running
 * form util_crc32c(util_crc32c(0, a, n), b, m) equals the CRC of a||b.
 * Uses the SSE4.2 crc32 instruction when the CPU has it (checked once, at
 * first use) and a slicing-by-8 table otherwise; both give the same values.
 */

#include <stddef.h>
#include <stdint.h>

uint32_t util_crc32c(uint32_t crc, const void *data, size_t len);

/* The portable implementation, exposed so that tests can compare both. */
uint32_t util_crc32c_sw(uint32_t crc, const void *data, size_t len);

#endif /* UTIL_CRC32C_H */
