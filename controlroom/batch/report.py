"""What a batch reports: per-run outcomes, progress while it runs, the final report (JSON)."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import BaseModel, Field

# What a worker says after one task: a run status, or why it did not drive the run.
OutcomeStatus = Literal[
    "queued",
    "running",
    "waiting",
    "paused",
    "interrupted",
    "completed",
    "failed",
    "busy",  # another process holds the run's lock (a person's `approve` resuming it)
    "error",  # the run could not be driven here (e.g. its workflow file changed)
]


class RunOutcome(BaseModel):
    """The result of one Ray task: where the run stood when the worker let go of it."""

    run_id: str
    status: OutcomeStatus
    output: str | None = None
    error: str | None = None
    pending: list[str] = Field(default_factory=list)
    worker: str  # host:pid of the worker process
    seconds: float = 0.0


class BatchProgress(BaseModel):
    """Counts while the batch runs (for a progress display)."""

    total: int
    completed: int = 0
    failed: int = 0
    waiting: int = 0  # stopped for a person
    running: int = 0  # in flight: submitted to Ray (queued there, or executing)
    other: int = 0  # queued, paused, interrupted, or driven by another process
    finished_now: int = 0  # taken to a final state by this invocation
    elapsed_s: float = 0.0

    @property
    def rate(self) -> float:
        """Runs taken to a final state per second, by this invocation."""
        return self.finished_now / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def done(self) -> int:
        return self.completed + self.failed


class BatchRunReport(BaseModel):
    """One run of the batch in the final report."""

    position: int
    run_id: str
    user_id: str
    input: str
    status: str
    output: str | None = None
    error: str | None = None
    pending: list[str] = Field(default_factory=list)
    tasks: int = 0  # Ray tasks submitted for it by this invocation (resubmissions included)
    workers: list[str] = Field(default_factory=list)
    seconds: float = 0.0  # time spent in workers


class BatchReport(BaseModel):
    """The JSON report of ``controlroom batch`` (stable for scripts)."""

    batch_id: str
    workflow: str
    workflow_ref: str
    user_id: str
    backend: str
    ray: str
    workers: int
    started_at: str
    finished_at: str
    elapsed_s: float
    runs_per_s: float  # runs this invocation took to a final state, per second
    counts: dict[str, int]
    finished: bool  # every run completed or failed
    timed_out: bool = False
    runs: list[BatchRunReport]
    next_steps: list[str] = Field(default_factory=list)
    report_path: str | None = None

    @staticmethod
    def count(runs: list[BatchRunReport]) -> dict[str, int]:
        return dict(sorted(Counter(r.status for r in runs).items()))
