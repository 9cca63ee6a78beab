"""Compiled kernels of the redshift fit (numba). Imported only through :func:`campfire.tasks._jit.kernels`.

The resampling kernels live in :mod:`campfire.tasks._numba_resample`, so a process that only
resamples does not define (or load) these.

Each kernel has a plain-numpy twin in the task module that uses it; tests check that
the two agree. ``zfit_chi2_grid`` is also ported line for line to C
(``campfire/tasks/_czfit.c``, what ``engine='auto'`` runs where it was built): a change
here is made there too, and ``tests/tasks/test_redshift_c.py`` checks the two to the bit. ``cache=True`` stores the machine code on disk so the one-off compile
(a few seconds) is paid once per machine, not once per process; the files go to a user
cache directory (:func:`campfire.tasks._jit.numba_cache_dir`), never into the package.
The redshift fit's small helpers are left to LLVM's inliner: numba's own
``inline="always"`` copied them into the χ² kernel's IR at every call and made its
compile ~15 % longer, for no speed.
"""
from __future__ import annotations

import math

import numba
import numpy as np

_SQRT1_2 = 1.0 / math.sqrt(2.0)


# ----------------------------------------------------------------------------------
# small dense linear algebra (k ≲ 40): own Cholesky so no LAPACK binding is needed
# ----------------------------------------------------------------------------------
@numba.njit(cache=True)
def _cholesky_inplace(a, k):
    """Lower Cholesky factor of a[:k, :k] in place. Returns False if not positive definite."""
    for j in range(k):
        s = a[j, j]
        for m in range(j):
            s -= a[j, m] * a[j, m]
        if s <= 0.0:
            return False
        d = math.sqrt(s)
        a[j, j] = d
        for i in range(j + 1, k):
            s = a[i, j]
            for m in range(j):
                s -= a[i, m] * a[j, m]
            a[i, j] = s / d
    return True


@numba.njit(cache=True)
def _forward_subst(lower, k, b, out):
    """Solve L out = b for the lower triangle in lower[:k, :k]."""
    for i in range(k):
        s = b[i]
        for m in range(i):
            s -= lower[i, m] * out[m]
        out[i] = s / lower[i, i]


@numba.njit(cache=True)
def _back_subst(lower, k, b, out):
    """Solve Lᵀ out = b for the lower triangle in lower[:k, :k]."""
    for i in range(k - 1, -1, -1):
        s = b[i]
        for m in range(i + 1, k):
            s -= lower[m, i] * out[m]
        out[i] = s / lower[i, i]


@numba.njit(cache=True)
def _cholesky_solve(lower, k, b, y, out):
    """Solve (L Lᵀ) out = b for the factor in lower[:k, :k]; y receives L⁻¹ b."""
    _forward_subst(lower, k, b, y)
    _back_subst(lower, k, y, out)


@numba.njit(cache=True)
def _lower_inverse(lower, k, out):
    """out[:k, :k] = L⁻¹ (lower triangular) for the Cholesky factor L in lower[:k, :k]."""
    for j in range(k):
        out[j, j] = 1.0 / lower[j, j]
        for i in range(j + 1, k):
            acc = 0.0
            for m in range(j, i):
                acc -= lower[i, m] * out[m, j]
            out[i, j] = acc / lower[i, i]


# the normal CDF tabulated (linear interpolation error < 3e-8): the line profiles
# need ~10⁴ evaluations per redshift, and a table lookup is ~10× cheaper than erf
PHI_T0 = -8.0
PHI_DT = 1e-3
PHI_INV_DT = 1000.0  # 1 / PHI_DT: a multiplication, cheaper than the division (the line profiles' inner loop)
PHI_TABLE = np.array([0.5 * (1.0 + math.erf((PHI_T0 + i * PHI_DT) * _SQRT1_2)) for i in range(16001)])


# Ψ(t) = ∫Φ = tΦ(t) + φ(t), tabulated the same way (0 below the table, t above it)
PSI_TABLE = np.array([(PHI_T0 + i * PHI_DT) * PHI_TABLE[i]
                      + math.exp(-0.5 * (PHI_T0 + i * PHI_DT) ** 2) / math.sqrt(2.0 * math.pi) for i in range(16001)])


@numba.njit(cache=True)
def _tabulated(table, t, above):
    """Linear interpolation in a table on the nodes PHI_T0 + i·PHI_DT: 0 below, ``above`` above."""
    u = (t - PHI_T0) * PHI_INV_DT
    if u <= 0.0:
        return 0.0
    if u >= 16000.0:
        return above
    i = int(u)
    f = u - i
    return table[i] * (1.0 - f) + table[i + 1] * f


@numba.njit(cache=True)
def _phi(t):
    return _tabulated(PHI_TABLE, t, 1.0)


@numba.njit(cache=True)
def _psi(t):
    return _tabulated(PSI_TABLE, t, t)


@numba.njit(cache=True)
def _box_phi(t, hb, inv2hb):
    """Φ(t) averaged over a shift in [−hb, hb] (a line position known to ± hb σ); ``inv2hb`` = 0.5 / hb."""
    if hb < 1e-6:
        return _phi(t)
    return (_psi(t + hb) - _psi(t - hb)) * inv2hb


