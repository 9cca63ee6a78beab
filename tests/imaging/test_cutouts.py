"""Cutouts and MSA shutter overlays, checked on a tiny archive whose geometry is known.

The figures are rendered with Agg and inspected as a person would: where the star
lands in the image, which shutter it sits in, what the PDF holds.
"""
from __future__ import annotations

import io
import json
import re
import zlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from mini_archive import A_ID, B_ID, B_OFFSET, OPEN, PA, expected_shutters  # noqa: E402

from campfire.errors import CampfireError, NotFoundError, ValidationError  # noqa: E402
from campfire.imaging import (  # noqa: E402
    DEFAULT_SHUTTER_STYLES,
    make_cutout_png,
    plot_cutout,
    read_cutout_png,
    shutter_geometry,
    sky_to_offsets,
    offsets_to_sky,
)


def _pixel_of(east: float, north: float, fov: float, n: int) -> tuple[float, float]:
    """(row, col) of an offset in a north-up, east-left cutout of n × n pixels."""
    scale = fov / n
    return (fov / 2 - north) / scale - 0.5, (fov / 2 - east) / scale - 0.5


def _peak(img: np.ndarray, near: tuple[float, float], radius: int = 6) -> tuple[float, float]:
    """Flux-weighted centre of the brightest blob within ``radius`` pixels of ``near``."""
    grey = img.astype(float) if img.ndim == 2 else img[..., :3].astype(float).mean(axis=-1)
    r0, c0 = int(round(near[0])), int(round(near[1]))
    sub = grey[r0 - radius:r0 + radius + 1, c0 - radius:c0 + radius + 1]
    sub = np.clip(sub - np.median(grey), 0, None) ** 2
    rr, cc = np.mgrid[:sub.shape[0], :sub.shape[1]]
    return (rr * sub).sum() / sub.sum() + r0 - radius, (cc * sub).sum() / sub.sum() + c0 - radius


# -- geometry helpers ---------------------------------------------------------------------------------
def test_offsets_round_trip():
    ra, dec = offsets_to_sky(np.array([1.5, -2.0]), np.array([-0.7, 3.1]), 150.1, 2.2)
    east, north = sky_to_offsets(ra, dec, 150.1, 2.2)
    np.testing.assert_allclose(east, [1.5, -2.0], atol=1e-9)
    np.testing.assert_allclose(north, [-0.7, 3.1], atol=1e-9)
    # east is +RA
    assert ra[0] > 150.1 and dec[1] > 2.2


# -- the archive side: PNG bytes and shutter JSON -----------------------------------------------------------
def test_cutout_png_is_north_up_east_left_at_native_scale(mini_root):
    fov = 3.2
    png = make_cutout_png(mini_root, A_ID, fov)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img, meta = read_cutout_png(png)
    assert img.shape[:2] == (80, 80)  # 3.2" / 0.04"
    assert meta["object_id"] == A_ID and meta["fov"] == fov
    assert meta["pixscale"] == pytest.approx(0.04)
    assert meta["orientation"] == "north-up east-left"
    # object A in the centre, B (east and south of A) to the left and below, each within a pixel
    for (east, north) in ((0.0, 0.0), B_OFFSET):
        expected = _pixel_of(east, north, fov, 80)
        found = _peak(img, expected)
        assert np.hypot(found[0] - expected[0], found[1] - expected[1]) < 1.0, (east, north, found, expected)


def test_cutout_size_resamples_and_is_deterministic(mini_root):
    png = make_cutout_png(mini_root, A_ID, 4.0, size=100)
    img, meta = read_cutout_png(png)
    assert img.shape[:2] == (100, 100)
    assert meta["pixscale"] == pytest.approx(0.04) and meta["size"] == 100
    assert make_cutout_png(mini_root, A_ID, 4.0, size=100) == png
    small, meta = read_cutout_png(make_cutout_png(mini_root, A_ID, 4.0, size=50))
    assert small.shape[:2] == (50, 50) and meta["pixscale"] == pytest.approx(0.08)
    expected = _pixel_of(*B_OFFSET, 4.0, 50)
    found = _peak(small, expected, radius=3)
    assert np.hypot(found[0] - expected[0], found[1] - expected[1]) < 1.0


