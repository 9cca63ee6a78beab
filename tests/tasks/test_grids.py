"""Issue 17.4: stacks over several gratings — the default grid warns about the range it
leaves out, ``wavelength_grid='union'`` keeps every input's range at the finest native
sampling in each region. Checked on the real three-grating spectra of stark-rxcj2248 2478_3
(G140M + G235M + G395M, PROVENANCE.md)."""
from __future__ import annotations

import pathlib
import warnings

import numpy as np
import pytest

from campfire.calibration import stack_spectra
from campfire.errors import StackRangeWarning, ValidationError
from campfire.models import SpectrumData
from campfire.tasks.grids import coverage, uncovered_ranges, union_grid

STARK = sorted(pathlib.Path("/work/shared/data/real/spectra/dja_v4").glob("stark-rxcj2248-v4_*_2478_3.spec.fits"))


@pytest.fixture(scope="module")
def stark():
    return [SpectrumData.from_fits(p) for p in STARK]


def _native_step(spec, lam):
    """The input's own pixel step at ``lam`` (NaN outside its coverage): computed from its pixels."""
    w = spec.wavelength[spec.valid]
    if not any(lo <= lam <= hi for lo, hi in coverage(spec)):
        return np.nan
    i = np.clip(np.searchsorted(w, lam), 1, w.size - 1)
    return w[i] - w[i - 1]


def test_default_grid_warns_and_names_the_lost_range(stark):
    assert [s.grating for s in stark] == ["G140M", "G235M", "G395M"]
    with pytest.warns(StackRangeWarning) as caught:
        st = stack_spectra(stark)
    msg = str(caught[0].message)
    # G140M has the most pixels (0.55–3.35 μm): G235M and G395M reach to 5.50 μm
    assert "G140M" in msg and "leaves out 3.35–4.90, 5.19–5.50 μm" in msg and "wavelength_grid='union'" in msg
    assert st.wavelength.max() < 3.36 and st.meta["grid"] == "largest input"
    # an explicit grid is the user's choice: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", StackRangeWarning)
        stack_spectra(stark, wavelength_grid=np.linspace(1.0, 2.0, 300))


def test_union_grid_covers_everything_at_the_finest_sampling(stark):
    with warnings.catch_warnings():
        warnings.simplefilter("error", StackRangeWarning)
        st = stack_spectra(stark, wavelength_grid="union")
    g = st.wavelength
    assert st.meta["grid"] == "union" and np.all(np.diff(g) > 0)
    lo = min(iv[0] for s in stark for iv in coverage(s))
    hi = max(iv[1] for s in stark for iv in coverage(s))
    assert g[0] == pytest.approx(lo, abs=1e-9) and g[-1] == pytest.approx(hi, abs=1e-9)
    assert uncovered_ranges(stark, g) == []
    # the step at λ is the finest of the inputs covering λ, to 2% (sampled every 0.05 μm)
    for lam in np.arange(1.0, 5.45, 0.05):
        steps = [_native_step(s, lam) for s in stark]
        if np.all(np.isnan(steps)):  # the gap of G395M's two detectors, 4.90–5.19 μm: no input there
            continue
        native = np.nanmin(steps)
        i = np.clip(np.searchsorted(g, lam), 1, g.size - 1)
        assert g[i] - g[i - 1] == pytest.approx(native, rel=0.02), lam
    # flux is conserved where one grating alone covers (G395M, 4.62–4.86 μm)
    g395m = stark[2]
    for spec, grid in ((st, g), (g395m, g395m.wavelength)):
        sel = (grid > 4.62) & (grid < 4.86) & np.isfinite(spec.fnu)
        assert sel.sum() > 50
    only = (g > 4.62) & (g < 4.86)
    mine = (g395m.wavelength > 4.62) & (g395m.wavelength < 4.86)
    assert np.nanmean(st.fnu[only]) == pytest.approx(np.nanmean(g395m.fnu[mine]), rel=0.02)
    assert np.all(st.count[only] == 1)


def test_union_of_unions_and_validation(stark):
    whole = union_grid(stark)
    parts = union_grid([union_grid(stark[:1]), union_grid(stark[1:])])
    assert parts[0] == whole[0] and parts[-1] == whole[-1]
    assert parts.size == pytest.approx(whole.size, rel=0.005)
    # a gap no input covers gets no pixels
    g = union_grid([np.linspace(1.0, 2.0, 101), np.linspace(3.0, 4.0, 11)])
    assert not np.any((g > 2.0) & (g < 3.0)) and g.size == 101 + 11
    with pytest.raises(ValidationError, match="wavelength_grid"):
        stack_spectra(stark, wavelength_grid="widest")
    with pytest.raises(ValidationError, match="two valid pixels"):
        union_grid([np.array([1.0])])


def test_uncovered_ranges_skips_inputs_inside_the_grid_without_changing_the_answer(stark):
    """Inputs whose valid pixels lie in the grid's range are not segmented (the fast path):
    the answer equals that of every input's coverage, for grids cutting each input."""
    from campfire.tasks.grids import ranges_outside

    gapped = SpectrumData(np.r_[np.linspace(1.0, 1.3, 40), np.linspace(1.6, 2.2, 60)], np.ones(100), np.ones(100))
    inputs = [*stark, gapped, np.linspace(2.0, 2.5, 30)]
    for lo, hi in [(0.5, 6.0), (1.05, 3.0), (1.4, 2.1), (2.0, 2.5), (3.4, 4.95), (1.0, 1.3)]:
        grid = np.linspace(lo, hi, 200)
        every = ranges_outside((iv for s in inputs for iv in coverage(s)), grid)
        assert uncovered_ranges(inputs, grid) == every, (lo, hi)
    assert uncovered_ranges(inputs, np.linspace(0.5, 6.0, 10)) == []
    first = min(iv[0] for s in inputs for iv in coverage(s))
    assert uncovered_ranges(inputs, np.linspace(1.4, 2.1, 10))[0] == (first, 1.4)
