"""The SQLite backend: the project folder's files and OS file locks, for one machine.

``checkpoints.sqlite`` (LangGraph's ``SqliteSaver``, the strict serializer) and
``controlroom.sqlite`` (the run store), both opened through
:func:`~controlroom.graphs.storage.state_files.open_database` (owner-only, refused clearly
when damaged), and one OS file lock per run under ``locks/``.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager

from langgraph.checkpoint.sqlite import SqliteSaver

from controlroom.config import Settings, ensure_home
from controlroom.graphs.storage import state_files
from controlroom.graphs.storage.backend import Backend, strict_serializer, with_crash_points
from controlroom.graphs.storage.checkpoints import CheckpointInfo, HeadCache, sqlite_history
from controlroom.graphs.storage.locks import is_locked, run_lock
from controlroom.graphs.storage.records import RunStatus
from controlroom.graphs.storage.run_store import Store


class SqliteBackend(Backend):
    """SQLite files and OS file locks in the project folder: one machine."""

    kind = "sqlite"

    def __init__(self, settings: Settings) -> None:
        ensure_home(settings.home)  # 0700; warns once about a folder others can reach
        self.settings = settings
        self.store = Store(settings.store_path)
        try:
            opened = state_files.open_database(
                settings.checkpoints_path,
                state_files.CHECKPOINTS,
                refuse=lambda o: state_files.emptied_checkpoints(o, self._started_runs),
                check_same_thread=False,
            )
            self.conn: sqlite3.Connection = opened.conn
            saver = SqliteSaver(self.conn, serde=strict_serializer())
            saver.setup()
        except BaseException:
            self.store.close()
            raise
        self.checkpointer = with_crash_points(saver)
        self._heads: HeadCache = {}  # what each (immutable) checkpoint says, read once

    def _started_runs(self) -> int:
        """Runs of the store that have (or had) checkpoints: every status but queued."""
        return self.store.count_runs([s.value for s in RunStatus if s is not RunStatus.QUEUED])

    def run_lock(self, run_id: str) -> AbstractContextManager[None]:
        return run_lock(self.settings.locks_path, run_id)

    def is_locked(self, run_id: str) -> bool:
        return is_locked(self.settings.locks_path, run_id)

    def describe(self) -> str:
        return f"SQLite in {self.settings.home}"

    def checkpoints(self, run_id: str) -> list[CheckpointInfo]:
        with self.checkpointer.lock:  # type: ignore[attr-defined]
            return sqlite_history(self.conn, run_id, self._heads)

    def close(self) -> None:
        self.store.close()
        self.conn.close()
