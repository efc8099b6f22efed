"""Acceptance 2: a property test over every tool of the pack, for users of every role.

Hypothesis generates (user, tool, arguments) from each tool's JSON schema (with realistic
ids mixed in, so that calls reach existing records), and whether approvals are granted.
Each call runs through the Runner with a scripted model. Whatever is generated:

* a call the gate denies never reaches the tool function;
* every executed call had an allow decision for exactly those arguments, or an approve
  decision and a person's approval (``--approve all``); with ``--approve none`` approval
  calls never execute;
* arguments that fail validation reach neither the gate nor the tool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from controlroom import ApprovalStatus, RunStatus, ToolArgumentsError, Verdict
from controlroom.testing import ScriptedReply
from tests.pack_support import (
    PACK_TOOLS,
    RecordingGate,
    Spy,
    agent_workflow,
    call,
    directory,
    pack_gate,
    pack_home,
    runner_with,
)
from tests.schema_strategies import from_schema

_ = pack_home  # fixture
USERS = sorted(directory())
INTERNAL = [f"{u}@example.com" for u in ("alice", "bob", "carol", "Erin")]
EXTERNAL = ["partner@northwind.example", "someone@gmail.com", "x@example.com.evil.io"]


def _ids(prefix: str, numbers: range, width: int) -> st.SearchStrategy[str]:
    return st.sampled_from([f"{prefix}{n:0{width}d}" for n in numbers])


HINTS: dict[str, st.SearchStrategy[Any]] = {
    "employee_id": st.one_of(
        _ids("E", range(1, 16), 4),
        _ids("E", range(150, 201, 25), 4),
        st.from_regex(r"E[0-9]{4}", fullmatch=True),
    ),
    "invoice_id": st.one_of(_ids("INV-", range(1001, 1011), 4), st.just("INV-9999")),
    "payment_id": st.one_of(_ids("PAY-", range(1, 6), 4), st.just("PAY-9999")),
    "ticket_id": st.one_of(_ids("TCK-", range(1001, 1011), 4), st.just("TCK-9999")),
    "amount": st.one_of(
        st.sampled_from([100, 480.5, 1250, 4999.99, 5000, 5000.01, 9000, 10000, 12000, 64000]),
        st.floats(min_value=-10, max_value=2e7, allow_nan=False),
    ),
    "to": st.lists(st.sampled_from(INTERNAL + EXTERNAL), min_size=0, max_size=3),
    "cc": st.one_of(st.none(), st.lists(st.sampled_from(INTERNAL + EXTERNAL), max_size=2)),
    "assignee": st.one_of(st.none(), st.sampled_from(["gina", "dave", "nobody9"])),
}
CALLS = st.sampled_from(sorted(PACK_TOOLS)).flatmap(
    lambda name: st.tuples(
        st.just(name),
        st.one_of(
            from_schema(PACK_TOOLS[name].json_schema()["function"]["parameters"], hints=HINTS),
            from_schema(PACK_TOOLS[name].json_schema()["function"]["parameters"]),
        ),
    )
)


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(user=st.sampled_from(USERS), tool_call=CALLS, approve=st.sampled_from(["all", "none"]))
def test_no_denied_call_ever_reaches_a_tool(
    pack_home: Path, user: str, tool_call: tuple[str, dict[str, Any]], approve: str
) -> None:
    name, args = tool_call
    spy = Spy()
    gate = RecordingGate(pack_gate())
    runner = runner_with(
        pack_home, ScriptedReply(tool_calls=[call(name, **args)]), ScriptedReply(content="ok")
    )
    result = runner.start(agent_workflow(spy.tools(), gate), user=user, input="go",
                          approve=approve)  # type: ignore[arg-type]  # fmt: skip
    for item in result.pending:  # a rule naming its approvers waits for one of them
        assert approve == "all"
        who = next(
            p.id
            for p in directory().values()
            if set(p.roles) & set(item.approvers) and p.id != user
        )
        result = runner.approve(result.run_id, item.approval_id, by=who)
    assert result.status is RunStatus.COMPLETED, result.run.error
    try:
        checked = PACK_TOOLS[name].validate_args(args).model_dump(mode="json")
    except ToolArgumentsError:
        event("invalid arguments")
        assert gate.decisions == [] and spy.calls == []  # invalid: neither gate nor tool
        return
    # One decision, or the same one again when the step re-ran after a person decided.
    assert len(gate.decisions) in (1, 2)
    assert all(d == gate.decisions[0] for d in gate.decisions)
    who, tool, decided_args, decision = gate.decisions[0]
    event(f"{decision.verdict.value} (approvals: {approve})")
    assert (who, tool, decided_args) == (user, name, checked)
    approvals = runner.store.list_approvals(run_id=result.run_id, status=None)
    if decision.verdict is Verdict.DENY:
        assert spy.calls == [], f"denied call executed: {decision}"
        assert approvals == []
        return
    if decision.verdict is Verdict.APPROVE:
        assert [a.tool for a in approvals] == [name]  # a person was asked first
        if approve == "none":
            assert approvals[0].status is ApprovalStatus.REJECTED
            assert spy.calls == []
            return
        assert approvals[0].status is ApprovalStatus.APPROVED
    else:
        assert approvals == []
    assert len(spy.calls) == 1
    event("executed")
    executed_tool, executed_for, executed_args = spy.calls[0]
    assert (executed_tool, executed_for) == (name, user)
    assert PACK_TOOLS[name].validate_args(executed_args).model_dump(mode="json") == checked
