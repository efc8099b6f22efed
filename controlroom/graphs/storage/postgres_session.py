"""Sessions with PostgreSQL: connection settings, URLs described without their password,
errors that say what to check, and run locks as session-level advisory locks.

A run's lock is ``pg_try_advisory_lock`` on a 64-bit hash of its id, held on one connection
per process that is used for nothing else: a process that dies closes that session and the
server drops its locks (see :mod:`.postgres`).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from controlroom.errors import ConfigError, RunBusyError

URL_HINT = (
    "Set CONTROLROOM_DATABASE_URL to a URL like postgresql://USER:PASSWORD@HOST:5432/DBNAME "
    "(a libpq key=value string works too), or unset it to keep state in SQLite files in the "
    "project folder."
)
# Keepalives: a dead peer is noticed within about idle + interval * count seconds.
CONNECT_KWARGS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 4,
}


def lock_key(run_id: str) -> int:
    """The signed 64-bit advisory lock key of a run."""
    digest = hashlib.sha256(b"controlroom.run:" + run_id.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def describe_url(url: str) -> str:
    """``postgresql://user@host:port/db``, without the password, for messages."""
    try:
        info = conninfo_to_dict(url)
    except Exception:
        return "the configured database"
    user = f"{info['user']}@" if info.get("user") else ""
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    return f"postgresql://{user}{host}:{port}/{info.get('dbname') or ''}"


def check_url(url: str) -> None:
    """Refuse a URL that is not a PostgreSQL connection string, saying how to fix it."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else None
    if scheme is not None and scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            f"CONTROLROOM_DATABASE_URL starts with '{scheme}://', which is not PostgreSQL. "
            + URL_HINT,
            title="Bad database URL",
        )
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(
            f"CONTROLROOM_DATABASE_URL is not a valid connection string ({exc}). " + URL_HINT,
            title="Bad database URL",
        ) from None


def unreachable(url: str, exc: BaseException) -> ConfigError:
    why = " ".join(str(exc).split()) or type(exc).__name__
    return ConfigError(
        f"Cannot connect to {describe_url(url)}: {why}. Check that PostgreSQL is running "
        "and reachable from this machine (`pg_isready -h HOST -p PORT`), that the user, "
        "password and database in CONTROLROOM_DATABASE_URL exist (`createdb DBNAME`), and "
        "that pg_hba.conf admits this host.",
        title="Database unreachable",
    )


def application_name() -> str:
    return f"controlroom pid {os.getpid()} on {socket.gethostname()}"[:63]


class AdvisoryLocks:
    """Run locks as session-level advisory locks on one dedicated connection."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._mutex = threading.Lock()
        self._conn: Any = None
        self._held: set[str] = set()  # advisory locks are re-entrant per session: not we

    def _session(self) -> Any:
        if self._conn is None or self._conn.closed or self._conn.broken:
            # A lost session lost its locks too: nothing held survives a reconnect.
            self._held.clear()
            try:
                self._conn = psycopg.connect(
                    self.url,
                    autocommit=True,
                    application_name=application_name(),
                    **CONNECT_KWARGS,
                )
            except psycopg.Error as exc:
                raise unreachable(self.url, exc) from None
        return self._conn

    def holder(self, run_id: str) -> str | None:
        """Who holds the run's lock (their application name), if anyone does."""
        key = lock_key(run_id)
        unsigned = key & 0xFFFFFFFFFFFFFFFF
        with self._mutex:
            if run_id in self._held:
                return application_name()
            row = (
                self._session()
                .execute(
                    "SELECT coalesce(a.application_name, '') || ' (backend pid ' || l.pid || ')' "
                    "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                    "AND l.database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database()) "
                    "AND l.classid::bigint = %s AND l.objid::bigint = %s",
                    (unsigned >> 32, unsigned & 0xFFFFFFFF),
                )
                .fetchone()
            )
        return str(row[0]) if row else None

    @contextmanager
    def hold(self, run_id: str) -> Iterator[None]:
        key = lock_key(run_id)
        with self._mutex:
            got = run_id not in self._held
            if got:
                row = self._session().execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                got = bool(row[0])
            if got:
                self._held.add(run_id)
        if not got:
            holder = self.holder(run_id) or "another process"
            raise RunBusyError(
                f"Run {run_id} is being executed by another process ({holder}). Wait for it "
                "to stop at an approval or finish, then try again."
            )
        try:
            yield
        finally:
            with self._mutex:
                if run_id in self._held:
                    self._held.discard(run_id)
                    conn = self._conn
                    if conn is not None and not conn.closed and not conn.broken:
                        try:
                            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                        except psycopg.Error:
                            conn.close()  # closing the session releases its locks

    @contextmanager
    def exclusive(self, key: int) -> Iterator[None]:
        """Wait for an advisory lock (for set-up work, not runs)."""
        with self._mutex:
            self._session().execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            with self._mutex:
                if self._conn is not None and not self._conn.closed:
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._held.clear()
