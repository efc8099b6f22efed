"""A run's checkpoint history: what each saved checkpoint says, without reviving its state.

Time travel lists the history and forks from one entry; the control room shows it. Both
backends answer through :meth:`~controlroom.graphs.storage.backend.Backend.checkpoints`:

* SQLite reads LangGraph's tables directly (:func:`sqlite_history`) and unpacks only the
  head of each blob (which nodes run next, when): a 500-step run stays cheap to list, and a
  checkpoint never changes once written, so what it says is cached per process.
* Any other checkpointer is asked through its ``list`` (:func:`saver_history`), which
  revives each checkpoint's values: slower on long runs, the same history.

One function (:func:`_history`) turns the raw entries into :class:`CheckpointInfo` for both.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import ormsgpack
from langgraph.checkpoint.base import BaseCheckpointSaver
from pydantic import BaseModel, Field

_BRANCH = "branch:to:"


class CheckpointInfo(BaseModel):
    """One saved checkpoint of a run: where it stood after a step, and what came next."""

    checkpoint_id: str
    parent_id: str | None = None
    step: int
    source: str
    ran: list[str] = Field(default_factory=list)  # the nodes whose step produced it
    next: list[str] = Field(default_factory=list)  # the nodes that run after it
    created_at: str = ""

    @property
    def label(self) -> str:
        ran = ", ".join(self.ran) or self.source
        nxt = ", ".join(self.next) or "end"
        return f"step {self.step}: after {ran} → {nxt}"


HeadCache = dict[tuple[str, str], tuple[list[str], str]]


@dataclass(frozen=True)
class _Entry:
    checkpoint_id: str
    parent_id: str | None
    metadata: dict[str, Any]
    next: list[str]
    created_at: str


def _scheduled(values: Iterable[str]) -> list[str]:
    """The nodes a checkpoint's channel values schedule next (``__start__`` first)."""
    names = list(values)
    nxt = sorted(k.removeprefix(_BRANCH) for k in names if k.startswith(_BRANCH))
    return ["__start__", *nxt] if "__start__" in names else nxt


def _history(entries: Iterable[_Entry]) -> list[CheckpointInfo]:
    """Checkpoint infos, oldest first; a loop step ran what its parent had scheduled."""
    infos: list[CheckpointInfo] = []
    by_id: dict[str, CheckpointInfo] = {}
    for entry in entries:
        info = CheckpointInfo(
            checkpoint_id=entry.checkpoint_id,
            parent_id=entry.parent_id,
            step=int(entry.metadata.get("step", -1)),
            source=str(entry.metadata.get("source", "")),
            next=entry.next,
            created_at=entry.created_at,
        )
        before = by_id.get(entry.parent_id) if entry.parent_id else None
        if before is not None and info.source == "loop":
            info.ran = [n for n in before.next if n != "__start__"] or (
                ["__start__"] if "__start__" in before.next else []
            )
        by_id[info.checkpoint_id] = info
        infos.append(info)
    return infos


def _ignore_ext(code: int, data: bytes) -> None:
    return None


def _head(blob: bytes) -> tuple[list[str], str]:
    """The scheduled nodes and the time of a checkpoint blob, without reviving messages."""
    try:
        data = ormsgpack.unpackb(blob, ext_hook=_ignore_ext)
    except (ValueError, TypeError):
        return [], ""
    return _scheduled(data.get("channel_values") or {}), str(data.get("ts") or "")


def sqlite_history(
    conn: sqlite3.Connection, thread_id: str, cache: HeadCache | None = None
) -> list[CheckpointInfo]:
    """A run's checkpoints from LangGraph's SQLite tables, oldest first (root namespace).

    What a checkpoint's blob says is kept in ``cache``: listing a long run again reads only
    the checkpoints added since."""
    cache = {} if cache is None else cache
    rows = conn.execute(
        "SELECT checkpoint_id, parent_checkpoint_id, type, metadata FROM checkpoints "
        "WHERE thread_id = ? AND checkpoint_ns = '' ORDER BY checkpoint_id",
        (thread_id,),
    ).fetchall()

    def entries() -> Iterable[_Entry]:
        for cid, parent, kind, meta in rows:
            try:
                metadata = json.loads(meta) if meta else {}
            except ValueError:
                metadata = {}
            head = cache.get((thread_id, cid))
            if head is None:
                blob = conn.execute(
                    "SELECT checkpoint FROM checkpoints WHERE thread_id = ? AND "
                    "checkpoint_ns = '' AND checkpoint_id = ?",
                    (thread_id, cid),
                ).fetchone()
                head = _head(blob[0]) if kind == "msgpack" and blob else ([], "")
                cache[(thread_id, cid)] = head
            yield _Entry(cid, parent, metadata, head[0], head[1])

    return _history(entries())


def saver_history(saver: BaseCheckpointSaver[Any], thread_id: str) -> list[CheckpointInfo]:
    """A run's checkpoints, oldest first, through any checkpointer's ``list``."""
    tuples = list(saver.list({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}))

    def entries() -> Iterable[_Entry]:
        for saved in reversed(tuples):  # list() is newest first
            values = saved.checkpoint.get("channel_values") or {}
            parent = (saved.parent_config or {}).get("configurable", {}).get("checkpoint_id")
            yield _Entry(
                saved.checkpoint["id"],
                parent,
                dict(saved.metadata or {}),
                _scheduled(values),
                str(saved.checkpoint.get("ts") or ""),
            )

    return _history(entries())
