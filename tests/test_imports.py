"""No import cycle in tplab, and the package names that look alike mean what they say.

A cycle (a imports b, b imports a, directly or through others) makes whichever module is
imported first see the other half-initialised; a function-level "lazy" import only hides it.
So every import counts here, at module level or inside a function, as read from the source.

What counts as an edge from module m:
- `import tplab.x.y` and `from tplab.x.y import name`: an edge to tplab.x.y;
- `from tplab.x import y` where tplab/x/y.py (or tplab/x/y/) exists: an edge to tplab.x.y;
  where y is a name defined in tplab/x/__init__.py: an edge to tplab.x (its __init__);
- relative imports (`from . import y`, `from .y import z`) resolved against m's package.
A package's __init__ is one module like any other, with its own edges: importing a name from a
package runs its __init__, so an __init__ that imports a submodule which imports a name back
from that package is a cycle. The parent packages Python runs implicitly before a submodule
(tplab/__init__ before tplab.x.y) are not edges: they would make every package whose __init__
imports its own submodules a "cycle", and those imports complete in a fixed order.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import tplab

PACKAGE = Path(tplab.__file__).resolve().parent


def module_names() -> dict[str, Path]:
    """Every module under tplab/, by dotted name (a package by its own name, for its __init__)."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("tplab",) + path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(tplab module imported, line) for every import statement in the file, anywhere in it."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    edges = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            edges += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: climb from this module's package
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                edges.append((sub if sub in modules else source, node.lineno))
    return [(target, line) for target, line in edges if target in modules and target != name]


def import_graph() -> dict[str, dict[str, int]]:
    """{module: {module it imports: first line of that import}} over tplab."""
    modules = module_names()
    graph = {}
    for name, path in modules.items():
        graph[name] = {}
        for target, line in imports_of(name, path, modules):
            graph[name].setdefault(target, line)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle (a path that returns to its start) in every strongly connected group of
    modules, found with Tarjan's algorithm; empty when the graph has none."""
    index, low, on_stack, stack, groups = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_in(graph, group) for group in groups]


def _cycle_in(graph, group: set[str]) -> list[str]:
    """A shortest path from the group's first module back to itself, staying in the group."""
    start = min(group)
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for w in sorted(graph[path[-1]]):
            if w == start:
                return path + [start]
            if w in group and w not in seen:
                seen.add(w)
                paths.append(path + [w])
    raise AssertionError(f"no cycle found in strongly connected group {sorted(group)}")


def describe(graph, cycle: list[str]) -> str:
    modules = module_names()
    steps = [f"  {a} imports {b} ({modules[a].relative_to(PACKAGE.parent)}:{graph[a][b]})"
             for a, b in zip(cycle, cycle[1:])]
    return " -> ".join(cycle) + "\n" + "\n".join(steps)


def test_no_import_cycle_in_tplab():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles in tplab:\n" + "\n".join(describe(graph, c) for c in found)


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}, "e": {"e": 5}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b": 1}, "b": {}}) == []


def test_edges_are_resolved_as_documented(tmp_path):
    modules = {"tplab": Path(), "tplab.p": Path(), "tplab.p.sub": Path(), "tplab.p.q": Path(),
               "tplab.other": Path()}
    source = tmp_path / "q.py"
    source.write_text(
        "import tplab.other\n"
        "from . import sub\n"              # a submodule: the edge goes to it
        "from tplab.p import helper\n"     # a name in tplab/p/__init__.py: the edge is to tplab.p
        "def f():\n"
        "    from ..other import x\n"      # inside a function, relative, two levels up
        "import os\n")
    got = imports_of("tplab.p.q", source, modules)
    assert got == [("tplab.other", 1), ("tplab.p.sub", 2), ("tplab.p", 3), ("tplab.other", 5)]


def test_tplab_launch_is_the_function_and_ranks_the_package():
    ranks = importlib.import_module("tplab.ranks")
    assert hasattr(ranks, "__path__"), "tplab.ranks should be the package (tplab/ranks/)"
    assert callable(tplab.launch) and tplab.launch is ranks.launch
    assert tplab.launch is importlib.import_module("tplab.ranks.launcher").launch
    # no module named tplab.launch for the function to shadow
    assert importlib.util.find_spec("tplab.launch") is None
