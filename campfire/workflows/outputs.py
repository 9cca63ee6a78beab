"""Output writers of ``campfire run``.

Per batch, inside the tasks (on the workers): :func:`finish_batch` takes one batch of results (per-object stacks or per-spectrum
results) and, for each good element, writes the FITS file (the pipeline format of
:func:`campfire.io.fits.write_spectrum`, with provenance cards and a ``PROVENANCE``
table) and the quick-look PNG (:func:`campfire.quicklook.figure.quicklook_figure`, a
matplotlib ``Figure`` without pyplot, so no global backend is switched in the caller's process); it
returns one summary row per element, failed or not. Failures never raise: a bad
object is a row with its reason.

Layout under the output directory::

    fits/<object_id>.fits                    per-object stack (or fits/<object_id>/<spectrum_id>.fits)
    fits/<population name>.fits              population stacks
    plots/<object_id>.png, plots/<population name>.png
    <name>.zarr                              every result + metadata
    summary.ecsv, provenance.json

After the compute, in the runner: :func:`write_population` (a population stack's FITS,
PNG and zarr group), :func:`write_summary_table` (ECSV) and :func:`write_json`.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import pathlib
import threading
from typing import Any, Callable, Collection, Iterator, Sequence

import numpy as np

__all__ = [
    "OutDir",
    "output_dir",
    "fits_path_for",
    "plot_path_for",
    "write_fits",
    "read_provenance",
    "write_plot",
    "plots_in_processes",
    "warm_plotting",
    "finish_batch",
    "plot_batch",
    "write_population",
    "write_summary_table",
    "population_row",
    "write_json",
]


def _is_url(path) -> bool:
    return "://" in str(path)


class OutDir(str):
    """An output location: a local absolute path or an fsspec URL (``s3://bucket/results``).

    A ``str`` (picklable, ``os.path.join`` works on it) whose ``/`` joins like
    :class:`pathlib.Path`, so the writers take either: workers with no shared disk
    write their outputs straight to an object store.

    Examples
    --------
    >>> str(OutDir('s3://bucket/run') / 'fits' / 'a.fits')
    's3://bucket/run/fits/a.fits'
    """

    def __truediv__(self, part) -> "OutDir":
        return OutDir(f"{self.rstrip('/')}/{part}" if _is_url(self) else os.path.join(self, part))

    @property
    def is_url(self) -> bool:
        return _is_url(self)

    def exists(self) -> bool:
        """True when a file or directory (a zarr store) is there."""
        if not self.is_url:
            return os.path.exists(self)
        import fsspec.core

        fs, path = fsspec.core.url_to_fs(self)
        return fs.exists(path)

    def mkdir(self) -> None:
        """Create a local directory (with its parents); an object store needs none."""
        if not self.is_url:
            os.makedirs(self, exist_ok=True)


def output_dir(path: str | os.PathLike) -> OutDir:
    """The :class:`OutDir` of an ``--output`` value: URLs as given, local paths absolute."""
    text = os.fspath(path)
    return OutDir(text.rstrip("/") if _is_url(text) else os.path.abspath(os.path.expanduser(text)))


def _staging(dest: str, suffix: str) -> str:
    """Where ``dest`` is written first: beside it (a rename publishes it), or a local temporary file for a URL."""
    if _is_url(dest):
        import tempfile

        fd, tmp = tempfile.mkstemp(suffix=suffix, prefix="campfire-out-")
        os.close(fd)
        return tmp
    p = pathlib.Path(dest)
    p.parent.mkdir(parents=True, exist_ok=True)
    return str(p.with_name(f".{p.name}.{os.getpid()}.{threading.get_ident()}.tmp{suffix}"))


def _publish(tmp: str, dest: str) -> None:
    """Put a finished file in place: a rename, or one upload (an object appears whole or not at all)."""
    if _is_url(dest):
        import fsspec.core

        fs, path = fsspec.core.url_to_fs(dest)
        try:
            fs.put_file(tmp, path)
        finally:
            os.unlink(tmp)
    else:
        os.replace(tmp, dest)


def fits_path_for(outdir: str, ref, kind: str) -> str:
    """Where the FITS output of an element goes (per object, or per spectrum in its object's folder)."""
    if kind == "objects":
        return os.path.join(outdir, "fits", f"{ref.spectrum_id}.fits")
    return os.path.join(outdir, "fits", ref.object_id or "_", f"{ref.spectrum_id}.fits")


def plot_path_for(outdir: str, ref, kind: str) -> str:
    """Where the quick-look PNG of an element goes."""
    if kind == "objects":
        return os.path.join(outdir, "plots", f"{ref.spectrum_id}.png")
    return os.path.join(outdir, "plots", ref.object_id or "_", f"{ref.spectrum_id}.png")


def write_fits(path: str, spec, *, cards: dict[str, Any], provenance: dict[str, Any]) -> str:
    """Write ``spec`` with provenance cards and a ``PROVENANCE`` extension, atomically.

    The extension holds the provenance record as UTF-8 JSON bytes (a 1D ``uint8``
    image, ``CONTENT = 'application/json'``): lossless, and ~4× cheaper to write than
    a one-cell string table. Read it back with :func:`read_provenance`.
    """
    from campfire.graphs.zarr_out import jsonable
    from campfire.io.fits import spectrum_file_bytes, write_file_bytes
    from campfire.io.fitsbytes import bytes_image_hdu

    out = spec.copy(header={**{k: v for k, v in spec.header.items() if len(k) <= 8}, **cards})
    text = json.dumps(jsonable(provenance), sort_keys=True).encode()
    prov = bytes_image_hdu("PROVENANCE", text, {"CONTENT": ("application/json", "UTF-8 JSON bytes")})
    return write_file_bytes(spectrum_file_bytes(out, [prov]), path, overwrite=True)


def read_provenance(path: str) -> dict[str, Any]:
    """The provenance record of an output FITS file (its ``PROVENANCE`` extension).

    Examples
    --------
    >>> read_provenance('results/stack_lrds/fits/ember_uds_p4_123456.fits')['workflow']['sha256']  # doctest: +SKIP
    """
    from campfire.io.fits import open_fits

    with open_fits(path) as hdul:  # a local path or an fsspec URL
        return json.loads(hdul["PROVENANCE"].data.tobytes().decode())


# zlib level of the quick-look PNGs: 1 encodes a 1200 × 560 figure in ~20 ms instead of ~30 ms
# (PIL's default 6) for ~14 % more bytes; the same pixels
PNG_COMPRESS_LEVEL = 1


def write_plot(path: str, spec, *, redshift: float | None = None, title: str | None = None) -> str:
    """A quick-look PNG of ``spec`` (:func:`~campfire.quicklook.figure.quicklook_figure`: 1200 px wide,
    error band, named lines, legend, and the inputs per pixel of a stack).

    Drawn in a worker process inside :func:`plots_in_processes`, else here."""
    return _plot_later(str(path), spec, redshift=redshift, title=title)()


def _draw_plot(path: str, spec, *, redshift: float | None = None, title: str | None = None) -> str:
    from campfire.quicklook.figure import quicklook_figure

    fig = quicklook_figure(spec, redshift=redshift, title=title)
    tmp = _staging(path, ".png")
    try:
        fig.savefig(tmp, format="png", pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL})
        _publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# The processes that draw the quick-look PNGs of a run on the threads scheduler (plots_in_processes):
# a PNG holds the GIL for its ~0.15 s (matplotlib's Agg and text layout), so threads draw them in turn.
_plot_processes = None


@contextlib.contextmanager
def plots_in_processes(n: int) -> Iterator[None]:
    """Draw the quick-look PNGs of this process's threads in ``n`` worker processes while inside.

    A quick-look PNG holds the GIL for ~0.15 s, so under the threads scheduler a run's PNGs
    are drawn one at a time, whatever the number of threads, and everything else waits for
    them. Inside this block :func:`write_plot` (and :func:`plot_batch`, which starts all of
    a batch's PNGs at once) hands them to loky's reusable process pool, whose workers
    start now and import matplotlib and draw a first figure while the run selects and
    computes; they stay for loky's idle timeout, so the next run in a session finds them
    warm. The PNGs are the same bytes as drawn in the threads (matplotlib's defaults and
    ``matplotlibrc``: ``rcParams`` changed at run time in this process do not reach the
    workers, as they do not reach a cluster's). A worker process that dies mid-PNG
    (killed, out of memory) makes that PNG be drawn in the thread instead.

    Parameters
    ----------
    n : int
        Worker processes; 0 draws in the threads (the block does nothing).

    Examples
    --------
    >>> with plots_in_processes(2):                                           # doctest: +SKIP
    ...     write_plot('plots/a.png', spec_a), write_plot('plots/b.png', spec_b)
    """
    global _plot_processes
    if n < 1:
        yield
        return
    from loky import get_reusable_executor

    pool = get_reusable_executor(max_workers=n)
    for _ in range(n):  # each worker's first figure (matplotlib's imports, fonts: ~0.5-1 s), now
        pool.submit(warm_plotting)
    previous, _plot_processes = _plot_processes, pool
    try:
        yield
    finally:
        _plot_processes = previous


def warm_plotting() -> None:
    """Draw one small quick-look PNG into memory: matplotlib's imports, fonts and first figure
    (~0.5 s more than the next one), paid now in this process rather than by its first real PNG."""
    import io

    from campfire.models import SpectrumData
    from campfire.quicklook.figure import quicklook_figure

    wave = np.linspace(1.0, 5.0, 64)
    spec = SpectrumData(wave, np.ones(64), np.full(64, 0.1), count=np.full(64, 2.0))
    quicklook_figure(spec, redshift=2.0).savefig(io.BytesIO(), format="png",
                                                 pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL})


