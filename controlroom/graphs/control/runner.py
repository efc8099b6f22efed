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

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StateSnapshot

from controlroom.agents.models import resolve_model
from controlroom.audit.recorder import RunAudit
from controlroom.audit.records import Kind
from controlroom.audit.replay import ReplayReport
from controlroom.config import Settings, ensure_home, using_home
from controlroom.errors import (
    ConfigError,
    ControlroomError,
    RunBusyError,
    RunStateError,
    ToolError,
    UnknownToolError,
)
from controlroom.graphs.authoring.workflow import PYTHON_OBJECT, Workflow, load_workflow
from controlroom.graphs.control.approval_checks import ensure_may_decide, ensure_pending
from controlroom.graphs.control.replay import ReplaySource, replay_run
from controlroom.graphs.control.run_result import RunResult
from controlroom.graphs.control.supervision import (
    Breakpoints,
    CheckpointInfo,
    RunEvent,
    StateEdits,
    StopRequests,
    Watcher,
    breakpoint_hit,
    interrupt_before,
)
from controlroom.graphs.control.time_travel import TimeTravel
from controlroom.graphs.runtime.audit_hooks import AuditFactory, record_decision, record_stop
from controlroom.graphs.runtime.compile import to_state_graph
from controlroom.graphs.runtime.nodes import decision_payload
from controlroom.graphs.runtime.run_state import ApproveMode, RunContext, RunState
from controlroom.graphs.storage.backends import open_backend
from controlroom.graphs.storage.run_store import (
    Approval,
    ApprovalStatus,
    Refusal,
    RunRecord,
    RunStatus,
    Store,
    now,
)
from controlroom.identity import Directory, Principal
from controlroom.retrieval import DocumentStore, Retriever, document_policies, open_store
from controlroom.tools.gate import Decision, DeclaredGate, Gate, Verdict, deciding
from controlroom.tools.policy import PolicyGate, project_gate

CompiledGraph = CompiledStateGraph[RunState, RunContext, RunState, RunState]
MAX_STEPS_PER_CALL = 250  # graph steps one start/resume/approve may take before it fails


def _answered(graph_input: Any) -> list[str]:
    """The approval ids a resume command answers (for the audit's run.resume record)."""
    resume = graph_input.resume if isinstance(graph_input, Command) else None
    if not isinstance(resume, dict):
        return []
    return [aid for answers in resume.values() if isinstance(answers, dict) for aid in answers]


def _check_text(text: str, what: str) -> None:
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


def _call_of(item: Approval) -> tuple[int, str]:
    """The (step, call id) of a tool call's approval item (its id is ``a<step>-<n>``)."""
    step = item.approval_id[1:].split("-", 1)[0]
    return (int(step) if step.isdigit() else -1), item.call_id or ""


