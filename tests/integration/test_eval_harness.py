"""`controlroom eval` end to end on a small scripted dataset: outcomes, approvals both ways,
parallel workers, prompt versions in the audit, the JSON report and `eval compare`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from controlroom.audit.log import log_path, read_records
from controlroom.cli import app
from controlroom.evaluation import EvalOptions, EvalReport, run_eval
from tests.eval_support import write_project

pytestmark = pytest.mark.eval

cli = CliRunner()


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project")


def _stable(report: EvalReport) -> list[dict[str, Any]]:
    """What must not depend on timing or the number of workers."""
    drop = {"run_id", "latency_s"}
    return [c.model_dump(exclude=drop) for c in report.cases]


def test_scripted_eval_scores_every_case(dataset: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    report = run_eval(dataset, options=EvalOptions(model="scripted", home=home))
    by_id = {c.id: c for c in report.cases}
    assert [c.id for c in report.cases] == ["pays", "rejected", "wrong-choice", "left-pending"]

    pays = by_id["pays"]
    assert pays.success and pays.status == "completed"
    assert pays.tools_called == ["lookup_invoice", "pay_invoice"]
    assert [(a.tool, a.answer) for a in pays.approvals] == [("pay_invoice", "approve")]
    assert pays.approvals_requested == 1
    assert pays.input_tokens > 0 and pays.model_calls == 4

    rejected = by_id["rejected"]
    assert rejected.success
    assert [(a.tool, a.answer) for a in rejected.approvals] == [("pay_invoice", "reject")]
    assert "pay_invoice" not in rejected.tools_called

    wrong = by_id["wrong-choice"]
    assert not wrong.success
    assert [(c.name, c.detail) for c in wrong.failed] == [
        ("vars", "vars.decide is 'do-not-pay', expected 'pay'"),
        ("tool_args", "pay_invoice: the tool never ran"),
        ("output_excludes", "the output holds 'secret'"),
    ]
    assert [v.kind for v in wrong.violations] == ["restricted-output"]  # tagged adversarial

    pending = by_id["left-pending"]
    assert pending.success and pending.status == "waiting"
    assert [a.answer for a in pending.approvals] == ["pending"]

    t = report.totals
    assert (t.cases, t.succeeded, t.violations, t.approvals_requested) == (4, 3, 1, 3)
    assert t.latency_p50_s is not None and t.tokens == t.input_tokens + t.output_tokens
    assert report.prompts == {"find": "lookup@2"}
    assert report.dataset_sha256.startswith("sha256:")
    assert report.home == str(home.resolve())

    # The audit's model calls name the library prompt (id, version, sha256) for `find`
    # and keep <workflow>/<node> with the workflow's version for the other steps.
    calls = [
        r
        for r in read_records(log_path(home / "audit", pays.run_id or ""))
        if r["kind"] == "model.call"
    ]
    find = next(r for r in calls if r["node"] == "find")
    assert find["controlroom.prompt.id"] == "lookup"
    assert find["controlroom.prompt.version"] == "2"
    assert find["controlroom.prompt.sha256"].startswith("sha256:")
    decide = next(r for r in calls if r["node"] == "decide")
    assert decide["controlroom.prompt.id"] == "eval-pay/decide"
    assert decide["controlroom.prompt.version"] == "3"
    assert "controlroom.prompt.sha256" not in decide


def test_two_workers_give_the_same_report(dataset: Path) -> None:
    one = run_eval(dataset, options=EvalOptions(model="scripted", workers=1))
    two = run_eval(dataset, options=EvalOptions(model="scripted", workers=2))
    assert two.workers == 2
    assert _stable(one) == _stable(two)
    assert one.totals.succeeded == two.totals.succeeded


def test_a_prompt_override_runs_through_approvals_and_is_audited(
    dataset: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    report = run_eval(
        dataset,
        options=EvalOptions(
            model="scripted", prompt_versions={"lookup": 1}, cases=["pays"], home=home
        ),
    )
    (case,) = report.cases
    assert case.success  # approved: the run was resumed from the override's reference
    assert "lookup@1" in case.prompts
    assert report.prompts == {"find": "lookup@1"}
    assert report.prompt_overrides == {"lookup": 1}


def test_cli_report_exit_codes_and_compare(dataset: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    folder = str(dataset.parents[1])
    first = cli.invoke(app, ["eval", folder, "--model", "scripted", "--out", str(a)])
    assert first.exit_code == 1, first.output  # the adversarial case leaked text: a violation
    assert "wrong-choice" in first.output and "success rate" in first.output
    assert json.loads(a.read_text())["totals"]["violations"] == 1

    # B: the wrong-choice case now pays and reports nothing it must not.
    (dataset.parent / "scripts" / "wrong-choice.yaml").write_text(
        (dataset.parent / "scripts" / "pays.yaml").read_text()
    )
    second = cli.invoke(
        app, ["eval", folder, str(dataset), "--model", "scripted", "--json", "--out", str(b)]
    )
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["totals"]["succeeded"] == 4

    shown = cli.invoke(app, ["eval", "compare", str(a), str(b)])
    assert shown.exit_code == 0, shown.output
    assert "wrong-choice" in shown.output and "better" in shown.output
    diff = json.loads(cli.invoke(app, ["eval", "compare", str(a), str(b), "--json"]).stdout)
    assert diff["better"] == ["wrong-choice"] and diff["worse"] == []
    (row,) = [d for d in diff["cases"] if d["id"] == "wrong-choice"]
    assert "vars.decide 'do-not-pay' -> 'pay'" in row["differences"]

    reverse = json.loads(cli.invoke(app, ["eval", "compare", str(b), str(a), "--json"]).stdout)
    assert reverse["worse"] == ["wrong-choice"]


def test_usage_errors_exit_2(dataset: Path, tmp_path: Path) -> None:
    text = dataset.read_text().replace("    script: scripts/rejected.yaml\n", "")
    dataset.write_text(text)
    missing = cli.invoke(app, ["eval", str(dataset), "--model", "scripted"])
    assert missing.exit_code == 2
    assert "Case rejected has no `script:`" in missing.output
    unknown = cli.invoke(app, ["eval", str(dataset), "--cases", "nope"])
    assert unknown.exit_code == 2 and "nope" in unknown.output
    assert cli.invoke(app, ["eval", "compare", str(dataset)]).exit_code == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    result = cli.invoke(app, ["eval", "compare", str(bad), str(bad)])
    assert result.exit_code == 2 and "not an eval report" in result.output


def test_prompts_commands(dataset: Path) -> None:
    folder = str(dataset.parents[1])
    listed = cli.invoke(app, ["prompts", "list", "-w", folder, "--json"])
    assert [(p["id"], p["version"]) for p in json.loads(listed.stdout)] == [
        ("lookup", 1),
        ("lookup", 2),
    ]
    diff = cli.invoke(app, ["prompts", "diff", "lookup", "1", "2", "-w", folder])
    assert diff.exit_code == 0
    assert "-Look the invoice up for {user.name}." in diff.stdout
    assert "+Look the invoice up for {user.name}; never guess ids." in diff.stdout
    assert cli.invoke(app, ["prompts", "diff", "lookup", "1", "5", "-w", folder]).exit_code == 2
