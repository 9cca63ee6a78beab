"""IDs, programs and fields from names and headers; the data-derived quality numbers and DQ flags."""
from __future__ import annotations

import numpy as np
import pytest
from real_inputs import DJA, OLD, STARK

from campfire.archive.names import (
    KNOWN_FIELDS,
    PLACEHOLDER_PROGRAM,
    coordinate_name,
    field_for,
    parse_dja_name,
    program_from_jwst_name,
    resolve_identity,
    separation_deg,
)
from campfire.errors import FileFormatError
from campfire.flags import DQFlags, decode_flags
from campfire.models import SpectrumData
from campfire.tasks.quality import (
    CHIP_GAP_MIN_PIXELS,
    LOW_SNR_THRESHOLD,
    NOMINAL_RANGES,
    invalid_runs,
    median_snr,
    spectrum_quality,
)


@pytest.mark.parametrize("path", sorted(DJA.glob("*.spec.fits")), ids=lambda p: p.name[:24])
def test_dja_names_of_the_real_files_agree_with_their_headers(path):
    parts = parse_dja_name(path.name)
    h = SpectrumData.from_fits(path).header
    assert (parts.grating, parts.filter) == (h["GRATING"], h["FILTER"])
    assert parts.program_id == int(h["PROGRAM"])
    assert parts.source_id == str(h["SOURCEID"])
    ident = resolve_identity(path.name, h)
    assert ident.observation == parts.root == path.name.split("_")[0]
    assert ident.spectrum_id == f"{parts.root}_{parts.grating.lower()}_{parts.filter.lower()}_{parts.source_id}"
    assert ident.target_id == f"{parts.root}_{parts.source_id}"
    assert ident.program_from == "header"


def test_names_that_do_not_follow_the_dja_scheme():
    assert parse_dja_name(OLD.name) is None
    assert parse_dja_name("x_prism-f290lp_1_2.spec.fits") is not None  # any known grating/filter pair parses
    assert parse_dja_name("x_g999m-clear_1_2.spec.fits") is None
    assert parse_dja_name("x_prism-clear_1_2.fits") is None


def test_the_older_msaexp_file_gets_its_ids_from_headers_and_its_program_from_srcname():
    h = SpectrumData.from_fits(OLD).header
    assert "PROGRAM" not in h
    ident = resolve_identity(OLD.name, h)
    assert ident.observation == "static-test-driz-center-bkg"
    assert ident.spectrum_id == "static-test-driz-center-bkg_prism_clear_933"
    assert (ident.program_id, ident.program_from) == (1345, "srcname")


def test_a_table_row_supplies_observation_and_program_a_file_lacks():
    h = SpectrumData.from_fits(OLD).header
    ident = resolve_identity(OLD.name, h, {"root": "ceers-msaexp-test", "program_id": 1345})
    assert ident.spectrum_id == "ceers-msaexp-test_prism_clear_933"
    assert (ident.program_id, ident.program_from) == (1345, "table")


def test_a_file_that_names_no_program_gets_the_documented_placeholder():
    h = dict(SpectrumData.from_fits(OLD).header, SRCNAME="faint_thing")
    ident = resolve_identity(OLD.name, h)
    assert (ident.program_id, ident.program_from) == (PLACEHOLDER_PROGRAM[0], "placeholder")
    assert ident.source_id == "933"


def test_a_renamed_file_whose_name_contradicts_its_headers_is_refused():
    h = SpectrumData.from_fits(STARK[0]).header  # G140M
    with pytest.raises(FileFormatError, match="file name says G395M/F290LP but the headers say G140M/F100LP"):
        resolve_identity("stark-rxcj2248-v4_g395m-f290lp_2478_3.spec.fits", h)


def test_no_configuration_no_source_id_are_errors():
    with pytest.raises(FileFormatError, match="no GRATING/FILTER"):
        resolve_identity("x.spec.fits", {"SRCID": 3})
    with pytest.raises(FileFormatError, match="no source ID"):
        resolve_identity("x.spec.fits", {"GRATING": "PRISM", "FILTER": "CLEAR"})


def test_jwst_file_names_give_the_proposal_id():
    assert program_from_jwst_name("jw01345062001_03101_00001_nrs2_phot.138.1345_933.fits") == 1345
    assert program_from_jwst_name("/x/jw03215001002_02_msa.fits") == 3215
    assert program_from_jwst_name("msa.fits") is None and program_from_jwst_name(None) is None


def test_fields_known_nearby_and_by_coordinates():
    assert field_for(53.1499, -27.7765, []) == "gds"
    assert field_for(214.8337, 52.8683, []) == "egs"
    assert field_for(34.3203, -5.2227, []) == "uds"
    assert field_for(342.1909, -44.5375, []) == "j2248m4432"
    # a second pointing 10' away joins the field of the first instead of a new coordinate name
    assert field_for(342.35, -44.50, [("j2248m4432", 342.179, -44.534)]) == "j2248m4432"
    assert coordinate_name(0.01, 0.5) == "j0000p0030"
    assert all(separation_deg(ra, dec, ra, dec) == 0 for ra, dec, _ in KNOWN_FIELDS.values())
    assert separation_deg(10, 0, 10, 1) == pytest.approx(1.0)


