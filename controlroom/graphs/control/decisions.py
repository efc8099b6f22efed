"""A person's decision on a pending item: the checks it must pass, then its record.

Before anything is recorded: the item is still pending; the approver may decide it
(the approver roles the policies named, never the requester: separation of duties); edited
arguments fit the tool and pass the gate again (an edit may call for a more senior
approver, and a denied edit records nothing); and, when the decision would carry the run
on, the run's own workflow is at hand. Then the decision is written to the store (synced)
and to the run's audit log, which is signed: the deciding process may stop here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controlroom.config import using_home
from controlroom.errors import (
    ApprovalDecidedError,
    ApprovalError,
    ControlroomError,
    RunStateError,
    ToolError,
    UnknownToolError,
)
from controlroom.graphs.authoring.workflow import Workflow
from controlroom.graphs.control.run_workflows import RunWorkflows
from controlroom.graphs.runtime.audit_hooks import AuditFactory, record_decision
from controlroom.graphs.storage.records import Approval, ApprovalStatus, RunRecord
from controlroom.graphs.storage.run_store import Store
from controlroom.identity import Principal
from controlroom.tools.gate import Decision, Gate, Verdict, deciding
from controlroom.tools.policy import may_approve

logger = logging.getLogger(__name__)


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


def _call_of(item: Approval) -> tuple[int, str]:
    """The (step, call id) of a tool call's approval item (its id is ``a<step>-<n>``)."""
    step = item.approval_id[1:].split("-", 1)[0]
    return (int(step) if step.isdigit() else -1), item.call_id or ""


def _needs(item: Approval) -> Decision:
    """The gate's decision that sent the item to a person (who may approve it)."""
    return Decision(
        verdict=Verdict.APPROVE,
        reason=item.reason,
        policies=tuple(item.policies),
        approvers=tuple(item.approvers),
    )


class Decisions:
    """Approves and rejects pending items of a runner's project."""

    def __init__(
        self,
        *,
        store: Store,
        audits: AuditFactory,
        gate: Callable[[], Gate],
        home: Path,
        workflows: RunWorkflows,
        principal: Callable[[str], Principal],
    ) -> None:
        self._store = store
        self._audits = audits
        self._gate = gate
        self._home = home
        self._workflows = workflows
        self._principal = principal

    def approve(
        self,
        record: RunRecord,
        item: Approval,
        approver: Principal,
        *,
        args: dict[str, Any] | None,
        reason: str | None,
    ) -> Approval:
        """Approve ``item``, with ``args`` edited (validated and gated again) if given."""
        approval_id = item.approval_id
        requester = self._principal(record.user_id)
        needs = _needs(item)
        if args is not None and item.kind == "tool_call":
            wf = self._workflows.for_run(record, None, allow_changed=False)
            tool = wf.tools.get(item.tool or "")
            if tool is None:
                raise UnknownToolError(f"Run {record.run_id} has no tool '{item.tool}'.")
            checked = tool.validate_args(args)
            args = checked.model_dump(mode="json")
            gate = wf.gate or self._gate()
            with using_home(self._home), deciding(*_call_of(item), "edit"):
                verdict = gate.decide(requester, tool, args)
            if verdict.verdict is Verdict.DENY:
                raise ToolError(
                    f"The edited arguments for {tool.name} are denied by policy "
                    f"({verdict.reason}); nothing was recorded. Edit them again or reject."
                )
            if verdict.verdict is Verdict.APPROVE and verdict.approvers:
                needs = verdict  # edits may call for a more senior approver
        ensure_may_decide(needs, approver, requester)
        decided = self._store.decide(
            record.run_id,
            approval_id,
            approved=True,
            by=approver.id,
            edited_args=args,
            reason=reason,
        )
        self._record(record, decided, approver)
        return decided

    def reject(
        self, record: RunRecord, item: Approval, approver: Principal, *, reason: str
    ) -> Approval:
        """Reject ``item``; the model is told the approver's reason."""
        ensure_may_decide(_needs(item), approver, self._principal(record.user_id))
        decided = self._store.decide(
            record.run_id, item.approval_id, approved=False, by=approver.id, reason=reason
        )
        self._record(record, decided, approver)
        return decided

    def ensure_resumable(self, record: RunRecord, item: Approval) -> None:
        """Before the last pending item is decided with ``resume``: the run's workflow must
        be at hand here, or nothing is recorded (the decision is not left half-done)."""
        others = [a for a in self._store.list_approvals(run_id=record.run_id) if a != item]
        if others:
            return  # the run will not continue yet
        try:
            self._workflows.for_run(record, None, allow_changed=False)
        except RunStateError as exc:
            raise RunStateError(
                f"{exc.message} Nothing was recorded. To record the decision without "
                "continuing the run here, decide with resume=False (--no-resume); a process "
                "that has the workflow continues it.",
                title=exc.title,
            ) from None

    def _record(self, record: RunRecord, item: Approval, approver: Principal) -> None:
        """Record a person's decision (synced), and sign: this process may stop here."""
        try:  # the workflow's tools name secrets to keep out of the record
            wf: Workflow | None = self._workflows.for_run(record, None, allow_changed=True)
        except ControlroomError as exc:
            logger.warning(
                "Recording the decision on %s of run %s without its workflow (%s): secrets its "
                "tools hold are not known to the audit's scrubber",
                item.approval_id,
                item.run_id,
                exc.message,
            )
            wf = None
        audit = self._audits.for_run(item.run_id, wf)
        record_decision(audit, item, source="decision", approver=approver)
        audit.checkpoint("decision")
        audit.close()
