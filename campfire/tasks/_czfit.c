/* The redshift fit's χ² kernel compiled at install: the penalised χ² on a grid of ln(1+z).
 *
 * A line-for-line port of campfire/tasks/_numba_kernels.py's zfit_chi2_grid and of the helpers it
 * calls (own Cholesky, the tabulated normal CDF and its integral, the bucketed searches, the
 * component selection): the same operations in the same order, so the numbers are the numba
 * kernel's bit for bit. Built with -ffp-contract=off (setup.py): a fused multiply-add would round
 * once where numba rounds twice. Python's x**2 is numba's x*x here; int(u) truncates ((npy_int64)u,
 * u always positive where it is used); Python's min/max on floats are ``b < a ? b : a`` and
 * ``b > a ? b : a`` (numba's do_minmax), which matters for NaN and signed zeros. The tables PHI_TABLE
 * and PSI_TABLE are built at module init with the Python module's expressions in the same order
 * (glibc's erf/exp/sqrt are the functions CPython's math module calls: the same values).
 *
 * Where the numba kernel's result is not defined (it indexes out of bounds) the port stays in bounds:
 * a NaN argument of the tables gives NaN (numba converted NaN to an integer index), and
 * np.interp's node j = -1 (only when res_x[0] is NaN) wraps around as numba's negative indices do.
 *
 * The function takes the numba kernel's arguments (float64 / int64 arrays of any layout or
 * alignment, copied when not plain; Python floats and ints) and checks their shapes against each
 * other, the values of cidx (0 ≤ cidx[i] ≤ nc − 4) and comp_ptr (non-decreasing within line_xrest),
 * so no argument can make it read or write out of bounds. chi2_out is written in place.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_cargs.h"

typedef npy_int64 i64;

#if defined(_MSC_VER)
#define RESTRICT __restrict
#else
#define RESTRICT __restrict__
#endif

/* ------------------------------------------------------------------------------ tables */

#define PHI_T0 (-8.0)
#define PHI_DT 1e-3
#define PHI_INV_DT 1000.0 /* 1 / PHI_DT */
#define NTAB 16001
#define SQRT_2PI_LINE 2.5066282746310002

static double PHI_TABLE[NTAB];
static double PSI_TABLE[NTAB];

/* As the Python module: _SQRT1_2 = 1.0 / math.sqrt(2.0); PHI_TABLE = 0.5 * (1 + erf(t · _SQRT1_2));
 * PSI_TABLE = t · PHI_TABLE[i] + exp(−0.5 · t**2) / sqrt(2π) with t = PHI_T0 + i · PHI_DT; math.pi
 * is the double nearest π (M_PI's value). CPython's float t ** 2 is libm's pow(t, 2.0), which is
 * not t·t for every t (5 of the 16001 nodes differ in the last bit): the exponent is volatile so
 * that the compiler does not turn pow(t, 2.0) into t·t. */
static void build_tables(void)
{
    volatile double two = 2.0;
    const double sqrt1_2 = 1.0 / sqrt(2.0);
    const double pi = 3.141592653589793;
    for (int i = 0; i < NTAB; i++)
        PHI_TABLE[i] = 0.5 * (1.0 + erf((PHI_T0 + (double)i * PHI_DT) * sqrt1_2));
    for (int i = 0; i < NTAB; i++) {
        double t = PHI_T0 + (double)i * PHI_DT;
        PSI_TABLE[i] = t * PHI_TABLE[i] + exp(-0.5 * pow(t, two)) / sqrt(2.0 * pi);
    }
}

/* Linear interpolation in a table on the nodes PHI_T0 + i·PHI_DT: 0 below, above above (_tabulated). */
static inline double tabulated(const double *table, double t, double above)
{
    double u = (t - PHI_T0) * PHI_INV_DT;
    if (u <= 0.0)
        return 0.0;
    if (u >= 16000.0)
        return above;
    if (u != u) /* NaN: numba turned it into an undefined index; here it stays NaN */
        return u;
    i64 i = (i64)u;
    double f = u - (double)i;
    return table[i] * (1.0 - f) + table[i + 1] * f;
}

static inline double phi(double t) { return tabulated(PHI_TABLE, t, 1.0); }

static inline double psi(double t) { return tabulated(PSI_TABLE, t, t); }

static inline double box_phi(double t, double hb, double inv2hb)
{
    if (hb < 1e-6)
        return phi(t);
    return (psi(t + hb) - psi(t - hb)) * inv2hb;
}

/* Python's min and max of two floats as numba lowers them (do_minmax: select(v op acc, v, acc)). */
static inline double fmin_py(double a, double b) { return b < a ? b : a; }
static inline double fmax_py(double a, double b) { return b > a ? b : a; }
static inline i64 imin_(i64 a, i64 b) { return b < a ? b : a; }
static inline i64 imax_(i64 a, i64 b) { return b > a ? b : a; }

/* ------------------------------------------------------------------------------ dense linear algebra */

/* Lower Cholesky factor of a[:k, :k] (leading dimension ld) in place; 0 if not positive definite. */
static int cholesky_inplace(double *a, i64 ld, i64 k)
{
    for (i64 j = 0; j < k; j++) {
        double s = a[j * ld + j];
        for (i64 m = 0; m < j; m++)
            s -= a[j * ld + m] * a[j * ld + m];
        if (s <= 0.0)
            return 0;
        double d = sqrt(s);
        a[j * ld + j] = d;
        for (i64 i = j + 1; i < k; i++) {
            s = a[i * ld + j];
            for (i64 m = 0; m < j; m++)
                s -= a[i * ld + m] * a[j * ld + m];
            a[i * ld + j] = s / d;
        }
    }
    return 1;
}

/* Solve L out = b for the lower triangle in lower[:k, :k]. */
static void forward_subst(const double *RESTRICT lower, i64 ld, i64 k, const double *RESTRICT b,
                          double *RESTRICT out)
{
    for (i64 i = 0; i < k; i++) {
        double s = b[i];
        for (i64 m = 0; m < i; m++)
            s -= lower[i * ld + m] * out[m];
        out[i] = s / lower[i * ld + i];
    }
}

/* Solve Lᵀ out = b for the lower triangle in lower[:k, :k]. */
static void back_subst(const double *RESTRICT lower, i64 ld, i64 k, const double *RESTRICT b, double *RESTRICT out)
{
    for (i64 i = k - 1; i >= 0; i--) {
        double s = b[i];
        for (i64 m = i + 1; m < k; m++)
            s -= lower[m * ld + i] * out[m];
        out[i] = s / lower[i * ld + i];
    }
}

static void cholesky_solve(const double *lower, i64 ld, i64 k, const double *b, double *y, double *out)
{
    forward_subst(lower, ld, k, b, y);
    back_subst(lower, ld, k, y, out);
}

/* out[:k, :k] = L⁻¹ for the Cholesky factor L in lower[:k, :k]. */
static void lower_inverse(const double *RESTRICT lower, i64 ld, i64 k, double *RESTRICT out, i64 ldo)
{
    for (i64 j = 0; j < k; j++) {
        out[j * ldo + j] = 1.0 / lower[j * ld + j];
        for (i64 i = j + 1; i < k; i++) {
            double acc = 0.0;
            for (i64 m = j; m < i; m++)
                acc -= lower[i * ld + m] * out[m * ldo + j];
            out[i * ldo + j] = acc / lower[i * ld + i];
        }
    }
}

/* ------------------------------------------------------------------------------ searches */

/* _bucket_index's (tab, t0, tinv) of a sorted array: a start hint for find. */
typedef struct {
    const i64 *tab;
    i64 nbk;
    double t0, tinv;
} Hint;

