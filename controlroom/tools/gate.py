"""The gate every tool call passes before it executes.

The gate decides per call: ``allow``, ``deny`` (never executed; the model gets a short
structured refusal) or ``approve`` (a person must approve first). :class:`DeclaredGate`
decides from the tool's declared behaviour alone; the Cedar policy gate
(:class:`controlroom.tools.policy.PolicyGate`) implements the same :class:`Gate` protocol.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from controlroom.identity import Principal
from controlroom.tools.spec import Tool


class Verdict(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    APPROVE = "approve"


class Decision(BaseModel):
    """The gate's answer for one call, with the reason and the deciding rule ids.

    ``approvers`` (approve verdicts only) lists the roles one of which the approver must
    hold (empty: anyone may approve); ``policy_hash`` identifies the policy files that
    decided, for the audit.
    """

    verdict: Verdict
    reason: str
    policies: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    policy_hash: str | None = None
    # What the gate decided on besides the principal and the arguments: the resource it
    # looked up (``{"resource": {"type", "id", "attributes"}, "context": {...facts}}``, or
    # ``{"lookup_error": why}``). Recorded in the audit, so a replay decides on the same.
    facts: dict[str, Any] | None = None


Purpose = Literal["plan", "recheck", "edit"]


@dataclass(frozen=True)
class CallRef:
    """Which call of a run the gate is deciding, and why (for replay)."""

    step: int
    call_id: str
    purpose: Purpose


_CALL: ContextVar[CallRef | None] = ContextVar("controlroom_gate_call", default=None)


@contextmanager
def deciding(step: int, call_id: str, purpose: Purpose) -> Iterator[None]:
    """Tell the gate (and a replay's stand-in for it) which call it is deciding."""
    token = _CALL.set(CallRef(step, call_id, purpose))
    try:
        yield
    finally:
        _CALL.reset(token)


def current_call() -> CallRef | None:
    """The call being decided (inside :func:`deciding`), else None."""
    return _CALL.get()


class Gate(Protocol):
    def decide(self, principal: Principal, tool: Tool, args: dict[str, Any]) -> Decision: ...


class DeclaredGate:
    """Decides from the tool spec: irreversible or ``requires_approval`` tools need approval."""

    def decide(self, principal: Principal, tool: Tool, args: dict[str, Any]) -> Decision:
        if tool.needs_approval_by_default:
            why = (
                "the tool's effect is irreversible"
                if tool.requires_approval is False
                else "the tool is declared to require approval"
            )
            return Decision(verdict=Verdict.APPROVE, reason=why, policies=("declared",))
        return Decision(
            verdict=Verdict.ALLOW, reason="allowed by tool declaration", policies=("declared",)
        )
