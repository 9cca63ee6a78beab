"""
5. Cutouts with MSA shutters: three styles side by side
=======================================================

A cutout of the imaging around an object with the NIRSpec MSA shutters drawn on top
shows where the slit sat on the galaxy — and which neighbours fell into the slitlet.
``cf.plot_cutout`` draws both; the shutters are vector patches, so they stay sharp in a
PDF. Shutters come in three categories, each with its own style: ``'target'`` (the
object's own shutters), ``'other'`` (shutters open on other sources), and
``'stuck_closed'`` (shutters that failed closed).

This recipe draws one object three ways: the default boxes, JADES-style corner marks,
and a minimal target-only view built from the cached files with the lower-level
:func:`campfire.imaging.plot_cutout`.
"""

import tempfile

import matplotlib.pyplot as plt

import campfire.demo
from campfire import Campfire
from campfire.imaging import plot_cutout

cf = Campfire(data_dir=campfire.demo.ensure())
object_id = "ember_uds_p4_123456"

fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), layout="constrained")

# 1. the defaults: every shutter as a box, target in yellow, scalebar and compass
cf.plot_cutout(object_id, fov=3.2, ax=axes[0])
axes[0].set_title("default: boxes, all shutters", fontsize=10)

# 2. JADES-style L-shaped corners; partial overrides are merged with the defaults
cf.plot_cutout(object_id, fov=3.2, ax=axes[1], shutter_style={
    "target": {"marker": "corners", "edgecolor": "cyan"},
    "other": {"marker": "corners", "edgecolor": "white", "linewidth": 0.5},
})
axes[1].set_title("corners (JADES style)", fontsize=10)

# 3. the cached files, drawn by hand: target shutters only, dashed, a 0.5" scalebar
path = cf.get_cutout(object_id, fov=3.2)      # cached PNG path
data = cf.get_shutters(object_id, fov=3.2)    # cached JSON dict
plot_cutout(path, shutters=data, object_id=object_id, fov=3.2, ax=axes[2], which="target",
            shutter_style={"target": {"edgecolor": "#ff9f0a", "linestyle": "--", "linewidth": 1.2}},
            scalebar=0.5, compass=False, title="target only, dashed, 0.5\" scalebar")

# %%
# What ``get_shutters`` returns: the geometry of every shutter in the field of view,
# in arcsec offsets from the object (east and north), with its category and
# observation:

print({k: v for k, v in data.items() if k != "shutters"})
print(len(data["shutters"]), "shutters; the first:", data["shutters"][0])

# %%
# Cutouts and shutter geometry are cached under ``<data_dir>/cache/`` after the first
# call, so redrawing costs nothing. For a paper figure, save as PDF: the image is
# embedded at its native resolution and the shutters stay vectors.

out = tempfile.mkdtemp()
fig.savefig(f"{out}/cutouts.pdf")
print("written", f"{out}/cutouts.pdf")

# sphinx_gallery_thumbnail_number = 1
