"""SVG snapshots of the main screens at a fixed terminal size (pytest-textual-snapshot).

Run ids, times and durations are fixed so the pictures do not change from run to run:
ids come from a counter, the store's clock is frozen, and the screens' time formatting
is replaced. Update with `pytest tests/tui --snapshot-update` after a deliberate change.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from textual.pilot import Pilot

from controlroom import Directory, Runner
from controlroom.tui.app import ControlRoomApp
from tests.tui.conftest import FLOW as EXAMPLE

pytestmark = pytest.mark.tui

SIZE = (140, 45)


@pytest.fixture
def fixed(project: Path, monkeypatch: pytest.MonkeyPatch) -> Runner:
    """A project with one completed and one waiting run, with fixed ids and times."""
    ids = itertools.count(1)
    fake_uuid = SimpleNamespace(uuid4=lambda: SimpleNamespace(hex=f"{next(ids):011x}"))
    ticks = itertools.count(1)

    def clock() -> str:  # a new second on every reading: runs sort newest first
        return f"2025-01-02T03:{next(ticks) // 60 % 60:02d}:{next(ticks) % 60:02d}.000+00:00"

    monkeypatch.setattr("controlroom.graphs.control.runner.uuid", fake_uuid)
    monkeypatch.setattr("controlroom.graphs.control.driver.now", clock)
    monkeypatch.setattr("controlroom.graphs.storage.run_store.now", clock)
    for module in ("render", "runs_screen", "run_screen"):
        monkeypatch.setattr(f"controlroom.tui.{module}.when", lambda stamp: "03:04:05")
    monkeypatch.setattr("controlroom.tui.render.duration", lambda seconds: "5 ms")
    runner = Runner(home=project, directory=Directory.load(project / "directory.yaml"))
    model = "scripted:script.yaml"  # relative to the workflow: the same text on every machine
    runner.start(str(EXAMPLE), user="alice", input="Pay invoice INV-1001", model=model)
    done = runner.start(str(EXAMPLE), user="bob", input="Pay invoice INV-1001", model=model)
    runner.approve(done.run_id, "a5-1", by="bob", args={"invoice_id": "INV-1001", "amount": 1200})
    return runner  # newest first: bob's completed run, then alice's waiting one


def app_for(runner: Runner) -> ControlRoomApp:
    return ControlRoomApp(runner, user="bob", poll_seconds=3600)


async def quiet(pilot: Pilot[Any]) -> None:
    for _ in range(4):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def test_runs_screen(fixed: Runner, snap_compare: Any) -> None:
    assert snap_compare(app_for(fixed), terminal_size=SIZE, run_before=quiet)


def test_run_screen(fixed: Runner, snap_compare: Any) -> None:
    async def open_waiting_run(pilot: Pilot[Any]) -> None:
        await quiet(pilot)
        await pilot.press("down", "enter")  # alice's run: waiting for its payment's approval
        await quiet(pilot)
        await pilot.press("up")  # step 4: the model proposes the payment
        await quiet(pilot)

    assert snap_compare(app_for(fixed), terminal_size=SIZE, run_before=open_waiting_run)


def test_approval_panel(fixed: Runner, snap_compare: Any) -> None:
    async def open_panel(pilot: Pilot[Any]) -> None:
        await quiet(pilot)
        await pilot.press("down", "a")
        await quiet(pilot)
        await pilot.press("end", "backspace", "backspace", *"x}")  # an invalid amount
        await quiet(pilot)

    assert snap_compare(app_for(fixed), terminal_size=SIZE, run_before=open_panel)


def test_help_screen(fixed: Runner, snap_compare: Any) -> None:
    async def open_help(pilot: Pilot[Any]) -> None:
        await quiet(pilot)
        await pilot.press("question_mark")
        await quiet(pilot)

    assert snap_compare(app_for(fixed), terminal_size=SIZE, run_before=open_help)
