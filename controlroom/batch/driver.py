"""Batches of runs on Ray: create every run durably, then keep the workers busy.

**Creating** the batch and its runs comes first, in :mod:`controlroom.batch.create`.

**Running.** :func:`run_batch` submits one Ray task per run that can go on (queued,
interrupted, approved). A task drives its run until it completes, fails, or stops for a
person, then returns: **the worker is free again while the run waits**. The driver polls
the store for the runs that wait; once their approvals are decided (``controlroom approve
RUN ID --no-resume`` from any machine, the TUI, the SDK), the run is submitted again and
whichever worker is free continues it. A person may also let ``controlroom approve``
resume the run in their own process: the driver sees the run's lock held, leaves it alone,
and picks up the result.

**Failures.** A worker that dies (killed, OOM, a lost node) fails its task; Ray runs it
again elsewhere (``max_retries``) and the run continues from its last checkpoint, with the
effect ledger keeping every side effect exactly-once. A task that still fails is reported
and its run left ``interrupted`` for ``--resume``.

**Stopping.** The driver returns when every run completed or failed; when only runs that
wait for a person remain and ``wait_for_approvals`` is off; or at ``timeout``, when tasks
still running are cancelled (their runs become ``interrupted``, nothing done is lost).
Everything left is finished by ``controlroom batch --resume BATCH`` (or per run with
``controlroom resume``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from controlroom.batch.create import ensure_runs
from controlroom.batch.report import BatchProgress, BatchReport, BatchRunReport, RunOutcome
from controlroom.batch.worker import execute_run
from controlroom.config import private_dir, write_private
from controlroom.errors import ConfigError, RunStateError
from controlroom.graphs.control.runner import Runner
from controlroom.graphs.storage.records import BatchItem, BatchRecord, RunRecord, RunStatus, now

log = logging.getLogger(__name__)

FINAL = (RunStatus.COMPLETED, RunStatus.FAILED)
_RAY_HINT = "Batch runs execute on Ray, which is not installed: pip install 'controlroom[scale]'."


class BatchOptions(BaseModel):
    """How to run a batch."""

    workers: int = Field(default=2, ge=1, description="CPUs of the local Ray instance")
    ray_address: str | None = Field(default=None, description="an existing Ray cluster")
    timeout: float | None = Field(default=None, gt=0, description="seconds; None: no limit")
    wait_for_approvals: bool = True  # False: return once only runs waiting for people remain
    retry_failed: bool = False  # run failed runs again (from their last completed step)
    poll_interval: float = Field(default=0.5, gt=0)
    max_retries: int = Field(default=3, ge=0, description="Ray retries of a task whose worker died")
    max_resubmits: int = Field(default=2, ge=0, description="new tasks after Ray gave up")


# --- Ray ----------------------------------------------------------------------------------
def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(_RAY_HINT, title="Ray not installed") from None
    return ray


@dataclass
class RayHandle:
    ray: Any
    task: Any
    description: str
    started_here: bool

    def close(self) -> None:
        if self.started_here:
            self.ray.shutdown()


def connect_ray(options: BatchOptions) -> RayHandle:
    """Join the Ray cluster at ``ray_address``, or start a local one with ``workers`` CPUs.

    When this process already joined Ray (an SDK user, the tests), that instance is used."""
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        common: dict[str, Any] = {
            "namespace": "controlroom",
            "log_to_driver": False,
            "logging_level": logging.ERROR,
            "include_dashboard": False,
        }
        try:
            if options.ray_address:
                ray.init(address=options.ray_address, **common)
            else:
                ray.init(
                    address="local",
                    num_cpus=options.workers,
                    object_store_memory=200 * 1024 * 1024,
                    _node_ip_address="127.0.0.1",
                    **common,
                )
        except Exception as exc:
            where = options.ray_address or "a local instance"
            raise ConfigError(
                f"Cannot start or join Ray at {where}: {exc}. For a cluster, start its head "
                "with `ray start --head --port 6379` and pass --ray HEAD_HOST:6379 (the "
                "same Ray and Python versions everywhere); without --ray a local instance "
                "is started.",
                title="Ray unavailable",
            ) from None
        started = True
    task = ray.remote(execute_run).options(
        num_cpus=1, max_retries=options.max_retries, retry_exceptions=False
    )
    cpus = int(ray.cluster_resources().get("CPU", 0))
    where = options.ray_address or "local"
    return RayHandle(ray, task, f"{where} ({cpus} CPUs)", started)


# --- the driver ---------------------------------------------------------------------------
@dataclass
class _Track:
    item: BatchItem
    status: str = "queued"
    tasks: int = 0
    crashes: int = 0
    workers: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    output: str | None = None
    pending: list[str] = field(default_factory=list)
    in_flight: bool = False
    watched: bool = False  # waiting for a person, or driven by another process
    final: bool = False


class _Driver:
    def __init__(
        self,
        runner: Runner,
        batch: BatchRecord,
        items: list[BatchItem],
        *,
        options: BatchOptions,
        ray: RayHandle,
        on_progress: Callable[[BatchProgress], None] | None,
    ) -> None:
        self.runner = runner
        self.batch = batch
        self.options = options
        self.ray = ray
        self.on_progress = on_progress
        self.tracks = {i.run_id: _Track(i) for i in items}
        self.in_flight: dict[Any, str] = {}
        self.settings_ref = ray.ray.put(runner.settings)  # shipped once, not per task
        self.began = time.monotonic()
        self.finished_here = 0

    # submitting ------------------------------------------------------------------------
    def submit(self, run_id: str) -> None:
        track = self.tracks[run_id]
        ref = self.ray.task.remote(self.settings_ref, run_id)
        self.in_flight[ref] = run_id
        track.tasks += 1
        track.in_flight = True
        track.watched = False
        track.status = "running"

    def settle(self, track: _Track, record: RunRecord) -> None:
        """Decide what to do with a run from its stored record (not in flight)."""
        status = record.status
        track.status = status.value
        track.output, track.error = record.output, record.error
        if status in FINAL and not (
            status is RunStatus.FAILED and self.options.retry_failed and track.tasks == 0
        ):
            if not track.final:
                self.finished_here += 1
            track.final, track.watched = True, False
            return
        track.final = False
        locked = status is RunStatus.RUNNING and self.runner.backend.is_locked(record.run_id)
        if locked or (status is RunStatus.WAITING and record.pending_approvals > 0):
            track.watched = True  # a person decides, or another process drives it
            return
        if status is RunStatus.PAUSED and track.tasks > 0:
            track.watched = False  # a supervisor paused it here; leave it to them
            track.final = False
            return
        self.submit(record.run_id)  # queued, interrupted, approved, failed (retry), paused

    def take(self, run_id: str, outcome: RunOutcome) -> None:
        track = self.tracks[run_id]
        track.in_flight = False
        track.workers.append(outcome.worker)
        track.seconds += outcome.seconds
        track.pending = outcome.pending
        if outcome.status in ("busy", "error"):
            track.error = outcome.error
            if outcome.status == "error":  # could not be driven here: report, don't retry
                track.status, track.final, track.watched = "error", True, False
                self.finished_here += 1
                return
            track.watched = True  # someone else drives it: watch the store
            return
        track.status = outcome.status
        track.output, track.error = outcome.output, outcome.error
        if outcome.status in ("completed", "failed"):
            track.final = True
            self.finished_here += 1
        elif outcome.status == "waiting":
            track.watched = True
        elif outcome.status == "paused":
            track.watched = False  # paused by a supervisor: theirs to resume
        else:  # interrupted (cancelled) or still marked running: look again
            track.watched = True

    def crashed(self, run_id: str, exc: BaseException) -> None:
        """Ray gave up on a task (its workers kept dying): try anew a few times."""
        track = self.tracks[run_id]
        track.in_flight = False
        track.crashes += 1
        track.error = " ".join(str(exc).split())[:500]
        track.status = "interrupted"
        log.warning("task for run %s failed: %s", run_id, track.error)
        if track.crashes <= self.options.max_resubmits:
            track.watched = True  # resubmitted by the next poll once its lock is free
        else:
            track.watched = False

    # polling ---------------------------------------------------------------------------
    def poll_store(self) -> None:
        watched = [rid for rid, t in self.tracks.items() if t.watched and not t.in_flight]
        if not watched:
            return
        records = self.runner.store.runs_by_id(watched)
        for run_id in watched:
            record = records.get(run_id)
            if record is not None:
                self.settle(self.tracks[run_id], record)

    def collect(self, timeout: float) -> None:
        if not self.in_flight:
            time.sleep(timeout)
            return
        refs = list(self.in_flight)
        ready, _ = self.ray.ray.wait(refs, num_returns=len(refs), timeout=timeout)
        for ref in ready:
            run_id = self.in_flight.pop(ref)
            try:
                outcome = self.ray.ray.get(ref)
            except Exception as exc:  # RayTaskError, WorkerCrashedError, TaskCancelledError
                self.crashed(run_id, exc)
                continue
            self.take(run_id, outcome)

    def progress(self) -> BatchProgress:
        p = BatchProgress(
            total=len(self.tracks),
            finished_now=self.finished_here,
            elapsed_s=time.monotonic() - self.began,
        )
        for t in self.tracks.values():
            if t.status == "completed":
                p.completed += 1
            elif t.status in ("failed", "error"):
                p.failed += 1
            elif t.in_flight:
                p.running += 1
            elif t.status == "waiting":
                p.waiting += 1
            else:
                p.other += 1
        return p

    def tell(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress())

    def blocked_on_people(self) -> bool:
        """Nothing in flight, and every open run waits for a person's decision."""
        if self.in_flight:
            return False
        open_tracks = [t for t in self.tracks.values() if t.watched]
        return bool(open_tracks) and all(t.status == "waiting" for t in open_tracks)

    # the loop --------------------------------------------------------------------------
    def run(self) -> bool:
        """Drive until done; returns whether it stopped at the timeout."""
        records = self.runner.store.runs_by_id(list(self.tracks))
        for run_id, track in self.tracks.items():
            record = records.get(run_id)
            if record is None:
                raise RunStateError(f"Run {run_id} of batch {self.batch.batch_id} is missing.")
            self.settle(track, record)
        deadline = None if self.options.timeout is None else self.began + self.options.timeout
        last_poll = 0.0
        self.tell()
        while self.in_flight or any(t.watched for t in self.tracks.values()):
            if deadline is not None and time.monotonic() >= deadline:
                self.cancel()
                return True
            if not self.options.wait_for_approvals and self.blocked_on_people():
                break
            self.collect(min(self.options.poll_interval, 0.25))
            if time.monotonic() - last_poll >= self.options.poll_interval:
                self.poll_store()
                last_poll = time.monotonic()
            self.tell()
        self.tell()
        return False

    def cancel(self) -> None:
        """At the timeout: stop the tasks still running (their runs become interrupted).

        Ray's polite cancel does not reach a task blocked in a tool or a model call, so the
        workers executing runs are killed (``force=True``), exactly like lost workers: the
        runs stop mid-step, their locks die with the workers, and a later resume continues
        from the last checkpoint with the effect ledger's guarantees. Tasks not started yet
        never start (their runs stay queued)."""
        stopping = list(self.in_flight.values())
        for ref in list(self.in_flight):
            self.ray.ray.cancel(ref, force=True)
        grace = time.monotonic() + 30
        while self.in_flight and time.monotonic() < grace:
            self.collect(0.5)
        # Ray reports a task cancelled before its worker has finished unwinding: wait until
        # the runs' locks are free, so the report says where they really stopped.
        while time.monotonic() < grace and any(
            self.runner.backend.is_locked(run_id) for run_id in stopping
        ):
            time.sleep(0.2)
        self.tell()


