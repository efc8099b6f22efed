"""`controlroom audit show|verify|export`: output, JSON, exit codes, one-paragraph errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from controlroom.audit import AuditLog
from controlroom.audit.keys import load_or_create_signer
from controlroom.cli import app
from tests.audit_support import audit_log, finished_run, write_workflow

cli = CliRunner()


def test_verify_show_and_their_json(tmp_path: Path, project: Path) -> None:
    run_id = finished_run(project, write_workflow(tmp_path / "wf"))
    verified = cli.invoke(app, ["audit", "verify", run_id[:6]])
    assert verified.exit_code == 0
    assert verified.stdout.startswith(f"Audit log of run {run_id} (28 records): intact")
    report = json.loads(cli.invoke(app, ["audit", "verify", run_id, "--json"]).stdout)
    assert report["ok"] is True and report["status"] == "intact" and report["index"] is None
    shown = cli.invoke(app, ["audit", "show", run_id])
    assert shown.exit_code == 0
    lines = shown.stdout.splitlines()
    assert len(lines) == 1 + 28
    assert (
        "tool.decision" in lines[14]
        and "DENY (denied): wire transfers are not allowed" in lines[14]
    )
    assert any("a6-1 approved by bob, edited" in line for line in lines)
    as_json = json.loads(cli.invoke(app, ["audit", "show", run_id, "--json"]).stdout)
    assert as_json["run_id"] == run_id and len(as_json["records"]) == 28
    assert as_json["verification"]["status"] == "intact"


def test_a_tampered_log_fails_naming_the_record(tmp_path: Path, project: Path) -> None:
    run_id = finished_run(project, write_workflow(tmp_path / "wf"))
    path = audit_log(project, run_id)
    path.write_bytes(path.read_bytes().replace(b'"amount":480.5', b'"amount":4800', 1))
    result = cli.invoke(app, ["audit", "verify", run_id])
    assert result.exit_code == 1
    assert "TAMPERED at record 6 (edited): record 6 does not match the hash in record 7" in (
        result.stdout
    )
    report = json.loads(cli.invoke(app, ["audit", "verify", run_id, "--json"]).stdout)
    assert (report["index"], report["reason"]) == (6, "edited")


def test_another_expected_key_is_a_bad_signature(tmp_path: Path, project: Path) -> None:
    run_id = finished_run(project, write_workflow(tmp_path / "wf"))
    other = tmp_path / "other.pem"
    load_or_create_signer(tmp_path / "otherkeys")
    other.write_bytes((tmp_path / "otherkeys" / "audit-ed25519.pub.pem").read_bytes())
    result = cli.invoke(app, ["audit", "verify", run_id, "--key", str(other)])
    assert result.exit_code == 1
    assert "(bad signature): checkpoint 9 is signed by key" in result.stdout


def test_a_crashed_writer_is_incomplete_not_tampered(tmp_path: Path, project: Path) -> None:
    signer = load_or_create_signer(project / "keys")
    log = AuditLog(project / "audit" / "rcrash.jsonl", "rcrash", signer=signer)
    log.append({"kind": "run.start"})
    log.checkpoint("waiting")
    log.append({"kind": "model.call", "step": 1, "node": "a"})
    log.close()
    with (project / "audit" / "rcrash.jsonl").open("ab") as out:
        out.write(b'{"kind":"tool.de')
    result = cli.invoke(app, ["audit", "verify", "rcrash"])
    assert result.exit_code == 3
    assert "incomplete; hash chain intact through record 2" in result.stdout
    assert "torn tail: record 3 (the last line, 16 bytes) was cut off mid-write" in result.stdout
    assert "records 2-2 are chained but not covered by a signed checkpoint" in result.stdout
    # A log file given by path works too (a log shipped elsewhere), here with a pinned key.
    key = tmp_path / "k.pub"
    key.write_bytes((project / "keys" / "audit-ed25519.pub.pem").read_bytes())
    by_path = cli.invoke(
        app, ["audit", "verify", str(project / "audit" / "rcrash.jsonl"), "--key", str(key)]
    )
    assert by_path.exit_code == 3


def test_unknown_runs_and_missing_keys_are_one_paragraph_errors(project: Path) -> None:
    result = cli.invoke(app, ["audit", "verify", "nope"])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("Run not found: No audit log for run 'nope'")
    assert len(result.stderr.strip().splitlines()) == 1
    (project / "audit").mkdir()
    AuditLog(project / "audit" / "rx.jsonl", "rx").append({"kind": "run.start"})
    missing = cli.invoke(app, ["audit", "verify", "rx", "--json"])
    assert missing.exit_code == 2
    assert json.loads(missing.stdout)["error"]["title"] == "Audit key error"
