"""The memory commands a network client may run (history, export, forget), for its own user only:
the user is the connection's (or the token's), never a parameter the client chooses freely."""

from __future__ import annotations

from typing import Any

from ..errors import StoreError
from ..memory import Store
from .protocol import Memory


def memory_command(store: Store | None, user: str, command: Memory) -> dict[str, Any]:
    """Run ``command`` on ``user``'s memory; the answer as a ``memory`` message."""
    answer: dict[str, Any] = {"type": "memory", "command": command.command, "user": user}
    if store is None:
        return answer | {"error": "no memory: it is off or could not be opened"}
    if command.command == "history":
        turns = store.turns(user, limit=command.limit)
        return answer | {"turns": [t.as_dict() for t in turns]}
    if command.command == "export":
        return answer | {"export": store.export(user)}
    # forget: one fact, or everything (the profile stays)
    if command.everything:
        return answer | {"removed": store.forget_all(user)}
    if command.fact_id is None:
        return answer | {"error": "forget: give 'fact_id', or 'everything': true"}
    return answer | {"removed": {"facts": int(store.forget_fact(user, command.fact_id))}}


async def run_memory_command(session: Any, command: Memory) -> dict[str, Any]:
    """``command`` on the session's store thread, for the session's user."""
    try:
        return await session.store.run(
            lambda store: memory_command(store, session.user_id, command)
        )
    except StoreError as exc:
        return {"type": "memory", "command": command.command, "error": str(exc)}
