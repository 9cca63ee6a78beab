"""The SQLite backend: a :class:`~campfire.catalog.filters.Query` compiled to SQL.

Used by the client on a local archive root / synced data_dir, and by the server on the
archive it serves (with a :class:`Visibility` restricting what a caller may see). All
user values travel as bound parameters; column names come from whitelists only.

``query_spectra`` filters on the object-level columns through the spectra's own copies
of them (schema version 2, see :mod:`campfire.catalog.schema`), so no join to
``objects`` is needed, and the access path is chosen here rather than by SQLite's
planner, which has no histograms (no STAT4) and over-rates index lookups: each
candidate index is probed with a capped count over the index alone (a few ms); an index
is used when it narrows the rows to under 6 % of the table, otherwise the table is
scanned once (≈ 0.2 s per million spectra, where a million index lookups take seconds).
A version-1 catalog is still answered, through the join, with a warning to upgrade it.
"""
from __future__ import annotations

import contextlib
import gc
import logging
import math
import os
import pathlib
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
from astropy.table import Table

from campfire.catalog.filters import KNOWN_GRATINGS, Query, Vocabulary
from campfire.errors import CampfireError

__all__ = [
    "LocalCatalog",
    "Visibility",
    "connect",
    "create_catalog",
    "finalize_catalog",
    "OBJECT_COLUMNS",
    "SPECTRUM_COLUMNS",
    "objects_table",
    "spectra_table",
    "SCHEMA_PATH",
]

SCHEMA_PATH = pathlib.Path(__file__).with_name("schema.sql")
SCHEMA_VERSION = "2"  # campfire.catalog.schema describes the versions and upgrades older files

log = logging.getLogger("campfire.catalog")

# spectra column -> the objects column it copies (schema version 2, campfire.catalog.schema)
OBJECT_COPIES = {
    "object_field": "field",
    "object_redshift": "redshift",
    "object_redshift_quality": "redshift_quality",
    "object_has_photometry": "has_photometry",
}

# (name, SQL expression, dtype) — the columns of query_objects, in order
OBJECT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("object_id", "o.object_id", "str"),
    ("field", "o.field", "str"),
    ("ra", "o.ra", "float"),
    ("dec", "o.dec", "float"),
    ("redshift", "o.redshift", "float"),
    ("redshift_auto", "o.redshift_auto", "float"),
    ("redshift_inspected", "o.redshift_inspected", "float"),
    ("redshift_quality", "o.redshift_quality", "int"),
    ("programs", "a.programs", "str"),
    ("tags", "{tags}", "str"),
    ("gratings", "a.gratings", "str"),
    ("n_spectra", "a.n_spectra", "int"),
    ("max_snr", "a.max_snr", "float"),
    ("max_exposure_time", "a.max_exposure_time", "float"),
    ("has_photometry", "o.has_photometry", "bool"),
    ("photo_z", "o.photo_z", "float"),
    ("photo_z_err_lo", "o.photo_z_err_lo", "float"),
    ("photo_z_err_hi", "o.photo_z_err_hi", "float"),
)

SPECTRUM_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("spectrum_id", "s.spectrum_id", "str"),
    ("target_id", "s.target_id", "str"),
    ("object_id", "s.object_id", "str"),
    ("grating", "s.grating", "str"),
    ("fits_path", "s.fits_path", "str"),
    ("signal_to_noise", "s.signal_to_noise", "float"),
    ("exposure_time", "s.exposure_time", "float"),
    ("reduction_version", "s.reduction_version", "str"),
    ("redshift_auto", "s.redshift_auto", "float"),
    ("dq_flags", "s.dq_flags", "int"),
    ("local_path", "{local_path}", "str"),
    ("filter", "s.filter", "str"),
    ("observation", "s.observation", "str"),
    ("program", "p.slug", "str"),
    ("file_hash", "s.file_hash", "str"),
    ("file_size", "s.file_size", "int"),
)

_OBJECT_SORT = {name: expr for name, expr, _ in OBJECT_COLUMNS if not expr.startswith("{")}
_SPECTRUM_SORT = {name: expr for name, expr, _ in SPECTRUM_COLUMNS if not expr.startswith("{")}

_UNITS = {"ra": "deg", "dec": "deg", "exposure_time": "s", "max_exposure_time": "s"}


