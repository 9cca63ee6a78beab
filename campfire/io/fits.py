"""The pipeline FITS format (msaexp / DJA "v4" ``*.spec.fits``), read and written.

Reading is layered the xarray way: :func:`load_raw` (bytes → columns + headers, the
only place that touches the file) → :func:`decode_spectrum` (pure: units, bad pixels →
a *record*: the plain fields of a spectrum) → ``SpectrumData.from_record`` in
:mod:`campfire.models` (the model). This module knows nothing of the model classes, so
the model layer can sit on top of it (``SpectrumData.from_fits`` reads through here).

Paths may be local paths or fsspec URLs (``memory://``, ``s3://`` ...), so Dask
workers can read an archive root on shared or object storage.
"""
from __future__ import annotations

import contextlib
import io
import os
import pathlib
import re
import threading
import warnings
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from campfire.errors import CampfireError, FileFormatError, NotFoundError
from campfire.lines import fnu_unit_of, norm_window_of
from campfire.io.fitsbytes import (
    FileSource,
    Unsupported,
    bintable_hdu,
    check_counts_anywhere,
    float32_image_hdu,
    parse_header,
    primary_hdu,
    read_table_columns,
    scan_hdus,
)

if TYPE_CHECKING:  # astropy.io.fits is imported where used: campfire's own files are read and
    # written without it, and it takes ~0.3 s to import (a demo build's workers, a first open_spectrum)
    from astropy.io import fits

__all__ = [
    "open_fits",
    "load_raw",
    "decode_spectrum",
    "read_spectrum_record",
    "read_spectrum_2d",
    "read_redshift_fit",
    "read_spectrum_products",
    "auto_redshift_cards",
    "redshift_fit_hdus",
    "redshift_fit_bytes",
    "redshift_fit_side_path",
    "write_spectrum",
    "write_spectrum_file",
    "spectrum_file_bytes",
    "write_hdulist",
    "write_file_bytes",
    "write_atomic",
]

EXPECTED = (
    "a 1D extracted spectrum: a SPEC1D table with wave [um], flux and err [uJy] "
    "(msaexp / DJA format) or a JWST pipeline x1d EXTRACT1D table"
)
_SKIP_CARDS = {"COMMENT", "HISTORY", ""}


def _is_url(path) -> bool:
    return isinstance(path, str) and "://" in path


def open_fits(path: str | os.PathLike) -> fits.HDUList:
    """Open a FITS file from a local path or fsspec URL, fully read (no memmap).

    A truncated file is an error here, not astropy's warning: a partial download
    must never pass for a spectrum. So is a header that declares more data than the
    file holds (checked before anything is allocated), and anything else astropy
    raises on a mangled file: every failure is a :class:`FileFormatError`.
    """
    try:
        if _is_url(path):
            import fsspec

            with fsspec.open(path, "rb") as f:
                data = f.read()
        else:
            with open(os.fspath(path), "rb") as f:
                data = f.read()
        # axis counts and declared sizes checked before astropy builds an HDU or reads
        # data: astropy sizes its lists and arrays from the header, so one corrupt digit
        # (NAXIS = 99999999, NAXIS2 = 99999999999) would hang it or exhaust memory
        try:
            scan_hdus(FileSource(data))
        except Unsupported:  # valid but unusual (trailing bytes, non-ASCII cards): astropy decides,
            check_counts_anywhere(data)  # once no count in the file can make it loop or allocate
            return _open_unscanned(data, path)
        # the scan found every data unit within the file: astropy cannot meet a truncation,
        # so no warnings are caught (``catch_warnings`` swaps process-wide state: threads
        # opening files at once could leave one's filters or recorder installed for good)
        return _open_in_memory(data)
    except FileFormatError as err:
        if str(path) in str(err):
            raise
        raise FileFormatError(f"{path}: {err}; expected {EXPECTED}") from err
    except FileNotFoundError as err:
        raise NotFoundError(f"no such file: {path}") from err
    except MemoryError:
        raise
    except Exception as err:  # astropy's VerifyError, KeyError, AttributeError ... on a mangled header
        raise FileFormatError(
            f"{path}: not a readable FITS file ({type(err).__name__}: {err}); expected {EXPECTED}"
        ) from err


