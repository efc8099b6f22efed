"""The evaluation report (per case and in total) and the comparison of two reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from controlroom.evaluation.metrics import Violation, percentile

__all__ = [
    "REPORT_FORMAT",
    "ApprovalTaken",
    "CaseDiff",
    "CaseResult",
    "Check",
    "Comparison",
    "EvalReport",
    "TagTotals",
    "Totals",
    "compare",
    "totals",
]

REPORT_FORMAT = 1


class Check(BaseModel):
    name: str  # status | vars | tools_called | ... | run (the case could not run)
    ok: bool
    detail: str = ""


class ApprovalTaken(BaseModel):
    approval_id: str
    tool: str | None = None
    step: str
    answer: str  # approve | reject | pending


class CaseResult(BaseModel):
    id: str
    tags: list[str] = Field(default_factory=list)
    user: str
    input: str
    model: str
    run_id: str | None = None
    status: str  # the run's status, or `error` when the case could not run
    success: bool
    checks: list[Check] = Field(default_factory=list)
    error: str | None = None
    output: str | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    tools_called: list[str] = Field(default_factory=list)  # executed with a result, in order
    approvals_requested: int = 0
    approvals: list[ApprovalTaken] = Field(default_factory=list)
    answered: bool | None = None  # None: no grounded-answer step ran
    abstained: bool | None = None
    abstention_correct: bool | None = None  # with expect.abstain only
    citations: list[str] = Field(default_factory=list)
    cited_sources: list[str] = Field(default_factory=list)
    citation_valid: bool | None = None
    citation_problem: str | None = None
    grounded: bool | None = None
    unsupported_sentences: list[str] = Field(default_factory=list)
    violations: list[Violation] = Field(default_factory=list)
    latency_s: float = 0.0
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    prompts: list[str] = Field(default_factory=list)  # id@version of the prompts used

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class TagTotals(BaseModel):
    cases: int = 0
    succeeded: int = 0


class Totals(BaseModel):
    cases: int
    succeeded: int
    success_rate: float
    errors: int  # cases that could not run
    citation_cases: int  # answered cases with a grounded-answer step
    citation_validity: float | None
    abstention_cases: int  # cases with expect.abstain
    abstention_accuracy: float | None
    unanswerable_cases: int  # cases tagged `unanswerable`
    unanswerable_abstention_rate: float | None
    answered_cases: int
    grounded_claim_share: float | None  # lexical proxy, see controlroom.evaluation.metrics
    violations: int
    approvals_requested: int
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_total_s: float
    model_calls: int
    input_tokens: int
    output_tokens: int
    tokens: int
    by_tag: dict[str, TagTotals] = Field(default_factory=dict)


class EvalReport(BaseModel):
    format: int = REPORT_FORMAT
    name: str
    dataset: str
    dataset_sha256: str
    workflow: str
    workflow_digest: str
    model: str  # the --model given, else the workflow's default
    prompts: dict[str, str] = Field(default_factory=dict)  # step id -> prompt id@version
    prompt_overrides: dict[str, int] = Field(default_factory=dict)
    workers: int = 1
    home: str | None = None  # the project folder, when --home kept it
    started_at: str
    elapsed_s: float
    cases: list[CaseResult]
    totals: Totals


def _share(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def totals(cases: Sequence[CaseResult]) -> Totals:
    succeeded = sum(c.success for c in cases)
    answered = [c for c in cases if c.answered]
    cited = [c for c in answered if c.citation_valid is not None]
    judged = [c for c in cases if c.abstention_correct is not None]
    unanswerable = [c for c in cases if "unanswerable" in c.tags]
    latencies = [c.latency_s for c in cases if c.status != "error"]
    by_tag: dict[str, TagTotals] = {}
    for c in cases:
        for tag in c.tags:
            t = by_tag.setdefault(tag, TagTotals())
            t.cases += 1
            t.succeeded += c.success
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    tokens_in = sum(c.input_tokens for c in cases)
    tokens_out = sum(c.output_tokens for c in cases)
    return Totals(
        cases=len(cases),
        succeeded=succeeded,
        success_rate=_share(succeeded, len(cases)) or 0.0,
        errors=sum(c.status == "error" for c in cases),
        citation_cases=len(cited),
        citation_validity=_share(sum(bool(c.citation_valid) for c in cited), len(cited)),
        abstention_cases=len(judged),
        abstention_accuracy=_share(sum(bool(c.abstention_correct) for c in judged), len(judged)),
        unanswerable_cases=len(unanswerable),
        unanswerable_abstention_rate=_share(
            sum(bool(c.abstained) for c in unanswerable), len(unanswerable)
        ),
        answered_cases=len(answered),
        grounded_claim_share=_share(sum(bool(c.grounded) for c in answered), len(answered)),
        violations=sum(len(c.violations) for c in cases),
        approvals_requested=sum(c.approvals_requested for c in cases),
        latency_p50_s=round(p50, 3) if p50 is not None else None,
        latency_p95_s=round(p95, 3) if p95 is not None else None,
        latency_total_s=round(sum(c.latency_s for c in cases), 3),
        model_calls=sum(c.model_calls for c in cases),
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        tokens=tokens_in + tokens_out,
        by_tag=dict(sorted(by_tag.items())),
    )


# -- comparison --------------------------------------------------------------------------

Change = Literal["better", "worse", "changed", "same", "only in A", "only in B"]


class CaseDiff(BaseModel):
    id: str
    change: Change
    success: tuple[bool | None, bool | None]
    differences: list[str] = Field(default_factory=list)
    latency_delta_s: float | None = None
    tokens_delta: int | None = None


class TotalDiff(BaseModel):
    name: str
    a: float | int | None
    b: float | int | None
    delta: float | int | None
    better: bool | None  # None: neither better nor worse (or not comparable)


class Comparison(BaseModel):
    a: dict[str, Any]
    b: dict[str, Any]
    better: list[str]
    worse: list[str]
    changed: list[str]
    cases: list[CaseDiff]
    totals: list[TotalDiff]
    common_cases: int = 0  # cases both reports ran: the totals are computed over these
    only_in_a: list[str] = Field(default_factory=list)
    only_in_b: list[str] = Field(default_factory=list)


# total -> True when higher is better, False when lower is better
_TOTALS: dict[str, bool] = {
    "success_rate": True,
    "citation_validity": True,
    "abstention_accuracy": True,
    "unanswerable_abstention_rate": True,
    "grounded_claim_share": True,
    "violations": False,
    "approvals_requested": False,
    "errors": False,
    "latency_p50_s": False,
    "latency_p95_s": False,
    "tokens": False,
}


def _case_differences(a: CaseResult, b: CaseResult) -> list[str]:
    notes: list[str] = []
    if a.status != b.status:
        notes.append(f"status {a.status} -> {b.status}")
    failed_a = {c.name for c in a.failed}
    failed_b = {c.name for c in b.failed}
    for name in sorted(failed_b - failed_a):
        detail = next(c.detail for c in b.failed if c.name == name)
        notes.append(f"now fails {name}: {detail}")
    for name in sorted(failed_a - failed_b):
        notes.append(f"now passes {name}")
    for key in sorted(set(a.vars) | set(b.vars)):
        if key in ("answer",) or isinstance(a.vars.get(key), dict | list):
            continue
        if a.vars.get(key) != b.vars.get(key):
            notes.append(f"vars.{key} {a.vars.get(key)!r} -> {b.vars.get(key)!r}")
    if a.tools_called != b.tools_called:
        notes.append(f"tool calls [{', '.join(a.tools_called)}] -> [{', '.join(b.tools_called)}]")
    if a.abstained != b.abstained:
        notes.append(f"abstained {a.abstained} -> {b.abstained}")
    if a.citation_valid != b.citation_valid:
        notes.append(f"citation valid {a.citation_valid} -> {b.citation_valid}")
    if a.grounded != b.grounded:
        notes.append(f"grounded {a.grounded} -> {b.grounded}")
    if len(a.violations) != len(b.violations):
        notes.append(f"violations {len(a.violations)} -> {len(b.violations)}")
    if a.approvals_requested != b.approvals_requested:
        notes.append(f"approvals requested {a.approvals_requested} -> {b.approvals_requested}")
    return notes


def _about(report: EvalReport) -> dict[str, Any]:
    return {
        "name": report.name,
        "model": report.model,
        "prompts": report.prompts,
        "dataset_sha256": report.dataset_sha256,
        "workflow_digest": report.workflow_digest,
        "started_at": report.started_at,
    }


def compare(a: EvalReport, b: EvalReport) -> Comparison:
    """Per-case differences from A to B (better: failed -> succeeded; worse: the reverse;
    changed: same success, different behaviour) and the totals' deltas."""
    by_a = {c.id: c for c in a.cases}
    by_b = {c.id: c for c in b.cases}
    order = [c.id for c in a.cases] + [c.id for c in b.cases if c.id not in by_a]
    diffs: list[CaseDiff] = []
    for case_id in order:
        ca, cb = by_a.get(case_id), by_b.get(case_id)
        if ca is None or cb is None:
            only = "only in B" if ca is None else "only in A"
            diffs.append(
                CaseDiff(
                    id=case_id,
                    change=only,
                    success=(ca.success if ca else None, cb.success if cb else None),
                )
            )
            continue
        notes = _case_differences(ca, cb)
        change: Change
        if ca.success != cb.success:
            change = "better" if cb.success else "worse"
        elif len(cb.violations) != len(ca.violations):
            change = "better" if len(cb.violations) < len(ca.violations) else "worse"
        else:
            change = "changed" if notes else "same"
        diffs.append(
            CaseDiff(
                id=case_id,
                change=change,
                success=(ca.success, cb.success),
                differences=notes,
                latency_delta_s=round(cb.latency_s - ca.latency_s, 3),
                tokens_delta=cb.tokens - ca.tokens,
            )
        )
    total_diffs: list[TotalDiff] = []
    # Totals over the cases both ran, so that a re-run of a subset (common with slow local
    # models) is compared like with like; with the same cases these are the reports' own.
    common = [case_id for case_id in by_a if case_id in by_b]
    if len(common) == len(by_a) == len(by_b):
        ta, tb = a.totals.model_dump(), b.totals.model_dump()
    else:
        ta = totals([by_a[i] for i in common]).model_dump()
        tb = totals([by_b[i] for i in common]).model_dump()
    for name, higher_better in _TOTALS.items():
        va, vb = ta.get(name), tb.get(name)
        delta = round(vb - va, 4) if va is not None and vb is not None else None
        better = None if not delta else (delta > 0) == higher_better
        total_diffs.append(TotalDiff(name=name, a=va, b=vb, delta=delta, better=better))
    return Comparison(
        a=_about(a),
        b=_about(b),
        better=[d.id for d in diffs if d.change == "better"],
        worse=[d.id for d in diffs if d.change == "worse"],
        changed=[d.id for d in diffs if d.change == "changed"],
        cases=diffs,
        totals=total_diffs,
        common_cases=len(common),
        only_in_a=[i for i in by_a if i not in by_b],
        only_in_b=[i for i in by_b if i not in by_a],
    )
