"""``controlroom prompts list`` and ``controlroom prompts diff ID V1 V2``: the prompt library.

Prompts live in ``prompts/<id>/v<N>.md`` next to a workflow file or in its parent folder
(``examples/prompts`` is shared by the examples); see
:mod:`controlroom.agents.prompt_library`.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated

import typer

from controlroom.agents.prompt_library import PromptLibrary
from controlroom.cli.common import JsonOpt, handles_errors, out
from controlroom.cli.render import escape, escape_controls

prompts_app = typer.Typer(
    help="The prompt library: versioned prompts shared between workflows.",
    no_args_is_help=True,
)

WhereOpt = Annotated[
    Path,
    typer.Option(
        "--workflow",
        "-w",
        help="A workflow file or folder: its prompts/ folder and its parent's; or a prompts/ "
        "folder itself.",
    ),
]


def _library(where: Path) -> PromptLibrary:
    if where.is_file():
        where = where.parent
    if where.name == "prompts":
        return PromptLibrary([where])
    return PromptLibrary.for_workflow(where)


@prompts_app.command("list")
@handles_errors
def list_prompts(where: WhereOpt = Path("."), as_json: JsonOpt = False) -> None:
    """List prompt ids, their versions and descriptions."""
    library = _library(where)
    found = library.all()
    if as_json:
        rows = [
            {
                "id": p.id,
                "version": p.version,
                "description": p.description,
                "sha256": p.sha256,
                "path": str(p.path),
            }
            for p in found
        ]
        print(json.dumps(rows, indent=2))
        return
    if not found:
        shown = escape_controls(f"No prompts under {where} (looked in prompts/ and ../prompts).")
        out.print(shown, markup=False, highlight=False)
        return
    for p in found:
        latest = " (latest)" if p.version == max(library.versions(p.id)) else ""
        line = f"{p.id}@{p.version}{latest}  {p.description}"
        out.print(f"{escape(line)}  [dim]{escape(str(p.path))}[/]", highlight=False)


@prompts_app.command("diff")
@handles_errors
def diff_prompts(
    prompt_id: Annotated[str, typer.Argument(metavar="ID", help="Prompt id.")],
    v1: Annotated[int, typer.Argument(help="Old version.")],
    v2: Annotated[int, typer.Argument(help="New version.")],
    where: WhereOpt = Path("."),
) -> None:
    """Unified diff between two versions of a prompt."""
    library = _library(where)
    a, b = library.get(prompt_id, v1), library.get(prompt_id, v2)
    lines = difflib.unified_diff(
        a.text.splitlines(keepends=True),
        b.text.splitlines(keepends=True),
        fromfile=f"{prompt_id}@{v1}",
        tofile=f"{prompt_id}@{v2}",
    )
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    print(escape_controls(text), end="")


def register(app: typer.Typer) -> None:
    """Add ``prompts`` to the ``controlroom`` app."""
    app.add_typer(prompts_app, name="prompts")
