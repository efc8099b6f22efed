"""What a Ray worker does with one run: drive it as far as it goes, then let go.

A task is ``execute_run(settings, run_id)``. The worker process keeps one
:class:`~controlroom.graphs.control.runner.Runner` per settings (database pool, compiled graphs,
models) across the tasks it is given. The run is continued with ``Runner.resume``: a queued
run starts, a run whose approvals were decided goes on with the decisions, a run whose last
worker died continues from its last checkpoint (the effect ledger keeps its side effects
exactly-once). A run that stops for a person returns ``waiting`` and frees the worker.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time

from controlroom.batch.report import RunOutcome
from controlroom.config import Settings
from controlroom.errors import ControlroomError, RunBusyError
from controlroom.graphs.control.runner import Runner

_RUNNERS: dict[str, Runner] = {}
_LOCK = threading.Lock()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _key(settings: Settings) -> str:
    text = settings.model_dump_json() + (settings.database_url_value or "")
    return hashlib.sha256(text.encode()).hexdigest()


def runner_for(settings: Settings) -> Runner:
    """This process's runner for these settings (made on first use, then reused)."""
    key = _key(settings)
    with _LOCK:
        runner = _RUNNERS.get(key)
        if runner is None:
            runner = _RUNNERS[key] = Runner(settings)
        return runner


def execute_run(settings: Settings, run_id: str) -> RunOutcome:
    """Drive one run until it completes, fails, or stops for a person (a Ray task body)."""
    began = time.perf_counter()
    worker = worker_name()
    try:
        result = runner_for(settings).resume(run_id)
    except RunBusyError as exc:
        return RunOutcome(run_id=run_id, status="busy", error=exc.message, worker=worker)
    except ControlroomError as exc:
        return RunOutcome(
            run_id=run_id,
            status="error",
            error=f"{exc.title}: {exc.message}",
            worker=worker,
            seconds=time.perf_counter() - began,
        )
    return RunOutcome(
        run_id=run_id,
        status=result.status.value,
        output=result.output,
        error=result.run.error,
        pending=[a.approval_id for a in result.pending],
        worker=worker,
        seconds=time.perf_counter() - began,
    )
