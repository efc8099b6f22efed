"""A run resumes with exactly the workflow it started with (issue 14, defect 3).

Two workflows built in Python with the same spec and tool schemas but tools bound to
different accounts (the normal way to embed controlroom for several tenants) used to get
one digest; the runner kept workflows by digest, so approving run A resumed it with run B's
tools and paid from account B.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from controlroom import Effect, GraphBuilder, Runner, RunStateError, RunStatus, Tool, Workflow, tool
from controlroom.testing import ScriptedChatModel, ScriptedReply, ScriptedToolCall

pytestmark = pytest.mark.usefixtures("backend")

PAID: list[tuple[str, str, float]] = []


def pay_from(account: str) -> Tool:
    """A payment tool bound to one account (a closure: same name, schema and code)."""

    @tool(effect=Effect.IRREVERSIBLE, name="pay")
    def pay(invoice: str, amount: float) -> dict[str, Any]:
        """Pay an invoice from the tenant's account."""
        PAID.append((account, invoice, amount))
        return {"paid": amount, "from": account}

    return pay


class Bank:
    """A client object whose bound method is the tool (the other common way)."""

    def __init__(self, account: str, conn: sqlite3.Connection) -> None:
        self.account = account
        self.conn = conn  # not part of the identity: a handle differs in every process

    def pay(self, invoice: str, amount: float) -> dict[str, Any]:
        PAID.append((self.account, invoice, amount))
        return {"paid": amount, "from": self.account}


def workflow(pay: Tool) -> Workflow:
    return (
        GraphBuilder("payments", model="scripted:test", tools=[pay])
        .model("agent", "Pay for {user.name}.", tools=["pay"], on_tool_calls="act", next="end")
        .tools("act", next="agent")
        .build()
    )


def pay_call() -> ScriptedReply:
    return ScriptedReply(
        tool_calls=[ScriptedToolCall(name="pay", args={"invoice": "INV-1", "amount": 10.0})]
    )


def script(*replies: ScriptedReply) -> ScriptedChatModel:
    return ScriptedChatModel(replies=list(replies))


@pytest.fixture(autouse=True)
def _reset() -> None:
    PAID.clear()


def test_tools_bound_to_different_accounts_give_different_digests() -> None:
    a, b = workflow(pay_from("ACC-A")), workflow(pay_from("ACC-B"))
    assert a.digest != b.digest
    assert workflow(pay_from("ACC-A")).digest == a.digest  # stable for the same configuration
    conn = sqlite3.connect(":memory:")
    by_method = [
        workflow(tool(Bank(acc, conn).pay, effect=Effect.IRREVERSIBLE, name="pay"))
        for acc in ("ACC-A", "ACC-B")
    ]
    assert by_method[0].digest != by_method[1].digest
    other_conn = sqlite3.connect(":memory:")
    again = workflow(tool(Bank("ACC-A", other_conn).pay, effect=Effect.IRREVERSIBLE, name="pay"))
    assert again.digest == by_method[0].digest  # a database handle is not identity


def test_approving_run_a_pays_from_account_a(project: Path) -> None:
    wf_a, wf_b = workflow(pay_from("ACC-A")), workflow(pay_from("ACC-B"))
    # the scripted model plays the reply at index "AI messages so far": both runs ask to
    # pay, then report
    model = script(pay_call(), ScriptedReply(content="Paid."))
    runner = Runner(home=project, models={"scripted:test": model})
    run_a = runner.start(wf_a, user="alice", input="pay INV-1")
    run_b = runner.start(wf_b, user="alice", input="pay INV-1")
    assert run_a.status is run_b.status is RunStatus.WAITING
    done = runner.approve(run_a.run_id, run_a.pending[0].approval_id, by="bob")
    assert done.status is RunStatus.COMPLETED
    assert PAID == [("ACC-A", "INV-1", 10.0)]
    runner.close()


def after() -> dict[str, ScriptedChatModel]:
    return {"scripted:test": script(pay_call(), ScriptedReply(content="Paid."))}


