"""Bad input never crashes: random filter arguments and mutated FITS files.

* filters: random keyword arguments (names from the vocabulary and made up, values of
  every Python type) give a :class:`~campfire.catalog.filters.Query` or a
  ValidationError — through ``build_query``, the HTTP parser ``query_from_params``,
  ``Query.resolve`` and a real local catalog query (SQLite executes what compiles);
* FITS: the real third-party files of ``../shared/data/real/spectra`` and demo files,
  with bytes flipped, truncated, inserted, deleted, or header values replaced, give a
  result or a :class:`~campfire.errors.CampfireError` from every reader
  (``SpectrumData.from_fits``, ``read_spectrum_2d``, ``read_redshift_fit``) — never
  another exception, never a gigabyte allocation from a corrupt header.

(The flag-expression property SQL ≡ Python lives in tests/foundation/test_flags.py and the
filter round trip in tests/foundation/test_filters.py; not repeated here.)
"""
from __future__ import annotations

import io
import math
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from campfire.catalog.filters import FILTER_NAMES, PAGING_NAMES, Query, Vocabulary, build_query, query_from_params
from campfire.errors import CampfireError, ValidationError
from campfire.flags import DQFlags, FlagExpr

REAL = pathlib.Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real" / "spectra"
REAL_FILES = sorted(REAL.glob("*/*.fits"))

VOCAB = Vocabulary(
    fields=frozenset({"cosmos", "uds"}),
    programs={"ember-uds": 5224, "ember-deep": 6032},
    gratings=frozenset({"PRISM", "G395M"}),
    observations=frozenset({"ember_uds_p4"}),
    tags=frozenset({"lrd", "blagn"}),
)

# ------------------------------------------------------------------------------ filters
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-5, 10), st.floats(), st.floats(-10, 400),
    st.text(max_size=20), st.binary(max_size=8),
    st.sampled_from(["cosmos", "UDS", "PRISM", "g395m", "EMBER-UDS", "6032", "lrd", "secure", "4", "~CHIP_GAP",
                     "CHIP_GAP|LOW_SNR", "~(CHIP_GAP|LOW_SNR)", "LOW_SNR & ~CONTAMINATION", "asc", "DESC",
                     "redshift", "object_id", "'; DROP TABLE spectra; --", "%", "_", "\x00", "../../etc/passwd",
                     "nan", "inf", "1e999", ""]),
    st.sampled_from([DQFlags.CHIP_GAP, ~DQFlags.LOW_SNR, DQFlags.CHIP_GAP | DQFlags.STUCK_SHUTTER,
                     np.float64("nan"), np.int64(3), np.bool_(True), np.str_("uds"), object(), math.inf, 2 ** 70]),
)
_values = st.one_of(
    _scalars,
    st.lists(_scalars, max_size=4),
    st.tuples(_scalars, _scalars),
    st.tuples(st.floats(), st.floats(), st.floats()),
    st.dictionaries(st.text(max_size=3), _scalars, max_size=2),
    st.sets(st.integers(0, 5), max_size=3),
    st.builds(np.array, st.lists(st.floats(allow_nan=False, width=32), max_size=3)),
)
_names = st.one_of(st.sampled_from(FILTER_NAMES + PAGING_NAMES), st.text(min_size=1, max_size=12))


@settings(max_examples=400, deadline=None)
@given(kind=st.sampled_from(["objects", "spectra"]), kwargs=st.dictionaries(_names, _values, max_size=5))
def test_random_filter_kwargs_give_a_query_or_a_validation_error(kind, kwargs):
    # guards: every check in filters.build_query / Query.resolve (a missing one surfaces as
    # TypeError, OverflowError, AttributeError ... instead of a ValidationError)
    try:
        q = build_query(kind, **kwargs)
    except ValidationError as err:
        assert str(err)  # a message that names the problem
        return
    assert isinstance(q, Query)
    if q.dq_flags is not None:
        assert isinstance(q.dq_flags, FlagExpr)
    try:
        q.resolve(VOCAB)
    except ValidationError:
        pass
    # what the client sends is what the server reads back
    assert query_from_params(kind, q.to_params()) == q


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["objects", "spectra", "files"]),
       params=st.dictionaries(_names, st.text(max_size=30), max_size=5))
def test_random_query_strings_give_a_query_or_a_validation_error(kind, params):
    # guards: query_from_params, the server's parser of every list endpoint's query string
    try:
        q = query_from_params(kind, params)
    except ValidationError:
        return
    assert isinstance(q, Query)


@pytest.fixture(scope="module")
def local_catalog(demo_root):
    from campfire.client import Campfire

    return Campfire(data_dir=demo_root)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["objects", "spectra"]), kwargs=st.dictionaries(_names, _values, max_size=4))