@numba.njit(cache=True)
def _bucket_index(arr, nbk):
    """A start hint for :func:`_find` in the sorted ``arr``: ``nbk`` equal buckets over its span.

    Returns ``(tab, t0, tinv)``: ``tab[b]`` is where the values ≥ ``t0 + b·span/nbk`` start. The
    hint only shortens the walk; ``_find``'s answer does not depend on it.
    """
    n = arr.shape[0]
    t0 = arr[0]
    span = arr[n - 1] - t0
    tinv = nbk / span if span > 0.0 else 0.0
    tab = np.empty(nbk + 1, np.int64)
    i = 0
    for b in range(nbk + 1):
        e = t0 + b * (span / nbk)
        while i < n and arr[i] < e:
            i += 1
        tab[b] = i
    return tab, t0, tinv


@numba.njit(cache=True)
def _find(arr, v, right, hint):
    """``np.searchsorted(arr, v, "right" if right else "left")`` for the sorted, finite ``arr``.

    Walks from the bucket of ``hint`` (:func:`_bucket_index`): a step or two on a smooth grid,
    where a binary search takes ~10 (the χ² kernel does ~10⁵ searches per spectrum).
    """
    n = arr.shape[0]
    if v != v:  # NaN sorts last, as in numpy
        return n
    tab, t0, tinv = hint
    nbk = tab.shape[0] - 1
    u = (v - t0) * tinv
    if u >= nbk:
        i = tab[nbk]
    elif u > 0.0:
        i = tab[int(u)]
    else:
        i = tab[0]
    if right:
        while i > 0 and arr[i - 1] > v:
            i -= 1
        while i < n and arr[i] <= v:
            i += 1
    else:
        while i > 0 and arr[i - 1] >= v:
            i -= 1
        while i < n and arr[i] < v:
            i += 1
    return i


@numba.njit(cache=True)
def _interp1(xv, xp, fp, hint):
    """``np.interp(xv, xp, fp)`` for one value (numpy's arithmetic, without its array set-up).

    ``xp`` increasing, ``hint`` its :func:`_bucket_index`; below/above it: the end values, as
    numpy (and numba's ``np.interp``).
    """
    n = xp.shape[0]
    if xv < xp[0]:
        return fp[0]
    if xv > xp[n - 1]:
        return fp[n - 1]
    j = _find(xp, xv, True, hint) - 1  # the last node ≤ xv
    if j == n - 1 or xp[j] == xv:
        return fp[j]
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    res = slope * (xv - xp[j]) + fp[j]
    if math.isnan(res):  # numpy's fallback for a non-finite slope
        res = slope * (xv - xp[j + 1]) + fp[j + 1]
        if math.isnan(res) and fp[j] == fp[j + 1]:
            res = fp[j]
    return res


# ----------------------------------------------------------------------------------
# redshift χ² grid
# ----------------------------------------------------------------------------------
@numba.njit(cache=True)
def _igm_t(i, xi, tf, xll, xly, sb, i_ll_lo, i_ll_hi, i_ly_lo, i_ly_hi):
    """IGM transmission of pixel i (index windows as computed per redshift)."""
    if i < i_ll_lo:
        return 0.0
    if i < i_ll_hi:
        return tf * _phi((xi - xll) / sb)
    if i < i_ly_lo:
        return tf
    if i < i_ly_hi:
        return tf + (1.0 - tf) * _phi((xi - xly) / sb)
    return 1.0


@numba.njit(cache=True)
def _step_val(prof, win0, win1, k, i):
    """Value of continuum-step component k at pixel i: 0 before, Φ on, 1 after its window."""
    if i < win0[k]:
        return 0.0
    if i < win1[k]:
        return prof[k, i]
    return 1.0


@numba.njit(cache=True)
def _merge_segments(j0, j1, nl, s0, s1):
    """The union of the ranges [j0[l], j1[l]) (l < nl) as sorted disjoint segments in s0/s1; returns their count."""
    m = 0
    for l in range(nl):  # the non-empty ranges, insertion-sorted by start (nl ≤ 4)
        if j1[l] <= j0[l]:
            continue
        q = m
        while q > 0 and s0[q - 1] > j0[l]:
            s0[q] = s0[q - 1]
            s1[q] = s1[q - 1]
            q -= 1
        s0[q] = j0[l]
        s1[q] = j1[l]
        m += 1
    ns = 0
    for q in range(m):
        if ns > 0 and s0[q] <= s1[ns - 1]:
            s1[ns - 1] = max(s1[ns - 1], s1[q])
        else:
            s0[ns] = s0[q]
            s1[ns] = s1[q]
            ns += 1
    return ns


@numba.njit(cache=True)
def _subset_solve(s, rhs, keep, nkeep, ridge, sub, subr, yv, bsol, linv, sd):
    """Cholesky solve of S_KK b = rhs_K (factor left in sub, L⁻¹rhs in yv, σ_b in sd)."""
    for a in range(nkeep):
        subr[a] = rhs[keep[a]]
        for b in range(nkeep):
            sub[a, b] = s[keep[a], keep[b]]
        sub[a, a] = sub[a, a] * (1.0 + ridge) + 1e-300
    if not _cholesky_inplace(sub, nkeep):
        return False
    _cholesky_solve(sub, nkeep, subr, yv, bsol)
    _lower_inverse(sub, nkeep, linv)
    for a in range(nkeep):
        var = 0.0
        for m in range(a, nkeep):
            var += linv[m, a] * linv[m, a]
        sd[a] = math.sqrt(var)
    return True


