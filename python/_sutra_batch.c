/* SPDX-License-Identifier: MIT */
/* The Batch object of the extension module _sutra: writes collected in this process and committed as one request. */
#include "_sutra.h"

typedef struct {
	PyObject_HEAD
	StoreObject *store;
	sutra_batch *b;
} BatchObject;

PyObject *sutra_py_store_new_batch(StoreObject *s, PyObject *unused)
{
	(void)unused;
	if (sutra_py_store_usable(s))
		return NULL;
	BatchObject *o = PyObject_New(BatchObject, &sutra_py_batch_type);
	if (!o)
		return NULL;
	o->b = sutra_batch_create();
	if (!o->b) {
		o->store = NULL;
		Py_DECREF(o);
		return PyErr_NoMemory();
	}
	Py_INCREF(s);
	o->store = s;
	return (PyObject *)o;
}

static void batch_dealloc(BatchObject *o)
{
	sutra_batch_destroy(o->b);
	Py_XDECREF(o->store);
	Py_TYPE(o)->tp_free((PyObject *)o);
}

static PyObject *batch_rc(int rc)
{
	if (rc)
		return sutra_py_raise(rc, "batch", NULL);
	Py_RETURN_NONE;
}

static PyObject *batch_learn_concept(BatchObject *o, PyObject *args, PyObject *kw)
{
	PyObject *id_o, *content_o, *emb_o = Py_None, *meta_o = Py_None;
	double strength = 1.0, confidence = 1.0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OddO", sutra_py_learn_kwlist, &id_o,
					 &content_o, &emb_o, &strength, &confidence, &meta_o))
		return NULL;
	if (sutra_py_store_usable(o->store))
		return NULL;
	struct sutra_py_concept_args ca;
	PyObject *r = NULL;
	if (sutra_py_concept_args_parse(o->store, &ca, id_o, content_o, emb_o, strength,
					confidence, meta_o) == 0)
		r = batch_rc(sutra_batch_learn_concept(o->b, &ca.in));
	sutra_py_concept_args_clear(&ca);
	return r;
}

static PyObject *batch_learn_association(BatchObject *o, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "source_id", "target_id", "assoc_type", "confidence", "weight",
				  NULL };
	PyObject *a_o, *b_o, *t_o = NULL;
	double conf = 1.0, weight = 1.0;
	struct sutra_py_assoc a;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|Odd", kwlist, &a_o, &b_o, &t_o, &conf,
					 &weight))
		return NULL;
	if (sutra_py_parse_assoc(a_o, b_o, t_o, &a))
		return NULL;
	return batch_rc(sutra_batch_learn_association(o->b, a.src, a.dst, (uint8_t)a.type,
						      (float)conf, (float)weight));
}

static PyObject *batch_delete_concept(BatchObject *o, PyObject *arg)
{
	uint8_t id[16];
	if (sutra_py_parse_id(arg, id))
		return NULL;
	return batch_rc(sutra_batch_delete_concept(o->b, id));
}

static PyObject *batch_delete_association(BatchObject *o, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "source_id", "target_id", "assoc_type", NULL };
	PyObject *a_o, *b_o, *t_o = NULL;
	struct sutra_py_assoc a;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O", kwlist, &a_o, &b_o, &t_o))
		return NULL;
	if (sutra_py_parse_assoc(a_o, b_o, t_o, &a))
		return NULL;
	return batch_rc(sutra_batch_delete_association(o->b, a.src, a.dst, (uint8_t)a.type));
}

static int w_commit(sutra_client *c, void *arg, uint64_t *epoch)
{
	return sutra_client_commit(c, arg, epoch);
}

static PyObject *batch_commit(BatchObject *o, PyObject *unused)
{
	(void)unused;
	PyObject *e = sutra_py_store_write(o->store, "batch commit", w_commit, o->b);
	if (e)
		sutra_batch_clear(o->b);
	return e;
}

static PyObject *batch_clear(BatchObject *o, PyObject *unused)
{
	(void)unused;
	sutra_batch_clear(o->b);
	Py_RETURN_NONE;
}

static Py_ssize_t batch_len(BatchObject *o)
{
	return (Py_ssize_t)sutra_batch_count(o->b);
}

static PyMethodDef batch_methods[] = {
	{ "learn_concept", (PyCFunction)(void (*)(void))batch_learn_concept,
	  METH_VARARGS | METH_KEYWORDS, "Adds a learn_concept to the batch." },
	{ "learn_association", (PyCFunction)(void (*)(void))batch_learn_association,
	  METH_VARARGS | METH_KEYWORDS, "Adds a learn_association to the batch." },
	{ "delete_concept", (PyCFunction)batch_delete_concept, METH_O,
	  "Adds a delete_concept to the batch." },
	{ "delete_association", (PyCFunction)(void (*)(void))batch_delete_association,
	  METH_VARARGS | METH_KEYWORDS, "Adds a delete_association to the batch." },
	{ "commit", (PyCFunction)batch_commit, METH_NOARGS,
	  "Sends the batch as one request: all applied in one epoch (returned), or none." },
	{ "clear", (PyCFunction)batch_clear, METH_NOARGS, "Empties the batch." },
	{ NULL, NULL, 0, NULL },
};

static PySequenceMethods batch_seq = { .sq_length = (lenfunc)batch_len };

PyTypeObject sutra_py_batch_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sutra._sutra.Batch",
	.tp_basicsize = sizeof(BatchObject),
	.tp_dealloc = (destructor)batch_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "An atomic batch of writes (all or nothing, one epoch).",
	.tp_methods = batch_methods,
	.tp_as_sequence = &batch_seq,
};
