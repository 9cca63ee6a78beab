"""The house stays straight: campfire's own import graph has no cycles and points one way.

The graph is read from the source with :mod:`ast`, so imports inside functions count as
much as module-level ones (a function-local import hides a cycle, it does not remove it).
Imports under ``if TYPE_CHECKING:`` never run; they are left out of the cycle check but
must still respect the layers.
"""
from __future__ import annotations

import ast
import pathlib
from collections import defaultdict

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "campfire"

# Rank of each top-level part of the package: a module may import its own part and any
# part of a lower or equal rank, never a higher one.
RANKS = {
    "errors": 0,
    "config": 0,
    "flags": 1,
    "lines": 1,
    "bands": 1,
    "io": 1,
    "models": 2,
    "quicklook": 2,
    # issue 12 puts models and catalog on one tier (io → models, catalog → tasks): models reads the
    # spectrum column list of campfire.catalog.columns, the one place it is spelled
    "catalog": 2,
    "transfer": 3,
    "tasks": 4,
    "imaging": 4,
    "plotting": 4,
    "graphs": 5,
    "calibration": 6,
    "demo": 6,
    "archive": 6,
    "server": 6,
    "client": 7,
    "gallery": 8,
    "workflows": 8,
    "cli": 9,
    "__main__": 9,
    "": 9,  # campfire/__init__.py: the public names, re-exported
}
# Parts that must not be imported by a given part, whatever the ranks say.
FORBIDDEN = {
    "tasks": {"graphs", "client", "transfer", "imaging", "plotting", "quicklook", "config", "catalog"},
    "server": {"client", "graphs", "workflows", "cli", "gallery", "calibration", "demo", "archive"},
    "catalog": {"transfer"},
    # the ingest of real products builds on io, tasks, catalog and graphs (and grants programs.yaml's
    # members through server.auth's account store); it never reaches for the client side or the demo
    "archive": {"client", "transfer", "workflows", "gallery", "demo", "plotting", "quicklook", "imaging", "calibration"},
}
NOBODY_IMPORTS = {"cli", "__main__"}


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: pathlib.Path, modules: set[str]):
    """(target module, type_checking_only) for every import of a campfire module in ``path``."""
    name = _module_name(path)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for inner in node.body:
                for sub in ast.walk(inner):
                    type_only.add(id(sub))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "campfire" or alias.name.startswith("campfire."):
                    yield alias.name, id(node) in type_only
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not (target == "campfire" or target.startswith("campfire.")):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                # `from pkg import submodule` depends on the submodule, not on pkg/__init__
                yield (sub if sub in modules else target), id(node) in type_only


def import_graph():
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    edges: dict[str, set[str]] = defaultdict(set)
    type_edges: dict[str, set[str]] = defaultdict(set)
    for path in paths:
        source = _module_name(path)
        for target, type_only in _imports(path, modules):
            if target != source:
                (type_edges if type_only else edges)[source].add(target)
    return modules, edges, type_edges


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_part_has_a_rank():
    modules, _, _ = import_graph()
    unranked = sorted({_part(m) for m in modules} - set(RANKS))
    assert not unranked, f"give these parts a rank in RANKS: {unranked}"


def test_no_import_cycles():
    _, edges, _ = import_graph()
    cycles = _cycles(edges)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_imports_point_one_way():
    _, edges, type_edges = import_graph()
    bad = []
    for source, targets in {**edges, **{k: edges.get(k, set()) | v for k, v in type_edges.items()}}.items():
        src = _part(source)
        for target in targets:
            dst = _part(target)
            if dst == src:
                continue
            if dst in NOBODY_IMPORTS and src not in NOBODY_IMPORTS:
                bad.append(f"{source} -> {target} (nothing imports {dst})")
            elif dst in FORBIDDEN.get(src, ()):
                bad.append(f"{source} -> {target} ({src} never imports {dst})")
            elif dst == "" and src != "":
                bad.append(f"{source} -> {target} (the package root re-exports; nothing inside imports it)")
            elif RANKS.get(dst, 99) > RANKS.get(src, -1):
                bad.append(f"{source} -> {target} (upward: {src} rank {RANKS.get(src)} < {dst} rank {RANKS.get(dst)})")
    assert not bad, "imports against the layers:\n" + "\n".join(sorted(bad))


def test_no_private_names_across_modules():
    """``from campfire.x import _name`` couples two modules through a private name."""
    modules, _, _ = import_graph()
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("campfire"):
                for alias in node.names:
                    if alias.name.startswith("_") and f"{node.module}.{alias.name}" not in modules:
                        bad.append(f"{_module_name(path)}: from {node.module} import {alias.name}")
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


def test_no_private_dask_api():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            for n in names:
                if any(part.startswith("_") for part in n.split(".")[:2]) and n.split(".")[0] in {"dask", "distributed"}:
                    bad.append(f"{_module_name(path)}: {n}")
    assert not bad, "private Dask API:\n" + "\n".join(sorted(set(bad)))


@pytest.mark.parametrize("module", ["campfire.tasks"])
def test_tasks_are_pure(module):
    """No task module reaches for Dask, HTTP, files config or the client."""
    banned = {"dask", "distributed", "requests", "urllib3", "fsspec", "sqlite3"}
    bad = []
    for path in sorted((PACKAGE / module.split(".")[1]).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            bad += [f"{_module_name(path)} imports {r}" for r in roots if r in banned]
    assert not bad, "\n".join(bad)