@numba.njit(cache=True)
def _remove(keep, inset, nkeep, idx):
    """Drop keep[idx] (order kept); returns the new count."""
    inset[keep[idx]] = False
    for a in range(idx, nkeep - 1):
        keep[a] = keep[a + 1]
    return nkeep - 1


@numba.njit(cache=True)
def _bar_marked(keep, inset, banned, nkeep, marked):
    """Drop the kept components with ``marked[a] > 0`` (a over the kept, order kept) and bar
    them at this redshift; returns the new count."""
    newk = 0
    for a in range(nkeep):
        if marked[a] > 0.0:
            banned[keep[a]] = True
            inset[keep[a]] = False
        else:
            keep[newk] = keep[a]
            newk += 1
    return newk


@numba.njit(cache=True)
def _continuum_given(keep, nkeep, bsol, a0, wk, lm, tmp, ncont, afull):
    """Continuum coefficients given the kept components: a = a0 − M⁻¹Xᵀb = a0 − L⁻ᵀ(W b), into afull."""
    for p in range(ncont):
        acc = 0.0
        for a in range(nkeep):
            acc += wk[keep[a], p] * bsol[a]
        tmp[p] = acc
    _back_subst(lm, ncont, tmp, afull)
    for p in range(ncont):
        afull[p] = a0[p] - afull[p]


@numba.njit(cache=True)
def _observed_continuum(i, keep, nkeep, bsol, act, comp_kind, afull, cidx, cval, nb, nc, ncont, ped,
                        prof, win0, win1):
    """The model's continuum at pixel i: splines + pedestal + the kept continuum steps."""
    c = 0.0
    for p in range(nb):
        c += afull[cidx[i] + p] * cval[i, p]
    for p in range(ncont - nc):
        c += afull[nc + p] * ped[i, p]
    for a in range(nkeep):
        k = act[keep[a]]
        if comp_kind[k] == 1:
            c += bsol[a] * _step_val(prof, win0, win1, k, i)
    return c


@numba.njit(cache=True)
def _n_steps(keep, nkeep, act, comp_kind):
    """How many of the ``nkeep`` kept components are continuum steps (kind 1)."""
    n = 0
    for a in range(nkeep):
        if comp_kind[act[keep[a]]] == 1:
            n += 1
    return n


@numba.njit(cache=True)
def _penalty(nkeep, nstep, min_snr, pair_snr):
    """The χ² penalty of ``nkeep`` components of which ``nstep`` are continuum steps: min_snr² each,
    but pair_snr² for every step after the first (the two break components are one break whose
    4000 Å-to-Balmer ratio is free: a full penalty for that ratio pushed z to where one
    component alone fits)."""
    extra = nstep - 1 if nstep > 1 else 0
    return min_snr * min_snr * (nkeep - extra) + pair_snr * pair_snr * extra


