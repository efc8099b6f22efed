"""The readable timeline of ``controlroom audit show`` (plain text, one line per record).

Every line is passed through :func:`controlroom.cli.render.escape_controls`, newlines
included: what a record holds (a reason, tool arguments, a model's text) can neither act on
the terminal nor pass for a record line of its own.
"""

from __future__ import annotations

import json
from typing import Any

from controlroom.cli.render import escape_controls

_TEXT_CHARS = 80
_TOOL = "gen_ai.tool.name"
_ARGS = "gen_ai.tool.call.arguments"
_APPROVAL = "controlroom.approval.id"


def _text(value: Any) -> str:
    if isinstance(value, dict) and "redacted" in value:
        return f"<{value['redacted']}ed>"
    flat = " ".join(str(value).split())
    return repr(flat if len(flat) <= _TEXT_CHARS else flat[: _TEXT_CHARS - 1] + "…")


def _args(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"redacted", "sha256"}:
        return "<hashed>"
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _first_text(messages: Any) -> str:
    parts = (messages or [{}])[0].get("parts") or [{}]
    return _text(parts[0].get("content")) if "content" in parts[0] else ""


def _model_call(r: dict[str, Any]) -> str:
    [message] = r.get("gen_ai.output.messages") or [{}]
    said, calls = [], []
    for part in message.get("parts", []):
        kind = part.get("type")
        if kind == "tool_call":
            calls.append(f"{part.get('name')}({_args(part.get('arguments'))})")
        elif kind in ("text", "reasoning"):
            said.append(("thinks " if kind == "reasoning" else "") + _text(part.get("content")))
    tokens_in = r.get("gen_ai.usage.input_tokens", "?")
    tokens_out = r.get("gen_ai.usage.output_tokens", "?")
    body = " ".join(said) + (" → " + ", ".join(calls) if calls else "")
    latency = r.get("controlroom.latency_ms")
    return f"{r.get('controlroom.model.spec')}: {body} [{tokens_in}→{tokens_out} tok, {latency} ms]"


def _decision(r: dict[str, Any]) -> str:
    verdict = str(r.get("controlroom.decision", "?")).upper()
    status = f" ({r['controlroom.decision.status']})" if "controlroom.decision.status" in r else ""
    policies = ", ".join(r.get("controlroom.policy.ids") or []) or "-"
    via = f", approval {r[_APPROVAL]}" if _APPROVAL in r else ""
    gate = r.get("controlroom.gate.verdict", "-")
    call = f"{r.get(_TOOL)}({_args(r.get(_ARGS))})"
    reason = r.get("controlroom.decision.reason", "")
    return f"{call} {verdict}{status}: {reason} [gate {gate}, policies {policies}{via}]"


def _approval_decided(r: dict[str, Any]) -> str:
    text = (
        f"{r.get(_APPROVAL)} {r.get('controlroom.approval.decision')} "
        f"by {r.get('controlroom.approver.id')}"
    )
    if r.get("controlroom.approval.edited"):
        text += f", edited {_args(r.get('controlroom.approval.args_diff'))}"
    if r.get("controlroom.approval.reason"):
        text += f": {_text(r['controlroom.approval.reason'])}"
    return text


def _tool_result(r: dict[str, Any]) -> str:
    if r.get("controlroom.tool.status") == "error":
        message = _text(r.get("controlroom.error.message"))
        return f"{r.get(_TOOL)} failed: {r.get('error.type')}: {message}"
    ledger = (
        " (from the effect ledger: not run again)" if r.get("controlroom.tool.from_ledger") else ""
    )
    return f"{r.get(_TOOL)} ok{ledger}: {_text(r.get('gen_ai.tool.call.result'))}"


def _run_start(r: dict[str, Any]) -> str:
    wf = r.get("controlroom.workflow") or {}
    digest = str(wf.get("digest"))[:19]
    who = f"for {r.get('user.id')}, model {r.get('controlroom.model.spec')}"
    return f"{wf.get('name')} v{wf.get('version')} ({digest}…) {who}: " + _first_text(
        r.get("gen_ai.input.messages")
    )


def _detail(r: dict[str, Any]) -> str:
    kind = r.get("kind")
    if kind == "run.start":
        return _run_start(r)
    if kind == "model.call":
        return _model_call(r)
    if kind == "tool.decision":
        return _decision(r)
    if kind == "tool.result":
        return _tool_result(r)
    if kind == "approval.requested":
        args = f"({_args(r.get(_ARGS))})" if _ARGS in r else ""
        what = f"{r.get(_TOOL) or 'checkpoint'}{args}"
        return (
            f"{r.get(_APPROVAL)}: {what} needs approval: {r.get('controlroom.decision.reason', '')}"
        )
    if kind == "approval.decided":
        return _approval_decided(r)
    if kind in ("run.wait", "run.pause", "run.end"):
        pending = ", ".join(r.get("controlroom.approval.pending") or [])
        extra = r.get("controlroom.error.message") or pending
        shown = extra or _first_text(r.get("gen_ai.output.messages"))
        return f"{r.get('controlroom.run.status')} {shown}".rstrip()
    if kind == "run.resume":
        return "resumed" + (" (step)" if r.get("controlroom.step_mode") else "")
    if kind == "checkpoint":
        return (
            f"signed by {r.get('key_id')} ({r.get('reason')}), covers records 0-{r.get('covers')}"
        )
    if kind == "log.repair":
        return (
            f"removed a torn line of {r.get('controlroom.repair.torn_bytes')} bytes left by a crash"
        )
    if kind == "retrieval":
        chunks = r.get("controlroom.retrieval.chunks") or []
        access = r.get("controlroom.retrieval.access") or {}
        readable = ", ".join(access.get("readable_labels") or []) or "none"
        shown = ", ".join(f"{c.get('id')} ({'|'.join(c.get('labels') or [])})" for c in chunks)
        return f"{len(chunks)} chunk(s) for {access.get('user', '?')} [reads: {readable}]: {shown}"
    if kind == "answer.check":
        cited = ", ".join(r.get("controlroom.grounding.cited") or []) or "nothing"
        verdict = "citations ok" if r.get("controlroom.grounding.ok") else "REJECTED"
        text = f"attempt {r.get('controlroom.grounding.attempt')}: {verdict} (cites {cited})"
        if r.get("controlroom.grounding.problem"):
            text += f": {r['controlroom.grounding.problem']}"
        if r.get("controlroom.grounding.outcome"):
            text += f" -> {r['controlroom.grounding.outcome']}"
        return text
    return _text(r.get("controlroom.error.message", ""))


def timeline(records: list[dict[str, Any]]) -> list[str]:
    """One line per record: seq, time, kind, step and node, what happened, attempt."""
    lines = []
    for r in records:
        when = str(r.get("time", ""))[11:23]
        where = f"step {r['step']} {r.get('node', '')}".strip() if "step" in r else ""
        again = f" (attempt {r['attempt']})" if r.get("attempt", 1) > 1 else ""
        kind = str(r.get("kind", "?"))
        line = f"#{r.get('seq'):<4} {when}  {kind:<18} {where:<14} {_detail(r)}{again}"
        lines.append(escape_controls(line, keep_newlines=False))
    return lines
