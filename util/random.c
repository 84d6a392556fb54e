/* SPDX-License-Identifier: MIT */
/* Random bytes from the kernel, for store uuids and client ids. */
#include "util/random.h"

#include <errno.h>
#include <sys/random.h>

int util_random_bytes(void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int util_random_uuid(uint8_t uuid[16])
{
	int rc = util_random_bytes(uuid, 16);
	if (rc)
		return rc;
	uuid[6] = (uint8_t)((uuid[6] & 0x0F) | 0x40);
	uuid[8] = (uint8_t)((uuid[8] & 0x3F) | 0x80);
	return 0;
}
