"""The access paths of catalog queries: which index (if any) SQLite should use.

SQLite 3.40 without STAT4 has no histograms and over-rates index lookups, so
:func:`access_path` chooses the path of every ``query_spectra`` on a version-2
catalog itself: each candidate index is probed with a capped count over the index
alone (a few ms); an index is used when it narrows the rows to under
:data:`_SELECTIVE` of the table, otherwise the table is scanned once (≈ 0.2 s per
million spectra, where a million index lookups take seconds). :func:`read_layout`
says what a catalog file offers (schema version, indexes, size).

:func:`object_path` does the same for ``query_objects``: which table drives the
join of ``objects`` and the caller's ``object_aggregates`` and through which index
(a selective filter's index, the sort column's index for a page, or a walk of the
caller's rows in object_id order), so that a page of 100 objects out of 400,000 stops
after the page instead of reading every matching object.
"""
from __future__ import annotations

import contextlib
import logging
import pathlib
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any, Iterable

from campfire.catalog.filters import Query
from campfire.catalog.schema import FIT_COLUMNS, SCHEMA_VERSION, has_inspection_views, has_object_copies

__all__ = ["Layout", "read_layout", "access_path", "ObjectPath", "object_path", "count_up_to"]

log = logging.getLogger("campfire.catalog")

# an index drives a spectra query when it leaves fewer than this fraction of the table
# (measured on 1,000,000 spectra: a random lookup costs as much as scanning ~20 rows)
_SELECTIVE = 0.06
_MIN_CAP = 1000
# a page of at most this many rows may walk the sort column's index and stop early
_PAGE_WALK = 2000
# (index, the terms it can use: the first one must be present), in probe order
_DRIVERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("spectra_object", ("cone_search",)),
    ("spectra_observation", ("observations",)),
    ("spectra_field_redshift_filters", ("fields", "redshift_range")),
    ("spectra_field_redshift", ("fields", "redshift_range")),  # its two columns: a file written before the one above
    ("spectra_object", ("tags",)),
    ("spectra_object", ("object_view",)),
    ("spectra_program", ("programs",)),
    ("spectra_redshift", ("redshift_range",)),
    ("spectra_grating", ("gratings", "max_snr_range")),
    ("spectra_snr", ("max_snr_range",)),
)
# the terms an index can test alone (its columns), where they are more than its driving terms: SQLite
# tests them on the index entry and reads only the rows that pass (the bench's multi-filter query on one
# field: 3,107 rows read instead of 17,464), and a count of them never reads the table
_TESTS = {"spectra_field_redshift_filters": frozenset({
    "fields", "redshift_range", "redshift_quality", "inspected_only", "has_photometry", "gratings", "max_snr_range",
    "dq_flags", "programs", "visibility"})}
_ORDER_INDEX = {"signal_to_noise": "spectra_snr", "object_id": "spectra_object", "observation": "spectra_observation"}
# one grating's rows in spectrum_id order (schema.sql; a file written before it may lack it)
_GRATING_ORDER = "spectra_grating_id"

_warned_old: set[str] = set()
_warn_lock = threading.Lock()


@dataclass(frozen=True)
class Layout:
    """What a catalog file offers the compiler."""

    copies: bool                 # spectra has the object copies (schema version 2)
    indexes: frozenset[str]      # the indexes on spectra
    pk_index: str | None         # the spectrum_id index
    n_spectra: int
    views: bool = True           # object_aggregates has the inspection fields (schema version 3)
    fit_columns: bool = True     # spectra has redshift_auto's interval and confidence (schema version 4)


def _warn_old_schema(db_path: pathlib.Path) -> None:
    with _warn_lock:
        if str(db_path) in _warned_old:
            return
        _warned_old.add(str(db_path))
    log.warning(
        "%s was written by an older campfire (catalog schema 1; this one writes %s). Every query works, but "
        "spectra queries without a field filter are slow. Upgrade it in place (one-time, ~15 s per million "
        "spectra): python -m campfire.catalog.schema upgrade %s — or sync again / rebuild the demo.",
        db_path, SCHEMA_VERSION, db_path.parent.parent,
    )


