"""The session engine through its inputs and events, with scripted stages (tests/engine_harness.py):
the turn logic in milliseconds, no model loaded."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import textwrap
import time

import pytest
from engine_harness import Harness, ScriptedLLM, harness_config

from perslm_voice.errors import LLMUnreachable
from perslm_voice.events import (
    BargeIn,
    Level,
    MemoryChanged,
    Notice,
    ReplyAudio,
    ReplyDelta,
    ReplyDone,
    ReplyStarted,
    ReplyTextDone,
    Report,
    Source,
    SpeechStarted,
    State,
    StateChanged,
    TurnTimings,
    UserText,
    UtteranceRejected,
)
from perslm_voice.realtime_loop import INTERRUPTED_DASH, INTERRUPTED_NOTE

LONG_REPLY = [f"Sentence number {i} goes on for a while. " for i in range(1, 9)]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def stored(home) -> list[tuple]:
    db = sqlite3.connect(home / "data" / "perslm-voice.db")
    try:
        return db.execute(
            "SELECT role, text, source, interrupted, heard, timings IS NOT NULL FROM turns"
            " ORDER BY id"
        ).fetchall()
    finally:
        db.close()


def test_a_typed_turn_gives_its_events_in_order_and_is_stored(tmp_path, isolated_home):
    async def scenario():
        async with Harness(tmp_path, ScriptedLLM(["Paris ", "is the capital."])) as h:
            h.type("What is the capital of France?", live=False)
            await h.until(TurnTimings)
            return h

    h = run(scenario())
    reply = (ReplyStarted, ReplyDelta, ReplyTextDone, ReplyDone)
    kinds = [type(e) for e in h.events if isinstance(e, reply)]
    assert kinds == [ReplyStarted, ReplyDelta, ReplyDelta, ReplyTextDone, ReplyDone]
    assert h.of(ReplyDone)[0].text == "Paris is the capital."
    states = [e.state for e in h.of(StateChanged)]
    assert states[:2] == [State.LISTENING, State.THINKING] and State.SPEAKING in states
    assert stored(isolated_home) == [
        ("user", "What is the capital of France?", "keyboard", 0, None, 0),
        ("assistant", "Paris is the capital.", None, 0, None, 1),  # the timings observer wrote
    ]
    timings = h.of(TurnTimings)[0]
    assert {"typed", "first_token", "first_audio_synthesized"} <= set(timings.marks)


def test_timings_of_a_typed_turn_count_from_the_typed_line(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:
            h.type("hello", live=False)
            await h.until(TurnTimings)
            h.type("/timings")
            return (await h.until(Report))[0]

    report = run(scenario())
    ms = dict(report.rows)
    assert ms["typed"] == "0"
    assert 0 <= int(ms["first token"]) < 5000  # not milliseconds since the clock's epoch


def wide_window():
    """A 1 s end-of-speech window: the early transcript (at 30 % of it) has 0.7 s to be ready
    before the window closes, even on a busy machine."""
    config = harness_config()
    config.speech.audio.silence_duration = 1.0
    return config


def test_a_voice_turn_is_heard_and_answered_from_its_draft(tmp_path):
    llm = ScriptedLLM(["Hello ", "to you."])

    async def scenario():
        async with Harness(tmp_path, llm, {3: "hello there"}, config=wide_window()) as h:
            await h.say(3, then_silence_s=1.2)
            await h.until(TurnTimings)
            return h

    h = run(scenario())
    heard = [e for e in h.of(UserText) if e.source is Source.VOICE]
    assert [e.text for e in heard] == ["hello there"]
    assert h.of(SpeechStarted)
    # The reply was drafted inside the end-of-speech window and taken over as it was.
    assert len(llm.prompts) == 1
    assert h.of(ReplyDone)[0].text == "Hello to you."
    marks = h.of(TurnTimings)[0].marks
    assert marks["reply_speculative"] < marks["transcript_ready"]


def test_a_pause_inside_a_sentence_drops_the_draft(tmp_path):
    llm = ScriptedLLM(["Draft reply."], ["Whole reply."])

    async def scenario():
        words = {3: "the first half", 5: "the first half and more"}
        async with Harness(tmp_path, llm, words, config=wide_window()) as h:
            await h.frames(300, 0.3)
            # Quiet until the early transcript has started a draft, inside the 1 s window.
            for _ in range(20):
                await h.frames(0, 0.032)
                if llm.prompts:
                    break
            await h.frames(500, 0.6)  # the user goes on (the level of the whole: code 5)
            await h.frames(0, 1.2)
            await h.until(ReplyDone)
            return h

    h = run(scenario())
    assert [e.text for e in h.of(UserText)] == ["the first half and more"]
    assert h.of(ReplyDone)[0].text == "Whole reply."
    assert len(llm.prompts) == 2  # the draft was written, and dropped unseen
    assert llm.prompts[0][-1].content.endswith("the first half")
    assert not [d for d in h.of(ReplyDelta) if "Draft" in d.text]


def test_typing_over_a_reply_interrupts_it_and_marks_the_history(tmp_path, isolated_home):
    llm = ScriptedLLM(LONG_REPLY, ["Fine."])

    async def scenario():
        async with Harness(tmp_path, llm) as h:
            h.type("Tell me a long story.")
            await h.until_state(State.SPEAKING)
            await asyncio.sleep(0.3)
            h.type("Stop, something else.")
            await h.until(ReplyDone, 2)
            await h.until(TurnTimings, 2)
            return h

    h = run(scenario())
    first, second = h.of(ReplyDone)
    assert first.interrupted and not second.interrupted
    assert first.heard and first.heard != first.text and first.text.startswith(first.heard[:20])
    assert h.of(BargeIn)[0].how == "typed"
    history = h.session.history
    assert history.messages[1].content.endswith(INTERRUPTED_DASH)
    assert history.interrupted_note == INTERRUPTED_NOTE
    # The next prompt carries the dash and the note that explains it.
    prompt = llm.prompts[1]
    assert INTERRUPTED_NOTE in prompt[0].content
    assert any(m.content.endswith(INTERRUPTED_DASH) for m in prompt if m.role == "assistant")
    rows = stored(isolated_home)
    assert rows[1][0] == "assistant" and rows[1][3] == 1 and rows[1][4] == first.heard


def test_piped_lines_wait_their_turn_and_do_not_interrupt(tmp_path):
    llm = ScriptedLLM(["One. Two. Three."], ["Four."])

    async def scenario():
        async with Harness(tmp_path, llm) as h:
            h.type("first", live=False)
            h.type("second", live=False)
            await h.until(ReplyDone, 2)
            return h

    h = run(scenario())
    assert [d.interrupted for d in h.of(ReplyDone)] == [False, False]
    assert not h.of(BargeIn)


def test_speaking_over_the_reply_interrupts_it(tmp_path):
    llm = ScriptedLLM(LONG_REPLY)

    async def scenario():
        async with Harness(tmp_path, llm, {7: "wait a moment please"}) as h:
            h.type("Tell me a long story.", live=False)
            await h.until_state(State.SPEAKING)
            await asyncio.sleep(0.2)
            await h.say(7, seconds=0.5)
            await h.until(ReplyDone, 2)
            return h

    h = run(scenario())
    barge = h.of(BargeIn)
    assert barge and barge[0].how == "voice"
    first = h.of(ReplyDone)[0]
    assert first.interrupted
    assert [e.text for e in h.of(UserText) if e.source is Source.VOICE] == ["wait a moment please"]


def test_our_own_echo_neither_interrupts_nor_becomes_a_turn(tmp_path):
    llm = ScriptedLLM(LONG_REPLY[:2])

    async def scenario():
        async with Harness(tmp_path, llm, {}, echo_gain=0.5) as h:
            h.type("Tell me a story.", live=False)
            await h.until_state(State.SPEAKING)
            while not h.of(ReplyDone):  # the room hears the reply as it plays
                await h.frames(0, 0.1)
            await h.frames(0, 0.6)
            return h

    h = run(scenario())
    assert h.of(SpeechStarted), "the room's echo was not even heard: the test proves nothing"
    assert not h.of(BargeIn)
    assert not h.of(ReplyDone)[0].interrupted
    assert not [e for e in h.of(UserText) if e.source is Source.VOICE]


def test_a_memory_command_changes_memory_and_is_answered(tmp_path, isolated_home):
    async def scenario():
        async with Harness(tmp_path) as h:
            h.type("remember that I take my coffee black", live=False)
            await h.until(ReplyDone)
            return h

    h = run(scenario())
    change = h.of(MemoryChanged)[0]
    assert change.kind == "remember" and "coffee black" in change.reply
    db = sqlite3.connect(isolated_home / "data" / "perslm-voice.db")
    facts = [r[0] for r in db.execute("SELECT text FROM facts")]
    db.close()
    assert any("coffee black" in f for f in facts)
    assert not h.llm.prompts  # answered without the model


def test_a_failing_model_is_said_in_one_line_and_retry_asks_again(tmp_path):
    llm = ScriptedLLM(LLMUnreachable("cannot reach the LLM server at http://127.0.0.1:9"), ["Now."])

    async def scenario():
        async with Harness(tmp_path, llm) as h:
            h.type("hello", live=False)
            await h.until(ReplyDone)
            h.type("/retry", live=False)
            await h.until(ReplyDone, 2)
            return h

    h = run(scenario())
    errors = [n for n in h.of(Notice) if n.level is Level.ERROR]
    assert len(errors) == 1 and errors[0].text.endswith("Type /retry to ask again.")
    assert "\n" not in errors[0].text
    assert [d.text for d in h.of(ReplyDone)] == ["", "Now."]


def test_a_failing_speech_to_text_is_said_and_listening_goes_on(tmp_path):
    from perslm_voice.errors import ModelError

    async def scenario():
        async with Harness(tmp_path, stt_fail=ModelError("the model crashed")) as h:
            await h.say(3)
            return (await h.until(UtteranceRejected))[0]

    rejected = run(scenario())
    assert rejected.message.startswith("Not heard: the model crashed")


def test_quit_typed_live_does_not_wait_for_the_reply(tmp_path):
    llm = ScriptedLLM(LONG_REPLY * 4, piece_delay_s=0.05)

    async def scenario():
        async with Harness(tmp_path, llm) as h:
            h.type("Talk for a long time.", live=False)
            await h.until(ReplyDelta)
            h.type("/quit")
            await asyncio.wait_for(h._task, 3)
            return h

    h = run(scenario())
    assert h.of(ReplyDone)[0].interrupted


def install_plugin(
    tmp_path, monkeypatch, module: str, body: str, group: str = "perslm_voice.observers"
) -> None:
    """A real distribution on sys.path whose entry point in ``group`` names ``module:attach``:
    found by importlib.metadata as an installed plugin would be."""
    plugin = tmp_path / "plugin"
    info = plugin / f"{module}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{module} = {module}:attach\n")
    (plugin / f"{module}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(plugin))
    sys.modules.pop(module, None)


def test_observer_plugins_are_found_by_entry_point(tmp_path, monkeypatch):
    install_plugin(
        tmp_path,
        monkeypatch,
        "count_events",
        """
        from perslm_voice.events import ReplyDone
        SEEN = []
        def attach(session):
            session.subscribe(SEEN.append, ReplyDone)
        """,
    )

    async def scenario():
        async with Harness(tmp_path) as h:
            h.type("hello", live=False)
            await h.until(ReplyDone)

    run(scenario())
    assert [e.text for e in sys.modules["count_events"].SEEN] == ["Yes."]


@pytest.mark.parametrize("broken", ["raise RuntimeError('no')", "import nosuchmodule"])
def test_a_broken_plugin_is_said_and_the_session_goes_on(tmp_path, monkeypatch, broken):
    install_plugin(tmp_path, monkeypatch, "bad_plugin", f"def attach(session):\n    {broken}\n")

    async def scenario():
        async with Harness(tmp_path) as h:
            h.type("hello", live=False)
            await h.until(ReplyDone)
            return h

    h = run(scenario())
    assert any("'bad_plugin'" in n.text and "goes on without it" in n.text for n in h.of(Notice))


def test_a_monologue_cut_at_max_duration_is_one_turn_read_as_one(tmp_path):
    config = harness_config()
    config.speech.audio.max_duration = 1.0

    async def scenario():
        async with Harness(
            tmp_path, words={4: "a long story told in one breath"}, config=config
        ) as h:
            await h.say(4, seconds=2.2)
            await h.until(ReplyDone)
            return h

    h = run(scenario())
    heard = [e.text for e in h.of(UserText) if e.source is Source.VOICE]
    assert heard == ["a long story told in one breath"]
    assert h.stt.heard == ["a long story told in one breath"]  # one reading of all the pieces
    assert len(h.llm.prompts) == 1


def test_the_terminal_shows_control_sequences_from_a_reply_as_text():
    import io

    from rich.console import Console

    from perslm_voice.ui.console import PlainUI
    from perslm_voice.ui.terminal import Renderer

    out = io.StringIO()
    renderer = Renderer(PlainUI(Console(file=out, force_terminal=False)))
    renderer.banner_shown()
    hostile = "\x1b]0;pwned\x07\x1b[2J[bold red]x[/]"
    for event in (
        UserText(hostile, Source.VOICE),
        ReplyStarted(1, "q", Source.VOICE),
        ReplyDelta(1, hostile),
        ReplyTextDone(1),
        Notice(hostile),
    ):
        renderer(event)
    shown = out.getvalue()
    assert "\x1b" not in shown and "\x07" not in shown
    assert shown.count("[bold red]x[/]") == 3  # markup in text is shown as typed


def test_a_server_down_at_the_start_is_asked_again_and_retry_reaches_it(tmp_path):
    down = LLMUnreachable("cannot reach the LLM server at http://127.0.0.1:9/v1")
    llm = ScriptedLLM(["Up now."], load_failures=[down, down])  # down at start, and at turn 1

    async def scenario():
        async with Harness(tmp_path, llm) as h:
            h.type("hello", live=False)
            await h.until(ReplyDone)
            h.type("/retry", live=False)  # the server is up now
            await h.until(ReplyDone, 2)
            return h

    h = run(scenario())
    errors = [n.text for n in h.of(Notice) if n.level is Level.ERROR]
    assert any("cannot reach" in e and e.endswith("Type /retry to ask again.") for e in errors)
    assert [d.text for d in h.of(ReplyDone)] == ["", "Up now."]


def test_a_built_in_tool_answers_through_the_router_and_the_model_words_it(tmp_path):
    llm = ScriptedLLM(["It is ", "391."])
    config = harness_config()
    config.llm.backend = "openai"  # a model on a server words the result; the embedded one not

    async def scenario():
        async with Harness(tmp_path, llm, config=config) as h:
            h.type("What is 17 times 23?", live=False)
            await h.until(TurnTimings)
            return h

    h = run(scenario())
    assert h.of(ReplyDone)[0].text == "It is 391."
    prompt = llm.prompts[0]
    assert "391" in prompt[-1].content  # the tool's result reached the model, as data
    assert "tool_started" in h.of(TurnTimings)[0].marks


class ToolCallingLLM(ScriptedLLM):
    """A model that calls ``unlock_door`` the first time it is asked, then says its reply."""

    supports_tools = True

    def stream_events(self, messages, cancel, tools=None):
        from perslm_voice.llm.base import ToolCall

        if tools and not any(m.role == "tool" for m in messages):
            self.prompts.append(messages)
            yield ToolCall("call-1", "unlock_door", "{}")
            return
        yield from self.stream(messages, cancel)


DOOR = """
from perslm_voice.tools.base import Tool, ToolResult
UNLOCKED = []
class UnlockDoor(Tool):
    name = "unlock_door"
    description = "Unlock the front door."
    side_effects = True
    def confirmation(self, args):
        return "Unlock the front door?"
    async def run(self, args):
        UNLOCKED.append(args)
        return ToolResult("the front door is unlocked")
