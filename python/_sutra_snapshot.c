/* SPDX-License-Identifier: MIT */
/* The Snapshot object of the extension module _sutra: one epoch held, its reads, and the pins of zero-copy arrays. */
#include "_sutra.h"

#include <errno.h>
#include <stdlib.h>

/* ---- Lifetime and pins ---------------------------------------------------- */

SnapshotObject *sutra_py_snapshot_new(StoreObject *s, uint64_t min_epoch)
{
	if (sutra_py_store_usable(s) || sutra_py_store_reader(s))
		return NULL;
	sutra_snapshot *snap;
	int rc = sutra_snapshot_acquire(s->rdr, min_epoch, &snap);
	if (rc == -EAGAIN) {
		/* Only when asked for an epoch not yet published. */
		return (SnapshotObject *)sutra_py_raise(rc, "snapshot",
							"the store has not reached that epoch yet");
	}
	if (rc)
		return (SnapshotObject *)sutra_py_raise(rc, "snapshot", NULL);
	SnapshotObject *o = PyObject_New(SnapshotObject, &sutra_py_snapshot_type);
	if (!o) {
		sutra_snapshot_release(snap);
		return NULL;
	}
	Py_INCREF(s);
	o->store = s;
	o->snap = snap;
	o->gen = sutra_py_fork_gen;
	o->pins = 0;
	o->released = 0;
	s->snapshots++;
	return o;
}

/* Gives the C snapshot back once neither the Python object nor an array
 * refers to it. */
static void snapshot_drop(SnapshotObject *o)
{
	if (!o->snap || o->pins > 0 || !o->released)
		return;
	StoreObject *s = o->store;
	if (o->gen == sutra_py_fork_gen && s->gen == o->gen) {
		sutra_snapshot_release(o->snap);
		if (--s->snapshots == 0 && s->closed && s->rdr) {
			sutra_reader_close(s->rdr);
			s->rdr = NULL;
		}
	}
	o->snap = NULL;
}

int sutra_py_snapshot_ok(SnapshotObject *o)
{
	if (o->released || !o->snap) {
		sutra_py_invalid("the snapshot was released");
		return -1;
	}
	if (o->gen != sutra_py_fork_gen) {
		sutra_py_invalid("the snapshot was taken before a fork: take one here");
		return -1;
	}
	return 0;
}

static void pin_release(PyObject *cap)
{
	SnapshotObject *o = PyCapsule_GetContext(cap);
	o->pins--;
	snapshot_drop(o);
	Py_DECREF(o);
}

PyObject *sutra_py_pinned_vector(SnapshotObject *o, const float *v, uint32_t dim)
{
	npy_intp d = dim;
	PyObject *a = PyArray_New(&PyArray_Type, 1, &d, NPY_FLOAT32, NULL, (void *)v, 0,
				  NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED, NULL);
	if (!a)
		return NULL;
	PyObject *cap = PyCapsule_New((void *)v, "sutra.pin", pin_release);
	if (!cap) {
		Py_DECREF(a);
		return NULL;
	}
	Py_INCREF(o);
	o->pins++;
	PyCapsule_SetContext(cap, o);
	if (PyArray_SetBaseObject((PyArrayObject *)a, cap)) {
		Py_DECREF(cap);
		Py_DECREF(a);
		return NULL;
	}
	return a;
}

static void snapshot_dealloc(SnapshotObject *o)
{
	o->pins = 0; /* no array can refer to it: each holds a reference */
	o->released = 1;
	snapshot_drop(o);
	Py_XDECREF(o->store);
	Py_TYPE(o)->tp_free((PyObject *)o);
}

/* ---- Reads ---------------------------------------------------------------- */

#define SNAP_OK(o)                                                                          \
	do {                                                                                \
		if (sutra_py_snapshot_ok(o))                                                \
			return NULL;                                                        \
	} while (0)

static PyObject *snap_get(SnapshotObject *o, PyObject *id)
{
	SNAP_OK(o);
	return sutra_py_read_get(o->snap, o, id);
}

static PyObject *snap_get_copy(SnapshotObject *o, PyObject *id)
{
	SNAP_OK(o);
	return sutra_py_read_get(o->snap, NULL, id);
}

static PyObject *snap_contains(SnapshotObject *o, PyObject *id)
{
	SNAP_OK(o);
	return sutra_py_read_contains(o->snap, id);
}

