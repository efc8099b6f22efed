"""One run: its graph with the current node, the timeline of steps, and the selected step.

Everything that reads more than a row (checkpoints, audit records, states) loads in a
thread worker and comes back as a message; the runner's progress events (a node started,
model output streamed) update the graph and the live line as they happen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static

from controlroom.audit.log import log_path
from controlroom.errors import ControlroomError
from controlroom.graphs.authoring.workflow import Workflow
from controlroom.graphs.control.supervision import Breakpoints, RunEvent
from controlroom.graphs.storage.checkpoints import CheckpointInfo
from controlroom.graphs.storage.records import Approval, RunRecord, RunStatus
from controlroom.tui.audit_screen import read_lines
from controlroom.tui.host import ControlHost, host_of
from controlroom.tui.render import clip, graph_text, records_view, step_detail, when
from controlroom.tui.runs_screen import STATUS_LABEL, STATUS_STYLE


@dataclass
class RunView:
    """What the run screen shows, loaded together."""

    record: RunRecord
    workflow: Workflow | None
    checkpoints: list[CheckpointInfo]
    records: list[dict[str, Any]]
    pending: list[Approval]
    breakpoints: Breakpoints
    workflow_error: str = ""
    by_step: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


class RunLoaded(Message):
    def __init__(
        self, view: RunView | None, error: tuple[str, str] | None, generation: int = 0
    ) -> None:
        super().__init__()
        self.view = view
        self.error = error
        self.generation = generation  # loads can finish out of order: the newest wins


class DetailLoaded(Message):
    def __init__(self, checkpoint_id: str, body: RenderableType) -> None:
        super().__init__()
        self.checkpoint_id = checkpoint_id
        self.body = body


class RunScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "step", "Step"),
        Binding("c", "continue", "Continue"),
        Binding("x", "stop", "Stop"),
        Binding("t", "step_mode", "Step mode"),
        Binding("b", "breakpoints", "Breakpoints"),
        Binding("a", "approve", "Approve…"),
        Binding("f", "fork", "Fork…"),
        Binding("v", "audit", "Audit"),
        Binding("r", "reload", "Refresh", show=False),
        Binding("escape", "back", "Runs"),
    ]
    DEFAULT_CSS = """
    RunScreen #run-head { height: auto; padding: 0 1; background: $boost; }
    RunScreen #left { width: 62; }
    RunScreen .section { text-style: bold; padding: 0 1; background: $panel; width: 100%; }
    RunScreen #graph { height: auto; max-height: 14; padding: 0 1; }
    RunScreen #timeline { height: 1fr; }
    RunScreen #detail-scroll { padding: 0 1; border-left: solid $primary; }
    RunScreen #live { height: 3; padding: 0 1; background: $boost; }
    """

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.view: RunView | None = None
        self.current: list[str] = []
        self.live_node: str | None = None
        self.live_text = ""
        self._shown_detail: str | None = None
        self._rows: list[tuple[str, ...]] = []
        self._stamp: str | None = None
        self._asked = 0  # loads started
        self._applied = 0  # the newest load shown

    @property
    def control(self) -> ControlHost:
        return host_of(self)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(Text(f"run {self.run_id} · loading…"), id="run-head")
        with Horizontal():
            with Vertical(id="left"):
                yield Label("Graph (▶ current, ● breakpoint)", classes="section")
                yield Static("", id="graph")
                yield Label("Timeline", classes="section")
                yield DataTable[str](id="timeline", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="detail-scroll"):
                yield Static("(select a step)", id="detail")
        yield Static("", id="live")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"run {self.run_id}"
        table = self.query_one("#timeline", DataTable)
        table.add_columns("step", "ran", "next", "finished", "tokens", "notes")
        table.focus()
        self.action_reload()
        self.set_interval(self.control.poll_seconds, self._poll)

    def on_screen_resume(self) -> None:
        self.action_reload()

    # loading -----------------------------------------------------------------------
    def _poll(self) -> None:
        """Pick up changes made elsewhere (the CLI, another control room, a worker)."""
        self._check_changed()

    @work(thread=True, exclusive=True, group="run-poll")
    def _check_changed(self) -> None:
        try:
            stamp = self.control.runner.get_run(self.run_id).updated_at
        except ControlroomError:
            return
        if stamp != self._stamp:
            self.app.call_from_thread(self.action_reload)

    def action_reload(self) -> None:
        self._asked += 1
        self._load(self._asked)

    @work(thread=True, group="run")
    def _load(self, generation: int) -> None:
        runner = self.control.runner
        try:
            record = runner.get_run(self.run_id)
            problem = ""
            try:
                workflow: Workflow | None = runner.workflow(record.run_id)
            except ControlroomError as exc:
                workflow, problem = None, f"{exc.title}: {exc.message}"
            view = RunView(
                record=record,
                workflow=workflow,
                checkpoints=runner.checkpoints(record.run_id),
                records=read_lines(log_path(runner.settings.audit_path, record.run_id)),
                pending=runner.approvals(record.run_id),
                breakpoints=runner.breakpoints(record.run_id),
                workflow_error=problem,
            )
        except ControlroomError as exc:
            self.post_message(RunLoaded(None, (exc.title, exc.message), generation))
            return
        for item in view.records:
            if isinstance(item.get("step"), int):
                view.by_step.setdefault(item["step"], []).append(item)
        last = view.checkpoints[-1].step if view.checkpoints else -1
        for step in sorted(s for s in view.by_step if s > last):  # a step still in progress
            nodes = sorted({str(r.get("node")) for r in view.by_step[step] if r.get("node")})
            view.checkpoints.append(
                CheckpointInfo(
                    checkpoint_id=f"pending:{step}", step=step, source="in progress", ran=nodes
                )
            )
        self.post_message(RunLoaded(view, None, generation))

    def on_run_loaded(self, message: RunLoaded) -> None:
        if message.generation < self._applied:
            return  # an older load that finished late
        self._applied = message.generation
        if message.error is not None:
            self.control.show_error(*message.error)
            return
        assert message.view is not None
        self.view = view = message.view
        self._stamp = view.record.updated_at
        record = view.record
        if record.status is not RunStatus.RUNNING:
            self.live_node = None
        self.current = [self.live_node] if self.live_node else [n for n in record.next_steps if n]
        self._head()
        self._graph()
        self._timeline()

    def _head(self) -> None:
        assert self.view is not None
        record = self.view.record
        head = Text()
        head.append(f"run {record.run_id}", style="bold")
        head.append(f" · {record.workflow} · for {record.user_id} · model {record.model} · ")
        head.append(
            STATUS_LABEL.get(record.status, record.status.value),
            style=STATUS_STYLE.get(record.status, ""),
        )
        paused_at = self.control.paused_at.get(record.run_id)
        if record.status is RunStatus.PAUSED and record.next_steps:
            head.append(f" before {', '.join(record.next_steps)}")
            if paused_at:
                head.append(f" ({paused_at})", style="magenta")
        head.append(f"\ninput: {clip(record.input, 110)}")
        if record.parent_run_id:
            head.append(
                f"\nfork of {record.parent_run_id} at checkpoint {record.parent_checkpoint}",
                style="magenta",
            )
        if record.status is RunStatus.COMPLETED and record.output:
            head.append(f"\noutput: {clip(record.output, 200)}", style="green")
        if record.error:
            head.append(f"\nerror: {clip(record.error, 200)}", style="bold red")
        for item in self.view.pending:
            head.append(
                f"\nwaiting: {item.approval_id} {item.tool or item.kind} "
                f"({item.effect or '-'}): {item.reason} — press a",
                style="bold yellow",
            )
        head.append(f"\nbreakpoints: {self.view.breakpoints.describe()}", style="dim")
        self.query_one("#run-head", Static).update(head)

    def _graph(self) -> None:
        assert self.view is not None
        seen = [n for c in self.view.checkpoints for n in c.ran]
        text = graph_text(self.view.workflow, self.current, self.view.breakpoints, seen)
        if self.view.workflow_error:
            text.append(clip(self.view.workflow_error, 300), style="red")
        self.query_one("#graph", Static).update(text)

    def _timeline(self) -> None:
        assert self.view is not None
        table = self.query_one("#timeline", DataTable)
        rows: list[tuple[str, ...]] = []
        for info in self.view.checkpoints:
            records = self._records_of(info)
            tokens = sum(
                int(r.get("gen_ai.usage.input_tokens", 0) or 0)
                + int(r.get("gen_ai.usage.output_tokens", 0) or 0)
                for r in records
            )
            notes = []
            for r in records:
                if r.get("kind") == "tool.decision":
                    notes.append(f"{r.get('gen_ai.tool.name')} {r.get('controlroom.decision')}")
                elif r.get("kind") == "approval.decided":
                    notes.append(
                        f"{r.get('controlroom.approval.decision')} by "
                        f"{r.get('controlroom.approver.id')}"
                    )
                elif r.get("kind") not in ("model.call", "tool.result", "approval.requested"):
                    notes.append(str(r.get("kind")))
            if info.source == "fork":
                notes.append(f"forked from {self.view.record.parent_run_id}")
            ran = ", ".join(info.ran) or info.source
            rows.append(
                (
                    str(info.step),
                    ran,
                    ", ".join(info.next) or ("…" if info.source == "in progress" else "end"),
                    when(info.created_at),
                    str(tokens or ""),
                    clip("; ".join(notes), 40),
                )
            )
        if rows == self._rows:
            return
        follow = table.cursor_row >= len(self._rows) - 1  # stay on the newest step
        self._rows = rows
        keep = table.cursor_row
        table.clear()
        for row in rows:
            table.add_row(*row)
        if rows:
            table.move_cursor(row=len(rows) - 1 if follow else min(keep, len(rows) - 1))
            self._show_detail(force=True)

    # the selected step -------------------------------------------------------------
    def selected(self) -> CheckpointInfo | None:
        if self.view is None:
            return None
        row = self.query_one("#timeline", DataTable).cursor_row
        infos = self.view.checkpoints
        return infos[row] if 0 <= row < len(infos) else None

    @on(DataTable.RowHighlighted, "#timeline")
    def _highlighted(self) -> None:
        self._show_detail()

    def _show_detail(self, *, force: bool = False) -> None:
        info = self.selected()
        if info is None or self.view is None:
            return
        if info.checkpoint_id == self._shown_detail and not force:
            return
        self._shown_detail = info.checkpoint_id
        parents = {c.checkpoint_id: c for c in self.view.checkpoints}
        parent = parents.get(info.parent_id or "")
        self._load_detail(info, parent, self._records_of(info))

    def _records_of(self, info: CheckpointInfo) -> list[dict[str, Any]]:
        if self.view is None or info.source not in ("loop", "in progress"):
            return []
        return self.view.by_step.get(info.step, [])

    @work(thread=True, exclusive=True, group="detail")
    def _load_detail(
        self,
        info: CheckpointInfo,
        parent: CheckpointInfo | None,
        records: list[dict[str, Any]],
    ) -> None:
        runner = self.control.runner
        if info.source == "in progress":
            head = Text(f"step {info.step} · {', '.join(info.ran)} · in progress", style="bold")
            self.post_message(DetailLoaded(info.checkpoint_id, Group(head, *records_view(records))))
            return
        try:
            after = runner.state_at(self.run_id, info.checkpoint_id)
            before = runner.state_at(self.run_id, parent.checkpoint_id) if parent else None
            body = step_detail(info, parent, records, before, after)
        except ControlroomError as exc:
            body = Text(f"{exc.title}: {exc.message}", style="red")
        self.post_message(DetailLoaded(info.checkpoint_id, body))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        if message.checkpoint_id == self._shown_detail:
            self.query_one("#detail", Static).update(message.body)

    # live progress -----------------------------------------------------------------
    def progress(self, event: RunEvent) -> None:
        if event.kind == "node_started":
            self.live_node = event.node
            self.live_text = ""
            self.current = [event.node] if event.node else []
            if self.view is not None:
                self._graph()
            self._live(Text(f"running {event.node}…", style="bold cyan"))
        elif event.kind == "token":
            self.live_text = (self.live_text + event.text)[-2000:]
            self._live(
                Text(f"{event.node} says: ", style="bold cyan").append(clip(self.live_text, 300))
            )
        elif event.kind == "node_finished":
            self.action_reload()
        elif event.kind == "stopped":
            self.live_node = None
            self._live(Text(""))
            self.action_reload()

    def _live(self, text: Text) -> None:
        self.query_one("#live", Static).update(text)

    # acting ------------------------------------------------------------------------
    def _status(self) -> RunStatus | None:
        return self.view.record.status if self.view is not None else None

    def action_step(self) -> None:
        if self._status() not in (RunStatus.PAUSED, RunStatus.INTERRUPTED, RunStatus.FAILED):
            self.notify("Only a paused run can be stepped.", severity="warning")
            return
        self.control.step_or_resume(self.run_id, "step")

    def action_continue(self) -> None:
        status = self._status()
        if status is RunStatus.WAITING:
            self.notify("The run waits for an approval: press a.", severity="warning")
            return
        if status not in (RunStatus.PAUSED, RunStatus.INTERRUPTED, RunStatus.FAILED):
            self.notify(
                f"The run is {status.value if status else 'not loaded'}.", severity="warning"
            )
            return
        self.control.step_or_resume(self.run_id, "resume")

    def action_stop(self) -> None:
        self.control.stop_run(self.run_id)

    def action_step_mode(self) -> None:
        runner = self.control.runner
        current = runner.breakpoints(self.run_id)
        changed = current.model_copy(update={"every_node": not current.every_node})
        runner.set_breakpoints(self.run_id, changed)
        state = "on: the run pauses before each node" if changed.every_node else "off"
        self.notify(f"Step mode {state}.")
        self.action_reload()

    def action_breakpoints(self) -> None:
        from controlroom.tui.screens import BreakpointsScreen

        workflow = self.view.workflow if self.view is not None else None

        def chosen(breaks: Breakpoints | None) -> None:
            if breaks is not None:
                self.control.runner.set_breakpoints(self.run_id, breaks)
                self.notify(f"Breakpoints: {breaks.describe()}")
                self.action_reload()

        self.app.push_screen(
            BreakpointsScreen(workflow, self.control.runner.breakpoints(self.run_id)), chosen
        )

    def action_approve(self) -> None:
        if self.view is None or not self.view.pending:
            self.notify("This run waits for no approval.", severity="warning")
            return
        self.control.open_approval(self.run_id)

    def action_fork(self) -> None:
        info = self.selected()
        if info is None or info.source == "in progress":
            self.notify("Select a saved step to fork from in the timeline.", severity="warning")
            return
        self.control.fork_from(self.run_id, info)

    def action_audit(self) -> None:
        from controlroom.tui.audit_screen import AuditScreen

        self.app.push_screen(AuditScreen(self.run_id))

    def action_back(self) -> None:
        self.dismiss(None)
