"""The PostgreSQL backend: shared checkpoints, store and run locks for many machines.

Selected by ``CONTROLROOM_DATABASE_URL`` (``postgresql://USER:PASSWORD@HOST:PORT/DB``).

* **Checkpoints**: LangGraph's ``PostgresSaver`` (the strict serializer, ``durability="sync"``
  as with SQLite).
* **Store**: :class:`PostgresStore` is the SQLite :class:`~.run_store.Store`
  with its SQL sent to PostgreSQL: the same tables (the schema is portable SQL), the same
  queries, with ``?``/``:name`` placeholders and ``INSERT OR IGNORE`` translated. Every
  write commits (PostgreSQL's default ``synchronous_commit=on`` makes it durable) before
  the caller goes on, so a decision is on disk before the effect it authorises. Columns that
  the SQLite schema gained after a database was created are added on start. The schema
  version is the ``schema_version`` row of ``controlroom_meta``: set on creation, checked
  on start (a newer one is refused before anything changes).
* **Run locks**: a session-level advisory lock per run (``pg_try_advisory_lock`` on a
  64-bit hash of the run id) held on one connection per process that is used for nothing
  else. A process that dies (SIGKILL, OOM, a lost machine) closes that session and the
  server drops its locks: at once for a killed process, and within the TCP keepalive
  (about 30 s) for a machine that vanished. The holder is named by the connection's
  ``application_name`` (``controlroom pid P on HOST``), shown in
  :class:`~controlroom.errors.RunBusyError`.

Connections come from a small ``psycopg_pool`` pool per process
(``CONTROLROOM_DATABASE_POOL_SIZE``, default 4) with keepalives and a connect timeout, so
an unreachable server is reported in seconds with what to check.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
import psycopg.sql
from langgraph.checkpoint.postgres import PostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from controlroom.config import Settings
from controlroom.errors import ConfigError, StateError
from controlroom.graphs.storage.backend import Backend, strict_serializer, with_crash_points
from controlroom.graphs.storage.checkpoints import CheckpointInfo, saver_history
from controlroom.graphs.storage.postgres_session import (
    CONNECT_KWARGS,
    URL_HINT,
    AdvisoryLocks,
    application_name,
    check_url,
    describe_url,
    unreachable,
)
from controlroom.graphs.storage.run_store import Store
from controlroom.graphs.storage.schema import SCHEMA

_SCHEMA_LOCK = 0x636F6E74726F6C  # "control": serialises schema set-up across processes


# The store's schema version lives here (SQLite keeps it in PRAGMA user_version).
META_TABLE = (
    "CREATE TABLE IF NOT EXISTS controlroom_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
)


def newer_database(url: str, version: int, known: int) -> StateError:
    return StateError(
        f"The database at {describe_url(url)} was written by a newer controlroom: its store "
        f"schema version is {version}, and this one knows versions up to {known}. Upgrade "
        "controlroom (pip install -U controlroom) to use it, or point CONTROLROOM_DATABASE_URL "
        "at another database (or schema); this version leaves it untouched.",
        title="State from a newer version",
    )


# --- SQL translation -----------------------------------------------------------------------
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_OR_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO", re.IGNORECASE)


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """SQLite's dialect, as the store writes it, in PostgreSQL's (psycopg placeholders).

    ``?`` becomes ``%s``, ``:name`` becomes ``%(name)s``, a literal ``%`` is doubled, and
    ``INSERT OR IGNORE INTO`` becomes ``INSERT INTO ... ON CONFLICT DO NOTHING``; text in
    single quotes is left alone.
    """
    parts = re.split(r"('(?:[^']|'')*')", sql)
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # a quoted literal
            out.append(part.replace("%", "%%"))
            continue
        escaped = part.replace("%", "%%").replace("?", "%s")
        out.append(_NAMED.sub(r"%(\1)s", escaped))
    text = "".join(out)
    if _OR_IGNORE.match(text):
        text = _OR_IGNORE.sub("INSERT INTO", text, count=1).rstrip().rstrip(";")
        text += " ON CONFLICT DO NOTHING"
    if re.match(r"^\s*INSERT\s+OR\s+REPLACE", text, re.IGNORECASE):
        raise ConfigError(
            "INSERT OR REPLACE has no portable translation; write an explicit "
            "INSERT ... ON CONFLICT in the store.",
            title="Unsupported SQL",
        )
    return text


class _Row(dict[str, Any]):
    """A row readable by column name (like sqlite3.Row) and by position."""

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, int):
            return list(self.values())[key]
        return super().__getitem__(key)


class _Result:
    """The fetched rows of one statement (the connection is free again)."""

    def __init__(self, rows: list[_Row], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> _Row | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[_Row]:
        return list(self._rows)

    def __iter__(self) -> Iterator[_Row]:
        return iter(self._rows)


def _run(conn: Any, sql: str, params: Sequence[Any] | Mapping[str, Any] | None) -> _Result:
    cur = conn.execute(translate(sql), params if params else None)
    rows = [_Row(r) for r in cur.fetchall()] if cur.description else []
    return _Result(rows, cur.rowcount)


class _PooledConnection:
    """What the store calls ``self._conn``: each statement on a pooled connection."""

    def __init__(self, pool: ConnectionPool[Any], url: str) -> None:
        self._pool = pool
        self._url = url

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> _Result:
        try:
            with self._pool.connection() as conn:
                return _run(conn, sql, params)
        except PoolTimeout as exc:
            raise unreachable(self._url, exc) from None

    def close(self) -> None:
        self._pool.close()


class _TxConnection:
    """One connection inside a transaction (what ``Store._tx`` yields)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> _Result:
        return _run(self._conn, sql, params)