def _open_in_memory(data: bytes) -> fits.HDUList:
    """``data`` as an HDUList with every data unit read (so truncation shows now)."""
    from astropy.io import fits

    hdul = fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=False)
    try:
        for hdu in hdul:
            hdu.data
    except BaseException:
        hdul.close()
        raise
    return hdul


def _open_unscanned(data: bytes, path) -> fits.HDUList:
    """:func:`_open_in_memory` for a layout :func:`scan_hdus` leaves to astropy: its
    truncation warning is the check here (rare files; the warning state is process-wide)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hdul = _open_in_memory(data)
    problems = [str(w.message) for w in caught if "truncat" in str(w.message).lower()]
    if problems:
        hdul.close()
        raise FileFormatError(f"{path}: the file is truncated ({problems[0]})")
    return hdul


@contextlib.contextmanager
def _file_errors(path, what: str):
    """Turn whatever a corrupt file makes astropy/numpy raise into a FileFormatError."""
    try:
        # garbage values in a corrupt data unit become NaN/inf quietly, not numpy warnings
        with np.errstate(all="ignore"):
            yield
    except (CampfireError, MemoryError):
        raise
    except Exception as err:
        raise FileFormatError(f"{path}: cannot read {what} ({type(err).__name__}: {err}); expected {EXPECTED}") from err


def _header_dict(header: fits.Header) -> dict[str, Any]:
    out = {}
    for card in header.cards:
        key = card.keyword
        if key in _SKIP_CARDS or key in out:
            continue
        try:
            value = card.value
        except Exception:  # unparsable card in a foreign file: skip it, keep the rest
            continue
        if isinstance(value, (str, int, float, bool)):
            out[key] = value
    return out


def load_raw(path: str | os.PathLike) -> dict[str, Any]:
    """Columns, units and headers of a spectrum file (no unit handling yet).

    Reads the headers and the 1D table only (:mod:`campfire.io.fitsbytes`); a layout that
    reader leaves to astropy (scaled or vector columns, unusual cards) is read with astropy.
    """
    try:
        return _load_raw_scan(path)
    except Unsupported:
        pass
    with open_fits(path) as hdul:
        return _raw_from(hdul, path)


_TABLES = {"SPEC1D": ("wave", "flux", "err"), "EXTRACT1D": ("WAVELENGTH", "FLUX", "FLUX_ERROR")}
_OPTIONAL = ("flam", "flam_err", "count")


def _pick_columns(path, ext: str, names: list[str]) -> dict[str, str]:
    """``{key: column name}`` of the spectrum's columns in a table with columns ``names``."""
    lower = {}
    for name in names:
        lower.setdefault(name.lower(), name)
    wcol, fcol, ecol = _TABLES[ext]
    missing = [c for c in (wcol, fcol, ecol) if c.lower() not in lower]
    if missing:
        raise FileFormatError(
            f"{path}: {ext} table lacks column(s) {', '.join(missing)}; has {', '.join(names)}; expected {EXPECTED}"
        )
    picked = {key: lower[c.lower()] for key, c in (("wave", wcol), ("flux", fcol), ("err", ecol))}
    picked.update({opt: lower[opt] for opt in _OPTIONAL if opt in lower})
    return picked


def _scanned_header(raw: bytes) -> dict[str, Any]:
    try:
        return parse_header(raw)
    except Unsupported:  # a card form the small parser leaves to astropy
        from astropy.io import fits

        return _header_dict(fits.Header.fromstring(raw.decode("ascii")))


def _load_raw_scan(path) -> dict[str, Any]:
    """:func:`load_raw` through :mod:`campfire.io.fitsbytes` (raises Unsupported to hand over to astropy)."""
    try:
        source = FileSource(path)
    except FileNotFoundError as err:
        raise NotFoundError(f"no such file: {path}") from err
    with source:
        try:
            hdus = scan_hdus(source)
        except FileFormatError as err:
            raise FileFormatError(f"{path}: {err}; expected {EXPECTED}") from err
        by_name: dict[str, Any] = {}
        for hdu in hdus:
            by_name.setdefault(hdu.name, hdu)
        for ext in _TABLES:
            hdu = by_name.get(ext)
            if hdu is None:
                continue
            if hdu.xtension != "BINTABLE":
                if hdu.xtension == "TABLE" or hdu.index == 0:
                    raise FileFormatError(f"{path}: {ext} is not a table; expected {EXPECTED}")
                raise Unsupported(f"{ext} is a {hdu.xtension} extension")
            with np.errstate(all="ignore"):
                arrays, units, _ = read_table_columns(source, hdu, lambda names: _pick_columns(path, ext, names))
            if not len(arrays["wave"]):
                raise FileFormatError(f"{path}: {ext} table is empty")
            return {
                "path": str(path),
                "format": ext,
                "primary": _scanned_header(hdus[0].header),
                "ext_header": _scanned_header(hdu.header),
                "arrays": arrays,
                "units": units,
            }
    names = [h.name for h in hdus]
    if "SCI" in names and "WAVELENGTH" in names:
        raise FileFormatError(
            f"{path}: this is an unrectified JWST pipeline slitlet (SCI + WAVELENGTH images), "
            f"not an extracted spectrum; expected {EXPECTED}"
        )
    raise FileFormatError(f"{path}: no SPEC1D or EXTRACT1D extension (has {', '.join(names)}); expected {EXPECTED}")


