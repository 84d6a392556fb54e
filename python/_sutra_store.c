/* SPDX-License-Identifier: MIT */
/* The Store object of the extension module _sutra: opening in embedded or server mode, the embedded coordinator, the write path, waits. */
#include "_sutra.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sutra/coordinator.h"

/* ---- Embedded coordinator ------------------------------------------------- */

static void log_to_stderr(void *arg, int level, const char *msg)
{
	(void)arg;
	fprintf(stderr, "sutra (embedded coordinator, pid %ld): %s: %s\n", (long)getpid(),
		level <= SUTRA_LOG_ERROR ? "error" : "warning", msg);
}

/* Sets one option of cfg; the names and values are this file's own, so a
 * failure is out of memory or a programming error, reported the same way. */
static int set(sutra_coordinator_config *cfg, const char *name, const char *value,
	       struct sutra_detail *why)
{
	return sutra_coordinator_config_set(cfg, name, value, why);
}

/* Starts the coordinator of s's store in this process (through the public
 * embedding API, include/sutra/coordinator.h): 0, or its error
 * (SUTRA_ELOCKED: another live process holds the writer lock) with why
 * filled. */
static int embedded_start(const StoreObject *s, sutra_coordinator **out,
			  struct sutra_detail *why)
{
	sutra_coordinator_config *cfg;
	char num[16];
	int rc = sutra_coordinator_config_create(&cfg);
	if (rc)
		return rc;
	snprintf(num, sizeof num, "%u", s->dim_request ? (unsigned)s->dim_request : 768u);
	if ((rc = set(cfg, "data", s->path, why)) ||
	    (s->listen_url && (rc = set(cfg, "listen", s->listen_url, why))) ||
	    (s->events_url && (rc = set(cfg, "events", s->events_url, why))) ||
	    (rc = set(cfg, "default-vector-dimension", num, why)) ||
	    (rc = set(cfg, "durability", s->relaxed ? "relaxed" : "sync", why)) ||
	    (rc = set(cfg, "log-level", "warning", why)))
		goto out;
	if (s->segment_kib) {
		snprintf(num, sizeof num, "%u", (unsigned)s->segment_kib);
		if ((rc = set(cfg, "segment-threshold-kib", num, why)))
			goto out;
	}
	sutra_coordinator_config_set_log(cfg, log_to_stderr, NULL);
	rc = sutra_coordinator_start(cfg, out, why);
out:
	sutra_coordinator_config_destroy(cfg);
	return rc;
}

/* Finishes what was queued, syncs, releases the lock and frees. Blocks:
 * called without the GIL. */
static void embedded_stop(sutra_coordinator *co)
{
	sutra_coordinator_stop(co);
	sutra_coordinator_destroy(co);
}

/* The URL the embedded coordinator bound: its notices' (events) or its
 * requests'. Borrowed from co. */
static const char *embedded_url(const sutra_coordinator *co, int events)
{
	return events ? sutra_coordinator_events_url(co) : sutra_coordinator_listen_url(co);
}

int sutra_py_default_url(const char *path, const char *suffix, char *out, size_t len)
{
	return sutra_coordinator_default_url(path, suffix, out, len);
}

/* ---- Opening -------------------------------------------------------------- */

/* The handles of another process (before a fork) are dropped, never
 * closed: the parent still uses them. */
static void store_check_fork(StoreObject *s)
{
	if (s->gen == sutra_py_fork_gen)
		return;
	s->srv = NULL;
	s->cli = NULL;
	s->rdr = NULL;
	s->subscribed = 0;
	s->role = ROLE_NONE;
	s->snapshots = 0;
	s->busy = 0;
	s->gen = sutra_py_fork_gen;
}

int sutra_py_store_usable(StoreObject *s)
{
	if (s->closed) {
		sutra_py_invalid("the store is closed");
		return -1;
	}
	store_check_fork(s);
	return 0;
}

