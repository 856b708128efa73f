"""Check the set-up: Python, torch (CPU or CUDA build, GPUs seen, gloo), the course model file,
the package.

Prints a short report and exits non-zero, saying what to run, when something the course
needs is missing. Never initialises CUDA (it asks NVML how many GPUs there are).
"""
from __future__ import annotations

import importlib.metadata as metadata
import os
import platform
import re
import sys

from tplab.install import pip_command


def add_arguments(parser) -> None:
    parser.add_argument("--verify", action="store_true",
                        help="also check the model file's sha256 against the installed package "
                             "(~0.3 s)")


def _line(label: str, value: str) -> None:
    print(f"  {label:<10} {value}")


def _short(path: str) -> str:
    """`path` relative to the current directory when it lies below it (`.venv/bin/tplab`)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return rel if not rel.startswith(os.pardir) else path


def _torch_report() -> list[str]:
    """Print torch's lines; return problems."""
    try:
        import torch
    except ImportError as e:
        _line("torch", f"MISSING ({e})")
        return ["torch is not importable. Run `make setup`, or install a torch>=2.4 build "
                "into this environment first (a CUDA build is kept) and then `make setup`."]
    problems = []
    cuda = torch.version.cuda
    hip = getattr(torch.version, "hip", None)
    build = f"CUDA {cuda} build" if cuda else (f"ROCm {hip} build" if hip else "CPU build")
    _line("torch", f"{torch.__version__} ({build}) at {os.path.dirname(torch.__file__)}")
    if cuda or hip:
        # With PYTORCH_NVML_BASED_CUDA_CHECK=1 (set by tplab/__init__) this asks NVML and
        # leaves CUDA uninitialised, so `launch` can still fork.
        n = torch.cuda.device_count()
        _line("GPUs", f"{n} visible" + ("" if n else " (the course runs on CPU ranks with gloo)"))
        if n:
            nccl = torch.distributed.is_available() and torch.distributed.is_nccl_available()
            _line("nccl", "available" if nccl else "not available")
    else:
        _line("GPUs", "none used (CPU build; the course runs on CPU ranks with gloo)")
    dist_ok = torch.distributed.is_available()
    gloo = dist_ok and torch.distributed.is_gloo_available()
    _line("gloo", "available" if gloo else "NOT AVAILABLE")
    if not gloo:
        problems.append("this torch build has no torch.distributed gloo backend; install an "
                        "official torch wheel (`make setup` installs torch==2.13.0).")
    m = re.match(r"(\d+)\.(\d+)", torch.__version__)
    if m and (int(m[1]), int(m[2])) < (2, 4):
        problems.append(f"torch {torch.__version__} is older than the course needs (torch>=2.4).")
    return problems


def _model_report(verify: bool) -> list[str]:
    from tplab.models.locate import DIST, ModelFileError, find_gguf

    try:
        path = find_gguf(verify_hash=verify)
    except ModelFileError as e:
        _line("model", "MISSING OR DAMAGED")
        return [str(e)]
    size = path.stat().st_size
    try:
        version = f"{DIST} {metadata.version(DIST)}, "
    except metadata.PackageNotFoundError:
        version = ""
    checked = "sha256 checked" if verify else "size checked"
    if os.environ.get("TPLAB_GGUF"):
        version, checked = "from TPLAB_GGUF, ", "header checked"
    _line("model", f"{path} ({size / 1e6:.1f} MB, {version}{checked})")
    return []


def _package_report() -> list[str]:
    """tplab itself and its declared dependencies (checked only when tplab is installed)."""
    import tplab

    try:
        requires = metadata.requires("tplab") or []
        how = f"installed {metadata.version('tplab')}"
    except metadata.PackageNotFoundError:
        _line("tplab", f"{tplab.__version__} at {os.path.dirname(tplab.__file__)} "
                       f"(not installed: run `make setup`)")
        return []
    _line("tplab", f"{how} at {os.path.dirname(tplab.__file__)}")
    # The `tplab` command sits beside this python (`tplab lab` puts that folder first on PATH
    # for its kernels and terminals; outside the lab, call it by this path).
    script = os.path.join(os.path.dirname(sys.executable),
                          "tplab.exe" if os.name == "nt" else "tplab")
    if os.path.exists(script):
        _line("command", _short(script))
    # extras (`make test` adds them) are not required here
    requires = [r for r in requires if not (";" in r and "extra ==" in r)]
    missing = []
    for req in requires:
        name = re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0]
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        _line("deps", "MISSING: " + ", ".join(missing))
        return [f"missing packages: {', '.join(missing)}. Run `{pip_command()} install -e .` "
                "in the repository (or `make setup`)."]
    _line("deps", f"all {len(requires)} present")
    return []


def run(args) -> int:
    print("tplab doctor")
    _line("python", f"{platform.python_version()} at {sys.executable}")
    problems = _torch_report()
    problems += _model_report(getattr(args, "verify", False))
    problems += _package_report()
    if problems:
        print(f"\ndoctor: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print("  - " + p.replace("\n", "\n    "), file=sys.stderr)
        return 1
    print("doctor: OK")
    return 0
