"""`perslm-voice profile ...`: each user's name, language, voice, persona and preferences."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table
from rich.text import Text

from ..errors import UsageError
from ..profile_values import check_language, check_voice
from ..safetext import as_text
from .common import check_user, config_option, console, json_option, load, print_json, user_option
from .memory import confirm_or_refuse, open_store

LABELS = {
    "display_name": "name",
    "address_as": "address as",
    "language": "language",
    "voice_id": "voice",
    "speaking_rate": "speaking rate",
    "persona": "persona",
    "preferences": "preferences",
}


def _who(user_arg: str | None, user: str) -> str:
    return check_user(user_arg) if user_arg else user


def _value(value: Any) -> Text:
    """A stored value as shown: as typed (never Rich markup), control characters visible."""
    if value in (None, {}, ""):
        return Text("(default)", style="dim")
    if isinstance(value, dict):
        return as_text(", ".join(f"{k}={v}" for k, v in sorted(value.items())))
    return as_text(value)


def _show(profile: Any, stored: bool) -> None:
    table = Table(title=f"profile of {profile.user_id}" + ("" if stored else " (not stored yet)"))
    table.add_column("field")
    table.add_column("value", overflow="fold")
    for field, label in LABELS.items():
        table.add_row(label, _value(getattr(profile, field)))
    console.print(table)


@click.group()
def profile() -> None:
    """Show and change user profiles (name, language, voice, persona, preferences)."""


@profile.command("list")
@json_option
@config_option
def list_(as_json: bool, config_file: str | None) -> None:
    """Every user with a profile or memory."""
    with open_store(config_file, readonly=True) as store:
        profiles = store.list_profiles()
    if as_json:
        print_json([p.as_dict() for p in profiles])
        return
    if not profiles:
        console.print("No profiles yet: a first session with --user NAME creates one.")
        return
    table = Table(title="profiles")
    for column in ("user", *LABELS.values()):
        table.add_column(column, overflow="fold")
    for p in profiles:
        table.add_row(p.user_id, *(_value(getattr(p, f)) for f in LABELS))
    console.print(table)


@profile.command()
@click.argument("user_arg", metavar="[USER]", required=False)
@user_option
@json_option
@config_option
def show(user_arg: str | None, user: str, as_json: bool, config_file: str | None) -> None:
    """One user's profile (USER, else --user)."""
    who = _who(user_arg, user)
    with open_store(config_file, readonly=True) as store:
        stored = store.has_profile(who)
        found = store.get_profile(who)
    if as_json:
        print_json({**found.as_dict(), "stored": stored})
    else:
        _show(found, stored)


def _preferences(pairs: tuple[str, ...]) -> dict[str, str | None]:
    prefs: dict[str, str | None] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--pref {pair!r}: expected KEY=VALUE (KEY= removes the key)")
        prefs[key.strip()] = value.strip() or None
    return prefs


@profile.command("set")
@click.argument("user_arg", metavar="[USER]", required=False)
@user_option
@click.option("--name", "display_name", help="Display name.")
@click.option("--address-as", help="How the assistant addresses the user.")
@click.option("--language", help="Language to reply in (a code: en, fr, de ...).")
@click.option("--voice", "voice_id", help="Preferred voice id for speech.")
@click.option("--rate", "speaking_rate", type=click.FloatRange(0.25, 4.0),
              help="Speaking rate (1.0 normal).")  # fmt: skip
@click.option("--persona", help="Added to the system prompt for this user.")
@click.option("--pref", "prefs", multiple=True, metavar="KEY=VALUE",
              help="A free-form preference (repeatable; KEY= removes it).")  # fmt: skip
@json_option
@config_option
def set_(user_arg: str | None, user: str, prefs: tuple[str, ...], as_json: bool,
         config_file: str | None, **fields: Any) -> None:  # fmt: skip
    """Change a profile (USER, else --user), creating it if new. Empty text resets a field."""
    who = _who(user_arg, user)
    changes: dict[str, Any] = {}
    for key, value in fields.items():
        if value is not None:
            changes[key] = value if value != "" else None
    if changes.get("language"):
        check_language(changes["language"])
    if changes.get("voice_id"):
        check_voice(load(config_file).tts, changes["voice_id"])
    if prefs:
        changes["preferences"] = _preferences(prefs)
    with open_store(config_file, readonly=False) as store:
        updated = store.set_profile(who, **changes)
    if as_json:
        print_json({**updated.as_dict(), "stored": True})
    else:
        _show(updated, True)


@profile.command()
@click.argument("user_arg", metavar="[USER]", required=False)
@user_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@config_option
def delete(user_arg: str | None, user: str, yes: bool, as_json: bool,
           config_file: str | None) -> None:  # fmt: skip
    """Delete a user with their profile and all their memory."""
    who = _who(user_arg, user)
    with open_store(config_file, readonly=False) as store:
        if not store.has_profile(who) and who not in store.users():
            raise click.ClickException(f"no user {who!r} (see: profile list)")
        confirm_or_refuse(yes, f"Delete {who} with their profile and all their memory?")
        store.delete_user(who)
    if as_json:
        print_json({"user": who, "deleted": True})
    else:
        console.print(f"Deleted {who} and all their memory.")
