/* SPDX-License-Identifier: MIT */
/* The reads of the extension module _sutra over one C snapshot (concepts, neighbours, paths, stats, iteration), shared by Store and Snapshot. */
#include "_sutra.h"

#include <string.h>

/* A dict for a concept; zc: the snapshot for zero-copy, NULL to copy. */
static PyObject *concept_dict(const struct sutra_concept_view *c, SnapshotObject *zc)
{
	PyObject *d = PyDict_New();
	if (!d)
		return NULL;
	PyObject *emb;
	if (!c->embedding || !c->vector_dim) {
		Py_INCREF(Py_None);
		emb = Py_None;
	} else {
		emb = zc ? sutra_py_pinned_vector(zc, c->embedding, c->vector_dim)
			 : sutra_py_vector_copy(c->embedding, c->vector_dim);
	}
	PyObject *meta;
	if (c->metadata) {
		meta = PyBytes_FromStringAndSize(c->metadata, c->metadata_len);
	} else {
		Py_INCREF(Py_None);
		meta = Py_None;
	}
	if (sutra_py_dict_set(d, "id", sutra_py_id_str(c->id)) ||
	    sutra_py_dict_set(d, "content",
			      PyUnicode_DecodeUTF8(c->content, c->content_len, "replace")) ||
	    sutra_py_dict_set(d, "embedding", emb) ||
	    sutra_py_dict_set(d, "strength", PyFloat_FromDouble(c->strength)) ||
	    sutra_py_dict_set(d, "confidence", PyFloat_FromDouble(c->confidence)) ||
	    sutra_py_dict_set(d, "created_us", PyLong_FromUnsignedLongLong(c->created_us)) ||
	    sutra_py_dict_set(d, "updated_us", PyLong_FromUnsignedLongLong(c->updated_us)) ||
	    sutra_py_dict_set(d, "metadata", meta) ||
	    sutra_py_dict_set(d, "ordinal", PyLong_FromUnsignedLong(c->ordinal))) {
		Py_DECREF(d);
		return NULL;
	}
	return d;
}

PyObject *sutra_py_read_get(const sutra_snapshot *snap, SnapshotObject *zc, PyObject *id_o)
{
	uint8_t id[16];
	if (sutra_py_parse_id(id_o, id))
		return NULL;
	struct sutra_concept_view v;
	int rc = sutra_snapshot_get(snap, id, &v);
	if (rc == SUTRA_ENOTFOUND)
		Py_RETURN_NONE;
	if (rc)
		return sutra_py_raise(rc, "query_concept", NULL);
	return concept_dict(&v, zc);
}

PyObject *sutra_py_read_contains(const sutra_snapshot *snap, PyObject *id_o)
{
	uint8_t id[16];
	if (sutra_py_parse_id(id_o, id))
		return NULL;
	int rc = sutra_snapshot_contains(snap, id);
	if (rc < 0)
		return sutra_py_raise(rc, "contains", NULL);
	return PyBool_FromLong(rc);
}

static int parse_direction(PyObject *o, enum sutra_direction *out)
{
	if (!o || o == Py_None) {
		*out = SUTRA_DIR_BOTH;
		return 0;
	}
	const char *s = PyUnicode_Check(o) ? PyUnicode_AsUTF8(o) : NULL;
	if (s && strcmp(s, "both") == 0)
		*out = SUTRA_DIR_BOTH;
	else if (s && (strcmp(s, "out") == 0 || strcmp(s, "outgoing") == 0))
		*out = SUTRA_DIR_OUT;
	else if (s && (strcmp(s, "in") == 0 || strcmp(s, "incoming") == 0))
		*out = SUTRA_DIR_IN;
	else {
		if (!PyErr_Occurred())
			sutra_py_invalid("direction must be \"both\", \"out\" or \"in\", not %R", o);
		return -1;
	}
	return 0;
}

static PyObject *neighbor_dict(const struct sutra_neighbor *nb)
{
	PyObject *item = PyDict_New();
	if (item &&
	    (sutra_py_dict_set(item, "id", sutra_py_id_str(nb->id)) ||
	     sutra_py_dict_set(item, "assoc_type", PyLong_FromLong(nb->type)) ||
	     sutra_py_dict_set(item, "direction", PyUnicode_FromString(nb->outgoing ? "out" : "in")) ||
	     sutra_py_dict_set(item, "confidence", PyFloat_FromDouble(nb->confidence)) ||
	     sutra_py_dict_set(item, "weight", PyFloat_FromDouble(nb->weight)) ||
	     sutra_py_dict_set(item, "created_us", PyLong_FromUnsignedLongLong(nb->created_us))))
		Py_CLEAR(item);
	return item;
}

