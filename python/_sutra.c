/* SPDX-License-Identifier: MIT */
/* The extension module _sutra: stores, snapshots, batches and notices for the Python package sutra. */
#include "python/_sutra.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PY_ARRAY_UNIQUE_SYMBOL sutra_py_ARRAY_API
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include "coordinator/server.h"

/* ---- Process state: forks and nng ----------------------------------------- */

unsigned long sutra_py_fork_gen;
/* This process started nng (a coordinator, a client or a subscription). */
static int nng_started;
/* An ancestor process started nng before forking this one: nng panics at
 * its first use here, so nothing of it may be started. */
static int nng_forbidden;

static void atfork_child(void)
{
	sutra_py_fork_gen++;
	if (nng_started)
		nng_forbidden = 1;
}

/* Refuses to start nng in a child of a process that used it (nng would
 * abort the process). */
static int nng_allowed(const char *what)
{
	if (!nng_forbidden)
		return 1;
	PyObject *r = sutra_py_raise(SUTRA_EUNAVAIL, what,
				     "this process was forked from one that had already started "
				     "nng (a write, a subscription or the embedded coordinator), and "
				     "nng cannot be used after such a fork: open the store in the "
				     "parent only after forking, or write from the parent; reads "
				     "still work here");
	(void)r;
	return 0;
}

/* Threads nng starts inherit the signal mask of the thread that starts
 * them: block every signal around it so that only Python's main thread
 * takes SIGINT and SIGTERM. */
static void block_signals(sigset_t *old)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, old);
}

