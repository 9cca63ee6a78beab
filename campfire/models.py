"""The data model: Object → SpectrumCollection → Spectrum → SpectrumData, and Photometry.

Plain dataclasses with numpy arrays. They know nothing of HTTP, SQL or Dask; the
client attaches an *opener* to each :class:`Spectrum` so ``.open()`` works wherever
the row came from.
"""
from __future__ import annotations

import os
from collections import namedtuple
from dataclasses import dataclass, field, fields, replace
from dataclasses import field as _field  # Object has an attribute named 'field'
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from astropy.table import Table

from campfire.catalog.columns import SPECTRUM_COLUMN_NAMES as SPECTRUM_COLUMNS  # the columns of query_spectra
from campfire.errors import CampfireError, ValidationError
from campfire.lines import FLAM_UNIT, FNU_UNIT, WAVE_UNIT, convert_flux_units

__all__ = ["SpectrumData", "Spectrum", "SpectrumCollection", "Photometry", "Object", "BandFlux"]

BandFlux = namedtuple("BandFlux", ["flux", "flux_err", "wavelength"])


def _as_1d(name: str, value, n: int | None = None) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim != 1:
        raise ValidationError(f"{name}: expected a 1D array, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValidationError(f"{name}: expected {n} values (the length of wavelength), got {arr.shape[0]}")
    return arr


@dataclass(repr=False, eq=False)
class SpectrumData:
    """A 1D spectrum as arrays: wavelength [μm], f_ν and its error [μJy].

    ``flam``/``flam_err`` [erg/s/cm²/Å] are computed from f_ν unless the file had them.
    Stacks carry ``count`` (inputs per pixel). ``header`` is the FITS primary header
    merged with the SPEC1D header (primary keys win).

    Examples
    --------
    >>> import numpy as np
    >>> spec = SpectrumData(np.linspace(1, 2, 5), np.ones(5), np.full(5, 0.1), spectrum_id='demo', grating='PRISM')
    >>> spec
    SpectrumData(demo, PRISM, 5 pixels, 1.00-2.00 μm)
    """

    wavelength: np.ndarray
    fnu: np.ndarray
    fnu_err: np.ndarray
    spectrum_id: str = ""
    grating: str = ""
    header: dict = field(default_factory=dict)
    fits_path: str | None = None
    object_id: str | None = None
    filter: str | None = None
    count: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    flam_file: np.ndarray | None = None
    flam_err_file: np.ndarray | None = None

    fnu_units = FNU_UNIT
    flam_units = FLAM_UNIT
    wave_units = WAVE_UNIT

    def __post_init__(self):
        self.wavelength = _as_1d("wavelength", self.wavelength)
        n = self.wavelength.shape[0]
        self.fnu = _as_1d("fnu", self.fnu, n)
        self.fnu_err = _as_1d("fnu_err", self.fnu_err, n)
        if self.count is not None:
            self.count = np.asarray(self.count)
        self.header = dict(self.header or {})

    # -- derived -----------------------------------------------------------------
    @property
    def flam(self) -> np.ndarray:
        """f_λ [erg/s/cm²/Å]: from the file when it had it, else from f_ν."""
        if self.flam_file is not None:
            return self.flam_file
        return convert_flux_units(self.fnu, self.wavelength, to_unit="flam")

    @property
    def flam_err(self) -> np.ndarray:
        if self.flam_err_file is not None:
            return self.flam_err_file
        return convert_flux_units(self.fnu_err, self.wavelength, to_unit="flam")

    @property
    def valid(self) -> np.ndarray:
        """Pixels with finite flux and a positive finite error."""
        return np.isfinite(self.fnu) & np.isfinite(self.fnu_err) & (self.fnu_err > 0)

    @property
    def n_pixels(self) -> int:
        return int(self.wavelength.shape[0])

    @property
    def rest_frame(self) -> bool:
        """True when ``wavelength`` is rest-frame (``meta['rest_frame']``: ``to_rest_frame``, a
        rest-frame stack)."""
        return bool(self.meta.get("rest_frame"))

    def __len__(self) -> int:
        return self.n_pixels

    def __repr__(self) -> str:
        good = self.valid & np.isfinite(self.wavelength)
        if good.any():
            lo, hi = self.wavelength[good].min(), self.wavelength[good].max()
            rng = f"{lo:.2f}-{hi:.2f} μm"
        else:
            rng = "no valid pixels"
        if "+" in self.grating:
            grating = f"mixed: {self.grating}"  # a stack of several gratings
        else:
            grating = self.grating or ("stack" if "n_spectra" in self.meta else "?")  # n_spectra: stacks
        return f"SpectrumData({self.spectrum_id or '?'}, {grating}, {self.n_pixels} pixels, {rng})"

    def copy(self, **changes) -> "SpectrumData":
        """A copy with arrays copied and ``changes`` applied."""
        base = {
            "wavelength": self.wavelength.copy(),
            "fnu": self.fnu.copy(),
            "fnu_err": self.fnu_err.copy(),
            "header": dict(self.header),
            "meta": dict(self.meta),
            "count": None if self.count is None else self.count.copy(),
            "flam_file": None,
            "flam_err_file": None,
        }
        base.update(changes)
        return replace(self, **base)

    # -- I/O -----------------------------------------------------------------------
    @classmethod
    def from_fits(cls, path: str | os.PathLike) -> "SpectrumData":
        """Open a pipeline-format (msaexp / DJA v4) ``*.spec.fits`` or a JWST ``x1d`` file.

        Examples
        --------
        >>> spec = SpectrumData.from_fits('/path/to/file.spec.fits')  # doctest: +SKIP
        """
        from campfire.io.fits import read_spectrum

        return read_spectrum(path)

    def to_fits(self, path: str | os.PathLike, overwrite: bool = False) -> str:
        """Write the spectrum in the pipeline format (SPEC1D table) and return the path."""
        from campfire.io.fits import write_spectrum

        return write_spectrum(path, self, overwrite=overwrite)

    def to_table(self) -> Table:
        """The arrays as an astropy Table with units."""
        import astropy.units as u

        cols = {
            "wavelength": self.wavelength * u.um,
            "fnu": self.fnu * u.uJy,
            "fnu_err": self.fnu_err * u.uJy,
            "flam": self.flam * u.Unit(FLAM_UNIT),
            "flam_err": self.flam_err * u.Unit(FLAM_UNIT),
        }
        if self.count is not None:
            cols["count"] = self.count
        t = Table(cols)
        t.meta.update(spectrum_id=self.spectrum_id, grating=self.grating, object_id=self.object_id)
        return t

    def to_specutils(self):
        """A ``specutils.Spectrum1D`` (or ``Spectrum``) with uncertainty and a mask of bad pixels."""
        try:
            import specutils
        except ImportError as err:
            raise CampfireError("to_specutils needs specutils: pip install specutils") from err
        import astropy.units as u
        from astropy.nddata import StdDevUncertainty

        cls = getattr(specutils, "Spectrum", None) or specutils.Spectrum1D
        return cls(
            flux=np.nan_to_num(self.fnu) * u.uJy,
            spectral_axis=self.wavelength * u.um,
            uncertainty=StdDevUncertainty(np.nan_to_num(self.fnu_err, nan=np.inf)),
            mask=~self.valid,
            meta={"header": dict(self.header), "spectrum_id": self.spectrum_id, "grating": self.grating},
        )

    @classmethod
    def from_specutils(cls, spectrum, spectrum_id: str = "", grating: str = "") -> "SpectrumData":
        """Build from a specutils spectrum (any flux-density and spectral units)."""
        import astropy.units as u

        wave = spectrum.spectral_axis.to(u.um, equivalencies=u.spectral()).value
        flux_q = spectrum.flux
        fnu = flux_q.to(u.uJy, equivalencies=u.spectral_density(wave * u.um)).value
        if spectrum.uncertainty is not None:
            err_q = spectrum.uncertainty.represent_as(
                __import__("astropy.nddata", fromlist=["StdDevUncertainty"]).StdDevUncertainty
            ).array * flux_q.unit
            err = err_q.to(u.uJy, equivalencies=u.spectral_density(wave * u.um)).value
        else:
            err = np.full_like(fnu, np.nan)
        fnu = np.array(fnu, dtype=float)
        err = np.array(err, dtype=float)
        if spectrum.mask is not None:
            fnu[np.asarray(spectrum.mask, bool)] = np.nan
            err[np.asarray(spectrum.mask, bool)] = np.nan
        meta = dict(spectrum.meta or {})
        return cls(
            wave, fnu, err,
            spectrum_id=spectrum_id or meta.get("spectrum_id", ""),
            grating=grating or meta.get("grating", ""),
            header=meta.get("header", {}),
        )

    # -- science and plots (thin delegates to tasks / figures) ------------------
    def resample(self, new_wavelength) -> "SpectrumData":
        """Flux-conserving resampling onto ``new_wavelength`` [μm], errors propagated."""
        from campfire.tasks.resample import resample_spectrum

        return resample_spectrum(self, new_wavelength)

    def plot(self, flux_unit: str = "fnu", ax=None, redshift: float | None = None, **kwargs):
        """Quick-look matplotlib plot with error band (and line markers when ``redshift`` is given)."""
        from campfire.quicklook import plot_spectrum_data

        return plot_spectrum_data(self, flux_unit=flux_unit, ax=ax, redshift=redshift, **kwargs)


@dataclass(repr=False)
class Photometry:
    """Broadband photometry of one object as parallel arrays (μJy, pivot wavelength in μm).

    Examples
    --------
    >>> phot = Photometry(['f150w', 'f444w'], [1.0, 2.0], [0.1, 0.1], [1.50, 4.40], catalog='UVCANDELS')
    >>> phot['f444w'].flux
    2.0
    """

    bands: list[str]
    flux: np.ndarray
    flux_err: np.ndarray
    wavelength: np.ndarray
    catalog: str = ""
    photo_z: float | None = None
    photo_z_err_lo: float | None = None
    photo_z_err_hi: float | None = None
    object_id: str | None = None

    def __post_init__(self):
        self.bands = [str(b).lower() for b in self.bands]
        n = len(self.bands)
        self.flux = _as_1d("flux", self.flux, n)
        self.flux_err = _as_1d("flux_err", self.flux_err, n)
        self.wavelength = _as_1d("wavelength", self.wavelength, n)

    def __len__(self) -> int:
        return len(self.bands)

    def __getitem__(self, band: str) -> BandFlux:
        key = str(band).lower()
        if key not in self.bands:
            raise ValidationError(f"band: {band!r} is not in this photometry; bands: {', '.join(self.bands)}")
        i = self.bands.index(key)
        return BandFlux(float(self.flux[i]), float(self.flux_err[i]), float(self.wavelength[i]))

    def __contains__(self, band: str) -> bool:
        return str(band).lower() in self.bands

    def to_table(self) -> Table:
        import astropy.units as u

        t = Table(
            {
                "band": list(self.bands),
                "flux": self.flux * u.uJy,
                "flux_err": self.flux_err * u.uJy,
                "wavelength": self.wavelength * u.um,
            }
        )
        t.meta.update(catalog=self.catalog, photo_z=self.photo_z, object_id=self.object_id)
        return t

    def __repr__(self) -> str:
        pz = f", photo_z={self.photo_z:.2f}" if self.photo_z is not None else ""
        return f"Photometry({len(self)} bands, {self.catalog or '?'}{pz})"


@dataclass(repr=False)
class Spectrum:
    """One catalog row plus an attached opener. ``.open()`` (or ``.data``) loads the arrays."""

    spectrum_id: str
    object_id: str = ""
    target_id: str = ""
    grating: str = ""
    filter: str = ""
    observation: str = ""
    program: str = ""
    fits_path: str = ""
    signal_to_noise: float = float("nan")
    exposure_time: float = float("nan")
    reduction_version: str = ""
    redshift_auto: float = float("nan")
    dq_flags: int = 0
    local_path: str = ""
    file_hash: str = ""
    file_size: int = 0
    _opener: Callable[["Spectrum"], SpectrumData] | None = field(default=None, compare=False)
    _data: SpectrumData | None = field(default=None, compare=False)

    @classmethod
    def from_row(cls, row: dict, opener=None) -> "Spectrum":
        names = {f.name for f in fields(cls)} - {"_opener", "_data"}
        kwargs = {k: row[k] for k in names if k in row and row[k] is not None}
        return cls(**kwargs, _opener=opener)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in SPECTRUM_COLUMNS}

    @property
    def downloaded(self) -> bool:
        """True when the FITS file is on local disk."""
        return bool(self.local_path) and os.path.exists(self.local_path)

    def open(self) -> SpectrumData:
        """Load the FITS arrays (local file first, else through the client's API fallback)."""
        if self._opener is None:
            if self.downloaded:
                return SpectrumData.from_fits(self.local_path)
            raise CampfireError(
                f"spectrum {self.spectrum_id} has no local file and no client attached to fetch it"
            )
        return self._opener(self)

    @property
    def data(self) -> SpectrumData:
        """The opened SpectrumData (cached after the first access)."""
        if self._data is None:
            self._data = self.open()
        return self._data

    def plot(self, **kwargs):
        """Quick-look plot: ``s.open().plot()``."""
        return self.data.plot(**kwargs)

    def __repr__(self) -> str:
        return (
            f"Spectrum({self.spectrum_id}, {self.grating}/{self.filter}, S/N={self.signal_to_noise:.1f}, "
            f"dq_flags={self.dq_flags}, downloaded={self.downloaded})"
        )


