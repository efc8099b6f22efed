"""Replay a recorded run: the workflow again, fed from its audit log, compared with it.

:func:`replay_run` verifies the log, then runs the workflow once more in a scratch project
folder (a temporary directory, removed afterwards; the real project is only read):

* for the principal and input the log recorded (not today's directory entry);
* with a :class:`~controlroom.audit.replay.ReplayChatModel` for every model spec, so no
  model is called: it plays the recorded replies and stops at the first conversation that
  differs from the recorded input;
* with every tool in dry-run (never executed: its recorded result is handed back);
* with the workflow's and the runner's gate deciding again, as they decide today;
* with approvals answered from the recorded decisions (approver, edited arguments, reason),
  in the recorded order.

The scratch run writes its own audit log; the report compares it with the original,
event by event, and names the first divergence. A log that fails verification is not
replayed unless ``unverified`` is set: a replay of an altered log is how to find which
recorded decision the alteration changes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from controlroom.errors import ControlroomError
from controlroom.graphs.spec import RetrieveStep
from controlroom.graphs.store import RunStatus
from controlroom.graphs.workflow import PYTHON_OBJECT, Workflow, load_workflow
from controlroom.identity import Directory, Principal

if TYPE_CHECKING:
    from controlroom.graphs.results import RunResult
    from controlroom.graphs.runner import Runner

_MAX_ROUNDS = 1000


def _workflow(start: dict[str, Any], workflow: str | Path | Workflow | None) -> Workflow:
    if workflow is not None:
        return load_workflow(workflow)
    ref = (start.get("controlroom.workflow") or {}).get("ref")
    if not ref or ref == PYTHON_OBJECT:
        raise ReplayError(
            "The run's workflow was built in Python, so it cannot be reloaded by reference; "
            "pass it (runner.replay(run, workflow=...) or --workflow module:attr)."
        )
    return load_workflow(ref)


def _directory(start: dict[str, Any], session: ReplaySession) -> Directory:
    principal = Principal.model_validate(start["controlroom.principal"])
    people = {principal.id: principal}
    for decision in session.decisions:
        by = decision.get("controlroom.approver.id")
        if isinstance(by, str) and by not in people:
            try:
                people[by] = Principal(id=by)
            except ValueError:  # not a person (an automatic decision): never looked up
                continue
    return Directory(list(people.values()))


def _answer(scratch: Runner, session: ReplaySession, result: RunResult) -> bool:
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


def replay_run(
    runner: Runner,
    run_id: str,
    *,
    workflow: str | Path | Workflow | None = None,
    unverified: bool = False,
) -> ReplayReport:
    """Replay ``run_id`` of ``runner``'s project from its audit log and compare."""
    from controlroom.graphs.runner import Runner

    settings = runner.settings
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
    wf = _workflow(start, workflow)
    dry = Workflow(
        spec=wf.spec,
        tools={name: session.dry_run(t) for name, t in wf.tools.items()},
        base_dir=wf.base_dir,
        gate=wf.gate,
    )
    model_spec = str(start.get("controlroom.model.spec"))
    specs = {model_spec} | {m for s in wf.spec.steps if (m := getattr(s, "model", None))}
    with tempfile.TemporaryDirectory(prefix="controlroom-replay-") as scratch_home:
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
        with Runner(
            scratch_settings,
            directory=_directory(start, session),
            gate=runner.gate,
            models=models,
            # retrieval reads the project's document store as it is today (nothing is written)
            documents=(
                runner.documents
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
    return ReplayReport(
        run_id,
        verification,
        matched=divergence is None,
        compared=compared,
        divergence=divergence,
        replay_status=result.status.value,
        replay_error=result.run.error,
        counts=counts,
    )
