"""Reading the user's answer to a confirmation question ("Send it to Ann?"), typed or spoken."""

from __future__ import annotations

import re

_YES = re.compile(
    r"^(yes|yeah|yep|yup|sure|ok|okay|do it|go ahead|please do|please|send it|correct|right|"
    r"absolutely|of course|affirmative|confirm|confirmed)\b"
)
_NO = re.compile(r"\b(no|nope|don't|do not|stop|cancel|wait|never|not)\b")


def answer(text: str) -> bool | None:
    """True for a clear yes, False for a no, None when it is neither (ask again, or take it as
    no). Only an unhedged yes counts: "yes, but not to Ann" is not a yes."""
    said = " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())
    if not said:
        return None
    if _NO.search(said):
        return False
    if _YES.match(said):
        return True
    return None