def attach(context):
    return [UnlockDoor()]
"""


@pytest.mark.parametrize("said, unlocked", [("yes please", True), ("no", False)])
def test_a_tool_that_acts_asks_first_and_acts_only_on_a_yes(tmp_path, monkeypatch, said, unlocked):
    install_plugin(tmp_path, monkeypatch, "door_tool", DOOR, group="perslm_voice.tools")
    llm = ToolCallingLLM(["Done."], ["Okay."])

    async def scenario():
        async with Harness(tmp_path, llm) as h:
            h.type("Let my sister in.", live=False)
            while not any("Unlock the front door?" in d.text for d in h.of(ReplyDelta)):
                await h.until(ReplyDelta, len(h.of(ReplyDelta)) + 1)
            h.type(said)  # typed live: the answer, not an interruption
            await h.until(ReplyDone)
            return h

    h = run(scenario())
    door = sys.modules["door_tool"]
    assert bool(door.UNLOCKED) is unlocked
    done = h.of(ReplyDone)[0]
    assert not done.interrupted and "Unlock the front door?" in done.text
    assert not h.of(BargeIn)
    assert len(h.of(ReplyStarted)) == 1  # the answer was not a turn of its own


def test_with_the_embedded_model_the_tool_says_its_own_sentence(tmp_path):
    async def scenario():
        async with Harness(tmp_path) as h:  # the default backend: the embedded llama.cpp model
            h.type("What is 17 times 23?", live=False)
            await h.until(ReplyDone)
            return h

    h = run(scenario())
    assert h.of(ReplyDone)[0].text == "17 times 23 = 391"
    assert not h.llm.prompts  # the 135M model garbles what it rewords: it is not asked


def test_a_timer_set_in_the_conversation_is_said_when_due(tmp_path, isolated_home):
    async def scenario():
        async with Harness(tmp_path) as h:  # the embedded model's router sets the timer
            h.type("Set a timer for 2 seconds.", live=False)
            await h.until(ReplyDone)
            assert not [s for s in h.of(ReplyStarted) if s.source is Source.REMINDER]
            await h.until(ReplyDone, 2, timeout_s=8)
            await h.until(TurnTimings, 1)
            return h

    h = run(scenario())
    set_it, due = h.of(ReplyDone)
    assert set_it.text == "A 2 seconds timer is set."
    assert due.text == "Your timer is done." and not due.interrupted
    started = h.of(ReplyStarted)[1]
    assert started.source is Source.REMINDER and started.user_text == ""
    assert any(a.turn == started.turn for a in h.of(ReplyAudio))  # it was spoken
    rows = stored(isolated_home)
    assert rows[-1][:5] == ("assistant", "Your timer is done.", "reminder", 0, None)
    # Said once: the store marks it, so the next session does not say it again.
    db = sqlite3.connect(isolated_home / "data" / "perslm-voice.db")
    assert db.execute("SELECT COUNT(*) FROM reminders WHERE fired_at IS NULL").fetchone() == (0,)


def test_a_reminder_due_while_a_reply_is_spoken_is_its_next_sentence(tmp_path, isolated_home):
    from perslm_voice.memory import Store

    store = Store(isolated_home / "data" / "perslm-voice.db")
    store.add_reminder("harness", "reminder", "Reminder: call Ann.", time.time() + 0.4)
    store.close()

    async def scenario():
        async with Harness(tmp_path, ScriptedLLM(LONG_REPLY, piece_delay_s=0.1)) as h:
            h.type("Tell me a story.", live=False)
            await h.until(ReplyDone, 2, timeout_s=10)
            h.type("Thanks.", live=False)
            await h.until(ReplyDone, 3, timeout_s=10)
            return h

    h = run(scenario())
    story = h.of(ReplyDone)[1]
    assert not story.interrupted and story.text == "".join(LONG_REPLY).strip()
    said = [a.chunk.text for a in h.of(ReplyAudio) if a.turn == story.turn]
    at = said.index("Reminder: call Ann.")  # said inside the story's voice, not after it
    assert 0 < at < len(said) - 3 and said[-1] == LONG_REPLY[-1].strip()
    reminder = h.of(ReplyDone)[0]  # shown as a turn of its own once the story's text was out
    assert reminder.text == "Reminder: call Ann." and reminder.turn == story.turn + 1
    text_done = [e.turn for e in h.events if isinstance(e, ReplyTextDone)]
    assert text_done[:2] == [story.turn, reminder.turn]
    assert not h.of(BargeIn)
    # The model sees it after the answer it was said in.
    assert h.llm.prompts[-1][-2].content.endswith("Reminder: call Ann.")
    rows = stored(isolated_home)
    assert [r[:3] for r in rows[1:3]] == [
        ("assistant", "Reminder: call Ann.", "reminder"),
        ("assistant", "".join(LONG_REPLY).strip(), None),
    ]
