/* SPDX-License-Identifier: MIT */
/* Vector and text search for the extension module _sutra, over libsutra-reader's search of one snapshot. */
#include "_sutra.h"

#include <string.h>

static int parse_mode(PyObject *o, enum sutra_text_mode *out)
{
	const char *s = o == NULL || o == Py_None ? "all" : PyUnicode_Check(o) ? PyUnicode_AsUTF8(o) : NULL;
	if (s && (strcmp(s, "all") == 0 || strcmp(s, "and") == 0)) {
		*out = SUTRA_TEXT_ALL;
		return 0;
	}
	if (s && (strcmp(s, "any") == 0 || strcmp(s, "or") == 0)) {
		*out = SUTRA_TEXT_ANY;
		return 0;
	}
	if (!PyErr_Occurred())
		sutra_py_raise(SUTRA_EVALUE, "text search", "mode must be \"all\" or \"any\"");
	return -1;
}

static PyObject *hits_list(const struct sutra_search_hit *h, size_t n, int text)
{
	PyObject *l = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; l && i < n; i++) {
		PyObject *t = text ? Py_BuildValue("(Nkf)", sutra_py_id_str(h[i].id),
						   (unsigned long)h[i].matched, (double)h[i].strength)
				   : Py_BuildValue("(Nf)", sutra_py_id_str(h[i].id),
						   (double)h[i].similarity);
		if (!t) {
			Py_CLEAR(l);
			break;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, t);
	}
	return l;
}

/* vector_search(query, k=10, ef_search=50, text=None, text_mode="all")
 * -> [(id, similarity)]: similarity = 1 - cosine distance. */
PyObject *sutra_py_vector_search(SnapshotObject *so, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "query", "k", "ef_search", "text", "text_mode", NULL };
	PyObject *q_o, *text_o = Py_None, *mode_o = Py_None;
	unsigned int k = 10, ef = 50;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|IIOO", kwlist, &q_o, &k, &ef, &text_o,
					 &mode_o))
		return NULL;
	if (sutra_py_snapshot_ok(so))
		return NULL;
	if (k < 1 || k > SUTRA_MAX_K)
		return sutra_py_raise(SUTRA_EVALUE, "vector search", "k must be in 1..1000");
	struct sutra_reader_stats st;
	sutra_snapshot_stats(so->snap, &st);
	PyObject *q = sutra_py_vector(q_o, st.vector_dim);
	if (!q)
		return NULL;
	roaring_bitmap_t *filter = NULL;
	int rc;
	if (text_o != Py_None) {
		enum sutra_text_mode mode;
		Py_ssize_t len;
		const char *t = PyUnicode_Check(text_o) ? PyUnicode_AsUTF8AndSize(text_o, &len) : NULL;
		if (!t) {
			Py_DECREF(q);
			if (!PyErr_Occurred())
				PyErr_SetString(PyExc_TypeError, "text must be str");
			return NULL;
		}
		if (parse_mode(mode_o, &mode)) {
			Py_DECREF(q);
			return NULL;
		}
		rc = sutra_snapshot_text_filter(so->snap, t, (size_t)len, mode, &filter);
		if (rc) {
			Py_DECREF(q);
			return sutra_py_raise(rc, "text filter", NULL);
		}
	}
	struct sutra_search_hit *hits = PyMem_Malloc(k * sizeof *hits);
	size_t n = 0;
	if (!hits) {
		Py_DECREF(q);
		if (filter)
			roaring_bitmap_free(filter);
		return PyErr_NoMemory();
	}
	const float *qv = PyArray_DATA((PyArrayObject *)q);
	Py_BEGIN_ALLOW_THREADS
	rc = sutra_snapshot_vector_search(so->snap, qv, st.vector_dim, k, ef, filter, hits, &n);
	Py_END_ALLOW_THREADS
	/* CRoaring 0.2 does not accept NULL here. */
	if (filter)
		roaring_bitmap_free(filter);
	Py_DECREF(q);
	PyObject *res = rc ? sutra_py_raise(rc, "vector search", NULL) : hits_list(hits, n, 0);
	PyMem_Free(hits);
	return res;
}

/* text_search(text, mode="all", limit=10) -> [(id, matched_terms,
 * strength)], best first. */
PyObject *sutra_py_text_search(SnapshotObject *so, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "text", "mode", "limit", NULL };
	PyObject *mode_o = Py_None;
	const char *t;
	Py_ssize_t len;
	unsigned int limit = 10;
	enum sutra_text_mode mode;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s#|OI", kwlist, &t, &len, &mode_o, &limit))
		return NULL;
	if (sutra_py_snapshot_ok(so) || parse_mode(mode_o, &mode))
		return NULL;
	if (limit < 1 || limit > SUTRA_MAX_K)
		return sutra_py_raise(SUTRA_EVALUE, "text search", "limit must be in 1..1000");
	struct sutra_search_hit *hits = PyMem_Malloc(limit * sizeof *hits);
	if (!hits)
		return PyErr_NoMemory();
	size_t n = 0, total = 0;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = sutra_snapshot_text_search(so->snap, t, (size_t)len, mode, limit, hits, &n, &total);
	Py_END_ALLOW_THREADS
	PyObject *res = NULL;
	if (rc)
		sutra_py_raise(rc, "text search", NULL);
	else
		res = hits_list(hits, n, 1);
	(void)total;
	PyMem_Free(hits);
	return res;
}

