"""Human-readable output for the CLI (tables and timelines via Rich).

Text that comes from users, workflows, models or tools (ids, names, paths, arguments,
messages, errors) is escaped: Rich would read ``[draft]`` as markup and drop it, and fail on
``[/x]``; and a terminal would act on its control characters.

One rule decides which characters never reach the terminal as they are
(:func:`escape_controls`): C0 controls other than newline and tab (ESC starts ANSI and OSC
sequences, CR rewrites a line, BEL rings), DEL, C1 controls (U+0080-U+009F: ``\\x9b`` is a
one-byte CSI), and the bidirectional formatting characters (U+061C, U+200E, U+200F, U+202A-U+202E,
U+2066-U+2069: U+202E shows text reversed; the separators U+2028, U+2029).
Each is shown as ``\\xNN`` or ``\\uNNNN``.
Every printing path of the CLI applies it: :func:`escape` for Rich markup,
:func:`escape_controls` for plain text, and :class:`TerminalConsole` for whatever else a
Rich console writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from rich.console import Console
from rich.markup import escape as escape_markup
from rich.segment import Segment
from rich.table import Table

from controlroom.graphs.control.run_result import RunResult
from controlroom.graphs.storage.records import Approval, Refusal, RunRecord, RunStatus

# C0 but newline and tab, DEL, C1, and the bidi marks, embeddings, overrides and isolates
_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_CONTROL_OR_NEWLINE = re.compile(f"\n|{_CONTROL.pattern}")


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_controls(text: str, *, keep_newlines: bool = True) -> str:
    """``text`` with every character of the rule (see the module) shown as ``\\xNN`` or
    ``\\uNNNN`` instead of acting on the terminal; for text printed without Rich markup.

    Newlines stay (multi-line output the CLI composes), unless ``keep_newlines`` is false:
    then they are shown as ``\\x0a`` too, so that text meant for one line cannot pass for
    a line of its own (an audit record)."""
    return (_CONTROL if keep_newlines else _CONTROL_OR_NEWLINE).sub(_shown, text)


def escape(text: str) -> str:
    """Untrusted text (a model's output, a user's input, a tool's result) made safe for the
    terminal: Rich markup escaped, and control characters (ANSI escape sequences, carriage
    returns, bells, C1 controls, bidi overrides) shown as ``\\xNN`` / ``\\uNNNN``."""
    return escape_markup(escape_controls(text))


class TerminalConsole(Console):
    """A Rich console that applies :func:`escape_controls` to the text of everything it
    writes (its own styles and cursor controls are added after, so they still work).

    A safety net under the escaping at each call site, which keeps tables aligned: a value
    that reaches a table, a title or a caption unescaped still cannot act on the terminal.
    """

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            segment if segment.control else segment._replace(text=escape_controls(segment.text))
            for segment in buffer
        )


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
            console.print(f"  {escape_controls(line)}", markup=False, highlight=False)


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
