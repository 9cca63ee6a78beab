"""
4. Keep a synced archive current: sync, stale files, ``download(stale_only=True)``
===================================================================================

Archives are reprocessed: a better reduction lands, and the FITS files of some spectra
change on the server while their ``spectrum_id`` stays the same. A client that works
from a synced catalog and downloaded files needs a loop that is cheap to run every
morning: sync the catalog, see which local files are now stale, fetch only those, and
redo only the work that used them.

This recipe runs that loop against a real ``campfire serve`` (the docs build started one
over the demo archive on a loopback port and exported ``CAMPFIRE_API_URL``; on your
machine, start one with ``campfire serve ~/.cache/campfire/demo --port 8000``).
"""

import os
import tempfile

from campfire import Campfire, ValidationError, calibrate_to_photometry

server_url = os.environ.get("CAMPFIRE_API_URL", "http://127.0.0.1:8000")
data_dir = tempfile.mkdtemp(prefix="campfire-synced-")  # your own data_dir, e.g. ~/campfire
cf = Campfire(base_url=server_url, data_dir=data_dir)
cf.login("alice", "alice-demo")

# %%
# The first day
# -------------
#
# Sync the catalog (metadata only), then download the files of the part of the
# archive you work on:

print(cf.sync())
got = cf.download(programs=["EMBER-UDS"], gratings=["PRISM"], max_workers=8)
print({k: got[k] for k in ("downloaded", "skipped", "bytes")}, "failed:", got["failed"])

# %%
# The work: calibrate every PRISM spectrum of a little red dot in EMBER-UDS against
# its photometry. The results are kept under ``(spectrum_id, file_hash)``: the catalog
# row carries the sha256 of the file, so a result is reused exactly as long as its
# input has not changed. ``iter_spectra`` streams the catalog rows, so the same loop
# works for ten spectra or a hundred thousand.

SELECTION = dict(tags=["lrd"], programs=["EMBER-UDS"], gratings=["PRISM"], has_photometry=True)


def calibrate_selection(cf, results):
    """Calibrate the spectra of SELECTION whose (id, hash) has no result yet; return what was done."""
    done = []
    for row in cf.iter_spectra(**SELECTION):
        key = (row["spectrum_id"], row["file_hash"])
        if key in results:
            continue
        photometry = cf.get_object(row["object_id"]).photometry
        try:
            results[key] = calibrate_to_photometry(cf.open_spectrum(row["spectrum_id"]), photometry)
        except ValidationError as err:  # e.g. no band with enough S/N: note it and go on
            results[key] = err
        done.append(row["spectrum_id"])
    return done


results = {}
done = calibrate_selection(cf, results)
print(f"calibrated {len(done)} spectra")
for (sid, _), res in results.items():
    print(f"  {sid:36s} {res!r}"[:150])

# %%
# Run again, nothing to do — neither in the catalog nor on disk:

print(cf.sync())
print("calibrated again:", calibrate_selection(cf, results))
print("downloaded again:", cf.download(programs=["EMBER-UDS"], gratings=["PRISM"])["downloaded"])

# %%
# Meanwhile, on the server
# ------------------------
#
# The archive team reprocesses a spectrum of the example object: a new reduction
# (``reduction_version`` v9.9) rewrites its FITS file, so the file's hash in the
# server's catalog changes. (The docs build plays the archive team here, on the server
# it started.)

# sphinx_gallery_start_ignore
if os.environ.get("CAMPFIRE_DOCS_SERVER_ROOT"):
    import campfire_docs

    campfire_docs.reprocess_on_server("ember_uds_p4_prism_clear_123456")
# sphinx_gallery_end_ignore

# %%
# The next morning
# ----------------
#
# ``sync()`` brings the catalog up to date (an incremental transfer: only the rows that
# changed) and counts the downloaded files whose hash no longer matches the
# catalog's:

result = cf.sync()
print(result)
if result["stale_count"] > 0:
    print(f"{result['stale_count']} files updated on server")

# %%
# Which ones: ``staleness=True`` selects them (it is a local filter — only your client
# knows which files you have):

for row in cf.iter_spectra(staleness=True):
    print(row["spectrum_id"], row["object_id"], row["reduction_version"], row["file_hash"][:12])

# %%
# Fetch exactly those files — the rest stays untouched — and the catalog and disk
# agree again:

got = cf.download(stale_only=True)
print({k: got[k] for k in ("downloaded", "skipped", "bytes")})
print("stale now:", len(cf.query_spectra(staleness=True)))

# %%
# The same loop as on the first day now recalibrates only the spectrum whose file
# changed, because its ``(spectrum_id, file_hash)`` is new:

done = calibrate_selection(cf, results)
print("recalibrated:", done)
print(cf.open_spectrum("ember_uds_p4_prism_clear_123456").header["REDVER"])

# %%
# The whole morning routine, in short:
#
# .. code-block:: python
#
#     result = cf.sync()
#     if result["stale_count"]:
#         changed = {row["spectrum_id"] for row in cf.iter_spectra(staleness=True)}
#         cf.download(stale_only=True)
#     calibrate_selection(cf, results)      # redoes only what changed
#
# From a shell: ``campfire sync`` then ``campfire download --stale-only``.
