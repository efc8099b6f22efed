"""Issue 14's acceptance, outside in: each example's scripted run, played through the CLI in
a fresh project folder as its README plays it (approvals decided by the people it names),
is replayed by `controlroom replay RUN` and matches its record; a model output altered by
hand in the audit log makes `replay` refuse the log, and `replay --unverified` name the
first divergence at that record; `replay --redecide` of the paid invoice reports the
payment today's policies would deny as policy drift.

The commands run in this process through the CLI's Typer app (a subprocess costs seconds of
imports each), except `controlroom batch`, which starts its own local Ray. The retrieval
examples read a copy of the session's ingested sample corpus (`corpus_store`), so nothing
is ingested again here."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from controlroom.audit.canonical import canonical
from controlroom.cli import app
from controlroom.retrieval import DocumentStore
from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.slow

EXAMPLES = REPO / "examples"
INVOICE = EXAMPLES / "invoice-payment"
HELPDESK = EXAMPLES / "it-helpdesk-triage"
HR = EXAMPLES / "hr-policy-assistant"
ENTERPRISE = EXAMPLES / "enterprise-assistant"
BATCH = EXAMPLES / "batch-settlements"
VPN = (
    "Carol Chen: my VPN drops every hour when I work from home, GlobalProtect says the "
    "gateway is not responding. I have a customer demo at 3pm."
)
SSO = (
    "Nobody in the Leeds office can sign in to anything since 08:10, single sign-on "
    "shows AADSTS errors for everyone."
)

cli = CliRunner()


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def cr(home: Path, *args: str) -> Done:
    """``controlroom ARGS`` on the project folder ``home`` (the Typer app, in this process;
    like `run_cli`, with no other CONTROLROOM_* setting than the tests' default model)."""
    env: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith("CONTROLROOM_") and k != "CONTROLROOM_MODEL"
    }
    env["CONTROLROOM_HOME"] = str(home)
    result = cli.invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Done(result.exit_code, result.stdout, result.stderr)


def fresh(home: Path, *, pack: bool = True, corpus: DocumentStore | None = None) -> Path:
    """`controlroom init` (and `pack init`), with a copy of the ingested corpus."""
    for args in (("init",), ("pack", "init")) if pack else (("init",),):
        done = cr(home, *args)
        assert done.code == 0, done.stdout + done.stderr
    if corpus is not None:
        shutil.copytree(Path(corpus.where), home / "chroma")
    return home


def run(home: Path, workflow: Path, user: str, text: str, script: Path | None) -> dict[str, Any]:
    model = ["--model", f"scripted:{script}"] if script is not None else []
    done = cr(home, "run", str(workflow), "--user", user, "--input", text, *model, "--json")
    assert done.code in (0, 3, 5), done.stdout + done.stderr  # completed, waiting, refused
    result: dict[str, Any] = done.json()
    return result


def approve(home: Path, result: dict[str, Any], user: str) -> dict[str, Any]:
    """Approve every pending item of ``result`` as ``user``; the run carries on."""
    run_id = result["run"]["run_id"]
    for item in result["pending"]:
        done = cr(home, "approve", run_id, item["approval_id"], "--user", user, "--json")
        assert done.code in (0, 3, 5), done.stdout + done.stderr
        result = done.json()
    return result


def replay(home: Path, run_id: str, *flags: str) -> tuple[int, dict[str, Any]]:
    done = cr(home, "replay", run_id, *flags, "--json")
    assert done.stdout, done.stderr
    report: dict[str, Any] = done.json()
    return done.code, report


def assert_replays(home: Path, run_id: str, **counts: int) -> dict[str, Any]:
    """`controlroom replay RUN` matches: exit 0, nothing diverged, the counts recorded."""
    code, report = replay(home, run_id)
    assert (code, report["matched"], report["divergence"]) == (0, True, None), report["summary"]
    assert report["verification"]["status"] == "intact"
    assert report["replay_status"] == "completed"
    for kind, n in counts.items():
        assert report["counts"].get(kind.replace("_", "."), 0) == n, (kind, report["counts"])
    text = cr(home, "replay", run_id)
    assert text.code == 0 and f"Replay of run {run_id} matches the record" in text.stdout
    assert "no model was called and no tool was executed" in text.stdout
    return report