static void bucket_index(const double *arr, i64 n, i64 nbk, i64 *tab, Hint *h)
{
    double t0 = arr[0];
    double span = arr[n - 1] - t0;
    h->tinv = span > 0.0 ? (double)nbk / span : 0.0;
    h->t0 = t0;
    h->nbk = nbk;
    h->tab = tab;
    i64 i = 0;
    for (i64 b = 0; b < nbk + 1; b++) {
        double e = t0 + (double)b * (span / (double)nbk);
        while (i < n && arr[i] < e)
            i++;
        tab[b] = i;
    }
}

/* np.searchsorted(arr, v, "right" if right else "left") for the sorted, finite arr (_find). */
static inline i64 find(const double *arr, i64 n, double v, int right, const Hint *h)
{
    if (v != v)
        return n;
    i64 nbk = h->nbk, i;
    double u = (v - h->t0) * h->tinv;
    if (u >= (double)nbk)
        i = h->tab[nbk];
    else if (u > 0.0)
        i = h->tab[(i64)u];
    else
        i = h->tab[0];
    if (right) {
        while (i > 0 && arr[i - 1] > v)
            i--;
        while (i < n && arr[i] <= v)
            i++;
    }
    else {
        while (i > 0 && arr[i - 1] >= v)
            i--;
        while (i < n && arr[i] < v)
            i++;
    }
    return i;
}

/* np.interp(xv, xp, fp) for one value (_interp1). */
static double interp1(double xv, const double *xp, const double *fp, i64 n, const Hint *h)
{
    if (xv < xp[0])
        return fp[0];
    if (xv > xp[n - 1])
        return fp[n - 1];
    i64 j = find(xp, n, xv, 1, h) - 1;
    i64 jw = j < 0 ? j + n : j; /* numba wraps the index -1 around (only when xp[0] is NaN) */
    if (j == n - 1 || xp[jw] == xv)
        return fp[jw];
    double slope = (fp[j + 1] - fp[jw]) / (xp[j + 1] - xp[jw]);
    double res = slope * (xv - xp[jw]) + fp[jw];
    if (isnan(res)) {
        res = slope * (xv - xp[j + 1]) + fp[j + 1];
        if (isnan(res) && fp[jw] == fp[j + 1])
            res = fp[jw];
    }
    return res;
}

/* ------------------------------------------------------------------------------ the kernel's pieces */

/* The arguments (arrays as C-contiguous data) and the sizes. */
typedef struct {
    i64 nz, n, nc, npd, nt, ncomp, nl, nr;
    const double *lnz, *x, *elo, *ehi, *y, *w, *cval, *pcc, *pcy, *sw, *sy, *sc, *ped, *pcp, *ppp, *vpp, *spd,
        *line_xrest, *line_ratio, *comp_sig_intr, *res_x, *res_sig, *tforest, *pen;
    const i64 *cidx, *comp_ptr, *comp_kind;
    double ywy, smear, ridge, min_cover, min_snr, pair_snr, igm_x_lya, igm_x_ll, igm_sig_v, brk_x_blue, brk_x_red,
        brk_rmax, ew_max, ped_occam, ped_lndet_prior;
    double *chi2_out;
} Args;

/* The scratch arrays of the numba kernel (2D ones row-major with the same shapes). */
typedef struct {
    i64 maxl, nrow;
    double *m, *v, *a0, *tmp, *prof, *iwid, *xk, *wk, *wkt, *g, *u, *s, *rhs, *sub, *subr, *bsol, *linv, *sd, *yv,
        *cvec, *tmp2, *afull, *line_sg, *ew_fac, *swp, *srow, *phis;
    i64 *win0, *win1, *act, *keep, *ew_pix, *seg0, *seg1, *nseg, *lj0, *lj1, *phrow, *ph0, *ph1, *tabx, *tablo,
        *tabhi, *tabres;
    char *banned, *inset;
} Work;

/* IGM transmission of pixel i (index windows as computed per redshift). */
static inline double igm_t(i64 i, double xi, double tf, double xll, double xly, double sb, i64 i_ll_lo, i64 i_ll_hi,
                           i64 i_ly_lo, i64 i_ly_hi)
{
    if (i < i_ll_lo)
        return 0.0;
    if (i < i_ll_hi)
        return tf * phi((xi - xll) / sb);
    if (i < i_ly_lo)
        return tf;
    if (i < i_ly_hi)
        return tf + (1.0 - tf) * phi((xi - xly) / sb);
    return 1.0;
}

/* Value of continuum-step component k at pixel i: 0 before, Φ on, 1 after its window. */
static inline double step_val(const double *prof, i64 n, const i64 *win0, const i64 *win1, i64 k, i64 i)
{
    if (i < win0[k])
        return 0.0;
    if (i < win1[k])
        return prof[k * n + i];
    return 1.0;
}

/* The union of the ranges [j0[l], j1[l]) (l < nl) as sorted disjoint segments in s0/s1; their count. */
static i64 merge_segments(const i64 *j0, const i64 *j1, i64 nl, i64 *s0, i64 *s1)
{
    i64 m = 0;
    for (i64 l = 0; l < nl; l++) {
        if (j1[l] <= j0[l])
            continue;
        i64 q = m;
        while (q > 0 && s0[q - 1] > j0[l]) {
            s0[q] = s0[q - 1];
            s1[q] = s1[q - 1];
            q--;
        }
        s0[q] = j0[l];
        s1[q] = j1[l];
        m++;
    }
    i64 ns = 0;
    for (i64 q = 0; q < m; q++) {
        if (ns > 0 && s0[q] <= s1[ns - 1])
            s1[ns - 1] = imax_(s1[ns - 1], s1[q]);
        else {
            s0[ns] = s0[q];
            s1[ns] = s1[q];
            ns++;
        }
    }
    return ns;
}

/* Cholesky solve of S_KK b = rhs_K (factor left in sub, L⁻¹rhs in yv, σ_b in sd); ld: ncomp. */
static int subset_solve(const double *s, const double *rhs, const i64 *keep, i64 nkeep, double ridge, double *sub,
                        double *subr, double *yv, double *bsol, double *linv, double *sd, i64 ld)
{
    for (i64 a = 0; a < nkeep; a++) {
        subr[a] = rhs[keep[a]];
        for (i64 b = 0; b < nkeep; b++)
            sub[a * ld + b] = s[keep[a] * ld + keep[b]];
        sub[a * ld + a] = sub[a * ld + a] * (1.0 + ridge) + 1e-300;
    }
    if (!cholesky_inplace(sub, ld, nkeep))
        return 0;
    cholesky_solve(sub, ld, nkeep, subr, yv, bsol);
    lower_inverse(sub, ld, nkeep, linv, ld);
    for (i64 a = 0; a < nkeep; a++) {
        double var = 0.0;
        for (i64 m = a; m < nkeep; m++)
            var += linv[m * ld + a] * linv[m * ld + a];
        sd[a] = sqrt(var);
    }
    return 1;
}

/* Drop keep[idx] (order kept); the new count. */
static i64 remove_at(i64 *keep, char *inset, i64 nkeep, i64 idx)
{
    inset[keep[idx]] = 0;
    for (i64 a = idx; a < nkeep - 1; a++)
        keep[a] = keep[a + 1];
    return nkeep - 1;
}

/* Drop the kept components with marked[a] > 0 and bar them at this redshift; the new count. */
static i64 bar_marked(i64 *keep, char *inset, char *banned, i64 nkeep, const double *marked)
{
    i64 newk = 0;
    for (i64 a = 0; a < nkeep; a++) {
        if (marked[a] > 0.0) {
            banned[keep[a]] = 1;
            inset[keep[a]] = 0;
        }
        else {
            keep[newk] = keep[a];
            newk++;
        }
    }
    return newk;
}

