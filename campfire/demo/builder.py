"""Build a demo archive root: plan → files (in worker processes) → catalog.

The builder writes into a fresh directory beside the destination and renames it into
place when everything (catalog last) is written, so a reader never sees half an
archive; :func:`campfire.demo.ensure` adds a file lock so concurrent callers build once.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
import pathlib
import queue
import shutil
import sys
import time
from typing import Any

import numpy as np

from campfire import config
from campfire.catalog.aggregates import refresh_standard_aggregates
from campfire.catalog.consensus import best_redshift, consensus
from campfire.catalog.db import catalog_path, write_meta
from campfire.catalog.inspections import add_inspections
from campfire.catalog.schema import create_catalog, finalize_catalog
from campfire.catalog.writer import CatalogWriter, unit_vector
from campfire.demo import survey
from campfire.demo.catalog_only import build_catalog
from campfire.demo.identity import (
    DEMO_REVIEWER,
    SIZE_NAMES,
    demo_meta,
    read_build_marker,
    validate_size_seed,
    write_build_marker,
    write_system_tags,
)
from campfire.errors import CampfireError

__all__ = ["build", "main_build"]


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return contextlib.nullcontext(None)
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return contextlib.nullcontext(None)
    # no remaining-time estimate: the tasks differ too much in length (imaging fields first,
    # the first object batches compiling the fit's kernels) for a rate to mean anything
    return tqdm(total=total, desc=desc, unit="task", file=sys.stderr, leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} tasks [{elapsed}]")


# for the one-line announcement of a build: CPU seconds per simulated spectrum (simulation,
# redshift fit, FITS and truth files) and per imaging field, and the rest (start-up, the
# plan, the catalog: serial), so the small demo says ~15 s on 2 cores (bench/bench_demo_build.py,
# stop 25: ~15 s warm on a quiet machine), plus numba's compilation of the fit's kernels on a
# machine that never ran the fit and has no C compiler (~26 s)
_CPU_PER_SPECTRUM = 0.05
_CPU_PER_FIELD = 1.0
_CPU_FIXED = 2.0
_COMPILE_SECONDS = 11.0  # wall: numba compiles the fit's kernels once when its cache has none


def _fit_kernels_ready() -> bool:
    """Whether the redshift fit needs no compiling: its C kernel was built at install, or numba's
    on-disk cache holds its kernels."""
    from campfire.tasks._jit import numba_cache_dir, resolve_engine

    if resolve_engine("auto") != "numba":  # C (or numpy: nothing to compile)
        return True
    return any(pathlib.Path(numba_cache_dir()).glob("**/_numba_kernels.zfit_chi2_grid-*.nbi"))


def _announce(size: str, seed: int, root: pathlib.Path, plan: survey.Plan | None, workers: int) -> None:
    """One line before a build: what is built, where, that it happens once, and roughly how long."""
    if plan is None:  # the catalog-only size
        what, seconds = "the 1,000,000-spectrum catalog-only demo", None
    else:
        n_spec = plan.counts()["spectra"]
        n_fields = len({o.field for o in plan.objects})
        cpu = _CPU_PER_SPECTRUM * n_spec + _CPU_PER_FIELD * n_fields
        seconds = _CPU_FIXED + cpu / min(workers, os.cpu_count() or 1)
        if not _fit_kernels_ready():
            seconds += _COMPILE_SECONDS
        what = f"the {size} demo archive ({len(plan.objects)} objects, {n_spec} spectra)"
    cores = min(workers, os.cpu_count() or 1)
    took = f"roughly {_rough(seconds)} on {cores} core{'s' if cores > 1 else ''}" if seconds else "a few minutes"
    print(f"campfire: building {what} in {root}, once (later runs reuse it): {took}, "
          "longer on a busy machine", file=sys.stderr, flush=True)


def _rough(seconds: float) -> str:
    if seconds < 90:
        return f"{max(10, int(round(seconds / 5.0)) * 5)} s"
    return f"{int(round(seconds / 60.0))} min"


# --------------------------------------------------------------------------------------
# worker tasks (module-level so spawned processes can import them)


def _object_task(args) -> list[dict[str, Any]]:
    from campfire.demo.generate import simulate_object

    objs, seed, root = args
    return [simulate_object(o, seed, root) for o in objs]


def _field_task(args) -> dict[str, Any]:
    from campfire.demo.imaging import render_field
    from campfire.demo.sed import true_sed_band_flux

    root, plan, field = args
    f444w = {o.object_id: true_sed_band_flux(o.sed, "f444w") for o in plan.objects if o.field == field}
    by_target: dict[str, list[str]] = {}
    for o, t, s in plan.spectra:
        by_target.setdefault(t.target_id, []).append(s.spectrum_id)
    return render_field(root, plan, field, f444w, by_target)


def _one_blas_thread() -> None:
    """Pin BLAS to one thread in this process, for the rest of its life (a worker's initializer).

    The fits' matrix products round differently with another BLAS thread count (one ulp in
    a model flux), so a build in this process and one in worker processes, whose thread
    counts the environment may set apart (``OMP_NUM_THREADS`` exported after numpy loaded),
    would write different bytes. One thread also keeps two workers from oversubscribing
    the cores with BLAS threads of their own.
    """
    from campfire.tasks._blas import one_blas_thread_from_now_on

    one_blas_thread_from_now_on()


def _pool_context():
    """The multiprocessing context of the build's workers: fork when it is safe, else spawn.

    fork on Linux when this process runs no other thread (the command line): the workers
    start with campfire imported and the redshift fit's kernels loaded (C, or numba's when its
    cache has them) (:func:`_run_tasks`). spawn when other threads run (Dask, Jupyter: a
    forked child can deadlock on a lock one of them held) and on macOS, where fork is
    unsafe with the system's libraries.
    """
    import multiprocessing as mp
    import threading

    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return mp.get_context("fork")
    return mp.get_context("spawn")


def _announce_compile(progress: bool) -> None:
    if progress:
        print(f"campfire: compiling the redshift fit (once per machine, ~{_COMPILE_SECONDS:.0f} s)", file=sys.stderr,
              flush=True)


def _load_fit_kernels() -> None:
    """Fit a tiny flat spectrum: the fit's kernels load (numba's are compiled if not cached)."""
    from campfire.models import SpectrumData
    from campfire.tasks.redshift import fit_redshift

    wave = np.geomspace(0.6, 5.3, 200)
    fit_redshift(SpectrumData(wave, np.ones(wave.size), np.full(wave.size, 0.1), grating="PRISM"),
                 z_range=(0.0, 15.0))


def _run_tasks(tasks: list[tuple], workers: int, progress: bool, fits_from: int = 0) -> list[Any]:
    """Run (function, args) tasks, in worker processes when ``workers`` > 1; results in order.

    ``tasks[fits_from:]`` run the redshift fit, the ones before do not. Forked workers get
    the fit's kernels from this process: loaded before the fork when they are C or in numba's
    cache; otherwise numba compiles them here once (not once per worker) while the workers run the
    first tasks, and then loaded by each worker from the cache just written.
    """
    from threadpoolctl import threadpool_limits

    from campfire.tasks._jit import kernels

    results: list[Any] = [None] * len(tasks)
    with threadpool_limits(1, user_api="blas"), contextlib.ExitStack() as stack:
        pool = compile_here = None
        if workers > 1:
            context = _pool_context()
            if context.get_start_method() == "fork":
                compile_here = not _fit_kernels_ready()
                if compile_here:
                    _announce_compile(progress)
                    kernels()  # numba and the kernel module imported once, before the fork
                else:
                    _load_fit_kernels()
            # the pool before the progress bar: tqdm's monitor thread would rule out fork
            pool = stack.enter_context(context.Pool(workers, initializer=_one_blas_thread))
        bar = stack.enter_context(_progress(len(tasks), "demo", progress))
        if pool is None:
            for i, (fn, args) in enumerate(tasks):
                results[i] = fn(args)
                if bar is not None:
                    bar.update(1)
            return results
        # each finished task puts its index in `finished` (the pool's result thread runs the
        # callbacks): this process sleeps until one is done instead of waking every 20 ms
        finished: queue.SimpleQueue[int] = queue.SimpleQueue()

        def submit(i: int) -> Any:
            fn, args = tasks[i]
            return pool.apply_async(fn, (args,), callback=lambda _, i=i: finished.put(i),
                                    error_callback=lambda _, i=i: finished.put(i))

        pending = {i: submit(i) for i in range(fits_from)}
        if compile_here:
            _load_fit_kernels()
        pending.update({i: submit(i) for i in range(fits_from, len(tasks))})
        while pending:
            i = finished.get()
            results[i] = pending.pop(i).get()  # re-raises a worker's exception here
            if bar is not None:
                bar.update(1)
    return results


# --------------------------------------------------------------------------------------
# catalog


def _grade(rng, snr: float) -> int:
    """A visual grade a reviewer gives spectra whose best S/N is ``snr``."""
    if snr >= 10:
        return int(rng.choice([4, 4, 4, 3]))
    if snr >= 3:
        return int(rng.choice([4, 3, 3, 2]))
    return int(rng.choice([3, 2, 2, 1]))


def _inspections(obj: survey.ObjectPlan, spectra: list[dict], seed: int, stamp: str) -> tuple[float | None, list[dict]]:
    """An object's automatic redshift and the demo team's inspection records of it.

    The grade of a record derives only from the spectra it rests on: an object with
    public spectra is graded on those first; if it also has proprietary ones, a later
    record grades it on all of them. So what a caller sees of the grade (the consensus
    of the records they may see: campfire.catalog.consensus) never comes from a
    spectrum they may not see. One object in five is not graded at all.
    """
    rng = survey._rng(seed, "inspect", obj.index)
    public = {p.program_id for p in survey.PROGRAMS if p.is_public}
    shown = [s for s in spectra if s["program_id"] in public]
    # the object's automatic redshift comes from its best public spectrum when it has
    # one, so the shared objects row reveals nothing of a proprietary program
    z_auto = _best_fit(shown or spectra)
    ungraded = rng.random() < 0.2
    if ungraded and "redshift_quality" not in obj.forced:
        return z_auto, []
    day = _dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
    records = []
    for k, used in enumerate([shown, spectra] if 0 < len(shown) < len(spectra) else [spectra]):
        snr = max((s["signal_to_noise"] or 0.0) for s in used)
        quality = int(obj.forced.get("redshift_quality", _grade(rng, snr)))
        if quality == 0:
            continue
        z_insp = None
        if quality >= 2:
            z_insp = round(obj.sed.z + rng.normal(0.0, 0.0003 * (1 + obj.sed.z)), 4)
            z_fit = _best_fit(used)
            if quality == 2 and z_fit is not None and rng.random() < 0.25:
                z_insp = round(z_fit, 4)  # a tentative grade that took the (maybe wrong) fit
        z_insp = obj.forced.get("redshift_inspected", z_insp)
        when = (day + _dt.timedelta(days=30 * (k + 1))).strftime("%Y-%m-%dT%H:%M:%SZ")
        records.append({
            "object_id": obj.object_id, "reviewer": DEMO_REVIEWER, "quality": quality, "redshift": z_insp,
            "comment": f"graded on {len(used)} spectr{'um' if len(used) == 1 else 'a'} (best S/N {snr:.1f})",
            "spectra_seen": sorted((s["spectrum_id"], s["file_hash"]) for s in used),
            "created_at": when, "recorded_at": when,
        })
    return z_auto, records


def _best_fit(spectra: list[dict]) -> float | None:
    """The automatic redshift of the best-S/N spectrum that has one."""
    fitted = [s for s in spectra if s["redshift_auto"] is not None]
    best = max(fitted, key=lambda s: (s["signal_to_noise"] or -1e9)) if fitted else None
    return best["redshift_auto"] if best else None


def _photo_z(obj: survey.ObjectPlan, seed: int) -> tuple[float, float, float] | None:
    if obj.phot_catalog is None:
        return None
    rng = survey._rng(seed, "photo-z", obj.index)
    z = obj.sed.z
    if "photo_z" in obj.forced:
        pz = obj.forced["photo_z"]
    elif rng.random() < 0.05:  # catastrophic outliers
        pz = float(rng.uniform(0.2, 10.0))
    else:
        pz = max(0.01, z + rng.normal(0.0, 0.04 * (1 + z)))
    lo = 0.03 * (1 + pz) * rng.uniform(0.6, 1.6)
    hi = 0.03 * (1 + pz) * rng.uniform(0.6, 1.8)
    return round(pz, 3), round(lo, 3), round(hi, 3)


def _write_catalog(root: pathlib.Path, plan: survey.Plan, results: list[dict], size: str) -> dict[str, int]:
    seed = plan.seed
    db = catalog_path(root)
    if db.exists():
        db.unlink()
    conn = create_catalog(db, owner="pipeline")
    writer = CatalogWriter(conn)
    stamp = survey.reduction_time(seed)
    try:
        with conn:
            write_meta(conn, demo_meta(size, seed, stamp))
            writer.add_programs([(p.program_id, p.slug, p.name, p.pi, int(p.is_public)) for p in survey.PROGRAMS])
            used = {t.observation for o in plan.objects for t in o.targets}
            writer.add_observations(
                [(o.name, o.program.program_id, o.field, *(round(v, 7) for v in survey.pointing(o)),
                  round((o.pa_aper - survey.V3_IDL_Y_ANGLE) % 360.0, 3), survey.observation_date(o, seed))
                 for o in survey.OBSERVATIONS if o.name in used],
            )
            tag_ids = write_system_tags(writer, stamp)
            obj_rows, phot_rows, tphot, tobj, tags, spec_rows, tspec, local = [], [], [], [], [], [], [], []
            inspections = []
            by_index = {r["index"]: r for r in results}
            for obj in plan.objects:
                res = by_index[obj.index]
                z_auto, records = _inspections(obj, res["spectra"], seed, stamp)
                inspections += records
                seen = consensus(records)  # the objects row holds the view of everything ('*')
                pz = _photo_z(obj, seed)
                has_phot = bool(res["photometry"])
                obj_rows.append((
                    obj.object_id, obj.field, obj.ra, obj.dec, *unit_vector(obj.ra, obj.dec),
                    best_redshift(seen["redshift"], seen["quality"], z_auto), z_auto, seen["redshift"],
                    seen["quality"],
                    int(has_phot), obj.phot_catalog if has_phot else None,
                    *(pz if (pz and has_phot) else (None, None, None)), stamp,
                ))
                for p in res["photometry"]:
                    phot_rows.append((obj.object_id, p["band"], p["flux"], p["flux_err"], p["wavelength"]))
                    tphot.append((obj.object_id, p["band"], p["flux_true"]))
                if obj.sed.sed_type in tag_ids:
                    tags.append((tag_ids[obj.sed.sed_type], obj.object_id))
                tobj.append((obj.object_id, obj.sed.z, obj.sed.sed_type, obj.sed.norm, obj.r_e, obj.sersic_n,
                             obj.axis_ratio, obj.pa, obj.sed.to_json(), f"truth/objects/{obj.object_id}.npz"))
                for s in res["spectra"]:
                    t = s["truth"]
                    spec_rows.append((
                        s["spectrum_id"], s["object_id"], s["target_id"], s["observation"], s["program_id"],
                        s["grating"], s["filter"], s["fits_path"], s["signal_to_noise"], s["exposure_time"],
                        s["reduction_version"], s["redshift_auto"], s["dq_flags"], s["file_hash"], s["file_size"],
                        s["n_pix"], s["wave_min"], s["wave_max"], stamp, s["redshift_auto_lo"], s["redshift_auto_hi"],
                        s["redshift_auto_confidence"],
                    ))
                    tspec.append((
                        t["spectrum_id"], t["object_id"], t["slitloss_model"], t["src_sigma"], t["dx"], t["dy"],
                        t["throughput"], t["psf_scale"], t["slitloss_1um"], t["slitloss_3um"], t["slitloss_5um"],
                        t["gap_min"], t["gap_max"], t["cover_min"], t["cover_max"], t["det_start"], t["shift"],
                        t["contamination"], t["background"], t["stuck_neighbours"],
                        f"truth/spectra/{t['spectrum_id']}.npz",
                    ))
                    local.append((s["spectrum_id"], s["file_hash"], s["file_size"], stamp))
            writer.add_objects(obj_rows)
            writer.index_objects()
            writer.add_spectra(spec_rows)
            writer.add_photometry(phot_rows)
            writer.add_object_tags(tags)
            writer.add_local_files(local)
            add_inspections(conn, inspections, refresh=False)
            _write_truth(conn, tobj, tspec, tphot)
            refresh_standard_aggregates(conn)  # derives each visibility set's inspection fields
            write_build_marker(conn, size, seed)
        counts = {
            "observations": conn.execute("SELECT count(*) FROM observations").fetchone()[0],
            "objects": conn.execute("SELECT count(*) FROM objects").fetchone()[0],
            "spectra": conn.execute("SELECT count(*) FROM spectra").fetchone()[0],
        }
        finalize_catalog(conn)  # planner statistics: cone searches use the R*Tree
        conn.execute("VACUUM")
    finally:
        conn.close()
    return counts


def _write_truth(conn, objects: list[tuple], spectra: list[tuple], photometry: list[tuple]) -> None:
    """The demo's ground truth (tables only the demo has; see campfire/demo/README.md)."""
    conn.executemany(
        "INSERT INTO truth_objects (object_id, z_true, sed_type, norm_fnu, r_e, sersic_n, axis_ratio, pa, "
        "sed_params, sed_file) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", objects)
    conn.executemany(
        "INSERT INTO truth_spectra (spectrum_id, object_id, slitloss_model, src_sigma, dx, dy, throughput, "
        "psf_scale, slitloss_1um, slitloss_3um, slitloss_5um, gap_min, gap_max, cover_min, cover_max, "
        "det_start, shift, contamination, background, stuck_neighbours, truth_file) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", spectra)
    conn.executemany("INSERT INTO truth_photometry (object_id, band, flux_true) VALUES (?, ?, ?)", photometry)