def read_layout(conn: sqlite3.Connection, db_path: pathlib.Path) -> Layout:
    """The :class:`Layout` of the catalog open on ``conn`` (warns once per file of schema 1)."""
    indexes = {r[1]: r[3] for r in conn.execute("PRAGMA index_list(spectra)")}  # name -> origin
    copies = has_object_copies(conn)
    if not copies:
        _warn_old_schema(db_path)
    stat = None
    with contextlib.suppress(sqlite3.Error):  # no sqlite_stat1 before the first ANALYZE
        stat = conn.execute(
            "SELECT stat FROM sqlite_stat1 WHERE tbl = 'spectra' AND idx = 'spectra_object'").fetchone()
    n = int(stat[0].split()[0]) if stat else conn.execute("SELECT count(*) FROM spectra").fetchone()[0]
    return Layout(
        copies=copies,
        indexes=frozenset(indexes),
        pk_index=next((name for name, origin in indexes.items() if origin == "pk"), None),
        n_spectra=int(n),
        views=has_inspection_views(conn),
        fit_columns=set(FIT_COLUMNS) <= {r[1] for r in conn.execute("PRAGMA table_info(spectra)")},
    )


def count_up_to(conn: sqlite3.Connection, source: str, params: list, cap: int) -> int:
    """The rows of ``SELECT 1 FROM <source>``, counted up to ``cap`` (a capped probe: never reads more)."""
    return conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM {source} LIMIT ?)", [*params, cap]).fetchone()[0]


def _most_selective(conn: sqlite3.Connection, probes: Iterable[tuple[Any, frozenset[str], str, list]],
                    cap: int) -> tuple[Any, int | None]:
    """The key of the probe that keeps the fewest rows under ``cap``, and that count (``(None, None)`` when none does).

    Each probe is ``(key, terms, "<table> INDEXED BY <index> WHERE <terms>", params)``
    (``terms``: the names of the filters it counts), counted over the index alone and
    capped at the best count so far (so a probe never reads more rows than the best
    one kept); once a count is 0 no other probe runs. A probe of a subset of an earlier
    probe's terms on the same table is not run: it keeps at least the rows that one kept,
    which were not fewer than the best count, so it could not win (the redshift index
    after the field+redshift one, the S/N index after the grating+S/N one).
    """
    best, best_n = None, cap
    counted: list[frozenset[str]] = []
    for key, terms, source, params in probes:
        if best_n == 0:
            break
        if any(terms <= earlier for earlier in counted):
            continue
        n = count_up_to(conn, source, params, best_n)
        counted.append(terms)
        if n < best_n:
            best, best_n = key, n
    return best, (best_n if best is not None else None)


def access_path(conn: sqlite3.Connection, q: Query, terms: dict[str, tuple[str, list]], layout: Layout,
                count: bool) -> tuple[str, int | None]:
    """The access path of a spectra query (``' INDEXED BY name'``, ``' NOT INDEXED'`` or ``''``) and a bound.

    The bound: at most so many rows match (the count of the index that drives; None
    when no index does — the result may be large).

    SQLite 3.40 without STAT4 guesses every range to keep a fixed fraction of an
    index and prices an index lookup (~3-5 µs here) far below its cost relative
    to a sequential scan (~0.2 µs a row): a broad redshift range or a common
    grating went through an index and looked up hundreds of thousands of rows
    one by one. So each index that a present filter can drive is probed with
    ``count(*)`` over the index alone, capped at the best count so far and at
    :data:`_SELECTIVE` of the table; the smallest one under the cap is used.
    The field+redshift index holds the columns of the other filters too
    (``spectra_field_redshift_filters``): SQLite tests them on its entries and reads
    only the rows that pass (the bench's multi-filter query, 1,000,000 spectra:
    17,464 rows read → 3,107, SQLite's stepping 12.4 → 2.4 ms), and a count of
    those filters reads the index alone (uds + PRISM + inspected: 229 → 20 ms).
    When every index is broad, a page still walks its order (below); anything else first
    counts that index with every filter it tests (:func:`_second_probe`: uds + PRISM +
    inspected + S/N > 5, 31,913 rows, 380 → 241 ms), and walks it when that is selective.
    Otherwise a query of one grating in spectrum_id order walks that grating's rows
    in order (``spectra_grating_id``, when the file has it), a page in spectrum_id
    order (or a small page sorted by another indexed column) walks that index and
    stops early, and everything else is one scan of the table plus a sort. Measured on 1,000,000 spectra (ms of CPU):
    50,107 rows of PRISM, z 4-6, S/N > 5, two flags, inspected: scan 334, walk
    535, z index 726, grating index 1238; 52,679 rows of z 5-5.4: z index 279,
    scan 335; the first 50,000 G235M spectra: walk 233, scan 467 (SQLite's own stepping,
    2026-12: spectrum_id walk 123, the grating's rows in order 42).

    Parameters
    ----------
    conn : sqlite3.Connection
        The catalog, for the probes.
    q : Query
        The resolved query.
    terms : dict
        Its WHERE terms by filter name (``'visibility'`` always present), as
        :func:`campfire.catalog.compile.compile_query` builds them.
    layout : Layout
    count : bool
        The query counts rows instead of returning them.
    """
    def probes():
        for index, keys in _DRIVERS:
            if keys[0] in terms and index in layout.indexes:
                names = [k for k in keys if k in terms]
                used = [terms[k] for k in names]
                yield (index, frozenset(names), f"spectra s INDEXED BY {index} WHERE "
                       + " AND ".join(sql for sql, _ in used), [v for _, p in used for v in p])

    cap = max(_MIN_CAP, int(layout.n_spectra * _SELECTIVE))
    best, bound = _most_selective(conn, probes(), cap)
    if best is not None:
        return f" INDEXED BY {best}", bound
    filters = {k for k, (sql, _) in terms.items() if sql != "1" and k != "visibility"}
    if count:
        if not filters:
            return "", None  # SQLite counts over its smallest index
        # a count that one index answers alone never reads the table
        for index, keys in _DRIVERS:
            tests = _TESTS.get(index, frozenset(keys))
            if (index in layout.indexes and keys[0] in filters and filters <= tests
                    and (terms["visibility"][0] == "1" or "visibility" in tests)):
                return f" INDEXED BY {index}", None
        return " NOT INDEXED", None
    walk = _walk(q, layout, filters)
    if walk is not None and q.limit is not None:
        return f" INDEXED BY {walk}", None  # a page: the walk stops after it
    # before a scan or a whole walk: filters broad alone may be selective together
    best, bound = _second_probe(conn, terms, layout, cap)
    if best is not None:
        return f" INDEXED BY {best}", bound
    return (f" INDEXED BY {walk}" if walk is not None else " NOT INDEXED"), None


