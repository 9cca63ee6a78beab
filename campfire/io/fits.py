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
import warnings
from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits

from campfire.errors import CampfireError, FileFormatError, NotFoundError

__all__ = [
    "open_fits",
    "load_raw",
    "decode_spectrum",
    "read_spectrum_record",
    "read_spectrum_2d",
    "read_redshift_fit",
    "write_spectrum",
    "write_spectrum_file",
]

EXPECTED = (
    "a 1D extracted spectrum: a SPEC1D table with wave [um], flux and err [uJy] "
    "(msaexp / DJA format) or a JWST pipeline x1d EXTRACT1D table"
)
_SKIP_CARDS = {"COMMENT", "HISTORY", ""}


def _is_url(path) -> bool:
    return isinstance(path, str) and "://" in path


_MAX_AXES = 999  # the FITS standard's bound on NAXIS and TFIELDS
_BITPIX = {8, 16, 32, 64, -32, -64}


def _header_count(header: fits.Header, key: str, default: int, hi: int | None) -> int:
    value = header.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0 or (hi and value > hi):
        raise FileFormatError(f"invalid {key} = {value!r} in a header")
    return int(value)


def _check_declared_sizes(hdul: fits.HDUList, size: int) -> None:
    """Refuse headers that declare more than the file holds, before any data unit is read.

    astropy sizes its arrays — and its list of table columns — from the header, so one
    corrupt digit (NAXIS2 = 99999999999, TFIELDS = 99999999999) would make it allocate
    until the machine runs out of memory. The FITS standard gives the data size:
    |BITPIX|/8 · GCOUNT · (PCOUNT + NAXIS1 · … · NAXISn), which must fit in the file.
    """
    for i, hdu in enumerate(hdul):
        header = hdu.header
        naxis = _header_count(header, "NAXIS", 0, _MAX_AXES)
        _header_count(header, "TFIELDS", 0, _MAX_AXES)
        bitpix = header.get("BITPIX", 8)
        if bitpix not in _BITPIX:
            raise FileFormatError(f"invalid BITPIX = {bitpix!r} in HDU {i}")
        nbytes = 0
        if naxis:
            # random groups (NAXIS1 = 0, GROUPS = T) leave the first axis out
            first = 2 if header.get("GROUPS") is True and header.get("NAXIS1") == 0 else 1
            n = 1
            for axis in range(first, naxis + 1):
                n *= _header_count(header, f"NAXIS{axis}", 0, None)
            gcount = _header_count(header, "GCOUNT", 1, None)
            pcount = _header_count(header, "PCOUNT", 0, None)
            nbytes = abs(int(bitpix)) // 8 * gcount * (pcount + n)
        available = size - hdul.fileinfo(i)["datLoc"]
        if nbytes > available:
            raise FileFormatError(
                f"HDU {i} ({hdu.name}) declares {nbytes:,} bytes of data but the file holds {max(available, 0):,}: "
                "the file is truncated or its header is corrupt"
            )


_COUNT_CARD = re.compile(rb"(NAXIS|TFIELDS) *= *(-?\d+)")


def _check_axis_counts(data: bytes) -> None:
    """Refuse NAXIS / TFIELDS outside the standard's 0..999 before astropy builds an HDU.

    astropy makes a list entry per declared axis while *constructing* an HDU, before
    :func:`_check_declared_sizes` can run, so NAXIS = 99999999 would hang the reader.
    Cards start on 80-byte boundaries, which keeps data bytes from matching by chance.
    """
    for match in _COUNT_CARD.finditer(data):
        if match.start() % 80 == 0:
            value = int(match.group(2))
            if not 0 <= value <= _MAX_AXES:
                raise FileFormatError(
                    f"{match.group(1).decode()} = {value} is outside 0..{_MAX_AXES} (corrupt header)"
                )