static int url_or_default(const StoreObject *s, const char *given, const char *suffix, char *out,
			  size_t len)
{
	if (given) {
		snprintf(out, len, "%s", given);
		return 0;
	}
	int rc = sutra_py_default_url(s->path, suffix, out, len);
	if (rc)
		sutra_py_raise(rc, "default URL", "the store path is too long for an ipc:// URL");
	return rc;
}

static int store_write_url(StoreObject *s, char *out, size_t len)
{
	if (s->srv) {
		snprintf(out, len, "%s", embedded_url(s->srv, 0));
		return 0;
	}
	return url_or_default(s, s->listen_url, "write", out, len);
}

int sutra_py_store_events_url(StoreObject *s, char *out, size_t len)
{
	if (s->srv) {
		snprintf(out, len, "%s", embedded_url(s->srv, 1));
		return 0;
	}
	return url_or_default(s, s->events_url, "events", out, len);
}

/* Embedded mode: starts the coordinator in this process, unless another
 * live process (or another store object of this one) holds the writer
 * lock, in which case this object writes through that holder's URL. */
static int store_start_writer(StoreObject *s)
{
	if (s->srv || s->role == ROLE_CLIENT || !s->embedded)
		return 0;
	if (!sutra_py_nng_allowed("embedded coordinator"))
		return -1;
	struct sutra_detail why = { .what = "" };
	sutra_coordinator *srv = NULL;
	sigset_t old;
	int rc;
	/* With the GIL held: another thread of this process must not start
	 * (or connect) at the same time. It takes milliseconds. */
	sutra_py_nng_enter(&old);
	rc = embedded_start(s, &srv, &why);
	sutra_py_nng_leave(&old);
	if (rc == SUTRA_ELOCKED) {
		s->role = ROLE_CLIENT;
		return 0;
	}
	if (rc)
		return sutra_py_raise(rc, "embedded coordinator", why.what), -1;
	s->srv = srv;
	s->role = ROLE_WRITER;
	return 0;
}

static int store_client(StoreObject *s)
{
	if (s->cli)
		return 0;
	if (store_start_writer(s))
		return -1;
	if (!sutra_py_nng_allowed("write client"))
		return -1;
	char url[512];
	if (store_write_url(s, url, sizeof url))
		return -1;
	struct sutra_client_options o;
	sutra_client_options_init(&o);
	if (s->timeout_ms)
		o.timeout_ms = s->timeout_ms;
	if (o.resend_ms > o.timeout_ms)
		o.resend_ms = o.timeout_ms;
	sutra_client *c = NULL;
	sigset_t old;
	sutra_py_nng_enter(&old);
	int rc = sutra_client_connect(url, &o, &c);
	sutra_py_nng_leave(&old);
	if (rc)
		return sutra_py_raise(rc, "connect to the coordinator", url), -1;
	s->cli = c;
	if (s->role == ROLE_NONE)
		s->role = ROLE_CLIENT;
	return 0;
}

int sutra_py_store_reader(StoreObject *s)
{
	if (s->rdr)
		return 0;
	/* Embedded: the coordinator creates or recovers the store first; a
	 * forked child that may not start nng reads what is there. */
	if (s->embedded && !sutra_py_nng_forbidden() && store_start_writer(s))
		return -1;
	sutra_reader *r = NULL;
	int rc = sutra_reader_open(s->path, &r);
	if (rc) {
		char what[600];
		snprintf(what, sizeof what, "open %s", s->path);
		sutra_py_raise(rc, what, rc == -ENOENT ? "no such store (is the coordinator running?)" : NULL);
		return -1;
	}
	sutra_snapshot *snap;
	if ((rc = sutra_snapshot_acquire(r, 0, &snap)) == 0) {
		struct sutra_reader_stats st;
		sutra_snapshot_stats(snap, &st);
		s->dim = st.vector_dim;
		sutra_snapshot_release(snap);
	}
	s->rdr = r;
	if (s->dim_explicit && s->dim && s->dim != s->dim_request) {
		char msg[200];
		snprintf(msg, sizeof msg, "the store's vector dimension is %u, not %u", s->dim,
			 s->dim_request);
		sutra_py_raise(SUTRA_EDIM, s->path, msg);
		return -1;
	}
	return 0;
}

