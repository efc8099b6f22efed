"""The records about tool calls: approval requests and decisions, final decisions, results.

A mixin of :class:`~controlroom.audit.recorder.RunAudit` (kept apart to keep modules small),
with the helpers those records need. Write-ahead: :meth:`ToolRecords.tool_decision` for a
call that will execute, :meth:`~ToolRecords.approval_requested` and
:meth:`~ToolRecords.approval_decided` are synced before they return; the approval records
are written once per approval id.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from controlroom.audit.canonical import sha256
from controlroom.audit.records import APPROVAL_ID, CALL_ID, DECISION, TOOL_NAME, Kind
from controlroom.audit.redact import Redactor, Verbatim
from controlroom.tools.gate import Decision

# A diff's operation and path (made of argument keys) are names, kept verbatim.
_DIFF_NAMES: Verbatim = {"op": True, "path": True}


def policy_set_hash(gate: Any) -> str | None:
    """The hash of the gate's policy set, when the gate exposes one (any Gate works)."""
    for name in ("policy_set_hash", "policies_hash", "policy_hash"):
        value = getattr(gate, name, None)
        if callable(value):
            value = value()
        if isinstance(value, str) and value:
            return value
    return None


def content_text(value: Any) -> str:
    """The text a tool result becomes for the model (as the tools node renders it)."""
    return value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)