static void restore_signals(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* ---- Errors --------------------------------------------------------------- */

static PyObject *Error, *NotFound, *DimensionError, *InvalidArgument, *TooBig, *StoreLocked,
	*Corrupt, *VersionError, *ProtocolError, *Unavailable, *Timeout, *StorageOSError,
	*Unsupported;

PyObject *sutra_py_raise(int code, const char *what, const char *detail)
{
	PyObject *cls;
	switch (code) {
	case SUTRA_ENOTFOUND: cls = NotFound; break;
	case SUTRA_EDIM: cls = DimensionError; break;
	case SUTRA_EVALUE: cls = InvalidArgument; break;
	case SUTRA_ETOOBIG: cls = TooBig; break;
	case SUTRA_ELOCKED: cls = StoreLocked; break;
	case SUTRA_ECORRUPT: cls = Corrupt; break;
	case SUTRA_EVERSION: cls = VersionError; break;
	case SUTRA_EPROTO: cls = ProtocolError; break;
	case SUTRA_EUNAVAIL: cls = Unavailable; break;
	case -ETIMEDOUT: cls = Timeout; break;
	case -EINVAL: cls = InvalidArgument; break;
	default: cls = code < 0 && code > -1000 ? StorageOSError : Error; break;
	}
	const char *reason = detail && *detail ? detail : sutra_strerror(code);
	PyObject *msg = PyUnicode_FromFormat("%s: %s (%s)", what, reason, sutra_errname(code));
	if (!msg)
		return NULL;
	PyObject *exc = PyObject_CallOneArg(cls, msg);
	Py_DECREF(msg);
	if (!exc)
		return NULL;
	PyObject *c = PyLong_FromLong(code);
	PyObject *n = PyUnicode_FromString(sutra_errname(code));
	if (c && n) {
		PyObject_SetAttrString(exc, "code", c);
		PyObject_SetAttrString(exc, "name", n);
		if (cls == StorageOSError) {
			PyObject *e = PyLong_FromLong(-code);
			if (e) {
				PyObject_SetAttrString(exc, "errno", e);
				Py_DECREF(e);
			}
		}
	}
	Py_XDECREF(c);
	Py_XDECREF(n);
	PyErr_SetObject(cls, exc);
	Py_DECREF(exc);
	return NULL;
}

static PyObject *raise_msg(PyObject *cls, const char *msg)
{
	PyErr_SetString(cls, msg);
	return NULL;
}

/* ---- Ids ------------------------------------------------------------------ */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int sutra_py_parse_id(PyObject *o, uint8_t out[16])
{
	if (PyUnicode_Check(o)) {
		Py_ssize_t n;
		const char *s = PyUnicode_AsUTF8AndSize(o, &n);
		if (!s)
			return -1;
		if (n < 1 || n > 32) {
			PyErr_Format(InvalidArgument,
				     "invalid id %R: expected 1 to 32 hex digits", o);
			return -1;
		}
		/* Zero-padded on the left: "ab" is 000...0ab. */
		char buf[32];
		memset(buf, '0', sizeof buf);
		memcpy(buf + 32 - n, s, (size_t)n);
		for (int i = 0; i < 16; i++) {
			int hi = hexval((unsigned char)buf[2 * i]);
			int lo = hexval((unsigned char)buf[2 * i + 1]);
			if (hi < 0 || lo < 0) {
				PyErr_Format(InvalidArgument,
					     "invalid id %R: expected 1 to 32 hex digits", o);
				return -1;
			}
			out[i] = (uint8_t)(hi << 4 | lo);
		}
		return 0;
	}
	if (PyBytes_Check(o) || PyByteArray_Check(o)) {
		Py_ssize_t n = PyBytes_Check(o) ? PyBytes_GET_SIZE(o) : PyByteArray_GET_SIZE(o);
		if (n != 16) {
			PyErr_Format(InvalidArgument, "invalid id: %zd bytes, expected 16", n);
			return -1;
		}
		memcpy(out, PyBytes_Check(o) ? PyBytes_AS_STRING(o) : PyByteArray_AS_STRING(o), 16);
		return 0;
	}
	PyErr_Format(PyExc_TypeError, "an id is a hex str or 16 bytes, not %.100s",
		     Py_TYPE(o)->tp_name);
	return -1;
}

PyObject *sutra_py_id_str(const uint8_t id[16])
{
	static const char digits[] = "0123456789abcdef";
	PyObject *s = PyUnicode_New(32, 127);
	if (!s)
		return NULL;
	Py_UCS1 *p = PyUnicode_1BYTE_DATA(s);
	for (int i = 0; i < 16; i++) {
		p[2 * i] = (Py_UCS1)digits[id[i] >> 4];
		p[2 * i + 1] = (Py_UCS1)digits[id[i] & 15];
	}
	return s;
}

static PyObject *py_normalize_id(PyObject *mod, PyObject *arg)
{
	(void)mod;
	uint8_t id[16];
	if (sutra_py_parse_id(arg, id))
		return NULL;
	return sutra_py_id_str(id);
}

/* ---- Vectors -------------------------------------------------------------- */

PyObject *sutra_py_vector(PyObject *o, uint32_t dim)
{
	PyObject *a = PyArray_FROMANY(o, NPY_FLOAT32, 0, 0,
				      NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED |
					      NPY_ARRAY_FORCECAST);
	if (!a) {
		if (PyErr_ExceptionMatches(PyExc_ValueError) ||
		    PyErr_ExceptionMatches(PyExc_TypeError)) {
			PyObject *t, *v, *tb;
			PyErr_Fetch(&t, &v, &tb);
			PyErr_Format(InvalidArgument, "an embedding must be a sequence of numbers: %S",
				     v ? v : Py_None);
			Py_XDECREF(t);
			Py_XDECREF(v);
			Py_XDECREF(tb);
		}
		return NULL;
	}
	PyArrayObject *arr = (PyArrayObject *)a;
	if (PyArray_NDIM(arr) != 1 || (dim && PyArray_DIM(arr, 0) != (npy_intp)dim)) {
		PyObject *shape = PyObject_GetAttrString(a, "shape");
		PyErr_Format(DimensionError,
			     "embedding of shape %S, the store's dimension is %u (SUTRA_EDIM)",
			     shape ? shape : Py_None, dim);
		Py_XDECREF(shape);
		Py_DECREF(a);
		return NULL;
	}
	return a;
}

/* ---- Store ---------------------------------------------------------------- */

static void log_to_stderr(void *arg, int level, const char *msg)
{
	(void)arg;
	fprintf(stderr, "sutra (embedded coordinator, pid %ld): %s: %s\n", (long)getpid(),
		level <= COORD_LOG_ERR ? "error" : "warning", msg);
}

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

static int store_usable(StoreObject *s)
{
	if (s->closed) {
		raise_msg(InvalidArgument, "the store is closed");
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
	int rc = coord_default_url(s->path, suffix, out, len);
	if (rc)
		sutra_py_raise(rc, "default URL", "the store path is too long for an ipc:// URL");
	return rc;
}

/* Embedded mode: starts the coordinator in this process, unless another
 * live process (or another store object of this one) holds the writer
 * lock, in which case this object writes through that holder's URL. */
static int store_start_writer(StoreObject *s)
{
	if (s->srv || s->role == ROLE_CLIENT || !s->embedded)
		return 0;
	if (!nng_allowed("embedded coordinator"))
		return -1;
	struct coord_config cfg;
	coord_config_defaults(&cfg);
	cfg.data_path = s->path;
	cfg.listen_url = s->listen_url;
	cfg.events_url = s->events_url;
	cfg.vector_dim = s->dim_request ? s->dim_request : 768;
	cfg.vector_dim_explicit = 0;
	cfg.durability = s->relaxed ? COORD_DURABILITY_RELAXED : COORD_DURABILITY_SYNC;
	if (s->segment_kib)
		cfg.segment_kib = s->segment_kib;
	cfg.log.fn = log_to_stderr;
	cfg.log.max_level = COORD_LOG_WARN;
	struct sutra_detail why = { .what = "" };
	struct coord_server *srv = NULL;
	sigset_t old;
	int rc;
	/* With the GIL held: another thread of this process must not start
	 * (or connect) at the same time. It takes milliseconds. */
	nng_started = 1;
	block_signals(&old);
	rc = coord_server_start(&cfg, &srv, &why);
	restore_signals(&old);
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
	if (!nng_allowed("write client"))
		return -1;
	char url[512];
	if (s->srv)
		snprintf(url, sizeof url, "%s", coord_server_listen_url(s->srv));
	else if (url_or_default(s, s->listen_url, "write", url, sizeof url))
		return -1;
	struct sutra_client_options o;
	sutra_client_options_init(&o);
	if (s->timeout_ms)
		o.timeout_ms = s->timeout_ms;
	if (o.resend_ms > o.timeout_ms)
		o.resend_ms = o.timeout_ms;
	sutra_client *c = NULL;
	sigset_t old;
	nng_started = 1;
	block_signals(&old);
	int rc = sutra_client_connect(url, &o, &c);
	restore_signals(&old);
	if (rc)
		return sutra_py_raise(rc, "connect to the coordinator", url), -1;
	s->cli = c;
	if (s->role == ROLE_NONE)
		s->role = ROLE_CLIENT;
	return 0;
}

static int store_reader(StoreObject *s)
{
	if (s->rdr)
		return 0;
	/* Embedded: the coordinator creates or recovers the store first; a
	 * forked child that may not start nng reads what is there. */
	if (s->embedded && !nng_forbidden && store_start_writer(s))
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
		PyErr_SetString(InvalidArgument, "vector_dimension must be in 1..65536");
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
	struct coord_server *srv = s->srv;
	s->cli = NULL;
	s->srv = NULL;
	if (s->rdr && s->snapshots == 0) {
		sutra_reader_close(s->rdr);
		s->rdr = NULL;
	}
	if (c || srv) {
		Py_BEGIN_ALLOW_THREADS
		sutra_client_close(c);
		if (srv) {
			coord_server_stop(srv);
			coord_server_destroy(srv);
		}
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
		return raise_msg(InvalidArgument, "close: another thread is using the store");
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

/* Runs a write: fn with the GIL released, then maps the result. In
 * embedded mode, when the holder of the store we wrote through has gone,
 * this process tries to become the writer once and repeats the write. */
typedef int (*write_fn)(sutra_client *c, void *arg, uint64_t *epoch);

static PyObject *do_write(StoreObject *s, const char *what, write_fn fn, void *arg)
{
	if (store_usable(s) || store_client(s))
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

struct concept_args {
	struct sutra_concept_in in;
	PyObject *hold[3]; /* what the pointers point into */
};

/* Fills ca from Python arguments; release with concept_args_clear(). */
static int concept_args_parse(StoreObject *s, struct concept_args *ca, PyObject *id_o,
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
		PyErr_SetString(InvalidArgument, "content must not be empty (SUTRA_EVALUE)");
		return -1;
	}
	ca->in.content_len = (size_t)n;
	if (emb_o && emb_o != Py_None) {
		if (s && s->dim == 0 && store_reader(s))
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

static void concept_args_clear(struct concept_args *ca)
{
	PyMem_Free((void *)ca->in.id);
	for (int i = 0; i < 3; i++)
		Py_XDECREF(ca->hold[i]);
}

static int w_learn(sutra_client *c, void *arg, uint64_t *epoch)
{
	return sutra_client_learn_concept(c, &((struct concept_args *)arg)->in, epoch);
}

static char *learn_kwlist[] = { "id", "content", "embedding", "strength", "confidence",
				"metadata", NULL };

static PyObject *store_learn_concept(StoreObject *s, PyObject *args, PyObject *kw)
{
	PyObject *id_o, *content_o, *emb_o = Py_None, *meta_o = Py_None;
	double strength = 1.0, confidence = 1.0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OddO", learn_kwlist, &id_o, &content_o,
					 &emb_o, &strength, &confidence, &meta_o))
		return NULL;
	if (store_usable(s))
		return NULL;
	struct concept_args ca;
	PyObject *r = NULL;
	if (concept_args_parse(s, &ca, id_o, content_o, emb_o, strength, confidence, meta_o) == 0)
		r = do_write(s, "learn_concept", w_learn, &ca);
	concept_args_clear(&ca);
	return r;
}

struct assoc_args {
	uint8_t src[16], dst[16];
	int type;
	float confidence, weight;
};

static int parse_type(PyObject *o, int allow_none, int *out)
{
	if (o == Py_None && allow_none) {
		*out = -1;
		return 0;
	}
	long v = PyLong_AsLong(o);
	if (v == -1 && PyErr_Occurred())
		return -1;
	if (v < 0 || v > 255) {
		PyErr_Format(InvalidArgument, "association type %ld is not in 0..255", v);
		return -1;
	}
	*out = (int)v;
	return 0;
}

static int w_assoc(sutra_client *c, void *arg, uint64_t *epoch)
{
	struct assoc_args *a = arg;
	return sutra_client_learn_association(c, a->src, a->dst, (uint8_t)a->type, a->confidence,
					      a->weight, epoch);
}

static PyObject *store_learn_association(StoreObject *s, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "source_id", "target_id", "assoc_type", "confidence", "weight",
				  NULL };
	PyObject *a_o, *b_o, *t_o = NULL;
	double conf = 1.0, weight = 1.0;
	struct assoc_args a;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|Odd", kwlist, &a_o, &b_o, &t_o, &conf,
					 &weight))
		return NULL;
	a.type = 0;
	if (sutra_py_parse_id(a_o, a.src) || sutra_py_parse_id(b_o, a.dst) ||
	    (t_o && parse_type(t_o, 0, &a.type)))
		return NULL;
	a.confidence = (float)conf;
	a.weight = (float)weight;
	return do_write(s, "learn_association", w_assoc, &a);
}

static int w_delc(sutra_client *c, void *arg, uint64_t *epoch)
{
	return sutra_client_delete_concept(c, arg, epoch);
}

static PyObject *store_delete_concept(StoreObject *s, PyObject *arg)
{
	uint8_t id[16];
	if (sutra_py_parse_id(arg, id))
		return NULL;
	return do_write(s, "delete_concept", w_delc, id);
}

static int w_dela(sutra_client *c, void *arg, uint64_t *epoch)
{
	struct assoc_args *a = arg;
	return sutra_client_delete_association(c, a->src, a->dst, (uint8_t)a->type, epoch);
}

static PyObject *store_delete_association(StoreObject *s, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "source_id", "target_id", "assoc_type", NULL };
	PyObject *a_o, *b_o, *t_o = NULL;
	struct assoc_args a;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O", kwlist, &a_o, &b_o, &t_o))
		return NULL;
	a.type = 0;
	if (sutra_py_parse_id(a_o, a.src) || sutra_py_parse_id(b_o, a.dst) ||
	    (t_o && parse_type(t_o, 0, &a.type)))
		return NULL;
	return do_write(s, "delete_association", w_dela, &a);
}

