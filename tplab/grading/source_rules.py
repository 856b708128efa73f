"""Refuse answers that use the checks' own modules (`tplab.checks`).

A check hides its reference answers (`tplab.checks.forbid`) only while it calls the learner's
function. A cell that imports a check module can compute the checked cases' answers when the
cell itself runs (or keep the reference functions in a dict, or read a table of answers) and
look them up later: every point earned, nothing written. A learner never needs `tplab.checks`
in their own code, so the grader reads the source of each cell the learner wrote and, when one
reaches the checks' modules, its exercise earns nothing, with status "failed" and a message that
says why; so does every exercise checked after it (what the cell took stays in the kernel).

The source is read with `ast` (after IPython turns magics into calls), so comments and prose
strings never count; what does: `import tplab.checks...`, `from tplab.checks... import`,
`from tplab import checks`, `tplab.checks` as an attribute (of `tplab` under any name), a string
naming a check module anywhere but a bare string statement (`importlib.import_module(...)`,
`sys.modules[...]`, `runpy`), "tplab" with "checks" in one call (`__import__("tplab",
fromlist=["checks"])`, `getattr(tplab, "checks")`), code given to exec/eval/compile as a
string, a magic naming them (`%run -m tplab.checks...`), and a dunder of a name the notebook
imported from `tplab.checks` (`stated_parts.__globals__`) or such a name given to `vars` or
`inspect.getmodule`.

Cells the course wrote (a non-exercise cell with a solution cell's id) may import what the
solution's cell imports and nothing more. This is a rule a grader can enforce, not a sandbox:
a module name assembled at run time gets past it.
"""
from __future__ import annotations

import ast
import re

from tplab.grading.cells import check_of, exercise_of

MESSAGE = "{} uses tplab.checks (the checks' own answers): write the answer yourself"
MODULE = re.compile(r"^tplab\.checks(\.\w+)*$")
MENTION = re.compile(r"\btplab[./\\]checks\b")  # in a magic's line
PATH = re.compile(r"\btplab[/\\]+checks\b")  # in any string: a file of the checks
CHECKS_PART = re.compile(r"^\.?checks([./]\w+)*$")
MAGICS = {"run_line_magic", "run_cell_magic"}
CODE_RUNNERS = {"exec", "eval", "compile"}
INSPECTORS = {"vars", "getmodule", "getsourcefile", "getfile", "getclosurevars", "getmembers"}


def python_of(source: str) -> str:
    """The Python IPython runs for a cell (magics as calls); the source itself without IPython."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # grading without IPython in this process: magics stay unparsed
        return source
    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # a cell IPython cannot read raises when it runs anyway
        return source


def text_of(node) -> str | None:
    """A string known before the cell runs: a literal, literals joined by `+`, an f-string
    without fields."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = text_of(node.left), text_of(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.JoinedStr):
        parts = [text_of(value) for value in node.values]
        return None if None in parts else "".join(parts)
    return None


def name_of(func) -> str:
    """The last name of a called function: `importlib.import_module` -> "import_module"."""
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


class _Scan(ast.NodeVisitor):
    """Collect (line, key) for each use; `key` names what was reached (for allow lists)."""

    def __init__(self, tplab_names: set[str], check_names: set[str]):
        self.tplab, self.checked, self.found = tplab_names, check_names, []

    def hit(self, node, key: str) -> None:
        self.found.append((getattr(node, "lineno", 1), key))

    def is_tplab(self, node) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.tplab
        if isinstance(node, ast.Call) and node.args:
            return text_of(node.args[0]) == "tplab"
        if isinstance(node, ast.Subscript):
            return text_of(node.slice) == "tplab"
        return False

    def visit_Import(self, node):
        for alias in node.names:
            if MODULE.match(alias.name):
                self.hit(node, f"import {alias.name}")

    def visit_ImportFrom(self, node):
        module = node.module or ""
        for alias in node.names:
            full = f"{module}.{alias.name}"
            if MODULE.match(module) or (module == "tplab" and alias.name == "checks"):
                self.hit(node, full)

    def visit_Attribute(self, node):
        if node.attr == "checks" and self.is_tplab(node.value):
            self.hit(node, "tplab.checks")
        elif (isinstance(node.value, ast.Name) and node.value.id in self.checked
              and node.attr.startswith("__")):
            self.hit(node, f"{node.value.id}.{node.attr}")
        self.generic_visit(node)

    def visit_Subscript(self, node):
        if text_of(node.slice) == "checks" and any(
                self.is_tplab(n) or text_of(n) == "tplab" for n in ast.walk(node.value)):
            self.hit(node, "tplab.checks")
        self.generic_visit(node)

    def visit_BinOp(self, node):
        if isinstance(node.op, ast.Add) and MODULE.match(text_of(node) or ""):
            self.hit(node, text_of(node))
        right = text_of(node.right)
        if isinstance(node.op, ast.Div) and right is not None and CHECKS_PART.match(right):
            self.hit(node, "tplab/checks")  # a path: REPO / "tplab" / "checks" / ...
        self.generic_visit(node)

    def visit_Expr(self, node):
        if text_of(node.value) is None:  # a bare string is prose (a docstring): not read
            self.generic_visit(node)

    def visit_Constant(self, node):
        text = text_of(node)
        if text is not None and (MODULE.match(text) or PATH.search(text)
                                 and not any(c.isspace() for c in text)):
            self.hit(node, text)

    def visit_Call(self, node):
        name = name_of(node.func)
        args = list(node.args) + [k.value for k in node.keywords]
        texts = [t for a in args for n in ast.walk(a) if (t := text_of(n)) is not None]
        if (any(t == "tplab" for t in texts) or any(self.is_tplab(a) for a in args)) and any(
                CHECKS_PART.match(t) for t in texts):
            self.hit(node, "tplab.checks")
        if name in MAGICS and any(MENTION.search(t) for t in texts):
            self.hit(node, "magic tplab.checks")
        if name in CODE_RUNNERS and node.args and text_of(node.args[0]) is not None:
            inner = _Scan(self.tplab, self.checked)
            try:
                inner.visit(ast.parse(text_of(node.args[0])))
            except SyntaxError:
                pass
            self.found += [(node.lineno, key) for _, key in inner.found]
        if name in INSPECTORS and any(isinstance(a, ast.Name) and a.id in self.checked
                                      for a in node.args):
            self.hit(node, f"{name}()")
        if name == "getattr" and len(node.args) >= 2 and isinstance(node.args[0], ast.Name) \
                and node.args[0].id in self.checked and (text_of(node.args[1]) or "")[:2] == "__":
            self.hit(node, "getattr dunder")
        self.generic_visit(node)


