"""What a supervisor adds to running a graph: breakpoints, stop requests, progress events,
and the checkpoint history that time travel forks from.

The :class:`~controlroom.graphs.control.runner.Runner` holds breakpoints per run (like a
debugger's, they belong to the supervising process) and tells watchers (the control room)
what each run is doing. A stop request is a file next to the run's lock, so a run driven by
another process stops too: the driver checks it between steps and pauses the run there.

The checkpoint history itself is the backends' (:mod:`controlroom.graphs.storage.checkpoints`);
this module resolves a person's reference to one entry of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langgraph.types import StateSnapshot
from pydantic import BaseModel, ConfigDict

from controlroom.config import private_dir, write_private
from controlroom.graphs.authoring.spec import ToolsStep
from controlroom.graphs.runtime.run_state import last_ai_message
from controlroom.graphs.storage.checkpoints import CheckpointInfo

if TYPE_CHECKING:
    from controlroom.graphs.authoring.workflow import Workflow

logger = logging.getLogger(__name__)


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


class Watchers:
    """Who watches the runs a runner drives (the control room), and how they are told."""

    def __init__(self) -> None:
        self._all: list[Watcher] = []
        self._tokens: list[Watcher] = []
        self._lock = threading.Lock()

    @property
    def any(self) -> bool:
        return bool(self._all)

    @property
    def tokens(self) -> bool:
        """Whether someone wants the models' output token by token."""
        return bool(self._tokens)

    def add(self, watcher: Watcher, *, tokens: bool = False) -> Callable[[], None]:
        """Start telling ``watcher``; returns the function that stops it."""
        with self._lock:
            self._all.append(watcher)
            if tokens:
                self._tokens.append(watcher)

        def unwatch() -> None:
            with self._lock:
                for group in (self._all, self._tokens):
                    if watcher in group:
                        group.remove(watcher)

        return unwatch

    def tell(self, event: RunEvent) -> None:
        with self._lock:
            watchers = list(self._all)
        for watcher in watchers:
            try:
                watcher(event)
            except Exception:  # a watcher's bug never stops a run; it is logged
                logger.exception("A run watcher failed on %s of run %s", event.kind, event.run_id)


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