def _walk(q: Query, layout: Layout, filters: set[str]) -> str | None:
    """The index whose walk gives a query's rows in its order (no sort, stops after a page), or None.

    Asked when no filter's index is selective (:func:`access_path`).
    """
    # the probes say the indexed filters are broad: the rows a walk passes mostly
    # match, unless a search or the stale files (which may match very few) filter too
    filters_pass_most = "search" not in filters and q.staleness is not True
    order = layout.pk_index if q.sort == "spectrum_id" else _ORDER_INDEX.get(q.sort)
    if (order == layout.pk_index and filters_pass_most and q.gratings and len(q.gratings) == 1
            and _GRATING_ORDER in layout.indexes):
        # one grating in spectrum_id order: its own rows, in order (the first 50,000 G235M of 1,000,000
        # spectra: SQLite's stepping 123 → 42 ms; all 156,397 of them 242 (scan + sort) → 150 ms).
        # Not for two or more: each value's rows come in order, so the result would need a sort
        return _GRATING_ORDER
    if order in layout.indexes and filters_pass_most:
        # walking the sort column's index looks up every row it passes, but needs no
        # sort and stops after the page. Along spectrum_id the rows come nearly in
        # storage order (ids start with the observation, and catalogs are written
        # observation by observation): ~0.5 µs a row, so even a walk of the whole
        # table costs less than 2 scans, and any page is worth it. Along another
        # column every row is a random lookup (~4 µs): small pages only.
        if not filters or (q.limit is not None
                           and (order == layout.pk_index or q.offset + q.limit <= _PAGE_WALK)):
            return order
    return None


def _second_probe(conn: sqlite3.Connection, terms: dict[str, tuple[str, list]], layout: Layout,
                  cap: int) -> tuple[str | None, int | None]:
    """An index that tests more filters than it drives, counted with all of them: (index, count) when under ``cap``.

    Asked once the driving probes found every index broad and no page walk applies (before a
    scan, or a walk of a whole grating or of every row in order): filters broad alone may be
    selective together (uds + PRISM + inspected + S/N > 5: 31,913 of the field's 168,439
    spectra on 1,000,000), and such an index's walk reads only the rows that pass every test
    on its entries. The count reads the field's entries (+11 to +25 ms of planning there),
    wasted when the result is broad too (1–3 % of such a query), against 12–36 % less for
    results of 30–50,000 rows (bench/RESULTS.md, stop 28).
    ``(None, None)`` when no index qualifies or none is under ``cap``.
    """
    for index, keys in _DRIVERS:
        tests = _TESTS.get(index)
        if tests is None or keys[0] not in terms or index not in layout.indexes:
            continue
        names = [k for k in terms if k in tests and terms[k][0] != "1"]
        if not set(names) - set(keys):
            continue  # nothing beyond the driving terms: the first probe counted this already
        used = [terms[k] for k in names]
        n = count_up_to(conn, f"spectra s INDEXED BY {index} WHERE " + " AND ".join(sql for sql, _ in used),
                        [v for _, p in used for v in p], cap)
        if n < cap:
            return index, n
    return None, None