/* ---- Lifetime ------------------------------------------------------------- */

static int store_init(StoreObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "path", "embedded", "vector_dimension", "dimension_explicit",
				  "coordinator_url", "events_url", "relaxed", "timeout_ms",
				  "segment_kib", NULL };
	PyObject *path_o;
	int embedded = 1, explicit_dim = 0, relaxed = 0;
	unsigned int dim = 768, timeout = 0, segkib = 0;
	const char *lurl = NULL, *eurl = NULL;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|pIpzzpII", kwlist, PyUnicode_FSConverter,
					 &path_o, &embedded, &dim, &explicit_dim, &lurl, &eurl,
					 &relaxed, &timeout, &segkib))
		return -1;
	if (self->path) {
		Py_DECREF(path_o);
		PyErr_SetString(PyExc_RuntimeError, "the store is already initialised");
		return -1;
	}
	if (dim < 1 || dim > 65536) {
		Py_DECREF(path_o);
		sutra_py_invalid("vector_dimension must be in 1..65536");
		return -1;
	}
	self->path = strdup(PyBytes_AS_STRING(path_o));
	Py_DECREF(path_o);
	self->listen_url = lurl ? strdup(lurl) : NULL;
	self->events_url = eurl ? strdup(eurl) : NULL;
	if (!self->path || (lurl && !self->listen_url) || (eurl && !self->events_url)) {
		PyErr_NoMemory();
		return -1;
	}
	self->embedded = embedded;
	self->dim_request = dim;
	self->dim_explicit = explicit_dim;
	self->relaxed = relaxed;
	self->timeout_ms = timeout;
	self->segment_kib = segkib;
	self->gen = sutra_py_fork_gen;
	return 0;
}

static void store_close_handles(StoreObject *s)
{
	if (s->gen != sutra_py_fork_gen) {
		store_check_fork(s);
		return;
	}
	sutra_client *c = s->cli;
	sutra_coordinator *srv = s->srv;
	s->cli = NULL;
	s->srv = NULL;
	if (s->rdr && s->snapshots == 0) {
		sutra_reader_close(s->rdr);
		s->rdr = NULL;
	}
	if (c || srv) {
		Py_BEGIN_ALLOW_THREADS
		sutra_client_close(c);
		if (srv)
			embedded_stop(srv);
		Py_END_ALLOW_THREADS
	}
	s->role = ROLE_NONE;
}

static PyObject *store_close(StoreObject *s, PyObject *unused)
{
	(void)unused;
	if (s->closed)
		Py_RETURN_NONE;
	store_check_fork(s);
	if (s->busy)
		return sutra_py_invalid("close: another thread is using the store");
	s->closed = 1;
	store_close_handles(s);
	Py_RETURN_NONE;
}

static void store_dealloc(StoreObject *s)
{
	if (!s->closed && s->path) {
		s->closed = 1;
		store_close_handles(s);
	}
	free(s->path);
	free(s->listen_url);
	free(s->events_url);
	Py_TYPE(s)->tp_free((PyObject *)s);
}

/* ---- Writes --------------------------------------------------------------- */

