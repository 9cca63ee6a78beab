"""The bulk catalog export behind ``sync()``: one streamed, gzip-compressed response.

``GET /api/v1/export[?since=CURSOR]`` answers with one of two bodies (the
``X-Campfire-Export`` header says which; both are gzip streams):

``sqlite-snapshot`` — a full export
    A SQLite database with the catalog schema holding exactly what the caller may
    see: spectra of their programs, objects with at least one such spectrum,
    their photometry, aggregates over the visible spectra (under the visibility key
    ``'*'``: the client's copy holds nothing else), programs, observations, the
    caller's visible tags and their members, and the inspections resting on visible
    spectra only (in blind mode, the caller's own). The objects' inspection fields
    (``redshift``, ``redshift_inspected``, ``redshift_quality``) are the caller's
    visibility set's, and an object's ``updated_at`` is the later of its own and of
    the latest inspection the caller may see (``object_aggregates.inspected_at``), so
    a grade that changes what this caller sees moves the object for the next delta,
    and one they may not see does not. Tables only — the client builds the
    indexes and the R*Tree (the server's CPU copies rows, the client's builds
    indexes, and the compressed transfer is a third smaller). The server builds it
    with ``INSERT … SELECT`` inside SQLite (no row passes through Python), in one read
    transaction (a consistent snapshot), into a temporary file that is removed after
    streaming. ``archive_meta`` carries ``export_cursor``.

``ndjson-delta`` — an incremental export (``since`` = the cursor of an earlier export
of the same caller, visibility and catalog)
    One JSON document per line::

        {"type": "header", "format": "campfire-export", "version": 2, "full": false, "cursor": "..."}
        {"type": "table", "table": "spectra", "columns": [...], "mode": "upsert"|"replace"}
        {"type": "rows", "table": "spectra", "rows": [[...], ...]}
        {"type": "end", "counts": {"observations": N, "objects": N, "spectra": N}}

    Objects, photometry, spectra and aggregates changed after the cursor (found
    through the ``updated_at`` indexes, and the objects of visible inspections newer
    than the cursor's last one — ids, not times), those inspections, programs and observations whole, and the
    tags and their members whole only when their fingerprint changed (so a tag edit
    or deletion arrives, and an unchanged re-sync stays small). Deleted rows show up
    as a count mismatch in the ``end`` line: the client then asks for a full export.
    A delta that would carry more than a fifth of the catalog is sent as a snapshot.

An interrupted stream is detected by the client (no gzip trailer / no ``end`` line)
and discarded: its previous catalog is left as it was.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import pathlib
import sqlite3
import tempfile
import uuid
import zlib
from dataclasses import dataclass
from typing import Iterator

from campfire.catalog.columns import VIEW_FIELDS
from campfire.catalog.db import connect, write_meta
from campfire.catalog.schema import schema_statements
from campfire.catalog.visibility import Visibility
from campfire.errors import ValidationError

__all__ = ["EXPORT_FORMAT", "EXPORT_VERSION", "ExportPlan", "plan_export", "encode_cursor", "decode_cursor"]

EXPORT_FORMAT = "campfire-export"
EXPORT_VERSION = 2
ROWS_PER_LINE = 2000
FLUSH_BYTES = 1 << 20
DELTA_LIMIT = 0.2  # a delta above this fraction of the visible spectra is sent as a snapshot


def encode_cursor(payload: dict) -> str:
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict:
    """The payload of a ``since`` cursor; ValidationError for anything malformed."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= 1000:
        raise ValidationError("since: expected the cursor of an earlier export")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationError("since: not a valid export cursor (use the 'cursor' of an earlier export)") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("t"), str):
        raise ValidationError("since: not a valid export cursor (use the 'cursor' of an earlier export)")
    return payload


def _columns(conn: sqlite3.Connection, table: str, schema: str = "main") -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA {schema}.table_info({table})")]  # constants only


def _marks(values) -> str:
    return ",".join("?" * len(values))


def _tag_fingerprint(conn: sqlite3.Connection, vis: Visibility, schema: str = "main") -> str:
    """A digest of the caller's visible tags and their member counts (changes when any edit happens)."""
    pred, params = vis.tag_predicate("t")
    rows = conn.execute(
        f"SELECT t.tag_id, t.slug, t.name, t.description, t.kind, t.owner, t.updated_at, "
        f"(SELECT count(*) FROM {schema}.object_tags ot WHERE ot.tag_id = t.tag_id) "
        f"FROM {schema}.tags t WHERE {pred} ORDER BY t.tag_id", params,
    ).fetchall()
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:24]


