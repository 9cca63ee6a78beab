/* The argument checks of campfire's C kernels (_cresample.c, _czfit.c): numpy arrays as numba's
 * dispatcher took them, refused with a TypeError naming the function and the argument otherwise.
 * Included after <Python.h> and <numpy/arrayobject.h>; every function is static (one copy per module).
 */
#ifndef CAMPFIRE_CARGS_H
#define CAMPFIRE_CARGS_H

/* A C-contiguous, aligned, native float64 (or int64) array of ndim dimensions, writeable when asked. */
static int plain(PyObject *o, int type, int ndim, int writeable)
{
    if (!PyArray_Check(o))
        return 0;
    PyArrayObject *a = (PyArrayObject *)o;
    return PyArray_TYPE(a) == type && PyArray_NDIM(a) == ndim && PyArray_ISCARRAY_RO(a) && PyArray_ISNOTSWAPPED(a)
           && (!writeable || PyArray_ISWRITEABLE(a));
}

static const char *type_name(int type) { return type == NPY_DOUBLE ? "a float64" : "an int64"; }

/* An input: an array of this type (float64 or int64; any byte order, layout or alignment: arrays
 * Dask unpickles from a network frame may sit at any offset) and ndim dimensions, as a new reference
 * to a C-contiguous, aligned, native one (a copy only when it is not already). NULL and TypeError
 * otherwise. */
static PyArrayObject *input(PyObject *o, int type, int ndim, const char *func, const char *name)
{
    if (!PyArray_Check(o) || PyArray_TYPE((PyArrayObject *)o) != type || PyArray_NDIM((PyArrayObject *)o) != ndim) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be %s array of %d dimension(s)", func, name, type_name(type),
                     ndim);
        return NULL;
    }
    return (PyArrayObject *)PyArray_FROM_OTF(o, type, NPY_ARRAY_IN_ARRAY);
}

/* An output (allocated by the caller): written in place, so it must be plain. 0 and TypeError otherwise. */
static int output(PyObject *o, int ndim, const char *func, const char *name)
{
    if (plain(o, NPY_DOUBLE, ndim, 1))
        return 1;
    PyErr_Format(PyExc_TypeError, "%s: %s must be a C-contiguous, aligned, native, writeable float64 array of %d "
                 "dimension(s)", func, name, ndim);
    return 0;
}

static PyObject *nargs_error(const char *func, Py_ssize_t want, Py_ssize_t got)
{
    PyErr_Format(PyExc_TypeError, "%s: expected %zd arguments, got %zd", func, want, got);
    return NULL;
}

#endif
