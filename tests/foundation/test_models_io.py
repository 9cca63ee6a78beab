"""Models and the FITS reader/writer, on real third-party files and on our own."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

from campfire import CampfireError, SpectrumData, ValidationError
from campfire.errors import FileFormatError
from campfire.io.fits import read_spectrum_2d, write_spectrum_file
from campfire.models import Photometry, Spectrum, SpectrumCollection

REAL = pathlib.Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real" / "spectra"
DJA = sorted((REAL / "dja_v4").glob("*.spec.fits"))


def test_real_files_exist():
    assert len(DJA) == 6, REAL


@pytest.mark.parametrize("path", DJA, ids=lambda p: p.name)
def test_open_real_dja_v4(path):
    spec = SpectrumData.from_fits(path)
    from astropy.io import fits

    with fits.open(path) as h:
        raw = h["SPEC1D"].data
        assert h["SPEC1D"].columns["flux"].unit == "uJy"
        expected_grating = h["SPEC1D"].header["GRATING"]
    # units: uJy in the file stays uJy; NaN pixels stay bad
    good = np.isfinite(raw["flux"]) & (raw["err"] > 0)
    np.testing.assert_allclose(spec.fnu[good], raw["flux"][good], rtol=1e-12)
    assert np.all(np.isnan(spec.fnu[~good]))
    assert spec.grating == expected_grating
    assert spec.header.get("EXPTIME") > 0
    assert spec.wave_units == "um" and 0.5 < np.nanmin(spec.wavelength) < np.nanmax(spec.wavelength) < 5.6
    assert repr(spec).startswith(f"SpectrumData({path.name.removesuffix('.spec.fits')}, {expected_grating}, ")
    # f_lambda from f_nu: f_lam = f_nu c / lambda^2
    i = np.flatnonzero(spec.valid)[10]
    flam = spec.fnu[i] * 1e-29 * 2.99792458e18 / (spec.wavelength[i] * 1e4) ** 2
    assert spec.flam[i] == pytest.approx(flam, rel=1e-9)


@pytest.mark.parametrize("path", DJA, ids=lambda p: p.name)
def test_real_file_round_trips_through_our_writer(path, tmp_path):
    # the input's table keywords (NAXIS1, TTYPE1, BUNIT...) must not leak into the primary HDU we write
    spec = SpectrumData.from_fits(path)
    again = SpectrumData.from_fits(spec.to_fits(tmp_path / "again.spec.fits"))
    np.testing.assert_array_equal(again.wavelength, spec.wavelength)
    np.testing.assert_allclose(again.fnu, spec.fnu, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(again.fnu_err, spec.fnu_err, rtol=1e-12, equal_nan=True)
    assert (again.spectrum_id, again.grating, again.rest_frame) == (spec.spectrum_id, spec.grating, False)


def test_older_msaexp_file_zero_error_pixels_are_bad():
    path = REAL / "msaexp_tests" / "static-test-driz-center-bkg_933.spec.fits"
    spec = SpectrumData.from_fits(path)
    from astropy.io import fits

    with fits.open(path) as h:
        # BUNIT says mJy but the column unit says uJy: the column wins
        assert h["SPEC1D"].header["BUNIT"] == "mJy"
        raw = h["SPEC1D"].data
    zero = raw["err"] == 0
    assert zero.sum() > 0 and np.all(np.isnan(spec.fnu[zero]))
    np.testing.assert_allclose(spec.fnu[~zero], raw["flux"][~zero])
    assert spec.header["EXPTIME"] == pytest.approx(3063.666)  # from EFFEXPTM


@pytest.mark.parametrize("name", sorted(p.name for p in (REAL / "msaexp_tests").glob("jw*.fits")))
def test_pipeline_slitlet_is_refused_clearly(name):
    with pytest.raises(FileFormatError, match="unrectified JWST pipeline slitlet"):
        SpectrumData.from_fits(REAL / "msaexp_tests" / name)


def test_not_a_spectrum_and_truncated(tmp_path):
    text = tmp_path / "notes.spec.fits"
    text.write_text("hello")
    with pytest.raises(CampfireError, match="not a readable FITS"):
        SpectrumData.from_fits(text)
    data = DJA[0].read_bytes()
    cut = tmp_path / "cut.spec.fits"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(CampfireError):
        SpectrumData.from_fits(cut)
    wrong = tmp_path / "wrong.spec.fits"
    from astropy.io import fits

    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name="lam", format="D", array=np.arange(3.0))], name="SPEC1D")]).writeto(wrong)
    with pytest.raises(FileFormatError, match="lacks column"):
        SpectrumData.from_fits(wrong)


def test_write_read_round_trip_and_determinism(tmp_path):
    wave = np.linspace(0.6, 5.3, 50)
    flux = np.sin(wave) + 2
    err = np.full(50, 0.1)
    sci = np.outer(np.hanning(7), flux)
    kw = dict(wave=wave, flux=flux, err=err, header={"SPECID": "x_prism_clear_1", "GRATING": "PRISM", "EXPTIME": 100.0},
              sci=sci, wht=np.ones_like(sci), profile=sci / sci.sum(0),
              prof1d={"pix": np.arange(7.0), "profile": np.hanning(7), "pfit": np.hanning(7)})
    a = write_spectrum_file(tmp_path / "a.spec.fits", **kw)
    b = write_spectrum_file(tmp_path / "b.spec.fits", **kw)
    assert pathlib.Path(a).read_bytes() == pathlib.Path(b).read_bytes()
    spec = SpectrumData.from_fits(a)
    assert spec.spectrum_id == "x_prism_clear_1" and spec.grating == "PRISM"
    np.testing.assert_allclose(spec.fnu, flux)
    d2 = read_spectrum_2d(a)
    assert d2["n_spatial"] == 7 and d2["n_wave"] == 50
    np.testing.assert_allclose(d2["snr_2d"], sci.astype(np.float32), rtol=1e-6)
    with pytest.raises(CampfireError, match="exists"):
        write_spectrum_file(tmp_path / "a.spec.fits", **kw)


FRESH_WRITE_AND_READ = """
import sys
import numpy as np
from campfire.io.fits import write_spectrum_file
from campfire.models import SpectrumData
wave = np.linspace(0.6, 5.3, 40)
path = write_spectrum_file(sys.argv[1], wave=wave, flux=wave + 1.0, err=np.full(40, 0.1),
                           header={"SPECID": "x_prism_clear_2", "GRATING": "PRISM"})
