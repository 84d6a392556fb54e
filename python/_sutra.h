/* SPDX-License-Identifier: MIT */
/* What the two C files of the Python extension module _sutra share: the object layouts and helpers. */
#ifndef SUTRA_PY_SUTRA_H
#define SUTRA_PY_SUTRA_H

/*
 * The extension module _sutra is the C half of the package sutra
 * (python/sutra/): a Store type that owns, per process, a reader
 * (libsutra-reader), a write client (libsutra-client) and, in embedded
 * mode, the coordinator itself (the coordinator static library, started
 * with coord_server_start as sutra-coordinator does); a Snapshot type over
 * sutra_snapshot; a Batch type over sutra_batch; a Notices type (a second
 * reader subscribed to the coordinator's notices).
 *
 * Invariants:
 *  - nng is started lazily, on the first call that needs it, in the
 *    process that makes it (nng panics when used in a child of a process
 *    that used it). A fork bumps sutra_py_fork_gen; every object records
 *    the generation its handles belong to, and a child drops (leaks, never
 *    closes: they belong to the parent) the handles of an older one and
 *    opens its own on first use.
 *  - A Snapshot keeps its Store alive; the Store closes its reader only
 *    when no Snapshot holds it. A zero-copy array keeps its Snapshot
 *    pinned (its base is a capsule holding the Snapshot), so the mapping it
 *    points into stays pinned as long as the array lives, even after the
 *    Snapshot was released by its with block.
 *  - Every call that may block (network, waits) releases the GIL; the
 *    Store counts such calls (busy) and close() refuses while one runs.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

#include "sutra/client.h"
#include "sutra/reader.h"

struct coord_server;

typedef struct {
	PyObject_HEAD
	char *path;          /* storage.dat */
	char *listen_url;    /* NULL: the default URL next to the data */
	char *events_url;    /* NULL: the default URL next to the data */
	int embedded;        /* 1 embedded, 0 server */
	int relaxed;         /* embedded: relaxed durability */
	uint32_t dim_request; /* vector dimension of a new store (embedded) */
	int dim_explicit;    /* the caller asked for that dimension */
	uint32_t timeout_ms; /* client timeout per call */
	uint32_t segment_kib;
	unsigned long gen;   /* fork generation of the handles below */
	struct coord_server *srv;
	sutra_client *cli;
	sutra_reader *rdr;
	int subscribed;      /* rdr subscribed (wait_for_epoch wakes on notices) */
	int role;            /* ROLE_* */
	uint32_t dim;        /* the store's dimension, once known */
	uint64_t last_epoch; /* newest epoch a write of this object returned */
	int snapshots;       /* live Snapshot objects on rdr */
	int busy;            /* calls running without the GIL */
	int closed;
} StoreObject;

enum { ROLE_NONE = 0, ROLE_WRITER = 1, ROLE_CLIENT = 2, ROLE_READER = 3 };

typedef struct {
	PyObject_HEAD
	StoreObject *store;
	sutra_snapshot *snap;
	unsigned long gen;
	int pins;       /* zero-copy arrays alive */
	int released;   /* release() called: no new reads */
} SnapshotObject;

extern PyTypeObject Snapshot_Type;
extern unsigned long sutra_py_fork_gen;

/* Raises the exception of code (with "what: reason" as message; detail
 * may be NULL) and returns NULL. */
PyObject *sutra_py_raise(int code, const char *what, const char *detail);

/* Parses an id (hex str of 1..32 digits, or 16 bytes) into out; 0 or -1
 * with an exception set. */
int sutra_py_parse_id(PyObject *o, uint8_t out[16]);

/* The canonical 32-hex str of id. */
PyObject *sutra_py_id_str(const uint8_t id[16]);

/* Checks that s may be read (not released, same process); -1 with an
 * exception set if not. */
int sutra_py_snapshot_ok(SnapshotObject *s);

/* Converts o to a new C-contiguous float32 numpy array of dim values;
 * NULL with DimensionError/InvalidArgument/TypeError set. dim 0: any. */
PyObject *sutra_py_vector(PyObject *o, uint32_t dim);

/* Snapshot.vector_search and Snapshot.text_search (python/_sutra_search.c). */
PyObject *sutra_py_vector_search(SnapshotObject *so, PyObject *args, PyObject *kw);
PyObject *sutra_py_text_search(SnapshotObject *so, PyObject *args, PyObject *kw);

#endif /* SUTRA_PY_SUTRA_H */