static int w_sync(sutra_client *c, void *arg, uint64_t *epoch)
{
	(void)arg;
	return sutra_client_sync(c, epoch);
}

static PyObject *store_flush(StoreObject *s, PyObject *unused)
{
	(void)unused;
	return do_write(s, "flush", w_sync, NULL);
}

static int w_ping(sutra_client *c, void *arg, uint64_t *epoch)
{
	(void)arg;
	return sutra_client_ping(c, epoch);
}

static PyObject *store_ping(StoreObject *s, PyObject *unused)
{
	(void)unused;
	return do_write(s, "ping", w_ping, NULL);
}

static int w_stats(sutra_client *c, void *arg, uint64_t *epoch)
{
	int rc = sutra_client_stats(c, arg);
	if (rc == 0)
		*epoch = ((struct sutra_coord_stats *)arg)->epoch;
	return rc;
}

#define SET_U64(d, k, v)                                                                    \
	do {                                                                                \
		PyObject *o_ = PyLong_FromUnsignedLongLong(v);                              \
		if (!o_ || PyDict_SetItemString(d, k, o_)) {                                \
			Py_XDECREF(o_);                                                     \
			Py_DECREF(d);                                                       \
			return NULL;                                                        \
		}                                                                           \
		Py_DECREF(o_);                                                              \
	} while (0)

