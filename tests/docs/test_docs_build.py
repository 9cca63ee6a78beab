"""The documentation builds offline with warnings as errors, and its pages ran.

One Sphinx build (``python -m sphinx -W --keep-going -b html docs OUT``) against the
session's demo archive: Getting Started and the recipes are executed by sphinx-gallery
(a failing example fails the build), the build starts a real ``campfire serve`` on a
loopback port for the pages that talk to a server, and the HTTP API page is generated
from the OpenAPI document that server serves. The tests then read the HTML: every
recipe drew its figures, recipe 4 saw a stale file and fetched exactly it, every
endpoint and every public method is documented — and the demo archive was not written.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

pytestmark = [pytest.mark.docs, pytest.mark.server, pytest.mark.cluster]


def _tree_state(root: pathlib.Path) -> dict:
    """Names, sizes and mtimes under the demo root, and the catalog's hash."""
    # (SQLite readers of a WAL-mode catalog touch its -shm file: that is not a write to the archive)
    state = {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
             if not p.name.endswith("-shm")}
    state["catalog sha256"] = hashlib.sha256((root / "meta" / "campfire.db").read_bytes()).hexdigest()
    return state


@pytest.fixture(scope="module")
def built_docs(demo_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    before = _tree_state(pathlib.Path(demo_root))
    env = dict(os.environ, CAMPFIRE_DOCS_DEMO_ROOT=str(demo_root), PYTHONPATH=str(REPO))
    for var in ("CAMPFIRE_API_URL", "CAMPFIRE_ROOT", "CAMPFIRE_DOCS_INTERSPHINX"):
        env.pop(var, None)
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-d", str(out / "doctrees"),
         str(DOCS), str(out / "html")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1500,
    )
    assert proc.returncode == 0, f"docs build failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    return {"html": out / "html", "log": proc.stdout + proc.stderr, "before": before, "demo": pathlib.Path(demo_root)}


def _page(built, name: str) -> str:
    path = built["html"] / name
    assert path.is_file(), f"{name} was not built"
    return path.read_text()


def _images(built, html: str) -> list[pathlib.Path]:
    return [built["html"] / m for m in re.findall(r'src="\.\./(_images/sphx_glr_[^"]+\.png)"', html)]


RECIPES_WITH_FIGURES = {
    "recipe_01_best_spectra_of_a_sample": 1,
    "recipe_02_one_object_in_depth": 2,
    "recipe_03_calibrate_and_stack_one_object": 3,
    "recipe_05_cutout_styling": 1,
    "recipe_06_population_stack_on_a_cluster": 1,
    "recipe_07_an_archive_from_your_own_files": 2,
    "recipe_08_inspecting_redshifts_in_the_portal": 2,  # the portal's screenshots
}


@pytest.mark.timeout(1800)
def test_the_build_is_clean_and_left_the_demo_untouched(built_docs):
    assert "build succeeded" in built_docs["log"]
    assert "Sphinx-Gallery successfully executed 9 out of 9 files" in built_docs["log"]
    assert _tree_state(built_docs["demo"]) == built_docs["before"]


@pytest.mark.parametrize("name,n_figures", sorted(RECIPES_WITH_FIGURES.items()))
def test_recipe_pages_show_their_figures(built_docs, name, n_figures):
    html = _page(built_docs, f"recipes/{name}.html")
    images = _images(built_docs, html)
    assert len(images) >= n_figures
    for image in images:
        data = image.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, image


def test_getting_started_ran_against_the_demo_and_the_server(built_docs):
    html = _page(built_docs, "getting_started/getting_started.html")
    assert len(_images(built_docs, html)) >= 3
    assert "SpectrumData(ember_uds_p4_prism_clear_123456, PRISM, 1024 pixels" in html
    # the anonymous client saw four public programs, alice five; the sync and the shell commands ran
    assert "Table length=4" in html and "Table length=5" in html
    assert "&#39;stale_count&#39;: 0" in html
    assert "logged in to http://127.0.0.1:" in html


