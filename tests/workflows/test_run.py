"""``campfire run`` end to end on the small demo: both shipped workflows, zarr + FITS outputs with
provenance, a failing object recorded while the batch goes on, re-runs that skip, --force,
--dry-run, and the CLI."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import textwrap

import dask
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from campfire.models import SpectrumData
from campfire.workflows.outputs import read_provenance
from campfire.workflows.runner import STATE_FILE, run_workflow

ROOT = pathlib.Path(__file__).parents[2]
STACK_LRDS = ROOT / "workflows" / "stack_lrds.yaml"
CALIBRATE_ALL = ROOT / "workflows" / "calibrate_all.yaml"


@pytest.fixture(scope="module", autouse=True)
def demo_is_the_archive(demo_root):
    """``archive: demo`` resolves to the session's small demo (not ~/.cache)."""
    with dask.config.set({"campfire.demo-root": str(demo_root)}):
        yield


@pytest.fixture(scope="module")
def cf(demo_root):
    from campfire import Campfire

    return Campfire(data_dir=demo_root)


def quiet(_):
    pass


@pytest.fixture(scope="module")
def lrd_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stack_lrds")
    lines: list[str] = []
    summary = run_workflow(STACK_LRDS, output=out, progress=False, echo=lines.append)
    return out, summary, "\n".join(lines)


