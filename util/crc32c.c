/* SPDX-License-Identifier: MIT */
/* CRC32C: hardware (SSE4.2) and slicing-by-8 software implementations. */
#include "util/crc32c.h"

#include <stdatomic.h>
#include <string.h>

#define POLY 0x82F63B78u /* Castagnoli, reflected */

static uint32_t table[8][256];
static atomic_int table_ready;

static void table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFF];
	/* Racing initialisers compute identical tables, so a plain flag suffices. */
	atomic_store_explicit(&table_ready, 1, memory_order_release);
}

uint32_t util_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;

	if (!atomic_load_explicit(&table_ready, memory_order_acquire))
		table_init();
	crc = ~crc;
	while (len >= 8) {
		uint32_t lo = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			      (uint32_t)p[3] << 24;
		lo ^= crc;
		crc = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^
		      table[5][(lo >> 16) & 0xFF] ^ table[4][lo >> 24] ^ table[3][p[4]] ^
		      table[2][p[5]] ^ table[1][p[6]] ^ table[0][p[7]];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xFF];
	return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *data,
							    size_t len)
{
	const unsigned char *p = data;
	uint64_t c = ~crc;

	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8); /* little-endian host: byte order matches the stream */
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (len--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return ~c32;
}

static atomic_int hw_state; /* 0 unknown, 1 hardware, 2 software */

uint32_t util_crc32c(uint32_t crc, const void *data, size_t len)
{
	int s = atomic_load_explicit(&hw_state, memory_order_relaxed);
	if (s == 0) {
		__builtin_cpu_init();
		s = __builtin_cpu_supports("sse4.2") ? 1 : 2;
		atomic_store_explicit(&hw_state, s, memory_order_relaxed);
	}
	return s == 1 ? crc32c_hw(crc, data, len) : util_crc32c_sw(crc, data, len);
}
#else
uint32_t util_crc32c(uint32_t crc, const void *data, size_t len)
{
	return util_crc32c_sw(crc, data, len);
}
#endif
