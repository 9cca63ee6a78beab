"""The bulk catalog export behind ``sync()``: one streamed, gzip-compressed NDJSON body.

Format (``campfire-export`` version 1), one JSON document per line::

    {"type": "header", "format": "campfire-export", "version": 1, "full": true,
     "cursor": "...", "since": null, "schema_version": "1"}
    {"type": "table", "table": "spectra", "columns": [...], "mode": "replace"|"upsert"}
    {"type": "rows", "table": "spectra", "rows": [[...], ...]}        (batches)
    ...
    {"type": "end", "counts": {"observations": N, "objects": N, "spectra": N}}

Everything in it is what the caller may see: spectra of their programs only, objects
with at least one such spectrum, aggregates over those spectra (written under the
visibility key ``'*'``: the client's copy holds nothing else), the caller's visible
tags and their members. ``since`` (the ``cursor`` of an earlier export for the same
caller) limits objects, photometry, spectra and aggregates to what changed after it;
the small tables (programs, observations, tags, object tags) always come whole, so a
tag edit or deletion reaches the client at the next sync. Deletions of objects or
spectra show up as a count mismatch in the ``end`` line, and the client then asks for a
full export — cheap to check, rare to happen.

A missing ``end`` line means the stream was cut: the client discards what it read.
"""
from __future__ import annotations

import base64
import binascii
import json
import sqlite3
import zlib
from typing import Iterator

from campfire.catalog.local import Visibility, connect
from campfire.errors import ValidationError

__all__ = ["EXPORT_FORMAT", "EXPORT_VERSION", "export_stream", "encode_cursor", "decode_cursor"]

EXPORT_FORMAT = "campfire-export"
EXPORT_VERSION = 1
ROWS_PER_LINE = 2000
FLUSH_BYTES = 1 << 20


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
    if not isinstance(payload, dict) or payload.get("v") != EXPORT_VERSION or not isinstance(payload.get("t"), str):
        raise ValidationError("since: not a valid export cursor (use the 'cursor' of an earlier export)")
    return payload


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]  # table names are constants here


class _Gzip:
    """Accumulate NDJSON lines and yield gzip chunks of about FLUSH_BYTES."""

    def __init__(self, level: int = 1):
        self._z = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: gzip container
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


def export_stream(
    db_path,
    visibility: Visibility,
    *,
    since: str | None = None,
    catalog_id: str = "",
) -> tuple[dict, Iterator[bytes]]:
    """Plan an export for ``visibility`` and return ``(header, gzip chunk iterator)``.

    The header is computed eagerly (so a bad ``since`` is a 400 before streaming);
    the rows are read lazily inside one read transaction — a consistent snapshot.
    """
    conn = connect(db_path, readonly=True)
    try:
        conn.execute("BEGIN")  # one snapshot for the header and every table
        high = conn.execute(
            "SELECT max(m) FROM (SELECT max(updated_at) AS m FROM objects UNION ALL SELECT max(updated_at) FROM spectra)"
        ).fetchone()[0] or ""
        schema_version = (conn.execute("SELECT value FROM archive_meta WHERE key = 'schema_version'").fetchone() or ["1"])[0]
        t_since = None
        if since:
            payload = decode_cursor(since)
            # a cursor of another caller, visibility or catalog: start over with a full export
            if (payload.get("k") == visibility.key and payload.get("u", "") == (visibility.user or "")
                    and payload.get("c", "") == catalog_id):
                t_since = payload["t"]
    except BaseException:
        conn.close()
        raise
    cursor = encode_cursor({"v": EXPORT_VERSION, "t": high, "k": visibility.key, "u": visibility.user or "",
                            "c": catalog_id})
    header = {
        "type": "header", "format": EXPORT_FORMAT, "version": EXPORT_VERSION, "full": t_since is None,
        "cursor": cursor, "since": since if t_since is not None else None, "schema_version": schema_version,
    }
    return header, _generate(conn, visibility, header, t_since)


