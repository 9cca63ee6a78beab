"""The SQLite backend: queries over an archive root's catalog (``<root>/meta/campfire.db``).

Used by the client on a local archive root / synced data_dir, and by the server on the
archive it serves (with a :class:`~campfire.catalog.visibility.Visibility` restricting
what a caller may see). A :class:`~campfire.catalog.filters.Query` becomes SQL in
:mod:`campfire.catalog.compile` (access paths: :mod:`campfire.catalog.planner`); rows
become Tables and dicts in :mod:`campfire.catalog.columns`. This module holds the
connections (one read-only connection per thread), the vocabulary and layout caches
(refreshed when the file changes) and the backend's methods
(:class:`~campfire.catalog.backend.CatalogBackend`). :meth:`LocalCatalog.query` reads
its Tables column by column (:mod:`campfire.catalog.columnar`) when the ``fast`` extra
is installed, through the rows of ``sqlite3`` otherwise.

Examples
--------
>>> from campfire.catalog.filters import build_query
>>> cat = LocalCatalog(campfire.demo.ensure())                          # doctest: +SKIP
>>> cat.query(build_query('objects', fields=['uds'], limit=5))          # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import os
import pathlib
import sqlite3
import stat
import threading
from typing import Any, Iterator, TYPE_CHECKING


from campfire.catalog.columns import (
    OBJECT_COLUMNS,
    PROGRAM_COLUMNS,
    SPECTRUM_COLUMNS,
    TAG_COLUMNS,
    columns_of,
    columns_table,
    inspections_table,
    make_table,
    objects_table,
    row_dict,
    spectra_table,
)
from campfire.catalog import columnar
from campfire.catalog.compile import Compiled, plan_query
from campfire.catalog.consensus import consensus
from campfire.catalog.db import CATALOG_FILE, catalog_path, change_stamp, connect, opened, read_meta
from campfire.catalog.filters import KNOWN_GRATINGS, Query, Vocabulary
from campfire.catalog.inspections import add_inspection, inspections_for
from campfire.catalog.planner import Layout, read_layout
from campfire.catalog.schema import upgrade_catalog
from campfire.catalog.tagnames import display_expr
from campfire.catalog.visibility import Visibility
from campfire.errors import CampfireError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["LocalCatalog"]

log = logging.getLogger("campfire.catalog")

_READERS = ("auto", "columnar", "rows")
# "auto" reads a query that returns at most this many rows through rows: below that the
# columnar reader's fixed cost outweighs what it saves per row. Since short text columns
# go through Python strings (stop 37) the crossover is ~250-370 rows of objects and beyond
# 400 of spectra (bench/RESULTS.md, stop 39, interleaved medians, ms rows / columns:
# objects cones of 112 / 233 / 310 / 381 rows 1.19 / 2.18 / 2.78 / 3.30 vs 1.33 / 2.11 /
# 2.76 / 3.11; query_spectra(limit=N) 200 / 300 / 400 rows 4.68 / 5.60 / 6.60 vs 4.84 /
# 5.82 / 6.72); stop 33, before that change, had it at 150-200
_ROWS_UP_TO = 300


def _reader() -> str:
    """The reader of :meth:`LocalCatalog.query` (config ``catalog.reader``): ``'rows'``, ``'columnar'`` or ``'auto'``.

    ``'auto'`` (the default, with the ``fast`` extra installed) reads a result of at
    most :data:`_ROWS_UP_TO` rows through rows and a larger or unknown one through
    columns (:mod:`campfire.catalog.columnar`); without the extra, rows.
    """
    from campfire import config

    reader = config.get("catalog.reader")
    if reader not in _READERS:
        raise ValidationError(f"campfire.catalog.reader: {reader!r} is not one of {', '.join(_READERS)}")
    if reader == "rows" or columnar.available():
        return reader
    if reader == "columnar":
        raise CampfireError('campfire.catalog.reader is "columnar", which needs adbc-driver-sqlite and pyarrow: '
                            'pip install "campfire[fast]" (or set it to "auto" or "rows")')
    return "rows"


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


_VALID_CACHE: dict[tuple, bool] = {}


def _check_valid(path: pathlib.Path) -> bool:
    try:
        with opened(path, timeout=5) as conn:
            meta = read_meta(conn)
            conn.execute("SELECT 1 FROM spectra LIMIT 1").fetchall()
            return "schema_version" in meta
    except (sqlite3.Error, CampfireError):
        return False


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

    Examples
    --------
    >>> cat = LocalCatalog(campfire.demo.ensure())  # doctest: +SKIP
    >>> cat.counts()                                # doctest: +SKIP
    {'observations': 8, 'objects': 240, 'spectra': 460}
    """

    def __init__(self, root: str | os.PathLike, visibility: Visibility | None = None, expose_paths: bool = True):
        self.root = pathlib.Path(root)
        self.db_path = catalog_path(self.root)
        self.visibility = visibility or Visibility.everything()
        self.expose_paths = expose_paths
        self._local = threading.local()
        self._vocab_cache: tuple[tuple, Vocabulary, Visibility] | None = None
        self._layout_cache: tuple[tuple, Layout] | None = None

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
        """Close this thread's connection (another is opened on the next query).

        The columnar reader's connections (:mod:`campfire.catalog.columnar`) are the
        process's, per catalog file: they stay open until the file is removed or replaced.
        """
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @staticmethod
    def is_valid(root: str | os.PathLike) -> bool:
        """True when ``<root>/meta/campfire.db`` exists and has the campfire schema.

        Examples
        --------
        >>> LocalCatalog.is_valid('/nonexistent')
        False
        """
        path = os.path.join(os.fspath(root), CATALOG_FILE)  # a str: a pathlib object costs more than the stat
        try:
            # asked before every query of a client: remembered until the file changes
            st = os.stat(path)
            key = (path, st.st_ino, *change_stamp(path))
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode):
            return False
        valid = _VALID_CACHE.get(key)
        if valid is None:
            valid = _check_valid(pathlib.Path(path))
            if len(_VALID_CACHE) > 64:
                _VALID_CACHE.clear()
            _VALID_CACHE[key] = valid
        return valid

    def _resolve(self, q: Query, stamp: tuple | None = None) -> Query:
        """``q`` checked against this catalog's names; on a synced copy an unknown name may be
        newer than the copy, and the message says how to bring it in.

        ``stamp``: the file's :func:`~campfire.catalog.db.change_stamp`, when the caller has it.
        """
        try:
            return q.resolve(self._cached(stamp)[0])
        except ValidationError as err:
            if self.meta("owner") != "client":
                raise
            when = self.meta("last_synced") or "an earlier sync"
            raise ValidationError(f"{err}. This is a synced copy of the server's catalog (last synced {when}): "
                                  "a tag, observation or program added on the server since then appears "
                                  "after cf.sync()") from None

    def meta(self, key: str) -> str | None:
        """One ``archive_meta`` value (``last_synced``, ``owner``, ...), or None."""
        return read_meta(self.conn).get(key)

    # -- what the file offers, cached until it changes -------------------------------------
    def _layout(self, stamp: tuple | None = None) -> Layout:
        """What this catalog file offers the compiler (schema version 2 or 1, indexes, size)."""
        if stamp is None:
            stamp = change_stamp(self.db_path)
        if self._layout_cache and self._layout_cache[0] == stamp:
            return self._layout_cache[1]
        layout = read_layout(self.conn, self.db_path)
        self._layout_cache = (stamp, layout)
        return layout

    def vocabulary(self) -> Vocabulary:
        """The fields, programs, observations and tags this caller may name in a query."""
        return self._cached()[0]

    def caller_visibility(self) -> Visibility:
        """:attr:`visibility`, with the user a synced copy was synced as.

        Tag names are read from the caller's point of view (:mod:`campfire.catalog.tagnames`):
        on a client's synced copy the caller is its ``sync_user``.
        """
        return self._cached()[1]

    def _cached(self, stamp: tuple | None = None) -> tuple[Vocabulary, Visibility]:
        if stamp is None:
            stamp = change_stamp(self.db_path)
        if self._vocab_cache and self._vocab_cache[0] == stamp:
            return self._vocab_cache[1:]
        conn = self.conn
        visibility = self.visibility
        if visibility.user is None and visibility.all_tags:
            synced_as = read_meta(conn).get("sync_user")
            if synced_as:
                visibility = dataclasses.replace(visibility, user=synced_as)
        vis, params = visibility.program_predicate("p")
        programs = {
            slug.lower(): pid
            for slug, pid in conn.execute(f"SELECT slug, program_id FROM programs p WHERE {vis}", params)
        }
        obs = conn.execute(
            f"SELECT observation, field FROM observations ob JOIN programs p USING (program_id) WHERE {vis}", params
        ).fetchall()
        tag_pred, tag_params = visibility.tag_predicate("t")
        name, name_params = display_expr("t", visibility.user)
        # every visible tag by the name the caller writes, and every user tag as owner/slug as well
        tags = {r[0] for r in conn.execute(
            f"SELECT {name} FROM tags t WHERE {tag_pred} UNION SELECT t.owner || '/' || t.slug FROM tags t "
            f"WHERE t.kind != 'system' AND {tag_pred}", name_params + tag_params + tag_params)}
        vocab = Vocabulary(
            fields=frozenset(r[1] for r in obs),
            programs=programs,
            gratings=frozenset(KNOWN_GRATINGS),
            observations=frozenset(r[0] for r in obs),
            tags=frozenset(tags),
        )
        self._vocab_cache = (stamp, vocab, visibility)
        return vocab, visibility

    def compile(self, q: Query, *, count: bool = False, extra: tuple[str, list] | None = None) -> tuple[str, list]:
        """SQL and parameters for a resolved ``q`` (see :func:`campfire.catalog.compile.compile_query`).

        For spectra on a version-2 catalog this may probe the catalog (a few capped
        index counts) to choose the access path.
        """
        plan = self._plan(q, count=count, extra=extra)
        return plan.sql, plan.params

    def _plan(self, q: Query, *, count: bool = False, extra: tuple[str, list] | None = None,
              bound: bool = False, stamp: tuple | None = None) -> Compiled:
        """:meth:`compile`'s statement with a bound on its rows (:func:`campfire.catalog.compile.plan_query`).

        ``stamp`` as in :meth:`_resolve`: a query looks at the file once (a stat, or two
        in WAL mode), and its names, visibility and layout are of the same file state.
        """
        if stamp is None:
            stamp = change_stamp(self.db_path)
        local_root = str(self.root) + os.sep if self.expose_paths else None
        return plan_query(q, self._cached(stamp)[1], layout=self._layout(stamp), conn=self.conn,
                          local_root=local_root, count=count, extra=extra, bound=bound)

    def _resolved_plan(self, q: Query, **plan: Any) -> tuple[Query, Compiled]:
        """``q`` resolved and planned (:meth:`_plan`'s keywords) with one look at the file."""
        stamp = change_stamp(self.db_path)
        q = self._resolve(q, stamp)
        return q, self._plan(q, stamp=stamp, **plan)

    # -- queries --------------------------------------------------------------------
    def query(self, q: Query) -> Table:
        """Rows of ``q`` as an astropy Table (query_objects / query_spectra columns).

        Parameters
        ----------
        q : Query
            From :func:`campfire.catalog.filters.build_query`.

        Returns
        -------
        astropy.table.Table

        Raises
        ------
        ValidationError
            A name in ``q`` this catalog does not know (field, program, tag, ...).
        """
        reader = _reader()
        q, plan = self._resolved_plan(q, bound=reader == "auto")
        sql, params = plan.sql, plan.params
        # auto: a small result (a page, a cone, a selective filter, nothing) through rows, a large one through
        # columns. Not "the first rows through rows, then columns": a sorted result's first row costs most
        # of the query (the multi-filter of bench_query_rows: 20 of 27 ms), which would run twice
        if reader == "columnar" or (reader == "auto" and (plan.max_rows is None or plan.max_rows > _ROWS_UP_TO)):
            columns = columns_of(q.kind)
            try:
                data = columnar.read_columns(self.db_path, sql, params, [dtype for _, _, dtype in columns],
                                             limit=q.limit)
            except columnar.Unsupported as why:
                log.debug("%s: query read through rows (%s)", self.db_path, why)
            else:
                return columns_table(columns, data)
        with _gc_paused():
            rows = self.conn.execute(sql, params).fetchall()
            table = objects_table(rows) if q.kind == "objects" else spectra_table(rows)
            # freed before the collector resumes: alive then, the row tuples would make its
            # first pass (due after so many new objects) walk them all just before they go
            del rows
        return table

    def count(self, q: Query) -> int:
        """Number of rows matching ``q`` (ignores limit and offset).

        Parameters
        ----------
        q : Query

        Returns
        -------
        int

        Raises
        ------
        ValidationError
            A name in ``q`` this catalog does not know.
        """
        _, plan = self._resolved_plan(q, count=True)
        sql, params = plan.sql, plan.params
        return int(self.conn.execute(sql, params).fetchone()[0])

    def iter_rows(self, q: Query, batch: int = 2000) -> Iterator[dict[str, Any]]:
        """Stream rows as dicts with constant memory (one cursor, fetchmany).

        Parameters
        ----------
        q : Query
        batch : int
            Rows fetched per step.

        Returns
        -------
        iterator of dict
            One dict per row, keyed by the query's column names.
        """
        q, plan = self._resolved_plan(q)
        sql, params = plan.sql, plan.params
        columns = columns_of(q.kind)
        with opened(self.db_path) as conn:  # own connection: the caller may query meanwhile
            cur = conn.execute(sql, params)
            while chunk := cur.fetchmany(batch):
                for row in chunk:
                    yield row_dict(columns, row)

    def query_rows(self, q: Query) -> list[tuple]:
        """Raw row tuples (for the server's JSON encoding)."""
        _, plan = self._resolved_plan(q)
        return self.conn.execute(plan.sql, plan.params).fetchall()

    # -- single records -----------------------------------------------------------
    def object_row(self, object_id: str) -> dict[str, Any] | None:
        """One object's row (query_objects columns), or None if it does not exist for this caller."""
        q = Query(kind="objects", sort="object_id")
        sql, params = self.compile(q, extra=("o.object_id = ?", [object_id]))
        row = self.conn.execute(sql, params).fetchone()
        return row_dict(OBJECT_COLUMNS, row) if row else None

    def spectrum_row(self, spectrum_id: str) -> dict[str, Any] | None:
        """One spectrum's row (query_spectra columns), or None if it does not exist for this caller."""
        q = Query(kind="spectra", sort="spectrum_id")
        sql, params = self.compile(q, extra=("s.spectrum_id = ?", [spectrum_id]))
        row = self.conn.execute(sql, params).fetchone()
        return row_dict(SPECTRUM_COLUMNS, row) if row else None

    def object_spectra(self, object_id: str) -> list[dict[str, Any]]:
        """The visible spectra rows of one object, by spectrum_id."""
        q = Query(kind="spectra", sort="spectrum_id")
        sql, params = self.compile(q, extra=("s.object_id = ?", [object_id]))
        return [row_dict(SPECTRUM_COLUMNS, r) for r in self.conn.execute(sql, params)]

    def object_photometry(self, object_id: str) -> dict[str, Any] | None:
        """``{'catalog', 'photo_z', 'photo_z_err_lo', 'photo_z_err_hi', 'bands': [[band, flux, err, wave], ...]}``.

        None when the object has no photometry (or does not exist).
        """
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
        """astropy Table of the visible programs: program_id, slug, program_name, pi_name, is_public."""
        vis, params = self.visibility.program_predicate("p")
        select = ", ".join(expr for _, expr, _ in PROGRAM_COLUMNS)
        rows = self.conn.execute(f"SELECT {select} FROM programs p WHERE {vis} ORDER BY program_id", params).fetchall()
        return make_table(PROGRAM_COLUMNS, rows)

    def fields(self) -> list[str]:
        """The visible fields, sorted."""
        return sorted(self.vocabulary().fields)

    def observations(self) -> list[str]:
        """The visible observations, sorted."""
        return sorted(self.vocabulary().observations)

    def gratings(self) -> list[str]:
        """The gratings of the visible spectra, in instrument order."""
        vis, params = self.visibility.program_predicate("s")
        rows = self.conn.execute(f"SELECT DISTINCT grating FROM spectra s WHERE {vis}", params).fetchall()
        order = {g: i for i, g in enumerate(KNOWN_GRATINGS)}
        return sorted((r[0] for r in rows), key=lambda g: (order.get(g, 99), g))

    def metadata(self) -> dict[str, list]:
        """``{'programs': [slug, ...], 'fields': [...], 'gratings': [...], 'observations': [...]}``."""
        return {
            "programs": [str(s) for s in self.programs()["slug"]],
            "fields": self.fields(),
            "gratings": self.gratings(),
            "observations": self.observations(),
        }

    def tags(self) -> Table:
        """astropy Table of the visible tags: slug, name, member_count, kind, owner, description."""
        pred, params = self.visibility.tag_predicate("t")
        members = ("(SELECT count(*) FROM object_tags ot JOIN object_aggregates a "
                   "ON a.object_id = ot.object_id AND a.visibility = ? WHERE ot.tag_id = t.tag_id)")
        select = ", ".join(expr.format(member_count=members) for _, expr, _ in TAG_COLUMNS)
        rows = self.conn.execute(
            f"SELECT {select} FROM tags t WHERE {pred} ORDER BY t.kind != 'system', t.slug, t.owner",
            [self.visibility.key] + params,
        ).fetchall()
        return make_table(TAG_COLUMNS, rows)

    def counts(self) -> dict[str, int]:
        """``{'observations', 'objects', 'spectra'}`` visible to this caller."""
        c = self.conn
        key = self.visibility.key
        vis, params = self.visibility.program_predicate("s")
        return {
            "observations": len(self.vocabulary().observations),
            "objects": c.execute("SELECT count(*) FROM object_aggregates WHERE visibility = ?", (key,)).fetchone()[0],
            "spectra": c.execute(f"SELECT count(*) FROM spectra s WHERE {vis}", params).fetchone()[0],
        }

    # -- inspections ------------------------------------------------------------------------
    def inspections(self, object_id: str) -> Table:
        """The object's inspection records this caller may see (oldest first), the consensus in ``meta``.

        On a client's synced copy these are the records its server exported (those
        resting on spectra the user may see; in blind mode the user's own).

        Raises
        ------
        NotFoundError
            No such object (for this caller).
        CampfireError
            The catalog predates inspections (schema < 3): sync again, or upgrade it.
        """
        if self.object_row(object_id) is None:
            raise NotFoundError(f"object {object_id!r} not found")
        try:
            records = inspections_for(self.conn, object_id, self.visibility)
        except sqlite3.OperationalError as err:
            raise CampfireError(f"{self.db_path} keeps no inspections yet (an older catalog schema): sync again, or "
                                f"upgrade it with python -m campfire.catalog.schema upgrade {self.root}") from err
        return inspections_table(object_id, records, consensus(records))

    def inspect(self, object_id: str, *, quality, redshift=None, comment: str = "", issues=None,
                resolves_conflict: bool = False, reviewer: str | None = None) -> dict[str, Any]:
        """Store an inspection in this archive root (one a pipeline or server owns, not a synced copy).

        Parameters are those of :func:`campfire.catalog.inspections.add_inspection`
        (``reviewer`` is required here: there is no login). The inspection rests on all of
        the object's spectra with their current sha256.

        Returns
        -------
        dict
            The stored record with the object's new ``consensus``.

        Raises
        ------
        CampfireError
            This is a client's synced copy: its grades belong on its server.
        ValidationError, NotFoundError
            A bad value, naming the parameter; an unknown object.
        """
        if self.meta("owner") == "client":
            raise CampfireError(f"{self.root} is a synced copy of a server's catalog: a grade given here would be "
                                "lost at the next sync. Grade through the server (Campfire(base_url=...).inspect).")
        if reviewer is None:
            raise ValidationError("reviewer: required to grade in a local archive root (there is no login here)")
        with opened(self.db_path, readonly=False) as conn:
            upgrade_catalog(conn)  # an older root gets the inspections table first
            with conn:
                record = add_inspection(conn, object_id, reviewer, quality=quality, redshift=redshift,
                                        comment=comment, issues=issues, resolves_conflict=resolves_conflict)
            seen = consensus(inspections_for(conn, object_id, self.visibility))
        return {**record, "consensus": seen}
