/* SPDX-License-Identifier: MIT */
/* The Store's write methods of the extension module _sutra: their arguments, and one client call each. */
#include "_sutra.h"

#include <string.h>

char *sutra_py_learn_kwlist[] = { "id", "content", "embedding", "strength", "confidence",
				  "metadata", NULL };

int sutra_py_concept_args_parse(StoreObject *s, struct sutra_py_concept_args *ca, PyObject *id_o,
				PyObject *content_o, PyObject *emb_o, double strength,
				double confidence, PyObject *meta_o)
{
	memset(ca, 0, sizeof *ca);
	uint8_t *id = PyMem_Malloc(16);
	if (!id)
		return PyErr_NoMemory(), -1;
	ca->in.id = id;
	if (sutra_py_parse_id(id_o, id))
		return -1;
	Py_ssize_t n;
	if (PyUnicode_Check(content_o)) {
		ca->in.content = PyUnicode_AsUTF8AndSize(content_o, &n);
		if (!ca->in.content)
			return -1;
	} else {
		PyErr_Format(PyExc_TypeError, "content must be str, not %.100s",
			     Py_TYPE(content_o)->tp_name);
		return -1;
	}
	if (n == 0) {
		sutra_py_invalid("content must not be empty (SUTRA_EVALUE)");
		return -1;
	}
	ca->in.content_len = (size_t)n;
	if (emb_o && emb_o != Py_None) {
		if (s && s->dim == 0 && sutra_py_store_reader(s))
			return -1;
		PyObject *a = sutra_py_vector(emb_o, s ? s->dim : 0);
		if (!a)
			return -1;
		ca->hold[0] = a;
		ca->in.embedding = PyArray_DATA((PyArrayObject *)a);
		ca->in.vector_dim = (uint32_t)PyArray_DIM((PyArrayObject *)a, 0);
	}
	ca->in.strength = (float)strength;
	ca->in.confidence = (float)confidence;
	if (meta_o && meta_o != Py_None) {
		if (PyUnicode_Check(meta_o)) {
			PyObject *b = PyUnicode_AsUTF8String(meta_o);
			if (!b)
				return -1;
			ca->hold[1] = b;
		} else if (PyBytes_Check(meta_o)) {
			Py_INCREF(meta_o);
			ca->hold[1] = meta_o;
		} else {
			PyErr_SetString(PyExc_TypeError, "metadata must be bytes or str");
			return -1;
		}
		ca->in.metadata = PyBytes_AS_STRING(ca->hold[1]);
		ca->in.metadata_len = (size_t)PyBytes_GET_SIZE(ca->hold[1]);
	}
	return 0;
}

void sutra_py_concept_args_clear(struct sutra_py_concept_args *ca)
{
	PyMem_Free((void *)ca->in.id);
	for (int i = 0; i < 3; i++)
		Py_XDECREF(ca->hold[i]);
}

/* Each w_* runs one call of the client, without the GIL: it may touch only
 * what its argument holds. */
static int w_learn(sutra_client *c, void *arg, uint64_t *epoch)
{
	return sutra_client_learn_concept(c, &((struct sutra_py_concept_args *)arg)->in, epoch);
}

PyObject *sutra_py_store_learn_concept(StoreObject *s, PyObject *args, PyObject *kw)
{
	PyObject *id_o, *content_o, *emb_o = Py_None, *meta_o = Py_None;
	double strength = 1.0, confidence = 1.0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OddO", sutra_py_learn_kwlist, &id_o,
					 &content_o, &emb_o, &strength, &confidence, &meta_o))
		return NULL;
	if (sutra_py_store_usable(s))
		return NULL;
	struct sutra_py_concept_args ca;
	PyObject *r = NULL;
	if (sutra_py_concept_args_parse(s, &ca, id_o, content_o, emb_o, strength, confidence,
					meta_o) == 0)
		r = sutra_py_store_write(s, "learn_concept", w_learn, &ca);
	sutra_py_concept_args_clear(&ca);
	return r;
}

struct assoc_write {
	struct sutra_py_assoc a;
	float confidence, weight;
};

static int w_assoc(sutra_client *c, void *arg, uint64_t *epoch)
{
	struct assoc_write *w = arg;
	return sutra_client_learn_association(c, w->a.src, w->a.dst, (uint8_t)w->a.type,
					      w->confidence, w->weight, epoch);
}

