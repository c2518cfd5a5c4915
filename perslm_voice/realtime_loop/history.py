"""This session's turns as the model will see them, interruptions marked."""

from __future__ import annotations

from ..llm import Message

INTERRUPTED_DASH = " —"  # ends a reply, in the history, where the user interrupted it
INTERRUPTED_NOTE = (
    "An answer of yours that ends with a dash (—) was interrupted there by the user; "
    "do not mention it."
)


class History:
    """The session's messages, and the system note that explains an interrupted reply's dash.

    An interrupted reply enters the history as far as the user heard it, ending with a dash, and
    from then on the system message says what that dash means. Not a note right before the
    question (a small model says it back), nor one that comes and goes with the turn (each change
    to the system message makes llama.cpp read the whole prompt again: about 1.4 s for 250 tokens
    on a busy 2-core machine, instead of its cached prefix).
    """

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.interrupted_note: str | None = None

    def add(self, user_text: str, reply: str, *, interrupted: bool, heard: str | None) -> None:
        self.messages.append(Message("user", user_text))
        said = heard if interrupted else reply
        if said and interrupted:
            self.messages.append(Message("assistant", f"{said.rstrip()}{INTERRUPTED_DASH}"))
            self.interrupted_note = INTERRUPTED_NOTE
        elif said:
            self.messages.append(Message("assistant", said))

    def said_unasked(self, text: str) -> None:
        """The assistant said ``text`` on its own (a reminder): it joins its last answer, so that
        the model sees it and the roles still take turns."""
        if text and self.messages and self.messages[-1].role == "assistant":
            last = self.messages[-1]
            self.messages[-1] = Message("assistant", f"{last.content} {text}")