def _plot_later(path: str, spec, **kwargs) -> Callable[[], str]:
    """Start drawing a quick-look PNG (in a worker process inside :func:`plots_in_processes`);
    the returned function waits for it and returns its path."""
    pool = _plot_processes
    if pool is not None:
        try:
            future = pool.submit(_draw_plot, path, spec, **kwargs)
        except RuntimeError:  # the pool was shut down or broke (BrokenProcessPool is one): draw it here
            pass
        else:
            return functools.partial(_plot_result, future, path, spec, kwargs)
    return functools.partial(_draw_plot, path, spec, **kwargs)


def _plot_result(future, path: str, spec, kwargs: dict) -> str:
    from concurrent.futures.process import BrokenProcessPool  # ~20 ms to import: only where a pool runs

    try:
        return future.result()
    except BrokenProcessPool:  # its worker process died (killed, out of memory): draw it here
        return _draw_plot(path, spec, **kwargs)


def finish_batch(
    items: Sequence,
    run: dict[str, Any],
    *,
    outdir: str,
    kind: str,
    fits: bool,
) -> list[dict[str, Any]]:
    """Write the FITS outputs of one batch; return one summary row per element.

    ``run`` is what every batch shares: ``{'provenance': the run's record, 'keys': object
    id → input key}``. The quick-look PNGs are tasks of their own (:func:`plot_batch`).
    """
    provenance, keys = run["provenance"], run["keys"]
    rows = []
    for it in items:
        ref = it.ref
        if kind == "objects":  # a stack of the object's spectra: some used, some left out
            n_used, n_failed = len(it.inputs), len(it.failed_inputs)
        else:  # one spectrum, one result
            n_used, n_failed = int(it.failure is None), int(it.failure is not None)
        row: dict[str, Any] = {
            "object_id": ref.object_id,
            "spectrum_id": "" if kind == "objects" else ref.spectrum_id,
            "kind": "object" if kind == "objects" else "spectrum",
            "status": "ok" if it.failure is None else "failed",
            "step": "" if it.failure is None else it.failure.step,
            "reason": "" if it.failure is None else it.failure.reason,
            "n_inputs": max(n_used + n_failed, 1),
            "n_used": n_used,
            "n_failed": n_failed,
            "failed_inputs": "; ".join(str(f) for f in it.failed_inputs),
            "bands_used": "",
            "redshift": ref.redshift,
            "fits": "",
            "png": "",
        }
        if it.calibration is not None:
            row["bands_used"] = ",".join(it.calibration.bands_used)
        elif it.info.get("bands_used"):
            row["bands_used"] = ",".join(it.info["bands_used"])
        # structured copy of the input failures for the run summary (not a table column)
        row["_input_failures"] = [
            {"object_id": f.object_id, "id": f.spectrum_id, "step": f.step, "reason": f.reason} for f in it.failed_inputs
        ]
        if it.failure is None:
            spec = it.value
            try:
                if fits:
                    inputs = [(sid, provenance.get("inputs", {}).get(sid, "")) for sid in (it.inputs or (ref.spectrum_id,))]
                    from campfire.workflows.provenance import fits_cards

                    key = keys.get(ref.object_id, "")
                    prov = dict(provenance, inputs=dict(inputs), object_id=ref.object_id, input_key=key)
                    cards = fits_cards(provenance, key, inputs, object_name=ref.object_id, redshift=ref.redshift)
                    row["fits"] = write_fits(fits_path_for(outdir, ref, kind), spec, cards=cards, provenance=prov)
            except Exception as err:  # an output that cannot be written fails its object, not the run
                row.update(status="failed", step="output", reason=f"{type(err).__name__}: {err}")
        rows.append(row)
    return rows