# --- invoice-payment: alice asks, bob approves the payment above her limit ---------------


@pytest.fixture(scope="module")
def invoice_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    home = fresh(tmp_path_factory.mktemp("invoice") / "project")
    started = run(home, INVOICE, "alice", "Pay invoice INV-1004", INVOICE / "script.yaml")
    assert started["run"]["status"] == "waiting"
    [pending] = started["pending"]
    assert pending["tool"] == "create_payment"
    own = cr(home, "approve", started["run"]["run_id"], pending["approval_id"], "-u", "alice")
    assert own.code == 2 and "cannot approve their own request" in own.stderr
    done = approve(home, started, "bob")
    assert done["run"]["status"] == "completed"
    return home, str(done["run"]["run_id"])


def rows(db: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query).fetchall()


def copy_of(home: Path, target: Path) -> Path:
    shutil.copytree(home, target)
    return target


def log_of(home: Path, run_id: str) -> Path:
    return home / "audit" / f"{run_id}.jsonl"


def alter_model_output(path: Path, pick: Any, change: Any) -> int:
    """Edit, in place, the first model.call record whose output ``pick`` selects: ``change``
    its output messages; the line is written back as canonical JSON, its hash left stale.
    Returns the record's seq."""
    lines = path.read_bytes().split(b"\n")[:-1]
    for i, line in enumerate(lines):
        record = json.loads(line)
        if record["kind"] == "model.call" and pick(record["gen_ai.output.messages"]):
            change(record["gen_ai.output.messages"])
            lines[i] = canonical(record)
            path.write_bytes(b"".join(line + b"\n" for line in lines))
            return int(record["seq"])
    raise AssertionError(f"no model.call record in {path} matches")


