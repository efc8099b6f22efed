"""``controlroom init`` and ``controlroom users``: the project folder and its user directory."""

from __future__ import annotations

import json
from importlib import resources
from typing import Annotated

import typer

from controlroom.cli.common import JsonOpt, handles_errors, load_settings, open_runner, out
from controlroom.cli.render import escape


def init(
    force: Annotated[bool, typer.Option(help="Overwrite an existing directory file.")] = False,
) -> None:
    """Create the project folder with a sample user directory (alice, bob, carol, ...).

    The folder is created owner-only (0700) and the directory file 0600, whatever the umask;
    an existing folder that other accounts can reach is warned about, with the fix."""
    from controlroom.config import ensure_home, write_private

    settings = load_settings()
    ensure_home(settings.home)
    target = settings.directory_path
    if target.exists() and not force:
        out.print(
            f"{escape(str(target))} already exists; kept it (use --force to replace it).",
            highlight=False,
        )
        return
    sample = resources.files("controlroom") / "data" / "sample_directory.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    write_private(target, sample.read_bytes())
    out.print(
        f"Created {escape(str(settings.home))} with a sample user directory at "
        f"{escape(str(target))}.",
        highlight=False,
    )


def users(as_json: JsonOpt = False) -> None:
    """List the users of the directory that runs can act for."""
    directory = open_runner().directory
    people = [p.model_dump(mode="json") for p in directory.values()]
    if as_json:
        print(json.dumps(people, indent=2))
        return
    for p in directory.values():
        line = f"{p.id:<12} {p.display_name:<20} roles: {', '.join(p.roles)}"
        out.print(escape(line), highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``init`` and ``users`` to the ``controlroom`` command."""
    app.command("init")(handles_errors(init))
    app.command("users")(handles_errors(users))
