"""The enterprise tool pack's SQLite database: where it is, its tables, safe writes.

The database is ``$CONTROLROOM_PACK_DB`` or ``<project folder>/enterprise.sqlite`` (the
project folder is ``CONTROLROOM_HOME``, default ``./.controlroom``). The policy gate reads
resource attributes (an invoice's amount due, an employee's managers) from the same file
the tools change, so decisions and effects always see the same data.

Every write runs in one ``BEGIN IMMEDIATE`` transaction together with a row in
``effects`` keyed by the call's idempotency key: a repeated call returns the recorded
result instead of repeating the effect, and a tool that raises leaves nothing written.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from controlroom.config import active_home, private_dir, private_file
from controlroom.errors import ToolExecutionError
from controlroom.tools.spec import ToolContext

DB_ENV = "CONTROLROOM_PACK_DB"
DB_NAME = "enterprise.sqlite"
COMPANY = "Example Corp"
DOMAIN = "example.com"
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS employees (
  id TEXT PRIMARY KEY, login TEXT NOT NULL UNIQUE, name TEXT NOT NULL, email TEXT NOT NULL,
  title TEXT NOT NULL, department TEXT NOT NULL, manager_id TEXT, location TEXT NOT NULL,
  hired_on TEXT NOT NULL, salary INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS invoices (
  id TEXT PRIMARY KEY, vendor TEXT NOT NULL, amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
  currency TEXT NOT NULL, department TEXT NOT NULL, issued_on TEXT NOT NULL, due_on TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('open', 'paid')));
CREATE TABLE IF NOT EXISTS payments (
  id TEXT PRIMARY KEY, invoice_id TEXT NOT NULL REFERENCES invoices(id),
  amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
  status TEXT NOT NULL CHECK (status IN ('scheduled', 'released')),
  created_by TEXT NOT NULL, created_at TEXT NOT NULL, released_by TEXT, released_at TEXT,
  note TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS tickets (
  id TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT NOT NULL,
  queue TEXT NOT NULL CHECK (queue IN ('it', 'facilities', 'hr', 'finance')),
  priority TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'critical')),
  status TEXT NOT NULL CHECK (status IN ('open', 'in_progress', 'closed')),
  reporter TEXT NOT NULL, assignee TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  resolution TEXT);
CREATE TABLE IF NOT EXISTS ticket_comments (
  ticket_id TEXT NOT NULL REFERENCES tickets(id), author TEXT NOT NULL, body TEXT NOT NULL,
  created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mail (
  id TEXT PRIMARY KEY, folder TEXT NOT NULL CHECK (folder IN ('drafts', 'outbox')),
  sender TEXT NOT NULL, recipients TEXT NOT NULL, cc TEXT NOT NULL, subject TEXT NOT NULL,
  body TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS effects (
  idempotency_key TEXT PRIMARY KEY, tool TEXT NOT NULL, result TEXT NOT NULL,
  created_at TEXT NOT NULL);
"""


def database_path() -> Path:
    """Where the pack's database is: ``$CONTROLROOM_PACK_DB`` or ``<home>/enterprise.sqlite``."""
    return Path(_location())


def _location() -> str:
    explicit = os.environ.get(DB_ENV)
    if explicit:
        return explicit
    return str((active_home() / DB_NAME).absolute())


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _missing(path: Path) -> ToolExecutionError:
    return ToolExecutionError(
        f"There is no enterprise database at {path}. Create it with `controlroom pack init` "
        f"(it goes to {DB_ENV} or <CONTROLROOM_HOME>/{DB_NAME})."
    )


def connect(path: Path | None = None) -> sqlite3.Connection:
    """A read-write connection in autocommit mode (transactions are explicit)."""
    path = path or database_path()
    if not path.is_file():
        raise _missing(path)
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


_readers = threading.local()


def reader() -> sqlite3.Connection:
    """A cached read-only connection for this thread, reopened if the file was replaced."""
    location = _location()
    try:
        stat = os.stat(location)
    except FileNotFoundError:
        raise _missing(Path(location)) from None
    key = (location, stat.st_dev, stat.st_ino, stat.st_mtime_ns)  # a replaced file reopens
    cached: tuple[tuple[str, int, int, int], sqlite3.Connection] | None = getattr(
        _readers, "conn", None
    )
    if cached is not None and cached[0] == key:
        return cached[1]
    if cached is not None:
        cached[1].close()
    uri = f"{Path(location).resolve().as_uri()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    conn.row_factory = sqlite3.Row
    _readers.conn = (key, conn)
    return conn


def read(query: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    return reader().execute(query, params).fetchall()


def read_one(query: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
    row: sqlite3.Row | None = reader().execute(query, params).fetchone()
    return row


def write_once(
    ctx: ToolContext, tool: str, body: Callable[[sqlite3.Connection], dict[str, Any]]
) -> dict[str, Any]:
    """Run ``body`` in one transaction, once per idempotency key; return its result."""
    conn = connect()
    try:
        conn.execute("BEGIN IMMEDIATE")
        done = conn.execute(
            "SELECT tool, result FROM effects WHERE idempotency_key = ?", (ctx.idempotency_key,)
        ).fetchone()
        if done is not None:
            conn.execute("ROLLBACK")
            if done["tool"] != tool:
                raise ToolExecutionError(
                    f"The idempotency key {ctx.idempotency_key} was already used by "
                    f"{done['tool']}; a key stands for one call of one tool."
                )
            recorded: dict[str, Any] = json.loads(done["result"])
            return recorded
        result = body(conn)
        conn.execute(
            "INSERT INTO effects VALUES (?, ?, ?, ?)",
            (ctx.idempotency_key, tool, json.dumps(result, sort_keys=True), now()),
        )
        conn.execute("COMMIT")
        return result
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()


def next_id(conn: sqlite3.Connection, table: str, prefix: str, width: int) -> str:
    """The next sequential id like ``PAY-0042`` (inside the write transaction)."""
    row = conn.execute(
        f"SELECT MAX(CAST(SUBSTR(id, {len(prefix) + 1}) AS INTEGER)) FROM {table}"
    ).fetchone()
    return f"{prefix}{(row[0] or 0) + 1:0{width}d}"


def cents(amount: float) -> int:
    return round(amount * 100)


def money(amount_cents: int) -> float:
    return amount_cents / 100


def create_database(path: Path) -> sqlite3.Connection:
    """Create the tables in a new file at ``path`` (WAL journal); the caller seeds them.

    The file is created 0600 before SQLite opens it (its ``-wal``/``-shm`` get the same
    mode), a missing folder 0700: it holds salaries and mail, whatever the umask."""
    private_dir(path.parent)
    private_file(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    return conn
