"""Replay a recorded run: the workflow again, fed from its audit log, compared with it.

:func:`replay_run` verifies the log, then runs the workflow once more in a scratch project
folder (a temporary directory, removed afterwards; the real project is only read):

* for the principal and input the log recorded (not today's directory entry), and with
  the approvers as they were recorded when they decided (their roles and attributes);
* with a :class:`~controlroom.audit.replay.ReplayChatModel` for every model spec, so no
  model is called: it plays the recorded replies and stops at the first conversation that
  differs from the recorded input;
* with every tool in dry-run (never executed: its recorded result is handed back);
* with the gate deciding again *on the record*: the policy set each decision names (kept
  by hash under ``<home>/audit/policies``), the resource attributes and context facts the
  gate looked up then (recorded with each decision), so a replay needs neither today's
  data nor today's policies and reproduces a finished run anywhere;
* with approvals answered from the recorded decisions (approver, edited arguments, reason),
  in the recorded order.

The scratch run writes its own audit log; the report compares it with the original,
event by event, and names the first divergence. A log that fails verification is not
replayed unless ``unverified`` is set: a replay of an altered log is how to find which
recorded decision the alteration changes.

``redecide=True`` asks a different question: would today's policies, today's data and
today's directory decide the same? The replay still follows the record (so it runs to the
end), and every decision is also taken the live way; each one that differs is reported as
*policy drift*, not as a divergence of the run.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from controlroom.audit.errors import ReplayError
from controlroom.audit.keys import expected_public_key
from controlroom.audit.log import log_path, read_records
from controlroom.audit.records import APPROVAL_ID, Kind
from controlroom.audit.redact import Redactor
from controlroom.audit.replay import (
    Divergence,
    ReplayChatModel,
    ReplayReport,
    ReplaySession,
    compare,
    events,
)
from controlroom.audit.verify import verify_log
from controlroom.config import Settings
from controlroom.errors import ControlroomError, PolicyError
from controlroom.graphs.authoring.spec import RetrieveStep
from controlroom.graphs.authoring.workflow import PYTHON_OBJECT, Workflow, load_workflow
from controlroom.graphs.control.replay_gate import (
    DriftCheck,
    RecordedFacts,
    ReplayGate,
    UnavailableGate,
    recorded_gates,
)
from controlroom.graphs.control.run_result import RunResult
from controlroom.graphs.storage.records import ApproveMode, RunStatus
from controlroom.identity import Directory, Principal
from controlroom.retrieval import DocumentStore
from controlroom.tools.gate import Gate

_MAX_ROUNDS = 1000


class ScratchRunner(Protocol):
    """What a replay drives in its scratch project folder: a runner there."""

    def start(
        self,
        workflow: Workflow,
        *,
        user: str,
        input: str,
        model: str | None = None,
        approve: ApproveMode = "ask",
    ) -> RunResult: ...

    def resume(self, run_id: str) -> RunResult: ...

    def approve(
        self,
        run_id: str,
        approval_id: str,
        *,
        by: str,
        args: dict[str, Any] | None = None,
        reason: str | None = None,
        resume: bool = True,
    ) -> RunResult: ...

    def reject(
        self, run_id: str, approval_id: str, *, by: str, reason: str, resume: bool = True
    ) -> RunResult: ...

    def __enter__(self) -> ScratchRunner: ...

    def __exit__(self, *exc: object) -> None: ...


ScratchFactory = Callable[..., ScratchRunner]
"""Opens a scratch runner: ``(settings, *, directory, gate, models, documents)``."""


@dataclass(frozen=True)
class ReplaySource:
    """The project a replay reads (and never writes): its settings, today's gate, and its
    directory and document store, opened only when the replay needs them."""

    settings: Settings
    gate: Callable[[], Gate]  # raises PolicyError when today's project policies are broken
    directory: Callable[[], Directory]
    documents: Callable[[], DocumentStore]


def _workflow(
    start: dict[str, Any], workflow: str | Path | Workflow | None
) -> tuple[Workflow, PolicyError | None]:
    """The workflow to replay, and why today's policies could not be loaded, if so: the
    replay decides with the policy sets its record names, so a moved or broken policy
    folder matters only where a kept copy is missing (and for --redecide)."""
    if workflow is None:
        ref = (start.get("controlroom.workflow") or {}).get("ref")
        if not ref or ref == PYTHON_OBJECT:
            raise ReplayError(
                "The run's workflow was built in Python, so it cannot be reloaded by "
                "reference; pass it (runner.replay(run, workflow=...) or --workflow "
                "module:attr)."
            )
        workflow = ref
    try:
        return load_workflow(workflow), None
    except PolicyError as exc:
        return load_workflow(workflow, with_policies=False), exc


def _directory(start: dict[str, Any], session: ReplaySession, today: Directory | None) -> Directory:
    """The run's principal as recorded at its start, and each approver as recorded when
    they decided (logs written before approvers were recorded: as the directory has them
    today, else with no roles)."""
    principal = Principal.model_validate(start["controlroom.principal"])
    people = {principal.id: principal}
    for decision in session.decisions:
        by = decision.get("controlroom.approver.id")
        if not isinstance(by, str) or by in people:
            continue
        recorded = decision.get("controlroom.approver")
        try:
            if isinstance(recorded, dict) and recorded.get("id") == by:
                people[by] = Principal.model_validate(recorded)
            elif today is not None and by in today:
                people[by] = today.get_principal(by)
            else:
                people[by] = Principal(id=by)
        except (ValueError, ControlroomError):  # not a person (an automatic decision)
            continue
    return Directory(list(people.values()))


def _answer(scratch: ScratchRunner, session: ReplaySession, result: RunResult) -> bool:
    """Decide the pending items as recorded; False when the record has no such decision."""
    order = [d.get(APPROVAL_ID) for d in session.decisions]
    pending = sorted(
        result.pending,
        key=lambda a: order.index(a.approval_id) if a.approval_id in order else len(order),
    )
    for item in pending:
        recorded = session.decision_for(item.approval_id)
        if recorded is None:
            session.diverge(
                Divergence(
                    f"the replay waits for approval {item.approval_id} ({item.tool or item.kind}),"
                    " which the record never decided"
                )
            )
            return False
        by = str(recorded.get("controlroom.approver.id"))
        reason = recorded.get("controlroom.approval.reason")
        try:
            if recorded.get("controlroom.approval.decision") == "approved":
                scratch.approve(
                    result.run_id,
                    item.approval_id,
                    by=by,
                    args=recorded.get("controlroom.approval.arguments"),
                    reason=reason,
                    resume=False,
                )
            else:
                scratch.reject(
                    result.run_id,
                    item.approval_id,
                    by=by,
                    reason=reason or "rejected",
                    resume=False,
                )
        except ControlroomError as exc:
            session.diverge(
                Divergence(
                    f"the recorded decision on {item.approval_id} cannot be made again: "
                    f"{exc.message}",
                    recorded.get("seq"),
                )
            )
            return False
    return True


def _live_gate(
    wf: Workflow, broken: PolicyError | None, source: ReplaySource
) -> tuple[Gate, PolicyError | None]:
    """Today's gate for the run's calls (what --redecide compares with), and why today's
    policies cannot be loaded, if so: the workflow's own, else the project's default."""
    if broken is None and wf.gate is None:
        try:
            return source.gate(), None
        except PolicyError as exc:  # the project's default policies, broken since the run
            broken = exc
    return (UnavailableGate(broken) if broken else (wf.gate or source.gate())), broken


def replay_run(
    source: ReplaySource,
    run_id: str,
    *,
    scratch_runner: ScratchFactory,
    workflow: str | Path | Workflow | None = None,
    unverified: bool = False,
    redecide: bool = False,
) -> ReplayReport:
    """Replay ``run_id`` of ``source``'s project from its audit log and compare (with
    ``redecide``, also report where today's policies and data decide differently); the
    scratch run is made by ``scratch_runner`` (the runner class)."""
    settings = source.settings
    path = log_path(settings.audit_path, run_id)
    if not path.is_file():
        raise ReplayError(f"Run {run_id} has no audit log ({path} does not exist).")
    key = expected_public_key(settings.keys_path, settings.audit_key, settings.audit_public_key)
    verification = verify_log(path, expected_key=key, run_id=run_id)
    if verification.status == "tampered" and not unverified:
        return ReplayReport(run_id, verification, matched=False, refused=True)
    records = read_records(path)
    redactor = Redactor.from_environment("full", settings.audit_secrets)
    session = ReplaySession(records, redactor)
    start = session.start
    wf, broken = _workflow(start, workflow)
    try:
        today: Directory | None = source.directory()
    except ControlroomError:  # no directory today: the record has who decided
        today = None
    live_gate, broken = _live_gate(wf, broken, source)
    hashes = {str(h) for r in records if (h := r.get("controlroom.policy.set_hash")) is not None}
    model_spec = str(start.get("controlroom.model.spec"))
    specs = {model_spec} | {m for s in wf.spec.steps if (m := getattr(s, "model", None))}
    with (
        tempfile.TemporaryDirectory(prefix="controlroom-replay-") as scratch_home,
        recorded_gates(settings.audit_path, hashes, Path(scratch_home)) as gates,
    ):
        drift = DriftCheck(live_gate, wf.tools, settings.home, today) if redecide else None
        replay_gate = ReplayGate(RecordedFacts(records), gates, live_gate, settings.home, drift)
        dry = wf.stand_in(
            tools={name: session.dry_run(t) for name, t in wf.tools.items()}, gate=replay_gate
        )
        scratch_settings = settings.model_copy(
            update={
                "home": Path(scratch_home),
                "directory": None,
                "audit": True,
                "audit_redaction": "full",
                "audit_key": None,
                "audit_public_key": None,
                "audit_checkpoint_every": 1_000_000,
            }
        )
        models: dict[str, Any] = {spec: ReplayChatModel(session=session) for spec in specs}
        with scratch_runner(
            scratch_settings,
            directory=_directory(start, session, today),
            gate=replay_gate,
            models=models,
            # retrieval reads the project's document store as it is today (nothing is written)
            documents=(
                source.documents()
                if any(isinstance(s, RetrieveStep) for s in wf.spec.steps)
                else None
            ),
        ) as scratch:
            input_parts = start["gen_ai.input.messages"][0]["parts"]
            result = scratch.start(
                dry,
                user=str(start["user.id"]),
                input=str(input_parts[0]["content"]),
                model=model_spec,
                approve=start.get("controlroom.approve_mode", "ask"),
            )
            rounds = 0
            while result.status is RunStatus.WAITING and rounds < _MAX_ROUNDS:
                rounds += 1
                if not _answer(scratch, session, result):
                    break
                result = scratch.resume(result.run_id)
            replayed = read_records(log_path(scratch_settings.audit_path, result.run_id))
    compared, divergence = compare(records, replayed)
    first = session.divergences[0] if session.divergences else None
    if first is not None and (
        divergence is None or divergence.seq is None or (first.seq or 0) <= divergence.seq
    ):
        divergence = first
    counts: dict[str, int] = {}
    for event in events(records)[:compared]:
        kind = str(event.get("kind"))
        if kind not in (Kind.RUN_START, Kind.RUN_END):
            counts[kind] = counts.get(kind, 0) + 1
    notes = [
        f"the policy set {h} named by the record is not kept in {settings.audit_path / 'policies'}"
        " and differs from today's; those calls were decided with today's policies"
        for h in sorted(replay_gate.missing)
    ]
    if broken is not None:
        notes.append(
            f"today's policies cannot be loaded ({broken.message}); the replay decided with "
            "the policy sets kept for this run"
        )
    return ReplayReport(
        run_id,
        verification,
        matched=divergence is None,
        compared=compared,
        divergence=divergence,
        replay_status=result.status.value,
        replay_error=result.run.error,
        counts=counts,
        redecided=redecide,
        drift=list(drift.found.values()) if drift is not None else [],
        notes=notes,
    )
