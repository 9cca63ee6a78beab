"""Sphinx extension of campfire's docs: a demo archive and a real server for the executed pages,
and the pages that are generated from the code.

Before sphinx-gallery runs Getting Started and the recipes (``config-inited``):

* find the demo archive (``CAMPFIRE_DOCS_DEMO_ROOT``, ``CAMPFIRE_TEST_DEMO_ROOT``, else
  ``campfire.demo.ensure()``) and make ``campfire.demo.ensure()`` return a private copy of
  it (the pages cache cutouts into it), in this process and in every command the pages
  run (``DASK_CAMPFIRE__DEMO_ROOT``); the demo itself is never written;
* start ``campfire serve`` over a private copy of it on a free loopback port, the way a
  user starts it, and export ``CAMPFIRE_API_URL`` as the README tells users to; tokens go to
  a temporary ``CAMPFIRE_CONFIG_DIR`` and ``$CAMPFIRE_ROOT`` (the synced data_dir of the
  shell examples) is a temporary folder, so a build never touches the user's own;
* write ``_generated/``: the OpenAPI document that server serves (``/api/v1/openapi.json``)
  and its response bodies, the DQ flag table, and the workflow steps with their options.

After the build (``build-finished``, or at exit if the build crashes) the server is
stopped and the temporary folder removed.

Recipe 4 asks :func:`reprocess_on_server` to play the archive team between two syncs.
"""
from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import hashlib
import json
import os
import pathlib
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

import requests

HERE = pathlib.Path(__file__).resolve().parent
DOCS = HERE.parent
GENERATED = DOCS / "_generated"

_state: dict = {}


# ------------------------------------------------------------------------------ demo archive
def find_demo_root() -> pathlib.Path:
    """An already built demo of the current version, else ``campfire.demo.ensure()``."""
    import campfire.demo

    for var in ("CAMPFIRE_DOCS_DEMO_ROOT", "CAMPFIRE_TEST_DEMO_ROOT"):
        path = os.environ.get(var)
        if not path:
            continue
        marker = campfire.demo.read_build_marker(path) or {}
        if str(marker.get("version")) == campfire.demo.DEMO_VERSION and marker.get("size") in ("small", "full"):
            return pathlib.Path(path).resolve()
        print(f"campfire docs: {var}={path} is not a complete demo of version {campfire.demo.DEMO_VERSION}; "
              "using campfire.demo.ensure()", file=sys.stderr)
    return campfire.demo.ensure()


def copy_archive(src: pathlib.Path, dest: pathlib.Path) -> pathlib.Path:
    """A private writable copy of an archive root: the catalog copied, files hard-linked.

    Files are only ever replaced (written beside, then renamed), never written in place,
    so hard links keep the original untouched.
    """
    def link_or_copy(a, b):
        try:
            os.link(a, b)
        except OSError:  # another filesystem: copy
            shutil.copy2(a, b)

    dest.mkdir(parents=True)
    (dest / "meta").mkdir()
    for name in ("campfire.db", "campfire.db-wal"):  # a WAL-mode catalog may hold pages in -wal
        if (src / "meta" / name).is_file():
            shutil.copy2(src / "meta" / name, dest / "meta" / name)
            (dest / "meta" / name).chmod(0o644)
    for name in ("products", "imaging", "truth"):
        if (src / name).is_dir():
            shutil.copytree(src / name, dest / name, copy_function=link_or_copy)
    for d in [dest, *(p for p in dest.rglob("*") if p.is_dir())]:
        d.chmod(0o755)  # a read-only demo copies read-only folders; the copy's folders are ours
    return dest


# ------------------------------------------------------------------------------ the server
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: pathlib.Path, log_path: pathlib.Path) -> tuple[subprocess.Popen, str]:
    """``campfire serve ROOT --host 127.0.0.1 --port PORT`` in a child process; wait until it answers."""
    for _attempt in range(3):
        port = _free_port()
        log = open(log_path, "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "campfire", "serve", str(root), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/api/v1/health", timeout=2).ok:
                    return proc, url
            time.sleep(0.2)
        stop_process(proc)
    raise RuntimeError(f"campfire serve did not start; its log: {log_path}\n{log_path.read_text()[-3000:]}")


