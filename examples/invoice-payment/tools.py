"""Look-up tools of the invoice-payment example, over the enterprise tool pack's data.

Invoices, payments and mail are the tool pack's (``controlroom pack init``): the workflow
pays with the pack's ``create_payment`` and confirms with its ``send_mail``. This file adds
what accounts payable reads before paying:

* ``lookup_invoice``: the pack's invoice with its amount still due, plus the free-text memo
  printed on the vendor's invoice (``memos.yaml``). Memos are written by vendors, so they
  are data, never instructions: some of the sample memos try to redirect a payment.
* ``lookup_vendor``: the vendor master record (``vendors.yaml``): whether the vendor may be
  paid, and the last digits of the bank account on file. Payments always go to the account
  on file; ``create_payment`` has no bank-account argument at all.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field

from controlroom import Effect, tool
from controlroom.tools.pack.db import money, read, read_one
from controlroom.tools.pack.finance import invoice_attributes

HERE = Path(__file__).resolve().parent
InvoiceId = Annotated[str, Field(pattern=r"^INV-[0-9]{4}$", description="e.g. INV-1001")]
VendorName = Annotated[
    str, Field(min_length=2, max_length=100, description="the vendor's name, as on the invoice")
]
_DUE = """
SELECT i.*, i.amount_cents - COALESCE(
  (SELECT SUM(p.amount_cents) FROM payments p WHERE p.invoice_id = i.id), 0) AS due_cents
FROM invoices i WHERE i.id = ?
"""


@cache
def _data(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((HERE / name).read_text(encoding="utf-8")) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{HERE / name} must hold a mapping")
    return loaded


@tool(
    effect=Effect.READ,
    resource="Invoice",
    resource_id="invoice_id",
    resource_loader=invoice_attributes,
)
def lookup_invoice(invoice_id: InvoiceId) -> dict[str, Any]:
    """Look up a vendor invoice by id (e.g. INV-1001): vendor, amount due, status, memo."""
    row = read_one(_DUE, (invoice_id,))
    if row is None:  # the gate denies unknown invoices first; kept for direct calls
        return {"found": False, "invoice_id": invoice_id}
    payments = read(
        "SELECT id, amount_cents, status FROM payments WHERE invoice_id = ? ORDER BY id",
        (invoice_id,),
    )
    return {
        "found": True,
        "invoice_id": row["id"],
        "vendor": row["vendor"],
        "amount": money(row["amount_cents"]),
        "amount_due": money(row["due_cents"]),
        "currency": row["currency"],
        "department": row["department"],
        "due_on": row["due_on"],
        "status": row["status"],
        "payments": [
            {"payment_id": p["id"], "amount": money(p["amount_cents"]), "status": p["status"]}
            for p in payments
        ],
        "memo": str(_data("memos.yaml").get(invoice_id, "")),
    }


@tool(effect=Effect.READ)
def lookup_vendor(vendor: VendorName) -> dict[str, Any]:
    """Look up a vendor's master record: whether it may be paid and its bank account on file."""
    wanted = " ".join(vendor.lower().split())
    for name, record in (_data("vendors.yaml").get("vendors") or {}).items():
        if wanted in (name.lower(), name.lower().removesuffix(" ltd").removesuffix(" inc")):
            return {"found": True, "vendor": name, **record}
    return {"found": False, "vendor": vendor, "payable": False, "why": "no such vendor on file"}