def _raw_from(hdul: fits.HDUList, path) -> dict[str, Any]:
    """:func:`load_raw` of an open file."""
    from astropy.io import fits

    names = [h.name.upper() for h in hdul]
    primary = _header_dict(hdul[0].header)
    for ext, (wcol, fcol, ecol) in {
        "SPEC1D": ("wave", "flux", "err"),
        "EXTRACT1D": ("WAVELENGTH", "FLUX", "FLUX_ERROR"),
    }.items():
        if ext not in names:
            continue
        hdu = hdul[ext]
        if not isinstance(hdu, fits.BinTableHDU):
            raise FileFormatError(f"{path}: {ext} is not a table; expected {EXPECTED}")
        try:
            cols = {c.name.lower(): c for c in hdu.columns}
            missing = [c for c in (wcol, fcol, ecol) if c.lower() not in cols]
            if missing:
                raise FileFormatError(
                    f"{path}: {ext} table lacks column(s) {', '.join(missing)}; has "
                    f"{', '.join(c.name for c in hdu.columns)}; expected {EXPECTED}"
                )
            data = hdu.data
            if data is None or len(data) == 0:
                raise FileFormatError(f"{path}: {ext} table is empty")
            arrays = {
                key: np.array(data[cols[c.lower()].name], dtype=float)
                for key, c in (("wave", wcol), ("flux", fcol), ("err", ecol))
            }
            units = {
                key: cols[c.lower()].unit
                for key, c in (("wave", wcol), ("flux", fcol), ("err", ecol))
            }
            for opt in ("flam", "flam_err", "count"):
                if opt in cols:
                    arrays[opt] = np.array(data[cols[opt].name], dtype=float)
                    units[opt] = cols[opt].unit
        except FileFormatError:
            raise
        except Exception as err:  # truncated or corrupt table data
            raise FileFormatError(f"{path}: cannot read the {ext} table ({err})") from err
        return {
            "path": str(path),
            "format": ext,
            "primary": primary,
            "ext_header": _header_dict(hdu.header),
            "arrays": arrays,
            "units": units,
        }
    if "SCI" in names and "WAVELENGTH" in names:
        raise FileFormatError(
            f"{path}: this is an unrectified JWST pipeline slitlet (SCI + WAVELENGTH images), "
            f"not an extracted spectrum; expected {EXPECTED}"
        )
    raise FileFormatError(f"{path}: no SPEC1D or EXTRACT1D extension (has {', '.join(names)}); expected {EXPECTED}")


_UNIT_ALIASES = {"microjansky": "uJy", "ujy": "uJy", "mjy": "mJy", "jy": "Jy", "njy": "nJy", "micron": "um",
                 "microns": "um"}


def _unit_text(text, fallback, what: str, path: str) -> str:
    text = (text or fallback or "").strip()
    if not text:
        raise FileFormatError(f"{path}: the {what} column has no unit (TUNIT) and the header no BUNIT")
    return _UNIT_ALIASES.get(text.lower(), text)


def _unit(text: str, what: str, path: str):
    import astropy.units as u

    try:
        return u.Unit(text)
    except ValueError as err:
        raise FileFormatError(f"{path}: unknown {what} unit {text!r}") from err


