"""Dequantized weights kept in the user's cache: why loading the model costs a copy, not a decode.

The GGUF file stores SmolLM2's matrices in 4- and 8-bit blocks. Turning one into float32 runs
gguf's numpy dequantizer over every block: seconds for the whole model on a small CPU, paid
again by every rank, test, notebook and grading run that loads the model. So the first load of
a matrix writes it, dequantized, as a `.npy` file under the user's cache
(`~/.cache/tplab/weights/<file key>/`), and every later load memory-maps that file and copies
out only the rows and columns it asks for (a tensor-parallel rank: its shard). Nothing is
downloaded and nothing changes numerically: the cached values are the dequantizer's own.

* The key is the GGUF file's name, size and modification time, so a new or changed file never
  reads another file's weights.
* A file is written under a temporary name and renamed into place, so ranks that load at once
  never read half a file; a cached file of the wrong shape or type is ignored and rewritten.
* If the cache cannot be written (a read-only or full disk) the load goes on without it and
  says so once (a warning), as slow as before but right.
* `TPLAB_WEIGHT_CACHE=0` turns it off; `TPLAB_WEIGHT_CACHE=/some/dir` puts it there instead.
"""
from __future__ import annotations

import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np

ENV = "TPLAB_WEIGHT_CACHE"
_warned: set[str] = set()


def cache_root(environ=None) -> Path | None:
    """Where dequantized weights go, or None when the cache is turned off."""
    env = os.environ if environ is None else environ
    setting = env.get(ENV, "")
    if setting.strip().lower() in ("0", "off", "no", "false"):
        return None
    if setting:
        return Path(setting)
    home = env.get("HOME") or os.path.expanduser("~")
    return Path(env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")) / "tplab" / "weights"


class WeightCache:
    """The cached matrices of one GGUF file (`for_file` gives None when the cache is off)."""

    def __init__(self, folder: Path):
        self.folder = folder

    @classmethod
    def for_file(cls, gguf_path: Path, environ=None) -> WeightCache | None:
        root = cache_root(environ)
        if root is None:
            return None
        stat = Path(gguf_path).stat()
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(gguf_path).stem)
        return cls(root / f"{stem}-{stat.st_size}-{stat.st_mtime_ns}")

    def _file(self, name: str) -> Path:
        return self.folder / (re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".npy")

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray | None:
        """The cached float32 matrix `name`, memory-mapped, or None if absent or not as expected."""
        try:
            array = np.load(self._file(name), mmap_mode="r")
        except (OSError, ValueError, EOFError):  # absent, or spoiled (truncated, not .npy)
            return None
        if array.shape != tuple(shape) or array.dtype != np.float32:
            return None
        return array

    def put(self, name: str, array: np.ndarray) -> bool:
        """Store `array` (float32); False, with one warning per folder, if it cannot be written."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as out:
                    np.save(out, np.ascontiguousarray(array, dtype=np.float32))
                os.replace(tmp, self._file(name))
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            return True
        except OSError as exc:
            if str(self.folder) not in _warned:
                _warned.add(str(self.folder))
                warnings.warn(f"tplab cannot keep dequantized weights in {self.folder} ({exc}); "
                              f"the model still loads, without the cache (slower). Free some "
                              f"space, or set {ENV}=/a/writable/dir, or {ENV}=0 to silence this.",
                              RuntimeWarning, stacklevel=3)
            return False
