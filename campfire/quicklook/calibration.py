"""Diagnostic figures of calibrations: ``CalibrationResult.plot()`` and ``calibrate_and_stack(...).plot()``.

* :func:`plot_calibration` — the spectrum before/after, the observed photometry with
  errors, the synthetic photometry of both, the multiplier with the band ratios;
* :func:`plot_calibrate_and_stack` — three panels: inputs, multipliers, calibrated
  inputs with the stack.

The figures read the result's attributes (duck typing) and compute the synthetic
points with :mod:`campfire.bands.synphot`; matplotlib is imported inside the functions.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from campfire.errors import ValidationError
from campfire.lines import normalize_flux_unit
from campfire.quicklook.spectrum import WAVE_LABEL, axes_or_gca, plot_spectrum_data

__all__ = ["plot_calibration", "plot_calibrate_and_stack"]


def _photometry_of(result):
    """The Photometry a result was calibrated against (attribute names vary by result type)."""
    for name in ("photometry", "phot"):
        phot = getattr(result, name, None)
        if phot is not None:
            return phot
    return None


def _synthetic(spec, bands: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """{band: (flux, err, pivot)} of the bands the spectrum covers (others are skipped)."""
    from campfire.bands import band_pivot
    from campfire.bands.synphot import synthetic_photometry

    out = {}
    for band in bands:
        try:
            flux, err = synthetic_photometry(spec.wavelength, spec.fnu, spec.fnu_err, band)
        except ValidationError:
            continue
        out[band] = (flux, err, band_pivot(band))
    return out


def _plot_photometry(ax, phot, bands_used: Sequence[str] | None, exponent_unit=("fnu", 0)) -> None:
    if phot is None or len(phot) == 0:
        return
    used = set(bands_used or phot.bands)
    wave = np.asarray(phot.wavelength, float)
    flux = np.asarray(phot.flux, float)
    err = np.asarray(phot.flux_err, float)
    sel = np.array([b in used for b in phot.bands])
    if sel.any():
        # observed points on top: the synthetic ones are drawn open and larger around them
        ax.errorbar(wave[sel], flux[sel], yerr=err[sel], fmt="o", color="k", ms=4, capsize=2, zorder=7,
                    label="photometry (fit)", gid="photometry")
    if (~sel).any():
        ax.errorbar(wave[~sel], flux[~sel], yerr=err[~sel], fmt="o", mfc="none", color="0.4", ms=4, capsize=2,
                    zorder=7, label="photometry (not used)", gid="photometry-unused")


def _include_points(ax, phot) -> None:
    """Widen the y range so that every photometric point and its error bar is in view."""
    if phot is None or len(phot) == 0:
        return
    flux = np.asarray(phot.flux, float)
    err = np.nan_to_num(np.asarray(phot.flux_err, float))
    ok = np.isfinite(flux)
    if not ok.any():
        return
    lo, hi = ax.get_ylim()
    top = float(np.max(flux[ok] + err[ok]))
    bottom = float(np.min(flux[ok] - err[ok]))
    span = max(hi, top) - min(lo, bottom)
    ax.set_ylim(min(lo, bottom - 0.05 * span), max(hi, top + 0.1 * span))


def _plot_synthetic(ax, synth: dict, color: str, label: str, marker: str = "s", filled: bool = True) -> None:
    if not synth:
        return
    waves = [v[2] for v in synth.values()]
    fluxes = [v[0] for v in synth.values()]
    errs = [v[1] for v in synth.values()]
    ax.errorbar(waves, fluxes, yerr=errs, fmt=marker, ms=8, color=color, mfc=color if filled else "none",
                mew=1.3, capsize=0, zorder=6, label=label, gid="synthetic-photometry")


def _band_ratios(result, phot, synth_orig: dict, bands_used) -> list[tuple[float, float, float]]:
    """(pivot, observed/synthetic, error) of the fitted bands: the result's own when it has them."""
    from campfire.bands import band_pivot

    own = getattr(result, "ratios", None)
    if isinstance(own, dict) and own:
        out = []
        for band, value in own.items():
            ratio, err = (value if isinstance(value, (tuple, list)) else (value, 0.0))[:2]
            out.append((band_pivot(band), float(ratio), float(err)))
        return sorted(out)
    if phot is None:
        return []
    return sorted((p, phot[b].flux / s, 0.0) for b, (s, _, p) in synth_orig.items() if b in bands_used and s != 0)