def _high_water(conn: sqlite3.Connection, vis: Visibility) -> str:
    """The latest ``updated_at`` of the objects and spectra ``vis`` may see (the cursor's time part).

    Over visible rows only: a cursor must not tell when hidden data last changed. Each
    side walks its ``updated_at`` index from the newest row and stops at the first
    visible one.
    """
    spec_pred, spec_params = vis.program_predicate("s")
    spectra = conn.execute(
        f"SELECT s.updated_at FROM spectra s INDEXED BY spectra_updated WHERE {spec_pred} "
        "ORDER BY s.updated_at DESC LIMIT 1", spec_params).fetchone()
    objects = conn.execute(
        "SELECT o.updated_at FROM objects o INDEXED BY objects_updated WHERE EXISTS (SELECT 1 FROM "
        "object_aggregates a WHERE a.visibility = ? AND a.object_id = o.object_id) "
        "ORDER BY o.updated_at DESC LIMIT 1", (vis.key,)).fetchone()
    return max((row[0] for row in (spectra, objects) if row and row[0]), default="")


def _last_inspection(conn: sqlite3.Connection, vis: Visibility) -> int:
    """The newest inspection id the caller may see (0: none): the inspections part of a cursor.

    Ids, not times: a record's id only grows, whatever the clocks of the writers (a spectrum
    stamped in the future must not hide the next grades from a delta), and an id of a hidden
    record never shows in the cursor.
    """
    pred, params = vis.inspection_predicate("i")
    row = conn.execute(f"SELECT i.inspection_id FROM inspections i WHERE {pred} ORDER BY i.inspection_id DESC LIMIT 1",
                       params).fetchone()
    return int(row[0]) if row else 0


def _object_select(names: list[str]) -> str:
    """The objects columns as the caller's visibility set (``object_aggregates a``) sees them (``o``: objects)."""
    view = {name: f"a.{name}" for name in VIEW_FIELDS}
    view["updated_at"] = "max(o.updated_at, coalesce(a.inspected_at, ''))"
    return ", ".join(view.get(c, f"o.{c}") for c in names)


def _inspection_filter(vis: Visibility, own_only: bool, spectra: str = "spectra") -> tuple[str, list]:
    """The inspections ``i`` the caller gets: those resting on visible spectra (blind mode: their own)."""
    sql, params = vis.inspection_predicate("i", spectra)
    if own_only:
        if vis.user is None:
            return "0", []
        sql, params = f"{sql} AND i.reviewer = ?", params + [vis.user]
    return sql, params


@dataclass
class ExportPlan:
    """What an export request will stream: its kind, cursor and a gzip chunk iterator."""

    kind: str                 # "sqlite-snapshot" | "ndjson-delta"
    cursor: str
    chunks: Iterator[bytes]


def plan_export(db_path, visibility: Visibility, *, since: str | None = None, catalog_id: str = "",
                workdir: str | os.PathLike | None = None, own_inspections_only: bool = False) -> ExportPlan:
    """Decide between a snapshot and a delta for this caller and return the stream.

    The cursor is taken *before* the rows are read, so a row changed meanwhile is
    sent again next time rather than missed. ``own_inspections_only`` (blind mode):
    of the inspection records, only the caller's own are exported.
    """
    conn = connect(db_path, readonly=True)
    try:
        high = _high_water(conn, visibility)
        tags = _tag_fingerprint(conn, visibility)
        payload = decode_cursor(since) if since else None
        cursor = encode_cursor({"v": EXPORT_VERSION, "t": high, "k": visibility.key, "u": visibility.user or "",
                                "c": catalog_id, "g": tags, "i": _last_inspection(conn, visibility)})
        delta_ok = (
            payload is not None and payload.get("v") == EXPORT_VERSION and payload.get("k") == visibility.key
            and payload.get("u", "") == (visibility.user or "") and payload.get("c", "") == catalog_id
            and isinstance(payload.get("i"), int)  # a cursor of a server before inspections: a snapshot
        )
        if delta_ok:
            spec_pred, spec_params = visibility.program_predicate("s")
            changed = conn.execute(
                f"SELECT count(*) FROM spectra s INDEXED BY spectra_updated WHERE s.updated_at > ? AND {spec_pred}",
                [payload["t"]] + spec_params,
            ).fetchone()[0]
            total = conn.execute(f"SELECT count(*) FROM spectra s WHERE {spec_pred}", spec_params).fetchone()[0]
            delta_ok = changed <= DELTA_LIMIT * max(total, 1)
    finally:
        conn.close()
    if delta_ok:
        header = {"type": "header", "format": EXPORT_FORMAT, "version": EXPORT_VERSION, "full": False,
                  "cursor": cursor, "since": since}
        return ExportPlan("ndjson-delta", cursor, _delta(db_path, visibility, header, payload["t"], payload["i"],
                                                         payload.get("g") != tags, own_inspections_only))
    return ExportPlan("sqlite-snapshot", cursor,
                      _snapshot(db_path, visibility, cursor, workdir, own_inspections_only))