def _to_um(values: np.ndarray, unit: str, path: str) -> np.ndarray:
    if unit == "um":  # the pipeline's own unit: nothing to convert (astropy.units is slow to start)
        return values
    import astropy.units as u

    unit = _unit(unit, "wavelength", path)
    try:
        return (values * unit).to(u.um).value
    except u.UnitConversionError as err:
        raise FileFormatError(f"{path}: wavelength unit {unit} is not a length") from err


def _to_ujy(values: np.ndarray, unit: str, wave_um: np.ndarray, what: str, path: str) -> np.ndarray:
    if unit == "uJy":
        return values
    import astropy.units as u

    unit = _unit(unit, what, path)
    try:
        return (values * unit).to(u.uJy, equivalencies=u.spectral_density(wave_um * u.um)).value
    except u.UnitConversionError as err:
        raise FileFormatError(f"{path}: flux unit {unit} is not a flux density") from err


def decode_spectrum(raw: dict[str, Any]) -> dict[str, Any]:
    """Pure: apply units (trusting TUNIT over BUNIT), mark bad pixels NaN, merge headers.

    Parameters
    ----------
    raw : dict
        What :func:`load_raw` returns.

    Returns
    -------
    dict
        The spectrum's fields (``wavelength`` [μm], ``fnu`` / ``fnu_err`` [μJy], NaN for
        bad pixels; ``spectrum_id``, ``grating``, ``filter``, ``object_id``, ``header``,
        ``fits_path``, ``count``, ``meta``): the keyword arguments of ``SpectrumData``.

    Raises
    ------
    FileFormatError
        A missing or unknown unit, or one that is not a length / flux density.
    """
    path = raw["path"]
    arrays, units = raw["arrays"], raw["units"]
    header = dict(raw["ext_header"])
    header.update(raw["primary"])  # primary keys win
    wave = _to_um(arrays["wave"], _unit_text(units["wave"], "um", "wavelength", path), path)
    fallback = raw["ext_header"].get("BUNIT") or raw["primary"].get("BUNIT")
    norm = (header.get("NORMLO"), header.get("NORMHI"))
    meta: dict[str, Any] = {"rest_frame": True} if header.get("RESTFRM") else {}
    if None not in norm and not (units["flux"] or "").strip():
        # a normalised spectrum or stack: dimensionless (TUNIT ''), f_ν / median f_ν in NORMLO–NORMHI
        fnu, err = np.asarray(arrays["flux"], float), np.asarray(arrays["err"], float)
        meta["norm_window"] = [float(norm[0]), float(norm[1])]
    else:
        flux_unit = _unit_text(units["flux"], fallback, "flux", path)
        err_unit = _unit_text(units["err"], flux_unit, "error", path)
        fnu = _to_ujy(arrays["flux"], flux_unit, wave, "flux", path)
        err = _to_ujy(arrays["err"], err_unit, wave, "error", path)
    bad = ~np.isfinite(fnu) | ~np.isfinite(err) | (err <= 0) | ~np.isfinite(wave)
    fnu = np.where(bad, np.nan, fnu)
    err = np.where(bad, np.nan, err)
    count = arrays.get("count")  # stacks: inputs per pixel
    if np.any(np.diff(wave[np.isfinite(wave)]) <= 0):
        order = np.argsort(wave)
        wave, fnu, err = wave[order], fnu[order], err[order]
        count = None if count is None else count[order]
    stem = pathlib.PurePath(str(path)).name
    for suffix in (".fits", ".spec", "_x1d"):
        stem = stem.removesuffix(suffix)
    grating = str(header.get("GRATING", "") or "").upper()
    filt = str(header.get("FILTER", "") or "").upper()
    exptime = header.get("EXPTIME", header.get("EFFEXPTM"))
    if exptime is not None and "EXPTIME" not in header:
        header["EXPTIME"] = exptime
    return {
        "wavelength": wave,
        "fnu": fnu,
        "fnu_err": err,
        "spectrum_id": str(header.get("SPECID") or stem),
        "grating": grating,
        "filter": filt or None,
        "object_id": header.get("OBJID"),
        "header": header,
        "fits_path": None if _is_url(path) else str(path),
        "count": count,
        "meta": meta,
    }


