"""The SQLite files of a project folder: created owner-only, refused clearly when damaged.

``controlroom.sqlite`` (the run store) and ``checkpoints.sqlite`` (LangGraph's checkpoints)
are opened through :func:`open_database`, which

* creates a missing file with mode 0600 before SQLite opens it: SQLite gives its ``-wal``,
  ``-shm`` and ``-journal`` side files the main file's mode, whatever the umask;
* reads the file's 100-byte header first (:func:`inspect`): a file that is not SQLite, or is
  shorter than the size its header records (cut short by a full disk or a bad copy), is
  refused with a :class:`~controlroom.errors.StateError` that names the file and the way out,
  never a traceback. A short file is confirmed with ``PRAGMA quick_check`` before it is
  called damaged, since another process's WAL checkpoint can lengthen it in the meantime;
* returns a connection whose statements turn SQLite's corruption errors (``database disk
  image is malformed``, ``file is not a database``) into the same error when they surface
  later, at query time.

What each file holds, and what moving it aside costs, is a :class:`StateKind`.
:func:`emptied_store` and :func:`emptied_checkpoints` refuse a file that was emptied while
the project still has runs (its audit logs, its store), instead of starting afresh silently.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from controlroom.config import private_dir, private_file
from controlroom.errors import StateError

_MAGIC = b"SQLite format 3\x00"
_CORRUPT, _NOTADB = 11, 26  # SQLite's primary result codes for a damaged or foreign file

FileState = Literal["missing", "empty", "not_sqlite", "truncated", "unreadable", "ok"]


@dataclass(frozen=True)
class StateKind:
    """One kind of state file: what it holds, and what starting it afresh loses."""

    name: str  # "the run store"
    holds: str  # "the runs, approvals and effect ledger"
    afresh: str  # what moving it aside means


STORE = StateKind(
    "the run store",
    "runs, approvals and the effect ledger",
    "with an empty store: the runs it listed are forgotten (their audit logs stay in audit/, "
    "and `controlroom doctor --orphans` lists them)",
)
CHECKPOINTS = StateKind(
    "the checkpoints",
    "runs' graph state (what `show`, `resume` and `fork` read)",
    "without checkpoints: new runs work, the runs already listed can no longer be shown in "
    "full or resumed",
)
PACK = StateKind(
    "the tool pack's database",
    "the enterprise records the pack's tools read and change",
    "with a new database from `controlroom pack init --force`",
)


@dataclass(frozen=True)
class FileCheck:
    """What the header of a state file says (no SQLite involved)."""

    path: Path
    state: FileState
    size: int = 0
    expected: int = 0  # bytes the header records (pages x page size)
    detail: str = ""

    @property
    def usable(self) -> bool:
        return self.state in ("missing", "empty", "ok")


def inspect(path: Path) -> FileCheck:
    """Classify ``path`` from its size and 100-byte header: missing, empty, not SQLite, cut
    short (smaller than its header says; see :func:`confirm_truncated`), unreadable, or ok."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(100)
    except FileNotFoundError:
        return FileCheck(path, "missing")
    except IsADirectoryError:
        return FileCheck(path, "not_sqlite", detail="it is a folder")
    except OSError as exc:
        return FileCheck(path, "unreadable", detail=exc.strerror or str(exc))
    if size == 0:
        return FileCheck(path, "empty")
    if len(head) < 100 or not head.startswith(_MAGIC):
        what = "text" if head[:64].isascii() and head[:64].strip() else "other data"
        return FileCheck(
            path, "not_sqlite", size, detail=f"its {size} bytes are {what}, not a SQLite header"
        )
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return FileCheck(path, "not_sqlite", size, detail="its header is damaged")
    pages = int.from_bytes(head[28:32], "big")
    header_valid = head[24:28] == head[92:96]  # the in-header size is current
    expected = pages * page_size
    if header_valid and pages and size < expected:
        detail = f"it is {size} bytes, but its header records {pages} pages of {page_size}"
        return FileCheck(path, "truncated", size, expected, detail)
    return FileCheck(path, "ok", size, expected)


def quick_check(conn: sqlite3.Connection) -> str | None:
    """SQLite's ``quick_check`` verdict: None when the file is sound, else the first problem."""
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except (sqlite3.DatabaseError, StateError) as exc:
        return str(getattr(exc, "__cause__", None) or exc)
    found = [str(r[0]) for r in rows]
    return None if found == ["ok"] else "; ".join(found[:3])


def confirm_truncated(check: FileCheck) -> bool:
    """Whether a file :func:`inspect` found short is really damaged (``quick_check``)."""
    try:
        conn = sqlite3.connect(check.path, timeout=10.0)
    except sqlite3.Error:
        return True
    try:
        return quick_check(conn) is not None
    finally:
        conn.close()


# --- errors, one paragraph each --------------------------------------------------------------


def _q(path: Path) -> str:
    return shlex.quote(str(path))


_DOCTOR = "`controlroom doctor` checks the whole project folder."


