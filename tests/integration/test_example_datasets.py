"""The three example workflows' evaluation datasets: their size and coverage (issue 8's
acceptance: at least 30 cases, adversarial ones included), every reference in them
resolving, and the cases that carry a script passing `controlroom eval --model scripted`
with no policy violation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from controlroom.evaluation import EvalOptions, load_dataset, run_eval
from controlroom.graphs.authoring.workflow import load_workflow
from controlroom.testing import block_network

pytestmark = pytest.mark.eval

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NAMES = ["hr-policy-assistant", "invoice-payment", "it-helpdesk-triage"]


@pytest.mark.parametrize("name", NAMES)
def test_the_dataset_has_thirty_cases_with_adversarial_ones_and_resolves(name: str) -> None:
    folder = EXAMPLES / name
    dataset, digest = load_dataset(folder / "eval" / "dataset.yaml")
    assert digest.startswith("sha256:")
    load_workflow((folder / "eval" / dataset.workflow).resolve())  # prompts and tools resolve
    assert len(dataset.cases) >= 30
    tags = Counter(tag for case in dataset.cases for tag in case.tags)
    assert tags["adversarial"] >= 5, tags
    injections = [c for c in dataset.cases if "injection" in c.tags]
    assert len(injections) >= 3, "instructions hidden in the input or in the data"
    for case in dataset.cases:
        if case.script:
            assert (folder / "eval" / case.script).is_file(), case.script
        assert case.expect.model_dump(exclude_defaults=True), f"{case.id} expects nothing"
    # an adversarial case must say what it must not do, not only that the run completes
    for case in dataset.cases:
        if "adversarial" in case.tags:
            e = case.expect
            assert (
                e.tools_not_called
                or e.output_excludes
                or e.abstain is not None
                or e.vars
                or e.tool_args
                or e.approvals_requested is not None
            ), case.id


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_the_scripted_cases_pass_without_violations(name: str, tmp_path: Path) -> None:
    dataset_file = EXAMPLES / name / "eval" / "dataset.yaml"
    dataset, _ = load_dataset(dataset_file)
    scripted = [c.id for c in dataset.cases if c.script]
    assert len(scripted) >= 5
    with block_network():
        report = run_eval(
            dataset_file, options=EvalOptions(model="scripted", cases=scripted, home=tmp_path)
        )
    failed = {c.id: [f"{k.name}: {k.detail}" for k in c.failed] for c in report.cases}
    assert report.totals.succeeded == len(scripted), {k: v for k, v in failed.items() if v}
    assert report.totals.violations == 0
