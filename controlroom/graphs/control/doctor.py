"""``controlroom doctor``: check a project folder's state, and say what to do about it.

:func:`diagnose` reads, and never writes or creates:

* **the stores**: ``controlroom.sqlite`` and ``checkpoints.sqlite`` (or PostgreSQL with
  ``CONTROLROOM_DATABASE_URL``), the tool pack's ``enterprise.sqlite`` and Chroma's
  ``chroma/`` folder when present: the header, the schema version (newer than this code:
  refused; older: migrated on next use), SQLite's ``quick_check``;
* **the audit signing key**: present, readable, owner-only, the same key as the public key
  next to it; and **every audit log**, verified once each (intact / incomplete / tampered,
  naming the bad ones, and the logs signed by another key);
* **runs against logs**: runs whose log is in ``audit/`` but which the store does not list
  (``--orphans`` lists them from their logs), runs the store lists without a log, started
  runs without checkpoints;
* **permissions**: the folder and everything in it owner-only (0700 / 0600).

Each :class:`Finding` says what is wrong and what to do. The work is one pass per log and a
few queries per store, so it stays fast with thousands of runs.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

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
from controlroom.config import Settings, exposure, fix_command
from controlroom.errors import ConfigError
from controlroom.graphs.storage import state_files
from controlroom.graphs.storage.locks import is_locked
from controlroom.graphs.storage.records import RunStatus
from controlroom.graphs.storage.run_store import Store
from controlroom.graphs.storage.state_files import CHECKPOINTS, PACK, STORE, StateKind

Severity = Literal["problem", "note"]
_SHOWN = 10  # names listed in a finding's summary (JSON has them all)
_STOP_KINDS = {Kind.RUN_END.value, Kind.RUN_WAIT.value, Kind.RUN_PAUSE.value}


@dataclass
class Finding:
    """Something wrong (``problem``: exit 1) or worth knowing (``note``), and what to do."""

    area: str
    severity: Severity
    summary: str
    fix: str = ""
    items: list[str] = field(default_factory=list)


@dataclass
class Passed:
    area: str
    summary: str


@dataclass
class LoggedRun:
    """A run as its audit log tells it (for runs the store does not list)."""

    run_id: str
    workflow: str | None
    user: str | None
    started_at: str | None
    status: str  # the last stop record's status, or "unknown (no stop record)"
    log: str


@dataclass
class AuditSummary:
    logs: int = 0
    intact: int = 0
    incomplete: int = 0
    tampered: int = 0
    unverified: int = 0  # no key to verify against, or unreadable
    tampered_runs: list[str] = field(default_factory=list)
    incomplete_runs: list[str] = field(default_factory=list)
    other_key_runs: list[str] = field(default_factory=list)


@dataclass
class DoctorReport:
    home: Path
    backend: str
    checks: list[Passed] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    audit: AuditSummary = field(default_factory=AuditSummary)
    store_runs: int | None = None  # None: the store could not be read
    orphans: list[str] = field(default_factory=list)  # logged, not in the store
    unlogged: list[str] = field(default_factory=list)  # in the store, no log
    orphan_details: list[LoggedRun] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "problem"]

    @property
    def healthy(self) -> bool:
        return not self.problems

    def ok(self, area: str, summary: str) -> None:
        self.checks.append(Passed(area, summary))

    def problem(
        self, area: str, summary: str, fix: str = "", items: list[str] | None = None
    ) -> None:
        self.findings.append(Finding(area, "problem", summary, fix, items or []))

    def state(self, area: str, problem: state_files.Problem, path: Path) -> None:
        self.problem(area, problem.summary, problem.fix, [str(path)])

    def note(self, area: str, summary: str, fix: str = "", items: list[str] | None = None) -> None:
        self.findings.append(Finding(area, "note", summary, fix, items or []))

    def to_json(self) -> dict[str, Any]:
        return {
            "home": str(self.home),
            "backend": self.backend,
            "healthy": self.healthy,
            "problems": len(self.problems),
            "checks": [asdict(c) for c in self.checks],
            "findings": [asdict(f) for f in self.findings],
            "audit": asdict(self.audit),
            "runs": {
                "store": self.store_runs,
                "orphans": self.orphans,
                "without_log": self.unlogged,
                "orphan_details": [asdict(o) for o in self.orphan_details],
            },
            "seconds": round(self.seconds, 3),
        }


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


# --- SQLite files ------------------------------------------------------------------------------


@dataclass
class _Db:
    """What one SQLite state file holds, read without changing it."""

    version: int = 0
    tables: set[str] = field(default_factory=set)
    damaged: str | None = None  # quick_check's complaint


@contextmanager
def _reading(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, timeout=10.0)
    with closing(conn):
        conn.execute("PRAGMA query_only=ON")  # doctor reads; it never writes
        yield conn


def _open_sqlite(report: DoctorReport, area: str, path: Path, kind: StateKind) -> _Db | None:
    """Header, tables, version and integrity of ``path``; a finding when it is damaged.
    Returns None when it is missing, empty or unusable (the caller judges missing/empty)."""
    check = state_files.inspect(path)
    if check.state in ("missing", "empty"):
        return None
    if not check.usable and (check.state != "truncated" or state_files.confirm_truncated(check)):
        report.state(area, state_files.damaged_problem(check, kind), path)
        return None
    try:
        with _reading(path) as conn:
            tables = {
                str(r[0])
                for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            found = _Db(state_files.schema_version(conn), tables, state_files.quick_check(conn))
    except sqlite3.DatabaseError as exc:
        found = _Db(damaged=str(exc))
    if found.damaged is not None:
        report.state(area, state_files.malformed_problem(path, kind, found.damaged), path)
        return None
    return found


def _store_sqlite(report: DoctorReport, settings: Settings, logs: int) -> dict[str, str] | None:
    path = settings.store_path
    db = _open_sqlite(report, "store", path, STORE)
    if db is None:
        check = state_files.inspect(path)
        if check.state == "missing":
            if logs:
                report.problem(
                    "store",
                    f"There is no {path} (the run store), but audit/ holds the logs of {logs} "
                    "run(s): the store was deleted or moved, and the next command starts an "
                    "empty one.",
                    "Restore it from a backup before the next command. If you meant to start "
                    "afresh, `controlroom doctor --orphans` lists the old runs from their logs "
                    "(or move audit/ aside).",
                    [str(path)],
                )
            else:
                report.ok("store", f"{path.name}: not created yet (made on first use)")
        elif check.state == "empty":
            _emptied_store(report, path, logs, "is empty (0 bytes)")
        return None
    return _store_contents(report, path, db, logs)


def _emptied_store(report: DoctorReport, path: Path, logs: int, what: str) -> None:
    if not logs:
        report.ok("store", f"{path.name}: {what}, no runs yet (set up on first use)")
        return
    problem = state_files.emptied_store_problem(path, path.parent / "audit", logs, what)
    report.state("store", problem, path)


def _store_contents(report: DoctorReport, path: Path, db: _Db, logs: int) -> dict[str, str] | None:
    known = Store.SCHEMA_VERSION
    if db.version > known:
        report.state("store", state_files.newer_problem(path, STORE, db.version, known), path)
        return None
    if "runs" not in db.tables:
        if db.tables:
            report.state("store", state_files.foreign_store_problem(path, db.tables), path)
        else:
            _emptied_store(report, path, logs, "is a database without any tables")
        return None
    with _reading(path) as conn:
        rows = conn.execute("SELECT run_id, status FROM runs").fetchall()
    statuses = {str(r[0]): str(r[1]) for r in rows}
    if db.version < known:
        report.note(
            "store",
            f"{path.name} has schema version {db.version} (this controlroom writes {known}).",
            "It is migrated the next time a command opens it; nothing to do.",
        )
    report.ok(
        "store", f"{path.name}: schema version {db.version}, {len(statuses)} run(s), integrity ok"
    )
    return statuses


def _checkpoints_sqlite(
    report: DoctorReport, settings: Settings, started: list[str] | None
) -> set[str] | None:
    path = settings.checkpoints_path
    db = _open_sqlite(report, "checkpoints", path, CHECKPOINTS)
    if db is None or "checkpoints" not in db.tables:
        check = state_files.inspect(path)
        if db is None and check.state not in ("missing", "empty"):
            return None  # damaged: reported
        what = {"missing": "is missing", "empty": "is empty (0 bytes)"}.get(
            check.state, "is a database without checkpoints"
        )
        if started:
            problem = state_files.emptied_checkpoints_problem(path, len(started), what)
            report.state("checkpoints", problem, path)
        else:
            report.ok("checkpoints", f"{path.name}: {what} (no started runs need it)")
        return None
    with _reading(path) as conn:
        threads = {str(r[0]) for r in conn.execute("SELECT DISTINCT thread_id FROM checkpoints")}
    report.ok("checkpoints", f"{path.name}: {len(threads)} run(s) with checkpoints, integrity ok")
    return threads


# --- PostgreSQL --------------------------------------------------------------------------------


def _postgres(
    report: DoctorReport, settings: Settings
) -> tuple[dict[str, str] | None, set[str] | None]:
    url = settings.database_url_value or ""
    try:
        import psycopg

        from controlroom.graphs.storage.postgres_session import (
            CONNECT_KWARGS,
            check_url,
            describe_url,
            unreachable,
        )
    except ImportError as exc:
        report.problem(
            "database",
            "CONTROLROOM_DATABASE_URL is set, but the PostgreSQL support is not installed "
            f"({exc.name} is missing).",
            "pip install 'controlroom[scale]', or unset CONTROLROOM_DATABASE_URL.",
        )
        return None, None
    where = describe_url(url)
    try:
        check_url(url)
        conn = psycopg.connect(url, autocommit=True, **CONNECT_KWARGS)
    except ConfigError as exc:
        report.problem("database", f"CONTROLROOM_DATABASE_URL cannot be used: {exc.message}")
        return None, None
    except psycopg.Error as exc:
        report.problem(
            "database", f"Cannot open the database at {where}.", unreachable(url, exc).message
        )
        return None, None
    try:
        with conn:
            return _postgres_contents(report, conn, where)
    except psycopg.Error as exc:
        report.problem(
            "database",
            f"Reading the store at {where} failed: {' '.join(str(exc).split())}.",
            "Check the server's log and the user's privileges on the store's tables.",
        )
        return None, None


def _postgres_contents(
    report: DoctorReport, conn: Any, where: str
) -> tuple[dict[str, str] | None, set[str] | None]:
    def one(sql: str) -> Any:
        row = conn.execute(sql).fetchone()
        return row[0] if row else None

    known = Store.SCHEMA_VERSION
    version = 0
    if one("SELECT to_regclass('controlroom_meta')") is not None:
        value = one("SELECT value FROM controlroom_meta WHERE key = 'schema_version'")
        version = int(value) if value and str(value).isdigit() else 0
    if version > known:
        report.problem(
            "database",
            f"The store at {where} was written by a newer controlroom: its schema version is "
            f"{version}, and this one knows versions up to {known}.",
            "Upgrade controlroom (pip install -U controlroom) to use it, or point "
            "CONTROLROOM_DATABASE_URL at another database (or schema).",
        )
        return None, None
    statuses: dict[str, str] | None = None
    if one("SELECT to_regclass('runs')") is not None:
        rows = conn.execute("SELECT run_id, status FROM runs").fetchall()
        statuses = {str(r[0]): str(r[1]) for r in rows}
        report.ok("database", f"{where}: store schema version {version}, {len(statuses)} run(s)")
        if version < known:
            report.note(
                "database",
                f"The store at {where} has schema version {version} (this controlroom writes "
                f"{known}).",
                "It is migrated the next time a command opens it; nothing to do.",
            )
    else:
        report.ok("database", f"{where}: no store tables yet (made on first use)")
    threads: set[str] | None = None
    if one("SELECT to_regclass('checkpoints')") is not None:
        threads = {str(r[0]) for r in conn.execute("SELECT DISTINCT thread_id FROM checkpoints")}
    return statuses, threads


# --- the pack and the documents ----------------------------------------------------------------


def _pack(report: DoctorReport, settings: Settings) -> None:
    from controlroom.tools.pack.db import DB_ENV, DB_NAME

    explicit = os.environ.get(DB_ENV)
    path = Path(explicit) if explicit else settings.home / DB_NAME
    check = state_files.inspect(path)
    if check.state == "missing":
        return
    if check.state == "empty":
        report.problem(
            "pack",
            f"{path} (the tool pack's database) is empty (0 bytes).",
            "Restore it from a backup, or make a new one: controlroom pack init --force.",
            [str(path)],
        )
        return
    db = _open_sqlite(report, "pack", path, PACK)
    if db is None:
        return
    if "employees" not in db.tables:
        report.problem(
            "pack",
            f"{path} is a SQLite database without the tool pack's tables.",
            "Restore it from a backup, or make a new one: controlroom pack init --force.",
            [str(path)],
        )
        return
    if explicit:
        _file_mode(report, "pack", path)
    report.ok("pack", f"{path.name}: the tool pack's tables, integrity ok")


def _documents(report: DoctorReport, settings: Settings) -> None:
    folder = settings.home / "chroma"
    if settings.chroma_url:
        report.note("documents", f"Documents live in the Chroma server at {settings.chroma_url}.")
        return
    if not folder.is_dir():
        return
    database = folder / "chroma.sqlite3"
    again = "ingest the documents again (controlroom ingest FOLDER)"
    if state_files.inspect(database).state in ("missing", "empty"):
        report.problem(
            "documents",
            f"{folder} holds no Chroma database ({database.name} is missing or empty).",
            f"Restore the folder from a backup, or move it aside and {again}.",
            [str(folder)],
        )
        return
    kind = StateKind("the document store", "ingested documents", f"empty: {again}")
    if _open_sqlite(report, "documents", database, kind) is None:
        return
    try:  # embedded, telemetry off, no embedding function: nothing is downloaded
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        client = chromadb.PersistentClient(path=str(folder), settings=chroma)
        collections = int(client.count_collections())
    except Exception as exc:
        text = " ".join(str(exc).split())[:200] or type(exc).__name__
        report.problem(
            "documents",
            f"The embedded document store at {folder} cannot be opened ({text}).",
            f"Restore the folder from a backup, or move it aside and {again}.",
            [str(folder)],
        )
        return
    report.ok("documents", f"chroma/: {collections} collection(s), integrity ok")


# --- keys and logs -------------------------------------------------------------------------------


def _keys(report: DoctorReport, settings: Settings, logs: int) -> bytes | None:
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


def _log_names(audit_dir: Path) -> list[str]:
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


def _verify_one(path: Path, run_id: str, expected: bytes, status: str | None) -> _Verdict:
    """One log, read and verified once, against what the store says of its run."""
    try:
        verdict = against_run_status(verify_log(path, expected_key=expected, run_id=run_id), status)
    except (AuditError, OSError):
        return run_id, "unreadable", None, None
    return run_id, verdict.status, verdict.reason.value if verdict.reason else None, verdict.index


def _verify_logs(
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
    for run in runs:
        run_id, status, reason, index = _verify_one(
            settings.audit_path / f"{run}.jsonl", run, expected, (statuses or {}).get(run)
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
            f"{_names(summary.tampered_runs)}.",
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
            f"signed: a process died while writing): {_names(dead)}.",
            "The next process that drives the run repairs and signs its log (`controlroom "
            "resume RUN`); `controlroom audit verify RUN` shows the detail.",
            dead,
        )
    if live:
        report.note(
            "audit",
            f"{len(live)} log(s) are being written right now: {_names(live)}.",
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


# --- runs against logs and checkpoints ---------------------------------------------------------


def _cross_check(
    report: DoctorReport,
    settings: Settings,
    statuses: dict[str, str] | None,
    threads: set[str] | None,
    logs: list[str],
) -> None:
    if statuses is None:
        report.orphans = list(logs)  # the store cannot say: every log is listed
        return
    report.store_runs = len(statuses)
    report.orphans = [r for r in logs if r not in statuses]
    logged = set(logs)
    started = [r for r, s in statuses.items() if s != RunStatus.QUEUED.value]
    report.unlogged = sorted(r for r in started if r not in logged)
    if report.orphans:
        report.problem(
            "runs",
            f"{len(report.orphans)} run(s) have an audit log but are not in the store: "
            f"{_names(report.orphans)}.",
            "The store lost them (restored from an older backup, emptied, or replaced): "
            "restore a newer copy of the store if there is one. `controlroom doctor --orphans` "
            "lists them from their logs; `controlroom audit show RUN` shows each one.",
            report.orphans,
        )
    if report.unlogged:
        how = report.problem if settings.audit else report.note
        how(
            "runs",
            f"{len(report.unlogged)} run(s) in the store have no audit log: "
            f"{_names(report.unlogged)}.",
            "They ran with CONTROLROOM_AUDIT=false, or their logs were removed from audit/: "
            "restore audit/ from a backup if they were."
            if settings.audit
            else "Audit is off (CONTROLROOM_AUDIT=false): runs leave no log.",
            report.unlogged,
        )
    if threads is not None:
        stateless = sorted(r for r in started if r not in threads)
        if stateless:
            report.problem(
                "checkpoints",
                f"{len(stateless)} started run(s) have no checkpoints: {_names(stateless)}.",
                "Their graph state is lost: they stay listed and audited, but cannot be shown "
                "in full or resumed. Restore the checkpoints from a backup if there is one.",
                stateless,
            )
    if not report.orphans and not report.unlogged:
        report.ok("runs", "every run in the store has its log, and every log its run")


# --- permissions ---------------------------------------------------------------------------------


def _file_mode(report: DoctorReport, area: str, path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    how = exposure(mode)
    if how:
        report.problem(
            "permissions",
            f"{path} is open to other accounts (mode {mode:04o}: {how}).",
            f"chmod 600 {path}",
            [str(path)],
        )


def _permissions(report: DoctorReport, home: Path) -> None:
    exposed: list[str] = []
    entries = 0
    for folder, dirs, files in os.walk(home):
        for name in (*dirs, *files):
            entries += 1
            full = os.path.join(folder, name)
            try:
                info = os.lstat(full)
            except OSError:
                continue
            if not stat.S_ISLNK(info.st_mode) and stat.S_IMODE(info.st_mode) & 0o077:
                exposed.append(f"{os.path.relpath(full, home)} ({stat.S_IMODE(info.st_mode):04o})")
    mode = stat.S_IMODE(home.stat().st_mode)
    how = exposure(mode)
    if how:
        report.problem(
            "permissions",
            f"The project folder {home} is open to other accounts (mode {mode:04o}: {how}): "
            "they can read its runs, audit logs and databases.",
            f"Make it and its contents owner-only: {fix_command(home)}",
            [str(home)],
        )
    if exposed and how:
        report.problem(
            "permissions",
            f"{len(exposed)} file(s) and folder(s) in the project folder are open to other "
            f"accounts: {_names(exposed)}.",
            f"Make them owner-only: {fix_command(home)}",
            exposed,
        )
    elif exposed:  # behind an owner-only folder nobody else reaches them, for now
        report.note(
            "permissions",
            f"{len(exposed)} file(s) and folder(s) in the project folder have group or other "
            f"bits set: {_names(exposed)}. The folder itself is owner-only, so no other account "
            "can reach them now; a copy or a looser folder mode would expose them.",
            f"Make them owner-only too: {fix_command(home)}",
            exposed,
        )
    if not how and not exposed:
        report.ok("permissions", f"the project folder and its {entries} entries are owner-only")


# --- the whole check -----------------------------------------------------------------------------


def diagnose(settings: Settings, *, orphans: bool = False) -> DoctorReport:
    """Check the project folder ``settings.home`` (see the module docstring); with
    ``orphans``, also read each orphaned log's start and last stop record."""
    began = time.perf_counter()
    home = settings.home
    if not home.is_dir():
        raise ConfigError(
            f"There is no project folder at {home}. `controlroom init` creates one; set "
            "CONTROLROOM_HOME (--home) to check another.",
            title="No project folder",
        )
    postgres = settings.backend == "postgres"
    report = DoctorReport(home=home, backend="PostgreSQL" if postgres else "SQLite")
    logs = _log_names(settings.audit_path)
    if postgres:
        statuses, threads = _postgres(report, settings)
    else:
        statuses = _store_sqlite(report, settings, len(logs))
        started = (
            [r for r, s in statuses.items() if s != RunStatus.QUEUED.value]
            if statuses is not None
            else None
        )
        threads = _checkpoints_sqlite(report, settings, started)
    expected = _keys(report, settings, len(logs))
    _verify_logs(report, settings, logs, expected, statuses)
    _pack(report, settings)
    _documents(report, settings)
    _cross_check(report, settings, statuses, threads, logs)
    _permissions(report, home)
    if orphans:
        report.orphan_details = [
            logged_run(settings.audit_path / f"{r}.jsonl") for r in report.orphans
        ]
    report.seconds = time.perf_counter() - began
    return report
