"""The first screen: every run of the project folder, filtered as you type."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from controlroom.errors import ControlroomError
from controlroom.graphs.storage.records import RunRecord, RunStatus
from controlroom.tui.host import ControlHost, host_of
from controlroom.tui.render import clip, origin, when

MAX_RUNS = 5000
STATUS_STYLE = {
    RunStatus.RUNNING: "bold cyan",
    RunStatus.WAITING: "bold yellow",
    RunStatus.PAUSED: "magenta",
    RunStatus.INTERRUPTED: "red",
    RunStatus.COMPLETED: "green",
    RunStatus.FAILED: "bold red",
}
STATUS_LABEL = {RunStatus.WAITING: "waiting for approval"}


def status_cell(record: RunRecord) -> Text:
    """The run's status; a run with denied or rejected calls says so next to it."""
    cell = Text(
        STATUS_LABEL.get(record.status, record.status.value),
        style=STATUS_STYLE.get(record.status, ""),
    )
    refused = [
        f"{n} {what}"
        for n, what in (
            (record.denied_calls, "denied"),
            (record.rejected_calls, "rejected"),
            (record.invalid_calls, "invalid"),
        )
        if n
    ]
    if refused:
        cell.append(f" · {', '.join(refused)}", style="bold red")
    return cell


def matches(record: RunRecord, query: str) -> bool:
    """Whether a run matches a filter: words (anywhere), status:S, user:U, workflow:W, fork."""
    for word in query.lower().split():
        key, sep, value = word.partition(":")
        if sep and key == "status":
            if not record.status.value.startswith(value):
                return False
        elif sep and key == "user":
            if record.user_id.lower() != value:
                return False
        elif sep and key == "workflow":
            if value not in record.workflow.lower():
                return False
        elif word == "fork":
            if record.parent_run_id is None:
                return False
        else:
            hay = " ".join(
                (record.run_id, record.status.value, record.workflow, record.user_id, record.input)
            ).lower()
            if word not in hay:
                return False
    return True


class RunsLoaded(Message):
    def __init__(self, records: list[RunRecord] | None, error: tuple[str, str] | None) -> None:
        super().__init__()
        self.records = records
        self.error = error


class RunsScreen(Screen[None]):
    """All runs, newest first, with what waits for a person."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", show=True),
        Binding("a", "approve", "Approve…"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("r", "reload", "Refresh"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]
    DEFAULT_CSS = """
    RunsScreen #filter { dock: top; margin: 0 1; }
    RunsScreen #runs { height: 1fr; }
    RunsScreen #runs-summary { height: 1; padding: 0 1; background: $boost; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.records: list[RunRecord] = []
        self.shown: list[RunRecord] = []
        self._rows: list[tuple[str, ...]] = []
        self.loaded = False

    @property
    def control(self) -> ControlHost:
        return host_of(self)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Input(
            placeholder="/ filter: words, status:waiting, user:alice, workflow:NAME, fork",
            id="filter",
        )
        yield DataTable[str | Text](id="runs", cursor_type="row", zebra_stripes=True)
        yield Static("loading runs…", id="runs-summary")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        table.add_columns(
            "run", "status", "workflow", "user", "started", "pending", "origin", "input"
        )
        table.focus()
        self.action_reload()
        self.set_interval(self.control.poll_seconds, self.action_reload)

    def on_screen_resume(self) -> None:
        self.action_reload()

    # loading -----------------------------------------------------------------------
    def action_reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="runs")
    def _load(self) -> None:
        try:
            records = self.control.runner.list_runs(limit=MAX_RUNS)
        except ControlroomError as exc:
            self.post_message(RunsLoaded(None, (exc.title, exc.message)))
            return
        self.post_message(RunsLoaded(records, None))

    def on_runs_loaded(self, message: RunsLoaded) -> None:
        if message.error is not None:
            self.control.show_error(*message.error)
            return
        self.records = message.records or []
        self.loaded = True
        self._fill()

    def _fill(self) -> None:
        query = self.query_one("#filter", Input).value
        shown = [r for r in self.records if matches(r, query)]
        rows: list[tuple[str, ...]] = [
            (
                r.run_id,
                r.outcome,
                r.workflow,
                r.user_id,
                r.created_at,
                str(r.pending_approvals),
                r.parent_run_id or "",
                r.input,
            )
            for r in shown
        ]
        waiting = sum(1 for r in self.records if r.status is RunStatus.WAITING)
        summary = f"{len(shown)} of {len(self.records)} runs · {waiting} waiting for approval"
        refusing = sum(1 for r in self.records if r.refused_calls)
        if refusing:
            summary += f" · {refusing} with denied or rejected calls"
        if query:
            summary += f" · filter: {query}"
        self.query_one("#runs-summary", Static).update(summary)
        if rows == self._rows:
            return
        table = self.query_one("#runs", DataTable)
        keep = self.highlighted()
        table.clear()
        self._rows = rows
        self.shown = shown
        for r in shown:
            table.add_row(
                r.run_id,
                status_cell(r),
                r.workflow,
                r.user_id,
                when(r.created_at),
                Text(str(r.pending_approvals), style="bold yellow") if r.pending_approvals else "0",
                origin(r),
                clip(r.input, 40),
                key=r.run_id,
            )
        ids = [r.run_id for r in shown]
        if keep is not None and keep.run_id in ids:
            table.move_cursor(row=ids.index(keep.run_id))

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self._fill()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one("#runs", DataTable).focus()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        self.query_one("#runs", DataTable).focus()

    # acting ------------------------------------------------------------------------
    def highlighted(self) -> RunRecord | None:
        row = self.query_one("#runs", DataTable).cursor_row
        return self.shown[row] if 0 <= row < len(self.shown) else None

    @on(DataTable.RowSelected, "#runs")
    def action_open(self) -> None:
        record = self.highlighted()
        if record is None:
            self.notify("No run is selected.", severity="warning")
            return
        self.control.open_run(record.run_id)

    def action_approve(self) -> None:
        record = self.highlighted()
        if record is None or not record.pending_approvals:
            self.notify("The highlighted run waits for no approval.", severity="warning")
            return
        self.control.open_approval(record.run_id)