def test_wide_cutout_combines_neighbouring_stamps(mini_root):
    # 9" is wider than A's 8" stamp: B's stamp fills in the south-east corner
    img, meta = read_cutout_png(make_cutout_png(mini_root, A_ID, 9.0))
    n = img.shape[0]
    assert n == 225
    row, col = _pixel_of(3.5, -3.5, 9.0, n)  # outside A's stamp, inside B's
    patch = img[int(row) - 3:int(row) + 4, int(col) - 3:int(col) + 4]
    assert patch.std() > 0  # noise, not the flat fill of "no data"


def test_shutter_geometry_categories_and_corners(mini_root):
    geo = shutter_geometry(mini_root, A_ID, 3.2)
    json.dumps(geo)  # JSON-serialisable as served
    assert geo["object_id"] == A_ID and geo["pa"] == PA
    assert geo["observations"] == [{"observation": "tobs_p1", "pa": PA, "source_id": "1001"}]
    expected = expected_shutters()
    for category, corner_sets in expected.items():
        got = [np.array(s["corners"]) for s in geo["shutters"] if s["category"] == category]
        assert len(got) == len(corner_sets), category  # B's stuck nod listed twice in the JSON, drawn once
        for want in corner_sets:
            assert min(np.abs(g - want).max() for g in got) < 1e-3, category
    target = [s for s in geo["shutters"] if s["category"] == "target"]
    assert {s["role"] for s in target} == {"source", "nod"} and all(s["source_id"] == "1001" for s in target)
    # corners in ra/dec agree with the offsets
    s = geo["shutters"][0]
    east, north = sky_to_offsets(*np.array(s["corners_radec"]).T, geo["ra"], geo["dec"])
    np.testing.assert_allclose(np.column_stack([east, north]), s["corners"], atol=1e-4)


def test_shutter_geometry_fov_selects_and_observations_filter(mini_root):
    small = shutter_geometry(mini_root, A_ID, 0.6)
    assert {s["category"] for s in small["shutters"]} == {"target"}
    hidden = shutter_geometry(mini_root, A_ID, 3.2, observations=[])
    assert hidden["shutters"] == [] and hidden["observations"] == [] and hidden["pa"] is None
    # from B's point of view A's slitlet is 'other' and B's open shutters are 'target'
    geo_b = shutter_geometry(mini_root, B_ID, 3.2)
    assert sum(s["category"] == "target" for s in geo_b["shutters"]) == 2


@pytest.mark.parametrize("fov", [0, -1.0, 0.0, float("nan"), 61, "3", True, None])
def test_bad_fov(mini_root, fov):
    with pytest.raises(ValidationError, match=r"fov: expected a number of arcsec in \(0, 60\]"):
        make_cutout_png(mini_root, A_ID, fov)
    with pytest.raises(ValidationError, match="fov"):
        shutter_geometry(mini_root, A_ID, fov)


@pytest.mark.parametrize("size", [0, 8, 5000, 12.5, "100", True])
def test_bad_size(mini_root, size):
    with pytest.raises(ValidationError, match=r"size: expected None \(native resolution\) or an integer 16-2048"):
        make_cutout_png(mini_root, A_ID, 3.2, size=size)


def test_unknown_object(mini_root):
    with pytest.raises(NotFoundError, match="'tobs_p1_9999' is not in the catalog"):
        make_cutout_png(mini_root, "tobs_p1_9999", 3.2)
    with pytest.raises(NotFoundError):
        shutter_geometry(mini_root, "tobs_p1_9999", 3.2)
    with pytest.raises(ValidationError, match="object_id"):
        make_cutout_png(mini_root, "../etc", 3.2)


