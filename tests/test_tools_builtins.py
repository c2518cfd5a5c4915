"""The built-in tools on real parts: a real store, loopback servers speaking Open-Meteo's and
Home Assistant's REST APIs, a real aiosmtpd SMTP server, a real Radicale CalDAV server."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from servers import free_port
from tool_servers import HomeAssistant, OpenMeteo

from perslm_voice.config import ToolsConfig
from perslm_voice.errors import (
    ToolArgumentsError,
    ToolError,
    ToolForbidden,
    ToolNotFound,
    ToolTimeout,
    ToolUnreachable,
)
from perslm_voice.memory import Store
from perslm_voice.tools import ToolContext, ToolResult, load_registry
from perslm_voice.tools.base import Tool
from perslm_voice.tools.calculator import evaluate
from perslm_voice.tools.registry import ToolRegistry
from perslm_voice.tools.timers import Reminders


def registry(config: ToolsConfig | None = None, **context) -> ToolRegistry:
    ctx = ToolContext(config or ToolsConfig(), **context)
    return asyncio.run(load_registry(ctx, with_mcp=False))


def call(reg: ToolRegistry, name: str, args: dict | str | None = None) -> ToolResult:
    return asyncio.run(reg.get(name).call(args or {}, 5.0))


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "store.db")
    yield s
    s.close()


# -- time and arithmetic ----------------------------------------------------------------------


def test_time_is_in_the_users_time_zone():
    moment = datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    reg = registry(ToolsConfig(timezone="Asia/Tokyo"), clock=lambda: moment)
    result = call(reg, "get_time")
    assert result.text == "It is 9:00 PM on Wednesday, July 1, 2026 (JST)."
    assert result.data["iso"] == "2026-07-01T21:00:00+09:00"


def test_an_unknown_time_zone_names_the_fix():
    with pytest.raises(Exception, match="tools.timezone: unknown time zone 'Mars/Base'"):
        call(registry(ToolsConfig(timezone="Mars/Base")), "get_time")


@pytest.mark.parametrize(
    "expression, value",
    [("12 times 7", 84), ("2^10", 1024), ("(1 + 2) * 3", 9), ("10 divided by 4", 2.5),
     ("5 squared", 25), ("sqrt(16) + 1", 5.0), ("1,000 / 8", 125), ("round(2.567, 1)", 2.6)],
)  # fmt: skip
def test_calculator(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize(
    "expression",
    ['__import__("os").system("true")', "().__class__", "open('x')", "9**9**9", "1/0", "a+1"],
)
def test_calculator_refuses_anything_but_arithmetic(expression):
    with pytest.raises(ToolArgumentsError):
        evaluate(expression)


def test_arguments_are_checked_against_the_schema():
    reg = registry()
    with pytest.raises(ToolArgumentsError, match="missing argument expression"):
        call(reg, "calculate", {})
    with pytest.raises(ToolArgumentsError, match="expression must be a string"):
        call(reg, "calculate", {"expression": 3})
    with pytest.raises(ToolArgumentsError, match="unknown argument code"):
        call(reg, "calculate", {"expression": "1", "code": "x"})
    with pytest.raises(ToolArgumentsError, match="not valid JSON"):
        call(reg, "calculate", "{nope")
    assert call(reg, "calculate", '{"expression": "6*7"}').data == {"value": 42}


def test_unknown_and_forbidden_tools(store):
    reg = registry(ToolsConfig(disabled=["calculate"]), store=store, user_id="ann")
    with pytest.raises(ToolNotFound, match="no tool called 'fly'; there are: calculate"):
        reg.get("fly")
    with pytest.raises(ToolForbidden, match="listed in tools.disabled"):
        reg.get("calculate")
    store.set_tool_permission("ann", "calculate", True)  # the profile overrides the config
    store.set_tool_permission("ann", "get_time", False)
    assert reg.get("calculate")
    with pytest.raises(ToolForbidden, match="forbidden in ann's profile"):
        reg.get("get_time")
    other = registry(ToolsConfig(), store=store, user_id="bob")
    assert other.get("get_time")  # one user's choice is not another's


def test_a_slow_tool_times_out_and_a_broken_one_fails_in_one_line():
    class Slow(Tool):
        name = "slow"

        async def run(self, args):
            await asyncio.sleep(30)

    class Broken(Tool):
        name = "broken"

        async def run(self, args):
            return {}["missing"]

    with pytest.raises(ToolTimeout, match="slow gave no answer within 0.2 s"):
        asyncio.run(Slow().call({}, 0.2))
    with pytest.raises(ToolError, match="broken failed: KeyError"):
        asyncio.run(Broken().call({}, 1))


# -- timers and reminders -----------------------------------------------------------------------


def test_timers_are_kept_in_the_store_and_survive_a_restart(tmp_path):
    path = tmp_path / "s.db"
    first = Store(path)
    reg = registry(store=first, user_id="ann")
    assert call(reg, "set_timer", {"seconds": 300, "label": "pasta"}).text == (
        "A 5 minutes pasta timer is set."
    )
    call(reg, "set_reminder", {"text": "call Bob", "in_minutes": 90})
    first.close()
    again = Store(path)  # a new process
    listed = call(registry(store=again, user_id="ann"), "list_timers")
    assert [d["text"] for d in listed.data] == ["Your pasta timer is done.", "Reminder: call Bob."]
    assert "pasta timer in 4 minutes" in listed.text or "pasta timer in 5 minutes" in listed.text
    assert call(registry(store=again, user_id="bob"), "list_timers").data == []
    assert call(registry(store=again, user_id="ann"), "cancel_timer").data["cancelled"]
    assert len(again.pending_reminders("ann")) == 1
    again.close()


def test_a_reminder_at_a_time_of_day_is_today_or_tomorrow(store):
    zone = ZoneInfo("Europe/Paris")
    moment = datetime(2026, 3, 10, 18, 30, tzinfo=zone).timestamp()
    reg = registry(ToolsConfig(timezone="Europe/Paris"), store=store, clock=lambda: moment)
    later = call(reg, "set_reminder", {"text": "take the pills", "at": "21:15"})
    assert later.text == "I'll remind you to take the pills at 9:15 PM."
    assert later.data["due_at"] == datetime(2026, 3, 10, 21, 15, tzinfo=zone).timestamp()
    past = call(reg, "set_reminder", {"text": "run", "at": "07:00"})
    assert past.data["due_at"] == datetime(2026, 3, 11, 7, 0, tzinfo=zone).timestamp()
    with pytest.raises(ToolArgumentsError, match="say when"):
        call(reg, "set_reminder", {"text": "x"})


def test_due_reminders_come_in_order_and_an_overdue_one_at_once(store):
    # One set "before a restart" and already due, one set through the tool while waiting.
    store.add_reminder("ann", "reminder", "Reminder: stretch.", time.time() - 60)

    async def scenario():
        reminders = Reminders(store, "ann")
        reg = ToolRegistry(
            ToolContext(ToolsConfig(), "ann", store, on_reminders_changed=reminders.wake),
            __import__("perslm_voice.tools.registry", fromlist=["x"]).builtin_tools(
                ToolContext(ToolsConfig(), "ann", store, on_reminders_changed=reminders.wake)
            ),
        )
        said = []
        due = reminders.due()
        said.append((await anext(due)).text)
        started = time.monotonic()
        # a 60-second timer before a 0.4 s one: the wait for the first is cut short by wake()
        await reg.get("set_timer").call({"seconds": 60, "label": "tea"}, 5)
        await reg.get("set_timer").call({"seconds": 0.4, "label": "egg"}, 5)
        said.append((await asyncio.wait_for(anext(due), 10)).text)
        return said, time.monotonic() - started

    said, waited = asyncio.run(scenario())
    assert said == ["Reminder: stretch.", "Your egg timer is done."]
    assert waited >= 0.35  # not before it was due
    assert [r.text for r in store.pending_reminders("ann")] == ["Your tea timer is done."]


# -- weather (Open-Meteo on loopback) -----------------------------------------------------------


def weather_config(server: OpenMeteo, **weather) -> ToolsConfig:
    return ToolsConfig(
        weather={"base_url": server.url + "/v1", "geocoding_url": server.url + "/v1", **weather}
    )


def test_weather_for_the_configured_place():
    with OpenMeteo(rain_percent=80) as server:
        reg = registry(weather_config(server, latitude=52.52, longitude=13.41, location="Berlin"))
        result = call(reg, "get_weather")
    assert result.text == (
        "In Berlin it is 12°C with light rain; today 7 to 13°C, 80% chance of rain"
        " (take an umbrella)."
    )
    asked = server.requests[-1]
    assert asked["path"] == "/v1/forecast"
    assert asked["query"]["latitude"] == "52.52" and asked["query"]["longitude"] == "13.41"
    assert "precipitation_probability_max" in asked["query"]["daily"]


def test_weather_for_a_named_place_and_in_imperial_units():
    with OpenMeteo(rain_percent=10) as server:
        reg = registry(weather_config(server, location="Oslo", units="imperial"))
        result = call(reg, "get_weather", {"location": "paris"})
        assert server.requests[0]["path"] == "/v1/search"
        assert server.requests[1]["query"]["temperature_unit"] == "fahrenheit"
        assert result.data["place"] == "Paris" and "(no umbrella needed)" in result.text
        with pytest.raises(ToolError, match="does not know a place called 'nowhereville'"):
            call(reg, "get_weather", {"location": "nowhereville"})


def test_weather_not_set_up_or_unreachable():
    reg = registry()
    with pytest.raises(ToolForbidden, match="not set up: set tools.weather.location"):
        reg.get("get_weather")
    from fault_server import closed_port_url

    dead = closed_port_url().rsplit("/v1", 1)[0]
    reg = registry(ToolsConfig(weather={"base_url": dead, "latitude": 1, "longitude": 2}))
    with pytest.raises(ToolUnreachable, match="cannot reach Open-Meteo at http://127.0.0.1"):
        call(reg, "get_weather")


# -- Home Assistant (REST API on loopback) ------------------------------------------------------

TOKEN = "ha-secret-token-123"


def test_lights_through_home_assistant(monkeypatch):
    monkeypatch.setenv("HOME_ASSISTANT_TOKEN", TOKEN)
    with HomeAssistant(TOKEN) as ha:
        reg = registry(ToolsConfig(home_assistant={"url": ha.url}))
        tool = reg.get("control_device")
        assert tool.side_effects
        assert tool.confirmation({"target": "living room lights", "action": "off"}) == (
            "Turn off the living room lights?"
        )
        result = call(reg, "control_device", {"target": "the living room lights", "action": "off"})
        assert result.text == "Turned off Living Room Light."
        assert ha.states["light.living_room"]["state"] == "off"
        posted = ha.requests[-1]
        assert posted["path"] == "/api/services/light/turn_off"
        assert posted["body"] == {"entity_id": "light.living_room"}
        call(reg, "control_device", {"target": "kitchen", "action": "on", "brightness_percent": 40})
        assert ha.requests[-1]["body"] == {"entity_id": "light.kitchen", "brightness_pct": 40}
        assert call(reg, "get_device_state", {"target": "outdoor temperature"}).text == (
            "Outdoor Temperature is 7.5 °C."
        )
        with pytest.raises(ToolError, match="has no device called 'garage door'"):
            call(reg, "control_device", {"target": "garage door", "action": "on"})


def test_home_assistant_token_problems_name_the_variable_never_the_token(monkeypatch):
    with HomeAssistant(TOKEN) as ha:
        reg = registry(ToolsConfig(home_assistant={"url": ha.url}))
        monkeypatch.delenv("HOME_ASSISTANT_TOKEN", raising=False)
        with pytest.raises(ToolError, match="export HOME_ASSISTANT_TOKEN="):
            call(reg, "get_device_state", {"target": "kitchen"})
        monkeypatch.setenv("HOME_ASSISTANT_TOKEN", "wrong-token-456")
        with pytest.raises(ToolError) as refused:
            call(reg, "get_device_state", {"target": "kitchen"})
        assert "refused the token in $HOME_ASSISTANT_TOKEN" in str(refused.value)
        assert "wrong-token-456" not in str(refused.value)


# -- email (a real aiosmtpd server on loopback) -------------------------------------------------


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Keep(Message):
        def handle_message(self, message):
            received.append(message)

    controller = Controller(Keep(), hostname="127.0.0.1", port=free_port())
    controller.start()
    controller.received = received
    yield controller
    controller.stop()


def test_email_is_sent_over_smtp(smtp_server):
    config = ToolsConfig(
        email={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_server.port,
            "security": "none",
            "from_address": "me@example.org",
            "contacts": {"Ann": "ann@example.org"},
        }
    )
    reg = registry(config)
    tool = reg.get("send_email")
    assert tool.side_effects
    assert tool.confirmation({"to": "ann", "body": "x"}) == "Send it to Ann (ann@example.org)?"
    result = call(reg, "send_email", {"to": "ann", "subject": "Late", "body": "I'll be late."})
    assert result.text == "Sent to Ann."
    (message,) = smtp_server.received
    assert message["To"] == "ann@example.org" and message["From"] == "me@example.org"
    assert message["Subject"] == "Late"
    assert message.get_payload().strip() == "I'll be late."
    with pytest.raises(ToolArgumentsError, match="no contact called 'zed' \\(known: Ann"):
        call(reg, "send_email", {"to": "zed", "body": "x"})


def test_email_to_an_unreachable_server_is_one_line():
    port = free_port()
    config = ToolsConfig(
        email={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "security": "none",
            "from_address": "a@b.c",
        }
    )
    with pytest.raises(ToolUnreachable, match=f"cannot reach the SMTP server 127.0.0.1:{port}"):
        call(registry(config), "send_email", {"to": "x@y.org", "body": "hi"})


# -- calendar (ICS files and a real Radicale CalDAV server) -------------------------------------

EVENTS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//perslm-voice tests//EN
BEGIN:VEVENT
UID:standup-1
DTSTAMP:20260101T000000Z
DTSTART:{day}T073000Z
DTEND:{day}T074500Z
SUMMARY:Stand-up
END:VEVENT
BEGIN:VEVENT
UID:dentist-1
DTSTAMP:20260101T000000Z
DTSTART:{day}T130000Z
DTEND:{day}T140000Z
SUMMARY:Dentist
LOCATION:Rue X
END:VEVENT
BEGIN:VEVENT
UID:trip-1
DTSTAMP:20260101T000000Z
DTSTART;VALUE=DATE:{next_day}
DTEND;VALUE=DATE:{after}
SUMMARY:Trip to Lyon
END:VEVENT
END:VCALENDAR
"""
PARIS_NOON = datetime(2026, 5, 4, 12, 0, tzinfo=ZoneInfo("Europe/Paris")).timestamp()


