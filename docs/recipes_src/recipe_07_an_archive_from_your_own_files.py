"""
7. An archive from your own files: ingest, query, serve, sync
=============================================================

You have reduced NIRSpec MSA spectra of your own — msaexp / DAWN JWST Archive (DJA)
``*.spec.fits`` files — and want to work with them the way you work with the demo:
query them, open them, fit and grade redshifts, serve them to collaborators.
``campfire archive ingest ROOT SOURCE...`` turns such files into an **archive root**:
a catalog (``ROOT/meta/campfire.db``), a copy of every spectrum under
``ROOT/products/``, and an automatic redshift fit of each spectrum.

This page ingests real public spectra — six DJA v4 files (four objects, one of them
observed with three gratings) and an msaexp test spectrum, next to three raw pipeline
slitlets that are *not* spectra (see ``PROVENANCE.md`` of the data folder) — then
queries the archive, ingests again, and serves it to a client that syncs it.
"""

import os
import pathlib
import subprocess
import sys
import tempfile

# the real spectra (set CAMPFIRE_DOCS_REAL_SPECTRA to build these pages elsewhere)
SPECTRA = pathlib.Path(os.environ.get("CAMPFIRE_DOCS_REAL_SPECTRA", "/work/shared/data/real/spectra"))
work = pathlib.Path(tempfile.mkdtemp(prefix="campfire-recipe7-"))
root = work / "archive"  # your archive root, e.g. ~/archive


