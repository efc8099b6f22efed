"""The control room, driven with Textual's Pilot against a real project folder and the
scripted model (CONTROLROOM_MODEL, see tests/conftest.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import cast

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, DataTable, Input, SelectionList, Static

from controlroom import ApprovalStatus, Directory, Runner, RunStatus
from controlroom.audit.log import read_records
from controlroom.graphs.control.supervision import Breakpoints, RunEvent
from controlroom.tui.app import ControlRoomApp
from controlroom.tui.approval import ApprovalScreen
from controlroom.tui.audit_screen import AuditScreen
from controlroom.tui.run_screen import RunScreen
from controlroom.tui.runs_screen import RunsScreen
from controlroom.tui.screens import (
    BreakpointsScreen,
    ErrorScreen,
    ForkScreen,
    HelpScreen,
    NewRunScreen,
    ReasonScreen,
)
from tests.conftest import DIRECTORY_YAML, cli_env
from tests.tui.capture import screen_text
from tests.tui.conftest import FLOW as EXAMPLE
from tests.tui.conftest import FLOW_MODEL

pytestmark = pytest.mark.tui

SIZE = (140, 45)
INPUT = "Pay invoice INV-1001"


@pytest.fixture
def runner(project: Path) -> Iterator[Runner]:
    with Runner(home=project, directory=Directory.load(project / "directory.yaml")) as r:
        yield r


def drive(app: ControlRoomApp, scenario: Callable[[Pilot[None]], Awaitable[None]]) -> None:
    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await scenario(pilot)

    asyncio.run(main())


async def settle(pilot: Pilot[None]) -> None:
    """Let workers finish and the messages they post be handled, until all is quiet (a
    finished worker's message may start another worker)."""
    quiet = 0
    for _ in range(200):
        busy = any(w.is_running for w in pilot.app.workers)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        quiet = 0 if busy else quiet + 1
        if quiet >= 3:
            return


def app_for(runner: Runner, user: str | None = "bob") -> ControlRoomApp:
    return ControlRoomApp(runner, user=user, workflow=str(EXAMPLE), poll_seconds=3600)


def text_of(app: ControlRoomApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def run_screen(app: ControlRoomApp) -> RunScreen:
    assert isinstance(app.screen, RunScreen), type(app.screen).__name__
    return app.screen


async def start_from_the_tui(pilot: Pilot[None], *, step_mode: bool = False) -> str:
    app = cast(ControlRoomApp, pilot.app)
    before = app.screen
    await pilot.press("n")
    await pilot.pause()
    assert isinstance(app.screen, NewRunScreen)
    assert app.screen.query_one("#workflow", Input).value == str(EXAMPLE)
    app.screen.query_one("#input", Input).value = INPUT
    if step_mode:
        app.screen.query_one("#step-mode", Checkbox).value = True
    app.screen.query_one("#input", Input).focus()
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen is not before)
    run_id = run_screen(app).run_id
    await until(pilot, lambda: "· running" not in text_of(app, "#run-head"))
    return run_id


async def until(pilot: Pilot[None], done: Callable[[], bool], seconds: float = 20) -> None:
    """Settle until ``done()`` holds (the run executes in a thread: give it time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        await settle(pilot)
        if done():
            return
        assert loop.time() < deadline, "timed out waiting for the control room"
        await pilot.pause(0.05)


# acceptance 1: start, stop for approval, invalid edit refused, valid edit, approve, done
def test_start_a_run_edit_its_payment_and_approve_it(runner: Runner) -> None:
    app = app_for(runner)

    async def scenario(pilot: Pilot[None]) -> None:
        run_id = await start_from_the_tui(pilot)
        screen = run_screen(app)
        assert "waiting for approval" in text_of(app, "#run-head")
        assert "a5-1 pay_invoice (irreversible)" in text_of(app, "#run-head")
        assert "▶  execute" in text_of(app, "#graph")

        await pilot.press("a")
        await pilot.pause()
        panel = app.screen
        assert isinstance(panel, ApprovalScreen)
        assert "effect: irreversible" in text_of(app, "#approval-facts")
        assert "why: the tool's effect is irreversible" in text_of(app, "#approval-facts")
        assert "✓ valid against pay_invoice's schema" in text_of(app, "#args-check")

        args = panel.query_one("#args", Input)
        args.value = '{"invoice_id": "INV-1001", "amount": "all of it"}'
        await pilot.pause()
        check = text_of(app, "#args-check")
        assert "✗" in check and "`amount`: Input should be a valid number" in check
        await pilot.press("enter")  # approving is refused, with the reason shown
        await pilot.pause()
        assert app.screen is panel
        assert "Not approved: Arguments for tool 'pay_invoice'" in text_of(app, "#args-check")
        assert runner.approvals(run_id)[0].status is ApprovalStatus.PENDING

        args.value = '{"invoice_id": "INV-1001", "amount": 1200}'
        await pilot.pause()
        assert "✓ valid" in text_of(app, "#args-check")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        assert "completed" in text_of(app, "#run-head")
        assert "output:" in text_of(app, "#run-head")

    drive(app, scenario)
    (run,) = runner.list_runs()
    assert run.status is RunStatus.COMPLETED
    decided = runner.store.get_approval(run.run_id, "a5-1")
    assert decided.decided_by == "bob"
    assert decided.edited_args == {"invoice_id": "INV-1001", "amount": 1200.0}
    records = read_records(runner.settings.audit_path / f"{run.run_id}.jsonl")
    decision = next(r for r in records if r["kind"] == "approval.decided")
    assert decision["controlroom.approver.id"] == "bob"
    assert decision["controlroom.approval.edited"] is True


def test_the_gate_rechecks_edits_as_you_type(project: Path) -> None:
    policies = project / "policies"
    policies.mkdir()
    (policies / "limit.cedar").write_text(
        '@id("small-payments")\npermit (principal, action, resource);\n'
        '@id("no-big-payments")\n@reason("payments above 2000 are never allowed")\n'
        'forbid (principal, action == Action::"pay_invoice", resource) '
        'when { context.amount.greaterThan(decimal("2000.0")) };\n'
    )
    (policies / "schema.cedarschema.json").write_text(
        '{"": {"entityTypes": {"User": {"shape": {"type": "Record", "attributes": {}}, '
        '"memberOfTypes": ["Role"]}, "Role": {}, "Tool": {}}, "actions": {'
        '"pay_invoice": {"appliesTo": {"principalTypes": ["User"], "resourceTypes": ["Tool"], '
        '"context": {"type": "Record", "attributes": {"amount": {"type": "Extension", '
        '"name": "decimal"}, "invoice_id": {"type": "String"}, "effect": {"type": "String"}}}}}, '
        '"lookup_invoice": {"appliesTo": {"principalTypes": ["User"], "resourceTypes": ["Tool"], '
        '"context": {"type": "Record", "attributes": {"invoice_id": {"type": "String"}, '
        '"effect": {"type": "String"}}}}}}}}'
    )
    with Runner(home=project) as runner:
        run = runner.start(str(EXAMPLE), user="alice", input=INPUT)
        assert run.status is RunStatus.WAITING, run.run.error
        app = app_for(runner)

        async def scenario(pilot: Pilot[None]) -> None:
            await pilot.press("a")
            await settle(pilot)
            assert isinstance(app.screen, ApprovalScreen)
            app.screen.query_one(
                "#args", Input
            ).value = '{"invoice_id": "INV-1001", "amount": 2500}'
            await pilot.pause()
            assert "denied by policy: payments above 2000" in text_of(app, "#args-check")
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, ApprovalScreen)  # refused in the panel

        drive(app, scenario)
        assert runner.approvals(run.run_id)[0].status is ApprovalStatus.PENDING


def test_reject_with_a_reason_tells_the_agent(runner: Runner) -> None:
    run = runner.start(str(EXAMPLE), user="alice", input=INPUT)
    app = app_for(runner)

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("a")
        await pilot.pause()
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert isinstance(app.screen, ReasonScreen)
        await pilot.press("enter")  # an empty reason is refused
        assert isinstance(app.screen, ReasonScreen)
        app.screen.query_one(Input).value = "wrong vendor account"
        await pilot.press("enter")
        await settle(pilot)
        assert "completed" in text_of(app, "#run-head")

    drive(app, scenario)
    assert "wrong vendor account" in str(runner.messages(run.run_id)[-2].content)
    assert runner.store.get_approval(run.run_id, "a5-1").decided_by == "bob"


# acceptance 2: step mode, a tool breakpoint, a fork, a tampered audit log ---------------
def test_step_mode_pauses_before_each_node(runner: Runner) -> None:
    app = app_for(runner)

    async def scenario(pilot: Pilot[None]) -> None:
        run_id = await start_from_the_tui(pilot, step_mode=True)
        assert runner.get_run(run_id).next_steps == ["find"]  # nothing ran yet
        assert "paused before find (step mode: before find)" in text_of(app, "#run-head")
        assert "breakpoints: every node (step mode)" in text_of(app, "#run-head")
        assert "▶● find" in text_of(app, "#graph")
        for expected in ("lookup", "decide", "pay"):
            await pilot.press("c")  # continue: runs one node, pauses before the next
            await settle(pilot)
            assert runner.get_run(run_id).next_steps == [expected]
            assert f"▶● {expected}" in text_of(app, "#graph")
        await pilot.press("s")  # one step, whatever the mode
        await settle(pilot)
        assert runner.get_run(run_id).next_steps == ["execute"]
        await pilot.press("t")  # step mode off
        await pilot.press("c")
        await settle(pilot)
        assert runner.get_run(run_id).status is RunStatus.WAITING
        table = run_screen(app).query_one("#timeline", DataTable)
        assert table.row_count == 7  # input, start, four steps, the waiting tools step

    drive(app, scenario)


def test_a_breakpoint_on_a_tool(runner: Runner) -> None:
    app = app_for(runner)

    async def scenario(pilot: Pilot[None]) -> None:
        run_id = await start_from_the_tui(pilot, step_mode=True)
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(app.screen, BreakpointsScreen)
        choices = app.screen.query_one(SelectionList)
        choices.deselect("*")
        choices.select("tool:pay_invoice")
        await pilot.press("escape")
        await settle(pilot)
        assert "breakpoints: tool pay_invoice" in text_of(app, "#run-head")
        await pilot.press("c")
        await settle(pilot)
        head = text_of(app, "#run-head")
        assert "paused before execute (breakpoint on tool pay_invoice)" in head
        assert runner.approvals(run_id) == []  # the gate has not seen the call yet
        await pilot.press("c")
        await settle(pilot)
        assert "waiting for approval" in text_of(app, "#run-head")

    drive(app, scenario)


def test_fork_from_a_past_checkpoint(runner: Runner) -> None:
    # (not paid yet: forking a run that paid would find the invoice paid and not pay again)
    origin = runner.start(str(EXAMPLE), user="alice", input=INPUT)
    app = app_for(runner)

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("enter")
        await settle(pilot)
        screen = run_screen(app)
        table = screen.query_one("#timeline", DataTable)
        table.move_cursor(row=2)  # step 1: after find, before lookup
        await settle(pilot)
        assert "step 1 · find" in screen_text(app)
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, ForkScreen)
        variables = app.screen.query_one("#fork-vars", Input)
        variables.value = "{not json"
        await pilot.pause()
        assert "not valid JSON" in text_of(app, "#fork-problem")
        await pilot.press("enter")
        assert isinstance(app.screen, ForkScreen)
        variables.value = '{"priority": "high"}'
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        forked = run_screen(app)
        assert forked.run_id != origin.run_id
        head = text_of(app, "#run-head")
        assert f"fork of {origin.run_id} at checkpoint" in head
        assert "paused before lookup" in head
        await pilot.press("c")
        await settle(pilot)
        assert "waiting for approval" in text_of(app, "#run-head")
        await pilot.press("escape")  # back to the origin
        await settle(pilot)
        assert run_screen(app).run_id == origin.run_id
        await pilot.press("escape")  # back to the runs
        await settle(pilot)
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        table = runs.query_one("#runs", DataTable)
        assert str(table.get_row_at(0)[6]) == f"fork of {origin.run_id}"
        runs.query_one("#filter", Input).value = "fork"
        await pilot.pause()
        assert table.row_count == 1

    drive(app, scenario)
    fork = next(r for r in runner.list_runs() if r.parent_run_id == origin.run_id)
    assert runner.state(fork.run_id)["vars"] == {"priority": "high", "decide": "pay"}
    first = read_records(runner.settings.audit_path / f"{fork.run_id}.jsonl")[0]
    assert first["controlroom.fork"]["run_id"] == origin.run_id
    assert first["controlroom.fork"]["by"] == "bob"
    assert first["controlroom.fork"]["edited"] == ["vars"]


def test_the_audit_view_shows_a_tampered_log_as_not_intact(runner: Runner) -> None:
    run = runner.start(str(EXAMPLE), user="alice", input=INPUT)
    app = app_for(runner)

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        assert isinstance(app.screen, AuditScreen)
        assert text_of(app, "#audit-status").startswith("✓ INTACT")
        await pilot.press("escape")
        await pilot.pause()

        log = runner.settings.audit_path / f"{run.run_id}.jsonl"
        lines = log.read_bytes().split(b"\n")
        lines[3] = lines[3].replace(b"Northwind Traders", b"Southwind Traders")
        log.write_bytes(b"\n".join(lines))

        await pilot.press("v")
        await settle(pilot)
        status = text_of(app, "#audit-status")
        assert status.startswith("✗ NOT INTACT — first bad record: #3 (edited)")
        table = app.screen.query_one("#audit-records", DataTable)
        assert table.cursor_row == 3
        assert str(table.get_row_at(3)[0]) == "✗ 3"

    drive(app, scenario)


# acceptance 4: a run started by the CLI is approved here (and the reverse) ---------------
@pytest.mark.slow
def test_a_cli_run_is_approved_in_the_tui_and_the_reverse(project: Path, runner: Runner) -> None:
    cli = [sys.executable, "-m", "controlroom"]
    env = {**cli_env(project), "CONTROLROOM_MODEL": FLOW_MODEL}
    started = subprocess.run(
        [*cli, "run", str(EXAMPLE), "--user", "alice", "--input", INPUT],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert started.returncode == 3, started.stderr  # no TTY: stopped at the approval
    (cli_run,) = runner.list_runs()
    app = app_for(runner)

    async def scenario(pilot: Pilot[None]) -> None:
        # started here, stopped at its approval, approved by the CLI, seen here
        tui_run = await start_from_the_tui(pilot)
        approved = subprocess.run(
            [*cli, "approve", tui_run, "a5-1", "--user", "bob"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert approved.returncode == 0, approved.stderr
        await pilot.press("r")
        await settle(pilot)
        assert "completed" in text_of(app, "#run-head")
        await pilot.press("escape")
        await settle(pilot)

        # started by the CLI (no TTY), approved here from the runs screen
        screen = cast(RunsScreen, app.screen)
        screen.query_one("#filter", Input).value = "status:waiting"
        await pilot.pause()
        table = screen.query_one("#runs", DataTable)
        assert table.row_count == 1
        assert str(table.get_row_at(0)[0]) == cli_run.run_id
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ApprovalScreen)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        assert run_screen(app).run_id == cli_run.run_id
        await until(pilot, lambda: "completed" in text_of(app, "#run-head"))

    drive(app, scenario)
    assert runner.get_run(cli_run.run_id).status is RunStatus.COMPLETED
    assert runner.store.get_approval(cli_run.run_id, "a5-1").decided_by == "bob"


# behaviour ----------------------------------------------------------------------------
def test_without_a_signed_in_user_nothing_is_decided(runner: Runner) -> None:
    run = runner.start(str(EXAMPLE), user="alice", input=INPUT)
    app = app_for(runner, user=None)

    async def scenario(pilot: Pilot[None]) -> None:
        assert "not signed in" in app.sub_title
        for key in ("a", "n"):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, ErrorScreen)
            assert app.screen.error_title == "Not signed in"
            assert "controlroom tui --user ID" in app.screen.error_message
            await pilot.press("escape")

    drive(app, scenario)
    assert runner.get_run(run.run_id).status is RunStatus.WAITING


def test_runner_errors_are_shown_in_a_modal(runner: Runner) -> None:
    run = runner.start(str(EXAMPLE), user="alice", input=INPUT)
    app = app_for(runner)

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("a")
        await pilot.pause()
        runner.approve(run.run_id, "a5-1", by="alice", resume=False)  # someone was faster
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ErrorScreen)
        assert app.screen.error_title == "Approval already decided"
        await pilot.press("enter")
        assert not isinstance(app.screen, ErrorScreen)

    drive(app, scenario)


def test_filter_and_help(runner: Runner) -> None:
    runner.start(str(EXAMPLE), user="alice", input=INPUT)
    done = runner.start(str(EXAMPLE), user="bob", input=INPUT, model=None)
    runner.approve(done.run_id, "a5-1", by="bob")
    app = app_for(runner)

    async def scenario(pilot: Pilot[None]) -> None:
        screen = cast(RunsScreen, app.screen)
        table = screen.query_one("#runs", DataTable)
        assert table.row_count == 2
        await pilot.press("slash")
        await pilot.press(*"status:waiting")
        await pilot.pause()
        assert table.row_count == 1
        assert "1 of 2 runs · 1 waiting for approval" in text_of(app, "#runs-summary")
        screen.query_one("#filter", Input).value = "user:bob"
        await pilot.pause()
        assert [str(table.get_row_at(0)[0])] == [done.run_id]
        await pilot.press("enter", "escape")
        await pilot.pause()
        assert table.row_count == 2
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        help_text = text_of(app, "#help-text")
        for words in ("step mode", "breakpoints", "fork", "audit log", "ctrl+r"):
            assert words in help_text
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)

    drive(app, scenario)


def test_live_progress_follows_the_running_node(runner: Runner) -> None:
    run = runner.start(
        str(EXAMPLE), user="alice", input=INPUT, breakpoints=Breakpoints(every_node=True)
    )
    app = app_for(runner)

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("enter")
        await settle(pilot)
        assert "▶● find" in text_of(app, "#graph")
        # what the runner tells watchers while it drives the run in a worker thread
        app._tell(RunEvent(run_id=run.run_id, kind="node_started", node="decide", step=3))
        app._tell(RunEvent(run_id=run.run_id, kind="token", node="decide", text='{"reason'))
        app._tell(RunEvent(run_id=run.run_id, kind="token", node="decide", text='ing": "open"'))
        await pilot.pause()
        assert "▶● decide" in text_of(app, "#graph")
        assert 'decide says: {"reasoning": "open"' in text_of(app, "#live")
        app._tell(RunEvent(run_id=run.run_id, kind="stopped", text="paused"))
        await settle(pilot)
        assert text_of(app, "#live") == ""
        assert "▶● find" in text_of(app, "#graph")  # back to what the store says

    drive(app, scenario)


def test_pilot_capture_helper_sees_modals(runner: Runner) -> None:
    app = app_for(runner)

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("question_mark")
        await pilot.pause()
        assert "Approval panel" in screen_text(app)

    drive(app, scenario)


def test_the_cli_opens_the_control_room(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from controlroom.cli.app import app as cli

    opened: dict[str, object] = {}

    def fake_run_app(
        runner: Runner, *, workflow: str | None, user: str | None, stream_tokens: bool
    ) -> None:
        opened.update(workflow=workflow, user=user, home=runner.settings.home, stream=stream_tokens)

    monkeypatch.setattr("controlroom.tui.run_app", fake_run_app)
    result = CliRunner().invoke(cli, ["tui", str(EXAMPLE), "--user", "bob", "--stream"])
    assert result.exit_code == 0, result.output
    assert opened == {"workflow": str(EXAMPLE), "user": "bob", "home": project, "stream": True}
    assert DIRECTORY_YAML  # the project's directory is the one the app reads


def test_the_runs_list_marks_runs_with_refused_calls(runner: Runner) -> None:
    """A completed run whose payment a person rejected says so in the runs list."""
    run = runner.start(str(EXAMPLE), user="alice", input=INPUT)
    [item] = run.pending
    done = runner.reject(run.run_id, item.approval_id, by="bob", reason="Not this month.")
    assert done.status is RunStatus.COMPLETED and done.run.rejected_calls == 1
    app = app_for(runner)

    async def scenario(pilot: Pilot[None]) -> None:
        screen = cast(RunsScreen, app.screen)
        table = screen.query_one("#runs", DataTable)
        assert str(table.get_row_at(0)[1]) == "completed · 1 rejected"
        assert "1 with denied or rejected calls" in text_of(app, "#runs-summary")

    drive(app, scenario)