def read_spectrum_record(path: str | os.PathLike) -> dict[str, Any]:
    """Read a spectrum file into its decoded fields (μm, μJy, NaN for bad pixels).

    ``SpectrumData.from_fits(path)`` is ``SpectrumData.from_record(read_spectrum_record(path))``.

    Parameters
    ----------
    path : str or os.PathLike
        A local path or an fsspec URL of a ``*.spec.fits`` (msaexp / DJA) or JWST ``x1d`` file.

    Returns
    -------
    dict
        See :func:`decode_spectrum`.

    Raises
    ------
    FileFormatError
        Not a readable spectrum file (every failure of a corrupt file ends here).
    NotFoundError
        No such file.

    Examples
    --------
    >>> rec = read_spectrum_record('/path/to/file.spec.fits')  # doctest: +SKIP
    >>> rec['wavelength'][:3], rec['grating']  # doctest: +SKIP
    """
    with _file_errors(path, "spectrum"):
        return decode_spectrum(load_raw(path))


def read_spectrum_2d(path: str | os.PathLike) -> dict[str, Any]:
    """The structure of ``get_spectrum_data``: 1D arrays, 2D S/N = SCI·√WHT and the profile."""
    return read_spectrum_products(path, fit=False)[0]


def read_spectrum_products(path: str | os.PathLike, fit: bool = True) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """:func:`read_spectrum_2d` and :func:`read_redshift_fit` of one file, opened once.

    Returns
    -------
    (dict, dict or None)
        The ``get_spectrum_data`` structure, and the ``get_redshift_fit_data`` one (None
        when ``fit`` is False or neither the file nor its side file
        (:func:`redshift_fit_side_path`) has a ZFIT extension).
    """
    with _file_errors(path, "spectrum"), open_fits(path) as hdul:
        spec = decode_spectrum(_raw_from(hdul, path))
        with _file_errors(path, "the 2D spectrum"):
            data = _spectrum_2d(hdul, spec, path)
        if not fit:
            return data, None
        if "ZFIT" in [h.name.upper() for h in hdul]:
            with _file_errors(path, "the redshift fit"):
                return data, _redshift_fit(hdul)
    side = redshift_fit_side_path(path)
    if side != os.fspath(path) and _exists(side):
        return data, read_redshift_fit(side)
    return data, None


def _spectrum_2d(hdul: fits.HDUList, spec: dict[str, Any], path) -> dict[str, Any]:
    names = [h.name.upper() for h in hdul]
    if "SCI" not in names or "WHT" not in names:
        raise FileFormatError(f"{path}: no SCI/WHT 2D extensions for the 2D spectrum")
    sci = np.array(hdul["SCI"].data, dtype=float)
    wht = np.array(hdul["WHT"].data, dtype=float)
    if sci.ndim != 2 or wht.shape != sci.shape or 0 in sci.shape:
        raise FileFormatError(
            f"{path}: SCI and WHT must be non-empty 2D images of one shape, got {sci.shape} and {wht.shape}"
        )
    with np.errstate(invalid="ignore"):
        snr = sci * np.sqrt(np.where(wht > 0, wht, np.nan))
    if "PROF1D" in names:
        prof = hdul["PROF1D"].data
        pix = np.array(prof["pix"], dtype=float)
        profile = np.array(prof["profile"], dtype=float)
        pfit = np.array(prof["pfit"], dtype=float)
    else:
        pix = np.arange(sci.shape[0], dtype=float)
        profile = np.nansum(sci, axis=1)
        pfit = np.full_like(profile, np.nan)
    return {
        "wave": spec["wavelength"],
        "fnu": spec["fnu"],
        "fnu_err": spec["fnu_err"],
        "snr_2d": snr,
        "n_spatial": int(sci.shape[0]),
        "n_wave": int(sci.shape[1]),
        "profile": profile,
        "profile_fit": pfit,
        "profile_pix": pix,
    }


def redshift_fit_side_path(path: str | os.PathLike) -> str:
    """The side file that holds the redshift fit of a spectrum file that cannot carry it.

    An archive that links to (or serves in place) files it must not modify keeps each
    fit beside the file: ``x.spec.fits`` → ``x.zfit.fits`` (other names get
    ``.zfit.fits`` appended). :func:`read_redshift_fit` looks there when the file has
    no ZFIT extension.

    Examples
    --------
    >>> redshift_fit_side_path('/a/b/x_prism-clear_1_2.spec.fits')
    '/a/b/x_prism-clear_1_2.zfit.fits'
    """
    text = os.fspath(path)
    stem = text[: -len(".spec.fits")] if text.endswith(".spec.fits") else text
    return stem + ".zfit.fits"


