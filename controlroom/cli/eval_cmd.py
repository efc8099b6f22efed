"""``controlroom eval`` (run a dataset, score it) and ``controlroom eval compare A B``.

Exit codes: 0 the eval ran (failed cases included), 1 it found policy violations,
2 a usage or configuration error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from controlroom.agents.prompt_library import parse_overrides
from controlroom.cli.common import EXIT_OK, JsonOpt, err, handles_errors, out
from controlroom.cli.render import escape, escape_controls
from controlroom.errors import ConfigError
from controlroom.evaluation import (
    CaseResult,
    Comparison,
    EvalOptions,
    EvalReport,
    compare,
    resolve_target,
    run_eval,
)

EXIT_VIOLATIONS = 1  # the eval found policy violations


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _secs(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}s"


def _first_failure(case: CaseResult) -> str:
    failed = case.failed
    if not failed:
        return ""
    first = failed[0]
    text = f"{first.name}: {first.detail}" if first.detail else first.name
    more = f" (+{len(failed) - 1})" if len(failed) > 1 else ""
    return (text[:90] + "…" if len(text) > 90 else text) + more


def print_report(console: Console, report: EvalReport) -> None:
    table = Table(
        title=escape(f"{report.name}: {report.model}")
        + (
            f" · prompts {', '.join(sorted(set(report.prompts.values())))}"
            if report.prompts
            else ""
        ),
        title_justify="left",
    )
    for column in ("case", "tags", "ok", "status", "failed check", "latency", "tokens"):
        table.add_column(column, justify="right" if column in ("latency", "tokens") else "left")
    for c in report.cases:
        ok = Text("✓", style="green") if c.success else Text("✗", style="bold red")
        failure = _first_failure(c)
        if c.violations:
            failure = f"VIOLATION {c.violations[0].kind}; {failure}".rstrip("; ")
        table.add_row(
            escape(c.id),
            escape(", ".join(c.tags)),
            ok,
            escape(c.status),
            escape(failure),
            f"{c.latency_s:.2f}s",
            str(c.tokens),
        )
    console.print(table)
    t = report.totals
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_column(style="bold")
    summary.add_column()
    rows = [
        ("success rate", f"{_pct(t.success_rate)} ({t.succeeded}/{t.cases})"),
        ("citation validity", f"{_pct(t.citation_validity)} ({t.citation_cases} answered)"),
        ("abstention accuracy", f"{_pct(t.abstention_accuracy)} ({t.abstention_cases} cases)"),
        (
            "abstention on unanswerable",
            f"{_pct(t.unanswerable_abstention_rate)} ({t.unanswerable_cases} cases)",
        ),
        (
            "grounded-claim share",
            f"{_pct(t.grounded_claim_share)} ({t.answered_cases} answered; lexical proxy)",
        ),
        ("policy violations", f"[{'bold red' if t.violations else 'green'}]{t.violations}[/]"),
        ("approvals requested", str(t.approvals_requested)),
        ("latency p50 / p95", f"{_secs(t.latency_p50_s)} / {_secs(t.latency_p95_s)}"),
        (
            "tokens",
            f"{t.tokens} ({t.input_tokens} in, {t.output_tokens} out, {t.model_calls} calls)",
        ),
        ("cases that could not run", str(t.errors)),
    ]
    for name, value in rows:
        summary.add_row(name, value)
    console.print(summary)
    if t.violations:
        console.print("[bold red]Policy violations:[/]")
        for c in report.cases:
            for v in c.violations:
                line = f"  {c.id}: {v.kind}: {v.detail}"
                console.print(escape_controls(line), markup=False, highlight=False)


def print_comparison(console: Console, diff: Comparison) -> None:
    console.print(
        escape_controls(
            f"A: {diff.a['name']} · {diff.a['model']} · "
            f"{diff.a['prompts'] or 'no library prompts'}\n"
            f"B: {diff.b['name']} · {diff.b['model']} · {diff.b['prompts'] or 'no library prompts'}"
        ),
        markup=False,
        highlight=False,
    )
    if diff.a["dataset_sha256"] != diff.b["dataset_sha256"]:
        console.print("[yellow]The two reports ran different datasets.[/]")
    table = Table(title="Cases that differ", title_justify="left")
    for column in ("case", "change", "success A → B", "differences", "Δ latency", "Δ tokens"):
        table.add_column(column)
    styles = {"better": "green", "worse": "bold red", "changed": "yellow"}
    shown = 0
    for d in diff.cases:
        if d.change in ("same", "only in A", "only in B"):
            continue
        shown += 1
        a, b = d.success
        table.add_row(
            escape(d.id),
            Text(d.change, style=styles.get(d.change, "")),
            f"{a} → {b}",
            escape("; ".join(d.differences)[:120]),
            f"{d.latency_delta_s:+.2f}s" if d.latency_delta_s is not None else "",
            f"{d.tokens_delta:+d}" if d.tokens_delta is not None else "",
        )
    if shown:
        console.print(table)
    else:
        console.print("No case changed its outcome or behaviour.")
    console.print(
        f"better: {len(diff.better)} · worse: {len(diff.worse)} · changed: {len(diff.changed)}",
        highlight=False,
    )
    if diff.only_in_a or diff.only_in_b:
        console.print(
            f"[yellow]{len(diff.only_in_a)} case(s) only in A, {len(diff.only_in_b)} only in B; "
            f"the totals below are over the {diff.common_cases} case(s) both ran.[/]"
        )
    totals = Table(title=f"Totals ({diff.common_cases} cases)", title_justify="left")
    for column in ("total", "A", "B", "Δ"):
        totals.add_column(column)
    for t in diff.totals:
        style = "" if t.better is None else "green" if t.better else "bold red"
        delta = "" if t.delta is None else f"{t.delta:+g}"
        totals.add_row(t.name, str(t.a), str(t.b), Text(delta, style=style))
    console.print(totals)


def _load_report(path: Path) -> EvalReport:
    try:
        return EvalReport.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Cannot read the report {path} ({exc}).") from None
    except ValueError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(
            f"{path} is not an eval report ({first}). Write one with "
            "`controlroom eval ... --out report.json`."
        ) from None


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


@handles_errors
def eval_command(
    target: Annotated[
        str,
        typer.Argument(
            help="Workflow (folder or file) or dataset file; or `compare` to compare two reports.",
            show_default=False,
        ),
    ],
    dataset: Annotated[
        str | None,
        typer.Argument(
            help="Dataset file (default: the workflow folder's eval/dataset.yaml); with "
            "`compare`: report A.",
            show_default=False,
        ),
    ] = None,
    report_b: Annotated[
        str | None,
        typer.Argument(help="With `compare`: report B.", show_default=False),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Model spec for every case; `scripted`: each case's own `script:` file. "
            "Default the workflow's."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Cases run in parallel.")] = 1,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the JSON report to this file.")
    ] = None,
    prompt: Annotated[
        list[str] | None,
        typer.Option(help="Use this library prompt version: ID@VERSION (repeatable)."),
    ] = None,
    cases: Annotated[
        str | None, typer.Option(help="Only these case ids (comma-separated).")
    ] = None,
    tags: Annotated[
        str | None, typer.Option(help="Only cases with one of these tags (comma-separated).")
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(help="Prepare and keep the project folder here (default: a temporary one)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a workflow on an evaluation dataset and score it; or `eval compare A.json B.json`.

    Every case becomes a durable run in a fresh project folder; approvals are answered as
    the dataset says. Exit codes: 0 ran (even with failed cases), 1 policy violations,
    2 usage error.
    """
    if target == "compare":
        if dataset is None or report_b is None:
            raise ConfigError("Usage: controlroom eval compare A.json B.json [--json].")
        diff = compare(_load_report(Path(dataset)), _load_report(Path(report_b)))
        if as_json:
            print(diff.model_dump_json(indent=2))
        else:
            print_comparison(out, diff)
        raise typer.Exit(EXIT_OK)
    if report_b is not None:
        raise ConfigError(
            "Too many arguments: controlroom eval WORKFLOW_OR_DATASET [DATASET] [options]."
        )
    dataset_path, workflow = resolve_target(target, dataset)
    options = EvalOptions(
        model=model,
        workers=workers,
        prompt_versions=parse_overrides(prompt or []),
        cases=_split(cases),
        tags=_split(tags),
        home=home,
    )
    progress = Progress(
        TextColumn("[bold]eval[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    counts = {"ok": 0, "failed": 0}
    task = progress.add_task("", total=None)

    def started(total: int) -> None:
        progress.update(task, total=total)

    def finished(case: CaseResult) -> None:
        counts["ok" if case.success else "failed"] += 1
        progress.update(
            task,
            advance=1,
            description=f"succeeded {counts['ok']} · failed {counts['failed']} · last {case.id}",
        )

    with progress:
        report = run_eval(dataset_path, workflow, options, progress=finished, on_start=started)
    text = report.model_dump_json(indent=2)
    if out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(text + "\n", encoding="utf-8")
    if as_json:
        print(text)
    else:
        print_report(out, report)
        if out_file is not None:
            out.print(
                escape_controls(f"Report written to {out_file}."), markup=False, highlight=False
            )
    raise typer.Exit(EXIT_VIOLATIONS if report.totals.violations else EXIT_OK)


def register(app: typer.Typer) -> None:
    """Add ``eval`` to the ``controlroom`` app."""
    app.command(name="eval")(eval_command)


__all__ = ["eval_command", "print_comparison", "print_report", "register"]
