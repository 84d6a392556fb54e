/* SPDX-License-Identifier: MIT */
/* Python values and C values for the extension module _sutra: error codes to exceptions, ids, association types, embeddings. */
#include "_sutra.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

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

PyObject *sutra_py_invalid(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	PyErr_FormatV(InvalidArgument, fmt, ap);
	va_end(ap);
	return NULL;
}

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

int sutra_py_add_exceptions(PyObject *m)
{
	Error = new_exc(m, "Error", NULL, "Base of every sutra error; .code and .name give the C code.");
	if (!Error || PyObject_SetAttrString(Error, "code", Py_None) ||
	    PyObject_SetAttrString(Error, "name", Py_None))
		return -1;
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
			return -1;
		*excs[i].slot = new_exc(m, excs[i].name, b, excs[i].doc);
		Py_DECREF(b);
		if (!*excs[i].slot)
			return -1;
		if (excs[i].code) {
			PyObject *c = PyLong_FromLong(excs[i].code);
			PyObject *n = PyUnicode_FromString(sutra_errname(excs[i].code));
			int bad = !c || !n || PyObject_SetAttrString(*excs[i].slot, "code", c) ||
				  PyObject_SetAttrString(*excs[i].slot, "name", n);
			Py_XDECREF(c);
			Py_XDECREF(n);
			if (bad)
				return -1;
		}
	}
	return 0;
}

/* ---- Ids and association types -------------------------------------------- */

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

int sutra_py_parse_type(PyObject *o, int allow_none, int *out)
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

int sutra_py_parse_assoc(PyObject *src_o, PyObject *dst_o, PyObject *t_o,
			 struct sutra_py_assoc *out)
{
	out->type = 0;
	if (sutra_py_parse_id(src_o, out->src) || sutra_py_parse_id(dst_o, out->dst) ||
	    (t_o && sutra_py_parse_type(t_o, 0, &out->type)))
		return -1;
	return 0;
}

/* ---- Vectors and dicts ---------------------------------------------------- */

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

PyObject *sutra_py_vector_copy(const float *v, uint32_t dim)
{
	npy_intp d = dim;
	PyObject *a = PyArray_SimpleNew(1, &d, NPY_FLOAT32);
	if (a)
		memcpy(PyArray_DATA((PyArrayObject *)a), v, (size_t)dim * sizeof(float));
	return a;
}

int sutra_py_dict_set(PyObject *d, const char *k, PyObject *v)
{
	if (!v)
		return -1;
	int rc = PyDict_SetItemString(d, k, v);
	Py_DECREF(v);
	return rc;
}
