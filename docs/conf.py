"""Sphinx configuration of campfire's documentation.

Build (offline, warnings are errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Getting Started and the recipes are sphinx-gallery scripts executed during the build
against the demo archive; the build also starts a real ``campfire serve`` on a loopback
port for the pages that talk to a server (see ``_ext/campfire_docs.py``). The demo is
found through ``CAMPFIRE_DOCS_DEMO_ROOT`` or ``CAMPFIRE_TEST_DEMO_ROOT`` (an already
built demo of the current version), else ``campfire.demo.ensure()`` builds it once
(about a minute) into ``~/.cache/campfire/demo``.

Intersphinx links to astropy/numpy/dask need those projects' inventories, which only
come over the network: set ``CAMPFIRE_DOCS_INTERSPHINX=1`` to use them. The default
(offline) build leaves such references as plain code text.
"""
from __future__ import annotations

import os
import pathlib
import sys

HERE = pathlib.Path(__file__).parent.resolve()
sys.path.insert(0, str(HERE / "_ext"))

import campfire  # noqa: E402

project = "campfire"
author = "the campfire developers"
copyright = "the campfire developers"
release = campfire.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinxcontrib.programoutput",
    "sphinxcontrib.httpdomain",
    "sphinxcontrib.openapi",
    "campfire_docs",
]

root_doc = "index"
exclude_patterns = [
    "_build",
    "_generated",
    "getting_started_src",
    "recipes_src",
    # sphinx-gallery writes an index of the Getting Started gallery; the page itself is in the toctree
    "getting_started/index.rst",
    "**/*.ipynb",
    "**/*.py",
    "**/*.md5",
    "**/*.zip",
]
templates_path = ["_templates"]
html_static_path = ["_static"]
html_css_files = ["campfire.css"]

# -- HTML: the scientific-Python theme, nothing fetched from a CDN ----------------------
html_theme = "pydata_sphinx_theme"
html_title = f"campfire {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 7,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_sidebars = {"index": []}
html_show_sourcelink = True

# -- autodoc / autosummary / numpydoc ----------------------------------------------------
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- intersphinx: offline by default -----------------------------------------------------
if os.environ.get("CAMPFIRE_DOCS_INTERSPHINX", "").lower() in ("1", "true", "yes", "on"):
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "astropy": ("https://docs.astropy.org/en/stable/", None),
        "dask": ("https://docs.dask.org/en/stable/", None),
        "distributed": ("https://distributed.dask.org/en/stable/", None),
        "matplotlib": ("https://matplotlib.org/stable/", None),
    }
else:
    intersphinx_mapping = {}

# -- sphinx-gallery: Getting Started and the recipes, executed on every build ------------
sphinx_gallery_conf = {
    "examples_dirs": ["getting_started_src", "recipes_src"],
    "gallery_dirs": ["getting_started", "recipes"],
    "filename_pattern": r".*\.py$",      # execute every script, not only plot_*.py
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",  # recipe_01, recipe_02, ...
    "run_stale_examples": True,          # the code runs against the package as it is now
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,  # a failing example fails the build
    "capture_repr": ("_repr_html_", "__repr__"),
    # no "<Axes ...>" / "<Legend ...>" lines under the figures
    "ignore_repr_types": r"matplotlib\.(text|axes|legend|figure|lines|patches|collections|image|container)",
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "remove_config_comments": True,
    "copyfile_regex": r"^(index|recipe_\d+_.*)\.rst$",  # our recipes index and the placeholder recipes
    "download_all_examples": False,
    "show_memory": False,
    "show_signature": False,
    "default_thumb_file": None,
    "line_numbers": False,
    "plot_gallery": "True",
    "reference_url": {},
    "write_computation_times": True,
}

# -- programoutput: shell commands on the pages run during the build -----------------------
programoutput_use_ansi = False
