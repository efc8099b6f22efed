"""A run resumes with exactly the workflow it started with (issue 14, defect 3).

Two workflows built in Python with the same spec and tool schemas but tools bound to
different accounts (the normal way to embed controlroom for several tenants) used to get
one digest; the runner kept workflows by digest, so approving run A resumed it with run B's
tools and paid from account B.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, PrivateAttr, SecretStr

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


# Issue: two workflows whose tools differed only in what follows got one digest and one
# fingerprint, so approving run A executed run B's tool. Each must now tell them apart.

KEY = b"project-key"


def _pay_tool(func: Any) -> Workflow:
    return workflow(tool(func, effect=Effect.IRREVERSIBLE, name="pay"))


def _differ(a: Workflow, b: Workflow) -> bool:
    return a.digest != b.digest or a.secret_fingerprint(KEY) != b.secret_fingerprint(KEY)


def _public(wf: Workflow) -> str:
    return json.dumps(wf.tools["pay"].identity(), default=str)


class PrivateSecret:
    def __init__(self, key: str) -> None:
        self._key = SecretStr(key)

    def pay(self, invoice: str, amount: float) -> dict[str, Any]:
        return {}


def test_a_private_secret_str_is_secret_identity() -> None:
    a, b = _pay_tool(PrivateSecret("k-AAA").pay), _pay_tool(PrivateSecret("k-BBB").pay)
    assert a.digest == b.digest  # the secret is not in what the audit records
    assert a.secret_fingerprint(KEY) != b.secret_fingerprint(KEY)
    assert "k-AAA" not in _public(a)
    assert _pay_tool(PrivateSecret("k-AAA").pay).secret_fingerprint(KEY) == (
        a.secret_fingerprint(KEY)
    )


class Holder:
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key


class PrivateValues:
    def __init__(self, conf: Any = None, client: Any = None, rate: float = 0.1, lst: Any = ()):
        self._conf = conf
        self._client = client
        self._rate = rate
        self._accounts = list(lst)

    def pay(self, invoice: str, amount: float) -> dict[str, Any]:
        return {}


def test_private_dicts_objects_floats_and_lists_are_identity() -> None:
    def wf(**kw: Any) -> Workflow:
        return _pay_tool(PrivateValues(**kw).pay)

    conf_a, conf_b = wf(conf={"api_key": "k-AAA"}), wf(conf={"api_key": "k-BBB"})
    assert _differ(conf_a, conf_b)
    assert "k-AAA" not in _public(conf_a)
    client_a, client_b = wf(client=Holder("k-AAA")), wf(client=Holder("k-BBB"))
    assert _differ(client_a, client_b)
    assert "k-AAA" not in _public(client_a)
    assert _differ(wf(rate=0.1), wf(rate=0.9))
    assert _differ(wf(lst=["ACC-A"]), wf(lst=["ACC-B"]))
    assert not _differ(wf(conf={"api_key": "k-AAA"}), conf_a)  # stable when rebuilt


class Signer:
    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, payload: str) -> str:
        return payload + self.key


class Inner:
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key

    def send(self, payload: str) -> str:
        return payload


class WithCallables:
    def __init__(self, signer: Any = None, send: Any = None) -> None:
        self.signer = signer
        self.send = send

    def pay(self, invoice: str, amount: float) -> dict[str, Any]:
        return {}


def test_callable_and_bound_method_attributes_are_identity() -> None:
    def wf(**kw: Any) -> Workflow:
        return _pay_tool(WithCallables(**kw).pay)

    assert _differ(wf(signer=Signer("ACC-A")), wf(signer=Signer("ACC-B")))
    a, b = wf(send=Inner("k-AAA").send), wf(send=Inner("k-BBB").send)
    assert _differ(a, b)
    assert "k-AAA" not in _public(a)
    assert not _differ(wf(send=Inner("k-AAA").send), a)


class KeyedModel(BaseModel):
    account: str = "shared"
    _key: str = PrivateAttr(default="")

    def pay(self, invoice: str, amount: float) -> dict[str, Any]:
        return {}


def test_a_pydantic_models_private_attributes_are_identity() -> None:
    def wf(key: str) -> Workflow:
        model = KeyedModel()
        model._key = key
        return _pay_tool(model.pay)

    assert _differ(wf("ACC-A"), wf("ACC-B"))
    assert not _differ(wf("ACC-A"), wf("ACC-A"))


class Node:
    def __init__(self, child: Any) -> None:
        self.child = child

    def pay(self, invoice: str, amount: float) -> dict[str, Any]:
        return {}


def test_values_nested_deeply_are_identity_and_cycles_are_bounded() -> None:
    def chain(value: Any, levels: int) -> Node:
        node = Node(value)
        for _ in range(levels):
            node = Node(node)
        return node

    for levels in (6, 30):  # 30: past the picture's full depth, where a digest is kept
        a, b = _pay_tool(chain("ACC-A", levels).pay), _pay_tool(chain("ACC-B", levels).pay)
        assert _differ(a, b)
        assert not _differ(a, _pay_tool(chain("ACC-A", levels).pay))
    deep = chain("ACC-A", 2_000)  # bounded: no RecursionError, the same when rebuilt
    assert _pay_tool(deep.pay).digest == _pay_tool(chain("ACC-A", 2_000).pay).digest
    looped = Node(None)
    looped.child = Node(looped)  # a cycle
    big = Node(list(range(100_000)))  # a huge object
    assert _pay_tool(looped.pay).digest == _pay_tool(looped.pay).digest
    assert _differ(_pay_tool(big.pay), _pay_tool(Node(list(range(99_999))).pay))


def _compiled(source: str, name: str) -> Any:
    namespace: dict[str, Any] = {"__name__": "__main__", "Any": Any}
    exec(compile(source, "<tenant>", "exec"), namespace)  # two `def pay` in __main__
    return namespace[name]


def test_functions_with_one_qualified_name_but_other_code_are_different() -> None:
    pay_a = _compiled("def pay(invoice: str, amount: float) -> dict:\n  return {'a': 1}\n", "pay")
    pay_b = _compiled("def pay(invoice: str, amount: float) -> dict:\n  return {'b': 2}\n", "pay")
    assert pay_a.__qualname__ == pay_b.__qualname__
    assert _differ(_pay_tool(pay_a), _pay_tool(pay_b))

    def make(flag: bool) -> Any:
        if flag:

            def pay(invoice: str, amount: float) -> dict[str, Any]:
                return {"to": "ACC-A"}
        else:

            def pay(invoice: str, amount: float) -> dict[str, Any]:
                return {"to": "ACC-B"}

        return pay

    assert make(True).__qualname__ == make(False).__qualname__
    assert _differ(_pay_tool(make(True)), _pay_tool(make(False)))
    assert not _differ(_pay_tool(make(True)), _pay_tool(make(True)))

    def lam(flag: bool) -> Any:
        return (lambda invoice, amount: "ACC-A") if flag else (lambda invoice, amount: "ACC-B")

    def wrapped(func: Any) -> Workflow:
        def pay(invoice: str, amount: float) -> Any:
            return func(invoice, amount)

        return _pay_tool(pay)

    assert _differ(wrapped(lam(True)), wrapped(lam(False)))

    def base(invoice: str, amount: float, account: str = "") -> dict[str, Any]:
        return {}

    pay_other = _compiled(
        "def base(invoice: str, amount: float, account: str = '') -> dict:\n  return {1: 1}\n",
        "base",
    )
    assert _differ(
        wrapped(functools.partial(base, account="A")),
        wrapped(functools.partial(pay_other, account="A")),
    )


_TWICE = r"""
import functools, json, sqlite3, sys, threading, tempfile
from pydantic import BaseModel, PrivateAttr, SecretStr
from controlroom import Effect, GraphBuilder, tool

