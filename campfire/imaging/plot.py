"""The cutout figure: a cutout PNG with the MSA shutters as matplotlib vector patches.

:func:`plot_cutout` (behind ``cf.plot_cutout``) draws the image north-up, east-left,
the shutters of the chosen categories in their styles (they stay vector in PDF), a
scalebar in arcsec and N/E arrows.
"""
from __future__ import annotations

import math
import os
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np

from campfire.errors import ValidationError
from campfire.imaging.geometry import check_fov, check_object_id
from campfire.imaging.render import read_cutout_png
from campfire.imaging.shutters import CATEGORIES

__all__ = ["plot_cutout", "DEFAULT_SHUTTER_STYLES", "MARKERS", "selected_categories"]

MARKERS = ("box", "corners")

DEFAULT_SHUTTER_STYLES: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        # yellow reads on both the dark sky and a bright galaxy
        "target": MappingProxyType(
            {"marker": "box", "edgecolor": "#ffd60a", "facecolor": "none", "linewidth": 1.4, "linestyle": "-",
             "alpha": 1.0, "zorder": 4, "corner_length": 0.3}
        ),
        "other": MappingProxyType(
            {"marker": "box", "edgecolor": "white", "facecolor": "none", "linewidth": 0.7, "linestyle": "-",
             "alpha": 0.8, "zorder": 3, "corner_length": 0.3}
        ),
        # failed closed: filled, so they read as "no light here" (no 'alpha': it would override the fill's)
        "stuck_closed": MappingProxyType(
            {"marker": "box", "edgecolor": "#ff453a", "facecolor": (1.0, 0.27, 0.23, 0.35), "linewidth": 0.7,
             "linestyle": "-", "zorder": 3, "corner_length": 0.3}
        ),
    }
)
"""Per-category shutter styles; ``shutter_style`` entries are merged over these.

``marker`` is ``'box'`` (the shutter outline) or ``'corners'`` (four L-shaped corner
marks, JADES style, each ``corner_length`` × the side long); every other key is a
matplotlib patch property.
"""


def selected_categories(which) -> tuple[str, ...]:
    """``shutters=`` → the categories to draw: True/'all', 'target', False/None, or a list.

    Parameters
    ----------
    which : bool, str, list of str or None

    Returns
    -------
    tuple of str

    Raises
    ------
    ValidationError
        Anything else (the message lists the choices).

    Examples
    --------
    >>> selected_categories('target'), selected_categories(False)
    (('target',), ())
    """
    if which is None or which is False:
        return ()
    if which is True or which == "all":
        return CATEGORIES
    if isinstance(which, str):
        if which in CATEGORIES:
            return (which,)
    elif isinstance(which, (list, tuple, set, frozenset)) and all(isinstance(c, str) for c in which):
        bad = [c for c in which if c not in CATEGORIES]
        if not bad:
            return tuple(c for c in CATEGORIES if c in which)
    raise ValidationError(
        f"shutters: expected True or 'all' (all shutters), 'target' (target only), False (none), "
        f"a category among {', '.join(map(repr, CATEGORIES))} or a list of them; got {which!r}"
    )


