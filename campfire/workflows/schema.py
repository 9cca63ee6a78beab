"""The workflow file: YAML schema, validated with errors that name the key and its line.

A workflow declares *what* to run; the runner decides *how* (scheduler, batching)::

    name: stack_lrds                      # default: the file name
    description: ...
    archive: demo                         # demo | demo:small | demo:full | /path/to/root | http(s)://server
    selection:                            # the query_spectra vocabulary
      tags: [lrd]
      dq_flags: "~CONTAMINATION & ~LOW_SNR"
    steps:
      - download
      - calibrate: {method: chebyshev, degree: 2}
      - resample: {grid: {start: 0.6, stop: 5.3, resolution: 300}}
      - stack: {by: object, method: weighted_mean}
      - stack: {by: all, rest_frame: true, method: median, name: population_rest}
    outputs:
      dir: results/stack_lrds             # default results/<name>; `campfire run --output` overrides
      fits: true                          # one FITS per object (campfire.io.fits.write_spectrum)
      zarr: stack_lrds.zarr               # every result + metadata (false: none)
      plots: true                         # quick-look PNGs: true, false, or the first N objects
      table: summary.ecsv                 # the per-object summary (false: none)
    cluster:
      scheduler: threads                  # threads | processes | synchronous | local:N | tcp://host:port
      workers: 2
      batch_size: 200                     # spectra per task
      split_every: 8                      # fan-in of tree reductions

Every error is a :class:`~campfire.errors.ValidationError` reading
``"<file>: line <n>: <key path>: <what is wrong>"``, e.g.
``"stack.yaml: line 9: steps[1].calibrate.degre: unknown option 'degre' for step
'calibrate'; allowed: method, degree, min_snr, bands"``.

Examples
--------
>>> wf = parse_workflow("steps: [download, {calibrate: {degree: 2}}]\\n", source='inline.yaml')
>>> [s.name for s in wf.steps], wf.steps[1].options['degree'], wf.archive
(['download', 'calibrate'], 2, 'demo')
>>> try:
...     parse_workflow("steps:\\n  - calibrate: {degre: 2}\\n", source='bad.yaml')
... except ValueError as err:
...     print(err)
bad.yaml: line 2: steps[0].calibrate.degre: unknown option 'degre' for step 'calibrate'; allowed: method, degree, min_snr, bands
"""
from __future__ import annotations

import hashlib
import os
import pathlib
from dataclasses import dataclass, field
from typing import Any

from campfire.catalog.filters import FILTER_NAMES, build_query
from campfire.errors import ValidationError
from campfire.workflows import options as O
from campfire.workflows.options import Invalid
from campfire.workflows.registry import get_step, known_steps
from campfire.workflows.yamlmarks import Lines, format_path, load_with_lines

__all__ = ["Workflow", "StepSpec", "OutputsSpec", "ClusterSpec", "load_workflow", "parse_workflow", "TOP_LEVEL_KEYS"]

TOP_LEVEL_KEYS = ("name", "description", "archive", "selection", "steps", "outputs", "cluster")
OUTPUT_KEYS = ("dir", "fits", "zarr", "plots", "table")
CLUSTER_KEYS = ("scheduler", "workers", "batch_size", "split_every")
SELECTION_KEYS = FILTER_NAMES + ("limit", "sort", "sort_dir")


@dataclass(frozen=True)
class StepSpec:
    """One entry of ``steps:``: the step name, its validated options and its line."""

    name: str
    options: dict
    line: int | None = None


@dataclass(frozen=True)
class OutputsSpec:
    """The ``outputs:`` section (see the module docstring)."""

    dir: str | None = None
    fits: bool = True
    zarr: str | None = None          # file name, or None for no zarr store
    plots: bool | int = True         # True (all), False, or the first N objects
    table: str | None = "summary.ecsv"


@dataclass(frozen=True)
class ClusterSpec:
    """The ``cluster:`` section: scheduler spelling, workers, batch size, reduction fan-in."""

    scheduler: str | None = None
    workers: int | None = None
    batch_size: int | None = None
    split_every: int | None = None


