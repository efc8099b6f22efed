"""The PostgreSQL backend's own guarantees: locks that die with their process, decisions
that cannot be taken twice, clear errors for a bad or unreachable database, schema upgrades,
and several projects in one database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest

from controlroom import ApprovalDecidedError, Runner, RunStatus
from controlroom.config import Settings
from controlroom.errors import ConfigError, RunBusyError
from controlroom.graphs.storage.backends import open_backend
from tests.batch_support import batch_workflow
from tests.conftest import cli_env
from tests.pg_support import with_schema

pytestmark = pytest.mark.postgres

HOLD_LOCK = """
import sys, time
from pathlib import Path
from controlroom.config import Settings
from controlroom.graphs.storage.backends import open_backend
backend = open_backend(Settings(home=Path(sys.argv[1])))
with backend.run_lock(sys.argv[2]):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_a_run_lock_dies_with_the_process_holding_it(project: Path, database_url: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(project), "r0123456789a"],
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(project),
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        backend = open_backend(Settings(home=project))
        assert backend.is_locked("r0123456789a")
        assert not backend.is_locked("r0123456789b")
        with (
            pytest.raises(RunBusyError, match=f"controlroom pid {holder.pid} on "),
            ExitStack() as stack,
        ):
            stack.enter_context(backend.run_lock("r0123456789a"))
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        deadline = time.monotonic() + 10
        while backend.is_locked("r0123456789a"):
            assert time.monotonic() < deadline, "the dead process's lock was never released"
            time.sleep(0.05)
        with backend.run_lock("r0123456789a"):
            assert backend.is_locked("r0123456789a")
            # One process, two holders (say, two threads): the second is refused too.
            with pytest.raises(RunBusyError), ExitStack() as stack:
                stack.enter_context(backend.run_lock("r0123456789a"))
        assert not backend.is_locked("r0123456789a")
        backend.close()
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_two_approvers_racing_record_one_decision(
    project: Path, database_url: str, tmp_path: Path
) -> None:
    first = Runner(home=project)
    result = first.start(batch_workflow(tmp_path / "wf"), user="alice", input="Settle (LARGE)")
    assert result.status is RunStatus.WAITING
    approval = result.pending[0].approval_id
    runners = [Runner(home=project) for _ in range(4)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(runners))

    def decide(runner: Runner) -> None:
        barrier.wait()
        try:
            runner.approve(result.run_id, approval, by="bob", resume=False)
            outcomes.append("approved")
        except ApprovalDecidedError:
            outcomes.append("refused")

    threads = [threading.Thread(target=decide, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["approved", "refused", "refused", "refused"]
    assert first.resume(result.run_id).status is RunStatus.COMPLETED
    for r in [first, *runners]:
        r.close()


def test_a_malformed_database_url_says_how_to_fix_it(project: Path) -> None:
    for url, problem in [
        ("mysql://user@host/db", "starts with 'mysql://', which is not PostgreSQL"),
        ("postgresql://user@host/db?nonsense=1", "not a valid connection string"),
    ]:
        with pytest.raises(ConfigError) as caught:
            open_backend(Settings(home=project, database_url=url))
        assert caught.value.title == "Bad database URL"
        assert problem in caught.value.message
        assert "CONTROLROOM_DATABASE_URL" in caught.value.message


def test_an_unreachable_database_is_reported_in_seconds_without_a_traceback(
    project: Path, tmp_path: Path
) -> None:
    env = cli_env(project)
    env["CONTROLROOM_DATABASE_URL"] = "postgresql://someone:secret@127.0.0.1:9/nowhere"
    began = time.monotonic()
    shown = subprocess.run(
        [sys.executable, "-m", "controlroom", "runs"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert time.monotonic() - began < 60
    assert shown.returncode == 2
    assert shown.stderr.startswith("Database unreachable: Cannot connect to ")
    assert "postgresql://someone@127.0.0.1:9/nowhere" in shown.stderr
    assert "pg_isready" in shown.stderr and "Traceback" not in shown.stderr
    assert "secret" not in shown.stderr  # the password is never shown


def test_columns_added_to_the_schema_are_added_to_an_older_database(
    project: Path, database_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, workflow TEXT NOT NULL, "
            "workflow_ref TEXT NOT NULL, workflow_hash TEXT NOT NULL, user_id TEXT NOT NULL, "
            "input TEXT NOT NULL, model TEXT NOT NULL, approve_mode TEXT NOT NULL, "
            "status TEXT NOT NULL, output TEXT, error TEXT, created_at TEXT NOT NULL, "
            "updated_at TEXT NOT NULL)"
        )
    runner = Runner(home=project)
    result = runner.start(batch_workflow(tmp_path / "wf"), user="alice", input="Settle (LARGE)")
    assert result.status is RunStatus.WAITING
    assert runner.get_run(result.run_id).next_steps == ["post_large"]
    runner.close()


def test_projects_share_a_database_a_schema_each(
    project: Path, database_url: str, tmp_path: Path
) -> None:
    one = Runner(Settings(home=project, database_url=with_schema(database_url, "team_one")))
    two = Runner(Settings(home=project, database_url=with_schema(database_url, "team_two")))
    started = one.start(batch_workflow(tmp_path / "wf"), user="alice", input="Settle #1")
    assert [r.run_id for r in one.list_runs()] == [started.run_id]
    assert two.list_runs() == []
    assert "team_one" not in one.backend.describe()  # the URL's options are not shown
    one.close()
    two.close()
