"""Emission lines and flux-unit conversion (the model layer; tasks may import it).

Vacuum rest wavelengths in Angstrom (SCIENCE.md). f_lambda = f_nu c / lambda^2 is
done by astropy.units here and nowhere else.

Examples
--------
>>> from campfire import get_emission_lines
>>> t = get_emission_lines(redshift=2.5, wave_min=1.0, wave_max=5.0)
>>> 'Halpha' in t['name']
True
"""
from __future__ import annotations

import functools
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from campfire.errors import ValidationError

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = [
    "EMISSION_LINES",
    "ABSORPTION_LINES",
    "get_emission_lines",
    "emission_lines_in",
    "check_redshift",
    "convert_flux_units",
    "normalize_flux_unit",
    "FNU_UNIT",
    "FLAM_UNIT",
    "WAVE_UNIT",
    "NORMALIZED_UNIT",
    "norm_window_of",
    "fnu_unit_of",
]

FNU_UNIT = "uJy"
FLAM_UNIT = "erg / (s cm2 Angstrom)"
WAVE_UNIT = "um"
NORMALIZED_UNIT = ""  # dimensionless (astropy: Unit('')): f_ν divided by its median in a window


def norm_window_of(spec) -> tuple[float, float] | None:
    """The normalisation window [μm] of a normalised spectrum or stack (``meta['norm_window']``), or None.

    A spectrum divided by its median f_ν in a window (``normalize_in_window``, a
    normalised or population stack) is dimensionless: its unit is
    :data:`NORMALIZED_UNIT`, not μJy (:func:`fnu_unit_of`).

    Parameters
    ----------
    spec : SpectrumData, dict or None
        Anything with a ``meta`` mapping, or the mapping itself.

    Returns
    -------
    (float, float) or None

    Examples
    --------
    >>> norm_window_of({'norm_window': [0.42, 0.48]}), norm_window_of({})
    ((0.42, 0.48), None)
    """
    meta = spec if isinstance(spec, dict) else (getattr(spec, "meta", None) or {})
    win = meta.get("norm_window")
    if win is None or len(win) != 2:
        return None
    return float(win[0]), float(win[1])


def fnu_unit_of(spec) -> str:
    """``'uJy'``, or ``''`` (dimensionless) for a normalised spectrum (:func:`norm_window_of`).

    Examples
    --------
    >>> fnu_unit_of({'norm_window': [0.42, 0.48]}), fnu_unit_of({})
    ('', 'uJy')
    """
    return NORMALIZED_UNIT if norm_window_of(spec) else FNU_UNIT

EMISSION_LINES = MappingProxyType(
    {
        "Lyalpha": 1215.67,
        "CIV": 1549.48,
        "HeII": 1640.42,
        "CIII]": 1908.73,
        "MgII-2796": 2796.35,
        "MgII-2804": 2803.53,
        "[OII]-3727": 3727.09,
        "[OII]-3730": 3729.88,
        "[NeIII]": 3869.86,
        "Hdelta": 4102.89,
        "Hgamma": 4341.69,
        "Hbeta": 4862.68,
        "[OIII]-4960": 4960.30,
        "[OIII]-5008": 5008.24,
        "HeI-5877": 5877.25,
        "[OI]": 6302.05,
        "[NII]-6550": 6549.86,
        "Halpha": 6564.61,
        "[NII]-6585": 6585.27,
        "[SII]-6718": 6718.29,
        "[SII]-6733": 6732.67,
        "[SIII]-9071": 9071.1,
        "[SIII]-9533": 9533.2,
        "HeI-10833": 10833.3,
        "Pagamma": 10941.1,
        "Pabeta": 12821.6,
        "Paalpha": 18756.1,
    }
)
"""Vacuum rest wavelengths [Angstrom] of the standard rest-UV/optical/near-IR lines."""

ABSORPTION_LINES = MappingProxyType(
    {
        "Lyman-limit": 911.75,
        "Balmer-break": 3646.0,
        "CaII-K": 3934.78,
        "CaII-H": 3969.59,
        "G-band": 4305.61,
        "MgI-b": 5176.7,
        "NaI-D": 5894.6,
    }
)
"""Vacuum rest wavelengths [Angstrom] of absorption features and breaks marked by viewers."""

_UNIT_ALIASES = {
    "fnu": "fnu",
    "f_nu": "fnu",
    "ujy": "fnu",
    "flam": "flam",
    "flambda": "flam",
    "f_lambda": "flam",
    "f_lam": "flam",
}


def normalize_flux_unit(value: str, parameter: str = "to_unit") -> str:
    """'fnu'|'flam' from the accepted spellings (aliases 'flambda', 'f_nu', ...).

    Parameters
    ----------
    value : str
    parameter : str
        The parameter name for the error message.

    Returns
    -------
    str

    Raises
    ------
    ValidationError
        An unknown unit (the message lists the allowed ones).

    Examples
    --------
    >>> normalize_flux_unit('f_lambda')
    'flam'
    """
    key = str(value).strip().lower() if isinstance(value, str) else None
    if key not in _UNIT_ALIASES:
        raise ValidationError(
            f"{parameter}: unknown flux unit {value!r}; allowed: 'fnu' (uJy) or 'flam' / 'flambda' "
            "(erg/s/cm2/A)"
        )
    return _UNIT_ALIASES[key]


