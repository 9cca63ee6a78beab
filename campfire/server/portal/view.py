"""The data of an object page, in one JSON document: every visible spectrum with its fit.

For each spectrum the caller may see: the 1D arrays in f_ν [μJy] and f_λ
[10⁻²⁰ erg s⁻¹ cm⁻² Å⁻¹] with errors, the wavelength ranges of masked pixels, the 2D
S/N image on the same wavelength grid, the automatic redshift fit (χ²(z), its best
distinct solutions and the best-fit model) and the synthetic photometry of the
object's photometric bands the spectrum covers. Arrays are rounded to the precision a
plot needs (4 significant digits of the array's scale; wavelengths to 10⁻⁶ μm) to keep
the document small.

Examples
--------
>>> rounded([1234.5678, 0.001234, float('nan')], 4)
[1235.0, 0.0, None]
"""
from __future__ import annotations

import functools
import json
import math
import pathlib
from typing import Any

import numpy as np

from campfire.errors import CampfireError, NotFoundError, ValidationError
from campfire.io.fits import read_spectrum_products
from campfire.lines import ABSORPTION_LINES, EMISSION_LINES, convert_flux_units
from campfire.server.archive import Archive, Caller
from campfire.server.encoding import clean_row, finite, json_array
from campfire.server.records import object_or_404
from campfire.tasks.redshift import redshift_alternatives
from campfire.tasks.synphot import synthetic_photometry

__all__ = ["FLAM_SCALE", "UNITS", "object_view", "line_list", "rounded", "masked_ranges"]

FLAM_SCALE = 1e-20
UNITS = {
    "wave": "μm",
    "fnu": "μJy",
    "flam": "10⁻²⁰ erg s⁻¹ cm⁻² Å⁻¹",
}
N_ALTERNATIVES = 5
CACHED_SPECTRA = 64  # spectra whose page data are kept in memory (~0.2 MB each)
SPECTRUM_FIELDS = ("spectrum_id", "grating", "filter", "observation", "program", "signal_to_noise",
                   "exposure_time", "redshift_auto", "dq_flags", "file_hash")


def rounded(values, digits: int) -> list:
    """``values`` as a JSON list with ``digits`` significant digits of the array's largest value."""
    arr = np.asarray(values, dtype=float)
    finite = np.isfinite(arr)
    if finite.any():
        scale = float(np.max(np.abs(arr[finite])))
        if scale > 0:
            arr = np.round(arr, digits - 1 - int(math.floor(math.log10(scale))))
    return json_array(arr)


def masked_ranges(wave: np.ndarray, good: np.ndarray) -> list[list[float]]:
    """Wavelength ranges [start, end] (pixel edges, μm) of the runs of bad pixels."""
    wave = np.asarray(wave, dtype=float)
    bad = ~np.asarray(good, dtype=bool)
    if not bad.any() or wave.size < 2:
        return []
    edges = np.concatenate([[1.5 * wave[0] - 0.5 * wave[1]], 0.5 * (wave[1:] + wave[:-1]),
                            [1.5 * wave[-1] - 0.5 * wave[-2]]])
    flips = np.flatnonzero(np.diff(np.concatenate([[0], bad.astype(np.int8), [0]])))
    return [[round(float(edges[a]), 6), round(float(edges[b]), 6)] for a, b in zip(flips[::2], flips[1::2])]


def line_list() -> list[dict[str, Any]]:
    """The lines a page marks and offers for identification: name, rest wavelength [μm], kind."""
    lines = [{"name": n, "rest_um": w / 1e4, "kind": "emission"} for n, w in EMISSION_LINES.items()]
    lines += [{"name": n, "rest_um": w / 1e4, "kind": "absorption"} for n, w in ABSORPTION_LINES.items()]
    return sorted(lines, key=lambda line: line["rest_um"])


def _flam_factor(wave) -> np.ndarray:
    """f_λ [FLAM_SCALE] per μJy of f_ν at each wavelength (one unit conversion for a whole array)."""
    wave = np.asarray(wave, dtype=float)
    return convert_flux_units(np.ones_like(wave), wave, "flam") / FLAM_SCALE


def _points(rows: list[tuple[str, float, float, float]]) -> list[dict[str, Any]]:
    """Photometric points (band, pivot μm, f_ν, error) in both flux units."""
    if not rows:
        return []
    k = _flam_factor([r[1] for r in rows])
    return [clean_row({"band": b, "wave": w, "fnu": f, "fnu_err": e, "flam": f * kk, "flam_err": e * kk})
            for (b, w, f, e), kk in zip(rows, k.tolist())]


