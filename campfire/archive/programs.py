"""``programs.yaml``: each program's slug, name, PI, visibility and members, and observation fields.

The file is optional. Without it (or for a program it does not list) a program found
in the files is created **public**, with its JWST proposal ID as the slug and the
name and PI from the files' TITLE and PI_NAME keywords. A program it lists is created
or updated exactly as written — a proprietary program stays invisible to non-members
(the server's visibility rules), so a file that does not parse stops the ingest before
anything is written, rather than risk publishing a proprietary program::

    programs:
      - id: 2478                  # JWST proposal ID (required)
        slug: stark-rxcj2248      # default: the ID, e.g. "2478"
        name: Dwarf galaxies in the reionization era   # default: the files' TITLE
        pi: Stark                 # default: the files' PI_NAME
        public: false             # default: true
        members: [alice, carol]   # server accounts granted the program (campfire users add)
    fields:                       # optional: observation (DJA root) -> field
      stark-rxcj2248-v4: rxcj2248

Examples
--------
>>> spec = parse_programs({'programs': [{'id': 2478, 'slug': 'stark', 'public': False}]}, 'x.yaml')
>>> spec.programs[2478].slug, spec.programs[2478].is_public
('stark', False)
"""
from __future__ import annotations

import os
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from campfire.errors import ValidationError

__all__ = ["ProgramSpec", "ProgramsFile", "read_programs", "parse_programs", "default_program"]

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FIELD = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_PROGRAM_KEYS = {"id", "program_id", "slug", "name", "pi", "public", "members"}


@dataclass(frozen=True)
class ProgramSpec:
    """One program as the catalog stores it, plus the accounts to grant it."""

    program_id: int
    slug: str
    program_name: str
    pi_name: str
    is_public: bool
    members: tuple[str, ...] = ()

    def row(self) -> tuple:
        """A :data:`campfire.catalog.writer.PROGRAM_FIELDS` tuple."""
        return (self.program_id, self.slug, self.program_name, self.pi_name, int(self.is_public))


@dataclass(frozen=True)
class ProgramsFile:
    """What a ``programs.yaml`` says: programs by ID and observation → field overrides."""

    programs: dict[int, ProgramSpec] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    path: str = ""


def default_program(program_id: int, title: Any = None, pi: Any = None) -> ProgramSpec:
    """A program found in the files and not listed in programs.yaml: public, slug = the proposal ID."""
    from campfire.archive.names import PLACEHOLDER_PROGRAM

    if program_id == PLACEHOLDER_PROGRAM[0]:
        return ProgramSpec(program_id, PLACEHOLDER_PROGRAM[1], PLACEHOLDER_PROGRAM[2], "", True)
    name = str(title).strip() if title else f"JWST program {program_id}"
    return ProgramSpec(program_id, str(program_id), name, str(pi or "").strip(), True)


def _fail(path: str, where: str, what: str) -> ValidationError:
    return ValidationError(f"programs: {path}: {where}: {what}")


def _program(path: str, i: int, entry: Any) -> ProgramSpec:
    where = f"programs[{i}]"
    if not isinstance(entry, Mapping):
        raise _fail(path, where, f"expected a mapping with id, slug, name, pi, public, members; got {entry!r}")
    unknown = sorted(set(map(str, entry)) - _PROGRAM_KEYS)
    if unknown:
        raise _fail(path, where, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_PROGRAM_KEYS))}")
    pid = entry.get("id", entry.get("program_id"))
    if isinstance(pid, bool) or not isinstance(pid, int) or pid < 0:
        raise _fail(path, where, f"id: expected the JWST proposal ID (a non-negative integer), got {pid!r}")
    slug = str(entry.get("slug", pid))
    if not _SLUG.match(slug):
        raise _fail(path, where, f"slug: expected letters, digits, '.', '_' or '-' (at most 64), got {slug!r}")
    public = entry.get("public", True)
    if not isinstance(public, bool):
        raise _fail(path, where, f"public: expected true or false, got {public!r}")
    members = entry.get("members", []) or []
    if not isinstance(members, list) or not all(isinstance(m, str) and m.strip() for m in members):
        raise _fail(path, where, f"members: expected a list of account names, got {members!r}")
    name = entry.get("name")
    pi = entry.get("pi")
    for key, value in (("name", name), ("pi", pi)):
        if value is not None and not isinstance(value, str):
            raise _fail(path, where, f"{key}: expected text, got {value!r}")
    return ProgramSpec(pid, slug, name or "", pi if pi is not None else "", public,
                       tuple(m.strip().lower() for m in members))


def parse_programs(data: Any, path: str = "programs.yaml") -> ProgramsFile:
    """Validate the parsed YAML of a programs file (see the module docstring).

    Raises
    ------
    ValidationError
        Anything not as documented, naming the file, the entry and the key.
    """
    if data is None:
        return ProgramsFile(path=path)
    if not isinstance(data, Mapping):
        raise _fail(path, "top level", f"expected a mapping with 'programs' (and 'fields'), got {type(data).__name__}")
    unknown = sorted(set(map(str, data)) - {"programs", "fields"})
    if unknown:
        raise _fail(path, "top level", f"unknown key(s) {', '.join(unknown)}; allowed: programs, fields")
    entries = data.get("programs") or []
    if not isinstance(entries, list):
        raise _fail(path, "programs", f"expected a list of programs, got {type(entries).__name__}")
    programs: dict[int, ProgramSpec] = {}
    slugs: dict[str, int] = {}
    for i, entry in enumerate(entries):
        spec = _program(path, i, entry)
        if spec.program_id in programs:
            raise _fail(path, f"programs[{i}]", f"program {spec.program_id} is listed twice")
        if spec.slug.lower() in slugs:
            raise _fail(path, f"programs[{i}]", f"slug {spec.slug!r} is also used by program {slugs[spec.slug.lower()]}")
        programs[spec.program_id] = spec
        slugs[spec.slug.lower()] = spec.program_id
    fields = data.get("fields") or {}
    if not isinstance(fields, Mapping):
        raise _fail(path, "fields", f"expected a mapping of observation -> field, got {type(fields).__name__}")
    out_fields = {}
    for obs, name in fields.items():
        text = str(name).strip().lower()
        if not _FIELD.match(text):
            raise _fail(path, f"fields[{obs!r}]", f"expected a lower-case field name (letters, digits, '.', '_', '-'), "
                                                  f"got {name!r}")
        out_fields[str(obs).strip().lower()] = text
    return ProgramsFile(programs, out_fields, path)


def read_programs(path: str | os.PathLike | None) -> ProgramsFile:
    """Read and validate a ``programs.yaml`` (None: no file, every program from the files is public).

    Examples
    --------
    >>> read_programs(None).programs
    {}
    """
    if path is None:
        return ProgramsFile()
    p = pathlib.Path(path).expanduser()
    try:
        text = p.read_text()
    except OSError as err:
        raise ValidationError(f"programs: cannot read {p} ({err.strerror or err})") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValidationError(f"programs: {p} is not valid YAML ({err})") from err
    return parse_programs(data, str(p))
