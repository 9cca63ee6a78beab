"""The workflow steps: each maps validated options onto LazySpectra methods.

A workflow's ``steps:`` list runs in order on a :class:`RunState` — the per-spectrum
collection, the per-object stacks once a ``stack: {by: object}`` step ran, and the
population stacks. Steps only build graph; nothing runs until the runner computes.

Examples
--------
>>> CALIBRATE.check({'method': 'flat', 'degree': 2})
{'method': 'flat', 'degree': 2, 'min_snr': 0.5, 'bands': None}
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from campfire.workflows import options as O
from campfire.workflows.options import Invalid, Option

__all__ = ["Step", "RunState", "DOWNLOAD", "OPEN", "CALIBRATE", "RESAMPLE", "STACK"]


@dataclass
class RunState:
    """What the steps build: ``spectra`` (one element per spectrum), ``objects`` (one per
    object, after a per-object stack) and ``populations`` (name → Delayed stack)."""

    spectra: Any
    objects: Any = None
    populations: dict[str, Any] = field(default_factory=dict)
    population_specs: dict[str, dict] = field(default_factory=dict)
    # objects whose stacks are read back from earlier outputs (skipped on a re-run)
    done_objects: Any = None

    @property
    def current(self):
        """The collection the next step works on (the per-object stacks once made)."""
        return self.objects if self.objects is not None else self.spectra


@dataclass(frozen=True)
class Step:
    """A named step: option schema + ``apply(state, **options)``."""

    name: str
    doc: str
    options: dict[str, Option]
    apply: Callable[..., None]
    check_all: Callable[[dict], dict] | None = None

    def check(self, given: dict | None) -> dict:
        """Validate ``given`` options; unknown names and bad values raise :class:`Invalid` (with sub-path)."""
        given = dict(given or {})
        unknown = [k for k in given if k not in self.options]
        if unknown:
            allowed = ", ".join(self.options) or "(none)"
            raise Invalid(f"unknown option {unknown[0]!r} for step {self.name!r}; allowed: {allowed}", (unknown[0],))
        out = {}
        for key, opt in self.options.items():
            if key in given:
                try:
                    out[key] = opt.check(given[key])
                except Invalid as err:
                    raise Invalid(str(err), (key,) + err.sub) from None
            else:
                out[key] = opt.default
        return self.check_all(out) if self.check_all else out


def _download(state: RunState) -> None:
    state.spectra = state.spectra.download()


def _open(state: RunState) -> None:
    state.spectra = state.spectra.open()


def _calibrate(state: RunState, *, method: str, degree: int, min_snr: float, bands) -> None:
    kw: dict[str, Any] = {"degree": degree, "min_snr": min_snr}
    if bands is not None:
        kw["bands"] = list(bands)
    state.spectra = state.spectra.calibrate(method=method, **kw)


def _resample(state: RunState, *, grid) -> None:
    from campfire.graphs.stacking import grid_from_spec

    state.spectra = state.spectra.resample(grid_from_spec(grid))


def _stack(state: RunState, *, method: str, by: str, rest_frame: bool, grid, window, normalize, name: str | None,
           input: str) -> None:
    from campfire.graphs.stacking import grid_from_spec

    g = grid if grid is None or grid == "union" else grid_from_spec(grid)  # 'union': chosen when it runs
    if by == "object":
        if state.objects is not None:
            raise Invalid("a per-object stack was already made; stack objects with by: all")
        state.objects = state.spectra.stack(method, by="object", rest_frame=rest_frame, grid=g)
        return
    source = state.spectra if input == "spectra" or state.objects is None else state.objects
    if input == "objects" and state.objects is None:
        raise Invalid("input: objects needs a preceding stack with by: object")
    if source is state.objects and state.done_objects is not None:
        from campfire.graphs.collection import LazySpectra

        source = LazySpectra.concat([state.objects, state.done_objects])
    label = name or ("population_rest" if rest_frame else "population")
    if label in state.populations:
        raise Invalid(f"two population stacks named {label!r}; give one of them another name (name: ...)")
    state.populations[label] = source.stack(method, by="all", rest_frame=rest_frame, grid=g, window=window,
                                            normalize=normalize)
    state.population_specs[label] = {"method": method, "rest_frame": rest_frame, "input": "objects" if source is not state.spectra else "spectra",
                                     "grid": grid, "window": window, "normalize": normalize}


def _stack_check(opts: dict) -> dict:
    if opts["by"] == "object" and opts["name"] is not None:
        raise Invalid("name: only population stacks (by: all) are named", ("name",))
    if opts["window"] is not None and opts["by"] == "object":
        raise Invalid("window: normalisation applies to population stacks (by: all)", ("window",))
    return opts


DOWNLOAD = Step("download", "make every input file readable (local/fsspec path check, or fetch from the server)", {},
                _download)
OPEN = Step("open", "read each FITS file into a SpectrumData (implicit before calibrate/resample/stack)", {}, _open)
CALIBRATE = Step(
    "calibrate",
    "flux-calibrate each spectrum against its object's photometry (calibrate_to_photometry)",
    {
        "method": Option(O.choice("chebyshev", "flat"), "chebyshev", "multiplier model"),
        "degree": Option(O.non_negative_int, 3, "Chebyshev degree (lowered when bands are few)"),
        "min_snr": Option(O.number(0.0), 0.5, "minimum S/N of a band's photometry and synthetic flux"),
        "bands": Option(O.nullable(O.band_list), None, "restrict the candidate bands"),
    },
    _calibrate,
)
RESAMPLE = Step(
    "resample",
    "resample onto a common grid [μm] (flux-conserving)",
    {"grid": Option(O.wavelength_grid, {"start": 0.6, "stop": 5.3, "resolution": 300},
                    "{start, stop, num|step|resolution} or a list")},
    _resample,
)
STACK = Step(
    "stack",
    "stack per object (by: object) or over the population (by: all), optionally in the rest frame",
    {
        "method": Option(O.choice("weighted_mean", "mean", "median"), "weighted_mean", "how inputs combine"),
        "by": Option(O.choice("object", "all"), "object", "one stack per object, or one over everything"),
        "rest_frame": Option(O.boolean, False, "shift each input by its object's redshift first"),
        "grid": Option(O.nullable(O.stack_grid), None,
                       "output grid [μm] (rest-frame μm when rest_frame): {start, stop, num|step|resolution}, a list, "
                       "or union (every input's range at the finest native sampling in each region); default: the "
                       "common grid once resampled, else the input with the most pixels (warning when other inputs "
                       "reach outside it), else in the rest frame campfire.stack.rest-grid"),
        "window": Option(O.nullable(O.window), None, "rest-frame normalisation window [μm] (population stacks)"),
        "normalize": Option(O.nullable(O.boolean), None, "divide each input by its median f_ν in the window"),
        "name": Option(O.nullable(O.string), None, "output name of a population stack"),
        "input": Option(O.choice("objects", "spectra"), "objects",
                        "population stacks: the per-object stacks (default, when made) or every spectrum"),
    },
    _stack,
    _stack_check,
)
