"""What a runner call returns: where a run stands."""

from __future__ import annotations

from pydantic import BaseModel, Field

from controlroom.graphs.store import Approval, RunRecord, RunStatus


class RunResult(BaseModel):
    """Where a run stands after a call: its record, what waits, the final output."""

    run: RunRecord
    pending: list[Approval] = Field(default_factory=list)
    paused_at: str | None = None  # why a paused run paused: a step, a breakpoint, a stop

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def status(self) -> RunStatus:
        return self.run.status

    @property
    def output(self) -> str | None:
        return self.run.output
