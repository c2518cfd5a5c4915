"""`perslm-voice memory ...`: what is remembered per user; inspect, search, forget, export."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from ..errors import UsageError
from ..safetext import as_text, visible
from .common import (
    COUNT,
    ROW_ID,
    config_option,
    console,
    json_option,
    load,
    print_json,
    user_option,
)

if TYPE_CHECKING:
    from ..memory import Store


def open_store(config_file: str | None, *, readonly: bool) -> Store:
    """The configured store; read-only for commands that only look (they never create it)."""
    from ..memory import Store, store_path

    config = load(config_file)
    return Store(store_path(config.memory.path), readonly=readonly)


def when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else "-"


def confirm_or_refuse(yes: bool, question: str) -> None:
    """Ask on a terminal; without one, refuse unless --yes was given (no silent data loss)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{question.rstrip('?')}: add --yes to confirm (stdin is not a terminal)")
    if not click.confirm(question, default=False, err=True):
        raise click.Abort()


@click.group()
def memory() -> None:
    """What is remembered, per user: history, search, recall, forget, export."""


@memory.command()
@user_option
@click.option("--session", "session_id", type=ROW_ID, help="Only this session's turns.")
@click.option("--limit", type=COUNT, default=50, show_default=True,
              help="The newest N turns.")  # fmt: skip
@json_option
@config_option
def history(user: str, session_id: int | None, limit: int, as_json: bool,
            config_file: str | None) -> None:  # fmt: skip
    """The user's past turns, oldest first."""
    with open_store(config_file, readonly=True) as store:
        turns = store.turns(user, session_id=session_id, limit=limit)
    if as_json:
        print_json({"user": user, "session": session_id, "turns": [t.as_dict() for t in turns]})
        return
    if not turns:
        console.print(f"No turns stored for {user}.")
        return
    table = Table(title=f"history of {user}")
    for column in ("session", "time", "who", "text"):
        table.add_column(column, overflow="fold")
    for t in turns:
        text = as_text(t.text)
        if t.interrupted:
            text.append(" [interrupted]", style="dim")
        table.add_row(str(t.session_id), when(t.started_at), user if t.role == "user" else "assistant",
                      text)  # fmt: skip
    console.print(table)


def _print_recalled(title: str, found: list[Any]) -> None:
    table = Table(title=as_text(title, one_line=True))
    for column in ("kind", "id", "session", "who", "text", "score"):
        table.add_column(column, overflow="fold")
    for r in found:
        who = "-" if r.kind == "fact" else (r.role or "-")
        table.add_row(r.kind, str(r.id), str(r.session_id or "-"), who, as_text(r.text),
                      f"{r.score:.2f}")  # fmt: skip
    console.print(table)


@memory.command()
@click.argument("text")
@user_option
@click.option("--limit", type=COUNT, default=20, show_default=True)
@json_option
@config_option
def search(text: str, user: str, limit: int, as_json: bool, config_file: str | None) -> None:
    """Full-text search of the user's turns and facts (every session)."""
    with open_store(config_file, readonly=True) as store:
        found = store.search(user, text, limit)
    if as_json:
        # The query is not echoed: `memory search WORD | grep WORD` must tell whether it remains.
        print_json({"user": user, "results": [r.as_dict() for r in found]})
    elif not found:
        console.print(as_text(f"Nothing in {user}'s memory matches {text!r}.", one_line=True))
    else:
        _print_recalled(f"{user}'s memory matching {text!r}", found)


@memory.command()
@click.argument("text")
@user_option
@json_option
@config_option
def recall(text: str, user: str, as_json: bool, config_file: str | None) -> None:
    """Exactly the memory a reply to TEXT would get in its prompt (facts and past turns).

    Tokens are estimated without loading the model, so a tight budget may keep slightly more
    or less than a live session would.
    """
    from ..persona import estimate_tokens, plan_prompt

    config = load(config_file)
    with open_store(config_file, readonly=True) as store:
        plan = plan_prompt(
            store=store,
            user_id=user,
            session_id=None,
            user_text=text,
            config=config,
            count_tokens=estimate_tokens,
            context_window=config.llm.n_ctx,
        )
    if as_json:
        print_json({
            "user": user,
            "text": text,
            "facts": [f.as_dict() for f in plan.facts],
            "turns": [r.as_dict() for r in plan.recalled],
            "tokens": plan.used_tokens,
            "budget_tokens": plan.budget_tokens,
        })  # fmt: skip
        return
    if not plan.facts and not plan.recalled:
        console.print(
            as_text(f"Nothing from {user}'s memory would be added for {text!r}.", one_line=True)
        )
        return
    if plan.facts:
        table = Table(title=f"facts of {user}")
        table.add_column("id")
        table.add_column("fact", overflow="fold")
        for f in plan.facts:
            table.add_row(str(f.id), as_text(f.text))
        console.print(table)
    if plan.recalled:
        _print_recalled("recalled from past sessions", plan.recalled)