def parse(source: str):
    """The cell's syntax tree, or None when it is not Python (it raises when it runs)."""
    try:
        return ast.parse(python_of(source))
    except (SyntaxError, ValueError):
        return None


def names_bound(trees) -> tuple[set[str], set[str]]:
    """({names of the tplab package}, {names imported from tplab.checks}) over the notebook."""
    tplab_names, checked = {"tplab"}, set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tplab_names |= {a.asname for a in node.names if a.name == "tplab" and a.asname}
            elif isinstance(node, ast.Assign) and _Scan(tplab_names, set()).is_tplab(node.value):
                tplab_names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            elif isinstance(node, ast.ImportFrom) and MODULE.match(node.module or ""):
                checked |= {a.asname or a.name for a in node.names if a.name != "*"}
    return tplab_names, checked


def uses(source: str, tplab_names=frozenset({"tplab"}), check_names=frozenset()):
    """[(line number, key)] for each place `source` reaches tplab.checks (see the docstring)."""
    tree = parse(source)
    if tree is None:
        return []
    own_tplab, own_checked = names_bound([tree])
    scan = _Scan(set(tplab_names) | own_tplab, set(check_names) | own_checked)
    scan.visit(tree)
    return scan.found


def refused_cells(merged, solution) -> dict[int, str]:
    """{cell index: message} for the learner's code cells of `merged` that use tplab.checks.

    Check cells (the course's, restored) are never read; a course cell (its id is a solution
    cell's that is no exercise) only for what the solution's cell does not already use.
    """
    reference = {c.get("id"): c for c in solution.cells if c.get("id")}
    code = [(i, c) for i, c in enumerate(merged.cells) if c.get("cell_type") == "code"]
    trees = [t for _, c in code if (t := parse(c.get("source", ""))) is not None]
    tplab_names, checked = names_bound(trees)  # check cells' imports too: `check_x.__globals__`
    code = [(i, c) for i, c in code if check_of(c) is None]
    refused = {}
    for index, cell in code:
        source = cell.get("source", "")
        found = uses(source, tplab_names, checked)
        ref = reference.get(cell.get("id"))
        if ref is not None and exercise_of(ref) is None and exercise_of(cell) is None:
            allowed = {key for _, key in uses(ref.get("source", ""), tplab_names, checked)}
            found = [(line, key) for line, key in found if key not in allowed]
        if found:
            line = found[0][0]
            lines = python_of(source).splitlines()
            text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
            where = "exercise cell" if exercise_of(cell) is not None else f"cell {index + 1}"
            refused[index] = f"{MESSAGE.format(where)} (line {line}: {text[:80]})"
    return refused


def refuse(exercises: list[dict], layout: dict, refused: dict[int, str]) -> None:
    """Zero, in place, each exercise that owns a refused cell ("failed", the refusal's message),
    and each exercise checked after one that still earned points (what that cell took stays in
    the kernel for it); an exercise that earned nothing keeps its own status and message."""
    for result in exercises:
        entry = layout[result["id"]]
        own = [i for i in sorted(refused) if i in entry["work"]]
        last_check = max((i for i, _ in entry["checks"]), default=-1)
        before = [i for i in sorted(refused) if i < last_check]
        if own or (before and result["earned"]):
            result.update(earned=0, status="failed", message=refused[(own or before)[0]])
