"""Every figure of the reference, for demo objects, written into one folder.

``campfire demo gallery OUT [--data-dir DIR]`` calls :func:`write_gallery`, so a
reviewer can look at what the plotting and imaging examples produce: cutouts with the
MSA shutters (the reference example, PDF included, and recipe 5's three styling
variants side by side), ``SpectrumData.plot`` in f_ν and f_λ, ``Spectrum.plot``, the
calibration and calibrate-and-stack diagnostics, a stack, and the Plotly figures as
HTML (and PNG where a headless Chrome/Chromium can render them). ``index.html`` shows
them all, with a note for any figure that could not be made.

Plotly → PNG: kaleido (``pip install kaleido``) drives a Chrome it finds on the
machine; without kaleido, the figure's HTML is screenshotted by headless Chromium
(``apt-get install chromium``). With neither, only the HTML is written.

Examples
--------
>>> from campfire.gallery import write_gallery
>>> paths = write_gallery('gallery')  # doctest: +SKIP
"""
from __future__ import annotations

import html
import os
import pathlib
import shutil
import subprocess
import tempfile
from typing import Any, Callable

from campfire.errors import CampfireError

__all__ = ["write_gallery", "figures_to_png", "chrome_executable", "GALLERY_OBJECT", "GALLERY_SPECTRUM"]

GALLERY_OBJECT = "ember_uds_p4_123456"
GALLERY_SPECTRUM = "ember_uds_p4_prism_clear_123456"

# recipe 5: three styling variants of the same cutout, side by side
RECIPE5_VARIANTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("default boxes", {}),
    ("JADES-style corners", {"shutter_style": {
        "target": {"marker": "corners", "edgecolor": "cyan"},
        "other": {"marker": "corners", "edgecolor": "white", "linewidth": 0.5},
    }}),
    ("custom colours, hatched stuck shutters", {"shutter_style": {
        "target": {"edgecolor": "#ff2d55", "linewidth": 2.0},
        "other": {"edgecolor": "0.85", "linestyle": "--", "linewidth": 0.6},
        "stuck_closed": {"facecolor": "none", "edgecolor": "#ff9f0a", "hatch": "////"},
    }}),
)


