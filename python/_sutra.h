/* SPDX-License-Identifier: MIT */
/* What the C files of the extension module _sutra share: the object layouts and the helpers each file offers the others. */
#ifndef SUTRA_PY_SUTRA_H
#define SUTRA_PY_SUTRA_H

/*
 * The extension module _sutra is the C half of the package sutra
 * (python/sutra/): a Store type that owns, per process, a reader
 * (libsutra-reader), a write client (libsutra-client) and, in embedded
 * mode, the coordinator itself (started as sutra-coordinator does); a
 * Snapshot type over sutra_snapshot; a Batch type over sutra_batch; a
 * Notices type (a second reader subscribed to the coordinator's notices).
 *
 * The files, one concern each (every non-static name is sutra_py_*):
 *  - _sutra_module.c: module init, type registration, constants, the
 *    module-level functions.
 *  - _sutra_fork.c: forks and nng (the fork generation, whether nng may
 *    start in this process, the signal mask of nng's threads).
 *  - _sutra_convert.c: Python values <-> C: errors to exceptions, ids,
 *    association types, embeddings as numpy arrays, dict building.
 *  - _sutra_store.c: the Store object: lazy opening in embedded or server
 *    mode, the embedded coordinator (the only file that uses the
 *    coordinator library), the write path with its hand-over, waits.
 *  - _sutra_write.c: the Store's write methods and their arguments.
 *  - _sutra_read.c: the reads over one C snapshot, shared by the Store's
 *    and the Snapshot's methods.
 *  - _sutra_snapshot.c: the Snapshot object and its zero-copy pins.
 *  - _sutra_batch.c, _sutra_notices.c, _sutra_search.c: batches, notice
 *    subscriptions, vector and text search.
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

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* numpy's C API is a table of pointers that only _sutra_module.c fills
 * (import_array); the other files use it through the same symbol. */
#ifndef SUTRA_PY_IMPORT_ARRAY
#define NO_IMPORT_ARRAY
#endif
#define PY_ARRAY_UNIQUE_SYMBOL sutra_py_ARRAY_API
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include "sutra/client.h"
#include "sutra/reader.h"

/* ---- Objects --------------------------------------------------------------- */

struct sutra_coordinator;

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
	struct sutra_coordinator *srv; /* the embedded coordinator; _sutra_store.c only */
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

extern PyTypeObject sutra_py_store_type;
extern PyTypeObject sutra_py_snapshot_type;
extern PyTypeObject sutra_py_batch_type;
extern PyTypeObject sutra_py_notices_type;

/* ---- _sutra_fork.c: forks and nng ----------------------------------------- */

/* Bumped in the child at every fork. */
extern unsigned long sutra_py_fork_gen;

/* Registers the fork handler (once per process). */
void sutra_py_fork_init(void);

/* True when an ancestor started nng before forking this process, so that
 * nothing of nng may start here. */
int sutra_py_nng_forbidden(void);

/* 1 if nng may start here; else 0 with Unavailable set (what names the
 * caller in the message). */
int sutra_py_nng_allowed(const char *what);

/* Around every call that may start nng threads: records that this process
 * started nng and blocks every signal (the threads inherit the mask), so
 * that only Python's main thread takes SIGINT and SIGTERM. */
void sutra_py_nng_enter(sigset_t *old);
void sutra_py_nng_leave(const sigset_t *old);

/* ---- _sutra_convert.c: values, ids, errors -------------------------------- */

/* Creates sutra.Error and its subclasses in m; 0 or -1. */
int sutra_py_add_exceptions(PyObject *m);

/* Raises the exception of code (with "what: reason" as message; detail
 * may be NULL) and returns NULL. */
PyObject *sutra_py_raise(int code, const char *what, const char *detail);

/* Raises InvalidArgument with a PyErr_Format message; returns NULL. */
PyObject *sutra_py_invalid(const char *fmt, ...);

/* Parses an id (hex str of 1..32 digits, or 16 bytes) into out; 0 or -1
 * with an exception set. */
int sutra_py_parse_id(PyObject *o, uint8_t out[16]);

/* The canonical 32-hex str of id. */
PyObject *sutra_py_id_str(const uint8_t id[16]);

/* An association type 0..255 into out; None gives -1 (any type) when
 * allow_none. 0 or -1 with an exception set. */
int sutra_py_parse_type(PyObject *o, int allow_none, int *out);

/* The endpoints and type of an association (t_o NULL: type 0). */
struct sutra_py_assoc {
	uint8_t src[16], dst[16];
	int type;
};
int sutra_py_parse_assoc(PyObject *src_o, PyObject *dst_o, PyObject *t_o,
			 struct sutra_py_assoc *out);

/* Converts o to a new C-contiguous float32 numpy array of dim values;
 * NULL with DimensionError/InvalidArgument/TypeError set. dim 0: any. */
PyObject *sutra_py_vector(PyObject *o, uint32_t dim);

/* A new writable float32 array holding a copy of v. */
PyObject *sutra_py_vector_copy(const float *v, uint32_t dim);

/* d[k] = v, stealing v (NULL: an error is already set); 0 or -1. */
int sutra_py_dict_set(PyObject *d, const char *k, PyObject *v);

/* d[k] = v as an int; on failure drops d and returns NULL from the
 * calling function. */
#define SUTRA_PY_SET_U64(d, k, v)                                                           \
	do {                                                                                \
		if (sutra_py_dict_set(d, k, PyLong_FromUnsignedLongLong(v))) {              \
			Py_DECREF(d);                                                       \
			return NULL;                                                        \
		}                                                                           \
	} while (0)

