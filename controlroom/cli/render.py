"""Human-readable output for the CLI (tables and timelines via Rich).

Text that comes from users, workflows, models or tools (ids, names, paths, arguments,
messages, errors) is escaped: Rich would read ``[draft]`` as markup and drop it, and fail on
``[/x]``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from rich.console import Console
from rich.markup import escape as escape_markup
from rich.table import Table

from controlroom.graphs.control.run_result import RunResult
from controlroom.graphs.storage.records import Approval, Refusal, RunRecord, RunStatus

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape(text: str) -> str:
    """Untrusted text (a model's output, a user's input, a tool's result) made safe for the
    terminal: Rich markup escaped, and control characters (ANSI escape sequences, carriage
    returns, bells) shown as ``\\xNN`` instead of acting on the terminal."""
    return escape_markup(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text))


STATUS_STYLE = {
    RunStatus.COMPLETED: "green",
    RunStatus.WAITING: "yellow",
    RunStatus.PAUSED: "cyan",
    RunStatus.RUNNING: "blue",
    RunStatus.INTERRUPTED: "magenta",
    RunStatus.QUEUED: "dim",
    RunStatus.FAILED: "red",
}


def _args(data: dict[str, Any] | None) -> str:
    return json.dumps(data or {}, sort_keys=True)


def runs_table(
    records: list[RunRecord],
    *,
    total: int | None = None,
    offset: int = 0,
    status: RunStatus | None = None,
) -> Table:
    """A page of runs; the caption says how many there are and how to see the rest."""
    shown = len(records)
    what = f"{status.value} run(s)" if status else "run(s)"
    title = f"{shown} {what}"
    if total is not None and (offset or shown < total):
        title = f"{what.capitalize()} {offset + 1}-{offset + shown} of {total}, newest first"
        if not shown:
            title = f"No {what} from --offset {offset}: there are {total}"
    table = Table(title=title, title_justify="left")
    if total is not None and offset + shown < total:
        more = total - offset - shown
        table.caption = (
            f"{more} more: --offset {offset + shown} for the next page, --limit 0 for all"
        )
        table.caption_justify = "left"
    cols = ("run", "status", "workflow", "user", "started", "pending", "refused", "output / error")
    for col in cols:
        table.add_column(col, overflow="fold")
    for r in records:
        style = STATUS_STYLE.get(r.status, "")
        summary = (r.error or r.output or "").replace("\n", " ")
        refused = ", ".join(
            part
            for part in (
                f"{r.denied_calls} denied" if r.denied_calls else "",
                f"{r.rejected_calls} rejected" if r.rejected_calls else "",
                f"{r.invalid_calls} invalid" if r.invalid_calls else "",
            )
            if part
        )
        table.add_row(
            escape(r.run_id),
            f"[{style}]{r.status.value}[/]",
            escape(r.workflow),
            escape(r.user_id),
            r.created_at[:19].replace("T", " "),
            str(r.pending_approvals or ""),
            f"[red]{refused}[/]" if refused else "",
            escape(summary[:80]),
        )
    return table


def print_refusals(console: Console, refused: list[Refusal]) -> None:
    """The calls of a run that were not executed, with who or what refused them and why."""
    if not refused:
        return
    table = Table(title=f"{len(refused)} refused call(s)", title_justify="left")
    for col in ("step", "call", "tool", "refused", "by", "why"):
        table.add_column(col, overflow="fold")
    for f in refused:
        by = f.decided_by or (", ".join(f.policies) if f.policies else "the gate")
        cells = (str(f.step), f.call_id, f.tool, f.status.value, by, f.reason)
        table.add_row(*(escape(c) for c in cells))
    console.print(table)


def approvals_table(items: list[Approval]) -> Table:
    table = Table(title=f"{len(items)} pending approval(s)", title_justify="left")
    for col in ("run", "id", "kind", "tool", "effect", "arguments", "why"):
        table.add_column(col, overflow="fold")
    for a in items:
        cells = (a.run_id, a.approval_id, a.kind, a.tool or "-", a.effect or "-", _args(a.args))
        table.add_row(*(escape(c) for c in (*cells, a.reason)))
    return table


def next_commands(result: RunResult) -> list[str]:
    """What the user can type next for a run that stopped short of the end."""
    run_id = result.run_id
    status = result.status
    if status is RunStatus.WAITING and not result.pending:  # decided, not continued yet
        return [f"controlroom resume {run_id}"]
    if status is RunStatus.WAITING:
        lines = []
        for a in result.pending:
            lines.append(f"controlroom approve {run_id} {a.approval_id} --user APPROVER")
            if a.kind == "tool_call":
                lines.append(
                    f"controlroom approve {run_id} {a.approval_id} --user APPROVER "
                    f"--args '{_args(a.args)}'"
                )
            lines.append(
                f"controlroom reject {run_id} {a.approval_id} --user APPROVER --reason TEXT"
            )
        return lines
    if status in (RunStatus.PAUSED, RunStatus.INTERRUPTED, RunStatus.QUEUED):
        return [f"controlroom step {run_id}", f"controlroom resume {run_id}"]
    if status is RunStatus.FAILED:
        return [f"controlroom resume {run_id}   # retries from the last completed step"]
    return []


def print_result(console: Console, result: RunResult) -> None:
    r = result.run
    style = STATUS_STYLE.get(r.status, "")
    console.print(
        f"Run [bold]{escape(r.run_id)}[/] ({escape(r.workflow)}, for {escape(r.user_id)}): "
        f"[{style}]{escape(r.outcome)}[/]"
    )
    if r.status is RunStatus.COMPLETED and r.output:
        console.print(escape(r.output), highlight=False)
    if r.status is RunStatus.FAILED and r.error:
        console.print(f"[red]{escape(r.error)}[/]", highlight=False)
    if r.status is RunStatus.PAUSED and r.next_steps:
        console.print(f"Paused before: {escape(', '.join(r.next_steps))}")
    if result.pending:
        console.print(approvals_table(result.pending))
    commands = next_commands(result)
    if commands:
        console.print("To continue:")
        for line in commands:
            console.print(f"  {line}", markup=False, highlight=False)


def timeline(messages: list[AnyMessage]) -> Table:
    table = Table(title="conversation", title_justify="left", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("who")
    table.add_column("content", overflow="fold")
    for i, m in enumerate(messages, 1):
        if isinstance(m, HumanMessage):
            who, text = "user", str(m.text)
        elif isinstance(m, AIMessage):
            who = f"model ({m.name})" if m.name else "model"
            calls = "; ".join(f"{c['name']}({_args(c['args'])}) [{c['id']}]" for c in m.tool_calls)
            text = "\n".join(
                part for part in (str(m.text), calls and f"tool calls: {calls}") if part
            )
        elif isinstance(m, ToolMessage):
            who, text = f"tool {m.name}", str(m.content)
        else:
            who, text = m.type, str(m.content)
        table.add_row(str(i), escape(who), escape(text))
    return table
