"""Real archives: build and keep up to date an archive root from real NIRSpec MSA products.

``campfire archive ingest ROOT SOURCE...`` (or :func:`ingest`) turns msaexp / DJA
``*.spec.fits`` files, the DJA merged table, a photometric catalogue and a
``programs.yaml`` into an archive root of DESIGN.md's layout — the same catalog schema
and FITS conventions as the demo builder — that ``campfire serve`` serves and clients
sync, query, download and analyse. Re-running it is incremental and safe: unchanged
inputs change nothing, changed ones are refitted and flagged stale for clients, and
the catalog changes in one transaction.

The parts: :mod:`~campfire.archive.sources` (SOURCE arguments),
:mod:`~campfire.archive.names` (IDs, programs, fields), :mod:`~campfire.archive.prepare`
(the per-file step) and :mod:`~campfire.archive.graph` (its Dask graph), :mod:`~campfire.archive.run` (the run: plan, prepare, commit),
:mod:`~campfire.archive.products` (archive copies), :mod:`~campfire.archive.update`
and :mod:`~campfire.archive.attach` (the catalog transaction),
:mod:`~campfire.archive.grouping` (objects), :mod:`~campfire.archive.table` (the DJA
table), :mod:`~campfire.archive.grades` (DJA grades → campfire quality),
:mod:`~campfire.archive.photometry`, :mod:`~campfire.archive.programs`,
:mod:`~campfire.archive.state` (what an ingest remembers), :mod:`~campfire.archive.imaging`
(``campfire archive push-imaging``: the imaging onto an object store).

Examples
--------
>>> from campfire.archive import ingest
>>> summary = ingest('/data/archive', '/data/dja/', table='/data/dja_msaexp_emission_lines_v4.4.csv.gz')  # doctest: +SKIP
>>> print(summary.meta['counts'])  # doctest: +SKIP
{'new': 80367, 'updated': 0, 'unchanged': 0, 'failed': 2, ...}
"""
from __future__ import annotations

from campfire.archive.grades import DJA_GRADE_QUALITY, quality_from_dja_grade
from campfire.archive.run import MODES, ingest

__all__ = ["ingest", "MODES", "DJA_GRADE_QUALITY", "quality_from_dja_grade"]