def _first_state(text: str) -> RunState:
    """The state a run starts from: the user's input as the first message."""
    return {"input": text, "messages": [HumanMessage(content=text)], "vars": {}, "output": None}


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
        documents: DocumentStore | None = None,
    ) -> None:
        settings = settings or Settings()
        if home is not None:
            settings = settings.model_copy(update={"home": Path(home)})
        self.settings = settings
        ensure_home(settings.home)  # 0700; an existing folder others can reach is warned of
        # Store, checkpointer and run locks: SQLite files in the project folder, or
        # PostgreSQL when CONTROLROOM_DATABASE_URL is set (controlroom.graphs.storage.backend).
        self.backend = open_backend(settings)
        self.store: Store = self.backend.store
        self.checkpointer: Any = self.backend.checkpointer
        self._directory = directory
        # The gate of workflows that name no policies: the caller's, else the project's
        # default policies (<home>/policies), else the tools' declared behaviour.
        self.gate: Gate = gate or project_gate(settings.home) or DeclaredGate()
        self._models: dict[str, BaseChatModel] = dict(models or {})
        self._documents = documents  # the document store, opened on first retrieval
        self._retrievers: dict[str, Retriever] = {}
        self._graphs: dict[str, CompiledGraph] = {}
        # The workflow object each run started (or was resumed) with in this process, and
        # the Python-built workflows registered for runs started elsewhere (by digest; two
        # distinct objects with one digest are ambiguous, and never guessed between).
        self._bound: dict[str, Workflow] = {}
        self._registered: dict[str, list[Workflow]] = {}
        self._audits = AuditFactory(settings)
        self._breakpoints: dict[str, Breakpoints] = {}
        self._watchers: list[Watcher] = []
        self._token_watchers: list[Watcher] = []
        self._watch_lock = threading.Lock()
        self._stops = StopRequests(settings.locks_path)
        self._travel = TimeTravel(
            store=self.store,
            backend=self.backend,
            audits=self._audits,
            principal=self.principal,
            workflow_of=lambda record: self._workflow_for(record, None, allow_changed=False),
            check_model=lambda wf, spec: self._model_getter(wf)(spec),
            bind=self._bind,
        )

    def close(self) -> None:
        self._audits.close()
        self.backend.close()

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

    @property
    def documents(self) -> DocumentStore:
        """The project's document store (a Chroma server if configured, else embedded)."""
        if self._documents is None:
            self._documents = open_store(self.settings)
        return self._documents

    def retriever(self, workflow: Workflow | None = None) -> Retriever:
        """Access-filtered search under the workflow's policies (else the project's)."""
        gate = workflow.gate if workflow is not None else None
        policies = gate if isinstance(gate, PolicyGate) else document_policies(self.settings)
        found = self._retrievers.get(policies.policy_hash)
        if found is None:
            found = self._retrievers[policies.policy_hash] = Retriever(self.documents, policies)
        return found

    def _model_getter(self, workflow: Workflow) -> Any:
        def get(spec: str) -> BaseChatModel:
            if spec not in self._models:
                self._models[spec] = resolve_model(spec, base_dir=workflow.base_dir)
            return self._models[spec]

        return get

    def _graph(self, workflow: Workflow) -> CompiledGraph:
        key = workflow.spec_digest  # the graph depends on the spec only, tools come per run
        if key not in self._graphs:
            self._graphs[key] = to_state_graph(workflow.spec).compile(
                checkpointer=self.checkpointer
            )
        return self._graphs[key]

    @staticmethod
    def _config(run_id: str) -> Any:
        # LangGraph's default of 25 steps per call stops an agent after ~12 tool rounds; the
        # limit stays as the guard against a model that never stops calling tools
        return {"configurable": {"thread_id": run_id}, "recursion_limit": MAX_STEPS_PER_CALL}

    def register(self, workflow: Workflow) -> Workflow:
        """Make a Python-built workflow known, so runs of it started by another process (or
        another runner) can be resumed, approved and replayed here by id.

        Runs are matched by the workflow's digest, which covers its spec, its tools'
        schemas and what each tool is bound to (:meth:`controlroom.Tool.identity`). Should
        two different objects with one digest be registered, their runs are refused rather
        than resumed with either: pass ``workflow=`` to say which one. Workflows loaded
        from a file or module reference need no registration (they are loaded again)."""
        if workflow.ref == PYTHON_OBJECT:
            known = self._registered.setdefault(workflow.digest, [])
            if not any(w is workflow for w in known):
                known.append(workflow)
        return workflow

    def _bind(self, run_id: str, workflow: Workflow) -> Workflow:
        """This process continues ``run_id`` with exactly this workflow object."""
        if workflow.ref == PYTHON_OBJECT:
            self._bound[run_id] = workflow
        return workflow

    # reading -----------------------------------------------------------------------
    def _live(self, record: RunRecord) -> RunRecord:
        if record.status is RunStatus.RUNNING and not self.backend.is_locked(record.run_id):
            return record.model_copy(update={"status": RunStatus.INTERRUPTED})
        return record

    def get_run(self, run_id: str) -> RunRecord:
        return self._live(self.store.get_run(run_id))

    # "running" and "interrupted" are told apart by the run lock, not by the stored status
    _LIVE = (RunStatus.RUNNING, RunStatus.INTERRUPTED)

    def list_runs(
        self, status: RunStatus | None = None, *, limit: int | None = 200, offset: int = 0
    ) -> list[RunRecord]:
        """Runs with ``status`` (all: None), newest first: ``limit`` of them (None: all)
        after skipping ``offset``. Filtered and paged in the store, so an old waiting run
        is found however many runs came after it."""
        if status not in self._LIVE:
            stored = self.store.list_runs(status.value if status else None, limit, offset)
            return [self._live(r) for r in stored]
        # A live status: the store's "running" rows are running or interrupted; read them
        # in pages and keep those whose lock says so.
        wanted = (limit if limit is not None else 1 << 62) + max(0, offset)
        found: list[RunRecord] = []
        at, page = 0, max(50, min(wanted, 1000))
        statuses = [s.value for s in self._LIVE]
        while len(found) < wanted:
            rows = self.store.list_runs(statuses, page, at)
            found.extend(r for r in map(self._live, rows) if r.status is status)
            if len(rows) < page:
                break
            at += page
        return found[max(0, offset) : wanted]

    def count_runs(self, status: RunStatus | None = None) -> int:
        """How many runs have ``status`` (all: None)."""
        if status not in self._LIVE:
            return self.store.count_runs(status.value if status else None)
        return len(self.list_runs(status, limit=None))

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
        return cast(RunState, {k: values[k] for k in RunState.__annotations__ if k in values})

    def workflow(self, run_id: str) -> Workflow:
        """The workflow a run executes (loaded again from its file or module reference)."""
        return self._workflow_for(self.store.get_run(run_id), None, allow_changed=True)

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
        redecide: bool = False,
    ) -> ReplayReport:
        """Re-execute a recorded run from its audit log, with no model and no tool effects,
        and compare every decision and tool call with the record; with ``redecide``, also
        report where today's policies and data would decide differently (see
        :func:`controlroom.graphs.control.replay.replay_run`)."""
        record = self.store.get_run(run_id)
        if workflow is None and record.workflow_ref == PYTHON_OBJECT:
            workflow = self._workflow_for(record, None, allow_changed=False)
        source = ReplaySource(
            settings=self.settings,
            gate=self.gate,
            directory=lambda: self.directory,
            documents=lambda: self.documents,
        )
        return replay_run(
            source,
            record.run_id,
            scratch_runner=type(self),
            workflow=workflow,
            unverified=unverified,
            redecide=redecide,
        )

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
        breakpoints: Breakpoints | None = None,
    ) -> RunResult:
        """Start a run for ``user`` (a directory id, chosen by the caller, never the model).

        With ``breakpoints`` the run pauses before the nodes or tool calls they name (with
        ``Breakpoints(every_node=True)``, before its first node already)."""
        wf = self.register(load_workflow(workflow))
        principal = self.principal(user)
        run_id = "r" + uuid.uuid4().hex[:11]
        self._bind(run_id, wf)
        if breakpoints:
            self._breakpoints[run_id] = breakpoints
        self._new_run(
            wf,
            principal,
            input=input,
            model=model,
            approve=approve,
            run_id=run_id,
            status=RunStatus.RUNNING,
        )
        first = _first_state(input)
        with self.backend.run_lock(run_id):
            return self._drive(run_id, wf, principal, first, step=step, fresh=True)

    def create(
        self,
        workflow: str | Path | Workflow,
        *,
        user: str,
        input: str,
        model: str | None = None,
        approve: ApproveMode = "ask",
        run_id: str | None = None,
    ) -> RunRecord:
        """Record a run without executing it (status ``queued``); ``resume`` starts it.

        What batches use: every input becomes a durable run before any worker picks it
        up. With ``run_id`` (``r`` and 11 hex digits) creating the same run twice returns
        the existing record, so a batch that crashed while creating its runs can go on."""
        wf = self.register(load_workflow(workflow))
        principal = self.principal(user)
        if run_id is not None:
            if not re.fullmatch(r"r[0-9a-f]{11}", run_id):
                raise RunStateError(f"'{run_id}' is not a run id (r and 11 hex digits).")
            existing = self.store.runs_by_id([run_id]).get(run_id)
            if existing is not None:
                return existing
        run_id = run_id or "r" + uuid.uuid4().hex[:11]
        self._bind(run_id, wf)
        return self._new_run(
            wf,
            principal,
            input=input,
            model=model,
            approve=approve,
            run_id=run_id,
            status=RunStatus.QUEUED,
        )

    def _new_run(
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
        _check_text(input, "The run's input")
        model_spec = model or wf.spec.model or self.settings.model
        self._model_getter(wf)(model_spec)  # a missing model fails before the run exists
        audit = self._audits.for_run(run_id, wf)  # a bad audit key fails before the run exists
        stamp = now()
        record = RunRecord(
            run_id=run_id,
            workflow=wf.name,
            workflow_ref=wf.ref,
            workflow_hash=wf.digest,
            workflow_fingerprint=wf.secret_fingerprint(self.store.identity_key()),
            user_id=principal.id,
            input=input,
            model=model_spec,
            approve_mode=approve,
            status=status,
            created_at=stamp,
            updated_at=stamp,
        )
        self.store.insert_run(record)
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
        if record.status is RunStatus.COMPLETED and workflow is None:
            return self._result(record.run_id)  # nothing to continue (the log has its end)
        wf = self._workflow_for(record, workflow, allow_changed=allow_changed)
        principal = self.principal(record.user_id)
        with self.backend.run_lock(record.run_id):
            graph = self._graph(wf)
            snapshot = graph.get_state(self._config(record.run_id))
            if snapshot.metadata is None:  # created (queued) but never executed: start it
                self.store.update_run(record.run_id, status=RunStatus.RUNNING)
                first = _first_state(record.input)
                return self._drive(record.run_id, wf, principal, first, step=step, fresh=True)
            if snapshot.interrupts:
                resume: dict[str, Any] = {}
                for intr in snapshot.interrupts:
                    decided: dict[str, Any] = {}
                    for approval_id in intr.value["approvals"]:
                        item = self.store.get_approval(record.run_id, approval_id)
                        if item.status is ApprovalStatus.PENDING:
                            return self._settle_waiting(record, snapshot)
                        decided[approval_id] = decision_payload(item)
                    resume[intr.id] = decided
                return self._drive(record.run_id, wf, principal, Command(resume=resume), step=step)
            if snapshot.next or snapshot.tasks:
                # Steps are left to run; or a step finished and saved its writes but the
                # process died before LangGraph saved the next checkpoint (next is empty
                # then, the finished task still holds its writes): LangGraph applies the
                # saved writes and goes on from there.
                return self._drive(record.run_id, wf, principal, None, step=step)
            return self._settle_after_crash(record, snapshot)

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
        ensure_pending(item)
        if reason is not None:
            _check_text(reason, "The reason")
        if resume:
            self._ensure_resumable(record, item)
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
            with using_home(self.settings.home), deciding(*_call_of(item), "edit"):
                verdict = gate.decide(requester, tool, args)
            if verdict.verdict is Verdict.DENY:
                raise ToolError(
                    f"The edited arguments for {tool.name} are denied by policy "
                    f"({verdict.reason}); nothing was recorded. Edit them again or reject."
                )
            if verdict.verdict is Verdict.APPROVE and verdict.approvers:
                needs = verdict  # edits may call for a more senior approver
        ensure_may_decide(needs, approver, requester)
        decided = self.store.decide(
            record.run_id,
            approval_id,
            approved=True,
            by=approver.id,
            edited_args=args,
            reason=reason,
        )
        self._record_decision(record, decided, approver)
        return self._after_decision(record.run_id, resume)

    def reject(
        self, run_id: str, approval_id: str, *, by: str, reason: str, resume: bool = True
    ) -> RunResult:
        """Reject one pending item; the model is told the approver's reason."""
        if not reason.strip():
            raise ToolError("A rejection needs a reason: the agent and the audit are told it.")
        _check_text(reason, "The reason")
        record = self.store.get_run(run_id)
        item = self.store.get_approval(record.run_id, approval_id)
        approver = self.principal(by)
        ensure_pending(item)
        if resume:
            self._ensure_resumable(record, item)
        needs = Decision(
            verdict=Verdict.APPROVE,
            reason=item.reason,
            policies=tuple(item.policies),
            approvers=tuple(item.approvers),
        )
        ensure_may_decide(needs, approver, self.principal(record.user_id))
        decided = self.store.decide(
            record.run_id, approval_id, approved=False, by=approver.id, reason=reason
        )
        self._record_decision(record, decided, approver)
        return self._after_decision(record.run_id, resume)

    def refusals(self, run_id: str) -> list[Refusal]:
        """The run's tool calls that were not executed: denied by the gate, rejected by a
        person, or refused for arguments that did not fit the tool, with the reasons."""
        return self.store.list_refusals(self.store.get_run(run_id).run_id)

    def _result(self, run_id: str, *, pending: bool = True) -> RunResult:
        record = self.get_run(run_id)
        return RunResult(
            run=record,
            pending=self.store.list_approvals(run_id=run_id) if pending else [],
            refused=self.store.list_refusals(run_id) if record.refused_calls else [],
        )

    # supervising -------------------------------------------------------------------
    def set_breakpoints(self, run_id: str, breakpoints: Breakpoints | None) -> Breakpoints:
        """Pause the run (when this runner drives it) before these nodes or tool calls;
        ``None`` or an empty :class:`Breakpoints` clears them. They belong to this runner,
        like a debugger's: another process driving the run does not see them."""
        run_id = self.store.get_run(run_id).run_id
        if breakpoints:
            self._breakpoints[run_id] = breakpoints
        else:
            self._breakpoints.pop(run_id, None)
        return self.breakpoints(run_id)

    def breakpoints(self, run_id: str) -> Breakpoints:
        return self._breakpoints.get(run_id, Breakpoints())

    def watch(self, watcher: Watcher, *, tokens: bool = False) -> Callable[[], None]:
        """Call ``watcher`` with the :class:`RunEvent` s of every run this runner drives (from
        the driving thread); returns the function that stops watching.

        With ``tokens`` the models' output is streamed to it as well (``token`` events): models
        are then called in streaming mode, and a model whose streaming omits token usage
        (the embedded llama.cpp adapter today) leaves it out of the audit records."""
        with self._watch_lock:
            self._watchers.append(watcher)
            if tokens:
                self._token_watchers.append(watcher)

        def unwatch() -> None:
            with self._watch_lock:
                for group in (self._watchers, self._token_watchers):
                    if watcher in group:
                        group.remove(watcher)

        return unwatch

    def _tell(self, event: RunEvent) -> None:
        with self._watch_lock:
            watchers = list(self._watchers)
        for watcher in watchers:
            try:
                watcher(event)
            except Exception:  # a watcher's bug never stops a run
                continue

    def stop(self, run_id: str, *, by: str) -> bool:
        """Ask the process driving the run to pause it before its next node.

        Returns False when nothing drives the run right now (it is already stopped: waiting,
        paused, finished or interrupted). The node in progress finishes first; the run ends
        up paused, and ``resume`` continues it."""
        record = self.store.get_run(run_id)
        if not self.backend.is_locked(record.run_id):
            return False
        self._stops.request(record.run_id, by)
        return True

    def checkpoints(self, run_id: str) -> list[CheckpointInfo]:
        """The run's saved checkpoints, oldest first: the points time travel can fork from."""
        return self._travel.checkpoints(run_id)

    def state_at(self, run_id: str, checkpoint: str) -> RunState:
        """The run's state as saved at one checkpoint (an id, a unique prefix, or step:N)."""
        return self._travel.state_at(run_id, checkpoint)

    def fork(
        self,
        run_id: str,
        checkpoint: str,
        *,
        by: str,
        edits: StateEdits | dict[str, Any] | None = None,
        model: str | None = None,
        resume: bool = False,
        breakpoints: Breakpoints | None = None,
    ) -> RunResult:
        """Start a new run from one of a run's past checkpoints (time travel); see
        :meth:`controlroom.graphs.control.time_travel.TimeTravel.fork`. ``resume=True``
        carries it on at once; ``breakpoints`` apply to the new run."""
        new_id, where = self._travel.fork(run_id, checkpoint, by=by, edits=edits, model=model)
        if breakpoints:
            self._breakpoints[new_id] = breakpoints
        if resume:
            return self.resume(new_id)
        return RunResult(run=self.get_run(new_id), pending=[], paused_at=where)  # none refused

    # internals ---------------------------------------------------------------------
    def _record_decision(self, record: RunRecord, item: Approval, approver: Principal) -> None:
        """Record a person's decision (synced), and sign: this process may stop here."""
        try:  # the workflow's tools name secrets to keep out of the record
            wf: Workflow | None = self._workflow_for(record, None, allow_changed=True)
        except ControlroomError:
            wf = None
        audit = self._audits.for_run(item.run_id, wf)
        record_decision(audit, item, source="decision", approver=approver)
        audit.checkpoint("decision")
        audit.close()

    def _ensure_resumable(self, record: RunRecord, item: Approval) -> None:
        """Before the last pending item is decided with ``resume``: the run's workflow must
        be at hand here, or nothing is recorded (the decision is not left half-done)."""
        others = [a for a in self.store.list_approvals(run_id=record.run_id) if a != item]
        if others:
            return  # the run will not continue yet
        try:
            self._workflow_for(record, None, allow_changed=False)
        except RunStateError as exc:
            raise RunStateError(
                f"{exc.message} Nothing was recorded. To record the decision without "
                "continuing the run here, decide with resume=False (--no-resume); a process "
                "that has the workflow continues it.",
                title=exc.title,
            ) from None

    def _after_decision(self, run_id: str, resume: bool) -> RunResult:
        if resume and not self.store.list_approvals(run_id=run_id):
            try:
                return self.resume(run_id)
            except RunBusyError:  # another process (a batch's worker) took the run on first
                record = self.get_run(run_id)
                if record.status not in (RunStatus.COMPLETED, RunStatus.FAILED):
                    record = record.model_copy(update={"status": RunStatus.RUNNING})
                return RunResult(run=record, pending=[], refused=self.refusals(run_id))
        return self._result(run_id)

    def _workflow_for(
        self, record: RunRecord, workflow: str | Path | Workflow | None, *, allow_changed: bool
    ) -> Workflow:
        if workflow is None:
            bound = self._bound.get(record.run_id)
            if bound is not None:
                return bound
            if record.workflow_ref == PYTHON_OBJECT:
                return self._bind(record.run_id, self._registered_for(record))
            workflow = record.workflow_ref
        wf = self.register(load_workflow(workflow))
        if not allow_changed and self._fingerprint(wf) != record.workflow_fingerprint:
            raise RunStateError(
                f"The workflow given for run {record.run_id} has tools bound to other secret "
                "configuration (an API key, a token, a SecretStr) than the run started with, "
                "so its calls could act for another account. Pass the workflow the run "
                "started with, or allow_changed=True (--allow-changed) if the credentials "
                "were rotated on purpose.",
                title="Workflow changed",
            )
        if wf.digest != record.workflow_hash and not allow_changed:
            raise RunStateError(
                f"The workflow '{wf.name}' changed since run {record.run_id} started "
                f"({record.workflow_hash[:19]}… then, {wf.digest[:19]}… now). Continuing "
                "could take different decisions; pass --allow-changed (allow_changed=True) "
                "if that is intended."
            )
        return self._bind(record.run_id, wf)

    def _fingerprint(self, workflow: Workflow) -> str | None:
        return workflow.secret_fingerprint(self.store.identity_key())

    def _continued_audit(self, record: RunRecord) -> RunAudit:
        audit = self._audits.for_run(record.run_id, self._bound.get(record.run_id))
        if audit.enabled and not audit.has(Kind.RUN_START):
            self._restart_log(audit, record, self.principal(record.user_id))
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

    def _registered_for(self, record: RunRecord) -> Workflow:
        """The one registered Python-built workflow a run was started with, or an error.

        It must have the run's digest (spec, tools, their public configuration) and the
        same fingerprint of the secrets its tools hold: two workflows that differ only in
        an API key belong to different accounts."""
        candidates = [
            w
            for w in self._registered.get(record.workflow_hash, [])
            if self._fingerprint(w) == record.workflow_fingerprint
        ]
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            raise RunStateError(
                f"Run {record.run_id} was started from a Workflow object, and {len(candidates)} "
                "different workflow objects registered here have its digest (the same spec, "
                "tools and tool configuration as far as controlroom can see), so it cannot "
                "tell which one the run belongs to and will not guess. Pass workflow=... to "
                "resume, approve or replay it with the right one.",
                title="Ambiguous workflow",
            )
        names = sorted({w.name for known in self._registered.values() for w in known})
        also = (
            f" Registered here: {', '.join(names)} (a different spec, tool or tool "
            "configuration, secrets such as API keys included, is another workflow)."
            if names
            else ""
        )
        raise RunStateError(
            f"Run {record.run_id} was started from a Workflow object, not a file or module "
            "reference, so this process cannot reload it. Call runner.register(workflow) "
            "with the workflow it was started with (or pass workflow=...) first, or define "
            f"the workflow in a file or module.{also}"
        )

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
        self._audits.keep_policies(wf.gate or self.gate)  # what a replay decides with
        if audit.enabled and not audit.has(Kind.RUN_START):
            self._restart_log(audit, record, principal)
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
            retriever=lambda: self.retriever(wf),
            default_model=record.model,
            approve_mode=record.approve_mode,  # type: ignore[arg-type]
            home=self.settings.home,
            store=self.store,
            audit=audit,
        )
        graph = self._graph(wf)
        config = self._config(run_id)
        breaks = self._breakpoints.get(run_id, Breakpoints())
        self._stops.clear(run_id)  # a request made while nothing drove the run is stale
        paused_at: str | None = "step" if step else None
        try:
            with using_home(self.settings.home):
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
            self.store.update_run(run_id, status=RunStatus.INTERRUPTED)
            raise
        result = self._settle(run_id, graph.get_state(config), audit)
        if result.status is RunStatus.PAUSED:
            result.paused_at = paused_at
        self._tell(RunEvent(run_id=run_id, kind="stopped", text=result.status.value))
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
        modes: list[Any] = ["tasks", "messages"] if self._token_watchers else ["tasks"]
        stream = graph.stream(  # (mode, chunk) pairs, since stream_mode is a list
            graph_input,
            self._config(run_id),
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
                    if self._watchers:
                        self._tell(
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
                        self._tell(RunEvent(run_id=run_id, kind="token", node=node, text=text))
        finally:
            close = getattr(stream, "close", None)
            if close is not None:  # a generator: let LangGraph leave its loop cleanly
                close()
        return None

    def _fail(self, run_id: str, graph: CompiledGraph, error: str) -> RunResult:
        next_steps = list(graph.get_state(self._config(run_id)).next)
        audit = self._audits.for_run(run_id)
        # The log first, then the store: a crash in between leaves a run that is not yet
        # "failed", which the next resume settles (and records) again.
        record_stop(audit, "failed", output=None, error=error, next_steps=next_steps, pending=[])
        self.store.update_run(run_id, status=RunStatus.FAILED, error=error, next_steps=next_steps)
        return self._result(run_id, pending=False)

    def _settle_after_crash(self, record: RunRecord, snapshot: StateSnapshot) -> RunResult:
        """A resume with nothing left to run: the graph reached its end, and the process
        that drove it may have died before it said so (then the run's end is recorded)."""
        if record.status is RunStatus.COMPLETED or not self._at_end(snapshot):
            return self._settle(record.run_id, snapshot)
        audit = self._continued_audit(record)
        audit.run_resumed(step_mode=False, answered=[])
        return self._settle(record.run_id, snapshot, audit)

    def _settle_waiting(self, record: RunRecord, snapshot: StateSnapshot) -> RunResult:
        """A resume of a run that still waits for a person: nothing runs. A process that
        died after the run began to wait, before it said so, has that recorded now."""
        if record.status is RunStatus.WAITING:
            return self._settle(record.run_id, snapshot)
        audit = self._continued_audit(record)
        audit.run_resumed(step_mode=False, answered=[])
        return self._settle(record.run_id, snapshot, audit)

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
        if audit is not None:
            pending = [a.approval_id for a in self.store.list_approvals(run_id=run_id)]
            record_stop(
                audit,
                status.value,
                output=output,
                error=None,
                next_steps=next_steps,
                pending=pending,
            )
        self.store.update_run(run_id, status=status, output=output, next_steps=next_steps)
        return self._result(run_id)
