"""Quick-look matplotlib figures of spectra, calibrations and stacks.

The ``.plot()`` methods of the model and result objects delegate here:

* :meth:`SpectrumData.plot <campfire.models.SpectrumData.plot>` and ``Spectrum.plot()``
  → :func:`plot_spectrum_data` (step spectrum, 1σ error band, emission-line markers
  at ``(1 + z) λ_rest``, axis labels with units);
* ``CalibrationResult.plot()`` → :func:`plot_calibration` (spectrum before/after,
  observed photometry with errors, synthetic photometry, the multiplier);
* ``calibrate_and_stack(...).plot()`` → :func:`plot_calibrate_and_stack` (3 panels).

matplotlib is imported inside the functions so ``import campfire`` stays light.

Examples
--------
>>> import numpy as np
>>> import matplotlib
>>> matplotlib.use('Agg')
>>> from campfire import SpectrumData
>>> w = np.linspace(1, 5, 400)
>>> spec = SpectrumData(w, 1 + 0.1 * w, np.full(w.size, 0.05), spectrum_id='demo', grating='PRISM')
>>> ax = plot_spectrum_data(spec, flux_unit='flam', redshift=3.0)
>>> ax.get_xlabel()
'Observed wavelength [μm]'
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Sequence

import numpy as np

from campfire.errors import ValidationError
from campfire.lines import check_redshift, get_emission_lines, normalize_flux_unit

__all__ = [
    "plot_spectrum_data",
    "plot_calibration",
    "plot_calibrate_and_stack",
    "mark_emission_lines",
    "flux_label",
    "wavelength_label",
    "pretty_line_name",
    "label_indices",
]

WAVE_LABEL = "Observed wavelength [μm]"
REST_WAVE_LABEL = "Rest-frame wavelength [μm]"

# which line names a crowded group of markers: the strong lines first
_LABEL_PRIORITY = {
    name: i
    for i, name in enumerate(
        ["Halpha", "[OIII]-5008", "Hbeta", "Lyalpha", "[OII]-3727", "Paalpha", "Pabeta", "HeI-10833",
         "[SIII]-9533", "[NeIII]", "MgII-2796", "CIII]", "CIV", "HeII", "Hgamma", "Hdelta", "[NII]-6585",
         "[SII]-6718", "HeI-5877", "[OI]", "Pagamma", "[SIII]-9071"]
    )
}

_GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ"}


def pretty_line_name(name: str) -> str:
    """A printable label for an :data:`~campfire.lines.EMISSION_LINES` key.

    Examples
    --------
    >>> pretty_line_name('Halpha'), pretty_line_name('[OIII]-5008'), pretty_line_name('Lyalpha')
    ('Hα', '[OIII]', 'Lyα')
    """
    base = re.sub(r"-\d+$", "", name)
    for word, letter in _GREEK.items():
        if base.endswith(word):
            return base[: -len(word)] + letter
    return base


def label_indices(names: Sequence[str], waves: Sequence[float], min_gap: float) -> list[int]:
    """Which line markers get a name: strong lines first, none closer than ``min_gap``.

    Examples
    --------
    >>> label_indices(['[NII]-6550', 'Halpha', '[NII]-6585'], [2.8954, 2.9018, 2.9110], 0.05)
    [1]
    """
    labelled: list[int] = []
    order = sorted(range(len(names)), key=lambda i: _LABEL_PRIORITY.get(names[i], len(_LABEL_PRIORITY)))
    for i in order:
        if all(abs(waves[i] - waves[j]) >= min_gap for j in labelled):
            labelled.append(i)
    return sorted(labelled)


def _power_of_ten(values: np.ndarray) -> int:
    """The exponent that brings typical |values| to order unity (0 if none are finite)."""
    finite = np.abs(values[np.isfinite(values) & (values != 0)])
    if finite.size == 0:
        return 0
    return int(math.floor(math.log10(np.nanpercentile(finite, 90))))


def flux_label(flux_unit: str, exponent: int = 0) -> str:
    """Y-axis label with units for ``'fnu'`` (μJy) or ``'flam'`` (erg s⁻¹ cm⁻² Å⁻¹).

    Examples
    --------
    >>> flux_label('fnu')
    '$f_\\\\nu$ [μJy]'
    >>> flux_label('flam', -20)
    '$f_\\\\lambda$ [$10^{-20}$ erg s$^{-1}$ cm$^{-2}$ Å$^{-1}$]'
    """
    unit = normalize_flux_unit(flux_unit, "flux_unit")
    if unit == "fnu":
        scale = "" if exponent == 0 else f"$10^{{{exponent}}}$ "
        return rf"$f_\nu$ [{scale}μJy]"
    scale = "" if exponent == 0 else f"$10^{{{exponent}}}$ "
    return rf"$f_\lambda$ [{scale}erg s$^{{-1}}$ cm$^{{-2}}$ Å$^{{-1}}$]"


def wavelength_label(spec) -> str:
    """The wavelength axis label of ``spec``: rest-frame for a rest-frame spectrum or stack.

    Examples
    --------
    >>> import numpy as np
    >>> from campfire import SpectrumData
    >>> w = np.linspace(0.2, 0.8, 10)
    >>> wavelength_label(SpectrumData(w, np.ones(10), np.ones(10), meta={'rest_frame': True}))
    'Rest-frame wavelength [μm]'
    """
    return REST_WAVE_LABEL if is_rest_frame(spec) else WAVE_LABEL


def is_rest_frame(spec) -> bool:
    """True for a rest-frame SpectrumData (``.rest_frame``) or data dict (``'rest_frame'`` key)."""
    if isinstance(spec, Mapping):
        return bool(spec.get("rest_frame"))
    return bool(getattr(spec, "rest_frame", False))


def _flux_arrays(spec, unit: str) -> tuple[np.ndarray, np.ndarray]:
    if unit == "fnu":
        return np.asarray(spec.fnu, float), np.asarray(spec.fnu_err, float)
    return np.asarray(spec.flam, float), np.asarray(spec.flam_err, float)


def _get_ax(ax):
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    if ax is None:
        return plt.gca()
    if not isinstance(ax, Axes):
        raise ValidationError(f"ax: expected a matplotlib Axes or None, got {type(ax).__name__}")
    return ax


def _trusted(flux: np.ndarray, err: np.ndarray) -> np.ndarray:
    """Flux with the noisiest pixels (error > 5 × the median error) set to NaN, for axis limits only.

    A noisy detector edge (PRISM's blue end in f_λ) must not set the scale of the whole spectrum.
    """
    err = np.asarray(err, float)
    finite = err[np.isfinite(err) & (err > 0)]
    if finite.size == 0:
        return flux
    keep = np.isfinite(err) & (err <= 5 * np.median(finite))
    return np.where(keep, flux, np.nan) if keep.sum() >= 3 else flux


def _robust_ylim(ax, values: np.ndarray, had_data: bool) -> None:
    """Limits that ignore single hot pixels, so one outlier does not flatten the spectrum."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return
    lo = np.percentile(finite, 1.0)
    if finite.size >= 3:
        # a 3-pixel running median drops single hot pixels but keeps resolved emission lines
        from numpy.lib.stride_tricks import sliding_window_view

        hi = float(np.max(np.median(sliding_window_view(finite, 3), axis=1)))
    else:
        hi = float(finite.max())
    lo = min(lo, 0.0)
    span = (hi - lo) or abs(hi) or 1.0
    # the top margin leaves room for emission-line labels
    new = (lo - 0.05 * span, hi + 0.2 * span)
    if had_data:
        old = ax.get_ylim()
        new = (min(old[0], new[0]), max(old[1], new[1]))
    ax.set_ylim(*new)


def mark_emission_lines(
    ax,
    redshift: float,
    wave_min: float | None = None,
    wave_max: float | None = None,
    *,
    labels: bool = True,
    color: str = "0.35",
    **kwargs: Any,
) -> list:
    """Draw dashed vertical markers at ``(1 + z) λ_rest`` for lines inside the x range.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Axes with wavelength in μm on x.
    redshift : float
        Redshift of the source.
    wave_min, wave_max : float, optional
        Range in μm; defaults to the current x limits.
    labels : bool
        Write the line names along the top (crowded neighbours share one label).

    Returns
    -------
    list of matplotlib.lines.Line2D
        One marker per line; each has ``gid='emission-line:<name>'``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use('Agg')
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(); _ = ax.set_xlim(1, 5)
    >>> [round(float(m.get_xdata()[0]), 4) for m in mark_emission_lines(ax, 3.0)][:2]
    [1.1185, 1.1214]
    """
    import matplotlib.transforms as mtransforms

    z = check_redshift(redshift, optional=True)
    lo, hi = sorted(ax.get_xlim())
    wave_min = lo if wave_min is None else wave_min
    wave_max = hi if wave_max is None else wave_max
    table = get_emission_lines(redshift=z, wave_min=wave_min, wave_max=wave_max)
    style = {"linestyle": "--", "linewidth": 0.7, "alpha": 0.8, "zorder": 1}
    style.update(kwargs)
    markers = []
    trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    names = [str(n) for n in table["name"]]
    waves = np.asarray(table["observed_wavelength"], float)
    for name, obs in zip(names, waves):
        markers.append(ax.axvline(obs, color=color, gid=f"emission-line:{name}", **style))
    if labels and names:
        # neighbours closer than a label's height ([OIII] doublet, Hα+[NII]) share one label:
        # that of the line an astronomer looks for first
        width_px = max(ax.get_window_extent().width, 1.0)
        min_gap = 11 * ax.figure.dpi / 72 / width_px * (hi - lo)
        for best in label_indices(names, waves, min_gap):
            ax.text(waves[best], 0.98, pretty_line_name(names[best]), transform=trans, rotation=90, ha="right",
                    va="top", fontsize=7, color=color, gid=f"emission-line-label:{names[best]}", clip_on=True)
    return markers


def plot_spectrum_data(
    spec,
    flux_unit: str = "fnu",
    ax=None,
    redshift: float | None = None,
    *,
    errors: bool = True,
    show_lines: bool = True,
    label: str | None = None,
    color: str | None = None,
    title: str | bool | None = None,
    **kwargs: Any,
):
    """Quick-look plot of a :class:`~campfire.models.SpectrumData`.

    Parameters
    ----------
    spec : SpectrumData
        The spectrum (a stack with ``count`` works too).
    flux_unit : {'fnu', 'flam'}
        f_ν in μJy or f_λ in erg s⁻¹ cm⁻² Å⁻¹ (alias ``'flambda'``). f_λ is scaled by a
        power of ten that the axis label states.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into (``plt.gca()`` if None).
    redshift : float, optional
        Mark emission lines at ``(1 + z) λ_rest`` (when ``show_lines``).
    errors : bool
        Draw the 1σ error band.
    label, color : str, optional
        Legend label and colour of the spectrum.
    title : str or bool, optional
        Axes title; default ``'<spectrum_id> (<grating>)'``, ``False`` for none.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.step`.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> spec = cf.open_spectrum('ember_uds_p4_prism_clear_123456')  # doctest: +SKIP
    >>> ax = spec.plot(flux_unit='flam', redshift=3.421)  # doctest: +SKIP
    >>> ax.figure.savefig('spectrum.png')  # doctest: +SKIP
    """
    unit = normalize_flux_unit(flux_unit, "flux_unit")
    z = check_redshift(redshift, optional=True)
    for name in ("wavelength", "fnu", "fnu_err"):
        if not hasattr(spec, name):
            raise ValidationError(f"spec: expected a SpectrumData (with {name}), got {type(spec).__name__}")
    ax = _get_ax(ax)
    had_data = ax.has_data()
    wave = np.asarray(spec.wavelength, float)
    flux, err = _flux_arrays(spec, unit)
    exponent = _power_of_ten(flux) if unit == "flam" else 0
    if had_data and getattr(ax, "_campfire_flux", None) is not None:
        # a second spectrum on the same axes must use the first one's scale and unit
        prev_unit, exponent = ax._campfire_flux
        if prev_unit != unit:
            raise ValidationError(f"flux_unit: these axes already show {prev_unit!r}; got {unit!r}")
        if getattr(ax, "_campfire_wave", None) not in (None, wavelength_label(spec)):
            raise ValidationError(f"spec: these axes show {ax._campfire_wave!r}; "
                                  f"{spec.spectrum_id or 'this spectrum'} is not in that frame; "
                                  "plot it on new axes (plt.figure() first, or pass ax=)")
    scale = 10.0 ** -exponent
    flux, err = flux * scale, err * scale
    default_label = label if label is not None else (spec.spectrum_id or None)
    step_kw = {"where": "mid", "linewidth": 0.9}
    step_kw.update(kwargs)
    (line,) = ax.step(wave, flux, color=color, label=default_label, gid="spectrum", **step_kw)
    if errors:
        lo, hi = flux - err, flux + err
        ok = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(wave)
        ax.fill_between(wave, np.where(ok, lo, 0), np.where(ok, hi, 0), where=ok, step="mid",
                        color=line.get_color(), alpha=0.25, linewidth=0, gid="error-band")
    good = np.isfinite(flux) & np.isfinite(wave)
    if good.any():
        wlo, whi = wave[good].min(), wave[good].max()
        pad = 0.01 * (whi - wlo or 1.0)
        if had_data:
            xlo, xhi = ax.get_xlim()
            ax.set_xlim(min(xlo, wlo - pad), max(xhi, whi + pad))
        else:
            ax.set_xlim(wlo - pad, whi + pad)
    _robust_ylim(ax, _trusted(flux, err), had_data)
    ax.axhline(0.0, color="0.6", linewidth=0.5, zorder=0)
    ax.set_xlabel(wavelength_label(spec))
    ax.set_ylabel(flux_label(unit, exponent))
    ax._campfire_flux = (unit, exponent)
    ax._campfire_wave = wavelength_label(spec)
    if z is not None and show_lines:
        # a rest-frame spectrum has its lines at λ_rest whatever its redshift was
        mark_emission_lines(ax, 0.0 if is_rest_frame(spec) else z)
    if title is None:
        parts = [p for p in (spec.spectrum_id, f"({spec.grating})" if spec.grating else "") if p]
        if z is not None:
            parts.append(f"z = {z:.4f}")
        title = "  ".join(parts)
    if title and not had_data:
        ax.set_title(title, fontsize=9)
    return ax


# -- calibration figures ----------------------------------------------------------------
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
    from campfire.tasks.synphot import synthetic_photometry

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
        ax_spec = _get_ax(ax)
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


def plot_calibrate_and_stack(result, *, redshift: float | None = None, **kwargs: Any):
    """The 3-panel diagnostic of ``calibrate_and_stack(...)``.

    1. the input spectra as observed, with the photometry;
    2. each input's calibration multiplier, with its observed/synthetic band ratios;
    3. the calibrated inputs (thin) and the final stack with its error band, the
       photometry and the stack's synthetic photometry.

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