/* Continuum coefficients given the kept components: a = a0 − L⁻ᵀ(W b), into afull (ld of wk and lm: nt). */
static void continuum_given(const i64 *keep, i64 nkeep, const double *bsol, const double *a0, const double *wk,
                            const double *lm, double *tmp, i64 ncont, double *afull)
{
    for (i64 p = 0; p < ncont; p++) {
        double acc = 0.0;
        for (i64 a = 0; a < nkeep; a++)
            acc += wk[keep[a] * ncont + p] * bsol[a];
        tmp[p] = acc;
    }
    back_subst(lm, ncont, ncont, tmp, afull);
    for (i64 p = 0; p < ncont; p++)
        afull[p] = a0[p] - afull[p];
}

/* The model's continuum at pixel i: splines + pedestal + the kept continuum steps. */
static double observed_continuum(const Args *A, const Work *W, i64 i, i64 nkeep)
{
    const i64 nb = 4, nc = A->nc, ncont = A->nt, npd = A->npd;
    double c = 0.0;
    for (i64 p = 0; p < nb; p++)
        c += W->afull[A->cidx[i] + p] * A->cval[i * nb + p];
    for (i64 p = 0; p < ncont - nc; p++)
        c += W->afull[nc + p] * A->ped[i * npd + p];
    for (i64 a = 0; a < nkeep; a++) {
        i64 k = W->act[W->keep[a]];
        if (A->comp_kind[k] == 1)
            c += W->bsol[a] * step_val(W->prof, A->n, W->win0, W->win1, k, i);
    }
    return c;
}

/* How many of the nkeep kept components are continuum steps (kind 1). */
static i64 n_steps(const i64 *keep, i64 nkeep, const i64 *act, const i64 *comp_kind)
{
    i64 n = 0;
    for (i64 a = 0; a < nkeep; a++)
        if (comp_kind[act[keep[a]]] == 1)
            n++;
    return n;
}

static double penalty(i64 nkeep, i64 nstep, double min_snr, double pair_snr)
{
    i64 extra = nstep > 1 ? nstep - 1 : 0;
    return min_snr * min_snr * (double)(nkeep - extra) + pair_snr * pair_snr * (double)extra;
}

/* Components and non-negative amplitudes minimising χ² + min_snr² per component (_select); the
 * number kept (indices in keep, amplitudes in bsol, rhs_K in subr). */
static i64 select_components(const Args *A, Work *W, i64 nact, i64 ib_pix, i64 ir_pix)
{
    const i64 ld = A->ncomp, ncont = A->nt;
    const double ridge = A->ridge, min_snr = A->min_snr, pair_snr = A->pair_snr;
    const i64 *comp_kind = A->comp_kind, *act = W->act;
    const double *s = W->s, *rhs = W->rhs;
    i64 *keep = W->keep;
    char *banned = W->banned, *inset = W->inset;
    double *bsol = W->bsol, *sd = W->sd, *tmp2 = W->tmp2;
    double pen = min_snr * min_snr;
    for (i64 a = 0; a < nact; a++) {
        banned[a] = 0;
        inset[a] = 0;
    }
    i64 nkeep = 0;
    int solved = 1;
    for (i64 it = 0; it < 4 * nact + 4; it++) {
        int grow = it < 3 * nact + 3;
        if (nkeep > 0) {
            if (!subset_solve(s, rhs, keep, nkeep, ridge, W->sub, W->subr, W->yv, bsol, W->linv, sd, ld))
                return 0;
            solved = 1;
            i64 nstep = n_steps(keep, nkeep, act, comp_kind);
            i64 imin = 0, ilow = -1;
            double low_margin = 0.0;
            int anyneg = 0;
            for (i64 a = 0; a < nkeep; a++) {
                double snr = bsol[a] / sd[a];
                if (snr < bsol[imin] / sd[imin])
                    imin = a;
                if (bsol[a] < 0.0)
                    anyneg = 1;
                double thr = (nstep > 1 && comp_kind[act[keep[a]]] == 1) ? pair_snr : min_snr;
                if (snr - thr < low_margin) {
                    ilow = a;
                    low_margin = snr - thr;
                }
            }
            if (anyneg) {
                nkeep = remove_at(keep, inset, nkeep, imin);
                solved = 0;
                continue;
            }
            if (nstep > 0) {
                continuum_given(keep, nkeep, bsol, W->a0, W->wk, W->m, W->tmp, ncont, W->afull);
                double cb = observed_continuum(A, W, ib_pix, nkeep);
                double cr = observed_continuum(A, W, ir_pix, nkeep);
                if (cr > A->brk_rmax * cb) {
                    for (i64 a = 0; a < nkeep; a++)
                        tmp2[a] = comp_kind[act[keep[a]]] == 1 ? 1.0 : 0.0;
                    nkeep = bar_marked(keep, inset, banned, nkeep, tmp2);
                    solved = 0;
                    continue;
                }
            }
            i64 nstel = 0;
            for (i64 a = 0; a < nkeep; a++)
                if (comp_kind[act[keep[a]]] == 2)
                    nstel++;
            if (nstel > 0) {
                continuum_given(keep, nkeep, bsol, W->a0, W->wk, W->m, W->tmp, ncont, W->afull);
                i64 nbad = 0;
                for (i64 a = 0; a < nkeep; a++) {
                    tmp2[a] = 0.0;
                    i64 k = act[keep[a]];
                    if (comp_kind[k] == 2) {
                        double c = observed_continuum(A, W, W->ew_pix[k], nkeep);
                        if (bsol[a] * W->ew_fac[k] > A->ew_max * c) {
                            tmp2[a] = 1.0;
                            nbad++;
                        }
                    }
                }
                if (nbad > 0) {
                    nkeep = bar_marked(keep, inset, banned, nkeep, tmp2);
                    solved = 0;
                    continue;
                }
            }
            if (ilow >= 0) {
                nkeep = remove_at(keep, inset, nkeep, ilow);
                solved = 0;
                continue;
            }
        }
        if (!grow)
            break;
        i64 nstep = n_steps(keep, nkeep, act, comp_kind);
        i64 best = -1;
        double best_gain = 0.0;
        for (i64 j = 0; j < nact; j++) {
            if (banned[j] || inset[j])
                continue;
            double thr = (nstep > 0 && comp_kind[act[j]] == 1) ? pair_snr * pair_snr : pen;
            double sjj = s[j * ld + j] * (1.0 + ridge) + 1e-300;
            double r = sjj;
            double q = rhs[j];
            for (i64 i = 0; i < nkeep; i++)
                tmp2[i] = s[keep[i] * ld + j];
            forward_subst(W->sub, ld, nkeep, tmp2, W->cvec);
            for (i64 i = 0; i < nkeep; i++) {
                r -= W->cvec[i] * W->cvec[i];
                q -= W->cvec[i] * W->yv[i];
            }
            if (q > 0.0 && r > 1e-12 * sjj && q * q / r - thr > best_gain) {
                best = j;
                best_gain = q * q / r - thr;
            }
        }
        if (best < 0)
            break;
        keep[nkeep] = best;
        inset[best] = 1;
        nkeep++;
        solved = 0;
    }
    if (nkeep > 0 && !solved)
        if (!subset_solve(s, rhs, keep, nkeep, ridge, W->sub, W->subr, W->yv, bsol, W->linv, sd, ld))
            return 0;
    return nkeep;
}

/* ------------------------------------------------------------------------------ the kernel */

