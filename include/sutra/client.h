/* SPDX-License-Identifier: MIT */
/* The public write client: talks to sutra-coordinator over nng REQ/REP (libsutra-client). */
#ifndef SUTRA_CLIENT_H
#define SUTRA_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "sutra/common.h"
#include "sutra/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A connection to one coordinator. Every write returns the epoch that holds
 * it: pass that epoch to a reader's wait_for_epoch() for read-your-writes
 * in another process.
 *
 * Thread-safety: a sutra_client may be used from several threads; calls are
 * serialised (one request in flight per client). Use one client per thread
 * for concurrency. Do not use a client in a child after fork().
 *
 * Delivery: each request carries this client's random id and a sequence
 * number. When no reply comes (the coordinator restarted, the connection
 * dropped), the client resends the same request until timeout_ms has
 * passed, and the coordinator applies it once and answers the resend with
 * the original reply, also after a restart of the coordinator (the log
 * records which requests it applied: docs/PROTOCOL.md section 7).
 */
typedef struct sutra_client sutra_client;

/** Options of sutra_client_connect(); start from sutra_client_options_init(). */
struct sutra_client_options {
	uint32_t timeout_ms;       /**< per call, resends included (default 10000) */
	uint32_t resend_ms;        /**< resend when no reply after this (default 1000) */
	uint32_t reconnect_min_ms; /**< first reconnect delay (default 10) */
	uint32_t reconnect_max_ms; /**< longest reconnect delay (default 500) */
	uint64_t client_id;        /**< 0: a random id (the normal case) */
};

/** A concept to learn. id is 16 bytes; content is UTF-8 (not NUL-terminated
 *  necessarily); embedding is NULL or vector_dim floats; metadata opaque. */
struct sutra_concept_in {
	const uint8_t *id;
	const char *content;
	size_t content_len;
	const float *embedding;
	uint32_t vector_dim;
	float strength;   /**< 1.0 is the usual default */
	float confidence; /**< 1.0 is the usual default */
	const void *metadata;
	size_t metadata_len;
};

/** Association types the old store knew; any value 0..255 is accepted. */
enum sutra_assoc_type {
	SUTRA_ASSOC_SEMANTIC = 0,
	SUTRA_ASSOC_CAUSAL = 1,
	SUTRA_ASSOC_TEMPORAL = 2,
	SUTRA_ASSOC_HIERARCHICAL = 3,
	SUTRA_ASSOC_COMPOSITIONAL = 4,
};

/** Fills o with the defaults. */
SUTRA_API void sutra_client_options_init(struct sutra_client_options *o);

/**
 * Connects to the coordinator at url (ipc://, tcp://). Does not wait for the
 * coordinator: the connection is made (and remade) in the background; the
 * first call waits for it up to its timeout.
 * @param url the coordinator's --listen URL
 * @param o options, or NULL for the defaults
 * @param out the new client, to free with sutra_client_close()
 * @return 0, -EINVAL (bad URL or options), -ENOMEM, SUTRA_EUNAVAIL
 */
SUTRA_API int sutra_client_connect(const char *url, const struct sutra_client_options *o,
				   sutra_client **out);

/** Closes the connection and frees c. NULL is allowed. */
SUTRA_API void sutra_client_close(sutra_client *c);

/**
 * Learns (upserts) a concept: a new id gets a new ordinal; a known id is
 * replaced (content, embedding, metadata, strength, confidence) and keeps its
 * associations and creation time.
 * @param epoch out: the epoch that holds the write (may be NULL)
 * @return 0, SUTRA_EDIM (embedding of another dimension), SUTRA_EVALUE
 *   (NaN/Inf, empty or non-UTF-8 content), SUTRA_ETOOBIG (over a limit),
 *   SUTRA_EUNAVAIL (no reply within the timeout), SUTRA_EPROTO, -EIO (the
 *   coordinator's disk failed), -ENOMEM
 */