PyObject *sutra_py_store_write(StoreObject *s, const char *what, sutra_py_write_fn fn, void *arg)
{
	if (sutra_py_store_usable(s) || store_client(s))
		return NULL;
	uint64_t epoch = 0;
	int rc;
	for (int attempt = 0;; attempt++) {
		sutra_client *c = s->cli;
		s->busy++;
		Py_BEGIN_ALLOW_THREADS
		rc = fn(c, arg, &epoch);
		Py_END_ALLOW_THREADS
		s->busy--;
		if (rc != SUTRA_EUNAVAIL || attempt || !s->embedded || s->role != ROLE_CLIENT)
			break;
		/* The holder may have exited: take over if the lock is free. */
		s->role = ROLE_NONE;
		if (store_start_writer(s))
			return NULL;
		if (s->role != ROLE_WRITER)
			break;
	}
	if (rc) {
		const char *why = sutra_client_last_error(s->cli);
		int idx = sutra_client_last_error_index(s->cli);
		if (idx >= 0 && why && *why) {
			char buf[1200];
			snprintf(buf, sizeof buf, "operation %d: %s", idx, why);
			sutra_py_raise(rc, what, buf);
		} else {
			sutra_py_raise(rc, what, why);
		}
		if (idx >= 0 && PyErr_Occurred()) {
			PyObject *t, *v, *tb;
			PyErr_Fetch(&t, &v, &tb);
			PyErr_NormalizeException(&t, &v, &tb);
			PyObject *i = PyLong_FromLong(idx);
			if (v && i)
				PyObject_SetAttrString(v, "index", i);
			Py_XDECREF(i);
			PyErr_Restore(t, v, tb);
		}
		return NULL;
	}
	if (epoch > s->last_epoch)
		s->last_epoch = epoch;
	return PyLong_FromUnsignedLongLong(epoch);
}

/* ---- Reads ---------------------------------------------------------------- */

/* Store-level reads: a snapshot of at least the newest epoch this object
 * wrote (read-your-writes), copies, released before returning. */
#define WITH_SNAPSHOT(s, expr)                                                              \
	do {                                                                                \
		SnapshotObject *o_ = sutra_py_snapshot_new((s), (s)->last_epoch);           \
		if (!o_)                                                                    \
			return NULL;                                                        \
		PyObject *r_ = (expr);                                                      \
		o_->released = 1;                                                           \
		Py_DECREF(o_);                                                              \
		return r_;                                                                  \
	} while (0)

static PyObject *store_query_concept(StoreObject *s, PyObject *id)
{
	WITH_SNAPSHOT(s, sutra_py_read_get(o_->snap, NULL, id));
}

static PyObject *store_contains(StoreObject *s, PyObject *id)
{
	WITH_SNAPSHOT(s, sutra_py_read_contains(o_->snap, id));
}

static PyObject *store_neighbors(StoreObject *s, PyObject *args, PyObject *kw)
{
	WITH_SNAPSHOT(s, sutra_py_read_neighbors(o_->snap, args, kw));
}

static PyObject *store_get_neighbors(StoreObject *s, PyObject *args, PyObject *kw)
{
	WITH_SNAPSHOT(s, sutra_py_read_neighbor_list(o_->snap, args, kw, 0));
}

static PyObject *store_neighbors_detail(StoreObject *s, PyObject *args, PyObject *kw)
{
	WITH_SNAPSHOT(s, sutra_py_read_neighbor_list(o_->snap, args, kw, 1));
}

static PyObject *store_find_path(StoreObject *s, PyObject *args, PyObject *kw)
{
	WITH_SNAPSHOT(s, sutra_py_read_paths(o_->snap, args, kw, 0));
}

static PyObject *store_find_paths(StoreObject *s, PyObject *args, PyObject *kw)
{
	WITH_SNAPSHOT(s, sutra_py_read_paths(o_->snap, args, kw, 1));
}

static PyObject *store_stats(StoreObject *s, PyObject *unused)
{
	(void)unused;
	WITH_SNAPSHOT(s, sutra_py_read_stats(o_->snap));
}

static PyObject *store_ids(StoreObject *s, PyObject *unused)
{
	(void)unused;
	WITH_SNAPSHOT(s, sutra_py_read_foreach(o_->snap, NULL, 1));
}

static PyObject *store_snapshot(StoreObject *s, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "min_epoch", NULL };
	unsigned long long min = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|K", kwlist, &min))
		return NULL;
	if (s->last_epoch > min)
		min = s->last_epoch;
	return (PyObject *)sutra_py_snapshot_new(s, min);
}

