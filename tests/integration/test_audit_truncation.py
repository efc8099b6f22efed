"""A log cut back to one of its signed checkpoints, with its head file deleted, verified as
intact: the chain alone cannot show it. The run store says how the run ended, and the
runner records that end in the log before the store, so `audit verify` and `doctor` compare
the two (the anchoring of heads outside the project is the trust issue's).

More than the status: the store keeps the seq of the stop record that settled the run, so a
log cut back to an earlier stop of the same status (a run that failed, was resumed, and failed
again) is truncated too; and that end must be signed, so a log whose final checkpoint was cut
off (its unsigned records rewritten and re-chained) is truncated, not incomplete. A crash
between the log and the store leaves the store behind the log, which still verifies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from controlroom import Runner, RunStatus
from controlroom.audit import read_records
from controlroom.audit.canonical import canonical, genesis_hash, sha256
from controlroom.audit.verify import verify_log
from controlroom.cli import app
from tests.conftest import EXAMPLE, REPO
from tests.crash_support import Cli, Zygote, new_home

INPUT = "Pay invoice INV-1001"


def test_a_completed_run_whose_log_was_cut_at_a_checkpoint_is_tampered(project: Path) -> None:
    with Runner(home=project) as runner:
        started = runner.start(EXAMPLE, user="alice", input=INPUT)
        done = runner.approve(started.run_id, started.pending[0].approval_id, by="bob")
    assert done.status is RunStatus.COMPLETED
    log = project / "audit" / f"{done.run_id}.jsonl"
    lines = log.read_bytes().split(b"\n")[:-1]
    kinds = [json.loads(line)["kind"] for line in lines]
    # cut right after the checkpoint that signed the approval decision
    cut = max(i for i, k in enumerate(kinds) if k == "checkpoint" and i < len(kinds) - 1) + 1
    assert "run.end" not in kinds[:cut]
    log.write_bytes(b"\n".join(lines[:cut]) + b"\n")
    (project / "audit" / f"{done.run_id}.head.json").unlink()

    cli = CliRunner()
    verified = cli.invoke(app, ["audit", "verify", done.run_id, "--json"])
    assert verified.exit_code == 1, verified.output
    report = json.loads(verified.stdout)
    assert report["status"] == "tampered" and report["reason"] == "truncated"
    assert "the run store says the run is completed" in report["detail"]
    doctor = cli.invoke(app, ["doctor"])
    assert doctor.exit_code == 1
    assert "fail verification" in doctor.stdout and done.run_id in doctor.stdout


def test_a_waiting_run_is_not_expected_to_have_ended(project: Path) -> None:
    with Runner(home=project) as runner:
        started = runner.start(EXAMPLE, user="alice", input=INPUT)
    assert started.status is RunStatus.WAITING
    verified = CliRunner().invoke(app, ["audit", "verify", started.run_id])
    assert verified.exit_code == 0, verified.output


# --- B2: a run that failed twice, cut back to its first failure ------------------------

INVOICE = REPO / "examples" / "invoice-payment"


def _cr(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def packed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh project folder with the tool pack's database (invoices, payments, mail)."""
    home = tmp_path / "packed"
    monkeypatch.setenv("CONTROLROOM_HOME", str(home))
    for var in ("CONTROLROOM_DIRECTORY", "CONTROLROOM_USER"):
        monkeypatch.delenv(var, raising=False)
    assert _cr("init").exit_code == 0
    packed = _cr("pack", "init")
    assert packed.exit_code == 0, packed.output
    return home


def _script(path: Path, *, broken: int | None) -> str:
    """The example's script, with reply ``broken``'s expectation made to fail."""
    script = yaml.safe_load((INVOICE / "script.yaml").read_text())
    if broken is not None:
        script["replies"][broken]["expect"] = "NOT-IN-THE-CONVERSATION"
    path.write_text(yaml.safe_dump(script))
    return f"scripted:{path}"


def _twice_failed(home: Path, tmp_path: Path) -> tuple[str, list[bytes]]:
    """alice's INV-1004 run: fails at its first model call; resumed, it waits for bob,
    who approves: the payment is made, the mail sent, and the report step fails."""
    script = tmp_path / "script.yaml"
    model = _script(script, broken=0)
    first = _cr("run", str(INVOICE), "-u", "alice", "-i", "Pay invoice INV-1004",
                "--model", model, "--json")  # fmt: skip
    assert first.exit_code == 1, first.output
    run_id = json.loads(first.stdout)["run"]["run_id"]
    _script(script, broken=5)  # the report's reply
    waiting = _cr("resume", run_id, "--json")
    assert waiting.exit_code == 3, waiting.output
    [item] = json.loads(waiting.stdout)["pending"]
    failed = _cr("approve", run_id, item["approval_id"], "-u", "bob", "--json")
    assert failed.exit_code == 1, failed.output
    assert json.loads(failed.stdout)["run"]["status"] == "failed"
    log = home / "audit" / f"{run_id}.jsonl"
    return run_id, log.read_bytes().split(b"\n")[:-1]