def plot_calibration(result, ax=None, *, flux_unit: str = "fnu", redshift: float | None = None, **kwargs: Any):
    """Diagnostic figure of a ``CalibrationResult``.

    Top: the spectrum before (grey) and after calibration with its error band, the
    observed photometry with errors (filled: bands used in the fit) and the synthetic
    photometry of both spectra. Bottom: the multiplier against wavelength with the
    observed/synthetic band ratios it was fitted to.

    Parameters
    ----------
    result : CalibrationResult
        Needs ``spectrum``, ``original``, ``multiplier``, ``bands_used`` and the
        photometry (``photometry`` attribute) for the points.
    ax : matplotlib.axes.Axes, optional
        Draw into one axes (multiplier on a twin y-axis) instead of a new 2-panel figure.
    flux_unit : {'fnu'}
        Photometry is in f_ν, so the diagnostic is too.
    redshift : float, optional
        Mark emission lines.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> result = calibrate_to_photometry(spec, obj.photometry)  # doctest: +SKIP
    >>> fig = result.plot()  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    if normalize_flux_unit(flux_unit, "flux_unit") != "fnu":
        raise ValidationError("flux_unit: the calibration diagnostic is drawn in 'fnu' (the unit of the photometry)")
    for name in ("spectrum", "original", "multiplier"):
        if not hasattr(result, name):
            raise ValidationError(f"result: expected a CalibrationResult (with .{name}), got {type(result).__name__}")
    if ax is None:
        fig, (ax_spec, ax_mult) = plt.subplots(2, 1, figsize=kwargs.pop("figsize", (8, 6)), sharex=True,
                                               gridspec_kw={"height_ratios": [3, 1.2], "hspace": 0.05})
    else:
        ax_spec = axes_or_gca(ax)
        fig = ax_spec.figure
        ax_mult = ax_spec.twinx()
    phot = _photometry_of(result)
    bands_used = list(getattr(result, "bands_used", None) or [])
    orig, cal = result.original, result.spectrum
    plot_spectrum_data(orig, ax=ax_spec, color="0.55", label="original", errors=False, title=False, linewidth=0.7)
    plot_spectrum_data(cal, ax=ax_spec, color="C0", label="calibrated", title=False, redshift=redshift)
    _plot_photometry(ax_spec, phot, bands_used)
    bands = list(phot.bands) if phot is not None else bands_used
    synth_orig = _synthetic(orig, bands)
    synth_cal = _synthetic(cal, bands)
    _plot_synthetic(ax_spec, synth_orig, "0.45", "synthetic (original)", marker="s", filled=False)
    _plot_synthetic(ax_spec, synth_cal, "C3", "synthetic (calibrated)", marker="D", filled=False)
    _include_points(ax_spec, phot)
    ax_spec.legend(fontsize=7, loc="best", ncol=2, framealpha=0.85)
    title = getattr(cal, "spectrum_id", "") or getattr(orig, "spectrum_id", "")
    method = getattr(result, "method", None)
    ax_spec.set_title(f"{title}  calibration" + (f" ({method})" if method else ""), fontsize=9)

    wave = np.asarray(cal.wavelength, float)
    mult = np.asarray(result.multiplier, float)
    ax_mult.plot(wave, mult, color="C2", linewidth=1.2, gid="multiplier", label="multiplier")
    ratios = _band_ratios(result, phot, synth_orig, bands_used)
    if ratios:
        ax_mult.errorbar([r[0] for r in ratios], [r[1] for r in ratios], yerr=[r[2] for r in ratios], fmt="o",
                         color="C2", mfc="none", ms=5, capsize=2, gid="band-ratio", label="observed / synthetic")
    ax_mult.set_ylabel("multiplier")
    if ax is None:
        ax_mult.axhline(1.0, color="0.6", linewidth=0.5)
        ax_mult.set_xlabel(WAVE_LABEL)
        ax_spec.set_xlabel("")
        finite = mult[np.isfinite(mult)]
        if finite.size:
            lo, hi = finite.min(), finite.max()
            pad = 0.1 * (hi - lo or abs(hi) or 1.0)
            ax_mult.set_ylim(min(lo, 1.0) - pad, max(hi, 1.0) + pad)
    return fig


def _shade_outside_grid(axes, stack) -> None:
    """Hatch, in every panel, the ranges the inputs cover but the stack's grid leaves out."""
    lost = (getattr(stack, "meta", None) or {}).get("outside_grid") or []
    for i, (lo, hi) in enumerate(lost):
        for ax in axes:
            ax.axvspan(lo, hi, facecolor="0.92", edgecolor="0.6", hatch="//", linewidth=0, zorder=0,
                       gid="outside-grid", label="not in the stack's grid (wavelength_grid='union' keeps it)"
                       if i == 0 and ax is axes[-1] else "_nolegend_")