def _write_sed_grid(root: pathlib.Path) -> None:
    from campfire.demo.generate import write_npz
    from campfire.demo.sed import TRUTH_EDGES, TRUTH_WAVE

    write_npz(root / "truth" / "sed_grid.npz", wave=TRUTH_WAVE, edges=TRUTH_EDGES)


def _build_into(tmp: pathlib.Path, size: str, seed: int, workers: int, plan: survey.Plan | None,
                progress: bool) -> dict[str, int]:
    if plan is None:
        return build_catalog(tmp, seed=seed, progress=progress)
    (tmp / "products").mkdir(parents=True, exist_ok=True)
    catalog_path(tmp).parent.mkdir(parents=True, exist_ok=True)
    _write_sed_grid(tmp)
    chunk = 4
    fields = sorted({o.field for o in plan.objects})
    # imaging tasks first: each is longer than an object batch; then the objects with the most
    # spectra (a fit each) first, so that the last batches are short and the workers finish
    # together (the results are keyed by object: the order changes no byte)
    objs = sorted(plan.objects, key=lambda o: -sum(len(t.spectra) for t in o.targets))
    tasks: list[tuple] = [(_field_task, (str(tmp), plan, f)) for f in fields]
    tasks += [(_object_task, (objs[i:i + chunk], seed, str(tmp))) for i in range(0, len(objs), chunk)]
    results = _run_tasks(tasks, workers, progress, fits_from=len(fields))
    flat = [r for batch in results[len(fields):] for r in batch]
    return _write_catalog(tmp, plan, flat, size)


