"""Acceptance 3: in a run with a denied call, an approved call and an edited approval,
every executed tool call has an allow record (and an approval record where one was
required) before its result record.

The checks read the log as plain JSON lines and take what actually executed from the
tools' own notes (``executed.jsonl``), not from the audit writer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from controlroom.audit import verify_log
from tests.audit_support import (
    EDITED,
    INPUT,
    audit_log,
    executed,
    finished_run,
    project_key,
    write_workflow,
)
from tests.conftest import cli_env


def plain_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_write_ahead(log: list[dict[str, Any]], ran: list[dict[str, Any]]) -> None:
    def first(kind: str, **match: Any) -> int:
        found = [
            i
            for i, r in enumerate(log)
            if r["kind"] == kind and all(r.get(k) == v for k, v in match.items())
        ]
        assert found, f"no {kind} record with {match}"
        return found[0]

    assert ran, "something must have executed"
    results = [r for r in log if r["kind"] == "tool.result"]
    assert sorted(r["gen_ai.tool.call.id"] for r in results) == sorted(c["call_id"] for c in ran)
    for call in ran:
        call_id = call["call_id"]
        result = first("tool.result", **{"gen_ai.tool.call.id": call_id})
        step = log[result]["step"]
        allow = first("tool.decision", step=step, **{"gen_ai.tool.call.id": call_id})
        assert log[allow]["controlroom.decision"] == "allow"
        assert allow < result
        # What ran is what was allowed: same tool, same arguments.
        assert log[allow]["gen_ai.tool.name"] == call["tool"]
        assert log[allow]["gen_ai.tool.call.arguments"] == call["args"]
        asked = [
            i
            for i, r in enumerate(log)
            if r["kind"] == "approval.requested" and r.get("gen_ai.tool.call.id") == call_id
        ]
        if asked:
            approval_id = log[asked[0]]["controlroom.approval.id"]
            decided = first("approval.decided", **{"controlroom.approval.id": approval_id})
            assert log[decided]["controlroom.approval.decision"] == "approved"
            assert asked[0] < decided < allow < result
            assert log[allow]["controlroom.approval.id"] == approval_id
            assert (
                log[allow]["controlroom.tool.args_sha256"]
                == log[decided]["controlroom.approval.args_sha256"]
            )


def check_run(home: Path, run_id: str) -> list[dict[str, Any]]:
    path = audit_log(home, run_id)
    report = verify_log(path, expected_key=project_key(home))
    assert report.ok, report.summary()
    log = plain_records(path)
    ran = executed(home)
    check_write_ahead(log, ran)
    # The denied call: a deny record naming the policy, no result, never executed.
    [wire] = [r for r in log if r.get("gen_ai.tool.name") == "wire_money"]
    assert wire["kind"] == "tool.decision" and wire["controlroom.decision"] == "deny"
    assert wire["controlroom.policy.ids"] == ["no-wires"]
    assert wire["controlroom.policy.set_hash"] == "sha256:test-policy-set"
    assert "wire_money" not in [c["tool"] for c in ran]
    # The approval with edits: the diff and who made it; the edited arguments ran.
    [edited] = [
        r for r in log if r["kind"] == "approval.decided" and r["controlroom.approval.edited"]
    ]
    assert edited["controlroom.approver.id"] == "bob"
    assert edited["controlroom.approval.args_diff"] == [
        {"op": "replace", "path": "/amount", "old": 1250, "value": 1200}
    ]
    assert {"tool": "pay_invoice", "args": EDITED} in [
        {"tool": c["tool"], "args": c["args"]} for c in ran
    ]
    return log


def test_every_executed_call_was_allowed_and_approved_first(tmp_path: Path, project: Path) -> None:
    run_id = finished_run(project, write_workflow(tmp_path / "wf"))
    check_run(project, run_id)
    assert len(executed(project)) == 4


@pytest.mark.slow
def test_the_same_holds_when_another_process_records_the_approval(
    tmp_path: Path, project: Path
) -> None:
    """`approve --no-resume` appends to the log while no process holds the run."""
    ref = write_workflow(tmp_path / "wf")
    env = cli_env(project)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "controlroom", *args, "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    started = cli("run", ref, "-u", "alice", "-i", INPUT)
    assert started.returncode == 3, started.stdout + started.stderr
    run_id = json.loads(started.stdout)["run"]["run_id"]
    [first] = json.loads(started.stdout)["pending"]
    assert cli("approve", run_id, first["approval_id"], "-u", "bob", "--no-resume").returncode == 3
    resumed = cli("resume", run_id)
    assert resumed.returncode == 3, resumed.stdout + resumed.stderr
    [second] = json.loads(resumed.stdout)["pending"]
    done = cli(
        "approve",
        run_id,
        second["approval_id"],
        "-u",
        "bob",
        "--args",
        json.dumps(EDITED),
        "--reason",
        "agreed discount",
    )
    # completed, with the wire transfer the policies denied: exit 5, not a plain 0
    assert done.returncode == 5, done.stdout + done.stderr
    assert json.loads(done.stdout)["run"]["denied_calls"] == 1
    log = check_run(project, run_id)
    writers = {r["pid"] for r in log}
    assert len(writers) == 4  # run, approve --no-resume, resume, approve (+ resume in it)
