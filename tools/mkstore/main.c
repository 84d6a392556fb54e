/* SPDX-License-Identifier: MIT */
/* sutra-mkstore: creates an empty storage.dat with the given or default parameters. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "layout/layout.h"
#include "util/random.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: sutra-mkstore [OPTIONS] PATH\n"
		"\n"
		"Creates an empty Sutra store file (storage.dat format version %u) at PATH,\n"
		"which must not exist, and makes it durable (fsync of the file and its\n"
		"directory). The parameters below are fixed for the life of the store.\n"
		"\n"
		"Options:\n"
		"  -d, --vector-dimension N  embedding dimension, 1..%u (default 768)\n"
		"  -m, --hnsw-m N            HNSW neighbours per node, 2..128 (default 16)\n"
		"  -e, --ef-construction N   HNSW build beam width, 1..65535 (default 200)\n"
		"  -h, --help                show this help and exit\n"
		"\n"
		"The metric is cosine (the only one of format version 1).\n"
		"\n"
		"Exit status: 0 on success, 1 if the file could not be created, 2 on a\n"
		"usage error.\n",
		LAYOUT_FORMAT_VERSION, LAYOUT_MAX_VECTOR_DIM);
}

static int parse_u32(const char *s, unsigned long lo, unsigned long hi, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vector-dimension", required_argument, NULL, 'd' },
		{ "hnsw-m", required_argument, NULL, 'm' },
		{ "ef-construction", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint32_t dim = 768, m = 16, efc = 200;
	int c;

	while ((c = getopt_long(argc, argv, "d:m:e:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (parse_u32(optarg, 1, LAYOUT_MAX_VECTOR_DIM, &dim)) {
				fprintf(stderr, "sutra-mkstore: bad vector dimension '%s' (1..%u)\n",
					optarg, LAYOUT_MAX_VECTOR_DIM);
				return 2;
			}
			break;
		case 'm':
			if (parse_u32(optarg, 2, 128, &m)) {
				fprintf(stderr, "sutra-mkstore: bad HNSW M '%s' (2..128)\n", optarg);
				return 2;
			}
			break;
		case 'e':
			if (parse_u32(optarg, 1, 65535, &efc)) {
				fprintf(stderr, "sutra-mkstore: bad ef_construction '%s' (1..65535)\n",
					optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'sutra-mkstore --help'.\n");
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "sutra-mkstore: expected one PATH\nTry 'sutra-mkstore --help'.\n");
		return 2;
	}

	struct layout_superblock sb;
	struct timespec ts;
	layout_superblock_defaults(&sb, dim);
	sb.hnsw_m = (uint16_t)m;
	sb.hnsw_ef_construction = (uint16_t)efc;
	clock_gettime(CLOCK_REALTIME, &ts);
	sb.created_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	int rc = util_random_uuid(sb.uuid);
	if (rc == 0)
		rc = layout_create_file(argv[optind], &sb, sb.created_us);
	if (rc) {
		fprintf(stderr, "sutra-mkstore: %s: %s\n", argv[optind], sutra_strerror(rc));
		return 1;
	}
	printf("created %s (format %u, dimension %u, cosine, M %u, ef_construction %u)\n",
	       argv[optind], LAYOUT_FORMAT_VERSION, dim, m, efc);
	return 0;
}