PyObject *sutra_py_read_neighbors(const sutra_snapshot *snap, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "id", "assoc_type", "direction", "limit", "detail",
				  "missing_ok", NULL };
	PyObject *id_o, *t_o = Py_None, *dir_o = Py_None, *lim_o = Py_None;
	int detail = 0, missing_ok = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OOOpp", kwlist, &id_o, &t_o, &dir_o, &lim_o,
					 &detail, &missing_ok))
		return NULL;
	uint8_t id[16];
	int type;
	enum sutra_direction dir;
	if (sutra_py_parse_id(id_o, id) || sutra_py_parse_type(t_o, 1, &type) ||
	    parse_direction(dir_o, &dir))
		return NULL;
	size_t limit = SIZE_MAX;
	if (lim_o != Py_None) {
		Py_ssize_t l = PyLong_AsSsize_t(lim_o);
		if (l == -1 && PyErr_Occurred())
			return NULL;
		if (l < 0)
			return sutra_py_invalid("limit must be >= 0");
		limit = (size_t)l;
	}
	/* Most concepts have few neighbours: one call into a stack buffer,
	 * a second one only when there are more. */
	struct sutra_neighbor stackbuf[64], *buf = stackbuf;
	size_t cap = limit < 64 ? limit : 64, n = 0, total = 0;
	int rc = sutra_snapshot_neighbors(snap, id, type, dir, cap, buf, &n, &total);
	if (rc == 0 && total > n && cap < limit) {
		cap = total < limit ? total : limit;
		buf = PyMem_Malloc(cap * sizeof *buf);
		if (!buf)
			return PyErr_NoMemory();
		rc = sutra_snapshot_neighbors(snap, id, type, dir, cap, buf, &n, &total);
	}
	PyObject *list = NULL;
	if (rc == SUTRA_ENOTFOUND && missing_ok) {
		list = PyList_New(0);
		goto out;
	}
	if (rc) {
		sutra_py_raise(rc, "neighbors", NULL);
		goto out;
	}
	list = PyList_New((Py_ssize_t)n);
	if (!list)
		goto out;
	for (size_t i = 0; i < n; i++) {
		PyObject *item = detail ? neighbor_dict(&buf[i]) : sutra_py_id_str(buf[i].id);
		if (!item) {
			Py_CLEAR(list);
			goto out;
		}
		PyList_SET_ITEM(list, (Py_ssize_t)i, item);
	}
out:
	if (buf != stackbuf)
		PyMem_Free(buf);
	return list;
}

PyObject *sutra_py_read_neighbor_list(const sutra_snapshot *snap, PyObject *args, PyObject *kw,
				      int detail)
{
	static char *kwlist[] = { "id", "assoc_type", "direction", "limit", NULL };
	PyObject *id_o, *t_o = Py_None, *dir_o = Py_None, *lim_o = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OOO", kwlist, &id_o, &t_o, &dir_o, &lim_o))
		return NULL;
	PyObject *a = Py_BuildValue("(OOOOii)", id_o, t_o, dir_o, lim_o, detail, !detail);
	if (!a)
		return NULL;
	PyObject *r = sutra_py_read_neighbors(snap, a, NULL);
	Py_DECREF(a);
	return r;
}

static PyObject *path_list(uint8_t (*ids)[16], size_t len)
{
	PyObject *l = PyList_New((Py_ssize_t)len);
	if (!l)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		PyObject *s = sutra_py_id_str(ids[i]);
		if (!s) {
			Py_DECREF(l);
			return NULL;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, s);
	}
	return l;
}

/* find_path(start, end, max_depth=6, assoc_type=None, direction="both")
 * -> list or None; find_paths(..., k=3) -> list of lists. */
