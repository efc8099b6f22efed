"""`controlroom policy check|validate|schema`, `controlroom tools`, `controlroom pack init`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controlroom.cli import app
from controlroom.tools.policy import builtin_policies
from tests.conftest import EXAMPLE
from tests.pack_support import REPO, pack_home, snapshot

_ = pack_home
cli = CliRunner()
ASSISTANT = str(REPO / "examples" / "enterprise-assistant")


def check(*args: str) -> dict[str, object]:
    result = cli.invoke(app, ["policy", "check", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_check_explains_a_denial_without_running_anything(pack_home: Path) -> None:
    before = snapshot(pack_home / "enterprise.sqlite")
    result = cli.invoke(app, ["policy", "check", "--user", "alice", "--tool", "create_payment",
                              "--args", '{"invoice_id": "INV-1003", "amount": 9000}'])  # fmt: skip
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "verdict:  DENY" in text
    assert "payments above your limit of 5000 need someone with a higher limit" in text
    assert "decided by: payment-limit  (forbid, finance.cedar:" in text
    assert 'resource Invoice::"INV-1003"' in text
    assert snapshot(pack_home / "enterprise.sqlite") == before


def test_check_allow_approve_and_default_deny(pack_home: Path) -> None:
    allowed = check("-u", "erin", "-t", "get_salary", "--args", '{"employee_id": "E0008"}')
    assert allowed["decision"]["verdict"] == "allow"  # type: ignore[index]
    approval = check("-u", "bob", "-t", "create_payment",
                     "--args", '{"invoice_id": "INV-1003", "amount": 12000}')  # fmt: skip
    decision = approval["decision"]
    assert decision["verdict"] == "approve"  # type: ignore[index]
    assert decision["approvers"] == ["finance-manager"]  # type: ignore[index]
    assert decision["policies"][0] == "large-payment-approval"  # type: ignore[index]
    text = cli.invoke(app, ["policy", "check", "-u", "alice", "-t", "get_salary",
                            "--args", '{"employee_id": "E0008"}']).stdout  # fmt: skip
    assert "no permit matched (permits for this tool: salary-need-to-know)" in text


def test_check_reports_bad_input_in_one_paragraph(pack_home: Path) -> None:
    cases = [
        (["-u", "alice", "-t", "pay_everyone"], "There is no tool 'pay_everyone'"),
        (["-u", "zed", "-t", "get_salary", "--args", "{}"], "There is no user 'zed'"),
        (["-u", "alice", "-t", "get_salary", "--args", "{oops"], "--args is not valid JSON"),
        (["-u", "alice", "-t", "get_salary", "--args", '{"employee_id": "carol"}'], "do not match its schema"),
    ]  # fmt: skip
    for args, message in cases:
        result = cli.invoke(app, ["policy", "check", *args])
        assert result.exit_code == 2, result.output
        assert message in result.stderr and "Traceback" not in result.stderr


def test_check_with_a_workflow_without_policies_uses_declared_effects(project: Path) -> None:
    result = check("-u", "alice", "-t", "pay_invoice", "-w", str(EXAMPLE),
                   "--args", '{"invoice_id": "INV-1001", "amount": 5}')  # fmt: skip
    assert result["decision"]["verdict"] == "approve"  # type: ignore[index]
    assert "no policies" in str(result["policies_from"])


def test_tools_lists_effects_and_who_may_call(pack_home: Path) -> None:
    result = cli.invoke(app, ["tools", ASSISTANT, "--json"])
    assert result.exit_code == 0, result.output
    listing = {t["name"]: t for t in json.loads(result.stdout)["tools"]}
    assert len(listing) == 15
    assert listing["release_payment"]["effect"] == "irreversible"
    assert listing["release_payment"]["always_needs_approval"] is True
    assert listing["get_salary"]["resource"] == "Employee::<employee_id>"
    ids = {p["id"]: p for p in listing["create_payment"]["policies"]}
    assert ids["large-payment-approval"]["kind"] == "approval"
    assert ids["payment-limit"]["kind"] == "forbid"
    human = cli.invoke(app, ["tools"]).stdout
    assert "get_salary  read  on Employee::<employee_id>" in human
    assert "only HR and the employee's managers may see salaries" in human
    declared = cli.invoke(app, ["tools", str(EXAMPLE)]).stdout
    assert "who: anyone the run acts for" in declared


def test_validate_reports_ok_and_problems(pack_home: Path, tmp_path: Path) -> None:
    ok = cli.invoke(app, ["policy", "validate"])
    assert ok.exit_code == 0 and "23 policies valid against the schema" in ok.stdout
    assert cli.invoke(app, ["policy", "validate", ASSISTANT]).exit_code == 0
    broken = tmp_path / "rules"
    shutil.copytree(builtin_policies("pack"), broken)
    text = (broken / "mail.cedar").read_text().replace("recipient_domains", "recipients")
    (broken / "mail.cedar").write_text(text)
    bad = cli.invoke(app, ["policy", "validate", str(broken)])
    assert bad.exit_code == 2
    assert f"{broken / 'mail.cedar'}:" in bad.stderr and "recipients" in bad.stderr
    none = cli.invoke(app, ["policy", "validate", str(EXAMPLE)])
    assert none.exit_code == 2 and "has no `policies:`" in none.stderr


def test_schema_drafts_actions_for_a_workflow(project: Path) -> None:
    result = cli.invoke(app, ["policy", "schema", str(EXAMPLE)])
    actions = json.loads(result.stdout)[""]["actions"]
    assert actions["pay_invoice"]["appliesTo"]["context"]["attributes"]["amount"] == {
        "type": "Extension", "name": "decimal"
    }  # fmt: skip


def test_pack_init_creates_the_database_once(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONTROLROOM_PACK_DB", raising=False)
    first = cli.invoke(app, ["pack", "init"])
    assert first.exit_code == 0, first.output
    assert "200 employees" in first.stdout and (project / "enterprise.sqlite").is_file()
    again = cli.invoke(app, ["pack", "init"])
    assert "already exists; kept it" in again.stdout
    forced = cli.invoke(app, ["pack", "init", "--force", "--employees", "50"])
    assert "50 employees" in forced.stdout