def _way_out(path: Path, kind: StateKind, lead: str = "Restore") -> str:
    return (
        f"{lead} it from a backup, or move it aside (mv {_q(path)} {_q(path)}.broken) to go "
        f"on {kind.afresh}."
    )


@dataclass(frozen=True)
class Problem:
    """A state file problem in two parts: what is wrong, and what to do (``doctor`` shows
    them apart; commands raise :meth:`error`, both in one paragraph)."""

    title: str
    summary: str
    fix: str

    def error(self) -> StateError:
        return StateError(f"{self.summary} {self.fix} {_DOCTOR}", title=self.title)


def damaged_problem(check: FileCheck, kind: StateKind) -> Problem:
    """What to say about a file :func:`inspect` (and :func:`confirm_truncated`) found unusable."""
    path = check.path
    if check.state == "truncated":
        return Problem(
            "Damaged state file",
            f"{path} ({kind.name}) is cut short: {check.detail}, so part of the {kind.holds} "
            "is missing (a full disk, an interrupted copy or restore).",
            _way_out(path, kind),
        )
    if check.state == "unreadable":
        return Problem(
            "Unreadable state file",
            f"{path} ({kind.name}) cannot be read: {check.detail}.",
            f"Check its owner and mode (ls -l {_q(path)}); this account must be able to read "
            "and write it.",
        )
    return Problem(
        "Damaged state file",
        f"{path} ({kind.name}) is not a SQLite database: {check.detail}, so the {kind.holds} "
        "in it cannot be read.",
        _way_out(path, kind),
    )


def damaged(check: FileCheck, kind: StateKind) -> StateError:
    return damaged_problem(check, kind).error()


def malformed_problem(path: Path, kind: StateKind, reason: str) -> Problem:
    """What to say when SQLite reports corruption while the file is in use."""
    return Problem(
        "Damaged state file",
        f"SQLite reports that {path} ({kind.name}) is damaged ({reason}): some of the "
        f"{kind.holds} cannot be read.",
        _way_out(path, kind, "Stop the processes using this project folder, then restore"),
    )


def malformed(path: Path, kind: StateKind, reason: str) -> StateError:
    return malformed_problem(path, kind, reason).error()


def newer_problem(path: Path, kind: StateKind, version: int, known: int) -> Problem:
    return Problem(
        "State from a newer version",
        f"{path} ({kind.name}) was written by a newer controlroom: its schema version is "
        f"{version}, and this one knows versions up to {known}.",
        "Upgrade controlroom (pip install -U controlroom) to use this project folder, or point "
        "CONTROLROOM_HOME at another one; this version leaves it untouched.",
    )


def newer(path: Path, kind: StateKind, version: int, known: int) -> StateError:
    return newer_problem(path, kind, version, known).error()


def emptied_store_problem(path: Path, audit_dir: Path, logs: int, what: str) -> Problem:
    """What to say about a store that is empty while ``audit_dir`` holds its runs' logs."""
    return Problem(
        "Emptied state file",
        f"{path} ({STORE.name}) {what}, but {audit_dir} holds the signed audit logs of {logs} "
        "run(s): the store was emptied or replaced, and going on would silently start an empty "
        "project beside those runs.",
        f"Restore {path.name} from a backup. To start afresh deliberately, remove the empty "
        f"file (rm {_q(path)}): the audit logs stay, and `controlroom doctor --orphans` lists "
        f"their runs; or move the logs aside first (mv {_q(audit_dir)} {_q(audit_dir)}.old).",
    )


def foreign_store_problem(path: Path, tables: set[str]) -> Problem:
    names = ", ".join(sorted(tables)[:5])
    return Problem(
        "Not a controlroom store",
        f"{path} is a SQLite database, but not a controlroom store (its tables: {names}).",
        f"Point CONTROLROOM_HOME (--home) at the project folder, or restore {path.name} from a "
        "backup.",
    )


def emptied_checkpoints_problem(path: Path, started_runs: int, what: str) -> Problem:
    return Problem(
        "Emptied state file",
        f"{path} ({CHECKPOINTS.name}) {what}, but the store lists {started_runs} started "
        "run(s): their graph state is gone, so they cannot be shown in full or resumed.",
        f"Restore {path.name} from a backup. To go on without it deliberately, remove the "
        f"empty file (rm {_q(path)}): new runs work, and the old ones stay listed.",
    )


