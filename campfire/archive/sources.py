"""The SOURCE arguments of an ingest: files, folders, globs and fsspec URLs → the files to read.

========================  ============================================================
``/data/x.spec.fits``     that file (any name: it is tried even if it is not ``*.fits``)
``/data/dja/``            every ``*.fits`` below it, recursively (hidden folders and the
                          ``*.zfit.fits`` side files of an archive left out)
``/data/dja/*/*.fits``    what the glob matches (``**`` recurses)
``file:///data/dja``      the same through fsspec
``https://host/x.fits``   a URL (a folder URL is listed through its index page, as
                          fsspec's HTTP file system does); ``s3://``, ``gs://``... alike
========================  ============================================================

Each file gets a *key* (its absolute real path, or its URL) that identifies it across
ingests, and a *stamp* (size and modification time, or size and ETag /
Last-Modified) that tells an unchanged file without reading it. Each SOURCE is also a
:class:`Scope`: a later ingest of the same SOURCE reports the files it once found
there and no longer finds as missing.

Examples
--------
>>> files, scopes, problems = expand_sources(['/nonexistent/x.spec.fits'])
>>> files, problems[0][1]
([], 'no such file or directory')
"""
from __future__ import annotations

import fnmatch
import glob
import os
from dataclasses import dataclass
from typing import Iterable

__all__ = ["SourceFile", "Scope", "expand_sources", "read_bytes", "is_url", "file_exists"]

_GLOB_CHARS = set("*?[")
_SIDE_SUFFIX = ".zfit.fits"


@dataclass(frozen=True)
class SourceFile:
    """One input file: how to find it again (``key``), open it (``url``) and tell it unchanged (``stamp``)."""

    key: str
    url: str
    name: str
    size: int | None
    stamp: str | None
    local: bool


@dataclass(frozen=True)
class Scope:
    """What one SOURCE argument covers: one file, everything under a folder, or a glob."""

    given: str
    kind: str      # file | dir | glob
    pattern: str   # the key, the folder prefix (ending in '/'), or the glob over keys

    def covers(self, key: str) -> bool:
        """True when a file with this key would be found by this SOURCE."""
        if self.kind == "file":
            return key == self.pattern
        if self.kind == "dir":
            return key.startswith(self.pattern) and _wanted(key.rsplit("/", 1)[-1], key[len(self.pattern):])
        return fnmatch.fnmatchcase(key, self.pattern)


def is_url(text: str) -> bool:
    """True for ``proto://...`` sources other than ``file://``."""
    return "://" in text and not text.startswith("file://")


def _wanted(name: str, relative: str = "") -> bool:
    """A file a folder scan ingests: ``*.fits``, not a side file, not in a hidden folder."""
    low = name.lower()
    if not low.endswith(".fits") or low.endswith(_SIDE_SUFFIX):
        return False
    return not any(part.startswith(".") for part in relative.split("/")[:-1])


def _local(path: str) -> SourceFile | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    real = os.path.realpath(path)
    return SourceFile(real, real, os.path.basename(real), st.st_size, f"{st.st_size}:{st.st_mtime_ns}", True)


def _local_tree(top: str) -> Iterable[SourceFile]:
    for folder, dirs, names in os.walk(top, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if _wanted(name):
                src = _local(os.path.join(folder, name))
                if src is not None:
                    yield src


def _remote_stamp(info: dict) -> str | None:
    tag = info.get("ETag") or info.get("etag") or info.get("LastModified") or info.get("Last-Modified") \
        or info.get("last_modified") or info.get("mtime") or info.get("updated")
    return None if tag is None else f"{info.get('size')}:{tag}"


def _remote(fs, path: str, info: dict | None = None) -> SourceFile:
    info = info if info is not None and info.get("size") is not None else fs.info(path)
    url = fs.unstrip_protocol(path) if "://" not in path else path
    return SourceFile(url, url, url.rstrip("/").rsplit("/", 1)[-1], info.get("size"), _remote_stamp(info), False)


def expand_sources(sources: Iterable[str | os.PathLike]) -> tuple[list[SourceFile], list[Scope], list[tuple[str, str]]]:
    """The files the SOURCE arguments name, their scopes, and the arguments that name nothing.

    Returns
    -------
    files : list of SourceFile
        Unique by key, in the order found (folders sorted).
    scopes : list of Scope
        One per argument that resolved.
    problems : list of (source, reason)
        Arguments that name no file (no such path, an empty glob, an unreachable URL).
    """
    files: dict[str, SourceFile] = {}
    scopes: list[Scope] = []
    problems: list[tuple[str, str]] = []
    for given in sources:
        text = os.fspath(given)
        try:
            found, scope = _expand_one(text)
        except Exception as err:  # an unreachable URL, a permission error: one argument's problem
            problems.append((text, f"cannot list it ({type(err).__name__}: {err})"))
            continue
        if scope is None:
            problems.append((text, found if isinstance(found, str) else "no such file or directory"))
            continue
        scopes.append(scope)
        if not found:
            problems.append((text, "no *.fits files found there" if scope.kind == "dir" else "the glob matched no file"))
        for src in found:
            files.setdefault(src.key, src)
    return list(files.values()), scopes, problems


def _expand_one(text: str):
    if text.startswith("file://"):
        text = text[len("file://"):]
    if is_url(text):
        import fsspec

        fs, path = fsspec.core.url_to_fs(text)
        if _GLOB_CHARS & set(path):
            found = [_remote(fs, p) for p in sorted(fs.glob(path))]
            return found, Scope(text, "glob", text)
        if fs.isdir(path):
            prefix = text.rstrip("/") + "/"
            listing = fs.find(path, detail=True)
            found = [_remote(fs, p, info) for p, info in sorted(listing.items())
                     if _wanted(p.rsplit("/", 1)[-1], (fs.unstrip_protocol(p) if "://" not in p else p)[len(prefix):])]
            return found, Scope(text, "dir", prefix)
        if not fs.exists(path):
            return "no such file or URL", None
        src = _remote(fs, path)
        return [src], Scope(text, "file", src.key)
    path = os.path.expanduser(text)
    if _GLOB_CHARS & set(path) and not os.path.exists(path):
        folder, base = os.path.split(path)
        # keys are real paths: resolve the folder part when it has no wildcard
        pattern = os.path.abspath(path) if _GLOB_CHARS & set(folder) else os.path.join(os.path.realpath(folder or "."), base)
        found = [s for s in (_local(p) for p in sorted(glob.glob(path, recursive=True)) if os.path.isfile(p)) if s]
        return found, Scope(text, "glob", pattern)
    if os.path.isdir(path):
        real = os.path.realpath(path)
        return list(_local_tree(real)), Scope(text, "dir", real.rstrip("/") + "/")
    src = _local(path)
    if src is None:
        return "no such file or directory", None
    return [src], Scope(text, "file", src.key)


def read_bytes(url: str) -> bytes:
    """The whole file at a local path or fsspec URL."""
    if is_url(url):
        import fsspec

        with fsspec.open(url, "rb") as f:
            return f.read()
    with open(url, "rb") as f:
        return f.read()


def file_exists(key: str) -> bool:
    """Whether the file of a key is still there (local stat, or the URL's file system)."""
    if is_url(key):
        import fsspec

        try:
            fs, path = fsspec.core.url_to_fs(key)
            return bool(fs.exists(path))
        except Exception:  # unreachable: not known to be gone
            return True
    return os.path.isfile(key)
