"""``controlroom doctor``'s checks of the stores: the run store and the checkpoints (SQLite
files, or PostgreSQL), the tool pack's database and Chroma's ``chroma/`` folder.

Each check reads and never writes (SQLite connections are ``query_only``): the header, the
schema version against this code's, the tables, and SQLite's ``quick_check``. The store checks
return what the cross-check needs: the store's run statuses and the runs with checkpoints.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlroom.config import Settings
from controlroom.errors import ConfigError
from controlroom.graphs.control.doctor_report import DoctorReport
from controlroom.graphs.control.doctor_runs import check_file_mode
from controlroom.graphs.storage import state_files
from controlroom.graphs.storage.run_store import Store
from controlroom.graphs.storage.state_files import CHECKPOINTS, PACK, STORE, StateKind

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


def check_store(report: DoctorReport, settings: Settings, logs: int) -> dict[str, str] | None:
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


def check_checkpoints(
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


def check_postgres(
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


def check_pack(report: DoctorReport, settings: Settings) -> None:
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
        check_file_mode(report, "pack", path)
    report.ok("pack", f"{path.name}: the tool pack's tables, integrity ok")


def check_documents(report: DoctorReport, settings: Settings) -> None:
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
