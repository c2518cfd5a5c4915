"""The assistant must not hear itself: echo cancellation, the echo check, and the echo test room.

With speakers instead of headphones the microphone hears the assistant's own voice. Three measures,
each following the sound through the player (``Player.follow``), and `EchoGuard`, which holds them
and the rules that say whether a sound or a transcript is our echo or a person:

- `EchoCanceller`: WebRTC's acoustic echo canceller (AEC3, from ``pywebrtc-audio``) removes
  the played voice from the microphone's frames before the VAD sees them.
- `SpokenLog` + `echo_score`: what was played in the last seconds, and how much of a candidate
  transcript is made of those words; a voice turn that is mostly the assistant's own words is
  dropped, and a barge-in candidate that is is not taken as one.
- `EchoRoom` (`--echo-room DELAY_MS:GAIN[:NOISE_DB]`, for tests): the file source hears the
  assistant's output as it is played, delayed and attenuated, with optional white noise.

Every threshold these decisions use is in rules.py, and only there.
"""

from .aec import EchoCanceller, aec_available, open_canceller
from .guard import EchoGuard, open_echo_guard
from .played import EchoReference, SpokenLog, remove_echo
from .room import EchoRoom, EchoRoomSpec
from .rules import (
    ECHO_MAX_DELAY_S,
    ECHO_RESIDUAL_MAX,
    ECHO_TAIL_S,
    SOMEONE_ELSE_MIN,
    echo_score,
    is_echo,
    is_our_echo,
    new_words,
)

__all__ = [
    "ECHO_MAX_DELAY_S",
    "ECHO_RESIDUAL_MAX",
    "ECHO_TAIL_S",
    "SOMEONE_ELSE_MIN",
    "EchoCanceller",
    "EchoGuard",
    "EchoReference",
    "EchoRoom",
    "EchoRoomSpec",
    "SpokenLog",
    "aec_available",
    "echo_score",
    "is_echo",
    "is_our_echo",
    "new_words",
    "open_canceller",
    "open_echo_guard",
    "remove_echo",
]