static PyObject *snap_neighbors(SnapshotObject *o, PyObject *args, PyObject *kw)
{
	SNAP_OK(o);
	return sutra_py_read_neighbors(o->snap, args, kw);
}

static PyObject *snap_get_neighbors(SnapshotObject *o, PyObject *args, PyObject *kw)
{
	SNAP_OK(o);
	return sutra_py_read_neighbor_list(o->snap, args, kw, 0);
}

static PyObject *snap_neighbors_detail(SnapshotObject *o, PyObject *args, PyObject *kw)
{
	SNAP_OK(o);
	return sutra_py_read_neighbor_list(o->snap, args, kw, 1);
}

static PyObject *snap_vector_search(SnapshotObject *o, PyObject *args, PyObject *kw)
{
	SNAP_OK(o);
	return sutra_py_vector_search(o, args, kw);
}

static PyObject *snap_text_search(SnapshotObject *o, PyObject *args, PyObject *kw)
{
	SNAP_OK(o);
	return sutra_py_text_search(o, args, kw);
}

static PyObject *snap_find_path(SnapshotObject *o, PyObject *args, PyObject *kw)
{
	SNAP_OK(o);
	return sutra_py_read_paths(o->snap, args, kw, 0);
}

static PyObject *snap_find_paths(SnapshotObject *o, PyObject *args, PyObject *kw)
{
	SNAP_OK(o);
	return sutra_py_read_paths(o->snap, args, kw, 1);
}

static PyObject *snap_stats(SnapshotObject *o, PyObject *unused)
{
	(void)unused;
	SNAP_OK(o);
	return sutra_py_read_stats(o->snap);
}

static PyObject *snap_ids(SnapshotObject *o, PyObject *unused)
{
	(void)unused;
	SNAP_OK(o);
	return sutra_py_read_foreach(o->snap, NULL, 1);
}

static PyObject *snap_concepts(SnapshotObject *o, PyObject *unused)
{
	(void)unused;
	SNAP_OK(o);
	return sutra_py_read_foreach(o->snap, o, 0);
}

/* ---- Ordinals to ids, for notices ----------------------------------------- */