def parts(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [p for m in messages for p in m["parts"] if p["type"] == kind]


def test_invoice_payment_replay_matches(invoice_run: tuple[Path, str]) -> None:
    home, run_id = invoice_run
    db = home / "enterprise.sqlite"
    effects = "SELECT (SELECT COUNT(*) FROM payments), (SELECT COUNT(*) FROM mail)"
    before = rows(db, effects)
    report = assert_replays(
        home, run_id, model_call=6, tool_decision=4, tool_result=4,
        approval_requested=1, approval_decided=1,
    )  # fmt: skip
    assert report["compared"] == 18 and report["drift"] == [] and report["notes"] == []
    # a prefix of the id works, as for every command
    assert cr(home, "replay", run_id[:7]).code == 0
    assert rows(db, effects) == before  # no payment made and no mail sent again


def assert_refused_then_diverges(home: Path, run_id: str, seq: int, step: str) -> dict[str, Any]:
    refused = cr(home, "replay", run_id)
    assert refused.code == 1, refused.stdout + refused.stderr
    assert f"TAMPERED at record {seq} (edited)" in refused.stdout
    assert "Not replayed" in refused.stdout and "--unverified" in refused.stdout
    code, as_json = replay(home, run_id)
    assert (code, as_json["refused"], as_json["matched"]) == (1, True, False)

    code, report = replay(home, run_id, "--unverified")
    assert code == 1 and report["matched"] is False and report["refused"] is False
    divergence = report["divergence"]
    assert divergence["seq"] == seq, divergence
    assert f"the model call at {step}" in divergence["what"], divergence
    assert "controlroom.output.sha256" in divergence["what"]
    assert divergence["recorded"] != divergence["replayed"]
    text = cr(home, "replay", run_id, "--unverified")
    assert text.code == 1 and f"DIVERGES (record {seq})" in text.stdout
    return report


def test_an_altered_tool_call_argument_is_refused_then_named(
    invoice_run: tuple[Path, str], tmp_path: Path
) -> None:
    home, run_id = copy_of(invoice_run[0], tmp_path / "altered"), invoice_run[1]

    def pays(messages: list[dict[str, Any]]) -> bool:
        return any(c["name"] == "create_payment" for c in parts(messages, "tool_call"))

    def under_the_limit(messages: list[dict[str, Any]]) -> None:
        [call] = parts(messages, "tool_call")
        assert call["arguments"]["amount"] == 5600
        call["arguments"]["amount"] = 4900.0

    seq = alter_model_output(log_of(home, run_id), pays, under_the_limit)
    report = assert_refused_then_diverges(home, run_id, seq, "step 6 (pay)")
    # the replay played the altered call: the run it made went another way from there
    assert report["compared"] < 18


def test_an_altered_final_answer_is_refused_then_named(
    invoice_run: tuple[Path, str], tmp_path: Path
) -> None:
    home, run_id = copy_of(invoice_run[0], tmp_path / "altered"), invoice_run[1]

    def reports(messages: list[dict[str, Any]]) -> bool:
        return any("PAY-0028" in p["content"] for p in parts(messages, "text"))

    def another_amount(messages: list[dict[str, Any]]) -> None:
        [text] = parts(messages, "text")
        text["content"] = text["content"].replace("5600.00", "4900.00")

    seq = alter_model_output(log_of(home, run_id), reports, another_amount)
    report = assert_refused_then_diverges(home, run_id, seq, "step 10 (report)")
    assert report["replay_status"] == "completed"  # the last reply: nothing came after it


def test_redecide_reports_the_paid_invoice_as_policy_drift(invoice_run: tuple[Path, str]) -> None:
    home, run_id = invoice_run
    code, report = replay(home, run_id, "--redecide")
    assert code == 3 and report["matched"] is True and report["redecided"] is True
    [drift] = report["drift"]
    assert drift["tool"] == "create_payment"
    assert drift["recorded"]["verdict"] == "approve"
    assert "above-limit-needs-a-manager" in drift["recorded"]["policies"]
    assert drift["today"]["verdict"] == "deny"
    assert "open-invoices-only" in drift["today"]["policies"]
    assert "INV-1004 is paid" in drift["today"]["reason"]
    text = cr(home, "replay", run_id, "--redecide")
    assert text.code == 3
    assert "matches the record" in text.stdout and "policy drift" in text.stdout
    assert "create_payment" in text.stdout and "deny today" in text.stdout


def test_the_replay_decides_with_the_kept_policies_when_todays_are_moved_or_broken(
    tmp_path: Path,
) -> None:
    """The record names the policy set that decided each call and the project keeps it by
    hash: a policy folder moved away, or broken, after the run changes nothing in the
    replay; --redecide says today's policies cannot be loaded."""
    example = tmp_path / "invoice-payment"
    shutil.copytree(INVOICE, example)
    home = fresh(tmp_path / "project")
    started = run(home, example, "alice", "Pay invoice INV-1004", example / "script.yaml")
    run_id = str(approve(home, started, "bob")["run"]["run_id"])

    (example / "policies" / "finance.cedar").write_text("permit (this is not Cedar")
    report = assert_replays(home, run_id)
    assert any("cannot be loaded" in note for note in report["notes"])
    code, redecided = replay(home, run_id, "--redecide")
    assert code == 3 and redecided["matched"] is True
    assert {d["today"]["policies"][0] for d in redecided["drift"]} == {"policies-unavailable"}

    shutil.rmtree(example / "policies")
    assert_replays(home, run_id)


# --- enterprise-assistant: a refused salary look-up, a payment, a mail -------------------


def test_enterprise_assistant_replay_matches(tmp_path: Path) -> None:
    home = fresh(tmp_path / "project")
    text = "What does Carol earn? Then pay the Northwind invoice and tell Bob."
    result = run(home, ENTERPRISE, "alice", text, ENTERPRISE / "script.yaml")
    assert result["run"]["status"] == "completed" and result["run"]["denied_calls"] == 1
    assert_replays(home, result["run"]["run_id"], model_call=6, tool_decision=5, tool_result=4)


# --- retrieval examples, on a copy of the session's ingested corpus -----------------------


@pytest.mark.retrieval
def test_hr_policy_assistant_replays_match(tmp_path: Path, corpus_store: DocumentStore) -> None:
    home = fresh(tmp_path / "project", pack=False, corpus=corpus_store)
    scripts = HR / "eval" / "scripts"
    answered = run(
        home, HR, "carol",
        "How many days of annual leave does a full-time employee with 4 years of service get?",
        scripts / "leave-3-years.yaml",
    )  # fmt: skip
    assert answered["run"]["status"] == "completed"
    assert "26 days" in answered["run"]["output"] and "Sources:" in answered["run"]["output"]
    assert_replays(home, answered["run"]["run_id"], model_call=1, retrieval=1, answer_check=1)
    # retrieval finds nothing good enough: the step abstains without calling the model
    pets = run(
        home, HR, "carol", "What is the company's policy on bringing pets to the office?",
        scripts / "pets.yaml",
    )  # fmt: skip
    assert pets["run"]["output"] == "The documents I can access do not answer this."
    assert_replays(home, pets["run"]["run_id"], model_call=0, retrieval=1, answer_check=1)


@pytest.mark.retrieval
def test_it_helpdesk_triage_replays_match(tmp_path: Path, corpus_store: DocumentStore) -> None:
    home = fresh(tmp_path / "project", corpus=corpus_store)
    # the README's script, its answer citing the runbook chunk this store returns (as in
    # test_example_it_helpdesk.py: chunk ids depend on where the corpus was ingested from)
    found = cr(home, "search", VPN, "--user", "gina", "-k", "4", "--json").json()
    chunk = next(c for c in found["chunks"] if c["source"].endswith("it-runbooks/vpn.md"))
    script = yaml.safe_load((HELPDESK / "script.yaml").read_text())
    script["replies"][0]["content"] = json.dumps(
        {
            "reasoning": "The VPN runbook covers gateway errors.",
            "answer": "Follow the VPN runbook's troubleshooting steps for GlobalProtect.",
            "citations": [chunk["id"]],
            "abstain": False,
        }
    )
    grounded = tmp_path / "script.yaml"
    grounded.write_text(yaml.safe_dump(script))
    vpn = run(home, HELPDESK, "gina", VPN, grounded)
    assert vpn["run"]["status"] == "completed" and "TCK-1081" in vpn["run"]["output"]
    assert_replays(
        home, vpn["run"]["run_id"], model_call=6, retrieval=1, answer_check=1,
        tool_decision=1, tool_result=1,
    )  # fmt: skip

    # a critical ticket waits for someone else on the service desk: gwen approves it
    sso = run(
        home, HELPDESK, "gina", SSO, HELPDESK / "eval" / "scripts" / "sso-outage-critical.yaml"
    )
    assert sso["run"]["status"] == "waiting"
    done = approve(home, sso, "gwen")
    assert done["run"]["status"] == "completed"
    assert_replays(
        home, sso["run"]["run_id"], model_call=6, retrieval=1, answer_check=1,
        approval_requested=1, approval_decided=1, tool_decision=1, tool_result=1,
    )  # fmt: skip


# --- batch-settlements: a small batch on local Ray, its large entries approved by bob -----


@pytest.mark.ray
def test_every_run_of_a_small_batch_replays_and_matches(tmp_path: Path) -> None:
    home = fresh(tmp_path / "project", pack=False)
    inputs = tmp_path / "inputs.jsonl"
    made = subprocess.run(
        [sys.executable, str(BATCH / "make_inputs.py"), "4", "--large-every", "2"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    inputs.write_text(made.stdout)
    started = run_cli(
        home, "batch", str(BATCH), str(inputs), "--user", "alice", "--workers", "2",
        "--no-wait", "--json", timeout=240,
    )  # fmt: skip
    assert started.returncode == 3, started.stdout + started.stderr
    report = json.loads(started.stdout)
    assert report["counts"] == {"completed": 2, "waiting": 2}
    for item in report["runs"]:
        if item["status"] == "waiting":
            [approval] = item["pending"]
            done = cr(home, "approve", item["run_id"], approval, "--user", "bob")
            assert done.code == 0, done.stdout + done.stderr
    ledger = home / "examples" / "settlements.sqlite"
    posted = "SELECT run_id, account, amount FROM entries ORDER BY run_id"
    before = rows(ledger, posted)
    assert len(before) == 4 and rows(ledger, "SELECT COUNT(*) FROM attempts") == [(4,)]
    for item in report["runs"]:
        large = "LARGE" in item["input"]
        assert_replays(
            home, item["run_id"], model_call=2, tool_decision=1, tool_result=1,
            approval_requested=int(large), approval_decided=int(large),
        )  # fmt: skip
    assert rows(ledger, posted) == before  # the replays posted nothing
    assert rows(ledger, "SELECT COUNT(*) FROM attempts") == [(4,)]
