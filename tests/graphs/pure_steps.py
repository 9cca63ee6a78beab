"""The oracle of the eager API: ``calibrate_and_stack`` composed by hand from the pure step functions.

``campfire.calibrate_and_stack`` builds and computes a graph (campfire/graphs/eager.py);
the graph tests check that it, and the per-object stacks of a LazySpectra, equal this
direct composition bit for bit.
"""
from __future__ import annotations

from campfire.models import CalibrateAndStackResult, SpectrumData
from campfire.tasks.calibrate import calibrate_to_photometry
from campfire.tasks.stack import stack_spectra


def calibrate_then_stack(spectra, photometry, *, method: str = "chebyshev", stacking_method: str = "weighted_mean",
                         object_id: str | None = None, degree: int = 3, wavelength_grid=None
                         ) -> CalibrateAndStackResult:
    """Open → ``calibrate_to_photometry`` each input → ``stack_spectra`` of the calibrated inputs."""
    inputs = [s if isinstance(s, SpectrumData) else s.open() for s in spectra]
    calibrations = [calibrate_to_photometry(s, photometry, method=method, degree=degree) for s in inputs]
    calibrated = [c.spectrum for c in calibrations]
    oid = object_id or next((s.object_id for s in inputs if s.object_id), None)
    stack = stack_spectra(calibrated, method=stacking_method, wavelength_grid=wavelength_grid, object_id=oid)
    stack.meta["calibration"] = {"method": method, "bands": sorted({b for c in calibrations for b in c.bands_used})}
    return CalibrateAndStackResult(stack, calibrations, calibrated, photometry)