def test_stack_lrds_end_to_end(lrd_run, cf):
    import zarr

    out, summary, text = lrd_run
    assert summary["ok"], text
    sel = cf.query_spectra(tags=["lrd"], has_photometry=True, dq_flags="~CONTAMINATION")
    n_obj = len(set(sel["object_id"]))
    assert summary["objects"]["total"] == n_obj and summary["objects"]["done"] + summary["objects"]["failed"] == n_obj
    assert summary["objects"]["done"] >= n_obj - 2
    assert "done in" in text and "population lrd_population_rest" in text
    # FITS per object, in the pipeline format, with provenance
    wf_sha = __import__("hashlib").sha256(STACK_LRDS.read_bytes()).hexdigest()
    hashes = {r["spectrum_id"]: r["file_hash"] for r in sel}
    fits_files = sorted((out / "fits").glob("*.fits"))
    assert len(fits_files) == summary["objects"]["done"] + 1  # + the population stack
    with fits.open(out / "fits" / "ember_uds_p4_123456.fits") as h:
        hdr = h[0].header
        assert hdr["WFSHA"] == wf_sha and hdr["WFNAME"] == "stack_lrds" and hdr["OBJID"] == "ember_uds_p4_123456"
        assert hdr["CFVER"] and hdr["DASKVER"] == dask.__version__ and hdr["NPVER"] == np.__version__
        assert len(hdr["CATSHA"]) == 64 and hdr["CATVER"]
        for i in range(1, hdr["NINPUT"] + 1):
            assert hashes[hdr[f"INSPEC{i}"]] == hdr[f"INHASH{i}"]
        prov = json.loads(h["PROVENANCE"].data.tobytes())
        assert prov == read_provenance(out / "fits" / "ember_uds_p4_123456.fits")
        assert prov["selection"] == {"tags": ["lrd"], "has_photometry": True, "dq_flags": "~CONTAMINATION"}
        assert prov["workflow"]["sha256"] == wf_sha and "steps:" in prov["workflow"]["text"]
        assert set(prov["versions"]) >= {"campfire", "dask", "numpy"} and "last_synced" in prov["catalog"]
        assert h["SPEC1D"].data["wave"].size == 655
    # the zarr store: every result + metadata
    z = zarr.open_group(str(out / "stack_lrds.zarr"), mode="r")
    assert z["spectra/fnu"].shape == (len(sel), 655) and z["objects/fnu"].shape == (n_obj, 655)
    assert z["objects/ok"][:].sum() == summary["objects"]["done"]
    assert z.attrs["provenance"]["workflow"]["sha256"] == wf_sha
    pop = z["population/lrd_population_rest"]
    assert pop.attrs["meta"]["rest_frame"] and pop.attrs["meta"]["norm_window"] == [0.42, 0.48]
    assert np.nanmedian(pop["fnu"][:][(pop["wavelength"][:] > 0.42) & (pop["wavelength"][:] < 0.48)]) == pytest.approx(1, rel=0.05)
    # issue 17.5: the normalised population stack is dimensionless everywhere, and says relative to what
    assert pop.attrs["flux_unit"] == "" and pop.attrs["norm_window"] == [0.42, 0.48]
    assert "0.42-0.48 um (rest frame)" in pop.attrs["flux_normalization"]
    with fits.open(out / "fits" / "lrd_population_rest.fits") as h:
        spec1d = h["SPEC1D"].header
        assert spec1d["TUNIT2"] == "" and spec1d["TUNIT3"] == "" and "dimensionless" in spec1d.comments["TUNIT2"]
        assert (h[0].header["NORMLO"], h[0].header["NORMHI"]) == (0.42, 0.48) and spec1d["NORMLO"] == 0.42
    back = SpectrumData.from_fits(out / "fits" / "lrd_population_rest.fits")
    assert back.meta["norm_window"] == [0.42, 0.48] and back.rest_frame
    assert fits.getheader(out / "fits" / "ember_uds_p4_123456.fits", "SPEC1D")["TUNIT2"] == "uJy"
    # FITS and zarr hold the same numbers
    ids = list(z["objects/object_id"][:])
    row = ids.index("ember_uds_p4_123456")
    np.testing.assert_array_equal(fits.getdata(out / "fits" / "ember_uds_p4_123456.fits", "SPEC1D")["flux"],
                                  z["objects/fnu"][row])
    # quick-look PNGs, summary table, provenance.json
    assert (out / "plots" / "ember_uds_p4_123456.png").stat().st_size > 5000
    assert (out / "plots" / "lrd_population_rest.png").exists()
    _check_quicklook_pngs(out)
    t = Table.read(out / "summary.ecsv")
    assert t.colnames == ["object_id", "kind", "status", "step", "reason", "n_inputs", "n_used", "n_failed",
                          "failed_inputs", "bands_used", "redshift", "fits", "png"]
    objects, pops = t[t["kind"] == "object"], t[t["kind"] == "population"]
    assert len(objects) == n_obj and set(objects["status"]) <= {"ok", "failed"} and t.meta["workflow_sha256"] == wf_sha
    assert all(objects["n_inputs"] == objects["n_used"] + objects["n_failed"])
    per_object = {}
    for r in sel:
        per_object[r["object_id"]] = per_object.get(r["object_id"], 0) + 1
    assert all(row["n_inputs"] == per_object[row["object_id"]] for row in objects)
    left_out = objects[objects["n_failed"] > 0]
    assert len(left_out) and all(row["failed_inputs"].count(": ") >= 2 for row in left_out)  # id: step: reason
    # the population stack has its row, naming what it left out
    pop_entry = summary["populations"]["lrd_population_rest"]
    assert list(pops["object_id"]) == ["lrd_population_rest"] and pops["status"][0] == "ok"
    assert pops["n_used"][0] == pop_entry["n_inputs"] and pops["n_failed"][0] == pop_entry["excluded"]
    assert pops["fits"][0] == "fits/lrd_population_rest.fits" and pops["png"][0] == "plots/lrd_population_rest.png"
    # paths relative to the output folder; redshifts rounded to 4 decimals
    row = objects[objects["object_id"] == "ember_uds_p4_123456"][0]
    assert row["fits"] == "fits/ember_uds_p4_123456.fits" and (out / row["fits"]).exists()
    assert row["png"] == "plots/ember_uds_p4_123456.png"
    assert all(round(z, 4) == z for z in objects["redshift"])
    # the console names what the population left out, with whole words
    assert pop_entry["excluded_inputs"]  # the demo's LRDs include one without flux in the normalisation window
    for excluded in pop_entry["excluded_inputs"]:
        assert f"left out {excluded.split(':')[0]}: " in text
    assert "…" not in text.replace(" …", "")  # cut only at a word boundary
    # standard identification cards in the primary header
    hdr = fits.getheader(out / "fits" / "ember_uds_p4_123456.fits")
    z = cf.get_object("ember_uds_p4_123456").redshift
    assert hdr["TELESCOP"] == "JWST" and hdr["INSTRUME"] == "NIRSPEC" and hdr["OBJECT"] == "ember_uds_p4_123456"
    assert hdr["REDSHIFT"] == round(z, 4)
    pop_hdr = fits.getheader(out / "fits" / "lrd_population_rest.fits")
    assert pop_hdr["OBJECT"] == "lrd_population_rest" and pop_hdr["TELESCOP"] == "JWST" and "REDSHIFT" not in pop_hdr
    assert json.loads((out / "provenance.json").read_text())["inputs"] == hashes


