"""What a run records: one method per event, called by the runner and the graph nodes.

:class:`RunAudit` turns runtime objects (messages, gate decisions, tool results) into
records with OpenTelemetry GenAI field names, passes every value through the run's
:class:`~controlroom.audit.redact.Redactor` (secrets out, redaction mode applied) and
appends them to the run's :class:`~controlroom.audit.log.AuditLog`. A disabled instance
(``RunAudit.disabled()``) records nothing, so callers never test for ``None``.

Write-ahead: :meth:`tool_decision` for a call that will execute, :meth:`approval_requested`
and :meth:`approval_decided` are synced to disk before they return; the tools node calls
them before the tool function runs. :meth:`approval_decided` is recorded once per approval
id: the process that decides writes it, and the tools node writes it (marked
``recovered``) only if a crash lost it between the decision and its record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage

from controlroom.audit.canonical import jsonable
from controlroom.audit.log import AuditLog
from controlroom.audit.messages import (
    finish_reason,
    input_digest,
    output_digest,
    output_parts,
)
from controlroom.audit.records import (
    APPROVAL_ID,
    CALL_ID,
    DECISION,
    STATUS,
    TOOL_NAME,
    Kind,
)
from controlroom.audit.redact import Redactor, Verbatim
from controlroom.audit.tool_records import (
    ToolRecords,
    args_diff,
    compact,
    content_text,
    policy_set_hash,
)
from controlroom.identity import Principal

__all__ = [
    "RunAudit",
    "ToolRecords",
    "WorkflowInfo",
    "args_diff",
    "content_text",
    "policy_set_hash",
]

_PARAMS = (
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "stop",
)
# The identifier fields of a record: names, ids, hashes, enums and timestamps that the
# workflow, the runtime or the gate chose. A secret lives in none of them, and the audit is
# read by them, so the final scrub (known secret values out of every other string value)
# keeps them verbatim; a field that is not listed here is scrubbed. The free text around
# them (prompts, model output, arguments' values, tool results, reasons, error messages)
# and configuration strings that could embed a credential (model specs, data source
# locations) are scrubbed.
_VERBATIM: Verbatim = {
    "kind": True,
    "step": True,
    "node": True,
    "gen_ai.operation.name": True,
    "gen_ai.provider.name": True,
    "user.id": True,
    "controlroom.principal": {"id": True, "roles": True},
    "controlroom.workflow": {"name": True, "version": True, "digest": True, "ref": True},
    "controlroom.approve_mode": True,
    "controlroom.input.sha256": True,
    "controlroom.output.sha256": True,
    "controlroom.audit.key_id": True,
    "controlroom.fork": True,  # origin run, checkpoint, step, who forked, edited state keys
    "controlroom.start.recovered": True,
    "controlroom.approval.answered": True,
    STATUS: True,
    "controlroom.next_steps": True,
    "controlroom.approval.pending": True,
    "error.type": True,
    "controlroom.prompt.id": True,
    "controlroom.prompt.version": True,
    "controlroom.prompt.sha256": True,
    "gen_ai.input.messages": {"role": True, "parts": {"type": True}},
    "gen_ai.system_instructions": {"type": True},
    "controlroom.tools.offered": True,
    "gen_ai.output.messages": {
        "role": True,
        "finish_reason": True,
        "parts": {"type": True, "id": True, "name": True},
    },
    "gen_ai.response.id": True,
    "gen_ai.response.finish_reasons": True,
    "controlroom.retrieval.chunks": {"id": True, "labels": True},
    "controlroom.retrieval.access": True,  # user, labels, policy hash, counts
    "controlroom.grounding.cited": True,
    APPROVAL_ID: True,
    "controlroom.approval.kind": True,
    TOOL_NAME: True,
    CALL_ID: True,
    "controlroom.tool.args_sha256": True,
    "controlroom.tool.effect": True,
    "controlroom.gate.verdict": True,
    "controlroom.policy.ids": True,
    "controlroom.policy.set_hash": True,
    "controlroom.approval.approvers": True,
    "controlroom.approval.decision": True,
    "controlroom.approver.id": True,
    "controlroom.approver": {"id": True, "roles": True},
    "controlroom.gate.facts": {"resource": {"type": True, "id": True}},
    "controlroom.approval.decided_at": True,
    "controlroom.approval.args_diff": {"op": True, "path": True},
    "controlroom.approval.args_sha256": True,
    "controlroom.approval.source": True,
    DECISION: True,
    "controlroom.decision.status": True,
    "controlroom.decision.from_ledger": True,
    "controlroom.tool.status": True,
    "controlroom.tool.result_format": True,
    "controlroom.tool.result_sha256": True,
}
_STOP_KINDS = {"waiting": Kind.RUN_WAIT, "paused": Kind.RUN_PAUSE, "interrupted": Kind.RUN_PAUSE}


@dataclass(frozen=True)
class WorkflowInfo:
    name: str
    version: str
    digest: str
    ref: str = ""
    # step id -> (prompt id, version, sha256) of the library prompt the step uses
    prompts: dict[str, tuple[str, str, str]] = field(default_factory=dict)


def _prompt_fields(wf: WorkflowInfo | None, node: str) -> dict[str, Any]:
    """Which prompt a model call used: a library prompt's id, version and sha256, else the
    workflow's step (``<workflow>/<node>``) and the workflow's version."""
    library = wf.prompts.get(node) if wf else None
    if library is not None:
        prompt_id, version, digest = library
        return {
            "controlroom.prompt.id": prompt_id,
            "controlroom.prompt.version": version,
            "controlroom.prompt.sha256": digest,
        }
    return {
        "controlroom.prompt.id": f"{wf.name}/{node}" if wf else node,
        "controlroom.prompt.version": wf.version if wf else None,
    }


def _split_spec(spec: str) -> tuple[str, str]:
    provider, _, rest = spec.partition(":")
    return (provider, rest) if rest else ("unknown", spec)


class RunAudit(ToolRecords):
    """Records the events of one run into its audit log."""

    def __init__(
        self,
        log: AuditLog | None,
        redactor: Redactor | None = None,
        workflow: WorkflowInfo | None = None,
    ) -> None:
        self.log = log
        self.redactor = redactor or Redactor()
        self.workflow = workflow
        # the seq of the stop record the last run_stopped wrote and signed (None: it did not,
        # or is not done): the run store keeps it, so a log cut back to an earlier stop shows
        self.stop_seq: int | None = None

    @classmethod
    def disabled(cls) -> RunAudit:
        return cls(None)

    @property
    def enabled(self) -> bool:
        return self.log is not None

    def _append(
        self, fields: dict[str, Any], *, durable: bool = False, once: bool = False
    ) -> dict[str, Any] | None:
        if self.log is None:
            return None
        record = self.redactor.scrub_strings(jsonable(compact(fields)), _VERBATIM)
        return self.log.append(record, durable=durable, once=once)

    def has(self, kind: str) -> bool:
        """Whether the run's log holds a record of this kind (False when auditing is off)."""
        return self.log is not None and self.log.has(kind)

    def checkpoint(self, reason: str) -> None:
        if self.log is not None:
            self.log.checkpoint(reason)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()

    # run lifecycle -----------------------------------------------------------------
    def run_started(
        self,
        *,
        principal: Principal,
        model_spec: str,
        approve_mode: str,
        input_text: str,
        config: dict[str, Any],
        fork: dict[str, Any] | None = None,
        recovered: bool = False,
    ) -> None:
        """Record the start (for a fork: its origin run and checkpoint, who forked it, and
        which state keys were edited). ``recovered``: the first run.start was lost to a
        crash in the middle of writing it (a torn first line, cut off by ``log.repair``)
        and is recorded again, from the run store, by the process that continues the run."""
        wf = self.workflow
        provider, model = _split_spec(model_spec)
        key_id = self.log.signer.key_id if self.log and self.log.signer else None
        self._append(
            {
                "kind": Kind.RUN_START,
                "gen_ai.operation.name": "invoke_workflow",
                "user.id": principal.id,
                "controlroom.principal": self.redactor.hide_secret_fields(
                    principal.model_dump(mode="json")
                ),
                "controlroom.workflow": (
                    {"name": wf.name, "version": wf.version, "digest": wf.digest, "ref": wf.ref}
                    if wf
                    else None
                ),
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
                "controlroom.model.spec": model_spec,
                "controlroom.approve_mode": approve_mode,
                "gen_ai.input.messages": [
                    {
                        "role": "user",
                        "parts": [{"type": "text", "content": self.redactor.text(input_text)}],
                    }
                ],
                "controlroom.input.sha256": self.redactor.digest(input_text),
                "controlroom.config": self.redactor.scrub(config),
                "controlroom.audit.key_id": key_id,
                "controlroom.fork": fork,
                "controlroom.start.recovered": recovered or None,
            },
            durable=True,
        )

    def run_resumed(self, *, step_mode: bool, answered: Sequence[str] = ()) -> None:
        self._append(
            {
                "kind": Kind.RUN_RESUME,
                "controlroom.step_mode": step_mode,
                "controlroom.approval.answered": list(answered) or None,
            }
        )

    def run_stopped(
        self,
        status: str,
        *,
        output: str | None = None,
        error: str | None = None,
        next_steps: Sequence[str] = (),
        pending: Sequence[str] = (),
    ) -> None:
        """Record where the run stopped, and sign the log up to here; then
        :attr:`stop_seq` is the seq of the stop record."""
        self.stop_seq = None
        if self.log is None:
            return
        if error:
            self.error(error, node=",".join(next_steps) or None)
        record = self._append(
            {
                "kind": _STOP_KINDS.get(status, Kind.RUN_END),
                STATUS: status,
                "gen_ai.output.messages": (
                    [
                        {
                            "role": "assistant",
                            "parts": [{"type": "text", "content": self.redactor.text(output)}],
                        }
                    ]
                    if output is not None
                    else None
                ),
                "controlroom.output.sha256": (
                    self.redactor.digest(output) if output is not None else None
                ),
                "controlroom.error.message": self.redactor.scrub_text(error) if error else None,
                "controlroom.next_steps": list(next_steps) or None,
                "controlroom.approval.pending": list(pending) or None,
            }
        )
        self.log.checkpoint(status)
        self.stop_seq = int(record["seq"]) if record is not None else None

    def error(
        self,
        message: str,
        *,
        error_type: str | None = None,
        step: int | None = None,
        node: str | None = None,
    ) -> None:
        self._append(
            {
                "kind": Kind.ERROR,
                "step": step,
                "node": node,
                "error.type": error_type,
                "controlroom.error.message": self.redactor.scrub_text(message),
            }
        )

    # steps -------------------------------------------------------------------------
    def model_call(
        self,
        *,
        step: int,
        node: str,
        spec: str,
        model: BaseChatModel,
        messages: Sequence[BaseMessage],
        tools: Sequence[str],
        reply: AIMessage,
        latency_s: float,
        call: int = 1,
    ) -> None:
        """One model call; ``call`` numbers the calls one execution of a node makes (a
        structured reply retried after an invalid one), so replay tells a second call from a
        re-execution of the first after a crash."""
        if self.log is None:
            return
        r = self.redactor
        provider, model_name = _split_spec(spec)
        wf = self.workflow
        system = messages[0].text if messages and isinstance(messages[0], SystemMessage) else None
        usage: dict[str, Any] = dict(reply.usage_metadata or {})
        params = {
            f"gen_ai.request.{name}": value
            for name in _PARAMS
            if isinstance(value := getattr(model, name, None), int | float | str | list)
            and not isinstance(value, bool)
        }
        self._append(
            {
                "kind": Kind.MODEL_CALL,
                "step": step,
                "node": node,
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model_name,
                "controlroom.model.spec": spec,
                "controlroom.model.call": call if call > 1 else None,
                **_prompt_fields(wf, node),
                "gen_ai.system_instructions": (
                    [{"type": "text", "content": r.text(system)}] if system is not None else None
                ),
                "controlroom.input.messages": len(messages),
                "controlroom.input.sha256": input_digest(messages, tools, r),
                "controlroom.tools.offered": list(tools),
                **params,
                "gen_ai.output.messages": [
                    {
                        "role": "assistant",
                        "parts": output_parts(reply, r),
                        "finish_reason": finish_reason(reply),
                    }
                ],
                "controlroom.output.content_blocks": (
                    r.data(reply.content) if isinstance(reply.content, list) else None
                ),
                "controlroom.output.sha256": output_digest(reply, r),
                "gen_ai.response.id": reply.id,
                "gen_ai.response.model": reply.response_metadata.get("model_name"),
                "gen_ai.response.finish_reasons": [fr] if (fr := finish_reason(reply)) else None,
                "gen_ai.usage.input_tokens": usage.get("input_tokens"),
                "gen_ai.usage.output_tokens": usage.get("output_tokens"),
                "controlroom.latency_ms": round(latency_s * 1000, 3),
            }
        )

    def retrieval(
        self,
        *,
        step: int,
        node: str,
        query: str,
        chunks: Sequence[dict[str, Any]],
        source: str | None = None,
        access: dict[str, Any] | None = None,
    ) -> None:
        """Chunks retrieved for the model: ids, labels and scores (texts are not copied),
        and the access filter they passed (readable labels, policy hash, re-check drops)."""
        self._append(
            {
                "kind": Kind.RETRIEVAL,
                "step": step,
                "node": node,
                "gen_ai.operation.name": "retrieval",
                "gen_ai.data_source.id": source,
                "controlroom.retrieval.query": self.redactor.text(query),
                "controlroom.retrieval.chunks": [
                    compact({"id": c.get("id"), "labels": c.get("labels"), "score": c.get("score")})
                    for c in chunks
                ],
                "controlroom.retrieval.access": access,
            }
        )

    def grounding(
        self,
        *,
        step: int,
        node: str,
        attempt: int,
        ok: bool,
        cited: Sequence[str],
        problem: str | None = None,
        outcome: str | None = None,
    ) -> None:
        """One citation check of a grounded answer; ``outcome`` on the last one
        (``answered`` or ``abstained: why``)."""
        self._append(
            {
                "kind": Kind.GROUNDING,
                "step": step,
                "node": node,
                "controlroom.grounding.attempt": attempt,
                "controlroom.grounding.ok": ok,
                "controlroom.grounding.cited": list(cited),
                "controlroom.grounding.problem": problem,
                "controlroom.grounding.outcome": outcome,
            }
        )
