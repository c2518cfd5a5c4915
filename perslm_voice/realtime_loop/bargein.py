"""Barge-in: is speech heard while the assistant talks the user taking the turn, or our own echo?

Pause first, decide after. Speech that starts while our voice is audible is checked by its sound
(`EchoGuard.separate`): sound that what we played explains is our echo and is let be, with no
pause. Otherwise the reply is paused (a real barge-in is silenced within milliseconds), the first
fraction of a second of the speech is transcribed with our voice taken out, and the reply either
resumes (our own words) or is interrupted (the user). While that utterance goes on (our echo keeps
it open) its sound is listened to every 0.1 s, through the room as the last check fitted it, and
its latest second is checked again every 0.5 s: a user who starts talking inside our echo pauses
the reply at their first syllable (a sound mostly not ours), and is heard out as above. A sound
mostly not ours that gives no words yet keeps the reply quiet while it is heard again, twice at
most, on all of it. The rules themselves live in perslm_voice/echo/rules.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import numpy as np

from ..echo import EchoGuard
from ..echo.rules import ECHO_MIN_SAMPLES
from ..errors import PerslmVoiceError
from .listener import Listener
from .speaker import Speaker

log = logging.getLogger(__name__)

ECHO_RECHECK_S = 0.5  # while speech that began as our echo goes on, check it again this often
ECHO_RECHECK_WINDOW_S = 1.2  # ... on its latest audio
# Between those checks, its sound alone, this often on its latest fraction of a second: a person
# who starts talking inside our echo pauses the reply at their first syllable, not at the next
# check (through the room as the last check fitted it: well under a millisecond; words are asked
# for only when the sound is not ours).
SOUND_RECHECK_S = 0.1
SOUND_WINDOW_S = 0.4
HOLD_RECHECK_S = 0.3  # someone else's sound with no words yet: stay quiet, listen this much more
HOLD_RECHECKS = 2  # ... at most this many times, then the reply goes on
TRANSCRIPT_WAIT_S = 1.5  # someone else's short utterance ended unheard: wait this for its words

# barge_in(how, t_speech_start, marks): the session stops the reply; ``marks`` are the
# detection's own (barge_in_detected, silenced, barge_in_verified) when a check decided.
BargeInCall = Callable[[str, "float | None", "dict[str, float] | None"], None]


class BargeInJudge:
    """Decides, for the session, whether speech over the reply interrupts it."""

    def __init__(
        self,
        listener: Listener,
        speaker: Speaker,
        guard: EchoGuard,
        *,
        replying: Callable[[], bool],
        barge_in: BargeInCall,
    ):
        self.listener = listener
        self.speaker = speaker
        self.guard = guard
        self._replying = replying
        self._barge_in = barge_in
        self._checks: set[asyncio.Task[None]] = set()
        # The marks of a pause for someone else's sound whose words are awaited: a turn heard
        # meanwhile stopped the reply then, not when its transcript came.
        self.paused_at: dict[str, float] | None = None

    def speech_started(self, t_start: float) -> None:
        """Speech began at ``t_start`` while the assistant is replying."""
        if not self.guard.may_echo(t_start):
            self._barge_in("voice", t_start, None)  # nothing of ours can be in it: the user
            return
        task = asyncio.create_task(self.check(t_start), name="barge-in check")
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def cancel(self) -> None:
        for task in list(self._checks):
            task.cancel()

    async def check(self, t_start: float) -> None:
        listener, speaker, guard = self.listener, self.speaker, self.guard
        first = True
        since = t_start
        held: tuple[float, float] | None = None  # (detected, silenced): kept quiet to listen on
        holds = 0
        someone = False  # the sound alone said someone else is talking: pause, then listen
        # ... and what that sound was (its new fit): the check below reads it, not a second fit
        sound: tuple[np.ndarray, float | None] | None = None
        ours_first = False  # this utterance began as our echo: the user's part starts later
        while self._replying():
            audio, not_ours = sound if sound is not None else listener.recent.hear(since)
            sound = None
            if guard.sound_is_ours(len(audio), not_ours):
                # The sound is what we are playing, come back: no need to pause or transcribe.
                log.info("echo: the sound heard is our own voice")
                ours_first = True
                if held is not None:
                    speaker.resume()
                    held = None
            else:
                paused = first or held is not None or someone
                if held is not None:
                    detected, silenced = held
                else:
                    detected = time.monotonic()
                    silenced = speaker.pause() if paused else None
                if paused and ours_first and guard.someone_else(not_ours):
                    # Someone is talking from here on: should the utterance end while its words
                    # are checked, it is read from here (not judged by our echo before it).
                    listener.recent.user_speaks_from(since)
                try:
                    transcript = await listener.transcriber.transcribe_words(audio)
                except PerslmVoiceError:
                    transcript = None
                except Exception:  # a bug must not leave the reply paused for good
                    log.exception("barge-in: the check failed")
                    transcript = None
                text = transcript.text.strip() if transcript and not transcript.rejected else ""
                verified = time.monotonic()
                if not self._replying():
                    return
                if guard.is_barge_in(text, not_ours, t_start, paused):
                    log.info("barge-in: %r is not our echo", text)
                    if ours_first:
                        listener.recent.user_speaks_from(since)
                    self._barge_in(
                        "voice",
                        t_start,
                        {
                            "barge_in_detected": detected if paused else verified,
                            "silenced": silenced if silenced is not None else time.monotonic(),
                            "barge_in_verified": verified,
                        },
                    )
                    return
                if guard.someone_else(not_ours) and not text and paused and holds < HOLD_RECHECKS:
                    # Mostly not our voice, and no words in its first fraction of a second yet
                    # (a person's first syllables often give Whisper none): listen on, quiet,
                    # rather than talk over them until the next check.
                    holds += 1
                    held = (detected, silenced)
                    first = False
                    log.info("barge-in: someone else's sound, no words yet; listening on")
                    if not await listener.wait_quiet(HOLD_RECHECK_S):
                        continue
                    # They stopped ("One."): the utterance's transcript decides, the reply quiet
                    # meanwhile. A turn stops the reply (the session takes this pause's marks).
                    self.paused_at = {"barge_in_detected": detected, "silenced": silenced}
                    await listener.wait_transcripts(TRANSCRIPT_WAIT_S)
                    if not self._replying():
                        return
                log.info(
                    "echo: not (yet) a barge-in (%r, checked in %.0f ms)%s",
                    text,
                    (verified - detected) * 1000,
                    "; the reply resumes" if paused else "",
                )
                if paused:
                    speaker.resume()
                    listener.recent.user_speaks_from(None)
                self.paused_at = None
                held = None
            first = False
            ended, heard = await self._listen(ECHO_RECHECK_S)
            if ended:
                return
            someone = heard is not None
            if heard is not None:
                since, sound = heard[0], (heard[1], heard[2])
            else:
                since = time.monotonic() - ECHO_RECHECK_WINDOW_S

    async def _listen(
        self, timeout_s: float
    ) -> tuple[bool, tuple[float, np.ndarray, float | None] | None]:
        """While speech heard over the reply goes on: (False, (since, audio, not ours)) as soon
        as its latest sound is mostly not our voice (by a new fit), (False, None) after
        ``timeout_s`` without that, (True, None) when the speech ends first."""
        listener, guard = self.listener, self.guard
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if await listener.wait_quiet(min(SOUND_RECHECK_S, left)):
                return True, None
            # On the loop (the frames it reads are appended there): a fraction of a millisecond.
            samples, not_ours = listener.recent.not_ours_lately(SOUND_WINDOW_S)
            if samples < ECHO_MIN_SAMPLES or not guard.someone_else(not_ours):
                continue
            # The room as last fitted may be stale (each piece we play is timed by its own
            # hook): a new fit on the same sound says (a few ms, and only now).
            since = time.monotonic() - SOUND_WINDOW_S
            audio, not_ours = listener.recent.hear(since)
            if guard.someone_else(not_ours):
                log.info("barge-in: someone else's sound over our voice; checking its words")
                return False, (since, audio, not_ours)
        return False, None