def test_recipe_4_found_exactly_the_reprocessed_file_stale(built_docs):
    text = re.sub(r"<[^>]+>", "", _page(built_docs, "recipes/recipe_04_keep_a_synced_archive_current.html"))
    assert "&#39;stale_count&#39;: 1" in text
    assert "ember_uds_p4_prism_clear_123456 ember_uds_p4_123456 v9.9" in text
    assert "{&#39;downloaded&#39;: 1," in text
    assert "recalibrated: [&#39;ember_uds_p4_prism_clear_123456&#39;]" in text


def _text(built, name: str) -> str:
    import html as html_lib

    return html_lib.unescape(re.sub(r"<[^>]+>", "", _page(built, name)))


def test_recipe_7_ingested_the_real_spectra_and_served_them(built_docs):
    text = _text(built_docs, "recipes/recipe_07_an_archive_from_your_own_files.html")
    assert re.search(r"archive: 7 new, 3 failed \(", text) and "unrectified JWST pipeline slitlet" in text
    assert re.search(r"archive: 7 unchanged, 3 failed \(", text)  # the second ingest changed nothing
    assert "stark-rxcj2248-v4_g395m_f290lp_3" in text and "Object(stark-rxcj2248-v4_3, z=6.1" in text
    assert re.search(r"synced the catalog of http://127\.0\.0\.1:\d+ \(anonymous: public programs only\): "
                     r"5 observations, 5 objects, 7 spectra", text)
    assert re.search(r"downloaded 4 files \([\d.]+ MiB\)", text)


def test_recipe_8_graded_in_the_browser_and_read_it_from_python(built_docs):
    text = _text(built_docs, "recipes/recipe_08_inspecting_redshifts_in_the_portal.html")
    assert text.count("no Chromium here") == 1  # in the code shown, not in its output: the browser ran
    assert "'state': 'single'" in text and "'quality': 4" in text  # the browser's grade: secure
    assert "on second look only one strong line" in text and "'quality': 3" in text  # then Python's


def test_getting_started_points_at_the_portal(built_docs):
    text = _text(built_docs, "getting_started/getting_started.html")
    assert "The portal" in text and "recipe 8" in text.lower()


def test_fit_redshift_is_in_the_api_index(built_docs):
    html = _page(built_docs, "reference/generated/campfire.fit_redshift.html")
    text = " ".join(_text(built_docs, "reference/generated/campfire.fit_redshift.html").split())
    assert 'id="campfire.fit_redshift"' in html and "|Δz|/(1+z) < 0.01" in text


def test_http_api_page_documents_every_served_endpoint(built_docs):
    import html as html_lib
    import json

    spec = json.loads((DOCS / "_generated" / "openapi.json").read_text())
    assert spec["openapi"].startswith("3.") and len(spec["paths"]) > 20
    text = html_lib.unescape(re.sub(r"<[^>]+>", "", _page(built_docs, "http_api.html")))
    missing = [f"{m.upper()} {path}" for path, methods in spec["paths"].items() for m in methods
               if f"{m.upper()} {path}#" not in text]
    assert not missing


def test_every_public_client_method_is_in_the_reference(built_docs):
    from campfire import Campfire

    html = _page(built_docs, "reference/generated/campfire.Campfire.html")
    public = [n for n in vars(Campfire) if not n.startswith("_")]
    missing = [n for n in public if f'id="campfire.Campfire.{n}"' not in html]
    assert not missing


def test_recipe_placeholders_and_reference_pages_exist(built_docs):
    for name in ("recipes/recipe_07_an_archive_from_your_own_files.html",
                 "recipes/recipe_08_inspecting_redshifts_in_the_portal.html",
                 "reference/client.html", "workflows.html", "cli.html", "fits_format.html", "flags.html"):
        _page(built_docs, name)
    flags = _page(built_docs, "flags.html")
    from campfire.flags import DQFlags

    assert all(m.name in flags for m in DQFlags)
