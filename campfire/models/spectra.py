"""``SpectrumData``: one 1D spectrum as arrays (wavelength [μm], f_ν and its error [μJy]).

It knows nothing of HTTP, SQL or Dask. Reading goes through :mod:`campfire.io.fits`
(file → decoded record → ``SpectrumData.from_record``); the quick-look figure is
drawn by :mod:`campfire.quicklook`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, TYPE_CHECKING

import numpy as np

from campfire.errors import CampfireError, ValidationError
from campfire.lines import FLAM_UNIT, FNU_UNIT, WAVE_UNIT, convert_flux_units

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["SpectrumData", "as_1d", "as_spectrum_data"]


def as_1d(name: str, value, n: int | None = None) -> np.ndarray:
    """``value`` as a 1D float array (of ``n`` values when given).

    Parameters
    ----------
    name : str
        The parameter name for the error message.
    value : array_like
    n : int, optional
        The required length.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValidationError
        Not 1D, or not ``n`` values.

    Examples
    --------
    >>> as_1d('flux', [1, 2])
    array([1., 2.])
    """
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

    Parameters
    ----------
    wavelength, fnu, fnu_err : array_like
        1D arrays of one length: μm, μJy, μJy (NaN marks a bad pixel).
    spectrum_id, grating : str, optional
        Identity (``grating`` is ``'A+B'`` for a stack of several gratings).
    header : dict, optional
        FITS header cards.
    fits_path : str, optional
        The local file it was read from.
    object_id, filter : str, optional
    count : array_like, optional
        Inputs per pixel (stacks).
    meta : dict, optional
        Processing notes (``rest_frame``, ``calibration``, ``method``, ``inputs`` ...).

    Raises
    ------
    ValidationError
        Arrays that are not 1D or not of the wavelength's length.

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
        self.wavelength = as_1d("wavelength", self.wavelength)
        n = self.wavelength.shape[0]
        self.fnu = as_1d("fnu", self.fnu, n)
        self.fnu_err = as_1d("fnu_err", self.fnu_err, n)
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
        """Error of f_λ [erg/s/cm²/Å]: from the file when it had it, else from ``fnu_err``."""
        if self.flam_err_file is not None:
            return self.flam_err_file
        return convert_flux_units(self.fnu_err, self.wavelength, to_unit="flam")

    @property
    def valid(self) -> np.ndarray:
        """Pixels with finite flux and a positive finite error."""
        return np.isfinite(self.fnu) & np.isfinite(self.fnu_err) & (self.fnu_err > 0)

    @property
    def n_pixels(self) -> int:
        """Number of pixels (NaN padding included)."""
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
        """A copy with arrays copied and ``changes`` applied.

        Parameters
        ----------
        **changes
            Fields to replace (``fnu=...``, ``spectrum_id=...``); f_λ from the file is
            dropped (it would no longer match f_ν).

        Returns
        -------
        SpectrumData

        Examples
        --------
        >>> import numpy as np
        >>> spec = SpectrumData(np.linspace(1, 2, 3), np.ones(3), np.ones(3), spectrum_id='a')
        >>> spec.copy(spectrum_id='b').spectrum_id
        'b'
        """
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
    def from_record(cls, record: dict[str, Any]) -> "SpectrumData":
        """A SpectrumData from decoded fields (:func:`campfire.io.fits.decode_spectrum`'s record).

        Parameters
        ----------
        record : dict
            ``wavelength``, ``fnu``, ``fnu_err`` and any other field of SpectrumData.

        Returns
        -------
        SpectrumData

        Raises
        ------
        ValidationError
            Arrays of the wrong shape.

        Examples
        --------
        >>> SpectrumData.from_record({'wavelength': [1.0, 2.0], 'fnu': [1.0, 1.0], 'fnu_err': [0.1, 0.1]})
        SpectrumData(?, ?, 2 pixels, 1.00-2.00 μm)
        """
        return cls(**record)

    @classmethod
    def from_fits(cls, path: str | os.PathLike) -> "SpectrumData":
        """Open a pipeline-format (msaexp / DJA v4) ``*.spec.fits`` or a JWST ``x1d`` file.

        Parameters
        ----------
        path : str or os.PathLike
            A local path or an fsspec URL (``memory://``, ``s3://`` ...).

        Returns
        -------
        SpectrumData
            μm and μJy whatever the file's units; bad pixels NaN.

        Raises
        ------
        FileFormatError
            Not a 1D extracted spectrum (the message says what was expected).
        NotFoundError
            No such file.

        Examples
        --------
        >>> spec = SpectrumData.from_fits('/path/to/file.spec.fits')  # doctest: +SKIP
        """
        from campfire.io.fits import read_spectrum_record  # astropy.io.fits: only when a file is read

        return cls.from_record(read_spectrum_record(path))

    def to_fits(self, path: str | os.PathLike, overwrite: bool = False) -> str:
        """Write the spectrum in the pipeline format (SPEC1D table).

        Parameters
        ----------
        path : str or os.PathLike
            Destination (a local path or an fsspec URL).
        overwrite : bool
            Replace an existing file.

        Returns
        -------
        str
            The path written.

        Raises
        ------
        CampfireError
            ``path`` exists and ``overwrite`` is False.

        Examples
        --------
        >>> spec.to_fits('stack.spec.fits', overwrite=True)  # doctest: +SKIP
        'stack.spec.fits'
        """
        from campfire.io.fits import write_spectrum

        return write_spectrum(path, self, overwrite=overwrite)

    def to_table(self) -> Table:
        """The arrays as an astropy Table with units.

        Returns
        -------
        astropy.table.Table
            ``wavelength`` [μm], ``fnu``, ``fnu_err`` [μJy], ``flam``, ``flam_err``
            [erg/s/cm²/Å] (and ``count`` for stacks); identity in ``meta``.

        Examples
        --------
        >>> import numpy as np
        >>> SpectrumData(np.linspace(1, 2, 3), np.ones(3), np.ones(3)).to_table().colnames[:3]
        ['wavelength', 'fnu', 'fnu_err']
        """
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
        from astropy.table import Table

        t = Table(cols)
        t.meta.update(spectrum_id=self.spectrum_id, grating=self.grating, object_id=self.object_id)
        return t

    def to_specutils(self):
        """A ``specutils.Spectrum1D`` (or ``Spectrum``) with uncertainty and a mask of bad pixels.

        Returns
        -------
        specutils.Spectrum or specutils.Spectrum1D

        Raises
        ------
        CampfireError
            specutils is not installed.

        Examples
        --------
        >>> s1d = spec.to_specutils()  # doctest: +SKIP
        """
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
        """Build from a specutils spectrum (any flux-density and spectral units).

        Parameters
        ----------
        spectrum : specutils.Spectrum or specutils.Spectrum1D
        spectrum_id, grating : str, optional
            Default: the spectrum's ``meta``.

        Returns
        -------
        SpectrumData
            Masked pixels become NaN.

        Examples
        --------
        >>> back = SpectrumData.from_specutils(spec.to_specutils())  # doctest: +SKIP
        """
        import astropy.units as u
        from astropy.nddata import StdDevUncertainty

        wave = spectrum.spectral_axis.to(u.um, equivalencies=u.spectral()).value
        flux_q = spectrum.flux
        fnu = flux_q.to(u.uJy, equivalencies=u.spectral_density(wave * u.um)).value
        if spectrum.uncertainty is not None:
            err_q = spectrum.uncertainty.represent_as(StdDevUncertainty).array * flux_q.unit
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

    # -- the quick-look figure ----------------------------------------------------
    def plot(self, flux_unit: str = "fnu", ax=None, redshift: float | None = None, **kwargs):
        """Quick-look matplotlib plot with error band (and line markers when ``redshift`` is given).

        Parameters
        ----------
        flux_unit : {'fnu', 'flam'}
            f_ν [μJy] or f_λ [erg/s/cm²/Å] (aliases ``'flambda'``).
        ax : matplotlib.axes.Axes, optional
            Default: ``plt.gca()``.
        redshift : float, optional
            Mark emission lines at (1 + z) λ_rest.
        **kwargs
            Passed on (``color``, ``label``, ``errors``, ``title`` ...; see
            :func:`campfire.quicklook.plot_spectrum_data`).

        Returns
        -------
        matplotlib.axes.Axes

        Raises
        ------
        ValidationError
            Unknown ``flux_unit`` or a bad ``redshift``.

        Examples
        --------
        >>> spec.plot(flux_unit='flam', redshift=3.421)  # doctest: +SKIP
        """
        from campfire.quicklook import plot_spectrum_data

        return plot_spectrum_data(self, flux_unit=flux_unit, ax=ax, redshift=redshift, **kwargs)


def as_spectrum_data(spec, name: str = "spec") -> SpectrumData:
    """``spec`` as arrays: a SpectrumData as is, a Spectrum (or anything with ``.open()``) opened.

    Parameters
    ----------
    spec : SpectrumData or Spectrum
    name : str
        The parameter name for the error message.

    Returns
    -------
    SpectrumData

    Raises
    ------
    ValidationError
        Anything else.

    Examples
    --------
    >>> import numpy as np
    >>> s = SpectrumData(np.linspace(1, 2, 3), np.ones(3), np.ones(3))
    >>> as_spectrum_data(s) is s
    True
    """
    if isinstance(spec, SpectrumData):
        return spec
    if callable(getattr(spec, "open", None)):
        return spec.open()
    raise ValidationError(f"{name}: expected a SpectrumData or Spectrum, got {type(spec).__name__}")