spec = SpectrumData.from_fits(path)
print(float(spec.fnu[0]), "astropy.io.fits" in sys.modules)
"""


def test_campfire_files_are_written_and_read_without_importing_astropy_fits(tmp_path):
    """astropy.io.fits takes ~0.3 s to import: a fresh process (a notebook's first spectrum, a
    Dask or demo-build worker) writes and reads campfire's own files without it."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", FRESH_WRITE_AND_READ, str(tmp_path / "x.spec.fits")],
                         capture_output=True, text=True, check=True, timeout=120).stdout.split()
    assert out == ["1.6", "False"]


def _astropy_spectrum_file(wave, flux, err, header, sci, wht, profile, prof1d, zfit) -> bytes:
    """The same file written by astropy, HDU by HDU (what write_spectrum_file wrote before it
    went through campfire.io.fitsbytes): the oracle of its bytes."""
    import io

    from astropy.io import fits

    def col(name, arr, unit=None):
        return fits.Column(name=name, format="D", array=np.asarray(arr, float), unit=unit)

    primary = fits.PrimaryHDU(header=fits.Header([(k, *v) if isinstance(v, tuple) else (k, v)
                                                  for k, v in header.items()]))
    spec1d = fits.BinTableHDU.from_columns([col("wave", wave, "um"), col("flux", flux, "uJy"), col("err", err, "uJy")],
                                           name="SPEC1D")
    for key in ("GRATING", "FILTER", "SRCNAME", "SOURCEID", "EXPTIME"):
        if key in header:
            spec1d.header[key] = header[key]
    hdus = [primary, spec1d]
    for name, img in (("SCI", sci), ("WHT", wht), ("PROFILE", profile)):
        hdu = fits.ImageHDU(np.asarray(img, np.float32), name=name)
        hdu.header["BUNIT"] = "microJansky"
        hdus.append(hdu)
    hdus.append(fits.BinTableHDU.from_columns([col("pix", prof1d["pix"]), col("profile", prof1d["profile"]),
                                               col("pfit", prof1d["pfit"])], name="PROF1D"))
    z = fits.BinTableHDU.from_columns([col("z", zfit["z_grid"]), col("chi2", zfit["chi2_grid"])], name="ZFIT")
    z.header["REDSHIFT"] = zfit["redshift"]
    z.header["CHI2MIN"] = zfit["chi2_min"]
    z.header["CONFID"] = zfit["confidence"]
    z.header["REDSHLO"] = (zfit["redshift_lo"], "68% interval: 16th pct of p(z)")
    z.header["REDSHHI"] = (zfit["redshift_hi"], "68% interval: 84th pct of p(z)")
    hdus += [z, fits.BinTableHDU.from_columns([col("wave", zfit["model_wave"], "um"),
                                               col("fnu", zfit["model_fnu"], "uJy")], name="ZMODEL")]
    buf = io.BytesIO()
    fits.HDUList(hdus).writeto(buf)
    return buf.getvalue()