def plot_calibrate_and_stack(result, *, redshift: float | None = None, **kwargs: Any):
    """The 3-panel diagnostic of ``calibrate_and_stack(...)``.

    1. the input spectra as observed, with the photometry;
    2. each input's calibration multiplier, with its observed/synthetic band ratios;
    3. the calibrated inputs (thin) and the final stack with its error band, the
       photometry and the stack's synthetic photometry.

    Ranges the inputs cover but the stack's grid leaves out (``meta['outside_grid']``:
    the default grid of a stack over several gratings) are hatched in every panel.

    Parameters
    ----------
    result : CalibrateAndStackResult
        Needs ``spectrum``, ``calibrations`` (list of CalibrationResult) and
        ``input_spectra``.
    redshift : float, optional
        Mark emission lines in the bottom panel.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> result = calibrate_and_stack(obj.spectra[obj.spectra.grating == 'PRISM'],  # doctest: +SKIP
    ...                              photometry=obj.photometry, object_id=obj.object_id)
    >>> fig = result.plot()  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    for name in ("spectrum", "calibrations", "input_spectra"):
        if not hasattr(result, name):
            raise ValidationError(
                f"result: expected a calibrate_and_stack result (with .{name}), got {type(result).__name__}"
            )
    fig, axes = plt.subplots(3, 1, figsize=kwargs.pop("figsize", (8, 9)), sharex=True,
                             gridspec_kw={"height_ratios": [2, 1.2, 2], "hspace": 0.22})
    ax_in, ax_mult, ax_out = axes
    calibrations = list(result.calibrations)
    phot = _photometry_of(result) or next((p for p in map(_photometry_of, calibrations) if p is not None), None)
    bands_used = sorted({b for c in calibrations for b in (getattr(c, "bands_used", None) or [])})
    colors = [f"C{i % 10}" for i in range(len(calibrations) or len(result.input_spectra))]

    originals = [c.original for c in calibrations] if calibrations else list(result.input_spectra)
    for spec, color in zip(originals, colors):
        plot_spectrum_data(spec, ax=ax_in, color=color, errors=False, title=False, linewidth=0.7,
                           label=spec.spectrum_id or None)
    _plot_photometry(ax_in, phot, bands_used)
    _include_points(ax_in, phot)
    ax_in.legend(fontsize=6, loc="best", framealpha=0.85)
    ax_in.set_title("inputs (as observed) and photometry", fontsize=9, loc="left")

    for i, (cal, color) in enumerate(zip(calibrations, colors)):
        wave = np.asarray(cal.spectrum.wavelength, float)
        ax_mult.plot(wave, np.asarray(cal.multiplier, float), color=color, linewidth=1.0, gid=f"multiplier:{i}")
    ax_mult.axhline(1.0, color="0.6", linewidth=0.5)
    ax_mult.set_ylabel("multiplier")
    ax_mult.set_title("calibration multipliers", fontsize=9, loc="left")

    for spec, color in zip(result.input_spectra, colors):
        plot_spectrum_data(spec, ax=ax_out, color=color, errors=False, title=False, linewidth=0.5, alpha=0.6,
                           label="_nolegend_")
    stack = result.spectrum
    plot_spectrum_data(stack, ax=ax_out, color="k", title=False, linewidth=1.2, label="stack",
                       redshift=redshift)
    _plot_photometry(ax_out, phot, bands_used)
    if phot is not None:
        _plot_synthetic(ax_out, _synthetic(stack, list(phot.bands)), "C3", "synthetic (stack)", marker="D",
                        filled=False)
    _include_points(ax_out, phot)
    _shade_outside_grid(axes, stack)
    ax_out.legend(fontsize=7, loc="best", framealpha=0.85)
    n = len(result.input_spectra)
    ax_out.set_title(f"calibrated inputs and stack ({n} spectr{'um' if n == 1 else 'a'})", fontsize=9, loc="left")
    for ax in axes[:-1]:
        ax.set_xlabel("")
    ax_out.set_xlabel(WAVE_LABEL)
    name = getattr(stack, "object_id", None) or getattr(stack, "spectrum_id", "")
    if name:
        fig.suptitle(f"{name}: calibrate and stack", fontsize=10)
    return fig
