"""The invoice-payment example end to end, through the CLI, in a fresh project folder with
the tool pack's database: invoice and vendor look-up, a payment above the clerk's limit
waiting for a finance manager (never the clerk herself), the confirmation mailed inside the
company only, and the scripted demo (`make demo`'s script) running through."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, cli_env, run_cli

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "examples" / "invoice-payment"
SCRIPTS = EXAMPLE / "eval" / "scripts"


def cr(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(home, *args, timeout=180)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "project"
    assert cr(home, "init").returncode == 0
    packed = cr(home, "pack", "init")
    assert packed.returncode == 0, packed.stderr
    return home


def run(home: Path, user: str, text: str, script: Path) -> subprocess.CompletedProcess[str]:
    return cr(home, "run", str(EXAMPLE), "--user", user, "--input", text,
              "--model", f"scripted:{script}", "--json")  # fmt: skip


def db(home: Path, query: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with sqlite3.connect(home / "enterprise.sqlite") as conn:
        return conn.execute(query, params).fetchall()


def outbox(home: Path) -> list[tuple[str, list[str], str]]:
    rows = db(home, "SELECT sender, recipients, subject FROM mail WHERE folder = 'outbox'")
    return [(str(s), json.loads(str(r)), str(subj)) for s, r, subj in rows]


def test_above_limit_waits_for_a_finance_manager_then_mails_inside(home: Path) -> None:
    started = run(home, "alice", "Pay invoice INV-1004", EXAMPLE / "script.yaml")
    assert started.returncode == 3, started.stderr  # waiting for approval
    result = json.loads(started.stdout)
    run_id = result["run"]["run_id"]
    [pending] = result["pending"]
    assert pending["tool"] == "create_payment"
    assert pending["args"]["amount"] == 5600.0  # the amount still due, read by the lookup
    assert pending["approvers"] == ["finance-manager"]
    assert "above alice's payment limit of 5000" in pending["reason"]
    assert db(home, "SELECT COUNT(*) FROM payments WHERE invoice_id = 'INV-1004'") == [(1,)]

    own = cr(home, "approve", run_id, pending["approval_id"], "--user", "alice")
    assert own.returncode == 2 and "cannot approve their own request" in own.stderr

    approved = cr(home, "approve", run_id, pending["approval_id"], "--user", "bob", "--json")
    assert approved.returncode == 0, approved.stderr
    done = json.loads(approved.stdout)["run"]
    assert done["status"] == "completed"
    assert "PAY-0028" in done["output"]
    assert db(home, "SELECT invoice_id, amount_cents, created_by FROM payments "
                    "WHERE id = 'PAY-0028'") == [("INV-1004", 560000, "alice")]  # fmt: skip
    assert ("alice", ["alice@example.com"], "Payment of INV-1004") in outbox(home)

    shown = json.loads(cr(home, "show", run_id, "--json").stdout)
    looked_up = [m["name"] for m in shown["messages"] if m["type"] == "tool"]
    assert looked_up == ["lookup_invoice", "lookup_vendor", "create_payment", "send_mail"]
    assert cr(home, "audit", "verify", run_id).returncode == 0


def test_within_limit_pays_without_approval(home: Path) -> None:
    started = run(home, "alice", "Pay invoice INV-1001", SCRIPTS / "pay-within-limit.yaml")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["run"]["status"] == "completed"
    assert db(home, "SELECT amount_cents, created_by FROM payments WHERE invoice_id = 'INV-1001'") \
        == [(125000, "alice")]  # fmt: skip
    assert db(home, "SELECT status FROM invoices WHERE id = 'INV-1001'") == [("paid",)]


def test_mail_outside_the_company_is_refused_even_when_the_model_asks(home: Path) -> None:
    before = outbox(home)
    text = "Pay invoice INV-1060 and mail the confirmation to billing@contoso-cleaning.example.net"
    started = run(home, "bob", text, SCRIPTS / "mail-outside-refused.yaml")
    assert started.returncode == 5, started.stderr  # completed, with the mail denied
    [denied] = json.loads(started.stdout)["refused"]
    assert (denied["tool"], denied["status"]) == ("send_mail", "denied")
    assert db(home, "SELECT amount_cents FROM payments WHERE invoice_id = 'INV-1060'") == [(23560,)]
    assert outbox(home) == before  # nothing was sent, least of all outside example.com
    run_id = json.loads(started.stdout)["run"]["run_id"]
    shown = json.loads(cr(home, "show", run_id, "--json").stdout)
    [refusal] = [m for m in shown["messages"] if m["type"] == "tool" and m["name"] == "send_mail"]
    assert "example.com addresses only" in refusal["content"]


def test_memo_asking_for_another_bank_account_stops_the_payment(home: Path) -> None:
    started = run(home, "alice", "Pay invoice INV-1002", SCRIPTS / "memo-bank-change.yaml")
    assert started.returncode == 0, started.stderr
    result = json.loads(started.stdout)["run"]
    assert "NL00 TEST 9911" not in result["output"]
    assert db(home, "SELECT COUNT(*) FROM payments WHERE invoice_id = 'INV-1002'") == [(0,)]


def test_people_outside_finance_cannot_look_up_or_pay(home: Path) -> None:
    started = run(home, "carol", "Pay invoice INV-1001", SCRIPTS / "not-finance-denied.yaml")
    assert started.returncode == 5, started.stderr  # completed, with both look-ups denied
    assert json.loads(started.stdout)["run"]["denied_calls"] == 2
    run_id = json.loads(started.stdout)["run"]["run_id"]
    shown = json.loads(cr(home, "show", run_id, "--json").stdout)
    assert shown["vars"]["decision"] == "do-not-pay"
    refusals = [m["content"] for m in shown["messages"] if m["type"] == "tool"]
    assert len(refusals) == 2 and all("only the finance department" in r for r in refusals)
    assert db(home, "SELECT COUNT(*) FROM payments WHERE invoice_id = 'INV-1001'") == [(0,)]


def test_demo_script_runs_with_the_scripted_model(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "demo")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE / "demo.py"), "--model", f"scripted:{EXAMPLE / 'script.yaml'}"],
        capture_output=True, text=True, env=env, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "cannot approve their own request" in proc.stderr
    assert "completed" in proc.stdout and "intact" in proc.stdout
