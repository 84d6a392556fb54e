/* SPDX-License-Identifier: MIT */
/* The resend cache: each client's last replies, so that a resent request is answered, not applied twice. */
#ifndef COORDINATOR_DEDUP_H
#define COORDINATOR_DEDUP_H

/*
 * A client with a nonzero id numbers its requests; when a reply does not
 * come it resends the same bytes under the same sequence number
 * (docs/PROTOCOL.md section 7). For up to cap clients the cache keeps a
 * ring of the last COORD_DEDUP_RING requests of each, slot seq % RING:
 * the sequence, the CRC32C of the whole request message and, once
 * answered, the reply (status, epoch, failing index, text).
 *
 * coord_dedup_check() sorts an incoming request:
 *  - same sequence and CRC as its slot: a resend, answered from the slot
 *    (CACHED) or parked on it until the original is answered (WAIT);
 *  - same sequence, other CRC: the client reused a number (REUSED);
 *  - RING or more below the client's highest sequence: too old to tell
 *    (STALE);
 *  - its slot still pending for an older sequence: RING requests of this
 *    client in flight (BUSY);
 *  - otherwise the slot is claimed, pending (NEW), and the caller answers
 *    it with coord_dedup_done() once applied or refused.
 *
 * When the table is full, the least recently seen client is forgotten.
 * The server keeps at most cap / 2 requests in flight (one per REP
 * context) and every client seen for them is more recent than any other,
 * so a forgotten client never has a pending slot. At start the table is
 * seeded from the log's request markers (coord_dedup_seed()), so that a
 * request applied before a restart is recognised when it is resent.
 *
 * Owned by the server's writer thread: not thread-safe.
 */

#include <stdint.h>

#include "util/idmap.h"

#define COORD_DEDUP_RING 16u      /* remembered requests per client (COORD_MARKER_RING) */
#define COORD_DEDUP_CLIENTS 4096u /* clients remembered by the server */

struct work; /* the server's request (coordinator/server_internal.h) */

enum coord_dedup_state {
	COORD_DEDUP_EMPTY = 0,
	COORD_DEDUP_PENDING,
	COORD_DEDUP_ANSWERED,
};

/* One remembered request. */
struct coord_dedup_entry {
	uint64_t seq;
	uint8_t state;        /* enum coord_dedup_state */
	uint16_t op;
	uint32_t crc;         /* of the whole request: a resend is byte for byte the same */
	int32_t status;       /* the reply, once answered */
	uint64_t epoch;
	uint32_t index;
	char *msg;            /* owned; NULL for no text */
	struct work *waiters; /* resends parked while pending (the caller's list) */
};

struct coord_dedup_client {
	uint64_t id;
	uint64_t max_seq;
	uint64_t last_used;
	struct coord_dedup_entry ring[COORD_DEDUP_RING];
};

struct coord_dedup {
	struct coord_dedup_client *clients;
	uint32_t n, cap;
	struct util_idmap ix; /* client id -> index into clients */
	uint64_t tick;        /* a clock for least recently seen */
};

enum coord_dedup_verdict {
	COORD_DEDUP_NEW = 0, /* *e is claimed: apply, then coord_dedup_done() */
	COORD_DEDUP_CACHED,  /* a resend of an answered request: reply from *e */
	COORD_DEDUP_WAIT,    /* a resend of a request still pending on *e */
	COORD_DEDUP_REUSED,  /* the sequence was used for another request */
	COORD_DEDUP_STALE,   /* older than the client's last RING requests */
	COORD_DEDUP_BUSY,    /* the slot is pending for an older sequence */
};

/* An empty cache for up to cap clients (cap >= 1). Returns 0 or -ENOMEM. */
int coord_dedup_init(struct coord_dedup *d, uint32_t cap);

/* Frees the entries' texts and the table. The waiters are the caller's. */
void coord_dedup_finish(struct coord_dedup *d);

/* Sorts request (client_id != 0, seq) of type op with message CRC crc (see
 * above). Returns a verdict, with *e the slot for NEW, CACHED and WAIT, or
 * -ENOMEM (the client could not be remembered). */
int coord_dedup_check(struct coord_dedup *d, uint64_t client_id, uint64_t seq, uint16_t op,
		      uint32_t crc, struct coord_dedup_entry **e);

/* Records the reply of a claimed entry (msg is copied; NULL for none). A
 * copy that fails leaves no text: a resend then gets the status alone. */
void coord_dedup_done(struct coord_dedup_entry *e, int32_t status, uint64_t epoch, uint32_t index,
		      const char *msg);

/* Remembers a request the log says epoch applied (status 0, no text). Out
 * of memory it is not remembered: that resend would be applied again. */
void coord_dedup_seed(struct coord_dedup *d, uint64_t client_id, uint64_t seq, uint32_t crc,
		      uint64_t epoch);

#endif /* COORDINATOR_DEDUP_H */
