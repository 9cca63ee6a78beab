"""The demo archive: a deterministic, realistic synthetic NIRSpec MSA archive with ground truth.

campfire's embedded default: ``Campfire(data_dir=campfire.demo.ensure())`` (or
``CAMPFIRE_ROOT=<demo root>``) makes every example of the reference run on a fresh
machine with no server and no credentials, and the stored truth (true redshifts,
true SEDs, injected slit losses) lets tests check the science functions' recovery.
The formats are described in ``campfire/demo/README.md``.

Examples
--------
>>> import campfire.demo
>>> root = campfire.demo.ensure()                      # doctest: +SKIP
>>> campfire.demo.build('/tmp/demo-full', size='full')  # doctest: +SKIP
>>> campfire.demo.PROPRIETARY_PROGRAMS
('EMBER-DEEP',)
"""
from __future__ import annotations

from campfire.demo.identity import DEMO_VERSION, SIZE_NAMES, read_build_marker
from campfire.demo.locate import ensure

__all__ = [
    "build",
    "ensure",
    "main_build",
    "read_build_marker",
    "PROPRIETARY_PROGRAMS",
    "EXAMPLE",
    "DEMO_VERSION",
    "SIZE_NAMES",
]

# imported when first used: the builder and the survey plan import scipy (~0.5 s), which finding
# a demo already built (ensure) does not need
_LAZY = {"build": "campfire.demo.builder", "main_build": "campfire.demo.builder",
         "EXAMPLE": "campfire.demo.survey", "PROPRIETARY_PROGRAMS": "campfire.demo.survey"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
