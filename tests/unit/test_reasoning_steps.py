"""The `reason` and `choose` steps inside workflows (scripted model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlroom import Runner, RunStatus, WorkflowFileError, load_workflow
from controlroom.testing import ScriptedChatModel, ScriptedReply

WORKFLOW = """
name: triage
model: scripted:x
steps:
  - id: think
    kind: reason
    prompt: Think about the ticket.
    save_as: analysis
  - id: category
    kind: choose
    prompt: "Classify. Analysis: {vars.analysis}"
    options: [hardware, software, access]
    routes: {hardware: order, access: end}
    next: answer
  - id: order
    kind: model
    prompt: Order a replacement.
    next: end
  - id: answer
    kind: model
    prompt: Answer the user.
    next: end
"""


def run(project: Path, tmp_path: Path, *replies: str) -> tuple[Runner, str]:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    model = ScriptedChatModel(replies=[ScriptedReply(content=r) for r in replies])
    runner = Runner(home=project, models={"scripted:x": model})
    result = runner.start(tmp_path / "wf.yaml", user="alice", input="My screen is cracked")
    assert result.status is RunStatus.COMPLETED, result.run.error
    return runner, result.run_id


def test_reasoning_is_kept_apart_and_the_choice_routes(project: Path, tmp_path: Path) -> None:
    runner, run_id = run(
        project,
        tmp_path,
        '{"reasoning": "a cracked screen is physical damage", "result": "broken display"}',
        '{"reasoning": "damage", "choice": "hardware"}',
        "I ordered a new screen.",
    )
    state = runner.state(run_id)
    assert state["vars"] == {"analysis": "broken display", "category": "hardware"}
    assert state["reasoning"] == {
        "think": "a cracked screen is physical damage",
        "category": "damage",
    }
    assert state["output"] == "I ordered a new screen."
    # The reasoning never entered the conversation the later steps and the user see.
    assert all("physical damage" not in str(m.content) for m in state["messages"])


def test_an_option_without_route_goes_to_next(project: Path, tmp_path: Path) -> None:
    runner, run_id = run(
        project,
        tmp_path,
        '{"reasoning": "r", "result": "app crashes"}',
        "not json",
        '{"reasoning": "r", "choice": "software"}',
        "Try reinstalling.",
    )
    assert runner.state(run_id)["vars"]["category"] == "software"
    assert runner.state(run_id)["output"] == "Try reinstalling."


def test_routes_must_name_options(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW.replace("access: end", "printer: end"))
    with pytest.raises(WorkflowFileError, match=r"routes name options that are not in `options`"):
        load_workflow(tmp_path / "wf.yaml")
