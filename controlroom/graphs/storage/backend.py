"""Where a runner keeps what every process must share: the store, the checkpoints, the locks.

:class:`Backend` is the interface; :func:`~controlroom.graphs.storage.backends.open_backend`
chooses one of two implementations from the settings:

* **SQLite** (the default): ``checkpoints.sqlite`` and ``controlroom.sqlite`` in the project
  folder, one OS file lock per run under ``locks/``. Any number of processes on one machine.
  Files are created owner-only; a damaged, emptied or newer file is refused in one
  paragraph (:mod:`controlroom.graphs.storage.state_files`). See :mod:`.sqlite`.
* **PostgreSQL** (``CONTROLROOM_DATABASE_URL``): LangGraph's Postgres checkpointer, the same
  store tables, and a session-level advisory lock per run (see
  :mod:`controlroom.graphs.storage.postgres`). Processes on any number of machines; a worker
  that dies takes its locks with it.

Both give the same guarantees to the runner: a decision is durable before the effect it
authorises, and at most one process executes a run at a time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from controlroom import faults
from controlroom.graphs.storage.checkpoints import CheckpointInfo
from controlroom.graphs.storage.run_store import Store


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
    def checkpoints(self, run_id: str) -> list[CheckpointInfo]:
        """The run's saved checkpoints, oldest first (the history time travel forks from)."""

    @abstractmethod
    def close(self) -> None: ...
