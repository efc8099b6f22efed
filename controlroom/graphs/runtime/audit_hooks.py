"""What the graph nodes tell the run's audit log, kept out of the node code.

See :mod:`controlroom.audit.recorder` for the records and their write-ahead rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from langchain_core.messages import AIMessage, BaseMessage
from pydantic import BaseModel

from controlroom.audit.keys import Signer, load_or_create_signer
from controlroom.audit.log import AuditLog, log_path
from controlroom.audit.policy_sets import keep_policy_set
from controlroom.audit.recorder import RunAudit, WorkflowInfo, policy_set_hash
from controlroom.audit.redact import Redactor, secrets_of_tool
from controlroom.config import Settings
from controlroom.errors import ControlroomError
from controlroom.graphs.runtime.run_state import RunContext
from controlroom.graphs.storage.records import Approval, ApprovalStatus
from controlroom.identity import Principal

if TYPE_CHECKING:
    from controlroom.graphs.authoring.workflow import Workflow
from controlroom.tools.gate import Decision
from controlroom.tools.spec import Tool

logger = logging.getLogger(__name__)


class ModelCalls:
    """Records the model calls one execution of a step makes, numbered from 1 (a structured
    reply retried after an invalid one is call 2), each as a ``model.call`` record; pass it
    as the ``on_reply`` of a structured call, or call it after a plain one."""

    def __init__(
        self,
        ctx: RunContext,
        *,
        step_no: int,
        node: str,
        spec: str,
        model: Any,
        tools: Sequence[str] = (),
    ) -> None:
        self._ctx, self._step_no, self._node = ctx, step_no, node
        self._spec, self._model, self._tools = spec, model, list(tools)
        self.count = 0

    def __call__(self, messages: list[BaseMessage], reply: AIMessage, latency: float) -> None:
        reply.name = self._node
        self.count += 1
        self._ctx.audit.model_call(
            step=self._step_no,
            node=self._node,
            spec=self._spec,
            model=self._model,
            messages=messages,
            tools=self._tools,
            reply=reply,
            latency_s=latency,
            call=self.count,
        )


class PlannedCall(Protocol):
    """What the tools node knows about one call when its decision is final."""

    call_id: str
    name: str
    raw_args: dict[str, Any]
    tool: Tool | None
    args: BaseModel | None
    decision: Decision | None
    recheck: Decision | None
    refusal: dict[str, Any] | None
    approval_id: str | None
    approval: dict[str, Any] | None
    ledger: Any  # the effect ledger's entry when the call ran (or began) before a crash


def record_decision(
    audit: RunAudit, item: Approval, *, source: str, approver: Principal | None = None
) -> None:
    """Record a decided approval (once per approval id: a repeat is a no-op)."""
    audit.approval_decided(
        approver=approver.model_dump(mode="json") if approver is not None else None,
        approval_id=item.approval_id,
        approved=item.status is ApprovalStatus.APPROVED,
        by=item.decided_by,
        args=item.args,
        edited_args=item.edited_args,
        reason=item.decision_reason,
        decided_at=item.decided_at,
        tool=item.tool,
        call_id=item.call_id,
        source=source,
    )


def record_request(ctx: RunContext, item: Approval, step_no: int, gate: Decision | None) -> None:
    """Record a pending approval (synced; once per approval id) before the run pauses."""
    ctx.audit.approval_requested(
        step=step_no,
        node=item.step,
        approval_id=item.approval_id,
        kind=item.kind,
        tool=item.tool,
        call_id=item.call_id,
        args=item.args if item.kind == "tool_call" else None,
        effect=item.effect,
        gate=gate,
        policy_hash=policy_set_hash(ctx.gate),
        message=item.message if item.kind == "checkpoint" else "",
    )


def _allowed_because(plan: PlannedCall, gate: Decision | None) -> str:
    if plan.ledger is not None:
        held = "result" if plan.ledger.status == "completed" else "start (it runs again)"
        before = gate.reason if gate else ""
        if plan.approval is not None:
            before = f"approved by {plan.approval.get('by') or 'the approver'}"
        return (
            f"decided before a crash ({before}); the effect ledger holds its {held}, so the "
            "gate is not asked again"
        )
    if plan.approval is not None:
        edited = " with edited arguments" if plan.recheck is not None else ""
        return f"approved by {plan.approval.get('by') or 'the approver'}{edited}"
    return gate.reason if gate else ""


def record_final(ctx: RunContext, plan: PlannedCall, step_no: int, node: str) -> None:
    """The final decision for one call: allowed (synced before it runs) or refused."""
    refusal = plan.refusal or {}
    gate = plan.recheck or plan.decision
    args = plan.args.model_dump(mode="json") if plan.args is not None else plan.raw_args
    approval = None
    if plan.approval is not None:
        approval = "approved" if plan.approval.get("approved") else "rejected"
    ctx.audit.tool_decision(
        step=step_no,
        node=node,
        call_id=plan.call_id,
        tool=plan.name,
        args=args,
        allowed=plan.refusal is None,
        reason=str(refusal.get("reason") or _allowed_because(plan, gate)),
        status=refusal.get("status"),
        effect=plan.tool.effect.value if plan.tool is not None else None,
        gate=gate,
        policy_hash=policy_set_hash(ctx.gate),
        approval_id=plan.approval_id,
        approval=approval,
        recheck=plan.recheck is not None,
        ledger=plan.ledger.status if plan.ledger is not None else None,
    )


class AuditFactory:
    """Opens the audit of each run for a runner: its signing key, redaction, secrets."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._signer: Signer | None = None
        self._base: Redactor | None = None
        self._open: dict[str, RunAudit] = {}

    def for_run(self, run_id: str, workflow: Workflow | None = None) -> RunAudit:
        """The run's audit (cached); with a workflow, its tools' secrets are added."""
        s = self.settings
        if not s.audit:
            return RunAudit.disabled()
        audit = self._open.get(run_id)
        if audit is None:
            if self._signer is None:
                self._signer = load_or_create_signer(s.keys_path, s.audit_key)
            if self._base is None:
                self._base = Redactor.from_environment(s.audit_redaction, s.audit_secrets)
            log = AuditLog(
                log_path(s.audit_path, run_id),
                run_id,
                signer=self._signer,
                fsync=s.audit_fsync,
                checkpoint_every=s.audit_checkpoint_every,
            )
            audit = self._open[run_id] = RunAudit(log, self._base.copy())
        if workflow is not None and audit.workflow is None:
            audit.workflow = WorkflowInfo(
                workflow.name,
                workflow.spec.version,
                workflow.digest,
                workflow.ref,
                prompts={
                    node: (p.id, str(p.version), p.sha256) for node, p in workflow.prompts.items()
                },
            )
            for tool in workflow.tools.values():
                audit.redactor.add_secrets(secrets_of_tool(tool))
        return audit

    def keep_policies(self, gate: Any) -> None:
        """Keep a copy of the policy set deciding a run, by its hash, for replays."""
        bundle = getattr(gate, "bundle", None)
        sources = getattr(bundle, "sources", None)
        digest = getattr(bundle, "digest", None)
        if not self.settings.audit or not isinstance(sources, dict) or not digest:
            return
        try:
            keep_policy_set(self.settings.audit_path, str(digest), sources)
        except OSError as exc:  # a replay then decides with the folder's policies, if they match
            logger.warning(
                "Could not keep the policy set %s in %s for replays: %s",
                digest,
                self.settings.audit_path,
                exc,
            )

    def config(self) -> dict[str, Any]:
        """The settings a run start records (nothing secret, no paths)."""
        s = self.settings
        return {
            "audit.redaction": s.audit_redaction,
            "audit.fsync": s.audit_fsync,
            "audit.checkpoint_every": s.audit_checkpoint_every,
        }

    def close(self) -> None:
        for audit in self._open.values():
            audit.close()


def record_stop(
    audit: RunAudit,
    status: str,
    *,
    output: str | None,
    error: str | None,
    next_steps: list[str],
    pending: list[str],
) -> None:
    """Record where a run stopped and sign the log; a failure here never hides the run's."""
    try:
        audit.run_stopped(
            status, output=output, error=error, next_steps=next_steps, pending=pending
        )
    except (ControlroomError, OSError) as exc:
        # The run's own outcome is what the caller reports; the log's missing end is found
        # by `controlroom audit verify` and `doctor` (and repaired by the next resume).
        logger.error(
            "Could not record where run %s stopped (%s) in its audit log: %s",
            audit.log.run_id if audit.log is not None else "?",
            status,
            exc,
        )
    finally:
        audit.close()
