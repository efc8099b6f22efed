"""`controlroom doctor`: a healthy project exits 0; emptied, cut-short, tampered, orphaned or
exposed state exits 1 with each finding named and what to do; fast with thousands of runs."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from controlroom import Runner
from controlroom.audit import AuditLog
from controlroom.audit.keys import load_or_create_signer
from controlroom.cli import app
from controlroom.config import Settings
from controlroom.graphs.control.doctor import diagnose
from controlroom.graphs.storage.run_store import Store
from tests.conftest import EXAMPLE
from tests.state_support import emptied, make_project, truncated

cli = CliRunner()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    home = tmp_path_factory.mktemp("doctor-template") / "home"
    done, waiting = make_project(home)
    return home, done, waiting


@pytest.fixture
def copy(
    template: tuple[Path, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, str, str]:
    source, done, waiting = template
    home = tmp_path / "home"
    shutil.copytree(source, home, symlinks=True)
    monkeypatch.setenv("CONTROLROOM_HOME", str(home))
    return home, done, waiting


def doctor(*args: str) -> tuple[int, dict[str, Any]]:
    result = cli.invoke(app, ["doctor", "--json", *args])
    return result.exit_code, json.loads(result.stdout)


def problems(report: dict[str, Any], area: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["area"] == area and f["severity"] == "problem"]


def test_a_healthy_project_exits_0(copy: tuple[Path, str, str]) -> None:
    code, report = doctor()
    assert code == 0, report["findings"]
    assert report["healthy"] is True and report["problems"] == 0
    areas = {c["area"] for c in report["checks"]}
    assert {"store", "checkpoints", "keys", "audit", "runs"} <= areas
    assert report["audit"]["intact"] == 2 and report["audit"]["tampered"] == 0
    assert report["runs"]["store"] == 2 and report["runs"]["orphans"] == []
    text = cli.invoke(app, ["doctor"])
    assert text.exit_code == 0
    assert "schema version 1, 2 run(s), integrity ok" in text.stdout
    assert "Healthy: no problems found" in text.stdout


def test_an_emptied_store_is_a_problem_and_its_runs_are_listed_from_their_logs(
    copy: tuple[Path, str, str],
) -> None:
    home, done, waiting = copy
    emptied(home / "controlroom.sqlite")
    code, report = doctor("--orphans")
    assert code == 1
    [store] = problems(report, "store")
    assert "is empty (0 bytes)" in store["summary"] and "audit logs of 2 run(s)" in store["summary"]
    assert "backup" in store["fix"] and store["items"] == [str(home / "controlroom.sqlite")]
    listed = {o["run_id"]: o for o in report["runs"]["orphan_details"]}
    assert set(listed) == {done, waiting}
    assert listed[done]["workflow"] == "invoice-payment" and listed[done]["user"] == "alice"
    assert listed[done]["status"] == "completed" and listed[waiting]["status"] == "waiting"
    assert listed[done]["started_at"]
    assert (home / "controlroom.sqlite").stat().st_size == 0  # doctor changed nothing
    text = cli.invoke(app, ["doctor", "--orphans"])
    assert text.exit_code == 1 and "PROBLEM  store" in text.stdout
    assert f"{done}" in text.stdout and "invoice-payment" in text.stdout


def test_a_truncated_checkpoints_file_is_named(copy: tuple[Path, str, str]) -> None:
    home, _, _ = copy
    truncated(home / "checkpoints.sqlite")
    code, report = doctor()
    assert code == 1
    [found] = problems(report, "checkpoints")
    assert (
        str(home / "checkpoints.sqlite") in found["summary"] and "is cut short" in found["summary"]
    )
    assert "backup" in found["fix"] and "mv " in found["fix"]


def test_a_tampered_log_and_an_orphaned_log_are_reported(copy: tuple[Path, str, str]) -> None:
    home, done, waiting = copy
    log = home / "audit" / f"{done}.jsonl"
    log.write_bytes(log.read_bytes().replace(b'"alice"', b'"mallory"', 1))
    with closing(sqlite3.connect(home / "controlroom.sqlite")) as conn, conn:
        conn.execute("DELETE FROM runs WHERE run_id = ?", (waiting,))
    code, report = doctor("--orphans")
    assert code == 1
    assert report["audit"]["tampered"] == 1 and report["audit"]["intact"] == 1
    assert report["audit"]["tampered_runs"][0].startswith(f"{done} (record 0: edited)")
    [audit] = problems(report, "audit")
    assert done in audit["summary"] and "audit verify" in audit["fix"]
    assert report["runs"]["orphans"] == [waiting]
    [runs] = problems(report, "runs")
    assert waiting in runs["summary"] and "--orphans" in runs["fix"]
    [orphan] = report["runs"]["orphan_details"]
    assert (orphan["run_id"], orphan["workflow"], orphan["user"], orphan["status"]) == (
        waiting,
        "invoice-payment",
        "alice",
        "waiting",
    )


def test_a_run_without_its_log_and_a_log_signed_by_another_key(
    copy: tuple[Path, str, str],
) -> None:
    home, _, waiting = copy
    (home / "audit" / f"{waiting}.jsonl").unlink()
    (home / "audit" / f"{waiting}.head.json").unlink()
    other = home.parent / "other-keys"
    stranger = load_or_create_signer(other)
    log = AuditLog(home / "audit" / "rstranger0001.jsonl", "rstranger0001", signer=stranger)
    log.append({"kind": "run.start"})
    log.checkpoint("test")
    log.close()
    code, report = doctor()
    assert code == 1
    assert report["runs"]["without_log"] == [waiting]
    assert report["audit"]["other_key_runs"] == ["rstranger0001"]
    [audit] = problems(report, "audit")
    assert "signed by a key other than" in audit["fix"] and "--key" in audit["fix"]


def test_exposed_permissions_and_key_are_problems_with_the_fix(
    copy: tuple[Path, str, str],
) -> None:
    home, _, _ = copy
    os.chmod(home, 0o755)
    os.chmod(home / "controlroom.sqlite", 0o644)
    os.chmod(home / "keys" / "audit-ed25519.pem", 0o644)
    code, report = doctor()
    assert code == 1
    found = problems(report, "permissions")
    assert any("mode 0755" in f["summary"] and "chmod -R go-rwx" in f["fix"] for f in found)
    assert any("controlroom.sqlite (0644)" in f["summary"] for f in found)
    [key] = problems(report, "keys")
    assert "mode 0644" in key["summary"] and key["fix"].startswith("chmod 600 ")


def test_a_newer_store_and_a_missing_project_folder(
    copy: tuple[Path, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, _, _ = copy
    with closing(sqlite3.connect(home / "controlroom.sqlite")) as conn:
        conn.execute(f"PRAGMA user_version = {Store.SCHEMA_VERSION + 1}")
    code, report = doctor()
    assert code == 1
    [store] = problems(report, "store")
    assert "newer controlroom" in store["summary"] and "pip install -U" in store["fix"]
    monkeypatch.setenv("CONTROLROOM_HOME", str(tmp_path / "nowhere"))
    missing = cli.invoke(app, ["doctor"])
    assert missing.exit_code == 2 and "No project folder:" in missing.output
    assert not (tmp_path / "nowhere").exists()  # doctor creates nothing


@pytest.mark.slow
def test_thousands_of_runs_are_checked_in_one_pass_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import controlroom.audit.log as audit_log

    monkeypatch.setattr(audit_log, "_sync", lambda fd: None)  # fast to make; read the same
    monkeypatch.setattr(audit_log, "_fsync_dir", lambda path: None)
    home = tmp_path / "big"
    Runner(home=home).close()
    signer = load_or_create_signer(home / "keys")
    runs = [f"r{n:011x}" for n in range(1500)]
    for run_id in runs:
        log = AuditLog(home / "audit" / f"{run_id}.jsonl", run_id, signer=signer)
        log.append({"kind": "run.start", "user.id": "alice"})
        for step in range(8):
            log.append({"kind": "model.call", "step": step, "node": "n", "text": "x" * 200})
        log.append({"kind": "run.end", "controlroom.run.status": "completed"})
        log.checkpoint("completed")
        log.close()
    with closing(sqlite3.connect(home / "controlroom.sqlite")) as conn, conn:
        conn.executemany(
            "INSERT INTO runs (run_id, workflow, workflow_ref, workflow_hash, user_id, input, "
            "model, approve_mode, status, created_at, updated_at) "
            "VALUES (?, 'wf', 'wf', 'h', 'alice', 'x', 'm', 'ask', 'queued', 'now', 'now')",
            [(r,) for r in runs],
        )
    began = time.perf_counter()
    report = diagnose(Settings(home=home))
    took = time.perf_counter() - began
    assert report.healthy, report.findings
    assert report.audit.intact == 1500 and report.store_runs == 1500
    assert took < 30, f"doctor took {took:.1f} s on 1,500 runs"


@pytest.mark.postgres
def test_doctor_on_postgres(project: Path, database_url: str) -> None:
    with Runner(home=project) as runner:
        result = runner.start(str(EXAMPLE), user="alice", input="Pay invoice INV-1001")
        [item] = result.pending
        assert runner.approve(result.run_id, item.approval_id, by="bob").status.value == "completed"
    code, report = doctor()
    assert code == 0, report["findings"]
    assert report["backend"] == "PostgreSQL" and report["runs"]["store"] == 1
    assert any(
        c["area"] == "database" and "schema version 1" in c["summary"] for c in report["checks"]
    )
    (project / "audit" / f"{result.run_id}.jsonl").rename(project / "audit" / "rorphan00001.jsonl")
    code, report = doctor()
    assert code == 1
    assert report["runs"]["orphans"] == ["rorphan00001"]
    assert report["runs"]["without_log"] == [result.run_id]
