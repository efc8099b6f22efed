"""The control room, early preview: runs, pending approvals, approve and reject.

The runner's calls that can take a while (a decision resumes the run in this process)
run in a thread worker that reports back with a message, so the screen never blocks.
Starting runs, step-through, time travel and the audit view come in a later version.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import ClassVar

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Label, Static

from controlroom.errors import ControlroomError
from controlroom.graphs.runner import Runner, RunResult
from controlroom.graphs.store import Approval
from controlroom.tui.screens import ErrorScreen, HelpScreen, ReasonScreen

TITLE = "controlroom — control room (preview)"
SIGN_IN_HINT = (
    "Approving and rejecting need a signed-in user. Start the control room with "
    "`controlroom tui --user ID` (an id from the user directory)."
)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_conversation(messages: Sequence[AnyMessage]) -> str:
    """A run's messages as plain text: who said what, tool calls and tool results."""
    if not messages:
        return "(no messages yet)"
    blocks: list[str] = []
    for msg in messages:
        if isinstance(msg, ToolMessage):
            head = f"[tool {msg.name or msg.tool_call_id}]"
        else:
            head = {"human": "[user]", "ai": "[assistant]"}.get(msg.type, f"[{msg.type}]")
        lines = [head]
        text = str(msg.text)
        if text:
            lines.append(text)
        if isinstance(msg, AIMessage):
            for call in msg.tool_calls:
                lines.append(f"→ calls {call['name']}({json.dumps(call['args'])})")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


