"""Acceptance 3: a scripted model asks for forbidden calls and gets refusals.

Alice (an accounts-payable clerk with a payment limit of 5000) runs an agent whose model
asks for a colleague's salary, a payment above her limit and a mail to an outside address
(which waits for a person, who rejects it), then for two permitted calls. The final
database equals the database before the run except for exactly those permitted effects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from controlroom import RunStatus
from controlroom.testing import ScriptedReply
from tests.pack_support import (
    RecordingGate,
    Spy,
    added_rows,
    agent_workflow,
    call,
    pack_gate,
    pack_home,
    removed_rows,
    runner_with,
    snapshot,
)

_ = pack_home  # fixture
OUTSIDE = {"to": ["partner@northwind.example"], "subject": "Invoices", "body": "All of them."}
INSIDE = {"to": ["bob@example.com"], "subject": "Paid", "body": "INV-1001 is scheduled."}
SCRIPT = [
    ScriptedReply(content="Looking up Carol's salary.",
                  tool_calls=[call("get_salary", employee_id="E0008")]),
    ScriptedReply(expect="only HR and the employee's managers may see salaries",
                  tool_calls=[call("create_payment", invoice_id="INV-1003", amount=9000)]),
    ScriptedReply(expect="payments above your limit of 5000",
                  tool_calls=[call("send_mail", **OUTSIDE)]),
    ScriptedReply(expect="not to partners",
                  tool_calls=[call("create_payment", invoice_id="INV-1001", amount=1250),
                              call("send_mail", **INSIDE)]),
    ScriptedReply(content="I could not do three of the four things; see above."),
]  # fmt: skip


def _tool_replies(messages: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(str(m.content)) for m in messages if m.type == "tool"]


def test_forbidden_calls_are_refused_and_change_nothing(pack_home: Path) -> None:
    db = pack_home / "enterprise.sqlite"
    before = snapshot(db)
    spy, gate = Spy(), RecordingGate(pack_gate())
    workflow = agent_workflow(spy.tools(), gate)
    runner = runner_with(pack_home, *SCRIPT)

    first = runner.start(workflow, user="alice", input="Do the finance chores.")
    assert first.status is RunStatus.WAITING
    [pending] = first.pending
    assert (pending.tool, pending.reason) == (
        "send_mail", "mail to addresses outside example.com needs a person's approval"
    )  # fmt: skip
    assert spy.calls == []
    final = runner.reject(first.run_id, pending.approval_id, by="bob",
                          reason="Send invoices to colleagues, not to partners.")  # fmt: skip
    assert final.status is RunStatus.COMPLETED, final.run.error

    salary, payment, mail, paid, sent = _tool_replies(runner.messages(first.run_id))
    assert salary == {
        "status": "denied",
        "tool": "get_salary",
        "reason": "only HR and the employee's managers may see salaries",
        "policies": ["default-deny"],
    }
    assert payment["status"] == "denied" and payment["policies"] == ["payment-limit"]
    assert payment["reason"] == "payments above your limit of 5000 need someone with a higher limit"
    assert mail == {
        "status": "rejected",
        "tool": "send_mail",
        "reason": "Send invoices to colleagues, not to partners.",
        "by": "bob",
    }
    assert paid["status"] == "scheduled" and sent["folder"] == "outbox"
    assert [(name, who) for name, who, _ in spy.calls] == [
        ("create_payment", "alice"),
        ("send_mail", "alice"),
    ]

    after = snapshot(db)
    added, removed = added_rows(before, after), removed_rows(before, after)
    assert {t: len(rows) for t, rows in added.items() if rows} == {
        "payments": 1, "invoices": 1, "mail": 1, "effects": 2
    }  # fmt: skip
    assert {t: len(rows) for t, rows in removed.items() if rows} == {"invoices": 1}
    [payment_row] = added["payments"]
    assert payment_row[1:6] == ("INV-1001", 125000, "scheduled", "alice", payment_row[5])
    assert removed["invoices"][0][0] == added["invoices"][0][0] == "INV-1001"
    assert (removed["invoices"][0][-1], added["invoices"][0][-1]) == ("open", "paid")
    [mail_row] = added["mail"]
    assert (mail_row[1], mail_row[2], json.loads(mail_row[3])) == (
        "outbox", "alice", ["bob@example.com"]
    )  # fmt: skip
    assert not any("northwind" in str(row) for row in added["mail"])
