"""What the control room's screens need from the app that hosts them.

The screens (:mod:`~controlroom.tui.runs_screen`, :mod:`~controlroom.tui.run_screen`,
:mod:`~controlroom.tui.audit_screen`) depend on this interface, never on
:mod:`controlroom.tui.app`: the app implements it (structurally; :mod:`mypy` checks that
where the app is defined), and the screens reach it through :func:`host_of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, cast

from textual.message_pump import MessagePump

from controlroom.graphs.control.runner import Runner
from controlroom.graphs.storage.checkpoints import CheckpointInfo


class ControlHost(Protocol):
    """The app as its screens see it: the runner, the session's settings, and the actions
    that open other screens or execute a run (those check the signed-in user themselves)."""

    @property
    def runner(self) -> Runner:
        """The runner of the project folder (its ``settings`` name the home, the audit)."""
        ...

    @property
    def poll_seconds(self) -> float:
        """How often screens look for changes made elsewhere."""
        ...

    @property
    def paused_at(self) -> Mapping[str, str]:
        """Why each run paused, as the runner said (by run id)."""
        ...

    def show_error(self, title: str, message: str) -> None:
        """Show an error in a modal."""
        ...

    def open_run(self, run_id: str) -> None:
        """Show one run (unless it is shown already)."""
        ...

    def open_approval(self, run_id: str) -> None:
        """Open the approval panel for the run's first pending approval."""
        ...

    def step_or_resume(self, run_id: str, what: str) -> None:
        """Step (``what="step"``) or continue (``"resume"``) a run in a worker."""
        ...

    def stop_run(self, run_id: str) -> None:
        """Ask a running run to stop before its next node."""
        ...

    def fork_from(self, run_id: str, info: CheckpointInfo) -> None:
        """Ask for edits, then fork the run from a checkpoint in a worker."""
        ...


def host_of(node: MessagePump) -> ControlHost:
    """The app hosting a screen (or any widget), as a :class:`ControlHost`."""
    return cast(ControlHost, node.app)