def _default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def build(root: str | os.PathLike | None = None, size: str = "small", seed: int = 0, *,
          workers: int | None = None, progress: bool = True, overwrite: bool = True) -> pathlib.Path:
    """Build a demo archive root (catalog, FITS products, imaging, ground truth).

    Parameters
    ----------
    root : path, optional
        Where to build; default :func:`campfire.config.demo_root` (``~/.cache/campfire/demo``).
    size : {'small', 'full', 'catalog'}
        ``'small'`` (default): 240 objects / 460 spectra, every feature, < 1 min.
        ``'full'``: 2,450 objects / 7,200 spectra / 8 observations (the reference's numbers).
        ``'catalog'``: 1,000,000 spectra of catalog rows only (no FITS files).
    seed : int
        Everything random derives from it: the same seed gives the same catalog and
        byte-identical files.
    workers : int, optional
        Worker processes (default: the number of CPUs, at most 8); 1 runs in-process.
    progress : bool
        Show a progress bar (tqdm, on stderr).
    overwrite : bool
        Replace an existing demo archive at ``root``. A directory that is not a demo
        archive (no ``demo_build`` marker) is never replaced.

    Returns
    -------
    pathlib.Path
        The archive root.

    Raises
    ------
    ValidationError
        Unknown ``size`` or a bad ``seed``.
    CampfireError
        ``root`` exists and is not a demo archive (or ``overwrite=False``).

    Examples
    --------
    >>> import campfire.demo
    >>> root = campfire.demo.build('/tmp/campfire-demo', size='small', seed=0)  # doctest: +SKIP
    >>> from campfire import Campfire
    >>> Campfire(data_dir=root).get_object('ember_uds_p4_123456')  # doctest: +SKIP
    """
    return _build(root, size, seed, workers=workers, progress=progress, overwrite=overwrite)


