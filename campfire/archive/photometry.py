"""Generic photometric catalogues (ECSV, FITS, CSV): fluxes per band for the archive's objects.

A row is matched to an object by ID — an ``object_id`` column, a ``target_id`` column,
or an ``id`` column holding either — or else by position (``ra``/``dec`` in degrees,
the nearest object within the match radius). Bands are campfire band names
(``campfire.bands.known_bands()``: ``f444w``, ``f606w``, ...); the columns of a band may
be spelled

=================================  ============================================
flux [μJy]                         error
=================================  ============================================
``{band}``                         ``{band}_err``, ``e_{band}``, ``{band}_error``
``f_{band}``                       ``e_{band}``
``flux_{band}``                    ``fluxerr_{band}``, ``flux_err_{band}``, ``err_{band}``
``{band}_flux``                    ``{band}_fluxerr``, ``{band}_flux_err``, ``{band}_err``
``{band}_tot_1``, ``phot_{band}_tot_1``  ``{band}_etot_1``, ``phot_{band}_etot_1`` (grizli/DJA)
``mag_{band}``, ``{band}_mag`` (AB) ``magerr_{band}``, ``mag_err_{band}``, ``e_mag_{band}``, ``{band}_magerr``, ``{band}_mag_err``
=================================  ============================================

Flux columns with a unit (ECSV, FITS) are converted to μJy (nJy, mJy, Jy, erg/s/cm²/Hz
...); a unit of ``mag``/``ABmag`` makes them AB magnitudes. Without a unit (CSV) a flux
is in μJy and the ``mag`` spellings are AB magnitudes: f_ν = 10^((23.9 − m)/2.5) μJy,
σ_f = f_ν · ln(10)/2.5 · σ_m. Non-finite values, non-positive errors and the sentinels
−99/99 leave that band out for that row. ``z_phot``/``photo_z``/``zphot`` give the
photometric redshift, with ``z_phot_lo``/``z_phot_hi`` (or eazy's ``z160``/``z840``) its
68 % bounds, or ``photo_z_err_lo``/``photo_z_err_hi`` its errors. A column that names a band campfire does not know is a problem, not
silently dropped.

Examples
--------
>>> parse_band_column('f_f444w'), parse_band_column('mag_f150w'), parse_band_column('ra')
(('f444w', 'flux'), ('f150w', 'mag'), None)
"""
from __future__ import annotations

import math
import os
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any


from campfire.archive.table import clean_value, finite_float, read_table_file
from campfire.errors import ValidationError

__all__ = ["PhotometryRow", "PhotometryCatalog", "read_photometry", "parse_band_column", "AB_ZEROPOINT_UJY"]

AB_ZEROPOINT_UJY = 23.9  # m_AB = 23.9 - 2.5 log10(f_nu / uJy)
_BANDLIKE = r"(?P<band>f\d{3,4}(?:w2|w|m|n|lp)|[ugrizyjhk]|ks)"
_FLUX = [rf"^{_BANDLIKE}$", rf"^f_{_BANDLIKE}$", rf"^flux_{_BANDLIKE}$", rf"^{_BANDLIKE}_flux$",
         rf"^(?:phot_)?{_BANDLIKE}_tot_1$"]
_MAG = [rf"^mag_{_BANDLIKE}$", rf"^{_BANDLIKE}_mag$"]
_ERRORS = {
    "flux": ["{b}_err", "e_{b}", "{b}_error", "fluxerr_{b}", "flux_err_{b}", "err_{b}", "{b}_fluxerr",
             "{b}_flux_err", "{b}_etot_1", "phot_{b}_etot_1"],
    "mag": ["magerr_{b}", "mag_err_{b}", "e_mag_{b}", "{b}_magerr", "{b}_mag_err"],
}
_SENTINELS = (-99.0, 99.0, -999.0, 999.0)


@dataclass(frozen=True)
class PhotometryRow:
    """One catalogue row: how to find its object, and its fluxes [μJy] per band."""

    number: int
    ids: tuple[str, ...]
    ra: float | None
    dec: float | None
    bands: dict[str, tuple[float, float]]
    photo_z: tuple[float | None, float | None, float | None]  # z, err_lo, err_hi


@dataclass
class PhotometryCatalog:
    """A photometric catalogue's usable rows, its name, and its problems."""

    path: str
    name: str
    rows: list[PhotometryRow] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def parse_band_column(name: str) -> tuple[str, str] | None:
    """(band, 'flux' | 'mag') when a column name is a band's flux or magnitude, else None."""
    low = name.lower()
    for kind, patterns in (("flux", _FLUX), ("mag", _MAG)):
        for pattern in patterns:
            m = re.match(pattern, low)
            if m:
                return m["band"], kind
    return None


def _unit_kind(col) -> tuple[str | None, Any]:
    """('mag', None), ('flux', factor to μJy) or (None, None) from a column's unit."""
    unit = getattr(col, "unit", None)
    if unit is None:
        return None, None
    import astropy.units as u

    text = str(unit).lower()
    if "mag" in text:
        return "mag", None
    try:
        return "flux", float((1 * unit).to(u.uJy).value)
    except u.UnitConversionError:
        raise ValidationError(f"column {col.name}: unit {unit} is neither a flux density nor a magnitude") from None


def _find_error(lower: dict[str, str], band: str, kind: str) -> str | None:
    for pattern in _ERRORS[kind]:
        col = lower.get(pattern.format(b=band))
        if col is not None:
            return col
    return None