/* phrow (the row of phis each break sub-step's Φ goes to) and its count nrow: before the scratch
 * arrays are allocated (phis has max(nrow, 1) rows). */
static i64 phi_rows(const Args *A, i64 *phrow)
{
    const i64 *ptr = A->comp_ptr, *kind = A->comp_kind;
    for (i64 l = 0; l < A->nl; l++)
        phrow[l] = -1;
    i64 nrow = 0;
    for (i64 k = 0; k < A->ncomp; k++) {
        if (kind[k] != 1)
            continue;
        for (i64 l = ptr[k]; l < ptr[k + 1]; l++) {
            for (i64 k2 = 0; k2 < k; k2++)
                if (kind[k2] == 1 && A->comp_sig_intr[k2] == A->comp_sig_intr[k])
                    for (i64 l2 = ptr[k2]; l2 < ptr[k2 + 1]; l2++)
                        if (A->line_xrest[l2] == A->line_xrest[l])
                            phrow[l] = phrow[l2];
            if (phrow[l] < 0) {
                phrow[l] = nrow;
                nrow++;
            }
        }
    }
    return nrow;
}

static void zfit(const Args *A, Work *W)
{
    const i64 n = A->n, nb = 4, nc = A->nc, npd = A->npd, nt = A->nt, ncomp = A->ncomp, nr = A->nr;
    const double *RESTRICT x = A->x, *RESTRICT elo = A->elo, *RESTRICT ehi = A->ehi, *RESTRICT y = A->y,
                 *RESTRICT w = A->w, *RESTRICT cval = A->cval, *RESTRICT ped = A->ped, *RESTRICT tforest = A->tforest,
                 *RESTRICT line_xrest = A->line_xrest, *RESTRICT line_ratio = A->line_ratio,
                 *RESTRICT comp_sig_intr = A->comp_sig_intr;
    const i64 *RESTRICT cidx = A->cidx, *RESTRICT comp_ptr = A->comp_ptr, *RESTRICT comp_kind = A->comp_kind;
    const double smear = A->smear, ridge = A->ridge;
    double *RESTRICT m = W->m, *RESTRICT v = W->v, *RESTRICT a0 = W->a0, *RESTRICT prof = W->prof,
           *RESTRICT iwid = W->iwid, *RESTRICT xk = W->xk, *RESTRICT wk = W->wk, *RESTRICT g = W->g,
           *RESTRICT s = W->s, *RESTRICT line_sg = W->line_sg, *RESTRICT phis = W->phis, *RESTRICT swp = W->swp,
           *RESTRICT wkt = W->wkt, *RESTRICT srow = W->srow;
    i64 *RESTRICT win0 = W->win0, *RESTRICT win1 = W->win1, *RESTRICT act = W->act, *RESTRICT seg0 = W->seg0,
        *RESTRICT seg1 = W->seg1, *RESTRICT nseg = W->nseg, *RESTRICT lj0 = W->lj0, *RESTRICT lj1 = W->lj1,
        *RESTRICT phrow = W->phrow, *RESTRICT ph0 = W->ph0, *RESTRICT ph1 = W->ph1;
    const i64 maxl = W->maxl, nph = W->nrow > 1 ? W->nrow : 1;

    /* the arrays numba creates with np.zeros (the others are written before they are read) */
    memset(prof, 0, (size_t)(ncomp * n) * sizeof(double));
    for (i64 k = 0; k < ncomp; k++) {
        win0[k] = 0;
        win1[k] = 0;
        act[k] = 0;
        W->keep[k] = 0;
        W->banned[k] = 0;
        W->inset[k] = 0;
        W->ew_pix[k] = 0;
        W->ew_fac[k] = 0.0;
        nseg[k] = 0;
    }
    for (i64 k = 0; k < ncomp * maxl; k++) {
        seg0[k] = 0;
        seg1[k] = 0;
    }
    for (i64 l = 0; l < maxl; l++) {
        lj0[l] = 0;
        lj1[l] = 0;
    }
    for (i64 r = 0; r < nph; r++) {
        ph0[r] = 0;
        ph1[r] = 0;
    }
    for (i64 i = 0; i < n; i++)
        iwid[i] = 1.0 / (ehi[i] - elo[i]);
    const double x0 = x[0], x1 = x[n - 1];

    Hint hx, hlo, hhi, hres;
    bucket_index(x, n, n, W->tabx, &hx);
    bucket_index(elo, n, n, W->tablo, &hlo);
    bucket_index(ehi, n, n, W->tabhi, &hhi);
    bucket_index(A->res_x, nr, nr, W->tabres, &hres);

    const double sig_extra = smear / sqrt(3.0);
    for (i64 iz = 0; iz < A->nz; iz++) {
        double lz = A->lnz[iz];
        /* --- IGM transmission windows */
        double xly = A->igm_x_lya + lz;
        double xll = A->igm_x_ll + lz;
        double sr = interp1(xly, A->res_x, A->res_sig, nr, &hres);
        double sb = sqrt(sr * sr + A->igm_sig_v * A->igm_sig_v + sig_extra * sig_extra);
        i64 i_ll_lo = find(x, n, xll - 5.0 * sb, 0, &hx);
        i64 i_ll_hi = find(x, n, xll + 5.0 * sb, 0, &hx);
        i64 i_ly_lo = imax_(find(x, n, xly - 5.0 * sb, 0, &hx), i_ll_hi);
        i64 i_ly_hi = imax_(find(x, n, xly + 5.0 * sb, 0, &hx), i_ly_lo);
        int steps_ok = A->brk_x_blue + lz >= x0 && A->brk_x_red + lz <= x1;
        i64 ib_pix = imin_(find(x, n, A->brk_x_blue + lz, 0, &hx), n - 1);
        i64 ir_pix = imin_(find(x, n, A->brk_x_red + lz, 0, &hx), n - 1);
        for (i64 r = 0; r < nph; r++) {
            ph0[r] = 0;
            ph1[r] = 0;
        }

        /* --- continuum normal equations */
        for (i64 p = 0; p < nc; p++) {
            v[p] = A->pcy[i_ly_hi * nc + p];
            for (i64 q = 0; q < nc; q++) {
                i64 dq = q - p + nb - 1;
                m[p * nt + q] = ((0 <= dq && dq < 2 * nb - 1) ? A->pcc[(i_ly_hi * nc + p) * (2 * nb - 1) + dq] : 0.0)
                                + A->pen[p * nc + q];
            }
            for (i64 k = 0; k < npd; k++)
                m[p * nt + nc + k] = A->pcp[(i_ly_hi * nc + p) * npd + k];
        }
        for (i64 k = 0; k < npd; k++) {
            v[nc + k] = A->vpp[k];
            for (i64 l = 0; l < npd; l++)
                m[(nc + k) * nt + nc + l] = A->ppp[k * npd + l];
        }
        for (i64 i = i_ll_lo; i < i_ly_hi; i++) {
            double t = igm_t(i, x[i], tforest[i], xll, xly, sb, i_ll_lo, i_ll_hi, i_ly_lo, i_ly_hi);
            if (t == 0.0)
                continue;
            i64 j0 = cidx[i];
            for (i64 p = 0; p < nb; p++) {
                double cp = w[i] * t * cval[i * nb + p];
                v[j0 + p] += cp * y[i];
                for (i64 q = 0; q < nb; q++)
                    m[(j0 + p) * nt + j0 + q] += cp * t * cval[i * nb + q];
                for (i64 k = 0; k < npd; k++)
                    m[(j0 + p) * nt + nc + k] += cp * ped[i * npd + k];
            }
        }
        for (i64 p = 0; p < nc; p++)
            for (i64 k = 0; k < npd; k++)
                m[(nc + k) * nt + p] = m[p * nt + nc + k];
        double dmax = 0.0;
        for (i64 p = 0; p < nt; p++)
            if (m[p * nt + p] > dmax)
                dmax = m[p * nt + p];
        for (i64 p = 0; p < nt; p++)
            m[p * nt + p] += ridge * dmax + 1e-300;
        cholesky_inplace(m, nt, nt);
        double occam = -A->ped_lndet_prior;
        for (i64 p = nc; p < nt; p++)
            occam += 2.0 * log(m[p * nt + p]);
        occam *= A->ped_occam;
        cholesky_solve(m, nt, nt, v, W->tmp, a0);
        double chi2c = A->ywy;
        for (i64 p = 0; p < nt; p++)
            chi2c -= a0[p] * v[p];

        /* --- line components on their windows */
        i64 nact = 0;
        for (i64 k = 0; k < ncomp; k++) {
            i64 l0 = comp_ptr[k], l1 = comp_ptr[k + 1];
            double *RESTRICT pk = prof + k * n;
            if (comp_kind[k] == 1) {
                if (!steps_ok)
                    continue;
                int inside = 1;
                for (i64 l = l0; l < l1; l++) {
                    double xc = line_xrest[l] + lz;
                    if (xc < x0 || xc > x1)
                        inside = 0;
                }
                if (!inside)
                    continue;
                double lo = 1e30, hi = -1e30, cmin = 1e30, cmax = -1e30;
                for (i64 l = l0; l < l1; l++) {
                    double xc = line_xrest[l] + lz;
                    double sl = interp1(xc, A->res_x, A->res_sig, nr, &hres);
                    double sg = sqrt(sl * sl + comp_sig_intr[k] * comp_sig_intr[k] + sig_extra * sig_extra);
                    line_sg[l] = sg;
                    lo = fmin_py(lo, xc - 4.0 * sg);
                    hi = fmax_py(hi, xc + 4.0 * sg);
                    cmin = fmin_py(cmin, xc);
                    cmax = fmax_py(cmax, xc);
                }
                i64 i0 = find(x, n, lo, 0, &hx);
                i64 i4 = find(x, n, hi, 0, &hx);
                if (find(x, n, cmin, 0, &hx) - i0 < 3 || i4 - find(x, n, cmax, 0, &hx) < 3)
                    continue;
                for (i64 l = l0; l < l1; l++) {
                    i64 r = phrow[l];
                    if (ph0[r] <= i0 && i4 <= ph1[r])
                        continue;
                    double xc = line_xrest[l] + lz;
                    double isg = 1.0 / line_sg[l];
                    double *RESTRICT pr = phis + r * n;
                    for (i64 i = i0; i < i4; i++)
                        pr[i] = phi((x[i] - xc) * isg);
                    ph0[r] = i0;
                    ph1[r] = i4;
                }
                for (i64 i = i0; i < i4; i++) {
                    double acc = 0.0;
                    for (i64 l = l0; l < l1; l++)
                        acc += line_ratio[l] * phis[phrow[l] * n + i];
                    pk[i] = acc;
                }
                win0[k] = i0;
                win1[k] = i4;
                seg0[k * maxl] = i0;
                seg1[k * maxl] = i4;
                nseg[k] = 1;
                act[nact] = k;
                nact++;
                continue;
            }
            int inside = 0;
            for (i64 l = l0; l < l1; l++) {
                double xc = line_xrest[l] + lz;
                if (xc >= x0 && xc <= x1)
                    inside = 1;
            }
            if (!inside)
                continue;
            double lo = 1e30, hi = -1e30;
            for (i64 l = l0; l < l1; l++) {
                double xc = line_xrest[l] + lz;
                double sl = interp1(xc, A->res_x, A->res_sig, nr, &hres);
                double sg = sqrt(sl * sl + comp_sig_intr[k] * comp_sig_intr[k]);
                line_sg[l] = sg;
                if (xc - 5.0 * sg - smear < lo)
                    lo = xc - 5.0 * sg - smear;
                if (xc + 5.0 * sg + smear > hi)
                    hi = xc + 5.0 * sg + smear;
            }
            i64 i0 = find(ehi, n, lo, 0, &hhi);
            i64 i1 = find(elo, n, hi, 0, &hlo);
            if (i1 - i0 < 2)
                continue;
            double norm = SQRT_2PI_LINE * line_sg[l0];
            double cover = 0.0;
            for (i64 l = l0; l < l1; l++) {
                double xc = line_xrest[l] + lz;
                double sg = line_sg[l];
                i64 j0 = imax_(i0, find(ehi, n, xc - 8.0 * sg - smear, 0, &hhi));
                i64 j1 = imin_(i1, find(elo, n, xc + 8.0 * sg + smear, 0, &hlo));
                lj0[l - l0] = j0;
                lj1[l - l0] = j1;
                for (i64 i = j0; i < j1; i++)
                    pk[i] = 0.0;
            }
            nseg[k] = merge_segments(lj0, lj1, l1 - l0, seg0 + k * maxl, seg1 + k * maxl);
            for (i64 l = l0; l < l1; l++) {
                double xc = line_xrest[l] + lz;
                double sg = line_sg[l];
                double hb = smear / sg;
                double isg = 1.0 / sg;
                double inv2hb = hb >= 1e-6 ? 0.5 / hb : 0.0;
                double fac = line_ratio[l] * norm;
                double phi_hi = 0.0, phi_lo;
                i64 j0 = lj0[l - l0], j1 = lj1[l - l0];
                for (i64 i = j0; i < j1; i++) {
                    if (i > j0 && elo[i] == ehi[i - 1])
                        phi_lo = phi_hi;
                    else
                        phi_lo = box_phi((elo[i] - xc) * isg, hb, inv2hb);
                    phi_hi = box_phi((ehi[i] - xc) * isg, hb, inv2hb);
                    double frac = phi_hi - phi_lo;
                    pk[i] += fac * frac * iwid[i];
                    if (l == l0)
                        cover += frac;
                }
            }
            if (cover < A->min_cover)
                continue;
            if (comp_kind[k] == 2) {
                W->ew_pix[k] = imin_(find(x, n, line_xrest[l0] + lz, 0, &hx), n - 1);
                W->ew_fac[k] = SQRT_2PI_LINE * line_sg[l0] * exp(line_xrest[l0]) * 1e4;
            }
            win0[k] = i0;
            win1[k] = i1;
            act[nact] = k;
            nact++;
        }

        if (nact == 0) {
            A->chi2_out[iz] = chi2c + occam;
            continue;
        }

        /* the break components' Gram block: two on the same window summed in one pass */
        i64 sa1 = -1, sa2 = -1;
        for (i64 a = 0; a < nact; a++)
            if (comp_kind[act[a]] == 1) {
                if (sa1 < 0)
                    sa1 = a;
                else if (sa2 < 0)
                    sa2 = a;
                else
                    sa2 = -2;
            }
        int fused = sa1 >= 0 && sa2 >= 0 && win0[act[sa1]] == win0[act[sa2]] && win1[act[sa1]] == win1[act[sa2]];
        if (fused) {
            i64 k1 = act[sa1], k2 = act[sa2];
            const double *p1 = prof + k1 * n, *p2 = prof + k2 * n;
            double g11 = 0.0, g21 = 0.0, g22 = 0.0;
            for (i64 i = win0[k1]; i < win1[k1]; i++) {
                g11 += w[i] * p1[i] * p1[i];
                g21 += w[i] * p2[i] * p1[i];
                g22 += w[i] * p2[i] * p2[i];
            }
            g[sa1 * ncomp + sa1] = g11 + A->sw[win1[k1]];
            g[sa2 * ncomp + sa1] = g21 + A->sw[win1[k1]];
            g[sa1 * ncomp + sa2] = g[sa2 * ncomp + sa1];
            g[sa2 * ncomp + sa2] = g22 + A->sw[win1[k1]];
        }
        for (i64 a = 0; a < nact; a++) {
            i64 k = act[a];
            const double *pk = prof + k * n;
            double *RESTRICT xka = xk + a * nt;
            double ua = 0.0, swa = 0.0;
            for (i64 p = 0; p < nt; p++)
                xka[p] = 0.0;
            i64 jc = -1;
            double c0 = 0.0, c1 = 0.0, c2 = 0.0, c3 = 0.0;
            for (i64 sgi = 0; sgi < nseg[k]; sgi++) {
                for (i64 i = seg0[k * maxl + sgi]; i < seg1[k * maxl + sgi]; i++) {
                    if (pk[i] == 0.0)
                        continue;
                    double t = igm_t(i, x[i], tforest[i], xll, xly, sb, i_ll_lo, i_ll_hi, i_ly_lo, i_ly_hi);
                    double wp = w[i] * pk[i];
                    ua += wp * y[i];
                    swa += wp;
                    if (t != 0.0) {
                        i64 j0 = cidx[i];
                        if (j0 != jc) {
                            if (jc >= 0) {
                                xka[jc] = c0;
                                xka[jc + 1] = c1;
                                xka[jc + 2] = c2;
                                xka[jc + 3] = c3;
                            }
                            jc = j0;
                            c0 = xka[j0];
                            c1 = xka[j0 + 1];
                            c2 = xka[j0 + 2];
                            c3 = xka[j0 + 3];
                        }
                        double wt = wp * t;
                        c0 += wt * cval[i * nb];
                        c1 += wt * cval[i * nb + 1];
                        c2 += wt * cval[i * nb + 2];
                        c3 += wt * cval[i * nb + 3];
                    }
                    for (i64 l = 0; l < npd; l++)
                        xka[nc + l] += wp * ped[i * npd + l];
                }
            }
            if (jc >= 0) {
                xka[jc] = c0;
                xka[jc + 1] = c1;
                xka[jc + 2] = c2;
                xka[jc + 3] = c3;
            }
            swp[a] = swa;
            if (comp_kind[k] == 1) {
                ua += A->sy[win1[k]];
                for (i64 p = 0; p < nc; p++)
                    xka[p] += A->sc[win1[k] * nc + p];
                for (i64 l = 0; l < npd; l++)
                    xka[nc + l] += A->spd[win1[k] * npd + l];
            }
            W->u[a] = ua;
            for (i64 b = 0; b < a + 1; b++) {
                i64 kb = act[b];
                const double *pb = prof + kb * n;
                double gab = 0.0;
                if (comp_kind[k] != 1 && comp_kind[kb] != 1) {
                    if (win0[k] < win1[kb] && win0[kb] < win1[k]) {
                        for (i64 sa = 0; sa < nseg[k]; sa++)
                            for (i64 sbi = 0; sbi < nseg[kb]; sbi++) {
                                i64 hi_i = imin_(seg1[k * maxl + sa], seg1[kb * maxl + sbi]);
                                for (i64 i = imax_(seg0[k * maxl + sa], seg0[kb * maxl + sbi]); i < hi_i; i++)
                                    gab += w[i] * pk[i] * pb[i];
                            }
                    }
                }
                else if (comp_kind[k] == 1 && comp_kind[kb] == 1) {
                    if (fused)
                        continue;
                    i64 hi_i = imax_(win1[k], win1[kb]);
                    for (i64 i = imax_(win0[k], win0[kb]); i < hi_i; i++)
                        gab += w[i] * step_val(prof, n, win0, win1, k, i) * step_val(prof, n, win0, win1, kb, i);
                    gab += A->sw[hi_i];
                }
                else {
                    i64 ks = comp_kind[k] == 1 ? k : kb;
                    i64 kl = comp_kind[k] == 1 ? kb : k;
                    const double *pl = prof + kl * n, *ps = prof + ks * n;
                    if (win0[kl] >= win1[ks])
                        gab = comp_kind[k] == 1 ? swp[b] : swp[a];
                    else {
                        for (i64 sa = 0; sa < nseg[kl]; sa++) {
                            i64 e1 = imin_(seg1[kl * maxl + sa], win1[ks]);
                            for (i64 i = imax_(seg0[kl * maxl + sa], win0[ks]); i < e1; i++)
                                gab += w[i] * pl[i] * ps[i];
                            for (i64 i = imax_(seg0[kl * maxl + sa], win1[ks]); i < seg1[kl * maxl + sa]; i++)
                                gab += w[i] * pl[i];
                        }
                    }
                }
                g[a * ncomp + b] = gab;
                g[b * ncomp + a] = gab;
            }
        }
        /* Schur complement of the continuum block: S = G − Wᵀ W with W = L⁻¹ Xᵀ. The numba kernel's
         * loops interchanged: every component's forward substitution (its row a of wk) and every
         * dot product of two rows of wk take the same operations in the same order, but with the
         * components innermost (wkt: wk transposed) the independent sums run side by side. */
        for (i64 i = 0; i < nt; i++) {
            double *RESTRICT wi = wkt + i * ncomp;
            for (i64 a = 0; a < nact; a++)
                wi[a] = xk[a * nt + i];
            for (i64 q = 0; q < i; q++) {
                const double lq = m[i * nt + q];
                const double *RESTRICT wq = wkt + q * ncomp;
                for (i64 a = 0; a < nact; a++)
                    wi[a] -= lq * wq[a];
            }
            const double lii = m[i * nt + i];
            for (i64 a = 0; a < nact; a++) {
                wi[a] /= lii;
                wk[a * nt + i] = wi[a];
            }
        }
        for (i64 a = 0; a < nact; a++) {
            double r = W->u[a];
            for (i64 p = 0; p < nt; p++)
                r -= xk[a * nt + p] * a0[p];
            W->rhs[a] = r;
            for (i64 b = 0; b < a + 1; b++)
                srow[b] = g[a * ncomp + b];
            for (i64 p = 0; p < nt; p++) {
                const double wap = wkt[p * ncomp + a];
                const double *RESTRICT wp = wkt + p * ncomp;
                for (i64 b = 0; b < a + 1; b++)
                    srow[b] -= wap * wp[b];
            }
            for (i64 b = 0; b < a + 1; b++) {
                s[a * ncomp + b] = srow[b];
                s[b * ncomp + a] = srow[b];
            }
        }
        i64 nkeep = select_components(A, W, nact, ib_pix, ir_pix);
        double gain = 0.0;
        for (i64 a = 0; a < nkeep; a++)
            gain += W->bsol[a] * W->subr[a];
        gain -= penalty(nkeep, n_steps(W->keep, nkeep, act, comp_kind), A->min_snr, A->pair_snr);
        A->chi2_out[iz] = chi2c - gain + occam;
    }
}

