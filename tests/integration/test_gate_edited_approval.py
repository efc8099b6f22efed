"""Acceptance 4: an approval edited to exceed a limit is refused by the gate, not executed.

Bob (payment limit 50000) asks to pay 12000, which needs a finance manager's approval.
Ivy approves it with the amount edited to 60000: above Bob's limit. The gate re-checks the
edited arguments: ``Runner.approve`` refuses and records nothing; a decision written
around it (straight into the store) is refused when the run continues. Nothing is paid
until an acceptable edit is approved.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controlroom import ApprovalStatus, RunStatus, ToolError
from controlroom.testing import ScriptedReply
from tests.pack_support import (
    RecordingGate,
    Spy,
    agent_workflow,
    call,
    pack_gate,
    pack_home,
    runner_with,
    snapshot,
)

_ = pack_home  # fixture
ASK = [
    ScriptedReply(tool_calls=[call("create_payment", invoice_id="INV-1006", amount=12000)]),
    ScriptedReply(content="Done."),
]


def test_runner_approve_refuses_an_edit_above_the_limit(pack_home: Path) -> None:
    db = pack_home / "enterprise.sqlite"
    spy = Spy()
    runner = runner_with(pack_home, *ASK)
    workflow = runner.register(agent_workflow(spy.tools(), pack_gate()))
    started = runner.start(workflow, user="bob", input="Pay Proseware 12000.")
    [item] = started.pending
    assert item.reason == "payments above 10000 need a finance manager's approval"
    before = snapshot(db)

    with pytest.raises(ToolError, match=r"denied by policy \(payments above your limit of 50000"):
        runner.approve(started.run_id, item.approval_id, by="ivy",
                       args={"invoice_id": "INV-1006", "amount": 60000})  # fmt: skip
    assert runner.store.get_approval(started.run_id, item.approval_id).status is (
        ApprovalStatus.PENDING
    )
    assert spy.calls == [] and snapshot(db) == before

    done = runner.approve(started.run_id, item.approval_id, by="ivy",
                          args={"invoice_id": "INV-1006", "amount": 11000})  # fmt: skip
    assert done.status is RunStatus.COMPLETED
    assert [(n, a["amount"]) for n, _, a in spy.calls] == [("create_payment", 11000.0)]


def test_a_decision_written_around_the_runner_is_rechecked_when_the_run_continues(
    pack_home: Path,
) -> None:
    db = pack_home / "enterprise.sqlite"
    spy, gate = Spy(), RecordingGate(pack_gate())
    runner = runner_with(pack_home, *ASK)
    workflow = runner.register(agent_workflow(spy.tools(), gate))
    started = runner.start(workflow, user="bob", input="Pay Proseware 12000.")
    [item] = started.pending
    before = snapshot(db)
    runner.store.decide(started.run_id, item.approval_id, approved=True, by="ivy",
                        edited_args={"invoice_id": "INV-1006", "amount": 60000})  # fmt: skip

    final = runner.resume(started.run_id, workflow=workflow)

    assert final.status is RunStatus.COMPLETED
    assert spy.calls == [] and snapshot(db) == before
    refusal = json.loads(
        str(next(m for m in runner.messages(started.run_id) if m.type == "tool").content)
    )
    assert refusal["status"] == "denied" and refusal["policies"] == ["payment-limit"]
    assert (
        refusal["reason"] == "payments above your limit of 50000 need someone with a higher limit"
    )
    assert gate.decisions[-1][2]["amount"] == 60000
