"""Tools of the invoice-payment example, over a small SQLite ledger in the project folder."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from controlroom import Effect, ToolContext, tool

INVOICES = [
    ("INV-1001", "Northwind Traders", 1250.0, "open"),
    ("INV-1002", "Contoso Cleaning", 480.5, "open"),
    ("INV-1003", "Fabrikam Hardware", 18990.0, "open"),
]


def _db(home: Path) -> sqlite3.Connection:
    path = home / "examples" / "invoice-payment.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS invoices (id TEXT PRIMARY KEY, vendor TEXT, "
        "amount_due REAL, status TEXT)"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS payments (reference TEXT PRIMARY KEY, invoice_id TEXT, "
        "amount REAL, paid_by TEXT)"
    )
    conn.executemany("INSERT OR IGNORE INTO invoices VALUES (?, ?, ?, ?)", INVOICES)
    return conn


@tool(effect=Effect.READ, resource="invoice")
def lookup_invoice(invoice_id: str, ctx: ToolContext) -> dict[str, Any]:
    """Look up a vendor invoice by id (e.g. INV-1001): vendor, amount due and status."""
    with _db(ctx.home) as conn:
        row = conn.execute(
            "SELECT id, vendor, amount_due, status FROM invoices WHERE id = ?", (invoice_id,)
        ).fetchone()
    if row is None:
        return {"found": False, "invoice_id": invoice_id}
    return {
        "found": True,
        "invoice_id": row[0],
        "vendor": row[1],
        "amount_due": row[2],
        "status": row[3],
    }


@tool(effect=Effect.IRREVERSIBLE, resource="payment")
def pay_invoice(invoice_id: str, amount: float, ctx: ToolContext) -> dict[str, Any]:
    """Pay an invoice. Irreversible: money leaves the company, so a person approves it first."""
    conn = _db(ctx.home)
    try:
        # The idempotency key is the payment reference: a resumed run that repeats this
        # call finds the payment it already made instead of paying twice.
        conn.execute("BEGIN IMMEDIATE")
        existing = conn.execute(
            "SELECT amount FROM payments WHERE reference = ?", (ctx.idempotency_key,)
        ).fetchone()
        if existing is None:
            conn.execute(
                "INSERT INTO payments VALUES (?, ?, ?, ?)",
                (ctx.idempotency_key, invoice_id, amount, ctx.principal.id),
            )
            conn.execute("UPDATE invoices SET status = 'paid' WHERE id = ?", (invoice_id,))
            paid = amount
        else:
            paid = existing[0]
        conn.execute("COMMIT")
    finally:
        conn.close()
    return {
        "status": "paid",
        "invoice_id": invoice_id,
        "amount": paid,
        "reference": ctx.idempotency_key,
    }