/* ------------------------------------------------------------------------------ arguments */

#define NARGS 44

static const char *const arg_names[NARGS] = {
    "lnz", "x", "elo", "ehi", "y", "w", "cidx", "cval", "nc", "pcc", "pcy", "ywy", "sw", "sy", "sc",
    "ped", "pcp", "ppp", "vpp", "spd",
    "comp_ptr", "line_xrest", "line_ratio", "comp_sig_intr", "comp_kind",
    "res_x", "res_sig", "smear", "ridge", "min_cover", "min_snr", "pair_snr",
    "igm_x_lya", "igm_x_ll", "igm_sig_v", "tforest", "pen", "brk_x_blue", "brk_x_red", "brk_rmax", "ew_max",
    "ped_occam", "ped_lndet_prior", "chi2_out",
};

/* The array arguments other than chi2_out: position and dimensions (int64: cidx, comp_ptr, comp_kind). */
#define N_IN 27
static const int in_pos[N_IN] = {0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
                                 25, 26, 35, 36};
static const int in_ndim[N_IN] = {1, 1, 1, 1, 1, 1, 1, 2, 3, 2, 1, 1, 2, 2, 3, 2, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 2};

/* The float arguments: ywy, smear … pair_snr, igm_x_lya … igm_sig_v, brk_x_blue … ped_lndet_prior. */
#define N_FLOAT 15
static const int float_pos[N_FLOAT] = {11, 27, 28, 29, 30, 31, 32, 33, 34, 37, 38, 39, 40, 41, 42};

