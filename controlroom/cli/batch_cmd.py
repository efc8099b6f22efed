"""``controlroom batch`` (many runs on Ray) and ``controlroom batches`` (list them)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from controlroom.batch import (
    BatchOptions,
    BatchProgress,
    BatchReport,
    create_batch,
    default_report_path,
    read_inputs,
    run_batch,
    write_report,
)
from controlroom.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PAUSED,
    EXIT_WAITING,
    JsonOpt,
    err,
    handles_errors,
    load_settings,
    open_runner,
    out,
)
from controlroom.cli.render import escape, escape_controls
from controlroom.errors import ConfigError

EXIT_UNFINISHED = EXIT_PAUSED  # some runs did not finish (--timeout, a lost worker)


def exit_code(report: BatchReport) -> int:
    """0 all completed, 1 some failed, 3 some wait for a person, 4 some did not finish."""
    statuses = {r.status for r in report.runs}
    if statuses & {"failed", "error"}:
        return EXIT_FAILED
    if "waiting" in statuses:
        return EXIT_WAITING
    if statuses - {"completed"}:
        return EXIT_UNFINISHED
    return EXIT_OK


class _Display:
    """A rich progress bar on a terminal; a line every few seconds otherwise."""

    def __init__(self, console: Console, total: int, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled
        self.live = enabled and console.is_terminal
        self.last_line = 0.0
        self.last_text = ""
        self.progress: Progress | None = None
        if self.live:
            self.progress = Progress(
                TextColumn("[bold]batch[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
            self.task = self.progress.add_task("", total=total)

    @staticmethod
    def _text(p: BatchProgress) -> str:
        return (
            f"completed {p.completed} · failed {p.failed} · in flight {p.running} · "
            f"waiting for approval {p.waiting} · other {p.other} · {p.rate:.1f} runs/s"
        )

    def __call__(self, p: BatchProgress) -> None:
        if not self.enabled:
            return
        text = self._text(p)
        if self.progress is not None:
            self.progress.update(self.task, completed=p.done, description=text)
            return
        now = time.monotonic()
        line = f"{p.done}/{p.total} · {text}"
        if now - self.last_line >= 5:
            self.console.print(line, highlight=False)
            self.last_line = now
            line = ""
        self.last_text = line

    def __enter__(self) -> _Display:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
        elif self.enabled and self.last_text:
            self.console.print(f"… {self.last_text}", highlight=False)


def print_summary(console: Console, report: BatchReport) -> None:
    counts = " · ".join(f"{k} {v}" for k, v in report.counts.items())
    state = "finished" if report.finished else "timed out" if report.timed_out else "stopped"
    console.print(
        f"Batch [bold]{escape(report.batch_id)}[/] ({escape(report.workflow)}, "
        f"{len(report.runs)} runs, for {escape(report.user_id)}): {state} in "
        f"{report.elapsed_s:.1f}s, {report.runs_per_s:.2f} runs/s",
        highlight=False,
    )
    console.print(f"  {counts}", highlight=False)
    console.print(f"  state: {report.backend}; Ray: {report.ray}", highlight=False)
    attention = [r for r in report.runs if r.status != "completed"]
    if attention:
        table = Table(title=f"{len(attention)} run(s) need attention", title_justify="left")
        for column in ("#", "run", "status", "pending", "detail"):
            table.add_column(column)
        for r in attention[:15]:
            detail = (r.error or r.input).splitlines()[0][:80] if (r.error or r.input) else ""
            cells = (r.run_id, r.status, " ".join(r.pending), detail)
            table.add_row(str(r.position), *(escape(c) for c in cells))
        console.print(table)
        if len(attention) > 15:
            console.print(f"  … and {len(attention) - 15} more (see the report)")
    if report.report_path:
        shown = escape_controls(f"Report: {report.report_path}")
        console.print(shown, markup=False, highlight=False)
    if report.next_steps:
        console.print("To continue:")
        for line in report.next_steps:
            console.print(f"  {escape_controls(line)}", markup=False, highlight=False)


def batch(
    workflow: Annotated[
        str | None, typer.Argument(help="Workflow YAML file, folder, or module:attr.")
    ] = None,
    inputs: Annotated[
        Path | None,
        typer.Argument(
            help='JSON Lines: one input per line, a string or {"input", "user", "model"}.'
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", help="Directory user the runs act for (per input: user)."),
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            envvar="CONTROLROOM_RAY_ADDRESS",
            help="Ray cluster address (HOST:6379). Default: a local Ray instance.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            help="Runs executed at once on the local Ray instance (its CPUs).",
            show_default="the CPU count",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model spec for every run; default the workflow's.")
    ] = None,
    approve: Annotated[
        str,
        typer.Option(
            help="ask: runs stop for a person; all: approve every gated call; none: reject."
        ),
    ] = "ask",
    timeout: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="Stop after this many seconds; running runs are interrupted (nothing done "
            "is lost) and `batch --resume` carries on.",
        ),
    ] = None,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            help="Return (exit 3) once only runs waiting for approval remain, instead of "
            "waiting for people to decide; `batch --resume` finishes them later.",
        ),
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="BATCH",
            help="Continue an earlier batch (id or unique prefix) instead of starting one.",
            show_default=False,
        ),
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option(help="With --resume: run failed runs again too.")
    ] = False,
    report_path: Annotated[
        Path | None,
        typer.Option("--report", help="Where to write the JSON report.", show_default=False),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run WORKFLOW once per line of INPUTS, as Ray tasks; approvals free the worker.

    Every input becomes a durable run first.
    Runs that stop for approval wait without holding a worker: approve them from any process
    (`controlroom approve RUN ID --no-resume`, the TUI) and a free worker carries them on.

    Exit codes: 0 all completed, 1 some failed, 3 some wait for approval, 4 some unfinished
    (`--timeout`, a lost worker); `controlroom batch --resume BATCH` continues a batch.
    """
    if ray and workers:
        raise ConfigError(
            "--workers sizes the local Ray instance; with --ray the cluster's CPUs decide. "
            "Pass one of them."
        )
    if approve not in ("ask", "all", "none"):
        raise ConfigError(f"--approve must be ask, all or none, not '{approve}'.")
    if resume and (workflow or inputs):
        raise ConfigError(
            "--resume continues a recorded batch: give its id only, no WORKFLOW or INPUTS."
        )
    if not resume and (workflow is None or inputs is None):
        raise ConfigError(
            "Give a WORKFLOW and an INPUTS file (or --resume BATCH). "
            "`controlroom batch --help` shows the format."
        )
    chosen = user or load_settings().user
    if not resume and not chosen:
        raise ConfigError("Say who the runs act for: --user ID or CONTROLROOM_USER.")
    options = BatchOptions(
        workers=workers or os.cpu_count() or 2,
        ray_address=ray,
        timeout=timeout,
        wait_for_approvals=not no_wait,
        retry_failed=retry_failed,
    )
    runner = open_runner()
    try:
        if resume:
            record, items = runner.store.get_batch(resume)
        else:
            assert workflow is not None
            assert inputs is not None
            assert chosen
            parsed = read_inputs(inputs)
            record, items = create_batch(
                runner,
                workflow,
                parsed,
                user=chosen,
                model=model,
                approve=approve,  # type: ignore[arg-type]
            )
        if ray and runner.backend.kind == "sqlite":
            err.print(
                f"[yellow]Note:[/] state is in SQLite files in "
                f"{escape(str(runner.settings.home))}; Ray "
                "workers on other machines cannot share them. Set CONTROLROOM_DATABASE_URL "
                "(see docs/deploying.md).",
                highlight=False,
            )
        if not as_json:
            err.print(
                escape_controls(
                    f"Batch {record.batch_id}: {len(items)} runs of {record.workflow} "
                    f"({runner.backend.describe()})."
                ),
                markup=False,
                highlight=False,
            )
        with _Display(err, len(items), enabled=not as_json or sys.stderr.isatty()) as display:
            report = run_batch(runner, record, items, options, on_progress=display)
        write_report(report, report_path or default_report_path(runner, record.batch_id))
    finally:
        runner.close()
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        print_summary(out, report)
    raise typer.Exit(exit_code(report))


def batches(as_json: JsonOpt = False) -> None:
    """List recorded batches, newest first."""
    runner = open_runner()
    try:
        records = runner.store.list_batches()
    finally:
        runner.close()
    if as_json:
        print(json.dumps([b.model_dump(mode="json") for b in records], indent=2))
        return
    table = Table(title=f"{len(records)} batch(es)", title_justify="left")
    for column in ("batch", "workflow", "runs", "user", "created"):
        table.add_column(column)
    for b in records:
        table.add_row(
            *(escape(c) for c in (b.batch_id, b.workflow, str(b.size), b.user_id)), b.created_at
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command(name="batch")(handles_errors(batch))
    app.command(name="batches")(handles_errors(batches))
