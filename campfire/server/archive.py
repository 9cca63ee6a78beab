"""Server-side state of one archive root: its catalog per caller, accounts, the one writer.

:class:`Archive` opens the archive root once per server: it refuses a client's synced
copy, switches the catalog to WAL (an export's long read never blocks a tag edit),
holds the login limits and the executors of slow work (password hashes, cutout renders),
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

from campfire.catalog.aggregates import refresh_aggregates, refresh_inspected
from campfire.catalog.db import catalog_path, change_stamp, connect, opened, read_meta, write_meta
from campfire.catalog.local import LocalCatalog
from campfire.catalog.schema import upgrade_catalog
from campfire.catalog.visibility import Visibility
from campfire import config
from campfire.errors import AuthenticationError, CampfireError, NotFoundError, ValidationError
from campfire.io.store import store_from_meta
from campfire.server.auth import AuthStore, seed_demo_accounts
from campfire.server.cutouts import CutoutCache, render_executor
from campfire.server.errors import APIProblem
from campfire.server.sessions import SessionStore
from campfire.server.logins import LoginLimiter, password_checks

__all__ = ["Archive", "Caller", "MAX_CONCURRENT_REFITS", "PRODUCTS_DELIVERY"]

log = logging.getLogger("campfire.server")

T = TypeVar("T")

MAX_CONCURRENT_REFITS = 2  # redshift refits (POST /objects/{id}/refit) running at once
PRODUCTS_DELIVERY = ("redirect", "stream")  # how object-store products reach a client


@dataclass(frozen=True)
class Caller:
    """Who is asking, and what they may see.

    ``is_admin``: an archive admin (``campfire users add NAME --role admin``) sees every
    program, may inspect any object and resolve conflicts.
    """

    user: str | None
    visibility: Visibility
    catalog: LocalCatalog
    is_admin: bool = False


class Archive:
    """Server-side state of one archive root: catalogs per visibility, accounts, writers.

    Parameters
    ----------
    root : path
        An archive root (``meta/campfire.db``, ``products/``) owned by a pipeline or server.
        A catalog of an older schema is upgraded in place first.
    blind_inspections : bool
        Blind mode: a reviewer sees other reviewers' inspections of an object only
        after giving their own (``campfire serve --blind-inspections``).
    products_delivery : {'redirect', 'stream'}, optional
        How file requests are answered when the products live on an object store
        (``archive_meta.products_url``): a redirect to a short-lived pre-signed URL, or
        the bytes streamed through this server. Default ``campfire.server.products-delivery``.

    Raises
    ------
    CampfireError
        ``root`` has no valid catalog, or it is a client's synced copy.
    """

    def __init__(self, root: str | os.PathLike, *, blind_inspections: bool = False,
                 products_delivery: str | None = None):
        self.blind_inspections = bool(blind_inspections)
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
            conn.commit()
            if upgrade_catalog(conn):  # the inspections (schema 3) are written here
                log.warning("%s: catalog upgraded to the current schema", self.db_path)
        self.products = store_from_meta(self.root, read_meta(self.db_path))
        delivery = products_delivery or config.get("server.products-delivery")
        if delivery not in PRODUCTS_DELIVERY:
            raise ValidationError(f"products_delivery: expected one of {', '.join(PRODUCTS_DELIVERY)}, got {delivery!r}")
        self.products_delivery = delivery
        self.presign_expires = int(config.get("server.presign-expires"))
        if self.products.is_remote:
            log.info("products under %s (file requests: %s)", self.products.url, delivery)
        self.auth = AuthStore(self.root)
        self.sessions = SessionStore(self.auth.path)
        self.limiter = LoginLimiter()
        self.password_checks = password_checks()
        self.renders = render_executor()
        self.cutouts = CutoutCache()
        self.refits = threading.BoundedSemaphore(MAX_CONCURRENT_REFITS)
        self.refit_wait = 10.0  # seconds a refit waits for a free slot before 429
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
        if self.is_admin(user):  # an archive admin sees every program: the pipeline's own set
            return Visibility(program_ids=None, key="*", user=user, all_tags=False)
        member = self.auth.programs_of(user) & proprietary
        key = ",".join(str(p) for p in sorted(member))
        return Visibility(program_ids=public | member, key=key, user=user, all_tags=False)

    def is_admin(self, user: str | None) -> bool:
        """True for an account with the ``admin`` role."""
        return user is not None and self.auth.role_of(user) == "admin"

    def ensure_aggregates(self, vis: Visibility) -> None:
        """Keep object_aggregates of ``vis.key`` in step with the spectra table.

        A key seen for the first time is computed in full. Each key records the
        state it was computed for (the spectra's ``max(updated_at)`` and row count,
        the last inspection id, the objects' ``max(updated_at)``) in ``archive_meta``;
        when the pipeline has changed spectra since, the objects of the changed
        spectra are recomputed (all of them if rows were added or deleted), and the
        inspection fields of objects with new inspections or changed rows are derived
        again. Rows a pipeline wrote without a record are trusted as current.
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
            last_inspection = conn.execute("SELECT coalesce(max(inspection_id), 0) FROM inspections").fetchone()[0]
            objects_high = conn.execute("SELECT coalesce(max(updated_at), '') FROM objects").fetchone()[0]
            current = [high or "", count, last_inspection, objects_high]
            meta_key = f"aggregates:{vis.key}"
            value = read_meta(conn).get(meta_key)
            recorded = json.loads(value) if value else None
            have = conn.execute("SELECT 1 FROM object_aggregates WHERE visibility = ? LIMIT 1", (vis.key,)).fetchone()
            if recorded is None and have is None:
                log.info("computing object aggregates for visibility %r", vis.key)
                refresh_aggregates(conn, vis.key, programs)
            elif recorded is not None and recorded[:2] != current[:2]:
                if recorded[1] == count:
                    changed = [r[0] for r in conn.execute(
                        "SELECT DISTINCT object_id FROM spectra WHERE updated_at > ?", (recorded[0],))]
                    log.info("refreshing aggregates of %d objects for visibility %r", len(changed), vis.key)
                    refresh_aggregates(conn, vis.key, programs, object_ids=changed)
                else:
                    log.info("spectra added or removed: recomputing aggregates for visibility %r", vis.key)
                    refresh_aggregates(conn, vis.key, programs)
            if recorded is not None and recorded[2:] != current[2:]:
                # inspections written since (by the pipeline, an ingest), or objects rows changed (a new
                # automatic redshift): those objects' inspection fields are derived again
                last, high_objects = (recorded + [0, ""])[2:4]
                changed = {r[0] for r in conn.execute(
                    "SELECT DISTINCT object_id FROM inspections WHERE inspection_id > ?", (last,))}
                changed |= {r[0] for r in conn.execute("SELECT object_id FROM objects WHERE updated_at > ?",
                                                       (high_objects,))}
                refresh_inspected(conn, vis.key, programs, changed)
            if recorded != current:  # write only on change: a write moves every key's stamp
                write_meta(conn, {meta_key: json.dumps(current)})
                conn.commit()
            self._aggregate_keys[vis.key] = self._stamp()

    def record_own_inspection(self, conn: sqlite3.Connection, inspection_id: int) -> None:
        """Note in each visibility set's state that ``inspection_id`` is already accounted for.

        The server's own inspection refreshes every set's fields as it is written
        (:func:`campfire.catalog.inspections.add_inspection`); without this note the next
        request of each set would derive them again and write its state (one more
        transaction per set). A set with other writers' inspections pending keeps its
        state, so those are still derived. Call inside the inspection's transaction.
        """
        updates = {}
        for key, value in read_meta(conn).items():
            if key.startswith("aggregates:"):
                state = json.loads(value)
                if len(state) == 4 and state[2] == inspection_id - 1:
                    updates[key] = json.dumps(state[:2] + [inspection_id] + state[3:])
        write_meta(conn, updates)

    def catalog(self, vis: Visibility) -> LocalCatalog:
        """The catalog as ``vis`` sees it (kept per visibility)."""
        cat = self._catalogs.get(vis)
        if cat is None:
            if len(self._catalogs) > 512:
                self._catalogs.clear()
            cat = self._catalogs[vis] = LocalCatalog(self.root, visibility=vis, expose_paths=False)
        return cat

    def file_path(self, fits_path: str) -> pathlib.Path | str:
        """The file of a catalog ``fits_path``: only ever one under ``<root>/products`` (or ``products_url``).

        The check is on the path as written (``..`` resolved lexically), so a catalog row
        can never name a file elsewhere; a symbolic link *inside* ``products/`` is the
        pipeline's own (``campfire archive ingest --link`` across file systems) and is followed.
        With the products on an object store, the product's URL (the readers of
        :mod:`campfire.io.fits` open it through fsspec); a missing object is a
        NotFoundError when it is read.
        """
        if self.products.is_remote:
            return self.products.location(fits_path)
        if not fits_path or os.path.isabs(fits_path) or "\0" in fits_path:
            raise NotFoundError("file not available on this server")
        products = self.root / "products"
        path = pathlib.Path(os.path.normpath(self.root / fits_path))
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
        return self.caller_for(self.authenticate(authorization))

    def caller_for(self, user: str | None) -> Caller:
        """The :class:`Caller` of an authenticated ``user`` (None: anonymous), however they proved who they are."""
        vis = self.visibility(user)
        self.ensure_aggregates(vis)
        return Caller(user, vis, self.catalog(vis), is_admin=self.is_admin(user))

    async def check_login(self, username: str, password: str, client: str) -> bool:
        """True for a right password, within the login limits (:mod:`campfire.server.logins`).

        The attempt is reserved under the account and the client address before the
        password is checked (concurrent guesses never evaluate more than the limit); the
        hash runs on the password executor, not on the request threads.

        Raises
        ------
        campfire.server.logins.LoginLimited
            Too many failed logins for the account or the address (a 429).
        campfire.server.limits.Busy
            Too many password checks waiting (a 503).
        """
        attempt = await self.limiter.wait_attempt(f"user:{username.lower()}", f"addr:{client}")
        with attempt:
            ok = await self.password_checks.run(self.auth.check_password, username, password)
            attempt.failed = not ok
        return ok

    def close(self) -> None:
        """Close the writer, the accounts store and the catalogs' connections."""
        with self._write_lock:
            if self._write_conn is not None:
                self._write_conn.close()
                self._write_conn = None
        self.sessions.close()
        self.auth.close()
        self.password_checks.close()
        self.renders.close()
        for cat in self._catalogs.values():
            cat.close()
