"""Guards around decisions: a recorded rejection wins over a later verdict, approval rules
that name approvers bind every path (CLI, SDK, --approve all), and a model that keeps
sending invalid arguments stops the run instead of looping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controlroom import (
    ApprovalError,
    Decision,
    Effect,
    GraphBuilder,
    Principal,
    Runner,
    RunStatus,
    Tool,
    Verdict,
    tool,
)
from controlroom.testing import ScriptedChatModel, ScriptedReply, ScriptedToolCall

RAN: list[dict[str, Any]] = []


@tool(effect=Effect.WRITE)
def transfer(amount: float) -> str:
    """Move money."""
    RAN.append({"amount": amount})
    return "moved"


class SwitchGate:
    """A gate whose verdict the test changes between steps."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision

    def decide(self, principal: Principal, tool: Tool, args: dict[str, Any]) -> Decision:
        return self.decision


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


def setup(project: Path, gate: SwitchGate, *replies: ScriptedReply) -> tuple[Runner, Any]:
    wf = (
        GraphBuilder("guarded", model="scripted:t", tools=[transfer])
        .model("agent", "Help.", tools=["transfer"], on_tool_calls="act", next="end")
        .tools("act", next="agent")
        .build()
    )
    runner = Runner(
        home=project, gate=gate, models={"scripted:t": ScriptedChatModel(replies=list(replies))}
    )
    return runner, wf


PAY = ScriptedReply(tool_calls=[ScriptedToolCall(name="transfer", args={"amount": 10.0})])
DONE = ScriptedReply(content="done")


def test_a_rejection_wins_even_if_the_gate_would_now_allow(project: Path) -> None:
    gate = SwitchGate(Decision(verdict=Verdict.APPROVE, reason="writes need approval"))
    runner, wf = setup(project, gate, PAY, DONE)
    run = runner.start(wf, user="alice", input="pay")
    runner.reject(run.run_id, run.pending[0].approval_id, by="bob", reason="no", resume=False)
    gate.decision = Decision(verdict=Verdict.ALLOW, reason="policy relaxed meanwhile")
    assert runner.resume(run.run_id).status is RunStatus.COMPLETED
    assert RAN == []


def test_a_later_deny_wins_over_an_earlier_approval(project: Path) -> None:
    gate = SwitchGate(Decision(verdict=Verdict.APPROVE, reason="writes need approval"))
    runner, wf = setup(project, gate, PAY, DONE)
    run = runner.start(wf, user="alice", input="pay")
    runner.approve(run.run_id, run.pending[0].approval_id, by="bob", resume=False)
    gate.decision = Decision(verdict=Verdict.DENY, reason="account frozen", policies=("freeze",))
    assert runner.resume(run.run_id).status is RunStatus.COMPLETED
    assert RAN == []


def test_named_approvers_bind_approve_reject_and_approve_all(project: Path) -> None:
    rule = Decision(
        verdict=Verdict.APPROVE,
        reason="payments need a manager",
        policies=("mgr",),
        approvers=("finance-manager",),
    )
    runner, wf = setup(project, SwitchGate(rule), PAY, DONE)
    run = runner.start(wf, user="alice", input="pay", approve="all")
    assert run.status is RunStatus.WAITING  # --approve all cannot stand in for a manager
    [item] = run.pending
    assert item.approvers == ["finance-manager"]
    assert item.policies == ["mgr"]
    with pytest.raises(ApprovalError, match="cannot approve their own request"):
        runner.approve(run.run_id, item.approval_id, by="alice")
    with pytest.raises(ApprovalError, match="cannot approve their own request"):
        runner.reject(run.run_id, item.approval_id, by="alice", reason="meh")
    assert runner.approve(run.run_id, item.approval_id, by="bob").status is RunStatus.COMPLETED
    assert RAN == [{"amount": 10.0}]


def test_repeated_invalid_arguments_stop_the_run(project: Path) -> None:
    bad = ScriptedReply(tool_calls=[ScriptedToolCall(name="transfer", args={"amount": "lots"})])
    runner, wf = setup(
        project, SwitchGate(Decision(verdict=Verdict.ALLOW, reason="ok")), bad, bad, bad, DONE
    )
    run = runner.start(wf, user="alice", input="pay")
    assert run.status is RunStatus.FAILED
    assert "3 rounds in a row" in (run.run.error or "")
    assert RAN == []


def test_two_invalid_rounds_then_a_valid_one_completes(project: Path) -> None:
    bad = ScriptedReply(tool_calls=[ScriptedToolCall(name="transfer", args={"amount": "lots"})])
    runner, wf = setup(
        project, SwitchGate(Decision(verdict=Verdict.ALLOW, reason="ok")), bad, bad, PAY, DONE
    )
    assert runner.start(wf, user="alice", input="pay").status is RunStatus.COMPLETED
    assert RAN == [{"amount": 10.0}]


def test_the_pack_database_follows_the_run_project_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from controlroom.config import using_home
    from controlroom.tools.pack import database_path

    monkeypatch.delenv("CONTROLROOM_PACK_DB", raising=False)
    monkeypatch.setenv("CONTROLROOM_HOME", str(tmp_path / "configured"))
    assert database_path() == (tmp_path / "configured" / "enterprise.sqlite").absolute()
    with using_home(tmp_path / "run-home"):
        assert database_path() == (tmp_path / "run-home" / "enterprise.sqlite").absolute()
