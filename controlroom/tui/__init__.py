"""The control room: a Textual terminal UI. Nothing outside this package imports Textual."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controlroom.graphs.control.runner import Runner


def run_app(
    runner: Runner,
    *,
    workflow: str | None = None,
    user: str | None = None,
    stream_tokens: bool = False,
) -> None:
    from controlroom.tui.app import ControlRoomApp

    ControlRoomApp(runner, workflow=workflow, user=user, stream_tokens=stream_tokens).run()
