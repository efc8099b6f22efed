"""``controlroom doctor``'s checks of the audit signing key and of every audit log.

:func:`check_keys` checks the key (present, readable, owner-only, matching the public key
next to it) and returns the public key logs verify against; :func:`verify_logs` verifies each
log once (intact / incomplete / tampered, naming the bad ones and those signed by another
key), against what the store says of its run (its status and the seq of its last stop record:
:func:`stop_seqs`); :func:`logged_run` reads what a log says of its run, for runs the store
does not list.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from contextlib import closing
from pathlib import Path
from typing import Any

from controlroom.audit.errors import AuditError, AuditKeyError
from controlroom.audit.keys import (
    KEY_FILE,
    PUBLIC_KEY_FILE,
    expected_public_key,
    key_id,
    load_public_key,
)
from controlroom.audit.records import STATUS, Kind
from controlroom.audit.verify import Reason, against_run_status, verify_log
from controlroom.config import Settings, exposure
from controlroom.graphs.control.doctor_report import DoctorReport, LoggedRun, names
from controlroom.graphs.storage.locks import is_locked

_STOP_KINDS = {Kind.RUN_END.value, Kind.RUN_WAIT.value, Kind.RUN_PAUSE.value}


def check_keys(report: DoctorReport, settings: Settings, logs: int) -> bytes | None:
    """Check the signing key; return the public key logs are verified against."""
    key = settings.audit_key or settings.keys_path / KEY_FILE
    public = settings.keys_path / PUBLIC_KEY_FILE
    named = " (CONTROLROOM_AUDIT_KEY)" if settings.audit_key else ""
    own: bytes | None = None
    if not key.exists():
        if settings.audit_key or logs:
            report.problem(
                "keys",
                f"The audit signing key {key}{named} is missing"
                + (f", and audit/ holds {logs} signed log(s)." if logs else "."),
                "Restore it from a backup (or point CONTROLROOM_AUDIT_KEY at it). Without it "
                "the next run signs with a new key, and the old logs verify only against their "
                f"public key ({public.name}, or `audit verify --key`).",
                [str(key)],
            )
        else:
            report.ok("keys", "no signing key yet (made on the first audited run)")
    else:
        try:
            own = load_public_key(key)
        except AuditKeyError as exc:
            report.problem("keys", exc.message, "Restore the key from a backup.", [str(key)])
        mode = stat.S_IMODE(key.stat().st_mode)
        if exposure(mode):
            report.problem(
                "keys",
                f"The audit signing key {key} is open to other accounts (mode {mode:04o}): "
                "anyone who can read it can sign altered logs.",
                f"chmod 600 {key}",
                [str(key)],
            )
        if own is not None and public.is_file() and not settings.audit_key:
            try:
                recorded = load_public_key(public)
            except AuditKeyError:
                recorded = None
            if recorded != own:
                report.problem(
                    "keys",
                    f"{public} does not hold the public half of the signing key {key}: one of "
                    "them was replaced.",
                    "Restore the pair from a backup; logs verify against the public key, so "
                    "check which one signed them (`controlroom audit verify RUN`).",
                    [str(public), str(key)],
                )
        if own is not None and not [f for f in report.findings if f.area == "keys"]:
            report.ok("keys", f"signing key {key_id(own)}: readable, owner-only")
    try:
        return expected_public_key(
            settings.keys_path, settings.audit_key, settings.audit_public_key
        )
    except AuditKeyError as exc:
        if logs:
            report.problem(
                "audit",
                f"The audit logs cannot be verified: {exc.message}",
                "Restore keys/ from a backup, or pin the public key with "
                "CONTROLROOM_AUDIT_PUBLIC_KEY.",
            )
        return None


def log_names(audit_dir: Path) -> list[str]:
    try:
        with os.scandir(audit_dir) as entries:
            return sorted(
                e.name.removesuffix(".jsonl")
                for e in entries
                if e.name.endswith(".jsonl") and not e.name.startswith(".") and e.is_file()
            )
    except OSError:
        return []


_Verdict = tuple[str, str, str | None, int | None]  # run id, status, reason, record index


_STOP_SEQS = "SELECT run_id, audit_stop_seq FROM runs WHERE audit_stop_seq IS NOT NULL"


def stop_seqs(settings: Settings) -> dict[str, int]:
    """Per run, the seq of the audit record of its last stop, as the run store has it (read
    only; empty when the store cannot tell: none, unreadable, or not migrated yet)."""
    try:
        if settings.backend == "postgres":
            import psycopg

            from controlroom.graphs.storage.postgres_session import CONNECT_KWARGS

            url = settings.database_url_value or ""
            with psycopg.connect(url, autocommit=True, **CONNECT_KWARGS) as conn:
                rows = conn.execute(_STOP_SEQS).fetchall()
        else:
            if not settings.store_path.is_file():
                return {}
            with closing(sqlite3.connect(settings.store_path, timeout=10.0)) as conn:
                conn.execute("PRAGMA query_only=ON")  # doctor reads; it never writes
                rows = conn.execute(_STOP_SEQS).fetchall()
    except Exception:  # the store's own checks report what is wrong with it
        return {}
    return {str(run): int(seq) for run, seq in rows}


def _verify_one(
    path: Path, run_id: str, expected: bytes, status: str | None, stop_seq: int | None
) -> _Verdict:
    """One log, read and verified once, against what the store says of its run."""
    try:
        report = verify_log(path, expected_key=expected, run_id=run_id)
        verdict = against_run_status(report, status, stop_seq)
    except (AuditError, OSError):
        return run_id, "unreadable", None, None
    return run_id, verdict.status, verdict.reason.value if verdict.reason else None, verdict.index


def verify_logs(
    report: DoctorReport,
    settings: Settings,
    runs: list[str],
    expected: bytes | None,
    statuses: dict[str, str] | None = None,
) -> None:
    summary = report.audit
    summary.logs = len(runs)
    if expected is None:
        summary.unverified = len(runs)
        return
    seqs = stop_seqs(settings) if statuses else {}
    for run in runs:
        run_id, status, reason, index = _verify_one(
            settings.audit_path / f"{run}.jsonl",
            run,
            expected,
            (statuses or {}).get(run),
            seqs.get(run),
        )
        if status == "intact":
            summary.intact += 1
        elif status == "incomplete":
            summary.incomplete += 1
            summary.incomplete_runs.append(run_id)
        elif status == "unreadable":
            summary.unverified += 1
            summary.tampered_runs.append(f"{run_id} (unreadable)")
        else:
            summary.tampered += 1
            if reason == Reason.BAD_SIGNATURE.value:
                summary.other_key_runs.append(run_id)
            summary.tampered_runs.append(f"{run_id} (record {index}: {reason})")
    _audit_findings(report, settings, expected)


def _audit_findings(report: DoctorReport, settings: Settings, expected: bytes) -> None:
    summary = report.audit
    if summary.tampered_runs:
        report.problem(
            "audit",
            f"{len(summary.tampered_runs)} audit log(s) fail verification: "
            f"{names(summary.tampered_runs)}.",
            "`controlroom audit verify RUN` shows what changed where; compare with an exported "
            "copy (`audit export`) or a backup, and keep the altered file for investigation."
            + (
                f" {len(summary.other_key_runs)} of them are signed by a key other than "
                f"{key_id(expected)}: if the project key was replaced, verify those with the "
                "old public key (`audit verify RUN --key OLD.pub.pem`)."
                if summary.other_key_runs
                else ""
            ),
            summary.tampered_runs,
        )
    live = [r for r in summary.incomplete_runs if _running(settings, r)]
    dead = [r for r in summary.incomplete_runs if r not in live]
    if dead:
        report.problem(
            "audit",
            f"{len(dead)} audit log(s) are incomplete (a torn last line or records not yet "
            f"signed: a process died while writing): {names(dead)}.",
            "The next process that drives the run repairs and signs its log (`controlroom "
            "resume RUN`); `controlroom audit verify RUN` shows the detail.",
            dead,
        )
    if live:
        report.note(
            "audit",
            f"{len(live)} log(s) are being written right now: {names(live)}.",
            "Their runs are executing; check again when they stop.",
            live,
        )
    if summary.logs and not summary.tampered_runs and not dead:
        report.ok(
            "audit",
            f"{summary.logs} log(s): {summary.intact} intact, {summary.incomplete} incomplete, "
            f"{summary.tampered} tampered (verified against {key_id(expected)})",
        )
    elif not summary.logs:
        report.ok("audit", "no audit logs yet")


def _running(settings: Settings, run_id: str) -> bool:
    if settings.backend != "sqlite":
        return False
    try:
        return is_locked(settings.locks_path, run_id)
    except OSError:
        return False


def logged_run(path: Path) -> LoggedRun:
    """What a run's log says about it: its ``run.start`` and its last stop record."""
    run_id = path.name.removesuffix(".jsonl")
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError:
        lines = []
    first: dict[str, Any] = {}
    if lines and lines[0]:
        try:
            first = json.loads(lines[0])
        except ValueError:
            first = {}
    status = "unknown (no stop record)"
    for line in reversed(lines):
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("kind") in _STOP_KINDS:
            status = str(record.get(STATUS) or record.get("kind"))
            break
    start = first if first.get("kind") == Kind.RUN_START.value else {}
    workflow = start.get("controlroom.workflow") or {}
    return LoggedRun(
        run_id=run_id,
        workflow=workflow.get("name") if isinstance(workflow, dict) else None,
        user=start.get("user.id"),
        started_at=start.get("time"),
        status=status,
        log=str(path),
    )