def _schema_statements() -> list[str]:
    return [s.strip() for s in SCHEMA.split(";") if s.strip()]


def _schema_columns() -> dict[str, list[tuple[str, str]]]:
    """Each table's columns and their definitions, from the (portable) SQLite schema."""
    tables: dict[str, list[tuple[str, str]]] = {}
    for statement in _schema_statements():
        match = re.match(
            r"CREATE TABLE IF NOT EXISTS (\w+) \((.*)\)$", statement, re.DOTALL | re.IGNORECASE
        )
        if match is None:
            continue
        columns = []
        for line in match.group(2).split(",\n"):
            head = line.strip().split(None, 1)
            if len(head) == 2 and head[0].upper() not in ("PRIMARY", "UNIQUE", "FOREIGN"):
                definition = re.sub(r"NOT NULL|PRIMARY KEY", "", head[1]).strip()
                columns.append((head[0], definition))
        tables[match.group(1)] = columns
    return tables


class PostgresStore(Store):
    """The project store in PostgreSQL: same tables, same behaviour as the SQLite one."""

    def __init__(self, pool: ConnectionPool[Any], url: str) -> None:
        # No super().__init__(): that opens a SQLite file. Store's methods only use
        # self._lock, self._conn and self._tx, provided here.
        self.url = url
        self._lock = threading.RLock()
        self._pool = pool
        self._conn = _PooledConnection(pool, url)  # type: ignore[assignment]
        with self._tx() as c:
            c.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
            version = self._schema_version(c)
            if version > self.SCHEMA_VERSION:  # refused before anything is changed
                raise newer_database(url, version, self.SCHEMA_VERSION)
            for statement in _schema_statements():
                c.execute(statement)
            self._add_missing_columns(c)
            if version < self.SCHEMA_VERSION:
                c.execute(
                    "INSERT INTO controlroom_meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(self.SCHEMA_VERSION),),
                )

    @staticmethod
    def _schema_version(c: Any) -> int:
        """The store schema version recorded in ``controlroom_meta`` (0: none recorded, a
        new database or one made before versions were kept)."""
        c.execute(META_TABLE)
        row = c.execute(
            "SELECT value FROM controlroom_meta WHERE key = 'schema_version'"
        ).fetchone()
        try:
            return int(row["value"]) if row is not None else 0
        except ValueError:
            return 0

    @property
    def where(self) -> str:
        return describe_url(self.url)

    @staticmethod
    def _add_missing_columns(c: Any) -> None:
        """Columns the schema gained since the database was made (added nullable)."""
        for table, columns in _schema_columns().items():
            have = {
                r["column_name"]
                for r in c.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = ?",
                    (table,),
                )
            }
            for name, definition in columns:
                if name not in have:
                    c.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")

    def _migrate(self) -> None:
        """Done in ``__init__`` from the schema itself (added columns), under a lock."""

    def close(self) -> None:
        """The pool belongs to the backend, which closes it."""

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._lock:
            try:
                with self._pool.connection() as conn, conn.transaction():
                    yield _TxConnection(conn)
            except PoolTimeout as exc:
                raise unreachable(self.url, exc) from None


