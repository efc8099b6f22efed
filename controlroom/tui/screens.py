"""Modal screens of the control room: errors, the rejection reason, and help."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

HELP_TEXT = """\
Keys
  r        refresh the runs and approvals
  a        approve the selected approval (as the signed-in user)
  x        reject the selected approval (asks for a reason)
  ↑ ↓      move within a table; tab switches between tables
  ?        this help
  q        quit

The conversation of the highlighted run is shown at the bottom.

This is an early preview of the control room. It lists runs and pending
approvals and lets the signed-in user approve or reject them. Not here yet:
  - starting runs (use `controlroom run` for now)
  - stepping through a run (use `controlroom step` for now)
  - time travel (replaying or forking a run from an earlier checkpoint)
  - the audit view (who decided what, and the effect ledger)
  - editing a tool call's arguments before approving it

Press Escape to close."""


class ErrorScreen(ModalScreen[None]):
    """An error with a short title and a message saying what to do; Escape or Enter closes."""

    DEFAULT_CSS = """
    ErrorScreen { align: center middle; }
    ErrorScreen > Vertical {
        width: 70; height: auto; max-height: 80%;
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
    """The keys, and an honest list of what this preview does not do yet."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 84; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(HELP_TEXT), id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)
