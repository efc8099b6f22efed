"""Run lists are filtered and paged in the store (issue 14, defect 7).

`Runner.list_runs` used to fetch the newest 200 runs and filter them afterwards, so
`controlroom runs --status waiting` said `[]` while an older run waited, and `runs` showed
200 runs with no word of the others.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controlroom import Runner, RunStatus
from controlroom.cli import app
from tests.conftest import EXAMPLE

pytestmark = pytest.mark.usefixtures("backend")

LATER = 230  # more runs than the old fixed window of 200


@pytest.fixture
def crowded(project: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """One run waiting for approval, then LATER newer runs queued after it."""
    monkeypatch.setenv("CONTROLROOM_AUDIT", "false")  # 230 runs: no need to sign each
    with Runner(home=project) as runner:
        waiting = runner.start(EXAMPLE, user="alice", input="Pay invoice INV-1001")
        assert waiting.status is RunStatus.WAITING
        for i in range(LATER):
            runner.create(EXAMPLE, user="alice", input=f"Pay invoice INV-{2000 + i}")
    return waiting.run_id


def test_an_old_waiting_run_is_listed_however_many_runs_came_after(
    project: Path, crowded: str
) -> None:
    with Runner(home=project) as runner:
        assert [r.run_id for r in runner.list_runs(RunStatus.WAITING)] == [crowded]
        assert runner.count_runs(RunStatus.WAITING) == 1
        assert runner.count_runs() == LATER + 1
        assert len(runner.list_runs(limit=None)) == LATER + 1
        page = runner.list_runs(limit=10, offset=LATER - 5)
        assert len(page) == 6 and page[-1].run_id == crowded  # oldest last
        assert [a.run_id for a in runner.approvals()] == [crowded]


def test_the_cli_pages_and_says_how_many_more(project: Path, crowded: str) -> None:
    cli = CliRunner()
    waiting = cli.invoke(app, ["runs", "--status", "waiting", "--json"])
    assert waiting.exit_code == 0, waiting.output
    assert [r["run_id"] for r in json.loads(waiting.stdout)] == [crowded]

    first = cli.invoke(app, ["runs", "--json"])
    assert len(json.loads(first.stdout)) == 50
    assert "50 of 231 run(s) listed; --offset 50 for the next page" in first.stderr

    everything = cli.invoke(app, ["runs", "--limit", "0", "--json"])
    assert len(json.loads(everything.stdout)) == LATER + 1 and everything.stderr == ""

    text = cli.invoke(app, ["runs", "--limit", "20", "--offset", "220"])
    assert "Run(s) 221-231 of 231, newest first" in text.stdout
    assert crowded in text.stdout

    more = cli.invoke(app, ["runs"])
    assert "181 more: --offset 50 for the next page, --limit 0 for all" in more.stdout


def test_interrupted_is_told_from_running_by_the_lock(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose process died reads "interrupted": filtered so, however old."""
    monkeypatch.setenv("CONTROLROOM_AUDIT", "false")
    with Runner(home=project) as runner:
        record = runner.create(EXAMPLE, user="alice", input="Pay invoice INV-1001")
        runner.store.update_run(record.run_id, status=RunStatus.RUNNING)  # then it died
        for i in range(60):
            runner.create(EXAMPLE, user="alice", input=f"Pay invoice INV-{3000 + i}")
        found = runner.list_runs(RunStatus.INTERRUPTED, limit=5)
        assert [r.run_id for r in found] == [record.run_id]
        assert runner.list_runs(RunStatus.RUNNING) == []
        assert runner.count_runs(RunStatus.INTERRUPTED) == 1
