"""YAML with line numbers: compose the document, keep each value's position.

``yaml.safe_load`` forgets where a value came from. Composing the document first
(``yaml.compose``) keeps a node tree whose ``start_mark`` says the line of every key
and value; :func:`load_with_lines` constructs the plain Python data *and* a map from
each value's path (``('steps', 2, 'calibrate', 'degree')``) to its 1-based line, so a
validator can say "line 14: steps[2].calibrate.degree: ...".

Examples
--------
>>> data, lines = load_with_lines("a: 1\\nb:\\n  - x\\n  - {c: 2}\\n")
>>> data
{'a': 1, 'b': ['x', {'c': 2}]}
>>> lines[('b', 1, 'c')], lines.key(('b', 1, 'c'))
(4, 4)
>>> format_path(('b', 1, 'c'))
'b[1].c'
"""
from __future__ import annotations

from typing import Any, Iterable

import yaml

from campfire.errors import ValidationError

__all__ = ["load_with_lines", "Lines", "format_path"]

Path = tuple


class Lines(dict):
    """``path → line of the value`` (1-based), with :meth:`key` for the line of the key."""

    def __init__(self):
        super().__init__()
        self.keys_at: dict[Path, int] = {}

    def key(self, path: Path) -> int | None:
        """Line of the mapping key at ``path`` (falls back to the value's line)."""
        return self.keys_at.get(tuple(path), self.get(tuple(path)))

    def nearest(self, path: Path) -> int | None:
        """The line of ``path`` or of its closest recorded parent."""
        path = tuple(path)
        while path:
            line = self.keys_at.get(path) or self.get(path)
            if line is not None:
                return line
            path = path[:-1]
        return self.get(())


def format_path(path: Iterable) -> str:
    """``('steps', 2, 'calibrate')`` → ``'steps[2].calibrate'``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(document)"


def load_with_lines(text: str, source: str = "<workflow>") -> tuple[Any, Lines]:
    """Parse YAML text into plain data plus a :class:`Lines` map of value positions.

    Raises
    ------
    ValidationError
        On a YAML syntax error (message with the line and column), a duplicate key,
        or more than one document.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise ValidationError(f"{source}: {where}: invalid YAML: {err.problem or err}") from err
    except yaml.YAMLError as err:
        raise ValidationError(f"{source}: invalid YAML: {err}") from err
    lines = Lines()
    if node is None:
        return None, lines
    data = _construct(node, (), lines, source)
    return data, lines


def _scalar(node: yaml.Node, source: str) -> Any:
    # the SafeLoader's own constructors resolve tags (ints, floats, bools, null, dates)
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as err:
        raise ValidationError(f"{source}: line {node.start_mark.line + 1}: {err}") from err
    finally:
        loader.dispose()


def _construct(node: yaml.Node, path: Path, lines: Lines, source: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ValidationError(f"{source}: line {key_node.start_mark.line + 1}: YAML merge keys (<<) are not supported")
            key = _scalar(key_node, source)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise ValidationError(f"{source}: line {key_node.start_mark.line + 1}: mapping keys must be plain scalars")
            sub = path + (key,)
            if key in out:
                raise ValidationError(
                    f"{source}: line {key_node.start_mark.line + 1}: {format_path(sub)}: duplicate key "
                    f"(first given on line {lines.keys_at[sub]})"
                )
            lines.keys_at[sub] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, sub, lines, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(child, path + (i,), lines, source) for i, child in enumerate(node.value)]
    return _scalar(node, source)
