"""Server-side state of one archive root: its catalog per caller, accounts, the one writer.

:class:`Archive` opens the archive root once per server: it refuses a client's synced
copy, switches the catalog to WAL (an export's long read never blocks a tag edit),
keeps a :class:`~campfire.catalog.local.LocalCatalog` per
:class:`~campfire.catalog.visibility.Visibility`, keeps ``object_aggregates`` of each
visibility in step with the spectra, and turns an ``Authorization`` header into a
:class:`Caller`. Routes get both through :mod:`campfire.server.deps`.

Examples
--------
>>> archive = Archive(campfire.demo.ensure())          # doctest: +SKIP
>>> archive.caller(None).catalog.counts()              # doctest: +SKIP
"""
from __future__ import annotations

import json
import logging
import os
import pathlib
import sqlite3
import threading
from dataclasses import dataclass
from typing import Callable, TypeVar

from campfire.catalog.aggregates import refresh_aggregates
from campfire.catalog.db import catalog_path, change_stamp, connect, opened, read_meta, write_meta
from campfire.catalog.local import LocalCatalog
from campfire.catalog.visibility import Visibility
from campfire.errors import AuthenticationError, CampfireError, NotFoundError
from campfire.server.auth import AuthStore, RateLimiter, seed_demo_accounts
from campfire.server.errors import APIProblem

__all__ = ["Archive", "Caller"]

log = logging.getLogger("campfire.server")

T = TypeVar("T")


@dataclass(frozen=True)
class Caller:
    """Who is asking, and what they may see."""

    user: str | None
    visibility: Visibility
    catalog: LocalCatalog


