"""The records the run store keeps, as every process and script sees them.

Runs, approvals (items waiting for or decided by a person), refusals (tool calls that
were not executed, and why), effect-ledger entries and batches. These are the stable JSON
of ``controlroom runs/show/approvals --json``; the store (:mod:`.run_store`) reads and
writes them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class RunStatus(StrEnum):
    QUEUED = "queued"  # created (by a batch) and not started yet; `resume` starts it
    RUNNING = "running"
    WAITING = "waiting"  # for approval
    PAUSED = "paused"  # stepped; continue with `resume` or `step`
    INTERRUPTED = "interrupted"  # its process died; `resume` picks it up
    COMPLETED = "completed"
    FAILED = "failed"


ApproveMode = Literal["ask", "all", "none"]
"""Which tool calls wait for a person: as the policies say, every one, or none."""


class ApprovalKind(StrEnum):
    TOOL_CALL = "tool_call"  # a tool call the gate sent to a person
    CHECKPOINT = "checkpoint"  # a human checkpoint step of the workflow


class LedgerStatus(StrEnum):
    STARTED = "started"  # the effect may or may not have happened
    COMPLETED = "completed"  # it happened, and its result is recorded


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class RunRecord(BaseModel):
    """One run as listed by ``controlroom runs`` (stable JSON for scripts)."""

    run_id: str
    workflow: str
    workflow_ref: str
    workflow_hash: str
    user_id: str
    input: str
    model: str
    approve_mode: ApproveMode
    status: RunStatus
    output: str | None = None
    error: str | None = None
    next_steps: list[str] = Field(default_factory=list)
    parent_run_id: str | None = None  # a fork's origin run
    parent_checkpoint: str | None = None  # the origin's checkpoint it was forked from
    created_at: str
    updated_at: str
    # derived by the store's queries, never stored in the runs table
    DERIVED: ClassVar[set[str]] = {
        "pending_approvals",
        "denied_calls",
        "rejected_calls",
        "invalid_calls",
    }
    # an HMAC of the secrets the run's tools were bound to (see Workflow.secret_fingerprint):
    # kept in the store, never in the audit or the JSON a script reads
    workflow_fingerprint: str | None = Field(default=None, exclude=True, repr=False)
    # the seq of the audit log's record of where the run last stopped (its run.end for a
    # completed or failed run), written after it: `audit verify` checks the log reaches it
    audit_stop_seq: int | None = Field(default=None, exclude=True, repr=False)
    pending_approvals: int = 0
    denied_calls: int = 0  # tool calls the gate refused (never executed)
    rejected_calls: int = 0  # tool calls a person rejected (never executed)
    invalid_calls: int = 0  # tool calls refused for arguments that did not fit (never executed)

    @property
    def refused_calls(self) -> int:
        return self.denied_calls + self.rejected_calls + self.invalid_calls

    @property
    def outcome(self) -> str:
        """The status as people read it: ``completed with 2 denied call(s)``."""
        parts = []
        if self.denied_calls:
            parts.append(f"{self.denied_calls} denied call(s)")
        if self.rejected_calls:
            parts.append(f"{self.rejected_calls} rejected call(s)")
        if self.invalid_calls:
            parts.append(f"{self.invalid_calls} call(s) refused for invalid arguments")
        return self.status.value + (f" with {' and '.join(parts)}" if parts else "")


class RefusalStatus(StrEnum):
    DENIED = "denied"  # by the gate (a policy, or no such tool)
    REJECTED = "rejected"  # by a person
    INVALID_ARGUMENTS = "invalid_arguments"  # the model's arguments did not fit the schema


class Refusal(BaseModel):
    """A tool call of a run that was not executed, and why (stable JSON for scripts)."""

    run_id: str
    step: int
    call_id: str
    node: str
    tool: str
    status: RefusalStatus
    reason: str
    decided_by: str | None = None  # the rejecting person; None for the gate
    policies: list[str] = Field(default_factory=list)
    approval_id: str | None = None
    created_at: str = Field(default_factory=now)


class Approval(BaseModel):
    """One item waiting for (or decided by) a person: a tool call or a checkpoint."""

    run_id: str
    approval_id: str
    kind: ApprovalKind
    step: str
    tool: str | None = None
    call_id: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    effect: str | None = None
    reason: str
    message: str = ""
    status: ApprovalStatus = ApprovalStatus.PENDING
    decided_by: str | None = None
    decided_at: str | None = None
    edited_args: dict[str, Any] | None = None
    decision_reason: str | None = None
    approvers: list[str] = Field(default_factory=list)  # roles one of which must decide
    policies: list[str] = Field(default_factory=list)  # the rules that asked for approval
    created_at: str = Field(default_factory=now)


class LedgerEntry(BaseModel):
    """One entry of the effect ledger: a side-effecting call, keyed by (run, step, call)."""

    key: str
    run_id: str
    tool: str
    status: LedgerStatus
    result: Any = None
    decision: dict[str, Any] | None = None  # the final decision that authorised it


class BatchItem(BaseModel):
    """One input of a batch and the run it becomes (its id is fixed when the batch is made)."""

    position: int
    run_id: str
    user_id: str
    input: str
    model: str | None = None


class BatchRecord(BaseModel):
    """A batch of runs (``controlroom batch``): what it runs, for whom, how many."""

    batch_id: str
    workflow: str
    workflow_ref: str
    user_id: str
    approve_mode: ApproveMode
    size: int
    created_at: str = Field(default_factory=now)
