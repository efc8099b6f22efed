"""``controlroom run`` and the commands that follow runs: ``runs``, ``show``, ``approvals``,
``approve``, ``reject``, ``resume``, ``step`` and ``tui``.

Exit codes: see :mod:`controlroom.cli`.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from controlroom.cli.common import (
    ApproverOpt,
    JsonOpt,
    approver_id,
    emit_result,
    err,
    handles_errors,
    load_settings,
    open_runner,
    out,
    parse_args_json,
)
from controlroom.cli.inputs import text_option
from controlroom.cli.render import escape
from controlroom.graphs.control.run_result import RunResult
from controlroom.graphs.storage.records import RunStatus


class ApproveChoice(StrEnum):
    """The --approve choices (the SDK's ApproveMode, as Typer wants an enum)."""

    ask = "ask"
    all = "all"
    none = "none"


def run(
    workflow: Annotated[str, typer.Argument(help="Workflow YAML file, folder, or module:attr.")],
    user: Annotated[str, typer.Option("--user", "-u", help="Directory user the run acts for.")],
    input: Annotated[str, typer.Option("--input", "-i", help="The request, as the user types it.")],
    model: Annotated[
        str | None, typer.Option(help="Model spec, e.g. scripted:PATH; default the workflow's.")
    ] = None,
    approve: Annotated[
        ApproveChoice,
        typer.Option(
            help="ask: stop for a person (prompts on a terminal, else exits 3); "
            "all: approve every gated call; none: reject them."
        ),
    ] = ApproveChoice.ask,
    step: Annotated[bool, typer.Option(help="Run one step, then pause (exit 4).")] = False,
    prompt: Annotated[
        list[str] | None,
        typer.Option(help="Use this library prompt version: ID@VERSION (repeatable)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a run of WORKFLOW for a user with an input."""
    input = text_option(input, "--input")  # undecodable bytes are refused, never stored
    runner = open_runner()
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
        and approve is ApproveChoice.ask
        and not as_json
        and sys.stdin.isatty()
        and sys.stdout.isatty()
    ):
        from controlroom.cli.interactive import decide_interactively

        result = decide_interactively(
            runner, result, approver=load_settings().user or user, console=out
        )
    emit_result(result, as_json)


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
    runner = open_runner()
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


def show(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="Run id (a unique prefix works).")],
    as_json: JsonOpt = False,
) -> None:
    """Show one run: status, conversation, reasoning, pending approvals."""
    runner = open_runner()
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


def approvals(
    run_id: Annotated[
        str | None, typer.Argument(metavar="[RUN]", help="Only this run's items.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List pending approvals (tool calls and checkpoints waiting for a person)."""
    items = open_runner().approvals(run_id)
    if as_json:
        print(json.dumps([a.model_dump(mode="json") for a in items], indent=2))
        return
    from controlroom.cli.render import approvals_table

    out.print(approvals_table(items))


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
    result = open_runner().approve(
        run_id,
        approval_id,
        by=approver_id(user),
        args=parse_args_json(args),
        reason=text_option(reason, "--reason") if reason is not None else None,
        resume=not no_resume,
    )
    emit_result(result, as_json)


def reject(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    approval_id: Annotated[str, typer.Argument(metavar="CALL")],
    reason: Annotated[str, typer.Option(help="Why; the agent is told.")],
    user: ApproverOpt = None,
    no_resume: Annotated[bool, typer.Option("--no-resume")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Reject a pending item with a reason; the agent receives the reason."""
    result = open_runner().reject(
        run_id,
        approval_id,
        by=approver_id(user),
        reason=text_option(reason, "--reason"),
        resume=not no_resume,
    )
    emit_result(result, as_json)


def resume(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    allow_changed: Annotated[
        bool, typer.Option(help="Continue even if the workflow changed since the run started.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Continue a run from its last checkpoint (after approvals, a pause, a crash or a failure)."""
    emit_result(open_runner().resume(run_id, allow_changed=allow_changed), as_json)


def step(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    as_json: JsonOpt = False,
) -> None:
    """Run one more step of a run, then pause."""
    emit_result(open_runner().step(run_id), as_json)


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

    run_app(
        open_runner(), workflow=workflow, user=user or load_settings().user, stream_tokens=stream
    )


def register(app: typer.Typer) -> None:
    """Add ``run``, ``runs``, ``show``, ``approvals``, ``approve``, ``reject``, ``resume``,
    ``step`` and ``tui`` to the ``controlroom`` command."""
    app.command("run")(handles_errors(run))
    app.command("runs")(handles_errors(runs))
    app.command("show")(handles_errors(show))
    app.command("approvals")(handles_errors(approvals))
    app.command("approve")(handles_errors(approve))
    app.command("reject")(handles_errors(reject))
    app.command("resume")(handles_errors(resume))
    app.command("step")(handles_errors(step))
    app.command("tui")(handles_errors(tui))
