"""`perslm-voice serve`: the assistant over WebSocket, for a browser tab or another program."""

from __future__ import annotations

import ipaddress
import secrets
import socket
import sys
from importlib.util import find_spec

import click

from .. import logs
from ..errors import BackendUnavailable, UsageError
from ..llm.presets import apply_llm_flag
from .common import config_option, console, load


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@config_option
@click.option("--host", default=None, help="Address to listen on.  [default: 127.0.0.1]")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="0: any free port.  [default: 8765]"
)
@click.option(
    "--token", default=None, help="The token clients must give.  [default: a random one, printed]"
)
@click.option("--no-auth", is_flag=True, help="No token (only on a loopback address).")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    help="Show what happens inside.  [default: warning]",
)
@click.option(
    "--log-file", type=click.Path(dir_okay=False), default=None, help="Log here, not stderr."
)
@click.option(
    "--llm",
    "llm_choice",
    default=None,
    metavar="SERVER",
    help="Where answers come from: embedded (replies queued one at a time), or a server that "
    "answers sessions at once: ollama, llamacpp, vllm, openai, groq, cerebras.",
)
@click.option("--model", default=None, help="The model name on that server.")
def serve(
    config_file: str | None,
    host: str | None,
    port: int | None,
    token: str | None,
    no_auth: bool,
    log_level: str | None,
    log_file: str | None,
    llm_choice: str | None,
    model: str | None,
) -> None:
    """Serve the assistant: the browser client at /, the WebSocket at /ws, /healthz.

    Open the printed URL, allow the microphone, and talk. The README's "Server" section has the
    protocol for other programs.
    """
    logs.setup(log_level or "warning", log_file)
    missing = [m for m in ("starlette", "uvicorn", "websockets") if not find_spec(m)]
    if missing:
        raise BackendUnavailable(
            f"serving needs {', '.join(missing)}: pip install 'perslm-voice[server]'"
        )
    if token is not None and no_auth:
        raise click.UsageError("--token and --no-auth contradict each other: give one")
    config = load(
        config_file,
        {
            "logging.level": log_level,
            "logging.file": log_file,
            "serve.host": host,
            "serve.port": port,
            "serve.token": token,
            "llm.model": model,
            **(apply_llm_flag(llm_choice) if llm_choice else {}),
        },
    )
    settings = config.serve
    if no_auth:
        if not is_loopback(settings.host):
            raise UsageError(
                f"--no-auth on {settings.host} would let anyone on the network use the assistant"
                " and its memory: give a token (--token, serve.token) or serve on 127.0.0.1"
            )
        secret = None
    else:
        secret = settings.token or secrets.token_urlsafe(24)
    logs.add_secrets(secret, *settings.tokens)
    sock = _bind(settings.host, settings.port)
    bound_port = sock.getsockname()[1]
    shown_host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    url = f"http://{shown_host}:{bound_port}/"
    console.print(f"perslm-voice serving on {url}", markup=False)
    if secret is not None:
        console.print(f"Open {url}?token={secret}", markup=False)
    else:
        console.print(f"Open {url} (no token: loopback only)", markup=False)
    sys.stdout.flush()

    import uvicorn

    from ..server.app import create_app

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, secret),
            log_level="warning",
            access_log=False,  # request lines carry ?token=: never logged
            ws_max_size=max(4 * settings.max_message_bytes, 1 << 20),
            lifespan="on",
        )
    )
    server.run(sockets=[sock])


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port} ({exc.strerror}): choose another --port, or 0 for any"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
