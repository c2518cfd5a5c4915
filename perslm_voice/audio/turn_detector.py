"""End of turn: after a short pause, is the user done (answer now) or thinking (wait)?

A pure, synchronous decision, like the endpointer: the listener calls ``decide`` once the VAD has
heard ``vad.turn_pause_s`` of silence and the speculative transcript of the turn so far is in (with
the model's probability, computed meanwhile on the same audio); "complete" ends the utterance at
once, "wait" lets the silence run on to ``vad.turn_max_wait_s``. Which evidence counts is ``vad.turn_detection``:

- ``silence``: none. The utterance ends after ``speech.audio.silence_duration`` of silence, as
  before this module existed (the listener never asks).
- ``words``: the words so far. A turn that stops on "and", "of", "the", "because", a comma or
  "um" is not over; one that stops on anything else is.
- ``smart_turn``: how it sounds (Smart Turn v3.2: intonation, a drawn-out last syllable, a breath
  before more) and the words: complete when the model says so and the words do not say otherwise.
  Unfinished words win over the model: the model reads only sound, and a speaker who pauses after
  "the" at a falling pitch is still mid-sentence.

Every decision carries its reason, for the debug log and the turn's timing marks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

# Words after which an English sentence cannot end: conjunctions, articles, possessives and
# hesitations. Kept short on purpose: a word that can also end a sentence ("it", "you", "that",
# "then", "can", "do") would wait on complete turns ("thank you", "so do I"), and every wait costs
# up to turn_max_wait_s.
UNFINISHED_WORDS = frozenset(
    """
    and or but nor because although though unless whereas if than whether
    the a an my your our their its every each
    um uh er erm hmm uhm
    """.split()
)
# Prepositions end a question often enough ("what is it for?", "where are you from?"): they leave
# a turn unfinished only when Whisper did not hear a question.
UNFINISHED_UNLESS_QUESTION = frozenset(
    """
    of to for with from at by in into onto between through during without within across toward
    towards upon as about like
    """.split()
)
UNFINISHED_ENDINGS = (",", ";", ":", "-", "...", "…")  # punctuation Whisper writes mid-sentence
_WORD = re.compile(r"[a-z']+")
SMART_TURN_THRESHOLD = 0.5  # the model's own cut-off (pipecat's LocalSmartTurnAnalyzerV3)


class Detection(str, Enum):
    """What ``vad.turn_detection`` names: the evidence an end-of-turn decision may use."""

    SILENCE = "silence"
    WORDS = "words"
    SMART_TURN = "smart_turn"


@dataclass(frozen=True)
class TurnDecision:
    """Whether the turn is over after this pause, why, and what deciding cost.

    ``reason`` is one short token, used in a timing mark's name (``turn_end_<reason>``) and in the
    debug log: ``words``, ``unfinished_words``, ``smart_turn``, ``smart_turn_unsure``, ``no_words``
    (and ``silence`` for a turn that the silence window ended).
    """

    complete: bool
    reason: str
    probability: float | None = None  # the model's P(complete), when it was asked
    last_words: str = ""

    def describe(self) -> str:
        """One line for the debug log."""
        verdict = "complete" if self.complete else "wait"
        p = "" if self.probability is None else f", P(complete) {self.probability:.2f}"
        return f"{verdict} ({self.reason}{p}) after ...{self.last_words!r}"


def unfinished(text: str) -> bool:
    """True when ``text`` stops where a sentence cannot: on a comma, "and", "the", "um"..."""
    stripped = text.strip()
    if not stripped:
        return False
    if stripped.endswith(UNFINISHED_ENDINGS):
        return True
    words = _WORD.findall(stripped.lower())
    if not words:
        return False
    # Whisper closes most pieces with a full stop even mid-sentence ("that take no account of."),
    # so the last word decides, not the stop; a question mark does not rescue "and?" either.
    if words[-1] in UNFINISHED_WORDS:
        return True
    return words[-1] in UNFINISHED_UNLESS_QUESTION and not stripped.endswith("?")


def last_words(text: str, n: int = 4) -> str:
    return " ".join(text.split()[-n:])


def decide(
    detection: Detection | str,
    text: str,
    probability: float | None = None,
    threshold: float = SMART_TURN_THRESHOLD,
) -> TurnDecision:
    """After a pause: the transcript of the turn so far and, for ``smart_turn``, the model's
    P(complete) on its audio -> complete or wait. Not asked for ``silence``."""
    detection = Detection(detection)
    tail = last_words(text)
    if detection is Detection.SILENCE:
        raise ValueError("silence detection makes no early decision")
    if not text.strip():
        # Nothing intelligible yet (a cough, a breath): there is nothing to answer early.
        return TurnDecision(False, "no_words", probability, tail)
    if unfinished(text):
        return TurnDecision(False, "unfinished_words", probability, tail)
    if detection is Detection.WORDS:
        return TurnDecision(True, "words", probability, tail)
    if probability is None:
        raise ValueError("smart_turn detection needs the model's probability")
    if probability >= threshold:
        return TurnDecision(True, "smart_turn", probability, tail)
    return TurnDecision(False, "smart_turn_unsure", probability, tail)
