"""The session's tools (tools/): set up for the user, and asked for a yes before acting."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger(__name__)


async def open_tools(session: Session) -> Any:
    """A ``tools.reply.ToolUse`` over the tools this user may use (built-ins, plugins, MCP), or
    None when tools are off; a source that failed is said in one line."""
    llm = session.models.llm
    if not session.config.tools.enabled or llm is None:
        return None
    from ..tools.session import session_tools, tool_use

    reminders = session.reminders
    registry = await session_tools(
        session.config,
        session.user_id,
        session.store.store,
        on_reminders_changed=reminders.wake if reminders is not None else None,
    )
    for problem in registry.problems:
        session.notify(problem)
    return tool_use(session.config, llm, registry, functools.partial(confirm, session))


async def confirm(session: Session, question: str) -> bool:
    """A tool that acts on the world asks first: the question is said as part of the reply, and
    the user's next line or utterance is the answer (only a clear yes is a yes). It does not
    interrupt the reply that asked (``session.awaiting_answer``)."""
    from ..tools.confirm import answer

    session.turns.say(question)
    session.awaiting_answer = True
    try:
        item = await session.next_input()
    finally:
        session.awaiting_answer = False
    if item is None:  # the end of input: no answer, and the session ends after this turn
        session.end_input()
        return False
    said = item if isinstance(item, str) else item.text
    log.info("tools: %r answered %r", question, said)
    return answer(said) is True
