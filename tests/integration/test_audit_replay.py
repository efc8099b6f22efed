"""Acceptance 4: `controlroom replay` of a finished example run matches the record; altering
a recorded model output makes it report the first divergence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from controlroom import Runner
from controlroom.audit import ReplayError
from controlroom.audit.canonical import canonical, sha256
from controlroom.cli import app
from tests.audit_support import audit_log, finished_run, write_workflow
from tests.conftest import EXAMPLE

cli = CliRunner()


def example_run(project: Path) -> str:
    """The demo: alice asks, bob approves the payment with an edited amount."""
    started = cli.invoke(
        app, ["run", str(EXAMPLE), "-u", "alice", "-i", "Pay invoice INV-1001", "--json"]
    )
    assert started.exit_code == 3, started.output
    run_id = json.loads(started.stdout)["run"]["run_id"]
    approval = json.loads(started.stdout)["pending"][0]["approval_id"]
    edited = json.dumps({"invoice_id": "INV-1001", "amount": 1200.0})
    done = cli.invoke(
        app, ["approve", run_id, approval, "-u", "bob", "--args", edited, "--reason", "discount"]
    )
    assert done.exit_code == 0, done.output
    return run_id


def rewrite(path: Path, change: Any) -> int:
    """Apply ``change`` to the third model.call record (the payment) in place; returns its seq."""
    lines = path.read_bytes().split(b"\n")[:-1]
    calls = [i for i, line in enumerate(lines) if b'"kind":"model.call"' in line]
    record = json.loads(lines[calls[2]])
    change(record)
    lines[calls[2]] = canonical(record)
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return int(record["seq"])


def pay_more(record: dict[str, Any]) -> None:
    [message] = record["gen_ai.output.messages"]
    [call] = [p for p in message["parts"] if p["type"] == "tool_call"]
    call["arguments"]["amount"] = 9999.0


def test_replay_of_the_finished_example_matches(project: Path) -> None:
    run_id = example_run(project)
    result = cli.invoke(app, ["replay", run_id[:6]])
    assert result.exit_code == 0, result.output
    assert f"Replay of run {run_id} matches the record" in result.stdout
    assert "4 model.call" in result.stdout and "2 tool.decision" in result.stdout
    as_json = json.loads(cli.invoke(app, ["replay", run_id, "--json"]).stdout)
    assert as_json["matched"] is True and as_json["divergence"] is None
    # Replay ran nothing: the example's ledger still holds the one real payment.
    payments = project / "examples" / "invoice-payment.sqlite"
    assert payments.exists()


def test_an_altered_model_output_is_refused_then_its_divergence_is_named(project: Path) -> None:
    run_id = example_run(project)
    seq = rewrite(audit_log(project, run_id), pay_more)

    refused = cli.invoke(app, ["replay", run_id])
    assert refused.exit_code == 1
    assert f"TAMPERED at record {seq} (edited)" in refused.stdout
    assert "--unverified" in refused.stdout

    replayed = cli.invoke(app, ["replay", run_id, "--unverified", "--json"])
    assert replayed.exit_code == 1
    report = json.loads(replayed.stdout)
    assert report["divergence"]["seq"] == seq
    assert "the model call at step 4 (pay)" in report["divergence"]["what"]
    assert "controlroom.output.sha256" in report["divergence"]["what"]


def test_a_consistently_altered_output_diverges_at_the_decision_it_changes(
    project: Path,
) -> None:
    """Altered with its output hash recomputed: the replay follows the altered reply and
    the first difference is the approval request for a payment that was never asked."""
    run_id = example_run(project)

    def consistent(record: dict[str, Any]) -> None:
        pay_more(record)
        [message] = record["gen_ai.output.messages"]
        text = "".join(p["content"] for p in message["parts"] if p["type"] == "text")
        calls = [
            {"id": p["id"], "name": p["name"], "arguments": p["arguments"]}
            for p in message["parts"]
            if p["type"] == "tool_call"
        ]
        record["controlroom.output.sha256"] = sha256(
            canonical({"content": text, "tool_calls": calls})
        )

    seq = rewrite(audit_log(project, run_id), consistent)
    report = json.loads(cli.invoke(app, ["replay", run_id, "--unverified", "--json"]).stdout)
    assert report["matched"] is False
    divergence = report["divergence"]
    assert divergence["seq"] == seq + 1
    assert "approval request a5-1" in divergence["what"]
    assert "args_sha256" in divergence["what"]


def test_the_sdk_replays_denied_approved_and_edited_calls(tmp_path: Path, project: Path) -> None:
    ref = write_workflow(tmp_path / "wf")
    run_id = finished_run(project, ref)
    with Runner(home=project) as runner:
        report = runner.replay(run_id)
    assert report.matched, report.summary()
    assert report.counts == {
        "approval.decided": 2,
        "approval.requested": 2,
        "model.call": 4,
        "tool.decision": 5,
        "tool.result": 4,
    }


def test_a_hashed_log_cannot_be_replayed(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTROLROOM_AUDIT_REDACTION", "hash")
    run_id = example_run(project)
    result = cli.invoke(app, ["replay", run_id])
    assert result.exit_code == 2
    assert "redaction `hash`" in result.stderr
    with Runner(home=project) as runner, pytest.raises(ReplayError):
        runner.replay(run_id)