static PyObject *store_wait_for_epoch(StoreObject *s, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "epoch", "timeout", NULL };
	unsigned long long epoch;
	PyObject *t_o = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "K|O", kwlist, &epoch, &t_o))
		return NULL;
	double timeout = -1;
	if (t_o != Py_None) {
		timeout = PyFloat_AsDouble(t_o);
		if (timeout == -1 && PyErr_Occurred())
			return NULL;
		if (timeout < 0)
			return sutra_py_invalid("timeout must be >= 0 or None");
	}
	if (sutra_py_store_usable(s) || sutra_py_store_reader(s))
		return NULL;
	/* Subscribed, a wait wakes on the epoch's notice; otherwise it polls
	 * the file every 50 ms. A failed subscription only costs latency. */
	if (!s->subscribed && !sutra_py_nng_forbidden()) {
		char url[512];
		if (sutra_py_store_events_url(s, url, sizeof url))
			return NULL;
		sigset_t old;
		sutra_py_nng_enter(&old);
		int rc = sutra_reader_subscribe(s->rdr, url);
		sutra_py_nng_leave(&old);
		s->subscribed = rc == 0 || rc == -EALREADY;
	}
	/* Waits in slices so that Ctrl-C interrupts. */
	double left_ms = timeout < 0 ? -1 : timeout * 1000.0;
	for (;;) {
		int slice = left_ms < 0 || left_ms > 200 ? 200 : (int)left_ms;
		int rc;
		sutra_reader *r = s->rdr;
		s->busy++;
		Py_BEGIN_ALLOW_THREADS
		rc = sutra_reader_wait_for_epoch(r, epoch, slice);
		Py_END_ALLOW_THREADS
		s->busy--;
		if (rc == 0)
			Py_RETURN_TRUE;
		if (rc != -ETIMEDOUT)
			return sutra_py_raise(rc, "wait_for_epoch", NULL);
		if (left_ms >= 0) {
			left_ms -= slice;
			if (left_ms <= 0)
				Py_RETURN_FALSE;
		}
		if (PyErr_CheckSignals())
			return NULL;
	}
}

/* ---- Introspection -------------------------------------------------------- */

static PyObject *store_info(StoreObject *s, PyObject *unused)
{
	(void)unused;
	store_check_fork(s);
	static const char *roles[] = { "none", "writer", "client", "reader" };
	char lurl[512] = "", eurl[512] = "";
	if (store_write_url(s, lurl, sizeof lurl) ||
	    sutra_py_store_events_url(s, eurl, sizeof eurl))
		return NULL;
	return Py_BuildValue("{s:s,s:s,s:s,s:s,s:s,s:K,s:l,s:i,s:I}", "path", s->path, "mode",
			     s->embedded ? "embedded" : "server", "role", roles[s->role],
			     "coordinator_url", lurl, "events_url", eurl, "last_epoch",
			     (unsigned long long)s->last_epoch, "pid", (long)getpid(), "closed",
			     s->closed, "vector_dimension", s->dim);
}

static PyObject *store_vector_dimension(StoreObject *s, void *unused)
{
	(void)unused;
	if (sutra_py_store_usable(s) || sutra_py_store_reader(s))
		return NULL;
	return PyLong_FromUnsignedLong(s->dim);
}

static PyObject *store_path(StoreObject *s, void *unused)
{
	(void)unused;
	return PyUnicode_DecodeFSDefault(s->path);
}

static PyObject *store_last_epoch(StoreObject *s, void *unused)
{
	(void)unused;
	return PyLong_FromUnsignedLongLong(s->last_epoch);
}

/* ---- Type ----------------------------------------------------------------- */