class SpectrumCollection(Sequence):
    """Numpy-style filterable container of :class:`Spectrum`.

    Integer indexing gives a Spectrum; slices, boolean masks and integer arrays give a
    new collection; attribute names give numpy arrays.

    Examples
    --------
    >>> coll = SpectrumCollection([Spectrum('a', grating='PRISM', signal_to_noise=12.0),
    ...                            Spectrum('b', grating='G395M', signal_to_noise=3.0)])
    >>> coll[coll.grating == 'PRISM'].spectrum_id
    array(['a'], dtype='<U1')
    >>> coll.gratings
    ['G395M', 'PRISM']
    """

    _ARRAY_ATTRS = tuple(f for f in SPECTRUM_COLUMNS) + ("downloaded",)

    def __init__(self, spectra: Iterable[Spectrum] = ()):
        self._spectra = list(spectra)
        for s in self._spectra:
            if not isinstance(s, Spectrum):
                raise ValidationError(f"spectra: expected Spectrum items, got {type(s).__name__}")

    def __len__(self) -> int:
        return len(self._spectra)

    def __iter__(self) -> Iterator[Spectrum]:
        return iter(self._spectra)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self._spectra[key]
        if isinstance(key, slice):
            return SpectrumCollection(self._spectra[key])
        arr = np.asarray(key)
        if arr.dtype == bool:
            if arr.shape != (len(self),):
                raise ValidationError(f"mask: expected {len(self)} booleans, got shape {arr.shape}")
            return SpectrumCollection(s for s, keep in zip(self._spectra, arr) if keep)
        if np.issubdtype(arr.dtype, np.integer):
            return SpectrumCollection(self._spectra[i] for i in arr)
        raise ValidationError(f"index: expected int, slice, boolean mask or int array, got {key!r}")

    def __getattr__(self, name: str):
        if name in SpectrumCollection._ARRAY_ATTRS:
            values = [getattr(s, name) for s in self._spectra]
            if name in ("signal_to_noise", "exposure_time", "redshift_auto"):
                return np.array(values, dtype=float)
            if name in ("dq_flags", "file_size"):
                return np.array(values, dtype=int)
            if name == "downloaded":
                return np.array(values, dtype=bool)
            return np.array(values, dtype=str) if values else np.array([], dtype=str)
        raise AttributeError(name)

    @property
    def gratings(self) -> list[str]:
        """Sorted unique gratings."""
        return sorted({s.grating for s in self._spectra})

    def to_table(self) -> Table:
        rows = [s.as_dict() for s in self._spectra]
        return Table(rows=rows, names=SPECTRUM_COLUMNS) if rows else Table(names=SPECTRUM_COLUMNS)

    def open(self) -> list[SpectrumData]:
        return [s.open() for s in self._spectra]

    def lazy(self):
        """A lazy Dask collection over these spectra (see :mod:`campfire.graphs`)."""
        from campfire.graphs.collection import LazySpectra

        return LazySpectra.from_spectra(self._spectra)

    def __repr__(self) -> str:
        head = ", ".join(s.spectrum_id for s in self._spectra[:3])
        more = ", ..." if len(self) > 3 else ""
        return f"SpectrumCollection({len(self)} spectra: {head}{more})"

    def __reduce__(self):
        return (SpectrumCollection, (self._spectra,))


