"""Profiles: who each user is to the assistant (name, language, voice, persona, preferences)."""

from __future__ import annotations

import json
import time
from typing import Any

from ..errors import UsageError
from .core import StoreCore
from .records import PROFILE_FIELDS, Profile

_COLUMNS = "user_id, " + ", ".join(PROFILE_FIELDS)


def _profile(row: tuple[Any, ...]) -> Profile:
    values = list(row)
    values[-1] = json.loads(values[-1]) if values[-1] else {}
    return Profile(*values)


class ProfilesMixin(StoreCore):
    """Store methods for profiles."""

    def _read_profile(self, user_id: str) -> Profile | None:
        rows = self.query(f"SELECT {_COLUMNS} FROM profiles WHERE user_id = ?", (user_id,))
        return _profile(rows[0]) if rows else None

    def get_profile(self, user_id: str) -> Profile:
        """The user's profile, created with defaults on first use (not stored when read-only)."""
        profile = self._read_profile(user_id)
        if profile is not None:
            return profile
        if self.readonly:
            return Profile(user_id)
        now = time.time()
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO users (id, created_at) VALUES (?, ?)", (user_id, now))
            db.execute(
                "INSERT OR IGNORE INTO profiles (user_id, created_at, updated_at) VALUES (?, ?, ?)",
                (user_id, now, now),
            )
        return self._read_profile(user_id) or Profile(user_id)

    def has_profile(self, user_id: str) -> bool:
        return bool(self.query("SELECT 1 FROM profiles WHERE user_id = ?", (user_id,)))

    def set_profile(self, user_id: str, **fields: Any) -> Profile:
        """Change some profile fields (creating user and profile if new); return the result.

        ``preferences`` is merged key by key into the stored ones; a value of None removes
        that key. Any other field set to None goes back to the configuration's default.
        """
        unknown = set(fields) - set(PROFILE_FIELDS)
        if unknown:
            raise UsageError(
                f"unknown profile field(s) {', '.join(sorted(unknown))};"
                f" valid: {', '.join(PROFILE_FIELDS)}"
            )
        current = self.get_profile(user_id)
        if "preferences" in fields:
            merged = dict(current.preferences)
            for key, value in (fields["preferences"] or {}).items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[str(key)] = str(value)
            fields["preferences"] = json.dumps(merged, ensure_ascii=False, sort_keys=True)
        if fields:
            assignments = ", ".join(f"{name} = ?" for name in fields)
            with self.transaction() as db:
                db.execute(
                    f"UPDATE profiles SET {assignments}, updated_at = ? WHERE user_id = ?",
                    (*fields.values(), time.time(), user_id),
                )
        return self._read_profile(user_id) or current

    def list_profiles(self) -> list[Profile]:
        """Every user's profile, by user id (users stored before profiles existed included)."""
        rows = self.query(
            f"SELECT u.id, {', '.join('p.' + f for f in PROFILE_FIELDS)}"
            " FROM users u LEFT JOIN profiles p ON p.user_id = u.id ORDER BY u.id"
        )
        return [_profile(row) for row in rows]
