"""Shared by the state-file tests (corrupt state, doctor): a real project, and ways to harm it."""

from __future__ import annotations

import os
from pathlib import Path

from controlroom import Runner
from controlroom.config import Settings
from tests.conftest import DIRECTORY_YAML, EXAMPLE, TEST_MODEL


def make_project(home: Path) -> tuple[str, str]:
    """A project with a completed run and one waiting for approval: (completed, waiting).

    Both are real scripted runs of the invoice-payment test workflow, on SQLite."""
    home.mkdir(parents=True)
    (home / "directory.yaml").write_text(DIRECTORY_YAML)
    settings = Settings(home=home).model_copy(update={"database_url": None})
    with Runner(settings) as runner:
        waiting = runner.start(
            str(EXAMPLE), user="alice", input="Pay invoice INV-1001", model=TEST_MODEL
        )
        done = runner.start(
            str(EXAMPLE), user="alice", input="Pay invoice INV-1001", model=TEST_MODEL
        )
        [item] = done.pending
        finished = runner.approve(done.run_id, item.approval_id, by="bob")
    assert finished.status.value == "completed", finished
    assert waiting.status.value == "waiting", waiting
    return finished.run_id, waiting.run_id


def garbage(path: Path) -> None:
    path.write_bytes(os.urandom(3000) + b"not a database\n" * 100)


def truncated(path: Path) -> None:
    """A real database cut in half."""
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(size // 2)


def emptied(path: Path) -> None:
    path.write_bytes(b"")


def pages_scrambled(path: Path) -> None:
    """The header intact, every later page garbage: only queries find out."""
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for start in range(page, len(data), page):
        data[start : start + page] = os.urandom(min(page, len(data) - start))
    path.write_bytes(bytes(data))
