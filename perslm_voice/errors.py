"""One exception hierarchy; the CLI maps it to exit codes (ConfigError and UsageError: 2, the rest: 1)."""

from __future__ import annotations


class PerslmVoiceError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(PerslmVoiceError):
    """The configuration (a file, an environment variable or a flag) is invalid."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class UsageError(PerslmVoiceError):
    """A command-line argument is invalid."""


class BackendUnavailable(PerslmVoiceError):
    """A configured backend cannot start; the message names the fix."""


class ModelError(PerslmVoiceError):
    """A model failed while loading or running."""


class LLMError(PerslmVoiceError):
    """The language model could not answer."""


class StoreError(PerslmVoiceError):
    """The memory store cannot be opened or written."""


class AudioError(PerslmVoiceError):
    """An audio device or file cannot be used."""


class AudioFileError(AudioError):
    """An audio file (``--audio-input``, ``transcribe FILE``) is missing, not audio, or holds none."""


class LLMUnreachable(LLMError):
    """The LLM server cannot be reached (not running, wrong URL, network down)."""


class LLMAuthError(LLMError):
    """The LLM server refused the API key (401/403)."""


class LLMModelNotFound(LLMError):
    """The LLM server does not serve the configured model; the message lists those it has."""


class LLMTimeout(LLMError):
    """The LLM server sent no token within llm.timeout."""


class LLMStreamBroken(LLMError):
    """The reply stream died mid-answer; ``partial`` holds the text received before it did."""

    def __init__(self, message: str, partial: str = ""):
        super().__init__(message)
        self.partial = partial


class ToolError(PerslmVoiceError):
    """A tool could not run; the message is the one line the user hears."""


class ToolNotFound(ToolError):
    """No tool of that name is registered (or it is switched off); the message lists those there are."""


class ToolArgumentsError(ToolError):
    """The arguments given to a tool do not fit its parameters."""


class ToolTimeout(ToolError):
    """A tool did not answer within its timeout."""


class ToolUnreachable(ToolError):
    """The service behind a tool (a server, a calendar, an MCP server) cannot be reached."""


class ToolForbidden(ToolError):
    """The user's profile or the configuration forbids this tool."""


class LLMBadResponse(LLMError):
    """The LLM server answered, but not in the OpenAI wire format (not JSON, not a stream)."""


class LLMEmptyReply(LLMError):
    """The model ended its reply without a word."""
