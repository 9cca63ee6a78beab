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

from campfire.demo.builder import build, ensure, main_build
from campfire.demo.identity import DEMO_VERSION, SIZE_NAMES, read_build_marker
from campfire.demo.survey import EXAMPLE, PROPRIETARY_PROGRAMS

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
