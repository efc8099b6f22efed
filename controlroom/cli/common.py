"""What every ``controlroom`` command shares: exit codes, consoles, error printing,
settings and the runner, shared options and argument parsing.

This is an internal module of :mod:`controlroom.cli`, not a public API: its names carry no
leading underscore only so that the command modules (``*_cmd.py``) can import them. The
dependencies point one way: :mod:`controlroom.cli.app` imports the command modules to
register them, the command modules import this module, and neither this module nor a
command module ever imports :mod:`controlroom.cli.app`.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from controlroom.cli.inputs import json_option
from controlroom.cli.render import TerminalConsole, escape, escape_controls
from controlroom.config import Settings
from controlroom.errors import ConfigError, ControlroomError
from controlroom.graphs.control.run_result import RunResult
from controlroom.graphs.control.runner import Runner
from controlroom.graphs.storage.records import RunStatus
from controlroom.tools.policy import project_gate

__all__ = [
    "EXIT_FAILED",
    "EXIT_FOR_STATUS",
    "EXIT_OK",
    "EXIT_PAUSED",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "EXIT_WAITING",
    "ApproverOpt",
    "CliState",
    "JsonOpt",
    "approver_id",
    "emit_result",
    "err",
    "fail",
    "handles_errors",
    "load_settings",
    "open_runner",
    "out",
    "parse_args_json",
    "run_exit_code",
    "state",
]

# -- exit codes (documented in controlroom.cli) ------------------------------------------

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_WAITING, EXIT_PAUSED = 0, 1, 2, 3, 4
EXIT_REFUSED = 5  # completed, with refused (denied, rejected, invalid) calls: none is hidden
EXIT_FOR_STATUS = {
    RunStatus.COMPLETED: EXIT_OK,
    RunStatus.FAILED: EXIT_FAILED,
    RunStatus.WAITING: EXIT_WAITING,
    RunStatus.PAUSED: EXIT_PAUSED,
    RunStatus.INTERRUPTED: EXIT_PAUSED,
    RunStatus.RUNNING: EXIT_PAUSED,
    RunStatus.QUEUED: EXIT_PAUSED,
}


def run_exit_code(result: RunResult) -> int:
    """The documented exit code of a run's outcome (see :mod:`controlroom.cli`)."""
    if result.status is RunStatus.COMPLETED and result.run.refused_calls:
        return EXIT_REFUSED
    return EXIT_FOR_STATUS[result.status]


# -- consoles ----------------------------------------------------------------------------

# Piped output is not cut to 80 columns: scripts and logs get whole lines. Control
# characters in anything they print are shown escaped (controlroom.cli.render).
out = TerminalConsole(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = TerminalConsole(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 160)

# -- shared options ----------------------------------------------------------------------

JsonOpt = Annotated[bool, typer.Option("--json", help="Print stable JSON for scripts.")]
ApproverOpt = Annotated[
    str | None,
    typer.Option(
        "--user",
        "-u",
        help="Who decides (a directory user id); default CONTROLROOM_USER.",
        show_default=False,
    ),
]

# -- errors ------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def fail(title: str, message: str, as_json: bool, *, plain: bool = False) -> NoReturn:
    """Print an error (a JSON object on stdout with ``as_json``, else one line on stderr)
    and exit with :data:`EXIT_USAGE`.

    ``plain`` prints ``title: message`` without Rich (the ``audit`` and ``replay``
    commands). Either way control characters are shown escaped (``\\x1b``, ``\\u202e``:
    see :func:`controlroom.cli.render.escape_controls`), never written to the terminal."""
    if as_json:
        print(json.dumps({"error": {"title": title, "message": message}}))
    elif plain:
        typer.echo(escape_controls(f"{title}: {message}"), err=True)
    else:
        err.print(f"[bold red]{escape(title)}:[/] {escape(message)}", highlight=False)
    raise typer.Exit(EXIT_USAGE)


def handles_errors(func: F) -> F:
    """Turn controlroom errors into a one-paragraph message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ControlroomError as exc:
            fail(exc.title, exc.message, bool(kwargs.get("as_json")))

    return wrapper  # type: ignore[return-value]


# -- settings and the runner -------------------------------------------------------------


class CliState:
    """What the root command's options set for the subcommand that runs after it."""

    home: Path | None = None


state = CliState()  # set by the root callback in controlroom.cli.app (--home)


def load_settings() -> Settings:
    """The settings of this invocation: the environment, with ``--home`` applied."""
    settings = Settings()
    if state.home is not None:
        settings = settings.model_copy(update={"home": state.home})
    return settings


def open_runner() -> Runner:
    """The runner every command uses, gated by the project's policies."""
    settings = load_settings()
    # <home>/policies, when present, decides the tool calls of workflows without their own
    return Runner(settings, gate=project_gate(settings.home))


def approver_id(user: str | None) -> str:
    """Who decides: ``--user``, else CONTROLROOM_USER; a :class:`ConfigError` if neither."""
    chosen = user or load_settings().user
    if not chosen:
        raise ConfigError(
            "Say who decides: pass --user ID (a user from the directory) or set CONTROLROOM_USER."
        )
    return chosen


# -- arguments and results ---------------------------------------------------------------


def parse_args_json(text: str | None) -> dict[str, Any] | None:
    """The tool arguments of an ``--args`` option: a JSON object (None when not given)."""
    if text is None:
        return None
    value = json_option(text, "--args")  # bad JSON, huge numbers, deep nesting: ConfigError
    if not isinstance(value, dict):
        raise ConfigError("--args must be a JSON object of argument names to values.")
    return value


def emit_result(result: RunResult, as_json: bool) -> NoReturn:
    """Print a run's outcome (JSON, or the result and its refusals) and exit with its code."""
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        from controlroom.cli.render import print_refusals, print_result

        print_result(out, result)
        print_refusals(out, result.refused)
    raise typer.Exit(run_exit_code(result))