def test_write_spectrum_file_writes_astropys_bytes(tmp_path):
    # written card by card (campfire.io.fitsbytes, ~20x faster): the bytes astropy writes
    rng = np.random.default_rng(4)
    wave = np.linspace(0.97, 1.89, 301)
    flux = rng.normal(1.0, 0.3, 301)
    flux[:7] = np.nan
    err = np.full(301, 0.3)
    sci = rng.normal(0, 1, (11, 301))
    header = {"TELESCOP": "JWST", "SPECID": "ash_gds_p1_g140m_f070lp_131253", "SOURCEID": 131253,
              "GRATING": "G140M", "FILTER": "F070LP", "EXPTIME": 7440.0, "RA": 53.1326206, "DEC": -27.8062602,
              "SRCXPOS": -0.0598, "ORIGIN": "campfire demo", "ZAUTO": 1.4421, "ZCONF": 0.0057,
              "YPIXSCL": (0.1, "arcsec per pixel")}
    zfit = {"redshift": 1.4420973439312386, "chi2_min": 873.6754780166563, "confidence": 0.005721170558531719,
            "redshift_lo": 0.5466037020600091, "redshift_hi": 5.925451321901671,
            "z_grid": np.linspace(0, 15, 2044), "chi2_grid": rng.normal(900, 10, 2044),
            "model_wave": wave[7:], "model_fnu": rng.normal(1, 0.1, 294)}
    prof1d = {"pix": np.arange(11.0) - 5, "profile": np.hanning(11), "pfit": np.hanning(11) / 5}
    kw = dict(sci=sci, wht=1 / (sci**2 + 1), profile=np.abs(sci) / 10, prof1d=prof1d, zfit=zfit)
    path = write_spectrum_file(tmp_path / "x.spec.fits", wave=wave, flux=flux, err=err, header=header, **kw)
    assert pathlib.Path(path).read_bytes() == _astropy_spectrum_file(wave, flux, err, header, **kw)
    # a text longer than a card (CONTINUE cards, split where astropy would not): the same value back
    from astropy.io import fits

    long = "a value longer than one card holds, " * 3 + "end"
    path = write_spectrum_file(tmp_path / "y.spec.fits", wave=wave, flux=flux, err=err, header={**header, "NOTE": long},
                               overwrite=True)
    with fits.open(path) as h:
        assert h[0].header["NOTE"] == long and h[0].header["SPECID"] == header["SPECID"]


def test_rice_stamp_writer_writes_astropys_bytes():
    # the demo's imaging stamps: astropy's CompImageHDU bytes (its codecs, without its header machinery)
    import io

    from astropy.io import fits

    from campfire.demo.imaging import stamp_bytes
    from campfire.io.fitsbytes import Unsupported, rice_image_hdu

    rng = np.random.default_rng(5)
    img = rng.normal(0, 6e-4, (200, 200))
    img[90:110, 95:105] += 0.05
    items = {"CRPIX1": (-627.5, "Pixel coordinate of reference point"), "CTYPE1": ("RA---TAN", "gnomonic"),
             "PC1_1": (-1.1111111111111e-05, "Coordinate transformation matrix element"),
             "OBJID": "ember_deep_cosmos_p1_13999", "MOSX0": (8820, "0-based x of this stamp in the field mosaic"),
             "NOISE": (0.000595, "1 sigma per pixel [uJy]")}
    hdr = fits.Header()
    for key, value in items.items():
        hdr[key] = value
    for seed in (1, 35, 9999):
        buf = io.BytesIO()
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(img.astype(np.float32), header=hdr, name="SCI",
                                                           compression_type="RICE_1", quantize_level=8.0,
                                                           quantize_method=1, dither_seed=seed)]).writeto(buf)
        assert stamp_bytes(img, items, seed) == buf.getvalue()
    # NaN pixels (ZBLANK) are left to astropy: the stamp writer still gives astropy's bytes
    with pytest.raises(Unsupported):
        rice_image_hdu("SCI", np.where(img > 0.04, np.nan, img), items)
    nan_img = np.where(img > 0.04, np.nan, img)
    with fits.open(io.BytesIO(stamp_bytes(nan_img, items, 3))) as h:
        assert np.isnan(h["SCI"].data).sum() == np.isnan(nan_img).sum() and h["SCI"].header["MOSX0"] == 8820


