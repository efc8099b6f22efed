"""What a runner call returns: where a run stands."""

from __future__ import annotations

from pydantic import BaseModel, Field

from controlroom.graphs.storage.records import Approval, Refusal, RunRecord, RunStatus


class RunResult(BaseModel):
    """Where a run stands after a call: its record, what waits, the final output, and
    every tool call of the run that was denied or rejected (never hidden by "completed")."""

    run: RunRecord
    pending: list[Approval] = Field(default_factory=list)
    paused_at: str | None = None  # why a paused run paused: a step, a breakpoint, a stop
    refused: list[Refusal] = Field(default_factory=list)  # denied, rejected, invalid calls

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def status(self) -> RunStatus:
        return self.run.status

    @property
    def output(self) -> str | None:
        return self.run.output