def is_corruption(exc: BaseException) -> bool:
    """Whether a SQLite error says the file is damaged or not a database."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_CORRUPT, _NOTADB)
    text = str(exc)
    return "malformed" in text or "not a database" in text


# --- a connection that reports corruption in one paragraph -------------------------------------


class GuardedCursor(sqlite3.Cursor):
    """A cursor whose statements and fetches raise :func:`malformed` on corruption."""

    def _fail(self, exc: sqlite3.DatabaseError) -> StateError:
        conn = self.connection
        path = getattr(conn, "state_path", Path("the database"))
        kind = getattr(conn, "state_kind", STORE)
        return malformed(path, kind, str(exc))

    def execute(self, sql: str, parameters: Any = (), /) -> GuardedCursor:
        try:
            super().execute(sql, parameters)
        except sqlite3.DatabaseError as exc:
            if is_corruption(exc):
                raise self._fail(exc) from exc
            raise
        return self

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> GuardedCursor:
        try:
            super().executemany(sql, seq_of_parameters)
        except sqlite3.DatabaseError as exc:
            if is_corruption(exc):
                raise self._fail(exc) from exc
            raise
        return self

    def executescript(self, sql_script: str, /) -> GuardedCursor:
        try:
            super().executescript(sql_script)
        except sqlite3.DatabaseError as exc:
            if is_corruption(exc):
                raise self._fail(exc) from exc
            raise
        return self

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.DatabaseError as exc:
            if is_corruption(exc):
                raise self._fail(exc) from exc
            raise

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        try:
            return super().fetchmany(self.arraysize if size is None else size)
        except sqlite3.DatabaseError as exc:
            if is_corruption(exc):
                raise self._fail(exc) from exc
            raise

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.DatabaseError as exc:
            if is_corruption(exc):
                raise self._fail(exc) from exc
            raise

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.DatabaseError as exc:
            if is_corruption(exc):
                raise self._fail(exc) from exc
            raise


class GuardedConnection(sqlite3.Connection):
    """A connection whose cursors are :class:`GuardedCursor` (``state_path`` names the file)."""

    state_path: Path
    state_kind: StateKind

    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(factory or GuardedCursor)

    def execute(self, sql: str, parameters: Any = (), /) -> GuardedCursor:
        cursor: GuardedCursor = self.cursor()
        return cursor.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> GuardedCursor:
        cursor: GuardedCursor = self.cursor()
        return cursor.executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> GuardedCursor:
        cursor: GuardedCursor = self.cursor()
        return cursor.executescript(sql_script)

    def commit(self) -> None:
        try:
            super().commit()
        except sqlite3.DatabaseError as exc:
            if is_corruption(exc):
                raise malformed(self.state_path, self.state_kind, str(exc)) from exc
            raise


@dataclass
class Opened:
    """A state file opened by :func:`open_database`."""

    conn: GuardedConnection
    existed: bool  # the file was there (possibly empty) before this open
    tables: set[str]  # the tables it holds
    size: int = 0  # its size before this open


def open_database(
    path: Path,
    kind: StateKind,
    *,
    refuse: Callable[[Opened], Exception | None] | None = None,
    **connect: Any,
) -> Opened:
    """Open (or create, mode 0600) a state file after checking its header; see the module
    docstring. ``refuse`` sees the file before anything is written to it and may return an
    error to raise (a newer schema, an emptied file). ``connect`` goes to
    :func:`sqlite3.connect`. Then sets WAL, ``synchronous=FULL`` and ``busy_timeout``."""
    check = inspect(path)
    if not check.usable and (check.state != "truncated" or confirm_truncated(check)):
        raise damaged(check, kind)
    existed = check.state != "missing"
    if not existed:
        private_dir(path.parent)
        private_file(path)
    conn = sqlite3.connect(path, factory=GuardedConnection, **connect)
    conn.state_path = path
    conn.state_kind = kind
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        opened = Opened(conn, existed, {str(r[0]) for r in rows}, check.size)
        error = refuse(opened) if refuse is not None else None
        if error is not None:
            raise error
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    except BaseException:
        conn.close()
        raise
    return opened


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0]) if row is not None else 0


def audit_logs(audit_dir: Path) -> int:
    """How many run logs ``audit_dir`` holds (0 when it does not exist)."""
    try:
        with os.scandir(audit_dir) as entries:
            return sum(
                1 for e in entries if e.name.endswith(".jsonl") and not e.name.startswith(".")
            )
    except OSError:
        return 0


def _emptied_what(opened: Opened) -> str:
    return "is empty (0 bytes)" if opened.size == 0 else "is a database without any tables"


def emptied_store(opened: Opened, audit_dir: Path) -> StateError | None:
    """The error for a store that exists but holds none of controlroom's tables: another
    database, or one emptied while ``audit_dir`` still holds the logs of its runs."""
    path = opened.conn.state_path
    if "runs" in opened.tables or not opened.existed:
        return None
    if opened.tables:
        return foreign_store_problem(path, opened.tables).error()
    logs = audit_logs(audit_dir)
    if not logs:
        return None
    return emptied_store_problem(path, audit_dir, logs, _emptied_what(opened)).error()


def emptied_checkpoints(opened: Opened, started_runs: Callable[[], int]) -> StateError | None:
    """The error for a checkpoints file without LangGraph's tables while the store lists
    runs that were started (``started_runs()``: so their state was lost)."""
    path = opened.conn.state_path
    if "checkpoints" in opened.tables or not opened.existed:
        return None
    started = started_runs()
    if not started:
        return None
    return emptied_checkpoints_problem(path, started, _emptied_what(opened)).error()
