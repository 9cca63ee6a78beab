"""Calibration and stacking: the public API of the reference's "Calibration and stacking".

Flux-calibrate spectra against broadband photometry and combine several spectra on a
common wavelength grid. The work is done by the pure functions of
:mod:`campfire.tasks` (``calibrate``, ``resample``, ``stack``, ``synphot``); this module
gathers their public names so that ``from campfire.calibration import ...`` and
``from campfire import ...`` give the same objects.

Examples
--------
>>> from campfire.calibration import calibrate_to_photometry, stack_spectra  # doctest: +SKIP
>>> result = calibrate_to_photometry(spec, obj.photometry)                   # doctest: +SKIP
>>> stacked = stack_spectra([s.open() for s in prism], object_id=obj.object_id)  # doctest: +SKIP
"""
from __future__ import annotations

from campfire.graphs.eager import calibrate_and_stack  # the same graph as workflows, computed now
from campfire.tasks.calibrate import (
    CALIBRATION_METHODS,
    CalibrateAndStackResult,
    CalibrationResult,
    calibrate_to_photometry,
    select_bands,
)
from campfire.tasks.resample import resample_batch, resample_flux, resample_spectra, resample_spectrum
from campfire.tasks.stack import (
    STACK_METHODS,
    Partial,
    combine_partials,
    finalize_stack,
    median_chunk,
    normalize_in_window,
    stack_partials,
    stack_spectra,
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
