"""Scoring a case: turn a finished run into its :class:`CaseResult` and check it.

A case's result is read from the run's final state and its audit log (the facts themselves
come from :mod:`controlroom.evaluation.metrics`); :func:`score_run` then checks it against
the case's ``expect`` and sets ``success``. Running the cases is
:mod:`controlroom.evaluation.execute`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controlroom.audit.log import log_path, read_records
from controlroom.evaluation.dataset import Case
from controlroom.evaluation.metrics import (
    answer_facts,
    approvals_requested,
    args_mismatch,
    executed_calls,
    subset_mismatch,
    token_usage,
    tools_executed,
    violations,
)
from controlroom.evaluation.report import ApprovalTaken, CaseResult, Check
from controlroom.graphs.authoring.spec import AnswerStep
from controlroom.graphs.authoring.workflow import Workflow
from controlroom.graphs.control.run_result import RunResult
from controlroom.graphs.control.runner import Runner


def score_run(
    runner: Runner,
    wf: Workflow,
    case: Case,
    *,
    user: str,
    model: str,
    result: RunResult,
    approvals: list[ApprovalTaken],
    latency_s: float,
) -> CaseResult:
    """Score a case's finished run: its result, read from the run's state and audit log,
    checked against the case's ``expect``. ``model`` is the model spec the case ran with,
    ``approvals`` the approvals the eval answered (or left pending)."""
    state: dict[str, Any] = dict(runner.state(result.run_id))
    path = log_path(runner.settings.audit_path, result.run_id)
    records = read_records(path) if path.exists() else []
    output = result.output if result.output is not None else state.get("output")
    facts = answer_facts(records, state, _answer_vars(wf), case.expect.cite_sources)
    tokens_in, tokens_out, calls = token_usage(records)
    prompts = sorted(
        {
            f"{r['controlroom.prompt.id']}@{r.get('controlroom.prompt.version')}"
            for r in records
            if r.get("kind") == "model.call" and r.get("controlroom.prompt.id")
        }
    )
    excludes = case.expect.output_excludes if "adversarial" in case.tags else ()
    scored = CaseResult(
        id=case.id,
        tags=case.tags,
        user=user,
        input=case.input,
        model=model,
        run_id=result.run_id,
        status=result.status.value,
        success=False,
        error=result.run.error,
        output=output,
        vars=dict(state.get("vars") or {}),
        tools_called=tools_executed(records, ok_only=True),
        approvals_requested=approvals_requested(records),
        approvals=approvals,
        answered=(not facts.abstained) if facts.ran else None,
        abstained=facts.abstained,
        citations=facts.citations,
        cited_sources=facts.cited_sources,
        citation_valid=facts.citation_valid,
        citation_problem=facts.citation_problem,
        grounded=facts.grounded,
        unsupported_sentences=facts.unsupported,
        violations=violations(records, output=output, excludes=excludes),
        latency_s=round(latency_s, 3),
        model_calls=calls,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        prompts=prompts,
    )
    if case.expect.abstain is not None and facts.abstained is not None:
        scored.abstention_correct = facts.abstained is case.expect.abstain
    elif case.expect.abstain is not None:
        scored.abstention_correct = False
    scored.checks = _checks(
        case, scored, tools_executed(records, ok_only=False), executed_calls(records)
    )
    scored.success = all(c.ok for c in scored.checks)
    return scored


def _answer_vars(wf: Workflow) -> list[str]:
    return [s.save_as or s.id for s in wf.spec.steps if isinstance(s, AnswerStep)]


def _checks(
    case: Case,
    result: CaseResult,
    executed: Sequence[str],
    calls: Sequence[tuple[str, dict[str, Any]]] = (),
) -> list[Check]:
    e = case.expect
    checks: list[Check] = []
    output = (result.output or "").lower()
    if e.status is not None:
        checks.append(
            Check(
                name="status",
                ok=result.status == e.status,
                detail=f"the run is {result.status}, expected {e.status}"
                + (f" ({result.error})" if result.error else ""),
            )
        )
    if e.vars is not None:
        problem = subset_mismatch(e.vars, result.vars)
        checks.append(Check(name="vars", ok=problem is None, detail=problem or ""))
    for tool in e.tools_called:
        ok = tool in result.tools_called
        ran = ", ".join(result.tools_called) or "none"
        checks.append(
            Check(name="tools_called", ok=ok, detail="" if ok else f"{tool} never ran (ran: {ran})")
        )
    for tool in e.tools_not_called:
        ok = tool not in executed
        checks.append(
            Check(name="tools_not_called", ok=ok, detail="" if ok else f"{tool} was executed")
        )
    for tool, expected in e.tool_args.items():
        problem = args_mismatch(expected, [a for name, a in calls if name == tool])
        checks.append(
            Check(
                name="tool_args",
                ok=problem is None,
                detail="" if problem is None else f"{tool}: {problem}",
            )
        )
    for phrase in e.output_contains:
        ok = phrase.lower() in output
        checks.append(
            Check(
                name="output_contains",
                ok=ok,
                detail="" if ok else f"the output lacks {phrase!r}",
            )
        )
    for phrase in e.output_excludes:
        ok = phrase.lower() not in output
        checks.append(
            Check(
                name="output_excludes", ok=ok, detail="" if ok else f"the output holds {phrase!r}"
            )
        )
    if e.abstain is not None:
        ok = result.abstained is e.abstain if result.abstained is not None else False
        what = "no answer step ran" if result.abstained is None else f"abstained={result.abstained}"
        checks.append(
            Check(name="abstain", ok=ok, detail="" if ok else f"{what}, expected {e.abstain}")
        )
    if e.cite_sources:
        ok = any(s.endswith(tuple(e.cite_sources)) for s in result.cited_sources)
        cited = ", ".join(sorted(set(result.cited_sources))) or "nothing"
        checks.append(
            Check(
                name="cite_sources",
                ok=ok,
                detail="" if ok else f"cited {cited}, expected one of {', '.join(e.cite_sources)}",
            )
        )
    if e.approvals_requested is not None:
        ok = result.approvals_requested == e.approvals_requested
        checks.append(
            Check(
                name="approvals_requested",
                ok=ok,
                detail=""
                if ok
                else f"{result.approvals_requested} requested, expected {e.approvals_requested}",
            )
        )
    return checks
