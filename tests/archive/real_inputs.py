"""Inputs of the ingest tests: the real spectra, a DJA-format table and a photometric catalogue for them.

The DJA table is written from the documented columns of the DJA NIRSpec merged table v4
(dawn-cph/dja, ``_posts/2025-05-01-nirspec-merged-table-v4.md``), with values read from
the files themselves; the redshifts are the rough line IDs of PROVENANCE.md (and the
msaexp test's z = 4.2341), the grades and reviewers are ours.

The photometric catalogue is **synthetic**: for each object, NIRCam fluxes computed
from its spectra (synthetic photometry over the bands that lie inside a spectrum's
nominal range), multiplied by :data:`PHOT_SCALE` (a slit-loss-like offset the
calibration must recover) and perturbed by 3 % Gaussian noise (seed 13), with 3 %
errors. No real photometry of these objects is at hand (PROVENANCE.md).
"""
from __future__ import annotations

import pathlib
import shutil

import numpy as np

REAL = pathlib.Path("/work/shared/data/real/spectra")
DJA = REAL / "dja_v4"
OLD = REAL / "msaexp_tests" / "static-test-driz-center-bkg_933.spec.fits"
SLITLETS = sorted((REAL / "msaexp_tests").glob("jw01345062001_*_phot.138.1345_933.fits"))
SPECTRA = sorted(DJA.glob("*.spec.fits")) + [OLD]
STARK = sorted(DJA.glob("stark-rxcj2248-v4_*_2478_3.spec.fits"))
PHOT_SCALE = 1.25
PHOT_BANDS = ("f090w", "f115w", "f150w", "f200w", "f277w", "f356w", "f410m", "f444w")

# file -> (root, z_best, grade, zgrade, reviewer, comment): z from PROVENANCE.md's line IDs
TABLE_ROWS = {
    "borg-v4_prism-clear_1747_732.spec.fits": ("borg-v4", 8.22, 3, 8.2230, "GB", "[OIII], Hb, [OII]"),
    "excels-uds04-v4_g395m-f290lp_3543_63107.spec.fits": ("excels-uds04-v4", 8.27, 2, 8.2700, "AC", "one line"),
    "gds-udeep-v4_prism-clear_3215_20128771.spec.fits": ("gds-udeep-v4", 13.2, 1, None, "KH", "break only"),
    "stark-rxcj2248-v4_g140m-f100lp_2478_3.spec.fits": ("stark-rxcj2248-v4", 6.10, 3, 6.1055, "DS", "CIV, CIII]"),
    "stark-rxcj2248-v4_g235m-f170lp_2478_3.spec.fits": ("stark-rxcj2248-v4", 6.10, 3, 6.1055, "DS", "[OIII]"),
    "stark-rxcj2248-v4_g395m-f290lp_2478_3.spec.fits": ("stark-rxcj2248-v4", 6.10, 2, 6.1055, "DS", "Ha"),
    "static-test-driz-center-bkg_933.spec.fits": ("ceers-msaexp-test", 4.2341, -1, None, None, None),
}


def _header(path: pathlib.Path) -> dict:
    from campfire.models import SpectrumData

    return SpectrumData.from_fits(path).header