static PyObject *store_coordinator_stats(StoreObject *s, PyObject *unused)
{
	(void)unused;
	struct sutra_coord_stats st;
	PyObject *e = do_write(s, "coordinator_stats", w_stats, &st);
	if (!e)
		return NULL;
	Py_DECREF(e);
	PyObject *d = PyDict_New();
	if (!d)
		return NULL;
	SET_U64(d, "epoch", st.epoch);
	SET_U64(d, "durable_epoch", st.durable_epoch);
	SET_U64(d, "published_end", st.published_end);
	SET_U64(d, "file_size", st.file_size);
	SET_U64(d, "concept_count", st.concept_count);
	SET_U64(d, "association_count", st.association_count);
	SET_U64(d, "next_ordinal", st.next_ordinal);
	SET_U64(d, "commits", st.commits);
	SET_U64(d, "requests", st.requests);
	SET_U64(d, "rejected", st.rejected);
	SET_U64(d, "duplicates", st.duplicates);
	SET_U64(d, "syncs", st.syncs);
	SET_U64(d, "vector_dimension", st.vector_dim);
	SET_U64(d, "relaxed", st.relaxed);
	SET_U64(d, "io_uring", st.io_uring);
	SET_U64(d, "relistens", st.relistens);
	return d;
}

/* ---- Snapshots ------------------------------------------------------------ */

static SnapshotObject *snapshot_new(StoreObject *s, uint64_t min_epoch)
{
	if (store_usable(s) || store_reader(s))
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
	SnapshotObject *o = PyObject_New(SnapshotObject, &Snapshot_Type);
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
		raise_msg(InvalidArgument, "the snapshot was released");
		return -1;
	}
	if (o->gen != sutra_py_fork_gen) {
		raise_msg(InvalidArgument, "the snapshot was taken before a fork: take one here");
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

/* A read-only float32 array over the mapping, keeping o pinned. */
static PyObject *zero_copy_vector(SnapshotObject *o, const float *v, uint32_t dim)
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

static PyObject *copy_vector(const float *v, uint32_t dim)
{
	npy_intp d = dim;
	PyObject *a = PyArray_SimpleNew(1, &d, NPY_FLOAT32);
	if (a)
		memcpy(PyArray_DATA((PyArrayObject *)a), v, (size_t)dim * sizeof(float));
	return a;
}

static int set_item(PyObject *d, const char *k, PyObject *v)
{
	if (!v)
		return -1;
	int rc = PyDict_SetItemString(d, k, v);
	Py_DECREF(v);
	return rc;
}

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
		emb = zc ? zero_copy_vector(zc, c->embedding, c->vector_dim)
			 : copy_vector(c->embedding, c->vector_dim);
	}
	PyObject *meta;
	if (c->metadata) {
		meta = PyBytes_FromStringAndSize(c->metadata, c->metadata_len);
	} else {
		Py_INCREF(Py_None);
		meta = Py_None;
	}
	if (set_item(d, "id", sutra_py_id_str(c->id)) ||
	    set_item(d, "content", PyUnicode_DecodeUTF8(c->content, c->content_len, "replace")) ||
	    set_item(d, "embedding", emb) ||
	    set_item(d, "strength", PyFloat_FromDouble(c->strength)) ||
	    set_item(d, "confidence", PyFloat_FromDouble(c->confidence)) ||
	    set_item(d, "created_us", PyLong_FromUnsignedLongLong(c->created_us)) ||
	    set_item(d, "updated_us", PyLong_FromUnsignedLongLong(c->updated_us)) ||
	    set_item(d, "metadata", meta) ||
	    set_item(d, "ordinal", PyLong_FromUnsignedLong(c->ordinal))) {
		Py_DECREF(d);
		return NULL;
	}
	return d;
}

/* The read operations, each over a C snapshot; zc as for concept_dict(). */
static PyObject *op_get(const sutra_snapshot *snap, SnapshotObject *zc, PyObject *id_o)
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

static PyObject *op_contains(const sutra_snapshot *snap, PyObject *id_o)
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
			PyErr_Format(InvalidArgument,
				     "direction must be \"both\", \"out\" or \"in\", not %R", o);
		return -1;
	}
	return 0;
}

/* neighbors(id, assoc_type=None, direction="both", limit=None, detail=False,
 * missing_ok=False) */
