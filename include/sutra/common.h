/* SPDX-License-Identifier: MIT */
/* Shared definitions for every public Sutra header: export macro, versions, error detail, coordinator figures. */
#ifndef SUTRA_COMMON_H
#define SUTRA_COMMON_H

#if defined(__GNUC__) || defined(__clang__)
#define SUTRA_API __attribute__((visibility("default")))
#else
#define SUTRA_API
#endif

#include <stdint.h>

/** Version of the storage.dat format this build writes and reads. */
#define SUTRA_FORMAT_VERSION 1

/** Version of the write protocol (docs/PROTOCOL.md) this build speaks. */
#define SUTRA_PROTOCOL_VERSION 1

/** The offset of a struct sutra_detail that is about no place in a file. */
#define SUTRA_DETAIL_NO_OFFSET UINT64_MAX

/**
 * What went wrong, in a sentence, for a call that failed: the one way every
 * Sutra library reports the detail behind an error code. A caller that wants
 * it passes a struct of its own (it may be NULL); the callee fills it only
 * when it fails. Being the caller's, it is never shared between threads.
 */
struct sutra_detail {
	/** Where in the file the problem is, or SUTRA_DETAIL_NO_OFFSET. */
	uint64_t offset;
	/** The sentence, NUL-terminated (truncated to fit). */
	char what[256];
};

/** A coordinator's figures: what sutra_client_stats() (over the wire) and
 *  sutra_coordinator_stats() (in the coordinator's process) report. */
struct sutra_coord_stats {
	uint64_t epoch;             /**< newest published epoch */
	uint64_t durable_epoch;     /**< newest epoch known durable */
	uint64_t published_end;     /**< bytes of published log */
	uint64_t file_size;
	uint64_t concept_count;
	uint64_t association_count;
	uint64_t next_ordinal;
	uint64_t commits;           /**< epochs committed since the coordinator started */
	uint64_t requests;          /**< write requests applied since start */
	uint64_t rejected;          /**< write requests answered with an error */
	uint64_t duplicates;        /**< resent requests answered from the cache */
	uint64_t syncs;             /**< fdatasync calls since start */
	uint32_t vector_dim;
	uint32_t relaxed;           /**< 1 in relaxed durability mode */
	uint32_t io_uring;          /**< 1 when the io_uring backend is in use */
	uint32_t relistens;         /**< listener restarts by the self check */
};

#endif /* SUTRA_COMMON_H */