def _synthetic(wave, fnu, err, bands: list[list]) -> list[dict[str, Any]]:
    rows = []
    for band, _flux, _err, pivot in bands:
        try:
            flux, ferr = synthetic_photometry(wave, fnu, err, band)
        except ValidationError:  # a band the spectrum does not cover, or one campfire has no curve for
            continue
        rows.append((band, pivot, flux, ferr))
    return _points(rows)


def _fit(fit: dict[str, Any] | None) -> dict[str, Any] | None:
    if fit is None:
        return None
    z, chi2 = fit["z_grid"], fit["chi2_grid"]
    model_wave = fit["model_wave"]
    return {
        "redshift": finite(fit["redshift"]),
        "chi2_min": finite(fit["chi2_min"]),
        "confidence": finite(fit["confidence"]),
        "z_grid": rounded(z, 7),
        "chi2_grid": rounded(chi2, 6),
        "alternatives": [{"z": za, "dchi2": finite(dc)} for za, dc in redshift_alternatives(z, chi2, N_ALTERNATIVES)],
        "model_wave": rounded(model_wave, 7),
        "model_fnu": rounded(fit["model_fnu"], 4),
        "model_flam": rounded(fit["model_fnu"] * _flam_factor(model_wave), 4) if len(model_wave) else [],
    }


@functools.lru_cache(maxsize=CACHED_SPECTRA)
def _spectrum_json(path: pathlib.Path, file_hash: str, bands: tuple[tuple, ...]) -> str:
    """One spectrum's arrays as JSON text (without the braces), cached per file version.

    ``file_hash`` is part of the key, so a reprocessed file is read again; ``bands`` are
    the object's photometric bands (their synthetic photometry).
    """
    return _encode(_spectrum(path, [list(b) for b in bands]))[1:-1]


def _encode(value) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _spectrum(path: pathlib.Path, bands: list[list]) -> dict[str, Any]:
    data, fit = read_spectrum_products(path)
    wave, fnu, err = data["wave"], data["fnu"], data["fnu_err"]
    good = np.isfinite(fnu) & np.isfinite(err)
    snr = data["snr_2d"]
    n_spatial = data["n_spatial"]
    pix = np.asarray(data["profile_pix"], dtype=float)
    if pix.size != n_spatial:
        pix = np.arange(n_spatial, dtype=float)
    k = _flam_factor(wave)
    return {
        "wave": rounded(wave, 7),
        "fnu": rounded(fnu, 4),
        "fnu_err": rounded(err, 3),
        "flam": rounded(fnu * k, 4),
        "flam_err": rounded(err * k, 3),
        "masked": masked_ranges(wave, good),
        # the 2D image is on the 1D grid when the widths agree (the pipeline's rectified product)
        "snr_2d": {"z": json_array(np.round(snr, 1)),
                   "y": (pix - (n_spatial - 1) / 2).tolist(), "aligned": data["n_wave"] == wave.size},
        "fit": _fit(fit),
        "synthetic_photometry": _synthetic(wave, fnu, err, bands) if bands else [],
    }


def object_view(archive: Archive, c: Caller, object_id: str) -> str:
    """Everything an object page plots, as ``c`` may see it, as JSON text.

    Each spectrum's part is cached per file version (:func:`_spectrum_json`): the page
    of an object seen a moment ago (``p`` in the queue, a reload) costs no file reads.

    Raises
    ------
    NotFoundError
        The object does not exist for ``c``.
    """
    obj = object_or_404(c, object_id)
    phot = c.catalog.object_photometry(object_id)
    bands = tuple(tuple(b) for b in phot["bands"]) if phot else ()
    spectra = []
    for row in c.catalog.object_spectra(object_id):
        item = _encode(clean_row({k: row[k] for k in SPECTRUM_FIELDS}))[:-1]
        try:
            arrays = _spectrum_json(archive.file_path(row["fits_path"]), row["file_hash"], bands)
        except CampfireError as err:  # a missing or unreadable file spoils one spectrum, not the page
            message = str(err) if isinstance(err, NotFoundError) else f"unreadable file ({type(err).__name__})"
            arrays = _encode({"error": message})[1:-1]
        spectra.append(f"{item},{arrays}}}")
    photometry = None
    if phot:
        photometry = {"catalog": phot["catalog"], "photo_z": phot["photo_z"],
                      "bands": _points([(b, w, f, e) for b, f, e, w in bands])}
    rest = _encode({"photometry": photometry, "units": UNITS, "flam_scale": FLAM_SCALE})[1:]
    return f'{{"object":{_encode(clean_row(obj))},"spectra":[{",".join(spectra)}],{rest}'
