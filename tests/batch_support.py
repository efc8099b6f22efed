"""A batch workflow for the tests: the batch-settlements example with a kill switch.

The tools are the example's, plus a hook: when ``<home>/hang-once`` exists, the first call
that claims it (an atomic rename) posts its entry, writes its pid to ``<home>/hung.pid``
and sleeps, so a test can SIGKILL that worker right after the side effect and before the
step's checkpoint.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "batch-settlements"

TOOLS = '''
import os, sqlite3, time
from pathlib import Path
from controlroom import Effect, ToolContext, tool


def _hang_once(home: Path) -> None:
    trigger = home / "hang-once"
    try:
        os.rename(trigger, home / "hang-claimed")
    except FileNotFoundError:
        return
    (home / "hung.pid").write_text(str(os.getpid()))
    time.sleep(600)


def _post(account, amount, ctx):
    path = ctx.home / "examples" / "settlements.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, run_id TEXT, account TEXT, amount REAL)")
    conn.execute("CREATE TABLE IF NOT EXISTS attempts (key TEXT, run_id TEXT, pid INTEGER)")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO attempts VALUES (?, ?, ?)", (ctx.idempotency_key, ctx.run_id, os.getpid()))
    conn.execute("INSERT OR IGNORE INTO entries VALUES (?, ?, ?, ?)", (ctx.idempotency_key, ctx.run_id, account, amount))
    conn.execute("COMMIT")
    conn.close()
    _hang_once(ctx.home)
    return {"posted": True, "account": account, "amount": amount, "reference": ctx.idempotency_key}


@tool(effect=Effect.WRITE)
def post_entry(account: str, amount: float, ctx: ToolContext) -> dict:
    """Post a settlement entry to the ledger."""
    return _post(account, amount, ctx)


@tool(effect=Effect.IRREVERSIBLE)
def post_large_entry(account: str, amount: float, ctx: ToolContext) -> dict:
    """Post a large settlement entry (irreversible: a person approves it first)."""
    return _post(account, amount, ctx)
'''


def batch_workflow(folder: Path) -> Path:
    """The example's workflow and scripts with the test tools, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("workflow.yaml", "script.yaml", "script-large.yaml"):
        shutil.copyfile(EXAMPLE / name, folder / name)
    (folder / "tools.py").write_text(TOOLS)
    return folder


def inputs_text(count: int, large_every: int) -> str:
    lines = []
    for n in range(count):
        large = large_every and n % large_every == large_every - 1
        text = f"Settle request #{n:04d}" + (" (LARGE)" if large else "")
        lines.append(json.dumps({"input": text}))
    return "\n".join(lines) + "\n"


def ledger(home: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str, int]]]:
    """The tool's own records: (entries: key, run_id), (attempts: key, run_id, pid)."""
    conn = sqlite3.connect(home / "examples" / "settlements.sqlite")
    try:
        entries = conn.execute("SELECT key, run_id FROM entries ORDER BY key").fetchall()
        attempts = conn.execute("SELECT key, run_id, pid FROM attempts").fetchall()
    finally:
        conn.close()
    return entries, attempts
