"""fit_redshift: time per fit, recovery of the demo truth by type and S/N, the calibration of
``confidence``, and the coverage of the 68% interval — optionally side by side with an older
fitter (a git ref of this repository, run in a subprocess from a temporary checkout).

Blind fits over z = 0–15, as the demo builder runs them. Times are CPU time of the fitting
process (the machine is shared: wall clock swings with the neighbours' load, CPU time does not).

    python bench/bench_redshift.py                        # the real public spectra only
    python bench/bench_redshift.py DEMO_ROOT              # + the demo's spectra against truth
    python bench/bench_redshift.py DEMO_ROOT --before arch --bound [--json OUT]
    python bench/bench_redshift.py FULL_ROOT --stored     # the full demo's stored fits
    python bench/bench_redshift.py FULL_ROOT --before arch --every 4   # timing, before/after

"Success" is |Δz|/(1+z) < 0.01 (also reported: < 0.002); a catastrophic failure is
|Δz|/(1+z) > 0.1. S/N is the catalog's ``signal_to_noise`` (median flux/err per pixel).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import pathlib
import sqlite3
import subprocess
import sys
import tempfile
import time

import numpy as np

REAL = "/work/shared/data/real/spectra"
# rough line IDs (PROVENANCE.md), msaexp's test value, the published JADES-GS-z13-0 redshift
REAL_Z = {
    "borg-v4_prism-clear_1747_732": 8.22,
    "excels-uds04-v4_g395m-f290lp_3543_63107": 8.27,
    "gds-udeep-v4_prism-clear_3215_20128771": 13.20,
    "stark-rxcj2248-v4_g140m-f100lp_2478_3": 6.10,
    "stark-rxcj2248-v4_g235m-f170lp_2478_3": 6.10,
    "stark-rxcj2248-v4_g395m-f290lp_2478_3": 6.10,
    "static-test-driz-center-bkg_933": 4.2341,
}
SNR_BINS = ((0.0, 3.0), (3.0, 5.0), (5.0, 10.0), (10.0, np.inf))
CONF_BINS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0 + 1e-9)
HERE = pathlib.Path(__file__).resolve()


def _cpu(fn):
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def _demo_rows(demo_root, prism_only: bool, every: int):
    root = pathlib.Path(demo_root)
    db = sqlite3.connect(f"file:{root / 'meta' / 'campfire.db'}?mode=ro", uri=True)
    where = "where s.grating = 'PRISM'" if prism_only else ""
    rows = db.execute(
        "select s.spectrum_id, s.fits_path, s.grating, t.z_true, t.sed_type, s.signal_to_noise, s.dq_flags "
        f"from spectra s join truth_objects t on t.object_id = s.object_id {where} order by s.spectrum_id"
    ).fetchall()
    return rows[::every]


def records(demo_root: str | None, prism_only: bool = False, every: int = 1, stored: bool = False) -> list[dict]:
    """One record per fitted spectrum: the real files, then the demo's (every ``every``-th).

    ``stored``: the demo's own automatic fits (ZAUTO, ZAUTOLO, ZAUTOHI in the primary
    header, CONFID in ZFIT, written by the builder with this fitter) instead of re-fitting.
    """
    from astropy.io import fits as afits

    from campfire.errors import ValidationError
    from campfire.models import SpectrumData
    from campfire.tasks.redshift import fit_redshift

    def fit_one(spec):
        best = np.inf
        for _ in range(2):  # the second call is the warm one (compiled, caches filled)
            t, fit = _cpu(lambda: fit_redshift(spec, z_range=(0.0, 15.0)))
            best = min(best, t)
        return best, fit

    out = []
    files = sorted(glob.glob(f"{REAL}/*/*.spec.fits"))
    for path in files:
        name = pathlib.Path(path).name.replace(".spec.fits", "")
        spec = SpectrumData.from_fits(path)
        t, fit = fit_one(spec)
        out.append(_record("real", name, spec.grating, REAL_Z[name], None, np.nan, 0, spec.n_pixels, t, fit))
    if demo_root is None:
        return out
    root = pathlib.Path(demo_root)
    for sid, rel, grating, z_true, sed_type, snr, flags in _demo_rows(demo_root, prism_only, every):
        snr = snr if snr is not None else np.nan
        if stored:
            with afits.open(root / rel) as hdul:
                h = hdul[0].header
                if "ZAUTO" not in h:
                    continue
                fit = {"redshift": h["ZAUTO"], "redshift_lo": h.get("ZAUTOLO", np.nan),
                       "redshift_hi": h.get("ZAUTOHI", np.nan), "confidence": hdul["ZFIT"].header["CONFID"]}
                npix = int(hdul["SPEC1D"].header["NAXIS2"])
            out.append(_record("demo", sid, grating, z_true, sed_type, snr, flags, npix, np.nan, fit))
            continue
        spec = SpectrumData.from_fits(root / rel)
        t0 = time.process_time()
        try:
            fit = fit_redshift(spec, z_range=(0.0, 15.0))
        except ValidationError:  # too few valid pixels (the builder stores no redshift either)
            continue
        t = time.process_time() - t0
        out.append(_record("demo", sid, grating, z_true, sed_type, snr, flags, spec.n_pixels, t, fit))
    return out


def information_bound(demo_root, prism_only: bool, every: int) -> dict[str, float]:
    """Expected fraction of PRISM redshifts within |Δz|/(1+z) < 0.002 for a perfect model.

    Each spectrum's *true* model (truth SED ⊗ the instrument's LSF, × the true slit loss) with
    only z and a scale free: the Cramér–Rao σ of ln(1+z) from its Fisher matrix with the
    spectrum's errors, then P(|N(0, σ)| < 0.002). No fitter can beat it on average.
    """
    from scipy.special import erf

    from campfire.demo import instrument as ins
    from campfire.demo import truth
    from campfire.demo.sed import TRUTH_EDGES
    from campfire.models import SpectrumData

    root = pathlib.Path(demo_root)
    cfg = ins.CONFIGS["PRISM/CLEAR"]
    out = {}
    for sid, rel, grating, _, _, _, _ in _demo_rows(demo_root, prism_only, every):
        if grating != "PRISM":
            continue
        spec = SpectrumData.from_fits(root / rel)
        t = truth.spectrum_truth(root, sid)
        sed = truth.true_sed(root, truth.truth_spectrum(root, sid)["object_id"])
        v = spec.valid
        e = spec.fnu_err[v]
        h = 2e-4
        shifted = [ins.lsf_convolve(cfg, TRUTH_EDGES * np.exp(k * h), sed["fnu"], spec.wavelength)[v] for k in (-1, 1)]
        m0 = (t["model"] * t["slitloss"])[v]
        dm = (shifted[1] - shifted[0]) * t["slitloss"][v] / (2 * h)
        fisher = np.array([[np.sum(dm * dm / e**2), np.sum(dm * m0 / e**2)], [np.sum(dm * m0 / e**2), np.sum(m0 * m0 / e**2)]])
        sigma = float(np.sqrt(np.linalg.inv(fisher)[0, 0]))
        out[sid] = float(erf(0.002 / sigma / np.sqrt(2)))
    return out


def _record(kind, name, grating, z_true, sed_type, snr, flags, npix, t, fit) -> dict:
    lo = fit.get("redshift_lo", np.nan)
    hi = fit.get("redshift_hi", np.nan)
    return {"kind": kind, "name": name, "grating": grating, "z_true": float(z_true), "type": sed_type,
            "snr": float(snr), "flags": int(flags), "npix": int(npix), "cpu_s": float(t),
            "z": float(fit["redshift"]), "confidence": float(fit["confidence"]), "z_lo": float(lo), "z_hi": float(hi)}


def records_of_ref(ref: str, demo_root: str | None, prism_only: bool, every: int) -> list[dict]:
    """:func:`records` with the fitter of git ref ``ref``, in a subprocess (its own numba cache)."""
    repo = HERE.parent.parent
    with tempfile.TemporaryDirectory(prefix="bench-redshift-") as tmp:
        archive = subprocess.run(["git", "-C", str(repo), "archive", ref, "campfire"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        out = pathlib.Path(tmp) / "records.json"
        cmd = [sys.executable, str(HERE), *([demo_root] if demo_root else []), "--records", str(out),
               "--every", str(every)]
        if prism_only:
            cmd.append("--prism-only")
        env = dict(os.environ, PYTHONPATH=tmp)
        subprocess.run(cmd, check=True, env=env, cwd=tmp)
        return json.loads(out.read_text())


# ----------------------------------------------------------------------------------
# tables
# ----------------------------------------------------------------------------------
def _dz(r):
    return abs(r["z"] - r["z_true"]) / (1 + r["z_true"])


def _in_bin(snr, lo, hi):
    """lo < S/N ≤ hi; the lowest bin (lo = 0) takes S/N ≤ 0 and NaN too, (-inf, inf) everything."""
    if not np.isfinite(lo):
        return True
    if lo == 0:
        return not snr > hi
    return lo < snr <= hi


def _pct(k, n):
    return f"{k}/{n} ({100 * k / n:.0f}%)" if n else "–"


def table_real(runs: dict[str, list[dict]]) -> None:
    names = list(runs)
    print("| spectrum | pixels | expected z | " + " | ".join(f"{n}: z, conf, ms" for n in names) + " |")
    print("|---|---:|---:|" + "---:|" * len(names))
    real = [[r for r in recs if r["kind"] == "real"] for recs in runs.values()]
    for rows in zip(*real):
        r0 = rows[0]
        cells = [f"{r['z']:.4f} ({_dz(r):.4f}), {r['confidence']:.2f}, {r['cpu_s'] * 1e3:.0f}" for r in rows]
        print(f"| {r0['name']} | {r0['npix']} | {r0['z_true']} | " + " | ".join(cells) + " |")


def table_types(runs: dict[str, list[dict]], grating: str, bound: dict[str, float] | None = None) -> None:
    names = list(runs)
    print(f"\n{grating}: recovered within |Δz|/(1+z) < 0.01 [< 0.002] of the truth, by type and S/N bin\n")
    head = " | ".join(f"S/N {lo:g}–{hi:g}" if np.isfinite(hi) else f"S/N > {lo:g}" for lo, hi in SNR_BINS)
    print(f"| type | fitter | {head} | S/N > 5 | all |")
    print("|---|---|" + "---:|" * (len(SNR_BINS) + 2))
    sel = {n: [r for r in recs if r["kind"] == "demo" and (r["grating"] == "PRISM") == (grating == "PRISM")]
           for n, recs in runs.items()}
    types = sorted({r["type"] for recs in sel.values() for r in recs})
    for t in types:
        for n in names:
            rs = [r for r in sel[n] if r["type"] == t]
            cells = []
            for lo, hi in [*SNR_BINS, (5.0, np.inf), (-np.inf, np.inf)]:
                b = [r for r in rs if _in_bin(r["snr"], lo, hi)]
                ok = sum(_dz(r) < 0.01 for r in b)
                ok2 = sum(_dz(r) < 0.002 for r in b)
                cells.append(f"{_pct(ok, len(b))} [{ok2}]" if b else "–")
            print(f"| {t} | {n} | " + " | ".join(cells) + " |")
        if bound and grating == "PRISM":
            rs = [r for r in sel[names[-1]] if r["type"] == t and r["name"] in bound]
            cells = []
            for lo, hi in [*SNR_BINS, (5.0, np.inf), (-np.inf, np.inf)]:
                b = [r for r in rs if _in_bin(r["snr"], lo, hi)]
                cells.append(f"[{sum(bound[r['name']] for r in b):.1f}] of {len(b)}" if b else "–")
            print(f"| {t} | perfect model, expected within 0.002 | " + " | ".join(cells) + " |")


def table_calibration(runs: dict[str, list[dict]]) -> None:
    print("\nconfidence calibration (demo spectra, every grating): the measured success rate "
          "(|Δz|/(1+z) < 0.01) per confidence bin, and the catastrophic failures (> 0.1)\n")
    names = list(runs)
    print("| confidence | " + " | ".join(f"{n}: n, success, mean conf, catastrophic" for n in names) + " |")
    print("|---|" + "---:|" * len(names))
    for lo, hi in zip(CONF_BINS[:-1], CONF_BINS[1:]):
        cells = []
        for n in names:
            b = [r for r in runs[n] if r["kind"] == "demo" and lo <= r["confidence"] < hi]
            if not b:
                cells.append("–")
                continue
            ok = sum(_dz(r) < 0.01 for r in b)
            cat = sum(_dz(r) > 0.1 for r in b)
            cells.append(f"{len(b)}, {100 * ok / len(b):.1f}%, {np.mean([r['confidence'] for r in b]):.3f}, {cat}")
        print(f"| {lo:.2f}–{min(hi, 1.0):.2f} | " + " | ".join(cells) + " |")
    for n in names:
        demo = [r for r in runs[n] if r["kind"] == "demo"]
        hi_c = [r for r in demo if r["confidence"] >= 0.9]
        cat = [r for r in hi_c if _dz(r) > 0.1]
        print(f"\n{n}: confidence ≥ 0.9: {len(hi_c)} of {len(demo)} fits; catastrophic among them: "
              f"{_pct(len(cat), len(hi_c))}" + "".join(
                  f"\n    {r['name']} ({r['type']}, S/N {r['snr']:.1f}, flags {r['flags']}): z_true "
                  f"{r['z_true']:.3f}, fit {r['z']:.3f}, conf {r['confidence']:.3f}" for r in cat[:12]))


def table_interval(runs: dict[str, list[dict]]) -> None:
    for n, recs in runs.items():
        demo = [r for r in recs if r["kind"] == "demo" and np.isfinite(r["z_lo"])]
        if not demo:
            print(f"\n{n}: no 68% interval")
            continue
        print(f"\n{n}: 68% interval [redshift_lo, redshift_hi] contains the true z, among the demo redshifts "
              "within |Δz|/(1+z) < 0.01 of it\n")
        print("| subset | n | covered | median half-width /(1+z) |")
        print("|---|---:|---:|---:|")
        ok = [r for r in demo if _dz(r) < 0.01]
        prism5 = [r for r in ok if r["grating"] == "PRISM" and r["snr"] > 5]
        subsets = [("all", ok), ("PRISM, S/N > 5", prism5),
                   ("PRISM, S/N > 5, no flag", [r for r in prism5 if r["flags"] == 0]),
                   ("PRISM, S/N ≤ 5", [r for r in ok if r["grating"] == "PRISM" and not r["snr"] > 5]),
                   ("gratings", [r for r in ok if r["grating"] != "PRISM"])]
        for label, rs in subsets:
            if not rs:
                continue
            cov = sum(r["z_lo"] <= r["z_true"] <= r["z_hi"] for r in rs)
            hw = np.median([(r["z_hi"] - r["z_lo"]) / 2 / (1 + r["z"]) for r in rs])
            print(f"| {label} | {len(rs)} | {_pct(cov, len(rs))} | {hw:.5f} |")


def table_time(runs: dict[str, list[dict]]) -> None:
    print("\nCPU time per fit, demo spectra\n")
    print("| fitter | grating | n | median ms | p90 ms | fits/s per core |")
    print("|---|---|---:|---:|---:|---:|")
    for n, recs in runs.items():
        for g in ("PRISM", "gratings"):
            t = np.array([r["cpu_s"] for r in recs if r["kind"] == "demo" and (r["grating"] == "PRISM") == (g == "PRISM")])
            if t.size:
                print(f"| {n} | {g} | {t.size} | {np.median(t) * 1e3:.1f} | {np.percentile(t, 90) * 1e3:.1f} | "
                      f"{t.size / t.sum():.1f} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("demo_root", nargs="?")
    ap.add_argument("--before", help="git ref of the fitter to compare with (e.g. arch)")
    ap.add_argument("--prism-only", action="store_true", help="only the demo's PRISM spectra")
    ap.add_argument("--every", type=int, default=1, help="every N-th demo spectrum (by spectrum_id)")
    ap.add_argument("--stored", action="store_true",
                    help="the demo's stored automatic fits (the builder ran this fitter) instead of re-fitting")
    ap.add_argument("--bound", action="store_true", help="the perfect-model expectation within 0.002 (PRISM)")
    ap.add_argument("--records", help=argparse.SUPPRESS)  # subprocess mode: write records as JSON
    ap.add_argument("--json", help="also write every run's records to this file")
    a = ap.parse_args(argv)
    if a.records:
        pathlib.Path(a.records).write_text(json.dumps(records(a.demo_root, a.prism_only, a.every)))
        return
    print(f"# redshift bench: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; CPU time per fit\n")
    runs = {}
    if a.before:
        runs[f"before ({a.before})"] = records_of_ref(a.before, a.demo_root, a.prism_only, a.every)
    runs["now (stored)" if a.stored else "now"] = records(a.demo_root, a.prism_only, a.every, a.stored)
    print(f"load after the runs {os.getloadavg()[0]:.1f}; demo spectra: every {a.every}\n")
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(runs))
    table_real(runs)
    if a.demo_root:
        bound = information_bound(a.demo_root, a.prism_only, a.every) if a.bound else None
        table_types(runs, "PRISM", bound)
        if not a.prism_only:
            table_types(runs, "gratings")
        table_calibration(runs)
        table_interval(runs)
        table_time(runs)


if __name__ == "__main__":
    main()
