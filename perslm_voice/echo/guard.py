"""`EchoGuard`: the echo measures of one session, following its audio output, and the decisions
made with them (is this sound, this transcript, this barge-in candidate our own voice?)."""

from __future__ import annotations

import numpy as np

from ..audio.player import Player
from ..events import AudioChunk, AudioFrame
from .aec import EchoCanceller, open_canceller
from .played import EchoReference, SpokenLog
from .rules import ECHO_RESIDUAL_MAX, ECHO_TAIL_S, SOMEONE_ELSE_MIN, is_echo, is_our_echo, new_words


class EchoGuard:
    """What keeps the assistant from hearing itself, following one audio output: the canceller
    (if any) on every frame, and the rules that tell our echo from a person, by sound
    (``separate``) and by words (``words_are_ours``). With ``check=False`` (``audio.echo_check:
    false``) only the canceller and the strict VAD protect the session."""

    def __init__(self, check: bool = True, canceller: EchoCanceller | None = None):
        self.check = check
        self.spoken = SpokenLog()
        self.reference = EchoReference() if check else None
        self.canceller = canceller

    @property
    def description(self) -> list[str]:
        active = ["echo check"] if self.check else []
        return active + ([self.canceller.description] if self.canceller is not None else [])

    def follow(self, player: Player) -> None:
        player.follow(self._played, self._silenced)

    def _played(self, chunk: AudioChunk, t_start: float) -> None:
        self.spoken.played(chunk, t_start)
        for measure in (self.reference, self.canceller):
            if measure is not None:
                measure.played(chunk, t_start)

    def _silenced(self, t: float) -> None:
        self.spoken.silenced(t)
        for measure in (self.reference, self.canceller):
            if measure is not None:
                measure.silenced(t)

    def clean(self, frame: AudioFrame) -> AudioFrame:
        """A microphone frame with the echo cancelled (as it was, without a canceller)."""
        return self.canceller.process(frame) if self.canceller is not None else frame

    def separate(self, mic: np.ndarray, t0: float) -> tuple[np.ndarray, float | None]:
        """``mic`` with our voice taken out and the share of it that is not our voice (see
        `EchoReference.separate`); (``mic``, None) when the sound check is off."""
        if self.reference is None:
            return mic, None
        return self.reference.separate(mic, t0)

    def share_not_ours(self, mic: np.ndarray, t0: float) -> float | None:
        """The share of ``mic`` that is not our voice, through the room as last fitted (cheap);
        None when the sound check is off or nothing we played can be in it."""
        if self.reference is None:
            return None
        return self.reference.share_not_ours(mic, t0)

    def may_echo(self, t_speech_start: float) -> bool:
        """Our voice was audible lately: speech that began at ``t_speech_start`` may be its echo,
        and is to be checked before it interrupts us."""
        return self.check and self.spoken.audible_since(t_speech_start - ECHO_TAIL_S)

    def words_are_ours(self, text: str, t_speech_start: float, min_new_words: int = 1) -> bool:
        """``text``, heard from ``t_speech_start`` on, is mostly our own recent words (or has fewer
        than ``min_new_words`` words that are not ours)."""
        if not self.check:
            return False
        spoken = self.spoken.echo_source(t_speech_start)
        return is_echo(text, spoken) or new_words(text, spoken) < min_new_words

    @staticmethod
    def sound_is_ours(samples: int, not_ours: float | None) -> bool:
        """Sound of ``samples`` samples of which ``not_ours`` is not our voice is our echo."""
        return is_our_echo(samples, not_ours)

    @staticmethod
    def someone_else(not_ours: float | None) -> bool:
        """Sound mostly not our voice: someone is talking, whatever the words."""
        return not_ours is not None and not_ours >= SOMEONE_ELSE_MIN

    def turn_is_echo(self, text: str, not_ours: float | None, t_speech_start: float) -> bool:
        """A finished utterance is our own echo, not a turn. The sound decides first where it
        can: sound that our voice explains is our echo, sound mostly someone else's is theirs,
        whatever its words (ours were taken out of the transcript); in between, a transcript
        mostly made of our recent words is our echo."""
        if not_ours is not None:
            if not_ours >= SOMEONE_ELSE_MIN:
                return False
            if not_ours < ECHO_RESIDUAL_MAX:
                return True
        return self.words_are_ours(text, t_speech_start)

    def is_barge_in(
        self, text: str, not_ours: float | None, t_speech_start: float, paused: bool
    ) -> bool:
        """Words heard over our voice are the user taking the turn: the sound is mostly theirs,
        or the words are not ours. A check made while the reply went on (not paused) needs three
        words that are not ours: a second of our echo is misheard more often than half a second."""
        if not text:
            return False
        if self.someone_else(not_ours):
            return True
        return not self.words_are_ours(text, t_speech_start, min_new_words=1 if paused else 3)


def open_echo_guard(check: bool, cancellation: str, realtime: bool) -> EchoGuard:
    """The guard for ``audio.echo_check`` and ``audio.echo_cancellation``; the canceller runs
    only where frames carry real capture times (a microphone, or a recording played in real
    time)."""
    return EchoGuard(check, open_canceller(cancellation) if realtime else None)
