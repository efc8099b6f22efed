"""Crashes in the windows the guarantees depend on, at exact points (controlroom.faults).

Regression tests of issue 14:
1. a process killed after a step's writes were saved but before LangGraph saved the next
   checkpoint left a run that `resume` settled as "completed", running nothing more;
2. a process killed after a side effect was in the effect ledger but before its step's
   checkpoint had the resume ask the gate again, which now (the invoice is paid) denied
   the payment that had happened.
Each runs on SQLite and on PostgreSQL (the `backend` fixture).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controlroom.audit import read_records
from tests.conftest import REPO
from tests.crash_support import Cli, Zygote, new_home
from tests.integration.test_kill_resume import SCRIPT, TOOLS, WORKFLOW

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("backend")]

INVOICE = REPO / "examples" / "invoice-payment"


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    z = Zygote()
    yield z
    z.close()


@pytest.fixture
def bank(tmp_path: Path) -> Path:
    wf = tmp_path / "bank"
    wf.mkdir()
    (wf / "tools.py").write_text(TOOLS)
    (wf / "workflow.yaml").write_text(WORKFLOW)
    (wf / "script.yaml").write_text(SCRIPT)
    return wf


def transfers(home: Path) -> list[tuple[Any, ...]]:
    import sqlite3

    path = home / "bank.sqlite"
    if not path.exists():
        return []
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT account, amount FROM effects").fetchall()
    finally:
        conn.close()


def pack_effects(home: Path) -> dict[str, int]:
    """How many payments of INV-1004 and mails to alice the tool pack's database holds."""
    import sqlite3

    conn = sqlite3.connect(home / "enterprise.sqlite")
    try:
        payments = conn.execute(
            "SELECT COUNT(*) FROM payments WHERE invoice_id = 'INV-1004'"
        ).fetchone()[0]
        mail = conn.execute(
            "SELECT COUNT(*) FROM mail WHERE folder = 'outbox' AND recipients LIKE '%alice@%'"
        ).fetchone()[0]
    finally:
        conn.close()
    return {"payments": int(payments), "mail": int(mail)}


def kinds(home: Path, run_id: str) -> list[str]:
    return [str(r["kind"]) for r in read_records(home / "audit" / f"{run_id}.jsonl")]


def test_a_step_whose_checkpoint_was_never_saved_is_not_completed(
    tmp_path: Path, zygote: Zygote, bank: Path
) -> None:
    home = new_home(tmp_path, "home")
    cli = Cli(zygote, home, tmp_path)
    # The second time a finished node's writes are saved is the model's first reply (a
    # balance look-up); the process dies before the checkpoint that would schedule `act`.
    killed = cli("run", str(bank), "-u", "alice", "-i", "Move 250", fault="checkpoint.writes@2")
    assert killed.killed, killed
    [record] = cli("runs", "--json").json()
    assert record["status"] == "interrupted"

    resumed = cli("resume", record["run_id"], "--json")
    assert resumed.rc == 3, resumed  # the run went on to the transfer and asks for approval
    assert resumed.json()["run"]["status"] == "waiting"
    [pending] = resumed.json()["pending"]
    assert pending["tool"] == "transfer"

    done = cli("approve", record["run_id"], pending["approval_id"], "-u", "bob", "--json")
    assert done.rc == 0, done
    assert done.json()["run"]["output"] == "Moved 250 from ACC-1."
    assert transfers(home) == [("ACC-1", 250.0)]
    log = kinds(home, record["run_id"])
    assert log.count("run.resume") == 2 and log[-2:] == ["run.end", "checkpoint"]
    verify = cli("audit", "verify", record["run_id"])
    assert verify.rc == 0, verify


def test_resume_after_every_lost_checkpoint_of_a_run_never_says_completed_early(
    tmp_path: Path, zygote: Zygote, bank: Path
) -> None:
    """Each place of the first command where writes are saved ahead of a checkpoint."""
    for n in range(1, 6):
        home = new_home(tmp_path, f"home{n}")
        cli = Cli(zygote, home, tmp_path)
        killed = cli(
            "run", str(bank), "-u", "alice", "-i", "Move 250", fault=f"checkpoint.writes@{n}"
        )
        assert killed.killed, (n, killed)
        run_id = cli("runs", "--json").json()[0]["run_id"]
        resumed = cli("resume", run_id, "--json")
        assert resumed.json()["run"]["status"] == "waiting", (n, resumed)