static PyMethodDef store_methods[] = {
	{ "learn_concept", (PyCFunction)(void (*)(void))sutra_py_store_learn_concept,
	  METH_VARARGS | METH_KEYWORDS,
	  "learn_concept(id, content, embedding=None, strength=1.0, confidence=1.0, "
	  "metadata=None) -> epoch" },
	{ "learn_association", (PyCFunction)(void (*)(void))sutra_py_store_learn_association,
	  METH_VARARGS | METH_KEYWORDS,
	  "learn_association(source_id, target_id, assoc_type=0, confidence=1.0, weight=1.0) "
	  "-> epoch" },
	{ "delete_concept", (PyCFunction)sutra_py_store_delete_concept, METH_O,
	  "delete_concept(id) -> epoch; also removes its associations" },
	{ "delete_association", (PyCFunction)(void (*)(void))sutra_py_store_delete_association,
	  METH_VARARGS | METH_KEYWORDS,
	  "delete_association(source_id, target_id, assoc_type=0) -> epoch" },
	{ "flush", (PyCFunction)sutra_py_store_flush, METH_NOARGS,
	  "Returns once every acknowledged write is durable; the durable epoch." },
	{ "ping", (PyCFunction)sutra_py_store_ping, METH_NOARGS,
	  "A round trip to the coordinator; its newest epoch." },
	{ "coordinator_stats", (PyCFunction)sutra_py_store_coordinator_stats, METH_NOARGS,
	  "The coordinator's counters (a round trip)." },
	{ "query_concept", (PyCFunction)store_query_concept, METH_O,
	  "query_concept(id) -> dict or None (embedding copied)" },
	{ "contains", (PyCFunction)store_contains, METH_O, "contains(id) -> bool" },
	{ "_neighbors", (PyCFunction)(void (*)(void))store_neighbors,
	  METH_VARARGS | METH_KEYWORDS, NULL },
	{ "get_neighbors", (PyCFunction)(void (*)(void))store_get_neighbors,
	  METH_VARARGS | METH_KEYWORDS,
	  "get_neighbors(id, assoc_type=None, direction='both', limit=None) -> [id] ([] for an "
	  "unknown id)" },
	{ "neighbors", (PyCFunction)(void (*)(void))store_neighbors_detail,
	  METH_VARARGS | METH_KEYWORDS,
	  "neighbors(id, assoc_type=None, direction='both', limit=None) -> [dict]" },
	{ "find_path", (PyCFunction)(void (*)(void))store_find_path,
	  METH_VARARGS | METH_KEYWORDS,
	  "find_path(start, end, max_depth=6, assoc_type=None, direction='both') -> list or None" },
	{ "find_paths", (PyCFunction)(void (*)(void))store_find_paths,
	  METH_VARARGS | METH_KEYWORDS,
	  "find_paths(start, end, max_depth=6, assoc_type=None, direction='both', k=3) -> list" },
	{ "stats", (PyCFunction)store_stats, METH_NOARGS, "stats() -> dict (from the file)" },
	{ "ids", (PyCFunction)store_ids, METH_NOARGS, "Every live concept id." },
	{ "snapshot", (PyCFunction)(void (*)(void))store_snapshot, METH_VARARGS | METH_KEYWORDS,
	  "snapshot(min_epoch=0) -> Snapshot" },
	{ "wait_for_epoch", (PyCFunction)(void (*)(void))store_wait_for_epoch,
	  METH_VARARGS | METH_KEYWORDS,
	  "wait_for_epoch(epoch, timeout=None) -> bool (False after the timeout)" },
	{ "_new_batch", (PyCFunction)sutra_py_store_new_batch, METH_NOARGS, NULL },
	{ "_open_notices", (PyCFunction)sutra_py_store_open_notices, METH_NOARGS, NULL },
	{ "info", (PyCFunction)store_info, METH_NOARGS,
	  "Mode, role, URLs and pid of this store object." },
	{ "close", (PyCFunction)store_close, METH_NOARGS,
	  "Closes the store (stops the embedded coordinator, if this object runs it)." },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef store_getset[] = {
	{ "vector_dimension", (getter)store_vector_dimension, NULL, "The store's dimension.",
	  NULL },
	{ "path", (getter)store_path, NULL, "The storage.dat path.", NULL },
	{ "last_epoch", (getter)store_last_epoch, NULL,
	  "The newest epoch a write of this object returned.", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject sutra_py_store_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sutra._sutra.Store",
	.tp_basicsize = sizeof(StoreObject),
	.tp_dealloc = (destructor)store_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "The C core of sutra.ConcurrentStorage.",
	.tp_methods = store_methods,
	.tp_getset = store_getset,
	.tp_init = (initproc)store_init,
	.tp_new = PyType_GenericNew,
};
