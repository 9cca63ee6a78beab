"""Compiled caches stay out of the installed package; README's two install commands work in either order."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

_PROBE = textwrap.dedent("""
    import json, os, pathlib
    import numpy as np
    import campfire
    from campfire import Campfire  # the import that failed with an empty namespace package
    from campfire.calibration import resample_flux
    from campfire.tasks._jit import c_kernels, kernels, numba_cache_dir, resample_kernels
    w = np.linspace(1.0, 2.0, 50)
    resample_flux(np.linspace(1.1, 1.9, 20), w, np.ones(50), np.full(50, 0.1), engine="numba")
    paths = sorted({getattr(k, name)._cache._cache_path for k in (resample_kernels(), kernels()) for name in dir(k)
                    if hasattr(getattr(k, name), "_cache") and hasattr(getattr(k, name)._cache, "_cache_path")})
    package = pathlib.Path(campfire.__file__).parent
    print(json.dumps({"package": str(package), "cache_paths": paths, "cache_dir": numba_cache_dir(),
                      "in_package": sorted(str(p) for p in package.rglob("*.nb[ic]")),
                      "c_kernels": c_kernels() and c_kernels().__file__}))
""")


def _probe(python: str, env: dict, cwd: pathlib.Path) -> dict:
    out = subprocess.run([python, "-c", _PROBE], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_numba_cache_goes_to_the_user_cache_dir_not_the_package(tmp_path):
    # guards: campfire.tasks._jit.kernels() pointing numba's cache at numba_cache_dir() while the
    # kernels are decorated (issue 18: cache files inside site-packages/campfire outlived a
    # non-editable install and then shadowed an editable one as an empty namespace package)
    env = dict(os.environ, CAMPFIRE_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    env.pop("NUMBA_CACHE_DIR", None)
    info = _probe(sys.executable, env, tmp_path)
    assert info["cache_dir"] == str(tmp_path / "cache" / "numba")
    assert info["cache_paths"] and all(p.startswith(info["cache_dir"]) for p in info["cache_paths"]), info
    assert list((tmp_path / "cache" / "numba").rglob("*.nbi")), "nothing was cached"
    # numba's own setting still wins, for people who point every library's cache somewhere
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba-own")
    info = _probe(sys.executable, env, tmp_path)
    assert all(p.startswith(str(tmp_path / "numba-own")) for p in info["cache_paths"]), info


@pytest.mark.slow
def test_readme_install_commands_in_either_order(tmp_path):
    """README's `pip install .` then `pip install -e .` (and the reverse) in one venv (--runslow).

    A copy of the source tree is installed (no dependencies: the venv sees the
    system's), a compiled kernel is run from outside the tree after each install, and
    ``from campfire import Campfire`` must keep working with the package it should find.
    Each install builds the C resampling kernels (in place with ``-e``) and they load.
    """
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", "build", "results",
                                                             "_build", ".pytest_cache", "*.so", "*.pyd"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NUMBA_CACHE_DIR", "VIRTUAL_ENV")}
    env["CAMPFIRE_CACHE_DIR"] = str(tmp_path / "cache")
    pip = [python, "-m", "pip", "install", "-q", "--no-deps"]  # the build backend (setuptools ≥ 68) in isolation
    away = tmp_path / "elsewhere"
    away.mkdir()
    site = pathlib.Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                       capture_output=True, text=True, check=True).stdout.strip())
    for order in (("", "-e"), ("-e", "")):
        for flag in order:
            subprocess.run(pip + ([flag] if flag else []) + [str(src)], env=env, check=True, timeout=900)
            info = _probe(python, env, away)
            if flag:  # editable: the source tree
                assert pathlib.Path(info["package"]) == src / "campfire", info
            else:  # a copy in the venv, and no compiled cache written into it
                assert pathlib.Path(info["package"]) == site / "campfire", info
                assert info["in_package"] == [], info
            if not os.environ.get("CAMPFIRE_DISABLE_C"):  # (set: a machine without a C compiler, on purpose)
                assert info["c_kernels"] and pathlib.Path(info["c_kernels"]).parent == pathlib.Path(info["package"]) / "tasks"
            assert all(p.startswith(str(tmp_path / "cache")) for p in info["cache_paths"]), info
        # the switch to editable removed the installed copy entirely (no leftover folder to shadow it)
        if order[-1] == "-e":
            assert not (site / "campfire").exists(), sorted(str(p) for p in (site / "campfire").rglob("*"))
