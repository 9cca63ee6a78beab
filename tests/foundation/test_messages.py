"""Messages for the reader they reach: the CLI names commands and options (not cf.sync() or
base_url=), a missing server is called that (not "no catalog"), a spectrum ID given to
get_object says what was meant, and `campfire --version` answers."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import campfire
from campfire import cli
from campfire.client import Campfire
from campfire.errors import CampfireError, CampfireWarning


@pytest.fixture
def no_server(monkeypatch, tmp_path):
    for var in ("CAMPFIRE_API_URL", "CAMPFIRE_ROOT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.mark.parametrize("call, action", [(lambda cf: cf.sync(), "sync from"),
                                          (lambda cf: cf.login("alice", "alice-demo"), "log in to")])
def test_no_server_is_called_that_on_an_archive_with_a_catalog(demo_root, no_server, call, action):
    cf = Campfire(data_dir=demo_root)
    with pytest.raises(CampfireError) as err:
        call(cf)
    msg = str(err.value)
    assert msg.startswith(f"no server is configured to {action}: set CAMPFIRE_API_URL (or pass base_url=)")
    assert "has no catalog" not in msg and f"{demo_root} has its own catalog" in msg


def test_cli_errors_name_commands_and_options_not_python(demo_root, no_server, tmp_path, capsys):
    for argv in (["sync"], ["sync", "--data-dir", str(demo_root)], ["download"],
                 ["download", "--data-dir", str(demo_root)], ["tags", "create", "x", "--data-dir", str(demo_root)]):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("campfire: error: "), argv
        for python_only in ("cf.", "base_url=", "data_dir=", "Campfire(", "download()"):
            assert python_only not in err, (argv, err)
    assert cli.main(["sync"]) == 2
    assert "(or --server URL)" in capsys.readouterr().err
    assert cli.main(["download", "--data-dir", str(tmp_path / "fresh")]) == 2
    assert "run `campfire sync` first" in capsys.readouterr().err


def test_cli_login_without_a_server_says_so(no_server, tmp_path):
    env = dict(os.environ, HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "campfire", "login", "--username", "alice", "--password-stdin"],
                          input="alice-demo\n", capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("campfire: error: no server is configured to log in to: set CAMPFIRE_API_URL "
                                  "(or --server URL)")


def test_for_the_command_line_rewords_the_python_advice():
    msg = ("no archive to read: /d has no catalog (meta/campfire.db) and no server is configured. Set "
           "CAMPFIRE_API_URL (or pass base_url=) to use a server and run cf.sync(), set CAMPFIRE_ROOT (or pass "
           "data_dir=) to an archive root, or use the built-in demo archive: Campfire(data_dir=campfire.demo.ensure())")
    got = cli.for_the_command_line(msg)
    assert got == ("no archive to read: /d has no catalog (meta/campfire.db) and no server is configured. Set "
                   "CAMPFIRE_API_URL (or --server URL) to use a server and run `campfire sync`, set CAMPFIRE_ROOT "
                   "(or --data-dir DIR) to an archive root, or use the built-in demo archive: `campfire demo build`, "
                   "then --data-dir with the folder it prints")
    assert cli.for_the_command_line("no tag 'x' of yours (create it with cf.create_tag('x', name))") == \
        "no tag 'x' of yours (create it with `campfire tags create x`)"
    assert cli.for_the_command_line("/srv/data_dir/meta is owned by the pipeline. Use another data_dir") == \
        "/srv/data_dir/meta is owned by the pipeline. Use another --data-dir"  # paths stay as they are


def test_get_object_with_a_spectrum_id_names_the_object(demo_root):
    cf = Campfire(data_dir=demo_root)
    oid, sid = "ember_uds_p4_123456", "ember_uds_p4_prism_clear_123456"  # the reference's examples
    with pytest.warns(CampfireWarning, match=rf"'{sid}' is a spectrum ID, not an object ID; its object is '{oid}'"):
        assert cf.get_object(sid) is None
    with pytest.warns(CampfireWarning, match=rf"'{oid}' is an object ID, not a spectrum ID"):
        assert cf.get_spectrum(oid) is None
    assert cf.get_object("no_such_object_1") is None  # an ID of nothing: None, no warning (filterwarnings=error)


def test_version():
    proc = subprocess.run([sys.executable, "-m", "campfire", "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"campfire {campfire.__version__}"
