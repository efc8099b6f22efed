"""Acceptance 2: SIGKILL during appends leaves a log that verifies up to its last whole
record and reports a torn tail, never tampering; no completed step is missing from it."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controlroom.audit import AuditLog, read_records, verify_log
from controlroom.audit.keys import load_or_create_signer
from tests.audit_support import project_key
from tests.conftest import DIRECTORY_YAML, cli_env

pytestmark = pytest.mark.slow

WRITER = r"""
import os, sys, time
from pathlib import Path
from controlroom.audit import AuditLog
from controlroom.audit.keys import load_or_create_signer

path, keys, acks, mode = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
log = AuditLog(path, path.name.removesuffix(".jsonl"), signer=load_or_create_signer(keys),
               checkpoint_every=25)
real_write = os.write

def stalled_write(fd, data):
    # Fault injection: the disk takes a big record half-way, and the process is killed there.
    if len(data) > 100_000:
        written = real_write(fd, data[: len(data) // 2])
        (acks.parent / "mid-write").write_text(str(written))
        time.sleep(120)
        return written
    return real_write(fd, data)

if mode == "stall":
    os.write = stalled_write
with acks.open("a") as out:
    for i in range(100_000):
        size = 300_000 if (mode == "stall" and i == 40) or (mode == "random" and i % 7 == 6) else 200
        log.append({"kind": "model.call", "step": i, "node": "n", "body": "x" * size})
        out.write(f"{i}\n")  # this append returned: it must survive the kill
        out.flush()
"""


def start_writer(tmp_path: Path, mode: str) -> tuple[subprocess.Popen[bytes], Path, Path, Path]:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    path, keys, acks = tmp_path / "rcrash.jsonl", tmp_path / "keys", tmp_path / "acks"
    proc = subprocess.Popen([sys.executable, str(script), str(path), str(keys), str(acks), mode])
    return proc, path, keys, acks


def acknowledged(acks: Path) -> list[int]:
    return [int(line) for line in acks.read_text().splitlines()] if acks.exists() else []


def test_a_kill_in_the_middle_of_a_write_leaves_a_torn_tail(tmp_path: Path) -> None:
    proc, path, keys, acks = start_writer(tmp_path, "stall")
    deadline = time.monotonic() + 60
    while not (tmp_path / "mid-write").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    key = load_or_create_signer(keys).public

    report = verify_log(path, expected_key=key)
    assert report.status == "incomplete" and report.exit_code == 3, report.summary()
    assert report.torn_tail_bytes == int((tmp_path / "mid-write").read_text())
    assert "torn tail" in report.summary() and "not tampering" in report.summary()
    steps = [r["step"] for r in read_records(path) if r["kind"] == "model.call"]
    assert steps == acknowledged(acks) == list(range(40))  # every completed append is there

    # The next writer cuts the torn line off, says so, and the log is whole and signed again.
    log = AuditLog(path, "rcrash", signer=load_or_create_signer(keys))
    log.append({"kind": "run.resume"})
    log.checkpoint("completed")
    repaired = verify_log(path, expected_key=key)
    assert repaired.ok, repaired.summary()
    [repair] = [r for r in read_records(path) if r["kind"] == "log.repair"]
    assert repair["controlroom.repair.torn_bytes"] == report.torn_tail_bytes


@pytest.mark.parametrize("seed", range(4))
def test_a_kill_at_any_moment_never_looks_like_tampering(tmp_path: Path, seed: int) -> None:
    proc, path, keys, acks = start_writer(tmp_path, "random")
    rng = random.Random(seed)
    wanted = rng.randint(5, 60)
    deadline = time.monotonic() + 60
    while len(acknowledged(acks)) < wanted:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(rng.random() * 0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    report = verify_log(path, expected_key=load_or_create_signer(keys).public)
    assert report.status in ("incomplete", "intact"), report.summary()
    steps = [r["step"] for r in read_records(path) if r["kind"] == "model.call"]
    acked = acknowledged(acks)
    assert steps[: len(acked)] == acked  # nothing acknowledged is missing
    assert len(steps) <= len(acked) + 1  # at most the append in flight got in whole
    data = path.read_bytes()
    assert report.torn_tail_bytes == len(data) - (data.rfind(b"\n") + 1)


TOOLS = '''
import os, time
from controlroom import Effect, ToolContext, tool


@tool(effect=Effect.READ)
def balance(account: str, ctx: ToolContext) -> dict:
    """Read an account balance."""
    if os.environ.get("HANG") == "1":
        (ctx.home / "reached").write_text(str(os.getpid()))
        time.sleep(600)
    return {"account": account, "balance": 900.0}
'''

WORKFLOW = """
name: balances
model: scripted:script.yaml
tools: [./tools.py:balance]
steps:
  - id: agent
    kind: model
    prompt: You read balances for {user.name}.
    tools: [balance]
    on_tool_calls: act
    next: end
  - id: act
    kind: tools
    next: agent
"""

SCRIPT = """
replies:
  - content: Checking.
    tool_calls: [{name: balance, args: {account: ACC-1}}]
  - The balance of ACC-1 is 900.
"""


def test_a_run_killed_mid_step_keeps_every_completed_step(tmp_path: Path) -> None:
    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "tools.py").write_text(TOOLS)
    (wf / "workflow.yaml").write_text(WORKFLOW)
    (wf / "script.yaml").write_text(SCRIPT)
    home = tmp_path / "home"
    home.mkdir()
    (home / "directory.yaml").write_text(DIRECTORY_YAML)
    env = cli_env(home)
    cli = [sys.executable, "-m", "controlroom"]
    proc = subprocess.Popen(
        [*cli, "run", str(wf), "-u", "alice", "-i", "balance?"],
        env={**env, "HANG": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (home / "reached").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    [path] = (home / "audit").glob("*.jsonl")
    report = verify_log(path, expected_key=project_key(home))
    assert report.status == "incomplete" and report.unsigned == report.records, report.summary()
    kinds = [(r["kind"], r.get("step")) for r in read_records(path)]
    # The model step completed; the tool was allowed (synced before it ran) and never returned.
    assert kinds == [("run.start", None), ("model.call", 1), ("tool.decision", 2)]

    run_id = path.name.removesuffix(".jsonl")
    done = subprocess.run(
        [*cli, "resume", run_id], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    after = verify_log(path, expected_key=project_key(home))
    assert after.ok, after.summary()
    decisions = [r for r in read_records(path) if r["kind"] == "tool.decision"]
    assert [d["attempt"] for d in decisions] == [1, 2]  # the re-executed step is visible
    shown = subprocess.run(
        [*cli, "audit", "show", run_id], env=env, capture_output=True, text=True, check=False
    )
    assert "(attempt 2)" in shown.stdout
    assert json.loads(path.read_bytes().split(b"\n")[-2])["reason"] == "completed"