def convert_flux_units(flux, wavelength, to_unit: str = "flambda", from_unit: str | None = None):
    """Convert flux densities between f_nu [uJy] and f_lambda [erg/s/cm2/A].

    Parameters
    ----------
    flux : array_like
        Flux densities (f_nu in uJy when converting to f_lambda, and vice versa).
    wavelength : array_like
        Wavelength in micron, broadcastable against ``flux``.
    to_unit : {'flambda', 'flam', 'fnu'}
        Target unit.
    from_unit : {'fnu', 'flam', 'flambda'}, optional
        Source unit; default the other one.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValidationError
        An unknown unit.

    Examples
    --------
    >>> import numpy as np
    >>> convert_flux_units(np.array([1.0]), np.array([1.0]), to_unit='flambda')
    array([2.99792458e-19])
    """
    target = normalize_flux_unit(to_unit)
    source = normalize_flux_unit(from_unit, "from_unit") if from_unit else ("flam" if target == "fnu" else "fnu")
    flux = np.asarray(flux, dtype=float)
    if source == target:
        return flux.copy()
    # f_lambda = f_nu c / lambda^2: astropy gives the factor at 1 micron, the lambda^-2 (or lambda^2) is exact
    # (astropy's spectral_density on a whole array costs ~15 ms a call; this is one multiplication)
    power = -2.0 if target == "flam" else 2.0
    return flux * _factor_at_one_micron(source, target) * np.asarray(wavelength, dtype=float) ** power


@functools.lru_cache(maxsize=None)
def _factor_at_one_micron(source: str, target: str) -> float:
    import astropy.units as u

    units = {"fnu": u.uJy, "flam": u.erg / u.s / u.cm**2 / u.AA}
    return float((1.0 * units[source]).to(units[target], equivalencies=u.spectral_density(1.0 * u.um)).value)


def check_redshift(redshift, *, optional: bool = False) -> float | None:
    """``redshift`` as a finite float >= 0 (the one check of every redshift argument).

    With ``optional``, None passes through (e.g. a plot without line markers).

    Parameters
    ----------
    redshift : float or str
    optional : bool
        Let None through.

    Returns
    -------
    float or None

    Raises
    ------
    ValidationError
        Not a finite number >= 0.

    Examples
    --------
    >>> check_redshift("2.5"), check_redshift(None, optional=True)
    (2.5, None)
    """
    if redshift is None and optional:
        return None
    expected = "a finite number >= 0" + (" or None" if optional else "")
    try:
        z = float(redshift)
    except (TypeError, ValueError):
        raise ValidationError(f"redshift: expected {expected}, got {redshift!r}") from None
    if not np.isfinite(z) or z < 0:
        raise ValidationError(f"redshift: expected {expected}, got {redshift!r}")
    return z


def emission_lines_in(redshift: float = 0.0, wave_min: float | None = None,
                      wave_max: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(names, rest_wavelength, observed_wavelength)`` of the lines observed at ``redshift``
    inside [wave_min, wave_max] micron, by observed wavelength: :func:`get_emission_lines` as
    plain arrays (no astropy.table: a quick-look figure on a Dask worker does not import it).

    Parameters
    ----------
    redshift : float
        Redshift (>= 0).
    wave_min, wave_max : float, optional
        Observed range [μm].

    Returns
    -------
    names : numpy.ndarray of str
    rest_wavelength : numpy.ndarray
        [Angstrom].
    observed_wavelength : numpy.ndarray
        [micron].

    Raises
    ------
    ValidationError
        A bad redshift, or ``wave_min > wave_max``.

    Examples
    --------
    >>> names, rest, obs = emission_lines_in(redshift=3.0, wave_min=2.6, wave_max=2.65)
    >>> [str(n) for n in names], [round(float(w), 4) for w in obs]
    (['[NII]-6550', 'Halpha', '[NII]-6585'], [2.6199, 2.6258, 2.6341])
    """
    z = check_redshift(redshift)
    names = list(EMISSION_LINES)
    rest = np.array([EMISSION_LINES[n] for n in names])
    obs = rest * (1 + z) / 1e4
    keep = np.ones(len(names), bool)
    if wave_min is not None:
        keep &= obs >= float(wave_min)
    if wave_max is not None:
        keep &= obs <= float(wave_max)
    if wave_min is not None and wave_max is not None and float(wave_min) > float(wave_max):
        raise ValidationError(f"wave_min ({wave_min}) must not exceed wave_max ({wave_max})")
    order = np.argsort(obs[keep], kind="stable")
    return np.array(names)[keep][order], rest[keep][order], obs[keep][order]


def get_emission_lines(redshift: float = 0.0, wave_min: float | None = None, wave_max: float | None = None) -> Table:
    """Lines observed at ``redshift`` inside [wave_min, wave_max] micron.

    Parameters
    ----------
    redshift : float
        Redshift (>= 0).
    wave_min, wave_max : float, optional
        Observed range [μm].

    Returns
    -------
    astropy.table.Table
        Columns ``name``, ``rest_wavelength`` [Angstrom], ``observed_wavelength`` [micron].

    Raises
    ------
    ValidationError
        A bad redshift, or ``wave_min > wave_max``.

    Examples
    --------
    >>> t = get_emission_lines(redshift=3.0, wave_min=2.6, wave_max=2.65)
    >>> [str(n) for n in t['name']]
    ['[NII]-6550', 'Halpha', '[NII]-6585']
    """
    names, rest, obs = emission_lines_in(redshift, wave_min, wave_max)
    import astropy.units as u
    from astropy.table import Table

    table = Table({"name": names, "rest_wavelength": rest * u.AA, "observed_wavelength": obs * u.um})
    table.meta["redshift"] = check_redshift(redshift)
    return table
