"""What the user is told when something they said is heard but not answered.

Being ignored is worse than being misheard: a person whose words were set aside sees why, briefly
and calmly, and can repeat, type, or switch language. The terminal, the server protocol and
``perslm-voice transcribe`` all word it through ``rejection_notice``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..events import Transcript
from .base import RejectedKind
from .language import language_name

ASK_AGAIN = "Sorry, could you say that again?"
REPEAT_HINT = "Say it again, or type it."


@dataclass(frozen=True)
class RejectionNotice:
    """A rejected transcript, for the user: its kind, one short line, what they can do, and what a
    voice may say."""

    kind: RejectedKind
    text: str  # "(didn't catch that: it sounded like French)"
    hint: str  # what the person can do: "say it again, or type it"
    # A question the assistant may speak once in voice mode, or None where asking would be wrong:
    # noise and silence are nobody talking to it (``shown`` is False: a log line, not a notice).
    spoken: str | None
    shown: bool

    @property
    def line(self) -> str:
        """The notice on one line, as the terminal shows it."""
        return f"{self.text} {self.hint}".strip()


def rejection_notice(transcript: Transcript) -> RejectionNotice | None:
    """The notice for a transcript that was heard but not taken as a turn; None when it was taken.

    A transcript rejected without a kind (another backend's) counts as "low confidence": something
    was heard, and the person is better told than ignored.
    """
    if not transcript.rejected:
        return None
    kind: RejectedKind = transcript.rejected_kind or "low confidence"
    if kind == "language":
        # Only an English-only model rejects a language (a multilingual one transcribes it).
        sounded = f"it sounded like {language_name(transcript.language)}"
        return RejectionNotice(
            kind,
            f"(didn't catch that: {sounded})",
            "Say it again in English, type it, or use the multilingual model"
            " (speech.model_name: base).",
            ASK_AGAIN,
            True,
        )
    if kind == "low confidence":
        return RejectionNotice(
            kind, "(didn't catch that: it was too unclear)", REPEAT_HINT, ASK_AGAIN, True
        )
    if kind == "noise":
        return RejectionNotice(kind, "(heard a sound, but no words)", "", None, False)
    return RejectionNotice(kind, "(heard nothing to answer)", "", None, False)