/* Ordinals -> ids of the live concepts among them (a dict). */
struct resolve_ctx {
	uint32_t *ords;
	size_t n, found;
	PyObject *dict;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int resolve_cb(void *arg, const struct sutra_concept_view *c)
{
	struct resolve_ctx *rc = arg;
	if (!bsearch(&c->ordinal, rc->ords, rc->n, sizeof *rc->ords, cmp_u32))
		return 0;
	PyObject *k = PyLong_FromUnsignedLong(c->ordinal), *v = sutra_py_id_str(c->id);
	int bad = !k || !v || PyDict_SetItem(rc->dict, k, v);
	Py_XDECREF(k);
	Py_XDECREF(v);
	if (bad)
		return 1;
	return ++rc->found == rc->n ? 2 : 0;
}

static PyObject *snap_resolve(SnapshotObject *o, PyObject *seq)
{
	SNAP_OK(o);
	PyObject *fast = PySequence_Fast(seq, "ordinals must be a sequence");
	if (!fast)
		return NULL;
	struct resolve_ctx rc = { NULL, (size_t)PySequence_Fast_GET_SIZE(fast), 0, PyDict_New() };
	rc.ords = PyMem_Malloc((rc.n + 1) * sizeof *rc.ords);
	if (!rc.ords || !rc.dict)
		goto fail;
	for (size_t i = 0; i < rc.n; i++) {
		unsigned long v = PyLong_AsUnsignedLong(PySequence_Fast_GET_ITEM(fast, (Py_ssize_t)i));
		if (PyErr_Occurred())
			goto fail;
		rc.ords[i] = (uint32_t)v;
	}
	qsort(rc.ords, rc.n, sizeof *rc.ords, cmp_u32);
	if (rc.n) {
		int r = sutra_snapshot_foreach(o->snap, resolve_cb, &rc);
		if (r == 1)
			goto fail;
		if (r < 0) {
			sutra_py_raise(r, "resolve ordinals", NULL);
			goto fail;
		}
	}
	PyMem_Free(rc.ords);
	Py_DECREF(fast);
	return rc.dict;
fail:
	PyMem_Free(rc.ords);
	Py_XDECREF(rc.dict);
	Py_DECREF(fast);
	return NULL;
}

/* ---- Release and attributes ----------------------------------------------- */

static PyObject *snap_release(SnapshotObject *o, PyObject *unused)
{
	(void)unused;
	o->released = 1;
	snapshot_drop(o);
	Py_RETURN_NONE;
}

static PyObject *snap_enter(SnapshotObject *o, PyObject *unused)
{
	(void)unused;
	SNAP_OK(o);
	Py_INCREF(o);
	return (PyObject *)o;
}

static PyObject *snap_exit(SnapshotObject *o, PyObject *args)
{
	(void)args;
	return snap_release(o, NULL);
}

static PyObject *snap_epoch(SnapshotObject *o, void *unused)
{
	(void)unused;
	SNAP_OK(o);
	return PyLong_FromUnsignedLongLong(sutra_snapshot_epoch(o->snap));
}

static PyObject *snap_released(SnapshotObject *o, void *unused)
{
	(void)unused;
	return PyBool_FromLong(o->released);
}

static PyObject *snap_store(SnapshotObject *o, void *unused)
{
	(void)unused;
	Py_INCREF(o->store);
	return (PyObject *)o->store;
}

/* ---- Type ----------------------------------------------------------------- */

static PyMethodDef snap_methods[] = {
	{ "query_concept", (PyCFunction)snap_get, METH_O,
	  "The concept as a dict, its embedding a read-only numpy array over the mapping "
	  "(zero-copy), or None." },
	{ "get", (PyCFunction)snap_get, METH_O, "Same as query_concept." },
	{ "query_concept_copy", (PyCFunction)snap_get_copy, METH_O,
	  "As query_concept, with the embedding copied." },
	{ "contains", (PyCFunction)snap_contains, METH_O, "True when the concept is live." },
	{ "_neighbors", (PyCFunction)(void (*)(void))snap_neighbors, METH_VARARGS | METH_KEYWORDS,
	  NULL },
	{ "get_neighbors", (PyCFunction)(void (*)(void))snap_get_neighbors,
	  METH_VARARGS | METH_KEYWORDS,
	  "get_neighbors(id, assoc_type=None, direction='both', limit=None) -> [id]" },
	{ "neighbors", (PyCFunction)(void (*)(void))snap_neighbors_detail,
	  METH_VARARGS | METH_KEYWORDS,
	  "neighbors(id, assoc_type=None, direction='both', limit=None) -> [dict]" },
	{ "vector_search", (PyCFunction)(void (*)(void))snap_vector_search,
	  METH_VARARGS | METH_KEYWORDS,
	  "vector_search(query, k=10, ef_search=50, text=None, text_mode='all') -> [(id, similarity)]" },
	{ "text_search", (PyCFunction)(void (*)(void))snap_text_search,
	  METH_VARARGS | METH_KEYWORDS,
	  "text_search(text, mode='all', limit=10) -> [(id, matched_terms, strength)]" },
	{ "find_path", (PyCFunction)(void (*)(void))snap_find_path, METH_VARARGS | METH_KEYWORDS,
	  "A shortest path (list of ids) or None." },
	{ "find_paths", (PyCFunction)(void (*)(void))snap_find_paths,
	  METH_VARARGS | METH_KEYWORDS, "Up to k shortest simple paths, shortest first." },
	{ "stats", (PyCFunction)snap_stats, METH_NOARGS, "Counts and sizes of the snapshot." },
	{ "ids", (PyCFunction)snap_ids, METH_NOARGS, "Every live concept id." },
	{ "concepts", (PyCFunction)snap_concepts, METH_NOARGS,
	  "Every live concept as a dict (zero-copy embeddings)." },
	{ "_resolve", (PyCFunction)snap_resolve, METH_O, NULL },
	{ "release", (PyCFunction)snap_release, METH_NOARGS,
	  "Releases the snapshot (once no zero-copy array refers to it)." },
	{ "__enter__", (PyCFunction)snap_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)snap_exit, METH_VARARGS, NULL },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef snap_getset[] = {
	{ "epoch", (getter)snap_epoch, NULL, "The snapshot's epoch.", NULL },
	{ "released", (getter)snap_released, NULL, "True once released.", NULL },
	{ "store", (getter)snap_store, NULL, "The store it was taken from.", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject sutra_py_snapshot_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sutra._sutra.Snapshot",
	.tp_basicsize = sizeof(SnapshotObject),
	.tp_dealloc = (destructor)snapshot_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "A stable view of one epoch; use it as a context manager.",
	.tp_methods = snap_methods,
	.tp_getset = snap_getset,
};
