"""LazySpectra on the threaded scheduler: protocol, deterministic keys, steps equal to the pure
functions (bit for bit), tree reductions equal to one-shot stacks, fsspec memory filesystem,
recorded failures, zarr output, and the eager API computing the same graph."""
from __future__ import annotations

import pickle
import re
import subprocess
import sys
import warnings

import dask
import numpy as np
import pytest

from campfire.errors import CampfireError, PartialFailureWarning, StackRangeWarning, ValidationError
from campfire.graphs.collection import LazySpectra
from campfire.graphs.reduction import reduction_depth
from campfire.models import SpectrumData
from campfire.tasks.batch import Failure, SpectrumRef
from campfire.tasks.calibrate import calibrate_to_photometry
from campfire.tasks.resample import resample_spectra
from campfire.tasks.stack import stack_spectra
from pure_steps import calibrate_then_stack

SEL = dict(tags=["lrd"], has_photometry=True)
GRID = np.geomspace(0.6, 5.3, 500)
REST = np.geomspace(0.1, 1.0, 400)
NAME = re.compile(r"^[a-z-]+-[0-9a-f]{32}$")


def same(a, b) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


@pytest.fixture(scope="module")
def opened(cf):
    """The LRD spectra, opened by the graph (one list, reused)."""
    return cf.lazy_spectra(**SEL).open().compute()


# ---------------------------------------------------------------------------- the collection
def test_is_a_dask_collection_in_batches_that_keep_objects_whole(cf):
    lazy = cf.lazy_spectra(**SEL, batch_size=5)
    assert dask.is_dask_collection(lazy)
    assert len(lazy) == len(cf.query_spectra(**SEL)) > 20
    assert lazy.npartitions == len(lazy.__dask_keys__()) and sum(lazy.lengths) == len(lazy)
    assert all(k == (lazy.name, i) for i, k in enumerate(lazy.__dask_keys__()))
    seen: dict[str, int] = {}
    for i, part in enumerate(lazy.parts):
        assert len(part) <= 5 or len({r.object_id for r in part}) == 1
        for r in part:
            assert seen.setdefault(r.object_id, i) == i, "an object was split across batches"
    # layers are named f"{step}-{token}" in a HighLevelGraph
    steps = lazy.calibrate().resample(GRID)
    names = list(steps.__dask_graph__().layers)
    assert all(NAME.match(n) for n in names), names
    assert [n.rsplit("-", 1)[0] for n in names] == ["select", "download", "open", "calibrate", "resample"]
    assert repr(steps) == f"LazySpectra<download → open → calibrate → resample, {len(lazy)} spectra, {lazy.npartitions} partitions>"


