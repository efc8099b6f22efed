"""``controlroom audit show|verify|export`` and ``controlroom replay``.

Exit codes of ``audit verify``: 0 intact and signed by the expected key; 1 tampered (the
first bad record and why are named); 3 incomplete (a torn tail or unsigned records at the
end: a crash, or a run being written); 2 usage errors. ``replay``: 0 the replay matches
the record; 1 it diverges (or the log fails verification and --unverified was not given);
3 it matches, but with --redecide today's policies or data decide some call differently
(policy drift); 2 usage errors (no such run, a redacted log...).
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from controlroom.audit.export import export_jsonl, to_otlp
from controlroom.audit.keys import expected_public_key, load_public_key
from controlroom.audit.log import read_records
from controlroom.audit.verify import VerifyReport, against_run_status, verify_log
from controlroom.cli.audit_render import timeline
from controlroom.cli.common import JsonOpt, fail, load_settings, open_runner
from controlroom.cli.render import escape_controls
from controlroom.config import Settings
from controlroom.errors import ControlroomError, RunNotFoundError

audit_app = typer.Typer(
    name="audit",
    help="Read, verify and export the signed, hash-chained audit log of a run.",
    no_args_is_help=True,
    add_completion=False,
)

RunArg = Annotated[
    str,
    typer.Argument(metavar="RUN", help="Run id (a unique prefix works) or a path to a .jsonl log."),
]
KeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--key",
        help="Public key the checkpoints must be signed with (PEM or OpenSSH); default "
        "CONTROLROOM_AUDIT_PUBLIC_KEY, else the project's signing key.",
        show_default=False,
    ),
]


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    otlp_json = "otlp-json"


def resolve_log(settings: Settings, run: str) -> tuple[Path, str]:
    """The log file and run id for a run id, a unique prefix, or a path to a log."""
    given = Path(run)
    if run.endswith(".jsonl") and given.is_file():
        return given, given.name.removesuffix(".jsonl")
    folder = settings.audit_path
    exact = folder / f"{run}.jsonl"
    if exact.is_file():
        return exact, run
    matches = sorted(folder.glob(f"{run}*.jsonl")) if folder.is_dir() else []
    if len(matches) == 1:
        return matches[0], matches[0].name.removesuffix(".jsonl")
    if len(matches) > 1:
        names = ", ".join(m.name.removesuffix(".jsonl") for m in matches[:5])
        raise RunNotFoundError(
            f"'{run}' matches several audit logs ({names}); give more of the id."
        )
    raise RunNotFoundError(
        f"No audit log for run '{run}' in {folder}. `controlroom runs` lists the runs of this "
        "project folder; set CONTROLROOM_HOME if the run lives in another one."
    )


def _store_status(settings: Settings, run_id: str) -> tuple[str | None, int | None]:
    """What the project's run store says of the run: its status and the seq of the audit
    record of its last stop (None, None: no store, or no such run)."""
    if settings.backend == "sqlite" and not settings.store_path.is_file():
        return None, None
    from controlroom.graphs.storage.backends import open_backend

    try:
        backend = open_backend(settings)
    except ControlroomError:  # a damaged store: the log is checked on its own
        return None, None
    try:
        record = backend.store.get_run(run_id)
    except ControlroomError:
        return None, None
    finally:
        backend.close()
    return record.status.value, record.audit_stop_seq


def _verify(settings: Settings, path: Path, run_id: str, key: Path | None) -> VerifyReport:
    expected = (
        load_public_key(key)
        if key is not None
        else expected_public_key(settings.keys_path, settings.audit_key, settings.audit_public_key)
    )
    report = verify_log(path, expected_key=expected, run_id=run_id)
    status, stop_seq = _store_status(settings, run_id)
    return against_run_status(report, status, stop_seq)


@audit_app.command()
def verify(run: RunArg, key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Check the log: hash chain, order, completeness, signatures by the expected key."""
    try:
        settings = load_settings()
        path, run_id = resolve_log(settings, run)
        report = _verify(settings, path, run_id, key)
    except ControlroomError as exc:
        fail(exc.title, exc.message, as_json, plain=True)
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        typer.echo(escape_controls(report.summary()))
    raise typer.Exit(report.exit_code)


@audit_app.command()
def show(run: RunArg, key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """The run's records as a readable timeline (or JSON), with the verification result."""
    try:
        settings = load_settings()
        path, run_id = resolve_log(settings, run)
        records = read_records(path)
        report = _verify(settings, path, run_id, key)
    except ControlroomError as exc:
        fail(exc.title, exc.message, as_json, plain=True)
    if as_json:
        payload: dict[str, Any] = {
            "run_id": run_id,
            "verification": report.to_json(),
            "records": records,
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    typer.echo(escape_controls(report.summary()))
    for line in timeline(records):
        typer.echo(line)


@audit_app.command()
def export(
    run: RunArg,
    format: Annotated[
        ExportFormat,
        typer.Option("--format", "-f", help="jsonl: the log as is; otlp-json: OTLP traces."),
    ] = ExportFormat.jsonl,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="File to write; default standard output.")
    ] = None,
) -> None:
    """Write the log for another system (a file or stdout; nothing is sent anywhere)."""
    try:
        settings = load_settings()
        path, run_id = resolve_log(settings, run)
        if format is ExportFormat.jsonl:
            data = export_jsonl(path)
        else:
            request = to_otlp(read_records(path), run_id)
            data = (json.dumps(request, indent=2, ensure_ascii=False) + "\n").encode()
    except ControlroomError as exc:
        fail(exc.title, exc.message, False, plain=True)
    if out is None or str(out) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        out.write_bytes(data)
        said = f"Wrote {len(data)} bytes ({format.value}) of run {run_id} to {out}."
        typer.echo(escape_controls(said), err=True)


def replay_command(
    run: Annotated[str, typer.Argument(metavar="RUN", help="Run id (a unique prefix works).")],
    unverified: Annotated[
        bool,
        typer.Option(
            "--unverified",
            help="Replay even if the log fails verification, to see where an altered record leads.",
        ),
    ] = False,
    workflow: Annotated[
        str | None,
        typer.Option(help="The workflow to replay with (needed for Python-built workflows)."),
    ] = None,
    redecide: Annotated[
        bool,
        typer.Option(
            "--redecide",
            help="Also decide every call with today's policies, data and directory, and "
            "report each one that comes out differently as policy drift (exit 3).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-execute a finished run from its audit log: recorded model replies, tools in
    dry-run, recorded approvals, and the gate deciding again with the policies and the
    resource data the run was decided with (both are in the record). Reports whether every
    decision and tool call matches; --redecide also compares with today's policies."""
    try:
        with open_runner() as runner:  # the runner (and gate) every command uses
            report = runner.replay(run, workflow=workflow, unverified=unverified, redecide=redecide)
    except ControlroomError as exc:
        fail(exc.title, exc.message, as_json, plain=True)
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        typer.echo(escape_controls(report.summary()))
    raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    """Add ``audit`` (show, verify, export) and ``replay`` to the ``controlroom`` command."""
    app.add_typer(audit_app, name="audit")
    app.command("replay")(replay_command)
