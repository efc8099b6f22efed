"""Acceptance: SIGKILL a run process in the middle of a step (before and after an
approval), resume it, and get the same final state as an uninterrupted run with the
side effect performed exactly once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DIRECTORY_YAML, cli_env
from tests.pg_support import with_schema

# Each test runs on SQLite and on PostgreSQL (the `backend` fixture).
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("backend")]

TOOLS = '''
import os, sqlite3, time
from controlroom import Effect, ToolContext, tool


def _hang(point: str, home) -> None:
    if os.environ.get("HANG_AT") == point:
        (home / f"reached-{point}").write_text(str(os.getpid()))
        time.sleep(600)


@tool(effect=Effect.READ)
def balance(account: str, ctx: ToolContext) -> dict:
    """Read an account balance."""
    _hang("read", ctx.home)
    return {"account": account, "balance": 900.0}


@tool(effect=Effect.IRREVERSIBLE)
def transfer(account: str, amount: float, ctx: ToolContext) -> dict:
    """Move money (irreversible)."""
    conn = sqlite3.connect(ctx.home / "bank.sqlite", isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY, account TEXT, amount REAL)")
    conn.execute("INSERT OR IGNORE INTO effects VALUES (?, ?, ?)", (ctx.idempotency_key, account, amount))
    conn.close()
    _hang("after-effect", ctx.home)
    return {"transferred": amount, "account": account}
'''

WORKFLOW = """
name: bank
model: scripted:script.yaml
tools: [./tools.py:balance, ./tools.py:transfer]
steps:
  - id: agent
    kind: model
    prompt: You move money for {user.name}.
    tools: [balance, transfer]
    on_tool_calls: act
    next: end
  - id: act
    kind: tools
    next: agent
"""

SCRIPT = """
replies:
  - tool_calls: [{name: balance, args: {account: ACC-1}}]
  - expect: '"balance": 900'
    tool_calls: [{name: transfer, args: {account: ACC-1, amount: 250.0}}]
  - expect: '"transferred": 250'
    content: Moved 250 from ACC-1.
"""


@pytest.fixture
def workflow_dir(tmp_path: Path) -> Path:
    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "tools.py").write_text(TOOLS)
    (wf / "workflow.yaml").write_text(WORKFLOW)
    (wf / "script.yaml").write_text(SCRIPT)
    return wf


def new_home(tmp_path: Path, name: str) -> Path:
    home = tmp_path / name
    home.mkdir()
    (home / "directory.yaml").write_text(DIRECTORY_YAML)
    return home


def cli(home: Path, *args: str, hang_at: str | None = None) -> list[str]:
    return [sys.executable, "-m", "controlroom", *args]


def env_for(home: Path, hang_at: str | None = None) -> dict[str, str]:
    env = cli_env(home)
    if "CONTROLROOM_DATABASE_URL" in env:  # one project per home: a schema each
        env["CONTROLROOM_DATABASE_URL"] = with_schema(env["CONTROLROOM_DATABASE_URL"], home.name)
    if hang_at:
        env["HANG_AT"] = hang_at
    return env


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli(home, *args),
        capture_output=True,
        text=True,
        env=env_for(home),
        timeout=120,
        check=False,
    )


def kill_when_reached(home: Path, point: str, *args: str) -> None:
    """Start a CLI process that hangs at `point`, wait until it gets there, SIGKILL it."""
    proc = subprocess.Popen(
        cli(home, *args), env=env_for(home, point), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    marker = home / f"reached-{point}"
    deadline = time.monotonic() + 120
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"process ended before {point}: {proc.communicate()}")
        assert time.monotonic() < deadline, f"never reached {point}"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    marker.unlink()


def final_state(home: Path, run_id: str) -> list[tuple[Any, ...]]:
    shown = json.loads(run_cli(home, "show", run_id, "--json").stdout)
    summary = []
    for m in shown["messages"]:
        calls = tuple(
            (c["name"], json.dumps(c["args"], sort_keys=True)) for c in m.get("tool_calls") or []
        )
        summary.append((m["type"], m["content"], calls))
    return summary


def effects(home: Path) -> list[tuple[str, float]]:
    conn = sqlite3.connect(home / "bank.sqlite")
    try:
        return conn.execute("SELECT account, amount FROM effects").fetchall()
    finally:
        conn.close()


def start(home: Path, wf: Path) -> dict[str, Any]:
    started = run_cli(
        home, "run", str(wf), "--user", "alice", "--input", "Move 250 from ACC-1", "--json"
    )
    assert started.returncode == 3, started.stdout + started.stderr
    return json.loads(started.stdout)


def test_killed_runs_resume_to_the_same_state_with_one_effect(
    tmp_path: Path, workflow_dir: Path
) -> None:
    # The reference: an uninterrupted run.
    clean = new_home(tmp_path, "clean")
    first = start(clean, workflow_dir)
    done = run_cli(
        clean, "approve", first["run"]["run_id"], first["pending"][0]["approval_id"], "-u", "bob"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    expected = final_state(clean, first["run"]["run_id"])
    assert effects(clean) == [("ACC-1", 250.0)]

    home = new_home(tmp_path, "killed")
    # 1) Killed in the middle of the first tools step (a read), before any approval.
    kill_when_reached(
        home, "read", "run", str(workflow_dir), "-u", "alice", "-i", "Move 250 from ACC-1"
    )
    [record] = json.loads(run_cli(home, "runs", "--json").stdout)
    run_id = record["run_id"]
    assert record["status"] == "interrupted"
    resumed = run_cli(home, "resume", run_id, "--json")
    assert resumed.returncode == 3, resumed.stdout + resumed.stderr
    [pending] = json.loads(resumed.stdout)["pending"]

    # 2) Approved, then killed after the irreversible effect happened but before the
    #    step finished (its checkpoint was never written).
    kill_when_reached(home, "after-effect", "approve", run_id, pending["approval_id"], "-u", "bob")
    assert effects(home) == [("ACC-1", 250.0)]
    assert json.loads(run_cli(home, "runs", "--json").stdout)[0]["status"] == "interrupted"

    finished = run_cli(home, "resume", run_id, "--json")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert json.loads(finished.stdout)["run"]["status"] == "completed"
    assert final_state(home, run_id) == expected
    assert effects(home) == [("ACC-1", 250.0)]  # exactly once