class DecisionDone(Message):
    """A thread worker finished approving or rejecting (with a result or an error)."""

    def __init__(self, result: RunResult | None, error: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.result = result
        self.error = error


class ControlRoomApp(App[None]):
    """Runs and pending approvals of one project folder, for one signed-in user."""

    TITLE = TITLE
    CSS = """
    .section { background: $boost; text-style: bold; padding: 0 1; width: 100%; }
    #runs { height: 1fr; min-height: 4; }
    #approvals { height: 1fr; min-height: 4; }
    #detail-scroll { height: 2fr; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "reload", "Refresh"),
        Binding("a", "approve", "Approve"),
        Binding("x", "reject", "Reject"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self, runner: Runner, *, workflow: str | None = None, user: str | None = None
    ) -> None:
        super().__init__()
        self.runner = runner
        self.workflow = workflow
        self.user = user
        self._run_ids: list[str] = []
        self._approvals: list[Approval] = []
        self._shown_run: str | None = None
        self._deciding = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Label("Runs", classes="section")
        yield DataTable[str](id="runs", cursor_type="row", zebra_stripes=True)
        yield Label("Pending approvals", classes="section")
        yield DataTable[str](id="approvals", cursor_type="row", zebra_stripes=True)
        yield Label("Conversation of the highlighted run", classes="section")
        with VerticalScroll(id="detail-scroll"):
            yield Static(Text("(no run selected)"), id="detail")
        yield Footer()

    def on_mount(self) -> None:
        signed_in = f"signed in as {self.user}" if self.user else "not signed in"
        self.sub_title = f"{signed_in} · workflow {self.workflow}" if self.workflow else signed_in
        runs = self.query_one("#runs", DataTable)
        runs.add_columns("run", "status", "workflow", "user", "started", "pending")
        approvals = self.query_one("#approvals", DataTable)
        approvals.add_columns("run", "id", "tool", "effect", "arguments", "reason")
        self.action_reload()

    # reading -----------------------------------------------------------------------
    def action_reload(self) -> None:
        """Reload both tables from the store, keeping the cursors where they were."""
        try:
            records = self.runner.list_runs()
            pending = self.runner.approvals()
        except ControlroomError as exc:
            self.show_error(exc.title, exc.message)
            return
        runs = self.query_one("#runs", DataTable)
        keep_run = (
            self._run_ids[runs.cursor_row] if 0 <= runs.cursor_row < len(self._run_ids) else None
        )
        runs.clear()
        self._run_ids = [r.run_id for r in records]
        for r in records:
            started = r.created_at[:19].replace("T", " ")
            runs.add_row(
                r.run_id, r.status.value, r.workflow, r.user_id, started, str(r.pending_approvals)
            )
        if keep_run in self._run_ids:
            runs.move_cursor(row=self._run_ids.index(keep_run))

        table = self.query_one("#approvals", DataTable)
        keep_row = table.cursor_row
        table.clear()
        self._approvals = list(pending)
        for item in self._approvals:
            table.add_row(
                item.run_id,
                item.approval_id,
                item.tool or item.kind,
                item.effect or "-",
                _clip(json.dumps(item.args), 50),
                _clip(item.reason, 50),
            )
        if self._approvals:
            table.move_cursor(row=min(max(keep_row, 0), len(self._approvals) - 1))
        self._show_run(self._highlighted_run(), force=True)

    def _highlighted_run(self) -> str | None:
        row = self.query_one("#runs", DataTable).cursor_row
        return self._run_ids[row] if 0 <= row < len(self._run_ids) else None

    def _show_run(self, run_id: str | None, *, force: bool = False) -> None:
        if run_id == self._shown_run and not force:
            return
        self._shown_run = run_id
        detail = self.query_one("#detail", Static)
        if run_id is None:
            detail.update(Text("(no run selected)"))
            return
        try:
            record = self.runner.get_run(run_id)
            body = format_conversation(self.runner.messages(run_id))
        except ControlroomError as exc:
            detail.update(Text(f"Cannot show run {run_id}. {exc.title}: {exc.message}"))
            return
        head = (
            f"run {record.run_id} · {record.workflow} · for {record.user_id} · "
            f"{record.status.value}"
        )
        if record.error:
            head += f"\nerror: {record.error}"
        detail.update(Text(f"{head}\n\n{body}"))

    @on(DataTable.RowHighlighted, "#runs")
    def _run_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_run(self._highlighted_run())

    # deciding ----------------------------------------------------------------------
    def show_error(self, title: str, message: str) -> None:
        self.push_screen(ErrorScreen(title, message))

    def _selected_approval(self) -> Approval | None:
        """The highlighted approval, or ``None`` after telling the user why there is none."""
        if not self.user:
            self.show_error("Not signed in", SIGN_IN_HINT)
            return None
        if self._deciding:
            self.notify("A decision is still being carried out; wait for it.", severity="warning")
            return None
        row = self.query_one("#approvals", DataTable).cursor_row
        if not 0 <= row < len(self._approvals):
            self.notify("No pending approval is selected.", severity="warning")
            return None
        return self._approvals[row]

    def action_approve(self) -> None:
        item = self._selected_approval()
        if item is not None:
            self._start_decision(item, None)

    def action_reject(self) -> None:
        item = self._selected_approval()
        if item is None:
            return

        def rejected(reason: str | None) -> None:
            if reason:
                self._start_decision(item, reason)

        self.push_screen(ReasonScreen(f"{item.tool or item.kind} ({item.approval_id})"), rejected)

    def _start_decision(self, item: Approval, reason: str | None) -> None:
        self._deciding = True
        verb = "Rejecting" if reason is not None else "Approving"
        self.notify(f"{verb} {item.approval_id} of run {item.run_id}…")
        self._decide(item.run_id, item.approval_id, reason)

    @work(thread=True, group="decide")
    def _decide(self, run_id: str, approval_id: str, reason: str | None) -> None:
        """Approve (``reason`` is None) or reject; the run resumes in this thread."""
        user = self.user or ""
        try:
            if reason is None:
                result = self.runner.approve(run_id, approval_id, by=user)
            else:
                result = self.runner.reject(run_id, approval_id, by=user, reason=reason)
        except ControlroomError as exc:
            self.post_message(DecisionDone(None, (exc.title, exc.message)))
        except Exception as exc:  # a bug, but the control room stays open to say so
            self.post_message(
                DecisionDone(None, ("Unexpected error", f"{type(exc).__name__}: {exc}"))
            )
        else:
            self.post_message(DecisionDone(result))

    def on_decision_done(self, message: DecisionDone) -> None:
        self._deciding = False
        if message.error is not None:
            self.show_error(*message.error)
        elif message.result is not None:
            run = message.result.run
            note = f"Run {run.run_id} is now {run.status.value}."
            if run.error:
                note += f" {run.error}"
            self.notify(note, severity="error" if run.error else "information")
        self.action_reload()

    # other -------------------------------------------------------------------------
    def action_help(self) -> None:
        self.push_screen(HelpScreen())
