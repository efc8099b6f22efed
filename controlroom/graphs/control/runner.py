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
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage

from controlroom.agents.models import resolve_model
from controlroom.audit.recorder import RunAudit
from controlroom.audit.replay import ReplayReport
from controlroom.config import Settings, ensure_home
from controlroom.errors import (
    RunBusyError,
    RunStateError,
    ToolError,
)
from controlroom.graphs.authoring.workflow import PYTHON_OBJECT, Workflow, load_workflow
from controlroom.graphs.control.decisions import Decisions, ensure_pending
from controlroom.graphs.control.driver import RunDriver, check_text, first_state
from controlroom.graphs.control.replay import ReplaySource, replay_run
from controlroom.graphs.control.run_result import RunResult
from controlroom.graphs.control.run_workflows import RunWorkflows
from controlroom.graphs.control.supervision import (
    Breakpoints,
    StateEdits,
    StopRequests,
    Watcher,
    Watchers,
)
from controlroom.graphs.control.time_travel import TimeTravel
from controlroom.graphs.runtime.audit_hooks import AuditFactory
from controlroom.graphs.runtime.run_state import RunState
from controlroom.graphs.storage.backends import open_backend
from controlroom.graphs.storage.checkpoints import CheckpointInfo
from controlroom.graphs.storage.records import Approval, ApproveMode, Refusal, RunRecord, RunStatus
from controlroom.graphs.storage.run_store import Store
from controlroom.identity import Directory, Principal
from controlroom.retrieval import DocumentStore, Retriever, document_policies, open_store
from controlroom.tools.gate import DeclaredGate, Gate
from controlroom.tools.policy import PolicyGate, project_gate


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
        self._gate: Gate | None = gate  # else the project's, loaded when a call is decided
        self._models: dict[str, BaseChatModel] = dict(models or {})
        self._documents = documents  # the document store, opened on first retrieval
        self._retrievers: dict[str, Retriever] = {}
        self._workflows = RunWorkflows(self.store)  # one workflow per run, never guessed
        self._audits = AuditFactory(settings)
        self._breakpoints: dict[str, Breakpoints] = {}
        self._watchers = Watchers()
        self._stops = StopRequests(settings.locks_path)
        self._driver = RunDriver(
            settings=settings,
            store=self.store,
            checkpointer=self.checkpointer,
            audits=self._audits,
            gate=lambda: self.gate,
            workflows=self._workflows,
            principal=self.principal,
            get_run=self.get_run,
            model_getter=self._model_getter,
            retriever=self.retriever,
            breakpoints=self._breakpoints,
            stops=self._stops,
            watchers=self._watchers,
        )
        self._decisions = Decisions(
            store=self.store,
            audits=self._audits,
            gate=lambda: self.gate,
            home=settings.home,
            workflows=self._workflows,
            principal=self.principal,
        )
        self._travel = TimeTravel(
            store=self.store,
            backend=self.backend,
            audits=self._audits,
            principal=self.principal,
            workflow_of=lambda record: self._workflows.for_run(record, None, allow_changed=False),
            check_model=lambda wf, spec: self._model_getter(wf)(spec),
            bind=self._workflows.bind,
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

    @property
    def gate(self) -> Gate:
        """The gate of workflows that name no policies: the caller's, else the project's
        default policies (``<home>/policies``), else the tools' declared behaviour. Loaded
        on first use: a broken policy folder stops what must decide a call (``run``,
        ``approve``), not ``show``, ``runs`` or a ``replay``, which decides on the record."""
        if self._gate is None:
            self._gate = project_gate(self.settings.home) or DeclaredGate()
        return self._gate

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

    def register(self, workflow: Workflow) -> Workflow:
        """Make a Python-built workflow known, so runs of it started by another process (or
        another runner) can be resumed, approved and replayed here by id.

        Runs are matched by the workflow's digest, which covers its spec, its tools'
        schemas and what each tool is bound to (:meth:`controlroom.Tool.identity`). Should
        two different objects with one digest be registered, their runs are refused rather
        than resumed with either: pass ``workflow=`` to say which one. Workflows loaded
        from a file or module reference need no registration (they are loaded again)."""
        return self._workflows.register(workflow)

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
        saved = self.checkpointer.get_tuple(self._driver.config(record.run_id))
        values = saved.checkpoint["channel_values"] if saved is not None else {}
        return cast(RunState, {k: values[k] for k in RunState.__annotations__ if k in values})

    def workflow(self, run_id: str) -> Workflow:
        """The workflow a run executes (loaded again from its file or module reference)."""
        return self._workflows.for_run(self.store.get_run(run_id), None, allow_changed=True)

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
            workflow = self._workflows.for_run(record, None, allow_changed=False)
        source = ReplaySource(
            settings=self.settings,
            gate=lambda: self.gate,
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
        self._workflows.bind(run_id, wf)
        if breakpoints:
            self._breakpoints[run_id] = breakpoints
        self._driver.new_run(
            wf,
            principal,
            input=input,
            model=model,
            approve=approve,
            run_id=run_id,
            status=RunStatus.RUNNING,
        )
        first = first_state(input)
        with self.backend.run_lock(run_id):
            return self._driver.drive(run_id, wf, principal, first, step=step, fresh=True)

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
        self._workflows.bind(run_id, wf)
        return self._driver.new_run(
            wf,
            principal,
            input=input,
            model=model,
            approve=approve,
            run_id=run_id,
            status=RunStatus.QUEUED,
        )

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
            return self._driver.result(record.run_id)  # nothing to continue (the log has its end)
        wf = self._workflows.for_run(record, workflow, allow_changed=allow_changed)
        principal = self.principal(record.user_id)
        with self.backend.run_lock(record.run_id):
            return self._driver.carry_on(record, wf, principal, step=step)

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
            check_text(reason, "The reason")
        if resume:
            self._decisions.ensure_resumable(record, item)
        self._decisions.approve(record, item, approver, args=args, reason=reason)
        return self._after_decision(record.run_id, resume)

    def reject(
        self, run_id: str, approval_id: str, *, by: str, reason: str, resume: bool = True
    ) -> RunResult:
        """Reject one pending item; the model is told the approver's reason."""
        if not reason.strip():
            raise ToolError("A rejection needs a reason: the agent and the audit are told it.")
        check_text(reason, "The reason")
        record = self.store.get_run(run_id)
        item = self.store.get_approval(record.run_id, approval_id)
        approver = self.principal(by)
        ensure_pending(item)
        if resume:
            self._decisions.ensure_resumable(record, item)
        self._decisions.reject(record, item, approver, reason=reason)
        return self._after_decision(record.run_id, resume)

    def refusals(self, run_id: str) -> list[Refusal]:
        """The run's tool calls that were not executed: denied by the gate, rejected by a
        person, or refused for arguments that did not fit the tool, with the reasons."""
        return self.store.list_refusals(self.store.get_run(run_id).run_id)

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
        return self._watchers.add(watcher, tokens=tokens)

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
    def _after_decision(self, run_id: str, resume: bool) -> RunResult:
        if resume and not self.store.list_approvals(run_id=run_id):
            try:
                return self.resume(run_id)
            except RunBusyError:  # another process (a batch's worker) took the run on first
                record = self.get_run(run_id)
                if record.status not in (RunStatus.COMPLETED, RunStatus.FAILED):
                    record = record.model_copy(update={"status": RunStatus.RUNNING})
                return RunResult(run=record, pending=[], refused=self.refusals(run_id))
        return self._driver.result(run_id)
