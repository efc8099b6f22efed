"""Start, step, continue and resume runs; decide approvals; from any process.

The runner keeps graph state in LangGraph's SQLite checkpointer (``durability="sync"``,
strict msgpack) and run metadata, approvals and the effect ledger in the project store.
Whichever process holds a run's lock executes it; everything it needs is rebuilt from the
project folder, so a run started by the CLI can be approved and finished by the SDK, and
the reverse.

Every run also gets a signed, hash-chained audit log (:mod:`controlroom.audit`): the runner
records the start, each decision made here, and where the run stopped, signing the log
whenever this process stops driving the run; the nodes record the steps in between.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StateSnapshot
from pydantic import BaseModel, Field

from controlroom.agents.models import resolve_model
from controlroom.audit.recorder import RunAudit
from controlroom.audit.replay import ReplayReport
from controlroom.config import Settings, using_home
from controlroom.errors import (
    ApprovalDecidedError,
    ApprovalError,
    ControlroomError,
    RunStateError,
    ToolError,
    UnknownToolError,
)
from controlroom.graphs.audit_hooks import AuditFactory, record_decision, record_stop
from controlroom.graphs.compile import to_state_graph
from controlroom.graphs.locks import is_locked, run_lock
from controlroom.graphs.nodes import decision_payload
from controlroom.graphs.state import ApproveMode, RunContext, RunState
from controlroom.graphs.store import (
    Approval,
    ApprovalStatus,
    RunRecord,
    RunStatus,
    Store,
    now,
)
from controlroom.graphs.workflow import PYTHON_OBJECT, Workflow, load_workflow
from controlroom.identity import Directory, Principal
from controlroom.tools.gate import Decision, DeclaredGate, Gate, Verdict
from controlroom.tools.policy import may_approve, project_gate

CompiledGraph = CompiledStateGraph[RunState, RunContext, RunState, RunState]


class RunResult(BaseModel):
    """Where a run stands after a call: its record, what waits, the final output."""

    run: RunRecord
    pending: list[Approval] = Field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def status(self) -> RunStatus:
        return self.run.status

    @property
    def output(self) -> str | None:
        return self.run.output


def _answered(graph_input: Any) -> list[str]:
    """The approval ids a resume command answers (for the audit's run.resume record)."""
    resume = graph_input.resume if isinstance(graph_input, Command) else None
    if not isinstance(resume, dict):
        return []
    return [aid for answers in resume.values() if isinstance(answers, dict) for aid in answers]


def strict_serializer() -> JsonPlusSerializer:
    """Checkpoint serializer that only revives LangGraph's allow-listed safe types."""
    return JsonPlusSerializer(allowed_msgpack_modules=None)


class Runner:
    """The SDK entry point for executing and supervising runs in one project folder."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        home: Path | str | None = None,
        directory: Directory | None = None,
        gate: Gate | None = None,
        models: dict[str, BaseChatModel] | None = None,
    ) -> None:
        settings = settings or Settings()
        if home is not None:
            settings = settings.model_copy(update={"home": Path(home)})
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.store = Store(settings.store_path)
        self._conn = sqlite3.connect(settings.checkpoints_path, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=10000")
        self.checkpointer = SqliteSaver(self._conn, serde=strict_serializer())
        self.checkpointer.setup()
        self._directory = directory
        # The gate of workflows that name no policies: the caller's, else the project's
        # default policies (<home>/policies), else the tools' declared behaviour.
        self.gate: Gate = gate or project_gate(settings.home) or DeclaredGate()
        self._models: dict[str, BaseChatModel] = dict(models or {})
        self._graphs: dict[str, CompiledGraph] = {}
        self._known: dict[str, Workflow] = {}
        self._audits = AuditFactory(settings)

    def close(self) -> None:
        self._audits.close()
        self.store.close()
        self._conn.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # set-up ------------------------------------------------------------------------
    @property
    def directory(self) -> Directory:
        if self._directory is None:
            self._directory = Directory.load(self.settings.directory_path)
        return self._directory

    def principal(self, user_id: str) -> Principal:
        return self.directory.get_principal(user_id)

    def _model_getter(self, workflow: Workflow) -> Any:
        def get(spec: str) -> BaseChatModel:
            if spec not in self._models:
                self._models[spec] = resolve_model(spec, base_dir=workflow.base_dir)
            return self._models[spec]

        return get

    def _graph(self, workflow: Workflow) -> CompiledGraph:
        key = workflow.digest
        if key not in self._graphs:
            self._graphs[key] = to_state_graph(workflow.spec).compile(
                checkpointer=self.checkpointer
            )
        return self._graphs[key]

    @staticmethod
    def _config(run_id: str) -> Any:
        return {"configurable": {"thread_id": run_id}}

    def register(self, workflow: Workflow) -> Workflow:
        """Make a Python-built workflow known, so runs of it can be resumed by id here."""
        self._known[workflow.digest] = workflow
        return workflow

    # reading -----------------------------------------------------------------------
    def _live(self, record: RunRecord) -> RunRecord:
        if record.status is RunStatus.RUNNING and not is_locked(
            self.settings.locks_path, record.run_id
        ):
            return record.model_copy(update={"status": RunStatus.INTERRUPTED})
        return record

    def get_run(self, run_id: str) -> RunRecord:
        return self._live(self.store.get_run(run_id))

    def list_runs(self, status: RunStatus | None = None) -> list[RunRecord]:
        records = [self._live(r) for r in self.store.list_runs()]
        return [r for r in records if status is None or r.status is status]

    def approvals(self, run_id: str | None = None) -> list[Approval]:
        """Pending approval items, oldest first (of one run, or of all runs)."""
        if run_id is not None:
            run_id = self.store.get_run(run_id).run_id
        return self.store.list_approvals(run_id=run_id)

    def state(self, run_id: str) -> RunState:
        """The run's latest checkpointed state (no workflow needed to read it)."""
        record = self.store.get_run(run_id)
        saved = self.checkpointer.get_tuple(self._config(record.run_id))
        values = saved.checkpoint["channel_values"] if saved is not None else {}
        state: RunState = {}
        for key in ("input", "messages", "vars", "output", "reasoning"):
            if key in values:
                state[key] = values[key]
        return state

    def messages(self, run_id: str) -> list[AnyMessage]:
        return list(self.state(run_id).get("messages") or [])

    def audit(self, run_id: str) -> RunAudit:
        """The run's audit recorder (``RunAudit.disabled()`` when auditing is off)."""
        return self._audits.for_run(self.store.get_run(run_id).run_id)

    def replay(
        self,
        run_id: str,
        *,
        workflow: str | Path | Workflow | None = None,
        unverified: bool = False,
    ) -> ReplayReport:
        """Re-execute a recorded run from its audit log, with no model and no tool effects,
        and compare every decision and tool call with the record (see
        :func:`controlroom.graphs.replay.replay_run`)."""
        from controlroom.graphs.replay import replay_run

        record = self.store.get_run(run_id)
        known = self._known.get(record.workflow_hash)
        return replay_run(self, record.run_id, workflow=workflow or known, unverified=unverified)

    # executing ---------------------------------------------------------------------
    def start(
        self,
        workflow: str | Path | Workflow,
        *,
        user: str,
        input: str,
        model: str | None = None,
        approve: ApproveMode = "ask",
        step: bool = False,
    ) -> RunResult:
        """Start a run for ``user`` (a directory id, chosen by the caller, never the model)."""
        wf = self.register(load_workflow(workflow))
        principal = self.principal(user)
        model_spec = model or wf.spec.model or self.settings.model
        self._model_getter(wf)(model_spec)  # a missing model fails before the run exists
        run_id = "r" + uuid.uuid4().hex[:11]
        audit = self._audits.for_run(run_id, wf)  # a bad audit key fails before the run exists
        stamp = now()
        self.store.insert_run(
            RunRecord(
                run_id=run_id,
                workflow=wf.name,
                workflow_ref=wf.ref,
                workflow_hash=wf.digest,
                user_id=principal.id,
                input=input,
                model=model_spec,
                approve_mode=approve,
                status=RunStatus.RUNNING,
                created_at=stamp,
                updated_at=stamp,
            )
        )
        audit.run_started(
            principal=principal,
            model_spec=model_spec,
            approve_mode=approve,
            input_text=input,
            config=self._audits.config(),
        )
        first: RunState = {
            "input": input,
            "messages": [HumanMessage(content=input)],
            "vars": {},
            "output": None,
        }
        with run_lock(self.settings.locks_path, run_id):
            return self._drive(run_id, wf, principal, first, step=step, fresh=True)

    def resume(
        self,
        run_id: str,
        *,
        workflow: str | Path | Workflow | None = None,
        step: bool = False,
        allow_changed: bool = False,
    ) -> RunResult:
        """Continue a run from its last checkpoint: after approvals, a pause, a crash."""
        record = self.store.get_run(run_id)
        wf = self._workflow_for(record, workflow, allow_changed=allow_changed)
        principal = self.principal(record.user_id)
        with run_lock(self.settings.locks_path, record.run_id):
            graph = self._graph(wf)
            snapshot = graph.get_state(self._config(record.run_id))
            if snapshot.interrupts:
                resume: dict[str, Any] = {}
                for intr in snapshot.interrupts:
                    decided: dict[str, Any] = {}
                    for approval_id in intr.value["approvals"]:
                        item = self.store.get_approval(record.run_id, approval_id)
                        if item.status is ApprovalStatus.PENDING:
                            return self._settle(record.run_id, snapshot)
                        decided[approval_id] = decision_payload(item)
                    resume[intr.id] = decided
                return self._drive(record.run_id, wf, principal, Command(resume=resume), step=step)
            if snapshot.next:
                return self._drive(record.run_id, wf, principal, None, step=step)
            return self._settle(record.run_id, snapshot)

    def step(self, run_id: str, *, workflow: str | Path | Workflow | None = None) -> RunResult:
        """Run exactly one step of a run and pause."""
        return self.resume(run_id, workflow=workflow, step=True)

    def approve(
        self,
        run_id: str,
        approval_id: str,
        *,
        by: str,
        args: dict[str, Any] | None = None,
        reason: str | None = None,
        resume: bool = True,
    ) -> RunResult:
        """Approve one pending item, optionally with edited arguments (validated, re-gated).

        When it was the run's last pending item and ``resume`` is true, the run continues
        in this process.
        """
        record = self.store.get_run(run_id)
        item = self.store.get_approval(record.run_id, approval_id)
        approver = self.principal(by)
        self._ensure_pending(item)
        requester = self.principal(record.user_id)
        needs = Decision(
            verdict=Verdict.APPROVE,
            reason=item.reason,
            policies=tuple(item.policies),
            approvers=tuple(item.approvers),
        )
        if args is not None and item.kind == "tool_call":
            wf = self._workflow_for(record, None, allow_changed=False)
            tool = wf.tools.get(item.tool or "")
            if tool is None:
                raise UnknownToolError(f"Run {record.run_id} has no tool '{item.tool}'.")
            checked = tool.validate_args(args)
            args = checked.model_dump(mode="json")
            gate = wf.gate or self.gate
            with using_home(self.settings.home):
                verdict = gate.decide(requester, tool, args)
            if verdict.verdict is Verdict.DENY:
                raise ToolError(
                    f"The edited arguments for {tool.name} are denied by policy "
                    f"({verdict.reason}); nothing was recorded. Edit them again or reject."
                )
            if verdict.verdict is Verdict.APPROVE and verdict.approvers:
                needs = verdict  # edits may call for a more senior approver
        self._ensure_may_decide(needs, approver, requester)
        decided = self.store.decide(
            record.run_id,
            approval_id,
            approved=True,
            by=approver.id,
            edited_args=args,
            reason=reason,
        )
        self._record_decision(record, decided)
        return self._after_decision(record.run_id, resume)

    def reject(
        self, run_id: str, approval_id: str, *, by: str, reason: str, resume: bool = True
    ) -> RunResult:
        """Reject one pending item; the model is told the approver's reason."""
        if not reason.strip():
            raise ToolError("A rejection needs a reason: the agent and the audit are told it.")
        record = self.store.get_run(run_id)
        item = self.store.get_approval(record.run_id, approval_id)
        approver = self.principal(by)
        self._ensure_pending(item)
        needs = Decision(
            verdict=Verdict.APPROVE,
            reason=item.reason,
            policies=tuple(item.policies),
            approvers=tuple(item.approvers),
        )
        self._ensure_may_decide(needs, approver, self.principal(record.user_id))
        decided = self.store.decide(
            record.run_id, approval_id, approved=False, by=approver.id, reason=reason
        )
        self._record_decision(record, decided)
        return self._after_decision(record.run_id, resume)

    # internals ---------------------------------------------------------------------
    @staticmethod
    def _ensure_may_decide(needs: Decision, approver: Principal, requester: Principal) -> None:
        """Approval rules that name approver roles bind approvals and rejections alike."""
        problem = may_approve(needs, approver, requester)
        if problem is not None:
            raise ApprovalError(
                f"{problem}. Nothing was recorded; ask someone with that role to decide.",
                title="Not allowed to decide",
            )

    @staticmethod
    def _ensure_pending(item: Approval) -> None:
        if item.status is not ApprovalStatus.PENDING:
            raise ApprovalDecidedError(
                f"Approval {item.approval_id} of run {item.run_id} was already "
                f"{item.status.value} by {item.decided_by} at {item.decided_at}."
            )

    def _record_decision(self, record: RunRecord, item: Approval) -> None:
        """Record a person's decision (synced), and sign: this process may stop here."""
        try:  # the workflow's tools name secrets to keep out of the record
            wf: Workflow | None = self._workflow_for(record, None, allow_changed=True)
        except ControlroomError:
            wf = None
        audit = self._audits.for_run(item.run_id, wf)
        record_decision(audit, item, source="decision")
        audit.checkpoint("decision")
        audit.close()

    def _after_decision(self, run_id: str, resume: bool) -> RunResult:
        if resume and not self.store.list_approvals(run_id=run_id):
            return self.resume(run_id)
        return RunResult(run=self.get_run(run_id), pending=self.store.list_approvals(run_id=run_id))

    def _workflow_for(
        self, record: RunRecord, workflow: str | Path | Workflow | None, *, allow_changed: bool
    ) -> Workflow:
        if workflow is None:
            if record.workflow_ref == PYTHON_OBJECT:
                if record.workflow_hash in self._known:
                    return self._known[record.workflow_hash]
                raise RunStateError(
                    f"Run {record.run_id} was started from a Workflow object, not a file or "
                    "module reference, so this process cannot reload it. Call "
                    "runner.register(workflow) (or pass workflow=...) first, or define the "
                    "workflow in a file or module."
                )
            workflow = record.workflow_ref
        wf = self.register(load_workflow(workflow))
        if wf.digest != record.workflow_hash and not allow_changed:
            raise RunStateError(
                f"The workflow '{wf.name}' changed since run {record.run_id} started "
                f"({record.workflow_hash[:19]}… then, {wf.digest[:19]}… now). Continuing "
                "could take different decisions; pass --allow-changed (allow_changed=True) "
                "if that is intended."
            )
        return wf

    def _drive(
        self,
        run_id: str,
        wf: Workflow,
        principal: Principal,
        graph_input: Any,
        *,
        step: bool,
        fresh: bool = False,
    ) -> RunResult:
        record = self.store.get_run(run_id)
        audit = self._audits.for_run(run_id, wf)
        if not fresh:  # a new run was inserted as running already
            self.store.update_run(run_id, status=RunStatus.RUNNING, error=None)
            answered = _answered(graph_input)
            audit.run_resumed(step_mode=step, answered=answered)
        ctx = RunContext(
            run_id=run_id,
            principal=principal,
            tools=wf.tools,
            gate=wf.gate or self.gate,
            get_model=self._model_getter(wf),
            default_model=record.model,
            approve_mode=record.approve_mode,  # type: ignore[arg-type]
            home=self.settings.home,
            store=self.store,
            audit=audit,
        )
        graph = self._graph(wf)
        config = self._config(run_id)
        try:
            with using_home(self.settings.home):
                graph.invoke(
                    graph_input,
                    config,
                    context=ctx,
                    durability="sync",
                    interrupt_after="*" if step else None,
                )
        except ControlroomError as exc:
            return self._fail(run_id, graph, f"{exc.title}: {exc.message}")
        except Exception as exc:
            return self._fail(run_id, graph, f"{type(exc).__name__}: {exc}")
        except BaseException:
            self.store.update_run(run_id, status=RunStatus.INTERRUPTED)
            record_stop(audit, "interrupted", output=None, error=None, next_steps=[], pending=[])
            raise
        return self._stopped(audit, self._settle(run_id, graph.get_state(config)))

    @staticmethod
    def _stopped(audit: RunAudit, result: RunResult) -> RunResult:
        run = result.run
        record_stop(
            audit,
            run.status.value,
            output=run.output,
            error=run.error,
            next_steps=run.next_steps,
            pending=[a.approval_id for a in result.pending],
        )
        return result

    def _fail(self, run_id: str, graph: CompiledGraph, error: str) -> RunResult:
        snapshot = graph.get_state(self._config(run_id))
        self.store.update_run(
            run_id, status=RunStatus.FAILED, error=error, next_steps=list(snapshot.next)
        )
        audit = self._audits.for_run(run_id)
        return self._stopped(audit, RunResult(run=self.get_run(run_id), pending=[]))

    def _settle(self, run_id: str, snapshot: StateSnapshot) -> RunResult:
        if snapshot.interrupts:
            status = RunStatus.WAITING
        elif snapshot.next:
            status = RunStatus.PAUSED
        else:
            status = RunStatus.COMPLETED
        output = snapshot.values.get("output") if status is RunStatus.COMPLETED else None
        self.store.update_run(run_id, status=status, output=output, next_steps=list(snapshot.next))
        return RunResult(run=self.get_run(run_id), pending=self.store.list_approvals(run_id=run_id))
