"""Typer commands for ``controlroom``; see :mod:`controlroom.cli` for exit codes."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from controlroom.cli.inputs import json_option, text_option
from controlroom.cli.render import escape
from controlroom.config import Settings
from controlroom.errors import ConfigError, ControlroomError
from controlroom.graphs.control.run_result import RunResult
from controlroom.graphs.control.runner import Runner
from controlroom.graphs.storage.run_store import RunStatus
from controlroom.tools.policy import project_gate

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

# Piped output is not cut to 80 columns: scripts and logs get whole lines.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 160)


class ApproveMode(StrEnum):
    ask = "ask"
    all = "all"
    none = "none"


class _State:
    home: Path | None = None


_state = _State()

F = TypeVar("F", bound=Callable[..., Any])

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


def _fail(title: str, message: str, as_json: bool) -> NoReturn:
    if as_json:
        print(json.dumps({"error": {"title": title, "message": message}}))
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
            _fail(exc.title, exc.message, bool(kwargs.get("as_json")))

    return wrapper  # type: ignore[return-value]


def _settings() -> Settings:
    settings = Settings()
    if _state.home is not None:
        settings = settings.model_copy(update={"home": _state.home})
    return settings


def _runner() -> Runner:
    settings = _settings()
    # <home>/policies, when present, decides the tool calls of workflows without their own
    return Runner(settings, gate=project_gate(settings.home))


def _approver(user: str | None) -> str:
    chosen = user or _settings().user
    if not chosen:
        raise ConfigError(
            "Say who decides: pass --user ID (a user from the directory) or set CONTROLROOM_USER."
        )
    return chosen


def exit_code(result: RunResult) -> int:
    """The documented exit code of a run's outcome (see :mod:`controlroom.cli`)."""
    if result.status is RunStatus.COMPLETED and result.run.refused_calls:
        return EXIT_REFUSED
    return EXIT_FOR_STATUS[result.status]


def _emit(result: RunResult, as_json: bool) -> NoReturn:
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        from controlroom.cli.render import print_refusals, print_result

        print_result(out, result)
        print_refusals(out, result.refused)
    raise typer.Exit(exit_code(result))


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
    _state.home = home


@app.command()
@handles_errors
def init(
    force: Annotated[bool, typer.Option(help="Overwrite an existing directory file.")] = False,
) -> None:
    """Create the project folder with a sample user directory (alice, bob, carol, ...).

    The folder is created owner-only (0700) and the directory file 0600, whatever the umask;
    an existing folder that other accounts can reach is warned about, with the fix."""
    from controlroom.config import ensure_home, write_private

    settings = _settings()
    ensure_home(settings.home)
    target = settings.directory_path
    if target.exists() and not force:
        out.print(f"{target} already exists; kept it (use --force to replace it).")
        return
    sample = resources.files("controlroom") / "data" / "sample_directory.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    write_private(target, sample.read_bytes())
    out.print(f"Created {settings.home} with a sample user directory at {target}.")


@app.command()
@handles_errors
def users(as_json: JsonOpt = False) -> None:
    """List the users of the directory that runs can act for."""
    directory = _runner().directory
    people = [p.model_dump(mode="json") for p in directory.values()]
    if as_json:
        print(json.dumps(people, indent=2))
        return
    for p in directory.values():
        out.print(f"{p.id:<12} {p.display_name:<20} roles: {', '.join(p.roles)}")