@pytest.mark.parametrize("sci_shape, wht_shape", [((50,), (50,)), ((7, 50), (7, 49)), ((0, 50), (0, 50))])
def test_2d_extensions_of_the_wrong_shape_are_a_file_format_error(tmp_path, sci_shape, wht_shape):
    # found by the --runslow FITS mutation fuzzing: NAXIS = 1 on SCI gave an IndexError
    wave = np.linspace(0.6, 5.3, 50)
    path = write_spectrum_file(tmp_path / "odd.spec.fits", wave=wave, flux=np.ones(50), err=np.ones(50),
                               header={"SPECID": "odd_prism_clear_1", "GRATING": "PRISM"},
                               sci=np.ones((7, 50)), wht=np.ones((7, 50)))
    from astropy.io import fits

    with fits.open(path, mode="update") as hdul:
        hdul["SCI"].data = np.ones(sci_shape, np.float32)
        hdul["WHT"].data = np.ones(wht_shape, np.float32)
    with pytest.raises(FileFormatError, match="SCI and WHT must be non-empty 2D images"):
        read_spectrum_2d(path)
    assert SpectrumData.from_fits(path).spectrum_id == "odd_prism_clear_1"  # the 1D spectrum still opens


def test_spectrumdata_validation_and_repr():
    with pytest.raises(ValidationError, match="fnu: expected 3 values"):
        SpectrumData([1, 2, 3], [1, 2], [1, 1, 1])
    spec = SpectrumData(np.linspace(0.5, 5.5, 6), [np.nan, 1, 1, 1, 1, np.nan], [np.nan, 1, 1, 1, 1, np.nan],
                        spectrum_id="s", grating="PRISM")
    assert repr(spec) == "SpectrumData(s, PRISM, 6 pixels, 1.50-4.50 μm)"  # range of finite data


def test_collection_indexing_and_photometry():
    coll = SpectrumCollection([
        Spectrum("a", grating="PRISM", signal_to_noise=12.0, dq_flags=1),
        Spectrum("b", grating="G395M", signal_to_noise=3.0),
        Spectrum("c", grating="PRISM", signal_to_noise=30.0),
    ])
    assert isinstance(coll[0], Spectrum)
    prism = coll[coll.grating == "PRISM"]
    assert list(prism.spectrum_id) == ["a", "c"]
    assert list(coll[coll.signal_to_noise > 10].spectrum_id) == ["a", "c"]
    assert coll.gratings == ["G395M", "PRISM"]
    assert len(coll.to_table()) == 3 and coll.to_table()["dq_flags"][0] == 1
    assert [s.spectrum_id for s in coll] == ["a", "b", "c"]
    assert repr(coll) == "SpectrumCollection(3 spectra: a, b, c)"
    assert repr(coll[coll.grating == "G395M"]) == "SpectrumCollection(1 spectrum: b)"
    with pytest.raises(ValidationError, match="mask"):
        coll[np.array([True, False])]
    phot = Photometry(["F150W", "f444w"], [1.0, 2.0], [0.1, 0.2], [1.5, 4.4], catalog="UVCANDELS", photo_z=3.51)
    assert phot["f444w"] == (2.0, 0.2, 4.4)
    assert phot["F444W"].flux == 2.0
    assert repr(phot) == "Photometry(2 bands, UVCANDELS, photo_z=3.51)"
    assert list(phot.to_table()["band"]) == ["f150w", "f444w"]
    with pytest.raises(ValidationError, match="band: 'f999w' is not in this photometry"):
        phot["f999w"]