def _merge_styles(shutter_style, marker=None) -> dict[str, dict[str, Any]]:
    """Defaults ← ``marker`` (all categories) ← per-category ``shutter_style`` entries."""
    styles = {cat: dict(style) for cat, style in DEFAULT_SHUTTER_STYLES.items()}
    if marker is not None:
        for style in styles.values():
            style["marker"] = marker
    if shutter_style is not None:
        if not isinstance(shutter_style, Mapping):
            raise ValidationError(
                f"shutter_style: expected a dict of per-category styles, e.g. "
                f"{{'target': {{'edgecolor': 'cyan'}}}}, got {type(shutter_style).__name__}"
            )
        for cat, override in shutter_style.items():
            if cat not in CATEGORIES:
                raise ValidationError(
                    f"shutter_style: unknown shutter category {cat!r}; allowed: {', '.join(map(repr, CATEGORIES))}"
                )
            if override is None:
                continue
            if not isinstance(override, Mapping):
                raise ValidationError(f"shutter_style[{cat!r}]: expected a dict of style properties, got {override!r}")
            styles[cat].update(override)
    from matplotlib.patches import Polygon

    for cat, style in styles.items():
        if style["marker"] not in MARKERS:
            raise ValidationError(
                f"marker: unknown shutter marker {style['marker']!r} for {cat!r}; allowed: {', '.join(map(repr, MARKERS))}"
            )
        length = style["corner_length"]
        if isinstance(length, bool) or not isinstance(length, (int, float)) or not 0 < length <= 0.5:
            raise ValidationError(f"corner_length: expected a fraction of the shutter side in (0, 0.5], got {length!r}")
        # matplotlib's own check, turned into a message that names the category
        try:
            Polygon(np.zeros((3, 2))).set(**_patch_props(style))
        except (AttributeError, TypeError, ValueError) as err:
            raise ValidationError(f"shutter_style[{cat!r}]: {err}") from err
    return styles


def _patch_props(style: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in style.items() if k not in ("marker", "corner_length")}


def _nice_length(fov: float) -> float:
    """A round scalebar length of about a quarter of the field."""
    for length in (30.0, 20.0, 10.0, 5.0, 2.0, 1.0, 0.5, 0.25, 0.2, 0.1, 0.05, 0.02, 0.01):
        if length <= fov / 4:
            return length
    return fov / 4


def _corner_paths(corners: np.ndarray, fraction: float) -> list[np.ndarray]:
    """Four L-shaped marks (3 vertices each: along one edge, the corner, along the other)."""
    marks = []
    for i in range(4):
        c = corners[i]
        prev, nxt = corners[i - 1], corners[(i + 1) % 4]
        marks.append(np.array([c + fraction * (prev - c), c, c + fraction * (nxt - c)]))
    return marks


def _draw_shutter(ax, corners: np.ndarray, style: Mapping[str, Any], gid: str) -> list:
    from matplotlib.patches import PathPatch, Polygon
    from matplotlib.path import Path

    props = _patch_props(style)
    if style["marker"] == "box":
        patch = Polygon(corners, closed=True, gid=gid, **props)
        ax.add_patch(patch)
        return [patch]
    props.pop("facecolor", None)
    props["fill"] = False  # corner marks are open strokes
    props.setdefault("capstyle", "projecting")
    patches = []
    for k, mark in enumerate(_corner_paths(corners, float(style["corner_length"]))):
        path = Path(mark, [Path.MOVETO, Path.LINETO, Path.LINETO])
        patch = PathPatch(path, gid=f"{gid}:corner{k}", **props)
        ax.add_patch(patch)
        patches.append(patch)
    return patches


def _draw_scalebar(ax, fov: float, length: float, color: str = "white") -> None:
    import matplotlib.patheffects as pe

    outline = [pe.withStroke(linewidth=3.5, foreground="black")]
    # lower-left of the axes; x grows to the east = leftwards, so the bar runs from x0 to x0 - length
    x0 = fov / 2 - 0.07 * fov
    y0 = -fov / 2 + 0.07 * fov
    ax.plot([x0, x0 - length], [y0, y0], color=color, linewidth=2.0, solid_capstyle="butt", gid="scalebar",
            path_effects=outline, zorder=6)
    label = f"{length:g}″"
    ax.text(x0 - length / 2, y0 + 0.025 * fov, label, color=color, ha="center", va="bottom", fontsize=9,
            gid="scalebar-label", path_effects=outline, zorder=6)