def plot_batch(items: Sequence, ids: Collection[str], *, outdir: str, kind: str,
               rest_frame: bool = False) -> dict[str, dict[str, Any]]:
    """The quick-look PNGs of the elements of a batch whose id is in ``ids``.

    Returns
    -------
    dict
        Row id (object id, or spectrum id for per-spectrum runs) → what its summary row
        gets: ``{'png': path}``, or ``status``/``step``/``reason`` when the plot could not be
        written (an output that cannot be written fails its object, not the run).
    """
    started: dict[str, Callable[[], str]] = {}
    for it in items:
        ref = it.ref
        row_id = ref.object_id if kind == "objects" else ref.spectrum_id
        if it.failure is not None or row_id not in ids:
            continue
        # all at once: inside plots_in_processes every worker process takes one
        started[row_id] = _plot_later(plot_path_for(outdir, ref, kind), it.value,
                                      redshift=None if rest_frame else ref.redshift)
    out: dict[str, dict[str, Any]] = {}
    for row_id, png in started.items():
        try:
            out[row_id] = {"png": png()}
        except Exception as err:
            out[row_id] = {"status": "failed", "step": "output", "reason": f"{type(err).__name__}: {err}"}
    return out


def write_json(path: str | os.PathLike, data: dict) -> None:
    """``data`` as indented JSON, written atomically (provenance.json, the run state)."""
    from campfire.graphs.zarr_out import jsonable

    tmp = _staging(os.fspath(path), ".json")
    with open(tmp, "w") as f:
        json.dump(jsonable(data), f, indent=1, sort_keys=True)
    _publish(tmp, os.fspath(path))


