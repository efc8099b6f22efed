"""Deterministic fault injection for crash tests: kill this process at a named point.

Off unless set; when off, :func:`point` is one dictionary lookup. Tests (controlroom's
own and yours) use it to show that a run survives a crash at *every* place where one
can happen, instead of hoping a ``sleep`` lands in the right window.

``CONTROLROOM_FAULT=POINT[@N]``
    SIGKILL this process the N-th time (default: the first) execution reaches ``POINT``.
    Nothing is flushed, no ``finally`` block runs: exactly what a power cut or the OOM
    killer does. A point name ending in ``*`` matches every point it prefixes
    (``audit.*@7``: the seventh audit record of any kind).
``CONTROLROOM_FAULT_TRACE=FILE``
    Append every point reached to FILE, one per line (``POINT`` then a tab and the pid).
    A crash matrix runs a workflow once with the trace on, then once per line with
    ``CONTROLROOM_FAULT`` naming it.

The points controlroom reaches (each one *after* the step it names is durable):

``audit.<kind>``        an audit record of that kind was appended (``audit.tool.decision``,
                        ``audit.run.start``, ``audit.checkpoint`` ...)
``audit.torn``          half of an audit record's line is on disk (offered only while
                        tracing or aimed at: the record is then written in two halves)
``checkpoint.writes``   a node's writes were saved, the step's next checkpoint was not yet
``checkpoint.saved``    a LangGraph checkpoint was saved
``store.run``           a run's status was updated in the store
``approval.added``      pending approval rows were recorded
``approval.decided``    a person's (or ``--approve``'s) decision was recorded
``refusal.recorded``    a denied or rejected call was recorded in the store
``ledger.started``      the effect ledger row of a side-effecting call says "started"
``tool.returned``       a side-effecting tool returned; the ledger does not know yet
``ledger.completed``    the ledger row holds the call's result

A tool can mark points of its own with :func:`point` (``tool.<name>.<where>`` by
convention), for example between two writes of a multi-step effect.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

__all__ = ["arm", "armed", "disarm", "point", "wants"]

ENV_FAULT = "CONTROLROOM_FAULT"
ENV_TRACE = "CONTROLROOM_FAULT_TRACE"


class _Plan:
    __slots__ = ("count", "prefix", "seen", "target", "trace")

    def __init__(self, target: str | None, count: int, trace: Path | None) -> None:
        self.target = target
        self.prefix = target is not None and target.endswith("*")
        self.count = max(1, count)
        self.seen = 0
        self.trace = trace


class _State:
    plan: _Plan | None = None


_state = _State()


def _parse(spec: str) -> tuple[str, int]:
    name, _, count = spec.strip().partition("@")
    if not name:
        raise ValueError(f"{ENV_FAULT}={spec!r}: expected POINT or POINT@N")
    try:
        n = int(count) if count else 1
    except ValueError:
        raise ValueError(f"{ENV_FAULT}={spec!r}: N in POINT@N must be a whole number") from None
    return name, n


def arm(target: str | None, count: int = 1, *, trace: Path | str | None = None) -> None:
    """Kill this process the ``count``-th time ``target`` is reached (None: only trace)."""
    if target is None and trace is None:
        _state.plan = None
        return
    _state.plan = _Plan(target, count, Path(trace) if trace is not None else None)


def disarm() -> None:
    """Turn fault injection off in this process."""
    _state.plan = None


def armed() -> bool:
    return _state.plan is not None


def _matches(plan: _Plan, name: str) -> bool:
    target = plan.target
    if target is None:
        return False
    return name.startswith(target[:-1]) if plan.prefix else name == target


def wants(name: str) -> bool:
    """Whether reaching ``name`` is traced or may kill: for points that cost something to
    offer (a record written in two halves, to die in between)."""
    plan = _state.plan
    return plan is not None and (plan.trace is not None or _matches(plan, name))


def point(name: str) -> None:
    """Mark a crash point; dies here if ``CONTROLROOM_FAULT`` (or :func:`arm`) names it."""
    plan = _state.plan
    if plan is None:
        return
    if plan.trace is not None:
        with plan.trace.open("a", encoding="utf-8") as out:
            out.write(f"{name}\t{os.getpid()}\n")
    if _matches(plan, name):
        plan.seen += 1
        if plan.seen == plan.count:
            os.kill(os.getpid(), signal.SIGKILL)


def _from_environment() -> None:
    spec = os.environ.get(ENV_FAULT)
    trace = os.environ.get(ENV_TRACE)
    if not spec and not trace:
        return
    target, count = _parse(spec) if spec else (None, 1)
    arm(target, count, trace=trace or None)


_from_environment()
