"""
3. Calibrate and stack one object
=================================

MSA spectra lose flux outside the shutter, and the loss depends on wavelength (the
PSF grows to the red) and on where the source sat in the shutter. Broadband
photometry of the same object measures the total flux, so a smooth multiplier that
makes the spectrum's synthetic photometry match the photometry corrects both. Two
spectra of one object, taken by two programs with different slit losses, agree only
after that correction — then they can be stacked.

This recipe calibrates each PRISM spectrum of a little red dot observed twice, looks
at the fit, stacks the calibrated spectra, and — because this is the demo archive,
which stores the truth it was simulated from — compares the result with the true SED.
"""

import matplotlib.pyplot as plt
import numpy as np

import campfire.demo
from campfire import Campfire, calibrate_and_stack, calibrate_to_photometry, synthetic_photometry

root = campfire.demo.ensure()
cf = Campfire(data_dir=root)
obj = cf.get_object("kindle_cosmos_p1_2395")
print(obj)
prism = obj.spectra[obj.spectra.grating == "PRISM"]
prism.to_table()["spectrum_id", "program", "signal_to_noise", "exposure_time", "dq_flags"]

# %%
# The photometry the spectra are calibrated against (μJy, pivot wavelengths in μm):

obj.photometry.to_table()

# %%
# One spectrum
# ------------
#
# ``calibrate_to_photometry`` picks the bands the spectrum fully covers with enough
# S/N, fits a Chebyshev multiplier to the observed/synthetic ratios (keeping only the
# terms the data support), and returns the calibrated spectrum with the fit's
# diagnostics:

result = calibrate_to_photometry(prism[0], obj.photometry, method="chebyshev", degree=3)
print(result)
print("bands used:", result.bands_used)
print("not used:", result.rejected)

# %%
# ``result.plot()`` shows the spectrum before and after, the photometry, and the
# multiplier:

result.plot()

# %%
# The synthetic photometry of the calibrated spectrum now matches the observed bands
# (``synthetic_photometry`` integrates f_ν over a band's transmission curve, photon-
# counting, and propagates the error):

for band in result.bands_used:
    observed = obj.photometry[band]
    before, _ = synthetic_photometry(result.original.wavelength, result.original.fnu, result.original.fnu_err, band)
    after, after_err = synthetic_photometry(result.spectrum.wavelength, result.spectrum.fnu,
                                            result.spectrum.fnu_err, band)
    print(f"{band:6s} observed {observed.flux:6.3f} ± {observed.flux_err:.3f} μJy   "
          f"spectrum before {before:6.3f}   after {after:6.3f} ± {after_err:.3f}")

# %%
# Both spectra, calibrated and stacked
# ------------------------------------
#
# ``calibrate_and_stack`` does the same for every input, resamples the calibrated
# spectra onto one grid (flux-conserving, errors propagated) and combines them —
# here with inverse-variance weights:

stacked = calibrate_and_stack(
    prism,
    photometry=obj.photometry,
    method="chebyshev",
    stacking_method="weighted_mean",
    object_id=obj.object_id,
)
print(stacked)
for cal in stacked.calibrations:
    print(f"  {cal.original.spectrum_id}: multiplier {np.nanmin(cal.multiplier):.2f}–{np.nanmax(cal.multiplier):.2f}, "
          f"bands {cal.bands_used}")

# %%
# The three panels: the inputs with the photometry, each input's multiplier, and the
# calibrated inputs with their stack.

stacked.plot()

# %%
# Against the truth
# -----------------
#
# The demo archive keeps the SED each spectrum was simulated from
# (:mod:`campfire.demo.truth`; a real archive has no such thing). Resampled onto the
# stack's pixels, it should agree with the calibrated stack in the continuum, while
# the raw spectra sit below it by their slit losses. (The true SED has no line
# spread, so its lines are narrower and taller: the plot is clipped to the continuum.)

from campfire import resample_flux
from campfire.demo import truth

sed = truth.true_sed(root, obj.object_id)
stack = stacked.spectrum
true_on_grid = resample_flux(stack.wavelength, sed["wave"], sed["fnu"])

fig, ax = plt.subplots(figsize=(9, 4.2), layout="constrained")
for cal in stacked.calibrations:
    ax.step(cal.original.wavelength, cal.original.fnu, where="mid", lw=0.6, alpha=0.7,
            label=f"{cal.original.spectrum_id} (raw)")
ax.fill_between(stack.wavelength, stack.fnu - stack.fnu_err, stack.fnu + stack.fnu_err, step="mid",
                color="k", alpha=0.25, lw=0)
ax.step(stack.wavelength, stack.fnu, where="mid", color="k", lw=0.9, label="calibrated stack")
ax.step(stack.wavelength, true_on_grid, where="mid", color="C3", lw=1, label="true SED")
ax.errorbar(obj.photometry.wavelength, obj.photometry.flux, yerr=obj.photometry.flux_err, fmt="o", color="C2",
            label="photometry")
ax.set(xlim=(0.6, 5.3), ylim=(-0.05, 1.5), xlabel="observed wavelength [μm]", ylabel=r"$f_\nu$ [μJy]",
       title=f"{obj.object_id} (z = {obj.redshift:.3f})")
ax.legend(fontsize=8, loc="upper left")

# %%
# In numbers: the median ratio to the true SED, per spectrum before calibration and
# for the calibrated stack.

good = np.isfinite(stack.fnu) & (true_on_grid > 0)
for cal in stacked.calibrations:
    raw = resample_flux(stack.wavelength, cal.original.wavelength, cal.original.fnu)
    print(f"raw {cal.original.spectrum_id:40s} / truth: {np.nanmedian(raw[good] / true_on_grid[good]):.3f}")
print(f"{'calibrated stack':44s} / truth: {np.nanmedian(stack.fnu[good] / true_on_grid[good]):.3f}")

# sphinx_gallery_thumbnail_number = 2
