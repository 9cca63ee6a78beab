"""What a sync or a login says and leaves behind when the network or the machine is unkind (issue 15, point 9).

* a connection closed inside the export's response headers is an interrupted sync (the
  previous catalog intact), not "unknown export kind None";
* an interrupted sync says how many bytes had arrived, also when urllib3 dropped the
  last incomplete HTTP chunk it was reading;
* ``campfire login`` under ``umask 000`` creates ``~/.config`` and ``~/.config/campfire``
  user-only.
"""
from __future__ import annotations

import hashlib
import io
import os
import re

import pytest

from campfire import cli
from campfire.transfer import SyncInterrupted
from cutproxy import CuttingProxy

pytestmark = pytest.mark.server


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _upstream(server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def test_sync_cut_in_the_response_headers_is_an_interrupted_sync(server, make_client, tmp_path):
    cf = make_client(server.url, data_dir=tmp_path / "data")
    cf.sync()
    before = _sha(cf.data_dir / "meta" / "campfire.db")
    with CuttingProxy(_upstream(server), 50) as proxy:
        cut = make_client(proxy.url, data_dir=tmp_path / "data")
        with pytest.raises(SyncInterrupted, match="interrupted in the response headers.*previous catalog is intact"):
            cut.sync()
    assert _sha(cf.data_dir / "meta" / "campfire.db") == before


@pytest.mark.parametrize("cut_after", [5_000, 40_000])
def test_interrupted_sync_says_how_many_bytes_arrived(server, make_client, tmp_path, cut_after):
    with CuttingProxy(_upstream(server), cut_after) as proxy:
        cf = make_client(proxy.url, data_dir=tmp_path / "data")
        with pytest.raises(SyncInterrupted) as info:
            cf.sync()
    arrived = int(re.search(r"after ([\d,]+) bytes", str(info.value)).group(1).replace(",", ""))
    # everything but the status line and headers (a few hundred bytes) of what the proxy let through
    assert cut_after - 1000 < arrived <= cut_after, str(info.value)
    assert not cf.is_local


def test_login_under_umask_000_creates_user_only_config_dirs(server, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CAMPFIRE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("bob-demo\n"))
    old = os.umask(0)
    try:
        assert cli.main(["login", "--server", server.url, "--username", "bob", "--password-stdin"]) == 0
    finally:
        os.umask(old)
    assert "logged in" in capsys.readouterr().out
    for folder in (home / ".config", home / ".config" / "campfire"):
        assert os.stat(folder).st_mode & 0o777 == 0o700, folder
    assert os.stat(home / ".config" / "campfire" / "credentials.json").st_mode & 0o777 == 0o600
