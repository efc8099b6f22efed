"""Acceptance: batches of runs on Ray.

1. 200 scripted runs on local Ray (PostgreSQL state); 20 stop for approval and free their
   worker, are approved from other processes (the CLI and the SDK), and complete; every
   run's audit log verifies; every side effect happened once.
2. A Ray worker is SIGKILLed right after a tool's side effect, before the step's
   checkpoint: the task is retried on another worker, the run continues from its last
   checkpoint, and no side effect is duplicated (SQLite and PostgreSQL).
3. The CLI: `controlroom batch --no-wait` exits 3 with the waiting runs, approvals from
   the CLI, `controlroom batch --resume` finishes them, the JSON report is written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from controlroom import Runner
from controlroom.audit.keys import expected_public_key
from controlroom.audit.log import log_path
from controlroom.audit.verify import verify_log
from controlroom.batch import BatchOptions, BatchReport, create_batch, parse_inputs, run_batch
from controlroom.graphs.storage.records import BatchItem, BatchRecord
from tests.batch_support import batch_workflow, inputs_text, ledger
from tests.conftest import cli_env, run_cli

pytestmark = [pytest.mark.ray, pytest.mark.slow]


class BatchThread(threading.Thread):
    """`run_batch` in the background, as the driver process would do it."""

    def __init__(
        self, runner: Runner, batch: BatchRecord, items: list[BatchItem], **options: Any
    ) -> None:
        super().__init__(daemon=True)
        self.args = (runner, batch, items, BatchOptions(workers=2, poll_interval=0.3, **options))
        self.report: BatchReport | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.report = run_batch(*self.args)
        except BaseException as exc:
            self.error = exc

    def result(self, timeout: float) -> BatchReport:
        self.join(timeout)
        assert not self.is_alive(), "the batch did not finish in time"
        if self.error is not None:
            raise self.error
        assert self.report is not None
        return self.report


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


cli = run_cli  # the shared helper (tests/conftest.py)


def assert_audits_verify(runner: Runner, run_ids: list[str]) -> None:
    s = runner.settings
    key = expected_public_key(s.keys_path, s.audit_key, s.audit_public_key)
    bad = {}
    for run_id in run_ids:
        report = verify_log(log_path(s.audit_path, run_id), expected_key=key, run_id=run_id)
        if not report.ok:
            bad[run_id] = report.summary()
    assert not bad, bad


def assert_effects_once(runner: Runner, home: Path, run_ids: list[str]) -> None:
    """One ledger entry per run, completed; one tool entry per run (deduplicated by key)."""
    effects = runner.store.list_effects()
    assert sorted(e["run_id"] for e in effects) == sorted(run_ids)
    assert {e["status"] for e in effects} == {"completed"}
    entries, _ = ledger(home)
    assert sorted(run for _, run in entries) == sorted(run_ids)


@pytest.mark.postgres
def test_200_runs_with_20_approvals_from_other_processes(
    project: Path, database_url: str, ray_local: Any, tmp_path: Path
) -> None:
    wf = batch_workflow(tmp_path / "wf")
    runner = Runner(home=project)
    batch, items = create_batch(
        runner, wf, parse_inputs(inputs_text(200, large_every=10)), user="alice"
    )
    large = sorted(i.run_id for i in items if "LARGE" in i.input)
    assert len(items) == 200 and len(large) == 20
    assert {r.status.value for r in runner.list_runs()} == {"queued"}

    driver = BatchThread(runner, batch, items, timeout=300)
    driver.start()
    watcher = Runner(home=project)  # another view of the same state, as a control room
    pending = wait_for(
        lambda: (p := watcher.approvals()) and len(p) == 20 and p, 240, "20 pending approvals"
    )
    assert sorted(p.run_id for p in pending) == large

    # Decisions from other processes: the CLI (two that leave the run to the batch, one
    # that resumes it in the CLI's own process) and one SDK process for the other 17.
    by_cli, by_cli_resuming, by_sdk = pending[:2], pending[2], pending[3:]
    for item in by_cli:
        done = cli(project, "approve", item.run_id, item.approval_id, "-u", "bob", "--no-resume")
        assert done.returncode == 3, done.stdout + done.stderr  # recorded; the run still waits
    done = cli(project, "approve", by_cli_resuming.run_id, by_cli_resuming.approval_id, "-u", "bob")
    # Completed right there (0), or a batch worker polling at that moment took the run first
    # and the CLI says it is running elsewhere (4); either way it is carried on exactly once.
    assert done.returncode in (0, 4), done.stdout + done.stderr
    script = (
        "import json, sys\nfrom controlroom import Runner\nr = Runner()\n"
        "for run, aid in json.loads(sys.argv[1]):\n"
        "    r.approve(run, aid, by='bob', resume=False)\n"
    )
    sdk = subprocess.run(
        [sys.executable, "-c", script, json.dumps([[p.run_id, p.approval_id] for p in by_sdk])],
        capture_output=True,
        text=True,
        env=cli_env(project),
        timeout=120,
        check=False,
    )
    assert sdk.returncode == 0, sdk.stderr

    report = driver.result(timeout=240)
    assert report.finished and report.counts == {"completed": 200}, report.counts
    runs = {r.run_id: r for r in report.runs}
    for run_id in large:
        assert runs[run_id].output == "Posted 25000.00 to ACC-9 after approval."
    # A run that stopped for approval went back to the pool: its worker was freed and a
    # new task continued it (the CLI-resumed one was finished by the CLI's process).
    assert all(runs[p.run_id].tasks == 2 for p in [*by_cli, *by_sdk])
    # (a batch task that found the CLI holding the run's lock counts too, and did nothing)
    assert runs[by_cli_resuming.run_id].tasks in ((1, 2) if done.returncode == 0 else (2,))
    decided = [watcher.store.get_approval(p.run_id, p.approval_id) for p in pending]
    assert {(a.status.value, a.decided_by) for a in decided} == {("approved", "bob")}
    run_ids = [i.run_id for i in items]
    assert_effects_once(runner, project, run_ids)
    _, attempts = ledger(project)
    assert len(attempts) == 200  # nothing was repeated
    assert_audits_verify(runner, run_ids)
    watcher.close()
    runner.close()


def test_a_killed_worker_loses_no_step_and_repeats_no_effect(
    project: Path, backend: str, ray_local: Any, tmp_path: Path
) -> None:
    wf = batch_workflow(tmp_path / "wf")
    runner = Runner(home=project)
    batch, items = create_batch(runner, wf, parse_inputs(inputs_text(24, 0)), user="alice")
    (project / "hang-once").write_text("")  # the first tool call to see it hangs after its effect

    driver = BatchThread(runner, batch, items, timeout=240)
    driver.start()
    pid_file = project / "hung.pid"
    wait_for(pid_file.exists, 120, "a worker to hang after its side effect")
    pid = int(pid_file.read_text())
    os.kill(pid, signal.SIGKILL)

    report = driver.result(timeout=240)
    assert report.counts == {"completed": 24}, report
    run_ids = [i.run_id for i in items]
    assert_effects_once(runner, project, run_ids)
    _, attempts = ledger(project)
    killed = [run for _, run, p in attempts if p == pid]
    assert len(killed) == 1  # the killed worker made one call...
    repeats = [p for _, run, p in attempts if run == killed[0]]
    assert len(repeats) == 2 and repeats[1] != pid  # ...repeated once by another worker
    assert len(attempts) == 25  # and nothing else was repeated
    assert not any(w.endswith(f":{pid}") for w in {w for r in report.runs for w in r.workers})
    assert_audits_verify(runner, run_ids)
    runner.close()


def test_cli_batch_leaves_approvals_pending_and_resume_finishes(
    project: Path, tmp_path: Path
) -> None:
    wf = batch_workflow(tmp_path / "wf")
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text(inputs_text(6, large_every=3))
    first = cli(
        project, "batch", str(wf), str(inputs), "--user", "alice", "--workers", "2", "--no-wait",
        "--json", timeout=240,
    )  # fmt: skip
    assert first.returncode == 3, first.stdout + first.stderr
    report = json.loads(first.stdout)
    assert report["counts"] == {"completed": 4, "waiting": 2}
    assert Path(report["report_path"]) == project / "batches" / f"{report['batch_id']}.json"
    assert json.loads(Path(report["report_path"]).read_text())["counts"] == report["counts"]
    assert f"controlroom batch --resume {report['batch_id']}" in report["next_steps"]

    waiting = [r for r in report["runs"] if r["status"] == "waiting"]
    for run in waiting:
        decided = cli(project, "approve", run["run_id"], run["pending"][0], "-u", "bob",
                      "--no-resume")  # fmt: skip
        assert decided.returncode == 3, decided.stdout + decided.stderr

    again = cli(
        project, "batch", "--resume", report["batch_id"][:6], "--workers", "2", "--json",
        timeout=240,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    final = json.loads(again.stdout)
    assert final["counts"] == {"completed": 6} and final["finished"]
    # Only the two approved runs needed a worker this time.
    assert sorted(r["run_id"] for r in final["runs"] if r["tasks"]) == sorted(
        r["run_id"] for r in waiting
    )
    listed = json.loads(cli(project, "batches", "--json").stdout)
    assert [b["batch_id"] for b in listed] == [report["batch_id"]]


def test_a_timeout_interrupts_running_runs_and_resume_finishes_them(
    project: Path, ray_local: Any, tmp_path: Path
) -> None:
    wf = batch_workflow(tmp_path / "wf")
    runner = Runner(home=project)
    batch, items = create_batch(runner, wf, parse_inputs(inputs_text(4, 0)), user="alice")
    (project / "hang-once").write_text("")  # one run hangs after its side effect

    first = BatchThread(runner, batch, items, timeout=10)
    first.start()
    pid_file = project / "hung.pid"
    stopped = first.result(timeout=120)
    assert stopped.timed_out and not stopped.finished
    assert pid_file.exists(), "no run reached the hanging tool before the timeout"
    _, attempts = ledger(project)
    hung = next(run for _, run, pid in attempts if pid == int(pid_file.read_text()))
    statuses = {r.run_id: r.status for r in stopped.runs}
    assert statuses[hung] == "interrupted", stopped.counts  # stopped mid-step, lock released
    # Runs the timeout caught before they started stay queued; nothing is half-done.
    assert set(statuses.values()) <= {"completed", "interrupted", "queued"}
    assert f"controlroom batch --resume {batch.batch_id}" in stopped.next_steps

    again, again_items = runner.store.get_batch(batch.batch_id)
    second = BatchThread(runner, again, again_items, timeout=120)
    second.start()
    finished = second.result(timeout=150)
    assert finished.finished and finished.counts == {"completed": 4}
    for r in finished.runs:  # what was completed before did not run again
        assert r.tasks == (0 if statuses[r.run_id] == "completed" else 1)
    assert_effects_once(runner, project, [i.run_id for i in items])
    _, attempts = ledger(project)
    assert len(attempts) == 5  # the interrupted call was repeated once, deduplicated by key
    assert_audits_verify(runner, [i.run_id for i in items])
    runner.close()