def write_dja_table(path: pathlib.Path, files=SPECTRA, *, rows=TABLE_ROWS, extra_columns: dict | None = None,
                    extra_rows: list[dict] | None = None) -> pathlib.Path:
    """A DJA-merged-table-format file (CSV or FITS by suffix) describing ``files``."""
    from astropy.table import Table

    from campfire.models import SpectrumData

    out = []
    for f in files:
        spec = SpectrumData.from_fits(f)
        h = spec.header
        root, z, grade, zgrade, reviewer, comment = rows[f.name]
        good = np.isfinite(spec.fnu)
        sn = spec.fnu[good] / spec.fnu_err[good]
        src = h.get("SOURCEID", h.get("SRCID"))
        out.append({
            "file": f.name, "srcid": int(src), "ra": float(h["SRCRA"]), "dec": float(h["SRCDEC"]),
            "grating": h["GRATING"], "filter": h["FILTER"], "effexptm": float(h["EFFEXPTM"]),
            "nfiles": int(h.get("NCOMBINE", h.get("NFILES", 1))),
            "dataset": str(h.get("SFILE000", "jw01345062001_03101_00001_nrs2_phot.138.1345_933.fits")),
            "msamet": str(h.get("MSAMETFL", "jw01345062001_01_msa.fits")), "msaid": int(h.get("MSAMETID", 1)),
            "root": root, "npix": spec.wavelength.size, "wmin": float(spec.wavelength[good].min()),
            "wmax": float(spec.wavelength[good].max()), "sn10": float(np.percentile(sn, 10)),
            "sn50": float(np.percentile(sn, 50)), "sn90": float(np.percentile(sn, 90)),
            "version": str(h.get("VERSION", "")), "exptime": float(h.get("EXPTIME", h.get("EFFEXPTM"))),
            "objid": 1000 + len(out), "z_best": z, "ztype": "G" if grade >= 0 else "P",
            "z_prism": z if h["GRATING"] == "PRISM" else -1.0, "z_grating": z if h["GRATING"] != "PRISM" else -1.0,
            "grade": grade, "zgrade": np.nan if zgrade is None else zgrade, "reviewer": reviewer or "",
            "comment": comment or "", "valid": "True" if grade == 3 else "False",
            **(extra_columns or {}),
        })
    out += extra_rows or []
    table = Table(rows=out)
    table.write(path, overwrite=True)
    return path


def synthetic_photometry_rows(files=SPECTRA, seed: int = 13) -> list[dict]:
    """One row per object position: PHOT_SCALE × synthetic NIRCam photometry of its spectra + 3 % noise."""
    from campfire import SpectrumData, synthetic_photometry
    from campfire.bands import get_band
    from campfire.tasks.quality import nominal_range

    rng = np.random.default_rng(seed)
    by_position: dict[tuple, dict] = {}
    for f in files:
        spec = SpectrumData.from_fits(f)
        key = (round(float(spec.header["SRCRA"]), 6), round(float(spec.header["SRCDEC"]), 6))
        row = by_position.setdefault(key, {"ra": key[0], "dec": key[1]})
        lo, hi = nominal_range(spec.grating, spec.filter)
        for band in PHOT_BANDS:
            b_lo, b_hi = get_band(band).support(0.01)
            if band in row or b_lo < lo or b_hi > hi:
                continue
            try:
                flux, _ = synthetic_photometry(spec.wavelength, spec.fnu, spec.fnu_err, band)
            except Exception:
                continue
            if not np.isfinite(flux) or flux <= 0:
                continue
            value = PHOT_SCALE * flux
            row[band] = value * (1 + 0.03 * rng.standard_normal())
            row[f"{band}_err"] = 0.03 * value
    return list(by_position.values())


def write_photometry(path: pathlib.Path, files=SPECTRA) -> pathlib.Path:
    """The synthetic catalogue as ECSV (fluxes with a μJy unit), matched by position."""
    import astropy.units as u
    from astropy.table import Table

    rows = synthetic_photometry_rows(files)
    names = ["ra", "dec"] + [c for b in PHOT_BANDS for c in (b, f"{b}_err")]
    table = Table(names=names, dtype=[float] * len(names))
    for r in rows:
        table.add_row([r.get(n, np.nan) for n in names])
    for b in PHOT_BANDS:
        table[b].unit = u.uJy
        table[f"{b}_err"].unit = u.uJy
    table.meta["name"] = "synthetic-nircam"
    table.write(path, overwrite=True)
    return path


def copy_inputs(dest: pathlib.Path, files=SPECTRA) -> pathlib.Path:
    """Writable copies of input files (tests change, truncate or remove them)."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, dest / f.name)
    return dest