PyObject *sutra_py_store_learn_association(StoreObject *s, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "source_id", "target_id", "assoc_type", "confidence", "weight",
				  NULL };
	PyObject *a_o, *b_o, *t_o = NULL;
	double conf = 1.0, weight = 1.0;
	struct assoc_write w;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|Odd", kwlist, &a_o, &b_o, &t_o, &conf,
					 &weight))
		return NULL;
	if (sutra_py_parse_assoc(a_o, b_o, t_o, &w.a))
		return NULL;
	w.confidence = (float)conf;
	w.weight = (float)weight;
	return sutra_py_store_write(s, "learn_association", w_assoc, &w);
}

static int w_delc(sutra_client *c, void *arg, uint64_t *epoch)
{
	return sutra_client_delete_concept(c, arg, epoch);
}

PyObject *sutra_py_store_delete_concept(StoreObject *s, PyObject *arg)
{
	uint8_t id[16];
	if (sutra_py_parse_id(arg, id))
		return NULL;
	return sutra_py_store_write(s, "delete_concept", w_delc, id);
}

static int w_dela(sutra_client *c, void *arg, uint64_t *epoch)
{
	struct sutra_py_assoc *a = arg;
	return sutra_client_delete_association(c, a->src, a->dst, (uint8_t)a->type, epoch);
}

PyObject *sutra_py_store_delete_association(StoreObject *s, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "source_id", "target_id", "assoc_type", NULL };
	PyObject *a_o, *b_o, *t_o = NULL;
	struct sutra_py_assoc a;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O", kwlist, &a_o, &b_o, &t_o))
		return NULL;
	if (sutra_py_parse_assoc(a_o, b_o, t_o, &a))
		return NULL;
	return sutra_py_store_write(s, "delete_association", w_dela, &a);
}

static int w_sync(sutra_client *c, void *arg, uint64_t *epoch)
{
	(void)arg;
	return sutra_client_sync(c, epoch);
}

PyObject *sutra_py_store_flush(StoreObject *s, PyObject *unused)
{
	(void)unused;
	return sutra_py_store_write(s, "flush", w_sync, NULL);
}

static int w_ping(sutra_client *c, void *arg, uint64_t *epoch)
{
	(void)arg;
	return sutra_client_ping(c, epoch);
}

PyObject *sutra_py_store_ping(StoreObject *s, PyObject *unused)
{
	(void)unused;
	return sutra_py_store_write(s, "ping", w_ping, NULL);
}

static int w_stats(sutra_client *c, void *arg, uint64_t *epoch)
{
	int rc = sutra_client_stats(c, arg);
	if (rc == 0)
		*epoch = ((struct sutra_coord_stats *)arg)->epoch;
	return rc;
}

PyObject *sutra_py_store_coordinator_stats(StoreObject *s, PyObject *unused)
{
	(void)unused;
	struct sutra_coord_stats st;
	PyObject *e = sutra_py_store_write(s, "coordinator_stats", w_stats, &st);
	if (!e)
		return NULL;
	Py_DECREF(e);
	PyObject *d = PyDict_New();
	if (!d)
		return NULL;
	SUTRA_PY_SET_U64(d, "epoch", st.epoch);
	SUTRA_PY_SET_U64(d, "durable_epoch", st.durable_epoch);
	SUTRA_PY_SET_U64(d, "published_end", st.published_end);
	SUTRA_PY_SET_U64(d, "file_size", st.file_size);
	SUTRA_PY_SET_U64(d, "concept_count", st.concept_count);
	SUTRA_PY_SET_U64(d, "association_count", st.association_count);
	SUTRA_PY_SET_U64(d, "next_ordinal", st.next_ordinal);
	SUTRA_PY_SET_U64(d, "commits", st.commits);
	SUTRA_PY_SET_U64(d, "requests", st.requests);
	SUTRA_PY_SET_U64(d, "rejected", st.rejected);
	SUTRA_PY_SET_U64(d, "duplicates", st.duplicates);
	SUTRA_PY_SET_U64(d, "syncs", st.syncs);
	SUTRA_PY_SET_U64(d, "vector_dimension", st.vector_dim);
	SUTRA_PY_SET_U64(d, "relaxed", st.relaxed);
	SUTRA_PY_SET_U64(d, "io_uring", st.io_uring);
	SUTRA_PY_SET_U64(d, "relistens", st.relistens);
	return d;
}
