"""The control room: supervise the runs of one project folder as one signed-in user.

Screens: the runs (:mod:`~controlroom.tui.runs_screen`), one run with its graph, timeline and
step details (:mod:`~controlroom.tui.run_screen`), its audit log (:mod:`~controlroom.tui.
audit_screen`), and modal panels for approvals, new runs, forks, breakpoints, help, errors.

Whatever executes a run (start, step, continue, approve, reject, fork) runs in a thread
worker and reports back with a :class:`Driven` message, so the screen never blocks; the
runner's progress events arrive as :class:`Progress` messages from the driving thread.
Errors are shown in a modal with their title and message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.message import Message

from controlroom.errors import ControlroomError
from controlroom.graphs.control.run_result import RunResult
from controlroom.graphs.control.runner import Runner
from controlroom.graphs.control.supervision import Breakpoints, RunEvent
from controlroom.graphs.storage.checkpoints import CheckpointInfo
from controlroom.graphs.storage.records import RunStatus
from controlroom.tui.approval import ApprovalChoice, ApprovalContext, ApprovalScreen
from controlroom.tui.host import ControlHost
from controlroom.tui.run_screen import RunScreen
from controlroom.tui.runs_screen import RunsScreen
from controlroom.tui.screens import (
    ErrorScreen,
    ForkRequest,
    ForkScreen,
    HelpScreen,
    NewRunScreen,
    StartRequest,
)

TITLE = "controlroom — control room"
SIGN_IN_HINT = (
    "Deciding, starting, stepping and forking runs need a signed-in user. Start the control "
    "room with `controlroom tui --user ID` (an id from the user directory)."
)


class Progress(Message):
    """A runner event from the thread driving a run."""

    def __init__(self, event: RunEvent) -> None:
        super().__init__()
        self.event = event


class Driven(Message):
    """A worker finished executing a run (with a result or an error)."""

    def __init__(
        self, label: str, result: RunResult | None, error: tuple[str, str] | None = None
    ) -> None:
        super().__init__()
        self.label = label
        self.result = result
        self.error = error


class ControlRoomApp(App[None]):
    """Runs, step-through, approvals, time travel and the audit of one project folder."""

    TITLE = TITLE
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_run", "New run"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        runner: Runner,
        *,
        workflow: str | None = None,
        user: str | None = None,
        poll_seconds: float = 2.0,
        stream_tokens: bool = False,
    ) -> None:
        super().__init__()
        self.runner = runner
        self.workflow = workflow
        self.user = user
        self.poll_seconds = poll_seconds
        self.stream_tokens = stream_tokens  # see Runner.watch: streaming may cost token counts
        self.paused_at: dict[str, str] = {}  # why each run paused, as the runner said
        self._open_next_run = False
        self._busy: set[str] = set()
        self._unwatch: Callable[[], None] | None = None

    def on_mount(self) -> None:
        signed_in = f"signed in as {self.user}" if self.user else "not signed in"
        self.sub_title = f"{signed_in} · workflow {self.workflow}" if self.workflow else signed_in
        self._unwatch = self.runner.watch(self._tell, tokens=self.stream_tokens)
        self.push_screen(RunsScreen())

    def _tell(self, event: RunEvent) -> None:
        self.post_message(Progress(event))  # thread-safe: from the driving thread

    def on_unmount(self) -> None:
        if self._unwatch is not None:
            self._unwatch()

    # helpers for screens ---------------------------------------------------------
    def show_error(self, title: str, message: str) -> None:
        self.push_screen(ErrorScreen(title, message))

    def signed_in(self) -> str | None:
        if not self.user:
            self.show_error("Not signed in", SIGN_IN_HINT)
        return self.user

    def open_run(self, run_id: str) -> None:
        if isinstance(self.screen, RunScreen) and self.screen.run_id == run_id:
            return
        self.push_screen(RunScreen(run_id))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # starting runs -----------------------------------------------------------------
    def action_new_run(self) -> None:
        if not isinstance(self.screen, NewRunScreen):
            self.new_run()

    def new_run(self) -> None:
        if self.signed_in() is None:
            return
        try:
            people = [(p.id, p.display_name) for p in self.runner.directory.values()]
        except ControlroomError as exc:
            self.show_error(exc.title, exc.message)
            return
        known = [self.workflow] if self.workflow else []
        for record in self.runner.list_runs(limit=200):
            if record.workflow_ref not in known and not record.workflow_ref.startswith("<"):
                known.append(record.workflow_ref)
        screen = NewRunScreen(known, people, self.runner.settings.model)

        def chosen(request: StartRequest | None) -> None:
            if request is None:
                return
            breaks = Breakpoints(every_node=True) if request.step_mode else None
            self._open_next_run = True
            self.drive(
                f"Starting {request.workflow} for {request.user}",
                None,
                lambda: self.runner.start(
                    request.workflow,
                    user=request.user,
                    input=request.input,
                    model=request.model,
                    breakpoints=breaks,
                ),
            )

        self.push_screen(screen, chosen)

    # deciding ----------------------------------------------------------------------
    def open_approval(self, run_id: str) -> None:
        approver = self.signed_in()
        if approver is None:
            return
        try:
            pending = self.runner.approvals(run_id)
        except ControlroomError as exc:
            self.show_error(exc.title, exc.message)
            return
        if not pending:
            self.notify("Nothing waits for approval in this run any more.", severity="warning")
            return
        item = pending[0]
        context = ApprovalContext.load(self.runner, item)

        def decided(choice: ApprovalChoice | None) -> None:
            if choice is None:
                return
            if choice.approve:
                verb = "Approving" + (" with edits" if choice.args is not None else "")
                self.drive(
                    f"{verb} {item.approval_id} of run {run_id}",
                    run_id,
                    lambda: self.runner.approve(
                        run_id, item.approval_id, by=approver, args=choice.args
                    ),
                )
            else:
                self.drive(
                    f"Rejecting {item.approval_id} of run {run_id}",
                    run_id,
                    lambda: self.runner.reject(
                        run_id, item.approval_id, by=approver, reason=choice.reason or ""
                    ),
                )

        self.push_screen(ApprovalScreen(item, context, approver), decided)

    # stepping, stopping, forking -----------------------------------------------------
    def step_or_resume(self, run_id: str, what: str) -> None:
        call = self.runner.step if what == "step" else self.runner.resume
        self.drive(f"{what.title()} run {run_id}", run_id, lambda: call(run_id))

    def stop_run(self, run_id: str) -> None:
        user = self.signed_in()
        if user is None:
            return
        try:
            asked = self.runner.stop(run_id, by=user)
        except ControlroomError as exc:
            self.show_error(exc.title, exc.message)
            return
        if asked:
            self.notify(f"Run {run_id} stops before its next node.")
        else:
            self.notify(f"Run {run_id} is not running; nothing to stop.", severity="warning")

    def fork_from(self, run_id: str, info: CheckpointInfo) -> None:
        user = self.signed_in()
        if user is None:
            return
        try:
            state = self.runner.state_at(run_id, info.checkpoint_id)
        except ControlroomError as exc:
            self.show_error(exc.title, exc.message)
            return
        screen = ForkScreen(
            run_id, info, str(state.get("input") or ""), dict(state.get("vars") or {})
        )

        def chosen(request: ForkRequest | None) -> None:
            if request is None:
                return
            self._open_next_run = True
            self.drive(
                f"Forking run {run_id} from step {info.step}",
                None,
                lambda: self.runner.fork(
                    run_id,
                    info.checkpoint_id,
                    by=user,
                    edits=request.edits or None,
                    model=request.model,
                ),
            )

        self.push_screen(screen, chosen)

    # the worker ----------------------------------------------------------------------
    def drive(self, label: str, run_id: str | None, call: Callable[[], RunResult]) -> None:
        """Execute a runner call in a thread worker; one at a time per run."""
        if self.signed_in() is None:
            return
        if run_id is not None and run_id in self._busy:
            self.notify(f"Run {run_id} is busy; wait for it.", severity="warning")
            return
        if run_id is not None:
            self._busy.add(run_id)
        self.notify(f"{label}…")
        self._drive(label, run_id, call)

    @work(thread=True, group="drive")
    def _drive(self, label: str, run_id: str | None, call: Callable[[], RunResult]) -> None:
        try:
            result = call()
        except ControlroomError as exc:
            self.post_message(Driven(label, None, (exc.title, exc.message)))
        except Exception as exc:  # a bug, but the control room stays open to say so
            self.post_message(
                Driven(label, None, ("Unexpected error", f"{type(exc).__name__}: {exc}"))
            )
        else:
            self.post_message(Driven(label, result))
        finally:
            if run_id is not None:
                self._busy.discard(run_id)  # a set operation: atomic under the GIL

    def on_driven(self, message: Driven) -> None:
        self._open_next_run = False
        if message.error is not None:
            self.show_error(*message.error)
            self._refresh_screen()
            return
        assert message.result is not None
        run = message.result.run
        if message.result.paused_at:
            self.paused_at[run.run_id] = message.result.paused_at
        else:
            self.paused_at.pop(run.run_id, None)
        note = f"Run {run.run_id} is now {run.status.value}"
        if message.result.paused_at:
            note += f" ({message.result.paused_at})"
        if run.error:
            note += f": {run.error}"
        self.notify(
            note + ".", severity="error" if run.status is RunStatus.FAILED else "information"
        )
        elsewhere = not (isinstance(self.screen, RunScreen) and self.screen.run_id == run.run_id)
        if elsewhere and isinstance(self.screen, RunsScreen | RunScreen):
            self.push_screen(RunScreen(run.run_id))
            return
        self._refresh_screen()

    def _refresh_screen(self) -> None:
        screen = self.screen
        if isinstance(screen, RunScreen | RunsScreen):
            screen.action_reload()

    def on_progress(self, message: Progress) -> None:
        event = message.event
        screen = self.screen
        if self._open_next_run and event.kind == "node_started":
            self._open_next_run = False
            if isinstance(screen, RunsScreen | RunScreen) and not (
                isinstance(screen, RunScreen) and screen.run_id == event.run_id
            ):
                run_screen = RunScreen(event.run_id)
                self.push_screen(run_screen)
                run_screen.live_node = event.node
                return
        if isinstance(screen, RunScreen) and screen.run_id == event.run_id:
            screen.progress(event)


if TYPE_CHECKING:  # the app is what its screens need (checked by mypy, never at run time)
    _IS_HOST: type[ControlHost] = ControlRoomApp
