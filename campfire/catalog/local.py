"""The SQLite backend: a :class:`~campfire.catalog.filters.Query` compiled to SQL.

Used by the client on a local archive root / synced data_dir, and by the server on the
archive it serves (with a :class:`Visibility` restricting what a caller may see). All
user values travel as bound parameters; column names come from whitelists only.
"""
from __future__ import annotations

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
from campfire.errors import CampfireError, ValidationError

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
SCHEMA_VERSION = "1"

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
    """Refresh the query planner's statistics after a bulk load (build, sync).

    Without them SQLite cannot tell that ``object_aggregates.visibility`` has a few
    values, and drives cone searches from the wrong table (seconds instead of ms).
    """
    conn.execute("ANALYZE")
    conn.commit()


def _convert(values: Sequence, dtype: str) -> np.ndarray:
    if dtype == "float":
        return np.array([np.nan if v is None else v for v in values], dtype=float)
    if dtype == "int":
        return np.array([0 if v is None else v for v in values], dtype=np.int64)
    if dtype == "bool":
        return np.array([bool(v) for v in values], dtype=bool)
    return np.array(["" if v is None else str(v) for v in values], dtype=str)


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
    def vocabulary(self) -> Vocabulary:
        st = self.db_path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        try:  # a WAL-mode catalog (the server's) changes in -wal until a checkpoint
            wst = self.db_path.with_name(self.db_path.name + "-wal").stat()
            stamp += (wst.st_mtime_ns, wst.st_size)
        except FileNotFoundError:
            pass
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

    def _common(self, q: Query, where: list[str], params: list, obj: str = "o") -> None:
        """Object-level filters shared by both kinds."""
        if q.fields:
            sql, p = _in(f"{obj}.field", q.fields)
            where.append(sql)
            params += p
        if q.redshift_range:
            where.append(f"{obj}.redshift BETWEEN ? AND ?")
            params += list(q.redshift_range)
        if q.redshift_quality:
            sql, p = _in(f"{obj}.redshift_quality", q.redshift_quality)
            where.append(sql)
            params += p
        if q.inspected_only is not None:
            where.append(f"{obj}.redshift_quality {'>' if q.inspected_only else '='} 0")
        if q.has_photometry is not None:
            where.append(f"{obj}.has_photometry = {1 if q.has_photometry else 0}")
        if q.tags:
            pred, tp = self.visibility.tag_predicate("t")
            sql, p = _in("t.slug", q.tags)
            where.append(
                f"EXISTS (SELECT 1 FROM object_tags ot JOIN tags t ON t.tag_id = ot.tag_id "
                f"WHERE ot.object_id = {obj}.object_id AND {sql} AND {pred})"
            )
            params += p + tp
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
            where.append(
                f"{obj}.rowid IN (SELECT id FROM objects_rtree WHERE {box_sql}) "
                f"AND ({obj}.cx * ? + {obj}.cy * ? + {obj}.cz * ?) >= ?"
            )
            params += box_params + [vx, vy, vz, math.cos(math.radians(r))]

    def _spectrum_conditions(self, q: Query, where: list[str], params: list, spec: str = "s") -> None:
        """Spectrum-level filters (used directly for spectra, inside EXISTS for objects)."""
        if q.programs:
            sql, p = _in(f"{spec}.program_id", q.programs)
            where.append(sql)
            params += p
        if q.gratings:
            sql, p = _in(f"{spec}.grating", q.gratings)
            where.append(sql)
            params += p
        if q.observations:
            sql, p = _in(f"{spec}.observation", q.observations)
            where.append(sql)
            params += p
        if q.dq_flags is not None:
            sql, p = q.dq_flags.to_sql(f"{spec}.dq_flags")
            where.append(sql)
            params += p
        if q.staleness is not None:
            stale = (
                f"EXISTS (SELECT 1 FROM local_files lf2 WHERE lf2.spectrum_id = {spec}.spectrum_id "
                f"AND lf2.sha256 != {spec}.file_hash)"
            )
            where.append(stale if q.staleness else f"NOT {stale}")

    def compile(self, q: Query, *, count: bool = False, extra: tuple[str, list] | None = None) -> tuple[str, list]:
        """SQL and parameters for ``q`` (the rows, or their count)."""
        where: list[str] = []
        params: list = []
        vis_sql, vis_params = self.visibility.spectra_predicate("s")
        if q.kind == "objects":
            self._common(q, where, params)
            spec_where: list[str] = []
            spec_params: list = []
            self._spectrum_conditions(q, spec_where, spec_params)
            if spec_where:
                where.append(
                    f"EXISTS (SELECT 1 FROM spectra s WHERE s.object_id = o.object_id AND {vis_sql} AND "
                    + " AND ".join(spec_where)
                    + ")"
                )
                params += vis_params + spec_params
            if q.max_snr_range:
                where.append("a.max_snr BETWEEN ? AND ?")
                params += list(q.max_snr_range)
            if q.search:
                where.append("lower(o.object_id) LIKE ? ESCAPE '\\'")
                params.append(_like(q.search))
            if extra:
                where.append(extra[0])
                params += extra[1]
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
            self._common(q, where, params)
            self._spectrum_conditions(q, where, params)
            where.insert(0, vis_sql)
            params[:0] = vis_params
            if q.max_snr_range:
                where.append("s.signal_to_noise BETWEEN ? AND ?")
                params += list(q.max_snr_range)
            if q.search:
                where.append("(lower(s.spectrum_id) LIKE ? ESCAPE '\\' OR lower(s.object_id) LIKE ? ESCAPE '\\')")
                params += [_like(q.search)] * 2
            if extra:
                where.append(extra[0])
                params += extra[1]
            from_sql = (
                "FROM spectra s JOIN objects o ON o.object_id = s.object_id "
                "JOIN programs p ON p.program_id = s.program_id "
                "LEFT JOIN local_files lf ON lf.spectrum_id = s.spectrum_id"
            )
            from_params = []
            sort_expr = _SPECTRUM_SORT[q.sort]
            tiebreak = "s.spectrum_id"
            if count:
                select, select_params = "SELECT count(*)", []
            else:
                lp_expr, lp_params = self._local_path_expr()
                select = "SELECT " + ", ".join(expr.format(local_path=lp_expr) for _, expr, _ in SPECTRUM_COLUMNS)
                select_params = lp_params
        sql = f"{select} {from_sql}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        all_params = select_params + from_params + params
        if count:
            return sql, all_params
        direction = "DESC" if q.sort_dir == "desc" else "ASC"
        sql += f" ORDER BY {sort_expr} {direction}, {tiebreak} {direction}"
        if q.limit is not None or q.offset:
            sql += " LIMIT ? OFFSET ?"
            all_params += [q.limit if q.limit is not None else -1, q.offset]
        return sql, all_params

    # -- queries --------------------------------------------------------------------
    def query(self, q: Query) -> Table:
        """Rows of ``q`` as an astropy Table (query_objects / query_spectra columns)."""
        q = q.resolve(self.vocabulary())
        sql, params = self.compile(q)
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
