"""``controlroom checkpoints``, ``fork`` and ``stop``: time travel and stopping from the CLI.

Exit codes: ``checkpoints`` 0; ``fork`` like ``run`` (4 paused, or the new run's status with
``--resume``); ``stop`` 0 when a stop was asked of the process driving the run, 3 when
nothing drives it (it is already stopped); 2 usage errors.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from controlroom.cli.common import (
    EXIT_WAITING,
    JsonOpt,
    approver_id,
    emit_result,
    handles_errors,
    open_runner,
    out,
)
from controlroom.cli.inputs import json_option, text_option
from controlroom.cli.render import escape, escape_controls
from controlroom.errors import ConfigError

RunArg = Annotated[str, typer.Argument(metavar="RUN", help="Run id (a unique prefix works).")]
UserOpt = Annotated[
    str | None,
    typer.Option(
        "--user", "-u", help="Who does it (a directory user id); default CONTROLROOM_USER."
    ),
]


def checkpoints(run_id: RunArg, as_json: JsonOpt = False) -> None:
    """List a run's checkpoints (oldest first): what ran at each step and what comes next."""
    infos = open_runner().checkpoints(run_id)
    if as_json:
        print(json.dumps([i.model_dump(mode="json") for i in infos], indent=2))
        return
    for info in infos:
        stamp = info.created_at[:19].replace("T", " ")
        line = f"{info.checkpoint_id}  {stamp}  {info.label}"
        out.print(escape_controls(line), highlight=False, markup=False)


def _edits(set_values: list[str] | None, input_text: str | None) -> dict[str, Any]:
    edits: dict[str, Any] = {}
    if input_text is not None:
        edits["input"] = text_option(input_text, "--input")
    for item in set_values or []:
        name, sep, raw = item.partition("=")
        if not sep or not name.startswith("vars."):
            raise ConfigError(f"--set takes vars.NAME=JSON (got {item!r}).")
        value = json_option(raw, f"--set {name}", bare_text=True)  # a bare word is a string
        edits.setdefault("vars", {})[name.removeprefix("vars.")] = value
    return edits


def fork(
    run_id: RunArg,
    checkpoint: Annotated[
        str, typer.Argument(metavar="CHECKPOINT", help="Checkpoint id (a prefix works) or step:N.")
    ],
    *,
    user: UserOpt = None,
    input_text: Annotated[
        str | None, typer.Option("--input", help="Replace the run's input (the user's request).")
    ] = None,
    set_values: Annotated[
        list[str] | None,
        typer.Option("--set", help="Set a variable before the fork runs: vars.NAME=JSON (repeat)."),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model spec; default the origin's.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Carry the new run on at once.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start a new run from a past checkpoint of RUN (time travel), optionally with edits.

    The new run is linked to its origin (runs list, audit log) and starts paused unless
    --resume is given; its tool calls are gated and its approvals asked again."""
    runner = open_runner()
    state = runner.state(run_id)  # fail early on an unknown run
    edits = _edits(set_values, input_text)
    if "vars" in edits:
        edits["vars"] = {**dict(state.get("vars") or {}), **edits["vars"]}
    result = runner.fork(
        run_id, checkpoint, by=approver_id(user), edits=edits, model=model, resume=resume
    )
    emit_result(result, as_json)


def stop(run_id: RunArg, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Ask the process running RUN to pause it before its next step (`resume` continues it)."""
    runner = open_runner()
    record = runner.get_run(run_id)
    asked = runner.stop(record.run_id, by=approver_id(user))
    if as_json:
        print(json.dumps({"run_id": record.run_id, "stop_requested": asked}))
    elif asked:
        out.print(f"Asked run {escape(record.run_id)} to stop before its next step.")
    else:
        out.print(
            f"Run {escape(record.run_id)} is not running ({record.status.value}); nothing to stop.",
            highlight=False,
        )
    if not asked:
        raise typer.Exit(EXIT_WAITING)


def register(app: typer.Typer) -> None:
    """Add ``checkpoints``, ``fork`` and ``stop`` to the ``controlroom`` command."""
    app.command("checkpoints")(handles_errors(checkpoints))
    app.command("fork")(handles_errors(fork))
    app.command("stop")(handles_errors(stop))