def _check_quicklook_pngs(out):
    """Issue 18.6 / 17.5: quick-look PNGs of 1200 px, the population one with the inputs-per-pixel
    panel, its normalised axis label, named line markers at rest and a legend (read back from the
    figure the writer draws, and the PNG's size from the file)."""
    from PIL import Image

    from campfire.quicklook.figure import quicklook_figure

    for name in ("ember_uds_p4_123456", "lrd_population_rest"):
        with Image.open(out / "plots" / f"{name}.png") as img:
            assert img.size in ((1200, 560), (1200, 640)), (name, img.size)  # 640: with the count panel
    pop = SpectrumData.from_fits(out / "fits" / "lrd_population_rest.fits")
    fig = quicklook_figure(pop, title="population")
    ax, ax_n = fig.axes
    assert "median $f_\\nu$(0.42–0.48 μm)" in ax.get_ylabel() and "dimensionless" in ax.get_ylabel()
    assert ax_n.get_ylabel() == "N inputs" and ax_n.lines[0].get_ydata().max() == pop.count.max() > 1
    labels = [t.get_text() for t in ax.texts if str(t.get_gid()).startswith("emission-line-label:")]
    assert any(t.startswith("Hα") for t in labels) and any(t.startswith("[OIII]") for t in labels)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["stack", "±1σ"]


def test_workflow_results_equal_the_lazy_graph(lrd_run, cf):
    """The workflow computes what the same LazySpectra pipeline computes (same functions, same keys)."""
    import zarr

    from campfire.graphs.stacking import grid_from_spec

    out, summary, _ = lrd_run

    grid = grid_from_spec({"start": 0.6, "stop": 5.3, "resolution": 300})
    lazy = (cf.lazy_spectra(tags=["lrd"], has_photometry=True, dq_flags="~CONTAMINATION", errors="record")
            .calibrate(method="chebyshev", degree=2, min_snr=0.5).resample(grid).stack("weighted_mean", by="object"))
    items = {it.ref.object_id: it for it in lazy.items().compute()}
    z = zarr.open_group(str(out / "stack_lrds.zarr"), mode="r")
    for oid, fnu in zip(z["objects/object_id"][:], z["objects/fnu"][:]):
        it = items[oid]
        if it.failure is None:
            np.testing.assert_array_equal(fnu, it.value.fnu)


def test_rerun_skips_and_force_recomputes(lrd_run):
    out, first, _ = lrd_run
    lines: list[str] = []
    again = run_workflow(STACK_LRDS, output=out, progress=False, echo=lines.append)
    assert again["nothing_to_do"] and "nothing to do" in lines[-1]
    lines.clear()
    dry = run_workflow(STACK_LRDS, output=out, dry_run=True, echo=lines.append)  # the plan, marked complete
    text = "\n".join(lines)
    assert dry["plan"]["complete"] and text.startswith("plan of stack_lrds (") and "COMPLETE, nothing to do" in text
    n = first["objects"]["total"]
    assert f"objects:    {n} (0 to process, {first['objects']['done']} complete and skipped)" in text
    assert "population: lrd_population_rest (complete, skipped)" in text and "stack_lrds.zarr" in text
    assert again["objects"]["skipped"] == first["objects"]["done"]
    state = json.loads((out / STATE_FILE).read_text())
    assert len(state["objects"]) == first["objects"]["done"]
    # one output removed: only that object runs again (the population is unchanged)
    victim = out / "fits" / "ember_uds_p4_123456.fits"
    before = fits.getdata(victim, "SPEC1D")["flux"].copy()
    victim.unlink()
    partial = run_workflow(STACK_LRDS, output=out, progress=False, echo=quiet)
    assert partial["objects"]["done"] == 1 and partial["objects"]["skipped"] == first["objects"]["done"] - 1
    np.testing.assert_array_equal(fits.getdata(victim, "SPEC1D")["flux"], before)
    forced = run_workflow(STACK_LRDS, output=out, progress=False, echo=quiet, force=True)
    assert forced["objects"]["done"] == first["objects"]["done"] and forced["objects"]["skipped"] == 0


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    lines: list[str] = []
    out = tmp_path / "never"
    summary = run_workflow(STACK_LRDS, output=out, dry_run=True, echo=lines.append)
    text = "\n".join(lines)
    plan = summary["plan"]
    assert summary["dry_run"] and not out.exists()
    assert plan["objects"]["todo"] == plan["objects"]["total"] > 20 and plan["spectra"]["total"] > 40
    assert plan["fetch"] == {"files": 0, "bytes": 0} and plan["tasks"] > plan["partitions"]
    for word in ("objects:", "spectra:", "fetch:", "tasks:", "outputs:", "stack_lrds.zarr", "population:"):
        assert word in text


