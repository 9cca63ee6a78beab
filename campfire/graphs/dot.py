"""A graphviz-free picture of a graph: the high-level layers as DOT text.

``LazySpectra.visualize()`` uses dask's graphviz rendering when the ``graphviz``
package is installed; otherwise it writes this: one node per layer (name and task
count), one edge per dependency — readable as text and renderable anywhere
(``dot -Tpng``, online viewers).

Examples
--------
>>> from dask.highlevelgraph import HighLevelGraph
>>> hlg = HighLevelGraph({'a': {('a', 0): 1}, 'b': {('b', 0): (sum, [('a', 0)])}}, {'a': set(), 'b': {'a'}})
>>> print(layer_dot(hlg))
digraph campfire {
  rankdir=BT;
  node [shape=box, fontname="Helvetica"];
  "a" [label="a\\n1 task"];
  "b" [label="b\\n1 task"];
  "a" -> "b";
}
"""
from __future__ import annotations

import os

from dask.utils import key_split

__all__ = ["layer_dot", "write_layer_dot"]


def layer_dot(hlg) -> str:
    """DOT text of a HighLevelGraph's layers and their dependencies."""
    lines = ["digraph campfire {", "  rankdir=BT;", '  node [shape=box, fontname="Helvetica"];']
    for name, layer in hlg.layers.items():
        n = len(layer)
        short = key_split(name) if "-" in name else name
        label = f"{short}\\n{n} task{'s' if n != 1 else ''}"
        lines.append(f'  "{name}" [label="{label}"];')
    for name, deps in hlg.dependencies.items():
        for d in sorted(deps):
            lines.append(f'  "{d}" -> "{name}";')
    lines.append("}")
    return "\n".join(lines)


def write_layer_dot(hlg, filename: str = "campfire-graph") -> str:
    """Write :func:`layer_dot` to ``filename`` (``.dot`` added when it has no extension)."""
    path = filename if os.path.splitext(filename)[1] else filename + ".dot"
    with open(path, "w") as f:
        f.write(layer_dot(hlg) + "\n")
    return path
