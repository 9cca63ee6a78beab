/* The resampling kernels compiled at install: the SpectRes algorithm (bin-overlap integration).
 *
 * A line-for-line port of campfire/tasks/_numba_resample.py: the same operations in the same
 * order, so the numbers are the numba kernels' bit for bit (tests/tasks/test_resample_c.py).
 * Built with -ffp-contract=off (setup.py): a fused multiply-add would round once where numba
 * rounds twice. Imported through campfire.tasks._jit.c_kernels(); no numba, no SciPy: a fresh
 * process's first call costs what loading this file costs.
 *
 * The functions take the numba kernels' arguments and check what numba's dispatcher checked
 * (float64 arrays of the right dimensions; any layout or alignment, copied when not plain) plus
 * every length they index with, so no argument can make them read or write out of bounds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <math.h>
#include <stdlib.h>

#include "_cargs.h"

/* ------------------------------------------------------------------------------ the kernels */

/* SpectRes's make_bins edges of w (n >= 2 values) into edges (n + 1); true when w is finite and
 * strictly increasing (one comparison per value, no early exit, as in the numba kernel). */
static int edges_of(const double *w, npy_intp n, double *edges)
{
    int ok = isfinite(w[0]) && isfinite(w[n - 1]);
    for (npy_intp k = 1; k < n; k++)
        ok &= w[k] > w[k - 1];
    for (npy_intp k = 1; k < n; k++)
        edges[k] = (w[k] + w[k - 1]) / 2;
    edges[0] = w[0] - (w[1] - w[0]) / 2;
    edges[n] = w[n - 1] + (w[n - 1] - w[n - 2]) / 2;
    return ok;
}

static inline int good(const double *f, const double *e, npy_intp k, int has_err)
{
    double fk = f[k];
    if (!isfinite(fk))
        return 0;
    if (has_err) {
        double ek = e[k];
        return isfinite(ek) && ek > 0.0;
    }
    return 1;
}

/* One spectrum: new edges ne (m + 1), old edges oe (n + 1), flux, error -> out rows (see the numba
 * kernel _resample_one for the rules). */
static void resample_one(const double *ne, npy_intp m, const double *oe, npy_intp n, const double *f,
                         const double *e, int has_err, double fill, double min_cov, double *out_f, double *out_e)
{
    npy_intp start = 0, stop = 0;
    double lo_edge = oe[0], hi_edge = oe[n];
    for (npy_intp j = 0; j < m; j++) {
        double a = ne[j], b = ne[j + 1];
        if (a < lo_edge || b > hi_edge) {
            out_f[j] = fill;
            if (has_err)
                out_e[j] = fill;
            continue;
        }
        while (start < n - 1 && oe[start + 1] <= a)
            start++;
        if (stop < start)
            stop = start;
        while (stop < n - 1 && oe[stop + 1] < b)
            stop++;
        if (stop == start) {
            if (good(f, e, start, has_err)) {
                out_f[j] = f[start];
                if (has_err)
                    out_e[j] = e[start];
            }
            else {
                out_f[j] = fill;
                if (has_err)
                    out_e[j] = fill;
            }
            continue;
        }
        double o = oe[start + 1] - a, t;
        double den_all = o, num = 0.0, den = 0.0, var = 0.0;
        if (good(f, e, start, has_err)) {
            num = o * f[start];
            den = o;
            if (has_err) {
                t = o * e[start];
                var = t * t;
            }
        }
        for (npy_intp k = start + 1; k < stop; k++) {
            o = oe[k + 1] - oe[k];
            den_all += o;
            if (good(f, e, k, has_err)) {
                num += o * f[k];
                den += o;
                if (has_err) {
                    t = o * e[k];
                    var += t * t;
                }
            }
        }
        o = b - oe[stop];
        den_all += o;
        if (good(f, e, stop, has_err)) {
            num += o * f[stop];
            den += o;
            if (has_err) {
                t = o * e[stop];
                var += t * t;
            }
        }
        if (den > 0.0 && den >= min_cov * den_all) {
            double inv = 1.0 / den;
            out_f[j] = num * inv;
            if (has_err)
                out_e[j] = sqrt(var) * inv;
        }
        else {
            out_f[j] = fill;
            if (has_err)
                out_e[j] = fill;
        }
    }
}

