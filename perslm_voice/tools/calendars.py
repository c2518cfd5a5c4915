"""The user's events for a day, from local ICS files and a CalDAV calendar (a REPORT
calendar-query with a time range; the password from the variable named by caldav_password_env).

Recurring events (RRULE) are shown on their first date only: expanding them is not done yet."""

from __future__ import annotations

import asyncio
import base64
import os
import xml.etree.ElementTree as ET
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from ..errors import ToolArgumentsError, ToolError
from . import _http
from .base import Tool, ToolContext, ToolResult
from .clock import now, spoken_time

SERVICE = "the CalDAV server"
_CALDAV = "urn:ietf:params:xml:ns:caldav"
_QUERY = """<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/><C:calendar-data/></D:prop>
  <C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">
    <C:time-range start="{start}" end="{end}"/>
  </C:comp-filter></C:comp-filter></C:filter>
</C:calendar-query>"""


def _events(ics: bytes | str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The VEVENTs of one calendar text that overlap [start, end)."""
    import icalendar

    try:
        calendar = icalendar.Calendar.from_ical(ics)
    except ValueError as exc:
        raise ToolError(f"a calendar could not be read: {exc}") from None
    found = []
    for event in calendar.walk("VEVENT"):
        begin = event.decoded("DTSTART", None)
        if begin is None:
            continue
        finish = event.decoded("DTEND", None) or begin
        all_day = not isinstance(begin, datetime)
        if all_day:
            begin = datetime.combine(begin, time(), start.tzinfo)
            finish = datetime.combine(finish, time(), start.tzinfo)
            if finish == begin:
                finish += timedelta(days=1)
        else:
            begin = begin if begin.tzinfo else begin.replace(tzinfo=start.tzinfo)
            finish = finish if finish.tzinfo else finish.replace(tzinfo=start.tzinfo)
        if begin < end and (finish > start or begin >= start):
            found.append(
                {
                    "summary": str(event.get("SUMMARY", "(no title)")),
                    "start": begin.astimezone(start.tzinfo),
                    "all_day": all_day,
                    "location": str(event.get("LOCATION", "")) or None,
                }
            )
    return found


def _day(context: ToolContext, spoken: str | None) -> date:
    today = now(context).date()
    word = (spoken or "today").strip().lower()
    if word == "today":
        return today
    if word == "tomorrow":
        return today + timedelta(days=1)
    if word == "yesterday":
        return today - timedelta(days=1)
    try:
        return date.fromisoformat(word)
    except ValueError:
        raise ToolArgumentsError(
            "get_calendar_events: day is today, tomorrow, yesterday or YYYY-MM-DD"
        ) from None


class CalendarTool(Tool):
    name = "get_calendar_events"
    description = "The user's calendar events for a day (today, tomorrow or a date)."
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "day": {"type": "string", "description": "today, tomorrow, yesterday or YYYY-MM-DD"}
        },
    }

    def __init__(self, context: ToolContext):
        self.context = context
        self.settings = context.config.calendar

    def setup_problem(self) -> str | None:
        if self.settings.ics_files or self.settings.caldav_url:
            return None
        return "not set up: set tools.calendar.ics_files or caldav_url"

    async def _caldav(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        s = self.settings
        headers = {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"}
        if s.caldav_username:
            password = os.environ.get(s.caldav_password_env, "")
            if not password:
                raise ToolError(
                    f"the calendar needs its password: export {s.caldav_password_env}=..."
                )
            pair = f"{s.caldav_username}:{password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        stamp = "%Y%m%dT%H%M%SZ"
        body = _QUERY.format(
            start=start.astimezone(timezone.utc).strftime(stamp),
            end=end.astimezone(timezone.utc).strftime(stamp),
        ).encode()
        resp = await _http.request(
            SERVICE, "REPORT", s.caldav_url or "", headers=headers, data=body
        )
        if resp.status in (401, 403):
            raise ToolError(f"{SERVICE} refused the login of {s.caldav_username}")
        if resp.status != 207:
            raise ToolError(f"{SERVICE} did not answer the calendar query ({resp.status})")
        try:
            root = ET.fromstring(resp.body)
        except ET.ParseError:
            raise ToolError(f"{SERVICE} answered with XML that cannot be read") from None
        found = []
        for data in root.iter(f"{{{_CALDAV}}}calendar-data"):
            if data.text:
                found += _events(data.text, start, end)
        return found

    async def run(self, args: dict[str, Any]) -> ToolResult:
        s = self.settings
        if not s.ics_files and not s.caldav_url:
            raise ToolError("no calendar is set up: set tools.calendar.ics_files or caldav_url")
        day = _day(self.context, args.get("day"))
        zone = now(self.context).tzinfo
        start = datetime.combine(day, time(), zone)
        end = start + timedelta(days=1)
        events: list[dict[str, Any]] = []
        for name in s.ics_files:
            path = Path(name)
            try:
                text = await asyncio.to_thread(lambda p=path: p.expanduser().read_bytes())
            except OSError as exc:
                raise ToolError(f"cannot read the calendar file {path}: {exc.strerror}") from None
            events += _events(text, start, end)
        if s.caldav_url:
            events += await self._caldav(start, end)
        events.sort(key=lambda e: (not e["all_day"], e["start"]))
        label = args.get("day") or "today"
        if not events:
            return ToolResult(f"Nothing on your calendar {label}.", [])
        parts = [
            (
                f"{e['summary']} (all day)"
                if e["all_day"]
                else f"{e['summary']} at {spoken_time(e['start'])}"
            )
            for e in events
        ]
        data = [{**e, "start": e["start"].isoformat()} for e in events]
        return ToolResult(f"{label.capitalize()}: " + "; ".join(parts) + ".", data)


def tools(context: ToolContext) -> list[Tool]:
    return [CalendarTool(context)]
