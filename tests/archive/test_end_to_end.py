"""End to end on the real files: ``campfire archive ingest`` → ``campfire serve`` on a loopback port → a client.

The client syncs, queries, downloads, opens, reads the fits, calibrates against the
(synthetic, see real_inputs) photometry attached at ingest, stacks the three gratings
of stark-rxcj2248, meets a proprietary program it may not see, and — after a file
changes and is re-ingested while the server runs — finds exactly that file stale.
Both commands run as the real CLI in subprocesses.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import requests
from astropy.io import fits
from real_inputs import PHOT_SCALE, SPECTRA, STARK, copy_inputs, write_dja_table, write_photometry

from campfire import Campfire, calibrate_to_photometry, stack_spectra
from campfire.errors import NotFoundError
from campfire.flags import DQFlags
from campfire.models import SpectrumData

pytestmark = pytest.mark.server

PASSWORD = "carol-has-a-long-password"


def _cli(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "campfire", *map(str, args)], input=stdin, capture_output=True,
                          text=True, timeout=600, env=os.environ.copy())


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A writable copy of the real spectra ingested by the CLI and served by ``campfire serve``."""
    base = tmp_path_factory.mktemp("e2e")
    inputs = copy_inputs(base / "inputs", SPECTRA)
    table = write_dja_table(base / "dja.csv")
    phot = write_photometry(base / "phot.ecsv")
    root = base / "archive"
    programs = base / "programs.yaml"
    programs.write_text("programs:\n  - id: 3543\n    slug: excels\n    name: EXCELS\n    public: false\n"
                        "    members: [carol, dave]\n")
    added = _cli("users", "add", "carol", "--root", root, "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    done = _cli("archive", "ingest", root, inputs, "--table", table, "--photometry", phot, "--programs", programs,
                "--scheduler", "threads", "--workers", "2", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "7 new" in done.stdout
    assert "member 'dave' of program 3543 has no account yet" in done.stderr
    proc = subprocess.Popen([sys.executable, "-m", "campfire", "serve", str(root), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    url, deadline, seen = None, time.monotonic() + 120, []
    while url is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        m = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
        if m:
            url = m.group(1)
        elif proc.poll() is not None:
            break
    assert url, "campfire serve did not start:\n" + "".join(seen)
    assert requests.get(f"{url}/api/v1/health", timeout=10).json()["status"] == "ok"
    yield {"url": url, "root": root, "inputs": inputs, "table": table, "phot": phot, "programs": programs}
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    proc.stdout.close()


@pytest.fixture
def client(served, tmp_path, monkeypatch):
    monkeypatch.setenv("CAMPFIRE_CONFIG_DIR", str(tmp_path / "config"))
    return Campfire(base_url=served["url"], data_dir=tmp_path / "client")


def test_sync_and_queries_local_and_remote(client):
    # anonymous: the proprietary EXCELS program (3543) is invisible
    assert client.sync() == {"observations": 4, "objects": 4, "spectra": 6, "stale_count": 0}
    objects = client.query_objects()
    assert sorted(objects["object_id"]) == ["borg-v4_732", "ceers-msaexp-test_933", "gds-udeep-v4_20128771",
                                            "stark-rxcj2248-v4_3"]
    for kwargs, expected in [
        ({"gratings": ["PRISM"]}, {"borg-v4_732", "ceers-msaexp-test_933", "gds-udeep-v4_20128771"}),
        ({"redshift_range": (6.0, 7.0)}, {"stark-rxcj2248-v4_3"}),
        ({"redshift_quality": ["secure"]}, {"borg-v4_732", "stark-rxcj2248-v4_3"}),
        ({"inspected_only": True}, {"borg-v4_732", "gds-udeep-v4_20128771", "stark-rxcj2248-v4_3"}),
        ({"cone_search": (342.190865, -44.537483, 1.0)}, {"stark-rxcj2248-v4_3"}),
        ({"fields": ["EGS"]}, {"ceers-msaexp-test_933"}),
        ({"programs": ["2478"], "has_photometry": True}, {"stark-rxcj2248-v4_3"}),
        ({"dq_flags": DQFlags.CHIP_GAP}, {"stark-rxcj2248-v4_3"}),
    ]:
        local = set(client.query_objects(**kwargs)["object_id"])
        remote = set(client.query_objects(remote=True, **kwargs)["object_id"])
        assert local == remote == expected, kwargs
    spectra = client.query_spectra(dq_flags=~DQFlags.CHIP_GAP & ~DQFlags.PARTIAL_COVERAGE)
    assert sorted(spectra["spectrum_id"]) == ["borg-v4_prism_clear_732", "gds-udeep-v4_prism_clear_20128771"]
    assert client.get_programs()["slug"].tolist() == ["1345", "1747", "2478", "3215"]


def test_a_member_sees_the_proprietary_program(served, client):
    client.login("carol", PASSWORD)
    assert client.sync()["spectra"] == 7
    obj = client.get_object("excels-uds04-v4_63107")
    assert obj.programs == ["excels"] and obj.redshift_quality == 2 and obj.redshift == pytest.approx(8.27)
    anonymous = requests.get(f"{served['url']}/api/v1/objects/excels-uds04-v4_63107", timeout=10)
    assert anonymous.status_code == 404
    # the DJA grade is an inspection record resting on the proprietary spectrum: the member sees it
    records = client.get_inspections("excels-uds04-v4_63107", remote=True)
    assert [(r["reviewer"], r["quality"], r["redshift"]) for r in records] == [("dja:AC", 2, 8.27)]
    assert "excels-uds04-v4_g395m_f290lp_63107" in str(records["spectra_seen"][0])
    stark = client.get_inspections("stark-rxcj2248-v4_3")  # three graded gratings by one reviewer
    assert list(stark["quality"]) == [2, 4, 4] and stark.meta["consensus"]["quality"] == 4


def test_download_open_and_the_fits(client, served):
    client.sync()
    assert client.download()["downloaded"] == 6
    for row in client.query_spectra():
        spec = client.open_spectrum(row["spectrum_id"])
        source = served["inputs"] / spec.header["ORIGFILE"]
        original = SpectrumData.from_fits(source)
        assert np.array_equal(spec.wavelength, original.wavelength) and spec.wave_units == "um"
        assert np.array_equal(spec.fnu, original.fnu, equal_nan=True) and spec.fnu_units == "uJy"
        assert hashlib.sha256(pathlib.Path(row["local_path"]).read_bytes()).hexdigest() == \
            client.get_spectrum(row["spectrum_id"])["file_hash"]
        fit = client.get_redshift_fit_data(row["spectrum_id"])
        assert fit["redshift"] == pytest.approx(row["redshift_auto"])
    data = client.get_spectrum_data("stark-rxcj2248-v4_g395m_f290lp_3")
    assert data["snr_2d"].shape == (31, 1661) and data["profile_fit"].size == 31
    remote_only = Campfire(base_url=served["url"], data_dir=served["root"].parent / "remote-only")
    assert remote_only.get_redshift_fit_data("borg-v4_prism_clear_732")["redshift"] == pytest.approx(8.22, abs=0.03)


def test_calibrate_against_the_attached_photometry(client):
    client.sync()
    obj = client.get_object("borg-v4_732")
    assert obj.photometry is not None and obj.photometry.catalog == "synthetic-nircam"
    spec = obj.spectra[0].open()
    flat = calibrate_to_photometry(spec, obj.photometry, method="flat")
    assert len(flat.bands_used) >= 5
    # the catalogue is PHOT_SCALE x the spectrum's own synthetic photometry (+3 % noise)
    assert np.nanmedian(flat.multiplier) == pytest.approx(PHOT_SCALE, rel=0.04)
    cheb = calibrate_to_photometry(spec, obj.photometry)
    good = np.isfinite(cheb.spectrum.fnu)
    assert np.nanmedian(cheb.multiplier[good]) == pytest.approx(PHOT_SCALE, rel=0.08)


def test_stack_the_three_gratings_of_one_object(client):
    client.sync()
    obj = client.get_object("stark-rxcj2248-v4_3")
    assert obj.spectra.gratings == ["G140M", "G235M", "G395M"]
    inputs = [s.open() for s in obj.spectra]
    grid = np.arange(0.98, 5.26, 0.0015)
    stacked = stack_spectra(inputs, wavelength_grid=grid, object_id=obj.object_id)
    covered = np.isfinite(stacked.fnu)
    assert covered.mean() > 0.85  # 0.98-5.26 um from three gratings, less the detector gaps
    assert np.nanmax(stacked.count) >= 2  # the gratings overlap (G235M and G395M around 2.7-4.6 um)
    z = obj.redshift
    line = (1 + z) * 0.500824  # [O III] 5008 at z = 6.1
    near = np.abs(grid - line) < 0.004
    continuum = (grid > 3.3) & (grid < 3.5)
    assert np.nanmax(stacked.fnu[near]) > 5 * np.nanmedian(stacked.fnu[continuum])
    assert stacked.spectrum_id == "stark-rxcj2248-v4_3_stack"


def test_no_imaging_is_said_in_one_sentence(client):
    client.sync()
    with pytest.raises(NotFoundError) as err:
        client.get_cutout("stark-rxcj2248-v4_3", fov=3.0)
    assert str(err.value).endswith("this archive has no imaging, so there is no cutout of stark-rxcj2248-v4_3")


def test_a_changed_file_is_stale_for_a_synced_client_and_downloaded_again(served, client):
    client.sync()
    client.download()
    target = served["inputs"] / STARK[2].name
    with fits.open(target) as hdul:
        hdul["SPEC1D"].data["flux"] *= 2.0
        hdul.writeto(target, overwrite=True)
    done = _cli("archive", "ingest", served["root"], served["inputs"], "--table", served["table"], "--photometry",
                served["phot"], "--programs", served["programs"], "--scheduler", "threads", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "1 updated, 6 unchanged" in done.stdout
    result = client.sync()
    assert result["stale_count"] == 1
    got = client.download(stale_only=True)
    assert got["downloaded"] == 1 and got["skipped"] >= 0
    sid = "stark-rxcj2248-v4_g395m_f290lp_3"
    row = client.get_spectrum(sid)
    assert hashlib.sha256(pathlib.Path(row["local_path"]).read_bytes()).hexdigest() == row["file_hash"]
    assert client.sync()["stale_count"] == 0
    new = client.open_spectrum(sid)
    old = SpectrumData.from_fits(STARK[2])
    assert np.allclose(new.fnu, 2 * old.fnu, equal_nan=True)
