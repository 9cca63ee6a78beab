"""Interactive Plotly figures of spectra and redshift fits (the ``plotting`` extra).

* :func:`plot_spectrum`: the 2D S/N spectrum (SCI·√WHT) as a heatmap, the spatial
  profile beside it and the 1D spectrum below, with the wavelength axes linked;
* :func:`plot_redshift_fit`: χ²(z) with the best redshift, and the best-fit model over
  the spectrum when the spectrum data are given;
* :func:`plot_spectrum_simple`: a light 1D spectrum with its error band.

Each takes the dicts of ``cf.get_spectrum_data`` / ``cf.get_redshift_fit_data`` (local
arrays or the server's JSON lists alike) and returns a ``plotly.graph_objects.Figure``.
Plotly is imported inside the functions: ``pip install "campfire[plotting]"``.

**Saving.** :func:`save_html` writes a page of a few tens of kB that loads
``plotly.min.js`` from beside it (written once per folder, ~4.7 MB), instead of
``fig.write_html``'s default of a 5 MB page each; it works offline, unlike
``include_plotlyjs='cdn'``. ``fig.write_image('x.png')`` (static images) needs kaleido
≥ 1.0, which the ``plotting`` extra installs, and a Chrome or Chromium on the machine,
which it does not: ``apt-get install chromium`` (Debian/Ubuntu; kaleido finds it on
PATH, or set ``BROWSER_PATH``) — no browser is ever downloaded by campfire.

Examples
--------
>>> from campfire import plot_spectrum, plot_redshift_fit, plot_spectrum_simple  # doctest: +SKIP
>>> data = cf.get_spectrum_data('ember_uds_p4_prism_clear_123456')               # doctest: +SKIP
>>> fig = plot_spectrum(data, redshift=3.421, show_emission_lines=True)          # doctest: +SKIP
>>> save_html(fig, 'figures/spectrum.html')     # + figures/plotly.min.js, once  # doctest: +SKIP
>>> fig.write_image('figures/spectrum.png')     # kaleido + chromium             # doctest: +SKIP
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from campfire.errors import CampfireError, ValidationError
from campfire.lines import check_redshift, emission_lines_in
from campfire.quicklook.spectrum import (
    WAVE_LABEL,
    is_rest_frame,
    line_labels,
    pretty_line_name,
    trusted_flux,
    wavelength_label,
)

__all__ = ["plot_spectrum", "plot_redshift_fit", "plot_spectrum_simple", "save_html"]

HTML_MODES = ("directory", "inline")

SPECTRUM_KEYS = ("wave", "fnu", "fnu_err")
SPECTRUM_2D_KEYS = ("snr_2d", "profile", "profile_fit", "profile_pix")
FIT_KEYS = ("redshift", "chi2_min", "confidence", "z_grid", "chi2_grid", "model_wave", "model_fnu")
FNU_TITLE = "f<sub>ν</sub> [μJy]"


def _go():
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError as err:  # the plotting extra is optional
        raise CampfireError('the Plotly helpers need plotly: pip install "campfire[plotting]"') from err
    return go, make_subplots


def _arr(data: Mapping[str, Any], key: str, ndim: int = 1) -> np.ndarray:
    # the server's JSON has null for NaN: float conversion turns None back into NaN
    value = data[key]
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValidationError(f"data[{key!r}]: expected a numeric array, got {type(value).__name__}") from err
    if arr.ndim != ndim:
        raise ValidationError(f"data[{key!r}]: expected a {ndim}D array, got shape {arr.shape}")
    return arr


def _spectrum_arrays(data, need_2d: bool = False) -> dict[str, np.ndarray]:
    """Validated arrays from a get_spectrum_data dict (or a SpectrumData for the 1D keys)."""
    if not isinstance(data, Mapping) and hasattr(data, "wavelength") and not need_2d:
        data = {"wave": data.wavelength, "fnu": data.fnu, "fnu_err": data.fnu_err}
    if not isinstance(data, Mapping):
        raise ValidationError(
            f"data: expected the dict of cf.get_spectrum_data(spectrum_id), got {type(data).__name__}"
        )
    need = SPECTRUM_KEYS + (SPECTRUM_2D_KEYS if need_2d else ())
    missing = [k for k in need if k not in data]
    if missing:
        raise ValidationError(
            f"data: missing {', '.join(missing)}; expected the dict of cf.get_spectrum_data(spectrum_id) "
            f"with {', '.join(SPECTRUM_KEYS + SPECTRUM_2D_KEYS)}"
        )
    out = {k: _arr(data, k) for k in SPECTRUM_KEYS}
    n = out["wave"].size
    for k in ("fnu", "fnu_err"):
        if out[k].size != n:
            raise ValidationError(f"data[{k!r}]: expected {n} values (the length of wave), got {out[k].size}")
    if need_2d:
        out["snr_2d"] = _arr(data, "snr_2d", 2)
        if out["snr_2d"].shape[1] != n:
            raise ValidationError(
                f"data['snr_2d']: expected {n} columns (one per wavelength), got shape {out['snr_2d'].shape}"
            )
        for k in ("profile", "profile_fit", "profile_pix"):
            out[k] = _arr(data, k)
    return out


def _lines_in(wave: np.ndarray, z: float):
    finite = wave[np.isfinite(wave)]
    if finite.size == 0:
        return []
    names, _, waves = emission_lines_in(redshift=z, wave_min=float(finite.min()), wave_max=float(finite.max()))
    return [(str(n), pretty_line_name(str(n)), float(w)) for n, w in zip(names, waves)]


def _add_lines(fig, lines, xref: str, yref: str, label_row: bool) -> None:
    """Dashed vertical markers at (1+z)λ_rest spanning one subplot; names on top when ``label_row``."""
    waves = [w for _, _, w in lines]
    span = (max(waves) - min(waves)) if waves else 0.0
    # crowded neighbours share one label (the strongest line's), as in the matplotlib figures
    named = dict(line_labels([n for n, _, _ in lines], waves, 0.016 * span)) if waves else {}
    for i, (name, label, wave) in enumerate(lines):
        fig.add_shape(type="line", x0=wave, x1=wave, y0=0, y1=1, xref=xref, yref=f"{yref} domain",
                      line={"color": "rgba(90,90,90,0.7)", "width": 1, "dash": "dash"}, name=f"line:{name}")
        if label_row and i in named:
            label = named[i]
            fig.add_annotation(x=wave, y=1.0, xref=xref, yref=f"{yref} domain", text=label, showarrow=False,
                               textangle=-90, xanchor="right", yanchor="top", font={"size": 9, "color": "#555"},
                               name=f"line-label:{name}")


def _error_band(go, wave, flux, err, xaxis: str | None = None, yaxis: str | None = None, color="rgba(31,119,180,0.25)"):
    """Two traces: the lower edge, then the upper edge filled down to it."""
    ok = np.isfinite(flux) & np.isfinite(err)
    lo = np.where(ok, flux - err, np.nan)
    hi = np.where(ok, flux + err, np.nan)
    common = {"mode": "lines", "line": {"width": 0, "shape": "hvh"}, "hoverinfo": "skip", "showlegend": False}
    if xaxis:
        common.update(xaxis=xaxis, yaxis=yaxis)
    return [
        go.Scatter(x=wave, y=lo, name="1σ lower", **common),
        go.Scatter(x=wave, y=hi, name="1σ", fill="tonexty", fillcolor=color, **common),
    ]


def _robust_range(values: np.ndarray, top_pad: float = 0.25) -> list[float] | None:
    finite = values[np.isfinite(values)]
    if finite.size < 3:
        return None
    from numpy.lib.stride_tricks import sliding_window_view

    lo = min(float(np.percentile(finite, 1.0)), 0.0)
    hi = float(np.max(np.median(sliding_window_view(finite, 3), axis=1)))  # ignores single hot pixels
    span = hi - lo or 1.0
    return [lo - 0.05 * span, hi + top_pad * span]


def plot_spectrum(data: Mapping[str, Any], redshift: float | None = None, show_emission_lines: bool = False):
    """2D S/N heatmap + spatial profile + 1D spectrum with linked wavelength axes.

    Parameters
    ----------
    data : dict
        ``cf.get_spectrum_data(spectrum_id)``: ``wave``, ``fnu``, ``fnu_err``,
        ``snr_2d`` (n_spatial × n_wave, SCI·√WHT), ``profile``, ``profile_fit``,
        ``profile_pix``.
    redshift : float, optional
        Shown in the title; with ``show_emission_lines``, lines are marked at
        ``(1 + z) λ_rest`` in the 2D and 1D panels.
    show_emission_lines : bool
        Mark and name the emission lines (needs ``redshift``).

    Returns
    -------
    plotly.graph_objects.Figure
        Heatmap (``name='snr_2d'``; ``z`` is ``snr_2d`` unchanged), profile and fit,
        spectrum with error band. Zooming in wavelength moves both panels together.

    Raises
    ------
    ValidationError
        Missing or malformed arrays (the message names the key), a bad redshift, or
        ``show_emission_lines`` without ``redshift``.
    CampfireError
        Plotly is not installed (``pip install "campfire[plotting]"``).

    Examples
    --------
    >>> data = cf.get_spectrum_data('ember_uds_p4_prism_clear_123456')  # doctest: +SKIP
    >>> fig = plot_spectrum(data, redshift=3.421, show_emission_lines=True)  # doctest: +SKIP
    >>> fig.show()  # doctest: +SKIP
    """
    go, make_subplots = _go()
    arr = _spectrum_arrays(data, need_2d=True)
    z = check_redshift(redshift, optional=True)
    if not isinstance(show_emission_lines, bool):
        raise ValidationError(f"show_emission_lines: expected True or False, got {show_emission_lines!r}")
    if show_emission_lines and z is None:
        raise ValidationError("show_emission_lines: needs redshift= (the lines are drawn at (1+z)·λ_rest)")
    wave, snr = arr["wave"], arr["snr_2d"]
    n_spatial = snr.shape[0]
    pix = arr["profile_pix"] if arr["profile_pix"].size == n_spatial else np.arange(n_spatial, dtype=float)

    fig = make_subplots(
        rows=2, cols=2, column_widths=[0.86, 0.14], row_heights=[0.38, 0.62], horizontal_spacing=0.015,
        vertical_spacing=0.04, specs=[[{}, {}], [{}, None]],
    )
    # S/N colour range: symmetric noise floor, top at the bright trace (robust to hot pixels)
    finite = snr[np.isfinite(snr)]
    top = float(np.percentile(finite, 99.5)) if finite.size else 5.0
    fig.add_trace(
        go.Heatmap(z=snr, x=wave, y=pix, colorscale="Greys", zmin=-3.0, zmax=max(top, 5.0),
                   colorbar={"title": {"text": "S/N"}, "len": 0.36, "y": 0.81, "thickness": 12}, name="snr_2d",
                   hovertemplate="λ=%{x:.4f} μm<br>pix=%{y}<br>S/N=%{z:.2f}<extra></extra>"),
        row=1, col=1,
    )
    if arr["profile"].size == pix.size:
        fig.add_trace(go.Scatter(x=arr["profile"], y=pix, mode="lines", name="profile",
                                 line={"color": "black", "width": 1.2, "shape": "vh"}), row=1, col=2)
    if arr["profile_fit"].size == pix.size and np.isfinite(arr["profile_fit"]).any():
        fig.add_trace(go.Scatter(x=arr["profile_fit"], y=pix, mode="lines", name="profile fit",
                                 line={"color": "#d62728", "width": 1.2, "dash": "dash"}), row=1, col=2)
    for trace in _error_band(go, wave, arr["fnu"], arr["fnu_err"]):
        fig.add_trace(trace, row=2, col=1)
    fig.add_trace(go.Scatter(x=wave, y=arr["fnu"], mode="lines", name="f<sub>ν</sub>",
                             line={"color": "#1f77b4", "width": 1.2, "shape": "hvh"}), row=2, col=1)
    if show_emission_lines:
        lines = _lines_in(wave, z)
        _add_lines(fig, lines, "x", "y", label_row=False)
        _add_lines(fig, lines, "x3", "y3", label_row=True)

    # x of the 2D panel and the 1D panel are one axis: zoom/pan moves both
    fig.update_xaxes(matches="x3", showticklabels=False, row=1, col=1)
    fig.update_xaxes(title_text=WAVE_LABEL, row=2, col=1)
    fig.update_yaxes(title_text="spatial pixel", row=1, col=1)
    fig.update_yaxes(matches="y", showticklabels=False, row=1, col=2)
    fig.update_xaxes(title_text="profile", row=1, col=2, showticklabels=False)
    fig.update_yaxes(title_text=FNU_TITLE, row=2, col=1, range=_robust_range(trusted_flux(arr["fnu"], arr["fnu_err"])))
    title = "2D spectrum (S/N) · profile · 1D spectrum"
    if isinstance(data, Mapping) and data.get("spectrum_id"):
        title = f"{data['spectrum_id']}: {title}"
    if z is not None:
        title += f" · z = {z:.4f}"
    fig.update_layout(title={"text": title, "font": {"size": 14}}, height=640, width=1100, template="plotly_white",
                      legend={"orientation": "h", "y": -0.12}, margin={"l": 70, "r": 30, "t": 60, "b": 60})
    return fig


def _fit_arrays(fit) -> dict[str, Any]:
    if not isinstance(fit, Mapping):
        raise ValidationError(f"fit: expected the dict of cf.get_redshift_fit_data(spectrum_id), got {type(fit).__name__}")
    missing = [k for k in FIT_KEYS if k not in fit]
    if missing:
        raise ValidationError(
            f"fit: missing {', '.join(missing)}; expected the dict of cf.get_redshift_fit_data(spectrum_id) "
            f"with {', '.join(FIT_KEYS)}"
        )
    out = {k: _arr(fit, k) for k in ("z_grid", "chi2_grid", "model_wave", "model_fnu")}
    if out["z_grid"].size != out["chi2_grid"].size:
        raise ValidationError(f"fit: z_grid ({out['z_grid'].size}) and chi2_grid ({out['chi2_grid'].size}) differ in length")
    if out["model_wave"].size != out["model_fnu"].size:
        raise ValidationError("fit: model_wave and model_fnu differ in length")
    for k in ("redshift", "chi2_min", "confidence"):
        try:
            out[k] = float(fit[k])
        except (TypeError, ValueError) as err:
            raise ValidationError(f"fit[{k!r}]: expected a number, got {fit[k]!r}") from err
    return out


def plot_redshift_fit(fit: Mapping[str, Any], spectrum_data: Mapping[str, Any] | None = None):
    """χ²(z) of a redshift fit, and the best-fit model over the spectrum.

    Parameters
    ----------
    fit : dict
        ``cf.get_redshift_fit_data(spectrum_id)``: ``redshift``, ``chi2_min``,
        ``confidence``, ``z_grid``, ``chi2_grid``, ``model_wave``, ``model_fnu``.
    spectrum_data : dict, optional
        ``cf.get_spectrum_data(spectrum_id)`` (or a SpectrumData): adds a panel with
        the spectrum, its error band, the model and the emission lines at the best z.

    Returns
    -------
    plotly.graph_objects.Figure

    Raises
    ------
    ValidationError
        Missing or malformed arrays in ``fit`` or ``spectrum_data``.
    CampfireError
        Plotly is not installed.

    Examples
    --------
    >>> fit = cf.get_redshift_fit_data('ember_uds_p4_prism_clear_123456')  # doctest: +SKIP
    >>> fig = plot_redshift_fit(fit, spectrum_data=data)  # doctest: +SKIP
    """
    go, make_subplots = _go()
    f = _fit_arrays(fit)
    spec = _spectrum_arrays(spectrum_data) if spectrum_data is not None else None
    rows = 2 if spec is not None or f["model_wave"].size else 1
    fig = make_subplots(
        rows=rows, cols=1, row_heights=[0.4, 0.6] if rows == 2 else [1.0], vertical_spacing=0.17,
        subplot_titles=(["χ²(z)", "best-fit model" + (" and spectrum" if spec is not None else "")]
                        if rows == 2 else ["χ²(z)"]),
    )
    z_best = f["redshift"]
    fig.add_trace(go.Scatter(x=f["z_grid"], y=f["chi2_grid"], mode="lines", name="χ²(z)",
                             line={"color": "#1f77b4", "width": 1.3}), row=1, col=1)
    fig.add_trace(go.Scatter(x=[z_best], y=[f["chi2_min"]], mode="markers", name=f"best z = {z_best:.4f}",
                             marker={"color": "#d62728", "size": 9, "symbol": "x"}), row=1, col=1)
    fig.add_shape(type="line", x0=z_best, x1=z_best, y0=0, y1=1, xref="x", yref="y domain",
                  line={"color": "#d62728", "width": 1, "dash": "dot"}, name="best-z")
    fig.update_xaxes(title_text="redshift", row=1, col=1)
    chi2 = f["chi2_grid"]
    log = bool(np.all(chi2[np.isfinite(chi2)] > 0)) and np.nanmax(chi2) / max(np.nanmin(chi2), 1e-300) > 30
    fig.update_yaxes(title_text="χ²", type="log" if log else "linear", row=1, col=1)
    if rows == 2:
        wave = spec["wave"] if spec is not None else f["model_wave"]
        if spec is not None:
            for trace in _error_band(go, wave, spec["fnu"], spec["fnu_err"]):
                fig.add_trace(trace, row=2, col=1)
            fig.add_trace(go.Scatter(x=wave, y=spec["fnu"], mode="lines", name="spectrum",
                                     line={"color": "#1f77b4", "width": 1.1, "shape": "hvh"}), row=2, col=1)
        if f["model_wave"].size:
            fig.add_trace(go.Scatter(x=f["model_wave"], y=f["model_fnu"], mode="lines", name="best-fit model",
                                     line={"color": "#d62728", "width": 1.4}), row=2, col=1)
        if z_best >= 0 and math.isfinite(z_best):
            _add_lines(fig, _lines_in(wave, z_best), "x2", "y2", label_row=True)
        fig.update_xaxes(title_text=WAVE_LABEL, row=2, col=1)
        yrange = _robust_range(trusted_flux(spec["fnu"], spec["fnu_err"]) if spec is not None else f["model_fnu"])
        fig.update_yaxes(title_text=FNU_TITLE, row=2, col=1, range=yrange)
    title = f"redshift fit: z = {z_best:.4f}, χ²_min = {f['chi2_min']:.1f}, confidence = {f['confidence']:.2f}"
    fig.update_layout(title={"text": title, "font": {"size": 14}}, height=620 if rows == 2 else 380, width=1000,
                      template="plotly_white", margin={"l": 70, "r": 30, "t": 70, "b": 60})
    return fig


def plot_spectrum_simple(data, redshift: float | None = None):
    """A light 1D spectrum: f_ν with its 1σ band, emission lines when ``redshift`` is given.

    Parameters
    ----------
    data : dict or SpectrumData
        ``cf.get_spectrum_data(spectrum_id)`` (only ``wave``, ``fnu``, ``fnu_err`` are
        used) or a :class:`~campfire.models.SpectrumData`.
    redshift : float, optional
        Mark emission lines at ``(1 + z) λ_rest``.

    Returns
    -------
    plotly.graph_objects.Figure

    Raises
    ------
    ValidationError
        Missing or malformed arrays, or a bad redshift.
    CampfireError
        Plotly is not installed.

    Examples
    --------
    >>> fig = plot_spectrum_simple(data, redshift=3.421)  # doctest: +SKIP
    """
    go, _ = _go()
    arr = _spectrum_arrays(data)
    z = check_redshift(redshift, optional=True)
    wave = arr["wave"]
    fig = go.Figure()
    for trace in _error_band(go, wave, arr["fnu"], arr["fnu_err"]):
        fig.add_trace(trace)
    fig.add_trace(go.Scatter(x=wave, y=arr["fnu"], mode="lines", name="f<sub>ν</sub>",
                             line={"color": "#1f77b4", "width": 1.2, "shape": "hvh"}))
    if z is not None:
        # a rest-frame spectrum has its lines at λ_rest whatever its redshift was
        _add_lines(fig, _lines_in(wave, 0.0 if is_rest_frame(data) else z), "x", "y", label_row=True)
    title = "1D spectrum"
    sid = data.get("spectrum_id") if isinstance(data, Mapping) else getattr(data, "spectrum_id", "")
    if sid:
        title = f"{sid}: {title}"
    if z is not None:
        title += f" · z = {z:.4f}"
    fig.update_layout(title={"text": title, "font": {"size": 14}}, xaxis_title=wavelength_label(data),
                      yaxis_title=FNU_TITLE,
                      yaxis_range=_robust_range(trusted_flux(arr["fnu"], arr["fnu_err"])), height=420, width=1000,
                      template="plotly_white",
                      showlegend=False, margin={"l": 70, "r": 30, "t": 60, "b": 60})
    return fig


def save_html(fig, path, *, plotlyjs: str = "directory") -> str:
    """Write a Plotly figure as an HTML page that opens offline, without 5 MB per page.

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
    path : str or os.PathLike
        The page (folders are created).
    plotlyjs : {'directory', 'inline'}
        ``'directory'`` (default): ``plotly.min.js`` is written beside the page once and
        shared by every page in that folder (the page itself is a few tens of kB);
        ``'inline'``: one self-contained page (~5 MB), to send on its own.

    Returns
    -------
    str
        The page's path.

    Raises
    ------
    ValidationError
        Another ``plotlyjs`` (``'cdn'`` is not offered: the page would need the internet).

    Examples
    --------
    >>> save_html(plot_spectrum_simple(data), 'figures/spectrum.html')  # doctest: +SKIP
    'figures/spectrum.html'
    """
    import pathlib

    if plotlyjs not in HTML_MODES:
        raise ValidationError(f"plotlyjs: expected one of {', '.join(map(repr, HTML_MODES))} (pages open offline), "
                              f"got {plotlyjs!r}")
    if not hasattr(fig, "write_html"):
        raise ValidationError(f"fig: expected a plotly Figure, got {type(fig).__name__}")
    page = pathlib.Path(path)
    page.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(page), include_plotlyjs="directory" if plotlyjs == "directory" else True, full_html=True)
    return str(page)