static PyObject *op_neighbors(const sutra_snapshot *snap, PyObject *args, PyObject *kw)
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
	if (sutra_py_parse_id(id_o, id) || parse_type(t_o, 1, &type) || parse_direction(dir_o, &dir))
		return NULL;
	size_t limit = SIZE_MAX;
	if (lim_o != Py_None) {
		Py_ssize_t l = PyLong_AsSsize_t(lim_o);
		if (l == -1 && PyErr_Occurred())
			return NULL;
		if (l < 0)
			return raise_msg(InvalidArgument, "limit must be >= 0");
		limit = (size_t)l;
	}
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
		PyObject *item;
		if (!detail) {
			item = sutra_py_id_str(buf[i].id);
		} else {
			item = PyDict_New();
			if (item &&
			    (set_item(item, "id", sutra_py_id_str(buf[i].id)) ||
			     set_item(item, "assoc_type", PyLong_FromLong(buf[i].type)) ||
			     set_item(item, "direction",
				      PyUnicode_FromString(buf[i].outgoing ? "out" : "in")) ||
			     set_item(item, "confidence", PyFloat_FromDouble(buf[i].confidence)) ||
			     set_item(item, "weight", PyFloat_FromDouble(buf[i].weight)) ||
			     set_item(item, "created_us",
				      PyLong_FromUnsignedLongLong(buf[i].created_us)))) {
				Py_CLEAR(item);
			}
		}
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

/* get_neighbors(): ids, [] for an unknown concept (as the old store);
 * neighbors(): dicts, NotFound for an unknown concept. */
static PyObject *with_flags(PyObject *(*fn)(const sutra_snapshot *, PyObject *, PyObject *),
			    const sutra_snapshot *snap, PyObject *args, PyObject *kw, int detail)
{
	static char *kwlist[] = { "id", "assoc_type", "direction", "limit", NULL };
	PyObject *id_o, *t_o = Py_None, *dir_o = Py_None, *lim_o = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OOO", kwlist, &id_o, &t_o, &dir_o, &lim_o))
		return NULL;
	PyObject *a = Py_BuildValue("(OOOOii)", id_o, t_o, dir_o, lim_o, detail, !detail);
	if (!a)
		return NULL;
	PyObject *r = fn(snap, a, NULL);
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
static PyObject *op_paths(const sutra_snapshot *snap, PyObject *args, PyObject *kw, int many)
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
	if (sutra_py_parse_id(a_o, a) || sutra_py_parse_id(b_o, b) || parse_type(t_o, 1, &type) ||
	    parse_direction(dir_o, &dir))
		return NULL;
	if (depth < 1 || depth > SUTRA_MAX_PATH_DEPTH)
		return PyErr_Format(InvalidArgument, "max_depth must be in 1..%d",
				    SUTRA_MAX_PATH_DEPTH);
	if (many && (k < 1 || k > SUTRA_MAX_PATHS))
		return PyErr_Format(InvalidArgument, "k must be in 1..%d", SUTRA_MAX_PATHS);
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

static PyObject *op_stats(const sutra_snapshot *snap)
{
	struct sutra_reader_stats st;
	sutra_snapshot_stats(snap, &st);
	PyObject *d = PyDict_New();
	if (!d)
		return NULL;
	SET_U64(d, "epoch", st.epoch);
	SET_U64(d, "concept_count", st.concept_count);
	SET_U64(d, "association_count", st.association_count);
	SET_U64(d, "vector_dimension", st.vector_dim);
	SET_U64(d, "published_end", st.published_end);
	SET_U64(d, "file_size", st.file_size);
	SET_U64(d, "tail_bytes", st.tail_bytes);
	SET_U64(d, "segment_count", st.segment_count);
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

static PyObject *op_foreach(const sutra_snapshot *snap, SnapshotObject *zc, int ids_only)
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

/* Store-level reads: a snapshot of at least the newest epoch this object
 * wrote (read-your-writes), copies, released before returning. */
#define WITH_SNAPSHOT(s, expr)                                                              \
	do {                                                                                \
		SnapshotObject *o_ = snapshot_new((s), (s)->last_epoch);                    \
		if (!o_)                                                                    \
			return NULL;                                                        \
		PyObject *r_ = (expr);                                                      \
		o_->released = 1;                                                           \
		Py_DECREF(o_);                                                              \
		return r_;                                                                  \
	} while (0)

static PyObject *store_query_concept(StoreObject *s, PyObject *id)
{
	WITH_SNAPSHOT(s, op_get(o_->snap, NULL, id));
}

static PyObject *store_contains(StoreObject *s, PyObject *id)
{
	WITH_SNAPSHOT(s, op_contains(o_->snap, id));
}

static PyObject *store_neighbors(StoreObject *s, PyObject *args, PyObject *kw)
{
	WITH_SNAPSHOT(s, op_neighbors(o_->snap, args, kw));
}

static PyObject *store_get_neighbors(StoreObject *s, PyObject *args, PyObject *kw)
{
	WITH_SNAPSHOT(s, with_flags(op_neighbors, o_->snap, args, kw, 0));
}

static PyObject *store_neighbors_detail(StoreObject *s, PyObject *args, PyObject *kw)
{
	WITH_SNAPSHOT(s, with_flags(op_neighbors, o_->snap, args, kw, 1));
}

static PyObject *store_find_path(StoreObject *s, PyObject *args, PyObject *kw)
{
	WITH_SNAPSHOT(s, op_paths(o_->snap, args, kw, 0));
}

static PyObject *store_find_paths(StoreObject *s, PyObject *args, PyObject *kw)
{
	WITH_SNAPSHOT(s, op_paths(o_->snap, args, kw, 1));
}

static PyObject *store_stats(StoreObject *s, PyObject *unused)
{
	(void)unused;
	WITH_SNAPSHOT(s, op_stats(o_->snap));
}

static PyObject *store_ids(StoreObject *s, PyObject *unused)
{
	(void)unused;
	WITH_SNAPSHOT(s, op_foreach(o_->snap, NULL, 1));
}

static PyObject *store_snapshot(StoreObject *s, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "min_epoch", NULL };
	unsigned long long min = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|K", kwlist, &min))
		return NULL;
	if (s->last_epoch > min)
		min = s->last_epoch;
	return (PyObject *)snapshot_new(s, min);
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
			return raise_msg(InvalidArgument, "timeout must be >= 0 or None");
	}
	if (store_usable(s) || store_reader(s))
		return NULL;
	/* Subscribed, a wait wakes on the epoch's notice; otherwise it polls
	 * the file every 50 ms. A failed subscription only costs latency. */
	if (!s->subscribed && !nng_forbidden) {
		char url[512];
		if (s->srv)
			snprintf(url, sizeof url, "%s", coord_server_events_url(s->srv));
		else if (url_or_default(s, s->events_url, "events", url, sizeof url))
			return NULL;
		sigset_t old;
		nng_started = 1;
		block_signals(&old);
		int rc = sutra_reader_subscribe(s->rdr, url);
		restore_signals(&old);
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

static PyObject *store_info(StoreObject *s, PyObject *unused)
{
	(void)unused;
	store_check_fork(s);
	static const char *roles[] = { "none", "writer", "client", "reader" };
	char lurl[512] = "", eurl[512] = "";
	if (s->srv) {
		snprintf(lurl, sizeof lurl, "%s", coord_server_listen_url(s->srv));
		snprintf(eurl, sizeof eurl, "%s", coord_server_events_url(s->srv));
	} else {
		if (url_or_default(s, s->listen_url, "write", lurl, sizeof lurl) ||
		    url_or_default(s, s->events_url, "events", eurl, sizeof eurl))
			return NULL;
	}
	return Py_BuildValue("{s:s,s:s,s:s,s:s,s:s,s:K,s:l,s:i,s:I}", "path", s->path, "mode",
			     s->embedded ? "embedded" : "server", "role", roles[s->role],
			     "coordinator_url", lurl, "events_url", eurl, "last_epoch",
			     (unsigned long long)s->last_epoch, "pid", (long)getpid(), "closed",
			     s->closed, "vector_dimension", s->dim);
}

static PyObject *store_vector_dimension(StoreObject *s, void *unused)
{
	(void)unused;
	if (store_usable(s) || store_reader(s))
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

/* ---- Batch ---------------------------------------------------------------- */

typedef struct {
	PyObject_HEAD
	StoreObject *store;
	sutra_batch *b;
} BatchObject;

static PyTypeObject Batch_Type;

static PyObject *store_new_batch(StoreObject *s, PyObject *unused)
{
	(void)unused;
	if (store_usable(s))
		return NULL;
	BatchObject *o = PyObject_New(BatchObject, &Batch_Type);
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
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OddO", learn_kwlist, &id_o, &content_o,
					 &emb_o, &strength, &confidence, &meta_o))
		return NULL;
	if (store_usable(o->store))
		return NULL;
	struct concept_args ca;
	PyObject *r = NULL;
	if (concept_args_parse(o->store, &ca, id_o, content_o, emb_o, strength, confidence,
			       meta_o) == 0)
		r = batch_rc(sutra_batch_learn_concept(o->b, &ca.in));
	concept_args_clear(&ca);
	return r;
}

static PyObject *batch_learn_association(BatchObject *o, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "source_id", "target_id", "assoc_type", "confidence", "weight",
				  NULL };
	PyObject *a_o, *b_o, *t_o = NULL;
	double conf = 1.0, weight = 1.0;
	struct assoc_args a;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|Odd", kwlist, &a_o, &b_o, &t_o, &conf,
					 &weight))
		return NULL;
	a.type = 0;
	if (sutra_py_parse_id(a_o, a.src) || sutra_py_parse_id(b_o, a.dst) ||
	    (t_o && parse_type(t_o, 0, &a.type)))
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
	struct assoc_args a;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O", kwlist, &a_o, &b_o, &t_o))
		return NULL;
	a.type = 0;
	if (sutra_py_parse_id(a_o, a.src) || sutra_py_parse_id(b_o, a.dst) ||
	    (t_o && parse_type(t_o, 0, &a.type)))
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
	PyObject *e = do_write(o->store, "batch commit", w_commit, o->b);
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