def test_keys_are_deterministic(cf):
    def build(**kw):
        return cf.lazy_spectra(**SEL).calibrate(degree=kw.get("degree", 2)).resample(kw.get("grid", GRID))

    a, b = build(), build()
    assert a.name == b.name and a.__dask_keys__() == b.__dask_keys__()
    assert dict(a.__dask_graph__()).keys() == dict(b.__dask_graph__()).keys()
    assert build(degree=3).name != a.name
    assert build(grid=GRID[:-1]).name != a.name
    pa, pb = a.stack(by="all"), b.stack(by="all")
    assert pa.key == pb.key and a.stack(by="object").name == b.stack(by="object").name
    assert a.stack("median", by="all").key != pa.key
    # a changed input file (new content hash) changes every key downstream
    refs = a.refs
    changed = [refs[0].__class__(**{**refs[0].__dict__, "file_hash": "0" * 64})] + refs[1:]
    assert LazySpectra.from_refs(changed).name != LazySpectra.from_refs(refs).name
    # ... and the keys are the same in another process (tokenize is deterministic)
    code = (
        "import numpy as np; from campfire import Campfire;"
        f"cf = Campfire(data_dir={str(cf.data_dir)!r});"
        f"print(cf.lazy_spectra(tags=['lrd'], has_photometry=True).calibrate(degree=2)"
        f".resample(np.geomspace(0.6, 5.3, 500)).name)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(cf.data_dir))
    assert out.stdout.strip() == a.name


def test_open_calibrate_resample_equal_the_pure_functions(cf, opened):
    lazy = cf.lazy_spectra(**SEL, errors="record", batch_size=9)
    for spec, ref in zip(opened, lazy.refs):
        direct = SpectrumData.from_fits(ref.url)
        assert spec.spectrum_id == direct.spectrum_id and same(spec.fnu, direct.fnu) and same(spec.fnu_err, direct.fnu_err)
    items = lazy.calibrate(degree=2).items().compute()
    n_ok = 0
    for it, spec in zip(items, opened):
        try:
            want = calibrate_to_photometry(spec, it.ref.photometry, degree=2)
        except ValidationError as err:
            assert it.failure is not None and it.failure.step == "calibrate" and "band" in it.failure.reason
            assert str(err).split(";")[0] in it.failure.reason
            continue
        n_ok += 1
        assert it.failure is None and same(it.value.fnu, want.spectrum.fnu) and same(it.calibration.multiplier, want.multiplier)
        assert it.calibration.bands_used == want.bands_used
    assert n_ok > 20
    res = lazy.calibrate(degree=2).resample(GRID).items().compute()
    for it, cal in zip(res, items):
        if it.failure is None:
            assert same(it.value.fnu, resample_spectra([cal.value], GRID)[0].fnu)
            assert same(it.value.wavelength, GRID)


def test_dask_compute_persist_and_map(cf):
    lazy = cf.lazy_spectra(**SEL, batch_size=10).open()
    ids, npix = dask.compute(lazy.map(_spectrum_id), lazy.map(_n_pixels))
    assert ids == lazy.spectrum_ids and all(n > 100 for n in npix)
    (p,) = dask.persist(lazy)
    assert p.name == lazy.name and p.__dask_keys__() == lazy.__dask_keys__()
    assert [s.spectrum_id for s in p.compute()] == lazy.spectrum_ids
    assert lazy.map(_n_pixels).name == lazy.map(_n_pixels).name


def _spectrum_id(spec):
    return spec.spectrum_id


def _n_pixels(spec):
    return spec.n_pixels


# ---------------------------------------------------------------------------- stacks
def test_per_object_stacks_equal_calibrate_then_stack(cf):
    items = (cf.lazy_spectra(**SEL, errors="record", batch_size=6).calibrate(degree=2).resample(GRID)
             .stack("weighted_mean", by="object").items().compute())
    assert len(items) == len({r["object_id"] for r in cf.query_spectra(**SEL)})
    checked = 0
    for it in items:
        if it.failure is not None or checked >= 10:
            continue
        obj = cf.get_object(it.ref.object_id)
        good = [s for s in obj.spectra if s.spectrum_id in it.inputs]
        want = calibrate_then_stack(good, obj.photometry, degree=2, wavelength_grid=GRID, object_id=obj.object_id)
        got = it.value
        assert got.spectrum_id == want.spectrum.spectrum_id
        assert same(got.fnu, want.spectrum.fnu) and same(got.fnu_err, want.spectrum.fnu_err)
        assert same(got.count, want.spectrum.count)
        checked += 1
    assert checked == 10


@pytest.mark.parametrize("method", ["weighted_mean", "mean", "median"])
def test_tree_reduction_equals_one_shot_stack(cf, opened, method):
    lazy = cf.lazy_spectra(**SEL, batch_size=4).open()
    assert lazy.npartitions >= 10 and reduction_depth(lazy.npartitions, 2) >= 3
    with dask.config.set({"campfire.graph.wave-chunk": 64}):
        tree = lazy.stack(method, by="all", grid=GRID, split_every=2)
    layers = dict(tree.__dask_graph__())
    if method != "median":
        assert any(isinstance(k, tuple) and k[0].endswith("-combine") and k[1] >= 2 for k in layers)
    else:
        assert sum(1 for k in layers if isinstance(k, tuple) and k[0].endswith("-chunk")) == -(-GRID.size // 64)
    got = tree.compute()
    order = [s.spectrum_id for s in opened]
    want = stack_spectra(opened, method=method, wavelength_grid=GRID)
    assert sorted(got.meta["inputs"]) == sorted(order)
    # labelled with the input gratings, like the one-shot stack (not '?')
    assert got.grating == want.grating == "+".join(sorted({s.grating for s in opened}))
    assert f"mixed: {want.grating}" in repr(got)
    np.testing.assert_allclose(got.fnu, want.fnu, rtol=1e-12, atol=0, equal_nan=True)
    np.testing.assert_allclose(got.fnu_err, want.fnu_err, rtol=1e-12, atol=0, equal_nan=True)
    assert same(got.count, want.count)
    # one batch: exactly stack_spectra (the eager path's single task)
    one = cf.lazy_spectra(**SEL, batch_size=10_000).open().stack(method, by="all", grid=GRID).compute()
    assert same(one.fnu, want.fnu) and same(one.fnu_err, want.fnu_err)


def test_default_grid_is_chosen_at_run_time_like_stack_spectra(cf, opened):
    # several gratings: the tree warns about the range the default grid leaves out, as stack_spectra does
    with pytest.warns(StackRangeWarning, match="leaves out"):
        got = cf.lazy_spectra(**SEL, batch_size=5).open().stack("mean", by="all", split_every=3).compute()
    with pytest.warns(StackRangeWarning, match="leaves out"):
        want = stack_spectra(opened, method="mean")
    assert got.meta["outside_grid"] == want.meta["outside_grid"]
    assert same(got.wavelength, want.wavelength)
    np.testing.assert_allclose(got.fnu, want.fnu, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("method", ["weighted_mean", "median"])
def test_rest_frame_population_stack(cf, opened, method):
    lazy = cf.lazy_spectra(**SEL, batch_size=5, errors="record")
    got = lazy.stack(method, by="all", rest_frame=True, grid=REST, window=(0.42, 0.48)).compute()
    assert got.meta["rest_frame"] and got.meta["norm_window"] == [0.42, 0.48]
    import matplotlib.pyplot as plt

    ax = got.plot()
    assert ax.get_xlabel() == "Rest-frame wavelength [μm]"  # the quick look says which frame
    plt.close(ax.figure)
    used = set(got.meta["inputs"])
    excluded = got.meta.get("excluded", [])
    assert len(used) + len(excluded) == len(opened) and len(used) > 20
    z = {r.spectrum_id: r.redshift for r in lazy.refs}
    specs = [s for s in opened if s.spectrum_id in used]
    want = stack_spectra(specs, method=method, wavelength_grid=REST, redshift=[z[s.spectrum_id] for s in specs],
                         normalize=(0.42, 0.48))
    np.testing.assert_allclose(got.fnu, want.fnu, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(got.fnu_err, want.fnu_err, rtol=1e-12, equal_nan=True)


# ---------------------------------------------------------------------------- fsspec, failures, outputs
@pytest.fixture()
def memory_archive(cf):
    """Six LRD files copied into fsspec's memory filesystem, plus one corrupt file."""
    import fsspec

    fs = fsspec.filesystem("memory")
    rows = list(cf.query_spectra(**SEL))[:6]
    refs = []
    for row in rows:
        url = f"memory://archive/{row['fits_path']}"
        with open(row["local_path"], "rb") as src, fs.open(url, "wb") as dst:
            dst.write(src.read())
        refs.append(SpectrumRef(row["spectrum_id"], object_id=row["object_id"], url=url, file_hash=row["file_hash"]))
    with fs.open("memory://archive/products/bad/broken.spec.fits", "wb") as f:
        f.write(b"SIMPLE  =                    T" + b"\0" * 100)
    bad = SpectrumRef("broken", object_id="broken_obj", url="memory://archive/products/bad/broken.spec.fits")
    yield rows, refs, bad
    fs.rm("memory://archive", recursive=True)


def test_workers_read_through_fsspec_memory(memory_archive):
    rows, refs, _ = memory_archive
    lazy = LazySpectra.from_refs(refs, batch_size=2)
    got = lazy.open().compute()
    by_id = {r["spectrum_id"]: r for r in rows}
    assert [s.spectrum_id for s in got] == lazy.spectrum_ids and set(by_id) == set(lazy.spectrum_ids)
    for spec in got:
        assert same(spec.fnu, SpectrumData.from_fits(by_id[spec.spectrum_id]["local_path"]).fnu)
    stack = LazySpectra.from_refs(refs, batch_size=2).stack(by="all", grid=GRID).compute()
    want = stack_spectra([SpectrumData.from_fits(r["local_path"]) for r in rows], wavelength_grid=GRID)
    np.testing.assert_allclose(stack.fnu, want.fnu, rtol=1e-12, equal_nan=True)


def test_a_failing_spectrum_is_recorded_and_the_batch_goes_on(memory_archive):
    _, refs, bad = memory_archive
    lazy = LazySpectra.from_refs(refs[:3] + [bad] + refs[3:], batch_size=10)  # errors='record' is the default
    assert lazy.npartitions == 1 and lazy.errors == "record"  # the bad file shares a batch with good ones
    with pytest.warns(PartialFailureWarning, match=r"1 of 7 spectra failed[\s\S]*broken: open: ") as caught:
        out = lazy.open().compute()
    assert len(caught) == 1 and "with_errors('raise')" in str(caught[0].message)
    assert [f.spectrum_id for f in out.failures] == ["broken"] and not out.ok
    assert pickle.loads(pickle.dumps(out)).failures == out.failures  # travels back from a cluster
    failures = [x for x in out if isinstance(x, Failure)]
    assert len(failures) == 1 and failures[0].spectrum_id == "broken" and failures[0].step == "open"
    assert "FITS" in failures[0].reason or "spectrum" in failures[0].reason
    assert sum(not isinstance(x, Failure) for x in out) == 6
    per_object = lazy.stack(by="object", grid=GRID).items().compute()
    assert [it.failure is not None for it in per_object].count(True) == 1
    population = lazy.stack(by="all", grid=GRID).compute()
    assert population.meta["n_spectra"] == 6 and any("broken" in e for e in population.meta["excluded"])
    with pytest.raises(CampfireError):
        LazySpectra.from_refs([bad]).with_errors("raise").open().compute()
    with pytest.raises(CampfireError):
        LazySpectra.from_refs([bad], errors="raise").open().compute()


def test_readme_lazy_example_survives_an_unusable_spectrum(cf):
    """The README's pipeline with default settings: the spectra that cannot be calibrated are
    left out of their objects' stacks and named in the result's summary; the population
    still stacks; ``.compute()`` says so in one warning."""
    lazy = cf.lazy_spectra(tags=["lrd"], has_photometry=True)
    per_object = lazy.calibrate(degree=2).resample(GRID).stack("weighted_mean", by="object")
    population = per_object.stack("median", by="all", rest_frame=True)
    stacks, pop = dask.compute(per_object, population)
    assert len(stacks) == len(per_object) and all(isinstance(s, SpectrumData) for s in stacks)
    assert "cinder_egs_p2_g395m_f290lp_34003" in [f.spectrum_id for f in stacks.left_out]
    assert "left out of object stacks" in stacks.summary() and "calibrate: bands: no usable band" in stacks.summary()
    assert pop.meta["n_spectra"] >= 1
    with pytest.warns(PartialFailureWarning, match="cinder_egs_p2_g395m_f290lp_34003: calibrate") as caught:
        again = per_object.compute()
    assert len(caught) == 1 and again.left_out == stacks.left_out
    with pytest.raises(ValidationError, match="no usable band"):
        lazy.with_errors("raise").calibrate(degree=2).compute()


def test_to_zarr_local_and_memory(cf, tmp_path):
    import zarr

    lazy = cf.lazy_spectra(**SEL, batch_size=7).open().resample(GRID)
    values = lazy.compute()
    with dask.config.set({"campfire.graph.batch-size": 16}):
        g = lazy.to_zarr(tmp_path / "out.zarr", group="spectra", attrs={"note": "test"})
    assert g["fnu"].shape == (len(lazy), GRID.size) and g["fnu"].chunks == (16, GRID.size)
    assert same(g["fnu"][:], np.array([s.fnu for s in values])) and g["ok"][:].all()
    assert list(g["spectrum_id"][:]) == lazy.spectrum_ids and g.attrs["note"] == "test"
    stacks = lazy.stack(by="object")
    write = stacks.to_zarr("memory://zarr-test/out.zarr", group="objects", compute=False)
    dask.compute(write)
    z = zarr.open_group("memory://zarr-test/out.zarr", mode="r")["objects"]
    assert z["count"][:].max() >= 2 and list(z["object_id"][:]) == [r.object_id for r in stacks.refs]
    with pytest.raises(ValidationError, match="common grid"):
        cf.lazy_spectra(**SEL).open().to_zarr(tmp_path / "no.zarr")


def test_visualize_writes_a_picture_or_dot(cf, tmp_path):
    out = cf.lazy_spectra(**SEL).calibrate().stack(by="all", grid=GRID)
    lazy = cf.lazy_spectra(**SEL).calibrate()
    path = lazy.visualize(str(tmp_path / "graph"))
    text = open(path).read() if isinstance(path, str) else ""
    if text:
        assert "calibrate" in text and "->" in text
    assert out.key.startswith("stack-")


# ---------------------------------------------------------------------------- eager API = same graph
def test_calibrate_and_stack_is_the_graph_and_equals_the_pure_function(cf):
    import campfire

    obj = cf.get_object("ember_uds_p4_123456")
    prism = obj.spectra[obj.spectra.grating == "PRISM"]
    for spectra in (prism, list(obj.spectra), [s.open() for s in obj.spectra]):
        for method in ("weighted_mean", "median"):
            # several gratings on the default grid: both routes say what the stack leaves out
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                got = campfire.calibrate_and_stack(spectra, photometry=obj.photometry, stacking_method=method,
                                                   object_id=obj.object_id)
                want = calibrate_then_stack(spectra, obj.photometry, stacking_method=method,
                                            object_id=obj.object_id)
            lost = [w for w in caught if issubclass(w.category, StackRangeWarning)]
            assert len(lost) == (0 if spectra is prism else 2), [str(w.message) for w in caught]
            assert same(got.spectrum.fnu, want.spectrum.fnu) and same(got.spectrum.fnu_err, want.spectrum.fnu_err)
            assert got.spectrum.spectrum_id == want.spectrum.spectrum_id
            assert got.spectrum.meta["calibration"] == want.spectrum.meta["calibration"]
            assert [c.bands_used for c in got.calibrations] == [c.bands_used for c in want.calibrations]
    assert campfire.calibrate_and_stack.__module__ == "campfire.graphs.eager"
    # issue 17.4: 'union' keeps every grating's range, with no warning, in both routes alike
    with warnings.catch_warnings():
        warnings.simplefilter("error", StackRangeWarning)
        got = campfire.calibrate_and_stack(obj.spectra, photometry=obj.photometry, object_id=obj.object_id,
                                           wavelength_grid="union")
        want = calibrate_then_stack(obj.spectra, obj.photometry, object_id=obj.object_id, wavelength_grid="union")
    assert same(got.spectrum.fnu, want.spectrum.fnu) and got.spectrum.meta["grid"] == "union"
    inputs = [s.open() for s in obj.spectra]
    lo = min(np.nanmin(s.wavelength[s.valid]) for s in inputs)
    hi = max(np.nanmax(s.wavelength[s.valid]) for s in inputs)
    covered = got.spectrum.wavelength[got.spectrum.count > 0]
    assert covered.min() == pytest.approx(lo, abs=0.02) and covered.max() == pytest.approx(hi, abs=0.02)
    # obj.spectra.lazy() is the same kind of collection
    lazy = obj.spectra.lazy()
    assert isinstance(lazy, LazySpectra) and lazy.spectrum_ids == list(obj.spectra.spectrum_id)
    assert lazy.refs[0].photometry is not None


def _three_gratings(rng):
    """PRISM-, G140M- and G395M-like inputs (0.6–5.3, 0.97–1.89, 2.87–5.1 μm), twice over."""
    specs = []
    for i, (lo, hi, n, grating) in enumerate([(0.6, 5.3, 400, "PRISM"), (0.97, 1.89, 1500, "G140M"),
                                              (2.87, 5.1, 1300, "G395M")] * 2):
        w = np.linspace(lo, hi, n) * (1 + rng.uniform(-1e-3, 1e-3))
        specs.append(SpectrumData(w, 1.0 + 0.1 * np.sin(3 * w), np.full(n, 0.05), spectrum_id=f"s{i}",
                                  grating=grating))
    return specs


@pytest.mark.parametrize("method", ["weighted_mean", "median"])
def test_population_default_grid_over_batches_warns_like_stack_spectra(method):
    """Issue 17.4: the tree over several batches takes the default grid (the input with the
    most pixels, G140M here) as stack_spectra does, and says in the same words what it
    leaves out and how to keep it; meta records it as the one-shot stack does."""
    specs = _three_gratings(np.random.default_rng(4))
    with pytest.warns(StackRangeWarning) as one_caught:
        one = stack_spectra(specs, method=method)
    lazy = LazySpectra.from_data(specs, batch_size=2)
    assert lazy.npartitions == 3  # the tree, not the one-shot task
    with pytest.warns(StackRangeWarning) as tree_caught:
        tree = lazy.stack(method, by="all").compute()
    msgs = [str(w.message) for w in tree_caught if issubclass(w.category, StackRangeWarning)]
    assert msgs == [str(one_caught[0].message)], msgs
    assert "G140M s1" in msgs[0] and "leaves out 0.60–0.97, 1.89–5.30 μm" in msgs[0]
    assert "wavelength_grid='union'" in msgs[0]
    assert same(tree.wavelength, one.wavelength)
    assert tree.meta["grid"] == one.meta["grid"] == "largest input"
    np.testing.assert_allclose(tree.meta["outside_grid"], one.meta["outside_grid"])
    # inputs of one grating lose nothing: no warning, nothing recorded outside the grid
    prism = [s for s in specs if s.grating == "PRISM"] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", StackRangeWarning)
        alone = LazySpectra.from_data(prism, batch_size=1).stack(method, by="all").compute()
    assert alone.meta["outside_grid"] == []


@pytest.mark.parametrize("method", ["weighted_mean", "median"])
def test_population_union_grid_over_batches(method):
    """grid='union' in the tree over batches (a union of per-batch union grids) covers what the
    one-shot union stack covers and agrees with it to 0.2% (the two grids differ by sub-pixel
    shifts, so the comparison interpolates; edge pixels one grid covers only partly are skipped)."""
    rng = np.random.default_rng(3)
    specs = []
    for i, (lo, hi, n) in enumerate([(0.6, 5.3, 400), (0.97, 1.89, 1500), (2.87, 5.1, 1300)] * 2):
        w = np.linspace(lo, hi, n) * (1 + rng.uniform(-1e-3, 1e-3))
        specs.append(SpectrumData(w, 1.0 + 0.1 * np.sin(3 * w), np.full(n, 0.05), spectrum_id=f"s{i}"))
    one = stack_spectra(specs, method=method, wavelength_grid="union")
    tree = LazySpectra.from_data(specs, batch_size=2).stack(method, by="all", grid="union").compute()
    assert tree.wavelength[0] == pytest.approx(one.wavelength[0]) and tree.wavelength[-1] == pytest.approx(one.wavelength[-1])
    assert tree.wavelength.size == pytest.approx(one.wavelength.size, rel=0.005)
    other = np.interp(one.wavelength, tree.wavelength, tree.fnu)
    ok = np.isfinite(one.fnu) & np.isfinite(other)
    assert ok.mean() > 0.99
    np.testing.assert_allclose(other[ok], one.fnu[ok], rtol=2e-3)
    with pytest.raises(ValidationError, match="grid"):
        LazySpectra.from_data(specs, batch_size=2).stack(method, by="all", grid="widest")


def test_a_batch_of_spectra_tells_dask_its_size():
    """The scheduler places tasks and steals them by the bytes their inputs hold: a batch's
    spectra count with their arrays (dask's default, ``sys.getsizeof``, saw ~100 bytes each)."""
    from dataclasses import replace

    from dask.sizeof import sizeof

    import campfire.graphs.builders  # noqa: F401  (registers the size of a batch element)
    from campfire.tasks.batch import Item, SpectrumRef

    w = np.linspace(1.0, 5.0, 1000)
    spec = SpectrumData(w, np.ones(1000), np.full(1000, 0.1), spectrum_id="s")
    arrays = sum(v.nbytes for v in vars(spec).values() if isinstance(v, np.ndarray))
    assert arrays >= 3 * 8000
    item = Item(SpectrumRef("s", object_id="o"), value=spec)
    assert arrays <= sizeof(item) < arrays + 20_000
    calibrated = replace(item, calibration={"spectrum": spec, "multiplier": np.ones(1000)})
    assert sizeof(calibrated) - sizeof(item) < 8000 + 1000  # the spectrum it shares is counted once
    assert sizeof([item] * 200) >= 200 * arrays


UNPICKLED: list[str] = []


def _note_unpickled(name: str) -> str:
    UNPICKLED.append(name)
    return name


class _Watched:
    """An item that records when it is unpickled."""

    def __init__(self, name: str):
        self.name = name

    def __reduce__(self):
        return (_note_unpickled, (self.name,))


def test_a_pickled_batch_is_read_only_where_its_items_are_used():
    """A batch of references travels as one blob: the scheduler, which unpickles a graph and pickles
    each task again for a worker, never builds its items (for the full demo's calibrate_all: 6,238
    references and 2,124 photometry records, ~0.1 s of the run's start)."""
    from campfire.graphs.builders import Batch

    UNPICKLED.clear()
    batch = Batch([_Watched("a"), _Watched("b")])
    at_scheduler = pickle.loads(pickle.dumps(batch, protocol=5))
    at_worker = pickle.loads(pickle.dumps(at_scheduler, protocol=5))  # passed on without being read
    assert UNPICKLED == []
    assert at_worker.items == ("a", "b") and UNPICKLED == ["a", "b"] and len(at_worker) == 2
    # what plain pickle cannot send goes as dask sends it, with cloudpickle
    square = pickle.loads(pickle.dumps(Batch([lambda x: x * x]))).items[0]
    assert square(3) == 9
    assert dask.base.tokenize(at_worker) == dask.base.tokenize(Batch(["a", "b"]))