# ------------------------------------------------------------------------------ objects
_AGG_PK = "sqlite_autoindex_object_aggregates_1"  # (visibility, object_id): the caller's rows in object_id order
_AGG_DRIVERS = {"redshift_range": "object_aggregates_redshift", "max_snr_range": "object_aggregates_snr"}
_AGG_ORDER = {"redshift": "object_aggregates_redshift", "max_snr": "object_aggregates_snr"}
# the filters on object_aggregates whose columns an index could drive: neutralised when they are broad
_AGG_TERMS = ("redshift_range", "max_snr_range", "redshift_quality", "inspected_only")
# filters read from objects o: the join to objects is needed to test them
OBJECT_ONLY_TERMS = ("fields", "has_photometry", "cone_search")


@dataclass(frozen=True)
class ObjectPath:
    """How an objects query reads its rows.

    ``driver``: ``'a'`` (the caller's ``object_aggregates`` rows first, then ``objects``),
    ``'o'`` (``objects`` first) or ``''`` (SQLite decides); ``index`` the driver's index;
    ``unindexed`` the terms whose column must not drive (written ``+column``);
    ``max_rows`` at most so many objects match (the driving index's count; None: unknown).
    """

    driver: str = ""
    index: str | None = None
    unindexed: frozenset[str] = frozenset()
    max_rows: int | None = None


def _objects_estimate(conn: sqlite3.Connection) -> int:
    with contextlib.suppress(sqlite3.Error):  # no sqlite_stat1 before the first ANALYZE
        row = conn.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = 'objects' "
                           "AND idx = 'sqlite_autoindex_objects_1'").fetchone()
        if row:
            return int(row[0].split()[0])
    return int(conn.execute("SELECT max(rowid) FROM objects").fetchone()[0] or 0)


def object_path(conn: sqlite3.Connection, q: Query, terms: dict[str, tuple[str, list]], visibility_key: str,
                count: bool) -> ObjectPath:
    """The access path of an objects query (see the module docstring).

    A filter on an indexed column (redshift, best S/N, field) drives the query when a
    capped count over its index alone says it keeps under :data:`_SELECTIVE` of the
    objects. Otherwise a page sorted by object_id walks the caller's
    ``object_aggregates`` rows in object_id order (its primary key), one sorted by
    redshift or best S/N walks that index, and both stop after the page; anything else
    reads the caller's rows once, testing the cheap ``object_aggregates`` filters
    before looking an object up. Measured on the 1,000,000-spectrum catalog (395,875
    objects, CPU): fields=uds, 4<z<8, quality 3-4 sorted by object_id, 100 rows:
    ≈2 s → 4 ms; its count 1.9 s → 0.17 s; tags=lrd's count 1.2 s → 0.05 s.

    Parameters
    ----------
    conn, q, count
        As in :func:`access_path`.
    terms : dict
        Its WHERE terms by filter name, as :func:`campfire.catalog.compile.compile_query` builds them.
    visibility_key : str
        The caller's ``object_aggregates`` visibility set.
    """
    if "cone_search" in terms or "search" in terms:
        return ObjectPath()  # the R*Tree / a text match: SQLite's own plan

    def probes():
        for name, index in _AGG_DRIVERS.items():
            if name in terms:
                sql, params = terms[name]
                yield ((name, index), frozenset({f"a.{name}"}),
                       f"object_aggregates a INDEXED BY {index} WHERE a.visibility = ? AND {sql}",
                       [visibility_key] + params)
        if "fields" in terms:
            sql, params = terms["fields"]
            yield (("fields", "objects_field"), frozenset({"o.fields"}),
                   f"objects o INDEXED BY objects_field WHERE {sql}", params)

    best, bound = _most_selective(conn, probes(), max(_MIN_CAP, int(_objects_estimate(conn) * _SELECTIVE)))
    present = frozenset(k for k in _AGG_TERMS if k in terms)
    if best is not None:
        name, index = best
        return ObjectPath("o" if name == "fields" else "a", index, present - {name}, bound)
    if count:
        if present:
            return ObjectPath("a", _AGG_PK, present)
        if "fields" in terms:
            return ObjectPath("o", "objects_field")
        return ObjectPath("a")  # SQLite counts over the caller's smallest index
    order = _AGG_ORDER.get(q.sort)
    if order is not None and q.limit is not None and q.offset + q.limit <= _PAGE_WALK:
        keep = {"redshift": "redshift_range", "max_snr": "max_snr_range"}[q.sort]
        return ObjectPath("a", order, present - {keep})
    return ObjectPath("a", _AGG_PK, present)
