"""
Getting Started
===============

A guided walk through campfire in six steps: install it, open the built-in demo
archive, run a first query, open and plot a spectrum, talk to a ``campfire serve``
server with a login, a sync and a download, and find your way to its web portal.

Everything below ran when this page was built, against the demo archive: the outputs
and figures are what the code printed and drew. You can download the whole page as a
Python script or a notebook at the bottom.

Install
-------

campfire needs Python 3.11 or newer. From a clone of the repository::

    pip install ".[all]"

``all`` brings the ``server`` extra (FastAPI, uvicorn: ``campfire serve``) and the
``plotting`` extra (Plotly helpers). The core — queries, FITS I/O, calibration,
stacking, Dask graphs, matplotlib quick-looks — needs no extra. Where a C compiler is
installed (``gcc`` on Linux, Xcode's command line tools on macOS), the install also
compiles campfire's resampling and redshift-fit kernels (two small C extensions): a fresh
process then resamples and fits from its first call, without starting numba. Without a
compiler the install still succeeds and both use numba's kernels, the same numbers bit for
bit (their first call in a process costs ~0.6 s more, and the first redshift fit on a
machine compiles the fit for 11–14 s, once). The install puts the ``campfire`` command on
your path:

.. command-output:: campfire --help
   :prompt:

The demo archive
----------------

There is no archive server built in. To have something to work with straight away,
campfire carries a generator of a realistic demo archive: eight MSA observations of
four fields by five programs (one of them proprietary), with PRISM and grating
spectra, broadband photometry, imaging with MSA shutter footprints, and the truth the
spectra were simulated from. ``campfire.demo.ensure()`` builds it on first use (about a
minute, into ``~/.cache/campfire/demo``) and returns its folder every time after that;
``campfire demo build`` does the same from a shell.

An archive root is just a folder — ``meta/campfire.db`` (the SQLite catalog) and
``products/<observation>/<spectrum_id>.spec.fits`` — so the client can read it
directly:
"""

import campfire.demo
from campfire import Campfire

root = campfire.demo.ensure()
cf = Campfire(data_dir=root)
cf

# %%
# ``is_local`` says that queries are answered by the local SQLite catalog. What is in
# it:

print(cf.is_local)
cf.get_metadata()

# %%
# and the programs behind it (``get_programs`` returns an :class:`astropy.table.Table`):

cf.get_programs()

# %%
# A first query
# -------------
#
# Two query surfaces share one filter vocabulary: ``query_objects`` gives one row per
# sky position, with the inspected redshift, its quality and the tags;
# ``query_spectra`` gives one row per spectrum, with its grating, file and data-quality
# flags. Galaxies at 3 < z < 6 whose redshift an inspector graded probable or secure:

objects = cf.query_objects(redshift_range=(3.0, 6.0), redshift_quality=["probable", "secure"])
print(len(objects), "objects")
objects["object_id", "field", "redshift", "redshift_quality", "n_spectra", "max_snr", "tags"][:8]

# %%
# The whole catalog at a glance: the redshift distribution per field.

import matplotlib.pyplot as plt
import numpy as np

everything = cf.query_objects()
fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
bins = np.arange(0, 10.5, 0.5)
for field in cf.get_fields():
    ax.hist(everything["redshift"][everything["field"] == field], bins=bins, histtype="step", lw=2, label=field)
ax.set(xlabel="redshift", ylabel="objects", title=f"{len(everything)} objects in the demo archive")
ax.legend(title="field")

# %%
# Spectra are filtered the same way, plus per-spectrum data-quality flags (see
# :doc:`/flags`). PRISM spectra free of contamination and of low S/N, best first:

from campfire.flags import DQFlags

good = cf.query_spectra(
    gratings=["PRISM"],
    dq_flags=~DQFlags.CONTAMINATION & ~DQFlags.LOW_SNR,
    sort="signal_to_noise",
    sort_dir="desc",
)
good["spectrum_id", "object_id", "signal_to_noise", "exposure_time", "dq_flags"][:5]

# %%
# Opening and plotting a spectrum
# -------------------------------
#
# ``get_object`` returns one object with its spectra and photometry attached:

obj = cf.get_object("ember_uds_p4_123456")
print(obj)
for s in obj.spectra:
    print(f"{s.spectrum_id:34s} {s.grating:6s} S/N {s.signal_to_noise:5.1f}  downloaded: {s.downloaded}")

# %%
# ``open_spectrum`` (or ``obj.spectra[i].open()``) reads the FITS file into a
# ``SpectrumData``: wavelength in μm, f_ν and its error in μJy, f_λ computed on demand,
# and the FITS header.

spec = cf.open_spectrum("ember_uds_p4_prism_clear_123456")
print(spec)
print(spec.wave_units, spec.fnu_units, "| EXPTIME =", spec.header.get("EXPTIME"), "s")

# %%
# ``plot()`` is a quick look with the error band; given a redshift it marks the
# emission lines in range:

spec.plot(redshift=obj.redshift)

# %%
# Plotting by hand is plain matplotlib. Here the spectrum with the object's
# broadband photometry on top:

