"""Evaluate a workflow on a dataset: run every case, score it, compare two reports.

See docs/evaluation-format.md for the dataset format and the scores.
"""

from __future__ import annotations

from controlroom.evaluation.dataset import Case, Dataset, Expect, load_dataset
from controlroom.evaluation.execute import EvalOptions, prepare_project, resolve_target, run_eval
from controlroom.evaluation.report import CaseResult, Comparison, EvalReport, Totals, compare

__all__ = [
    "Case",
    "CaseResult",
    "Comparison",
    "Dataset",
    "EvalOptions",
    "EvalReport",
    "Expect",
    "Totals",
    "compare",
    "load_dataset",
    "prepare_project",
    "resolve_target",
    "run_eval",
]