@numba.njit(cache=True)
def _select(s, rhs, nact, act, comp_kind, ridge, min_snr, pair_snr, keep, banned, inset, sub, subr,
            yv, bsol, linv, sd, cvec, tmp2, a0, wk, lm, tmp, cidx, cval, nb, nc, ncont, ped, afull, prof,
            win0, win1, ib_pix, ir_pix, brk_rmax, ew_pix, ew_fac, ew_max):
    """Components and non-negative amplitudes minimising χ² + min_snr² per component.

    The twin of ``campfire.tasks.redshift._select_components``: stepwise, remove a
    negative amplitude (most negative b/σ first), the continuum steps when the break
    contrast exceeds ``brk_rmax`` (then barred), a stellar absorption component (kind 2)
    whose equivalent width exceeds ``ew_max`` (``ew_fac``·b / the continuum at ``ew_pix``;
    then barred), a component below ``min_snr`` (least
    significant first); else add the candidate of largest Δχ² above its penalty (net of it).
    A second continuum step (the break pair's other end: one break, its amplitude ratio
    free) has the threshold ``pair_snr`` instead of ``min_snr`` (:func:`_penalty`).
    Returns the number kept (indices in keep, amplitudes in bsol, rhs_K in subr).
    ``ncont``: the size of the continuum block (``nc`` splines, then the pedestal ``ped``).
    """
    pen = min_snr * min_snr
    for a in range(nact):
        banned[a] = False
        inset[a] = False
    nkeep = np.int64(0)  # not a literal: one compiled _subset_solve (see zfit_chi2_grid)
    solved = True
    for it in range(4 * nact + 4):
        grow = it < 3 * nact + 3
        if nkeep > 0:
            if not _subset_solve(s, rhs, keep, nkeep, ridge, sub, subr, yv, bsol, linv, sd):
                return 0
            solved = True
            nstep = _n_steps(keep, nkeep, act, comp_kind)
            imin = np.int64(0)  # np.int64, not literals: one compiled _remove
            ilow = np.int64(-1)  # the component furthest below its threshold
            low_margin = 0.0
            anyneg = False
            for a in range(nkeep):
                snr = bsol[a] / sd[a]
                if snr < bsol[imin] / sd[imin]:
                    imin = a
                if bsol[a] < 0.0:
                    anyneg = True
                thr = pair_snr if (nstep > 1 and comp_kind[act[keep[a]]] == 1) else min_snr
                if snr - thr < low_margin:
                    ilow = a
                    low_margin = snr - thr
            if anyneg:
                nkeep = _remove(keep, inset, nkeep, imin)
                solved = False
                continue
            if nstep > 0:
                # the continuum contrast across the Balmer/4000 Å break must stay ≤ brk_rmax;
                # on the observed continuum (splines, pedestal, steps) given the components
                _continuum_given(keep, nkeep, bsol, a0, wk, lm, tmp, ncont, afull)
                cb = _observed_continuum(ib_pix, keep, nkeep, bsol, act, comp_kind, afull, cidx, cval, nb, nc,
                                         ncont, ped, prof, win0, win1)
                cr = _observed_continuum(ir_pix, keep, nkeep, bsol, act, comp_kind, afull, cidx, cval, nb, nc,
                                         ncont, ped, prof, win0, win1)
                if cr > brk_rmax * cb:
                    for a in range(nkeep):
                        tmp2[a] = 1.0 if comp_kind[act[keep[a]]] == 1 else 0.0
                    nkeep = _bar_marked(keep, inset, banned, nkeep, tmp2)
                    solved = False
                    continue
            nstel = 0
            for a in range(nkeep):
                if comp_kind[act[keep[a]]] == 2:
                    nstel += 1
            if nstel > 0:
                # stellar absorption: its equivalent width must stay stellar (≤ ew_max);
                # otherwise it goes and is barred at this redshift
                _continuum_given(keep, nkeep, bsol, a0, wk, lm, tmp, ncont, afull)
                nbad = 0
                for a in range(nkeep):
                    tmp2[a] = 0.0
                    k = act[keep[a]]
                    if comp_kind[k] == 2:
                        c = _observed_continuum(ew_pix[k], keep, nkeep, bsol, act, comp_kind, afull, cidx, cval,
                                                nb, nc, ncont, ped, prof, win0, win1)
                        if bsol[a] * ew_fac[k] > ew_max * c:
                            tmp2[a] = 1.0
                            nbad += 1
                if nbad > 0:
                    nkeep = _bar_marked(keep, inset, banned, nkeep, tmp2)
                    solved = False
                    continue
            if ilow >= 0:
                nkeep = _remove(keep, inset, nkeep, ilow)
                solved = False
                continue
        if not grow:
            break
        nstep = _n_steps(keep, nkeep, act, comp_kind)
        best = -1
        best_gain = 0.0
        for j in range(nact):
            if banned[j] or inset[j]:
                continue
            thr = pair_snr * pair_snr if (nstep > 0 and comp_kind[act[j]] == 1) else pen
            sjj = s[j, j] * (1.0 + ridge) + 1e-300
            r = sjj
            q = rhs[j]
            for i in range(nkeep):
                tmp2[i] = s[keep[i], j]
            _forward_subst(sub, nkeep, tmp2, cvec)
            for i in range(nkeep):
                r -= cvec[i] * cvec[i]
                q -= cvec[i] * yv[i]
            if q > 0.0 and r > 1e-12 * sjj and q * q / r - thr > best_gain:
                best = j
                best_gain = q * q / r - thr
        if best < 0:
            break
        keep[nkeep] = best
        inset[best] = True
        nkeep += 1
        solved = False
    if nkeep > 0 and not solved:
        if not _subset_solve(s, rhs, keep, nkeep, ridge, sub, subr, yv, bsol, linv, sd):
            return 0
    return nkeep


