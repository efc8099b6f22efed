"""Deciding approvals at a terminal prompt (``controlroom run --approve ask`` on a TTY)."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from controlroom.cli.inputs import json_option
from controlroom.cli.render import escape
from controlroom.errors import ControlroomError
from controlroom.graphs.control.run_result import RunResult
from controlroom.graphs.control.runner import Runner
from controlroom.graphs.storage.records import RunStatus


def decide_interactively(
    runner: Runner, result: RunResult, *, approver: str, console: Console
) -> RunResult:
    """Ask about each pending item until the run moves on or the person skips."""
    while result.status is RunStatus.WAITING and result.pending:
        item = result.pending[0]
        console.print(
            f"\n[bold]{escape(item.approval_id)}[/] {escape(item.kind)} "
            f"[bold]{escape(str(item.tool or item.step))}[/] effect={escape(item.effect or '-')}\n"
            f"  arguments: {escape(json.dumps(item.args))}\n  why: {escape(item.reason)}"
        )
        choice = typer.prompt("[a]pprove, [e]dit, [r]eject, [s]kip", default="a").strip().lower()
        try:
            if choice.startswith("a"):
                result = runner.approve(result.run_id, item.approval_id, by=approver)
            elif choice.startswith("e"):
                text = typer.prompt("arguments (JSON)", default=json.dumps(item.args))
                edited = json_option(text, "arguments")
                result = runner.approve(result.run_id, item.approval_id, by=approver, args=edited)
            elif choice.startswith("r"):
                reason = typer.prompt("reason")
                result = runner.reject(result.run_id, item.approval_id, by=approver, reason=reason)
            else:
                return result
        except ControlroomError as exc:
            console.print(f"[red]{escape(str(exc))}[/]")
    return result