@dataclass(frozen=True)
class Workflow:
    """A validated workflow file."""

    name: str
    steps: tuple[StepSpec, ...]
    archive: str = "demo"
    description: str = ""
    selection: dict = field(default_factory=dict)
    outputs: OutputsSpec = field(default_factory=OutputsSpec)
    cluster: ClusterSpec = field(default_factory=ClusterSpec)
    path: str | None = None
    text: str = ""
    sha256: str = ""
    lines: Lines | None = field(default=None, compare=False, repr=False)

    def error(self, path: tuple, message: str) -> ValidationError:
        """A ValidationError naming ``path`` and its line in this file."""
        return _error(self.path or "<workflow>", self.lines or Lines(), path, message)


def _error(source: str, lines: Lines, path: tuple, message: str) -> ValidationError:
    line = lines.key(path) if tuple(path) in lines.keys_at else lines.nearest(path)
    where = f"line {line}: " if line else ""
    return ValidationError(f"{source}: {where}{format_path(path)}: {message}")


def _mapping(value, source, lines, path, allowed) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _error(source, lines, path, f"expected a mapping with keys {', '.join(allowed)}, got {type(value).__name__}")
    for k in value:
        if k not in allowed:
            raise _error(source, lines, path + (k,), f"unknown key {k!r}; allowed: {', '.join(allowed)}")
    return value


def _archive(value, source, lines) -> str:
    if value is None:
        return "demo"
    if not isinstance(value, str) or not value.strip():
        raise _error(source, lines, ("archive",),
                     f"expected demo, demo:small, demo:full, an archive root path or a server URL, got {value!r}")
    v = value.strip()
    if v.lower().startswith("demo") and v.lower() not in ("demo", "demo:small", "demo:full"):
        raise _error(source, lines, ("archive",), f"unknown demo size in {v!r}; use demo, demo:small or demo:full")
    return v


def _selection(value, source, lines) -> dict:
    sel = _mapping(value, source, lines, ("selection",), SELECTION_KEYS)
    for k, v in sel.items():
        try:
            build_query("spectra", **{k: v})
        except ValidationError as err:
            msg = str(err)
            if msg.startswith(f"{k}: "):
                msg = msg[len(k) + 2:]
            raise _error(source, lines, ("selection", k), msg) from None
    try:
        build_query("spectra", **sel)
    except ValidationError as err:
        raise _error(source, lines, ("selection",), str(err)) from None
    return dict(sel)


def _steps(value, source, lines) -> tuple[StepSpec, ...]:
    if value is None:
        raise _error(source, lines, ("steps",), f"missing: list the steps to run ({', '.join(known_steps())})")
    if not isinstance(value, list) or not value:
        raise _error(source, lines, ("steps",), f"expected a non-empty list of steps ({', '.join(known_steps())})")
    out = []
    for i, entry in enumerate(value):
        path = ("steps", i)
        if isinstance(entry, str):
            name, given, opt_path = entry, {}, path
        elif isinstance(entry, dict) and len(entry) == 1:
            name, given = next(iter(entry.items()))
            opt_path = path + (name,)
            if given is None:
                given = {}
            if not isinstance(given, dict):
                raise _error(source, lines, opt_path, f"expected a mapping of options, got {given!r}")
        else:
            raise _error(source, lines, path, "expected a step name or a one-key mapping {step: {options}}")
        if name not in known_steps():
            raise _error(source, lines, path if isinstance(entry, str) else path + (name,),
                         f"unknown step {name!r}; known steps: {', '.join(known_steps())}")
        step = get_step(name)
        try:
            opts = step.check(given)
        except Invalid as err:
            raise _error(source, lines, opt_path + err.sub, str(err)) from None
        out.append(StepSpec(name, opts, lines.get(path)))
    _check_order(out, source, lines)
    return tuple(out)


def _check_order(steps: list[StepSpec], source: str, lines: Lines) -> None:
    seen_object_stack = False
    names = set()
    for i, s in enumerate(steps):
        if s.name != "stack":
            if seen_object_stack and s.name in ("calibrate", "resample"):
                raise _error(source, lines, ("steps", i),
                             f"{s.name} after a per-object stack would not reach the stacks; move it before the stack")
            continue
        if s.options["by"] == "object":
            if seen_object_stack:
                raise _error(source, lines, ("steps", i), "a second per-object stack; stack objects with by: all")
            seen_object_stack = True
        else:
            label = s.options["name"] or ("population_rest" if s.options["rest_frame"] else "population")
            if label in names:
                raise _error(source, lines, ("steps", i, "stack"),
                             f"a second population stack named {label!r}; give one of them another name (name: ...)")
            names.add(label)