@pytest.fixture()
def broken_archive(demo_root, tmp_path, cf):
    """The demo with one LRD's only selected spectrum corrupted (files symlinked, catalog copied)."""
    root = tmp_path / "archive"
    (root / "meta").mkdir(parents=True)
    shutil.copy2(demo_root / "meta" / "campfire.db", root / "meta" / "campfire.db")
    os.symlink(demo_root / "imaging", root / "imaging")
    for d in (demo_root / "products").iterdir():
        (root / "products" / d.name).mkdir(parents=True)
        for f in d.iterdir():
            os.symlink(f, root / "products" / d.name / f.name)
    sel = cf.query_spectra(tags=["lrd"], has_photometry=True, dq_flags="~CONTAMINATION")
    counts: dict[str, int] = {}
    for r in sel:
        counts[r["object_id"]] = counts.get(r["object_id"], 0) + 1
    victim = next(r for r in sel if counts[r["object_id"]] == 1)
    target = root / victim["fits_path"]
    data = target.read_bytes()
    target.unlink()
    target.write_bytes(data[: len(data) // 3])  # truncated mid-table
    return root, victim


def test_a_failing_object_is_recorded_and_the_batch_continues(broken_archive, tmp_path):
    root, victim = broken_archive
    wf = tmp_path / "broken.yaml"
    wf.write_text(STACK_LRDS.read_text().replace("archive: demo", f"archive: {root}"))
    lines: list[str] = []
    out = tmp_path / "out"
    summary = run_workflow(wf, output=out, progress=False, echo=lines.append, scheduler="synchronous")
    failed = {f["object_id"]: f for f in summary["failures"]}
    assert victim["object_id"] in failed and summary["ok"]
    assert failed[victim["object_id"]]["step"] == "stack" and "open" in failed[victim["object_id"]]["reason"]
    assert summary["objects"]["done"] >= summary["objects"]["total"] - 3
    assert not (out / "fits" / f"{victim['object_id']}.fits").exists()
    t = Table.read(out / "summary.ecsv")
    row = t[t["object_id"] == victim["object_id"]][0]
    assert row["status"] == "failed" and victim["spectrum_id"] in row["reason"]
    assert f"failed {victim['object_id']}" in "\n".join(lines)
    # a re-run retries only the failed object
    again = run_workflow(wf, output=out, progress=False, echo=quiet, scheduler="synchronous")
    assert again["objects"]["skipped"] == summary["objects"]["done"] and again["objects"]["failed"] == 1


def test_a_missing_file_of_an_archive_root_fails_its_object_not_the_run(broken_archive, tmp_path):
    """A product the catalog lists as held locally but gone from disk (an archive root without a server
    or object store: its path is used unchecked when the graph is built) fails in the download step
    with its path, recorded on its object; the other objects complete."""
    root, victim = broken_archive
    (root / victim["fits_path"]).unlink()
    wf = tmp_path / "missing.yaml"
    wf.write_text(STACK_LRDS.read_text().replace("archive: demo", f"archive: {root}"))
    summary = run_workflow(wf, output=tmp_path / "out", progress=False, echo=quiet, scheduler="synchronous")
    failed = {f["object_id"]: f for f in summary["failures"]}
    assert summary["ok"] and set(failed) == {victim["object_id"]}
    assert failed[victim["object_id"]]["step"] == "stack"
    assert f"no such file: {root / victim['fits_path']}" in failed[victim["object_id"]]["reason"]
    assert summary["objects"]["done"] == summary["objects"]["total"] - 1


def test_calibrate_all_end_to_end(tmp_path, cf):
    import zarr

    out = tmp_path / "cal"
    summary = run_workflow(CALIBRATE_ALL, output=out, progress=False, echo=quiet)
    sel = cf.query_spectra(has_photometry=True)
    n_obj = len(set(sel["object_id"]))
    assert summary["ok"] and summary["objects"]["total"] == n_obj > 100
    assert summary["objects"]["done"] + summary["objects"]["failed"] == n_obj
    for f in summary["failures"]:
        assert f["reason"]  # every failure says why
    files = sorted((out / "fits").glob("*.fits"))
    assert len(files) == summary["objects"]["done"]
    assert len(list((out / "plots").glob("*.png"))) <= 24
    prov = read_provenance(files[0])
    hashes = {r["spectrum_id"]: r["file_hash"] for r in sel}
    assert prov["selection"] == {"has_photometry": True} and prov["workflow"]["name"] == "calibrate_all"
    assert prov["inputs"] and all(hashes[sid] == sha for sid, sha in prov["inputs"].items())
    assert fits.getheader(files[0])["CFKEY"] == prov["input_key"]
    z = zarr.open_group(str(out / "calibrate_all.zarr"), mode="r")
    assert z["objects/fnu"].shape[0] == n_obj and z["spectra/fnu"].shape[0] == len(sel)
    t = Table.read(out / "summary.ecsv")
    ok = t[t["status"] == "ok"]
    assert len(ok) == summary["objects"]["done"] and all(b for b in ok["bands_used"])


UNION = """\
name: union
archive: demo
selection:
  search: ember_uds_p4_123456
steps:
  - download
  - stack: {by: object, grid: union}
  - stack: {by: all, input: spectra, grid: union, name: all_gratings}
outputs:
  plots: false
  zarr: false
"""


def test_a_workflow_stacks_on_the_union_grid(tmp_path):
    """Issue 17.4: ``grid: union`` keeps the whole 0.6–5.3 μm of G140M + G395M + PRISM (the
    default grid, G140M's, would keep 0.94–1.92 μm), per object and in a population stack."""
    wf = tmp_path / "union.yaml"
    wf.write_text(UNION)
    out = tmp_path / "out"
    summary = run_workflow(wf, output=out, progress=False, echo=quiet)
    assert summary["ok"] and summary["objects"]["done"] == 1, summary
    for name in ("ember_uds_p4_123456", "all_gratings"):
        with fits.open(out / "fits" / f"{name}.fits") as h:
            spec = h["SPEC1D"].data
            covered = spec["wave"][np.isfinite(spec["flux"])]
        assert covered.min() < 0.7 and covered.max() > 5.1, (name, covered.min(), covered.max())


def test_cli_run(tmp_path, capsys):
    from campfire.cli import main

    assert main(["run", str(STACK_LRDS), "--dry-run", "--output", str(tmp_path / "o")]) == 0
    assert "tasks:" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - calibrate: {degre: 2}\n")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "steps[0].calibrate.degre" in err


def test_object_keys_are_stable_across_processes_and_follow_the_inputs():
    """Resume compares keys written by an earlier process: they must not depend on the process."""
    import subprocess
    import sys

    code = ("from campfire.tasks.batch import SpectrumRef; from campfire.workflows.provenance import object_key; "
            "print(object_key('steps', [SpectrumRef('s2', object_id='o', file_hash='b' * 64, redshift=3.1), "
            "SpectrumRef('s1', object_id='o', url='/x/s1.fits', file_hash='a' * 64)]))")
    keys = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2")}
    assert len(keys) == 1 and len(keys.pop()) == 32

    from campfire.tasks.batch import SpectrumRef
    from campfire.workflows.provenance import object_key

    a = [SpectrumRef("s1", object_id="o", url="/x/s1.fits", file_hash="a" * 64)]
    moved = [SpectrumRef("s1", object_id="o", url="http://server/s1", file_hash="a" * 64)]
    changed = [SpectrumRef("s1", object_id="o", url="/x/s1.fits", file_hash="c" * 64)]
    assert object_key("steps", a) == object_key("steps", moved)  # same content, read from elsewhere
    assert object_key("steps", a) != object_key("steps", changed) != object_key("other steps", a)


def test_each_batch_task_carries_its_batch_not_the_runs_provenance(tmp_path):
    """The provenance (every input's hash, the workflow text) is one task of the graph: a
    distributed scheduler pickles each task on its own, so a copy bound into every batch's
    task would be shipped once per batch."""
    import pickle

    from campfire.workflows.outputs import output_dir
    from campfire.workflows.plan import build_graph, select
    from campfire.workflows.provenance import build_provenance
    from campfire.workflows.resume import completed
    from campfire.workflows.schema import load_workflow

    wf = load_workflow(CALIBRATE_ALL)
    with dask.config.set({"campfire.graph.batch-size": 20}):
        sel = select(wf, scheduler="synchronous", workers=None)
        outdir = output_dir(tmp_path / "out")
        prov = build_provenance(wf, sel.cf, sel.archive, sel.refs)
        graph = build_graph(wf, sel, completed(wf, sel, outdir, force=True), outdir, prov, create=False)
    rows = graph.collections[graph.names.index("rows")]
    dsk = dict(rows.__dask_graph__())
    parts = [v for k, v in dsk.items() if isinstance(k, tuple) and k[0].startswith("finish-")]
    shared = [v for k, v in dsk.items() if isinstance(k, str) and k.endswith("-shared")]
    assert len(parts) > 5 and len(shared) == 1
    prov_size = len(pickle.dumps(prov))
    assert prov_size > 20_000  # every input's hash: large enough to matter
    assert max(len(pickle.dumps(p)) for p in parts) < prov_size / 10
    assert dask.compute(rows, scheduler="synchronous")[0]  # and the run still finishes its rows


def test_a_batchs_linear_chain_runs_as_one_task(tmp_path):
    """The run's outputs are Delayed (which dask only culls): the plan fuses the merged graph
    so a batch's select → download → open → calibrate → resample is one task, as in
    LazySpectra.compute, under the chain's last key (no alias tasks left behind)."""
    from dask.core import get_dependencies

    from campfire.workflows.outputs import output_dir
    from campfire.workflows.plan import build_graph, select
    from campfire.workflows.provenance import build_provenance
    from campfire.workflows.resume import completed
    from campfire.workflows.schema import load_workflow

    wf = load_workflow(CALIBRATE_ALL)
    sel = select(wf, scheduler="synchronous", workers=None)
    outdir = output_dir(tmp_path / "out")
    prov = build_provenance(wf, sel.cf, sel.archive, sel.refs)
    graph = build_graph(wf, sel, completed(wf, sel, outdir, force=True), outdir, prov, create=False)
    dsk = dict(graph.collections[0].dask)
    names = {(k[0] if isinstance(k, tuple) else k).rsplit("-", 1)[0] for k in dsk}
    assert not {"open", "download", "select", "calibrate"} & names  # no longer tasks of their own
    chains = {k: v for k, v in dsk.items() if isinstance(k, tuple) and k[0].startswith("resample-")}
    assert len(chains) == sel.full.npartitions
    # each batch's resample task holds its whole chain and depends on nothing
    assert all(not get_dependencies(dsk, k) and "open_items" in repr(v) for k, v in chains.items())
    out = run_workflow(CALIBRATE_ALL, output=tmp_path / "run", scheduler="synchronous", progress=False, echo=quiet)
    assert out["ok"] and out["objects"]["done"] == out["objects"]["total"]


def test_quick_look_plots_are_small_tasks_with_stable_keys(tmp_path):
    """The first N objects' PNGs (all in the first batch) are spread over tasks of a few each,
    and the graph's keys do not depend on the process (no set order in them)."""
    import subprocess
    import sys

    code = textwrap.dedent("""
        import dask, pathlib, sys, tempfile
        from campfire.workflows.outputs import output_dir
        from campfire.workflows.plan import build_graph, select
        from campfire.workflows.provenance import build_provenance
        from campfire.workflows.resume import completed
        from campfire.workflows.schema import load_workflow
        with dask.config.set({"campfire.demo-root": sys.argv[2]}):
            wf = load_workflow(sys.argv[1])
            sel = select(wf, scheduler="synchronous", workers=None)
            outdir = output_dir(pathlib.Path(sys.argv[3]))
            prov = build_provenance(wf, sel.cf, sel.archive, sel.refs, started="2026-01-01T00:00:00")
            graph = build_graph(wf, sel, completed(wf, sel, outdir, force=True), outdir, prov, create=False)
        rows = graph.collections[graph.names.index("rows")]
        plots = [k for k in dict(rows.dask) if isinstance(k, tuple) and k[0].endswith("-plot")]
        print(rows.key, len(plots), len(dict(rows.dask)), sorted(map(str, dict(rows.dask))))  # fused keys too
    """)
    from campfire import config as cfg

    def graph_of_a_new_process(seed: str) -> str:
        out = subprocess.run([sys.executable, "-c", code, str(CALIBRATE_ALL), str(cfg.get("demo-root")),
                              str(tmp_path / "out")], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed})
        return out.stdout.split("\n")[-2]

    first, second = graph_of_a_new_process("1"), graph_of_a_new_process("3")  # dask.bag fused these differently
    assert first == second
    assert int(first.split()[1]) == 6  # plots: 24 in calibrate_all.yaml, 4 per task


def test_each_worker_warms_what_the_runs_tasks_will_use_first(tmp_path):
    """A run's warm-up task (one per worker, submitted when it connects) makes the first resampling
    call when a step resamples (resample, or stack onto a grid): with the C kernels built at install
    it starts no numba at all; without them (CAMPFIRE_DISABLE_C=1) numba loads its kernels there, once
    per worker process (~0.5 s), not inside the run's first batch."""
    import subprocess
    import sys

    from campfire.workflows.runner import _warm_up_options
    from campfire.workflows.schema import load_workflow

    assert _warm_up_options(load_workflow(CALIBRATE_ALL)) == {"plots": True, "zarr": True, "resample": True}
    assert _warm_up_options(load_workflow(STACK_LRDS))["resample"]  # a stack step, no resample step
    light = tmp_path / "light.yaml"
    light.write_text("name: light\narchive: demo\nselection: {tags: [lrd]}\nsteps: [download, calibrate]\n"
                     "outputs: {plots: false, fits: true, zarr: false}\n")
    assert _warm_up_options(load_workflow(light)) == {"plots": False, "zarr": False, "resample": False}
    code = ("from campfire.workflows.runner import _warm_up; from campfire.tasks import _jit; import sys; "
            "_warm_up(plots=False, zarr=False, resample=sys.argv[1] == 'yes'); "
            "print('campfire.tasks._cresample' in sys.modules, 'numba' in sys.modules, "
            "'-' if _jit.c_available() else len(_jit.resample_kernels().resample_ragged.signatures))")

    def warmed(arg, c):
        env = {k: v for k, v in os.environ.items() if k != "CAMPFIRE_DISABLE_C"} | ({} if c else {"CAMPFIRE_DISABLE_C": "1"})
        return subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True, check=True,
                              env=env).stdout.strip()

    # the C kernels (CI builds them: tests/tasks/test_resample_c.py fails without them)
    assert warmed("yes", c=True) == "True False -"
    # numba's, where the C kernels are absent: compiled for the batch signature by the warm-up only
    assert {arg: warmed(arg, c=False) for arg in ("yes", "no")} == {"yes": "False True 1", "no": "False False 0"}


