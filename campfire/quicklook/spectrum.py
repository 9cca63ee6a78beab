"""The quick-look spectrum figure: ``SpectrumData.plot()`` and ``Spectrum.plot()``.

:func:`plot_spectrum_data` draws a step spectrum with its 1σ error band, emission-line
markers at ``(1 + z) λ_rest`` and axis labels with units; the label and marker helpers
are shared with the Plotly figures of :mod:`campfire.plotting`.

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
from campfire.lines import check_redshift, emission_lines_in, norm_window_of, normalize_flux_unit

__all__ = [
    "plot_spectrum_data",
    "mark_emission_lines",
    "flux_label",
    "wavelength_label",
    "is_rest_frame",
    "pretty_line_name",
    "label_indices",
    "line_labels",
    "trusted_flux",
    "axes_or_gca",
    "WAVE_LABEL",
    "REST_WAVE_LABEL",
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


def line_labels(names: Sequence[str], waves: Sequence[float], min_gap: float) -> list[tuple[int, str]]:
    """Where line names go and what they say: every line is named, crowded ones share a label.

    The strong line of a crowded group carries the label (:func:`label_indices`); a line
    without a label of its own adds its name to its nearest labelled neighbour's (once:
    the [OIII] doublet reads ``[OIII]``, Hα with [NII] reads ``Hα+[NII]``).

    Parameters
    ----------
    names : sequence of str
        :data:`~campfire.lines.EMISSION_LINES` keys.
    waves : sequence of float
        Their (observed) wavelengths.
    min_gap : float
        Closest two labels may be, in the units of ``waves``.

    Returns
    -------
    list of (int, str)
        (index of the line carrying the label, the label), by wavelength.

    Examples
    --------
    >>> line_labels(['Hbeta', '[OIII]-4960', '[OIII]-5008'], [1.459, 1.488, 1.502], 0.05)
    [(2, '[OIII]+Hβ')]
    """
    named = label_indices(names, waves, min_gap)
    if not named:
        return []
    texts = {i: [pretty_line_name(names[i])] for i in named}
    for j in range(len(names)):
        if j in texts:
            continue
        nearest = min(named, key=lambda i: abs(waves[i] - waves[j]))
        name = pretty_line_name(names[j])
        if name not in texts[nearest]:
            texts[nearest].append(name)
    return [(i, "+".join(texts[i])) for i in named]


def _power_of_ten(values: np.ndarray) -> int:
    """The exponent that brings typical |values| to order unity (0 if none are finite)."""
    finite = np.abs(values[np.isfinite(values) & (values != 0)])
    if finite.size == 0:
        return 0
    return int(math.floor(math.log10(np.nanpercentile(finite, 90))))


def flux_label(flux_unit: str, exponent: int = 0, norm_window: tuple[float, float] | None = None) -> str:
    """Y-axis label with units for ``'fnu'`` (μJy) or ``'flam'`` (erg s⁻¹ cm⁻² Å⁻¹).

    A normalised spectrum or stack (``norm_window``, :func:`~campfire.lines.norm_window_of`)
    is dimensionless: f_ν over its median f_ν in the window.

    Examples
    --------
    >>> flux_label('fnu')
    '$f_\\\\nu$ [μJy]'
    >>> flux_label('flam', -20)
    '$f_\\\\lambda$ [$10^{-20}$ erg s$^{-1}$ cm$^{-2}$ Å$^{-1}$]'
    >>> flux_label('fnu', norm_window=(0.42, 0.48))
    '$f_\\\\nu$ / median $f_\\\\nu$(0.42–0.48 μm)  [dimensionless]'
    """
    unit = normalize_flux_unit(flux_unit, "flux_unit")
    if norm_window is not None:
        return rf"$f_\nu$ / median $f_\nu$({norm_window[0]:g}–{norm_window[1]:g} μm)  [dimensionless]"
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


def axes_or_gca(ax):
    """``ax`` if it is a matplotlib Axes, ``plt.gca()`` for None, else a ValidationError."""
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    if ax is None:
        return plt.gca()
    if not isinstance(ax, Axes):
        raise ValidationError(f"ax: expected a matplotlib Axes or None, got {type(ax).__name__}")
    return ax


def trusted_flux(flux: np.ndarray, err: np.ndarray) -> np.ndarray:
    """Flux with the noisiest pixels (error > 5 × the median error) set to NaN, for axis limits only.

    A noisy detector edge (PRISM's blue end in f_λ) must not set the scale of the whole
    spectrum (the matplotlib and the Plotly figures both scale on this).

    Examples
    --------
    >>> import numpy as np
    >>> trusted_flux(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.1, 0.1, 0.1, 9.0]))
    array([ 1.,  2.,  3., nan])
    """
    err = np.asarray(err, float)
    finite = err[np.isfinite(err) & (err > 0)]
    if finite.size == 0:
        return flux
    keep = np.isfinite(err) & (err <= 5 * np.median(finite))
    return np.where(keep, flux, np.nan) if keep.sum() >= 3 else flux


def _robust_ylim(ax, values: np.ndarray, had_data: bool, headroom: float = 0.2) -> None:
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
    # the top margin leaves room for emission-line labels (above the data, not on the peaks)
    new = (lo - 0.05 * span, hi + headroom * span)
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
    names, _, waves = emission_lines_in(redshift=z, wave_min=wave_min, wave_max=wave_max)
    names = [str(n) for n in names]
    style = {"linestyle": "--", "linewidth": 0.7, "alpha": 0.8, "zorder": 1}
    style.update(kwargs)
    markers = []
    trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    for name, obs in zip(names, waves):
        markers.append(ax.axvline(obs, color=color, gid=f"emission-line:{name}", **style))
    if labels and names:
        # neighbours closer than a label's height ([OIII] doublet, Hα+[NII]) share one label:
        # that of the line an astronomer looks for first
        width_px = max(ax.get_window_extent().width, 1.0)
        min_gap = 11 * ax.figure.dpi / 72 / width_px * (hi - lo)
        for best, text in line_labels(names, waves, min_gap):
            # in the band above the data (the y range leaves it free), on a light backing
            ax.text(waves[best], 0.985, text, transform=trans, rotation=90, ha="center", va="top", fontsize=7,
                    color=color, gid=f"emission-line-label:{names[best]}", clip_on=True,
                    bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.75})
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
    window = norm_window_of(spec)
    if window is not None and unit != "fnu":
        raise ValidationError(f"flux_unit: {spec.spectrum_id or 'this spectrum'} is normalised (f_ν / median f_ν in "
                              f"{window[0]:g}–{window[1]:g} μm, dimensionless); only 'fnu' can be drawn")
    ax = axes_or_gca(ax)
    had_data = ax.has_data()
    wave = np.asarray(spec.wavelength, float)
    flux, err = _flux_arrays(spec, unit)
    exponent = _power_of_ten(flux) if unit == "flam" else 0
    if had_data and getattr(ax, "_campfire_flux", None) is not None:
        # a second spectrum on the same axes must use the first one's scale and unit
        prev_unit, exponent = ax._campfire_flux
        if window is not None or prev_unit == "normalised":
            unit = "normalised" if window is not None else unit
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
                        color=line.get_color(), alpha=0.25, linewidth=0, gid="error-band",
                        label="±1σ" if default_label and not str(default_label).startswith("_") else "_nolegend_")
    good = np.isfinite(flux) & np.isfinite(wave)
    if good.any():
        wlo, whi = wave[good].min(), wave[good].max()
        pad = 0.01 * (whi - wlo or 1.0)
        if had_data:
            xlo, xhi = ax.get_xlim()
            ax.set_xlim(min(xlo, wlo - pad), max(xhi, whi + pad))
        else:
            ax.set_xlim(wlo - pad, whi + pad)
    _robust_ylim(ax, trusted_flux(flux, err), had_data, 0.4 if z is not None and show_lines else 0.2)
    ax.axhline(0.0, color="0.6", linewidth=0.5, zorder=0)
    ax.set_xlabel(wavelength_label(spec))
    ax.set_ylabel(flux_label("fnu" if unit == "normalised" else unit, exponent, window))
    ax._campfire_flux = ("normalised" if window is not None else unit, exponent)
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
