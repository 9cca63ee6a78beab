"""The quick-look PNG of a workflow's outputs: one spectrum or stack on a pyplot-free Figure.

:func:`quicklook_figure` draws the spectrum with its 1σ error band, emission-line
markers with names (at rest for a rest-frame stack), a legend, and — for a stack of
more than one input — a lower panel with the number of inputs behind each pixel. A
normalised stack's axis says so (:func:`~campfire.quicklook.spectrum.flux_label`).
The figure is 1200 × 560 px (1200 × 640 with the count panel).

Examples
--------
>>> import numpy as np
>>> from campfire import SpectrumData
>>> w = np.linspace(0.3, 0.8, 400)
>>> stack = SpectrumData(w, np.ones(400), np.full(400, 0.05), spectrum_id='pop', count=np.full(400, 12),
...                      meta={'rest_frame': True, 'norm_window': [0.42, 0.48]})
>>> fig = quicklook_figure(stack)
>>> [round(v) for v in fig.get_size_inches() * fig.dpi], len(fig.axes)
([1200, 640], 2)
"""
from __future__ import annotations

import numpy as np

from campfire.quicklook.spectrum import is_rest_frame, plot_spectrum_data

__all__ = ["quicklook_figure", "QUICKLOOK_SIZE", "QUICKLOOK_DPI"]

QUICKLOOK_SIZE = (10.0, 14 / 3)  # inches: 1200 × 560 px at QUICKLOOK_DPI
QUICKLOOK_DPI = 120
# Fixed margins [inches] for the fixed-size figure: room for the tick labels and the axis
# labels, the title and the legend. Constrained layout found the same margins but drew
# every figure twice to measure them (a third of a quick-look PNG's ~210 ms).
_MARGINS = {"left": 0.85, "right": 0.15, "top": 0.38, "bottom": 0.55}


def quicklook_figure(spec, *, redshift: float | None = None, title: str | None = None):
    """A matplotlib Figure (no pyplot: safe in worker threads) of ``spec``.

    Parameters
    ----------
    spec : SpectrumData
        A spectrum or a stack (with ``count``).
    redshift : float, optional
        Mark emission lines at (1 + z) λ_rest; a rest-frame spectrum gets its lines at
        λ_rest without it.
    title : str, optional
        Default ``'<spectrum_id> (<grating>)'``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    count = getattr(spec, "count", None)
    stacked = count is not None and np.nanmax(np.asarray(count, float), initial=0) > 1
    height = QUICKLOOK_SIZE[1] + (2 / 3 if stacked else 0.0)  # + 80 px for the count panel
    width = QUICKLOOK_SIZE[0]
    fig = Figure(figsize=(width, height), dpi=QUICKLOOK_DPI)
    fig.subplots_adjust(left=_MARGINS["left"] / width, right=1 - _MARGINS["right"] / width,
                        bottom=_MARGINS["bottom"] / height, top=1 - _MARGINS["top"] / height, hspace=0.08)
    if stacked:
        ax, ax_n = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [4, 1]})
    else:
        ax, ax_n = fig.add_subplot(), None
    z = redshift if redshift is not None and np.isfinite(redshift) else None
    if z is None and is_rest_frame(spec):
        z = 0.0  # lines at rest: the markers of a rest-frame stack
    label = "stack" if stacked else (spec.spectrum_id or "spectrum")
    plot_spectrum_data(spec, ax=ax, redshift=z, label=label, color="C0",
                       **({"title": title} if title else ({"title": spec.spectrum_id} if z == 0.0 else {})))
    # below the line names (rotated along the top ~15 % of the axes), which it would hide
    ax.legend(loc="upper left", bbox_to_anchor=(0, 0.84 if z is not None else 1), fontsize=8, framealpha=0.85)
    if ax_n is not None:
        wave = np.asarray(spec.wavelength, float)
        ax_n.step(wave, np.asarray(count, float), where="mid", color="0.3", linewidth=0.9, gid="count")
        ax_n.set_ylabel("N inputs")
        ax_n.set_ylim(0, None)
        ax_n.set_xlabel(ax.get_xlabel())
        ax.set_xlabel("")
    return fig
