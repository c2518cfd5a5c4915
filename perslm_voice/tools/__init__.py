"""Tools the assistant may call: built-ins, entry-point plugins and MCP servers (DESIGN.md s. 8)."""

from .base import Tool, ToolContext, ToolResult
from .registry import ToolRegistry, load_registry

__all__ = ["Tool", "ToolContext", "ToolRegistry", "ToolResult", "load_registry"]
