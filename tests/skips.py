"""The two kinds of skip that CI (``CI=true``) allows; any other skip fails there.

``scripts/test.sh`` installs everything the suite needs (the extras `piper`, `whisper-base`, `test`,
the Debian packages, the recordings under ``tests/audio``). A test that skips for one of those in CI
hides a broken set-up, so conftest.py turns it into a failure. A skip stays a skip only when its
reason starts with one of these prefixes:

- ``optional(...)``: a part the README's set-up does not install, or may leave out
  (openai-whisper with ``PERSLM_VOICE_SKIP_TORCH=1``);
- ``not_here(...)``: a fact about the machine, not a missing part (it has a microphone, it forbids
  ``unshare``), or the other branch of a pair of tests runs instead.
"""

from __future__ import annotations

OPTIONAL = "optional part, not installed by the set-up: "
NOT_HERE = "not on this machine: "
ALLOWED_IN_CI = (OPTIONAL, NOT_HERE)


def optional(reason: str) -> str:
    """A skip reason for a part the README's set-up does not install."""
    return OPTIONAL + reason


def not_here(reason: str) -> str:
    """A skip reason for a property of this machine that the set-up cannot change."""
    return NOT_HERE + reason


def allowed_in_ci(reason: str) -> bool:
    return reason.removeprefix("Skipped: ").startswith(ALLOWED_IN_CI)