def shell(*args) -> None:
    """Run a ``campfire`` command as you would type it in a terminal, and show what it printed."""
    print("$ campfire", " ".join(str(a) for a in args))
    proc = subprocess.run([sys.executable, "-m", "campfire", *map(str, args)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    print(proc.stdout)


for path in sorted(SPECTRA.rglob("*.fits")):
    print(path.relative_to(SPECTRA))

# %%
# Ingest
# ------
#
# SOURCE may be files, folders (searched recursively for ``*.fits``), globs or fsspec
# URLs. A file that is not a spectrum (here the three raw slitlets) is one line of
# the summary, on stderr, with its reason; everything else goes on, and the exit
# status is 0 unless you ask for ``--strict``. ``--quiet`` leaves out the progress
# bar of the redshift fits.

shell("archive", "ingest", root, SPECTRA, "--quiet")

# %%
# Query it
# --------
#
# An archive root is read directly, like the demo (``Campfire(data_dir=...)`` or
# ``$CAMPFIRE_ROOT``). Without a ``programs.yaml``, every program is public with its
# proposal ID as slug, the PI read from the headers:

from campfire import Campfire

cf = Campfire(data_dir=root)
cf.get_programs()["slug", "pi_name", "is_public"]

# %%
# IDs come from the DJA file names: ``{root}_{grating}-{filter}_{prog}_{srcid}.spec.fits``
# → observation ``root``, spectrum ``root_grating_filter_srcid``; spectra within 0.2″
# of each other are one object, across programs and gratings. Every spectrum got an
# automatic redshift (``fit_redshift``), and each object the best of its spectra:

objects = cf.query_objects()
objects["object_id", "ra", "dec", "redshift_auto", "redshift_quality", "n_spectra", "gratings"]

# %%
spectra = cf.query_spectra(sort="redshift_auto", sort_dir="desc")
spectra["spectrum_id", "grating", "signal_to_noise", "exposure_time", "redshift_auto"]

# %%
# The same filters as on any archive, e.g. the grating spectra above z = 6:

cf.query_objects(gratings=["G140M", "G235M", "G395M"], redshift_range=(6, 20))["object_id", "redshift", "gratings"]

# %%
# One object, three gratings
# --------------------------
#
# The object of program 2478 (PI Stark) was observed with G140M, G235M and G395M; all
# three files became spectra of one object. Their automatic redshifts agree, and the
# lines of a z ≈ 6.1 galaxy fall where they should:

import matplotlib.pyplot as plt

obj = cf.get_object("stark-rxcj2248-v4_3")
print(obj)
fig, ax = plt.subplots(figsize=(10, 4), layout="constrained")
for spec_row, color in zip(obj.spectra, ("C0", "C1", "C2")):
    spec = spec_row.open()
    print(f"{spec.spectrum_id:34s} z_auto = {spec_row.redshift_auto:.4f}")
    spec.plot(ax=ax, color=color, label=spec.grating, redshift=obj.redshift_auto if color == "C2" else None)
ax.set_ylim(-0.05, 0.6)
ax.set_title(f"{obj.object_id}: three gratings, z_auto = {obj.redshift_auto:.4f}")
ax.legend(loc="upper left")

# %%
# The fit behind an automatic redshift is stored with the spectrum (in the archive
# copy's ``ZFIT`` extension): χ²(z) over the whole range, and the best model.

fit = cf.get_redshift_fit_data("borg-v4_prism_clear_732")
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained")
left.plot(fit["z_grid"], fit["chi2_grid"] - fit["chi2_min"], lw=0.8)
left.set(xlabel="z", ylabel="χ² − χ²_min", yscale="symlog", title=f"best z = {fit['redshift']:.4f}")
prism = cf.open_spectrum("borg-v4_prism_clear_732")
right.step(prism.wavelength, prism.fnu, where="mid", color="0.4", lw=0.7, label="PRISM spectrum")
right.plot(fit["model_wave"], fit["model_fnu"], color="C3", lw=1, label="best model")
right.set(xlabel="wavelength [μm]", ylabel="$f_\\nu$ [μJy]", title="borg-v4_prism_clear_732")
right.legend()

# %%
# Ingesting again
# ---------------
#
# Re-running the same command is incremental: unchanged files are not even read (size
# and modification time). A changed file would be refitted and get a new hash (a
# synced client then sees it as stale, see :doc:`recipe 4
# <recipe_04_keep_a_synced_archive_current>`); a vanished one is reported, and removed
# with ``--withdraw-missing``. The catalog changes in one transaction: an interrupted
# ingest leaves the previous archive as it was.

shell("archive", "ingest", root, SPECTRA, "--quiet")

# %%
# In Python, :func:`campfire.archive.ingest` does the same and returns the summary as
# an astropy Table (one row per input: status, reason, spectrum ID):

from campfire.archive import ingest

summary = ingest(root, [str(SPECTRA)], scheduler="threads", progress=False)
summary["status", "spectrum_id", "reason"]

# %%
# Serve it, sync it
# -----------------
#
# ``campfire serve ROOT`` serves the new archive exactly like the demo (API and
# portal). Collaborators sync its catalog into a data_dir of their own and download
# what they need. Here the server runs for the rest of this page on a free loopback
# port (on your machine: ``campfire serve ~/archive --port 8000``):

import socket
import time

import requests

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
server = subprocess.Popen([sys.executable, "-m", "campfire", "serve", str(root), "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
url = f"http://127.0.0.1:{port}"
for _ in range(300):
    try:
        if requests.get(f"{url}/api/v1/health", timeout=1).ok:
            break
    except requests.ConnectionError:
        time.sleep(0.2)
print("serving", root, "on", url)

# %%
# A collaborator's shell (``--server`` and ``--data-dir``, or ``CAMPFIRE_API_URL`` and
# ``CAMPFIRE_ROOT``):

synced = work / "collaborator"
shell("sync", "--server", url, "--data-dir", synced)
shell("download", "--server", url, "--data-dir", synced, "--gratings", "G140M,G235M,G395M")

# %%
# and their Python session, reading the synced catalog and the downloaded files:

mine = Campfire(base_url=url, data_dir=synced)
print(mine.is_local, mine.last_synced)
mine.query_spectra(gratings=["G395M"])["spectrum_id", "redshift_auto", "local_path"]

# %%
server.terminate()
server.wait(timeout=30)

# %%
# With a DJA table, photometry and programs
# -----------------------------------------
#
# Real ingests usually add three things (see the README's "An archive from your own
# files" and ``campfire archive ingest --help``):
#
# * ``--table dja_msaexp_emission_lines_v4.4.csv.gz`` — the DJA merged table: its
#   visual grades become inspection records by reviewer ``dja:<initials>``
#   (3 → secure, 2 → tentative, 1 and 0 → impossible), so ``redshift_quality`` and
#   ``redshift_inspected`` are filled in, and :doc:`recipe 8
#   <recipe_08_inspecting_redshifts_in_the_portal>` builds on them;
# * ``--photometry catalog.ecsv`` — a photometric catalogue (μJy or AB magnitudes per
#   band, matched by ID or position): calibration against photometry (recipe 3) then
#   works on your spectra too;
# * ``--programs programs.yaml`` — program slugs, names, PIs, which programs are
#   proprietary and who their members are (the server's accounts,
#   ``campfire users add``).

# sphinx_gallery_thumbnail_number = 1
