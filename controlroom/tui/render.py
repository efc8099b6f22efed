"""What the control room shows, as text: times, the graph, step details, audit records.

Plain functions over the runner's data, so screens stay small and tests can check the words.
Times and durations go through :func:`when` and :func:`duration` (snapshot tests fix them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from controlroom.graphs.authoring.workflow import Workflow
from controlroom.graphs.control.supervision import Breakpoints
from controlroom.graphs.runtime.run_state import RunState
from controlroom.graphs.storage.checkpoints import CheckpointInfo
from controlroom.graphs.storage.records import RunRecord

TOOL = "gen_ai.tool.name"
ARGS = "gen_ai.tool.call.arguments"
_COMMON = {"v", "seq", "time", "kind", "run_id", "prev_hash", "pid", "step", "node", "attempt"}


def when(stamp: str) -> str:
    """An ISO time as the control room shows it (local wall clock, seconds)."""
    if not stamp:
        return "-"
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp[:19]
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def clip(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def origin(record: RunRecord) -> str:
    return f"fork of {record.parent_run_id}" if record.parent_run_id else ""


# the graph -------------------------------------------------------------------------------
def _targets(step: Any) -> list[str]:
    """Where a step can go next, read from whatever fields its kind has."""
    found: list[str] = []
    for name in ("on_tool_calls", "next", "on_reject", "default"):
        value = getattr(step, name, None)
        if isinstance(value, str):
            found.append(value if name == "next" else f"{value} ({name.replace('_', ' ')})")
    routes = getattr(step, "routes", None)
    if isinstance(routes, dict):
        found += [f"{goto} (if {option})" for option, goto in routes.items()]
    for case in getattr(step, "cases", None) or []:
        goto = getattr(case, "goto", None)
        if goto:
            found.append(f"{goto} (when {getattr(case, 'when', '?')})")
    return found


def graph_text(
    workflow: Workflow | None, current: Sequence[str], breaks: Breakpoints, seen: Iterable[str]
) -> Text:
    """The workflow's steps, one a line, the current one highlighted, breakpoints marked."""
    text = Text()
    if workflow is None:
        text.append("(the workflow could not be loaded)\n", style="dim")
        for node in seen:
            text.append(f"  {node}\n")
        return text
    ids = [s.id for s in workflow.spec.steps]
    for index, step in enumerate(workflow.spec.steps):
        following = ids[index + 1] if index + 1 < len(ids) else "end"
        targets = _targets(step) or [following]
        mark = "●" if (step.id in breaks.nodes or breaks.every_node) else " "
        here = step.id in current
        line = f"{'▶' if here else ' '}{mark} {step.id} ({step.kind}) → {', '.join(targets)}"
        tools = getattr(step, "tools", None)
        if tools:
            line += f"  [{', '.join(tools)}]"
        text.append(line + "\n", style="bold reverse" if here else "")
    return text


# one step --------------------------------------------------------------------------------
def _parts(messages: Any) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for message in messages or []:
        if isinstance(message, dict):
            parts += [p for p in message.get("parts") or [] if isinstance(p, dict)]
    return parts


def _content(value: Any) -> str:
    if isinstance(value, dict) and "redacted" in value:
        return f"<{value['redacted']}ed>"
    return value if isinstance(value, str) else dumps(value)


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


def model_call(record: dict[str, Any]) -> list[RenderableType]:
    out: list[RenderableType] = [_section(f"model call · {record.get('controlroom.model.spec')}")]
    for part in record.get("gen_ai.system_instructions") or []:
        if isinstance(part, dict):
            prompt = _content(part.get("content")).strip()
            out.append(Text("prompt: ", style="bold").append(prompt))
    count = record.get("controlroom.input.messages")
    if count is not None:
        out.append(Text(f"(+ {count} conversation messages)", style="dim"))
    for part in _parts(record.get("gen_ai.output.messages")):
        kind = part.get("type")
        if kind == "tool_call":
            call = f"{part.get('name')}({dumps(part.get('arguments'))})"
            out.append(Text("output: calls ", style="bold").append(call))
        elif kind == "reasoning":
            out.append(Text("reasoning: ", style="bold").append(_content(part.get("content"))))
        else:
            out.append(Text("output: ", style="bold").append(_content(part.get("content"))))
    tokens_in = record.get("gen_ai.usage.input_tokens", "?")
    tokens_out = record.get("gen_ai.usage.output_tokens", "?")
    latency = record.get("controlroom.latency_ms")
    took = duration(latency / 1000) if isinstance(latency, int | float) else "-"
    out.append(Text(f"tokens: {tokens_in} in, {tokens_out} out · took {took}", style="cyan"))
    return out