def args_diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """JSON-Patch-like list of changes from ``before`` to ``after`` (``old`` kept)."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[dict[str, Any]] = []
        for key in sorted(set(before) | set(after)):
            where = f"{path}/{key}"
            if key not in after:
                changes.append({"op": "remove", "path": where, "old": before[key]})
            elif key not in before:
                changes.append({"op": "add", "path": where, "value": after[key]})
            else:
                changes.extend(args_diff(before[key], after[key], where))
        return changes
    if before == after and type(before) is type(after):
        return []
    return [{"op": "replace", "path": path or "/", "old": before, "value": after}]


def _facts(r: Redactor, gate: Decision | None) -> Any:
    """What the gate decided on besides principal and arguments (the resource it looked up,
    derived context), as the redaction mode records data; replay decides on it again."""
    facts = getattr(gate, "facts", None)
    return r.data(facts) if facts is not None else None


def compact(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class _Appender(Protocol):
    def __call__(
        self, fields: dict[str, Any], *, durable: bool = False, once: bool = False
    ) -> dict[str, Any] | None: ...


class ToolRecords:
    """Records about tool calls; ``RunAudit`` provides ``redactor`` and ``_append``."""

    redactor: Redactor
    _append: _Appender

    def approval_requested(
        self,
        *,
        step: int,
        node: str,
        approval_id: str,
        kind: str,
        tool: str | None = None,
        call_id: str | None = None,
        args: dict[str, Any] | None = None,
        effect: str | None = None,
        gate: Decision | None = None,
        policy_hash: str | None = None,
        message: str = "",
    ) -> None:
        r = self.redactor
        self._append(
            {
                "kind": Kind.APPROVAL_REQUESTED,
                "step": step,
                "node": node,
                APPROVAL_ID: approval_id,
                "controlroom.approval.kind": kind,
                TOOL_NAME: tool,
                CALL_ID: call_id,
                "gen_ai.tool.call.arguments": r.data(args) if args is not None else None,
                "controlroom.tool.args_sha256": r.digest(args) if args is not None else None,
                "controlroom.tool.effect": effect,
                "controlroom.gate.verdict": gate.verdict.value if gate else None,
                "controlroom.decision.reason": gate.reason if gate else None,
                "controlroom.policy.ids": list(gate.policies) if gate else None,
                "controlroom.policy.set_hash": getattr(gate, "policy_hash", None) or policy_hash,
                "controlroom.approval.approvers": list(getattr(gate, "approvers", ()) or ())
                or None,
                "controlroom.gate.facts": _facts(r, gate),
                "controlroom.approval.message": r.text(message) if message else None,
            },
            durable=True,
            once=True,
        )

    def approval_decided(
        self,
        *,
        approval_id: str,
        approved: bool,
        by: str | None,
        args: dict[str, Any] | None,
        edited_args: dict[str, Any] | None,
        reason: str | None,
        decided_at: str | None,
        tool: str | None = None,
        call_id: str | None = None,
        source: str = "decision",
        approver: dict[str, Any] | None = None,
    ) -> None:
        """A person's decision; ``approver`` is who they were when they decided (their
        roles and attributes), so a replay can check the decision was theirs to make."""
        r = self.redactor
        final = edited_args if edited_args is not None else args
        diff = (
            args_diff(r.scrub(args or {}), r.scrub(edited_args))
            if edited_args is not None
            else None
        )
        self._append(
            {
                "kind": Kind.APPROVAL_DECIDED,
                APPROVAL_ID: approval_id,
                TOOL_NAME: tool,
                CALL_ID: call_id,
                "controlroom.approval.decision": "approved" if approved else "rejected",
                "controlroom.approver.id": by,
                "controlroom.approver": r.hide_secret_fields(approver) if approver else None,
                "controlroom.approval.reason": r.scrub_text(reason) if reason else None,
                "controlroom.approval.decided_at": decided_at,
                "controlroom.approval.edited": edited_args is not None,
                "controlroom.approval.args_diff": (
                    r.data(diff, _DIFF_NAMES) if diff is not None else None
                ),
                "controlroom.approval.arguments": r.data(edited_args)
                if edited_args is not None
                else None,
                "controlroom.approval.args_sha256": r.digest(final) if final is not None else None,
                "controlroom.approval.source": source,
            },
            durable=True,
            once=True,
        )

    def tool_decision(
        self,
        *,
        step: int,
        node: str,
        call_id: str,
        tool: str,
        args: Any,
        allowed: bool,
        reason: str,
        status: str | None = None,
        effect: str | None = None,
        gate: Decision | None = None,
        policy_hash: str | None = None,
        approval_id: str | None = None,
        approval: str | None = None,
        recheck: bool = False,
        ledger: str | None = None,
    ) -> None:
        """The final decision for one call, appended before the tool may run.

        ``ledger`` (``completed`` or ``started``): the call ran, or began, before a crash
        and keeps the decision it ran under; the effect ledger says how far it got.

        An allowed call with a side effect (``write``, ``irreversible``) is synced to disk
        first: write-ahead. An allowed ``read`` is appended in order but synced with the
        next batch: it changes nothing outside the run, and every consequence of what it
        returned (a later effect, an approval, the run's stop) is itself synced, which
        makes this earlier record durable too.
        """
        r = self.redactor
        self._append(
            {
                "kind": Kind.TOOL_DECISION,
                "step": step,
                "node": node,
                "gen_ai.operation.name": "execute_tool",
                TOOL_NAME: tool,
                CALL_ID: call_id,
                "gen_ai.tool.call.arguments": r.data(args),
                "controlroom.tool.args_sha256": r.digest(args),
                "controlroom.tool.effect": effect,
                DECISION: "allow" if allowed else "deny",
                "controlroom.decision.status": status,
                "controlroom.decision.reason": reason,
                "controlroom.gate.verdict": gate.verdict.value if gate else None,
                "controlroom.gate.recheck": recheck or None,
                "controlroom.decision.from_ledger": ledger,
                "controlroom.policy.ids": list(gate.policies) if gate else None,
                "controlroom.policy.set_hash": getattr(gate, "policy_hash", None) or policy_hash,
                "controlroom.gate.facts": _facts(r, gate),
                APPROVAL_ID: approval_id,
                "controlroom.approval.decision": approval,
            },
            durable=allowed and effect != "read",
        )

    def tool_result(
        self,
        *,
        step: int,
        node: str,
        call_id: str,
        tool: str,
        result: Any = None,
        error: BaseException | None = None,
        from_ledger: bool = False,
        latency_s: float | None = None,
    ) -> None:
        r = self.redactor
        fields: dict[str, Any] = {
            "kind": Kind.TOOL_RESULT,
            "step": step,
            "node": node,
            "gen_ai.operation.name": "execute_tool",
            TOOL_NAME: tool,
            CALL_ID: call_id,
            "controlroom.tool.status": "error" if error is not None else "ok",
            "controlroom.tool.from_ledger": from_ledger or None,
            "controlroom.latency_ms": round(latency_s * 1000, 3) if latency_s is not None else None,
        }
        if error is not None:
            fields["error.type"] = type(error).__name__
            fields["controlroom.error.message"] = r.scrub_text(str(error))
        else:
            r.scrub(result)  # learns values under secret-named keys before the text is scrubbed
            text = r.scrub_text(content_text(result))
            fields["gen_ai.tool.call.result"] = r.text(text)
            fields["controlroom.tool.result_format"] = "text" if isinstance(result, str) else "json"
            fields["controlroom.tool.result_sha256"] = sha256(text.encode("utf-8", "replace"))
        self._append(fields)
