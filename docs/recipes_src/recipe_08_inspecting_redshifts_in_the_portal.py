"""
8. Inspecting redshifts in the portal
=====================================

Automatic redshifts need a human eye. ``campfire serve`` comes with a web portal
where reviewers look at an object's spectra, its 2D S/N image, photometry, χ²(z)
and cutout, and **grade** its redshift: each grade is kept as an inspection record
(reviewer, redshift, quality 0–4, issue flags, comment, the files looked at), and the
object's ``redshift_inspected`` / ``redshift_quality`` are the *consensus* of the
records you may see. Nothing is overwritten: a new judgement is a new record.

On your machine::

    campfire serve ~/.cache/campfire/demo --port 8000     # then open http://127.0.0.1:8000/

This page was built with such a server running over a copy of the demo archive
(``CAMPFIRE_API_URL`` points at it). It grades one object in a real browser
(headless Chromium driven by Playwright, as the portal's own tests do; the
screenshots below are what it saw), then reads and adds grades from Python.
"""

import os
import tempfile

from campfire import Campfire

server_url = os.environ.get("CAMPFIRE_API_URL", "http://127.0.0.1:8000")
cf = Campfire(base_url=server_url, data_dir=tempfile.mkdtemp(prefix="campfire-synced-"))
cf.login("alice", "alice-demo")  # a member of EMBER-DEEP: she may grade objects with a spectrum in it

# %%
# Something to grade
# ------------------
#
# Members of a program grade the objects with a spectrum in it (archive admins grade
# anything). Alice's ungraded EMBER-DEEP objects, best S/N first — the portal's
# ``/queue`` page lists the same, and ``n`` / ``p`` walk through them:

todo = cf.query_objects(programs=["EMBER-DEEP"], redshift_quality=["not_inspected"], sort="max_snr",
                        sort_dir="desc", limit=5, remote=True)
todo["object_id", "redshift_auto", "redshift_quality", "n_spectra", "max_snr"]

# %%
object_id = str(todo["object_id"][0])
cf.get_inspections(object_id, remote=True)  # no record yet

# %%
# Grading in the browser
# ----------------------
#
# Log in at ``/login`` with your archive account, open ``/objects/<object_id>``, and
# grade from the keyboard: ``a`` accepts the automatic fit (``o`` one of its other
# solutions, ``z`` types a redshift, ``r`` refits near one, or click a feature and pick
# its line), ``0``–``4`` set the quality (not inspected, impossible, tentative,
# probable, secure), ``b`` ``e`` ``x`` the issue flags, ``c`` a comment, and
# ``Enter`` saves. ``?`` lists every shortcut.

import pathlib
import shutil

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
shots = pathlib.Path(tempfile.mkdtemp(prefix="portal-shots-"))


def grade_in_the_browser(url: str, user: str, password: str, object_id: str, keys: list[str]) -> None:
    """What a reviewer does: log in, open the object, press keys, save; screenshots before and after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/login?next=/objects/{object_id}")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", password)
        page.click("#login-form button[type=submit]")
        page.wait_for_selector(f".who[data-user='{user}']")
        page.wait_for_selector("body[data-plots-ready='1']")
        page.screenshot(path=str(shots / "before.png"))
        for key in keys:
            page.keyboard.press(key)
        page.wait_for_selector("#save-status[data-saved='1']")
        page.screenshot(path=str(shots / "after.png"))
        browser.close()


if os.path.exists(CHROMIUM):
    # accept the automatic fit, quality 4 (secure), save
    grade_in_the_browser(server_url, "alice", "alice-demo", object_id, ["a", "4", "Enter"])
else:  # no browser on this machine: the same grade through the API the portal uses
    print("no Chromium here: grading through the API instead")
    cf.inspect(object_id, redshift=float(todo["redshift_auto"][0]), quality="secure")

# %%
# The object page as alice opened it: every spectrum above its 2D S/N image, lines
# at the redshift being considered, the photometry, χ²(z) of the automatic fits, the
# cutout with the MSA shutters, and the grading panel:

import matplotlib.pyplot as plt


def show(png: pathlib.Path, title: str):
    image = plt.imread(png)
    fig, ax = plt.subplots(figsize=(12, 12 * image.shape[0] / image.shape[1]), layout="constrained")
    ax.imshow(image)
    ax.set_axis_off()
    ax.set_title(title)
    return fig


if (shots / "before.png").exists():
    show(shots / "before.png", f"/objects/{object_id}, logged in as alice")

# %%
# and after ``a``, ``4``, ``Enter``: the grade is saved as a record, and the
# consensus and the inspection history on the page follow:

if (shots / "after.png").exists():
    show(shots / "after.png", "after grading: the record in the history, the consensus updated")

# %%
# The grade from Python
# ---------------------
#
# The browser's grade is a record like any other: ``get_inspections`` lists the
# records of an object you may see, with their consensus in ``.meta``:

records = cf.get_inspections(object_id, remote=True)
records["inspection_id", "reviewer", "redshift", "quality", "quality_name", "spectra_seen", "outdated"]

# %%
print(records.meta["consensus"])

# %%
# Grading from Python (or ``campfire inspect OBJECT --redshift Z --quality Q`` from a
# shell) adds a record the same way. Second thoughts are a new record, not an edit:
# each reviewer's *latest* record counts, and the history stays visible.

z_auto = float(todo["redshift_auto"][0])
cf.inspect(object_id, redshift=round(z_auto, 4), quality="probable",
           comment="on second look only one strong line", flags=[])
records = cf.get_inspections(object_id, remote=True)
print(records["reviewer", "redshift", "quality_name", "comment"])
print(records.meta["consensus"])

# %%
# From your synced catalog
# ------------------------
#
# After a sync, the consensus is in your local catalog: ``redshift_inspected`` and
# ``redshift_quality`` of the object, and the records themselves.

cf.sync()
graded = cf.query_objects(inspected_only=True, programs=["EMBER-DEEP"])
graded[graded["object_id"] == object_id]["object_id", "redshift", "redshift_inspected", "redshift_quality"]

# %%
cf.get_inspections(object_id)["reviewer", "quality_name", "created_at"]

# %%
# Several reviewers
# -----------------
#
# When reviewers' confident grades (3 probable, 4 secure) disagree by more than
# ``|Δz|/(1+z) < 0.005``, the object is in **conflict** — no inspected redshift,
# quality 0 — until they agree or an archive admin (``campfire users add NAME --role
# admin``) resolves it with a record marked ``resolves_conflict``; the portal's
# ``/queue?mode=conflicts`` lists such objects. A grade resting on a proprietary
# spectrum is visible only to those who may see that spectrum. See the README's
# "Inspections" section for the rules in full.

# sphinx_gallery_thumbnail_number = 1
