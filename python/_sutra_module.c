/* SPDX-License-Identifier: MIT */
/* The extension module _sutra itself: its init (numpy, types, exceptions, constants) and its module-level functions. */
#define SUTRA_PY_IMPORT_ARRAY /* this file fills numpy's API table */
#include "_sutra.h"

static PyObject *py_normalize_id(PyObject *mod, PyObject *arg)
{
	(void)mod;
	uint8_t id[16];
	if (sutra_py_parse_id(arg, id))
		return NULL;
	return sutra_py_id_str(id);
}

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
	int rc = sutra_py_default_url(path, suffix, url, sizeof url);
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

PyMODINIT_FUNC PyInit__sutra(void);
PyMODINIT_FUNC PyInit__sutra(void)
{
	import_array();
	if (PyType_Ready(&sutra_py_store_type) < 0 || PyType_Ready(&sutra_py_snapshot_type) < 0 ||
	    PyType_Ready(&sutra_py_batch_type) < 0 || PyType_Ready(&sutra_py_notices_type) < 0)
		return NULL;
	PyObject *m = PyModule_Create(&module_def);
	if (!m)
		return NULL;
	sutra_py_fork_init();
	if (sutra_py_add_exceptions(m))
		goto fail;
	if (PyModule_AddObjectRef(m, "Store", (PyObject *)&sutra_py_store_type) < 0 ||
	    PyModule_AddObjectRef(m, "Snapshot", (PyObject *)&sutra_py_snapshot_type) < 0 ||
	    PyModule_AddObjectRef(m, "Batch", (PyObject *)&sutra_py_batch_type) < 0 ||
	    PyModule_AddObjectRef(m, "Notices", (PyObject *)&sutra_py_notices_type) < 0)
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