static PyTypeObject Batch_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sutra._sutra.Batch",
	.tp_basicsize = sizeof(BatchObject),
	.tp_dealloc = (destructor)batch_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "An atomic batch of writes (all or nothing, one epoch).",
	.tp_methods = batch_methods,
	.tp_as_sequence = &batch_seq,
};

/* ---- Snapshot type -------------------------------------------------------- */

static void snapshot_dealloc(SnapshotObject *o)
{
	o->pins = 0; /* no array can refer to it: each holds a reference */
	o->released = 1;
	snapshot_drop(o);
	Py_XDECREF(o->store);
	Py_TYPE(o)->tp_free((PyObject *)o);
}

#define SNAP_OK(o)                                                                          \
	do {                                                                                \
		if (sutra_py_snapshot_ok(o))                                                \
			return NULL;                                                        \
	} while (0)

static PyObject *snap_get(SnapshotObject *o, PyObject *id)
{
	SNAP_OK(o);
	return op_get(o->snap, o, id);
}

static PyObject *snap_get_copy(SnapshotObject *o, PyObject *id)
{
	SNAP_OK(o);
	return op_get(o->snap, NULL, id);
}

static PyObject *snap_contains(SnapshotObject *o, PyObject *id)
{
	SNAP_OK(o);
	return op_contains(o->snap, id);
}

static PyObject *snap_neighbors(SnapshotObject *o, PyObject *args, PyObject *kw)
{
	SNAP_OK(o);
	return op_neighbors(o->snap, args, kw);
}

