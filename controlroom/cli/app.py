"""The ``controlroom`` Typer app: the root command and the registration of every command.

Each command lives in a ``*_cmd.py`` module with a ``register(app)`` function; what the
commands share (consoles, errors, settings, options, exit codes) is in
:mod:`controlroom.cli.common`. See :mod:`controlroom.cli` for the exit codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from controlroom.cli import (
    audit_cmd,
    batch_cmd,
    doctor_cmd,
    documents_cmd,
    eval_cmd,
    models_cmd,
    policy_cmd,
    project_cmd,
    prompts_cmd,
    run_cmd,
    supervise_cmd,
)
from controlroom.cli.common import state

app = typer.Typer(
    name="controlroom",
    help=(
        "Run graph-defined agents for a user, supervise them, approve what they want to do.\n\n"
        "State lives in one project folder (--home, CONTROLROOM_HOME, default ./.controlroom). "
        "Exit codes: 0 completed/ok, 1 run failed, 2 usage or configuration error, "
        "3 waiting for approval, 4 paused or interrupted, 5 completed with denied, "
        "rejected or invalid tool calls."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)


@app.callback()
def _root(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            envvar="CONTROLROOM_HOME",
            help="Project folder holding runs, approvals, checkpoints and the user directory.",
            show_default="./.controlroom",
        ),
    ] = None,
) -> None:
    state.home = home


# The order of registration is the order of `controlroom --help`.
project_cmd.register(app)  # `init`, `users`
run_cmd.register(app)  # `run`, `runs`, `show`, `approvals`, `approve`, `reject`, `resume`, ...
policy_cmd.register(app)  # `policy`, `tools`, `pack`
audit_cmd.register(app)  # `audit show|verify|export`, `replay`
documents_cmd.register(app)  # `ingest`, `search`, `documents`
supervise_cmd.register(app)  # `checkpoints`, `fork`, `stop`
batch_cmd.register(app)  # `batch`, `batches`
eval_cmd.register(app)  # `eval`, `eval compare`
prompts_cmd.register(app)  # `prompts list|diff`
models_cmd.register(app)  # `models`
doctor_cmd.register(app)  # `doctor`


def main() -> None:
    app()