# -- quality ------------------------------------------------------------------------------------
def _flags(q):
    return decode_flags(q["dq_flags"], "dq_flags")


def test_chip_gap_is_an_internal_run_of_invalid_pixels_of_at_least_the_documented_length():
    wave = np.linspace(0.6, 5.3, 500)
    err = np.full(500, 0.1)
    flux = np.ones(500)
    flux[:30] = np.nan  # padding at the ends is not a gap
    flux[-30:] = np.nan
    assert "CHIP_GAP" not in _flags(spectrum_quality(wave, flux, err, "PRISM", "CLEAR"))
    flux[200:200 + CHIP_GAP_MIN_PIXELS - 1] = np.nan  # a bad-pixel cluster
    assert "CHIP_GAP" not in _flags(spectrum_quality(wave, flux, err, "PRISM", "CLEAR"))
    flux[200:200 + CHIP_GAP_MIN_PIXELS] = np.nan
    q = spectrum_quality(wave, flux, err, "PRISM", "CLEAR")
    assert "CHIP_GAP" in _flags(q)
    assert q["gaps"] == [(pytest.approx(wave[199]), pytest.approx(wave[200 + CHIP_GAP_MIN_PIXELS]))]
    assert invalid_runs(np.isfinite(flux)) == [(200, 200 + CHIP_GAP_MIN_PIXELS)]


def test_partial_coverage_against_the_nominal_range_and_low_snr_threshold():
    wave = np.linspace(2.5, 5.6, 400)  # G395M/F290LP nominal 2.87-5.27
    flux, err = np.full(400, 1.0), np.full(400, 1.0 / LOW_SNR_THRESHOLD)
    q = spectrum_quality(wave, flux, err, "G395M", "F290LP")
    assert _flags(q) == [] and q["coverage"] == pytest.approx(1.0) and q["signal_to_noise"] == pytest.approx(3.0)
    flux[wave > 4.0] = np.nan  # covers 2.87-4.0 of 2.87-5.27: 47 %
    q = spectrum_quality(wave, flux, err * 1.01, "G395M", "F290LP")
    assert _flags(q) == ["LOW_SNR", "PARTIAL_COVERAGE"]
    assert q["coverage"] == pytest.approx((4.0 - 2.87) / (5.27 - 2.87), abs=0.01)
    assert "PARTIAL_COVERAGE" not in _flags(spectrum_quality(wave, flux, err, "G999M", "F290LP"))  # unknown config


def test_zero_errors_count_as_bad_pixels_like_older_msaexp_files():
    assert median_snr([1.0, 5.0, 2.0], [0.0, 1.0, 1.0]) == pytest.approx(3.5)
    assert np.isnan(median_snr([np.nan], [1.0]))
    q = spectrum_quality([1.0, 2.0], [np.nan, np.nan], [1.0, 1.0], "PRISM", "CLEAR")
    assert q["n_valid"] == 0 and "LOW_SNR" in _flags(q) and "PARTIAL_COVERAGE" in _flags(q)


def test_nominal_ranges_agree_with_the_demo_instrument_model():
    from campfire.demo.instrument import CONFIGS

    for key, cfg in CONFIGS.items():
        lo, hi = NOMINAL_RANGES[(cfg.grating, cfg.filter)]
        if key == "G140M/F070LP":  # SCIENCE.md: nominal from 0.90 μm; the demo simulates the data down to 0.70
            assert (lo, hi) == (0.90, cfg.nominal[1]) and cfg.nominal[0] == 0.70
        else:
            assert (lo, hi) == cfg.nominal, key


def test_quality_of_the_real_files():
    # the three stark gratings each have the NRS1/NRS2 gap inside their range
    for path, gap in zip(STARK, [(1.77, 1.87), (2.96, 3.13), (4.90, 5.19)]):
        s = SpectrumData.from_fits(path)
        q = spectrum_quality(s.wavelength, s.fnu, s.fnu_err, s.grating, s.filter)
        assert "CHIP_GAP" in _flags(q)
        assert q["gaps"][0] == (pytest.approx(gap[0], abs=0.01), pytest.approx(gap[1], abs=0.01))
    # the older file has data from 1.445 um only (NRS2): PARTIAL_COVERAGE, and zeros as bad pixels
    s = SpectrumData.from_fits(OLD)
    q = spectrum_quality(s.wavelength, s.fnu, s.fnu_err, "PRISM", "CLEAR")
    assert "PARTIAL_COVERAGE" in _flags(q) and "CHIP_GAP" not in _flags(q)
    assert q["n_valid"] == 414 - 84 and q["wave_min"] == pytest.approx(1.445, abs=0.001)
    assert int(DQFlags.PARTIAL_COVERAGE) & q["dq_flags"]
