"""The runner through the SDK: approvals (parallel, edited, rejected, automatic), step
mode, branches, checkpoints, failures, crashes and the effect ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controlroom import (
    ApprovalDecidedError,
    Effect,
    GraphBuilder,
    Runner,
    RunStateError,
    RunStatus,
    ToolArgumentsError,
    ToolContext,
    UnknownUserError,
    Workflow,
    tool,
)
from controlroom.testing import ScriptedChatModel, ScriptedReply, ScriptedToolCall

# The whole module runs on SQLite and on PostgreSQL (the `backend` fixture).
pytestmark = pytest.mark.usefixtures("backend")

CALLS: list[tuple[str, dict[str, Any]]] = []


class Crash(BaseException):
    """Stands in for the process dying mid-step (not an Exception: nothing catches it)."""


CRASH_ON_NOTE = {"armed": False}


@tool(effect=Effect.IRREVERSIBLE)
def pay(invoice: str, amount: float, ctx: ToolContext) -> dict[str, Any]:
    """Pay an invoice."""
    CALLS.append(("pay", {"invoice": invoice, "amount": amount, "key": ctx.idempotency_key}))
    return {"paid": amount, "invoice": invoice}


@tool(effect=Effect.READ)
def note(text: str) -> str:
    """Write a note (read-only here)."""
    CALLS.append(("note", {"text": text}))
    if CRASH_ON_NOTE["armed"]:
        CRASH_ON_NOTE["armed"] = False
        raise Crash
    return f"noted: {text}"


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()
    CRASH_ON_NOTE["armed"] = False


def call(name: str, **args: Any) -> ScriptedToolCall:
    return ScriptedToolCall(name=name, args=args)


def agent(*replies: ScriptedReply) -> tuple[Workflow, dict[str, ScriptedChatModel]]:
    wf = (
        GraphBuilder("payments", model="scripted:test", tools=[pay, note])
        .model("agent", "Help {user.name}.", tools=["pay", "note"], on_tool_calls="act", next="end")
        .tools("act", next="agent")
        .build()
    )
    return wf, {"scripted:test": ScriptedChatModel(replies=list(replies))}


def runner_for(project: Path, models: dict[str, ScriptedChatModel]) -> Runner:
    return Runner(home=project, models=dict(models))


def test_two_parallel_calls_make_two_pending_items_decided_independently(project: Path) -> None:
    wf, models = agent(
        ScriptedReply(
            tool_calls=[
                call("pay", invoice="A", amount=10.0),
                call("pay", invoice="B", amount=20.0),
            ]
        ),
        ScriptedReply(content="done"),
    )
    runner = runner_for(project, models)
    result = runner.start(wf, user="alice", input="pay A and B")
    assert result.status is RunStatus.WAITING
    ids = [a.approval_id for a in result.pending]
    assert len(ids) == 2 and len(set(ids)) == 2
    assert [a.args["invoice"] for a in result.pending] == ["A", "B"]

    # Deciding the first leaves the second pending and the run waiting; nothing paid yet.
    after_first = runner.approve(result.run_id, ids[0], by="bob")
    assert after_first.status is RunStatus.WAITING
    assert [a.approval_id for a in after_first.pending] == [ids[1]]
    assert CALLS == []

    # A fresh runner (another process) decides the second; the run continues.
    other = runner_for(project, models)
    final = other.reject(result.run_id, ids[1], by="bob", reason="B is a duplicate", resume=False)
    assert final.status is RunStatus.WAITING and final.pending == []
    final = other.resume(result.run_id, workflow=wf)
    assert final.status is RunStatus.COMPLETED
    assert [(n, a["invoice"]) for n, a in CALLS] == [("pay", "A")]
    tool_messages = [m for m in other.messages(result.run_id) if m.type == "tool"]
    assert json.loads(str(tool_messages[0].content)) == {"invoice": "A", "paid": 10.0}
    assert json.loads(str(tool_messages[1].content))["reason"] == "B is a duplicate"


def test_decisions_are_final(project: Path) -> None:
    wf, models = agent(
        ScriptedReply(tool_calls=[call("pay", invoice="A", amount=1.0)]),
        ScriptedReply(content="ok"),
    )
    runner = runner_for(project, models)
    result = runner.start(wf, user="alice", input="pay")
    approval = result.pending[0].approval_id
    runner.approve(result.run_id, approval, by="bob")
    with pytest.raises(ApprovalDecidedError):
        runner.reject(result.run_id, approval, by="bob", reason="too late")


def test_edited_arguments_are_validated_before_anything_is_recorded(project: Path) -> None:
    wf, models = agent(
        ScriptedReply(tool_calls=[call("pay", invoice="A", amount=1.0)]),
        ScriptedReply(content="ok"),
    )
    runner = runner_for(project, models)
    result = runner.start(wf, user="alice", input="pay")
    approval = result.pending[0].approval_id
    with pytest.raises(ToolArgumentsError, match="amount"):
        runner.approve(result.run_id, approval, by="bob", args={"invoice": "A", "amount": "lots"})
    with pytest.raises(ToolArgumentsError, match=r"(?i)extra inputs"):
        runner.approve(
            result.run_id, approval, by="bob", args={"invoice": "A", "amount": 1, "to": "me"}
        )
    assert runner.approvals(result.run_id)[0].status.value == "pending"
    done = runner.approve(
        result.run_id, approval, by="bob", args={"invoice": "A", "amount": 0.5}, resume=False
    )
    assert done.status is RunStatus.WAITING
    assert runner.resume(result.run_id, workflow=wf).status is RunStatus.COMPLETED
    assert CALLS[0][1]["amount"] == 0.5


def test_unknown_approver_is_refused(project: Path) -> None:
    wf, models = agent(
        ScriptedReply(tool_calls=[call("pay", invoice="A", amount=1.0)]),
        ScriptedReply(content="ok"),
    )
    runner = runner_for(project, models)
    result = runner.start(wf, user="alice", input="pay")
    with pytest.raises(UnknownUserError):
        runner.approve(result.run_id, result.pending[0].approval_id, by="mallory")


@pytest.mark.parametrize(("mode", "paid"), [("all", True), ("none", False)])
def test_automatic_approval_modes_decide_and_record(project: Path, mode: str, paid: bool) -> None:
    wf, models = agent(
        ScriptedReply(tool_calls=[call("pay", invoice="A", amount=1.0)]),
        ScriptedReply(content="ok"),
    )
    runner = runner_for(project, models)
    result = runner.start(wf, user="alice", input="pay", approve=mode)  # type: ignore[arg-type]
    assert result.status is RunStatus.COMPLETED
    assert bool(CALLS) is paid
    decided = runner.store.list_approvals(run_id=result.run_id, status=None)
    assert [(a.status.value, a.decided_by) for a in decided] == [
        ("approved" if paid else "rejected", f"auto:--approve {mode}")
    ]


def test_unknown_tool_and_bad_arguments_are_refused_to_the_model(project: Path) -> None:
    wf, models = agent(
        ScriptedReply(tool_calls=[call("note", text=5), call("note", text="fine")]),
        ScriptedReply(content="ok"),
    )
    runner = runner_for(project, models)
    result = runner.start(wf, user="alice", input="go")
    assert result.status is RunStatus.COMPLETED
    first, second = (m for m in runner.messages(result.run_id) if m.type == "tool")
    assert json.loads(str(first.content))["status"] == "invalid_arguments"
    assert second.content == "noted: fine"
    assert CALLS == [("note", {"text": "fine"})]


def test_step_mode_runs_one_node_at_a_time(project: Path) -> None:
    wf, models = agent(
        ScriptedReply(tool_calls=[call("note", text="x")]), ScriptedReply(content="ok")
    )
    runner = runner_for(project, models)
    result = runner.start(wf, user="alice", input="go", step=True)
    assert result.status is RunStatus.PAUSED and result.run.next_steps == ["act"]
    assert CALLS == []
    result = runner.step(result.run_id, workflow=wf)
    assert result.status is RunStatus.PAUSED and result.run.next_steps == ["agent"]
    assert CALLS == [("note", {"text": "x"})]
    result = runner.step(result.run_id, workflow=wf)
    assert result.status is RunStatus.COMPLETED and result.output == "ok"


def test_branch_and_checkpoint_approval(project: Path) -> None:
    wf = (
        GraphBuilder("triage", model="scripted:test")
        .model("classify", "Classify.", next="route")
        .branch(
            "route",
            [("output == 'urgent'", "review"), (lambda s: s["output"] == "spam", "end")],
            default="end",
        )
        .approval("review", "Escalate '{input}' for {user.name}?", next="escalate", on_reject="end")
        .model("escalate", "Write the escalation.")
        .build()
    )
    models = {
        "scripted:test": ScriptedChatModel(
            replies=[ScriptedReply(content="urgent"), ScriptedReply(content="escalated")]
        )
    }
    runner = runner_for(project, models)
    result = runner.start(wf, user="alice", input="server down")
    assert result.status is RunStatus.WAITING
    [item] = result.pending
    assert item.kind == "checkpoint" and item.message == "Escalate 'server down' for Alice Martin?"
    final = runner.approve(
        result.run_id, item.approval_id, by="bob", args={"team": "sre"}, resume=False
    )
    final = runner.resume(result.run_id, workflow=wf)
    assert final.status is RunStatus.COMPLETED and final.output == "escalated"
    assert runner.state(result.run_id)["vars"] == {"review": "approved", "team": "sre"}


def test_failure_is_recorded_and_resume_retries(project: Path) -> None:
    wf, _ = agent(ScriptedReply(content="ok"))
    runner = Runner(home=project, models={"scripted:test": ScriptedChatModel(replies=[])})
    result = runner.start(wf, user="alice", input="go")
    assert result.status is RunStatus.FAILED
    assert "Scripted model error" in (result.run.error or "")
    fixed = Runner(
        home=project,
        models={"scripted:test": ScriptedChatModel(replies=[ScriptedReply(content="ok")])},
    )
    assert fixed.resume(result.run_id, workflow=wf).status is RunStatus.COMPLETED


def test_crash_after_an_effect_is_not_repeated_on_resume(project: Path) -> None:
    """The ledger: a step that paid and then died re-runs without paying again."""
    wf, models = agent(
        ScriptedReply(
            tool_calls=[call("pay", invoice="A", amount=5.0), call("note", text="paid A")]
        ),
        ScriptedReply(content="ok"),
    )
    runner = runner_for(project, models)
    result = runner.start(wf, user="alice", input="pay A", approve="all")  # no person needed
    assert result.status is RunStatus.COMPLETED
    CALLS.clear()

    crashing = runner_for(project, models)
    run = crashing.start(wf, user="alice", input="pay A")
    CRASH_ON_NOTE["armed"] = True
    with pytest.raises(Crash):
        crashing.approve(run.run_id, run.pending[0].approval_id, by="bob")
    assert [n for n, _ in CALLS] == ["pay", "note"]
    assert crashing.get_run(run.run_id).status is RunStatus.INTERRUPTED

    resumed = runner_for(project, models).resume(run.run_id, workflow=wf)
    assert resumed.status is RunStatus.COMPLETED
    assert [n for n, _ in CALLS] == ["pay", "note", "note"]  # pay ran once, the read re-ran


def test_python_object_workflows_need_the_object_to_resume(project: Path) -> None:
    wf, models = agent(
        ScriptedReply(tool_calls=[call("pay", invoice="A", amount=1.0)]),
        ScriptedReply(content="ok"),
    )
    runner = runner_for(project, models)
    result = runner.start(wf, user="alice", input="pay")
    runner.approve(result.run_id, result.pending[0].approval_id, by="bob", resume=False)
    other = runner_for(project, models)
    with pytest.raises(RunStateError, match="Workflow object"):
        other.resume(result.run_id)
    other.register(wf)
    assert other.resume(result.run_id).status is RunStatus.COMPLETED


def test_a_long_agent_loop_is_not_cut_off_at_langgraphs_default_of_25_steps(
    project: Path,
) -> None:
    rounds = 20  # 40 graph steps: model, tools, model, tools, ...
    replies = [ScriptedReply(tool_calls=[call("note", text=f"n{i}")]) for i in range(rounds)]
    wf, models = agent(*replies, ScriptedReply(content="done"))
    result = runner_for(project, models).start(wf, user="alice", input="take notes")
    assert result.status == RunStatus.COMPLETED and result.output == "done"
    assert [c[1]["text"] for c in CALLS] == [f"n{i}" for i in range(rounds)]
