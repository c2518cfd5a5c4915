"""The router that picks built-in tools for the embedded model, and the real embedded model
wording a routed result."""

from __future__ import annotations

import asyncio

import pytest

from perslm_voice.config import ToolsConfig
from perslm_voice.llm.base import Message
from perslm_voice.tools import ToolContext
from perslm_voice.tools.registry import builtin_tools
from perslm_voice.tools.reply import ReplyText, ToolFinished, ToolUse
from perslm_voice.tools.router import Routed, Router, clock_time, seconds_in


@pytest.mark.parametrize(
    "said, routed",
    [
        ("What time is it?", Routed("get_time")),
        ("Set a timer for 5 minutes and 30 seconds", Routed("set_timer", {"seconds": 330.0})),
        ("set a ten minute timer for the pasta", Routed("set_timer", {"seconds": 600.0, "label": "pasta"})),
        ("Remind me to call mom in 20 minutes", Routed("set_reminder", {"text": "call mom", "in_minutes": 20.0})),
        ("remind me to take out the trash at 7 pm", Routed("set_reminder", {"text": "take out the trash", "at": "19:00"})),
        ("What is 12 times 7?", Routed("calculate", {"expression": "12 times 7"})),
        ("What's the weather in Paris?", Routed("get_weather", {"location": "Paris"})),
        ("Should I bring an umbrella?", Routed("get_weather")),
        ("What's on my calendar tomorrow?", Routed("get_calendar_events", {"day": "tomorrow"})),
        ("Turn off the living room lights", Routed("control_device", {"target": "living room lights", "action": "off"})),
        ("Dim the hallway lights to 30 percent", Routed("control_device", {"target": "hallway lights", "action": "on", "brightness_percent": 30})),
        ("Send an email to Ann saying I'll be late", Routed("send_email", {"to": "Ann", "body": "I'll be late"})),
    ],
)  # fmt: skip
def test_common_phrasings(said, routed):
    assert Router().route(said) == routed


@pytest.mark.parametrize(
    "said",
    ["Tell me a joke", "What is the capital of France?", "I love rainy weather.",
     "What time do kids usually go to bed?", "Remind me", "set a timer", ""],
)  # fmt: skip
def test_no_tool_when_none_is_meant(said):
    assert Router().route(said) is None


def test_only_tools_the_user_may_use():
    assert Router().route("what time is it", {"calculate"}) is None


def test_durations_and_clock_times():
    assert seconds_in("half an hour") == 1800
    assert seconds_in("an hour and 15 minutes") == 4500
    assert clock_time("at 12 am") == "00:00" and clock_time("at 12:30 pm") == "12:30"
    assert clock_time("at 25") is None


@pytest.mark.slow
def test_the_embedded_model_words_a_routed_result(load_embedded_llm):
    llm = load_embedded_llm(max_tokens=40, temperature=0.0)

    async def no(question: str) -> bool:
        return False

    async def run():
        use = ToolUse(llm, builtin_tools(ToolContext(ToolsConfig())), no, router=Router())
        return [e async for e in use.reply([Message("user", "What is 12 times 7?")])]

    try:
        events = asyncio.run(run())
    finally:
        llm.close()
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert finished == [ToolFinished("calculate", True, "12 times 7 = 84")]
    assert "".join(e.text for e in events if isinstance(e, ReplyText)).strip()


@pytest.mark.parametrize(
    "said, meant",
    [("Yes.", True), ("yeah, go ahead", True), ("Sure!", True), ("OK", True), ("send it", True),
     ("No.", False), ("yes, but not to Ann", False), ("don't", False), ("wait", False),
     ("what's the weather", None), ("", None), ("maybe", None)],
)  # fmt: skip
def test_reading_a_yes_or_a_no(said, meant):
    from perslm_voice.tools.confirm import answer

    assert answer(said) is meant