def _exists(path: str) -> bool:
    if _is_url(path):
        import fsspec

        fs, inner = fsspec.core.url_to_fs(path)
        return fs.exists(inner)
    return os.path.exists(path)


def read_redshift_fit(path: str | os.PathLike) -> dict[str, Any]:
    """The structure of ``get_redshift_fit_data`` from the ZFIT / ZMODEL extensions.

    The extensions are read from the spectrum file, or from its side file
    (:func:`redshift_fit_side_path`) when the file has none.
    """
    with _file_errors(path, "the redshift fit"), open_fits(path) as hdul:
        if "ZFIT" not in [h.name.upper() for h in hdul]:
            side = redshift_fit_side_path(path)
            if side != os.fspath(path) and _exists(side):
                return read_redshift_fit(side)
            raise NotFoundError(f"{path}: no redshift fit (ZFIT extension) in this file")
        return _redshift_fit(hdul)


def _redshift_fit(hdul: fits.HDUList) -> dict[str, Any]:
    names = [h.name.upper() for h in hdul]
    zf = hdul["ZFIT"]
    out = {
        "redshift": float(zf.header["REDSHIFT"]),
        "chi2_min": float(zf.header["CHI2MIN"]),
        "confidence": float(zf.header["CONFID"]),
        "z_grid": np.array(zf.data["z"], dtype=float),
        "chi2_grid": np.array(zf.data["chi2"], dtype=float),
        # the 68% interval (NaN in fits written before it was recorded)
        "redshift_lo": float(zf.header.get("REDSHLO", np.nan)),
        "redshift_hi": float(zf.header.get("REDSHHI", np.nan)),
    }
    if "ZMODEL" in names:
        out["model_wave"] = np.array(hdul["ZMODEL"].data["wave"], dtype=float)
        out["model_fnu"] = np.array(hdul["ZMODEL"].data["fnu"], dtype=float)
    else:
        out["model_wave"] = np.array([])
        out["model_fnu"] = np.array([])
    return out


def _col(name, array, unit=None, fmt="D"):
    from astropy.io import fits

    return fits.Column(name=name, format=fmt, array=np.asarray(array, dtype=float), unit=unit)


def auto_redshift_cards(fit: dict[str, Any] | None) -> dict[str, float | None]:
    """The primary-header cards of a spectrum's automatic redshift: ZAUTO, ZAUTOLO, ZAUTOHI, ZCONF.

    The redshift, its 68% interval and its confidence (``fit_redshift``'s ``redshift``,
    ``redshift_lo``, ``redshift_hi``, ``confidence``); None for each without a fit
    (a writer skips None cards).

    Examples
    --------
    >>> auto_redshift_cards({'redshift': 4.2333, 'redshift_lo': 4.2324, 'redshift_hi': 4.2342, 'confidence': 1.0})
    {'ZAUTO': 4.2333, 'ZAUTOLO': 4.2324, 'ZAUTOHI': 4.2342, 'ZCONF': 1.0}
    >>> auto_redshift_cards(None)['ZAUTO'] is None
    True
    """
    if fit is None:
        return dict.fromkeys(("ZAUTO", "ZAUTOLO", "ZAUTOHI", "ZCONF"))
    return {"ZAUTO": round(float(fit["redshift"]), 5), "ZAUTOLO": round(float(fit["redshift_lo"]), 5),
            "ZAUTOHI": round(float(fit["redshift_hi"]), 5), "ZCONF": round(float(fit["confidence"]), 4)}


