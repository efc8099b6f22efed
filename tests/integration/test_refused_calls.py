"""A completed run never hides a refused call (issue 14, defect 6).

On the embedded model a payment was denied, the model mailed the refusal and the run ended
"completed", exit 0; nothing told the user. Now every run records its denied and rejected
calls: the SDK's result lists them, `runs` and `show` show them (text and --json), the
status line says "completed with N denied call(s)", and the exit code is 5.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from controlroom import RunStatus
from controlroom.cli import app
from tests.conftest import run_cli
from tests.integration.test_gate_forbidden_run import SCRIPT
from tests.pack_support import RecordingGate, Spy, agent_workflow, pack_gate, pack_home, runner_with

_ = pack_home  # fixture

WORKFLOW = """
name: chores
model: scripted:script.yaml
tools: [controlroom.tools.pack.hr:get_salary]
policies: builtin:pack
steps:
  - id: agent
    kind: model
    prompt: Help {user.name}.
    tools: [get_salary]
    on_tool_calls: act
    next: end
  - id: act
    kind: tools
    next: agent
"""
REPLIES = """
replies:
  - tool_calls: [{name: get_salary, args: {employee_id: E0008}}]
  - expect: only HR and the employee's managers may see salaries
    content: I may not show you that salary.
"""


def test_the_sdk_result_and_the_lists_carry_every_refusal(pack_home: Path) -> None:
    spy, gate = Spy(), RecordingGate(pack_gate())
    runner = runner_with(pack_home, *SCRIPT)
    first = runner.start(agent_workflow(spy.tools(), gate), user="alice", input="Do the chores.")
    [pending] = first.pending
    final = runner.reject(
        first.run_id,
        pending.approval_id,
        by="bob",
        reason="Send invoices to colleagues, not to partners.",
    )
    assert final.status is RunStatus.COMPLETED
    assert (final.run.denied_calls, final.run.rejected_calls) == (2, 1)
    assert final.run.outcome == "completed with 2 denied call(s) and 1 rejected call(s)"
    refused = [(r.tool, r.status.value, r.decided_by, r.policies) for r in final.refused]
    assert refused == [
        ("get_salary", "denied", None, ["default-deny"]),
        ("create_payment", "denied", None, ["payment-limit"]),
        ("send_mail", "rejected", "bob", []),
    ]
    assert final.refused[2].reason == "Send invoices to colleagues, not to partners."
    [listed] = runner.list_runs()
    assert (listed.denied_calls, listed.rejected_calls) == (2, 1)

    cli = CliRunner()
    shown = cli.invoke(app, ["show", first.run_id, "--json"])
    payload = json.loads(shown.stdout)
    assert payload["run"]["denied_calls"] == 2
    assert [r["tool"] for r in payload["refused"]] == ["get_salary", "create_payment", "send_mail"]
    text = cli.invoke(app, ["show", first.run_id]).stdout
    assert "completed with 2 denied call(s) and 1 rejected call(s)" in text
    assert "3 refused call(s)" in text and "not to partners" in text
    table = cli.invoke(app, ["runs"]).stdout
    assert "2 denied, 1 rejected" in table
    runs = json.loads(cli.invoke(app, ["runs", "--json"]).stdout)
    assert (runs[0]["denied_calls"], runs[0]["rejected_calls"]) == (2, 1)


def test_a_completed_run_with_a_denied_call_exits_5(pack_home: Path, tmp_path: Path) -> None:
    wf = tmp_path / "chores"
    wf.mkdir()
    (wf / "workflow.yaml").write_text(WORKFLOW)
    (wf / "script.yaml").write_text(REPLIES)
    done = run_cli(pack_home, "run", str(wf), "-u", "alice", "-i", "Carol's salary?")
    assert done.returncode == 5, done.stdout + done.stderr
    assert "completed with 1 denied call(s)" in done.stdout
    assert "only HR and the employee's managers may see salaries" in done.stdout
    as_json = run_cli(pack_home, "run", str(wf), "-u", "alice", "-i", "Carol's salary?", "--json")
    assert as_json.returncode == 5
    result = json.loads(as_json.stdout)
    assert result["run"]["status"] == "completed" and result["run"]["denied_calls"] == 1
    assert result["refused"][0]["policies"] == ["default-deny"]


INVALID = """
replies:
  - tool_calls: [{name: get_salary, args: {employee: E0008}}]
  - content: Done.
"""


def test_a_call_refused_for_invalid_arguments_is_not_hidden_either(
    pack_home: Path, tmp_path: Path
) -> None:
    """The model called a tool with arguments it does not take and then said "Done."."""
    wf = tmp_path / "chores"
    wf.mkdir()
    (wf / "workflow.yaml").write_text(WORKFLOW)
    (wf / "script.yaml").write_text(INVALID)
    done = run_cli(pack_home, "run", str(wf), "-u", "alice", "-i", "Carol's salary?", "--json")
    assert done.returncode == 5, done.stdout + done.stderr
    run = json.loads(done.stdout)
    assert run["run"]["invalid_calls"] == 1 and run["run"]["denied_calls"] == 0
    assert run["refused"][0]["status"] == "invalid_arguments"
    text = run_cli(pack_home, "show", run["run"]["run_id"]).stdout
    assert "completed with 1 call(s) refused for invalid arguments" in text
