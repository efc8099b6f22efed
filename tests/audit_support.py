"""Shared by the audit tests: a workflow with a denied, an approved and an edited call.

``wf.py`` holds three tools that note every real execution in ``<home>/executed.jsonl``
(so a test can tell what ran without trusting the audit writer), a gate that denies wire
transfers by policy, and the workflow; ``script.yaml`` is the model's part.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from controlroom import Runner, RunStatus
from controlroom.audit import expected_public_key, log_path, read_records

WF_PY = '''
import json
from typing import Any

from controlroom import Decision, Effect, GraphBuilder, ToolContext, Verdict, tool
from controlroom.tools.gate import DeclaredGate

DUE = {"INV-1001": 1250.0, "INV-1002": 480.5}


def _note(ctx: ToolContext, tool: str, args: dict) -> None:
    with (ctx.home / "executed.jsonl").open("a") as out:
        out.write(json.dumps({"tool": tool, "call_id": ctx.call_id, "args": args}) + "\\n")


@tool(effect=Effect.READ)
def lookup_invoice(invoice_id: str, ctx: ToolContext) -> dict[str, Any]:
    """Look an invoice up: amount due and status."""
    _note(ctx, "lookup_invoice", {"invoice_id": invoice_id})
    return {"invoice_id": invoice_id, "amount_due": DUE.get(invoice_id, 0.0), "status": "open"}


@tool(effect=Effect.IRREVERSIBLE)
def pay_invoice(invoice_id: str, amount: float, ctx: ToolContext) -> dict[str, Any]:
    """Pay an invoice (irreversible: a person approves it first)."""
    _note(ctx, "pay_invoice", {"invoice_id": invoice_id, "amount": amount})
    return {"status": "paid", "invoice_id": invoice_id, "amount": amount,
            "reference": ctx.idempotency_key}


@tool(effect=Effect.WRITE)
def wire_money(iban: str, amount: float, ctx: ToolContext) -> dict[str, Any]:
    """Wire money to a bank account."""
    _note(ctx, "wire_money", {"iban": iban, "amount": amount})
    return {"status": "wired"}


class NoWires:
    """The declared gate, except that wire transfers are denied by policy."""

    policy_set_hash = "sha256:test-policy-set"

    def decide(self, principal, tool, args):
        if tool.name == "wire_money":
            return Decision(verdict=Verdict.DENY, reason="wire transfers are not allowed",
                            policies=("no-wires",))
        return DeclaredGate().decide(principal, tool, args)


workflow = (
    GraphBuilder("payments", model="scripted:script.yaml",
                 tools=[lookup_invoice, pay_invoice, wire_money], gate=NoWires())
    .model("agent", "You pay invoices for {user.name}.",
           tools=["lookup_invoice", "pay_invoice", "wire_money"], on_tool_calls="act", next="end")
    .tools("act", next="agent")
    .build()
)
'''

SCRIPT = """
replies:
  - content: Looking both invoices up.
    tool_calls:
      - {name: lookup_invoice, args: {invoice_id: INV-1001}}
      - {name: lookup_invoice, args: {invoice_id: INV-1002}}
  - content: Paying INV-1002; INV-1001 by wire.
    tool_calls:
      - {name: wire_money, args: {iban: DE89370400440532013000, amount: 1250.0}}
      - {name: pay_invoice, args: {invoice_id: INV-1002, amount: 480.5}}
  - content: Wires are not allowed, so INV-1001 goes through the payment tool.
    tool_calls:
      - {name: pay_invoice, args: {invoice_id: INV-1001, amount: 1250.0}}
  - Paid INV-1002 (480.50) and INV-1001 (1200.00 after the approved discount).
"""

INPUT = "Pay the open invoices INV-1001 and INV-1002"
EDITED = {"invoice_id": "INV-1001", "amount": 1200.0}


def write_workflow(folder: Path) -> str:
    """Write the workflow files; returns the reference `controlroom run` takes."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wf.py").write_text(WF_PY)
    (folder / "script.yaml").write_text(SCRIPT)
    return f"{folder / 'wf.py'}:workflow"


def finished_run(home: Path, ref: str) -> str:
    """Run it to the end in this process: approve one payment as is, one with edits."""
    with Runner(home=home) as runner:
        result = runner.start(ref, user="alice", input=INPUT)
        assert result.status is RunStatus.WAITING, result.run
        [first] = result.pending
        result = runner.approve(result.run_id, first.approval_id, by="bob")
        assert result.status is RunStatus.WAITING, result.run
        [second] = result.pending
        result = runner.approve(
            result.run_id, second.approval_id, by="bob", args=EDITED, reason="agreed discount"
        )
        assert result.status is RunStatus.COMPLETED, result.run
        return result.run_id


def audit_log(home: Path, run_id: str) -> Path:
    return log_path(home / "audit", run_id)


def project_key(home: Path) -> bytes:
    return expected_public_key(home / "keys")


def records(home: Path, run_id: str) -> list[dict[str, Any]]:
    return read_records(audit_log(home, run_id))


def executed(home: Path) -> list[dict[str, Any]]:
    path = home / "executed.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]