def write_population(spec, label: str, key: str, outdir: OutDir, wf, prov: dict, zarr_path) -> dict:
    """Write a population stack (FITS with provenance, PNG, zarr group); return its summary entry."""
    from campfire.graphs.zarr_out import write_spectrum_group
    from campfire.workflows.provenance import fits_cards

    excluded = [str(e) for e in spec.meta.get("excluded", [])]
    out: dict[str, Any] = {"status": "ok", "n_inputs": int(spec.meta.get("n_spectra", 0)),
                           "excluded": len(excluded), "excluded_inputs": excluded}
    spec = spec.copy(spectrum_id=label)
    inputs = [(sid, prov["inputs"].get(sid, "")) for sid in spec.meta.get("inputs", [])]
    if wf.outputs.fits:
        out["fits"] = write_fits(str(outdir / "fits" / f"{label}.fits"), spec,
                                 cards=fits_cards(prov, key, inputs, object_name=label),
                                 provenance=dict(prov, population=label, input_key=key))
    if wf.outputs.plots is not False:
        try:
            frame = ", rest frame" if spec.meta.get("rest_frame") else ""
            title = f"{label}: {spec.meta.get('method', 'stack')} of {out['n_inputs']}{frame}"
            out["png"] = write_plot(str(outdir / "plots" / f"{label}.png"), spec, title=title)
        except Exception as err:  # a plot must not lose the stack
            out["png_error"] = f"{type(err).__name__}: {err}"
    if zarr_path is not None:
        write_spectrum_group(str(zarr_path), f"population/{label}", spec, attrs={"input_key": key, "provenance": prov})
        out["zarr"] = f"{zarr_path}/population/{label}"
    return out


