"""Acceptance: run the example from the CLI, stop at an approval, approve with edited
arguments from another process, and see the run completed in `runs --json`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE, run_cli

# Each test runs on SQLite and on PostgreSQL (the `backend` fixture).
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("backend")]


def cr(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(home, *args, timeout=120)


def test_run_stops_for_approval_and_another_process_approves_with_edits(project: Path) -> None:
    started = cr(
        project, "run", str(EXAMPLE), "--user", "alice", "--input", "Pay invoice INV-1001", "--json"
    )
    assert started.returncode == 3, started.stderr  # 3 = waiting for approval
    result = json.loads(started.stdout)
    run_id = result["run"]["run_id"]
    assert result["run"]["status"] == "waiting"
    [pending] = result["pending"]
    assert pending["tool"] == "pay_invoice"
    assert pending["args"] == {"invoice_id": "INV-1001", "amount": 1250.0}

    listed = cr(project, "approvals", "--json")
    assert listed.returncode == 0
    assert [(a["run_id"], a["approval_id"]) for a in json.loads(listed.stdout)] == [
        (run_id, pending["approval_id"])
    ]

    approved = cr(
        project,
        "approve",
        run_id,
        pending["approval_id"],
        "--user",
        "bob",
        "--args",
        json.dumps({"invoice_id": "INV-1001", "amount": 1200.0}),
        "--json",
    )
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert json.loads(approved.stdout)["run"]["status"] == "completed"

    runs = json.loads(cr(project, "runs", "--json").stdout)
    assert [(r["run_id"], r["status"], r["pending_approvals"]) for r in runs] == [
        (run_id, "completed", 0)
    ]

    shown = json.loads(cr(project, "show", run_id, "--json").stdout)
    tool_results = [
        m for m in shown["messages"] if m["type"] == "tool" and m["name"] == "pay_invoice"
    ]
    [paid] = tool_results
    content = json.loads(paid["content"])
    assert content["approved_with_edits"]["by"] == "bob"
    assert content["result"]["amount"] == 1200.0  # the edited amount was paid, not 1250
    assert cr(project, "approvals", "--json").stdout.strip() == "[]"


def test_without_a_tty_ask_prints_how_to_continue(project: Path) -> None:
    started = cr(project, "run", str(EXAMPLE), "--user", "alice", "--input", "Pay invoice INV-1001")
    assert started.returncode == 3
    assert "waiting" in started.stdout
    assert "controlroom approve" in started.stdout
    assert "controlroom reject" in started.stdout


def test_reject_from_cli_tells_the_agent_the_reason(project: Path) -> None:
    started = json.loads(
        cr(
            project, "run", str(EXAMPLE), "-u", "alice", "-i", "Pay invoice INV-1001", "--json"
        ).stdout
    )
    run_id, approval = started["run"]["run_id"], started["pending"][0]["approval_id"]
    missing_reason = cr(project, "reject", run_id, approval, "--user", "bob")
    assert missing_reason.returncode == 2
    rejected = cr(
        project, "reject", run_id, approval, "--user", "bob", "--reason", "vendor on hold", "--json"
    )
    # completed, with the payment rejected: exit 5 says so to a script
    assert rejected.returncode == 5, rejected.stdout + rejected.stderr
    assert json.loads(rejected.stdout)["run"]["rejected_calls"] == 1
    shown = json.loads(cr(project, "show", run_id, "--json").stdout)
    refusal = json.loads([m for m in shown["messages"] if m["type"] == "tool"][-1]["content"])
    assert refusal == {
        "status": "rejected",
        "tool": "pay_invoice",
        "reason": "vendor on hold",
        "by": "bob",
    }
