"""Email through SMTP (tools.email; the password from the variable named by password_env).

Recipients are a name from tools.email.contacts or an address the user spelled out; the
confirmation names both, so a misheard name is caught before anything is sent."""

from __future__ import annotations

import asyncio
import os
import re
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

from ..errors import ToolArgumentsError, ToolError, ToolUnreachable
from .base import Tool, ToolContext, ToolResult

_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class SendEmailTool(Tool):
    name = "send_email"
    description = "Send a short email to one of the user's contacts (by name) or to an address."
    side_effects = True
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "to": {"type": "string", "description": "a contact's name or an email address"},
            "subject": {"type": "string"},
            "body": {"type": "string"},
        },
        "required": ["to", "body"],
    }

    def __init__(self, context: ToolContext):
        self.settings = context.config.email

    def setup_problem(self) -> str | None:
        if self.settings.smtp_host and self.settings.from_address:
            return None
        return "not set up: set tools.email.smtp_host and from_address"

    def recipient(self, to: str) -> tuple[str, str]:
        """(name, address) for what the user said."""
        to = to.strip()
        for name, address in self.settings.contacts.items():
            if name.lower() == to.lower():
                return name, address
        if _ADDRESS.match(to):
            return to, to
        known = ", ".join(self.settings.contacts) or "none"
        raise ToolArgumentsError(
            f"send_email: no contact called {to!r} (known: {known}; add it to tools.email.contacts)"
        )

    def confirmation(self, args: dict[str, Any]) -> str:
        try:
            name, address = self.recipient(str(args.get("to", "")))
        except ToolArgumentsError:
            return f"Send it to {args.get('to')}?"
        return f"Send it to {name}?" if name == address else f"Send it to {name} ({address})?"

    def _send(self, message: EmailMessage) -> None:
        s = self.settings
        password = os.environ.get(s.password_env, "") if s.username else ""
        if s.username and not password:
            raise ToolError(f"email needs the SMTP password: export {s.password_env}=...")
        try:
            if s.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.smtp_host or "", s.smtp_port, timeout=10, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(s.smtp_host or "", s.smtp_port, timeout=10)
            with smtp:
                if s.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if s.username:
                    smtp.login(s.username, password)
                smtp.send_message(message)
        except smtplib.SMTPAuthenticationError:
            raise ToolError(f"the SMTP server refused the login of {s.username}") from None
        except smtplib.SMTPException as exc:
            raise ToolError(f"the SMTP server did not take the email: {exc}") from None
        except OSError as exc:
            raise ToolUnreachable(
                f"cannot reach the SMTP server {s.smtp_host}:{s.smtp_port}: {exc}"
            ) from None

    async def run(self, args: dict[str, Any]) -> ToolResult:
        s = self.settings
        if not s.smtp_host or not s.from_address:
            raise ToolError("email is not set up: set tools.email.smtp_host and from_address")
        name, address = self.recipient(args["to"])
        message = EmailMessage()
        message["From"] = s.from_address
        message["To"] = address
        message["Subject"] = (args.get("subject") or "A message").strip()
        message.set_content(args["body"])
        await asyncio.to_thread(self._send, message)
        return ToolResult(f"Sent to {name}.", {"to": address, "subject": message["Subject"]})


def tools(context: ToolContext) -> list[Tool]:
    return [SendEmailTool(context)]
