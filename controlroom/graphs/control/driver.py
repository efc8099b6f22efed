"""Driving a run's graph: execute until it stops, then record where it stands.

:class:`RunDriver` is the engine behind :class:`~controlroom.graphs.control.runner.Runner`:
it builds the run's context (principal, tools, gate, models, audit), streams the compiled
graph with ``durability="sync"`` until it waits, pauses (a breakpoint, a stop request,
step mode), fails or reaches its end, and settles the run: its audit log first, then the
store, so the store never says "completed" for a run whose log lacks its end, and a run is
completed only when its graph reached END (no next node, no step's writes left to apply).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StateSnapshot

from controlroom.audit.recorder import RunAudit
from controlroom.audit.records import Kind
from controlroom.config import Settings, using_home
from controlroom.errors import ConfigError, ControlroomError
from controlroom.graphs.authoring.workflow import Workflow
from controlroom.graphs.control.run_result import RunResult
from controlroom.graphs.control.run_workflows import RunWorkflows
from controlroom.graphs.control.supervision import (
    Breakpoints,
    RunEvent,
    StopRequests,
    Watchers,
    breakpoint_hit,
    interrupt_before,
)
from controlroom.graphs.runtime.audit_hooks import AuditFactory, record_stop
from controlroom.graphs.runtime.compile import to_state_graph
from controlroom.graphs.runtime.nodes import decision_payload
from controlroom.graphs.runtime.run_state import RunContext, RunState
from controlroom.graphs.storage.records import (
    ApprovalStatus,
    ApproveMode,
    RunRecord,
    RunStatus,
    now,
)
from controlroom.graphs.storage.run_store import Store
from controlroom.identity import Principal
from controlroom.retrieval import Retriever
from controlroom.tools.gate import Gate

CompiledGraph = CompiledStateGraph[RunState, RunContext, RunState, RunState]
MAX_STEPS_PER_CALL = 250  # graph steps one start/resume/approve may take before it fails


def _answered(graph_input: Any) -> list[str]:
    """The approval ids a resume command answers (for the audit's run.resume record)."""
    resume = graph_input.resume if isinstance(graph_input, Command) else None
    if not isinstance(resume, dict):
        return []
    return [aid for answers in resume.values() if isinstance(answers, dict) for aid in answers]


def stopped_at(audit: RunAudit) -> dict[str, Any]:
    """What the store keeps of the stop record ``record_stop`` just wrote and signed: its
    seq, so `audit verify` finds a log cut back to an earlier stop (nothing if unwritten)."""
    return {} if audit.stop_seq is None else {"audit_stop_seq": audit.stop_seq}


def check_text(text: str, what: str) -> None:
    """Text a run stores and records must be encodable (no lone surrogates, which is what
    undecodable bytes become in Python); refused before anything is stored."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(
            f"{what} is not valid UTF-8 text (character {exc.start + 1} is U+"
            f"{ord(text[exc.start]):04X}, an undecodable byte); nothing was stored. Pass "
            "text decoded as UTF-8."
        ) from None


def first_state(text: str) -> RunState:
    """The state a run starts from: the user's input as the first message."""
    return {"input": text, "messages": [HumanMessage(content=text)], "vars": {}, "output": None}


class RunDriver:
    """Executes runs for one runner; everything it uses is handed to it."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        checkpointer: Any,
        audits: AuditFactory,
        gate: Callable[[], Gate],
        workflows: RunWorkflows,
        principal: Callable[[str], Principal],
        get_run: Callable[[str], RunRecord],
        model_getter: Callable[[Workflow], Callable[[str], BaseChatModel]],
        retriever: Callable[[Workflow], Retriever],
        breakpoints: dict[str, Breakpoints],
        stops: StopRequests,
        watchers: Watchers,
    ) -> None:
        self._settings = settings
        self._store = store
        self._checkpointer = checkpointer
        self._audits = audits
        self._gate = gate
        self._workflows = workflows
        self._principal = principal
        self._get_run = get_run
        self._model_getter = model_getter
        self._retriever = retriever
        self._breakpoints = breakpoints
        self._stops = stops
        self._watchers = watchers
        self._graphs: dict[str, CompiledGraph] = {}

    def graph(self, workflow: Workflow) -> CompiledGraph:
        key = workflow.spec_digest  # the graph depends on the spec only, tools come per run
        if key not in self._graphs:
            self._graphs[key] = to_state_graph(workflow.spec).compile(
                checkpointer=self._checkpointer
            )
        return self._graphs[key]

    @staticmethod
    def config(run_id: str) -> Any:
        # LangGraph's default of 25 steps per call stops an agent after ~12 tool rounds; the
        # limit stays as the guard against a model that never stops calling tools
        return {"configurable": {"thread_id": run_id}, "recursion_limit": MAX_STEPS_PER_CALL}

    def result(self, run_id: str, *, pending: bool = True) -> RunResult:
        record = self._get_run(run_id)
        return RunResult(
            run=record,
            pending=self._store.list_approvals(run_id=run_id) if pending else [],
            refused=self._store.list_refusals(run_id) if record.refused_calls else [],
        )

    # supervising -------------------------------------------------------------------
    def continued_audit(self, record: RunRecord) -> RunAudit:
        audit = self._audits.for_run(record.run_id, self._workflows.bound(record.run_id))
        if audit.enabled and not audit.has(Kind.RUN_START):
            self._restart_log(audit, record, self._principal(record.user_id))
        return audit

    def _restart_log(self, audit: RunAudit, record: RunRecord, principal: Principal) -> None:
        """A crash tore the log's first line (run.start) and the next writer cut it off:
        record the start again, from the store, so the log says who, what and with which
        input, and a replay can start from it."""
        fork = None
        if record.parent_run_id is not None:
            fork = {"run_id": record.parent_run_id, "checkpoint_id": record.parent_checkpoint}
        audit.run_started(
            principal=principal,
            model_spec=record.model,
            approve_mode=record.approve_mode,
            input_text=record.input,
            config=self._audits.config(),
            fork=fork,
            recovered=True,
        )

    def drive(
        self,
        run_id: str,
        wf: Workflow,
        principal: Principal,
        graph_input: Any,
        *,
        step: bool,
        fresh: bool = False,
    ) -> RunResult:
        record = self._store.get_run(run_id)
        audit = self._audits.for_run(run_id, wf)
        self._audits.keep_policies(wf.gate or self._gate())  # what a replay decides with
        if audit.enabled and not audit.has(Kind.RUN_START):
            self._restart_log(audit, record, principal)
        if not fresh:  # a new run was inserted as running already
            self._store.update_run(run_id, status=RunStatus.RUNNING, error=None)
            answered = _answered(graph_input)
            audit.run_resumed(step_mode=step, answered=answered)
        ctx = RunContext(
            run_id=run_id,
            principal=principal,
            tools=wf.tools,
            gate=wf.gate or self._gate(),
            get_model=self._model_getter(wf),
            retriever=lambda: self._retriever(wf),
            default_model=record.model,
            approve_mode=record.approve_mode,
            home=self._settings.home,
            store=self._store,
            audit=audit,
        )
        graph = self.graph(wf)
        config = self.config(run_id)
        breaks = self._breakpoints.get(run_id, Breakpoints())
        self._stops.clear(run_id)  # a request made while nothing drove the run is stale
        paused_at: str | None = "step" if step else None
        try:
            with using_home(self._settings.home):
                before = interrupt_before(breaks, wf)
                while True:
                    stopped_by = self._stream(graph, graph_input, ctx, step=step, before=before)
                    if stopped_by is not None:
                        paused_at = f"stopped by {stopped_by}"
                        break
                    if step or not breaks:
                        break
                    snapshot = graph.get_state(config)
                    if snapshot.interrupts or not snapshot.next:
                        break
                    paused_at = breakpoint_hit(breaks, wf, snapshot)
                    if paused_at is not None:
                        break
                    graph_input = None  # paused before a tools step that calls no watched tool
        except ControlroomError as exc:
            return self._fail(run_id, graph, f"{exc.title}: {exc.message}")
        except Exception as exc:
            return self._fail(run_id, graph, f"{type(exc).__name__}: {exc}")
        except BaseException:
            record_stop(audit, "interrupted", output=None, error=None, next_steps=[], pending=[])
            self._store.update_run(run_id, status=RunStatus.INTERRUPTED, **stopped_at(audit))
            raise
        result = self._settle(run_id, graph.get_state(config), audit)
        if result.status is RunStatus.PAUSED:
            result.paused_at = paused_at
        self._watchers.tell(RunEvent(run_id=run_id, kind="stopped", text=result.status.value))
        return result

    def _stream(
        self,
        graph: CompiledGraph,
        graph_input: Any,
        ctx: RunContext,
        *,
        step: bool,
        before: list[str] | str | None,
    ) -> str | None:
        """Execute until the graph stops; returns who asked it to stop, if someone did.

        A stop request is honoured before a node starts: the node in progress finishes and
        its checkpoint is saved, the next one does not begin."""
        run_id = ctx.run_id
        modes: list[Any] = ["tasks", "messages"] if self._watchers.tokens else ["tasks"]
        stream = graph.stream(  # (mode, chunk) pairs, since stream_mode is a list
            graph_input,
            self.config(run_id),
            context=ctx,
            durability="sync",
            interrupt_before=before,
            interrupt_after="*" if step else None,
            stream_mode=modes,
        )
        try:
            for mode, chunk in cast(Iterator[tuple[str, Any]], stream):
                if mode == "tasks" and isinstance(chunk, dict):
                    finished = "result" in chunk or "error" in chunk
                    if not finished:
                        by = self._stops.pending(run_id)
                        if by is not None:
                            self._stops.clear(run_id)
                            return by
                    if self._watchers.any:
                        self._watchers.tell(
                            RunEvent(
                                run_id=run_id,
                                kind="node_finished" if finished else "node_started",
                                node=str(chunk.get("name")),
                                step=chunk.get("step"),
                            )
                        )
                elif mode == "messages":
                    message, meta = chunk
                    text = getattr(message, "text", "")
                    if text and getattr(message, "type", "") in ("ai", "AIMessageChunk"):
                        node = (meta or {}).get("langgraph_node")
                        self._watchers.tell(
                            RunEvent(run_id=run_id, kind="token", node=node, text=text)
                        )
        finally:
            close = getattr(stream, "close", None)
            if close is not None:  # a generator: let LangGraph leave its loop cleanly
                close()
        return None

    def _fail(self, run_id: str, graph: CompiledGraph, error: str) -> RunResult:
        next_steps = list(graph.get_state(self.config(run_id)).next)
        audit = self._audits.for_run(run_id)
        # The log first, then the store: a crash in between leaves a run that is not yet
        # "failed", which the next resume settles (and records) again.
        record_stop(audit, "failed", output=None, error=error, next_steps=next_steps, pending=[])
        self._store.update_run(
            run_id,
            status=RunStatus.FAILED,
            error=error,
            next_steps=next_steps,
            **stopped_at(audit),
        )
        return self.result(run_id, pending=False)

    def settle_after_crash(self, record: RunRecord, snapshot: StateSnapshot) -> RunResult:
        """A resume with nothing left to run: the graph reached its end, and the process
        that drove it may have died before it said so (then the run's end is recorded)."""
        if record.status is RunStatus.COMPLETED or not self._at_end(snapshot):
            return self._settle(record.run_id, snapshot)
        self._reopen(record)
        audit = self.continued_audit(record)
        audit.run_resumed(step_mode=False, answered=[])
        return self._settle(record.run_id, snapshot, audit)

    def settle_waiting(self, record: RunRecord, snapshot: StateSnapshot) -> RunResult:
        """A resume of a run that still waits for a person: nothing runs. A process that
        died after the run began to wait, before it said so, has that recorded now."""
        if record.status is RunStatus.WAITING:
            return self._settle(record.run_id, snapshot)
        self._reopen(record)
        audit = self.continued_audit(record)
        audit.run_resumed(step_mode=False, answered=[])
        return self._settle(record.run_id, snapshot, audit)

    def _reopen(self, record: RunRecord) -> None:
        """Before a settled (completed, failed) run's log is written again, the store stops
        saying so, as ``drive`` does: a store that says settled means a log that ends with
        that signed stop, so records after it were added by someone else."""
        if record.status in (RunStatus.COMPLETED, RunStatus.FAILED):
            self._store.update_run(record.run_id, status=RunStatus.RUNNING, error=None)

    @staticmethod
    def _at_end(snapshot: StateSnapshot) -> bool:
        """Whether the graph reached END: nothing to run, no step's writes left to apply,
        no question waiting. Only then is a run completed."""
        return not (snapshot.interrupts or snapshot.next or snapshot.tasks)

    def _settle(
        self, run_id: str, snapshot: StateSnapshot, audit: RunAudit | None = None
    ) -> RunResult:
        """Record where the run stands: in its audit log (when ``audit`` is given: the
        process stops driving it here), then in the store. In that order, so a crash in
        between leaves the store saying "running" (shown as interrupted), and the next
        resume settles it again: the store never says "completed" for a run whose log
        lacks its end."""
        if snapshot.interrupts:
            status = RunStatus.WAITING
        elif not self._at_end(snapshot):
            # Not at its end: a completed run is one whose graph reached END, never one
            # whose last step's writes wait to be applied.
            status = RunStatus.PAUSED
        else:
            status = RunStatus.COMPLETED
        output = snapshot.values.get("output") if status is RunStatus.COMPLETED else None
        next_steps = list(snapshot.next)
        stop: dict[str, Any] = {}
        if audit is not None:
            pending = [a.approval_id for a in self._store.list_approvals(run_id=run_id)]
            record_stop(
                audit,
                status.value,
                output=output,
                error=None,
                next_steps=next_steps,
                pending=pending,
            )
            stop = stopped_at(audit)
        self._store.update_run(run_id, status=status, output=output, next_steps=next_steps, **stop)
        return self.result(run_id)

    def new_run(
        self,
        wf: Workflow,
        principal: Principal,
        *,
        input: str,
        model: str | None,
        approve: ApproveMode,
        run_id: str,
        status: RunStatus,
    ) -> RunRecord:
        check_text(input, "The run's input")
        model_spec = model or wf.spec.model or self._settings.model
        self._model_getter(wf)(model_spec)  # a missing model fails before the run exists
        audit = self._audits.for_run(run_id, wf)  # a bad audit key fails before the run exists
        stamp = now()
        record = RunRecord(
            run_id=run_id,
            workflow=wf.name,
            workflow_ref=wf.ref,
            workflow_hash=wf.digest,
            workflow_fingerprint=wf.secret_fingerprint(self._store.identity_key()),
            user_id=principal.id,
            input=input,
            model=model_spec,
            approve_mode=approve,
            status=status,
            created_at=stamp,
            updated_at=stamp,
        )
        self._store.insert_run(record)
        audit.run_started(
            principal=principal,
            model_spec=model_spec,
            approve_mode=approve,
            input_text=input,
            config=self._audits.config(),
        )
        if status is RunStatus.QUEUED:
            audit.close()  # whichever process starts it reopens the log
        return record

    def carry_on(
        self, record: RunRecord, wf: Workflow, principal: Principal, *, step: bool
    ) -> RunResult:
        """Continue a run (its lock held) from where its checkpoints say it stands: start a
        queued run, answer decided approvals, run the steps left, or settle a run whose
        graph has nothing left to do (a crash may have kept it from saying so)."""
        graph = self.graph(wf)
        snapshot = graph.get_state(self.config(record.run_id))
        if snapshot.metadata is None:  # created (queued) but never executed: start it
            self._store.update_run(record.run_id, status=RunStatus.RUNNING)
            first = first_state(record.input)
            return self.drive(record.run_id, wf, principal, first, step=step, fresh=True)
        if snapshot.interrupts:
            resume: dict[str, Any] = {}
            for intr in snapshot.interrupts:
                decided: dict[str, Any] = {}
                for approval_id in intr.value["approvals"]:
                    item = self._store.get_approval(record.run_id, approval_id)
                    if item.status is ApprovalStatus.PENDING:
                        return self.settle_waiting(record, snapshot)
                    decided[approval_id] = decision_payload(item)
                resume[intr.id] = decided
            return self.drive(record.run_id, wf, principal, Command(resume=resume), step=step)
        if snapshot.next or snapshot.tasks:
            # Steps are left to run; or a step finished and saved its writes but the
            # process died before LangGraph saved the next checkpoint (next is empty
            # then, the finished task still holds its writes): LangGraph applies the
            # saved writes and goes on from there.
            return self.drive(record.run_id, wf, principal, None, step=step)
        return self.settle_after_crash(record, snapshot)
