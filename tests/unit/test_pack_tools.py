"""The pack's tools, called directly: results, clear errors, transactions, idempotency."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controlroom import ToolExecutionError
from controlroom.tools.pack.finance import invoice_attributes, payment_attributes
from controlroom.tools.pack.hr import employee_attributes
from controlroom.tools.pack.mail import recipient_facts
from controlroom.tools.pack.tickets import ticket_attributes
from tests.pack_support import PACK_TOOLS, directory, pack_home, snapshot, tool_context

_ = pack_home


def run(name: str, user: str = "alice", key: str = "k1", **args: Any) -> Any:
    tool = PACK_TOOLS[name]
    return tool.invoke(tool.validate_args(args), tool_context(directory()[user], key=key))


def test_hr_lookups(pack_home: Path) -> None:
    found = run("find_employees", query="chen")
    assert [e["id"] for e in found["employees"]] == ["E0008"]
    assert "salary" not in json.dumps(found)
    assert run("get_employee", employee_id="E0008")["manager"] == {
        "id": "E0007",
        "name": "Erin Walsh",
    }
    chart = run("org_chart", employee_id="E0004")
    assert [m["id"] for m in chart["managers"]] == ["E0003", "E0002", "E0001"]
    assert "E0004" in [r["id"] for r in run("org_chart", employee_id="E0003")["direct_reports"]]
    assert run("get_salary", employee_id="E0008")["annual_salary"] == 142000
    with pytest.raises(ToolExecutionError, match="There is no employee E9999"):
        run("get_employee", employee_id="E9999")


def test_resource_attributes_for_policies(pack_home: Path) -> None:
    assert employee_attributes("E0004") == {
        "department": "finance", "user": "alice", "managers": ["bob", "ivy", "frank"]
    }  # fmt: skip
    assert invoice_attributes("INV-1004")["amount_due"] == 5600.0
    assert payment_attributes("PAY-0002")["created_by"] == "bob"
    assert ticket_attributes("TCK-1002")["assignee"] is None
    for loader, missing in [(employee_attributes, "E9999"), (invoice_attributes, "INV-9999"),
                            (payment_attributes, "PAY-9999"), (ticket_attributes, "TCK-9999")]:  # fmt: skip
        with pytest.raises(LookupError, match=missing):
            loader(missing)
    assert recipient_facts({"to": ["A@Example.com"], "cc": ["b@x.io"]}) == {
        "recipient_domains": ["example.com", "x.io"]
    }  # fmt: skip


def test_a_payment_is_written_once_per_idempotency_key(pack_home: Path) -> None:
    db = pack_home / "enterprise.sqlite"
    first = run("create_payment", key="run1:3:c1", invoice_id="INV-1001", amount=250)
    again = run("create_payment", key="run1:3:c1", invoice_id="INV-1001", amount=250)
    assert first == again and first["amount_due_after"] == 1000.0
    payments = [r for r in snapshot(db)["payments"] if r[1] == "INV-1001"]
    assert len(payments) == 1
    rest = run("create_payment", key="run1:5:c1", invoice_id="INV-1001", amount=1000)
    assert rest["amount_due_after"] == 0.0 and rest["payment_id"] != first["payment_id"]
    assert invoice_attributes("INV-1001")["status"] == "paid"


def test_a_failing_write_leaves_nothing_behind(pack_home: Path) -> None:
    db = pack_home / "enterprise.sqlite"
    before = snapshot(db)
    with pytest.raises(ToolExecutionError, match=r"1300.00 is more than the 1250.00 still due"):
        run("create_payment", invoice_id="INV-1001", amount=1300)
    with pytest.raises(ToolExecutionError, match="already released"):
        run("release_payment", user="ivy", payment_id="PAY-0003")
    with pytest.raises(ToolExecutionError, match="Nothing to update"):
        run("update_ticket", ticket_id="TCK-1001")
    with pytest.raises(ToolExecutionError, match="no user 'nobody'"):
        run("update_ticket", ticket_id="TCK-1001", assignee="nobody", comment="x")
    assert snapshot(db) == before
    with pytest.raises(Exception, match="at most two decimal places"):
        PACK_TOOLS["create_payment"].validate_args({"invoice_id": "INV-1001", "amount": 1.005})


def test_release_and_tickets(pack_home: Path) -> None:
    released = run("release_payment", user="bob", payment_id="PAY-0001")
    assert released == {"payment_id": "PAY-0001", "invoice_id": "INV-1004", "amount": 2000.0,
                        "status": "released"}  # fmt: skip
    with pytest.raises(ToolExecutionError, match="already used by release_payment"):
        run("create_ticket", user="carol", title="Keyboard", description="Sticky keys")
    ticket = run("create_ticket", user="carol", key="k5", title="Keyboard", description="Keys")
    assert ticket["status"] == "open" and ticket["ticket_id"] == "TCK-1081"
    updated = run("update_ticket", user="gina", key="k2", ticket_id=ticket["ticket_id"],
                  status="in_progress", assignee="gina", comment="On it")  # fmt: skip
    assert (updated["status"], updated["assignee"]) == ("in_progress", "gina")
    closed = run("close_ticket", user="gina", key="k3", ticket_id=ticket["ticket_id"],
                 resolution="Replaced the keyboard.")  # fmt: skip
    assert closed["status"] == "closed"
    with pytest.raises(ToolExecutionError, match="already closed"):
        run("close_ticket", key="k4", ticket_id=ticket["ticket_id"], resolution="again")


def test_mail(pack_home: Path) -> None:
    sent = run("send_mail", to=["bob@example.com"], subject="Hi", body="Hello")
    drafted = run("draft_mail", key="k2", to=["x@gmail.com"], subject="Later", body="...")
    assert (sent["folder"], drafted["folder"]) == ("outbox", "drafts")
    outbox = run("list_mail")["messages"]
    assert outbox[0]["message_id"] == sent["message_id"]
    assert [m["subject"] for m in run("list_mail", folder="drafts")["messages"]] == [
        "Later", "Northwind invoice"
    ]  # fmt: skip


def test_a_missing_database_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTROLROOM_PACK_DB", str(tmp_path / "none.sqlite"))
    with pytest.raises(ToolExecutionError, match="controlroom pack init"):
        run("find_employees")
    with pytest.raises(ToolExecutionError, match="controlroom pack init"):
        run("send_mail", to=["bob@example.com"], subject="Hi", body="Hello")