phot = obj.photometry
fig, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
ax.step(spec.wavelength, spec.fnu, where="mid", color="0.3", lw=0.8, label=f"{spec.grating} spectrum")
ax.errorbar(phot.wavelength, phot.flux, yerr=phot.flux_err, fmt="o", color="C3", label=f"{phot.catalog} photometry")
ax.set(xlabel=f"wavelength [{spec.wave_units}]", ylabel=f"$f_\\nu$ [{spec.fnu_units}]", xlim=(0.5, 5.4))
ax.set_title(f"{obj.object_id}, z = {obj.redshift:.4f}")
ax.legend()

# %%
# The server and login
# --------------------
#
# Real archives are served over HTTP by ``campfire serve`` (the ``server`` extra), and
# the client talks to such a server the same way it reads a local archive. Start one
# over the demo archive in a terminal::
#
#     campfire serve ~/.cache/campfire/demo --port 8000
#
# and tell the client where it is, in another::
#
#     export CAMPFIRE_API_URL=http://127.0.0.1:8000
#
# (This page's build did exactly that: it started ``campfire serve`` over a copy of the
# demo archive on a free loopback port and exported ``CAMPFIRE_API_URL``.) The demo
# server has two accounts: ``alice`` / ``alice-demo``, a member of the proprietary
# program EMBER-DEEP, and ``bob`` / ``bob-demo``, a member of none. Anonymous clients
# see the public programs only.
#
# A client of a server keeps its own ``data_dir`` — the synced catalog and the files
# you downloaded — separate from the server's archive root:

import os
import tempfile

server_url = os.environ.get("CAMPFIRE_API_URL", "http://127.0.0.1:8000")
data_dir = tempfile.mkdtemp(prefix="campfire-synced-")  # any empty folder of yours, e.g. ~/campfire
remote = Campfire(base_url=server_url, data_dir=data_dir)
remote

# %%
# Nothing is synced yet, so queries go to the API. Anonymous, the proprietary program
# is invisible:

remote.get_programs()["slug", "program_name", "is_public"]

# %%
# After a login — tokens are stored in ``~/.config/campfire/credentials.json``, readable
# by you only, and refreshed automatically — alice sees EMBER-DEEP too:

remote.login("alice", "alice-demo")
remote.get_programs()["slug", "program_name", "is_public"]

# %%
# ``sync()`` pulls the whole catalog you may see in one compressed transfer into
# ``<data_dir>/meta/campfire.db``; from then on queries are answered locally
# (``remote=True`` still asks the server):

result = remote.sync()
print(result)
print(remote.is_local, remote.last_synced)

# %%
# ``download()`` fetches FITS files — in parallel, resumable, each verified against
# its sha256 — into ``<data_dir>/products/``. One observation's PRISM spectra:

remote.download(observations=["ember_uds_p4"], gratings=["PRISM"])

# %%
# Opening a downloaded spectrum reads the local file; no request is made. A spectrum
# that is not downloaded yet is fetched on first open and kept.

remote.open_spectrum("ember_uds_p4_prism_clear_123456")

# %%
# The same from a shell
# ^^^^^^^^^^^^^^^^^^^^^
#
# The command line does the same with ``CAMPFIRE_API_URL`` and ``CAMPFIRE_ROOT`` (the
# client's data_dir) exported. ``campfire login --username alice`` asks for the
# password; scripts pipe it in with ``--password-stdin``. These commands ran during
# the build, against the same server:
#
# .. command-output:: echo alice-demo | campfire login --username alice --password-stdin
#    :shell:
#    :prompt:
#
# .. command-output:: campfire sync
#    :prompt:
#
# .. command-output:: campfire download --observations ember_uds_p4 --gratings PRISM
#    :prompt:
#
# The portal
# ----------
#
# The same server is also a web portal: open its root URL (here
# ``http://127.0.0.1:8000/``) in a browser — no other process, nothing fetched from
# the internet. Log in with the same accounts (anonymous visitors see the public
# programs only, like anonymous API clients) and you get:
#
# * **Catalog** (``/``): the filters of ``query_objects`` as a form, a sortable table,
#   the same query as a Python snippet to paste into a notebook, ECSV/CSV downloads
#   and tagging of the selected rows;
# * **Object** (``/objects/<object_id>``): every spectrum above its 2D S/N image, the
#   photometry, χ²(z) of the automatic fits, the cutout with the MSA shutters, tags and
#   inspections;
# * **Grading** of redshifts from the keyboard, for members of a program with a
#   spectrum of the object — :doc:`recipe 8
#   </recipes/recipe_08_inspecting_redshifts_in_the_portal>` walks through it with
#   screenshots;
# * **Tags** (``/tags``): create, share and manage your tags.
#
# Where next
# ----------
#
# * :doc:`/recipes/index` — calibrate and stack one object (recipe 3), keep a synced
#   archive current (recipe 4), style cutouts (recipe 5), stack a population on a Dask
#   cluster (recipe 6), make an archive of your own files (recipe 7), grade redshifts
#   in the portal (recipe 8).
# * :doc:`/reference/client` — every method of ``Campfire`` and its companion classes.
# * :doc:`/workflows` — ``campfire run`` and the workflow file.

# sphinx_gallery_thumbnail_number = 3
