"""What a computed collection tells its user about the spectra that failed.

A lazy collection records failures by default (``errors='record'``): the result holds a
:class:`~campfire.tasks.batch.Failure` in place of each failed element and stacks
leave failed inputs out. So that nobody mistakes such a result for a complete one, the
computed list is a :class:`Results` that carries its failures and their summary, and
``LazySpectra.compute()`` issues one :class:`~campfire.errors.PartialFailureWarning`
with that summary. The warning is issued on the client, after the computation: a
finalize task runs on a worker (a thread of the threaded scheduler, where other tasks'
``warnings.catch_warnings`` may swallow it, or another machine), so no warning is
issued there.

Examples
--------
>>> short_reason('bands: no usable band to calibrate x against: f606w: not covered', 40)
'bands: no usable band to calibrate x …'
"""
from __future__ import annotations

import textwrap
import warnings
from typing import Sequence

from campfire.errors import PartialFailureWarning

__all__ = ["short_reason", "Results"]

#: failures named in the warning; the rest are counted
SHOWN = 3


def short_reason(text: str, width: int = 160) -> str:
    """``text`` on one line, cut at a word boundary to at most ``width`` characters.

    Parameters
    ----------
    text : str
    width : int

    Returns
    -------
    str
        The text, or its first words followed by ``" …"``.
    """
    return textwrap.shorten(" ".join(str(text).split()), width=width, placeholder=" …")


class Results(list):
    """What ``compute()`` of a lazy collection returns: a list of values, with its failures.

    A plain list (one value per spectrum, or per object after ``stack(by='object')``, a
    :class:`~campfire.tasks.batch.Failure` in place of each failed one) that also says
    what went wrong, so that a result is never mistaken for a complete one — also
    through ``dask.compute`` and on a distributed cluster, where no warning reaches you.

    Attributes
    ----------
    failures : list of Failure
        The elements that failed (in the list in their place).
    left_out : list of Failure
        Input spectra left out of per-object stacks that succeeded with their other spectra.
    kind : {'spectra', 'objects'}
        What one element is.

    Examples
    --------
    >>> r = Results([1, 2])
    >>> r, r.failures, r.summary()
    ([1, 2], [], '2 spectra, none failed')
    """

    def __init__(self, values=(), *, failures=(), left_out=(), kind: str = "spectra"):
        super().__init__(values)
        self.failures = list(failures)
        self.left_out = list(left_out)
        self.kind = kind

    @classmethod
    def from_items(cls, items: Sequence, values: Sequence, *, kind: str = "spectra") -> "Results":
        """The values of computed :class:`~campfire.tasks.batch.Item` objects with their failures."""
        return cls(values, failures=[it.failure for it in items if it.failure is not None],
                   left_out=[f for it in items if it.failure is None for f in it.failed_inputs], kind=kind)

    @property
    def ok(self) -> bool:
        """True when nothing failed and nothing was left out."""
        return not self.failures and not self.left_out

    def summary(self) -> str:
        """The failures counted, the first few named with step and reason (one line when none).

        Returns
        -------
        str
        """
        noun = self.kind if len(self) != 1 else {"spectra": "spectrum", "objects": "object"}.get(self.kind, self.kind)
        if self.ok:
            return f"{len(self)} {noun}, none failed"
        parts = []
        if self.failures:
            parts.append(f"{len(self.failures)} of {len(self)} {noun} failed (a Failure in place of each)")
        if self.left_out:
            parts.append(f"{len(self.left_out)} spectra were left out of object stacks that used their other spectra")
        shown = (self.failures + self.left_out)[:SHOWN]
        lines = ["; ".join(parts) + ":"]
        lines += [f"  {f.spectrum_id or f.object_id}: {f.step}: {short_reason(f.reason, 120)}" for f in shown]
        more = len(self.failures) + len(self.left_out) - len(shown)
        if more:
            lines.append(f"  ... and {more} more")
        lines.append("Full reasons: .failures / .left_out (Failure.reason); "
                     ".with_errors('raise') stops at the first failure instead.")
        return "\n".join(lines)

    def warn(self, stacklevel: int = 2) -> None:
        """Issue a :class:`~campfire.errors.PartialFailureWarning` with :meth:`summary` if anything failed."""
        if not self.ok:
            warnings.warn(self.summary(), PartialFailureWarning, stacklevel=stacklevel + 1)
