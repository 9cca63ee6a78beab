"""Results of calibration: what ``calibrate_to_photometry`` and ``calibrate_and_stack`` return.

They are data (arrays and the fitted model) with a diagnostic ``.plot()`` drawn by
:mod:`campfire.quicklook`; the science that makes them lives in
:mod:`campfire.tasks.calibrate` and :mod:`campfire.graphs.eager`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from campfire.models.photometry import Photometry
from campfire.models.spectra import SpectrumData

__all__ = ["CalibrationResult", "CalibrateAndStackResult"]


@dataclass(repr=False, eq=False)
class CalibrationResult:
    """The outcome of :func:`~campfire.calibrate_to_photometry`.

    Attributes
    ----------
    spectrum : SpectrumData
        Calibrated spectrum (f_ν and error × multiplier).
    original : SpectrumData
        The input, unchanged.
    multiplier : numpy.ndarray
        M(λ) on ``original.wavelength``.
    bands_used : list of str
        Bands that entered the fit.
    method, degree, coefficients, domain
        The fitted model: Chebyshev coefficients in x scaled over ``domain`` [μm].
    ratios : dict
        {band: (observed/synthetic ratio, its error)} of the bands used.
    rejected : dict
        {band: reason} of the candidates that were not used.
    chi2 : float
        χ² of the fit over the bands used.
    photometry : Photometry
        What the spectrum was calibrated against.

    Examples
    --------
    >>> result = calibrate_to_photometry(spec, obj.photometry)  # doctest: +SKIP
    >>> result.bands_used, result.degree                         # doctest: +SKIP
    (['f115w', 'f150w', 'f277w', 'f444w'], 3)
    """

    spectrum: SpectrumData
    original: SpectrumData
    multiplier: np.ndarray
    bands_used: list[str]
    method: str = "chebyshev"
    degree: int = 0
    coefficients: np.ndarray = field(default_factory=lambda: np.ones(1))
    domain: tuple[float, float] = (0.0, 1.0)
    ratios: dict = field(default_factory=dict)
    rejected: dict = field(default_factory=dict)
    chi2: float = float("nan")
    photometry: Photometry | None = None

    def evaluate(self, wavelength) -> np.ndarray:
        """The multiplier at any wavelength [μm] (the same Chebyshev series).

        Parameters
        ----------
        wavelength : array_like
            Wavelengths [μm].

        Returns
        -------
        numpy.ndarray

        Examples
        --------
        >>> r = CalibrationResult(None, None, None, [], coefficients=np.array([2.0]), domain=(1.0, 2.0))
        >>> r.evaluate([1.0, 1.5])
        array([2., 2.])
        """
        from numpy.polynomial import chebyshev

        lo, hi = self.domain
        x = 2.0 * (np.asarray(wavelength, float) - lo) / (hi - lo) - 1.0
        return chebyshev.chebval(x, self.coefficients)

    def plot(self, ax=None, **kwargs):
        """Diagnostic matplotlib figure (spectrum before/after, photometry, multiplier).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Draw into one axes (multiplier on a twin axis) instead of a new 2-panel figure.
        **kwargs
            ``redshift`` (line markers), ``figsize`` ...

        Returns
        -------
        matplotlib.figure.Figure

        Examples
        --------
        >>> fig = calibrate_to_photometry(spec, obj.photometry).plot()  # doctest: +SKIP
        """
        from campfire.quicklook import plot_calibration

        return plot_calibration(self, ax=ax, **kwargs)

    def __repr__(self) -> str:
        return (
            f"CalibrationResult({self.original.spectrum_id or '?'}, {self.method}, degree={self.degree}, "
            f"bands={self.bands_used}, chi2={self.chi2:.2f})"
        )


@dataclass(repr=False, eq=False)
class CalibrateAndStackResult:
    """The outcome of :func:`~campfire.calibrate_and_stack`.

    Attributes
    ----------
    spectrum : SpectrumData
        The stack.
    calibrations : list of CalibrationResult
        One per input.
    input_spectra : list of SpectrumData
        The calibrated inputs before stacking.
    photometry : Photometry
        What every input was calibrated against.

    Examples
    --------
    >>> result = calibrate_and_stack(obj.spectra, photometry=obj.photometry)  # doctest: +SKIP
    >>> result.spectrum                                                        # doctest: +SKIP
    """

    spectrum: SpectrumData
    calibrations: list[CalibrationResult]
    input_spectra: list[SpectrumData]
    photometry: Photometry | None = None

    def plot(self, **kwargs):
        """3-panel diagnostic: inputs + photometry, multipliers, calibrated inputs + stack.

        Parameters
        ----------
        **kwargs
            ``redshift`` (line markers in the bottom panel), ``figsize``.

        Returns
        -------
        matplotlib.figure.Figure

        Examples
        --------
        >>> fig = calibrate_and_stack(obj.spectra, photometry=obj.photometry).plot()  # doctest: +SKIP
        """
        from campfire.quicklook import plot_calibrate_and_stack

        return plot_calibrate_and_stack(self, **kwargs)

    def __repr__(self) -> str:
        return f"CalibrateAndStackResult({self.spectrum!r}, {len(self.calibrations)} calibrations)"
