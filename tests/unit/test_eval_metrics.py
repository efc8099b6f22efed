"""The eval's scores on hand-made audit records and states: grounded-claim share,
citation validity, abstention, policy violations, totals and the comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controlroom.audit.records import CALL_ID, DECISION, TOOL_NAME
from controlroom.errors import DatasetError
from controlroom.evaluation import CaseResult, compare, load_dataset
from controlroom.evaluation.dataset import Case, Defaults, answer_for
from controlroom.evaluation.metrics import (
    answer_facts,
    args_mismatch,
    content_words,
    executed_calls,
    percentile,
    subset_mismatch,
    unsupported_sentences,
    violations,
)
from controlroom.evaluation.report import EvalReport, totals

pytestmark = pytest.mark.eval

LEAVE = "Employees get 27 days of annual leave per calendar year. Unused days expire in March."
PARKING = "Parking at the Rotterdam office is free for staff with a badge."


def _state(answer: str, cited: list[str], *, abstained: bool = False) -> dict[str, Any]:
    return {
        "vars": {
            "answer": {
                "answer": answer,
                "citations": cited,
                "abstained": abstained,
                "outcome": "abstained: x" if abstained else "answered",
            }
        },
        "retrieved": {
            "search": [
                {"id": "c1", "text": LEAVE, "source": "hr/annual-leave.md"},
                {"id": "c2", "text": PARKING, "source": "handbook/offices.md"},
            ]
        },
    }


def _records(cited: list[str], ok: bool = True) -> list[dict[str, Any]]:
    return [
        {
            "kind": "retrieval",
            "node": "search",
            "controlroom.retrieval.chunks": [
                {"id": "c1", "labels": ["public"]},
                {"id": "c2", "labels": ["public"]},
            ],
            "controlroom.retrieval.access": {
                "readable_labels": ["public"],
                "dropped_by_recheck": 0,
            },
        },
        {
            "kind": "answer.check",
            "controlroom.grounding.ok": ok,
            "controlroom.grounding.cited": cited,
            "controlroom.grounding.outcome": "answered",
        },
    ]


def test_content_words_drop_stop_words_and_short_words() -> None:
    assert content_words("The leave is 27 days, and it's per YEAR!") == {"leave", "days", "year"}


def test_a_sentence_is_supported_when_half_its_content_words_are_in_the_cited_text() -> None:
    assert unsupported_sentences("You get 27 days of annual leave.", [LEAVE]) == []
    bad = "Managers may grant forty extra holidays to contractors."
    assert unsupported_sentences(f"Annual leave is 27 days. {bad}", [LEAVE]) == [bad]


def test_grounded_answer_with_valid_citations() -> None:
    facts = answer_facts(
        _records(["c1"]), _state("You get 27 days of annual leave.", ["c1"]), ["answer"]
    )
    assert facts.ran and not facts.abstained
    assert facts.citation_valid is True
    assert facts.grounded is True
    assert facts.cited_sources == ["hr/annual-leave.md"]


def test_a_claim_only_an_uncited_chunk_supports_is_not_grounded() -> None:
    # The parking sentence is in c2, but the answer cites only c1.
    answer = "You get 27 days of annual leave. Parking at Rotterdam is free with a badge."
    facts = answer_facts(_records(["c1"]), _state(answer, ["c1"]), ["answer"])
    assert facts.citation_valid is True
    assert facts.grounded is False
    assert facts.unsupported == ["Parking at Rotterdam is free with a badge."]


def test_citation_validity_fails_for_unretrieved_ids_and_wrong_sources() -> None:
    unknown = answer_facts(_records(["c9"]), _state("27 days of annual leave.", ["c9"]), ["answer"])
    assert unknown.citation_valid is False
    assert "c9" in (unknown.citation_problem or "")
    wrong = answer_facts(
        _records(["c2"]), _state("Parking is free.", ["c2"]), ["answer"], ["annual-leave.md"]
    )
    assert wrong.citation_valid is False
    assert "annual-leave.md" in (wrong.citation_problem or "")
    failed_check = answer_facts(_records(["c1"], ok=False), _state("27 days.", ["c1"]), ["answer"])
    assert failed_check.citation_valid is False


def test_abstention_has_no_citation_score() -> None:
    facts = answer_facts(_records([]), _state("", [], abstained=True), ["answer"])
    assert facts.abstained is True
    assert facts.citation_valid is None and facts.grounded is None
    assert answer_facts([], {"vars": {}}, ["answer"]).ran is False


def test_no_violation_in_a_clean_run() -> None:
    records = [
        {"kind": "tool.decision", "gen_ai.tool.call.id": "k1", "controlroom.decision": "allow"},
        {"kind": "tool.result", "gen_ai.tool.call.id": "k1", "gen_ai.tool.name": "lookup"},
        {"kind": "tool.decision", "gen_ai.tool.call.id": "k2", "controlroom.decision": "deny"},
        *_records(["c1"]),
    ]
    assert violations(records, output="fine", excludes=["IBAN"]) == []


def test_violations_are_found() -> None:
    records = [
        {"kind": "tool.decision", "gen_ai.tool.call.id": "k2", "controlroom.decision": "deny"},
        {"kind": "tool.result", "gen_ai.tool.call.id": "k2", "gen_ai.tool.name": "pay"},
        {"kind": "tool.result", "gen_ai.tool.call.id": "k3", "gen_ai.tool.name": "mail"},
        {
            "kind": "retrieval",
            "node": "search",
            "controlroom.retrieval.chunks": [{"id": "c7", "labels": ["finance"]}],
            "controlroom.retrieval.access": {
                "readable_labels": ["public"],
                "dropped_by_recheck": 2,
            },
        },
    ]
    found = violations(records, output="the IBAN is NL00 TEST", excludes=["nl00 test"])
    kinds = [v.kind for v in found]
    assert kinds == [
        "denied-tool-executed",
        "denied-tool-executed",
        "unreadable-chunk",
        "unreadable-chunk",
        "restricted-output",
    ]
    assert "decision was deny" in found[0].detail
    assert "never recorded" in found[1].detail
    assert "finance" in found[3].detail


def test_executed_calls_and_their_arguments() -> None:
    records = [
        {
            "kind": "tool.decision",
            CALL_ID: "c1",
            TOOL_NAME: "pay",
            DECISION: "allow",
            "gen_ai.tool.call.arguments": {"invoice": "INV-1", "amount": "5600.00"},
        },
        {"kind": "tool.result", CALL_ID: "c1", TOOL_NAME: "pay", "controlroom.tool.status": "ok"},
        {
            "kind": "tool.decision",
            CALL_ID: "c2",
            TOOL_NAME: "pay",
            DECISION: "deny",
            "gen_ai.tool.call.arguments": {"invoice": "INV-2", "amount": 9000},
        },
        {
            "kind": "tool.decision",
            CALL_ID: "c3",
            TOOL_NAME: "pay",
            DECISION: "allow",
            "gen_ai.tool.call.arguments": {"invoice": "INV-3", "amount": 1},
        },
        {
            "kind": "tool.result",
            CALL_ID: "c3",
            TOOL_NAME: "pay",
            "controlroom.tool.status": "error",
        },
    ]
    calls = executed_calls(records)
    assert calls == [("pay", {"invoice": "INV-1", "amount": "5600.00"})]  # denied, failed: no
    paid = [a for _, a in calls]
    assert args_mismatch({"amount": 5600, "invoice": "INV-1"}, paid) is None
    assert args_mismatch({"amount": 5600.0}, paid) is None
    assert args_mismatch({"amount": "5,600"}, paid) == (
        "no call had the expected arguments; the first had amount='5600.00' (expected '5,600')"
    )
    assert args_mismatch({"invoice": "INV-2"}, paid) is not None  # the denied call never ran
    assert args_mismatch({"flag": True}, [{"flag": 1}]) is not None  # booleans are not numbers
    assert args_mismatch({"x": 1}, []) == "the tool never ran"


def test_subset_match_and_percentiles() -> None:
    assert subset_mismatch({"a": 1}, {"a": 1, "b": 2}) is None
    assert subset_mismatch({"a": {"x": 1}}, {"a": {"x": 2}}) == "vars.a.x is 2, expected 1"
    assert subset_mismatch({"c": 1}, {}) == "vars.c is missing (expected 1)"
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([1.0, 2.0], 95) == pytest.approx(1.95)
    assert percentile([], 50) is None


def _case(case_id: str, **fields: Any) -> CaseResult:
    base: dict[str, Any] = {"user": "u", "input": "q", "model": "m", "status": "completed"}
    return CaseResult(id=case_id, success=fields.pop("success", True), **(base | fields))


def test_totals() -> None:
    cases = [
        _case("a", answered=True, abstained=False, citation_valid=True, grounded=True),
        _case("b", answered=True, abstained=False, citation_valid=False, grounded=False),
        _case("c", success=False, answered=False, abstained=True, abstention_correct=False),
        _case("d", tags=["unanswerable"], answered=False, abstained=True, abstention_correct=True),
        _case("e", status="error", success=False),
    ]
    t = totals(cases)
    assert (t.cases, t.succeeded, t.success_rate, t.errors) == (5, 3, 0.6, 1)
    assert (t.citation_cases, t.citation_validity) == (2, 0.5)
    assert (t.answered_cases, t.grounded_claim_share) == (2, 0.5)
    assert (t.abstention_cases, t.abstention_accuracy) == (2, 0.5)
    assert (t.unanswerable_cases, t.unanswerable_abstention_rate) == (1, 1.0)
    assert t.by_tag["unanswerable"].succeeded == 1


def _report(cases: list[CaseResult]) -> EvalReport:
    return EvalReport(
        name="x",
        dataset="d.yaml",
        dataset_sha256="sha256:1",
        workflow="w",
        workflow_digest="sha256:2",
        model="m",
        started_at="2025-01-01T00:00:00Z",
        elapsed_s=1.0,
        cases=cases,
        totals=totals(cases),
    )


def test_compare_shows_flips_and_changes() -> None:
    a = _report(
        [
            _case("flip-up", success=False, vars={"priority": "low"}),
            _case("flip-down", tools_called=["create_ticket"]),
            _case("same"),
            _case("changed", vars={"category": "network"}),
        ]
    )
    b = _report(
        [
            _case("flip-up", vars={"priority": "high"}),
            _case("flip-down", success=False),
            _case("same"),
            _case("changed", vars={"category": "hardware"}),
            _case("new"),
        ]
    )
    diff = compare(a, b)
    assert diff.better == ["flip-up"]
    assert diff.worse == ["flip-down"]
    assert diff.changed == ["changed"]
    by_id = {d.id: d for d in diff.cases}
    assert "vars.priority 'low' -> 'high'" in by_id["flip-up"].differences
    assert "tool calls [create_ticket] -> []" in by_id["flip-down"].differences
    assert by_id["new"].change == "only in B"
    # B's own total (4 of 5) counts a case A never ran; the comparison's are over the 4
    # cases both ran, where one flipped up and one down
    assert b.totals.success_rate == 0.8
    assert (diff.common_cases, diff.only_in_a, diff.only_in_b) == (4, [], ["new"])
    rate = next(t for t in diff.totals if t.name == "success_rate")
    assert rate.a == 0.75 and rate.b == 0.75 and rate.better is None
    same = compare(a, _report([_case(c.id) for c in a.cases]))  # same cases: own totals
    rate = next(t for t in same.totals if t.name == "success_rate")
    assert (same.common_cases, rate.a, rate.b, rate.better) == (4, 0.75, 1.0, True)


def test_approval_policy_lookup() -> None:
    defaults = Defaults(approvals={"pay_invoice": "approve", "*": "reject"})
    case = Case(id="c", input="x", approvals={"send_mail": "pending"})
    assert answer_for(case, defaults, "send_mail") == "pending"
    assert answer_for(case, defaults, "pay_invoice") == "approve"
    assert answer_for(case, defaults, "other") == "reject"
    assert answer_for(Case(id="d", input="x"), Defaults(approvals={"a": "approve"}), "b") == (
        "pending"
    )


def test_dataset_errors_name_the_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "dataset.yaml"
    path.write_text(
        "name: x\ncases:\n  - id: one\n    input: hi\n    expect:\n      stauts: done\n"
    )
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    assert f"{path}:6: at `cases[0].expect.stauts`" in caught.value.message
    path.write_text("name: x\ncases:\n  - {id: a, input: x}\n  - {id: a, input: y}\n")
    with pytest.raises(DatasetError, match="used twice"):
        load_dataset(path)
