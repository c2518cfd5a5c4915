"""What the conversation engine calls to set tools up for one user's session."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .base import ToolContext
from .registry import ToolRegistry, load_registry
from .reply import Confirm, ToolUse
from .router import Router

if TYPE_CHECKING:
    from ..config import Config
    from ..llm.base import LLM
    from ..memory import Store


async def session_tools(
    config: Config,
    user_id: str,
    store: Store | None,
    *,
    on_reminders_changed: Callable[[], None] | None = None,
    with_mcp: bool = True,
) -> ToolRegistry:
    """The registry of this user's session (built-ins, plugins, MCP servers); sources that
    failed are one line each in ``registry.problems``, to be said once at the start."""
    context = ToolContext(
        config.tools, user_id=user_id, store=store, on_reminders_changed=on_reminders_changed
    )
    return await load_registry(context, with_mcp=with_mcp)


def wants_router(config: Config, llm: LLM) -> bool:
    """tools.router: auto means on exactly when the model cannot call tools itself."""
    if config.tools.router == "auto":
        return not llm.supports_tools
    return config.tools.router == "on"


def tool_use(config: Config, llm: LLM, registry: ToolRegistry, confirm: Confirm) -> ToolUse:
    """A ToolUse over the tools this user may use, set up as the configuration says."""
    tools = registry.enabled()
    return ToolUse(
        llm,
        tools,
        confirm,
        timeout_s=config.tools.timeout_s,
        acknowledgement=config.tools.acknowledgement,
        max_rounds=config.tools.max_rounds,
        # The embedded 135M model garbles what it is asked to reword ("What time is it?" came
        # back as "The tool gets the result in one short sentence."): it says the tool's own
        # sentence instead; a larger model on a server words the result.
        router=Router(word_results=config.llm.backend != "llama_cpp")
        if wants_router(config, llm)
        else None,
    )
