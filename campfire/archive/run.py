"""``campfire.archive.ingest`` / ``campfire archive ingest``: build or update an archive root.

The run, in order:

1. **Plan** (cheap, no file is read): expand the SOURCE arguments
   (:mod:`~campfire.archive.sources`), read the DJA table, the photometric catalogue
   and programs.yaml, and compare every input with what the archive remembers
   (:mod:`~campfire.archive.state`): an input whose stamp (size + mtime / ETag) is
   unchanged is *unchanged* and is not read; one the archive recorded under a SOURCE
   given now that is no longer found is *missing*.
2. **Prepare** (the Dask graph, :mod:`~campfire.archive.graph`): every other input is
   read, hashed, checked, measured, fitted (``fit_redshift``) and its archive product
   staged under ``<root>/products/.ingest-staging/``. An input whose bytes turn out
   unchanged is *unchanged* after all (nothing is refitted).
3. **Commit** (one SQLite transaction, :mod:`~campfire.archive.update`): programs,
   observations, spectra, objects, redshifts, grades, photometry, withdrawals,
   aggregates, the ingest state and the journal of file moves. An interruption before
   the commit leaves the previous catalog exactly as it was (and the previous files:
   nothing under ``products/`` is replaced before the commit); after it, the journal
   finishes the moves, now or at the next run.

The summary is an astropy Table, one row per input file (and one per problem of the
table, the catalogue or programs.yaml): ``source``, ``status`` (``new``,
``updated``, ``unchanged``, ``failed``, ``missing``, ``withdrawn``, ``warning``),
``spectrum_id``, ``object_id``, ``reason``. ``Table.meta`` has the counts and timings.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import logging
import os
import pathlib
import pickle
import shutil
import sys
import time
import uuid
from typing import Iterator, Sequence

from astropy.table import Table

from campfire import config
from campfire.archive.attach import apply_grades, apply_photometry, table_spectra
from campfire.archive.graph import prepare_all
from campfire.archive.photometry import read_photometry
from campfire.archive.prepare import Job, PrepareOptions
from campfire.archive.programs import ProgramsFile, read_programs
from campfire.archive.sources import SourceFile, expand_sources
from campfire.archive.staging import STAGE, RunStore
from campfire.archive.state import STAGING_DIR, IngestedFile, ensure_state, run_pending
from campfire.archive.table import identity_facts, read_dja_table
from campfire.archive.update import CatalogUpdate
from campfire.catalog.db import catalog_path, connect, read_meta, write_meta
from campfire.catalog.schema import create_catalog, finalize_catalog, upgrade_catalog
from campfire.errors import CampfireError, ValidationError
from campfire.io.store import PRODUCTS_URL_KEY, ProductStore, check_products_url, check_reachable

__all__ = ["ingest", "format_counts", "writer_lock", "MODES", "SUMMARY_COLUMNS"]

log = logging.getLogger("campfire.archive")

MODES = ("copy", "link", "in-place")
SUMMARY_COLUMNS = ("source", "status", "spectrum_id", "object_id", "reason")
STATUSES = ("new", "updated", "unchanged", "failed", "missing", "withdrawn", "warning")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _check_args(sources, mode, match_radius, z_range) -> list[str]:
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    try:
        sources = [os.fspath(s) for s in sources]
    except TypeError:
        raise ValidationError(f"sources: expected paths, globs or URLs, got {sources!r}") from None
    if not sources:
        raise ValidationError("sources: expected at least one file, folder, glob or URL")
    if mode not in MODES:
        raise ValidationError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if isinstance(match_radius, bool) or not isinstance(match_radius, (int, float)) or not 0 < match_radius <= 10:
        raise ValidationError(f"match_radius: expected arcsec in (0, 10], got {match_radius!r}")
    try:
        lo, hi = (float(v) for v in z_range)
    except (TypeError, ValueError):
        raise ValidationError(f"z_range: expected (z_min, z_max), got {z_range!r}") from None
    if not 0 <= lo < hi <= 30:
        raise ValidationError(f"z_range: expected 0 <= z_min < z_max <= 30, got {z_range!r}")
    return sources


@contextlib.contextmanager
def writer_lock(root: pathlib.Path) -> Iterator[None]:
    """One writer (an ingest, ``push-imaging``) at a time per archive root."""
    lock = root / "meta" / ".ingest.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CampfireError(f"another ingest (or push-imaging) is running on {root} (lock {lock}); wait for it "
                                "to finish") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class _Run:
    """The state of one ingest (plan → prepare → commit); :func:`ingest` drives it.

    Everything per file goes to the run store (:mod:`campfire.archive.staging`), not
    to lists in memory: this object holds counts and timings only.
    """

    def __init__(self, root: pathlib.Path, mode: str, fit: bool, z_range, match_radius: float,
                 programs: ProgramsFile, withdraw: bool, products: ProductStore):
        self.products = products
        self.root, self.mode, self.fit, self.z_range = root, mode, fit, tuple(float(z) for z in z_range)
        self.match_radius, self.programs, self.withdraw = float(match_radius), programs, withdraw
        self.times: dict[str, float] = {}
        self.n_prepared = self.n_fitted = self.phot_unmatched = 0
        self.grants: dict[int, tuple[str, ...]] = {}
        self.staging = root / "products" / STAGING_DIR / uuid.uuid4().hex[:12]
        self.store: RunStore | None = None  # opened once an interrupted run's staging is cleared
        self.via = None  # the catalog connection while the store is attached to it
        self.committed = False
        self.rows: list[tuple[str, str, str, str, str]] = []  # the summary, read from the store at the end

    def add(self, source: str, status: str, spectrum_id: str = "", object_id: str = "", reason: str = "") -> None:
        if self.store is not None:
            self.store.note(source, status, spectrum_id, object_id, reason, via=self.via)
        else:  # after the run: a row of its own
            self.rows.append((str(source), status, spectrum_id, object_id, reason))

    def discard(self) -> None:
        """An interrupted run: its staging folder goes, unless the catalog committed moves out of it."""
        if self.store is not None:
            self.store.close()
            self.store = None
        if not self.committed:  # after the commit, the journal needs the staged files (next run: roll forward)
            shutil.rmtree(self.staging, ignore_errors=True)

    # -- plan ---------------------------------------------------------------------------------
    def admissible(self, files: list[SourceFile]) -> list[SourceFile]:
        """The inputs this mode can hold; the others are failed rows."""
        products = str(self.root / "products") + os.sep
        ok = []
        for f in files:
            inside = f.local and f.key.startswith(products)
            if self.mode == "in-place" and not inside:
                self.add(f.key, "failed", reason=f"--in-place serves files where they are, so they must be under "
                                                 f"{products} (this one is not); use --copy or --link")
            elif self.mode == "link" and not f.local:
                self.add(f.key, "failed", reason="--link needs a local file; use --copy for URLs")
            elif self.mode != "in-place" and inside:
                self.add(f.key, "failed", reason=f"the file is inside the archive's {products}; use --in-place to "
                                                 "ingest files already there")
            else:
                ok.append(f)
        return ok

    def plan(self, conn, files: list[SourceFile], table, batch_size: int) -> list[str]:
        """Unchanged inputs go to the store; the others, a batch file of jobs per task: their paths."""
        batches, batch, unchanged = [], [], []

        def flush():
            if batch:
                path = str(self.staging / f"jobs-{len(batches)}.pkl")
                with open(path, "wb") as f:
                    pickle.dump(batch, f, protocol=pickle.HIGHEST_PROTOCOL)
                batches.append(path)
                batch.clear()

        for k in range(0, len(files), 500):
            chunk = files[k:k + 500]
            state = {r[0]: IngestedFile(*r[:5], bool(r[5])) for r in conn.execute(
                "SELECT source, spectrum_id, stamp, source_sha256, mode, fitted FROM ingest_files "
                f"WHERE source IN ({','.join('?' * len(chunk))})", [f.key for f in chunk])}
            for i, f in enumerate(chunk, start=k):
                known = state.get(f.key)
                current = known is not None and known.mode == self.mode and (known.fitted or not self.fit)
                if current and f.stamp is not None and known.stamp == f.stamp:
                    unchanged.append({"index": i, "source": f.key, "status": "unchanged",
                                      "spectrum_id": known.spectrum_id})
                    continue
                facts = identity_facts(table.rows[f.name]) if table is not None and f.name in table.rows else None
                batch.append(Job(i, f, facts, known.spectrum_id if known else None,
                                 known.source_sha256 if current else None))
                self.n_prepared += 1
                if len(batch) >= batch_size:
                    flush()
            self.store.add_records(unchanged)
            unchanged.clear()
        flush()
        return batches

    def missing(self, conn, found: set[str], scopes) -> list[IngestedFile]:
        """Recorded inputs under a SOURCE given now that were not found."""
        out = []
        for row in conn.execute("SELECT source, spectrum_id, stamp, source_sha256, mode, fitted FROM ingest_files"):
            if row[0] not in found and any(sc.covers(row[0]) for sc in scopes):
                out.append(IngestedFile(*row[:5], bool(row[5])))
        return out


def ingest(root: str | os.PathLike, sources: str | os.PathLike | Sequence[str | os.PathLike],
           table: str | os.PathLike | None = None, photometry: str | os.PathLike | None = None, *,
           programs: str | os.PathLike | None = None, match_radius: float = 0.2, mode: str = "copy",
           fit: bool = True, z_range: tuple[float, float] = (0.0, 15.0), withdraw_missing: bool = False,
           scheduler: str | None = None, workers: int | None = None, batch_size: int | None = None,
           progress: bool | None = None, products_url: str | None = None) -> Table:
    """Create or update an archive root from real NIRSpec MSA products.

    Parameters
    ----------
    root : path
        The archive root (DESIGN.md layout); created when missing.
    sources : path, glob or URL, or a list of them
        ``*.spec.fits`` files (msaexp / DJA v4 and older msaexp), folders (searched
        recursively for ``*.fits``), globs, or fsspec URLs (``https://``, ``s3://`` ...).
    table : path, optional
        The DJA merged table (CSV, CSV.gz, ECSV or FITS): identities the files lack,
        grades → inspected redshifts (:mod:`campfire.archive.grades`), ``phot_*``
        photometry, extra DQ flags.
    photometry : path, optional
        A photometric catalogue (ECSV, FITS or CSV; :mod:`campfire.archive.photometry`).
    programs : path, optional
        A ``programs.yaml`` (:mod:`campfire.archive.programs`); without it every program
        is public with its proposal ID as slug.
    match_radius : float
        Spectra within this many arcsec are one object (default 0.2).
    mode : {'copy', 'link', 'in-place'}
        ``copy`` (default): products are copies (with SPECID and the ZFIT fit added);
        ``link``: hard (else symbolic) links to the inputs, fits in side files;
        ``in-place``: the inputs already under ``<root>/products`` are served as they are.
    fit : bool
        Fit automatic redshifts of new and changed spectra (default True).
    z_range : tuple of float
        Redshift range of the fits.
    withdraw_missing : bool
        Remove the spectra of inputs that disappeared (default: only report them).
    scheduler, workers : optional
        Where the graph runs: ``threads``, ``processes``, ``synchronous``, ``local:N``,
        ``tcp://HOST:PORT``; default the ``campfire.archive.scheduler`` setting
        (processes). ``workers`` alone starts a LocalCluster of that many workers.
    batch_size : int, optional
        Files per task (default ``campfire.archive.batch-size``).
    progress : bool, optional
        A progress bar on stderr (default: when stderr is a terminal).
    products_url : str, optional
        Put the products under this fsspec URL (``s3://bucket/prefix``; endpoint and
        credentials from the fsspec / s3fs configuration, e.g. ``AWS_ENDPOINT_URL``)
        instead of ``<root>/products``; the catalog stays in ``<root>/meta`` and records
        the URL (``archive_meta.products_url``), so later ingests and ``campfire serve``
        use it without the option. ``copy`` mode only. Default: the URL the archive
        recorded, else local products.

    Returns
    -------
    astropy.table.Table
        One row per input file and per problem: ``source``, ``status``, ``spectrum_id``,
        ``object_id``, ``reason``; ``meta`` holds the counts, ``seconds`` and
        ``files_per_second``.

    Raises
    ------
    ValidationError
        A bad argument or programs.yaml (nothing is written), ``products_url`` with a
        mode other than copy, or another URL than the one the archive's products are under.
    CampfireError
        ``root`` is a client's synced copy, or another ingest holds it.

    Examples
    --------
    >>> from campfire.archive import ingest
    >>> summary = ingest('/data/archive', ['/data/dja/'], table='/data/dja_msaexp_emission_lines_v4.4.csv.gz')  # doctest: +SKIP
    >>> summary[summary['status'] == 'failed']  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    sources = _check_args(sources, mode, match_radius, z_range)
    program_spec = read_programs(programs)  # a bad programs.yaml stops the run before anything is written
    root = pathlib.Path(root).expanduser().absolute()
    db = catalog_path(root)
    meta = read_meta(db) if db.exists() else {}
    if meta.get("owner") == "client":
        raise CampfireError(f"{root} is a client's synced copy (owner=client); ingest into an archive root of your own")
    store = _product_store(root, meta, check_products_url(products_url), mode)
    if scheduler is None and workers is None:
        scheduler = config.get("archive.scheduler")
    batch_size = int(batch_size or config.get("archive.batch-size"))
    progress = sys.stderr.isatty() if progress is None else bool(progress)
    run = _Run(root, mode, fit, z_range, match_radius, program_spec, withdraw_missing, store)
    (root / "products").mkdir(parents=True, exist_ok=True)
    with writer_lock(root):
        conn, fresh = _open_catalog(db)
        try:
            changed = _ingest(run, conn, sources, table, photometry, scheduler, workers, batch_size, progress)
        except BaseException:
            run.discard()
            conn.close()
            if fresh:
                pathlib.Path(conn_path(db, fresh)).unlink(missing_ok=True)
            raise
        conn.close()
        if fresh and changed:
            os.replace(conn_path(db, fresh), db)
            with contextlib.closing(connect(db, readonly=False)) as conn2:
                run_pending(conn2, root)
        elif fresh:
            pathlib.Path(conn_path(db, fresh)).unlink(missing_ok=True)
    _grant_members(run)
    return _summary(run, time.perf_counter() - t0)


def _product_store(root: pathlib.Path, meta: dict, url: str | None, mode: str) -> ProductStore:
    """Where this ingest puts products: the URL given, else the one the archive recorded, else ``<root>/products``."""
    recorded = meta.get(PRODUCTS_URL_KEY) or None
    if url is not None and recorded is not None and url != recorded:
        raise ValidationError(f"products_url: the products of {root} are under {recorded}; an ingest cannot move "
                              f"them to {url} (copy the objects, then update archive_meta.products_url)")
    if url is not None and recorded is None and meta.get("last_ingest"):
        raise ValidationError(f"products_url: {root} already holds products under {root / 'products'}; ingest "
                              "into a new archive root to put products on an object store")
    url = url or recorded
    if url is not None and mode != "copy":
        raise ValidationError(f"mode: an object store holds copies only (--products-url needs --copy), got {mode!r}")
    store = ProductStore(root, url)
    if store.is_remote:
        check_reachable(store.fs, url, PRODUCTS_URL_KEY)
    return store


def conn_path(db: pathlib.Path, fresh: bool) -> pathlib.Path:
    """Where the catalog is written: a new catalog is built beside its final place and renamed at the end."""
    return db.with_name(f"{db.name}.new-{os.getpid()}") if fresh else db


# an ingest's transaction dirties pages in proportion to the files it adds: a small cache
# spills them to the journal / WAL instead of holding them all (connect's 64 MB is for queries)
_CACHE_KIB = 8192


def _open_catalog(db: pathlib.Path):
    conn, fresh = _open(db)
    conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
    return conn, fresh


def _open(db: pathlib.Path):
    if db.exists():
        conn = connect(db, readonly=False, timeout=60)
        upgrade_catalog(conn)  # an archive made by an older campfire: the current schema first (ms when current)
        ensure_state(conn)
        conn.commit()
        return conn, False
    path = conn_path(db, True)
    path.unlink(missing_ok=True)
    conn = create_catalog(path, owner="pipeline")
    write_meta(conn, {"built_with": "campfire.archive", "catalog_id": f"archive-{uuid.uuid4().hex[:16]}",
                      "created_at": _now()})
    ensure_state(conn)
    conn.commit()
    return conn, True


def _ingest(run: _Run, conn, sources, table_path, phot_path, scheduler, workers, batch_size, progress) -> bool:
    root = run.root
    if run_pending(conn, root):  # finish the file moves of an interrupted, committed ingest
        log.info("completed the file operations of the previous ingest")
    run.store = RunStore(run.staging)
    t = time.perf_counter()
    files, scopes, problems = expand_sources(sources)
    for given, reason in problems:
        run.add(given, "failed", reason=reason)
    found = {f.key for f in files}  # a file this mode cannot hold is refused, not missing
    files = run.admissible(files)
    table = read_dja_table(table_path) if table_path is not None else None
    catalog = read_photometry(phot_path) if phot_path is not None else None
    for where, reason in (table.problems if table else []) + (catalog.problems if catalog else []):
        run.add(where, "failed", reason=reason)
    batches = run.plan(conn, files, table, batch_size)
    names = {f.name for f in files}
    del files
    run.times["plan"] = time.perf_counter() - t

    t = time.perf_counter()
    options = PrepareOptions(run.mode, str(run.staging), run.fit, run.z_range)
    for records in prepare_all(batches, options, scheduler=scheduler, workers=workers, progress=progress):
        run.store.add_records(records)
        run.n_fitted += sum(1 for r in records if r["status"] == "ready" and r.get("fitted"))
    run.times["prepare"] = time.perf_counter() - t

    t = time.perf_counter()
    conn.execute(f"ATTACH DATABASE ? AS {STAGE}", (str(run.store.path),))
    run.via = conn
    before = conn.total_changes
    conn.execute("BEGIN IMMEDIATE")
    try:
        if run.products.is_remote and read_meta(conn).get(PRODUCTS_URL_KEY) != run.products.url:
            write_meta(conn, {PRODUCTS_URL_KEY: run.products.url})
        upd = CatalogUpdate(conn, root, _now(), run.programs, run.match_radius, run.mode, run.products)
        taken_over = upd.settle_duplicates(found)
        upd.ensure_programs()
        upd.ensure_observations()
        upd.write_spectra()
        upd.refresh_redshift_auto()
        _refresh_stamps(conn)
        missing = [m for m in run.missing(conn, found, scopes) if m.source not in taken_over]
        spectra = {}
        if table is not None:
            by_name = _spectra_by_name(conn, set(table.rows))
            spectra, table_problems = table_spectra(conn, table, by_name, names)
            for where, reason in table_problems:
                run.add(where, "failed", reason=reason)
            _, grade_problems = apply_grades(conn, table, spectra)
            for where, reason in grade_problems:
                run.add(where, "failed", reason=reason)
        if catalog is not None or table is not None:
            _, phot_problems, unmatched = apply_photometry(conn, catalog, table, spectra, run.match_radius, upd.stamp)
            for where, reason in phot_problems:
                run.add(where, "warning", reason=reason)
            run.phot_unmatched = unmatched
        if run.withdraw:
            for source, sid, oid in upd.withdraw(missing):
                run.add(source, "withdrawn", sid, oid, "the file is gone; its spectrum was withdrawn (--withdraw-missing)")
        else:
            for m in missing:
                run.add(m.source, "missing", m.spectrum_id, "",
                        "the file is gone (still in the archive; --withdraw-missing removes it)")
        upd.refresh_aggregates()
        changed = conn.total_changes != before
        if changed:
            write_meta(conn, {"last_ingest": upd.stamp, "built_with": "campfire.archive"})
        conn.execute("COMMIT")
        run.committed = True
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute(f"DETACH DATABASE {STAGE}")
        run.via = None
        raise
    run.times["commit"] = time.perf_counter() - t
    run.grants = upd.grants
    run.rows = _summary_rows(conn)
    conn.execute(f"DETACH DATABASE {STAGE}")
    run.via = None
    run.store.close()
    run.store = None
    run_pending(conn, root)
    if changed:
        finalize_catalog(conn)
    return changed


def _refresh_stamps(conn) -> None:
    """Inputs whose stamp moved but whose bytes did not: only their stamp changes (no catalog row)."""
    conn.execute(f"UPDATE ingest_files SET stamp = (SELECT r.stamp FROM {STAGE}.records r WHERE r.source = "
                 "ingest_files.source AND r.status = 'unchanged') WHERE source IN (SELECT source FROM "
                 f"{STAGE}.records WHERE status = 'unchanged' AND stamp IS NOT NULL)")


def _spectra_by_name(conn, names: set[str]) -> dict[str, str]:
    """File name → spectrum ID of the inputs the archive holds under those names."""
    out = {}
    for source, sid in conn.execute("SELECT source, spectrum_id FROM ingest_files"):
        name = source.rsplit("/", 1)[-1]
        if name in names:
            out[name] = sid
    return out


def _summary_rows(conn) -> list[tuple[str, str, str, str, str]]:
    """The summary from the run store: the object of each row's spectrum filled in from the catalog."""
    return conn.execute(
        f"SELECT r.source, r.status, r.spectrum_id, CASE WHEN r.object_id != '' THEN r.object_id "
        f"ELSE coalesce(s.object_id, '') END, r.reason FROM {STAGE}.records r "
        "LEFT JOIN main.spectra s ON s.spectrum_id = r.spectrum_id AND r.spectrum_id != '' "
        "ORDER BY CASE r.status WHEN 'failed' THEN 0 WHEN 'missing' THEN 1 WHEN 'withdrawn' THEN 2 "
        "WHEN 'warning' THEN 3 WHEN 'new' THEN 4 WHEN 'updated' THEN 5 ELSE 6 END, r.source").fetchall()


def _grant_members(run: _Run) -> None:
    """Grant programs.yaml's members their programs on the server's account store (existing accounts only)."""
    grants = run.grants
    if not grants:
        return
    from campfire.server.auth import AuthStore

    store = AuthStore(run.root)
    try:
        for pid, members in sorted(grants.items()):
            for name in members:
                if not store.grant(name, [pid]):
                    run.add(run.programs.path or "programs.yaml", "warning",
                            reason=f"member {name!r} of program {pid} has no account yet; create it with "
                                   f"`campfire users add {name} --root {run.root} --programs {pid}` "
                                   "(or re-run the ingest after adding it)")
    finally:
        store.close()


def _summary(run: _Run, seconds: float) -> Table:
    order = {s: i for i, s in enumerate(("failed", "missing", "withdrawn", "warning", "new", "updated", "unchanged"))}
    run.rows.sort(key=lambda r: (order.get(r[1], 9), r[0]))
    columns = list(zip(*run.rows)) if run.rows else [()] * len(SUMMARY_COLUMNS)
    # reasons as Python strings: one long reason must not widen every row's fixed-width cell
    table = Table([list(c) for c in columns], names=SUMMARY_COLUMNS,
                  dtype=[str, str, str, str, object])
    counts = {s: 0 for s in STATUSES}
    for row in run.rows:
        counts[row[1]] = counts.get(row[1], 0) + 1
    run.rows = []
    n_files = run.n_prepared
    table.meta.update(
        root=str(run.root), mode=run.mode, counts=counts, seconds=round(seconds, 3),
        prepared=n_files, fitted=run.n_fitted,
        files_per_second=round(n_files / run.times["prepare"], 2) if n_files and run.times.get("prepare") else None,
        times={k: round(v, 3) for k, v in run.times.items()},
        photometry_unmatched=run.phot_unmatched,
    )
    return table


def format_counts(summary: Table) -> str:
    """One line: ``3 new, 1 updated, 5 unchanged, 1 failed (12.3 s)``."""
    counts = summary.meta.get("counts", {})
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    return f"{', '.join(parts) or 'nothing to do'} ({summary.meta.get('seconds', 0):.1f} s)"
