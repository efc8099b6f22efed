"""Replay parts: comparing logs, recorded replies, dry-run tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from controlroom import Effect, Principal, ToolContext, tool
from controlroom.audit import ReplayDivergence, ReplayError, ReplaySession, read_records
from controlroom.audit.replay import ReplayChatModel, compare, events
from tests.audit_support import audit_log, finished_run, write_workflow


@pytest.fixture
def recorded(tmp_path: Path, project: Path) -> list[dict[str, Any]]:
    return read_records(audit_log(project, finished_run(project, write_workflow(tmp_path / "w"))))


def test_a_log_matches_itself_and_differences_are_named(recorded: list[dict[str, Any]]) -> None:
    count, divergence = compare(recorded, recorded)
    assert divergence is None and count == len(events(recorded)) == 19
    changed = [dict(r) for r in recorded]
    deny = next(i for i, r in enumerate(changed) if r.get("controlroom.decision") == "deny")
    changed[deny]["controlroom.decision"] = "allow"
    _, divergence = compare(recorded, changed)
    assert divergence is not None and divergence.seq == recorded[deny]["seq"]
    assert "wire_money" in divergence.what and "`controlroom.decision` differs" in divergence.what
    assert (divergence.recorded, divergence.replayed) == ("deny", "allow")
    _, short = compare(recorded, recorded[:10])
    assert short is not None and short.what.startswith("the replay stopped before")


def test_a_reexecuted_action_counts_once_with_its_last_attempt(
    recorded: list[dict[str, Any]],
) -> None:
    """A crash after a call's result, before the step's checkpoint: the step runs again."""
    decision, result = recorded[2], recorded[3]
    assert (decision["kind"], result["kind"]) == ("tool.decision", "tool.result")
    again = [*recorded[:4], {**decision, "attempt": 2}, {**result, "attempt": 2}, *recorded[4:]]
    assert compare(recorded, again)[1] is None


def test_recorded_replies_are_played_and_a_different_conversation_stops_them(
    recorded: list[dict[str, Any]],
) -> None:
    session = ReplaySession(recorded)
    model = ReplayChatModel(session=session).bind_tools([])
    with pytest.raises(ReplayDivergence, match="differs from the recorded input"):
        model.invoke([SystemMessage("another prompt"), HumanMessage("hi")])
    assert session.divergences[0].seq == 1


def test_dry_run_tools_return_what_was_recorded(recorded: list[dict[str, Any]]) -> None:
    session = ReplaySession(recorded)

    @tool(effect=Effect.IRREVERSIBLE)
    def pay_invoice(invoice_id: str, amount: float) -> dict[str, Any]:
        """Must not run."""
        raise AssertionError("executed")

    dry = session.dry_run(pay_invoice)
    ctx = ToolContext(Principal(id="alice"), "r", "call_2_0", "k", Path("."))
    result = dry.invoke(dry.args_model(invoice_id="INV-1001", amount=1200.0), ctx)
    assert result["amount"] == 1200.0 and result["status"] == "paid"
    unknown = ToolContext(Principal(id="alice"), "r", "call_9_9", "k", Path("."))
    with pytest.raises(ReplayDivergence, match="never ran"):
        dry.invoke(dry.args_model(invoice_id="X", amount=1.0), unknown)


def test_a_log_without_its_start_or_with_redacted_outputs_is_refused(
    recorded: list[dict[str, Any]],
) -> None:
    with pytest.raises(ReplayError, match=r"no run\.start"):
        ReplaySession(recorded[1:])
    start = {**recorded[0], "controlroom.config": {"audit.redaction": "mask"}}
    with pytest.raises(ReplayError, match="redaction `mask`"):
        ReplaySession([start, *recorded[1:]])
