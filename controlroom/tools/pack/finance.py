"""Finance: vendor invoices, payments against them, releasing payments to the bank."""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from controlroom.errors import ToolExecutionError
from controlroom.tools.pack.db import cents, money, next_id, now, read, read_one, write_once
from controlroom.tools.spec import Effect, ToolContext, tool


def _two_places(value: float) -> float:
    if abs(value * 100 - round(value * 100)) > 1e-6:
        raise ValueError("amounts have at most two decimal places")
    return value


InvoiceId = Annotated[str, Field(pattern=r"^INV-[0-9]{4}$", description="e.g. INV-1001")]
PaymentId = Annotated[str, Field(pattern=r"^PAY-[0-9]{4}$", description="e.g. PAY-0001")]
Amount = Annotated[
    float,
    Field(gt=0, le=10_000_000, description="amount in EUR, at most two decimal places"),
    AfterValidator(_two_places),
]
Limit = Annotated[int, Field(ge=1, le=50)]
_DUE = """
SELECT i.*, i.amount_cents - COALESCE(
  (SELECT SUM(p.amount_cents) FROM payments p WHERE p.invoice_id = i.id), 0) AS due_cents
FROM invoices i WHERE i.id = ?
"""


def _invoice(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "invoice_id": row["id"],
        "vendor": row["vendor"],
        "amount": money(row["amount_cents"]),
        "amount_due": money(row["due_cents"]),
        "currency": row["currency"],
        "department": row["department"],
        "due_on": row["due_on"],
        "status": row["status"],
    }


def invoice_attributes(invoice_id: str) -> dict[str, Any]:
    """What policies see of an invoice: vendor, department, status and amount due."""
    row = read_one(_DUE, (invoice_id,))
    if row is None:
        raise LookupError(f"there is no invoice {invoice_id}")
    return {
        "vendor": row["vendor"],
        "department": row["department"],
        "status": row["status"],
        "amount_due": money(row["due_cents"]),
    }


def payment_attributes(payment_id: str) -> dict[str, Any]:
    """What policies see of a payment: who created it, its amount and status."""
    row = read_one("SELECT * FROM payments WHERE id = ?", (payment_id,))
    if row is None:
        raise LookupError(f"there is no payment {payment_id}")
    return {
        "created_by": row["created_by"],
        "amount": money(row["amount_cents"]),
        "status": row["status"],
        "invoice_id": row["invoice_id"],
    }


@tool(effect=Effect.READ)
def list_invoices(
    status: Literal["open", "paid"] | None = None,
    vendor: Annotated[str, Field(max_length=100)] = "",
    limit: Limit = 20,
) -> dict[str, Any]:
    """List vendor invoices, optionally only open or paid ones, or one vendor's."""
    ids = read(
        "SELECT id FROM invoices WHERE (? IS NULL OR status = ?) AND lower(vendor) LIKE ? "
        "ORDER BY id LIMIT ?",
        (status, status, f"%{vendor.strip().lower()}%", limit),
    )
    invoices = [_invoice(r) for i in ids if (r := read_one(_DUE, (i["id"],))) is not None]
    return {"count": len(invoices), "invoices": invoices}


@tool(
    effect=Effect.READ,
    resource="Invoice",
    resource_id="invoice_id",
    resource_loader=invoice_attributes,
)
def get_invoice(invoice_id: InvoiceId) -> dict[str, Any]:
    """One invoice: vendor, amount, amount still due, status and the payments made against it."""
    row = read_one(_DUE, (invoice_id,))
    if row is None:
        raise ToolExecutionError(f"There is no invoice {invoice_id}; list_invoices shows them.")
    payments = read(
        "SELECT id, amount_cents, status, created_by FROM payments WHERE invoice_id = ? "
        "ORDER BY id",
        (invoice_id,),
    )
    return {
        **_invoice(row),
        "payments": [
            {
                "payment_id": p["id"],
                "amount": money(p["amount_cents"]),
                "status": p["status"],
                "created_by": p["created_by"],
            }
            for p in payments
        ],
    }


@tool(
    effect=Effect.WRITE,
    resource="Invoice",
    resource_id="invoice_id",
    resource_loader=invoice_attributes,
)
def create_payment(
    invoice_id: InvoiceId,
    amount: Amount,
    ctx: ToolContext,
    note: Annotated[str, Field(max_length=200)] = "",
) -> dict[str, Any]:
    """Schedule a payment of an invoice (part or all of the amount due).

    The payment is scheduled, not yet sent: a finance manager releases it to the bank.
    """

    def body(conn: sqlite3.Connection) -> dict[str, Any]:
        row = conn.execute(_DUE, (invoice_id,)).fetchone()
        if row is None:
            raise ToolExecutionError(f"There is no invoice {invoice_id}.")
        due = row["due_cents"]
        if row["status"] == "paid" or due <= 0:
            raise ToolExecutionError(f"Invoice {invoice_id} is already paid in full.")
        if cents(amount) > due:
            raise ToolExecutionError(
                f"{amount:.2f} is more than the {money(due):.2f} still due on {invoice_id}."
            )
        payment_id = next_id(conn, "payments", "PAY-", 4)
        conn.execute(
            "INSERT INTO payments VALUES (?, ?, ?, 'scheduled', ?, ?, NULL, NULL, ?)",
            (payment_id, invoice_id, cents(amount), ctx.principal.id, now(), note),
        )
        if cents(amount) == due:
            conn.execute("UPDATE invoices SET status = 'paid' WHERE id = ?", (invoice_id,))
        return {
            "payment_id": payment_id,
            "invoice_id": invoice_id,
            "amount": money(cents(amount)),
            "status": "scheduled",
            "amount_due_after": money(due - cents(amount)),
        }

    return write_once(ctx, "create_payment", body)


@tool(
    effect=Effect.IRREVERSIBLE,
    resource="Payment",
    resource_id="payment_id",
    resource_loader=payment_attributes,
)
def release_payment(payment_id: PaymentId, ctx: ToolContext) -> dict[str, Any]:
    """Release a scheduled payment to the bank. Irreversible: the money leaves the company."""

    def body(conn: sqlite3.Connection) -> dict[str, Any]:
        row = conn.execute("SELECT * FROM payments WHERE id = ?", (payment_id,)).fetchone()
        if row is None:
            raise ToolExecutionError(f"There is no payment {payment_id}.")
        if row["status"] != "scheduled":
            raise ToolExecutionError(f"Payment {payment_id} was already released.")
        conn.execute(
            "UPDATE payments SET status = 'released', released_by = ?, released_at = ? "
            "WHERE id = ?",
            (ctx.principal.id, now(), payment_id),
        )
        return {
            "payment_id": payment_id,
            "invoice_id": row["invoice_id"],
            "amount": money(row["amount_cents"]),
            "status": "released",
        }

    return write_once(ctx, "release_payment", body)


TOOLS = [list_invoices, get_invoice, create_payment, release_payment]