#: the summary table's columns and their types; ``spectrum_id`` only in per-spectrum runs
SUMMARY_COLUMNS = {
    "object_id": str, "spectrum_id": str, "kind": str, "status": str, "step": str, "reason": str,
    "n_inputs": int, "n_used": int, "n_failed": int, "failed_inputs": str, "bands_used": str,
    "redshift": float, "fits": str, "png": str,
}
SUMMARY_DESCRIPTIONS = {
    "object_id": "the object (a population stack: its name)",
    "spectrum_id": "the spectrum (per-spectrum runs)",
    "kind": "object, spectrum or population (a stack over objects)",
    "status": "ok, failed or skipped (complete in an earlier run, inputs unchanged)",
    "step": "the step that failed",
    "reason": "why it failed",
    "n_inputs": "spectra (population: objects) that went in",
    "n_used": "inputs in the result",
    "n_failed": "inputs left out (failed_inputs says which and why)",
    "failed_inputs": "'id: step: reason' of each input left out, '; '-separated",
    "bands_used": "photometric bands the calibration used",
    "redshift": "the object's catalog redshift",
    "fits": "output FITS file, relative to this table's folder",
    "png": "quick-look plot, relative to this table's folder",
}


def population_row(label: str, entry: dict) -> dict[str, Any]:
    """The summary-table row of a population stack (``entry``: what :func:`write_population` returned,
    or ``{'status': 'failed', 'step', 'reason'}``)."""
    n_used, excluded = int(entry.get("n_inputs", 0)), list(entry.get("excluded_inputs", []))
    return {"object_id": label, "kind": "population", "status": entry.get("status", "ok"),
            "step": entry.get("step", ""), "reason": entry.get("reason", ""), "n_inputs": n_used + len(excluded),
            "n_used": n_used, "n_failed": len(excluded), "failed_inputs": "; ".join(excluded),
            "fits": entry.get("fits", ""), "png": entry.get("png", "")}


def write_summary_table(path: str | os.PathLike, rows: list[dict], prov: dict, *, per_spectrum: bool = False) -> None:
    """The run's summary table (one row per object or spectrum, and per population stack; ECSV), written atomically.

    Paths are relative to the table's folder (the run's output directory), so the
    folder can be moved or shared; redshifts are rounded to
    :data:`~campfire.workflows.provenance.REDSHIFT_DECIMALS` decimals.
    """
    from astropy.table import Table

    from campfire.graphs.zarr_out import jsonable
    from campfire.workflows.provenance import REDSHIFT_DECIMALS

    cols = [c for c in SUMMARY_COLUMNS if per_spectrum or c != "spectrum_id"]
    dtypes = [SUMMARY_COLUMNS[c] for c in cols]
    defaults = {"n_inputs": 0, "n_used": 0, "n_failed": 0, "redshift": np.nan}
    dest = os.fspath(path)
    base = dest.rsplit("/", 1)[0] if _is_url(dest) else os.path.dirname(os.path.abspath(dest))

    inside = base.rstrip(os.sep) + os.sep

    def relative(v: str) -> str:
        if _is_url(v):
            return v[len(base) + 1:] if v.startswith(base + "/") else v
        if v.startswith(inside) and os.path.normpath(v) == v:  # the run's own outputs: no relpath (~25 us a row)
            return v[len(inside):]
        return os.path.relpath(os.path.abspath(v), base)

    def value(row: dict, col: str):
        v = row.get(col, defaults.get(col, ""))  # private keys (_...) are left out
        if col in ("fits", "png") and v:
            return relative(str(v))
        if col == "redshift" and v is not None and np.isfinite(v):
            return round(float(v), REDSHIFT_DECIMALS)
        return np.nan if v is None else v

    data = {c: [value(r, c) for r in rows] for c in cols}
    t = Table(data, names=cols, dtype=dtypes) if rows else Table(names=cols, dtype=dtypes)
    for c in cols:
        t[c].description = SUMMARY_DESCRIPTIONS[c]
    t.meta.update(workflow=prov["workflow"]["name"], workflow_sha256=prov["workflow"]["sha256"],
                  catalog=prov["catalog"], versions=prov["versions"], created=prov["created"],
                  selection=jsonable(prov["selection"]))
    tmp = _staging(os.fspath(path), ".ecsv")
    t.write(tmp, format="ascii.ecsv", overwrite=True)
    _publish(tmp, os.fspath(path))