def _next_steps(batch: BatchRecord, runs: list[BatchRunReport]) -> list[str]:
    steps = []
    waiting = [r for r in runs if r.status == RunStatus.WAITING.value]
    if waiting:
        steps.append(f"controlroom approvals   # {len(waiting)} run(s) wait for a person")
        r = waiting[0]
        if r.pending:
            steps.append(
                f"controlroom approve {r.run_id} {r.pending[0]} --user APPROVER --no-resume"
            )
    if any(r.status not in ("completed", "failed", "error") for r in runs):
        steps.append(f"controlroom batch --resume {batch.batch_id}")
    failed = [r for r in runs if r.status in ("failed", "error")]
    if failed:
        steps.append(
            f"controlroom batch --resume {batch.batch_id} --retry-failed   # {len(failed)} failed"
        )
    return steps


def run_batch(
    runner: Runner,
    batch: BatchRecord,
    items: list[BatchItem],
    options: BatchOptions,
    *,
    on_progress: Callable[[BatchProgress], None] | None = None,
) -> BatchReport:
    """Execute a batch's runs on Ray until done (see the module docstring)."""
    started_at = now()
    ensure_runs(runner, batch, items)
    handle = connect_ray(options)
    try:
        driver = _Driver(runner, batch, items, options=options, ray=handle, on_progress=on_progress)
        timed_out = driver.run()
    finally:
        handle.close()
    elapsed = time.monotonic() - driver.began
    records = runner.store.runs_by_id([i.run_id for i in items])
    runs = []
    for item in items:
        track = driver.tracks[item.run_id]
        record = records[item.run_id]
        if record.status is RunStatus.RUNNING:  # nobody drives it any more: interrupted
            record = runner.get_run(item.run_id)
        status = "error" if track.status == "error" else record.status.value
        pending = []
        if record.status is RunStatus.WAITING:
            pending = [a.approval_id for a in runner.store.list_approvals(run_id=item.run_id)]
        runs.append(
            BatchRunReport(
                position=item.position,
                run_id=item.run_id,
                user_id=item.user_id,
                input=item.input if len(item.input) <= 200 else item.input[:199] + "…",
                status=status,
                output=record.output,
                error=record.error or track.error,
                pending=pending,
                tasks=track.tasks,
                workers=sorted(set(track.workers)),
                seconds=round(track.seconds, 4),
            )
        )
    counts = BatchReport.count(runs)
    finished = all(r.status in ("completed", "failed", "error") for r in runs)
    return BatchReport(
        batch_id=batch.batch_id,
        workflow=batch.workflow,
        workflow_ref=batch.workflow_ref,
        user_id=batch.user_id,
        backend=runner.backend.describe(),
        ray=handle.description,
        workers=options.workers if not options.ray_address else 0,
        started_at=started_at,
        finished_at=now(),
        elapsed_s=round(elapsed, 3),
        runs_per_s=round(driver.finished_here / elapsed, 3) if elapsed > 0 else 0.0,
        counts=counts,
        finished=finished,
        timed_out=timed_out,
        runs=runs,
        next_steps=_next_steps(batch, runs),
    )


def default_report_path(runner: Runner, batch_id: str) -> Path:
    return runner.settings.home / "batches" / f"{batch_id}.json"


def write_report(report: BatchReport, path: Path) -> Path:
    """Write the report atomically (a reader never sees half of it)."""
    private_dir(path.parent)
    report.report_path = str(path)
    write_private(path, (report.model_dump_json(indent=2) + "\n").encode("utf-8"))
    return path