def tool_record(record: dict[str, Any]) -> list[RenderableType]:
    kind = record.get("kind")
    name = record.get(TOOL, "?")
    if kind == "tool.decision":
        verdict = str(record.get("controlroom.decision", "?")).upper()
        policies = ", ".join(record.get("controlroom.policy.ids") or []) or "-"
        return [
            _section(f"tool call · {name}"),
            Text("arguments: ", style="bold").append(dumps(record.get(ARGS))),
            Text("decision: ", style="bold").append(
                f"{verdict} (gate: {record.get('controlroom.gate.verdict', '-')}) — "
                f"{record.get('controlroom.decision.reason', '')}",
                style="green" if verdict == "ALLOW" else "yellow",
            ),
            Text("deciding policies: ", style="bold").append(policies),
        ]
    if kind == "tool.result":
        status = record.get("controlroom.tool.status", "?")
        result = record.get("gen_ai.tool.call.result", record.get("error.type", ""))
        latency = record.get("controlroom.latency_ms")
        took = duration(latency / 1000) if isinstance(latency, int | float) else "-"
        return [
            Text(f"result ({status}, took {took}): ", style="bold").append(
                clip(_content(result), 400)
            )
        ]
    if kind == "approval.requested":
        return [
            _section(f"approval {record.get('controlroom.approval.id')} requested · {name}"),
            Text("arguments: ", style="bold").append(dumps(record.get(ARGS))),
            Text("why: ", style="bold").append(str(record.get("controlroom.decision.reason", ""))),
            Text("policies: ", style="bold").append(
                ", ".join(record.get("controlroom.policy.ids") or []) or "-"
            ),
        ]
    verdict = record.get("controlroom.approval.decision", "decided")
    line = Text(f"approval {record.get('controlroom.approval.id')} {verdict}", style="bold")
    by = record.get("controlroom.approver.id")
    if by:
        line.append(f" by {by}")
    if record.get("controlroom.approval.edited"):
        line.append(f" with edits {dumps(record.get('controlroom.approval.args_diff'))}")
    reason = record.get("controlroom.approval.reason")
    if reason:
        line.append(f": {reason}")
    return [line]


def _table_of(rows: list[dict[str, Any]]) -> Table:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    table = Table(show_edge=False, pad_edge=False, expand=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(clip(_content(row.get(c, "")), 80) for c in columns))
    return table


def generic_record(record: dict[str, Any]) -> list[RenderableType]:
    """Any other record (retrieval, errors, kinds added later): its fields, lists of objects
    (retrieved chunks with their labels and scores) as tables."""
    out: list[RenderableType] = [_section(str(record.get("kind", "record")))]
    for key, value in record.items():
        if key in _COMMON:
            continue
        short = key.removeprefix("controlroom.").removeprefix("gen_ai.")
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out.append(Text(f"{short}:", style="bold"))
            out.append(_table_of(value))
        else:
            out.append(Text(f"{short}: ", style="bold").append(clip(_content(value), 300)))
    return out


def records_view(records: Sequence[dict[str, Any]]) -> list[RenderableType]:
    out: list[RenderableType] = []
    for record in records:
        kind = record.get("kind")
        if kind == "model.call":
            out += model_call(record)
        elif kind in ("tool.decision", "tool.result", "approval.requested", "approval.decided"):
            out += tool_record(record)
        else:
            out += generic_record(record)
    return out


def message_line(message: AnyMessage) -> str:
    if isinstance(message, ToolMessage):
        return f"[tool {message.name}] {clip(str(message.content), 160)}"
    if isinstance(message, AIMessage):
        calls = ", ".join(f"{c['name']}({dumps(c['args'])})" for c in message.tool_calls)
        said = clip(str(message.text), 160)
        return f"[model {message.name or ''}] {said}{' → ' + calls if calls else ''}".strip()
    return f"[{message.type}] {clip(str(message.text), 160)}"