def stop_process(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


def reprocess_on_server(spectrum_id: str) -> str:
    """Play the archive team: rewrite one spectrum's FITS file on the docs server with a new
    reduction version, and record its new hash in the server's catalog. Returns the new hash.

    This is what a new reduction landing on a real archive looks like to a client: the
    file's content hash changes, and ``updated_at`` moves so the next incremental sync sees it.
    """
    from astropy.io import fits

    root = _state["server_root"]
    db = root / "meta" / "campfire.db"
    conn = sqlite3.connect(db, timeout=30)
    try:
        (fits_path,) = conn.execute("SELECT fits_path FROM spectra WHERE spectrum_id = ?", (spectrum_id,)).fetchone()
        path = root / fits_path
        new = path.with_name(path.name + ".new")
        with fits.open(path) as hdul:
            hdul[0].header["REDVER"] = "v9.9"
            hdul.writeto(new)
        os.replace(new, path)  # a new inode: the hard-linked demo file is untouched
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with conn:
            conn.execute(
                "UPDATE spectra SET file_hash = ?, file_size = ?, reduction_version = 'v9.9', updated_at = ? "
                "WHERE spectrum_id = ?", (digest, path.stat().st_size, stamp, spectrum_id))
    finally:
        conn.close()
    return digest


# ------------------------------------------------------------------------------ generated pages
def write_openapi(url: str) -> dict:
    """The OpenAPI document the server serves, as a file, and an include of its response bodies."""
    doc = requests.get(f"{url}/api/v1/openapi.json", timeout=30).json()
    (GENERATED / "openapi.json").write_text(json.dumps(doc, indent=1) + "\n")
    out = []
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            out.append(f".. rubric:: {method.upper()} {path}\n")
            out.append(f"{op.get('summary', '')}\n")
            for ctype, media in op.get("requestBody", {}).get("content", {}).items():
                out.append(f"*request body* ``{ctype}``\n")
                if media.get("schema"):
                    out.append(".. code-block:: json\n\n" + _indent(json.dumps(media["schema"], indent=2,
                                                                             ensure_ascii=False)) + "\n")
            for status, resp in sorted(op.get("responses", {}).items()):
                if not status.startswith("2"):
                    continue
                for ctype, media in resp.get("content", {}).items():
                    schema = media.get("schema")
                    out.append(f"*{status}* ``{ctype}`` — {resp.get('description', '')}\n")
                    if schema and schema.get("format") != "binary":
                        body = json.dumps(schema, indent=2, ensure_ascii=False)
                        out.append(".. code-block:: json\n\n" + _indent(body) + "\n")
    errors = doc.get("components", {}).get("schemas", {})
    for name, schema in errors.items():
        out.append(f".. rubric:: {name}\n\n.. code-block:: json\n\n" + _indent(json.dumps(schema, indent=2)) + "\n")
    (GENERATED / "http_responses.inc").write_text("\n".join(out))
    return doc


def _indent(text: str, n: int = 3) -> str:
    return "\n".join((" " * n + line) if line else "" for line in text.splitlines())


def _row(cells) -> str:
    return "   * - " + "\n     - ".join(str(c).replace("\n", " ") or "\\" for c in cells)


def _list_table(widths: str, header, rows) -> str:
    """A ``list-table`` directive: a header row and the body rows (each a sequence of cells)."""
    return (f".. list-table::\n   :header-rows: 1\n   :widths: {widths}\n\n"
            + "\n".join(_row(r) for r in [header, *rows]) + "\n")


def write_flag_table() -> None:
    from campfire.flags import FLAG_DESCRIPTIONS, DQFlags

    rows = [(int(m).bit_length() - 1, int(m), f"``{m.name}``", FLAG_DESCRIPTIONS.get(m.name, "")) for m in DQFlags]
    (GENERATED / "dq_flags.inc").write_text(_list_table("6 8 26 60", ("Bit", "Value", "Name", "Meaning"), rows))


# what each key of a workflow file means; a key the schema has and this lacks stops the build
WORKFLOW_KEYS = {
    "name": ("the file name", "Name of the run: the default output folder is ``results/<name>``."),
    "description": ("—", "Free text, kept in the provenance."),
    "archive": ("``demo``", "Where the data come from: ``demo`` (built on first use), ``demo:small``, "
                "``demo:full``, an archive root path, or a server URL (``http(s)://...``)."),
    "selection": ("everything", "Which spectra: the ``query_spectra`` filters (see below)."),
    "steps": ("required", "What to do, in order: a list of step names or ``{step: {options}}``."),
    "outputs": ("see below", "What to write and where."),
    "cluster": ("the Dask config", "Where to run: scheduler, workers, batch size, reduction fan-in."),
    "dir": ("``results/<name>``", "Output folder (``campfire run --output`` overrides it)."),
    "fits": ("``true``", "One FITS file per object (pipeline format, provenance cards and a "
             "``PROVENANCE`` table) and one per population stack."),
    "zarr": ("``<name>.zarr``", "One zarr store with every result and its metadata; ``false`` for none."),
    "plots": ("``true``", "Quick-look PNGs: ``true`` (all), ``false``, or the first N objects."),
    "table": ("``summary.ecsv``", "The summary table (one row per object and per population stack: status, "
              "failure reason, inputs used and left out, bands used, paths); ``false`` for none."),
    "scheduler": ("``campfire.graph.scheduler``", "``threads``, ``processes``, ``synchronous``, ``local:N`` "
                  "(a LocalCluster of N worker processes) or ``tcp://HOST:PORT`` (a running scheduler)."),
    "workers": ("—", "Worker count (threads, processes, or LocalCluster workers)."),
    "batch_size": ("``campfire.graph.batch-size``", "Spectra per task."),
    "split_every": ("``campfire.graph.split-every``", "Fan-in of the tree reductions of population stacks."),
}


def write_workflow_keys() -> None:
    from campfire.workflows import schema

    for label, keys in (("top", schema.TOP_LEVEL_KEYS), ("outputs", schema.OUTPUT_KEYS),
                        ("cluster", schema.CLUSTER_KEYS)):
        missing = [k for k in keys if k not in WORKFLOW_KEYS]
        if missing:
            raise RuntimeError(f"docs: workflow keys {missing} have no description in WORKFLOW_KEYS")
        rows = [(f"``{k}``", *WORKFLOW_KEYS[k]) for k in keys]
        (GENERATED / f"workflow_keys_{label}.inc").write_text(
            _list_table("15 25 60", ("Key", "Default", "Meaning"), rows))
    (GENERATED / "workflow_selection_keys.inc").write_text(
        ", ".join(f"``{k}``" for k in schema.SELECTION_KEYS) + "\n")


def write_summary_columns() -> None:
    """The columns of a run's ``summary.ecsv``, with their meaning, from the writer itself."""
    from campfire.workflows.outputs import SUMMARY_COLUMNS, SUMMARY_DESCRIPTIONS

    rows = [(f"``{c}``", t.__name__, SUMMARY_DESCRIPTIONS[c]) for c, t in SUMMARY_COLUMNS.items()]
    (GENERATED / "summary_columns.inc").write_text(_list_table("18 10 72", ("Column", "Type", "Meaning"), rows))


def write_workflow_steps() -> None:
    """One table per step: option, default, what it does (from the step registry)."""
    from campfire.workflows.registry import get_step, known_steps

    out = []
    for name in known_steps():
        step = get_step(name)
        out.append(f"``{name}``\n{'^' * (len(name) + 4)}\n")
        doc = (getattr(step, "doc", "") or "").strip()
        if doc:
            out.append(doc + "\n")
        if step.options:
            rows = [(f"``{opt}``", "—" if spec.default is None else f"``{json.dumps(spec.default)}``", spec.help)
                    for opt, spec in step.options.items()]
            out.append(_list_table("20 30 50", ("Option", "Default", "Meaning"), rows))
        else:
            out.append("No options.\n")
    (GENERATED / "workflow_steps.inc").write_text("\n".join(out) + "\n")


# ------------------------------------------------------------------------------ Sphinx hooks
def setup_archive_and_server(app, config) -> None:
    import dask

    # everything the build generates is generated afresh: no page of a removed recipe or name survives
    for generated in (GENERATED, DOCS / "reference" / "generated", DOCS / "recipes", DOCS / "getting_started"):
        shutil.rmtree(generated, ignore_errors=True)
    GENERATED.mkdir()
    demo = find_demo_root()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="campfire-docs-"))
    _state["tmp"] = tmp
    # the pages read (and cache cutouts into) a private copy: the demo itself may be shared and read-only
    pages_demo = copy_archive(demo, tmp / "demo")
    os.environ["DASK_CAMPFIRE__DEMO_ROOT"] = str(pages_demo)  # `campfire.demo.ensure()` in pages and commands
    dask.config.set({"campfire.demo-root": str(pages_demo)})
    os.environ["CAMPFIRE_CONFIG_DIR"] = str(tmp / "config")  # tokens of the pages' logins
    os.environ["CAMPFIRE_ROOT"] = str(tmp / "campfire-synced")  # data_dir of the shell examples
    os.environ["MPLBACKEND"] = "agg"
    server_root = copy_archive(demo, tmp / "server-archive")
    proc, url = start_server(server_root, tmp / "server.log")
    _state.update(server=proc, url=url, server_root=server_root, demo=demo)
    atexit.register(shutdown)
    os.environ["CAMPFIRE_API_URL"] = url
    os.environ["CAMPFIRE_DOCS_SERVER_ROOT"] = str(server_root)
    print(f"campfire docs: demo archive {demo}; campfire serve on {url}", file=sys.stderr)
    write_openapi(url)
    write_flag_table()
    write_workflow_steps()
    write_workflow_keys()
    write_summary_columns()


def shutdown(app=None, exception=None) -> None:
    stop_process(_state.pop("server", None))
    tmp = _state.pop("tmp", None)
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


def setup(app):
    # before sphinx-gallery (builder-inited) runs the pages
    app.connect("config-inited", setup_archive_and_server)
    app.connect("build-finished", shutdown)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
