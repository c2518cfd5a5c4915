"""The models a session talks with (language model, speech-to-text, text-to-speech), loaded in the
background so that the prompt is usable at once; sessions can share one set (the server does)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..audio.vad import VAD
from ..config import Config
from ..errors import PerslmVoiceError
from ..events import Level, Notice
from ..llm import LLM
from ..stt.base import STT
from ..tts.base import TTS

log = logging.getLogger(__name__)


def _loading(loop: asyncio.AbstractEventLoop, load: Callable[[], Any]) -> asyncio.Future[Any]:
    future = loop.run_in_executor(None, load)
    future.add_done_callback(lambda f: f.cancelled() or f.exception())  # said when awaited
    return future


@dataclass
class Models:
    """Each model with the future that completes once it has loaded (its exception if it
    failed); a model that cannot even be created is None, and ``problems`` says why, with the
    fix, in one line each."""

    llm: LLM | None = None
    llm_ready: asyncio.Future[Any] | None = None
    stt: STT | None = None
    stt_ready: asyncio.Future[Any] | None = None
    tts: TTS | None = None
    tts_ready: asyncio.Future[Any] | None = None
    new_vad: Callable[[], VAD] | None = None  # a VAD keeps state: one for each stream of audio
    problems: list[Notice] = field(default_factory=list)

    @classmethod
    def load(
        cls,
        config: Config,
        *,
        hearing: bool,
        speaking: bool,
        notify: Callable[[str], None] | None = None,
    ) -> Models:
        """Start loading what a session needs (on the running loop's executor).

        ``notify`` receives the language model's one-line notices (a fallback to the embedded
        model), from the model's thread."""
        from ..llm.fallback import build_llm

        loop = asyncio.get_running_loop()
        models = cls()
        try:
            models.llm = build_llm(config.llm, notify)
        except PerslmVoiceError as exc:
            models.problems.append(Notice(f"No language model: {exc}", Level.ERROR))
        if models.llm is not None:
            models.load_llm_again()
        if hearing:
            from ..audio.vad import create_vad
            from ..stt import create_stt

            models.new_vad = lambda: create_vad(config.vad)

            try:
                models.stt = create_stt(config.speech)
                models.stt_ready = _loading(loop, models.stt.load)
            except PerslmVoiceError as exc:
                models.problems.append(Notice(f"{exc}; type instead."))
        if speaking:
            from ..tts import create_tts, with_cache

            try:
                models.tts = with_cache(create_tts(config.tts), config.tts)
                models.tts_ready = _loading(loop, models.tts.load)
            except PerslmVoiceError as exc:
                models.problems.append(Notice(f"{exc}; replies are text only."))
        return models

    def load_llm_again(self) -> asyncio.Future[Any]:
        """(Re)start loading the language model: a server that was down, or had no model to
        name, is asked again (``/retry``, the next turn)."""
        llm, started = self.llm, time.monotonic()
        assert llm is not None

        def load_llm() -> None:
            llm.load()
            log.info("llm: ready after %.2f s", time.monotonic() - started)

        self.llm_ready = _loading(asyncio.get_running_loop(), load_llm)
        return self.llm_ready

    def llm_failed(self) -> bool:
        """The language model's last load failed."""
        ready = self.llm_ready
        return (
            ready is not None
            and ready.done()
            and not ready.cancelled()
            and ready.exception() is not None
        )

    def llm_is_ready(self) -> bool:
        """The language model has loaded (a failed load was said when it failed)."""
        ready = self.llm_ready
        if self.llm is None or ready is None or not ready.done() or ready.cancelled():
            return False
        return ready.exception() is None

    async def all_loaded(self) -> None:
        """Wait until every model has loaded or failed (a recording starts then, as a person
        would start talking once the assistant is there)."""
        loading = [f for f in (self.stt_ready, self.llm_ready, self.tts_ready) if f is not None]
        await asyncio.gather(*loading, return_exceptions=True)