def state_diff(before: RunState, after: RunState) -> list[RenderableType]:
    """What the step changed in the run's state."""
    out: list[RenderableType] = [_section("state diff")]
    changed = False
    old_messages = list(before.get("messages") or [])
    new_messages = list(after.get("messages") or [])
    known = {m.id for m in old_messages}
    for message in new_messages:
        if message.id not in known or len(new_messages) < len(old_messages):
            out.append(Text("+ messages: ", style="green").append(message_line(message)))
            changed = True
    for key in ("input", "output"):
        if before.get(key) != after.get(key):
            out.append(
                Text(f"~ {key}: ", style="yellow").append(
                    f"{clip(str(before.get(key)), 80)} → {clip(str(after.get(key)), 120)}"
                )
            )
            changed = True
    for key in ("vars", "reasoning"):
        old = dict(before.get(key) or {})  # type: ignore[call-overload]
        new = dict(after.get(key) or {})  # type: ignore[call-overload]
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                sign = "+" if name not in old else "~"
                out.append(
                    Text(
                        f"{sign} {key}.{name}: ", style="green" if sign == "+" else "yellow"
                    ).append(clip(_content(new.get(name)), 200))
                )
                changed = True
    if not changed:
        out.append(Text("(no change)", style="dim"))
    return out


def step_detail(
    info: CheckpointInfo,
    parent: CheckpointInfo | None,
    records: Sequence[dict[str, Any]],
    before: RunState | None,
    after: RunState,
) -> RenderableType:
    """Everything about one step: what ran, the records it left, the state diff, timing."""
    ran = ", ".join(info.ran) or info.source
    head = Text(f"step {info.step} · {ran}", style="bold")
    if info.source == "fork":
        head.append(" · the fork's starting point", style="magenta")
    elapsed = None
    if parent is not None and info.created_at and parent.created_at:
        try:
            elapsed = (
                datetime.fromisoformat(info.created_at) - datetime.fromisoformat(parent.created_at)
            ).total_seconds()
        except ValueError:
            elapsed = None
    tokens = sum(
        int(r.get("gen_ai.usage.input_tokens", 0) or 0)
        + int(r.get("gen_ai.usage.output_tokens", 0) or 0)
        for r in records
    )
    parts: list[RenderableType] = [
        head,
        Text(
            f"finished {when(info.created_at)} · took {duration(elapsed)} · {tokens} tokens · "
            f"next: {', '.join(info.next) or 'end'}",
            style="cyan",
        ),
    ]
    reasoning = dict(after.get("reasoning") or {})
    for node in info.ran:
        if node in reasoning and not any(r.get("kind") == "model.call" for r in records):
            parts += [_section("reasoning"), Text(_content(reasoning[node]))]
    parts += records_view(records) if records else [Text("\n(no audit records for this step)")]
    for node in info.ran:
        if node in reasoning:
            parts += [_section(f"reasoning kept for supervisors ({node})")]
            parts.append(Text(_content(reasoning[node])))
    if before is not None:
        parts += state_diff(before, after)
    return Group(*parts)


def audit_line(record: dict[str, Any]) -> tuple[str, str, str, str, str]:
    """One audit record as a table row: #, time, kind, step/node, summary."""
    kind = str(record.get("kind", "?"))
    where = ""
    if "step" in record:
        where = f"{record['step']} {record.get('node', '')}".strip()
    summary = ""
    if kind == "model.call":
        said = [
            f"{p.get('name')}(…)" if p.get("type") == "tool_call" else _content(p.get("content"))
            for p in _parts(record.get("gen_ai.output.messages"))
        ]
        summary = clip(" ".join(said), 70)
    elif kind in ("tool.decision", "approval.requested", "tool.result"):
        summary = f"{record.get(TOOL)} {record.get('controlroom.decision', '')}".strip()
        reason = record.get("controlroom.decision.reason") or record.get("controlroom.tool.status")
        summary = clip(f"{summary}: {reason}", 70)
    elif kind == "approval.decided":
        verdict = record.get("controlroom.approval.decision", "decided")
        by = record.get("controlroom.approver.id") or ""
        summary = f"{record.get('controlroom.approval.id')} {verdict} by {by}"
    elif kind == "run.start":
        fork = record.get("controlroom.fork")
        summary = f"for {record.get('user.id')}"
        if isinstance(fork, dict):
            summary += (
                f" · fork of {fork.get('run_id')} at step {fork.get('step')} by {fork.get('by')}"
            )
    elif kind == "checkpoint":
        summary = f"signed ({record.get('reason')}), covers 0-{record.get('covers')}"
    else:
        summary = clip(
            " ".join(f"{k}={_content(v)}" for k, v in record.items() if k not in _COMMON), 70
        )
    return (str(record.get("seq", "?")), when(str(record.get("time", ""))), kind, where, summary)