@memory.command()
@user_option
@click.option("--fact", "fact_id", type=ROW_ID, help="Forget one fact (ids: memory export).")
@click.option("--session", "session_id", type=ROW_ID, help="Forget one session's turns and facts.")
@click.option("--all", "everything", is_flag=True, help="Forget all the user's turns and facts.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@config_option
def forget(user: str, fact_id: int | None, session_id: int | None, everything: bool, yes: bool,
           as_json: bool, config_file: str | None) -> None:  # fmt: skip
    """Forget a fact, a session or everything the user said (the profile stays).

    Forgotten text is removed from the search index too and its pages are wiped.
    """
    chosen = [x for x in (fact_id is not None, session_id is not None, everything) if x]
    if len(chosen) != 1:
        raise UsageError("say what to forget: one of --fact ID, --session ID or --all")
    with open_store(config_file, readonly=False) as store:
        if fact_id is not None:
            fact = store.fact(user, fact_id)
            if fact is None:
                raise click.ClickException(f"{user} has no fact {fact_id} (see: memory export)")
            confirm_or_refuse(yes, visible(f"Forget fact {fact_id} of {user} ({fact.text!r})?"))
            store.forget_fact(user, fact_id)
            removed = {"sessions": 0, "turns": 0, "facts": 1}
        elif session_id is not None:
            if not any(s["id"] == session_id for s in store.sessions(user)):
                raise click.ClickException(
                    f"{user} has no session {session_id} (see: memory history)"
                )
            confirm_or_refuse(yes, f"Forget session {session_id} of {user}?")
            removed = store.forget_session(user, session_id)
        else:
            confirm_or_refuse(yes, f"Forget every turn and fact of {user}?")
            removed = store.forget_all(user)
    if as_json:
        print_json({"user": user, "removed": removed})
    else:
        console.print(
            f"Forgot {removed['turns']} turn(s) and {removed['facts']} fact(s) of {user}"
            f" ({removed['sessions']} session(s))."
        )


def export_markdown(data: dict[str, Any]) -> str:
    """The export as a readable Markdown document; stored text is shown, never acted on
    (control characters as visible escapes)."""
    user = data["user"]
    lines = [
        f"# Memory of {user}",
        "",
        f"Exported {when(data['exported_at'])}.",
        "",
        "## Profile",
        "",
    ]
    shown = [(k, v) for k, v in data["profile"].items() if k != "user_id" and v not in (None, {})]
    lines += [f"- **{key.replace('_', ' ')}**: {visible(str(value))}" for key, value in shown]
    if not shown:
        lines.append("(defaults)")
    lines += ["", "## Facts", ""]
    lines += [
        f"- {visible(f['text'])} *(fact {f['id']}, {when(f['created_at'])})*" for f in data["facts"]
    ]
    if not data["facts"]:
        lines.append("(none)")
    lines += ["", "## Sessions"]
    for session in data["sessions"]:
        lines += ["", f"### Session {session['id']}, {when(session['started_at'])}", ""]
        for t in session["turns"]:
            who = user if t["role"] == "user" else "assistant"
            mark = " *(interrupted)*" if t["interrupted"] else ""
            lines.append(f"- **{who}**: {visible(t['text'])}{mark}")
    return "\n".join(lines) + "\n"


@memory.command()
@user_option
@click.option("--format", "fmt", type=click.Choice(["json", "markdown"]), default="json",
              show_default=True)  # fmt: skip
@json_option
@config_option
def export(user: str, fmt: str, as_json: bool, config_file: str | None) -> None:
    """Everything stored about the user: profile, facts, sessions and turns."""
    with open_store(config_file, readonly=True) as store:
        data = store.export(user)
    if as_json or fmt == "json":
        print_json(data)
    else:
        sys.stdout.write(export_markdown(data))
