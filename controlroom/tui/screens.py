"""Modal screens of the control room: errors, reasons, help, new runs, forks, breakpoints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, SelectionList, Static
from textual.widgets.selection_list import Selection

from controlroom.graphs.authoring.workflow import Workflow
from controlroom.graphs.control.supervision import Breakpoints
from controlroom.graphs.storage.checkpoints import CheckpointInfo

HELP_TEXT = """\
Everywhere
  ?            this help                    q / ctrl+c   quit
  escape       close a dialog, or go back to the runs
  tab          next field or table          mouse        click rows, buttons, fields

Runs (the first screen)
  ↑ ↓ enter    pick a run and open it       n            start a new run
  /            filter: words, status:waiting, user:alice, workflow:NAME, fork
  a            approve or reject what the highlighted run waits for
  r            refresh (the list also refreshes itself every few seconds)

A run
  s            run one step, then pause     c            continue (until a breakpoint,
  t            step mode on/off: pause                   an approval or the end)
               before every node            x            stop: pause before the next node
  b            breakpoints on nodes and tools (pause before a tools step that calls one)
  a            the approval panel for what the run waits for
  ↑ ↓          pick a step of the timeline: prompt, output, reasoning, tool calls with
               the gate's decision and policies, retrieved chunks, state diff, timing
  f            time travel: fork a new run from the selected step (optionally edit state)
  v            the audit log with its verification (intact, or the first bad record)
  escape       back to the runs

Approval panel
  The arguments are checked as you type against the tool's schema and the gate.
  enter        approve (with the edited arguments)   ctrl+r   reject with a reason

Decisions are recorded as the signed-in user (--user) in the run's audit log; the CLI
(`controlroom approve`) and the control room can decide each other's runs.
Press escape to close."""


class ErrorScreen(ModalScreen[None]):
    """An error with a short title and a message saying what to do; Escape or Enter closes."""

    DEFAULT_CSS = """
    ErrorScreen { align: center middle; }
    ErrorScreen > Vertical {
        width: 76; height: auto; max-height: 80%;
        border: thick $error; background: $surface; padding: 1 2;
    }
    ErrorScreen #error-title { text-style: bold; color: $error; margin-bottom: 1; }
    ErrorScreen #error-hint { color: $text-muted; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_error", "Close"),
        Binding("enter", "dismiss_error", "Close", show=False),
    ]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.error_title = title
        self.error_message = message

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.error_title), id="error-title")
            yield Static(Text(self.error_message), id="error-message")
            yield Static("Escape or Enter closes this.", id="error-hint")

    def action_dismiss_error(self) -> None:
        self.dismiss(None)


class ReasonScreen(ModalScreen[str | None]):
    """Ask why an approval is rejected; the agent and the audit are told the reason."""

    DEFAULT_CSS = """
    ReasonScreen { align: center middle; }
    ReasonScreen > Vertical {
        width: 70; height: auto; border: thick $warning; background: $surface; padding: 1 2;
    }
    ReasonScreen #reason-hint { color: $text-muted; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(f"Reject {self.what}: why?"))
            yield Input(placeholder="reason (required)", id="reason")
            yield Static("Enter rejects, Escape cancels.", id="reason-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        reason = event.value.strip()
        if not reason:
            self.query_one("#reason-hint", Static).update(
                "A rejection needs a reason: the agent and the audit are told it."
            )
            return
        self.dismiss(reason)

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """Every key of every screen."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 92; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text(HELP_TEXT), id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)


_DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 84; height: auto; max-height: 95%;
    border: thick $primary; background: $surface; padding: 1 2;
}}
{name} Label {{ margin-top: 1; }}
{name} .hint {{ color: $text-muted; }}
{name} .problem {{ color: $error; }}
{name} Horizontal {{ height: auto; margin-top: 1; }}
{name} Button {{ margin-right: 2; }}
"""


@dataclass(frozen=True)
class StartRequest:
    workflow: str
    user: str
    input: str
    model: str | None
    step_mode: bool


class NewRunScreen(ModalScreen[StartRequest | None]):
    """Start a run: a workflow, a user from the directory, the input, a model."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="NewRunScreen")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self, workflows: list[str], users: list[tuple[str, str]], default_model: str
    ) -> None:
        super().__init__()
        self.workflows = workflows
        self.users = users
        self.default_model = default_model

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Start a new run", style="bold"))
            yield Label("Workflow (a file, folder or module:attr)")
            yield Input(
                value=self.workflows[0] if self.workflows else "",
                placeholder="path/to/workflow.yaml",
                id="workflow",
            )
            if len(self.workflows) > 1:
                yield Select[str](
                    [(w, w) for w in self.workflows], prompt="or pick a known one", id="known"
                )
            yield Label("For user")
            yield Select[str](
                [(f"{uid} — {name}", uid) for uid, name in self.users],
                allow_blank=False,
                id="user",
            )
            yield Label("Input (what the user asks)")
            yield Input(placeholder="e.g. Pay invoice INV-1001", id="input")
            yield Label("Model")
            yield Input(placeholder=f"default: {self.default_model}", id="model")
            yield Checkbox("Step mode: pause before each node", id="step-mode")
            yield Static("", id="new-run-problem", classes="problem")
            with Horizontal():
                yield Button("Start", variant="primary", id="start")
                yield Button("Cancel", id="cancel")
            yield Static("Enter starts, Escape cancels.", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#input", Input).focus()

    @on(Select.Changed, "#known")
    def _picked(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.query_one("#workflow", Input).value = event.value

    @on(Input.Submitted)
    @on(Button.Pressed, "#start")
    def _submit(self) -> None:
        workflow = self.query_one("#workflow", Input).value.strip()
        text = self.query_one("#input", Input).value.strip()
        user = self.query_one("#user", Select).value
        problem = self.query_one("#new-run-problem", Static)
        if not workflow:
            problem.update("Name a workflow to run.")
            return
        if not text:
            problem.update("Type the input: what the user asks the agent to do.")
            return
        if not isinstance(user, str):
            problem.update("Pick the user the run acts for.")
            return
        model = self.query_one("#model", Input).value.strip() or None
        step = self.query_one("#step-mode", Checkbox).value
        self.dismiss(StartRequest(workflow, user, text, model, step))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class ForkRequest:
    edits: dict[str, Any]
    model: str | None


class ForkScreen(ModalScreen[ForkRequest | None]):
    """Time travel: fork a new run from a checkpoint, optionally editing its state."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="ForkScreen")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self, run_id: str, info: CheckpointInfo, input_text: str, variables: dict[str, Any]
    ) -> None:
        super().__init__()
        self.run_id = run_id
        self.info = info
        self.input_text = input_text
        self.variables = variables

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(f"Fork run {self.run_id} from {self.info.label}", style="bold"))
            yield Static(
                "The new run starts paused before "
                f"{', '.join(self.info.next) or 'the end'}, linked to this run. Its tool calls "
                "are gated and its approvals asked again.",
                classes="hint",
            )
            yield Label("Input")
            yield Input(value=self.input_text, id="fork-input")
            yield Label("Variables (a JSON object)")
            yield Input(value=json.dumps(self.variables, sort_keys=True), id="fork-vars")
            yield Label("Model")
            yield Input(placeholder="default: the run's model", id="fork-model")
            yield Static("", id="fork-problem", classes="problem")
            with Horizontal():
                yield Button("Fork", variant="primary", id="fork")
                yield Button("Cancel", id="cancel")
            yield Static("Enter forks, Escape cancels.", classes="hint")

    def _variables(self) -> dict[str, Any] | str:
        raw = self.query_one("#fork-vars", Input).value.strip() or "{}"
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            return f"Variables are not valid JSON: {exc.msg} at column {exc.colno}."
        if not isinstance(value, dict):
            return "Variables must be a JSON object of names to values."
        return value

    @on(Input.Changed, "#fork-vars")
    def _check(self) -> None:
        value = self._variables()
        self.query_one("#fork-problem", Static).update(value if isinstance(value, str) else "")

    @on(Input.Submitted)
    @on(Button.Pressed, "#fork")
    def _submit(self) -> None:
        variables = self._variables()
        if isinstance(variables, str):
            self.query_one("#fork-problem", Static).update(variables)
            return
        edits: dict[str, Any] = {}
        text = self.query_one("#fork-input", Input).value
        if text != self.input_text:
            edits["input"] = text
        if variables != self.variables:
            edits["vars"] = variables
        model = self.query_one("#fork-model", Input).value.strip() or None
        self.dismiss(ForkRequest(edits, model))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class BreakpointsScreen(ModalScreen[Breakpoints]):
    """Pick the nodes and tools a run pauses before; space or enter toggles one."""

    DEFAULT_CSS = (
        _DIALOG_CSS.format(name="BreakpointsScreen")
        + "BreakpointsScreen SelectionList { height: auto; max-height: 20; }"
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "done", "Done")]

    def __init__(self, workflow: Workflow | None, current: Breakpoints) -> None:
        super().__init__()
        self.workflow = workflow
        self.current = current

    def compose(self) -> ComposeResult:
        choices: list[Selection[str]] = [
            Selection("every node (step mode)", "*", self.current.every_node)
        ]
        if self.workflow is not None:
            for step in self.workflow.spec.steps:
                choices.append(
                    Selection(
                        f"node {step.id} ({step.kind})",
                        f"node:{step.id}",
                        step.id in self.current.nodes,
                    )
                )
            for name in sorted(self.workflow.tools):
                choices.append(
                    Selection(f"tool {name}", f"tool:{name}", name in self.current.tools)
                )
        with Vertical():
            yield Static(Text("Breakpoints", style="bold"))
            yield Static(
                "The run pauses before a marked node, and before a tools step that is about to "
                "call a marked tool (before the gate decides it). Space toggles; Escape applies.",
                classes="hint",
            )
            yield SelectionList[str](*choices, id="breaks")

    def action_done(self) -> None:
        chosen = set(self.query_one("#breaks", SelectionList).selected)
        self.dismiss(
            Breakpoints(
                every_node="*" in chosen,
                nodes=frozenset(c.removeprefix("node:") for c in chosen if c.startswith("node:")),
                tools=frozenset(c.removeprefix("tool:") for c in chosen if c.startswith("tool:")),
            )
        )