static int is_int_arg(int pos) { return pos == 6 || pos == 20 || pos == 24; }

/* An input array: float64, or int64 for cidx, comp_ptr and comp_kind (_cargs.h's input). */
static PyArrayObject *input_at(PyObject *o, int pos, int ndim)
{
    return input(o, is_int_arg(pos) ? NPY_INT64 : NPY_DOUBLE, ndim, "zfit_chi2_grid", arg_names[pos]);
}

#define DIM(a, i) ((i64)PyArray_DIM((a), (i)))

static int shape_error(const char *what)
{
    PyErr_Format(PyExc_ValueError, "zfit_chi2_grid: %s", what);
    return 0;
}

/* The sizes from the arrays (arr: by argument position), every shape checked against them, and the
 * index values (cidx, comp_ptr) checked; 0 with ValueError when something does not fit. */
static int check_shapes(PyArrayObject **arr, Args *A)
{
    PyArrayObject *lnz = arr[0], *x = arr[1], *elo = arr[2], *ehi = arr[3], *y = arr[4], *w = arr[5],
                  *cidx = arr[6], *cval = arr[7], *pcc = arr[9], *pcy = arr[10], *sw = arr[12], *sy = arr[13],
                  *sc = arr[14], *ped = arr[15], *pcp = arr[16], *ppp = arr[17], *vpp = arr[18], *spd = arr[19],
                  *comp_ptr = arr[20], *line_xrest = arr[21], *line_ratio = arr[22], *comp_sig_intr = arr[23],
                  *comp_kind = arr[24], *res_x = arr[25], *res_sig = arr[26], *tforest = arr[35], *pen = arr[36];
    if (DIM(cval, 1) != 4) { /* the numba kernel's own check, its message */
        PyErr_SetString(PyExc_ValueError, "cval: expected the 4 non-zero cubic B-spline values per pixel");
        return 0;
    }
    i64 n = DIM(x, 0), nc = A->nc;
    A->nz = DIM(lnz, 0);
    A->n = n;
    if (n < 1)
        return shape_error("x must hold at least one pixel");
    if (DIM(elo, 0) != n || DIM(ehi, 0) != n || DIM(y, 0) != n || DIM(w, 0) != n || DIM(cidx, 0) != n
        || DIM(cval, 0) != n || DIM(tforest, 0) != n)
        return shape_error("elo, ehi, y, w, cidx, cval (n, 4) and tforest must have x's length n");
    if (nc < 4)
        return shape_error("nc must be at least 4 (cubic B-splines)");
    i64 npd = DIM(ped, 1);
    A->npd = npd;
    A->nt = nc + npd;
    if (DIM(pcc, 0) != n + 1 || DIM(pcc, 1) != nc || DIM(pcc, 2) != 7 || DIM(pcy, 0) != n + 1 || DIM(pcy, 1) != nc
        || DIM(sw, 0) != n + 1 || DIM(sy, 0) != n + 1 || DIM(sc, 0) != n + 1 || DIM(sc, 1) != nc)
        return shape_error("pcc (n + 1, nc, 7), pcy (n + 1, nc), sw (n + 1), sy (n + 1) and sc (n + 1, nc) "
                           "expected");
    if (DIM(ped, 0) != n || DIM(pcp, 0) != n + 1 || DIM(pcp, 1) != nc || DIM(pcp, 2) != npd || DIM(ppp, 0) != npd
        || DIM(ppp, 1) != npd || DIM(vpp, 0) != npd || DIM(spd, 0) != n + 1 || DIM(spd, 1) != npd)
        return shape_error("ped (n, npd), pcp (n + 1, nc, npd), ppp (npd, npd), vpp (npd) and spd (n + 1, npd) "
                           "expected");
    if (DIM(pen, 0) != nc || DIM(pen, 1) != nc)
        return shape_error("pen must be (nc, nc)");
    A->ncomp = DIM(comp_ptr, 0) - 1;
    A->nl = DIM(line_xrest, 0);
    if (A->ncomp < 0)
        return shape_error("comp_ptr must hold ncomp + 1 >= 1 values");
    if (DIM(line_ratio, 0) != A->nl || DIM(comp_sig_intr, 0) != A->ncomp || DIM(comp_kind, 0) != A->ncomp)
        return shape_error("line_ratio must have line_xrest's length, comp_sig_intr and comp_kind ncomp = "
                           "len(comp_ptr) - 1");
    A->nr = DIM(res_x, 0);
    if (A->nr < 1 || DIM(res_sig, 0) != A->nr)
        return shape_error("res_x and res_sig must have the same length >= 1");
    const i64 *ptr = (const i64 *)PyArray_DATA(comp_ptr);
    for (i64 k = 0; k <= A->ncomp; k++)
        if (ptr[k] < 0 || ptr[k] > A->nl || (k > 0 && ptr[k] < ptr[k - 1]))
            return shape_error("comp_ptr must be non-decreasing within [0, len(line_xrest)]");
    const i64 *ci = (const i64 *)PyArray_DATA(cidx);
    for (i64 i = 0; i < n; i++)
        if (ci[i] < 0 || ci[i] > nc - 4)
            return shape_error("cidx must be within [0, nc - 4] (the first of a pixel's 4 B-splines)");
    return 1;
}