def _draw_compass(ax, color: str = "white") -> None:
    import matplotlib.patheffects as pe

    outline = [pe.withStroke(linewidth=3, foreground="black")]
    base = (0.90, 0.08)  # axes fraction, lower right
    arm = 0.14
    for name, tip, label_at, ha, va in (
        ("N", (base[0], base[1] + arm), (base[0], base[1] + arm + 0.01), "center", "bottom"),
        ("E", (base[0] - arm, base[1]), (base[0] - arm - 0.015, base[1]), "right", "center"),
    ):
        ax.annotate("", xy=tip, xytext=base, xycoords="axes fraction", textcoords="axes fraction",
                    arrowprops={"arrowstyle": "-|>", "color": color, "linewidth": 1.3, "shrinkA": 0, "shrinkB": 0},
                    gid=f"compass-{name}", zorder=6)
        ax.text(*label_at, name, transform=ax.transAxes, color=color, ha=ha, va=va, fontsize=9, fontweight="bold",
                gid=f"compass-{name}-label", path_effects=outline, zorder=6)


def plot_cutout(
    path: str | os.PathLike,
    shutters: Mapping[str, Any] | bool | None = False,
    object_id: str | None = None,
    fov: float | None = None,
    ax=None,
    *,
    which: bool | str | Sequence[str] | None = None,
    shutter_style: Mapping[str, Mapping[str, Any]] | None = None,
    marker: str | None = None,
    scalebar: bool | float = True,
    compass: bool = True,
    title: str | bool | None = None,
):
    """Show a cutout PNG with the MSA shutters drawn as vector patches.

    Parameters
    ----------
    path : str or Path
        A cutout PNG (``cf.get_cutout(...)``); it is drawn north-up, east-left.
    shutters : dict or False
        Shutter geometry from ``cf.get_shutters(...)`` / :func:`shutter_geometry`, or
        False / None for no overlay.
    object_id : str, optional
        The object (title; checked against the PNG's and the geometry's object).
    fov : float, optional
        Field of view [arcsec]; read from the PNG's metadata when omitted.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into (``plt.gca()`` if None).
    which : True, 'all', 'target', False or list of categories
        Which shutters of the geometry to draw (default: all).
    shutter_style : dict, optional
        Per-category overrides merged over :data:`DEFAULT_SHUTTER_STYLES`, e.g.
        ``{'target': {'marker': 'corners', 'edgecolor': 'cyan'}}``. Keys are
        ``'target'``, ``'other'``, ``'stuck_closed'``; values hold ``marker``
        (``'box'`` or ``'corners'``), ``corner_length`` and matplotlib patch
        properties.
    marker : {'box', 'corners'}, optional
        Marker for every category (``shutter_style`` entries still win).
    scalebar : bool or float
        Draw a scalebar (True: a round length of about fov/4; a number: that many arcsec).
    compass : bool
        Draw north and east arrows.
    title : str or bool, optional
        Axes title; default the object ID, False for none.

    Returns
    -------
    matplotlib.axes.Axes
        Shutter patches carry ``gid='shutter:<category>:<index>'`` (corner marks
        ``...:corner<k>``).

    Raises
    ------
    ValidationError
        A file that is not a PNG, a ``fov`` or ``object_id`` that does not match the
        cutout or the geometry, a bad ``shutters``, ``which``, ``shutter_style``,
        ``marker``, ``scalebar`` or ``ax``.
    NotFoundError
        No such PNG file.

    Examples
    --------
    >>> from campfire.imaging import plot_cutout
    >>> path = cf.get_cutout('ember_uds_p4_123456', fov=3.2)  # doctest: +SKIP
    >>> data = cf.get_shutters('ember_uds_p4_123456', fov=3.2)  # doctest: +SKIP
    >>> ax = plot_cutout(path, shutters=data, object_id='ember_uds_p4_123456', fov=3.2,  # doctest: +SKIP
    ...                  shutter_style={'target': {'marker': 'corners', 'edgecolor': 'cyan'}})
    """
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    if object_id is not None:
        check_object_id(object_id)
    image, meta = read_cutout_png(path)
    if fov is None:
        fov = meta.get("fov") or (shutters.get("fov") if isinstance(shutters, Mapping) else None)
        if fov is None:
            raise ValidationError("fov: this PNG carries no campfire metadata; pass fov= (arcsec)")
    fov = check_fov(fov)
    if meta.get("fov") is not None and not math.isclose(float(meta["fov"]), fov, rel_tol=1e-6):
        raise ValidationError(f"fov: {fov:g} does not match the cutout, which spans {float(meta['fov']):g} arcsec")
    for source, name in ((meta, "the cutout"), (shutters if isinstance(shutters, Mapping) else {}, "the shutter data")):
        other = source.get("object_id")
        if object_id is not None and other is not None and other != object_id:
            raise ValidationError(f"object_id: {object_id!r} does not match {name}, which is for {other!r}")
    object_id = object_id or meta.get("object_id") or (shutters.get("object_id") if isinstance(shutters, Mapping) else None)

    if shutters is None or shutters is False:
        categories: tuple[str, ...] = ()
    elif isinstance(shutters, Mapping):
        categories = selected_categories(True if which is None else which)
        if not isinstance(shutters.get("shutters"), list):
            raise ValidationError("shutters: expected the geometry dict of cf.get_shutters() (with a 'shutters' list)")
    elif shutters is True or isinstance(shutters, (str, list, tuple)):
        selected_categories(shutters)  # a bad value gets the full list of choices
        raise ValidationError(
            "shutters: campfire.imaging.plot_cutout needs the geometry dict, e.g. "
            "shutters=cf.get_shutters(object_id, fov=...); use cf.plot_cutout(..., shutters=True|'all'|'target') "
            "to fetch it for you"
        )
    else:
        raise ValidationError(f"shutters: expected the dict of cf.get_shutters() or False, got {type(shutters).__name__}")
    styles = _merge_styles(shutter_style, marker)
    if ax is None:
        ax = plt.gca()
    elif not isinstance(ax, Axes):
        raise ValidationError(f"ax: expected a matplotlib Axes or None, got {type(ax).__name__}")

    half = fov / 2
    kwargs = {"cmap": "gray", "vmin": 0, "vmax": 255} if image.ndim == 2 else {}
    ax.imshow(image, extent=(half, -half, -half, half), origin="upper", interpolation="nearest", zorder=0,
              gid="cutout", **kwargs)
    counters = dict.fromkeys(CATEGORIES, 0)
    for shutter in shutters.get("shutters", []) if categories else []:
        cat = shutter.get("category")
        if cat not in CATEGORIES:
            raise ValidationError(
                f"shutters: geometry has unknown shutter category {cat!r}; allowed: {', '.join(map(repr, CATEGORIES))}"
            )
        if cat not in categories:
            continue
        corners = np.asarray(shutter["corners"], dtype=float)
        if corners.shape != (4, 2):
            raise ValidationError(f"shutters: each shutter needs 4 (east, north) corners, got shape {corners.shape}")
        _draw_shutter(ax, corners, styles[cat], f"shutter:{cat}:{counters[cat]}")
        counters[cat] += 1
    ax.set_xlim(half, -half)
    ax.set_ylim(-half, half)
    ax.set_aspect("equal")
    ax.set_xlabel("ΔRA [arcsec]")
    ax.set_ylabel("ΔDec [arcsec]")
    if scalebar:
        if scalebar is True:
            length = _nice_length(fov)
        elif isinstance(scalebar, (int, float)) and 0 < float(scalebar) <= fov:
            length = float(scalebar)
        else:
            raise ValidationError(f"scalebar: expected True, False or a length in arcsec in (0, fov], got {scalebar!r}")
        _draw_scalebar(ax, fov, length)
    if compass:
        _draw_compass(ax)
    if title is None:
        title = object_id or ""
    if title:
        ax.set_title(str(title), fontsize=9)
    return ax