@dataclass(frozen=True)
class Visibility:
    """What one caller may see.

    ``program_ids`` None means every program (the pipeline, or a client's own synced
    copy, which holds only what its user could see). ``user`` None with
    ``all_tags=False`` means anonymous: system tags only.
    """

    program_ids: frozenset[int] | None = None
    key: str = "*"
    user: str | None = None
    all_tags: bool = True

    @classmethod
    def everything(cls) -> "Visibility":
        return cls()

    def spectra_predicate(self, alias: str = "s") -> tuple[str, list]:
        if self.program_ids is None:
            return "1", []
        ids = sorted(self.program_ids)
        if not ids:
            return "0", []
        return f"{alias}.program_id IN ({','.join('?' * len(ids))})", ids

    def tag_predicate(self, alias: str = "t") -> tuple[str, list]:
        if self.all_tags:
            return "1", []
        if self.user is None:
            return f"{alias}.kind = 'system'", []
        return f"({alias}.kind IN ('system', 'shared') OR ({alias}.kind = 'private' AND {alias}.owner = ?))", [self.user]


def connect(path: str | os.PathLike, readonly: bool = True, timeout: float = 30.0) -> sqlite3.Connection:
    """Open a catalog database. Read-only connections cannot modify it by accident."""
    path = pathlib.Path(path)
    if readonly:
        if not path.exists():
            raise CampfireError(f"no catalog at {path}")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout, check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False)
        conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA cache_size = -65536")
    return conn


def create_catalog(path: str | os.PathLike, owner: str) -> sqlite3.Connection:
    """Create (or open) a catalog with the schema and mark who owns it."""
    conn = connect(path, readonly=False)
    conn.executescript(SCHEMA_PATH.read_text())
    conn.execute("INSERT OR REPLACE INTO archive_meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
    conn.execute("INSERT OR IGNORE INTO archive_meta (key, value) VALUES ('owner', ?)", (owner,))
    conn.commit()
    return conn


def finalize_catalog(conn: sqlite3.Connection) -> None:
    """Bring a bulk-loaded catalog (build, sync) to the current schema and refresh the planner's statistics.

    Fills the spectra's copies of their object's columns where the load left them unset
    (a sync snapshot's rows are inserted before the triggers exist), adds whatever an
    older schema lacks (:func:`campfire.catalog.schema.upgrade_catalog`) and records the
    schema version. Without the statistics SQLite cannot tell that
    ``object_aggregates.visibility`` has a few values, and drives cone searches from the
    wrong table (seconds instead of ms).
    """
    from campfire.catalog.schema import upgrade_catalog

    if conn.in_transaction:
        conn.commit()
    upgrade_catalog(conn)
    conn.execute("ANALYZE")
    conn.commit()


def _convert(values: Sequence, dtype: str) -> np.ndarray:
    """One column of row values as a numpy array (None: NaN, 0, False or '')."""
    if dtype == "float":
        return np.array(values, dtype=float)  # numpy turns None into NaN
    if dtype == "int":
        if None in values:
            values = [0 if v is None else v for v in values]
        return np.array(values, dtype=np.int64)
    if dtype == "bool":
        return np.array([bool(v) for v in values], dtype=bool)
    if None in values:
        values = ["" if v is None else v for v in values]
    return np.array(values, dtype=str)  # a non-string value becomes str(value), as before


def _table(columns: tuple[tuple[str, str, str], ...], rows: list[tuple]) -> Table:
    names = [c[0] for c in columns]
    if rows:
        cols = list(zip(*rows))
        data = [_convert(col, dtype) for col, (_, _, dtype) in zip(cols, columns)]
    else:
        empty = {"float": float, "int": np.int64, "bool": bool, "str": "U1"}
        data = [np.zeros(0, dtype=empty[dtype]) for _, _, dtype in columns]
    table = Table(data, names=names, copy=False)
    for name, unit in _UNITS.items():
        if name in table.colnames:
            table[name].unit = unit
    return table


def objects_table(rows: list[tuple]) -> Table:
    """An astropy Table with the query_objects columns from row tuples."""
    return _table(OBJECT_COLUMNS, rows)


def spectra_table(rows: list[tuple]) -> Table:
    """An astropy Table with the query_spectra columns from row tuples."""
    return _table(SPECTRUM_COLUMNS, rows)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _in(expr: str, values: Sequence) -> tuple[str, list]:
    return f"{expr} IN ({','.join('?' * len(values))})", list(values)


@dataclass(frozen=True)
class _Layout:
    copies: bool                 # spectra has the object copies (schema version 2)
    indexes: frozenset[str]      # the indexes on spectra
    pk_index: str | None         # the spectrum_id index
    n_spectra: int


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
    ("spectra_field_redshift", ("fields", "redshift_range")),
    ("spectra_object", ("tags",)),
    ("spectra_program", ("programs",)),
    ("spectra_redshift", ("redshift_range",)),
    ("spectra_grating", ("gratings", "max_snr_range")),
    ("spectra_snr", ("max_snr_range",)),
)
_ORDER_INDEX = {"signal_to_noise": "spectra_snr", "object_id": "spectra_object", "observation": "spectra_observation"}