def test_random_local_queries_return_a_table_or_a_validation_error(local_catalog, kind, kwargs):
    # guards: validation before SQL — a value that passes build_query must also bind in SQLite
    # (e.g. an int beyond 64 bits would raise OverflowError inside sqlite3)
    method = local_catalog.query_objects if kind == "objects" else local_catalog.query_spectra
    try:
        table = method(**kwargs)
    except ValidationError:
        return
    assert len(table.colnames) > 5


# ---------------------------------------------------------------------------------- FITS
def _demo_files(demo_root: pathlib.Path) -> list[pathlib.Path]:
    products = sorted((demo_root / "products").glob("*/*.spec.fits"))
    prism = next(p for p in products if "_prism_" in p.name)
    grating = next(p for p in products if "_g395m_" in p.name)
    return [prism, grating]


class _Corpus(dict):
    # hypothesis reprs the test's arguments when it reports a failure: tens of MB of file
    # bytes per repr, repeated while shrinking, ran the heavy variant out of memory (24 GB)
    def __repr__(self) -> str:
        return f"<{len(self)} FITS files>"


@pytest.fixture(scope="module")
def fits_corpus(demo_root) -> dict[str, tuple[bytes, list[tuple[int, int]]]]:
    """name → (bytes, [(header start, header end)]) of every file to mutate."""
    corpus = _Corpus()
    for path in REAL_FILES + _demo_files(pathlib.Path(demo_root)):
        data = path.read_bytes()
        with fits.open(io.BytesIO(data)) as hdul:
            spans = [(hdul.fileinfo(i)["hdrLoc"], hdul.fileinfo(i)["datLoc"]) for i in range(len(hdul))]
        corpus[path.name] = (data, spans)
    assert len(corpus) >= 12
    return corpus


_CARD_VALUES = ["0", "-1", "99999999999", "2147483648", "'abc'", "T", "1E400", "NAN", "", "'", "2880", "-5",
                "1.5", "'uJy'", "'parsec'", "'D'", "'99999999D'", "999", "1000", "'PRISM'", "'wave'"]


@st.composite
def mutations(draw, corpus: dict) -> tuple[str, list[tuple]]:
    """A file name and 1-3 edits (kind, position, argument); half of them land in a header."""
    name = draw(st.sampled_from(sorted(corpus)))
    data, spans = corpus[name]
    size = len(data)
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "card", "card"]))
        if kind != "truncate" and draw(st.booleans()):
            lo, hi = draw(st.sampled_from(spans))  # headers: where a mutation changes meaning
            pos = draw(st.integers(lo, max(lo, hi - 1)))
        else:
            pos = draw(st.integers(0, size - 1))
        arg = {"flip": lambda: draw(st.integers(0, 7)), "truncate": lambda: None,
               "insert": lambda: draw(st.binary(min_size=1, max_size=90)),
               "delete": lambda: draw(st.integers(1, 400)),
               "card": lambda: draw(st.sampled_from(_CARD_VALUES))}[kind]()
        edits.append((kind, pos, arg))
    return name, edits


def apply_edits(data: bytes, edits: list[tuple]) -> bytes:
    buf = bytearray(data)
    for kind, pos, arg in edits:
        pos = min(pos, max(0, len(buf) - 1))
        if kind == "flip" and buf:
            buf[pos] ^= 1 << arg
        elif kind == "truncate":
            del buf[pos:]
        elif kind == "insert":
            buf[pos:pos] = arg
        elif kind == "delete":
            del buf[pos:pos + arg]
        elif kind == "card":
            start = pos - pos % 80 + 10  # the value field of the card holding pos
            buf[start:start + 70] = arg.ljust(70).encode()
    return bytes(buf)


def _check_readers(path: pathlib.Path) -> None:
    from campfire.io.fits import read_redshift_fit, read_spectrum_2d
    from campfire.models import SpectrumData

    for reader, kind in ((SpectrumData.from_fits, SpectrumData), (read_spectrum_2d, dict), (read_redshift_fit, dict)):
        try:
            out = reader(path)
        except CampfireError as err:
            assert str(err)
            continue
        assert isinstance(out, kind)


# A reader that loops on a corrupt file fails here instead of hanging CI: no shrinking (each
# replay of a hanging example would wait for the timeout again, for tens of minutes); the
# falsifying example is still printed, and test_corrupt_sizes_* keeps each one found.
_NO_SHRINK = [Phase.explicit, Phase.reuse, Phase.generate]
# astropy says what it finds wrong in a mutant (bad padding, an unparsable card) before campfire
# turns the failure into its error or reads the data: expected here, and kept out of the summary
# so that a warning of campfire's own stands out
# (astropy's VerifyWarning is one of its AstropyUserWarnings; campfire warns with its own classes)
_mutant_warnings = pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyUserWarning")


