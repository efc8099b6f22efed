"""Acceptance 1: a decision table over the enterprise tool pack.

Every row is (user, tool, arguments) with the expected verdict and the policy that must
be among the deciding ones. Each row is checked twice: against the gate alone (nothing
executes), and as a real run through the Runner with a scripted model and every approval
granted (``--approve all``): allowed and approved calls execute exactly once, denied calls
never execute and the model receives the gate's refusal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controlroom import ApprovalStatus, RunStatus, Verdict
from controlroom.testing import ScriptedReply
from tests.pack_support import (
    PACK_TOOLS,
    RecordingGate,
    Spy,
    agent_workflow,
    call,
    directory,
    pack_gate,
    pack_home,
    runner_with,
)

A, D, P = Verdict.ALLOW, Verdict.DENY, Verdict.APPROVE
OUT = "partner@northwind.example"
MAIL = {"subject": "Hello", "body": "Short note."}

# fmt: off
TABLE: list[tuple[str, str, dict[str, Any], Verdict, str]] = [
    # HR directory: employees may look people up; salaries are need-to-know
    ("alice", "find_employees", {"query": "chen"}, A, "directory-for-employees"),
    ("kim", "find_employees", {}, D, "default-deny"),
    ("hank", "find_employees", {"department": "engineering"}, A, "directory-for-employees"),
    ("carol", "get_employee", {"employee_id": "E0004"}, A, "directory-for-employees"),
    ("kim", "get_employee", {"employee_id": "E0004"}, D, "default-deny"),
    ("hank", "org_chart", {"employee_id": "E0010"}, A, "directory-for-employees"),
    ("alice", "get_salary", {"employee_id": "E0008"}, D, "default-deny"),
    ("alice", "get_salary", {"employee_id": "E0004"}, D, "default-deny"),
    ("bob", "get_salary", {"employee_id": "E0004"}, A, "salary-need-to-know"),
    ("ivy", "get_salary", {"employee_id": "E0004"}, A, "salary-need-to-know"),
    ("frank", "get_salary", {"employee_id": "E0004"}, A, "salary-need-to-know"),
    ("dave", "get_salary", {"employee_id": "E0001"}, A, "salary-need-to-know"),
    ("helen", "get_salary", {"employee_id": "E0008"}, A, "salary-need-to-know"),
    ("erin", "get_salary", {"employee_id": "E0008"}, A, "salary-need-to-know"),
    ("erin", "get_salary", {"employee_id": "E0004"}, D, "default-deny"),
    ("carol", "get_salary", {"employee_id": "E0010"}, D, "default-deny"),
    ("gwen", "get_salary", {"employee_id": "E0009"}, A, "salary-need-to-know"),
    ("gina", "get_salary", {"employee_id": "E0011"}, D, "default-deny"),
    ("kim", "get_salary", {"employee_id": "E0008"}, D, "default-deny"),
    ("dave", "get_salary", {"employee_id": "E9999"}, D, "resource-lookup"),
    ("hank", "get_salary", {"employee_id": "E0010"}, D, "default-deny"),
    # finance: invoices for finance; payments limited per person; large ones approved
    ("alice", "list_invoices", {}, A, "invoices-for-finance"),
    ("alice", "list_invoices", {"status": "open"}, A, "invoices-for-finance"),
    ("carol", "list_invoices", {}, D, "default-deny"),
    ("frank", "list_invoices", {"vendor": "northwind"}, A, "invoices-for-finance"),
    ("bob", "get_invoice", {"invoice_id": "INV-1001"}, A, "invoices-for-finance"),
    ("carol", "get_invoice", {"invoice_id": "INV-1001"}, D, "default-deny"),
    ("dave", "get_invoice", {"invoice_id": "INV-1001"}, D, "default-deny"),
    ("alice", "get_invoice", {"invoice_id": "INV-9999"}, D, "resource-lookup"),
    ("alice", "create_payment", {"invoice_id": "INV-1001", "amount": 1250}, A, "payments-by-finance-roles"),
    ("alice", "create_payment", {"invoice_id": "INV-1002", "amount": 480.5}, A, "payments-by-finance-roles"),
    ("alice", "create_payment", {"invoice_id": "INV-1003", "amount": 9000}, D, "payment-limit"),
    ("alice", "create_payment", {"invoice_id": "INV-1003", "amount": 5000}, A, "payments-by-finance-roles"),
    ("alice", "create_payment", {"invoice_id": "INV-1003", "amount": 5000.01}, D, "payment-limit"),
    ("alice", "create_payment", {"invoice_id": "INV-1001", "amount": 1300}, D, "payment-within-amount-due"),
    ("alice", "create_payment", {"invoice_id": "INV-1004", "amount": 5600}, D, "payment-limit"),
    ("alice", "create_payment", {"invoice_id": "INV-1004", "amount": 5000}, A, "payments-by-finance-roles"),
    ("bob", "create_payment", {"invoice_id": "INV-1003", "amount": 12000}, P, "large-payment-approval"),
    ("bob", "create_payment", {"invoice_id": "INV-1003", "amount": 10000}, A, "payments-by-finance-roles"),
    ("bob", "create_payment", {"invoice_id": "INV-1006", "amount": 50000}, P, "large-payment-approval"),
    ("bob", "create_payment", {"invoice_id": "INV-1006", "amount": 50000.01}, D, "payment-limit"),
    ("ivy", "create_payment", {"invoice_id": "INV-1006", "amount": 64000}, P, "large-payment-approval"),
    ("carol", "create_payment", {"invoice_id": "INV-1001", "amount": 100}, D, "payment-needs-a-limit"),
    ("hank", "create_payment", {"invoice_id": "INV-1001", "amount": 100}, D, "interns-read-only"),
    ("frank", "create_payment", {"invoice_id": "INV-1001", "amount": 100}, D, "payment-needs-a-limit"),
    ("alice", "release_payment", {"payment_id": "PAY-0002"}, D, "default-deny"),
    ("bob", "release_payment", {"payment_id": "PAY-0001"}, P, "builtin:irreversible"),
    ("bob", "release_payment", {"payment_id": "PAY-0002"}, D, "four-eyes-release"),
    ("ivy", "release_payment", {"payment_id": "PAY-0002"}, P, "builtin:irreversible"),
    ("bob", "release_payment", {"payment_id": "PAY-9999"}, D, "resource-lookup"),
    # ticketing: everyone opens tickets; only the people on a ticket change it
    ("carol", "search_tickets", {}, A, "tickets-for-employees"),
    ("kim", "search_tickets", {"query": "vpn"}, D, "default-deny"),
    ("hank", "create_ticket", {"title": "Need a monitor", "description": "Mine is broken."}, A, "tickets-for-employees"),
    ("carol", "create_ticket", {"title": "Prod is down", "description": "All of it.", "priority": "critical"}, P, "critical-ticket-approval"),
    ("gina", "create_ticket", {"title": "Leaking tap", "description": "Kitchen 2", "queue": "facilities"}, A, "tickets-for-employees"),
    ("carol", "update_ticket", {"ticket_id": "TCK-1001", "comment": "Still swelling."}, A, "ticket-owners-and-service-desk"),
    ("gina", "update_ticket", {"ticket_id": "TCK-1001", "status": "in_progress"}, A, "ticket-owners-and-service-desk"),
    ("alice", "update_ticket", {"ticket_id": "TCK-1001", "comment": "Me too"}, D, "default-deny"),
    ("carol", "update_ticket", {"ticket_id": "TCK-1003", "comment": "hi"}, D, "hr-tickets-stay-in-hr"),
    ("alice", "update_ticket", {"ticket_id": "TCK-1003", "comment": "Any news?"}, A, "ticket-owners-and-service-desk"),
    ("dave", "close_ticket", {"ticket_id": "TCK-1003", "resolution": "Answered by mail."}, A, "ticket-owners-and-service-desk"),
    ("gina", "close_ticket", {"ticket_id": "TCK-1003", "resolution": "Closing."}, D, "hr-tickets-stay-in-hr"),
    ("hank", "update_ticket", {"ticket_id": "TCK-1002", "comment": "Please?"}, D, "interns-read-only"),
    ("carol", "update_ticket", {"ticket_id": "TCK-1001", "priority": "critical"}, P, "critical-ticket-approval"),
    ("carol", "close_ticket", {"ticket_id": "TCK-1005", "resolution": "Sorted out."}, A, "ticket-owners-and-service-desk"),
    ("alice", "close_ticket", {"ticket_id": "TCK-1005", "resolution": "Reimbursed."}, A, "ticket-owners-and-service-desk"),
    ("dave", "close_ticket", {"ticket_id": "TCK-9999", "resolution": "n/a"}, D, "resource-lookup"),
    # mail: employees send inside the company; mail leaving it waits for a person
    ("alice", "send_mail", {"to": ["bob@example.com"], **MAIL}, A, "mail-for-employees"),
    ("alice", "send_mail", {"to": [OUT], **MAIL}, P, "outside-mail-approval"),
    ("alice", "send_mail", {"to": ["bob@example.com"], "cc": ["x@gmail.com"], **MAIL}, P, "outside-mail-approval"),
    ("alice", "send_mail", {"to": ["BOB@EXAMPLE.COM"], **MAIL}, A, "mail-for-employees"),
    ("alice", "send_mail", {"to": ["bob@example.com.evil.io"], **MAIL}, P, "outside-mail-approval"),
    ("alice", "draft_mail", {"to": [OUT], **MAIL}, A, "mail-for-employees"),
    ("hank", "send_mail", {"to": ["erin@example.com"], **MAIL}, D, "interns-read-only"),
    ("kim", "send_mail", {"to": ["erin@example.com"], **MAIL}, D, "default-deny"),
    ("carol", "list_mail", {}, A, "mail-for-employees"),
    ("hank", "list_mail", {"folder": "drafts"}, A, "mail-for-employees"),
]
# fmt: on
IDS = [f"{n:02d}-{u}-{t}-{v.value}" for n, (u, t, _, v, _) in enumerate(TABLE, start=1)]

assert len(TABLE) >= 60
_ = pack_home  # fixture


def test_the_table_covers_every_tool_and_every_verdict() -> None:
    assert {t for _, t, _, _, _ in TABLE} == set(PACK_TOOLS)
    verdicts = {row[3] for row in TABLE}
    assert verdicts == {A, D, P}
    roles = {r for u, *_ in TABLE for r in directory()[u].roles}
    assert roles == {r for p in directory().values() for r in p.roles}


@pytest.mark.parametrize(("user", "tool", "args", "verdict", "policy"), TABLE, ids=IDS)
def test_gate_decides_as_the_table_says(
    pack_home: Path, user: str, tool: str, args: dict[str, Any], verdict: Verdict, policy: str
) -> None:
    spy = Spy()
    spec = spy.wrap(PACK_TOOLS[tool])
    checked = spec.validate_args(args).model_dump(mode="json")
    decision = pack_gate().decide(directory()[user], spec, checked)
    assert (decision.verdict, policy in decision.policies) == (verdict, True), decision
    assert decision.reason and "{" not in decision.reason
    assert spy.calls == []  # deciding never runs the tool


@pytest.mark.parametrize(("user", "tool", "args", "verdict", "policy"), TABLE, ids=IDS)
def test_runs_execute_exactly_what_the_gate_allows(
    pack_home: Path, user: str, tool: str, args: dict[str, Any], verdict: Verdict, policy: str
) -> None:
    spy = Spy()
    gate = RecordingGate(pack_gate())
    workflow = agent_workflow(spy.tools(), gate)
    runner = runner_with(
        pack_home, ScriptedReply(tool_calls=[call(tool, **args)]), ScriptedReply(content="done")
    )
    result = runner.start(workflow, user=user, input=f"please {tool}", approve="all")
    for item in result.pending:
        # --approve all never stands in for a rule that names its approvers: one of them
        # (someone other than the requester) decides.
        assert verdict is P
        assert item.approvers
        who = next(
            p.id
            for p in directory().values()
            if set(p.roles) & set(item.approvers) and p.id != user
        )
        result = runner.approve(result.run_id, item.approval_id, by=who)
    assert result.status is RunStatus.COMPLETED, result.run.error
    assert [d.verdict for *_, d in gate.decisions][:1] == [verdict]
    reply = next(m for m in runner.messages(result.run_id) if m.type == "tool")
    approvals = runner.store.list_approvals(run_id=result.run_id, status=None)
    if verdict is D:
        assert spy.calls == [], "a denied call reached the tool"
        refusal = json.loads(str(reply.content))
        assert refusal["status"] == "denied"
        assert refusal["reason"] == gate.decisions[0][3].reason
        assert policy in refusal["policies"]
    else:
        assert [(name, who) for name, who, _ in spy.calls] == [(tool, user)]
        assert getattr(reply, "status", "success") == "success", reply.content
    if verdict is P:  # asked a person first (--approve all, or a named approver)
        assert [(a.tool, a.status) for a in approvals] == [(tool, ApprovalStatus.APPROVED)]
    else:
        assert approvals == []