def redshift_fit_hdus(fit: dict[str, Any]) -> list[fits.BinTableHDU]:
    """The ZFIT (χ²(z) grid; REDSHIFT, CHI2MIN, CONFID) and ZMODEL (best model) extensions of a fit.

    Parameters
    ----------
    fit : dict
        What :func:`campfire.tasks.redshift.fit_redshift` returns (``redshift``,
        ``chi2_min``, ``confidence``, ``z_grid``, ``chi2_grid``, optional ``model_wave``
        [μm] / ``model_fnu`` [μJy]).

    Returns
    -------
    list of BinTableHDU
        ZFIT, and ZMODEL when the fit has a model: what :func:`read_redshift_fit` reads.
    """
    from astropy.io import fits

    zhdu = fits.BinTableHDU.from_columns([_col("z", fit["z_grid"]), _col("chi2", fit["chi2_grid"])], name="ZFIT")
    zhdu.header["REDSHIFT"] = float(fit["redshift"])
    zhdu.header["CHI2MIN"] = float(fit["chi2_min"])
    zhdu.header["CONFID"] = float(fit["confidence"])
    if "redshift_lo" in fit:
        zhdu.header["REDSHLO"] = (float(fit["redshift_lo"]), "68% interval: 16th pct of p(z)")
        zhdu.header["REDSHHI"] = (float(fit["redshift_hi"]), "68% interval: 84th pct of p(z)")
    hdus = [zhdu]
    if len(fit.get("model_wave", ())):
        hdus.append(
            fits.BinTableHDU.from_columns(
                [_col("wave", fit["model_wave"], "um"), _col("fnu", fit["model_fnu"], "uJy")], name="ZMODEL"
            )
        )
    return hdus


def redshift_fit_bytes(fit: dict[str, Any]) -> bytes:
    """The bytes of :func:`redshift_fit_hdus` (ZFIT, and ZMODEL when the fit has a model), written
    without astropy (:mod:`campfire.io.fitsbytes`): the same cards and values.

    Examples
    --------
    >>> import numpy as np
    >>> b = redshift_fit_bytes({'redshift': 1.5, 'chi2_min': 10.0, 'confidence': 0.9,
    ...                         'z_grid': np.array([1.0, 2.0]), 'chi2_grid': np.array([12.0, 11.0])})
    >>> len(b) % 2880, b[:20]
    (0, b"XTENSION= 'BINTABLE'")
    """
    items = {"REDSHIFT": float(fit["redshift"]), "CHI2MIN": float(fit["chi2_min"]), "CONFID": float(fit["confidence"])}
    if "redshift_lo" in fit:
        items["REDSHLO"] = (float(fit["redshift_lo"]), "68% interval: 16th pct of p(z)")
        items["REDSHHI"] = (float(fit["redshift_hi"]), "68% interval: 84th pct of p(z)")
    out = bintable_hdu("ZFIT", [("z", fit["z_grid"], None), ("chi2", fit["chi2_grid"], None)], items)
    if len(fit.get("model_wave", ())):
        out += bintable_hdu("ZMODEL", [("wave", fit["model_wave"], "um"), ("fnu", fit["model_fnu"], "uJy")])
    return out


def write_spectrum_file(
    path: str | os.PathLike,
    *,
    wave,
    flux,
    err,
    header: dict[str, Any] | None = None,
    sci=None,
    wht=None,
    profile=None,
    prof1d: dict[str, Any] | None = None,
    zfit: dict[str, Any] | None = None,
    extra_columns: dict[str, Any] | None = None,
    overwrite: bool = False,
    flux_unit: str = "uJy",
) -> str:
    """Write the pipeline format. Deterministic: the same inputs give identical bytes.

    ``header`` goes into the primary HDU (SPECID, OBJID, TARGID, GRATING, FILTER,
    EXPTIME, RA, DEC, REDVER, ZAUTO ...) and the grating keys into SPEC1D too. The file
    is written to a temporary name and renamed, so a reader never sees half a file.
    """
    header = dict(header or {})
    cols = [("wave", wave, "um"), ("flux", flux, flux_unit or ""), ("err", err, flux_unit or "")]
    for name, arr in (extra_columns or {}).items():
        cols.append((name, arr, "uJy" if name in ("sky",) else None))
    table_keys = {k: header[k] for k in ("NORMLO", "NORMHI", "RESTFRM", "GRATING", "FILTER", "SRCNAME", "SOURCEID",
                                         "EXPTIME") if k in header}
    parts = [primary_hdu(header), bintable_hdu("SPEC1D", cols, table_keys)]
    for name, img in (("SCI", sci), ("WHT", wht), ("PROFILE", profile)):
        if img is not None:
            parts.append(float32_image_hdu(name, img, {"BUNIT": "microJansky"}))
    if prof1d is not None:
        parts.append(bintable_hdu("PROF1D", [("pix", prof1d["pix"], None), ("profile", prof1d["profile"], None),
                                             ("pfit", prof1d["pfit"], None)]))
    if zfit is not None:
        parts.append(redshift_fit_bytes(zfit))
    return write_file_bytes(b"".join(parts), path, overwrite=overwrite)