class PostgresBackend(Backend):
    """Checkpoints, store and run locks in one PostgreSQL database."""

    kind = "postgres"

    def __init__(self, settings: Settings) -> None:
        url = settings.database_url_value
        if url is None:
            raise ConfigError("No database URL is set. " + URL_HINT, title="Bad database URL")
        check_url(url)
        try:  # one plain connection first: a clear error at once, not a pool's retries
            psycopg.connect(url, **CONNECT_KWARGS).close()
        except psycopg.Error as exc:
            raise unreachable(url, exc) from None
        settings.home.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.url = url
        self.pool: ConnectionPool[Any] = ConnectionPool(
            url,
            min_size=1,
            max_size=settings.database_pool_size,
            kwargs={
                "autocommit": True,
                "prepare_threshold": 0,
                "row_factory": dict_row,
                "application_name": application_name(),
                **CONNECT_KWARGS,
            },
            check=ConnectionPool.check_connection,
            open=False,
            name="controlroom",
        )
        try:
            self.pool.open(wait=True, timeout=15)
        except (PoolTimeout, psycopg.Error) as exc:
            self.pool.close()
            raise unreachable(url, exc) from None
        self.locks = AdvisoryLocks(url)
        try:
            self._ensure_schema()
            self.store = PostgresStore(self.pool, url)
            saver = PostgresSaver(self.pool, serde=strict_serializer())
            with self.locks.exclusive(_SCHEMA_LOCK):  # one process migrates at a time
                saver.setup()
            self.checkpointer = with_crash_points(saver)
        except BaseException:
            self.close()
            raise

    def _ensure_schema(self) -> None:
        """Create the schema the URL's search_path names first, if it does not exist.

        Several projects can share one database, a schema each:
        ``postgresql://.../DB?options=-csearch_path%3Dproject_a``."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT current_schema() AS s, current_setting('search_path') AS p"
            ).fetchone()
        if row is None or row["s"] is not None:
            return
        first = str(row["p"]).split(",")[0].strip().strip('"')
        if not first or first == "$user":
            return
        with self.locks.exclusive(_SCHEMA_LOCK), self.pool.connection() as conn:
            conn.execute(
                psycopg.sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    psycopg.sql.Identifier(first)
                )
            )

    def run_lock(self, run_id: str) -> AbstractContextManager[None]:
        return self.locks.hold(run_id)

    def is_locked(self, run_id: str) -> bool:
        return self.locks.holder(run_id) is not None

    def describe(self) -> str:
        return f"PostgreSQL at {describe_url(self.url)}"

    def checkpoints(self, run_id: str) -> list[CheckpointInfo]:
        return saver_history(self.checkpointer, run_id)  # no SQLite tables: ask the saver

    def close(self) -> None:
        self.locks.close()
        self.pool.close()
