"""``controlroom doctor``: check the project folder's stores, key, audit logs and permissions.

Exit codes: 0 healthy (notes may be printed), 1 problems found (each says what to do),
2 usage error (a bad option, no project folder). ``--json`` prints the whole report;
``--orphans`` also lists the runs known only from their audit logs (run id, workflow, user,
start time and last status, read from each log's ``run.start`` and last stop record).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from controlroom.cli.common import JsonOpt, handles_errors, load_settings, out
from controlroom.cli.render import escape, escape_controls
from controlroom.graphs.control.doctor import DoctorReport, diagnose

OrphansOpt = Annotated[
    bool,
    typer.Option(
        "--orphans",
        help="Also list the runs that have an audit log but are not in the store, from their logs.",
    ),
]
_MARK = {"problem": "[bold red]PROBLEM[/]", "note": "[yellow]note   [/]"}


def doctor(orphans: OrphansOpt = False, as_json: JsonOpt = False) -> None:
    """Check the project folder: stores, schema versions, audit key and logs, runs, permissions."""
    report = diagnose(load_settings(), orphans=orphans)
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        _print(report, orphans)
    raise typer.Exit(0 if report.healthy else 1)


def _print(report: DoctorReport, orphans: bool) -> None:
    say = out.print
    say(f"controlroom doctor: {escape(str(report.home))} ({report.backend})", highlight=False)
    for check in report.checks:
        say(f"  [green]ok[/]       {check.area:<12} {escape(check.summary)}", highlight=False)
    for finding in report.findings:
        say(
            f"  {_MARK[finding.severity]}  {finding.area:<12} {escape(finding.summary)}",
            highlight=False,
        )
        if finding.fix:
            say(f"  {'':<8} {'':<12} [dim]->[/] {escape(finding.fix)}", highlight=False)
    if orphans:
        _print_orphans(report)
    problems = len(report.problems)
    took = f"({report.seconds:.1f} s)"
    if problems:
        say(f"[bold red]{problems} problem(s) found[/] {took}.", highlight=False)
    else:
        say(f"[green]Healthy[/]: no problems found {took}.", highlight=False)


def _print_orphans(report: DoctorReport) -> None:
    runs = report.orphan_details
    if report.store_runs is None:
        title = f"Runs known from their audit logs ({len(runs)}; the store could not be read):"
    else:
        title = f"Runs with an audit log that the store does not list ({len(runs)}):"
    out.print(title, highlight=False)
    if not runs:
        out.print("  none", highlight=False)
        return
    out.print(f"  {'run':<14} {'workflow':<22} {'user':<12} {'started':<24} last status")
    for run in runs:
        line = (
            f"  {run.run_id:<14} {run.workflow or '?':<22} {run.user or '?':<12} "
            f"{run.started_at or '?':<24} {run.status}"
        )
        out.print(
            escape_controls(line),
            highlight=False,
            markup=False,
        )


def register(app: typer.Typer) -> None:
    """Add ``doctor`` to the ``controlroom`` command."""
    app.command("doctor")(handles_errors(doctor))
