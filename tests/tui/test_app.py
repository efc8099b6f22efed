"""The control-room preview, driven with Textual's Pilot against a real project folder."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from controlroom import ApprovalStatus, Directory, Runner, RunStatus
from controlroom.graphs.store import Approval, RunRecord
from controlroom.tui.app import ControlRoomApp, format_conversation
from controlroom.tui.screens import ErrorScreen, HelpScreen, ReasonScreen

pytestmark = pytest.mark.tui

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "invoice-payment"
DIRECTORY = """\
users:
  - id: alice
    name: Alice Martin
    roles: [employee, finance-clerk]
  - id: bob
    name: Bob Okafor
    roles: [employee, finance-manager, approver]
"""
SIZE = (140, 45)


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    path = tmp_path / "directory.yaml"
    path.write_text(DIRECTORY, encoding="utf-8")
    with Runner(home=tmp_path / "home", directory=Directory.load(path)) as r:
        yield r


@pytest.fixture
def run_id(runner: Runner) -> str:
    result = runner.start(str(EXAMPLE), user="alice", input="Pay invoice INV-1001")
    assert result.status is RunStatus.WAITING
    assert len(result.pending) == 1
    return result.run_id


def drive(app: ControlRoomApp, scenario: Callable[[Pilot[None]], Awaitable[None]]) -> None:
    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await scenario(pilot)

    asyncio.run(main())


async def settle(pilot: Pilot[None]) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def table(app: ControlRoomApp, name: str) -> DataTable[str]:
    return cast(DataTable[str], app.query_one(f"#{name}", DataTable))


def test_lists_the_waiting_run_and_its_approval(runner: Runner, run_id: str) -> None:
    app = ControlRoomApp(runner, user="bob")

    async def scenario(pilot: Pilot[None]) -> None:
        runs = table(app, "runs")
        assert runs.row_count == 1
        row = runs.get_row_at(0)
        assert row[:4] == [run_id, "waiting", "invoice-payment", "alice"]
        assert row[5] == "1"
        approvals = table(app, "approvals")
        assert approvals.row_count == 1
        assert approvals.get_row_at(0)[0] == run_id
        assert approvals.get_row_at(0)[2:4] == ["pay_invoice", "irreversible"]
        assert "INV-1001" in approvals.get_row_at(0)[4]
        detail = str(app.query_one("#detail", Static).render())
        assert "Pay invoice INV-1001" in detail
        assert "calls pay_invoice" in detail
        assert app.sub_title == "signed in as bob"

    drive(app, scenario)


def test_approve_completes_the_run(runner: Runner, run_id: str) -> None:
    (item,) = runner.approvals(run_id)
    app = ControlRoomApp(runner, user="bob")

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.click("#approvals")
        await pilot.press("a")
        await settle(pilot)
        assert runner.get_run(run_id).status is RunStatus.COMPLETED
        assert table(app, "approvals").row_count == 0
        assert table(app, "runs").get_row_at(0)[1] == "completed"

    drive(app, scenario)
    decided = runner.store.get_approval(run_id, item.approval_id)
    assert decided.status is ApprovalStatus.APPROVED
    assert decided.decided_by == "bob"


def test_reject_with_a_reason_tells_the_agent(runner: Runner, run_id: str) -> None:
    app = ControlRoomApp(runner, user="bob")

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.click("#approvals")
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ReasonScreen)
        await pilot.press("enter")  # an empty reason is refused in the modal
        assert isinstance(app.screen, ReasonScreen)
        app.screen.query_one(Input).value = "wrong vendor account"
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, ReasonScreen)
        assert table(app, "approvals").row_count == 0

    drive(app, scenario)
    assert runner.get_run(run_id).status is RunStatus.COMPLETED
    tool_messages = [m for m in runner.messages(run_id) if isinstance(m, ToolMessage)]
    assert "wrong vendor account" in str(tool_messages[-1].content)


def test_without_a_signed_in_user_nothing_is_decided(runner: Runner, run_id: str) -> None:
    app = ControlRoomApp(runner)

    async def scenario(pilot: Pilot[None]) -> None:
        assert app.sub_title == "not signed in"
        await pilot.click("#approvals")
        for key in ("a", "x"):
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, ErrorScreen)
            assert app.screen.error_title == "Not signed in"
            assert "controlroom tui --user ID" in app.screen.error_message
            await pilot.press("escape")
            assert not isinstance(app.screen, ErrorScreen)
        assert table(app, "approvals").row_count == 1

    drive(app, scenario)
    assert runner.get_run(run_id).status is RunStatus.WAITING
    assert len(runner.approvals(run_id)) == 1


def test_runner_errors_are_shown_in_a_modal(runner: Runner, run_id: str) -> None:
    app = ControlRoomApp(runner, user="bob")

    async def scenario(pilot: Pilot[None]) -> None:
        # Someone else decides the item after the table was loaded.
        (item,) = runner.approvals(run_id)
        runner.approve(run_id, item.approval_id, by="alice", resume=False)
        await pilot.click("#approvals")
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, ErrorScreen)
        assert app.screen.error_title == "Approval already decided"
        await pilot.press("enter")
        assert not isinstance(app.screen, ErrorScreen)
        assert table(app, "approvals").row_count == 0  # refreshed after the error

    drive(app, scenario)


def test_help_says_what_the_preview_lacks(runner: Runner) -> None:
    app = ControlRoomApp(runner)

    async def scenario(pilot: Pilot[None]) -> None:
        assert table(app, "runs").row_count == 0
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text", Static).render())
        for missing in ("starting runs", "stepping through", "time travel", "audit view"):
            assert missing in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")

    drive(app, scenario)


# snapshot ------------------------------------------------------------------------------
STAMP = "2025-01-02T03:04:05.000+00:00"


class FakeRunner:
    """The runner methods the control room reads, with fixed data for a stable snapshot."""

    def __init__(self) -> None:
        self.run = RunRecord(
            run_id="r0123456789a",
            workflow="invoice-payment",
            workflow_ref="examples/invoice-payment",
            workflow_hash="sha256:0",
            user_id="alice",
            input="Pay invoice INV-1001",
            model="scripted:script.yaml",
            approve_mode="ask",
            status=RunStatus.WAITING,
            created_at=STAMP,
            updated_at=STAMP,
            pending_approvals=1,
        )
        self.item = Approval(
            run_id=self.run.run_id,
            approval_id="a1",
            kind="tool_call",
            step="act",
            tool="pay_invoice",
            call_id="call-2",
            args={"invoice_id": "INV-1001", "amount": 1250.0},
            effect="irreversible",
            reason="pay_invoice is irreversible: a person approves it first",
            created_at=STAMP,
        )

    def list_runs(self) -> list[RunRecord]:
        return [self.run]

    def approvals(self, run_id: str | None = None) -> list[Approval]:
        return [self.item]

    def get_run(self, run_id: str) -> RunRecord:
        return self.run

    def messages(self, run_id: str) -> list[AnyMessage]:
        call: Any = {"name": "pay_invoice", "args": self.item.args, "id": "call-2"}
        return [
            HumanMessage(content="Pay invoice INV-1001"),
            AIMessage(
                content="I will look the invoice up first.",
                tool_calls=[
                    {"name": "lookup_invoice", "args": {"invoice_id": "INV-1001"}, "id": "c1"}
                ],
            ),
            ToolMessage(
                content='{"found": true, "amount_due": 1250.0}',
                name="lookup_invoice",
                tool_call_id="c1",
            ),
            AIMessage(content="The invoice is open; I will pay the amount due.", tool_calls=[call]),
        ]


def test_format_conversation_is_plain_text() -> None:
    text = format_conversation(FakeRunner().messages("r"))
    assert text.startswith("[user]\nPay invoice INV-1001")
    assert '→ calls lookup_invoice({"invoice_id": "INV-1001"})' in text
    assert "[tool lookup_invoice]" in text
    assert format_conversation([]) == "(no messages yet)"


def test_snapshot_of_a_waiting_run(snap_compare: Any) -> None:
    app = ControlRoomApp(cast(Runner, FakeRunner()), user="bob")
    assert snap_compare(app, terminal_size=SIZE)
