"""Calibration and stacking: the public API of the reference's "Calibration and stacking".

Flux-calibrate spectra against broadband photometry and combine several spectra on a
common wavelength grid. The work is done by the pure functions of
:mod:`campfire.tasks` (``calibrate``, ``resample``, ``stack``, ``synphot``), which take
:class:`~campfire.models.SpectrumData` and plain values. This module is their edge to
the user: :func:`calibrate_to_photometry` and :func:`stack_spectra` also take
``Spectrum`` rows (opened here, through the opener the client attached), and
``normalize=True`` / a missing window mean the configured
``campfire.stack.rest-window`` (read here, when the function runs). Everything else
is re-exported as is, so ``from campfire.calibration import ...`` and
``from campfire import ...`` give the same objects.

Examples
--------
>>> from campfire.calibration import calibrate_to_photometry, stack_spectra  # doctest: +SKIP
>>> result = calibrate_to_photometry(spec, obj.photometry)                   # doctest: +SKIP
>>> stacked = stack_spectra([s.open() for s in prism], object_id=obj.object_id)  # doctest: +SKIP
"""
from __future__ import annotations

import functools

from campfire.errors import ValidationError
from campfire.graphs.eager import calibrate_and_stack  # the same graph as workflows, computed now
from campfire.models import CalibrateAndStackResult, CalibrationResult, SpectrumData, as_spectrum_data
from campfire.tasks import calibrate as _calibrate
from campfire.tasks import stack as _stack
from campfire.tasks.calibrate import CALIBRATION_METHODS, select_bands
from campfire.tasks.resample import resample_batch, resample_flux, resample_spectra, resample_spectrum
from campfire.tasks.stack import (
    STACK_METHODS,
    Partial,
    combine_partials,
    finalize_stack,
    median_chunk,
    stack_partials,
    to_rest_frame,
)
from campfire.tasks.synphot import synthetic_photometry

__all__ = [
    "calibrate_to_photometry",
    "calibrate_and_stack",
    "CalibrationResult",
    "CalibrateAndStackResult",
    "select_bands",
    "stack_spectra",
    "synthetic_photometry",
    "resample_flux",
    "resample_spectrum",
    "resample_spectra",
    "resample_batch",
    "to_rest_frame",
    "normalize_in_window",
    "Partial",
    "stack_partials",
    "combine_partials",
    "finalize_stack",
    "median_chunk",
    "CALIBRATION_METHODS",
    "STACK_METHODS",
]


# The public names take what a user has at hand (Spectrum rows, normalize=True) and hand the
# pure tasks what they take (SpectrumData, an explicit window); the docstrings are the tasks'.
@functools.wraps(_calibrate.calibrate_to_photometry)
def calibrate_to_photometry(spec, *args, **kwargs) -> CalibrationResult:
    return _calibrate.calibrate_to_photometry(as_spectrum_data(spec), *args, **kwargs)


@functools.wraps(_stack.stack_spectra)
def stack_spectra(spectra, *args, normalize=False, **kwargs) -> SpectrumData:
    if isinstance(spectra, (str, bytes)) or not hasattr(spectra, "__iter__"):
        raise ValidationError(f"spectra: expected a sequence of SpectrumData or Spectrum, got {type(spectra).__name__}")
    specs = [as_spectrum_data(s, "spectra") for s in spectra]
    if normalize is True:
        from campfire.graphs.stacking import resolve_window  # the configured window, read now

        normalize = resolve_window(None)
    return _stack.stack_spectra(specs, *args, normalize=normalize, **kwargs)


@functools.wraps(_stack.normalize_in_window)
def normalize_in_window(spec: SpectrumData, window=None) -> SpectrumData:
    from campfire.graphs.stacking import resolve_window  # the configured window, read now

    return _stack.normalize_in_window(spec, resolve_window(window))