def write_hdulist(hdul: fits.HDUList, path: str | os.PathLike, *, overwrite: bool = False) -> str:
    """Write ``hdul`` to a local path or an fsspec URL (see :func:`write_file_bytes`)."""
    buf = io.BytesIO()
    hdul.writeto(buf)
    return write_file_bytes(buf.getvalue(), path, overwrite=overwrite)


def write_file_bytes(data: bytes, path: str | os.PathLike, *, overwrite: bool = False) -> str:
    """Write a file's bytes to a local path (a temporary name, then renamed: a reader never
    sees half a file) or an fsspec URL."""
    if _is_url(path):
        import fsspec

        with fsspec.open(path, "wb") as f:
            f.write(data)
        return str(path)
    path = pathlib.Path(path)
    if path.exists() and not overwrite:
        raise CampfireError(f"{path} exists; pass overwrite=True to replace it")
    write_atomic(path, data)
    return str(path)


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a local ``path`` atomically, replacing what is there: to a temporary
    name beside it (unique per process and thread), then renamed into place, so a reader
    never sees half a file.

    Parameters
    ----------
    path : str or os.PathLike
        A local path; missing parent folders are made.
    data : bytes

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / 'sub' / 'x.bin'
    >>> write_atomic(p, b'abc'); p.read_bytes(), sorted(q.name for q in p.parent.iterdir())
    (b'abc', ['x.bin'])
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# keywords that describe the HDU they came from (an input's table), not the spectrum
_STRUCTURAL = re.compile(
    r"^(SIMPLE|BITPIX|NAXIS\d*|EXTEND|XTENSION|PCOUNT|GCOUNT|TFIELDS|T(TYPE|FORM|UNIT|DIM|NULL|SCAL|ZERO|DISP)\d+"
    r"|EXTNAME|EXTVER|CHECKSUM|DATASUM|BUNIT|END)$"
)


def write_spectrum(path: str | os.PathLike, spec, overwrite: bool = False) -> str:
    """Write a spectrum (a ``SpectrumData``: a stack, a calibrated spectrum) in the pipeline format.

    ``spec`` needs the ``SpectrumData`` attributes (``wavelength``, ``fnu``, ``fnu_err``,
    ``header``, ``spectrum_id``, ``grating``, ``object_id``, ``filter``, ``count``,
    ``rest_frame``); ``SpectrumData.to_fits`` calls this.
    """
    return write_file_bytes(spectrum_file_bytes(spec), path, overwrite=overwrite)


def spectrum_file_bytes(spec, extra_hdus: Sequence[bytes] = ()) -> bytes:
    """The bytes :func:`write_spectrum` writes: a primary HDU with the spectrum's keywords and
    the SPEC1D table (wave [um], flux, err [uJy], count for stacks), then ``extra_hdus``
    (:func:`campfire.io.fitsbytes.bytes_image_hdu` ...).

    Written without astropy (:mod:`campfire.io.fitsbytes`, ≈ 20× faster for these two
    HDUs); astropy reads the result with the same keywords and values.
    """
    header = {k: v for k, v in spec.header.items() if len(k) <= 8 and not _STRUCTURAL.match(k)}
    header.update(SPECID=spec.spectrum_id, GRATING=spec.grating or "")
    if spec.object_id:
        header["OBJID"] = spec.object_id
    if spec.filter:
        header["FILTER"] = spec.filter
    if spec.rest_frame:
        header["RESTFRM"] = (True, "wavelengths are rest-frame")
    window = norm_window_of(spec)
    if window:
        frame = "rest-frame " if spec.rest_frame else ""
        header["NORMLO"] = (window[0], f"[um] {frame}window where median f_nu = 1")
        header["NORMHI"] = (window[1], "[um] its upper end (flux is dimensionless)")
    flux_unit = fnu_unit_of(spec)
    columns = [("wave", spec.wavelength, "um"), ("flux", spec.fnu, flux_unit), ("err", spec.fnu_err, flux_unit)]
    if spec.count is not None:
        columns.append(("count", spec.count, None))
    table_keys = {k: header[k] for k in ("NORMLO", "NORMHI", "RESTFRM", "GRATING", "FILTER", "SRCNAME", "SOURCEID",
                                         "EXPTIME") if k in header}
    return primary_hdu(header) + bintable_hdu("SPEC1D", columns, table_keys) + b"".join(extra_hdus)