/* ------------------------------------------------------------------------------ arguments */

static int scalars(PyObject *const *args, int *has_err, double *fill, double *min_cov)
{
    *has_err = PyObject_IsTrue(args[0]);
    if (*has_err < 0)
        return 0;
    *fill = PyFloat_AsDouble(args[1]);
    if (*fill == -1.0 && PyErr_Occurred())
        return 0;
    *min_cov = PyFloat_AsDouble(args[2]);
    return !(*min_cov == -1.0 && PyErr_Occurred());
}

#define DATA(o) ((double *)PyArray_DATA((PyArrayObject *)(o)))
#define DIM(o, i) PyArray_DIM((PyArrayObject *)(o), (i))

/* Converts the inputs args[which[k]] (types[k], ndims[k]) into in[k] (new references) and checks
 * the outputs args[outs[k]] (2D); 0 with an exception set (and in[] released) when one does not fit. */
static int arguments(PyObject *const *args, int n_in, const int *which, const int *types, const int *ndims,
                     const int *outs, const char *func, const char *const *names, PyArrayObject **in)
{
    for (int k = 0; k < n_in; k++)
        in[k] = NULL;
    for (int k = 0; k < 2; k++)
        if (!output(args[outs[k]], 2, func, names[outs[k]]))
            return 0;
    for (int k = 0; k < n_in; k++)
        if ((in[k] = input(args[which[k]], types[k], ndims[k], func, names[which[k]])) == NULL) {
            for (int j = 0; j < k; j++)
                Py_DECREF(in[j]);
            return 0;
        }
    return 1;
}

static void release(PyArrayObject **in, int n)
{
    for (int k = 0; k < n; k++)
        Py_DECREF(in[k]);
}

/* ------------------------------------------------------------------------------ the functions */

PyDoc_STRVAR(one_doc,
"resample_one_checked(new_w, old_w, f, e, has_err, fill, min_cov, out_f, out_e) -> bool\n\n"
"One spectrum into out_f (out_e), inputs checked in the same call: True when done. False when\n"
"either grid is not >= 2 finite, strictly increasing values, the lengths do not match, or an\n"
"array is not a plain (C-contiguous, aligned, native; outputs writeable) 1D float64 array: the\n"
"caller then takes its general path, which converts and names the problem. As\n"
"campfire.tasks._numba_resample's.");

static PyObject *resample_one_checked(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9)
        return nargs_error("resample_one_checked", 9, nargs);
    int has_err;
    double fill, min_cov;
    if (!scalars(args + 4, &has_err, &fill, &min_cov))
        return NULL;
    for (int i = 0; i < 9; i++)
        if (i < 4 || i > 6)
            if (!plain(args[i], NPY_DOUBLE, 1, i > 6))
                Py_RETURN_FALSE;
    npy_intp m = DIM(args[0], 0), n = DIM(args[1], 0);
    if (m < 2 || n < 2 || DIM(args[2], 0) != n || DIM(args[3], 0) != n || DIM(args[7], 0) != m
        || DIM(args[8], 0) != m)
        Py_RETURN_FALSE;
    double *edges = malloc((size_t)(m + n + 2) * sizeof(double));
    if (edges == NULL)
        return PyErr_NoMemory();
    double *ne = edges, *oe = edges + m + 1;
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = edges_of(DATA(args[0]), m, ne) && edges_of(DATA(args[1]), n, oe);
    if (ok)
        resample_one(ne, m, oe, n, DATA(args[2]), DATA(args[3]), has_err, fill, min_cov, DATA(args[7]),
                     DATA(args[8]));
    Py_END_ALLOW_THREADS
    free(edges);
    return PyBool_FromLong(ok);
}

