"""Where a runner keeps what every process must share: the store, the checkpoints, the locks.

Two backends, chosen by the settings:

* **SQLite** (the default): ``checkpoints.sqlite`` and ``controlroom.sqlite`` in the project
  folder, one OS file lock per run under ``locks/``. Any number of processes on one machine.
  Files are created owner-only; a damaged, emptied or newer file is refused in one
  paragraph (:mod:`controlroom.graphs.storage.state_files`).
* **PostgreSQL** (``CONTROLROOM_DATABASE_URL``): LangGraph's Postgres checkpointer, the same
  store tables, and a session-level advisory lock per run (see
  :mod:`controlroom.graphs.storage.postgres`). Processes on any number of machines; a worker
  that dies takes its locks with it.

Both give the same guarantees to the runner: a decision is durable before the effect it
authorises, and at most one process executes a run at a time.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from controlroom import faults
from controlroom.config import Settings, ensure_home
from controlroom.errors import ConfigError
from controlroom.graphs.control.supervision import CheckpointInfo
from controlroom.graphs.storage import state_files
from controlroom.graphs.storage.locks import is_locked, run_lock
from controlroom.graphs.storage.run_store import RunStatus, Store


def strict_serializer() -> JsonPlusSerializer:
    """Checkpoint serializer that only revives LangGraph's allow-listed safe types."""
    return JsonPlusSerializer(allowed_msgpack_modules=None)


def with_crash_points(saver: BaseCheckpointSaver[Any]) -> BaseCheckpointSaver[Any]:
    """Mark the checkpointer's crash windows for :mod:`controlroom.faults`.

    With ``durability="sync"`` a finished node's writes are saved (``put_writes``) before
    the step's next checkpoint (``put``); a process that dies in between leaves a step
    that finished but is not yet part of any checkpoint. These points let tests die there.
    """
    put, put_writes = saver.put, saver.put_writes

    def put_marked(*args: Any, **kwargs: Any) -> Any:
        saved = put(*args, **kwargs)
        faults.point("checkpoint.saved")
        return saved

    def put_writes_marked(*args: Any, **kwargs: Any) -> None:
        put_writes(*args, **kwargs)
        faults.point("checkpoint.writes")

    saver.put = put_marked  # type: ignore[method-assign]
    saver.put_writes = put_writes_marked  # type: ignore[method-assign]
    return saver


class Backend(ABC):
    """The shared state of one project: a store, a checkpointer and run locks."""

    kind: str
    store: Store
    checkpointer: BaseCheckpointSaver[Any]

    @abstractmethod
    def run_lock(self, run_id: str) -> AbstractContextManager[None]:
        """Hold the run's lock, or raise :class:`~controlroom.errors.RunBusyError`."""

    @abstractmethod
    def is_locked(self, run_id: str) -> bool:
        """Whether some live process holds the run's lock right now."""

    @abstractmethod
    def describe(self) -> str:
        """Where the state lives, for people (never contains a password)."""

    @abstractmethod
    def close(self) -> None: ...


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

    def _started_runs(self) -> int:
        """Runs of the store that have (or had) checkpoints: every status but queued."""
        return self.store.count_runs([s.value for s in RunStatus if s is not RunStatus.QUEUED])

    def run_lock(self, run_id: str) -> AbstractContextManager[None]:
        return run_lock(self.settings.locks_path, run_id)

    def is_locked(self, run_id: str) -> bool:
        return is_locked(self.settings.locks_path, run_id)

    def describe(self) -> str:
        return f"SQLite in {self.settings.home}"

    def close(self) -> None:
        self.store.close()
        self.conn.close()


def open_backend(settings: Settings) -> Backend:
    """The backend the settings name: PostgreSQL when a database URL is set, else SQLite.

    Either way the project folder is made owner-only when it is new (it holds the audit
    logs and keys), and one that others can reach is warned about once, on stderr."""
    ensure_home(settings.home)
    if settings.backend == "postgres":
        try:
            from controlroom.graphs.storage.postgres import PostgresBackend
        except ImportError as exc:
            raise ConfigError(
                f"The PostgreSQL backend needs the `scale` extra ({exc.name} is missing): "
                "pip install 'controlroom[scale]', or unset CONTROLROOM_DATABASE_URL to keep "
                "state in SQLite files in the project folder.",
                title="PostgreSQL support not installed",
            ) from None
        return PostgresBackend(settings)
    return SqliteBackend(settings)


def checkpoints_from_saver(saver: BaseCheckpointSaver[Any], thread_id: str) -> list[CheckpointInfo]:
    """A run's checkpoints, oldest first, through any checkpointer's ``list``.

    What :func:`list_checkpoints` reads straight from SQLite's
    tables, for backends without them (PostgreSQL): it revives each checkpoint's values, so
    it is slower on long runs, and gives the same history."""
    tuples = list(saver.list({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}))
    infos: list[CheckpointInfo] = []
    by_id: dict[str, CheckpointInfo] = {}
    for saved in reversed(tuples):  # list() is newest first
        values = saved.checkpoint.get("channel_values") or {}
        nxt = sorted(k.removeprefix("branch:to:") for k in values if k.startswith("branch:to:"))
        if "__start__" in values:
            nxt = ["__start__", *nxt]
        parent_config = saved.parent_config or {}
        parent = parent_config.get("configurable", {}).get("checkpoint_id")
        metadata: Any = saved.metadata or {}
        info = CheckpointInfo(
            checkpoint_id=saved.checkpoint["id"],
            parent_id=parent,
            step=int(metadata.get("step", -1)),
            source=str(metadata.get("source", "")),
            next=nxt,
            created_at=str(saved.checkpoint.get("ts") or ""),
        )
        before = by_id.get(parent) if parent else None
        if before is not None and info.source == "loop":
            info.ran = [n for n in before.next if n != "__start__"] or (
                ["__start__"] if "__start__" in before.next else []
            )
        by_id[info.checkpoint_id] = info
        infos.append(info)
    return infos
