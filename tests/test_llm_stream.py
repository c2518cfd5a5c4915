"""stream_async: a model's pieces handed to the event loop, and a looping reply cut short."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator

from perslm_voice.config import LLMConfig
from perslm_voice.llm.base import LLM, Message, is_looping, stream_async


class ScriptedLLM(LLM):
    """Yields ``head``, then ``loop`` over and over (until cancelled, or 500 pieces)."""

    name = "scripted"

    def __init__(self, head: list[str], loop: list[str] | None = None):
        super().__init__(LLMConfig())
        self.head, self.loop = head, loop or []
        self.cancel: threading.Event | None = None

    def stream(self, messages: list[Message], cancel: threading.Event) -> Iterator[str]:
        pieces = itertools.chain(self.head, itertools.cycle(self.loop) if self.loop else ())
        self.cancel = cancel
        for piece in itertools.islice(pieces, 500):
            if cancel.is_set():
                return
            yield piece


def collect(llm: LLM) -> str:
    async def run() -> str:
        return "".join([p async for p in stream_async(llm, [], threading.Event())])

    return asyncio.run(run())


def test_a_looping_reply_ends_after_its_third_repeat():
    llm = ScriptedLLM(["Hello there. "], ["I'm sorry, ", "I'm sorry. "])
    assert collect(llm) == "Hello there. " + "I'm sorry, I'm sorry. " * 3
    assert llm.cancel is not None and llm.cancel.is_set()  # the model was told to stop


def test_a_reply_that_moves_on_is_left_whole():
    pieces = [f"Step {i} is done. " for i in range(6)] + ["Yes. Yes. No. Yes.", " That is all."]
    assert collect(ScriptedLLM(pieces)) == "".join(pieces)
    assert is_looping("No. Sure. Sure. Sure. And")
    assert not is_looping("Sure. Sure. Sure")  # the third is not complete yet