SUTRA_API int sutra_client_learn_concept(sutra_client *c, const struct sutra_concept_in *in,
					 uint64_t *epoch);

/**
 * Learns (upserts) the association (src, dst, type).
 * @return as sutra_client_learn_concept(), and SUTRA_ENOTFOUND when an
 *   endpoint does not exist
 */
SUTRA_API int sutra_client_learn_association(sutra_client *c, const uint8_t src[16],
					     const uint8_t dst[16], uint8_t type, float confidence,
					     float weight, uint64_t *epoch);

/** Deletes a concept and every association touching it (one epoch).
 *  @return 0, SUTRA_ENOTFOUND, or the errors of the other writes */
SUTRA_API int sutra_client_delete_concept(sutra_client *c, const uint8_t id[16], uint64_t *epoch);

/** Deletes the association (src, dst, type).
 *  @return 0, SUTRA_ENOTFOUND, or the errors of the other writes */
SUTRA_API int sutra_client_delete_association(sutra_client *c, const uint8_t src[16],
					      const uint8_t dst[16], uint8_t type, uint64_t *epoch);

/** Returns once every write acknowledged before it is durable; *epoch is the
 *  newest durable epoch. In sync mode that is immediate. */
SUTRA_API int sutra_client_sync(sutra_client *c, uint64_t *epoch);

/** Round trip without touching the store; *epoch is the newest published. */
SUTRA_API int sutra_client_ping(sutra_client *c, uint64_t *epoch);

/** Fills *st from the coordinator. */
SUTRA_API int sutra_client_stats(sutra_client *c, struct sutra_coord_stats *st);

/**
 * The explanation of the calling thread's last call on c when it failed
 * (the coordinator's "unknown target concept 00ab...", or what the client
 * met: "no reply from the coordinator within 10000 ms: ..."), or "" when it
 * succeeded or this thread's last call was on another client. Kept per
 * thread, so threads sharing c each read their own call's detail.
 * Borrowed until this thread's next call into libsutra-client.
 */
SUTRA_API const char *sutra_client_last_error(const sutra_client *c);

/** For the calling thread's last call on c, a failed batch: the index of
 *  the operation that failed, or -1. */
SUTRA_API int sutra_client_last_error_index(const sutra_client *c);

/* ---- Batches ------------------------------------------------------------ */

/** An atomic batch of writes: all are applied in one epoch, or none. */
typedef struct sutra_batch sutra_batch;

/** Creates an empty batch; NULL when out of memory. Free with sutra_batch_destroy(). */
SUTRA_API sutra_batch *sutra_batch_create(void);
SUTRA_API void sutra_batch_destroy(sutra_batch *b);
/** Empties the batch, keeping its memory. */
SUTRA_API void sutra_batch_clear(sutra_batch *b);
/** Number of operations in the batch. */
SUTRA_API size_t sutra_batch_count(const sutra_batch *b);

/** Each adds one operation (copied: the arguments need not outlive the
 *  call). @return 0, -ENOMEM, SUTRA_EVALUE (NULL id or content, content
 *  over 4 GiB) */
SUTRA_API int sutra_batch_learn_concept(sutra_batch *b, const struct sutra_concept_in *in);
SUTRA_API int sutra_batch_learn_association(sutra_batch *b, const uint8_t src[16],
					    const uint8_t dst[16], uint8_t type, float confidence,
					    float weight);
SUTRA_API int sutra_batch_delete_concept(sutra_batch *b, const uint8_t id[16]);
SUTRA_API int sutra_batch_delete_association(sutra_batch *b, const uint8_t src[16],
					     const uint8_t dst[16], uint8_t type);

/** Sends the batch as one request. The batch is left as it was (clear it to
 *  reuse). @return as the single writes; on an error in one operation none
 *  is applied and sutra_client_last_error_index() names it */
SUTRA_API int sutra_client_commit(sutra_client *c, const sutra_batch *b, uint64_t *epoch);

#ifdef __cplusplus
}
#endif

#endif /* SUTRA_CLIENT_H */