def test_another_runner_resumes_with_the_registered_workflow_and_never_guesses(
    project: Path,
) -> None:
    wf_a, wf_b = workflow(pay_from("ACC-A")), workflow(pay_from("ACC-B"))
    with Runner(home=project, models=after()) as first:
        run_a = first.start(wf_a, user="alice", input="pay INV-1")
    item = run_a.pending[0].approval_id

    # Another process that registered only B's workflow cannot continue A's run, and
    # records nothing when asked to approve and continue it.
    with Runner(home=project, models=after()) as other:
        other.register(wf_b)
        with pytest.raises(RunStateError, match=r"register\(workflow\).*Nothing was recorded"):
            other.approve(run_a.run_id, item, by="bob")
        assert [a.approval_id for a in other.approvals(run_a.run_id)] == [item]
    assert PAID == []

    # Two distinct objects with A's digest (equal as far as controlroom can see): refused.
    twin = workflow(pay_from("ACC-A"))
    with Runner(home=project, models=after()) as other:
        other.register(wf_a)
        other.register(twin)
        with pytest.raises(RunStateError, match="will not guess"):
            other.approve(run_a.run_id, item, by="bob")
    assert PAID == []

    with Runner(home=project, models=after()) as other:
        other.register(wf_b)
        other.register(wf_a)
        done = other.approve(run_a.run_id, item, by="bob")
    assert done.status is RunStatus.COMPLETED
    assert PAID == [("ACC-A", "INV-1", 10.0)]


class KeyedBank:
    """A client whose account is its API key (the secret is the identity)."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key

    def pay(self, invoice: str, amount: float) -> dict[str, Any]:
        PAID.append((self.api_key[:6], invoice, amount))
        return {"paid": amount}


def test_tools_that_differ_only_in_a_secret_are_different_workflows(project: Path) -> None:
    """The secret stays out of the digest (the audit records it), yet a run of account A
    never resumes with account B's key."""

    def keyed(key: str) -> Workflow:
        return workflow(tool(KeyedBank(key).pay, effect=Effect.IRREVERSIBLE, name="pay"))

    a, b = keyed("sk-AAA-secret-one"), keyed("sk-BBB-secret-two")
    assert a.digest == b.digest  # no secret in what the audit records
    with Runner(home=project, models=after()) as first:
        run_a = first.start(a, user="alice", input="pay INV-1")
    item = run_a.pending[0].approval_id
    assert "sk-AAA" not in (project / "audit" / f"{run_a.run_id}.jsonl").read_text()
    store = project / "controlroom.sqlite"
    if store.exists():  # SQLite: the store keeps an HMAC, never the key
        assert b"sk-AAA" not in store.read_bytes()
    with Runner(home=project, models=after()) as other:
        other.register(b)
        with pytest.raises(RunStateError, match="Nothing was recorded"):
            other.approve(run_a.run_id, item, by="bob")
        with pytest.raises(RunStateError, match="other secret configuration"):
            other.resume(run_a.run_id, workflow=b)
    assert PAID == []
    with Runner(home=project, models=after()) as other:
        other.register(b)
        other.register(keyed("sk-AAA-secret-one"))  # the same account, rebuilt
        done = other.approve(run_a.run_id, item, by="bob")
    assert done.status is RunStatus.COMPLETED
    assert PAID == [("sk-AAA", "INV-1", 10.0)]


def test_slots_private_plain_values_and_class_attributes_are_identity() -> None:
    class Slotted:
        __slots__ = ("account",)

        def __init__(self, account: str) -> None:
            self.account = account

        def pay(self, invoice: str, amount: float) -> dict[str, Any]:
            return {}

    class Private:
        def __init__(self, account: str) -> None:
            self._account = account
            self._cache: dict[str, Any] = {}  # not identity: it fills as the tool is used

        def pay(self, invoice: str, amount: float) -> dict[str, Any]:
            return {}

    class Base:
        def pay(self, invoice: str, amount: float) -> dict[str, Any]:
            return {}

    def digest(obj: Any) -> str:
        return workflow(tool(obj.pay, effect=Effect.IRREVERSIBLE, name="pay")).digest

    assert digest(Slotted("A")) != digest(Slotted("B"))
    assert digest(Private("A")) != digest(Private("B"))
    used = Private("A")
    used._cache["x"] = 1
    assert digest(used) == digest(Private("A"))
    per_tenant = [type("Tenant", (Base,), {"account": acc})() for acc in ("A", "B")]
    assert digest(per_tenant[0]) != digest(per_tenant[1])