def ics_text() -> str:
    return EVENTS.format(day="20260504", next_day="20260505", after="20260506").replace(
        "\n", "\r\n"
    )


def test_calendar_from_an_ics_file(tmp_path):
    path = tmp_path / "me.ics"
    path.write_text(ics_text())
    config = ToolsConfig(timezone="Europe/Paris", calendar={"ics_files": [str(path)]})
    reg = registry(config, clock=lambda: PARIS_NOON)
    today = call(reg, "get_calendar_events")
    assert today.text == "Today: Stand-up at 9:30 AM; Dentist at 3:00 PM."
    assert call(reg, "get_calendar_events", {"day": "tomorrow"}).text == (
        "Tomorrow: Trip to Lyon (all day)."
    )
    assert call(reg, "get_calendar_events", {"day": "2026-05-07"}).text == (
        "Nothing on your calendar 2026-05-07."
    )


@pytest.fixture
def radicale(tmp_path):
    """A real Radicale CalDAV server on loopback, with one user's calendar holding EVENTS."""
    import subprocess
    import sys

    import httpx2 as httpx

    port = free_port()
    users = tmp_path / "users"
    users.write_text("ann:pw-ann-789\n")
    config = tmp_path / "radicale.conf"
    config.write_text(
        f"[server]\nhosts = 127.0.0.1:{port}\n[auth]\ntype = htpasswd\n"
        f"htpasswd_filename = {users}\nhtpasswd_encryption = plain\n"
        f"[storage]\nfilesystem_folder = {tmp_path / 'collections'}\n"
        "[rights]\ntype = owner_only\n[logging]\nlevel = warning\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "radicale", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    auth = ("ann", "pw-ann-789")
    try:
        for _ in range(100):
            try:
                httpx.get(base + "/.web/", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    pytest.fail(f"radicale did not start: {proc.stderr.read().decode()}")
                time.sleep(0.1)
        calendar = f"{base}/ann/work/"
        made = httpx.request("MKCALENDAR", calendar, auth=auth)
        assert made.status_code == 201, made.text
        # CalDAV holds one event per resource
        head, _, rest = ics_text().partition("BEGIN:VEVENT")
        for n, event in enumerate(("BEGIN:VEVENT" + rest).split("BEGIN:VEVENT")[1:]):
            body = head + "BEGIN:VEVENT" + event.replace("END:VCALENDAR\r\n", "")
            put = httpx.put(
                f"{calendar}{n}.ics",
                content=body + "END:VCALENDAR\r\n",
                auth=auth,
                headers={"Content-Type": "text/calendar"},
            )
            assert put.status_code == 201, put.text
        yield calendar
    finally:
        proc.terminate()
        proc.wait(10)


def test_calendar_from_caldav(radicale, monkeypatch):
    monkeypatch.setenv("PERSLM_VOICE_CALDAV_PASSWORD", "pw-ann-789")
    config = ToolsConfig(
        timezone="Europe/Paris", calendar={"caldav_url": radicale, "caldav_username": "ann"}
    )
    reg = registry(config, clock=lambda: PARIS_NOON)
    assert (
        call(reg, "get_calendar_events").text == "Today: Stand-up at 9:30 AM; Dentist at 3:00 PM."
    )
    assert call(reg, "get_calendar_events", {"day": "tomorrow"}).text == (
        "Tomorrow: Trip to Lyon (all day)."
    )
    monkeypatch.setenv("PERSLM_VOICE_CALDAV_PASSWORD", "wrong")
    with pytest.raises(ToolError, match="refused the login of ann"):
        call(reg, "get_calendar_events")


def test_a_day_after_the_clock_moves(store):
    # guards the day arithmetic around midnight in the user's zone
    zone = ZoneInfo("America/New_York")
    late = (datetime(2026, 5, 4, 23, 59, tzinfo=zone) + timedelta(minutes=2)).timestamp()
    reg = registry(ToolsConfig(timezone="America/New_York"), clock=lambda: late)
    assert "Tuesday, May 5, 2026" in call(reg, "get_time").text


def test_timers_and_permissions_are_exported_and_deleted_with_the_user(store):
    store.add_reminder("ann", "timer", "Your timer is done.", time.time() + 60)
    store.set_tool_permission("ann", "send_email", False)
    exported = store.export("ann")
    assert [r["text"] for r in exported["reminders"]] == ["Your timer is done."]
    assert exported["tool_permissions"] == {"send_email": False}
    assert store.delete_user("ann")
    assert store.pending_reminders("ann") == [] and store.tool_permissions("ann") == {}