class Archive:
    """Server-side state of one archive root: catalogs per visibility, accounts, writers.

    Parameters
    ----------
    root : path
        An archive root (``meta/campfire.db``, ``products/``) owned by a pipeline or server.

    Raises
    ------
    CampfireError
        ``root`` has no valid catalog, or it is a client's synced copy.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = pathlib.Path(root).expanduser().resolve()
        self.db_path = catalog_path(self.root)
        if not LocalCatalog.is_valid(self.root):
            raise CampfireError(f"{self.root} is not an archive root (no valid meta/campfire.db)")
        self._write_lock = threading.RLock()
        self._write_conn: sqlite3.Connection | None = None
        with self._write_lock:
            conn = self.write_conn()
            owner = self.meta("owner")
            if owner == "client":
                raise CampfireError(
                    f"{self.root} is a client's synced copy (owner=client), not an archive root a server may serve"
                )
            # WAL: an export's long read snapshot never blocks a tag edit, and vice versa
            conn.execute("PRAGMA journal_mode = WAL")
        self.auth = AuthStore(self.root)
        self.limiter = RateLimiter()
        for leftover in (self.root / "cache" / "exports").glob("export-*.db"):  # from a killed server
            leftover.unlink(missing_ok=True)
        self._catalogs: dict[Visibility, LocalCatalog] = {}
        self._aggregate_keys: dict[str, tuple] = {}  # key -> catalog stamp last checked
        self._programs: tuple[tuple, frozenset[int], frozenset[int]] | None = None
        if self.is_demo():
            seed_demo_accounts(self.root, store=self.auth)

    # -- catalog -----------------------------------------------------------------------
    def write_conn(self) -> sqlite3.Connection:
        """The one writing connection (aggregates, tags); use under ``self._write_lock``."""
        if self._write_conn is None:
            self._write_conn = connect(self.db_path, readonly=False)
        return self._write_conn

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the writing connection in one transaction (rolled back if it raises)."""
        with self._write_lock:
            conn = self.write_conn()
            try:
                result = fn(conn)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        return result

    def meta(self, key: str) -> str | None:
        """One ``archive_meta`` value, or None."""
        return read_meta(self.db_path).get(key)

    def is_demo(self) -> bool:
        """True for a demo archive (the documented demo accounts are seeded)."""
        meta = read_meta(self.db_path)
        markers = (meta.get("demo"), meta.get("built_with"), meta.get("generator"))
        return any(m and ("demo" in str(m).lower() or str(m).lower() in ("1", "true")) for m in markers)

    def catalog_id(self) -> str:
        """An identity of the catalog's contents (``/health``, export cursors)."""
        return self.meta("catalog_id") or self.meta("catalog_version") or self.meta("built_at") or ""

    def _stamp(self) -> tuple:
        return change_stamp(self.db_path)

    def program_sets(self) -> tuple[frozenset[int], frozenset[int]]:
        """(public program ids, proprietary program ids), re-read when the catalog changes."""
        stamp = self._stamp()
        if self._programs is None or self._programs[0] != stamp:
            with opened(self.db_path) as conn:
                rows = conn.execute("SELECT program_id, is_public FROM programs").fetchall()
            self._programs = (
                stamp,
                frozenset(p for p, pub in rows if pub),
                frozenset(p for p, pub in rows if not pub),
            )
        return self._programs[1], self._programs[2]

    def visibility(self, user: str | None) -> Visibility:
        """What ``user`` (None: anonymous) may see: public programs, plus the proprietary ones they are in."""
        public, proprietary = self.program_sets()
        if user is None:
            return Visibility(program_ids=public, key="", user=None, all_tags=False)
        member = self.auth.programs_of(user) & proprietary
        key = ",".join(str(p) for p in sorted(member))
        return Visibility(program_ids=public | member, key=key, user=user, all_tags=False)

    def ensure_aggregates(self, vis: Visibility) -> None:
        """Keep object_aggregates of ``vis.key`` in step with the spectra table.

        A key seen for the first time is computed in full. Each key records the
        spectra state it was computed for (``max(updated_at)`` and the row count) in
        ``archive_meta``; when the pipeline has changed spectra since, the objects
        of the changed spectra are recomputed (all of them if rows were added or
        deleted). Rows a pipeline wrote without a record are trusted as current.
        The check runs once per change of the catalog file, not per request.
        """
        stamp = self._stamp()
        if self._aggregate_keys.get(vis.key) == stamp:
            return
        with self._write_lock:
            stamp = self._stamp()
            if self._aggregate_keys.get(vis.key) == stamp:
                return
            conn = self.write_conn()
            programs = None if vis.program_ids is None else sorted(vis.program_ids)
            high, count = conn.execute("SELECT max(updated_at), count(*) FROM spectra").fetchone()
            state = json.dumps([high or "", count])
            meta_key = f"aggregates:{vis.key}"
            value = read_meta(conn).get(meta_key)
            recorded = json.loads(value) if value else None
            have = conn.execute("SELECT 1 FROM object_aggregates WHERE visibility = ? LIMIT 1", (vis.key,)).fetchone()
            if recorded is None and have is None:
                log.info("computing object aggregates for visibility %r", vis.key)
                refresh_aggregates(conn, vis.key, programs)
            elif recorded is not None and recorded != [high or "", count]:
                if recorded[1] == count:
                    changed = [r[0] for r in conn.execute(
                        "SELECT DISTINCT object_id FROM spectra WHERE updated_at > ?", (recorded[0],))]
                    log.info("refreshing aggregates of %d objects for visibility %r", len(changed), vis.key)
                    refresh_aggregates(conn, vis.key, programs, object_ids=changed)
                else:
                    log.info("spectra added or removed: recomputing aggregates for visibility %r", vis.key)
                    refresh_aggregates(conn, vis.key, programs)
            if recorded != [high or "", count]:  # write only on change: a write moves every key's stamp
                write_meta(conn, {meta_key: state})
                conn.commit()
            self._aggregate_keys[vis.key] = self._stamp()

    def catalog(self, vis: Visibility) -> LocalCatalog:
        """The catalog as ``vis`` sees it (kept per visibility)."""
        cat = self._catalogs.get(vis)
        if cat is None:
            if len(self._catalogs) > 512:
                self._catalogs.clear()
            cat = self._catalogs[vis] = LocalCatalog(self.root, visibility=vis, expose_paths=False)
        return cat

    def file_path(self, fits_path: str) -> pathlib.Path:
        """The absolute file of a catalog ``fits_path``: only ever a file under ``<root>/products``."""
        if not fits_path or os.path.isabs(fits_path) or "\0" in fits_path:
            raise NotFoundError("file not available on this server")
        products = self.root / "products"
        path = (self.root / fits_path).resolve()
        if not path.is_relative_to(products):
            # a poisoned catalog row: never read outside the products tree (auth.db, /etc, ...)
            log.error("catalog fits_path %r is outside %s; refused", fits_path, products)
            raise NotFoundError("file not available on this server")
        if not path.is_file():
            raise NotFoundError("file not available on this server")
        return path

    # -- callers -------------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> str | None:
        """The user of an ``Authorization: Bearer`` header, None when absent."""
        if authorization is None:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 4096:
            raise APIProblem(401, "invalid_token", "malformed Authorization header; expected 'Bearer <access token>'",
                             {"WWW-Authenticate": 'Bearer error="invalid_request"'})
        try:
            return self.auth.decode_access(token)
        except AuthenticationError as err:
            raise APIProblem(401, "invalid_token", f"{err}; refresh the token or log in again (campfire login)",
                             {"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None

    def caller(self, authorization: str | None) -> Caller:
        """The :class:`Caller` of a request with this ``Authorization`` header (aggregates made current)."""
        user = self.authenticate(authorization)
        vis = self.visibility(user)
        self.ensure_aggregates(vis)
        return Caller(user, vis, self.catalog(vis))

    def close(self) -> None:
        """Close the writer, the accounts store and the catalogs' connections."""
        with self._write_lock:
            if self._write_conn is not None:
                self._write_conn.close()
                self._write_conn = None
        self.auth.close()
        for cat in self._catalogs.values():
            cat.close()
