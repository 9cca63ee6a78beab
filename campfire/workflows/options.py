"""Small validators for workflow values: each returns the clean value or raises :class:`Invalid`.

:class:`Invalid` carries a message and, optionally, the sub-path of the bad part
(``('grid', 'num')``); :mod:`campfire.workflows.schema` turns it into a
:class:`~campfire.errors.ValidationError` naming the full key and its YAML line.

Examples
--------
>>> positive_int(3)
3
>>> choice('mean', 'median')('median')
'median'
>>> try:
...     choice('mean', 'median')('avg')
... except Invalid as err:
...     print(err)
expected one of 'mean', 'median', got 'avg'
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

__all__ = [
    "Invalid", "Option", "choice", "boolean", "positive_int", "non_negative_int", "number", "window",
    "band_list", "wavelength_grid", "stack_grid", "nullable", "string",
]


class Invalid(Exception):
    """A bad value; ``sub`` is the path below the key being checked."""

    def __init__(self, message: str, sub: tuple = ()):
        super().__init__(message)
        self.sub = tuple(sub)


@dataclass(frozen=True)
class Option:
    """One option of a step: its validator, default and one-line help."""

    check: Callable[[Any], Any]
    default: Any = None
    help: str = ""


def nullable(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``None`` passes; anything else goes through ``check``."""
    def _check(value):
        return None if value is None else check(value)

    return _check


def string(value) -> str:
    """A non-empty string, stripped."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"expected a non-empty string, got {value!r}")
    return value.strip()


def choice(*allowed: str) -> Callable[[Any], str]:
    """One of ``allowed`` (case-insensitive), lower-cased."""
    def _check(value):
        if not isinstance(value, str) or value.strip().lower() not in allowed:
            raise Invalid(f"expected one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value.strip().lower()

    return _check


def boolean(value) -> bool:
    """``true`` or ``false`` (not 0/1, not 'yes')."""
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {value!r}")
    return value


def positive_int(value) -> int:
    """An integer ≥ 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Invalid(f"expected a positive integer, got {value!r}")
    return value


def non_negative_int(value) -> int:
    """An integer ≥ 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Invalid(f"expected a non-negative integer, got {value!r}")
    return value


def number(lo: float | None = None, hi: float | None = None, *, open_lo: bool = False) -> Callable[[Any], float]:
    """A finite number within the bounds."""
    def _check(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise Invalid(f"expected a number, got {value!r}")
        if lo is not None and (value < lo or (open_lo and value == lo)):
            raise Invalid(f"expected a number {'>' if open_lo else '>='} {lo:g}, got {value!r}")
        if hi is not None and value > hi:
            raise Invalid(f"expected a number <= {hi:g}, got {value!r}")
        return float(value)

    return _check


def window(value) -> tuple[float, float]:
    """``[lo, hi]`` in micron, lo < hi."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise Invalid(f"expected [min, max] in micron, got {value!r}")
    lo, hi = (number(0.0, open_lo=True)(v) for v in value)
    if lo >= hi:
        raise Invalid(f"expected min < max, got [{lo:g}, {hi:g}]")
    return lo, hi


def band_list(value) -> tuple[str, ...]:
    """A non-empty list of band names, lower-cased."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise Invalid(f"expected a list of band names like [f150w, f444w], got {value!r}")
    return tuple(v.strip().lower() for v in value)


_GRID_KEYS = ("start", "stop", "num", "step", "resolution")


def wavelength_grid(value) -> dict[str, float] | tuple[float, ...]:
    """A wavelength grid [μm]: ``{start, stop, num}`` (linear), ``{start, stop, step}``
    or ``{start, stop, resolution}`` (logarithmic at constant R = λ/Δλ), or an
    explicit increasing list.

    Examples
    --------
    >>> wavelength_grid({'start': 0.6, 'stop': 5.3, 'resolution': 300})['resolution']
    300.0
    """
    if isinstance(value, list):
        try:
            vals = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            raise Invalid(f"expected a list of wavelengths in micron, got {value!r}") from None
        if len(vals) < 2 or any(b <= a for a, b in zip(vals, vals[1:])) or not all(math.isfinite(v) and v > 0 for v in vals):
            raise Invalid("expected at least two positive, strictly increasing wavelengths")
        return vals
    if not isinstance(value, dict):
        raise Invalid(f"expected {{start, stop, num|step|resolution}} or a list of wavelengths, got {value!r}")
    unknown = [k for k in value if k not in _GRID_KEYS]
    if unknown:
        raise Invalid(f"unknown key {unknown[0]!r}; allowed: {', '.join(_GRID_KEYS)}", (unknown[0],))
    for k in ("start", "stop"):
        if k not in value:
            raise Invalid(f"missing {k!r} (micron)")
    out: dict[str, float] = {}
    for k in ("start", "stop"):
        try:
            out[k] = number(0.0, open_lo=True)(value[k])
        except Invalid as err:
            raise Invalid(str(err), (k,)) from None
    if out["start"] >= out["stop"]:
        raise Invalid(f"start ({out['start']:g}) must be < stop ({out['stop']:g})", ("stop",))
    given = [k for k in ("num", "step", "resolution") if k in value]
    if len(given) != 1:
        raise Invalid(f"give exactly one of num, step, resolution (got {', '.join(given) or 'none'})")
    k = given[0]
    try:
        if k == "num":
            n = positive_int(value[k])
            if n < 2:
                raise Invalid("expected at least 2 pixels")
            out[k] = n
        else:
            out[k] = number(0.0, open_lo=True)(value[k])
    except Invalid as err:
        raise Invalid(str(err), (k,)) from None
    return out


def stack_grid(value) -> str | dict[str, float] | tuple[float, ...]:
    """A stack's output grid: ``union`` (a grid covering every input at the finest native
    sampling in each region, as ``wavelength_grid='union'``) or a :func:`wavelength_grid`.

    Examples
    --------
    >>> stack_grid('Union'), stack_grid([1.0, 2.0])
    ('union', (1.0, 2.0))
    >>> try:
    ...     stack_grid('widest')
    ... except Invalid as err:
    ...     print(err)
    expected union, {start, stop, num|step|resolution} or a list of wavelengths, got 'widest'
    """
    if isinstance(value, (list, dict)):
        return wavelength_grid(value)
    if isinstance(value, str) and value.strip().lower() == "union":
        return "union"
    raise Invalid(f"expected union, {{start, stop, num|step|resolution}} or a list of wavelengths, got {value!r}")
