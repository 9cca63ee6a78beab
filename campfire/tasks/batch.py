"""Batches: the pure step functions applied to a *batch* of spectra at once.

A Dask task handles a batch (hundreds of spectra) so the scheduler's ~1 ms per task
stays small next to the work. A batch is a list of :class:`Item` — a spectrum's
:class:`SpectrumRef` (where it is, its object's redshift and photometry), its current
value and its history. This module composes the science functions of
:mod:`campfire.tasks` (``calibrate_to_photometry``, ``resample_spectra``,
``stack_spectra``) over such lists; it holds no science of its own, reads no files and
imports no Dask (the I/O steps of a batch — download and open — are the graph edge's,
:mod:`campfire.graphs.fetch`; population stacks are :mod:`campfire.tasks.population`).

Items carry their failure with them: with ``errors='record'`` a spectrum that cannot
be read, calibrated or resampled becomes an :class:`Item` with a :class:`Failure`
(step + reason) and later steps pass it through, so one corrupt file never stops a
batch. With ``errors='raise'`` (the default) the exception propagates unchanged.

Examples
--------
>>> import numpy as np
>>> from campfire.models import Photometry, SpectrumData
>>> spec = SpectrumData(np.linspace(1, 2, 50), np.ones(50), np.full(50, 0.1), spectrum_id='a')
>>> items = [Item(SpectrumRef('a', object_id='o1'), value=spec)]
>>> resample_items(items, grid=np.linspace(1.2, 1.8, 7))[0].value.n_pixels
7
>>> calibrate_items(items, errors='record')[0].failure.reason
'object o1 has no photometry to calibrate against'
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

from campfire.errors import CampfireError, ValidationError
from campfire.models import Photometry, SpectrumData
from campfire.tasks.calibrate import calibrate_to_photometry
from campfire.tasks.resample import resample_spectra
from campfire.tasks.stack import stack_spectra

__all__ = [
    "SpectrumRef",
    "Item",
    "Failure",
    "ERRORS",
    "check_errors",
    "each_item",
    "failure_reason",
    "calibrate_items",
    "resample_items",
    "map_items",
    "stack_object_items",
    "object_refs",
    "values_of",
    "guarded",
]

ERRORS = ("raise", "record")


@dataclass(frozen=True, eq=False)
class SpectrumRef:
    """What a task needs to fetch and process one spectrum (small, picklable).

    ``url`` is a local path or an fsspec URL (``memory://``, ``s3://``, ``file://``) of the
    FITS file, or an ``http(s)://`` URL of the archive server (then the file is
    downloaded to ``dest``, a path relative to the client's data directory). ``data`` holds an in-memory spectrum instead of a file.
    ``redshift`` and ``photometry`` are the parent object's, for calibration and
    rest-frame stacks.
    """

    spectrum_id: str
    object_id: str = ""
    grating: str = ""
    url: str = ""
    file_hash: str = ""
    file_size: int = 0
    redshift: float = float("nan")
    photometry: Photometry | None = None
    data: SpectrumData | None = None
    dest: str = ""

    def token_parts(self) -> tuple:
        """The plain values that identify this input (for deterministic graph keys).

        Returns
        -------
        tuple
            Ids, location, content hash, redshift, and the bytes of the photometry and of
            in-memory data: ``tokenize`` of it is stable across processes.

        Examples
        --------
        >>> SpectrumRef('a', object_id='o', url='x.fits').token_parts()[:3]
        ('a', 'o', 'x.fits')
        """
        phot = None
        if self.photometry is not None:
            p = self.photometry
            phot = (tuple(p.bands), p.flux.tobytes(), p.flux_err.tobytes(), p.wavelength.tobytes())
        data = None
        if self.data is not None:
            d = self.data
            data = (d.wavelength.tobytes(), d.fnu.tobytes(), d.fnu_err.tobytes(), d.spectrum_id, d.grating)
        z = None if self.redshift != self.redshift else float(self.redshift)
        return (self.spectrum_id, self.object_id, self.url, self.file_hash, z, phot, data, self.dest)

    def identity(self) -> tuple:
        """What the *content* of this input is, wherever it is read from.

        Returns
        -------
        tuple
            :meth:`token_parts` without the location when the content hash is known (a
            file downloaded since the last run is the same input).

        Examples
        --------
        >>> a = SpectrumRef('a', url='http://server/a', file_hash='ab12')
        >>> a.identity() == SpectrumRef('a', url='/data/a.fits', file_hash='ab12').identity()
        True
        """
        parts = self.token_parts()
        if self.file_hash:
            return parts[:2] + parts[3:7]
        return parts


@dataclass(frozen=True)
class Failure:
    """Why one spectrum (or object) could not be processed."""

    object_id: str
    spectrum_id: str
    step: str
    reason: str

    def __str__(self) -> str:
        who = self.spectrum_id or self.object_id
        return f"{who}: {self.step}: {self.reason}"


@dataclass(frozen=True, eq=False)
class Item:
    """One element of a batch: its reference, current value and history.

    ``value`` is a path after *download*, a :class:`SpectrumData` after *open*,
    *calibrate*, *resample* and *stack*, or whatever a ``map`` function returned.
    """

    ref: SpectrumRef
    value: Any = None
    calibration: Any = None
    failure: Failure | None = None
    inputs: tuple[str, ...] = ()
    failed_inputs: tuple[Failure, ...] = field(default=())
    info: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True unless a step failed for this element."""
        return self.failure is None


def failure_reason(err: BaseException) -> str:
    """The reason recorded in a :class:`Failure`: campfire's own message, else ``Type: message``.

    Parameters
    ----------
    err : BaseException

    Returns
    -------
    str

    Examples
    --------
    >>> failure_reason(ZeroDivisionError('division by zero'))
    'ZeroDivisionError: division by zero'
    """
    text = str(err).strip() or type(err).__name__
    return text if isinstance(err, CampfireError) else f"{type(err).__name__}: {text}"


def check_errors(errors: str) -> str:
    """``errors`` if it is ``'raise'`` or ``'record'``.

    Parameters
    ----------
    errors : str

    Returns
    -------
    str

    Raises
    ------
    ValidationError
        Any other value.

    Examples
    --------
    >>> check_errors('record')
    'record'
    """
    if errors not in ERRORS:
        raise ValidationError(f"errors: expected 'raise' or 'record', got {errors!r}")
    return errors


def each_item(items: Sequence[Item], step: str, errors: str, fn: Callable[[Item], Item]) -> list[Item]:
    """Apply ``fn`` to the good items; failures pass through (or, with ``errors='record'``, are recorded).

    Parameters
    ----------
    items : sequence of Item
    step : str
        The step name recorded in a :class:`Failure`.
    errors : {'raise', 'record'}
    fn : callable
        ``fn(item) -> item``.

    Returns
    -------
    list of Item

    Raises
    ------
    Exception
        Whatever ``fn`` raises, with ``errors='raise'``; ValidationError for a bad ``errors``.

    Examples
    --------
    >>> items = [Item(SpectrumRef('a'), value=1), Item(SpectrumRef('b'), value=0)]
    >>> out = each_item(items, 'invert', 'record', lambda it: replace(it, value=1 / it.value))
    >>> out[0].value, out[1].failure.reason
    (1.0, 'ZeroDivisionError: division by zero')
    """
    check_errors(errors)
    out = []
    for it in items:
        if it.failure is not None:
            out.append(it)
            continue
        if errors == "raise":
            out.append(fn(it))
            continue
        try:
            out.append(fn(it))
        except Exception as err:  # recorded per item; the batch goes on (issue: one bad object never stops it)
            out.append(replace(it, failure=Failure(it.ref.object_id, it.ref.spectrum_id, step, failure_reason(err))))
    return out


def calibrate_items(
    items: Sequence[Item],
    *,
    errors: str = "raise",
    photometry: Photometry | None = None,
    options: dict | None = None,
) -> list[Item]:
    """The *calibrate* step: ``calibrate_to_photometry`` per spectrum.

    Parameters
    ----------
    items : sequence of Item
        Opened spectra (``value`` a SpectrumData).
    errors : {'raise', 'record'}
    photometry : Photometry, optional
        Used for every spectrum instead of its object's own (``ref.photometry``).
    options : dict, optional
        Keyword arguments of ``calibrate_to_photometry`` (method, degree, min_snr, bands).

    Returns
    -------
    list of Item
        ``value`` the calibrated spectrum, ``calibration`` the
        :class:`~campfire.models.CalibrationResult`.

    Raises
    ------
    CampfireError
        No photometry for an object (``errors='raise'``).
    ValidationError
        What ``calibrate_to_photometry`` raises (``errors='raise'``).

    Examples
    --------
    See the module's example.
    """
    def one(it: Item) -> Item:
        phot = photometry if photometry is not None else it.ref.photometry
        if phot is None:
            raise CampfireError(f"object {it.ref.object_id or '?'} has no photometry to calibrate against")
        result = calibrate_to_photometry(it.value, phot, **(options or {}))
        return replace(it, value=result.spectrum, calibration=result)

    return each_item(items, "calibrate", errors, one)


def resample_items(
    items: Sequence[Item],
    *,
    grid: np.ndarray,
    errors: str = "raise",
    min_coverage: float | None = None,
) -> list[Item]:
    """The *resample* step: every good spectrum onto ``grid`` in one batched call.

    If the batched call fails (one spectrum with a broken grid), the batch is redone
    one spectrum at a time so only the bad one is recorded.

    Parameters
    ----------
    items : sequence of Item
        Opened spectra.
    grid : numpy.ndarray
        The output grid [μm].
    errors : {'raise', 'record'}
    min_coverage : float, optional
        Passed to ``resample_spectra``.

    Returns
    -------
    list of Item

    Raises
    ------
    ValidationError
        A spectrum that cannot be resampled (``errors='raise'``).

    Examples
    --------
    See the module's example.
    """
    check_errors(errors)
    kw = {} if min_coverage is None else {"min_coverage": min_coverage}
    good = [i for i, it in enumerate(items) if it.failure is None]
    out = list(items)
    try:
        specs = resample_spectra([items[i].value for i in good], grid, **kw)
    except Exception:
        if errors == "raise" and len(good) <= 1:
            raise
        return each_item(items, "resample", errors, lambda it: replace(it, value=resample_spectra([it.value], grid, **kw)[0]))
    for i, spec in zip(good, specs):
        out[i] = replace(items[i], value=spec)
    return out


def map_items(items: Sequence[Item], *, func: Callable[[Any], Any], errors: str = "raise", step: str = "map") -> list[Item]:
    """Apply a user function to each good ``value``.

    Parameters
    ----------
    items : sequence of Item
    func : callable
        ``func(value) -> new value``.
    errors : {'raise', 'record'}
    step : str
        The step name recorded in a :class:`Failure`.

    Returns
    -------
    list of Item

    Raises
    ------
    Exception
        Whatever ``func`` raises (``errors='raise'``).

    Examples
    --------
    >>> [it.value for it in map_items([Item(SpectrumRef('a'), value=2)], func=lambda v: v * 10)]
    [20]
    """
    return each_item(items, step, errors, lambda it: replace(it, value=func(it.value)))


def _group_by_object(items: Sequence[Item]) -> dict[str, list[Item]]:
    groups: dict[str, list[Item]] = {}
    for it in items:
        # a spectrum without an object is its own group (as when batches are made)
        groups.setdefault(it.ref.object_id or "\0" + it.ref.spectrum_id, []).append(it)
    return groups


def stack_object_items(
    items: Sequence[Item],
    *,
    method: str = "weighted_mean",
    grid: np.ndarray | None = None,
    errors: str = "raise",
    rest_frame: bool = False,
    options: dict | None = None,
) -> list[Item]:
    """Per-object stacks: ``stack_spectra`` of each object's good spectra (batches never split objects).

    With ``rest_frame`` each spectrum is shifted by its object's redshift first. An
    object whose spectra all failed becomes a failed item naming their reasons;
    partial failures are kept in ``failed_inputs``.

    Parameters
    ----------
    items : sequence of Item
        Opened spectra of whole objects.
    method : {'weighted_mean', 'mean', 'median'}
    grid : numpy.ndarray, optional
        Stack grid; default ``stack_spectra``'s (the largest input's).
    errors : {'raise', 'record'}
    rest_frame : bool
    options : dict, optional
        Other keyword arguments of ``stack_spectra``.

    Returns
    -------
    list of Item
        One per object (reference from :func:`object_refs`), ``inputs`` naming the
        spectra used and ``info['bands_used']`` their calibration bands.

    Raises
    ------
    ValidationError
        What ``stack_spectra`` raises (``errors='raise'``).

    Examples
    --------
    >>> import numpy as np
    >>> w = np.linspace(1, 2, 20)
    >>> items = [Item(SpectrumRef(s, object_id='o'), value=SpectrumData(w, np.ones(20), np.ones(20), spectrum_id=s))
    ...          for s in ('a', 'b')]
    >>> out = stack_object_items(items, method='mean')
    >>> out[0].ref.spectrum_id, out[0].inputs
    ('o', ('a', 'b'))
    """
    check_errors(errors)
    out = []
    for group in _group_by_object(items).values():
        object_id = group[0].ref.object_id
        good = [it for it in group if it.failure is None]
        bad = tuple(it.failure for it in group if it.failure is not None)
        ref = object_refs([group[0].ref])[0]
        if not good:
            reason = "; ".join(f"{f.spectrum_id}: {f.step}: {f.reason}" for f in bad)
            out.append(Item(ref, failure=Failure(object_id, "", "stack", f"no usable spectra ({reason})"), failed_inputs=bad))
            continue
        try:
            kw = dict(options or {})
            if rest_frame:
                kw["redshift"] = [it.ref.redshift for it in good]
            spec = stack_spectra(
                [it.value for it in good], method=method, wavelength_grid=grid, object_id=object_id or None, **kw,
            )
        except Exception as err:
            if errors == "raise":
                raise
            out.append(Item(ref, failure=Failure(object_id, "", "stack", failure_reason(err)), failed_inputs=bad))
            continue
        bands = sorted({b for it in good if it.calibration is not None for b in it.calibration.bands_used})
        info = {"bands_used": bands} if bands else {}
        out.append(Item(ref, value=spec, inputs=tuple(it.ref.spectrum_id for it in good), failed_inputs=bad, info=info))
    return out


def values_of(items: Sequence[Item]) -> list[Any]:
    """Values of the items, a :class:`Failure` in place of each failed one (what ``compute()`` returns).

    Parameters
    ----------
    items : sequence of Item

    Returns
    -------
    list

    Examples
    --------
    >>> values_of([Item(SpectrumRef('a'), value=1)])
    [1]
    """
    return [it.value if it.failure is None else it.failure for it in items]


def object_refs(refs: Sequence[SpectrumRef]) -> list[SpectrumRef]:
    """The reference of each object's stack, in order of first appearance.

    What :func:`stack_object_items` returns as ``Item.ref``: the object's id in place
    of the spectrum's, without file location.

    Parameters
    ----------
    refs : sequence of SpectrumRef

    Returns
    -------
    list of SpectrumRef

    Examples
    --------
    >>> [r.spectrum_id for r in object_refs([SpectrumRef('s1', object_id='o'), SpectrumRef('s2', object_id='o')])]
    ['o']
    """
    seen: dict[str, SpectrumRef] = {}
    for r in refs:
        key = r.object_id or "\0" + r.spectrum_id
        if key not in seen:
            seen[key] = replace(r, spectrum_id=r.object_id or r.spectrum_id, grating="", url="", file_hash="",
                                        data=None, dest="")
    return list(seen.values())


def guarded(*args, func: Callable, step: str = "stack", object_id: str = "", **kwargs):
    """``func(*args, **kwargs)``, or a :class:`Failure` when it raises (``errors='record'`` results).

    Parameters
    ----------
    *args, **kwargs
        Passed to ``func``.
    func : callable
    step, object_id : str
        Recorded in the Failure.

    Returns
    -------
    object or Failure

    Examples
    --------
    >>> guarded(1, 0, func=divmod).reason
    'ZeroDivisionError: integer division or modulo by zero'
    """
    try:
        return func(*args, **kwargs)
    except Exception as err:  # recorded: a population stack with no usable input must not stop the run
        return Failure(object_id, "", step, failure_reason(err))
