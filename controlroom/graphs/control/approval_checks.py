"""Checks a person's approval decision must pass before it is recorded: the approval is
still pending, and the approver may decide it (approver roles, never the requester)."""

from __future__ import annotations

from controlroom.errors import ApprovalDecidedError, ApprovalError
from controlroom.graphs.storage.run_store import Approval, ApprovalStatus
from controlroom.identity import Principal
from controlroom.tools.gate import Decision
from controlroom.tools.policy import may_approve


def ensure_may_decide(needs: Decision, approver: Principal, requester: Principal) -> None:
    """Approval rules that name approver roles bind approvals and rejections alike."""
    problem = may_approve(needs, approver, requester)
    if problem is not None:
        raise ApprovalError(
            f"{problem}. Nothing was recorded; ask someone with that role to decide.",
            title="Not allowed to decide",
        )


def ensure_pending(item: Approval) -> None:
    if item.status is not ApprovalStatus.PENDING:
        raise ApprovalDecidedError(
            f"Approval {item.approval_id} of run {item.run_id} was already "
            f"{item.status.value} by {item.decided_by} at {item.decided_at}."
        )
