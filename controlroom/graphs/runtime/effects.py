"""One tool call as the tools node plans it, and its effect, exactly once.

A side-effecting call is written to the effect ledger (keyed by run, step and call, with
the final decision it runs under) *before* its effect begins, and its result after. A call
whose effect the ledger holds is never asked of the gate again nor executed twice: a
``completed`` entry hands back its recorded result; a ``started`` one (the process died
inside the tool) runs again with the same idempotency key and the same final arguments.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from controlroom import faults
from controlroom.graphs.runtime.run_state import RunContext
from controlroom.graphs.storage.records import LedgerEntry, LedgerStatus
from controlroom.tools.gate import Decision, Verdict
from controlroom.tools.spec import Effect, Tool, ToolContext


class Plan(BaseModel):
    """What the tools node will do with one call."""

    model_config = {"arbitrary_types_allowed": True}
    edited_by: str | None = None
    position: int
    call_id: str
    name: str
    raw_args: dict[str, Any]
    tool: Tool | None = None
    args: BaseModel | None = None
    decision: Decision | None = None
    refusal: dict[str, Any] | None = None
    approval_id: str | None = None
    approval: dict[str, Any] | None = None  # the person's decision, when one was needed
    recheck: Decision | None = None  # the gate's answer for edited arguments
    ledger: LedgerEntry | None = None  # the effect ledger's entry: it ran (or began) before


def effect_key(run_id: str, step_no: int, call_id: str) -> str:
    """The idempotency key of one call: (run, step, call)."""
    return f"{run_id}:{step_no}:{call_id}"


def from_ledger(plan: Plan, tool: Tool, entry: LedgerEntry) -> Plan:
    """A call whose effect the ledger already holds: it keeps the decision it ran under.

    The gate is not asked again: the call was authorised (and written ahead) before its
    effect began, and the world it would decide on now includes that effect (an invoice
    it paid is "paid"). A ``started`` entry (killed inside the tool) runs again with the
    same idempotency key and the same final arguments."""
    recorded = entry.decision or {}
    plan.ledger = entry
    plan.args = tool.validate_args(recorded.get("args", plan.raw_args))
    plan.decision = Decision(
        verdict=Verdict(recorded.get("verdict", Verdict.ALLOW.value)),
        reason=str(recorded.get("reason") or "authorised before a crash"),
        policies=tuple(recorded.get("policies") or ()),
        approvers=tuple(recorded.get("approvers") or ()),
        policy_hash=recorded.get("policy_hash"),
        facts=recorded.get("facts"),
    )
    plan.approval_id = recorded.get("approval_id")
    plan.approval = recorded.get("approval")
    plan.edited_by = recorded.get("edited_by")
    return plan


def _ledger_decision(plan: Plan) -> dict[str, Any]:
    """What the ledger keeps about the decision an effect runs under."""
    gate = plan.recheck or plan.decision
    assert plan.args is not None
    return {
        "verdict": gate.verdict.value if gate else Verdict.ALLOW.value,
        "reason": gate.reason if gate else "",
        "policies": list(gate.policies) if gate else [],
        "approvers": list(gate.approvers) if gate else [],
        "policy_hash": gate.policy_hash if gate else None,
        "facts": gate.facts if gate else None,
        "approval_id": plan.approval_id,
        "approval": plan.approval,
        "edited_by": plan.edited_by,
        "args": plan.args.model_dump(mode="json"),
    }


def execute(ctx: RunContext, plan: Plan, step_no: int) -> tuple[Any, bool]:
    """Run the call (or return the ledger's result of an effect it already had)."""
    assert plan.tool is not None
    assert plan.args is not None
    key = effect_key(ctx.run_id, step_no, plan.call_id)
    tool_ctx = ToolContext(
        principal=ctx.principal,
        run_id=ctx.run_id,
        call_id=plan.call_id,
        idempotency_key=key,
        home=ctx.home,
    )
    if plan.tool.effect is Effect.READ:
        return plan.tool.invoke(plan.args, tool_ctx), False
    entry = plan.ledger or ctx.store.effect_entry(key)
    if entry is not None and entry.status is LedgerStatus.COMPLETED:
        return entry.result, True
    if entry is None:
        ctx.store.effect_started(key, ctx.run_id, plan.tool.name, _ledger_decision(plan))
    result = plan.tool.invoke(plan.args, tool_ctx)
    faults.point("tool.returned")
    ctx.store.effect_completed(key, result)
    return result, False