def chrome_executable() -> str | None:
    """A Chrome/Chromium on PATH (what kaleido and the HTML screenshot need), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _kaleido_ok() -> bool:
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return False
    return True


def figures_to_png(figs: list, paths: list[str | os.PathLike], *, timeout: float = 120.0) -> list[str] | None:
    """Render Plotly figures to PNG files; None when no renderer is available here.

    Tries kaleido first (one browser for the whole batch), then a headless
    Chromium screenshot of each figure's standalone HTML.

    Parameters
    ----------
    figs : list of plotly.graph_objects.Figure
    paths : list of path
        Output PNG paths, one per figure.

    Returns
    -------
    list of str or None
        The written paths, or None if neither kaleido+Chrome nor Chromium works.
    """
    paths = [str(p) for p in paths]
    if not figs:
        return []
    if _kaleido_ok():
        try:
            import plotly.io as pio

            # the batch call does not read the layout's size by itself
            pio.write_images(figs, paths, format="png", width=[int(f.layout.width or 1000) for f in figs],
                             height=[int(f.layout.height or 500) for f in figs])
            if all(os.path.getsize(p) > 0 for p in paths):
                return paths
        except Exception:  # kaleido without a usable Chrome: fall back to the screenshot
            pass
    chrome = chrome_executable()
    if chrome is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        for k, (fig, out) in enumerate(zip(figs, paths)):
            page = pathlib.Path(tmp) / f"fig{k}.html"
            fig.write_html(page, include_plotlyjs=True, full_html=True, config={"staticPlot": True})
            width = int(fig.layout.width or 1000)
            height = int(fig.layout.height or 500)
            cmd = [chrome, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                   f"--window-size={width},{height}", "--virtual-time-budget=10000", f"--screenshot={out}",
                   page.as_uri()]
            try:
                subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)
            except (OSError, subprocess.SubprocessError):
                return None
            if not os.path.exists(out) or os.path.getsize(out) == 0:
                return None
    return paths


class _Gallery:
    """Collects written files and notes about figures that could not be made."""

    def __init__(self, out: pathlib.Path):
        self.out = out
        self.paths: list[str] = []
        self.entries: list[tuple[str, str, list[str]]] = []  # (title, note, files)

    def save(self, fig, name: str, title: str, *, pdf: bool = False) -> None:
        import matplotlib.pyplot as plt

        files = []
        png = self.out / f"{name}.png"
        fig.savefig(png, dpi=110, bbox_inches="tight")
        files.append(png.name)
        if pdf:
            fig.savefig(self.out / f"{name}.pdf", bbox_inches="tight")
            files.append(f"{name}.pdf")
        plt.close(fig)
        self.paths += [str(self.out / f) for f in files]
        self.entries.append((title, "", files))

    def skip(self, title: str, reason: str) -> None:
        self.entries.append((title, f"not made: {reason}", []))

    def attempt(self, title: str, make: Callable[[], None]) -> None:
        """Run one figure; a missing optional part becomes a note, not a failed gallery."""
        try:
            make()
        except (ImportError, CampfireError, NotImplementedError, AttributeError) as err:
            import matplotlib.pyplot as plt

            plt.close("all")
            self.skip(title, f"{type(err).__name__}: {err}")

    def write_index(self) -> str:
        rows = []
        for title, note, files in self.entries:
            items = []
            for f in files:
                if f.endswith(".png"):
                    items.append(f'<a href="{html.escape(f)}"><img src="{html.escape(f)}" style="max-width:100%"></a>')
                else:
                    items.append(f'<a href="{html.escape(f)}">{html.escape(f)}</a>')
            body = "<br>".join(items + ([f"<em>{html.escape(note)}</em>"] if note else []))
            rows.append(f"<h2>{html.escape(title)}</h2>\n<div>{body}</div>")
        page = ("<!doctype html><meta charset='utf-8'><title>campfire gallery</title>"
                "<body style='font-family:sans-serif;max-width:1200px;margin:auto'>"
                "<h1>campfire: every figure of the reference</h1>\n" + "\n".join(rows) + "</body>")
        index = self.out / "index.html"
        index.write_text(page, encoding="utf-8")
        return str(index)


def write_gallery(out_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> list[str]:
    """Write every figure of the reference for demo objects into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Folder to write into (created if missing).
    data_dir : path, optional
        Archive root to read; default the demo archive (``campfire.demo.ensure()``).

    Returns
    -------
    list of str
        The files written, ``index.html`` last.

    Examples
    --------
    >>> paths = write_gallery('gallery')  # doctest: +SKIP
    >>> paths[-1]  # doctest: +SKIP
    'gallery/index.html'
    """
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from campfire.client import Campfire

    if data_dir is None:
        import campfire.demo

        data_dir = campfire.demo.ensure()
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cf = Campfire(data_dir=data_dir)
    g = _Gallery(out)
    obj_id, spec_id = GALLERY_OBJECT, GALLERY_SPECTRUM
    obj = cf.get_object(obj_id)
    if obj is None:
        raise CampfireError(f"{data_dir} has no object {obj_id!r}: the gallery draws the demo archive's example")
    z = obj.redshift if obj.redshift == obj.redshift else None

    # -- imaging -------------------------------------------------------------------------------
    def cutout():
        fig, ax = plt.subplots(figsize=(5, 5))
        cf.plot_cutout(obj_id, fov=3.2, ax=ax)
        g.save(fig, "cutout", "cf.plot_cutout(object_id, fov=3.2): cutout with MSA shutters (PNG and vector PDF)",
               pdf=True)

    def recipe5():
        fig, axes = plt.subplots(1, 3, figsize=(15, 5.2))
        for ax, (label, kwargs) in zip(axes, RECIPE5_VARIANTS):
            cf.plot_cutout(obj_id, fov=3.2, ax=ax, **kwargs)
            ax.set_title(label, fontsize=10)
        fig.suptitle(f"{obj_id}: three shutter styles (recipe 5)")
        g.save(fig, "cutout_recipe5", "recipe 5: three styling variants side by side", pdf=True)

    def cutout_by_hand():
        from campfire.imaging import plot_cutout

        fig, ax = plt.subplots(figsize=(5, 5))
        path = cf.get_cutout(obj_id, fov=5.0)
        data = cf.get_shutters(obj_id, fov=5.0)
        plot_cutout(path, shutters=data, object_id=obj_id, fov=5.0, ax=ax)
        g.save(fig, "cutout_by_hand", "get_cutout + get_shutters + campfire.imaging.plot_cutout (fov=5)")

    def cutout_others():
        others = [r["object_id"] for r in cf.query_objects(sort="max_snr", sort_dir="desc", limit=12)
                  if r["object_id"] != obj_id][:3]
        fig, axes = plt.subplots(1, len(others), figsize=(5 * len(others), 5.2), squeeze=False)
        for ax, oid in zip(axes[0], others):
            cf.plot_cutout(oid, fov=4.0, ax=ax, shutters="all")
        g.save(fig, "cutout_more", "more demo objects (fov=4)")

    for title, make in (("cutout", cutout), ("recipe 5", recipe5), ("cutout by hand", cutout_by_hand),
                        ("more cutouts", cutout_others)):
        g.attempt(title, make)

    # -- spectra ---------------------------------------------------------------------------------
    spec = cf.open_spectrum(spec_id)

    def spectrum_units():
        for unit in ("fnu", "flam"):
            fig, ax = plt.subplots(figsize=(9, 4.5))
            spec.plot(flux_unit=unit, ax=ax, redshift=z)
            g.save(fig, f"spectrum_{unit}", f"spec.plot(flux_unit='{unit}') with lines at z = {z:.4f}"
                   if z is not None else f"spec.plot(flux_unit='{unit}')")

    def spectrum_row():
        fig = plt.figure(figsize=(9, 4.5))
        obj.spectra[0].plot()  # the reference's s.plot(): draws into plt.gca()
        g.save(fig, "spectrum_quicklook", f"s.plot() for {obj.spectra[0].spectrum_id}")

    def spectrum_all():
        fig, ax = plt.subplots(figsize=(10, 4.5))
        for s in obj.spectra:
            s.plot(ax=ax, label=f"{s.grating}/{s.filter}", errors=False, linewidth=0.8)
        ax.legend(fontsize=8)
        g.save(fig, "spectrum_overlay", "every spectrum of the object on one axes")

    for title, make in (("SpectrumData.plot", spectrum_units), ("Spectrum.plot", spectrum_row),
                        ("overlay", spectrum_all)):
        g.attempt(title, make)

    # -- calibration and stacking (campfire.calibration, the deploy extra) ------------------------
    from campfire.calibration import calibrate_and_stack, calibrate_to_photometry, stack_spectra

    # an object with several PRISM spectra, so that the stack combines something
    counts: dict[str, int] = {}
    for row in cf.query_spectra(gratings=["PRISM"]):
        counts[str(row["object_id"])] = counts.get(str(row["object_id"]), 0) + 1
    multi_id = next((o for o, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= 2), None)

    def calibration():
        result = calibrate_to_photometry(spec, obj.photometry)
        fig = result.plot(redshift=z)
        g.save(fig, "calibration", "calibrate_to_photometry(spec, obj.photometry).plot()")

    def stack():
        prism = obj.spectra[obj.spectra.grating == "PRISM"]
        stacked = stack_spectra([s.open() for s in prism], method="weighted_mean", object_id=obj.object_id)
        fig = plt.figure(figsize=(9, 4.5))
        stacked.plot()
        g.save(fig, "stack", "stack_spectra([s.open() for s in prism], ...).plot()")
        if multi_id:
            other = cf.get_object(multi_id)
            prism = other.spectra[other.spectra.grating == "PRISM"]
            stacked = stack_spectra([s.open() for s in prism], method="weighted_mean", object_id=multi_id)
            fig = plt.figure(figsize=(9, 4.5))
            stacked.plot(redshift=other.redshift if other.redshift == other.redshift else None)
            g.save(fig, "stack_multi", f"stack of the {len(prism)} PRISM spectra of {multi_id}")

    def calibrated_stack():
        prism = obj.spectra[obj.spectra.grating == "PRISM"]
        result = calibrate_and_stack(prism, photometry=obj.photometry, method="chebyshev",
                                     stacking_method="weighted_mean", object_id=obj.object_id)
        g.save(result.plot(), "calibrate_and_stack", "calibrate_and_stack(...).plot(): 3-panel diagnostic")
        if multi_id:
            other = cf.get_object(multi_id)
            result = calibrate_and_stack(other.spectra[other.spectra.grating == "PRISM"], photometry=other.photometry,
                                         method="chebyshev", stacking_method="weighted_mean", object_id=multi_id)
            fig = result.plot(redshift=other.redshift if other.redshift == other.redshift else None)
            g.save(fig, "calibrate_and_stack_multi", f"calibrate_and_stack of the PRISM spectra of {multi_id}")

    for title, make in (("calibration", calibration), ("stack", stack),
                        ("calibrate_and_stack", calibrated_stack)):
        g.attempt(title, make)

    # -- Plotly helpers ------------------------------------------------------------------------------
    def plotly_figures():
        from campfire.plotting import plot_redshift_fit, plot_spectrum, plot_spectrum_simple

        data = cf.get_spectrum_data(spec_id)
        figs = {"plotly_spectrum": plot_spectrum(data, redshift=z, show_emission_lines=z is not None)}
        try:
            fit = cf.get_redshift_fit_data(spec_id)
        except CampfireError as err:
            g.skip("plot_redshift_fit", f"{type(err).__name__}: {err}")
        else:
            figs["plotly_redshift_fit"] = plot_redshift_fit(fit, spectrum_data=data)
        figs["plotly_spectrum_simple"] = plot_spectrum_simple(data, redshift=z)
        for name, fig in figs.items():
            page = out / f"{name}.html"
            # plotly.min.js once beside the pages: they open offline
            fig.write_html(page, include_plotlyjs="directory")
            g.paths.append(str(page))
        pngs = figures_to_png(list(figs.values()), [out / f"{name}.png" for name in figs])
        for name in figs:
            files = [f"{name}.html"] + ([f"{name}.png"] if pngs else [])
            note = "" if pngs else "PNG not rendered: no kaleido+Chrome or headless Chromium here"
            g.entries.append((f"{name} (Plotly)", note, files))
        g.paths += pngs or []

    g.attempt("Plotly figures", plotly_figures)
    return g.paths + [g.write_index()]
