"""What the store hands out: immutable records of turns, profiles, facts and recalled memories."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Turn:
    """One stored turn of a conversation."""

    id: int
    session_id: int
    user_id: str
    role: str
    text: str
    source: str | None
    started_at: float
    ended_at: float
    interrupted: bool
    heard: str | None
    backend: str | None
    timings: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


TURN_COLUMNS = (
    "id, session_id, user_id, role, text, source, started_at, ended_at, interrupted, heard,"
    " backend, timings"
)


def turn_from_row(row: tuple[Any, ...]) -> Turn:
    values = list(row)
    values[8] = bool(values[8])
    values[11] = json.loads(values[11]) if values[11] else {}
    return Turn(*values)


@dataclass(frozen=True)
class Profile:
    """Who a user is to the assistant. ``None`` means "use the configuration's value"."""

    user_id: str
    display_name: str | None = None
    address_as: str | None = None
    language: str | None = None
    voice_id: str | None = None
    speaking_rate: float | None = None
    persona: str | None = None
    preferences: dict[str, str] = field(default_factory=dict)

    @property
    def name_to_use(self) -> str:
        """How the assistant addresses the user: address_as, else display_name, else the id."""
        return self.address_as or self.display_name or self.user_id

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# The profile columns `set_profile` may change, in table order.
PROFILE_FIELDS = (
    "display_name",
    "address_as",
    "language",
    "voice_id",
    "speaking_rate",
    "persona",
    "preferences",
)


@dataclass(frozen=True)
class Fact:
    """Something the user asked the assistant to remember."""

    id: int
    user_id: str
    text: str
    source_turn_id: int | None
    created_at: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Recalled:
    """A past turn or a fact that matches a text, with its BM25 score (lower is better)."""

    kind: Literal["turn", "fact"]
    id: int
    text: str
    score: float
    created_at: float
    role: str | None = None
    session_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