def test_a_twice_failed_run_cut_back_to_its_first_failure_is_truncated(
    packed: Path, tmp_path: Path
) -> None:
    run_id, lines = _twice_failed(packed, tmp_path)
    records = [json.loads(line) for line in lines]
    ends = [i for i, r in enumerate(records) if r["kind"] == "run.end"]
    assert [records[i]["controlroom.run.status"] for i in ends] == ["failed", "failed"]
    assert _cr("audit", "verify", run_id).exit_code == 0
    assert "fail verification" not in _cr("doctor").stdout
    # cut right after the checkpoint that signed the first failure, and drop the head: what
    # is left is a signed log that ends with a failure, as the store says
    cut = ends[0] + 2
    assert records[cut - 1]["kind"] == "checkpoint"
    hidden = {r["kind"] for r in records[cut:]}
    assert {"approval.decided", "tool.result"} <= hidden
    tools = {r.get("gen_ai.tool.name") for r in records[cut:] if r["kind"] == "tool.result"}
    assert {"create_payment", "send_mail"} <= tools
    log = packed / "audit" / f"{run_id}.jsonl"
    log.write_bytes(b"\n".join(lines[:cut]) + b"\n")
    (packed / "audit" / f"{run_id}.head.json").unlink()

    verified = _cr("audit", "verify", run_id, "--json")
    assert verified.exit_code == 1, verified.output
    report = json.loads(verified.stdout)
    assert report["status"] == "tampered" and report["reason"] == "truncated"
    assert f"at record {ends[1]}" in report["detail"], report["detail"]
    doctor = _cr("doctor", "--json")
    assert doctor.exit_code == 1
    found = json.loads(doctor.stdout)
    [audit] = [f for f in found["findings"] if f["area"] == "audit" and f["severity"] == "problem"]
    assert "fail verification" in audit["summary"] and run_id in audit["summary"]
    assert f"{run_id} (record {cut}: truncated)" in found["audit"]["tampered_runs"]


# --- B3: a settled run whose final signature was cut off ---------------------------------


def _rechain(records: list[dict[str, Any]]) -> bytes:
    """The records as lines, each prev_hash recomputed (what anyone can do: sha256)."""
    out: list[bytes] = []
    prev = genesis_hash(records[0]["run_id"])
    for record in records:
        line = canonical({**record, "prev_hash": prev})
        out.append(line)
        prev = sha256(line)
    return b"\n".join(out) + b"\n"


@pytest.mark.parametrize("rewrite", [False, True])
def test_a_completed_run_without_its_final_checkpoint_is_truncated(
    project: Path, rewrite: bool
) -> None:
    with Runner(home=project) as runner:
        started = runner.start(EXAMPLE, user="alice", input=INPUT)
        done = runner.approve(started.run_id, started.pending[0].approval_id, by="bob")
    assert done.status is RunStatus.COMPLETED
    log = project / "audit" / f"{done.run_id}.jsonl"
    records = [json.loads(line) for line in log.read_bytes().split(b"\n")[:-1]]
    assert [r["kind"] for r in records[-2:]] == ["run.end", "checkpoint"]
    records = records[:-1]  # the final, signed checkpoint cut off
    if rewrite:  # and the unsigned records after the last checkpoint rewritten, re-chained
        last_signed = max(i for i, r in enumerate(records) if r["kind"] == "checkpoint")
        for record in records[last_signed + 1 :]:
            if "gen_ai.output.messages" in record:
                record["gen_ai.output.messages"] = [
                    {"role": "assistant", "parts": [{"type": "text", "content": "Nothing paid."}]}
                ]
    log.write_bytes(_rechain(records))
    (project / "audit" / f"{done.run_id}.head.json").unlink()
    alone = verify_log(log, expected_key=_public_key(project), run_id=done.run_id)
    assert alone.status == "incomplete"  # the chain alone: a writer that died unsigned

    verified = CliRunner().invoke(app, ["audit", "verify", done.run_id, "--json"])
    assert verified.exit_code == 1, verified.output
    report = json.loads(verified.stdout)
    assert report["status"] == "tampered" and report["reason"] == "truncated"
    assert "no signed checkpoint covers that" in report["detail"]
    doctor = CliRunner().invoke(app, ["doctor"])
    assert doctor.exit_code == 1
    assert "fail verification" in doctor.stdout and done.run_id in doctor.stdout
    assert f"resume {done.run_id}" not in doctor.stdout and "incomplete (a torn" not in (
        doctor.stdout
    )