def _outputs(value, source, lines, name: str) -> OutputsSpec:
    out = _mapping(value, source, lines, ("outputs",), OUTPUT_KEYS)
    spec: dict[str, Any] = {}
    try:
        for key, check in (("dir", O.string), ("fits", O.boolean)):
            if key in out:
                spec[key] = check(out[key])
    except Invalid as err:
        raise _error(source, lines, ("outputs", key), str(err)) from None
    for key, default in (("zarr", f"{name}.zarr"), ("table", "summary.ecsv")):
        v = out.get(key, True)
        if v is True:
            spec[key] = default
        elif v is False or v is None:
            spec[key] = None
        elif isinstance(v, str) and v.strip() and "/" not in v and "\\" not in v:
            spec[key] = v.strip()
        else:
            raise _error(source, lines, ("outputs", key), f"expected true, false or a file name (no directories), got {v!r}")
    plots = out.get("plots", True)
    if not (isinstance(plots, bool) or (isinstance(plots, int) and plots >= 0)):
        raise _error(source, lines, ("outputs", "plots"), f"expected true, false or a number of objects, got {plots!r}")
    spec["plots"] = plots
    return OutputsSpec(**spec)


def _cluster(value, source, lines) -> ClusterSpec:
    from campfire.graphs.scheduler import parse_scheduler

    c = _mapping(value, source, lines, ("cluster",), CLUSTER_KEYS)
    spec: dict[str, Any] = {}
    checks = {"workers": O.positive_int, "batch_size": O.positive_int, "split_every": O.positive_int}
    for key, v in c.items():
        if v is None:
            continue
        try:
            if key == "scheduler":
                parse_scheduler(O.string(v))
                spec[key] = v.strip()
            else:
                spec[key] = checks[key](v)
                if key == "split_every" and spec[key] < 2:
                    raise Invalid(f"expected an integer >= 2, got {v!r}")
        except (Invalid, ValidationError) as err:
            msg = str(err).removeprefix("scheduler: ")
            raise _error(source, lines, ("cluster", key), msg) from None
    return ClusterSpec(**spec)


def parse_workflow(text: str, *, source: str = "<workflow>", path: str | None = None) -> Workflow:
    """Validate workflow YAML text into a :class:`Workflow`."""
    data, lines = load_with_lines(text, source)
    if data is None:
        raise ValidationError(f"{source}: empty workflow; expected a mapping with at least 'steps:'")
    if not isinstance(data, dict):
        raise ValidationError(f"{source}: line 1: expected a mapping of {', '.join(TOP_LEVEL_KEYS)}, got {type(data).__name__}")
    for k in data:
        if k not in TOP_LEVEL_KEYS:
            raise _error(source, lines, (k,), f"unknown key {k!r}; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    default_name = pathlib.Path(path).stem if path else "workflow"
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "/\\\0"):
        raise _error(source, lines, ("name",), f"expected a plain name (no slashes), got {name!r}")
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise _error(source, lines, ("description",), "expected text")
    return Workflow(
        name=name.strip(),
        description=description.strip(),
        archive=_archive(data.get("archive"), source, lines),
        selection=_selection(data.get("selection"), source, lines),
        steps=_steps(data.get("steps"), source, lines),
        outputs=_outputs(data.get("outputs"), source, lines, name.strip()),
        cluster=_cluster(data.get("cluster"), source, lines),
        path=path,
        text=text,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        lines=lines,
    )


def load_workflow(path: str | os.PathLike) -> Workflow:
    """Read and validate a workflow file.

    Examples
    --------
    >>> wf = load_workflow('workflows/stack_lrds.yaml')   # doctest: +SKIP
    >>> wf.selection                                       # doctest: +SKIP
    {'tags': ['lrd']}
    """
    p = pathlib.Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ValidationError(f"{path}: no such workflow file") from None
    except OSError as err:
        raise ValidationError(f"{path}: cannot read the workflow ({err})") from err
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValidationError(f"{path}: not UTF-8 text ({err})") from None
    wf = parse_workflow(text, source=str(path), path=str(p))
    # the hash is of the bytes on disk, so provenance names exactly this file
    return Workflow(**{**wf.__dict__, "sha256": hashlib.sha256(raw).hexdigest()})
