"""The reference's imaging examples, as written, against the demo archive: locally and through a server."""
from __future__ import annotations

import json
import pathlib
import sqlite3

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from campfire.client import Campfire  # noqa: E402
from campfire.errors import NotFoundError, ValidationError  # noqa: E402
from campfire.imaging import make_cutout_png, read_cutout_png, shutter_geometry  # noqa: E402
from shared_fixtures import link_copy  # noqa: E402

OBJ = "ember_uds_p4_123456"


@pytest.fixture
def cf(archive, tmp_path):
    root = link_copy(archive, tmp_path / "root")  # a fresh cache for every test
    return Campfire(data_dir=root)


def _gids(ax, category=None):
    out = [str(p.get_gid()) for p in ax.patches if str(p.get_gid()).startswith("shutter:")]
    return [g for g in out if category is None or g.split(":")[1] == category]


def test_reference_plot_cutout_example(cf, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # --- as in the reference ---
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    cf.plot_cutout('ember_uds_p4_123456', fov=3.2, ax=ax)
    fig.savefig('cutout.pdf')  # vector shutter overlay preserved in PDF
    # ---
    assert len(_gids(ax, "target")) == 3  # the source shutter and its two nods
    assert (tmp_path / "cutout.pdf").stat().st_size > 0
    assert list((cf.data_dir / "cache" / "cutouts").glob("*.png"))
    assert list((cf.data_dir / "cache" / "shutters").glob("*.json"))
    cf.plot_cutout('ember_uds_p4_123456', fov=3.2, ax=ax, shutter_style={
        "target": {"marker": "corners", "edgecolor": "cyan"},
        "other": {"marker": "corners", "edgecolor": "white", "linewidth": 0.5},
    })
    assert len(_gids(ax, "target")) == 3 + 4 * 3


def test_reference_get_cutout_get_shutters_example(cf):
    fig, ax = plt.subplots(figsize=(5, 5))
    # --- as in the reference ('obj_id' stands for a real ID) ---
    from campfire.imaging import plot_cutout

    path = cf.get_cutout(OBJ, fov=3.2)  # cached PNG path
    data = cf.get_shutters(OBJ, fov=3.2)  # cached JSON dict
    plot_cutout(path, shutters=data, object_id=OBJ, fov=3.2, ax=ax)
    # ---
    assert isinstance(path, str) and path.endswith(".png")
    assert len(_gids(ax)) == len(data["shutters"])


def test_demo_target_sits_in_its_source_shutter(archive):
    """For objects of several observations: the object is inside the open area of its source shutter."""
    conn = sqlite3.connect(archive / "meta" / "campfire.db")
    rows = conn.execute(
        "SELECT object_id FROM objects WHERE object_id IN (SELECT object_id FROM spectra) ORDER BY object_id"
    ).fetchall()
    conn.close()
    from matplotlib.path import Path

    checked = 0
    for (object_id,) in rows[:: max(1, len(rows) // 25)]:
        geo = shutter_geometry(archive, object_id, 3.0)
        sources = [s for s in geo["shutters"] if s["category"] == "target" and s["role"] == "source"]
        assert sources, object_id
        for s in sources:
            assert Path(np.array(s["corners"])).contains_point((0.0, 0.0)), (object_id, s["observation"])
            # the open area is 0.20" x 0.46": the corners say so
            c = np.array(s["corners"])
            sides = sorted(np.hypot(*(c[(i + 1) % 4] - c[i])) for i in range(2))
            assert sides == pytest.approx([0.20, 0.46], abs=2e-3)
        checked += 1
    assert checked >= 20


def test_demo_cutout_is_centred_on_the_object(archive):
    img, meta = read_cutout_png(make_cutout_png(archive, OBJ, 3.2))
    assert img.shape == (80, 80) and meta["bands"] == ["f444w"]
    grey = img.astype(float)
    peak = np.unravel_index(np.argmax(grey), grey.shape)
    assert abs(peak[0] - 39.5) <= 1.5 and abs(peak[1] - 39.5) <= 1.5


def test_demo_bad_inputs(cf):
    with pytest.raises(NotFoundError):
        cf.get_cutout("ember_uds_p4_999999999")
    with pytest.raises(NotFoundError):
        cf.get_shutters("ember_uds_p4_999999999")
    with pytest.raises(ValidationError, match="fov"):
        cf.plot_cutout(OBJ, fov=0)
    with pytest.raises(ValidationError, match="fov"):
        cf.plot_cutout(OBJ, fov=-3)
    with pytest.raises(ValidationError, match="shutter_style: unknown shutter category 'nod'"):
        cf.plot_cutout(OBJ, shutter_style={"nod": {"edgecolor": "red"}})
    with pytest.raises(ValidationError, match="marker"):
        cf.plot_cutout(OBJ, shutter_style={"target": {"marker": "x"}})


# -- through the reference server ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server_url(archive):
    from campfire.server.testing import running_server

    with running_server(archive) as url:
        yield url


def _proprietary_only_object(root: pathlib.Path) -> str | None:
    conn = sqlite3.connect(root / "meta" / "campfire.db")
    try:
        row = conn.execute(
            "SELECT s.object_id FROM spectra s JOIN programs p ON p.program_id = s.program_id "
            "GROUP BY s.object_id HAVING max(p.is_public) = 0 ORDER BY s.object_id LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


def test_remote_client_gets_the_same_cutout_and_shutters(server_url, archive, tmp_path):
    cf = Campfire(base_url=server_url, data_dir=tmp_path / "client")
    assert not cf.is_local
    path = cf.get_cutout(OBJ, fov=3.2)
    assert pathlib.Path(path).read_bytes() == make_cutout_png(archive, OBJ, 3.2)
    assert path.startswith(str(tmp_path / "client" / "cache" / "cutouts"))
    data = cf.get_shutters(OBJ, fov=3.2)
    local = json.loads(json.dumps(shutter_geometry(archive, OBJ, 3.2)))
    assert [s["corners"] for s in data["shutters"]] == [s["corners"] for s in local["shutters"]]
    assert cf.get_cutout(OBJ, fov=3.2, size=64) != path
    assert read_cutout_png(cf.get_cutout(OBJ, fov=3.2, size=64))[0].shape[:2] == (64, 64)
    # the reference examples, as written, on the remote client
    fig, ax = plt.subplots(figsize=(5, 5))
    cf.plot_cutout('ember_uds_p4_123456', fov=3.2, ax=ax)
    fig.savefig(tmp_path / 'cutout.pdf')
    assert len(_gids(ax, "target")) == 3
    from campfire.imaging import plot_cutout

    fig, ax = plt.subplots()
    plot_cutout(cf.get_cutout(OBJ, fov=3.2), shutters=cf.get_shutters(OBJ, fov=3.2), object_id=OBJ, fov=3.2, ax=ax)
    assert len(_gids(ax)) == len(data["shutters"])


def test_remote_errors(server_url, archive, tmp_path):
    cf = Campfire(base_url=server_url, data_dir=tmp_path / "client")
    with pytest.raises(NotFoundError):
        cf.get_cutout("ember_uds_p4_999999999")
    with pytest.raises(NotFoundError):
        cf.get_shutters("ember_uds_p4_999999999")
    with pytest.raises(ValidationError, match="fov"):
        cf.get_cutout(OBJ, fov=0)
    hidden = _proprietary_only_object(archive)
    if hidden is not None:  # a proprietary object is invisible to an anonymous caller
        with pytest.raises(NotFoundError):
            cf.get_cutout(hidden)
        with pytest.raises(NotFoundError):
            cf.get_shutters(hidden)