# -- client caches -----------------------------------------------------------------------------------------
def test_client_caches_cutout_and_shutters(mini_cf, monkeypatch):
    import campfire.imaging as imaging

    path = mini_cf.get_cutout(A_ID, fov=3.2)
    assert path.startswith(str(mini_cf.data_dir / "cache" / "cutouts"))
    assert open(path, "rb").read() == make_cutout_png(mini_cf.data_dir, A_ID, 3.2)
    data = mini_cf.get_shutters(A_ID, fov=3.2)
    cached = list((mini_cf.data_dir / "cache" / "shutters").glob("*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text()) == data

    def boom(*args, **kwargs):
        raise AssertionError("served from the cache, not recomputed")

    monkeypatch.setattr(imaging.cache, "make_cutout_png", boom)  # what the client's cache calls
    monkeypatch.setattr(imaging.cache, "shutter_geometry", boom)
    assert mini_cf.get_cutout(A_ID, fov=3.2) == path
    assert mini_cf.get_shutters(A_ID, fov=3.2) == data
    # another fov or size is another cache entry
    with pytest.raises(AssertionError):
        mini_cf.get_cutout(A_ID, fov=3.2, size=64)


def test_client_bad_inputs(mini_cf):
    with pytest.raises(NotFoundError):
        mini_cf.get_cutout("tobs_p1_9999")
    with pytest.raises(NotFoundError):
        mini_cf.plot_cutout("tobs_p1_9999")
    with pytest.raises(ValidationError, match="fov"):
        mini_cf.get_cutout(A_ID, fov=0)
    with pytest.raises(ValidationError, match="fov"):
        mini_cf.get_shutters(A_ID, fov=-2)
    with pytest.raises(ValidationError, match="size"):
        mini_cf.plot_cutout(A_ID, size=3)
    with pytest.raises(ValidationError, match=r"shutters: expected True or 'all'.*'target'"):
        mini_cf.plot_cutout(A_ID, shutters="some")
    with pytest.raises(ValidationError, match=r"unknown shutter category 'targets'.*'target', 'other', 'stuck_closed'"):
        mini_cf.plot_cutout(A_ID, shutter_style={"targets": {"edgecolor": "red"}})
    with pytest.raises(ValidationError, match=r"marker: unknown shutter marker 'circle'.*'box', 'corners'"):
        mini_cf.plot_cutout(A_ID, shutter_style={"other": {"marker": "circle"}})
    with pytest.raises(ValidationError, match=r"shutter_style\['target'\]"):
        mini_cf.plot_cutout(A_ID, shutter_style={"target": {"no_such_property": 1}})


class _FakeRemote:
    """Stands in for RemoteCatalog: the two methods the server's endpoints back."""

    def __init__(self, root):
        self.root = root
        self.calls = []

    def cutout_png(self, object_id, fov, size):
        self.calls.append(("cutout", object_id, fov, size))
        return make_cutout_png(self.root, object_id, fov, size)

    def shutters(self, object_id, fov):
        self.calls.append(("shutters", object_id, fov))
        return json.loads(json.dumps(shutter_geometry(self.root, object_id, fov)))


def test_remote_client_fetches_once_and_caches(mini_root, tmp_path):
    from campfire.client import Campfire

    cf = Campfire(base_url="http://127.0.0.1:9", data_dir=tmp_path / "client")
    assert not cf.is_local
    cf._remote = _FakeRemote(mini_root)
    path = cf.get_cutout(A_ID, fov=3.2, size=64)
    assert read_cutout_png(path)[0].shape[:2] == (64, 64)
    data = cf.get_shutters(A_ID, fov=3.2)
    assert cf.get_cutout(A_ID, fov=3.2, size=64) == path and cf.get_shutters(A_ID, fov=3.2) == data
    assert cf._remote.calls == [("cutout", A_ID, 3.2, 64), ("shutters", A_ID, 3.2)]
    fig, ax = plt.subplots()
    cf.plot_cutout(A_ID, fov=3.2, size=64, ax=ax)
    assert len(cf._remote.calls) == 2  # the plot used the caches
    assert sum(str(p.get_gid()).startswith("shutter:") for p in ax.patches) == 11


def test_synced_dir_without_imaging_and_no_server_says_what_is_missing(mini_root, tmp_path):
    import shutil

    from campfire.client import Campfire

    root = tmp_path / "synced"
    shutil.copytree(mini_root / "meta", root / "meta")
    cf = Campfire(data_dir=root)
    assert cf.is_local
    with pytest.raises(CampfireError, match="no imaging/ folder and no server"):
        cf.get_cutout(A_ID)


# -- the figure ----------------------------------------------------------------------------------------------
def _shutter_patches(ax, category=None):
    out = [p for p in ax.patches if str(p.get_gid()).startswith("shutter:")]
    if category:
        out = [p for p in out if str(p.get_gid()).split(":")[1] == category]
    return out


def test_plot_cutout_draws_every_shutter_where_the_geometry_says(mini_cf):
    fig, ax = plt.subplots(figsize=(5, 5))
    returned = mini_cf.plot_cutout(A_ID, fov=3.2, ax=ax)
    assert returned is ax
    expected = expected_shutters()
    for category, corner_sets in expected.items():
        patches = _shutter_patches(ax, category)
        assert len(patches) == len(corner_sets)
        style = DEFAULT_SHUTTER_STYLES[category]
        for patch in patches:
            assert matplotlib.colors.same_color(patch.get_edgecolor()[:3], matplotlib.colors.to_rgb(style["edgecolor"]))
            assert patch.get_linewidth() == pytest.approx(style["linewidth"])
        for want in corner_sets:
            assert min(np.abs(p.get_xy()[:4] - want).max() for p in patches) < 1e-3
    assert ax.get_xlim() == (1.6, -1.6) and ax.get_ylim() == (-1.6, 1.6)  # east left
    assert ax.get_title() == A_ID


def test_star_sits_in_its_source_shutter_on_screen(mini_cf):
    """The rendered star (image pixels) and the drawn shutter (vector) agree on screen."""
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    mini_cf.plot_cutout(A_ID, fov=3.2, ax=ax, shutters=False, scalebar=False)
    fig.canvas.draw()
    frame = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float).mean(axis=-1)
    geo = mini_cf.get_shutters(A_ID, fov=3.2)
    fig2, ax2 = plt.subplots(figsize=(5, 5), dpi=100)
    mini_cf.plot_cutout(A_ID, fov=3.2, ax=ax2)
    fig2.canvas.draw()
    height = frame.shape[0]
    pix_per_arcsec = abs(ax.transData.transform((1, 0))[0] - ax.transData.transform((0, 0))[0])
    for east_north, category in (((0.0, 0.0), "target"), (B_OFFSET, "other")):
        want = ax.transData.transform(east_north)  # display (x, y), y up
        found = _peak(frame, (height - want[1], want[0]), radius=8)
        star_display = (found[1], height - found[0])
        # where the star is drawn: within one cutout pixel (0.04") of where it must be
        assert np.hypot(star_display[0] - want[0], star_display[1] - want[1]) < 0.04 * pix_per_arcsec
        sources = [s for s in geo["shutters"] if s["category"] == category and s["role"] == "source"
                   and np.hypot(*(np.array(s["center"]) - east_north)) < 0.3]
        assert len(sources) == 1
        patch = next(p for p in _shutter_patches(ax2, category)
                     if np.abs(p.get_xy()[:4] - np.array(sources[0]["corners"])).max() < 1e-6)
        assert patch.get_path().transformed(patch.get_transform()).contains_point(star_display)


def test_style_overrides_merge_over_defaults(mini_cf):
    fig, ax = plt.subplots()
    mini_cf.plot_cutout(A_ID, fov=3.2, ax=ax, shutter_style={"target": {"edgecolor": "cyan"}, "stuck_closed": None})
    target = _shutter_patches(ax, "target")
    assert all(matplotlib.colors.same_color(p.get_edgecolor(), "cyan") for p in target)
    # the keys not overridden keep their defaults
    assert all(p.get_linewidth() == pytest.approx(DEFAULT_SHUTTER_STYLES["target"]["linewidth"]) for p in target)
    assert all(type(p).__name__ == "Polygon" for p in target)
    assert all(matplotlib.colors.same_color(p.get_edgecolor()[:3], "white") for p in _shutter_patches(ax, "other"))


def test_corners_marker_gives_four_l_marks_per_shutter(mini_cf):
    """Reference: "marker controls shape: 'box' (default) or 'corners' (JADES-style L-shaped marks)"."""
    fig, ax = plt.subplots(figsize=(5, 5))
    mini_cf.plot_cutout(A_ID, fov=3.2, ax=ax, shutter_style={
        "target": {"marker": "corners", "edgecolor": "cyan"},
        "other": {"marker": "corners", "edgecolor": "white", "linewidth": 0.5},
    })
    marks = _shutter_patches(ax, "target")
    assert len(marks) == 4 * 3
    assert len(_shutter_patches(ax, "other")) == 4 * 5
    assert len(_shutter_patches(ax, "stuck_closed")) == 3  # boxes: not overridden
    assert all(p.get_linewidth() == pytest.approx(0.5) for p in _shutter_patches(ax, "other"))
    frac = DEFAULT_SHUTTER_STYLES["target"]["corner_length"]
    for shutter_corners in expected_shutters()["target"]:
        # the served geometry is rounded to 1e-5 arcsec
        mine = [p for p in marks if min(np.abs(p.get_path().vertices[1] - c).max() for c in shutter_corners) < 1e-4]
        assert len(mine) == 4
        for p in mine:
            a, corner, b = p.get_path().vertices
            legs = sorted([np.hypot(*(a - corner)), np.hypot(*(b - corner))])
            assert legs == pytest.approx(sorted([frac * OPEN[0], frac * OPEN[1]]), abs=1e-4)
            cosine = np.dot(a - corner, b - corner) / (legs[0] * legs[1])
            assert abs(cosine) < 1e-3  # an L: the legs are perpendicular
            assert not p.get_fill()


def test_only_target_shutters(mini_cf):
    fig, ax = plt.subplots()
    mini_cf.plot_cutout(A_ID, fov=3.2, ax=ax, shutters="target")
    assert {str(p.get_gid()).split(":")[1] for p in _shutter_patches(ax)} == {"target"}
    fig, ax = plt.subplots()
    mini_cf.plot_cutout(A_ID, fov=3.2, ax=ax, shutters=False)
    assert _shutter_patches(ax) == []
    assert [im.get_gid() for im in ax.images] == ["cutout"]


def test_scalebar_length_in_pixels_is_arcsec_over_pixscale(mini_cf):
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    path = mini_cf.get_cutout(A_ID, fov=3.2)
    img, meta = read_cutout_png(path)
    plot_cutout(path, shutters=False, ax=ax, scalebar=True)
    fig.canvas.draw()
    (bar,) = [line for line in ax.lines if line.get_gid() == "scalebar"]
    length = abs(np.diff(bar.get_xdata())[0])
    assert length == 0.5  # a round ~fov/4
    label = next(t for t in ax.texts if t.get_gid() == "scalebar-label")
    assert label.get_text() == "0.5″"
    # on screen: the bar spans length / pixscale cutout pixels
    x0, x1 = ax.transData.transform(np.column_stack([bar.get_xdata(), bar.get_ydata()]))[:, 0]
    extent = ax.images[0].get_window_extent()
    screen_per_image_pixel = extent.width / img.shape[1]
    assert abs(x1 - x0) / screen_per_image_pixel == pytest.approx(length / meta["pixscale"], rel=1e-6)
    fig, ax = plt.subplots()
    plot_cutout(path, shutters=False, ax=ax, scalebar=1.0)
    assert [abs(np.diff(l.get_xdata())[0]) for l in ax.lines if l.get_gid() == "scalebar"] == [1.0]
    fig, ax = plt.subplots()
    plot_cutout(path, shutters=False, ax=ax, scalebar=False)
    assert not [l for l in ax.lines if l.get_gid() == "scalebar"]


def test_compass_points_north_up_and_east_left(mini_cf):
    fig, ax = plt.subplots()
    mini_cf.plot_cutout(A_ID, fov=3.2, ax=ax)
    arrows = {t.get_gid(): t for t in ax.texts if str(t.get_gid()).startswith("compass-") and "label" not in t.get_gid()}
    north, east = arrows["compass-N"], arrows["compass-E"]
    assert north.xy[1] > north.xyann[1] and north.xy[0] == north.xyann[0]
    assert east.xy[0] < east.xyann[0] and east.xy[1] == east.xyann[1]
    labels = {t.get_gid(): t.get_text() for t in ax.texts if str(t.get_gid()).endswith("-label")}
    assert labels["compass-N-label"] == "N" and labels["compass-E-label"] == "E"


def _pdf_paths(data: bytes) -> list[tuple[tuple, list[tuple[float, float]], str]]:
    """(stroke colour, vertices, painting operator) of every path in the PDF's content streams."""
    paths = []
    for raw in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            text = zlib.decompress(raw).decode("latin-1")
        except zlib.error:
            text = raw.decode("latin-1")
        stack: list[str] = []
        colour: tuple = ()
        saved: list[tuple] = []
        current: list[tuple[float, float]] = []
        for token in text.split():
            if token == "RG":
                colour = tuple(round(float(v), 3) for v in stack[-3:])
            elif token == "G":
                colour = (round(float(stack[-1]), 3),) * 3
            elif token == "q":
                saved.append(colour)
            elif token == "Q":
                colour = saved.pop() if saved else colour
            elif token in ("m", "l"):
                current.append((float(stack[-2]), float(stack[-1])))
            elif token in ("S", "s", "B", "b", "B*", "b*", "f", "F", "f*", "n"):
                if current:
                    paths.append((colour, current, token))
                current = []
            elif token in ("BT", "Do", "cm", "re", "c", "h", "gs", "cs", "CS", "rg", "g", "w", "J", "j", "d", "W"):
                pass
            else:
                stack.append(token)
                continue
            stack = []
    return paths


def test_pdf_export_keeps_the_shutters_as_vector_paths(mini_cf, tmp_path):
    """Reference: fig.savefig('cutout.pdf') # vector shutter overlay preserved in PDF."""
    fig, ax = plt.subplots(figsize=(5, 5))
    mini_cf.plot_cutout(A_ID, fov=3.2, ax=ax)
    out = tmp_path / "cutout.pdf"
    fig.savefig(out)
    data = out.read_bytes()
    assert b"/Subtype /Image" in data  # the cutout itself is a raster
    paths = _pdf_paths(data)
    yellow = tuple(round(v, 3) for v in matplotlib.colors.to_rgb(DEFAULT_SHUTTER_STYLES["target"]["edgecolor"]))
    target_paths = [p for p in paths if p[0] == yellow]
    assert len(target_paths) == 3
    # their vertices are where the axes put the shutter corners (PDF points = display at 72 dpi)
    fig.set_dpi(72)
    fig.canvas.draw()
    for corners in expected_shutters()["target"]:
        want = ax.transData.transform(corners)
        assert min(np.abs(np.array(p[1][:4]) - want).max() for p in target_paths) < 0.5
    red = tuple(round(v, 3) for v in matplotlib.colors.to_rgb(DEFAULT_SHUTTER_STYLES["stuck_closed"]["edgecolor"]))
    assert len([p for p in paths if p[0] == red and p[2] in ("B", "b")]) == 3  # filled and stroked


def test_corner_marks_are_vector_in_pdf(mini_cf, tmp_path):
    fig, ax = plt.subplots(figsize=(5, 5))
    mini_cf.plot_cutout(A_ID, fov=3.2, ax=ax, shutter_style={"target": {"marker": "corners", "edgecolor": "cyan"}})
    out = tmp_path / "corners.pdf"
    fig.savefig(out)
    cyan = (0.0, 1.0, 1.0)
    marks = [p for p in _pdf_paths(out.read_bytes()) if p[0] == cyan]
    assert len(marks) == 12 and all(len(p[1]) == 3 and p[2] == "S" for p in marks)


def test_reference_example_get_cutout_get_shutters_plot_cutout(mini_cf):
    """Reference: path = cf.get_cutout(...); data = cf.get_shutters(...); plot_cutout(path, shutters=data, ...)."""
    cf = mini_cf
    fig, ax = plt.subplots(figsize=(5, 5))
    path = cf.get_cutout(A_ID, fov=3.2)  # cached PNG path
    data = cf.get_shutters(A_ID, fov=3.2)  # cached JSON dict
    plot_cutout(path, shutters=data, object_id=A_ID, fov=3.2, ax=ax)
    assert len(_shutter_patches(ax)) == 11
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"


def test_plot_cutout_uses_gca_and_reads_fov_from_the_png(mini_cf):
    path = mini_cf.get_cutout(A_ID, fov=3.2)
    plt.figure()
    ax = plot_cutout(path)
    assert ax is plt.gca() and ax.get_xlim() == (1.6, -1.6)
    assert _shutter_patches(ax) == []


def test_plot_cutout_bad_inputs(mini_cf):
    path = mini_cf.get_cutout(A_ID, fov=3.2)
    data = mini_cf.get_shutters(A_ID, fov=3.2)
    with pytest.raises(ValidationError, match="does not match the cutout"):
        plot_cutout(path, shutters=data, fov=5.0)
    with pytest.raises(ValidationError, match=r"object_id: 'tobs_p1_1002' does not match the cutout"):
        plot_cutout(path, shutters=data, object_id=B_ID)
    with pytest.raises(ValidationError, match="needs the geometry dict"):
        plot_cutout(path, shutters=True)
    with pytest.raises(ValidationError, match="marker"):
        plot_cutout(path, shutters=data, marker="cross")
    with pytest.raises(ValidationError, match="which|shutters"):
        plot_cutout(path, shutters=data, which="nearby")
    bad = dict(data, shutters=[dict(data["shutters"][0], category="failed_open")])
    with pytest.raises(ValidationError, match="unknown shutter category 'failed_open'"):
        plot_cutout(path, shutters=bad)
    with pytest.raises(ValidationError, match="corner_length"):
        plot_cutout(path, shutters=data, shutter_style={"target": {"marker": "corners", "corner_length": 2}})
    with pytest.raises(ValidationError, match="ax"):
        plot_cutout(path, shutters=data, ax="axes")
    with pytest.raises(NotFoundError):
        plot_cutout(str(path) + ".missing")
