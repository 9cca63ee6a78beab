"""Calibration recovery of an injected slit loss: the degree rule before and after issue 17.6.

1. The real BoRG PRISM spectrum (borg-v4_prism-clear_1747_732, PROVENANCE.md) times a
   slit loss L(x), x = (λ − λ_min)/(λ_max − λ_min) over its valid range: quadratic
   0.6 + 0.5x − 0.35x² or a ramp 0.5 + 0.3x. Photometry: synthetic NIRCam fluxes of the
   unscaled spectrum in 8 bands (f090w … f444w; f090w lies below the z ≈ 8.2 Lyman break
   and is rejected, so 7 are usable), quoted with 3 % errors — exact, or with 3 % Gaussian
   noise (200 draws with all 8 bands given and 200 with one of f115w … f444w left out).
   Figure: rms of multiplier × L − 1 over the span of the bands used.
2. The demo archive's truth: PRISM spectra with S/N > 10, photometry and no additive
   contamination (flags 2, 8), calibrated against the catalog photometry; the rms of
   multiplier × injected slit loss − 1 at the band pivots (weighted) and over the span.

"before" is the χ²-only rule (χ² + 4 per coefficient, what the code did before issue
17.6), run by swapping the rule in; "now" is the shipped rule (module notes of
campfire.tasks.calibrate).

    python bench/bench_calibration_recovery.py [DEMO_ROOT]     # default /work/demo-v3
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import sqlite3
import sys

import numpy as np

BORG = pathlib.Path("/work/shared/data/real/spectra/dja_v4/borg-v4_prism-clear_1747_732.spec.fits")
BANDS = ["f090w", "f115w", "f150w", "f200w", "f277w", "f356w", "f410m", "f444w"]


@contextlib.contextmanager
def rule(name: str):
    import campfire.tasks.calibrate as C

    shipped = C._choose_degree
    if name == "before":
        C._choose_degree = lambda fits: min(fits, key=lambda f: f.chi2 + C.DEGREE_PENALTY * (f.degree + 1))
    try:
        yield
    finally:
        C._choose_degree = shipped


def _span_rms(result, wave, ratio_ok):
    from campfire.bands import get_band

    lo = min(get_band(b).support()[0] for b in result.bands_used)
    hi = max(get_band(b).support()[1] for b in result.bands_used)
    sel = (wave >= lo) & (wave <= hi) & np.isfinite(ratio_ok)
    return float(np.sqrt(np.mean((result.multiplier[sel] * ratio_ok[sel] - 1.0) ** 2)))


def borg_table():
    from campfire.bands import get_band
    from campfire.models import Photometry, SpectrumData
    from campfire.tasks.calibrate import calibrate_to_photometry
    from campfire.tasks.synphot import synthetic_photometry

    spec = SpectrumData.from_fits(BORG)
    w = spec.wavelength
    lo, hi = w[spec.valid].min(), w[spec.valid].max()
    x = (w - lo) / (hi - lo)
    losses = {"quadratic 0.6+0.5x−0.35x²": 0.6 + 0.5 * x - 0.35 * x**2, "ramp 0.5+0.3x": 0.5 + 0.3 * x}
    true = {b: synthetic_photometry(w, spec.fnu, spec.fnu_err, b)[0] for b in BANDS}
    pivots = {b: get_band(b).pivot for b in BANDS}
    rows = []
    for lname, loss in losses.items():
        obs = spec.copy(fnu=spec.fnu * loss, fnu_err=spec.fnu_err * loss)
        for rname in ("before", "now"):
            with rule(rname):
                exact = calibrate_to_photometry(obs, Photometry(BANDS, [true[b] for b in BANDS],
                                                                [0.03 * true[b] for b in BANDS],
                                                                [pivots[b] for b in BANDS]))
                rng = np.random.default_rng(1)
                noisy, degs = [], []
                for i in range(400):
                    bands = BANDS if i % 2 == 0 else [b for b in BANDS if b != BANDS[1 + (i // 2) % 7]]
                    t = np.array([true[b] for b in bands])
                    phot = Photometry(bands, t * (1 + 0.03 * rng.normal(size=t.size)), 0.03 * t,
                                      [pivots[b] for b in bands])
                    r = calibrate_to_photometry(obs, phot)
                    noisy.append(_span_rms(r, w, loss))
                    degs.append(r.degree)
            noisy = np.array(noisy)
            rows.append((lname, rname, exact.degree, _span_rms(exact, w, loss), np.median(noisy), noisy.mean(),
                         np.percentile(noisy, 90), np.bincount(degs, minlength=4)))
    print("| slit loss | rule | exact: degree | exact: rms % | noisy: median rms % | mean % | p90 % | "
          "degrees 0/1/2/3 (noisy) |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for lname, rname, deg, ex, med, mean, p90, cnt in rows:
        print(f"| {lname} | {rname} | {deg} | {100 * ex:.2f} | {100 * med:.2f} | {100 * mean:.2f} | {100 * p90:.2f} | "
              f"{'/'.join(map(str, cnt))} |")


def demo_table(root: pathlib.Path):
    from campfire.bands import get_band
    from campfire.demo import truth
    from campfire.errors import ValidationError
    from campfire.models import Photometry, SpectrumData
    from campfire.tasks.calibrate import calibrate_to_photometry

    db = sqlite3.connect(f"file:{root / 'meta' / 'campfire.db'}?mode=ro", uri=True)
    rows = db.execute("select s.spectrum_id, s.object_id, s.fits_path from spectra s where s.grating = 'PRISM' "
                      "and s.signal_to_noise > 10 and s.dq_flags & (2 | 8) = 0 order by s.spectrum_id").fetchall()
    phot_rows: dict = {}
    for oid, band, flux, err in db.execute("select object_id, band, flux, flux_err from photometry"):
        phot_rows.setdefault(oid, []).append((band, flux, err))
    cases = []
    for sid, oid, path in rows:
        if oid not in phot_rows:
            continue
        bands, flux, err = zip(*phot_rows[oid])
        cases.append((SpectrumData.from_fits(root / path), Photometry(list(bands), flux, err,
                                                                      [get_band(b).pivot for b in bands]),
                      truth.spectrum_truth(root, sid)["slitloss"]))
    print(f"\n{len(cases)} demo PRISM spectra (S/N > 10, photometry, flags 2 and 8 clear) of {root}\n")
    print("| rule | rms < 3 % at the bands | median rms at the bands % | median rms over the span % | "
          "p90 over the span % | degrees 0/1/2/3 |")
    print("|---|---:|---:|---:|---:|---|")
    for rname in ("before", "now"):
        at, span, degs = [], [], []
        with rule(rname):
            for spec, phot, loss in cases:
                try:
                    r = calibrate_to_photometry(spec, phot)
                except ValidationError:
                    continue
                ok = np.isfinite(loss)
                piv = np.array([get_band(b).pivot for b in r.bands_used])
                ratio, ratio_err = np.array([r.ratios[b] for b in r.bands_used]).T
                wt = (ratio / ratio_err) ** 2
                res = r.evaluate(piv) * np.interp(piv, spec.wavelength[ok], loss[ok]) - 1
                at.append(np.sqrt(np.sum(wt * res**2) / np.sum(wt)))
                span.append(_span_rms(r, spec.wavelength, np.where(ok, loss, np.nan)))
                degs.append(r.degree)
        at, span = np.array(at), np.array(span)
        print(f"| {rname} | {np.mean(at < 0.03):.0%} | {100 * np.median(at):.2f} | {100 * np.median(span):.2f} | "
              f"{100 * np.percentile(span, 90):.2f} | {'/'.join(map(str, np.bincount(degs, minlength=4)))} |")


def main(root: str = "/work/demo-v3") -> None:
    print(f"# calibration recovery: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}\n")
    borg_table()
    if pathlib.Path(root, "meta", "campfire.db").exists():
        demo_table(pathlib.Path(root))


if __name__ == "__main__":
    main(*sys.argv[1:])
