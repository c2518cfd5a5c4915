"""The operating system's own speech command: ``say`` (macOS), ``espeak-ng`` (Linux), SAPI (Windows).

No Python package beyond the core: the command is run once per sentence and its audio read back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

from ..config import TTSConfig, VoiceSettings
from ..errors import BackendUnavailable, ModelError
from ..events import AudioChunk
from .base import DEFAULT_VOICE, TTS, chunk_from_file, chunk_from_wav, split_sentences

# Rate 1.0: espeak-ng's own default is 175 words/min, but 200 (pyttsx3's default too) is clearer to
# speech-to-text: tiny.en reads "The quick brown fox..." at 200 with one slip, at 175 with two.
ESPEAK_WORDS_PER_MIN = 200
SAY_WORDS_PER_MIN = 175  # macOS say's default rate
COMMAND_TIMEOUT_S = 60.0


class SystemTTS(TTS):
    """Runs the platform's speech command; on Windows it is SAPI through pyttsx3."""

    name = "system"

    def __init__(self, config: TTSConfig):
        super().__init__(config)
        self._command: str | None = None
        self._sapi: TTS | None = None
        self._voices: list[str] | None = None

    def load(self) -> None:
        if self._command or self._sapi:
            return
        if sys.platform == "win32":
            from .pyttsx3 import Pyttsx3TTS

            sapi = Pyttsx3TTS(self.config, driver="sapi5")
            sapi.load()
            self._sapi = sapi
            return
        wanted = "say" if sys.platform == "darwin" else "espeak-ng"
        found = shutil.which(wanted) or (shutil.which("espeak") if wanted == "espeak-ng" else None)
        if not found:
            fix = "it ships with macOS" if wanted == "say" else "sudo apt install espeak-ng"
            raise BackendUnavailable(f"tts backend 'system' needs the {wanted!r} command: {fix}")
        self._command = found

    def _run(self, args: list[str]) -> bytes:
        try:
            done = subprocess.run(args, capture_output=True, timeout=COMMAND_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ModelError(f"{os.path.basename(args[0])} failed: {exc}") from None
        if done.returncode != 0:
            message = done.stderr.decode(errors="replace").strip().splitlines()
            raise ModelError(
                f"{os.path.basename(args[0])} exited with {done.returncode}"
                + (f": {message[-1]}" if message else "")
            )
        return done.stdout

    def list_voices(self) -> list[str]:
        self.load()
        if self._sapi:
            return self._sapi.list_voices()
        if self._voices is None:
            if sys.platform == "darwin":
                lines = self._run([str(self._command), "-v", "?"]).decode(errors="replace")
                # "Alex                en_US    # Most people recognize me by my voice."
                self._voices = [
                    ln.split("  ")[0].strip() for ln in lines.splitlines() if ln.strip()
                ]
            else:
                lines = self._run([str(self._command), "--voices"]).decode(errors="replace")
                # Pty Language Age/Gender VoiceName File Other-languages: ids are the File column.
                rows = [ln.split() for ln in lines.splitlines()[1:]]
                self._voices = [r[4] for r in rows if len(r) >= 5]
        return list(self._voices)

    def resolve_voice(self, voice: VoiceSettings) -> str:
        if voice.voice_id == DEFAULT_VOICE:
            if sys.platform == "darwin":
                return DEFAULT_VOICE  # the voice chosen in System Settings
            return voice.language.lower().replace("_", "-")  # espeak-ng takes a language code
        self.load()
        if self._sapi:
            return self._sapi.resolve_voice(voice)
        voices = self.list_voices()
        lowered = {v.lower(): v for v in voices}
        if voice.voice_id.lower() in lowered:
            return lowered[voice.voice_id.lower()]
        raise self.unknown_voice(voice.voice_id, voices)

    def synthesize(self, text: str, voice: VoiceSettings) -> Iterator[AudioChunk]:
        self.load()
        if self._sapi:
            yield from self._sapi.synthesize(text, voice)
            return
        voice_id = self.resolve_voice(voice)
        for sentence in split_sentences(text):
            if sys.platform == "darwin":
                yield self._say(sentence, voice_id, voice.rate)
            else:
                wpm = round(ESPEAK_WORDS_PER_MIN * voice.rate)
                # "--" ends the options: a sentence starting with "-" is text, not a flag.
                args = [
                    str(self._command),
                    "--stdout",
                    "-v",
                    voice_id,
                    "-s",
                    str(wpm),
                    "--",
                    sentence,
                ]
                yield chunk_from_wav(self._run(args), sentence)

    def _say(self, sentence: str, voice_id: str, rate: float) -> AudioChunk:
        fd, path = tempfile.mkstemp(prefix="perslm-tts-", suffix=".aiff")
        os.close(fd)
        try:
            args = [str(self._command), "-o", path, "-r", str(round(SAY_WORDS_PER_MIN * rate))]
            if voice_id != DEFAULT_VOICE:
                args += ["-v", voice_id]
            self._run([*args, "--", sentence])
            return chunk_from_file(path, sentence)
        finally:
            os.unlink(path)

    @property
    def description(self) -> str:
        if self._sapi:
            return "system (Windows SAPI)"
        return f"system ({'say' if sys.platform == 'darwin' else 'espeak-ng'})"

    @property
    def model_id(self) -> str:
        return sys.platform

    def close(self) -> None:
        if self._sapi:
            self._sapi.close()