def _generate(conn: sqlite3.Connection, vis: Visibility, header: dict, t_since: str | None) -> Iterator[bytes]:
    gz = _Gzip()
    try:
        out = gz.line(header)
        if out:
            yield out
        spec_pred, spec_params = vis.spectra_predicate("s")
        prog_pred, prog_params = vis.spectra_predicate("p")
        tag_pred, tag_params = vis.tag_predicate("t")
        key = vis.key
        full = t_since is None
        mode = "replace" if full else "upsert"
        # objects touched since the cursor: their own row changed or one of their visible spectra did
        if full:
            changed, changed_params = "1", []
        else:
            changed = (
                "(o.updated_at > ? OR o.object_id IN (SELECT s.object_id FROM spectra s "
                f"WHERE s.updated_at > ? AND {spec_pred}))"
            )
            changed_params = [t_since, t_since] + spec_params
        visible_obj = "o.object_id IN (SELECT object_id FROM object_aggregates WHERE visibility = ?)"

        def cols(table: str, alias: str) -> tuple[list[str], str]:
            names = _columns(conn, table)
            return names, ", ".join(f"{alias}.{c}" for c in names)

        plans: list[tuple[str, list[str], str, list, str]] = []
        names, sel = cols("programs", "p")
        plans.append(("programs", names, f"SELECT {sel} FROM programs p WHERE {prog_pred}", prog_params, "replace"))
        names, sel = cols("observations", "ob")
        plans.append((
            "observations", names,
            f"SELECT {sel} FROM observations ob JOIN programs p ON p.program_id = ob.program_id WHERE {prog_pred}",
            prog_params, "replace",
        ))
        names, sel = cols("objects", "o")
        plans.append((
            "objects", names,
            f"SELECT {sel} FROM object_aggregates a JOIN objects o ON o.object_id = a.object_id "
            f"WHERE a.visibility = ? AND {changed}",
            [key] + changed_params, mode,
        ))
        names, sel = cols("photometry", "ph")
        plans.append((
            "photometry", names,
            f"SELECT {sel} FROM photometry ph JOIN objects o ON o.object_id = ph.object_id "
            f"WHERE {visible_obj} AND {changed}",
            [key] + changed_params, mode,
        ))
        names, sel = cols("spectra", "s")
        plans.append((
            "spectra", names,
            f"SELECT {sel} FROM spectra s WHERE {spec_pred}" + ("" if full else " AND s.updated_at > ?"),
            spec_params + ([] if full else [t_since]), mode,
        ))
        names = _columns(conn, "object_aggregates")
        sel = ", ".join("'*'" if c == "visibility" else f"a.{c}" for c in names)
        plans.append((
            "object_aggregates", names,
            f"SELECT {sel} FROM object_aggregates a JOIN objects o ON o.object_id = a.object_id "
            f"WHERE a.visibility = ? AND {changed}",
            [key] + changed_params, mode,
        ))
        names, sel = cols("tags", "t")
        plans.append(("tags", names, f"SELECT {sel} FROM tags t WHERE {tag_pred}", tag_params, "replace"))
        plans.append((
            "object_tags", ["tag_id", "object_id"],
            "SELECT ot.tag_id, ot.object_id FROM object_tags ot JOIN tags t ON t.tag_id = ot.tag_id "
            f"JOIN objects o ON o.object_id = ot.object_id WHERE {tag_pred} AND {visible_obj}",
            tag_params + [key], "replace",
        ))

        for table, names, sql, params, table_mode in plans:
            out = gz.line({"type": "table", "table": table, "columns": names, "mode": table_mode})
            if out:
                yield out
            cur = conn.execute(sql, params)
            while True:
                rows = cur.fetchmany(ROWS_PER_LINE)
                if not rows:
                    break
                out = gz.line({"type": "rows", "table": table, "rows": rows})
                if out:
                    yield out
        counts = {
            "observations": conn.execute(
                f"SELECT count(*) FROM observations ob JOIN programs p ON p.program_id = ob.program_id WHERE {prog_pred}",
                prog_params,
            ).fetchone()[0],
            "objects": conn.execute(
                "SELECT count(*) FROM object_aggregates WHERE visibility = ?", (key,)
            ).fetchone()[0],
            "spectra": conn.execute(f"SELECT count(*) FROM spectra s WHERE {spec_pred}", spec_params).fetchone()[0],
        }
        yield gz.line({"type": "end", "counts": counts}) or b""
        yield gz.finish()
    finally:
        try:
            conn.execute("COMMIT")
        except sqlite3.Error:
            pass
        conn.close()
