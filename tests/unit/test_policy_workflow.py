"""Workflows carry their own policy gate: `policies:` in files, `policies=`/`gate=` in Python."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from controlroom import (
    DeclaredGate,
    GraphBuilder,
    PolicyError,
    PolicyGate,
    RunStatus,
    load_workflow,
)
from controlroom.testing import ScriptedReply
from controlroom.tools.pack import tools
from controlroom.tools.policy import builtin_policies, project_gate
from tests.pack_support import REPO, call, pack_home, runner_with

_ = pack_home
EXAMPLE = REPO / "examples" / "enterprise-assistant"
WORKFLOW = """
name: gated
model: scripted:x
tools: [controlroom.tools.pack:hr_tools]
policies: {policies}
steps:
  - id: agent
    kind: model
    prompt: Hi {{user.name}}.
    tools: [get_salary]
    on_tool_calls: act
    next: end
  - id: act
    kind: tools
    next: agent
"""


def test_a_workflow_file_names_a_policy_folder_next_to_it(tmp_path: Path) -> None:
    shutil.copytree(builtin_policies("pack"), tmp_path / "rules")
    (tmp_path / "workflow.yaml").write_text(WORKFLOW.format(policies="./rules"))
    wf = load_workflow(tmp_path)
    assert isinstance(wf.gate, PolicyGate)
    assert wf.gate.bundle.folder == (tmp_path / "rules").resolve()


def test_builtin_policy_sets_are_named_with_a_prefix() -> None:
    wf = load_workflow(EXAMPLE)
    assert isinstance(wf.gate, PolicyGate)
    assert wf.gate.bundle.folder == builtin_policies("pack").resolve()
    assert len(wf.tools) == 15


def test_a_broken_policy_folder_fails_the_load_with_the_file(tmp_path: Path) -> None:
    shutil.copytree(builtin_policies("pack"), tmp_path / "rules")
    (tmp_path / "rules" / "hr.cedar").write_text("permit (principal, action, resource) when {")
    (tmp_path / "workflow.yaml").write_text(WORKFLOW.format(policies="./rules"))
    with pytest.raises(PolicyError, match=r"rules/hr\.cedar:1: "):
        load_workflow(tmp_path)
    (tmp_path / "workflow.yaml").write_text(WORKFLOW.format(policies="./nope"))
    with pytest.raises(PolicyError, match="No policy folder at"):
        load_workflow(tmp_path)


def test_the_builder_takes_policies_or_a_gate() -> None:
    def build(**kw: object) -> object:
        return (
            GraphBuilder("b", model="scripted:x", tools=tools, **kw)  # type: ignore[arg-type]
            .model("agent", "hi", tools=["get_salary"], on_tool_calls="act", next="end")
            .tools("act", next="agent")
            .build()
        )

    with_policies = build(policies="builtin:pack")
    assert isinstance(with_policies.gate, PolicyGate)  # type: ignore[attr-defined]
    assert with_policies.spec.policies == "builtin:pack"  # type: ignore[attr-defined]
    declared = DeclaredGate()
    assert build(gate=declared).gate is declared  # type: ignore[attr-defined]
    assert build().gate is None  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="not both"):
        build(policies="builtin:pack", gate=declared)


def test_the_project_default_policy_set(tmp_path: Path) -> None:
    assert project_gate(tmp_path) is None
    shutil.copytree(builtin_policies("pack"), tmp_path / "policies")
    gate = project_gate(tmp_path)
    assert isinstance(gate, PolicyGate)


def test_the_example_runs_with_its_gate(pack_home: Path) -> None:
    runner = runner_with(
        pack_home,
        ScriptedReply(tool_calls=[call("get_salary", employee_id="E0008")]),
        ScriptedReply(content="ok"),
    )
    result = runner.start(
        EXAMPLE, user="erin", input="What does Carol earn?", model="scripted:test"
    )
    assert result.status is RunStatus.COMPLETED
    [reply] = [m for m in runner.messages(result.run_id) if m.type == "tool"]
    assert '"annual_salary": 142000' in str(reply.content)


def test_broken_project_policies_stop_deciding_never_reading_or_replaying(
    pack_home: Path, tmp_path: Path
) -> None:
    """`<home>/policies` decides workflows that name none. Broken after a run, it stops new
    decisions with the file named, while `runs`, `show` and a replay (which decides with the
    policy set kept with the audit) go on working."""
    shutil.copytree(builtin_policies("pack"), pack_home / "policies")
    flow = tmp_path / "flow" / "workflow.yaml"
    flow.parent.mkdir()
    flow.write_text(WORKFLOW.replace("policies: {policies}\n", ""))
    replies = [
        ScriptedReply(tool_calls=[call("get_salary", employee_id="E0008")]),
        ScriptedReply(content="ok"),
    ]
    with runner_with(pack_home, *replies) as runner:
        done = runner.start(flow, user="erin", input="What does Carol earn?", model="scripted:test")
    assert done.status is RunStatus.COMPLETED
    [policy_file, *_] = sorted((pack_home / "policies").glob("*.cedar"))
    policy_file.write_text("permit(principal, action, resource) garbage(")
    with runner_with(pack_home, *replies) as runner:
        assert [r.run_id for r in runner.list_runs()] == [done.run_id]
        assert runner.get_run(done.run_id).status is RunStatus.COMPLETED
        report = runner.replay(done.run_id)
        assert report.matched, report
        with pytest.raises(PolicyError, match=policy_file.name):
            runner.start(flow, user="erin", input="What does Carol earn?", model="scripted:test")
