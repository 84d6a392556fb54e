/* SPDX-License-Identifier: MIT */
/* The Notices object of the extension module _sutra: a second reader subscribed to the coordinator's epoch notices. */
#include "_sutra.h"

#include <errno.h>
#include <string.h>

typedef struct {
	PyObject_HEAD
	StoreObject *store;
	sutra_reader *rdr;
	unsigned long gen;
	int busy;
} NoticesObject;

PyObject *sutra_py_store_open_notices(StoreObject *s, PyObject *unused)
{
	(void)unused;
	if (sutra_py_store_usable(s) || sutra_py_store_reader(s))
		return NULL;
	if (!sutra_py_nng_allowed("notices"))
		return NULL;
	char url[512];
	if (sutra_py_store_events_url(s, url, sizeof url))
		return NULL;
	sutra_reader *r;
	int rc = sutra_reader_open(s->path, &r);
	if (rc)
		return sutra_py_raise(rc, "notices: open", NULL);
	sigset_t old;
	sutra_py_nng_enter(&old);
	rc = sutra_reader_subscribe(r, url);
	sutra_py_nng_leave(&old);
	if (rc) {
		sutra_reader_close(r);
		return sutra_py_raise(rc, "notices: subscribe", url);
	}
	NoticesObject *o = PyObject_New(NoticesObject, &sutra_py_notices_type);
	if (!o) {
		sutra_reader_close(r);
		return NULL;
	}
	Py_INCREF(s);
	o->store = s;
	o->rdr = r;
	o->gen = sutra_py_fork_gen;
	o->busy = 0;
	return (PyObject *)o;
}

static int notices_ok(NoticesObject *o)
{
	if (!o->rdr || o->gen != sutra_py_fork_gen) {
		sutra_py_invalid(o->rdr ? "the notices were opened before a fork"
					: "the notices are closed");
		return -1;
	}
	return 0;
}

static PyObject *notices_close(NoticesObject *o, PyObject *unused)
{
	(void)unused;
	if (o->rdr && o->gen == sutra_py_fork_gen) {
		if (o->busy)
			return sutra_py_invalid("close: another thread is waiting");
		sutra_reader *r = o->rdr;
		o->rdr = NULL;
		Py_BEGIN_ALLOW_THREADS
		sutra_reader_close(r);
		Py_END_ALLOW_THREADS
	}
	o->rdr = NULL;
	Py_RETURN_NONE;
}

static void notices_dealloc(NoticesObject *o)
{
	if (o->rdr && o->gen == sutra_py_fork_gen && !o->busy)
		sutra_reader_close(o->rdr);
	Py_XDECREF(o->store);
	Py_TYPE(o)->tp_free((PyObject *)o);
}

static PyObject *notices_fileno(NoticesObject *o, PyObject *unused)
{
	(void)unused;
	if (notices_ok(o))
		return NULL;
	int fd;
	int rc = sutra_reader_notice_fd(o->rdr, &fd);
	if (rc)
		return sutra_py_raise(rc, "notices: fileno", NULL);
	return PyLong_FromLong(fd);
}

/* _next(timeout_ms) -> (epoch, published_end, durable_epoch, heartbeat,
 * [ordinals]) or None after the timeout. */
static PyObject *notices_next(NoticesObject *o, PyObject *arg)
{
	if (notices_ok(o))
		return NULL;
	long timeout = PyLong_AsLong(arg);
	if (timeout == -1 && PyErr_Occurred())
		return NULL;
	struct sutra_notice n;
	memset(&n, 0, sizeof n);
	int rc;
	sutra_reader *r = o->rdr;
	o->busy++;
	Py_BEGIN_ALLOW_THREADS
	rc = sutra_reader_next_notice(r, (int)timeout, &n);
	Py_END_ALLOW_THREADS
	o->busy--;
	if (rc == -ETIMEDOUT)
		Py_RETURN_NONE;
	if (rc)
		return sutra_py_raise(rc, "notices: next", NULL);
	PyObject *ords = PyList_New((Py_ssize_t)n.changed_count);
	for (size_t i = 0; ords && i < n.changed_count; i++) {
		PyObject *v = PyLong_FromUnsignedLong(n.changed[i]);
		if (!v) {
			Py_CLEAR(ords);
			break;
		}
		PyList_SET_ITEM(ords, (Py_ssize_t)i, v);
	}
	PyObject *res = NULL;
	if (ords)
		res = Py_BuildValue("(KKKiN)", (unsigned long long)n.epoch,
				    (unsigned long long)n.published_end,
				    (unsigned long long)n.durable_epoch, n.heartbeat, ords);
	sutra_notice_clear(&n);
	return res;
}

static PyMethodDef notices_methods[] = {
	{ "fileno", (PyCFunction)notices_fileno, METH_NOARGS,
	  "A descriptor that becomes readable when a notice waits (for asyncio)." },
	{ "_next", (PyCFunction)notices_next, METH_O, NULL },
	{ "close", (PyCFunction)notices_close, METH_NOARGS, "Stops receiving notices." },
	{ NULL, NULL, 0, NULL },
};

PyTypeObject sutra_py_notices_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sutra._sutra.Notices",
	.tp_basicsize = sizeof(NoticesObject),
	.tp_dealloc = (destructor)notices_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "A subscription to a store's epoch notices.",
	.tp_methods = notices_methods,
};