# -------------------------------------------------------------------------- snapshot
def _snapshot(db_path, vis: Visibility, cursor: str, workdir, own_inspections_only: bool) -> Iterator[bytes]:
    workdir = pathlib.Path(workdir or tempfile.gettempdir())
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"export-{uuid.uuid4().hex}.db"
    try:
        conn = connect(path, readonly=False, autocommit=True)
        try:
            _build_snapshot(conn, pathlib.Path(db_path), vis, cursor, schema_statements()[0], own_inspections_only)
        finally:
            conn.close()
        yield from _gzip_members(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _gzip_members(path: pathlib.Path, block_size: int = 8 << 20, threads: int = 2) -> Iterator[bytes]:
    """The file as concatenated gzip members of ``block_size`` bytes, compressed by ``threads`` threads.

    zlib releases the GIL, so two cores compress twice as fast; a multi-member gzip
    stream is still one valid gzip file (RFC 1952), and the client reads it member by
    member. Level 1: on loopback and LANs compression speed matters more than ratio.
    """
    from concurrent.futures import ThreadPoolExecutor

    def pack(block: bytes) -> bytes:
        z = zlib.compressobj(1, zlib.DEFLATED, 31)
        return z.compress(block) + z.flush()

    with open(path, "rb") as f, ThreadPoolExecutor(max_workers=threads) as pool:
        pending = []
        while True:
            block = f.read(block_size)
            if block:
                pending.append(pool.submit(pack, block))
            # keep at most threads + 1 blocks in flight: bounded memory, ordered output
            while pending and (len(pending) > threads or not block):
                yield pending.pop(0).result()
            if not block:
                break


def _build_snapshot(conn: sqlite3.Connection, src_path: pathlib.Path, vis: Visibility, cursor: str,
                    table_statements: list[str], own_inspections_only: bool = False) -> None:
    conn.execute("PRAGMA foreign_keys = OFF")  # rows copied as the source holds them
    conn.execute("PRAGMA journal_mode = OFF")  # a scratch file, deleted after streaming
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -131072")
    for stmt in table_statements:
        conn.execute(stmt)
    conn.execute("ATTACH DATABASE ? AS src", (f"file:{src_path}?mode=ro",))
    conn.execute("BEGIN")  # one read snapshot of src for every table
    key = vis.key
    all_ids = [r[0] for r in conn.execute("SELECT program_id FROM src.programs")]
    everything = vis.program_ids is None or set(all_ids) <= set(vis.program_ids)
    spec_pred, spec_params = vis.program_predicate("s")
    prog_pred, prog_params = vis.program_predicate("p")
    tag_pred, tag_params = vis.tag_predicate("t")
    visible_obj = "(SELECT object_id FROM src.object_aggregates WHERE visibility = ?)"

    def copy(table: str, select: str, params: list, alias: str) -> None:
        cols = [c for c in _columns(conn, table) if c in set(_columns(conn, table, "src"))]
        sel = ", ".join(f"{alias}.{c}" for c in cols)
        conn.execute(f"INSERT INTO main.{table} ({', '.join(cols)}) SELECT {sel} {select}", params)

    copy("programs", f"FROM src.programs p WHERE {prog_pred}", prog_params, "p")
    copy("observations", f"FROM src.observations ob JOIN src.programs p ON p.program_id = ob.program_id "
                         f"WHERE {prog_pred}", prog_params, "ob")
    obj_cols = [c for c in _columns(conn, "objects") if c in set(_columns(conn, "objects", "src"))]
    conn.execute(f"INSERT INTO main.objects ({', '.join(obj_cols)}) SELECT {_object_select(obj_cols)} "
                 "FROM src.objects o JOIN src.object_aggregates a ON a.object_id = o.object_id AND a.visibility = ?",
                 [key])
    if everything:  # every program visible: plain copies, no per-row filter
        copy("photometry", "FROM src.photometry ph", [], "ph")
        copy("spectra", "FROM src.spectra s", [], "s")
    else:
        copy("photometry", f"FROM src.photometry ph WHERE ph.object_id IN {visible_obj}", [key], "ph")
        copy("spectra", f"FROM src.spectra s WHERE {spec_pred}", spec_params, "s")
    insp_pred, insp_params = _inspection_filter(vis, own_inspections_only, "src.spectra")
    copy("inspections", f"FROM src.inspections i WHERE i.object_id IN {visible_obj} AND {insp_pred}",
         [key] + insp_params, "i")
    agg_cols = _columns(conn, "object_aggregates")
    conn.execute(
        f"INSERT INTO main.object_aggregates ({', '.join(agg_cols)}) SELECT "
        + ", ".join("'*'" if c == "visibility" else f"a.{c}" for c in agg_cols)
        + " FROM src.object_aggregates a WHERE a.visibility = ?", [key],
    )
    copy("tags", f"FROM src.tags t WHERE {tag_pred}", tag_params, "t")
    # members of visible tags that are visible objects (a primary-key lookup per member row)
    conn.execute(
        "INSERT INTO main.object_tags (tag_id, object_id) SELECT ot.tag_id, ot.object_id FROM src.tags t "
        "JOIN src.object_tags ot ON ot.tag_id = t.tag_id "
        "JOIN src.object_aggregates a ON a.visibility = ? AND a.object_id = ot.object_id "
        f"WHERE {tag_pred}",
        [key] + tag_params,
    )
    schema_version = conn.execute("SELECT value FROM src.archive_meta WHERE key = 'schema_version'").fetchone()
    write_meta(conn, {  # main's archive_meta: an unqualified name is looked up in main before src
        "schema_version": schema_version[0] if schema_version else "1",
        "export_format": "sqlite-snapshot",
        "export_version": str(EXPORT_VERSION),
        "export_cursor": cursor,
    })
    conn.execute("COMMIT")
    conn.execute("DETACH DATABASE src")


# ----------------------------------------------------------------------------- delta
class _Gzip:
    """Accumulate NDJSON lines and yield gzip chunks of about FLUSH_BYTES."""

    def __init__(self, level: int = 1):
        self._z = zlib.compressobj(level, zlib.DEFLATED, 31)
        self._buf: list[bytes] = []
        self._size = 0

    def line(self, obj) -> bytes | None:
        data = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
        self._buf.append(data)
        self._size += len(data)
        if self._size >= FLUSH_BYTES:
            return self.flush()
        return None

    def flush(self) -> bytes:
        out = self._z.compress(b"".join(self._buf))
        self._buf, self._size = [], 0
        return out

    def finish(self) -> bytes:
        return self.flush() + self._z.flush()


def _delta(db_path, vis: Visibility, header: dict, t_since: str, i_since: int, tags_changed: bool,
           own_inspections_only: bool = False) -> Iterator[bytes]:
    conn = connect(db_path, readonly=True)
    gz = _Gzip()
    try:
        conn.execute("BEGIN")  # one consistent snapshot for every table
        out = gz.line(header)
        if out:
            yield out
        spec_pred, spec_params = vis.program_predicate("s")
        prog_pred, prog_params = vis.program_predicate("p")
        key = vis.key
        # objects touched since the cursor, found through the updated_at indexes
        touched = {r[0] for r in conn.execute("SELECT object_id FROM objects WHERE updated_at > ?", (t_since,))}
        touched |= {r[0] for r in conn.execute(
            f"SELECT s.object_id FROM spectra s INDEXED BY spectra_updated WHERE s.updated_at > ? AND {spec_pred}",
            [t_since] + spec_params)}
        # what the caller sees of the objects' inspections changed (never moved by a hidden one)
        seen_pred, seen_params = vis.inspection_predicate("i")
        touched |= {r[0] for r in conn.execute(
            f"SELECT i.object_id FROM inspections i WHERE i.inspection_id > ? AND {seen_pred}", [i_since] + seen_params)}
        ids = sorted(touched)
        visible: list[str] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            visible += [r[0] for r in conn.execute(
                f"SELECT object_id FROM object_aggregates WHERE visibility = ? AND object_id IN ({_marks(chunk)})",
                [key] + chunk)]

        def section(table: str, names: list[str], mode: str, queries) -> Iterator[bytes]:
            out = gz.line({"type": "table", "table": table, "columns": names, "mode": mode})
            if out:
                yield out
            for sql, params in queries:
                cur = conn.execute(sql, params)
                while True:
                    rows = cur.fetchmany(ROWS_PER_LINE)
                    if not rows:
                        break
                    out = gz.line({"type": "rows", "table": table, "rows": rows})
                    if out:
                        yield out

        def by_object(table: str, alias: str, names: list[str]):
            sel = ", ".join(f"{alias}.{c}" for c in names)
            source, params = f"{table} {alias}", []
            if table == "objects":  # the inspection fields as this caller's set sees them
                sel = _object_select(names)
                source = "objects o JOIN object_aggregates a ON a.object_id = o.object_id AND a.visibility = ?"
                params = [key]
            for i in range(0, len(visible), 500):
                chunk = visible[i:i + 500]
                yield f"SELECT {sel} FROM {source} WHERE {alias}.object_id IN ({_marks(chunk)})", params + chunk

        names = _columns(conn, "programs")
        yield from section("programs", names, "replace", [(
            f"SELECT {', '.join('p.' + c for c in names)} FROM programs p WHERE {prog_pred}", prog_params)])
        names = _columns(conn, "observations")
        yield from section("observations", names, "replace", [(
            f"SELECT {', '.join('ob.' + c for c in names)} FROM observations ob "
            f"JOIN programs p ON p.program_id = ob.program_id WHERE {prog_pred}", prog_params)])
        names = _columns(conn, "objects")
        yield from section("objects", names, "upsert", by_object("objects", "o", names))
        names = _columns(conn, "photometry")
        yield from section("photometry", names, "upsert", by_object("photometry", "ph", names))
        names = _columns(conn, "spectra")
        yield from section("spectra", names, "upsert", [(
            f"SELECT {', '.join('s.' + c for c in names)} FROM spectra s INDEXED BY spectra_updated "
            f"WHERE s.updated_at > ? AND {spec_pred}",
            [t_since] + spec_params)])
        names = _columns(conn, "object_aggregates")
        sel = ", ".join("'*'" if c == "visibility" else f"a.{c}" for c in names)
        yield from section("object_aggregates", names, "upsert", _agg_queries(visible, sel, key))
        names = _columns(conn, "inspections")
        insp_pred, insp_params = _inspection_filter(vis, own_inspections_only)
        yield from section("inspections", names, "upsert", [(
            f"SELECT {', '.join('i.' + c for c in names)} FROM inspections i "
            f"WHERE i.inspection_id > ? AND {insp_pred} "
            "AND i.object_id IN (SELECT object_id FROM object_aggregates WHERE visibility = ?)",
            [i_since] + insp_params + [key])])
        if tags_changed:
            tag_pred, tag_params = vis.tag_predicate("t")
            names = _columns(conn, "tags")
            yield from section("tags", names, "replace", [(
                f"SELECT {', '.join('t.' + c for c in names)} FROM tags t WHERE {tag_pred}", tag_params)])
            yield from section("object_tags", ["tag_id", "object_id"], "replace", [(
                "SELECT ot.tag_id, ot.object_id FROM object_tags ot JOIN tags t ON t.tag_id = ot.tag_id "
                f"WHERE {tag_pred} AND ot.object_id IN (SELECT object_id FROM object_aggregates WHERE visibility = ?)",
                tag_params + [key])])
        counts = {
            "observations": conn.execute(
                f"SELECT count(*) FROM observations ob JOIN programs p ON p.program_id = ob.program_id WHERE {prog_pred}",
                prog_params).fetchone()[0],
            "objects": conn.execute("SELECT count(*) FROM object_aggregates WHERE visibility = ?", (key,)).fetchone()[0],
            "spectra": conn.execute(f"SELECT count(*) FROM spectra s WHERE {spec_pred}", spec_params).fetchone()[0],
        }
        out = gz.line({"type": "end", "counts": counts})
        if out:
            yield out
        yield gz.finish()
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("COMMIT")
        conn.close()


def _agg_queries(visible: list[str], sel: str, key: str):
    for i in range(0, len(visible), 500):
        chunk = visible[i:i + 500]
        yield (f"SELECT {sel} FROM object_aggregates a WHERE a.visibility = ? AND a.object_id IN ({_marks(chunk)})",
               [key] + chunk)
