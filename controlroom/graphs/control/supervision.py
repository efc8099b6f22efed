"""What a supervisor adds to running a graph: breakpoints, stop requests, progress events,
and the checkpoint history that time travel forks from.

The :class:`~controlroom.graphs.control.runner.Runner` holds breakpoints per run (like a
debugger's, they belong to the supervising process) and tells watchers (the control room)
what each run is doing. A stop request is a file next to the run's lock, so a run driven by
another process stops too: the driver checks it between steps and pauses the run there.

Checkpoints are read from LangGraph's SQLite tables without deserializing the messages
they hold: listing the history of a 500-step run stays cheap, and the state of one
checkpoint is loaded only when someone looks at it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import ormsgpack
from langgraph.types import StateSnapshot
from pydantic import BaseModel, ConfigDict, Field

from controlroom.config import private_dir, write_private
from controlroom.graphs.authoring.spec import ToolsStep
from controlroom.graphs.runtime.run_state import last_ai_message

if TYPE_CHECKING:
    from controlroom.graphs.authoring.workflow import Workflow

_BRANCH = "branch:to:"


class Breakpoints(BaseModel):
    """Where a run pauses before going on: before given nodes, before a tools step that is
    about to run a given tool (before the gate decides it), or before every node (step mode)."""

    model_config = ConfigDict(frozen=True)

    nodes: frozenset[str] = frozenset()
    tools: frozenset[str] = frozenset()
    every_node: bool = False

    def __bool__(self) -> bool:
        return bool(self.nodes or self.tools or self.every_node)

    def describe(self) -> str:
        parts = ["every node (step mode)"] if self.every_node else []
        parts += [f"node {n}" for n in sorted(self.nodes)]
        parts += [f"tool {t}" for t in sorted(self.tools)]
        return ", ".join(parts) or "none"


EventKind = Literal["node_started", "node_finished", "token", "stopped"]


class RunEvent(BaseModel):
    """Progress of a run being driven by this process, for watchers (the control room)."""

    run_id: str
    kind: EventKind
    node: str | None = None
    step: int | None = None
    text: str = ""


Watcher = Callable[[RunEvent], None]


class StateEdits(BaseModel):
    """Changes to a checkpoint's state before a fork runs from it (None: keep as is).

    ``vars`` replaces the whole variables dict. The step that runs next stays the one the
    checkpoint had scheduled; edits change what it reads.
    """

    model_config = ConfigDict(extra="forbid")

    input: str | None = None
    vars: dict[str, Any] | None = None
    output: str | None = None

    def changed(self) -> list[str]:
        return [k for k, v in self.model_dump().items() if v is not None]


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


def _ignore_ext(code: int, data: bytes) -> None:
    return None


def _head(blob: bytes) -> tuple[list[str], str]:
    """The scheduled nodes and the time of a checkpoint blob, without reviving messages."""
    try:
        data = ormsgpack.unpackb(blob, ext_hook=_ignore_ext)
    except (ValueError, TypeError):
        return [], ""
    values = data.get("channel_values") or {}
    nxt = sorted(k.removeprefix(_BRANCH) for k in values if k.startswith(_BRANCH))
    if "__start__" in values:
        nxt = ["__start__", *nxt]
    return nxt, str(data.get("ts") or "")


HeadCache = dict[tuple[str, str], tuple[list[str], str]]


def list_checkpoints(
    conn: sqlite3.Connection, thread_id: str, cache: HeadCache | None = None
) -> list[CheckpointInfo]:
    """A run's checkpoints, oldest first (root namespace only).

    A checkpoint never changes once written, so what its blob says is kept in ``cache``:
    listing a long run again reads only the checkpoints added since."""
    import json

    cache = {} if cache is None else cache
    rows = conn.execute(
        "SELECT checkpoint_id, parent_checkpoint_id, type, metadata FROM checkpoints "
        "WHERE thread_id = ? AND checkpoint_ns = '' ORDER BY checkpoint_id",
        (thread_id,),
    ).fetchall()
    infos: list[CheckpointInfo] = []
    by_id: dict[str, CheckpointInfo] = {}
    for cid, parent, kind, meta in rows:
        try:
            metadata = json.loads(meta) if meta else {}
        except ValueError:
            metadata = {}
        head = cache.get((thread_id, cid))
        if head is None:
            blob = conn.execute(
                "SELECT checkpoint FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = '' "
                "AND checkpoint_id = ?",
                (thread_id, cid),
            ).fetchone()
            head = _head(blob[0]) if kind == "msgpack" and blob else ([], "")
            cache[(thread_id, cid)] = head
        nxt, ts = head
        info = CheckpointInfo(
            checkpoint_id=cid,
            parent_id=parent,
            step=int(metadata.get("step", -1)),
            source=str(metadata.get("source", "")),
            next=nxt,
            created_at=ts,
        )
        before = by_id.get(parent) if parent else None
        if before is not None and info.source == "loop":
            info.ran = [n for n in before.next if n != "__start__"] or (
                ["__start__"] if "__start__" in before.next else []
            )
        by_id[cid] = info
        infos.append(info)
    return infos


def resolve_checkpoint(infos: list[CheckpointInfo], ref: str, run_id: str) -> CheckpointInfo:
    """A checkpoint by id, unique id prefix, or ``step:N`` (the latest with that step)."""
    from controlroom.errors import RunStateError

    if ref.startswith("step:"):
        try:
            step = int(ref.removeprefix("step:"))
        except ValueError:
            step = None
        hits = [i for i in infos if i.step == step]
        if hits:
            return hits[-1]
    else:
        hits = [i for i in infos if i.checkpoint_id == ref] or [
            i for i in infos if i.checkpoint_id.startswith(ref)
        ]
        if len(hits) == 1:
            return hits[0]
    steps = ", ".join(f"step:{i.step}" for i in infos[-8:])
    raise RunStateError(
        f"Run {run_id} has no single checkpoint '{ref}'. Give a checkpoint id (a unique "
        f"prefix works) or step:N; `controlroom checkpoints {run_id}` lists them"
        + (f" (latest: {steps})." if steps else "."),
        title="No such checkpoint",
    )


class StopRequests:
    """Stop requests as files ``<locks>/<run_id>.stop``: any process may ask, the driver obeys."""

    def __init__(self, locks_dir: Path) -> None:
        self.locks_dir = locks_dir

    def _path(self, run_id: str) -> Path:
        return self.locks_dir / f"{run_id}.stop"

    def request(self, run_id: str, by: str) -> None:
        private_dir(self.locks_dir)
        write_private(self._path(run_id), by.encode("utf-8"))

    def pending(self, run_id: str) -> str | None:
        """Who asked the run to stop, if someone did."""
        try:
            return self._path(run_id).read_text(encoding="utf-8") or "someone"
        except OSError:
            return None

    def clear(self, run_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(run_id))


def interrupt_before(breaks: Breakpoints, wf: Workflow) -> list[str] | str | None:
    """The nodes LangGraph must pause before so the runner can check the breakpoints."""
    if breaks.every_node:
        return "*"
    nodes = set(breaks.nodes)
    if breaks.tools:  # whether a tools step calls a watched tool is known only before it runs
        nodes |= {s.id for s in wf.spec.steps if isinstance(s, ToolsStep)}
    return sorted(nodes) or None


def breakpoint_hit(breaks: Breakpoints, wf: Workflow, snapshot: StateSnapshot) -> str | None:
    """Why the run must stay paused where LangGraph stopped it, or None to go on."""
    nxt = list(snapshot.next)
    if breaks.every_node:
        return "step mode: before " + ", ".join(nxt)
    hit = sorted(set(nxt) & breaks.nodes)
    if hit:
        return f"breakpoint on node {hit[0]}"
    tool_steps = {s.id for s in wf.spec.steps if isinstance(s, ToolsStep)}
    if breaks.tools and set(nxt) & tool_steps:
        last = last_ai_message(snapshot.values)  # type: ignore[arg-type]
        called = {c["name"] for c in last.tool_calls} if last is not None else set()
        hit = sorted(called & breaks.tools)
        if hit:
            return f"breakpoint on tool {hit[0]}"
    return None