def test_an_effect_in_the_ledger_keeps_its_decision_after_a_crash(
    tmp_path: Path, zygote: Zygote
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    cli = Cli(
        zygote, home, tmp_path, env={"CONTROLROOM_MODEL": f"scripted:{INVOICE / 'script.yaml'}"}
    )
    assert cli("init").rc == 0
    assert cli("pack", "init").rc == 0
    before = pack_effects(home)
    started = cli("run", str(INVOICE), "-u", "alice", "-i", "Pay invoice INV-1004", "--json")
    assert started.rc == 3, started
    run_id = started.json()["run"]["run_id"]
    [item] = started.json()["pending"]
    # bob approves; the payment is made and its result is in the effect ledger; the process
    # dies before the step's checkpoint. The invoice is paid now, so asking the gate again
    # would deny the payment that happened.
    killed = cli("approve", run_id, item["approval_id"], "-u", "bob", fault="ledger.completed")
    assert killed.killed, killed

    finished = cli("resume", run_id, "--json")
    assert finished.rc == 0, finished
    out = finished.json()
    assert out["run"]["status"] == "completed"
    assert out["run"]["denied_calls"] == 0 and out["refused"] == []
    assert "PAY-0028 of 5600.00 EUR is scheduled" in out["run"]["output"]

    shown = cli("show", run_id, "--json").json()
    results = [
        m for m in shown["messages"] if m["type"] == "tool" and m["name"] == "create_payment"
    ]
    assert len(results) == 1 and '"status": "scheduled"' in results[0]["content"]
    records = read_records(home / "audit" / f"{run_id}.jsonl")
    payment = [
        r
        for r in records
        if r["kind"] == "tool.decision" and r["gen_ai.tool.name"] == "create_payment"
    ]
    # the decision taken before the crash, then the one that says it comes from the ledger
    assert [r["controlroom.decision"] for r in payment] == ["allow", "allow"]
    assert payment[-1]["controlroom.decision.from_ledger"] == "completed"
    assert "effect ledger" in payment[-1]["controlroom.decision.reason"]
    results_recorded = [
        r
        for r in records
        if r["kind"] == "tool.result" and r["gen_ai.tool.name"] == "create_payment"
    ]
    assert results_recorded[-1]["controlroom.tool.from_ledger"] is True
    # exactly one payment, and the confirmation mail was sent once
    after = pack_effects(home)
    assert {k: after[k] - before[k] for k in after} == {"payments": 1, "mail": 1}
    verify = cli("audit", "verify", run_id)
    assert verify.rc == 0, verify
    replay = cli("replay", run_id, "--json")
    assert json.loads(replay.stdout)["matched"] is True, replay


def test_a_run_start_torn_by_a_crash_is_recorded_again(
    tmp_path: Path, zygote: Zygote, bank: Path
) -> None:
    """The first audit line half-written when the process died: the next writer cuts it off
    (log.repair) and the resume records run.start again, so the log still says who, what
    and with which input, and the run can be replayed."""
    home = new_home(tmp_path, "home")
    cli = Cli(zygote, home, tmp_path)
    killed = cli("run", str(bank), "-u", "alice", "-i", "Move 250", fault="audit.torn@1")
    assert killed.killed, killed
    [record] = cli("runs", "--json").json()
    waiting = cli("resume", record["run_id"], "--json")
    assert waiting.rc == 3, waiting
    done = cli(
        "approve", record["run_id"], waiting.json()["pending"][0]["approval_id"], "-u", "bob"
    )
    assert done.rc == 0, done
    log = read_records(home / "audit" / f"{record['run_id']}.jsonl")
    assert [r["kind"] for r in log[:2]] == ["log.repair", "run.start"]
    assert log[1]["controlroom.start.recovered"] is True
    assert log[1]["user.id"] == "alice" and log[1]["controlroom.input.sha256"]
    assert cli("audit", "verify", record["run_id"]).rc == 0
    replayed = cli("replay", record["run_id"], "--json")
    assert replayed.rc == 0, replayed
    assert replayed.json()["matched"] is True
