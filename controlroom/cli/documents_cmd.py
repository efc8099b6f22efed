"""``controlroom ingest``, ``controlroom search`` and ``controlroom documents``.

Exit codes: 0 done; 1 some files could not be ingested (the others were, and the store
keeps the previous version of the failed ones); 2 usage or configuration errors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from controlroom.cli.common import JsonOpt, err, fail, load_settings, out
from controlroom.cli.render import escape
from controlroom.errors import ConfigError, ControlroomError
from controlroom.identity import Directory


def _rel(source: str) -> str:
    try:
        return str(Path(source).relative_to(Path.cwd()))
    except ValueError:
        return source


def ingest_command(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Files or folders (Markdown, text, HTML, PDF; folders recursively)."),
    ],
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            "-l",
            help="Access label for files that get none from an _access.yaml or their front "
            "matter (repeat for several). Default: internal.",
            show_default=False,
        ),
    ] = None,
    prune: Annotated[
        bool,
        typer.Option(help="Also remove documents ingested from under PATHS whose files are gone."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add documents to the project's store, with their access labels.

    Unchanged files are skipped; changed files replace their chunks; a file that cannot be
    read is reported and skipped, never half-added. Labels come from, most specific
    first: the file's front matter (labels: [hr-confidential]), an _access.yaml `files:`
    entry, the nearest _access.yaml `labels:`, --label, else `internal`.
    """
    from controlroom.retrieval import ingest, open_store
    from controlroom.retrieval.ingest import IngestEvent, Outcome, find_files

    settings = load_settings()
    try:
        store = open_store(settings)
        total = len(find_files(paths))
        if not as_json:
            out.print(f"Loading the embedder ({escape(store.embedder.name)}) ...", highlight=False)
        store.embedder.load()
        if as_json or (not sys.stderr.isatty() and total < 2):
            report = ingest(store, paths, labels=label or (), prune=prune)
        else:
            with Progress(
                TextColumn("Ingesting"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=err,
                transient=True,
            ) as bar:
                task = bar.add_task("", total=total)

                def step(event: IngestEvent) -> None:
                    bar.update(task, completed=event.done, description=Path(event.source).name)

                report = ingest(store, paths, labels=label or (), prune=prune, progress=step)
    except ControlroomError as exc:
        fail(exc.title, exc.message, as_json)
    if as_json:
        print(
            json.dumps(
                {
                    "store": store.where,
                    "summary": {o.value: report.count(o) for o in Outcome},
                    "chunks_embedded": report.chunks_embedded,
                    "chunks_total": store.count(),
                    "seconds": report.seconds,
                    "files": [f.model_dump(mode="json") for f in report.files],
                },
                indent=2,
            )
        )
    else:
        for f in report.files:
            if f.outcome in (Outcome.ADDED, Outcome.REPLACED, Outcome.REMOVED):
                out.print(
                    f"{f.outcome.value:<9} {escape(_rel(f.source))}  ({f.chunks} chunks, "
                    f"labels: {escape(', '.join(f.labels))})",
                    highlight=False,
                )
        for f in report.failed:
            err.print(f"[bold red]skipped[/]   {escape(f.reason or f.source)}", highlight=False)
        out.print(
            f"{escape(report.summary())}; {report.chunks_embedded} chunks embedded in "
            f"{report.seconds:.1f}s; the store at {escape(store.where)} holds {store.count()} "
            "chunks.",
            highlight=False,
        )
    if report.failed:
        raise typer.Exit(1)


def search_command(
    query: Annotated[str, typer.Argument(help="What to look for, in words.")],
    *,
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", help="Search as this directory user (their access only)."),
    ] = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=50, help="How many chunks.")] = 5,
    min_score: Annotated[
        float, typer.Option(help="Leave out chunks less similar than this (cosine, -1..1).")
    ] = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Search the documents as USER would: only chunks they may read are considered.

    Shows each chunk's score, labels and source, then which labels the user may read and
    which they may not (with the policy's reason).
    """
    from controlroom.retrieval import open_retriever

    settings = load_settings()
    try:
        chosen = user or settings.user
        if not chosen:
            raise ConfigError(
                "Say whose access to search with: pass --user ID or set CONTROLROOM_USER."
            )
        principal = Directory.load(settings.directory_path).get_principal(chosen)
        result = open_retriever(settings).search(query, principal, k=k, min_score=min_score)
    except ControlroomError as exc:
        fail(exc.title, exc.message, as_json)
    if as_json:
        data: dict[str, Any] = result.model_dump(mode="json")
        data["scope"]["readable"] = sorted(result.scope.readable)
        print(json.dumps(data, indent=2))
        return
    if not result.chunks:
        out.print(f"Nothing found that {escape(principal.id)} may read.", highlight=False)
    for n, c in enumerate(result.chunks, start=1):
        where = f"{c.title} > {c.headings}" if c.headings else c.title
        out.print(
            f"[bold]{n}. {escape(where)}[/]  score {c.score:.3f}  {escape(f'[{c.id}]')}  "
            f"labels: {escape(', '.join(c.labels))}",
            highlight=False,
        )
        out.print(f"   {escape(_rel(c.source))}", style="dim", highlight=False)
        snippet = " ".join(c.text.split())
        out.print(f"   {escape(snippet[:300])}{'…' if len(snippet) > 300 else ''}", highlight=False)
    readable = ", ".join(sorted(result.scope.readable)) or "none"
    out.print(f"\n{escape(principal.id)} may read: {escape(readable)}", highlight=False)
    for label, why in sorted(result.scope.denied.items()):
        out.print(f"  not {escape(label)}: {escape(why)}", style="dim", highlight=False)


def documents_command(as_json: JsonOpt = False) -> None:
    """List the ingested documents with their labels and chunk counts."""
    from controlroom.retrieval import open_store

    try:
        store = open_store(load_settings())
        sources = store.all_sources()
    except ControlroomError as exc:
        fail(exc.title, exc.message, as_json)
    if as_json:
        print(json.dumps([s.model_dump(mode="json") for s in sources], indent=2))
        return
    table = Table("document", "title", "labels", "chunks", "ingested")
    for s in sources:
        cells = (_rel(s.source), s.title, ", ".join(s.labels), str(len(s.chunk_ids)))
        table.add_row(*(escape(c) for c in cells), s.ingested_at)
    out.print(table)
    out.print(
        f"{len(sources)} documents, {store.count()} chunks in {escape(store.where)}.",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``ingest``, ``search`` and ``documents`` to the ``controlroom`` command."""
    app.command("ingest")(ingest_command)
    app.command("search")(search_command)
    app.command("documents")(documents_command)