_warned_old: set[str] = set()
_warn_lock = threading.Lock()


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


@contextlib.contextmanager
def _gc_paused():
    """No cyclic garbage collection while a result's rows become columns.

    50,000 rows are 50,000 new tuples: the collector would run ~80 times and walk the
    whole heap now and then (~10 % of a large query). Nothing here makes cycles. Only
    pauses a collector that is running; another thread may resume it early (then this
    is just slower).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class LocalCatalog:
    """Queries over ``<root>/meta/campfire.db``.

    Parameters
    ----------
    root : path
        The archive root (or client data_dir).
    visibility : Visibility, optional
        What the caller may see (the server passes one per request).
    expose_paths : bool
        Fill ``local_path`` with absolute paths (client) or leave it empty (server).
    """

    def __init__(self, root: str | os.PathLike, visibility: Visibility | None = None, expose_paths: bool = True):
        self.root = pathlib.Path(root)
        self.db_path = self.root / "meta" / "campfire.db"
        self.visibility = visibility or Visibility.everything()
        self.expose_paths = expose_paths
        self._local = threading.local()
        self._vocab_cache: tuple[tuple, Vocabulary] | None = None
        self._layout_cache: tuple[tuple, _Layout] | None = None

    def with_visibility(self, visibility: Visibility) -> "LocalCatalog":
        other = LocalCatalog(self.root, visibility, self.expose_paths)
        return other

    # -- connections ----------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        """A read-only connection per thread (sqlite3 connections are not thread-safe)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.db_path, readonly=True)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @staticmethod
    def is_valid(root: str | os.PathLike) -> bool:
        """True when ``<root>/meta/campfire.db`` exists and has the campfire schema."""
        path = pathlib.Path(root) / "meta" / "campfire.db"
        if not path.is_file():
            return False
        try:
            conn = connect(path, readonly=True, timeout=5)
            try:
                row = conn.execute("SELECT value FROM archive_meta WHERE key = 'schema_version'").fetchone()
                conn.execute("SELECT 1 FROM spectra LIMIT 1").fetchall()
                return row is not None
            finally:
                conn.close()
        except (sqlite3.Error, CampfireError):
            return False

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM archive_meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    # -- vocabulary -----------------------------------------------------------------
    def _stamp(self) -> tuple:
        st = self.db_path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        try:  # a WAL-mode catalog (the server's) changes in -wal until a checkpoint
            wst = self.db_path.with_name(self.db_path.name + "-wal").stat()
            stamp += (wst.st_mtime_ns, wst.st_size)
        except FileNotFoundError:
            pass
        return stamp

    def _layout(self) -> "_Layout":
        """What this catalog file offers the compiler (schema version 2 or 1, indexes, size)."""
        stamp = self._stamp()
        if self._layout_cache and self._layout_cache[0] == stamp:
            return self._layout_cache[1]
        conn = self.conn
        cols = {r[1] for r in conn.execute("PRAGMA table_info(spectra)")}
        indexes = {r[1]: r[3] for r in conn.execute("PRAGMA index_list(spectra)")}  # name -> origin
        copies = set(OBJECT_COPIES) <= cols
        if not copies:
            _warn_old_schema(self.db_path)
        stat = None
        with contextlib.suppress(sqlite3.Error):  # no sqlite_stat1 before the first ANALYZE
            stat = conn.execute(
                "SELECT stat FROM sqlite_stat1 WHERE tbl = 'spectra' AND idx = 'spectra_object'").fetchone()
        n = int(stat[0].split()[0]) if stat else conn.execute("SELECT count(*) FROM spectra").fetchone()[0]
        layout = _Layout(
            copies=copies,
            indexes=frozenset(indexes),
            pk_index=next((name for name, origin in indexes.items() if origin == "pk"), None),
            n_spectra=int(n),
        )
        self._layout_cache = (stamp, layout)
        return layout

    def vocabulary(self) -> Vocabulary:
        stamp = self._stamp()
        if self._vocab_cache and self._vocab_cache[0] == stamp:
            return self._vocab_cache[1]
        vis, params = self._program_predicate("p")
        conn = self.conn
        programs = {
            slug.lower(): pid
            for slug, pid in conn.execute(f"SELECT slug, program_id FROM programs p WHERE {vis}", params)
        }
        obs = conn.execute(
            f"SELECT observation, field FROM observations ob JOIN programs p USING (program_id) WHERE {vis}", params
        ).fetchall()
        tag_pred, tag_params = self.visibility.tag_predicate("t")
        tags = {r[0] for r in conn.execute(f"SELECT DISTINCT slug FROM tags t WHERE {tag_pred}", tag_params)}
        vocab = Vocabulary(
            fields=frozenset(r[1] for r in obs),
            programs=programs,
            gratings=frozenset(KNOWN_GRATINGS),
            observations=frozenset(r[0] for r in obs),
            tags=frozenset(tags),
        )
        self._vocab_cache = (stamp, vocab)
        return vocab

    def _program_predicate(self, alias: str) -> tuple[str, list]:
        if self.visibility.program_ids is None:
            return "1", []
        ids = sorted(self.visibility.program_ids)
        if not ids:
            return "0", []
        return f"{alias}.program_id IN ({','.join('?' * len(ids))})", ids

    # -- compilation ----------------------------------------------------------------
    def _tags_expr(self) -> tuple[str, list]:
        pred, params = self.visibility.tag_predicate("t")
        expr = (
            "(SELECT group_concat(slug, ',') FROM (SELECT DISTINCT t.slug AS slug FROM object_tags ot "
            f"JOIN tags t ON t.tag_id = ot.tag_id WHERE ot.object_id = o.object_id AND {pred} ORDER BY t.slug))"
        )
        return expr, params

    def _local_path_expr(self) -> tuple[str, list]:
        if not self.expose_paths:
            return "''", []
        return "CASE WHEN lf.spectrum_id IS NULL THEN '' ELSE ? || s.fits_path END", [str(self.root) + os.sep]

    def _common(self, q: Query, terms: dict[str, tuple[str, list]], copies: bool = False) -> None:
        """Object-level filters shared by both kinds, as named terms.

        ``copies``: on spectra, through the spectra's copies of the object columns
        (``s.object_*``) and ``s.object_id IN (…)`` subqueries instead of ``objects o``.
        """
        col = {name: f"s.object_{name}" if copies else f"o.{name}"
               for name in ("field", "redshift", "redshift_quality", "has_photometry")}
        if q.fields:
            terms["fields"] = _in(col["field"], q.fields)
        if q.redshift_range:
            terms["redshift_range"] = (f"{col['redshift']} BETWEEN ? AND ?", list(q.redshift_range))
        if q.redshift_quality:
            terms["redshift_quality"] = _in(col["redshift_quality"], q.redshift_quality)
        if q.inspected_only is not None:
            terms["inspected_only"] = (f"{col['redshift_quality']} {'>' if q.inspected_only else '='} 0", [])
        if q.has_photometry is not None:
            terms["has_photometry"] = (f"{col['has_photometry']} = {1 if q.has_photometry else 0}", [])
        if q.tags:
            pred, tp = self.visibility.tag_predicate("t")
            sql, p = _in("t.slug", q.tags)
            if copies:
                terms["tags"] = (f"s.object_id IN (SELECT ot.object_id FROM object_tags ot JOIN tags t "
                                 f"ON t.tag_id = ot.tag_id WHERE {sql} AND {pred})", p + tp)
            else:
                terms["tags"] = (f"EXISTS (SELECT 1 FROM object_tags ot JOIN tags t ON t.tag_id = ot.tag_id "
                                 f"WHERE ot.object_id = o.object_id AND {sql} AND {pred})", p + tp)
        if q.cone_search:
            ra, dec, radius = q.cone_search
            r = radius / 3600.0
            cosd = max(math.cos(math.radians(min(90.0, abs(dec) + r))), 1e-9)
            dra = min(180.0, r / cosd)
            dlo, dhi = dec - r, dec + r
            boxes = []
            lo, hi = ra - dra, ra + dra
            if dra >= 180:
                boxes.append((0.0, 360.0))
            else:
                boxes.append((max(lo, 0.0), min(hi, 360.0)))
                if lo < 0:
                    boxes.append((lo + 360.0, 360.0))
                if hi > 360:
                    boxes.append((0.0, hi - 360.0))
            box_sql = " OR ".join("(ra_max >= ? AND ra_min <= ? AND dec_max >= ? AND dec_min <= ?)" for _ in boxes)
            box_params = [v for b in boxes for v in (b[0], b[1], dlo, dhi)]
            cra, cdec = math.radians(ra), math.radians(dec)
            vx, vy, vz = math.cos(cdec) * math.cos(cra), math.cos(cdec) * math.sin(cra), math.sin(cdec)
            cone = (f"o.rowid IN (SELECT id FROM objects_rtree WHERE {box_sql}) "
                    f"AND (o.cx * ? + o.cy * ? + o.cz * ?) >= ?")
            cone_params = box_params + [vx, vy, vz, math.cos(math.radians(r))]
            if copies:
                terms["cone_search"] = (f"s.object_id IN (SELECT o.object_id FROM objects o WHERE {cone})", cone_params)
            else:
                terms["cone_search"] = (cone, cone_params)

    def _spectrum_conditions(self, q: Query, terms: dict[str, tuple[str, list]]) -> None:
        """Spectrum-level filters as named terms (used directly for spectra, inside EXISTS for objects)."""
        if q.programs:
            terms["programs"] = _in("s.program_id", q.programs)
        if q.gratings:
            terms["gratings"] = _in("s.grating", q.gratings)
        if q.observations:
            terms["observations"] = _in("s.observation", q.observations)
        if q.dq_flags is not None:
            terms["dq_flags"] = q.dq_flags.to_sql("s.dq_flags")
        if q.staleness is not None:
            stale = (
                "EXISTS (SELECT 1 FROM local_files lf2 WHERE lf2.spectrum_id = s.spectrum_id "
                "AND lf2.sha256 != s.file_hash)"
            )
            terms["staleness"] = (stale if q.staleness else f"NOT {stale}", [])

    def compile(self, q: Query, *, count: bool = False, extra: tuple[str, list] | None = None) -> tuple[str, list]:
        """SQL and parameters for ``q`` (the rows, or their count).

        For spectra on a version-2 catalog this may probe the catalog (a few capped
        index counts) to choose the access path; see :meth:`_spectra_access`.
        """
        terms: dict[str, tuple[str, list]] = {}
        vis_sql, vis_params = self.visibility.spectra_predicate("s")
        if q.kind == "objects":
            self._common(q, terms)
            spec_terms: dict[str, tuple[str, list]] = {}
            self._spectrum_conditions(q, spec_terms)
            if spec_terms:
                terms["spectra"] = (
                    f"EXISTS (SELECT 1 FROM spectra s WHERE s.object_id = o.object_id AND {vis_sql} AND "
                    + " AND ".join(sql for sql, _ in spec_terms.values()) + ")",
                    vis_params + [v for _, p in spec_terms.values() for v in p],
                )
            if q.max_snr_range:
                terms["max_snr_range"] = ("a.max_snr BETWEEN ? AND ?", list(q.max_snr_range))
            if q.search:
                terms["search"] = ("lower(o.object_id) LIKE ? ESCAPE '\\'", [_like(q.search)])
            from_sql = "FROM objects o JOIN object_aggregates a ON a.object_id = o.object_id AND a.visibility = ?"
            from_params = [self.visibility.key]
            sort_expr = _OBJECT_SORT[q.sort]
            tiebreak = "o.object_id"
            if count:
                select, select_params = "SELECT count(*)", []
            else:
                tags_expr, tags_params = self._tags_expr()
                select = "SELECT " + ", ".join(expr.format(tags=tags_expr) for _, expr, _ in OBJECT_COLUMNS)
                select_params = tags_params
        else:
            layout = self._layout()
            terms["visibility"] = (vis_sql, vis_params)
            self._common(q, terms, copies=layout.copies)
            self._spectrum_conditions(q, terms)
            if q.max_snr_range:
                terms["max_snr_range"] = ("s.signal_to_noise BETWEEN ? AND ?", list(q.max_snr_range))
            if q.search:
                terms["search"] = (
                    "(lower(s.spectrum_id) LIKE ? ESCAPE '\\' OR lower(s.object_id) LIKE ? ESCAPE '\\')",
                    [_like(q.search)] * 2,
                )
            joins = ("JOIN programs p ON p.program_id = s.program_id "
                     "LEFT JOIN local_files lf ON lf.spectrum_id = s.spectrum_id")
            if layout.copies:
                hint = "" if extra else self._spectra_access(q, terms, layout, count)
                # a count needs neither join (every spectrum has its program: a foreign key),
                # so an index holding the filters answers it alone
                from_sql = f"FROM spectra s{hint}" + ("" if count else " " + joins)
            else:  # schema version 1: the object columns live in objects only
                from_sql = "FROM spectra s JOIN objects o ON o.object_id = s.object_id " + joins
            from_params = []
            sort_expr = _SPECTRUM_SORT[q.sort]
            tiebreak = "s.spectrum_id"
            if count:
                select, select_params = "SELECT count(*)", []
            else:
                lp_expr, lp_params = self._local_path_expr()
                select = "SELECT " + ", ".join(expr.format(local_path=lp_expr) for _, expr, _ in SPECTRUM_COLUMNS)
                select_params = lp_params
        if extra:
            terms["extra"] = (extra[0], list(extra[1]))
        where = [sql for sql, _ in terms.values() if sql != "1"]
        params = [v for sql, p in terms.values() if sql != "1" for v in p]
        sql = f"{select} {from_sql}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        all_params = select_params + from_params + params
        if count:
            return sql, all_params
        direction = "DESC" if q.sort_dir == "desc" else "ASC"
        sql += f" ORDER BY {sort_expr} {direction}"
        if sort_expr != tiebreak:  # a repeated term would cost a (no-op) sorter after an index walk
            sql += f", {tiebreak} {direction}"
        if q.limit is not None or q.offset:
            sql += " LIMIT ? OFFSET ?"
            all_params += [q.limit if q.limit is not None else -1, q.offset]
        return sql, all_params

    def _spectra_access(self, q: Query, terms: dict[str, tuple[str, list]], layout: "_Layout", count: bool) -> str:
        """The access path of a spectra query: ``' INDEXED BY name'`` or ``' NOT INDEXED'``.

        SQLite 3.40 without STAT4 guesses every range to keep a fixed fraction of an
        index and prices an index lookup (~3-5 µs here) far below its cost relative
        to a sequential scan (~0.2 µs a row): a broad redshift range or a common
        grating went through an index and looked up hundreds of thousands of rows
        one by one. So each index that a present filter can drive is probed with
        ``count(*)`` over the index alone, capped at the best count so far and at
        :data:`_SELECTIVE` of the table; the smallest one under the cap is used.
        Otherwise a page in spectrum_id order (or a small page sorted by another
        indexed column) walks that index and stops early, and everything else is one
        scan of the table plus a sort. Measured on 1,000,000 spectra (ms of CPU):
        50,107 rows of PRISM, z 4-6, S/N > 5, two flags, inspected: scan 334, walk
        535, z index 726, grating index 1238; 52,679 rows of z 5-5.4: z index 279,
        scan 335; the first 50,000 G235M spectra: walk 233, scan 467.
        """
        cap = max(_MIN_CAP, int(layout.n_spectra * _SELECTIVE))
        best, best_n = None, cap
        for index, keys in _DRIVERS:
            if keys[0] not in terms or index not in layout.indexes or best_n == 0:
                continue
            used = [terms[k] for k in keys if k in terms]
            probe = (f"SELECT count(*) FROM (SELECT 1 FROM spectra s INDEXED BY {index} WHERE "
                     + " AND ".join(sql for sql, _ in used) + " LIMIT ?)")
            n = self.conn.execute(probe, [v for _, p in used for v in p] + [best_n]).fetchone()[0]
            if n < best_n:
                best, best_n = index, n
        if best is not None:
            return f" INDEXED BY {best}"
        filters = {k for k, (sql, _) in terms.items() if sql != "1" and k != "visibility"}
        if count:
            if not filters:
                return ""  # SQLite counts over its smallest index
            # a count that one index answers alone never reads the table
            if terms["visibility"][0] == "1":
                for index, keys in _DRIVERS:
                    if index in layout.indexes and keys[0] in filters and filters <= set(keys):
                        return f" INDEXED BY {index}"
            return " NOT INDEXED"
        # the probes say the indexed filters are broad: the rows a walk passes mostly
        # match, unless a search or the stale files (which may match very few) filter too
        filters_pass_most = "search" not in filters and q.staleness is not True
        order = layout.pk_index if q.sort == "spectrum_id" else _ORDER_INDEX.get(q.sort)
        if order in layout.indexes and filters_pass_most:
            # walking the sort column's index looks up every row it passes, but needs no
            # sort and stops after the page. Along spectrum_id the rows come nearly in
            # storage order (ids start with the observation, and catalogs are written
            # observation by observation): ~0.5 µs a row, so even a walk of the whole
            # table costs less than 2 scans, and any page is worth it. Along another
            # column every row is a random lookup (~4 µs): small pages only.
            if not filters or (q.limit is not None
                               and (order == layout.pk_index or q.offset + q.limit <= _PAGE_WALK)):
                return f" INDEXED BY {order}"
        return " NOT INDEXED"

    # -- queries --------------------------------------------------------------------
    def query(self, q: Query) -> Table:
        """Rows of ``q`` as an astropy Table (query_objects / query_spectra columns)."""
        q = q.resolve(self.vocabulary())
        sql, params = self.compile(q)
        with _gc_paused():
            rows = self.conn.execute(sql, params).fetchall()
            return objects_table(rows) if q.kind == "objects" else spectra_table(rows)

    def count(self, q: Query) -> int:
        q = q.resolve(self.vocabulary())
        sql, params = self.compile(q, count=True)
        return int(self.conn.execute(sql, params).fetchone()[0])

    def iter_rows(self, q: Query, batch: int = 2000) -> Iterator[dict[str, Any]]:
        """Stream rows as dicts with constant memory (one cursor, fetchmany)."""
        q = q.resolve(self.vocabulary())
        sql, params = self.compile(q)
        columns = OBJECT_COLUMNS if q.kind == "objects" else SPECTRUM_COLUMNS
        names = [c[0] for c in columns]
        conn = connect(self.db_path, readonly=True)  # own connection: the caller may query meanwhile
        try:
            cur = conn.execute(sql, params)
            while True:
                chunk = cur.fetchmany(batch)
                if not chunk:
                    break
                for row in chunk:
                    yield _row_dict(names, columns, row)
        finally:
            conn.close()

    def query_rows(self, q: Query) -> list[tuple]:
        """Raw row tuples (for the server's JSON encoding)."""
        q = q.resolve(self.vocabulary())
        sql, params = self.compile(q)
        return self.conn.execute(sql, params).fetchall()

    # -- single records -----------------------------------------------------------
    def object_row(self, object_id: str) -> dict[str, Any] | None:
        q = Query(kind="objects", sort="object_id")
        sql, params = self.compile(q, extra=("o.object_id = ?", [object_id]))
        row = self.conn.execute(sql, params).fetchone()
        return _row_dict([c[0] for c in OBJECT_COLUMNS], OBJECT_COLUMNS, row) if row else None

    def spectrum_row(self, spectrum_id: str) -> dict[str, Any] | None:
        q = Query(kind="spectra", sort="spectrum_id")
        sql, params = self.compile(q, extra=("s.spectrum_id = ?", [spectrum_id]))
        row = self.conn.execute(sql, params).fetchone()
        return _row_dict([c[0] for c in SPECTRUM_COLUMNS], SPECTRUM_COLUMNS, row) if row else None

    def object_spectra(self, object_id: str) -> list[dict[str, Any]]:
        q = Query(kind="spectra", sort="spectrum_id")
        sql, params = self.compile(q, extra=("s.object_id = ?", [object_id]))
        names = [c[0] for c in SPECTRUM_COLUMNS]
        return [_row_dict(names, SPECTRUM_COLUMNS, r) for r in self.conn.execute(sql, params)]

    def object_photometry(self, object_id: str) -> dict[str, Any] | None:
        """{'catalog', 'photo_z', 'photo_z_err_lo', 'photo_z_err_hi', 'bands': [(band, flux, err, wave)]}."""
        head = self.conn.execute(
            "SELECT phot_catalog, photo_z, photo_z_err_lo, photo_z_err_hi, has_photometry FROM objects WHERE object_id = ?",
            (object_id,),
        ).fetchone()
        if head is None or not head[4]:
            return None
        bands = self.conn.execute(
            "SELECT band, flux, flux_err, wavelength FROM photometry WHERE object_id = ? ORDER BY wavelength",
            (object_id,),
        ).fetchall()
        return {
            "catalog": head[0] or "",
            "photo_z": head[1],
            "photo_z_err_lo": head[2],
            "photo_z_err_hi": head[3],
            "bands": [list(b) for b in bands],
        }

    # -- metadata -----------------------------------------------------------------
    def programs(self) -> Table:
        vis, params = self._program_predicate("p")
        rows = self.conn.execute(
            f"SELECT program_id, slug, program_name, pi_name, is_public FROM programs p WHERE {vis} ORDER BY program_id",
            params,
        ).fetchall()
        cols = (("program_id", "", "int"), ("slug", "", "str"), ("program_name", "", "str"),
                ("pi_name", "", "str"), ("is_public", "", "bool"))
        return _table(cols, rows)

    def fields(self) -> list[str]:
        return sorted(self.vocabulary().fields)

    def observations(self) -> list[str]:
        return sorted(self.vocabulary().observations)

    def gratings(self) -> list[str]:
        vis, params = self.visibility.spectra_predicate("s")
        rows = self.conn.execute(f"SELECT DISTINCT grating FROM spectra s WHERE {vis}", params).fetchall()
        order = {g: i for i, g in enumerate(KNOWN_GRATINGS)}
        return sorted((r[0] for r in rows), key=lambda g: (order.get(g, 99), g))

    def metadata(self) -> dict[str, list]:
        return {
            "programs": [str(s) for s in self.programs()["slug"]],
            "fields": self.fields(),
            "gratings": self.gratings(),
            "observations": self.observations(),
        }

    def tags(self) -> Table:
        pred, params = self.visibility.tag_predicate("t")
        rows = self.conn.execute(
            f"""SELECT t.slug, t.name, (SELECT count(*) FROM object_tags ot JOIN object_aggregates a
                    ON a.object_id = ot.object_id AND a.visibility = ? WHERE ot.tag_id = t.tag_id),
                    t.kind, coalesce(t.owner, ''), t.description
                FROM tags t WHERE {pred} ORDER BY t.kind != 'system', t.slug, t.owner""",
            [self.visibility.key] + params,
        ).fetchall()
        cols = (("slug", "", "str"), ("name", "", "str"), ("member_count", "", "int"),
                ("kind", "", "str"), ("owner", "", "str"), ("description", "", "str"))
        return _table(cols, rows)

    def stale_count(self) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM local_files lf JOIN spectra s USING (spectrum_id) WHERE lf.sha256 != s.file_hash"
        ).fetchone()
        return int(row[0])

    def counts(self) -> dict[str, int]:
        c = self.conn
        key = self.visibility.key
        vis, params = self.visibility.spectra_predicate("s")
        return {
            "observations": len(self.vocabulary().observations),
            "objects": c.execute("SELECT count(*) FROM object_aggregates WHERE visibility = ?", (key,)).fetchone()[0],
            "spectra": c.execute(f"SELECT count(*) FROM spectra s WHERE {vis}", params).fetchone()[0],
        }


def _row_dict(names, columns, row) -> dict[str, Any]:
    out = {}
    for name, (_, _, dtype), value in zip(names, columns, row):
        if value is None:
            value = float("nan") if dtype == "float" else (0 if dtype == "int" else ("" if dtype == "str" else False))
        elif dtype == "bool":
            value = bool(value)
        out[name] = value
    return out