def test_a_worker_reading_local_files_never_imports_the_transfer_layer():
    """The modules a worker unpickles for a run over an archive root (the graph's and the outputs'
    code, and the warm-up) leave out the HTTP transfer layer (urllib3, credentials: ~0.13 s of each
    worker's CPU); it is imported where a server or object store is read."""
    import subprocess
    import sys

    code = ("import sys; from campfire.workflows.runner import _warm_up; "
            "import campfire.graphs.collection, campfire.graphs.fetch, campfire.graphs.zarr_out, campfire.workflows.outputs; "
            "_warm_up(plots=False, zarr=True, resample=True); "
            "print(sorted(m for m in ('campfire.transfer', 'urllib3', 'campfire.catalog.remote') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_a_run_over_an_archive_root_never_imports_the_transfer_layer_in_the_client(demo_root, tmp_path):
    """The client's side of a run over an archive root (the selection and the graph, download step
    included) leaves out the transfer layer too: 0.15 s of imports in each ``campfire run``'s
    serial start, before any worker has work."""
    import subprocess
    import sys

    wf = tmp_path / "calibrate_all.yaml"
    wf.write_text(CALIBRATE_ALL.read_text().replace("archive: demo", f"archive: {demo_root}"))
    code = ("import sys; from campfire.workflows.runner import run_workflow; "
            "plan = run_workflow(sys.argv[1], output=sys.argv[2], dry_run=True, echo=lambda _: None)['plan']; "
            "print(plan['objects']['todo'] > 0, 'download' in plan['steps'], "
            "sorted(m for m in ('campfire.transfer', 'requests', 'urllib3', 'campfire.catalog.remote') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(wf), str(tmp_path / "out")], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "True True []"


def test_quick_look_pngs_are_written_at_fast_compression_with_the_same_pixels(tmp_path):
    """zlib level 1 (PNG_COMPRESS_LEVEL): ~10 ms less per PNG than PIL's default 6, the same image."""
    import io
    import struct

    from PIL import Image

    from campfire.quicklook.figure import quicklook_figure
    from campfire.workflows.outputs import write_plot

    w = np.geomspace(0.6, 5.3, 600)
    spec = SpectrumData(w, 1 + 0.1 * np.sin(40 * w), np.full(600, 0.1), spectrum_id="s", count=np.full(600, 3.0))
    path = write_plot(str(tmp_path / "s.png"), spec, redshift=2.3)
    data = pathlib.Path(path).read_bytes()
    at = data.index(b"IDAT")  # the first image chunk: a zlib stream whose header says how hard it was packed
    assert struct.unpack(">I", data[at - 4:at])[0] > 2 and data[at + 5] >> 6 == 0  # FLEVEL 0: the fastest
    default = io.BytesIO()
    quicklook_figure(spec, redshift=2.3).savefig(default, format="png")
    with Image.open(path) as fast, Image.open(default) as slow:
        assert fast.size == slow.size and fast.tobytes() == slow.tobytes()
    assert len(data) != len(default.getvalue())


def _graph_of(wf, tmp_path, **kwargs):
    from campfire.workflows.outputs import output_dir
    from campfire.workflows.plan import build_graph, select
    from campfire.workflows.resume import completed

    sel = select(wf, scheduler="synchronous", workers=None)
    outdir = output_dir(tmp_path / "out")
    return sel, build_graph(wf, sel, completed(wf, sel, outdir, force=True), outdir, {}, create=False, **kwargs)


def test_the_quick_look_pngs_and_their_batch_go_first_to_the_warm_worker(tmp_path):
    """On a cluster the PNG tasks (the run's largest, all from the first batch) and the tasks they
    wait for carry priority 1, so they are drawn as soon as their batch is ready, not at the end
    while the other workers wait; with a ``plot_worker`` they go to it first (the one worker
    whose matplotlib the warm-up started). PNGs from several batches go anywhere."""
    from dask.base import collections_to_expr
    from dask.core import get_dependencies

    from campfire.workflows.schema import load_workflow

    wf = load_workflow(CALIBRATE_ALL)
    with dask.config.set({"campfire.graph.batch-size": 100}):
        sel, graph = _graph_of(wf, tmp_path, plot_worker="tcp://127.0.0.1:4")
    dsk = dict(graph.collections[0].dask)
    annotations = collections_to_expr(graph.collections).__dask_annotations__()
    first = {k for k, p in annotations["priority"].items() if p == 1}
    plots = {k for k in dsk if isinstance(k, tuple) and k[0].endswith("-plot")}
    upstream, todo = set(), list(plots)
    while todo:
        deps = get_dependencies(dsk, todo.pop()) - upstream - plots
        upstream |= deps
        todo.extend(deps)
    assert len(plots) == 6 and {k[1] for k in upstream} == {0}  # the first batch's resample and stack tasks
    # one PNG task ready at a time: none waits in the warm worker's queue for an idle one to steal
    name = next(iter(plots))[0]
    assert all((name, j - 1) in get_dependencies(dsk, (name, j)) for j in range(1, 6))
    assert sel.full.npartitions > 3
    assert first == plots | upstream and set(annotations["priority"].values()) == {0, 1}
    assert len(dsk) > 4 * len(first)  # the rest keep Dask's default
    assert {k for k, w in annotations["workers"].items() if w} == first
    assert all(annotations["workers"][k] == ["tcp://127.0.0.1:4"] and annotations["allow_other_workers"][k]
               for k in first)

    every = tmp_path / "every.yaml"
    every.write_text(CALIBRATE_ALL.read_text().replace("plots: 24", "plots: true"))
    with dask.config.set({"campfire.graph.batch-size": 100}):
        _, graph = _graph_of(load_workflow(every), tmp_path, plot_worker="tcp://127.0.0.1:4")
    annotations = collections_to_expr(graph.collections).__dask_annotations__()
    assert not any((annotations.get("workers") or {}).values())  # every batch draws: no worker preferred
    dsk = dict(graph.collections[0].dask)
    plots = {k for k in dsk if isinstance(k, tuple) and k[0].endswith("-plot")}
    assert len(plots) > 6 and not any(get_dependencies(dsk, k) & plots for k in plots)  # drawn side by side


def test_on_a_cluster_the_pngs_are_drawn_early_by_the_one_worker_that_warmed_matplotlib(tmp_path):
    """A real LocalCluster: the warm-up starts matplotlib on one worker only, and on one worker the
    PNGs are drawn right after their batch, before the run's last batch starts (Dask's order
    alone left them to the end)."""
    import contextlib
    import sys

    from distributed import Client, get_task_stream

    from campfire.graphs.scheduler import local_cluster
    from campfire.workflows.runner import _warm_workers

    def has_matplotlib():
        return "matplotlib" in sys.modules

    with local_cluster(2, dashboard_address=None) as cluster, Client(cluster) as client:
        with contextlib.ExitStack() as stack:
            chosen = _warm_workers(client, stack, plots=True, plot_everywhere=False, zarr=False, resample=False)
            workers = sorted(client.scheduler_info()["workers"])
            # one thread per worker: a task submitted now runs after that worker's warm-up
            seen = client.gather([client.submit(has_matplotlib, workers=[w], pure=False) for w in workers])
    assert chosen == workers[0] and seen == [True, False]

    wf = tmp_path / "calibrate_all.yaml"
    wf.write_text(CALIBRATE_ALL.read_text() + "\ncluster:\n  batch_size: 60\n")
    with local_cluster(1, dashboard_address=None) as cluster, Client(cluster) as client:
        with get_task_stream(client) as ts:
            out = run_workflow(wf, scheduler=cluster.scheduler_address, output=tmp_path / "run", progress=False,
                               echo=quiet)
    assert out["ok"]
    spans = {}
    for rec in ts.data:
        name = rec["key"][0] if isinstance(rec["key"], tuple) else rec["key"]
        kind = "plot" if name.endswith("-plot") else name.split("-")[0]
        for s in rec["startstops"]:
            if s["action"] == "compute":
                spans.setdefault(kind, []).append((s["start"], s["stop"]))
    assert len(spans["plot"]) == 6 and len(spans["resample"]) > 5
    assert max(stop for _, stop in spans["plot"]) < max(start for start, _ in spans["resample"])