PyObject *sutra_py_read_paths(const sutra_snapshot *snap, PyObject *args, PyObject *kw, int many)
{
	static char *kwlist[] = { "start", "end", "max_depth", "assoc_type", "direction", "k",
				  NULL };
	PyObject *a_o, *b_o, *t_o = Py_None, *dir_o = Py_None;
	int depth = 6, k = 3, type;
	uint8_t a[16], b[16];
	enum sutra_direction dir;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|iOOi", kwlist, &a_o, &b_o, &depth, &t_o,
					 &dir_o, &k))
		return NULL;
	if (sutra_py_parse_id(a_o, a) || sutra_py_parse_id(b_o, b) ||
	    sutra_py_parse_type(t_o, 1, &type) || parse_direction(dir_o, &dir))
		return NULL;
	if (depth < 1 || depth > SUTRA_MAX_PATH_DEPTH)
		return sutra_py_invalid("max_depth must be in 1..%d", SUTRA_MAX_PATH_DEPTH);
	if (many && (k < 1 || k > SUTRA_MAX_PATHS))
		return sutra_py_invalid("k must be in 1..%d", SUTRA_MAX_PATHS);
	if (!many)
		k = 1;
	size_t stride = (size_t)depth + 1;
	uint8_t(*out)[16] = PyMem_Malloc((size_t)k * stride * 16);
	size_t *lens = PyMem_Malloc((size_t)k * sizeof *lens);
	PyObject *res = NULL;
	if (!out || !lens) {
		PyErr_NoMemory();
		goto done;
	}
	size_t count = 0, len = 0;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	if (many)
		rc = sutra_snapshot_paths(snap, a, b, type, dir, (unsigned)depth, (size_t)k, out,
					  lens, &count);
	else
		rc = sutra_snapshot_shortest_path(snap, a, b, type, dir, (unsigned)depth, out,
						  &len);
	Py_END_ALLOW_THREADS
	if (rc == SUTRA_ENOTFOUND) {
		if (many)
			res = PyList_New(0);
		else {
			Py_INCREF(Py_None);
			res = Py_None;
		}
		goto done;
	}
	if (rc) {
		sutra_py_raise(rc, many ? "find_paths" : "find_path", NULL);
		goto done;
	}
	if (!many) {
		res = path_list(out, len);
		goto done;
	}
	res = PyList_New((Py_ssize_t)count);
	for (size_t j = 0; res && j < count; j++) {
		PyObject *p = path_list(out + j * stride, lens[j]);
		if (!p) {
			Py_CLEAR(res);
			break;
		}
		PyList_SET_ITEM(res, (Py_ssize_t)j, p);
	}
done:
	PyMem_Free(out);
	PyMem_Free(lens);
	return res;
}

PyObject *sutra_py_read_stats(const sutra_snapshot *snap)
{
	struct sutra_reader_stats st;
	sutra_snapshot_stats(snap, &st);
	PyObject *d = PyDict_New();
	if (!d)
		return NULL;
	SUTRA_PY_SET_U64(d, "epoch", st.epoch);
	SUTRA_PY_SET_U64(d, "concept_count", st.concept_count);
	SUTRA_PY_SET_U64(d, "association_count", st.association_count);
	SUTRA_PY_SET_U64(d, "vector_dimension", st.vector_dim);
	SUTRA_PY_SET_U64(d, "published_end", st.published_end);
	SUTRA_PY_SET_U64(d, "file_size", st.file_size);
	SUTRA_PY_SET_U64(d, "tail_bytes", st.tail_bytes);
	SUTRA_PY_SET_U64(d, "segment_count", st.segment_count);
	return d;
}

struct foreach_ctx {
	PyObject *list;
	SnapshotObject *zc;
	int ids_only;
};

static int foreach_cb(void *arg, const struct sutra_concept_view *c)
{
	struct foreach_ctx *fc = arg;
	PyObject *o = fc->ids_only ? sutra_py_id_str(c->id) : concept_dict(c, fc->zc);
	if (!o)
		return 1;
	int rc = PyList_Append(fc->list, o);
	Py_DECREF(o);
	return rc ? 1 : 0;
}

PyObject *sutra_py_read_foreach(const sutra_snapshot *snap, SnapshotObject *zc, int ids_only)
{
	struct foreach_ctx fc = { PyList_New(0), zc, ids_only };
	if (!fc.list)
		return NULL;
	int rc = sutra_snapshot_foreach(snap, foreach_cb, &fc);
	if (rc == 1 && PyErr_Occurred()) {
		Py_DECREF(fc.list);
		return NULL;
	}
	if (rc) {
		Py_DECREF(fc.list);
		return sutra_py_raise(rc, "iterate", NULL);
	}
	return fc.list;
}