static PyObject *snap_get_neighbors(SnapshotObject *o, PyObject *args, PyObject *kw)
{
	SNAP_OK(o);
	return with_flags(op_neighbors, o->snap, args, kw, 0);
}

static PyObject *snap_neighbors_detail(SnapshotObject *o, PyObject *args, PyObject *kw)
{
	SNAP_OK(o);
	return with_flags(op_neighbors, o->snap, args, kw, 1);
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
	return op_paths(o->snap, args, kw, 0);
}

static PyObject *snap_find_paths(SnapshotObject *o, PyObject *args, PyObject *kw)
{
	SNAP_OK(o);
	return op_paths(o->snap, args, kw, 1);
}

static PyObject *snap_stats(SnapshotObject *o, PyObject *unused)
{
	(void)unused;
	SNAP_OK(o);
	return op_stats(o->snap);
}

static PyObject *snap_ids(SnapshotObject *o, PyObject *unused)
{
	(void)unused;
	SNAP_OK(o);
	return op_foreach(o->snap, NULL, 1);
}

static PyObject *snap_concepts(SnapshotObject *o, PyObject *unused)
{
	(void)unused;
	SNAP_OK(o);
	return op_foreach(o->snap, o, 0);
}

/* Ordinals -> ids of the live concepts among them (a dict), for notices. */
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

PyTypeObject Snapshot_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sutra._sutra.Snapshot",
	.tp_basicsize = sizeof(SnapshotObject),
	.tp_dealloc = (destructor)snapshot_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "A stable view of one epoch; use it as a context manager.",
	.tp_methods = snap_methods,
	.tp_getset = snap_getset,
};

/* ---- Notices -------------------------------------------------------------- */

typedef struct {
	PyObject_HEAD
	StoreObject *store;
	sutra_reader *rdr;
	unsigned long gen;
	int busy;
} NoticesObject;

static PyTypeObject Notices_Type;

