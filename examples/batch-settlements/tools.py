"""Tools of the batch-settlements example: a ledger of entries in the project folder.

Each entry's key is the call's idempotency key, so a run that a lost worker left half-done
and another worker resumes never posts twice; ``attempts`` counts every call, repeats
included, to show it.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from controlroom import Effect, ToolContext, tool


def _post(account: str, amount: float, ctx: ToolContext) -> dict[str, Any]:
    path = ctx.home / "examples" / "settlements.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, run_id TEXT, "
            "account TEXT, amount REAL)"
        )
        conn.execute("CREATE TABLE IF NOT EXISTS attempts (key TEXT, run_id TEXT)")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO attempts VALUES (?, ?)", (ctx.idempotency_key, ctx.run_id))
        conn.execute(
            "INSERT OR IGNORE INTO entries VALUES (?, ?, ?, ?)",
            (ctx.idempotency_key, ctx.run_id, account, amount),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return {"posted": True, "account": account, "amount": amount, "reference": ctx.idempotency_key}


@tool(effect=Effect.WRITE, resource="ledger")
def post_entry(account: str, amount: float, ctx: ToolContext) -> dict[str, Any]:
    """Post a settlement entry to the ledger."""
    return _post(account, amount, ctx)


@tool(effect=Effect.IRREVERSIBLE, resource="ledger")
def post_large_entry(account: str, amount: float, ctx: ToolContext) -> dict[str, Any]:
    """Post a large settlement entry (irreversible: a person approves it first)."""
    return _post(account, amount, ctx)