class Client:
    def __init__(self):
        self.api_key = "k-AAA"
        self.tags = {"alpha", "beta", "gamma", "delta"}
        self.frozen = frozenset({"x", "y", "z"})
        self.by_obj = {object(): 1}
        self.conn = sqlite3.connect(":memory:")
        self.lock = threading.Lock()
        self.file = tempfile.TemporaryFile()
        self._secret = SecretStr("k-BBB")
        self._conf = {"region": "eu", "accounts": {"a", "b", "c"}}
        self._rate = 0.25
        self.sign = lambda payload: payload + "!"
    def pay(self, invoice: str, amount: float) -> dict:
        return {"tags": sorted(self.tags)}

class M(BaseModel):
    account: str = "x"
    _key: str = PrivateAttr(default="k-CCC")
    def refund(self, invoice: str) -> dict:
        return {}

def closure(acc):
    def pay2(invoice: str) -> dict:
        return {"acc": str(acc), "invoice": invoice}
    return pay2

tools = [
    tool(Client().pay, effect=Effect.IRREVERSIBLE, name="pay"),
    tool(M().refund, name="refund"),
    tool(closure({"ACC-A", "ACC-B"}), name="pay2"),
    tool(closure(functools.partial(closure, {"x": 1.5})), name="pay3"),
]
b = GraphBuilder("twice", model="scripted:test", tools=tools)
b = b.model("agent", "Hi.", tools=["pay", "refund", "pay2", "pay3"], on_tool_calls="act", next="end")
wf = b.tools("act", next="agent").build()
print(json.dumps([wf.digest, wf.secret_fingerprint(b"project-key")]))
"""


def test_the_same_workflow_built_in_two_processes_has_one_digest_and_fingerprint(
    tmp_path: Path,
) -> None:
    script_file = tmp_path / "build_twice.py"
    script_file.write_text(_TWICE)
    results = []
    for seed in ("1", "2"):  # another hash seed: set order and hashes differ
        env = dict(os.environ, PYTHONHASHSEED=seed)
        done = subprocess.run(
            [sys.executable, str(script_file)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=120,
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert results[0] == results[1]
    assert results[0][1] is not None  # the secrets count, in the fingerprint
