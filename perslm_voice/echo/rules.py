"""The echo numbers and rules, in one place: when a sound or a transcript is our own voice."""

from __future__ import annotations

import difflib
import re

from ..events import SAMPLE_RATE_HZ

ECHO_SCORE_MIN = 0.5  # a candidate with this share of the assistant's recent words is echo
WORD_MATCH_MIN = (
    0.7  # difflib ratio at which a misheard word still counts ("brimstone": "brentstone")
)
ECHO_WINDOW_S = 10.0  # how far back played speech may come back as echo (room delay included)
ECHO_TAIL_S = 1.0  # after this long without playing, no echo of ours can still be arriving
REFERENCE_KEEP_S = 60.0  # what was played is kept this long, for the echo measure and removal
ECHO_MAX_DELAY_S = 0.5  # the longest speakers-to-microphone delay the echo measure looks for
ECHO_FIT_TAPS = 32  # the filter that stands for speakers and room (2 ms at 16 kHz)
ECHO_FIT_BLOCK = SAMPLE_RATE_HZ // 4  # each quarter second is fitted with its own delay
ECHO_RESIDUAL_MAX = 0.3  # sound that our voice explains but for this share is our echo
ECHO_MIN_SAMPLES = SAMPLE_RATE_HZ // 10  # the sound check says "echo" on 0.1 s of sound or more
SOMEONE_ELSE_MIN = 0.5  # sound more than half of which is not our voice is someone talking
WORD_MATCH_MIN_LEN = 5  # shorter words count as ours only when spelled the same ("one": "once")
AEC_BLOCK = SAMPLE_RATE_HZ // 100  # WebRTC's audio processing works on 10 ms blocks
AEC_INSTALL = "pip install 'perslm-voice[aec]'"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _matched(candidate: str, spoken: str) -> tuple[int, int]:
    """(words of ``candidate`` found in ``spoken``, misheard ones included; all its words)."""
    words = _words(candidate)
    vocabulary = set(_words(spoken))
    matched = sum(
        1
        for word in words
        if word in vocabulary
        or (
            len(word) >= WORD_MATCH_MIN_LEN
            and difflib.get_close_matches(word, vocabulary, 1, WORD_MATCH_MIN)
        )
    )
    return matched, len(words)


def echo_score(candidate: str, spoken: str) -> float:
    """The share (0-1) of ``candidate``'s words that are words of ``spoken``, misheard ones included.

    Speech-to-text of the assistant's own voice coming back through the room is rarely exact
    ("Paris" heard as "Perris"), so a word counts when difflib finds it close enough.
    """
    matched, total = _matched(candidate, spoken)
    return matched / total if total else 0.0


def new_words(candidate: str, spoken: str) -> int:
    """How many of ``candidate``'s words are not (even misheard) words of ``spoken``."""
    matched, total = _matched(candidate, spoken)
    return total - matched


def is_echo(candidate: str, spoken: str) -> bool:
    """True when ``candidate`` is mostly made of the assistant's ``spoken`` words."""
    return echo_score(candidate, spoken) >= ECHO_SCORE_MIN


def is_our_echo(samples: int, not_ours: float | None) -> bool:
    """Sound of ``samples`` samples, ``not_ours`` of whose energy our voice does not explain (None:
    nothing we played could be in it), is our own echo."""
    return samples >= ECHO_MIN_SAMPLES and not_ours is not None and not_ours < ECHO_RESIDUAL_MAX