/* total += a · b (a count of 8-byte elements); 0 when it would overflow. */
static int count(size_t *total, size_t a, size_t b)
{
    const size_t cap = SIZE_MAX / 16;
    if (a != 0 && b > cap / a)
        return 0;
    if (a * b > cap - *total)
        return 0;
    *total += a * b;
    return 1;
}

/* The scratch arrays carved from one malloc'ed block (NULL when it is too large or malloc fails):
 * int64s, doubles, then the two bool arrays. W->phrow and W->nrow are set already. */
static void *scratch(const Args *A, Work *W)
{
    const size_t n = (size_t)A->n, nt = (size_t)A->nt, nc = (size_t)A->ncomp, nl = (size_t)A->nl,
                 ml = (size_t)W->maxl, nph = (size_t)(W->nrow > 1 ? W->nrow : 1), nr = (size_t)A->nr;
    size_t ni = 0, nd = 0;
    if (!(count(&ni, 6, nc) && count(&ni, 2 * nc, ml) && count(&ni, 2, ml) && count(&ni, 2, nph)
          && count(&ni, 3, n + 1) && count(&ni, 1, nr + 1) && count(&nd, nt, nt) && count(&nd, 4, nt)
          && count(&nd, nc, n) && count(&nd, 1, n) && count(&nd, 3 * nc, nt) && count(&nd, 4 * nc, nc)
          && count(&nd, 11, nc) && count(&nd, 1, nl) && count(&nd, nph, n) && count(&nd, 1, ni)))
        return NULL;
    char *block = malloc(nd * sizeof(double) + 2 * nc + 1);
    if (block == NULL)
        return NULL;
    i64 *ip = (i64 *)block;
    W->win0 = ip, ip += nc;
    W->win1 = ip, ip += nc;
    W->act = ip, ip += nc;
    W->keep = ip, ip += nc;
    W->ew_pix = ip, ip += nc;
    W->nseg = ip, ip += nc;
    W->seg0 = ip, ip += nc * ml;
    W->seg1 = ip, ip += nc * ml;
    W->lj0 = ip, ip += ml;
    W->lj1 = ip, ip += ml;
    W->ph0 = ip, ip += nph;
    W->ph1 = ip, ip += nph;
    W->tabx = ip, ip += n + 1;
    W->tablo = ip, ip += n + 1;
    W->tabhi = ip, ip += n + 1;
    W->tabres = ip, ip += nr + 1;
    double *dp = (double *)ip;
    W->m = dp, dp += nt * nt;
    W->v = dp, dp += nt;
    W->a0 = dp, dp += nt;
    W->tmp = dp, dp += nt;
    W->afull = dp, dp += nt;
    W->prof = dp, dp += nc * n;
    W->iwid = dp, dp += n;
    W->xk = dp, dp += nc * nt;
    W->wk = dp, dp += nc * nt;
    W->wkt = dp, dp += nc * nt;
    W->g = dp, dp += nc * nc;
    W->s = dp, dp += nc * nc;
    W->sub = dp, dp += nc * nc;
    W->linv = dp, dp += nc * nc;
    W->u = dp, dp += nc;
    W->rhs = dp, dp += nc;
    W->subr = dp, dp += nc;
    W->bsol = dp, dp += nc;
    W->sd = dp, dp += nc;
    W->yv = dp, dp += nc;
    W->cvec = dp, dp += nc;
    W->tmp2 = dp, dp += nc;
    W->ew_fac = dp, dp += nc;
    W->swp = dp, dp += nc;
    W->srow = dp, dp += nc;
    W->line_sg = dp, dp += nl;
    W->phis = dp, dp += nph * n;
    W->banned = (char *)dp;
    W->inset = W->banned + nc;
    return block;
}