@_mutant_warnings
@pytest.mark.timeout(240)
@settings(max_examples=120, deadline=None, phases=_NO_SHRINK,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_mutated_fits_files_give_data_or_a_campfire_error(fits_corpus, tmp_path_factory, data):
    # guards: open_fits's conversion of every astropy failure into FileFormatError, the
    # declared-size checks before any data is read, and read_spectrum_2d / read_redshift_fit's
    # own conversions (a corrupt file → 4xx on the server, never a 500 or a crash)
    name, edits = data.draw(mutations(fits_corpus))
    path = tmp_path_factory.mktemp("mutant") / name
    path.write_bytes(apply_edits(fits_corpus[name][0], edits))
    _check_readers(path)


@_mutant_warnings
@pytest.mark.slow
@pytest.mark.timeout(3600)
@settings(max_examples=3000, deadline=None, phases=_NO_SHRINK,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_mutated_fits_files_many(fits_corpus, tmp_path_factory, data):
    """The heavy variant (--runslow): thousands of mutants."""
    name, edits = data.draw(mutations(fits_corpus))
    path = tmp_path_factory.mktemp("mutant") / name
    path.write_bytes(apply_edits(fits_corpus[name][0], edits))
    _check_readers(path)


@pytest.mark.parametrize("card,value,where,junk", [("TFIELDS", "99999999999", 2880, b""),
                                                   ("NAXIS2", "99999999999", 2880, b""),
                                                   ("NAXIS1", "2147483647", 2880, b""), ("NAXIS", "999999", 2880, b""),
                                                   ("NAXIS", "99999999999", 0, b""),
                                                   ("NAXIS", "99999999999", 0, b"\xff\xfe\x80\x81\x07"),
                                                   ("TFIELDS", "99999999999", 2880, b"\xff\xfe\x80\x81\x07")])
@pytest.mark.parametrize("source", ["demo", "real"])
def test_corrupt_sizes_in_a_header_fail_fast_without_allocating(demo_root, tmp_path, card, value, where, junk, source):
    # guards: open_fits's checks before astropy builds an HDU (NAXIS/TFIELDS within 0..999)
    # and before it reads data (declared sizes within the file). Without them astropy loops
    # and allocates from the header: NAXIS = 99999999999 in the primary header makes a list
    # of 10^11 axes, TFIELDS one of 10^11 columns (the machine runs out of memory). With
    # ``junk`` (non-ASCII bytes inserted a few cards further on) the byte-level scan hands the
    # file to astropy, and check_counts_anywhere must refuse it first (the hang the fuzz test
    # once found). Run in a subprocess under a 2 GiB address-space limit and a time limit, so a
    # regression fails here (MemoryError, high peak RSS, a timeout) instead of taking the machine down.
    if source == "demo":
        src = _demo_files(pathlib.Path(demo_root))[0].read_bytes()
    else:  # a DJA v4 file: its long primary header let inserted bytes through to astropy
        src = (REAL / "dja_v4" / "gds-udeep-v4_prism-clear_3215_20128771.spec.fits").read_bytes()
    start = src.index(f"{card:<8}= ".encode(), where)  # 0: the primary header, 2880: the SPEC1D one
    mutant = bytearray(src)
    mutant[start + 10:start + 80] = value.ljust(70).encode()
    if junk:
        at = start + 738 if where == 0 else start + 5 * 80 + 3
        mutant[at:at] = junk
    path = tmp_path / "mutant.spec.fits"
    path.write_bytes(bytes(mutant))
    script = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        from campfire.errors import CampfireError
        from campfire.io.fits import read_spectrum_2d, read_redshift_fit
        from campfire.models import SpectrumData
        for reader in (SpectrumData.from_fits, read_spectrum_2d, read_redshift_fit):
            try:
                reader({str(path)!r})
            except CampfireError as err:
                print(type(err).__name__, str(err)[:200])
            else:
                print("read")
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking (pytest) process
        hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
        print("peak_kb", hwm)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)  # a hang fails
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert all(line.startswith(("FileFormatError", "NotFoundError", "read")) for line in lines[:3]), out.stdout
    assert lines[0].startswith("FileFormatError")  # the SPEC1D table itself is unreadable
    peak_mb = int(lines[-1].split()[1]) / 1024
    assert peak_mb < 600, f"peak RSS {peak_mb:.0f} MB: the reader allocated from the corrupt header"
