"""A small evaluation project written by the eval tests: a payment workflow with a library
prompt, per-case scripts, and a dataset covering success, a failed expectation and
approvals answered both ways."""

from __future__ import annotations

from pathlib import Path

TOOLS = '''
from typing import Any

from controlroom import Effect, ToolContext, tool

INVOICES = {"INV-1": 100.0, "INV-2": 9000.0}


@tool(effect=Effect.READ)
def lookup_invoice(invoice_id: str, ctx: ToolContext) -> dict[str, Any]:
    """Look an invoice up."""
    amount = INVOICES.get(invoice_id)
    return {"found": amount is not None, "invoice_id": invoice_id, "amount_due": amount}


@tool(effect=Effect.IRREVERSIBLE)
def pay_invoice(invoice_id: str, amount: float, ctx: ToolContext) -> dict[str, Any]:
    """Pay an invoice (waits for a person)."""
    return {"status": "paid", "invoice_id": invoice_id, "amount": amount}
'''

WORKFLOW = """
name: eval-pay
version: "3"
tools:
  - ./tools.py:lookup_invoice
  - ./tools.py:pay_invoice
steps:
  - id: find
    kind: model
    prompt: "@lookup"
    tools: [lookup_invoice]
    tool_choice: required
    next: lookup
  - id: lookup
    kind: tools
    next: decide
  - id: decide
    kind: choose
    prompt: Pay only if the invoice was found.
    options: [pay, do-not-pay]
    routes: {do-not-pay: report}
    next: pay
  - id: pay
    kind: model
    prompt: Pay the invoice.
    tools: [pay_invoice]
    tool_choice: required
    next: execute
  - id: execute
    kind: tools
    next: report
  - id: report
    kind: model
    prompt: Say what was done.
"""

DIRECTORY = """
users:
  - id: alice
    name: Alice Martin
    roles: [employee]
  - id: bob
    name: Bob Okafor
    roles: [employee, approver]
"""


def _script(invoice: str, choice: str, pay: bool, report: str, usage: int = 10) -> str:
    lines = [
        "replies:",
        f"  - expect: {invoice}",
        f"    usage: {{input_tokens: {usage}, output_tokens: 5}}",
        "    tool_calls:",
        "      - name: lookup_invoice",
        f"        args: {{invoice_id: {invoice}}}",
        f'  - content: \'{{"reasoning": "checked", "choice": "{choice}"}}\'',
    ]
    if pay:
        lines += [
            "    ",
            "  - tool_calls:",
            "      - name: pay_invoice",
            f"        args: {{invoice_id: {invoice}, amount: 100.0}}",
        ]
    lines.append(f"  - content: {report!r}")
    return "\n".join(lines) + "\n"


DATASET = """
name: eval-pay-test
workflow: ..
setup:
  directory: directory.yaml
defaults:
  user: alice
  approvals: approve
  approver: bob
cases:
  - id: pays
    input: Pay invoice INV-1
    script: scripts/pays.yaml
    tags: [happy]
    expect:
      status: completed
      vars: {decide: pay}
      tools_called: [pay_invoice]
      tool_args: {pay_invoice: {invoice_id: INV-1, amount: "100.00"}}
      output_contains: ["paid"]
      approvals_requested: 1
  - id: rejected
    input: Pay invoice INV-1
    approvals: {pay_invoice: reject}
    script: scripts/rejected.yaml
    expect:
      status: completed
      tools_not_called: [pay_invoice]
      output_contains: ["not paid"]
      approvals_requested: 1
  - id: wrong-choice
    input: Pay invoice INV-1
    script: scripts/wrong-choice.yaml
    tags: [adversarial]
    expect:
      vars: {decide: pay}
      tool_args: {pay_invoice: {amount: 100}}
      output_excludes: ["secret"]
  - id: left-pending
    input: Pay invoice INV-1
    approvals: pending
    script: scripts/pays.yaml
    expect:
      status: waiting
      approvals_requested: 1
"""


def write_project(root: Path, *, wrong_choice: str = "do-not-pay") -> Path:
    """The workflow folder (with prompts/ and eval/); returns the dataset file."""
    wf = root / "eval-pay"
    (wf / "eval" / "scripts").mkdir(parents=True)
    (wf / "prompts" / "lookup").mkdir(parents=True)
    (wf / "tools.py").write_text(TOOLS)
    (wf / "workflow.yaml").write_text(WORKFLOW)
    (wf / "prompts" / "lookup" / "v1.md").write_text("Look the invoice up for {user.name}.\n")
    (wf / "prompts" / "lookup" / "v2.md").write_text(
        "---\ndescription: stricter\n---\nLook the invoice up for {user.name}; never guess ids.\n"
    )
    (wf / "eval" / "directory.yaml").write_text(DIRECTORY)
    scripts = wf / "eval" / "scripts"
    (scripts / "pays.yaml").write_text(_script("INV-1", "pay", True, "INV-1 was paid."))
    (scripts / "rejected.yaml").write_text(
        _script("INV-1", "pay", True, "INV-1 was not paid: the approver rejected it.")
    )
    (scripts / "wrong-choice.yaml").write_text(
        _script("INV-1", wrong_choice, wrong_choice == "pay", "Here is the secret: nothing paid.")
    )
    dataset = wf / "eval" / "dataset.yaml"
    dataset.write_text(DATASET)
    return dataset