static PyObject *store_open_notices(StoreObject *s, PyObject *unused)
{
	(void)unused;
	if (store_usable(s) || store_reader(s))
		return NULL;
	if (!nng_allowed("notices"))
		return NULL;
	char url[512];
	if (s->srv)
		snprintf(url, sizeof url, "%s", coord_server_events_url(s->srv));
	else if (url_or_default(s, s->events_url, "events", url, sizeof url))
		return NULL;
	sutra_reader *r;
	int rc = sutra_reader_open(s->path, &r);
	if (rc)
		return sutra_py_raise(rc, "notices: open", NULL);
	sigset_t old;
	nng_started = 1;
	block_signals(&old);
	rc = sutra_reader_subscribe(r, url);
	restore_signals(&old);
	if (rc) {
		sutra_reader_close(r);
		return sutra_py_raise(rc, "notices: subscribe", url);
	}
	NoticesObject *o = PyObject_New(NoticesObject, &Notices_Type);
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
		raise_msg(InvalidArgument, o->rdr ? "the notices were opened before a fork"
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
			return raise_msg(InvalidArgument, "close: another thread is waiting");
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

static PyTypeObject Notices_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sutra._sutra.Notices",
	.tp_basicsize = sizeof(NoticesObject),
	.tp_dealloc = (destructor)notices_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "A subscription to a store's epoch notices.",
	.tp_methods = notices_methods,
};

/* ---- Store type ----------------------------------------------------------- */

static PyMethodDef store_methods[] = {
	{ "learn_concept", (PyCFunction)(void (*)(void))store_learn_concept,
	  METH_VARARGS | METH_KEYWORDS,
	  "learn_concept(id, content, embedding=None, strength=1.0, confidence=1.0, "
	  "metadata=None) -> epoch" },
	{ "learn_association", (PyCFunction)(void (*)(void))store_learn_association,
	  METH_VARARGS | METH_KEYWORDS,
	  "learn_association(source_id, target_id, assoc_type=0, confidence=1.0, weight=1.0) "
	  "-> epoch" },
	{ "delete_concept", (PyCFunction)store_delete_concept, METH_O,
	  "delete_concept(id) -> epoch; also removes its associations" },
	{ "delete_association", (PyCFunction)(void (*)(void))store_delete_association,
	  METH_VARARGS | METH_KEYWORDS,
	  "delete_association(source_id, target_id, assoc_type=0) -> epoch" },
	{ "flush", (PyCFunction)store_flush, METH_NOARGS,
	  "Returns once every acknowledged write is durable; the durable epoch." },
	{ "ping", (PyCFunction)store_ping, METH_NOARGS,
	  "A round trip to the coordinator; its newest epoch." },
	{ "coordinator_stats", (PyCFunction)store_coordinator_stats, METH_NOARGS,
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
	{ "_new_batch", (PyCFunction)store_new_batch, METH_NOARGS, NULL },
	{ "_open_notices", (PyCFunction)store_open_notices, METH_NOARGS, NULL },
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

static PyTypeObject Store_Type = {
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

/* ---- Module --------------------------------------------------------------- */

static PyObject *py_strerror(PyObject *mod, PyObject *arg)
{
	(void)mod;
	long c = PyLong_AsLong(arg);
	if (c == -1 && PyErr_Occurred())
		return NULL;
	return Py_BuildValue("(ss)", sutra_errname((int)c), sutra_strerror((int)c));
}

static PyObject *py_default_url(PyObject *mod, PyObject *args)
{
	(void)mod;
	const char *path, *suffix;
	if (!PyArg_ParseTuple(args, "ss", &path, &suffix))
		return NULL;
	char url[512];
	int rc = coord_default_url(path, suffix, url, sizeof url);
	if (rc)
		return sutra_py_raise(rc, "default URL", NULL);
	return PyUnicode_FromString(url);
}

static PyMethodDef module_methods[] = {
	{ "normalize_id", py_normalize_id, METH_O,
	  "normalize_id(id) -> the canonical 32-hex lowercase str" },
	{ "strerror", py_strerror, METH_O, "strerror(code) -> (name, text)" },
	{ "default_url", py_default_url, METH_VARARGS,
	  "default_url(path, suffix) -> the coordinator's default URL for a store" },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef module_def = {
	PyModuleDef_HEAD_INIT, .m_name = "sutra._sutra",
	.m_doc = "C core of the sutra package (see python/README.md).", .m_size = -1,
	.m_methods = module_methods,
};

static PyObject *new_exc(PyObject *m, const char *name, PyObject *bases, const char *doc)
{
	char full[64];
	snprintf(full, sizeof full, "sutra.%s", name);
	PyObject *e = PyErr_NewExceptionWithDoc(full, doc, bases, NULL);
	if (e && PyModule_AddObjectRef(m, name, e) < 0)
		Py_CLEAR(e);
	return e;
}

static PyObject *bases2(PyObject *a, PyObject *b)
{
	return b ? PyTuple_Pack(2, a, b) : PyTuple_Pack(1, a);
}

PyMODINIT_FUNC PyInit__sutra(void);
PyMODINIT_FUNC PyInit__sutra(void)
{
	static int atfork_done;
	import_array();
	if (PyType_Ready(&Store_Type) < 0 || PyType_Ready(&Snapshot_Type) < 0 ||
	    PyType_Ready(&Batch_Type) < 0 || PyType_Ready(&Notices_Type) < 0)
		return NULL;
	PyObject *m = PyModule_Create(&module_def);
	if (!m)
		return NULL;
	if (!atfork_done) {
		pthread_atfork(NULL, NULL, atfork_child);
		atfork_done = 1;
	}
	Error = new_exc(m, "Error", NULL, "Base of every sutra error; .code and .name give the C code.");
	if (!Error || PyObject_SetAttrString(Error, "code", Py_None) ||
	    PyObject_SetAttrString(Error, "name", Py_None))
		goto fail;
	/* Each class carries its C code as class attributes .code and .name
	 * (an instance raised from a C result sets its own). */
	struct {
		PyObject **slot;
		const char *name;
		PyObject *extra;
		int code;
		const char *doc;
	} excs[] = {
		{ &NotFound, "NotFound", PyExc_LookupError, SUTRA_ENOTFOUND, "SUTRA_ENOTFOUND: no such concept or association." },
		{ &DimensionError, "DimensionError", PyExc_ValueError, SUTRA_EDIM, "SUTRA_EDIM: a vector of another dimension." },
		{ &InvalidArgument, "InvalidArgument", PyExc_ValueError, SUTRA_EVALUE, "SUTRA_EVALUE: an invalid argument." },
		{ &TooBig, "TooBig", PyExc_ValueError, SUTRA_ETOOBIG, "SUTRA_ETOOBIG: over a configured or format limit." },
		{ &StoreLocked, "StoreLocked", NULL, SUTRA_ELOCKED, "SUTRA_ELOCKED: another process writes the store." },
		{ &Corrupt, "Corrupt", NULL, SUTRA_ECORRUPT, "SUTRA_ECORRUPT: the store file is corrupt." },
		{ &VersionError, "VersionError", NULL, SUTRA_EVERSION, "SUTRA_EVERSION: unsupported format version." },
		{ &ProtocolError, "ProtocolError", NULL, SUTRA_EPROTO, "SUTRA_EPROTO: a malformed protocol message." },
		{ &Unavailable, "Unavailable", PyExc_ConnectionError, SUTRA_EUNAVAIL, "SUTRA_EUNAVAIL: the coordinator cannot be reached." },
		{ &Timeout, "Timeout", PyExc_TimeoutError, -ETIMEDOUT, "-ETIMEDOUT: a wait timed out." },
		{ &StorageOSError, "StorageOSError", PyExc_OSError, 0, "A system error (-errno)." },
		{ &Unsupported, "Unsupported", PyExc_NotImplementedError, 0, "Not available in this build." },
	};
	for (size_t i = 0; i < sizeof excs / sizeof excs[0]; i++) {
		PyObject *b = bases2(Error, excs[i].extra);
		if (!b)
			goto fail;
		*excs[i].slot = new_exc(m, excs[i].name, b, excs[i].doc);
		Py_DECREF(b);
		if (!*excs[i].slot)
			goto fail;
		if (excs[i].code) {
			PyObject *c = PyLong_FromLong(excs[i].code);
			PyObject *n = PyUnicode_FromString(sutra_errname(excs[i].code));
			int bad = !c || !n || PyObject_SetAttrString(*excs[i].slot, "code", c) ||
				  PyObject_SetAttrString(*excs[i].slot, "name", n);
			Py_XDECREF(c);
			Py_XDECREF(n);
			if (bad)
				goto fail;
		}
	}
	if (PyModule_AddObjectRef(m, "Store", (PyObject *)&Store_Type) < 0 ||
	    PyModule_AddObjectRef(m, "Snapshot", (PyObject *)&Snapshot_Type) < 0 ||
	    PyModule_AddObjectRef(m, "Batch", (PyObject *)&Batch_Type) < 0 ||
	    PyModule_AddObjectRef(m, "Notices", (PyObject *)&Notices_Type) < 0)
		goto fail;
	if (PyModule_AddIntConstant(m, "MAX_PATH_DEPTH", SUTRA_MAX_PATH_DEPTH) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_PATHS", SUTRA_MAX_PATHS) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_K", SUTRA_MAX_K) < 0)
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
