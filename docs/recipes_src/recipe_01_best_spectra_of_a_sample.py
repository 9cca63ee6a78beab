"""
1. The best spectrum of each object in a sample
===============================================

A science selection starts from objects (inspected redshift, quality, tags) and ends
at files (one spectrum per object, the cleanest). This recipe selects the quiescent
galaxies with a secure or probable redshift, keeps the PRISM spectra without
contamination, picks the highest-S/N spectrum of each object, and draws them side by
side with the Balmer/4000 Å break region marked.
"""

import matplotlib.pyplot as plt
import numpy as np

import campfire.demo
from campfire import Campfire
from campfire.flags import DQFlags

cf = Campfire(data_dir=campfire.demo.ensure())

# %%
# The objects: one row per sky position. ``tags`` and ``redshift_quality`` are
# inspection results, so this is an object query.

sample = cf.query_objects(tags=["qg"], redshift_quality=["probable", "secure"], sort="redshift")
print(len(sample), "quiescent galaxies")
sample["object_id", "field", "redshift", "redshift_quality", "n_spectra", "max_snr"][:6]

# %%
# Their spectra: ``query_spectra`` takes the same filters — the inspection filters
# join through each spectrum's parent object — plus the per-spectrum ones (grating,
# DQ flags). Sorted by S/N, the first row of each object is its best spectrum, which
# is what :func:`astropy.table.unique` keeps:

from astropy.table import unique

spectra = cf.query_spectra(
    tags=["qg"],
    redshift_quality=["probable", "secure"],
    gratings=["PRISM"],
    dq_flags=~DQFlags.CONTAMINATION,
    sort="signal_to_noise",
    sort_dir="desc",
)
best = unique(spectra, keys="object_id", keep="first")
print(len(spectra), "clean PRISM spectra of", len(best), "objects")
best["object_id", "spectrum_id", "signal_to_noise", "dq_flags"][:6]

# %%
# ``dq_flags`` is a bitmask; ``decode_flags`` names the bits that remain (the filter
# above only excluded contamination):

from campfire import decode_flags

for row in best[:6]:
    print(f"{row['spectrum_id']:34s} {decode_flags(int(row['dq_flags']), 'dq_flags')}")

# %%
# Open the six best and draw them in the rest frame, normalised at 0.42–0.48 μm.
# The redshift comes from the object table.

redshift = dict(zip(sample["object_id"], sample["redshift"]))
top = best[np.argsort(best["signal_to_noise"])[::-1][:6]]

fig, axes = plt.subplots(3, 2, figsize=(10, 7), sharex=True, layout="constrained")
for ax, row in zip(axes.flat, top):
    spec = cf.open_spectrum(row["spectrum_id"])
    z = redshift[row["object_id"]]
    rest = spec.wavelength / (1 + z)
    norm = np.nanmedian(spec.fnu[(rest > 0.42) & (rest < 0.48)])
    ax.step(rest, spec.fnu / norm, where="mid", lw=0.8, color="0.2")
    ax.axvspan(0.3646, 0.4000, color="C0", alpha=0.15)  # Balmer limit to 4000 Å
    ax.set_title(f"{row['object_id']}  z = {z:.3f}  S/N = {row['signal_to_noise']:.0f}", fontsize=9)
    ax.set_ylim(-0.2, 2.5)
for ax in axes[-1]:
    ax.set_xlabel("rest-frame wavelength [μm]")
for ax in axes[:, 0]:
    ax.set_ylabel(r"$f_\nu$ / median(0.42–0.48 μm)")
axes[0, 0].set_xlim(0.25, 0.9)
fig.suptitle("Best PRISM spectrum of each quiescent galaxy (shaded: 3646–4000 Å)")

# %%
# For a large selection, stream the rows instead of holding them: ``iter_spectra``
# takes the same filters and yields one dict per row (it pages through the API when
# the client talks to a server). Here: the total exposure time of the selection.

total = sum(row["exposure_time"] for row in cf.iter_spectra(tags=["qg"], gratings=["PRISM"]))
print(f"{total / 3600:.1f} h of PRISM exposure on quiescent galaxies")
