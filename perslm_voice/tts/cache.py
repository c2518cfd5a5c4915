"""A disk cache of synthesized sentences: common short replies are served without synthesis.

Each entry is one WAV file named by a hash of (backend, model, voice, language, rate, text). Entries
are written atomically (a temporary file, then ``os.replace``), so a reader never sees a partial
file; the cache is bounded in bytes and evicts the least recently used entries (a hit touches the
file's mtime). An entry that cannot be read is deleted and made again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .. import paths
from ..config import TTSConfig, VoiceSettings
from ..events import AudioChunk
from .base import TTS, split_sentences, wav_bytes

log = logging.getLogger(__name__)

SUFFIX = ".wav"
TMP_PREFIX = ".tmp-"
STALE_TMP_S = 3600.0  # a temporary file this old was left by a process that died mid-write


class TTSCache:
    """WAV entries under ``directory``, at most ``max_bytes`` in all (0 disables storing)."""

    def __init__(self, directory: str | Path, max_bytes: int):
        self.directory = Path(directory).expanduser()
        self.max_bytes = max(0, int(max_bytes))
        paths.make_private_dir(self.directory)
        self._total_bytes = self._scan_and_clean()

    @staticmethod
    def key(*parts: str) -> str:
        """A stable file name for what determines the sound."""
        digest = hashlib.sha256("\x1f".join(parts).encode("utf-8"))
        return digest.hexdigest()[:40]

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}{SUFFIX}"

    def _scan_and_clean(self) -> int:
        total = 0
        now = time.time()
        for entry in os.scandir(self.directory):
            try:
                if entry.name.startswith(TMP_PREFIX):
                    if now - entry.stat().st_mtime > STALE_TMP_S:
                        os.unlink(entry.path)
                elif entry.name.endswith(SUFFIX):
                    total += entry.stat().st_size
            except FileNotFoundError:  # another process evicted it meanwhile
                continue
        return total

    def get(self, key: str, text: str = "") -> AudioChunk | None:
        """The cached audio, or None; a corrupt entry is deleted (and so made again)."""
        path = self._path(key)
        try:
            with wave.open(str(path), "rb") as wav:
                params = wav.getparams()
                frames = wav.readframes(params.nframes)
        except FileNotFoundError:
            return None
        except (wave.Error, EOFError, OSError) as exc:
            log.warning("discarding unreadable TTS cache entry %s: %s", path.name, exc)
            self._discard(path)
            return None
        if (
            params.nchannels != 1
            or params.sampwidth != 2
            or params.nframes == 0
            or len(frames) != 2 * params.nframes
        ):
            log.warning("discarding truncated TTS cache entry %s", path.name)
            self._discard(path)
            return None
        try:
            os.utime(path)  # most recently used
        except FileNotFoundError:
            pass
        samples = np.frombuffer(frames, dtype="<i2").astype(np.int16)
        return AudioChunk(samples=samples, sample_rate_hz=params.framerate, text=text)

    def put(self, key: str, samples: np.ndarray, sample_rate_hz: int) -> None:
        """Store audio atomically; empty audio, or more than the whole cache may hold, is not kept."""
        data = wav_bytes(samples, sample_rate_hz)
        if len(samples) == 0 or len(data) > self.max_bytes:
            return
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, self._path(key))
        except OSError as exc:  # a full disk must not break speaking
            log.warning("cannot write TTS cache entry: %s", exc)
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            return
        self._total_bytes += len(data)
        if self._total_bytes > self.max_bytes:
            self._evict()

    def _discard(self, path: Path) -> None:
        try:
            size = path.stat().st_size
            path.unlink()
            self._total_bytes = max(0, self._total_bytes - size)
        except FileNotFoundError:
            pass

    def _evict(self) -> None:
        """Delete the least recently used entries until the cache fits in max_bytes."""
        entries = []
        for entry in os.scandir(self.directory):
            if entry.name.endswith(SUFFIX) and not entry.name.startswith(TMP_PREFIX):
                try:
                    stat = entry.stat()
                except FileNotFoundError:
                    continue
                entries.append((stat.st_mtime, stat.st_size, entry.path))
        entries.sort()
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= self.max_bytes:
                break
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            total -= size
        self._total_bytes = total

    @property
    def total_bytes(self) -> int:
        return self._total_bytes


class CachedTTS(TTS):
    """Wraps a backend: each sentence comes from the cache when it can, else is made and stored.

    Caching per sentence keeps every chunk's text exact and lets a reply that starts with a
    common sentence ("Sure.") start from the cache even when the rest is new.
    """

    def __init__(self, tts: TTS, cache: TTSCache):
        super().__init__(tts.config)
        self.inner = tts
        self.cache = cache
        self.name = tts.name
        self.hits = 0
        self.misses = 0

    def load(self) -> None:
        self.inner.load()

    def list_voices(self) -> list[str]:
        return self.inner.list_voices()

    def resolve_voice(self, voice: VoiceSettings) -> str:
        return self.inner.resolve_voice(voice)

    @property
    def description(self) -> str:
        return self.inner.description

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def close(self) -> None:
        self.inner.close()

    def synthesize(self, text: str, voice: VoiceSettings) -> Iterator[AudioChunk]:
        voice_id = self.inner.resolve_voice(voice)
        for sentence in split_sentences(text):
            key = self.cache.key(
                self.inner.name, self.inner.model_id, voice_id, voice.language,
                f"{voice.rate:.3f}", sentence,
            )  # fmt: skip
            hit = self.cache.get(key, sentence)
            if hit is not None:
                self.hits += 1
                yield hit
                continue
            self.misses += 1
            parts: list[AudioChunk] = []
            for chunk in self.inner.synthesize(sentence, voice):
                parts.append(chunk)
                yield chunk
            # Only a sentence made in full, at one sample rate, is stored; a failure or a
            # consumer that stopped early (an interrupt) leaves nothing behind.
            if parts and len({c.sample_rate_hz for c in parts}) == 1:
                samples = np.concatenate([c.samples for c in parts])
                self.cache.put(key, samples, parts[0].sample_rate_hz)


def cache_dir(config: TTSConfig) -> Path:
    """``tts.cache_dir``, else <user cache dir>/tts."""
    return Path(config.cache_dir).expanduser() if config.cache_dir else paths.cache_dir() / "tts"


def with_cache(tts: TTS, config: TTSConfig) -> TTS:
    """The backend behind the cache when ``tts.enable_cache`` is on, else the backend itself."""
    if not config.enable_cache:
        return tts
    max_bytes = int(config.cache_max_mb * 1024 * 1024)
    return CachedTTS(tts, TTSCache(cache_dir(config), max_bytes))