PyDoc_STRVAR(shared_doc,
"resample_shared(new_w, old_w, f2d, e2d, has_err, fill, min_cov, out_f, out_e) -> None\n\n"
"Many spectra (rows of f2d) on one input grid old_w (both grids checked already by the caller).\n"
"Without errors e2d and out_e are not read or written (any 2D float64 arrays).");

static PyObject *resample_shared(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *func = "resample_shared";
    static const char *names[] = {"new_w", "old_w", "f2d", "e2d", "", "", "", "out_f", "out_e"};
    static const int which[] = {0, 1, 2, 3}, types[] = {NPY_DOUBLE, NPY_DOUBLE, NPY_DOUBLE, NPY_DOUBLE},
                     ndims[] = {1, 1, 2, 2}, outs[] = {7, 8};
    if (nargs != 9)
        return nargs_error(func, 9, nargs);
    int has_err;
    double fill, min_cov;
    PyArrayObject *in[4];
    if (!scalars(args + 4, &has_err, &fill, &min_cov) || !arguments(args, 4, which, types, ndims, outs, func, names, in))
        return NULL;
    npy_intp m = DIM(in[0], 0), n = DIM(in[1], 0), rows = DIM(in[2], 0);
    if (m < 2 || n < 2 || DIM(in[2], 1) != n || DIM(args[7], 0) != rows || DIM(args[7], 1) != m
        || (has_err && (DIM(in[3], 0) != rows || DIM(in[3], 1) != n || DIM(args[8], 0) != rows
                        || DIM(args[8], 1) != m))) {
        release(in, 4);
        PyErr_Format(PyExc_ValueError, "%s: shapes do not match (new_w (m >= 2), old_w (n >= 2), f2d (rows, n), "
                     "out_f (rows, m), and with errors e2d (rows, n), out_e (rows, m))", func);
        return NULL;
    }
    double *edges = malloc((size_t)(m + n + 2) * sizeof(double));
    if (edges == NULL) {
        release(in, 4);
        return PyErr_NoMemory();
    }
    double *ne = edges, *oe = edges + m + 1;
    const double *f = DATA(in[2]), *e = DATA(in[3]);
    double *out_f = DATA(args[7]), *out_e = DATA(args[8]);
    Py_BEGIN_ALLOW_THREADS
    edges_of(DATA(in[0]), m, ne);
    edges_of(DATA(in[1]), n, oe);
    for (npy_intp s = 0; s < rows; s++)
        resample_one(ne, m, oe, n, f + s * n, has_err ? e + s * n : e, has_err, fill, min_cov, out_f + s * m,
                     has_err ? out_e + s * m : out_e);
    Py_END_ALLOW_THREADS
    free(edges);
    release(in, 4);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(ragged_doc,
"resample_ragged(new_w, wflat, offsets, fflat, eflat, has_err, fill, min_cov, check, out_f, out_e) -> int\n\n"
"Many spectra, each on its own grid (concatenated; spectrum s is wflat[offsets[s]:offsets[s+1]]).\n"
"Returns -1, or (with check) the index of the first spectrum whose grid is not >= 2 finite,\n"
"strictly increasing values (its row is left as fill). new_w is checked by the caller.");

static PyObject *resample_ragged(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *func = "resample_ragged";
    static const char *names[] = {"new_w", "wflat", "offsets", "fflat", "eflat", "", "", "", "", "out_f", "out_e"};
    static const int which[] = {0, 1, 2, 3, 4}, types[] = {NPY_DOUBLE, NPY_DOUBLE, NPY_INT64, NPY_DOUBLE, NPY_DOUBLE},
                     ndims[] = {1, 1, 1, 1, 1}, outs[] = {9, 10};
    if (nargs != 11)
        return nargs_error(func, 11, nargs);
    int has_err, check;
    double fill, min_cov;
    PyArrayObject *in[5];
    if (!scalars(args + 5, &has_err, &fill, &min_cov))
        return NULL;
    if ((check = PyObject_IsTrue(args[8])) < 0)
        return NULL;
    if (!arguments(args, 5, which, types, ndims, outs, func, names, in))
        return NULL;
    npy_intp m = DIM(in[0], 0), nspec = DIM(in[2], 0) - 1, size = DIM(in[1], 0);
    const npy_int64 *offsets = (const npy_int64 *)PyArray_DATA(in[2]);
    int shapes = m >= 2 && nspec >= 0 && DIM(in[3], 0) == size && DIM(args[9], 0) >= nspec && DIM(args[9], 1) == m
                 && (!has_err || (DIM(in[4], 0) == size && DIM(args[10], 0) >= nspec && DIM(args[10], 1) == m));
    npy_intp nmax = 0;
    for (npy_intp s = 0; shapes && s < nspec; s++) {
        shapes = offsets[s] >= 0 && offsets[s] <= offsets[s + 1] && offsets[s + 1] <= size;
        if (offsets[s + 1] - offsets[s] > nmax)
            nmax = (npy_intp)(offsets[s + 1] - offsets[s]);
    }
    if (!shapes) {
        release(in, 5);
        PyErr_Format(PyExc_ValueError, "%s: shapes do not match (new_w (m >= 2), offsets (nspec + 1) increasing "
                     "within wflat, fflat and with errors eflat of wflat's size, out_f and with errors out_e "
                     "(>= nspec, m))", func);
        return NULL;
    }
    double *ne = malloc((size_t)(m + 1 + nmax + 1) * sizeof(double));
    if (ne == NULL) {
        release(in, 5);
        return PyErr_NoMemory();
    }
    double *oe = ne + m + 1;
    const double *w = DATA(in[1]), *f = DATA(in[3]), *e = DATA(in[4]);
    double *out_f = DATA(args[9]), *out_e = DATA(args[10]);
    npy_intp bad = nspec;
    Py_BEGIN_ALLOW_THREADS
    edges_of(DATA(in[0]), m, ne);
    for (npy_intp s = 0; s < nspec; s++) {
        npy_intp i0 = (npy_intp)offsets[s], n = (npy_intp)offsets[s + 1] - i0;
        int usable = n >= 2 && (edges_of(w + i0, n, oe) || !check);
        if (!usable) {
            if ((n >= 2 || check) && s < bad)
                bad = s;
            for (npy_intp j = 0; j < m; j++) {
                out_f[s * m + j] = fill;
                if (has_err)
                    out_e[s * m + j] = fill;
            }
            continue;
        }
        resample_one(ne, m, oe, n, f + i0, has_err ? e + i0 : e, has_err, fill, min_cov, out_f + s * m,
                     has_err ? out_e + s * m : out_e);
    }
    Py_END_ALLOW_THREADS
    free(ne);
    release(in, 5);
    return PyLong_FromSsize_t(bad == nspec ? -1 : bad);
}

/* ------------------------------------------------------------------------------ the module */

static PyMethodDef methods[] = {
    {"resample_one_checked", (PyCFunction)(void (*)(void))resample_one_checked, METH_FASTCALL, one_doc},
    {"resample_shared", (PyCFunction)(void (*)(void))resample_shared, METH_FASTCALL, shared_doc},
    {"resample_ragged", (PyCFunction)(void (*)(void))resample_ragged, METH_FASTCALL, ragged_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "campfire.tasks._cresample",
    "campfire's resampling kernels compiled at install (C; the numba kernels' numbers bit for bit).", -1, methods,
};

PyMODINIT_FUNC PyInit__cresample(void)
{
    import_array();
    return PyModule_Create(&module);
}