@dataclass(repr=False)
class Object:
    """One sky position with its spectra and photometry attached."""

    object_id: str
    field: str = ""
    ra: float = float("nan")
    dec: float = float("nan")
    redshift: float = float("nan")
    redshift_auto: float = float("nan")
    redshift_inspected: float = float("nan")
    redshift_quality: int = 0
    programs: list[str] = _field(default_factory=list)
    tags: list[str] = _field(default_factory=list)
    gratings: list[str] = _field(default_factory=list)
    n_spectra: int = 0
    max_snr: float = float("nan")
    max_exposure_time: float = float("nan")
    has_photometry: bool = False
    photo_z: float | None = None
    photo_z_err_lo: float | None = None
    photo_z_err_hi: float | None = None
    spectra: SpectrumCollection = _field(default_factory=SpectrumCollection)
    photometry: Photometry | None = None

    def __repr__(self) -> str:
        z = f"z={self.redshift:.4f}" if self.redshift == self.redshift else "z=?"
        lines = [f"Object({self.object_id}, {z}, {self.field})"]
        n = len(self.spectra)
        lines.append(f"  {n} spectr{'um' if n == 1 else 'a'} ({', '.join(self.spectra.gratings)})")
        lines.append(f"  tags: {', '.join(self.tags) if self.tags else '-'}")
        lines.append(f"  {self.photometry!r}" if self.photometry is not None else "  no photometry")
        return "\n".join(lines)


def as_spectrum_data(spec, name: str = "spec") -> SpectrumData:
    """``spec`` as arrays: a SpectrumData as is, a Spectrum (or anything with ``.open()``) opened."""
    if isinstance(spec, SpectrumData):
        return spec
    if callable(getattr(spec, "open", None)):
        return spec.open()
    raise ValidationError(f"{name}: expected a SpectrumData or Spectrum, got {type(spec).__name__}")


def split_list(value: Any) -> list[str]:
    """A comma-joined catalog cell ('lrd,blagn') as a list."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [v for v in str(value).split(",") if v]