PyDoc_STRVAR(zfit_doc,
"zfit_chi2_grid(lnz, x, elo, ehi, y, w, cidx, cval, nc, pcc, pcy, ywy, sw, sy, sc, ped, pcp, ppp, vpp, spd,\n"
"               comp_ptr, line_xrest, line_ratio, comp_sig_intr, comp_kind, res_x, res_sig, smear, ridge,\n"
"               min_cover, min_snr, pair_snr, igm_x_lya, igm_x_ll, igm_sig_v, tforest, pen, brk_x_blue,\n"
"               brk_x_red, brk_rmax, ew_max, ped_occam, ped_lndet_prior, chi2_out) -> None\n\n"
"Penalised χ² at every ln(1+z) in lnz into chi2_out (a C-contiguous, aligned, native, writeable\n"
"float64 array of len(lnz)): campfire.tasks._numba_kernels.zfit_chi2_grid's numbers bit for bit\n"
"(see its docstring for the model). Arrays: float64, or int64 for cidx, comp_ptr and comp_kind.");

static PyObject *zfit_chi2_grid(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != NARGS)
        return nargs_error("zfit_chi2_grid", NARGS, nargs);
    Args A;
    memset(&A, 0, sizeof(A));
    double fl[N_FLOAT];
    for (int k = 0; k < N_FLOAT; k++) {
        fl[k] = PyFloat_AsDouble(args[float_pos[k]]);
        if (fl[k] == -1.0 && PyErr_Occurred())
            return NULL;
    }
    A.ywy = fl[0], A.smear = fl[1], A.ridge = fl[2], A.min_cover = fl[3], A.min_snr = fl[4], A.pair_snr = fl[5];
    A.igm_x_lya = fl[6], A.igm_x_ll = fl[7], A.igm_sig_v = fl[8], A.brk_x_blue = fl[9], A.brk_x_red = fl[10];
    A.brk_rmax = fl[11], A.ew_max = fl[12], A.ped_occam = fl[13], A.ped_lndet_prior = fl[14];
    PyObject *nc_obj = PyNumber_Index(args[8]);
    if (nc_obj == NULL)
        return NULL;
    long long nc = PyLong_AsLongLong(nc_obj);
    Py_DECREF(nc_obj);
    if (nc == -1 && PyErr_Occurred())
        return NULL;
    A.nc = (i64)nc;
    if (!output(args[43], 1, "zfit_chi2_grid", "chi2_out"))
        return NULL;
    PyArrayObject *out = (PyArrayObject *)args[43];

    PyArrayObject *arr[NARGS] = {NULL}; /* the inputs by argument position, new references */
    PyObject *result = NULL;
    i64 *phrow = NULL;
    void *block = NULL;
    for (int k = 0; k < N_IN; k++)
        if ((arr[in_pos[k]] = input_at(args[in_pos[k]], in_pos[k], in_ndim[k])) == NULL)
            goto done;
    if (!check_shapes(arr, &A))
        goto done;
    if (DIM(out, 0) != A.nz) {
        shape_error("chi2_out must have lnz's length");
        goto done;
    }
#define IN(T, k) ((const T *)PyArray_DATA(arr[k]))
    A.lnz = IN(double, 0), A.x = IN(double, 1), A.elo = IN(double, 2), A.ehi = IN(double, 3);
    A.y = IN(double, 4), A.w = IN(double, 5), A.cidx = IN(i64, 6), A.cval = IN(double, 7);
    A.pcc = IN(double, 9), A.pcy = IN(double, 10), A.sw = IN(double, 12), A.sy = IN(double, 13);
    A.sc = IN(double, 14), A.ped = IN(double, 15), A.pcp = IN(double, 16), A.ppp = IN(double, 17);
    A.vpp = IN(double, 18), A.spd = IN(double, 19), A.comp_ptr = IN(i64, 20), A.line_xrest = IN(double, 21);
    A.line_ratio = IN(double, 22), A.comp_sig_intr = IN(double, 23), A.comp_kind = IN(i64, 24);
    A.res_x = IN(double, 25), A.res_sig = IN(double, 26), A.tforest = IN(double, 35), A.pen = IN(double, 36);
#undef IN
    A.chi2_out = (double *)PyArray_DATA(out);

    Work W;
    memset(&W, 0, sizeof(W));
    W.maxl = 1; /* the most lines of a component */
    for (i64 k = 0; k < A.ncomp; k++)
        if (A.comp_ptr[k + 1] - A.comp_ptr[k] > W.maxl)
            W.maxl = A.comp_ptr[k + 1] - A.comp_ptr[k];
    if ((phrow = malloc((size_t)(A.nl + 1) * sizeof(i64))) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    W.phrow = phrow;
    W.nrow = phi_rows(&A, phrow);
    if ((block = scratch(&A, &W)) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    zfit(&A, &W);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    free(block);
    free(phrow);
    for (int k = 0; k < NARGS; k++)
        Py_XDECREF(arr[k]);
    return result;
}

/* ------------------------------------------------------------------------------ the module */

static PyMethodDef methods[] = {
    {"zfit_chi2_grid", (PyCFunction)(void (*)(void))zfit_chi2_grid, METH_FASTCALL, zfit_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "campfire.tasks._czfit",
    "campfire's redshift χ² kernel compiled at install (C; the numba kernel's numbers bit for bit).", -1, methods,
};

PyMODINIT_FUNC PyInit__czfit(void)
{
    import_array();
    build_tables();
    return PyModule_Create(&module);
}