def open_fits(path: str | os.PathLike) -> fits.HDUList:
    """Open a FITS file from a local path or fsspec URL, fully read (no memmap).

    A truncated file is an error here, not astropy's warning: a partial download
    must never pass for a spectrum. So is a header that declares more data than the
    file holds (checked before anything is allocated), and anything else astropy
    raises on a mangled file: every failure is a :class:`FileFormatError`.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if _is_url(path):
                import fsspec

                with fsspec.open(path, "rb") as f:
                    data = f.read()
            else:
                with open(os.fspath(path), "rb") as f:
                    data = f.read()
            size = len(data)
            _check_axis_counts(data)
            hdul = fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=False)
            try:
                _check_declared_sizes(hdul, size)
                for hdu in hdul:  # touch every data unit so truncation shows now
                    hdu.data
            except BaseException:
                hdul.close()
                raise
        problems = [str(w.message) for w in caught if "truncat" in str(w.message).lower()]
        if problems:
            hdul.close()
            raise FileFormatError(f"{path}: the file is truncated ({problems[0]})")
        return hdul
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
    """Columns, units and headers of a spectrum file (no unit handling yet)."""
    with open_fits(path) as hdul:
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


def _unit(text, fallback, what: str, path: str):
    text = (text or fallback or "").strip()
    if not text:
        raise FileFormatError(f"{path}: the {what} column has no unit (TUNIT) and the header no BUNIT")
    aliases = {"microjansky": "uJy", "ujy": "uJy", "mjy": "mJy", "jy": "Jy", "njy": "nJy", "micron": "um", "microns": "um"}
    text = aliases.get(text.lower(), text)
    try:
        return u.Unit(text)
    except ValueError as err:
        raise FileFormatError(f"{path}: unknown {what} unit {text!r}") from err


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
    wave_unit = _unit(units["wave"], "um", "wavelength", path)
    try:
        wave = (arrays["wave"] * wave_unit).to(u.um).value
    except u.UnitConversionError as err:
        raise FileFormatError(f"{path}: wavelength unit {wave_unit} is not a length") from err
    fallback = raw["ext_header"].get("BUNIT") or raw["primary"].get("BUNIT")
    flux_unit = _unit(units["flux"], fallback, "flux", path)
    err_unit = _unit(units["err"], str(flux_unit), "error", path)
    equiv = u.spectral_density(wave * u.um)
    try:
        fnu = (arrays["flux"] * flux_unit).to(u.uJy, equivalencies=equiv).value
        err = (arrays["err"] * err_unit).to(u.uJy, equivalencies=equiv).value
    except u.UnitConversionError as err_:
        raise FileFormatError(f"{path}: flux unit {flux_unit} is not a flux density") from err_
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
        "meta": {"rest_frame": True} if header.get("RESTFRM") else {},
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
    spec = read_spectrum_record(path)
    with _file_errors(path, "the 2D spectrum"), open_fits(path) as hdul:
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


def read_redshift_fit(path: str | os.PathLike) -> dict[str, Any]:
    """The structure of ``get_redshift_fit_data`` from the ZFIT / ZMODEL extensions."""
    with _file_errors(path, "the redshift fit"), open_fits(path) as hdul:
        names = [h.name.upper() for h in hdul]
        if "ZFIT" not in names:
            raise NotFoundError(f"{path}: no redshift fit (ZFIT extension) in this file")
        zf = hdul["ZFIT"]
        out = {
            "redshift": float(zf.header["REDSHIFT"]),
            "chi2_min": float(zf.header["CHI2MIN"]),
            "confidence": float(zf.header["CONFID"]),
            "z_grid": np.array(zf.data["z"], dtype=float),
            "chi2_grid": np.array(zf.data["chi2"], dtype=float),
        }
        if "ZMODEL" in names:
            out["model_wave"] = np.array(hdul["ZMODEL"].data["wave"], dtype=float)
            out["model_fnu"] = np.array(hdul["ZMODEL"].data["fnu"], dtype=float)
        else:
            out["model_wave"] = np.array([])
            out["model_fnu"] = np.array([])
    return out


def _col(name, array, unit=None, fmt="D"):
    return fits.Column(name=name, format=fmt, array=np.asarray(array, dtype=float), unit=unit)


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
) -> str:
    """Write the pipeline format. Deterministic: the same inputs give identical bytes.

    ``header`` goes into the primary HDU (SPECID, OBJID, TARGID, GRATING, FILTER,
    EXPTIME, RA, DEC, REDVER, ZAUTO ...) and the grating keys into SPEC1D too. The file
    is written to a temporary name and renamed, so a reader never sees half a file.
    """
    header = dict(header or {})
    primary = fits.PrimaryHDU()
    for key, value in header.items():
        primary.header[key] = value
    cols = [_col("wave", wave, "um"), _col("flux", flux, "uJy"), _col("err", err, "uJy")]
    for name, arr in (extra_columns or {}).items():
        cols.append(_col(name, arr, "uJy" if name in ("sky",) else None))
    spec1d = fits.BinTableHDU.from_columns(cols, name="SPEC1D")
    for key in ("GRATING", "FILTER", "SRCNAME", "SOURCEID", "EXPTIME"):
        if key in header:
            spec1d.header[key] = header[key]
    hdus = [primary, spec1d]
    for name, img in (("SCI", sci), ("WHT", wht), ("PROFILE", profile)):
        if img is not None:
            hdu = fits.ImageHDU(np.asarray(img, dtype=np.float32), name=name)
            hdu.header["BUNIT"] = "microJansky"
            hdus.append(hdu)
    if prof1d is not None:
        hdus.append(
            fits.BinTableHDU.from_columns(
                [_col("pix", prof1d["pix"]), _col("profile", prof1d["profile"]), _col("pfit", prof1d["pfit"])],
                name="PROF1D",
            )
        )
    if zfit is not None:
        zhdu = fits.BinTableHDU.from_columns([_col("z", zfit["z_grid"]), _col("chi2", zfit["chi2_grid"])], name="ZFIT")
        zhdu.header["REDSHIFT"] = float(zfit["redshift"])
        zhdu.header["CHI2MIN"] = float(zfit["chi2_min"])
        zhdu.header["CONFID"] = float(zfit["confidence"])
        hdus.append(zhdu)
        if len(zfit.get("model_wave", ())):
            hdus.append(
                fits.BinTableHDU.from_columns(
                    [_col("wave", zfit["model_wave"], "um"), _col("fnu", zfit["model_fnu"], "uJy")], name="ZMODEL"
                )
            )
    hdul = fits.HDUList(hdus)
    if _is_url(path):
        import fsspec

        buf = io.BytesIO()
        hdul.writeto(buf)
        with fsspec.open(path, "wb") as f:
            f.write(buf.getvalue())
        return str(path)
    path = pathlib.Path(path)
    if path.exists() and not overwrite:
        raise CampfireError(f"{path} exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        hdul.writeto(tmp, overwrite=True)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return str(path)


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
    header = {k: v for k, v in spec.header.items() if len(k) <= 8 and not _STRUCTURAL.match(k)}
    header.update(SPECID=spec.spectrum_id, GRATING=spec.grating or "")
    if spec.object_id:
        header["OBJID"] = spec.object_id
    if spec.filter:
        header["FILTER"] = spec.filter
    if spec.rest_frame:
        header["RESTFRM"] = (True, "wavelengths are rest-frame")
    extra = {"count": spec.count} if spec.count is not None else None
    return write_spectrum_file(
        path, wave=spec.wavelength, flux=spec.fnu, err=spec.fnu_err, header=header,
        extra_columns=extra, overwrite=overwrite,
    )