def _to_ujy(value, err, kind: str, factor) -> tuple[float, float] | None:
    try:
        value, err = float(value), float(err)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(value) and math.isfinite(err)) or err <= 0 or value in _SENTINELS or err in _SENTINELS:
        return None
    if kind == "mag":
        flux = 10 ** ((AB_ZEROPOINT_UJY - value) / 2.5)
        return flux, flux * math.log(10) / 2.5 * err
    scale = factor if factor is not None else 1.0
    return value * scale, err * scale


def _first(lower: dict[str, str], *names: str) -> str | None:
    return next((lower[n] for n in names if n in lower), None)


def read_photometry(path: str | os.PathLike) -> PhotometryCatalog:
    """Read a photometric catalogue (see the module docstring); problems are collected, never raised.

    Examples
    --------
    >>> cat = read_photometry('/nonexistent/phot.ecsv')
    >>> cat.rows, cat.problems[0][1]
    ([], '/nonexistent/phot.ecsv: no such file')
    """
    from campfire.bands import known_bands

    text = str(path)
    out = PhotometryCatalog(text, pathlib.Path(text).name.split(".")[0])
    try:
        table = read_table_file(path)
    except ValidationError as err:
        out.problems.append((text, str(err)))
        return out
    if table.meta.get("name"):
        out.name = str(table.meta["name"])
    lower = {c.lower(): c for c in table.colnames}
    known = set(known_bands())
    columns: dict[str, tuple[str, str, str, Any]] = {}  # band -> (value col, error col, kind, factor)
    error_names = {p.format(b=b) for kind in _ERRORS for p in _ERRORS[kind] for b in known}
    for low, col in lower.items():
        parsed = parse_band_column(low)
        if parsed is None or low in error_names:
            continue
        band, kind = parsed
        if band not in known:
            out.problems.append((f"{text} column {col}", f"unknown band {band!r}: not a campfire band "
                                                         "(campfire.bands.known_bands()); its photometry is not attached"))
            continue
        try:
            unit_kind, factor = _unit_kind(table[col])
        except ValidationError as err:
            out.problems.append((f"{text} column {col}", str(err)))
            continue
        kind = unit_kind or kind
        err_col = _find_error(lower, band, "mag" if kind == "mag" else "flux") or _find_error(lower, band, kind)
        if err_col is None:
            out.problems.append((f"{text} column {col}", f"no error column for band {band} (e.g. {band}_err); "
                                                         "the band is not attached"))
            continue
        if band in columns:
            out.problems.append((f"{text} column {col}", f"band {band} is also given by column {columns[band][0]}; "
                                                         "that column is used"))
            continue
        columns[band] = (col, err_col, kind, factor)
    id_cols = [c for c in (_first(lower, "object_id"), _first(lower, "target_id"), _first(lower, "id")) if c]
    ra_col, dec_col = _first(lower, "ra", "ra_deg", "alpha_j2000"), _first(lower, "dec", "dec_deg", "delta_j2000")
    if not id_cols and not (ra_col and dec_col):
        out.problems.append((text, "no object_id / target_id / id column and no ra/dec columns: rows cannot be matched "
                                   "to objects"))
        return out
    if not columns:
        out.problems.append((text, "no band columns (e.g. f444w + f444w_err in μJy, or mag_f444w + magerr_f444w)"))
        return out
    zcols = {"z": _first(lower, "z_phot", "photo_z", "zphot"),
             "lo": _first(lower, "z_phot_lo", "photo_z_lo", "z160"), "hi": _first(lower, "z_phot_hi", "photo_z_hi", "z840"),
             "err_lo": _first(lower, "photo_z_err_lo"), "err_hi": _first(lower, "photo_z_err_hi")}
    for i, raw in enumerate(table, start=1):
        bands = {}
        for band, (col, err_col, kind, factor) in columns.items():
            value = _to_ujy(clean_value(raw[col]), clean_value(raw[err_col]), kind, factor)
            if value is not None:
                bands[band] = value
        if not bands:
            continue
        ids = tuple(str(clean_value(raw[c])).strip().lower() for c in id_cols if clean_value(raw[c]) is not None)
        ra = clean_value(raw[ra_col]) if ra_col else None
        dec = clean_value(raw[dec_col]) if dec_col else None
        out.rows.append(PhotometryRow(i, ids, finite_float(ra), finite_float(dec), bands, _photo_z(raw, zcols)))
    return out


def _photo_z(raw, cols: dict[str, str | None]) -> tuple[float | None, float | None, float | None]:
    """(z, err_lo, err_hi) from the z column and either bound columns (z - lo, hi - z) or error columns."""
    z = finite_float(clean_value(raw[cols["z"]])) if cols["z"] else None
    if z is None or z < 0:
        return None, None, None
    lo = hi = None
    if cols["lo"] and cols["hi"]:
        lo_z, hi_z = finite_float(clean_value(raw[cols["lo"]])), finite_float(clean_value(raw[cols["hi"]]))
        lo = None if lo_z is None else z - lo_z
        hi = None if hi_z is None else hi_z - z
    elif cols["err_lo"] and cols["err_hi"]:
        lo, hi = finite_float(clean_value(raw[cols["err_lo"]])), finite_float(clean_value(raw[cols["err_hi"]]))
    return z, _non_negative(lo), _non_negative(hi)


def _non_negative(value: float | None) -> float | None:
    return value if value is not None and value >= 0 else None