def test_photometry_pickles_its_values_in_band():
    """A workflow's graph carries every object's photometry: pickle protocol 5 (distributed) would
    send each numpy array as an out-of-band buffer of its own, three per object."""
    import pickle

    phot = Photometry(["f150w", "f444w"], [1.0, 2.0 / 3.0], [0.1, 0.2], [1.5, 4.4], catalog="JADES", photo_z=3.5,
                      photo_z_err_lo=3.2, photo_z_err_hi=3.9, object_id="o1")
    buffers: list = []
    back = pickle.loads(pickle.dumps(phot, protocol=5, buffer_callback=buffers.append), buffers=buffers)
    assert buffers == []
    assert (back.bands, back.catalog, back.photo_z, back.photo_z_err_lo, back.photo_z_err_hi, back.object_id) == \
        (["f150w", "f444w"], "JADES", 3.5, 3.2, 3.9, "o1")
    for name in ("flux", "flux_err", "wavelength"):
        assert getattr(back, name).dtype == np.float64
        assert getattr(back, name).tobytes() == getattr(phot, name).tobytes()  # bit for bit
    assert back.flux.flags.writeable


def test_specutils_round_trip():
    spec = SpectrumData(np.linspace(1, 2, 10), np.arange(10.0) + 1, np.full(10, 0.5), spectrum_id="s", grating="PRISM")
    back = SpectrumData.from_specutils(spec.to_specutils())
    np.testing.assert_allclose(back.wavelength, spec.wavelength)
    np.testing.assert_allclose(back.fnu, spec.fnu)
    np.testing.assert_allclose(back.fnu_err, spec.fnu_err)