@numba.njit(cache=True)
def zfit_chi2_grid(
    lnz, x, elo, ehi, y, w, cidx, cval, nc, pcc, pcy, ywy, sw, sy, sc,
    ped, pcp, ppp, vpp, spd,
    comp_ptr, line_xrest, line_ratio, comp_sig_intr, comp_kind,
    res_x, res_sig, smear, ridge, min_cover, min_snr, pair_snr,
    igm_x_lya, igm_x_ll, igm_sig_v, tforest, pen, brk_x_blue, brk_x_red, brk_rmax, ew_max, ped_occam, ped_lndet_prior,
    chi2_out,
):
    """Penalised χ² at every ln(1+z) in ``lnz``: continuum (B-splines × IGM + pedestal) + lines + steps.

    Same model and algorithm as ``campfire.tasks.redshift._chi2_dense``: the continuum
    Gram matrix comes from suffix sums (``pcc``: the band |p − q| < 4 of Σ w C_p C_q, the rest
    being 0; the IGM transmission is piecewise constant
    except in two narrow transition windows, summed explicitly) plus the curvature
    prior ``pen``; line components are local, continuum steps are explicit within ±4σ
    of their edge and 1 beyond it (suffix sums ``sw``, ``sy``, ``sc`` of w, w·y, w·C);
    amplitudes are solved on the Schur complement of the continuum block and the
    components chosen by :func:`_select`. ``smear`` > 0 (coarse passes): each line
    profile is averaged over positions within ± smear in ln λ (a box), and the IGM and
    the steps are broadened by a Gaussian of the same variance (σ = smear/√3).

    The continuum block also holds the additive pedestal (``ped``, n × K, not absorbed by
    the IGM): its Gram block ``ppp`` (prior included) and ``vpp`` = Σ w P y are constant,
    its cross terms with the splines are suffix sums ``pcp`` beyond the IGM window plus
    explicit sums inside it, and ``spd`` are suffix sums of w·P for the steps. The pedestal is
    marginalised: ``ped_occam`` × (ln det of its Schur complement − ``ped_lndet_prior``) is
    added to χ² (``campfire.tasks.redshift._pedestal_occam``).
    """
    n = x.shape[0]
    nb = cval.shape[1]  # non-zero B-splines per pixel (4 for cubic), starting at cidx[i]
    if nb != 4:
        raise ValueError("cval: expected the 4 non-zero cubic B-spline values per pixel")
    ncomp = comp_ptr.shape[0] - 1
    npd = ped.shape[1]
    nt = nc + npd  # continuum block: splines, then the pedestal
    m = np.empty((nt, nt))
    v = np.empty(nt)
    a0 = np.empty(nt)
    tmp = np.empty(nt)
    prof = np.zeros((ncomp, n))
    iwid = 1.0 / (ehi - elo)  # pixel widths' reciprocals (the line profiles are Φ differences per width)
    win0 = np.zeros(ncomp, np.int64)
    win1 = np.zeros(ncomp, np.int64)
    act = np.zeros(ncomp, np.int64)
    xk = np.empty((ncomp, nt))
    wk = np.empty((ncomp, nt))
    g = np.empty((ncomp, ncomp))
    u = np.empty(ncomp)
    s = np.empty((ncomp, ncomp))
    rhs = np.empty(ncomp)
    sub = np.empty((ncomp, ncomp))
    subr = np.empty(ncomp)
    bsol = np.empty(ncomp)
    keep = np.zeros(ncomp, np.int64)
    linv = np.empty((ncomp, ncomp))
    sd = np.empty(ncomp)
    banned = np.zeros(ncomp, np.bool_)
    inset = np.zeros(ncomp, np.bool_)
    yv = np.empty(ncomp)
    cvec = np.empty(ncomp)
    tmp2 = np.empty(ncomp)
    x0 = x[0]
    x1 = x[n - 1]
    afull = np.empty(nt)
    line_sg = np.empty(line_xrest.shape[0])
    ew_pix = np.zeros(ncomp, np.int64)
    ew_fac = np.zeros(ncomp)
    # where a line component's profile can be non-zero: its lines' ±8σ ranges merged into sorted
    # disjoint segments (the Balmer absorption series spans Hδ–Hα: ~1,700 grating pixels of
    # which ~¼ are non-zero); steps: one segment, their window
    maxl = 1
    for k in range(ncomp):
        maxl = max(maxl, comp_ptr[k + 1] - comp_ptr[k])
    seg0 = np.zeros((ncomp, maxl), np.int64)
    seg1 = np.zeros((ncomp, maxl), np.int64)
    nseg = np.zeros(ncomp, np.int64)
    lj0 = np.zeros(maxl, np.int64)
    lj1 = np.zeros(maxl, np.int64)
    swp = np.empty(ncomp)  # Σ w·profile over the segments (a line's Gram term with a step that is 1 there)
    # the two break components share their sub-steps (same rest λ and width): each sub-step's Φ
    # is evaluated once per redshift into a row of phis shared by the lines with that (λ, σ)
    phrow = np.full(line_xrest.shape[0], -1, np.int64)
    nrow = 0
    for k in range(ncomp):
        if comp_kind[k] != 1:
            continue
        for l in range(comp_ptr[k], comp_ptr[k + 1]):
            for k2 in range(k):
                if comp_kind[k2] == 1 and comp_sig_intr[k2] == comp_sig_intr[k]:
                    for l2 in range(comp_ptr[k2], comp_ptr[k2 + 1]):
                        if line_xrest[l2] == line_xrest[l]:
                            phrow[l] = phrow[l2]
            if phrow[l] < 0:
                phrow[l] = nrow
                nrow += 1
    phis = np.empty((max(nrow, 1), n))
    ph0 = np.zeros(max(nrow, 1), np.int64)  # the range [ph0, ph1) of a row filled at this redshift
    ph1 = np.zeros(max(nrow, 1), np.int64)

    # start hints for the searches (~10⁵ per call): a walk of a step or two instead of a binary search
    hx = _bucket_index(x, n)
    hlo = _bucket_index(elo, n)
    hhi = _bucket_index(ehi, n)
    hres = _bucket_index(res_x, res_x.shape[0])

    sig_extra = smear / math.sqrt(3.0)
    for iz in range(lnz.shape[0]):
        lz = lnz[iz]
        # --- IGM transmission: 0 below the Lyman limit, the Madau (1995) forest
        # exp(−τ(λ_obs)) (``tforest``, per pixel) up to Lyα, 1 redward; both steps
        # smoothed by the resolution. Only pixels in [i_ll_lo, i_ly_hi) are summed
        # explicitly; redward of the Lyα window the suffix sums give the rest.
        xly = igm_x_lya + lz
        xll = igm_x_ll + lz
        sr = _interp1(xly, res_x, res_sig, hres)
        sb = math.sqrt(sr * sr + igm_sig_v * igm_sig_v + sig_extra * sig_extra)
        i_ll_lo = _find(x, xll - 5.0 * sb, False, hx)
        i_ll_hi = _find(x, xll + 5.0 * sb, False, hx)
        i_ly_lo = max(_find(x, xly - 5.0 * sb, False, hx), i_ll_hi)
        i_ly_hi = max(_find(x, xly + 5.0 * sb, False, hx), i_ly_lo)
        # break-contrast pixels (continuum steps are used only when both are in range)
        steps_ok = brk_x_blue + lz >= x0 and brk_x_red + lz <= x1
        ib_pix = min(_find(x, brk_x_blue + lz, False, hx), n - 1)
        ir_pix = min(_find(x, brk_x_red + lz, False, hx), n - 1)
        for r in range(ph0.shape[0]):
            ph0[r] = 0
            ph1[r] = 0

        # --- continuum normal equations: Σ w T² C Cᵀ, Σ w T C Pᵀ, Σ w P Pᵀ and Σ w T y C, Σ w y P
        for p in range(nc):
            v[p] = pcy[i_ly_hi, p]
            for q in range(nc):
                dq = q - p + nb - 1  # pcc holds the band |q − p| < nb (zero beyond it)
                m[p, q] = (pcc[i_ly_hi, p, dq] if 0 <= dq < 2 * nb - 1 else 0.0) + pen[p, q]
            for k in range(npd):
                m[p, nc + k] = pcp[i_ly_hi, p, k]
        for k in range(npd):
            v[nc + k] = vpp[k]
            for l in range(npd):
                m[nc + k, nc + l] = ppp[k, l]
        for i in range(i_ll_lo, i_ly_hi):
            t = _igm_t(i, x[i], tforest[i], xll, xly, sb, i_ll_lo, i_ll_hi, i_ly_lo, i_ly_hi)
            if t == 0.0:
                continue
            j0 = cidx[i]
            for p in range(nb):
                cp = w[i] * t * cval[i, p]
                v[j0 + p] += cp * y[i]
                for q in range(nb):
                    m[j0 + p, j0 + q] += cp * t * cval[i, q]
                for k in range(npd):
                    m[j0 + p, nc + k] += cp * ped[i, k]
        for p in range(nc):
            for k in range(npd):
                m[nc + k, p] = m[p, nc + k]
        dmax = 0.0
        for p in range(nt):
            if m[p, p] > dmax:
                dmax = m[p, p]
        for p in range(nt):
            m[p, p] += ridge * dmax + 1e-300
        _cholesky_inplace(m, nt)
        # the pedestal marginalised: ln det of its block of the Cholesky factor (the Schur
        # complement given the splines) over its prior's, times ped_occam
        occam = -ped_lndet_prior
        for p in range(nc, nt):
            occam += 2.0 * math.log(m[p, p])
        occam *= ped_occam
        _cholesky_solve(m, nt, v, tmp, a0)
        chi2c = ywy
        for p in range(nt):
            chi2c -= a0[p] * v[p]

        # --- line components on their windows
        # np.int64, not a literal 0: numba would also compile _select for Literal[int](0) (~2 s more
        # of a new machine's first fit)
        nact = np.int64(0)
        for k in range(ncomp):
            l0 = comp_ptr[k]
            l1 = comp_ptr[k + 1]
            if comp_kind[k] == 1:
                # a rest-frame break: Σ_l r_l Φ((ln λ − ln λ_l)/σ_l) of its sub-steps (Balmer,
                # 4000 Å; weights summing to 1) on [−4σ of the bluest, +4σ of the reddest), 1
                # redward (the suffix sums take over there)
                if not steps_ok:
                    continue
                inside = True
                for l in range(l0, l1):  # first the cheap test (most components are out of range)
                    xc = line_xrest[l] + lz
                    if xc < x0 or xc > x1:
                        inside = False
                if not inside:
                    continue
                lo = 1e30
                hi = -1e30
                cmin = 1e30
                cmax = -1e30
                for l in range(l0, l1):
                    xc = line_xrest[l] + lz
                    sl = _interp1(xc, res_x, res_sig, hres)
                    sg = math.sqrt(sl * sl + comp_sig_intr[k] ** 2 + sig_extra * sig_extra)
                    line_sg[l] = sg
                    lo = min(lo, xc - 4.0 * sg)
                    hi = max(hi, xc + 4.0 * sg)
                    cmin = min(cmin, xc)
                    cmax = max(cmax, xc)
                i0 = _find(x, lo, False, hx)
                i4 = _find(x, hi, False, hx)
                if _find(x, cmin, False, hx) - i0 < 3 or i4 - _find(x, cmax, False, hx) < 3:
                    continue
                for l in range(l0, l1):
                    r = phrow[l]
                    if ph0[r] <= i0 and i4 <= ph1[r]:
                        continue  # filled by the other break component (same λ, same σ)
                    xc = line_xrest[l] + lz
                    isg = 1.0 / line_sg[l]
                    for i in range(i0, i4):
                        phis[r, i] = _phi((x[i] - xc) * isg)
                    ph0[r] = i0
                    ph1[r] = i4
                for i in range(i0, i4):
                    acc = 0.0
                    for l in range(l0, l1):
                        acc += line_ratio[l] * phis[phrow[l], i]
                    prof[k, i] = acc
                win0[k] = i0
                win1[k] = i4
                seg0[k, 0] = i0
                seg1[k, 0] = i4
                nseg[k] = 1
                act[nact] = k
                nact += 1
                continue
            inside = False
            for l in range(l0, l1):  # first the cheap test (most components are out of range)
                xc = line_xrest[l] + lz
                if xc >= x0 and xc <= x1:
                    inside = True
            if not inside:
                continue
            lo = 1e30
            hi = -1e30
            for l in range(l0, l1):
                xc = line_xrest[l] + lz
                sl = _interp1(xc, res_x, res_sig, hres)
                sg = math.sqrt(sl * sl + comp_sig_intr[k] ** 2)
                line_sg[l] = sg  # each line's width at this z, reused below
                if xc - 5.0 * sg - smear < lo:
                    lo = xc - 5.0 * sg - smear
                if xc + 5.0 * sg + smear > hi:
                    hi = xc + 5.0 * sg + smear
            i0 = _find(ehi, lo, False, hhi)
            i1 = _find(elo, hi, False, hlo)
            if i1 - i0 < 2:
                continue
            norm = 2.5066282746310002 * line_sg[l0]
            cover = 0.0
            # the window spans every line of the component (the Balmer absorption series:
            # Hδ to Hα); each line is evaluated only where its box-averaged Φ differs from
            # 0 and 1 (the table is exactly 0/1 beyond ±8σ): zero elsewhere, as in numpy
            for l in range(l0, l1):
                xc = line_xrest[l] + lz
                sg = line_sg[l]
                j0 = max(i0, _find(ehi, xc - 8.0 * sg - smear, False, hhi))
                j1 = min(i1, _find(elo, xc + 8.0 * sg + smear, False, hlo))
                lj0[l - l0] = j0
                lj1[l - l0] = j1
                for i in range(j0, j1):
                    prof[k, i] = 0.0
            nseg[k] = _merge_segments(lj0, lj1, l1 - l0, seg0[k], seg1[k])
            for l in range(l0, l1):
                xc = line_xrest[l] + lz
                sg = line_sg[l]
                hb = smear / sg
                # reciprocals: multiplications in the pixel loop (divisions cost ~10× more)
                isg = 1.0 / sg
                inv2hb = 0.5 / hb if hb >= 1e-6 else 0.0
                fac = line_ratio[l] * norm
                phi_hi = 0.0
                j0 = lj0[l - l0]
                j1 = lj1[l - l0]
                for i in range(j0, j1):
                    # adjacent pixels share an edge: reuse its Φ (same value, half the calls)
                    if i > j0 and elo[i] == ehi[i - 1]:
                        phi_lo = phi_hi
                    else:
                        phi_lo = _box_phi((elo[i] - xc) * isg, hb, inv2hb)
                    phi_hi = _box_phi((ehi[i] - xc) * isg, hb, inv2hb)
                    frac = phi_hi - phi_lo
                    prof[k, i] += fac * frac * iwid[i]
                    if l == l0:
                        cover += frac
            if cover < min_cover:
                continue
            if comp_kind[k] == 2:
                # stellar absorption: equivalent width [Å, rest] of its reference line per unit amplitude
                ew_pix[k] = min(_find(x, line_xrest[l0] + lz, False, hx), n - 1)
                ew_fac[k] = 2.5066282746310002 * line_sg[l0] * math.exp(line_xrest[l0]) * 1e4
            win0[k] = i0
            win1[k] = i1
            act[nact] = k
            nact += 1

        if nact == 0:
            chi2_out[iz] = chi2c + occam
            continue

        # the break components' Gram block: with two on the same window (same sub-steps) the
        # three sums in one pass (each in its own order, as alone)
        sa1 = -1
        sa2 = -1
        for a in range(nact):
            if comp_kind[act[a]] == 1:
                if sa1 < 0:
                    sa1 = a
                elif sa2 < 0:
                    sa2 = a
                else:
                    sa2 = -2
        fused = sa1 >= 0 and sa2 >= 0 and win0[act[sa1]] == win0[act[sa2]] and win1[act[sa1]] == win1[act[sa2]]
        if fused:
            k1 = act[sa1]
            k2 = act[sa2]
            g11 = 0.0
            g21 = 0.0
            g22 = 0.0
            for i in range(win0[k1], win1[k1]):
                g11 += w[i] * prof[k1, i] * prof[k1, i]
                g21 += w[i] * prof[k2, i] * prof[k1, i]
                g22 += w[i] * prof[k2, i] * prof[k2, i]
            g[sa1, sa1] = g11 + sw[win1[k1]]
            g[sa2, sa1] = g21 + sw[win1[k1]]
            g[sa1, sa2] = g[sa2, sa1]
            g[sa2, sa2] = g22 + sw[win1[k1]]
        for a in range(nact):
            k = act[a]
            ua = 0.0
            swa = 0.0
            for p in range(nt):
                xk[a, p] = 0.0
            # the 4 B-spline columns of the current run of pixels (cidx increases with i) are
            # summed in registers and stored when the run ends: the same additions in the same order
            jc = -1
            c0 = 0.0
            c1 = 0.0
            c2 = 0.0
            c3 = 0.0
            for sgi in range(nseg[k]):
                for i in range(seg0[k, sgi], seg1[k, sgi]):
                    if prof[k, i] == 0.0:  # in the tails of the lines: nothing to add
                        continue
                    t = _igm_t(i, x[i], tforest[i], xll, xly, sb, i_ll_lo, i_ll_hi, i_ly_lo, i_ly_hi)
                    wp = w[i] * prof[k, i]
                    ua += wp * y[i]
                    swa += wp
                    if t != 0.0:
                        j0 = cidx[i]
                        if j0 != jc:
                            if jc >= 0:
                                xk[a, jc] = c0
                                xk[a, jc + 1] = c1
                                xk[a, jc + 2] = c2
                                xk[a, jc + 3] = c3
                            jc = j0
                            c0 = xk[a, j0]
                            c1 = xk[a, j0 + 1]
                            c2 = xk[a, j0 + 2]
                            c3 = xk[a, j0 + 3]
                        wt = wp * t
                        c0 += wt * cval[i, 0]
                        c1 += wt * cval[i, 1]
                        c2 += wt * cval[i, 2]
                        c3 += wt * cval[i, 3]
                    for l in range(npd):
                        xk[a, nc + l] += wp * ped[i, l]
            if jc >= 0:
                xk[a, jc] = c0
                xk[a, jc + 1] = c1
                xk[a, jc + 2] = c2
                xk[a, jc + 3] = c3
            swp[a] = swa
            if comp_kind[k] == 1:
                # a step is 1 beyond its window (redward of the IGM: T = 1 there)
                ua += sy[win1[k]]
                for p in range(nc):
                    xk[a, p] += sc[win1[k], p]
                for l in range(npd):
                    xk[a, nc + l] += spd[win1[k], l]
            u[a] = ua
            for b in range(a + 1):
                kb = act[b]
                gab = 0.0
                if comp_kind[k] != 1 and comp_kind[kb] != 1:
                    if win0[k] < win1[kb] and win0[kb] < win1[k]:
                        # the segments' overlaps, in increasing pixel order (the sum's order)
                        for sa in range(nseg[k]):
                            for sbi in range(nseg[kb]):
                                for i in range(max(seg0[k, sa], seg0[kb, sbi]), min(seg1[k, sa], seg1[kb, sbi])):
                                    gab += w[i] * prof[k, i] * prof[kb, i]
                elif comp_kind[k] == 1 and comp_kind[kb] == 1:
                    if fused:
                        continue
                    hi_i = max(win1[k], win1[kb])
                    for i in range(max(win0[k], win0[kb]), hi_i):
                        gab += w[i] * _step_val(prof, win0, win1, k, i) * _step_val(prof, win0, win1, kb, i)
                    gab += sw[hi_i]
                else:
                    ks = k if comp_kind[k] == 1 else kb
                    kl = kb if comp_kind[k] == 1 else k
                    if win0[kl] >= win1[ks]:  # the step is 1 on the whole line: Σ w·profile
                        gab = swp[b] if comp_kind[k] == 1 else swp[a]
                    else:
                        # on the step's window its profile, beyond it 1 (w·p·1 = w·p: the same terms)
                        for sa in range(nseg[kl]):
                            for i in range(max(seg0[kl, sa], win0[ks]), min(seg1[kl, sa], win1[ks])):
                                gab += w[i] * prof[kl, i] * prof[ks, i]
                            for i in range(max(seg0[kl, sa], win1[ks]), seg1[kl, sa]):
                                gab += w[i] * prof[kl, i]
                g[a, b] = gab
                g[b, a] = gab
        # Schur complement of the continuum block: S = G − Wᵀ W with W = L⁻¹ Xᵀ (M = L Lᵀ)
        for a in range(nact):
            _forward_subst(m, nt, xk[a], wk[a])
        for a in range(nact):
            r = u[a]
            for p in range(nt):
                r -= xk[a, p] * a0[p]
            rhs[a] = r
            for b in range(a + 1):
                sab = g[a, b]
                for p in range(nt):
                    sab -= wk[a, p] * wk[b, p]
                s[a, b] = sab
                s[b, a] = sab
        # component selection: minimise χ² + min_snr² per component (see _select below)
        nkeep = _select(s, rhs, nact, act, comp_kind, ridge, min_snr, pair_snr, keep, banned, inset, sub, subr,
                        yv, bsol, linv, sd, cvec, tmp2, a0, wk, m, tmp, cidx, cval, nb, nc, nt, ped, afull, prof,
                        win0, win1, ib_pix, ir_pix, brk_rmax, ew_pix, ew_fac, ew_max)
        gain = 0.0
        for a in range(nkeep):
            gain += bsol[a] * subr[a]
        gain -= _penalty(nkeep, _n_steps(keep, nkeep, act, comp_kind), min_snr, pair_snr)
        chi2_out[iz] = chi2c - gain + occam