@app.command()
@handles_errors
def run(
    workflow: Annotated[str, typer.Argument(help="Workflow YAML file, folder, or module:attr.")],
    user: Annotated[str, typer.Option("--user", "-u", help="Directory user the run acts for.")],
    input: Annotated[str, typer.Option("--input", "-i", help="The request, as the user types it.")],
    model: Annotated[
        str | None, typer.Option(help="Model spec, e.g. scripted:PATH; default the workflow's.")
    ] = None,
    approve: Annotated[
        ApproveMode,
        typer.Option(
            help="ask: stop for a person (prompts on a terminal, else exits 3); "
            "all: approve every gated call; none: reject them."
        ),
    ] = ApproveMode.ask,
    step: Annotated[bool, typer.Option(help="Run one step, then pause (exit 4).")] = False,
    prompt: Annotated[
        list[str] | None,
        typer.Option(help="Use this library prompt version: ID@VERSION (repeatable)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a run of WORKFLOW for a user with an input."""
    input = text_option(input, "--input")  # undecodable bytes are refused, never stored
    runner = _runner()
    target: Any = workflow
    if prompt:
        from controlroom.agents.prompt_library import parse_overrides
        from controlroom.graphs.authoring.workflow import load_workflow

        target = load_workflow(workflow, prompt_versions=parse_overrides(prompt))
    result = runner.start(
        target, user=user, input=input, model=model, approve=approve.value, step=step
    )
    if (
        result.status is RunStatus.WAITING
        and approve is ApproveMode.ask
        and not as_json
        and sys.stdin.isatty()
        and sys.stdout.isatty()
    ):
        from controlroom.cli.interactive import decide_interactively

        result = decide_interactively(
            runner, result, approver=_settings().user or user, console=out
        )
    _emit(result, as_json)


@app.command()
@handles_errors
def runs(
    status: Annotated[
        RunStatus | None, typer.Option(help="Only runs with this status.", case_sensitive=False)
    ] = None,
    limit: Annotated[
        int, typer.Option(min=0, help="Show at most this many runs; 0 shows them all.")
    ] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many (newest) runs first.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """List the runs of the project folder, newest first, a page at a time.

    Filtering and paging happen in the store, so an old run waiting for approval is listed
    however many runs came after it. With --json, a list of run records (each with
    `pending_approvals`, `denied_calls` and `rejected_calls`)."""
    runner = _runner()
    records = runner.list_runs(status=status, limit=limit or None, offset=offset)
    paged = bool(offset) or (limit > 0 and len(records) >= limit)
    total = runner.count_runs(status) if paged else None
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
        if total is not None and offset + len(records) < total:  # never inside the JSON
            err.print(
                f"{len(records)} of {total} run(s) listed; --offset {offset + len(records)} "
                "for the next page, --limit 0 for all.",
                highlight=False,
            )
        return
    from controlroom.cli.render import runs_table

    out.print(runs_table(records, total=total, offset=offset, status=status))


@app.command()
@handles_errors
def show(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="Run id (a unique prefix works).")],
    as_json: JsonOpt = False,
) -> None:
    """Show one run: status, conversation, reasoning, pending approvals."""
    runner = _runner()
    record = runner.get_run(run_id)
    state = runner.state(record.run_id)
    messages = list(state.get("messages") or [])
    reasoning = dict(state.get("reasoning") or {})
    pending = runner.approvals(record.run_id)
    refused = runner.refusals(record.run_id)
    if as_json:
        payload = {
            "run": record.model_dump(mode="json"),
            "pending": [a.model_dump(mode="json") for a in pending],
            "refused": [r.model_dump(mode="json") for r in refused],
            "messages": [m.model_dump(mode="json") for m in messages],
            "vars": state.get("vars") or {},
            "reasoning": reasoning,
        }
        print(json.dumps(payload, indent=2, default=str))
        return
    from controlroom.cli.render import print_refusals, print_result, timeline

    out.print(timeline(messages))
    for step_id, text in reasoning.items():  # for supervisors; not shown to the end user
        out.print(f"[bold]reasoning of {escape(step_id)}:[/] {escape(str(text))}", highlight=False)
    print_result(out, RunResult(run=record, pending=pending, refused=refused))
    print_refusals(out, refused)


@app.command()
@handles_errors
def approvals(
    run_id: Annotated[
        str | None, typer.Argument(metavar="[RUN]", help="Only this run's items.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List pending approvals (tool calls and checkpoints waiting for a person)."""
    items = _runner().approvals(run_id)
    if as_json:
        print(json.dumps([a.model_dump(mode="json") for a in items], indent=2))
        return
    from controlroom.cli.render import approvals_table

    out.print(approvals_table(items))


def _parse_args(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value = json_option(text, "--args")  # bad JSON, huge numbers, deep nesting: ConfigError
    if not isinstance(value, dict):
        raise ConfigError("--args must be a JSON object of argument names to values.")
    return value


@app.command()
@handles_errors
def approve(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    approval_id: Annotated[str, typer.Argument(metavar="CALL", help="Approval id, e.g. a3-1.")],
    args: Annotated[
        str | None,
        typer.Option(help="Edited arguments as a JSON object; validated and re-checked."),
    ] = None,
    user: ApproverOpt = None,
    reason: Annotated[str | None, typer.Option(help="Why (recorded).")] = None,
    no_resume: Annotated[
        bool, typer.Option("--no-resume", help="Record the decision only; don't continue.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Approve a pending item; the run continues here once nothing else is pending."""
    result = _runner().approve(
        run_id,
        approval_id,
        by=_approver(user),
        args=_parse_args(args),
        reason=text_option(reason, "--reason") if reason is not None else None,
        resume=not no_resume,
    )
    _emit(result, as_json)


@app.command()
@handles_errors
def reject(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    approval_id: Annotated[str, typer.Argument(metavar="CALL")],
    reason: Annotated[str, typer.Option(help="Why; the agent is told.")],
    user: ApproverOpt = None,
    no_resume: Annotated[bool, typer.Option("--no-resume")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Reject a pending item with a reason; the agent receives the reason."""
    result = _runner().reject(
        run_id,
        approval_id,
        by=_approver(user),
        reason=text_option(reason, "--reason"),
        resume=not no_resume,
    )
    _emit(result, as_json)


@app.command()
@handles_errors
def resume(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    allow_changed: Annotated[
        bool, typer.Option(help="Continue even if the workflow changed since the run started.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Continue a run from its last checkpoint (after approvals, a pause, a crash or a failure)."""
    _emit(_runner().resume(run_id, allow_changed=allow_changed), as_json)


@app.command()
@handles_errors
def step(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    as_json: JsonOpt = False,
) -> None:
    """Run one more step of a run, then pause."""
    _emit(_runner().step(run_id), as_json)


@app.command()
@handles_errors
def tui(
    workflow: Annotated[str | None, typer.Argument(help="Workflow to start runs of.")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="Signed-in user.")] = None,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="Stream model output live (models then run in streaming mode; the embedded "
            "model's audit records lose token counts).",
        ),
    ] = False,
) -> None:
    """Open the control room: runs, step-through, approvals, time travel, audit (terminal UI)."""
    from controlroom.tui import run_app

    run_app(_runner(), workflow=workflow, user=user or _settings().user, stream_tokens=stream)


from controlroom.cli.policy_cmd import register as _register_policy_commands  # noqa: E402

_register_policy_commands(app)  # `policy`, `tools`, `pack`

from controlroom.cli.audit_cmd import register as _register_audit_commands  # noqa: E402

_register_audit_commands(app)  # `audit show|verify|export`, `replay`

from controlroom.cli.documents_cmd import register as _register_document_commands  # noqa: E402

_register_document_commands(app)  # `ingest`, `search`, `documents`

from controlroom.cli.supervise_cmd import register as _register_supervise_commands  # noqa: E402

_register_supervise_commands(app)  # `checkpoints`, `fork`, `stop`

from controlroom.cli.batch_cmd import register as _register_batch_commands  # noqa: E402

_register_batch_commands(app)  # `batch`, `batches`

from controlroom.cli.eval_cmd import register as _register_eval_commands  # noqa: E402
from controlroom.cli.prompts_cmd import register as _register_prompt_commands  # noqa: E402

_register_eval_commands(app)  # `eval`, `eval compare`
_register_prompt_commands(app)  # `prompts list|diff`

from controlroom.cli.models_cmd import models as _models_command  # noqa: E402

app.command(name="models")(handles_errors(_models_command))

from controlroom.cli.doctor_cmd import register as _register_doctor_commands  # noqa: E402

_register_doctor_commands(app)  # `doctor`


def main() -> None:
    app()
