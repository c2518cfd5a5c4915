"""The common phrasings of the built-in tools, matched without a model: the embedded 135M model
cannot pick tools (scripts/bench_tools.py measures it), so for it this picks the tool and its
arguments, and the model only words the result.

Pure and synchronous: text in, a ``Routed`` (or None) out; patterns err on the side of no
match, because a wrong tool is worse than a plain answer."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "forty-five": 45, "fifty": 50, "sixty": 60, "ninety": 90,
    "half an": 0.5, "half a": 0.5,
}  # fmt: skip
_UNIT_S = {"second": 1, "sec": 1, "minute": 60, "min": 60, "hour": 3600}
_NUMBER = r"(\d+(?:\.\d+)?|half an?|an?|" + "|".join(k for k in _NUMBERS if " " not in k) + ")"
_DURATION = re.compile(_NUMBER + r"\s*(?:-\s*)?(second|sec|minute|min|hour)s?\b")
_CLOCK = re.compile(r"\bat (\d{1,2})(?::(\d{2}))?\s*(a\.?m\.?|p\.?m\.?)?")


def _number(word: str) -> float:
    return float(word) if word[0].isdigit() else float(_NUMBERS[word])


def seconds_in(text: str) -> float | None:
    """ "5 minutes and 30 seconds" -> 330.0; None when no duration is said."""
    found = _DURATION.findall(text)
    if not found:
        return None
    return sum(_number(n) * _UNIT_S[u] for n, u in found)


def clock_time(text: str) -> str | None:
    """ "at 5 pm" -> "17:00"; "at 7:30" -> "07:30"."""
    match = _CLOCK.search(text)
    if not match:
        return None
    hour, minute, half = int(match.group(1)), int(match.group(2) or 0), match.group(3) or ""
    if half.startswith("p") and hour < 12:
        hour += 12
    if half.startswith("a") and hour == 12:
        hour = 0
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


@dataclass(frozen=True)
class Routed:
    """The tool to call and its arguments."""

    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)


def _time(text: str, cased: str) -> Routed | None:
    if re.search(r"\bwhat(?:'s| is) the (?:time|date)(?: now| today| right now)?$"
                 r"|\bwhat time is it\b|\bwhat day is (?:it|today)\b|\btoday's date\b", text):  # fmt: skip
        return Routed("get_time")
    return None


def _timer(text: str, cased: str) -> Routed | None:
    if re.search(r"\b(cancel|stop|delete) (?:the |my )?(timer|reminder)", text):
        return Routed("cancel_timer")
    if re.search(r"\b(what|which|any|list|how long)\b.*\b(timers?|reminders?)\b", text) and not (
        re.search(r"\b(set|start)\b", text)
    ):
        return Routed("list_timers")
    reminder = re.search(r"\bremind me (?:to |about |that )?(.+)", text)
    if reminder:
        rest = reminder.group(1)
        seconds, at = seconds_in(rest), clock_time(rest)
        what = re.sub(r"\b(in|after|at)\b\s.*$", "", rest).strip(" ,.?") or "what you asked"
        if at:
            return Routed("set_reminder", {"text": what, "at": at})
        if seconds:
            return Routed("set_reminder", {"text": what, "in_minutes": round(seconds / 60, 2)})
        return None
    if re.search(r"\btimer\b|\bcount ?down\b|\bwake me in\b", text):
        seconds = seconds_in(text)
        if seconds:
            label = re.search(r"\b(?:timer for|timer) (?:the |my )?([a-z]+)$", text)
            args: dict[str, Any] = {"seconds": seconds}
            if label and label.group(1) not in _UNIT_S and not label.group(1).endswith("s"):
                args["label"] = label.group(1)
            return Routed("set_timer", args)
    return None


_OPERATORS = r"(?:plus|minus|times|multiplied by|divided by|over|to the power of|squared|[-+*/^x])"


def _calculate(text: str, cased: str) -> Routed | None:
    match = re.search(
        r"(?:what(?:'s| is)|calculate|compute|how much is)\s+"
        r"([-\d.(][\d\s.()]*(?:\s*" + _OPERATORS + r"\s*[\d\s.()]*)+)",
        text,
    )
    if match and re.search(r"\d", match.group(1)) and re.search(_OPERATORS, match.group(1)):
        return Routed("calculate", {"expression": match.group(1).strip(" ?.")})
    return None


def _weather(text: str, cased: str) -> Routed | None:
    asks = re.search(r"\b(what|what's|how|will|is it|should|do i need|forecast)\b", text)
    if asks and re.search(r"\b(weather|forecast|umbrella|temperature outside|going to rain"
                 r"|will it rain|is it raining|rain today|how (?:hot|cold|warm) is it)\b", text):  # fmt: skip
        place = re.search(r"\b(?:in|for) ([a-z][a-z .'-]+?)(?: today| tomorrow| now)?$", text)
        args = {}
        if place and place.group(1) not in ("today", "tomorrow", "the morning", "the evening"):
            args["location"] = place.group(1).title()
        return Routed("get_weather", args)
    return None


def _calendar(text: str, cased: str) -> Routed | None:
    if re.search(r"\b(calendar|schedule|agenda|meetings?|appointments?|events?)\b", text) and (
        re.search(r"\b(what|what's|do i have|any|show|read|list|on my)\b", text)
    ):
        day = "tomorrow" if "tomorrow" in text else "yesterday" if "yesterday" in text else "today"
        return Routed("get_calendar_events", {"day": day})
    return None


def _lights(text: str, cased: str) -> Routed | None:
    match = re.search(
        r"\b(?:turn|switch|put) (on|off) (?:the |my )?(.+)|\b(?:turn|switch) (?:the |my )?(.+?) (on|off)$",
        text,
    )
    if match:
        action = match.group(1) or match.group(4)
        target = (match.group(2) or match.group(3) or "").strip(" ?.")
        if target:
            return Routed("control_device", {"target": target, "action": action})
    match = re.search(r"\b(?:dim|brighten) (?:the |my )?(.+?)(?: to (\d+)(?: ?%| percent))?$", text)
    if match:
        args: dict[str, Any] = {"target": match.group(1).strip(" ?."), "action": "on"}
        if match.group(2):
            args["brightness_percent"] = int(match.group(2))
        return Routed("control_device", args)
    return None


def _email(text: str, cased: str) -> Routed | None:
    # matched on the words as said, so the body keeps its capitals
    match = re.search(
        r"\b(?:send|write) (?:an? )?(?:email|e-mail|mail|message) to ([a-z][\w.@-]*)"
        r"(?: saying| that says| telling (?:him|her|them))?:? (.+)",
        cased,
        re.I,
    )
    if match:
        return Routed("send_email", {"to": match.group(1), "body": match.group(2).strip()})
    return None


RULES: list[Callable[[str, str], Routed | None]] = [
    _timer, _time, _calculate, _weather, _calendar, _lights, _email,
]  # fmt: skip


class Router:
    """Picks a built-in tool for a user's words, among the tools the user may use."""

    def __init__(self, word_results: bool = True):
        # True: the model words the tool's result; False: the tool's own sentence is said.
        self.word_results = word_results

    def route(self, text: str, available: Collection[str] | None = None) -> Routed | None:
        cased = " ".join(text.strip().rstrip("?!.").split())
        cased = re.sub(
            r"^(hey|ok|okay|please|can you|could you|would you)\b,?\s*", "", cased, flags=re.I
        )
        said = cased.lower()
        for rule in RULES:
            routed = rule(said, cased)
            if routed is not None:
                if available is not None and routed.tool not in available:
                    return None
                return routed
        return None
