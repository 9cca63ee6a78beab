"""Synthetic photometry as a task: the functions of :mod:`campfire.bands.synphot`.

The photon-counting AB band average is computed once, in :mod:`campfire.bands.synphot`
(beside the band curves, so the quick-look figures below the tasks can use it too);
these are the same function objects under the task-side name.
"""
from __future__ import annotations

from campfire.bands.synphot import band_coverage, band_weights, synthetic_photometry

__all__ = ["synthetic_photometry", "band_weights", "band_coverage"]