def test_unsigned_records_after_a_completed_runs_signed_end_are_tampering(project: Path) -> None:
    with Runner(home=project) as runner:
        started = runner.start(EXAMPLE, user="alice", input=INPUT)
        done = runner.approve(started.run_id, started.pending[0].approval_id, by="bob")
    log = project / "audit" / f"{done.run_id}.jsonl"
    records = [json.loads(line) for line in log.read_bytes().split(b"\n")[:-1]]
    extra = {**records[-1], "kind": "approval.decided", "seq": len(records)}
    for key in ("sig", "covers", "alg", "key_id", "pub", "reason"):
        extra.pop(key)
    log.write_bytes(_rechain([*records, extra]))
    verified = CliRunner().invoke(app, ["audit", "verify", done.run_id, "--json"])
    assert verified.exit_code == 1, verified.output
    report = json.loads(verified.stdout)
    assert report["status"] == "tampered" and report["index"] == len(records)
    assert "unsigned data follows" in report["detail"]


def _public_key(home: Path) -> bytes:
    from controlroom.audit.keys import load_public_key

    return load_public_key(home / "keys" / "audit-ed25519.pem")


# --- honest crashes: the log written, the store not yet ----------------------------------


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    z = Zygote()
    yield z
    z.close()


def _kinds(home: Path, run_id: str) -> list[str]:
    return [str(r["kind"]) for r in read_records(home / "audit" / f"{run_id}.jsonl")]


def _status(cli: Cli, run_id: str) -> str:
    return str(cli("show", run_id, "--json").json()["run"]["status"])


@pytest.mark.slow
@pytest.mark.parametrize(("point", "verified"), [("audit.run.end", 3), ("audit.checkpoint@2", 0)])
def test_a_crash_between_a_runs_end_in_the_log_and_the_store_is_no_truncation(
    tmp_path: Path, zygote: Zygote, point: str, verified: int
) -> None:
    """Killed after the run's end is in the log (before and after it is signed), before the
    store says completed: verify says incomplete or intact, never truncated; the resume
    settles the run, and the log verifies."""
    home = new_home(tmp_path, "home")
    cli = Cli(zygote, home, tmp_path)
    started = cli("run", str(EXAMPLE), "-u", "alice", "-i", INPUT, "--json")
    assert started.rc == 3, started
    run_id = started.json()["run"]["run_id"]
    [item] = started.json()["pending"]
    killed = cli("approve", run_id, item["approval_id"], "-u", "bob", fault=point)
    assert killed.killed, killed
    ends = ["run.end"] if point == "audit.run.end" else ["run.end", "checkpoint"]
    assert _kinds(home, run_id)[-len(ends) :] == ends
    assert _status(cli, run_id) != "completed"
    assert cli("audit", "verify", run_id).rc == verified
    assert "fail verification" not in cli("doctor").stdout

    resumed = cli("resume", run_id, "--json")
    assert resumed.rc == 0 and resumed.json()["run"]["status"] == "completed", resumed
    assert cli("audit", "verify", run_id).rc == 0
    assert "fail verification" not in cli("doctor").stdout


@pytest.mark.slow
def test_a_crash_after_a_second_failure_is_logged_leaves_a_verifiable_log(
    tmp_path: Path, zygote: Zygote
) -> None:
    """The store still names the first failure's stop record when the process dies after
    logging (and signing) the second: not truncated; the next failure settles it again."""
    home = tmp_path / "home"
    home.mkdir()
    cli = Cli(zygote, home, tmp_path)
    assert cli("init").rc == 0 and cli("pack", "init").rc == 0
    script = tmp_path / "script.yaml"
    model = _script(script, broken=0)
    first = cli("run", str(INVOICE), "-u", "alice", "-i", "Pay invoice INV-1004",
                "--model", model, "--json")  # fmt: skip
    assert first.rc == 1, first
    run_id = first.json()["run"]["run_id"]
    _script(script, broken=5)
    waiting = cli("resume", run_id, "--json")
    assert waiting.rc == 3, waiting
    [item] = waiting.json()["pending"]
    # the approval's decision is signed (checkpoint 1), then the failure (checkpoint 2)
    killed = cli("approve", run_id, item["approval_id"], "-u", "bob", fault="audit.checkpoint@2")
    assert killed.killed, killed
    assert _kinds(home, run_id)[-2:] == ["run.end", "checkpoint"]
    assert _kinds(home, run_id).count("run.end") == 2
    assert _status(cli, run_id) != "failed"
    assert cli("audit", "verify", run_id).rc == 0
    assert "fail verification" not in cli("doctor").stdout

    again = cli("resume", run_id, "--json")
    assert again.rc == 1 and again.json()["run"]["status"] == "failed", again
    assert _kinds(home, run_id).count("run.end") == 3
    assert cli("audit", "verify", run_id).rc == 0
    assert "fail verification" not in cli("doctor").stdout
