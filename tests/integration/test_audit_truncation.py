"""A log cut back to one of its signed checkpoints, with its head file deleted, verified as
intact: the chain alone cannot show it. The run store says how the run ended, and the
runner records that end in the log before the store, so `audit verify` and `doctor` compare
the two (the anchoring of heads outside the project is the trust issue's)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from controlroom import Runner, RunStatus
from controlroom.cli import app
from tests.conftest import EXAMPLE

INPUT = "Pay invoice INV-1001"


def test_a_completed_run_whose_log_was_cut_at_a_checkpoint_is_tampered(project: Path) -> None:
    with Runner(home=project) as runner:
        started = runner.start(EXAMPLE, user="alice", input=INPUT)
        done = runner.approve(started.run_id, started.pending[0].approval_id, by="bob")
    assert done.status is RunStatus.COMPLETED
    log = project / "audit" / f"{done.run_id}.jsonl"
    lines = log.read_bytes().split(b"\n")[:-1]
    kinds = [json.loads(line)["kind"] for line in lines]
    # cut right after the checkpoint that signed the approval decision
    cut = max(i for i, k in enumerate(kinds) if k == "checkpoint" and i < len(kinds) - 1) + 1
    assert "run.end" not in kinds[:cut]
    log.write_bytes(b"\n".join(lines[:cut]) + b"\n")
    (project / "audit" / f"{done.run_id}.head.json").unlink()

    cli = CliRunner()
    verified = cli.invoke(app, ["audit", "verify", done.run_id, "--json"])
    assert verified.exit_code == 1, verified.output
    report = json.loads(verified.stdout)
    assert report["status"] == "tampered" and report["reason"] == "truncated"
    assert "the run store says the run is completed" in report["detail"]
    doctor = cli.invoke(app, ["doctor"])
    assert doctor.exit_code == 1
    assert "fail verification" in doctor.stdout and done.run_id in doctor.stdout


def test_a_waiting_run_is_not_expected_to_have_ended(project: Path) -> None:
    with Runner(home=project) as runner:
        started = runner.start(EXAMPLE, user="alice", input=INPUT)
    assert started.status is RunStatus.WAITING
    verified = CliRunner().invoke(app, ["audit", "verify", started.run_id])
    assert verified.exit_code == 0, verified.output