@pytest.mark.parametrize("path", DJA[:2], ids=lambda p: p.name)
def test_our_byte_level_writer_is_read_back_by_astropy_with_every_keyword(path, tmp_path):
    # guards: io.fitsbytes' card formatting (long strings with quotes → CONTINUE, comments,
    # floats, bools) and table layout, checked by astropy's own verifier and reader
    import warnings

    from astropy.io import fits

    from campfire.io.fits import _STRUCTURAL, write_spectrum

    spec = SpectrumData.from_fits(path)
    spec = spec.copy(header={**spec.header, "LONGSTR": "a'b" * 40, "RESTX": (True, "a comment"), "NEG": -3e20,
                             "TINY": 1.5e-300, "NOTHING": None})
    out = write_spectrum(tmp_path / "w.spec.fits", spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(out) as h:
            h.verify("exception")
            expected = {k: v for k, v in spec.header.items() if len(k) <= 8 and not _STRUCTURAL.match(k)}
            for key, value in expected.items():
                value = value[0] if isinstance(value, tuple) else value
                got = h[0].header[key]
                if value is None:
                    assert got is None or type(got).__name__ == "Undefined"
                elif isinstance(value, float):
                    assert got == pytest.approx(value, rel=1e-15)
                else:
                    assert got == value, key
            assert h[0].header.comments["RESTX"] == "a comment"
            assert h["SPEC1D"].header["GRATING"] == spec.grating
            np.testing.assert_array_equal(h["SPEC1D"].data["wave"], spec.wavelength)
            np.testing.assert_array_equal(h["SPEC1D"].data["err"], spec.fnu_err)
    again = SpectrumData.from_fits(out)
    assert again.header["LONGSTR"] == "a'b" * 40
    np.testing.assert_array_equal(again.fnu, spec.fnu)
    with pytest.raises(ValueError, match="printable ASCII"):
        write_spectrum(tmp_path / "bad.spec.fits", spec.copy(header={"NAME": "café"}))


def test_the_1d_reader_agrees_with_astropy_on_real_files():
    # guards: io.fitsbytes' header parser (HIERARCH, CONTINUE, quotes) and column reader
    # against the astropy path it replaces, on every real file that has a 1D table
    from campfire.io import fits as F

    files = DJA + [REAL / "msaexp_tests" / "static-test-driz-center-bkg_933.spec.fits"]
    for path in files:
        fast = F._load_raw_scan(path)
        with F.open_fits(path) as hdul:
            slow = F._raw_from(hdul, path)
        assert fast["primary"] == slow["primary"] and fast["ext_header"] == slow["ext_header"], path
        assert fast["units"] == slow["units"] and fast["arrays"].keys() == slow["arrays"].keys()
        for key in fast["arrays"]:
            np.testing.assert_array_equal(fast["arrays"][key], slow["arrays"][key])


def test_open_fits_leaves_the_warning_state_alone(monkeypatch):
    # catch_warnings swaps process-wide state (filters, the recorder): Dask threads opening
    # files at once could leave one's "always" filter or dead recorder installed for good
    import warnings

    from campfire.io import fits as F

    def forbidden(*args, **kwargs):
        raise AssertionError("open_fits caught warnings on a file the byte scan had checked")

    monkeypatch.setattr(F.warnings, "catch_warnings", forbidden)
    filters = list(warnings.filters)
    for path in DJA:
        with F.open_fits(path) as hdul:
            assert hdul["SPEC1D"].data is not None
    assert warnings.filters == filters


def test_open_fits_refuses_a_truncated_file_the_byte_scan_leaves_to_astropy(tmp_path):
    # a non-ASCII byte in a header comment: scan_hdus leaves the file to astropy, and a
    # truncation must still be an error there (astropy's warning or its failure to read)
    from campfire.io import fits as F
    from campfire.io.fitsbytes import FileSource, Unsupported, scan_hdus

    data = bytearray(DJA[0].read_bytes())
    at = data.index(b"/ ", data.index(b"XTENSION"))  # a comment in the first extension's header
    data[at + 2] = 0xE9
    odd = tmp_path / "odd.spec.fits"
    odd.write_bytes(bytes(data))
    with pytest.raises(Unsupported):
        scan_hdus(FileSource(bytes(data)))
    with F.open_fits(odd) as hdul:  # complete: astropy reads it
        assert len(hdul) > 1
    cut = tmp_path / "odd-cut.spec.fits"
    cut.write_bytes(bytes(data[: len(data) - 2880]))
    with pytest.raises(FileFormatError, match="odd-cut"):
        F.open_fits(cut)


@pytest.mark.parametrize("size", [100, 70_000, 300_000])
def test_file_source_reads_what_the_file_holds_wherever_the_reads_fall(tmp_path, size):
    """A local file is read through a window (its head first, then ``pread``s), not whole:
    every read, forward, backward, across the window's edge or past the end, is the file's bytes."""
    from campfire.io.fitsbytes import FileSource

    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    rng = np.random.default_rng(1)
    reads = [(0, 8), (size - 5, 20), (65_530, 12), (2880, 2880), (size // 2, 40_000), (10, 3)]
    reads += [(int(o), int(n)) for o, n in zip(rng.integers(0, size, 50), rng.integers(0, 20_000, 50))]
    with FileSource(str(path)) as src:
        assert src.size == size
        for offset, n in reads:
            assert src.read(offset, n) == data[offset:offset + n]


def test_scan_keywords_reads_card_starts_up_to_end_as_the_full_parser_does():
    """``scan_keywords`` looks at each card's first 10 columns up to END (not a search of the
    text): a keyword inside another card's value, or past END in the padding, is not a card."""
    from campfire.io.fitsbytes import _COLUMN_CARDS, _STRUCTURAL_CARDS, FileSource, parse_header, scan_hdus, scan_keywords

    def card(text: str) -> str:
        return text.ljust(80)

    cards = [card("XTENSION= 'BINTABLE'"), card("BITPIX  =                    8"), card("NAXIS   =                    2"),
             card("COMMENT  NAXIS1  =                 9999"), card("OBJECT  = 'x NAXIS2  = 77'"),
             card("NAXIS1  =                   24"), card("NAXIS2  =                   10 / rows"),
             card("NAXIS1  =                   99 / a repeat: the first wins"),
             card("END"), card("TFIELDS =                    3")]
    raw = "".join(cards).ljust(2880).encode()
    got = scan_keywords(raw, _STRUCTURAL_CARDS)
    assert got == {"XTENSION": "BINTABLE", "BITPIX": 8, "NAXIS": 2, "NAXIS1": 24, "NAXIS2": 10}
    assert scan_keywords(raw, _STRUCTURAL_CARDS) == got  # the remembered matches and values: the same answer
    # on real files: the structural and column cards of every HDU, as the full parser reads them
    for path in DJA:
        with FileSource(str(path)) as src:
            hdus = scan_hdus(src)
        for hdu in hdus:
            full = parse_header(hdu.header)
            for pattern in (_STRUCTURAL_CARDS, _COLUMN_CARDS):
                want = {k: v for k, v in full.items() if pattern.match(k.ljust(8) + "= ")}
                assert scan_keywords(hdu.header, pattern) == want, (path.name, hdu.name)
            assert hdu.keys == scan_keywords(hdu.header, _STRUCTURAL_CARDS)