def _build(root: str | os.PathLike | None, size: str, seed: int, *, workers: int | None = None,
           progress: bool = True, overwrite: bool = True, n_objects: int | None = None,
           n_spectra: int | None = None) -> pathlib.Path:
    """:func:`build`, optionally of a smaller survey plan (``n_objects``, ``n_spectra``: tests)."""
    size, seed = validate_size_seed(size, seed)
    root = pathlib.Path(root).expanduser() if root is not None else config.demo_root()
    root = root.absolute()
    if root.exists():
        if not root.is_dir():
            raise CampfireError(f"{root} exists and is not a directory")
        if any(root.iterdir()):
            if read_build_marker(root) is None:
                raise CampfireError(
                    f"{root} exists and is not a demo archive (no demo_build marker in meta/campfire.db); "
                    "choose an empty or new directory"
                )
            if not overwrite:
                raise CampfireError(f"{root} already holds a demo archive; pass overwrite=True to rebuild it")
    workers = _default_workers() if workers is None else max(1, int(workers))
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.building-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    t0 = time.perf_counter()
    try:
        plan = None if size == "catalog" else survey.make_plan(size, seed, n_objects=n_objects, n_spectra=n_spectra)
        if progress:
            _announce(size, seed, root, plan, workers)
        counts = _build_into(tmp, size, seed, workers, plan, progress)
        _swap_into_place(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if progress:
        print(f"campfire demo ({size}, seed {seed}): {counts['objects']} objects, {counts['spectra']} spectra, "
              f"{counts['observations']} observations in {time.perf_counter() - t0:.1f} s -> {root}",
              file=sys.stderr)
    return root


def _swap_into_place(tmp: pathlib.Path, root: pathlib.Path) -> None:
    """Rename the finished build onto ``root`` (an old demo there is moved aside, then removed)."""
    old = None
    if root.exists():
        old = root.parent / f".{root.name}.old-{os.getpid()}"
        if old.exists():
            shutil.rmtree(old)
        os.replace(root, old)
    os.replace(tmp, root)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def main_build(argv: list[str] | None = None) -> int:
    """``campfire demo build [ROOT] [--size small|full|catalog] [--seed N] [--workers N]``.

    Examples
    --------
    >>> main_build(['/tmp/demo', '--size', 'small'])  # doctest: +SKIP
    0
    """
    import argparse

    parser = argparse.ArgumentParser(prog="campfire demo build", description="Build the demo archive.")
    parser.add_argument("root", nargs="?", default=None, help="archive root (default ~/.cache/campfire/demo)")
    parser.add_argument("--size", default="small", choices=SIZE_NAMES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    root = build(args.root, size=args.size, seed=args.seed, workers=args.workers, progress=not args.quiet)
    print(root)
    return 0
