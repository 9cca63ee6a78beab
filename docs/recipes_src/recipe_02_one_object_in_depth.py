"""
2. One object in depth: 2D spectrum, profile and redshift fit
=============================================================

Before trusting a redshift, look at the data behind it. For the reference's example
object this recipe compares the automated and inspected redshifts, draws the 2D S/N
map with the extraction profile, and plots the redshift fit's χ² curve and best model
over the spectrum with the lines it rests on.
"""

import matplotlib.pyplot as plt
import numpy as np

import campfire.demo
from campfire import Campfire, get_emission_lines

cf = Campfire(data_dir=campfire.demo.ensure())
obj = cf.get_object("ember_uds_p4_123456")
print(obj)
print(f"redshift: inspected {obj.redshift_inspected:.4f} (quality {obj.redshift_quality}), "
      f"automated {obj.redshift_auto:.4f}, photometric {obj.photo_z:.2f} "
      f"(-{obj.photo_z_err_lo:.2f} +{obj.photo_z_err_hi:.2f})")

# %%
# Every spectrum carries its own automated redshift and S/N:

obj.spectra.to_table()["spectrum_id", "grating", "filter", "signal_to_noise", "exposure_time", "redshift_auto"]

# %%
# The 2D spectrum
# ---------------
#
# ``get_spectrum_data`` returns the arrays behind the portal's spectrum view: the 1D
# spectrum, the 2D S/N map (SCI·√WHT, spatial × wavelength) and the cross-dispersion
# profile with its fit.

sid = "ember_uds_p4_prism_clear_123456"
data = cf.get_spectrum_data(sid)
print(sorted(data))

fig = plt.figure(figsize=(10, 5), layout="constrained")
grid = fig.add_gridspec(2, 2, width_ratios=(6, 1), height_ratios=(1, 2))
ax2d = fig.add_subplot(grid[0, 0])
ax1d = fig.add_subplot(grid[1, 0], sharex=ax2d)
axprof = fig.add_subplot(grid[0, 1])

wave = data["wave"]
extent = (wave[0], wave[-1], -0.5, data["n_spatial"] - 0.5)
ax2d.imshow(data["snr_2d"], aspect="auto", origin="lower", extent=extent, cmap="gray_r", vmin=-3,
            vmax=np.nanpercentile(data["snr_2d"], 99), interpolation="nearest")
ax2d.set(ylabel="pixel", title=f"{sid}: S/N per pixel")
ax1d.step(wave, data["fnu"], where="mid", lw=0.8, color="0.2")
ax1d.fill_between(wave, data["fnu"] - data["fnu_err"], data["fnu"] + data["fnu_err"], step="mid", alpha=0.3)
ax1d.set(xlabel="observed wavelength [μm]", ylabel=r"$f_\nu$ [μJy]")
axprof.plot(data["profile"], data["profile_pix"], "o", ms=3, label="data")
axprof.plot(data["profile_fit"], data["profile_pix"], "-", label="fit")
axprof.set(xlabel="profile", title="extraction", yticks=[])
axprof.legend(fontsize=8)

# %%
# The redshift fit
# ----------------
#
# ``get_redshift_fit_data`` holds the fit the automated redshift came from: χ² over a
# redshift grid, and the best-fitting model on the spectrum's wavelengths.

fit = cf.get_redshift_fit_data(sid)
print(f"z = {fit['redshift']:.4f}, χ²_min = {fit['chi2_min']:.1f}, confidence = {fit['confidence']:.2f}")

lines = get_emission_lines(redshift=fit["redshift"], wave_min=wave.min(), wave_max=wave.max())
strong = lines[np.isin(lines["name"], ["[OII]-3727", "Hbeta", "[OIII]-5008", "Halpha", "[SIII]-9533", "HeI-10833"])]
strong["name", "rest_wavelength", "observed_wavelength"]

# %%

fig = plt.figure(figsize=(10, 6.5), layout="constrained")
top, bottom = fig.subfigures(2, 1, height_ratios=(1, 1.5))
axc, axz = top.subplots(1, 2, width_ratios=(2, 1))
axm = bottom.subplots()
dchi2 = fit["chi2_grid"] - np.min(fit["chi2_grid"])
for ax in (axc, axz):
    ax.semilogy(fit["z_grid"], dchi2 + 1, lw=1)
    ax.axvline(fit["redshift"], color="C3", ls="--", label=f"best z = {fit['redshift']:.4f}")
    ax.axvline(obj.redshift_inspected, color="C2", ls=":", label=f"inspected z = {obj.redshift_inspected:.4f}")
    ax.set(xlabel="redshift")
axc.set(ylabel=r"$\Delta\chi^2 + 1$", title="the whole grid")
axz.set(xlim=(fit["redshift"] - 0.05, fit["redshift"] + 0.05), title="around the minimum")
axc.legend(loc="lower right", fontsize=8)
axm.step(wave, data["fnu"], where="mid", lw=0.8, color="0.3", label="spectrum")
axm.plot(fit["model_wave"], fit["model_fnu"], color="C3", lw=1, label="best model")
for line in strong:
    axm.axvline(line["observed_wavelength"], color="C0", lw=0.6, alpha=0.6)
    axm.annotate(line["name"], (line["observed_wavelength"], 1.0), xycoords=("data", "axes fraction"),
                 rotation=90, va="top", ha="right", fontsize=8, color="C0")
axm.set(xlabel="observed wavelength [μm]", ylabel=r"$f_\nu$ [μJy]")
axm.legend(loc="upper left")

# sphinx_gallery_thumbnail_number = 1
