"""The eager API on the graph path: build the same graph, ``.compute()`` it.

``campfire.calibrate_and_stack`` (like ``Campfire.download``, :mod:`campfire.graphs.download`)
is not a second implementation: it builds the LazySpectra graph a workflow would build —
source → open → calibrate → stack — and computes it on the synchronous scheduler (a
handful of spectra: threads would only add overhead). It is the only
``calibrate_and_stack``; its steps are the pure functions of :mod:`campfire.tasks`, so
the result is bit-for-bit that of ``calibrate_to_photometry`` on each input followed by
``stack_spectra``; the tests check it.

Examples
--------
>>> from campfire import calibrate_and_stack                                    # doctest: +SKIP
>>> result = calibrate_and_stack(obj.spectra[obj.spectra.grating == 'PRISM'],  # doctest: +SKIP
...                              photometry=obj.photometry, object_id=obj.object_id)
"""
from __future__ import annotations

from typing import Sequence

from campfire.errors import ValidationError
from campfire.models import CalibrateAndStackResult, Photometry, Spectrum, SpectrumCollection, SpectrumData
from campfire.tasks.calibrate import check_photometry
from campfire.tasks.combine import check_method

__all__ = ["calibrate_and_stack", "lazy_inputs"]


def lazy_inputs(spectra, *, photometry: Photometry | None = None, errors: str = "raise"):
    """A one-batch LazySpectra of a SpectrumCollection, a list of Spectrum or of SpectrumData.

    Parameters
    ----------
    spectra : SpectrumCollection, list of Spectrum, list of SpectrumData, or one of either
    photometry : Photometry, optional
        Carried by in-memory inputs (rows get their object's from the catalog).
    errors : {'raise', 'record'}

    Returns
    -------
    LazySpectra

    Raises
    ------
    ValidationError
        Empty input, or a mix of kinds.
    """
    from campfire.graphs.collection import LazySpectra  # Dask's graph machinery: loaded on first use

    if isinstance(spectra, (SpectrumData, Spectrum)):
        spectra = [spectra]
    if not isinstance(spectra, (SpectrumCollection, list, tuple)):
        raise ValidationError(
            f"spectra: expected a SpectrumCollection, a list of Spectrum or of SpectrumData, got {type(spectra).__name__}"
        )
    items = list(spectra)
    if not items:
        raise ValidationError("spectra: nothing to calibrate and stack (empty input)")
    n = len(items)
    if all(isinstance(s, SpectrumData) for s in items):
        return LazySpectra.from_data(items, photometry=photometry, batch_size=n, errors=errors)
    if all(isinstance(s, Spectrum) for s in items):
        return LazySpectra.from_spectra(items, batch_size=n, errors=errors)
    kinds = sorted({type(s).__name__ for s in items})
    raise ValidationError(f"spectra: expected all Spectrum or all SpectrumData items, got {', '.join(kinds)}")


def calibrate_and_stack(
    spectra,
    photometry: Photometry | None = None,
    method: str = "chebyshev",
    stacking_method: str = "weighted_mean",
    object_id: str | None = None,
    *,
    bands: Sequence[str] | None = None,
    degree: int = 3,
    min_snr: float = 0.5,
    wavelength_grid=None,
):
    """Per-spectrum calibration → resample → stack, in one call (a graph computed now).

    Parameters
    ----------
    spectra : SpectrumCollection, list of Spectrum, or list of SpectrumData
        The inputs (Spectrum rows are read from their files).
    photometry : Photometry
        The photometry every input is calibrated against (``obj.photometry``).
    method : {'chebyshev', 'flat'}
        Calibration model (see ``calibrate_to_photometry``).
    stacking_method : {'weighted_mean', 'median', 'mean'}
        How the calibrated inputs are combined.
    object_id : str, optional
        Stored on the stack (default: the inputs' object).
    bands, degree, min_snr
        Passed to ``calibrate_to_photometry``.
    wavelength_grid : None, 'union' or array_like
        Stack grid [μm]; default the grid of the input with the most pixels (as the
        reference says), with a :class:`~campfire.errors.StackRangeWarning` naming the
        range other inputs cover outside it (several gratings); ``'union'`` keeps every
        input's range at the finest native sampling in each region.

    Returns
    -------
    CalibrateAndStackResult
        ``.spectrum`` (the stack), ``.calibrations``, ``.input_spectra`` (calibrated
        inputs before stacking), ``.plot()``.

    Examples
    --------
    >>> result = calibrate_and_stack(obj.spectra[obj.spectra.grating == 'PRISM'],  # doctest: +SKIP
    ...                              photometry=obj.photometry, method='chebyshev',
    ...                              stacking_method='weighted_mean', object_id=obj.object_id)
    >>> result.spectrum  # doctest: +SKIP
    """
    check_method(stacking_method)
    if photometry is None:
        raise ValidationError(
            "photometry: calibrate_and_stack needs the photometry to calibrate against (e.g. obj.photometry); "
            "use stack_spectra to stack without calibrating"
        )
    phot = check_photometry(photometry)
    lazy = lazy_inputs(spectra, errors="record")
    cal = lazy.calibrate(phot, method=method, bands=bands, degree=degree, min_snr=min_snr)
    # persisted once, so the stack step below reads the calibrated batch instead of redoing it
    import dask

    (cal,) = dask.persist(cal, scheduler="synchronous")
    items = cal.items().compute(scheduler="synchronous")
    for it in items:
        if it.failure is not None:
            raise ValidationError(
                f"spectra: cannot {it.failure.step} {it.ref.spectrum_id or 'an input'}: {it.failure.reason}"
            )
    oid = object_id or next((it.value.object_id for it in items if it.value.object_id), None) or None
    stack = cal.stack(stacking_method, by="all", grid=wavelength_grid, object_id=oid)
    spectrum = stack.compute(scheduler="synchronous")
    if not isinstance(spectrum, SpectrumData):  # a recorded failure of the stack step itself
        raise ValidationError(f"spectra: cannot stack: {getattr(spectrum, 'reason', spectrum)}")
    calibrations = [it.calibration for it in items]
    spectrum.meta["calibration"] = {"method": str(method).lower(),
                                    "bands": sorted({b for c in calibrations for b in c.bands_used})}
    return CalibrateAndStackResult(spectrum, calibrations, [it.value for it in items], phot)