/* ---- _sutra_store.c: the Store object ------------------------------------- */

/* -1 with InvalidArgument set if s is closed; drops the handles of a
 * parent process after a fork. */
int sutra_py_store_usable(StoreObject *s);

/* Opens the reader (embedded: starting the coordinator first); 0 or -1. */
int sutra_py_store_reader(StoreObject *s);

/* The notices URL: the embedded coordinator's, the given one or the
 * default beside the store; 0 or -1 with an exception set. */
int sutra_py_store_events_url(StoreObject *s, char *out, size_t len);

/* The coordinator's default URL for a data path (see sutra.default_url);
 * 0 or -ENAMETOOLONG. */
int sutra_py_default_url(const char *path, const char *suffix, char *out, size_t len);

/* Runs fn (a call of the client) with the GIL released, connecting first,
 * and returns the epoch it gave as an int, or NULL with the exception of
 * its error (its .index the failed operation of a batch). In embedded
 * mode, when the holder of the store written through has gone, this
 * process tries once to become the writer and repeats the write. */
typedef int (*sutra_py_write_fn)(sutra_client *c, void *arg, uint64_t *epoch);
PyObject *sutra_py_store_write(StoreObject *s, const char *what, sutra_py_write_fn fn,
			       void *arg);

/* ---- _sutra_write.c: the Store's writes ----------------------------------- */

/* A learn_concept's arguments as the client takes them; the pointers
 * point into the objects held. */
struct sutra_py_concept_args {
	struct sutra_concept_in in;
	PyObject *hold[3];
};

/* The keywords of learn_concept (Store and Batch). */
extern char *sutra_py_learn_kwlist[];

/* Fills ca from Python arguments (s: the store whose dimension the
 * embedding must have; NULL: any); 0 or -1. Release with
 * sutra_py_concept_args_clear() either way. */
int sutra_py_concept_args_parse(StoreObject *s, struct sutra_py_concept_args *ca, PyObject *id_o,
				PyObject *content_o, PyObject *emb_o, double strength,
				double confidence, PyObject *meta_o);
void sutra_py_concept_args_clear(struct sutra_py_concept_args *ca);

PyObject *sutra_py_store_learn_concept(StoreObject *s, PyObject *args, PyObject *kw);
PyObject *sutra_py_store_learn_association(StoreObject *s, PyObject *args, PyObject *kw);
PyObject *sutra_py_store_delete_concept(StoreObject *s, PyObject *arg);
PyObject *sutra_py_store_delete_association(StoreObject *s, PyObject *args, PyObject *kw);
PyObject *sutra_py_store_flush(StoreObject *s, PyObject *unused);
PyObject *sutra_py_store_ping(StoreObject *s, PyObject *unused);
PyObject *sutra_py_store_coordinator_stats(StoreObject *s, PyObject *unused);

/* ---- _sutra_read.c: reads over one snapshot ------------------------------- */

/* The concept as a dict or None; zc: the snapshot whose mapping the
 * embedding may point into (zero-copy), NULL to copy it. */
PyObject *sutra_py_read_get(const sutra_snapshot *snap, SnapshotObject *zc, PyObject *id_o);
PyObject *sutra_py_read_contains(const sutra_snapshot *snap, PyObject *id_o);
/* _neighbors(id, assoc_type=None, direction="both", limit=None,
 * detail=False, missing_ok=False) */
PyObject *sutra_py_read_neighbors(const sutra_snapshot *snap, PyObject *args, PyObject *kw);
/* get_neighbors() (detail 0: ids, [] for an unknown concept) and
 * neighbors() (detail 1: dicts, NotFound for an unknown concept). */
PyObject *sutra_py_read_neighbor_list(const sutra_snapshot *snap, PyObject *args, PyObject *kw,
				      int detail);
/* find_path() (many 0) and find_paths() (many 1). */
PyObject *sutra_py_read_paths(const sutra_snapshot *snap, PyObject *args, PyObject *kw, int many);
PyObject *sutra_py_read_stats(const sutra_snapshot *snap);
/* Every live concept: ids, or dicts (zc as for sutra_py_read_get). */
PyObject *sutra_py_read_foreach(const sutra_snapshot *snap, SnapshotObject *zc, int ids_only);

/* ---- _sutra_snapshot.c: the Snapshot object ------------------------------- */

/* A new Snapshot of s of at least min_epoch; NULL with an exception. */
SnapshotObject *sutra_py_snapshot_new(StoreObject *s, uint64_t min_epoch);

/* Checks that s may be read (not released, same process); -1 with an
 * exception set if not. */
int sutra_py_snapshot_ok(SnapshotObject *s);

/* A read-only float32 array over the mapping at v, keeping o pinned. */
PyObject *sutra_py_pinned_vector(SnapshotObject *o, const float *v, uint32_t dim);

/* ---- _sutra_batch.c, _sutra_notices.c, _sutra_search.c ------------------- */

/* Store._new_batch() and Store._open_notices(). */
PyObject *sutra_py_store_new_batch(StoreObject *s, PyObject *unused);
PyObject *sutra_py_store_open_notices(StoreObject *s, PyObject *unused);

/* Snapshot.vector_search and Snapshot.text_search. */
PyObject *sutra_py_vector_search(SnapshotObject *so, PyObject *args, PyObject *kw);
PyObject *sutra_py_text_search(SnapshotObject *so, PyObject *args, PyObject *kw);

#endif /* SUTRA_PY_SUTRA_H */
