"""Grounded answers in runs: different users, different sources; bad citations abstain."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from controlroom.audit.log import read_records
from controlroom.graphs.control.runner import Runner
from controlroom.retrieval import ABSTAIN, DocumentStore
from tests.conftest import cli_env
from tests.retrieval_support import REPO, SAMPLE_DIRECTORY

pytestmark = pytest.mark.retrieval
WORKFLOW = REPO / "examples" / "hr-policy-assistant"
QUESTION = "What are the salary bands for each grade?"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(SAMPLE_DIRECTORY, home / "directory.yaml")
    return home


def _records(home: Path, run_id: str) -> list[dict[str, object]]:
    return read_records(next((home / "audit").glob(f"{run_id}*.jsonl")))


def _confidential_texts(store: DocumentStore) -> list[str]:
    texts = [text for _, text, meta in store.records() if "|hr-confidential|" in meta["labels"]]
    assert texts
    return [t for t in texts if len(t) > 40]


def test_employee_and_hr_get_different_sources_and_the_employee_never_gets_confidential_text(
    home: Path, corpus_store: DocumentStore
) -> None:
    with Runner(home=home, documents=corpus_store) as runner:
        carol = runner.start(WORKFLOW, user="carol", input=QUESTION, model="extractive:quote")
        dave = runner.start(WORKFLOW, user="dave", input=QUESTION, model="extractive:quote")
        c_state, d_state = runner.state(carol.run_id), runner.state(dave.run_id)
    assert carol.status == dave.status == "completed"
    c_chunks = c_state["retrieved"]["search"]
    d_chunks = d_state["retrieved"]["search"]
    assert {c["source"] for c in c_chunks} != {c["source"] for c in d_chunks}
    assert all(c["labels"] == ["internal"] for c in c_chunks)
    assert any("hr-confidential" in c["labels"] for c in d_chunks)
    # the employee's answer cannot hold a sentence of a confidential document
    answer = c_state["vars"]["answer"]["answer"]
    for text in _confidential_texts(corpus_store):
        for sentence in (s.strip() for s in text.split(". ") if len(s.strip()) > 30):
            assert sentence not in answer and sentence not in (carol.output or "")
    assert "Sources:" in (dave.output or "") and "hr-confidential" not in (carol.output or "")
    retrieval = [r for r in _records(home, carol.run_id) if r["kind"] == "retrieval"]
    access = retrieval[0]["controlroom.retrieval.access"]
    assert isinstance(access, dict) and access["readable_labels"] == ["internal"]


def _script(path: Path, replies: list[dict[str, object]]) -> str:
    path.write_text(yaml.safe_dump({"replies": [{"content": json.dumps(r)} for r in replies]}))
    return f"scripted:{path}"


FORGED = {
    "reasoning": "from memory",
    "answer": "Grade 7 earns 90k [c0123456789ab].",
    "citations": ["c0123456789ab"],
}


def test_a_citation_of_a_chunk_not_given_is_caught_retried_and_the_run_abstains(
    home: Path, corpus_store: DocumentStore, tmp_path: Path
) -> None:
    model = _script(tmp_path / "forged.yaml", [FORGED] * 3)
    with Runner(home=home, documents=corpus_store) as runner:
        result = runner.start(WORKFLOW, user="carol", input=QUESTION, model=model)
        state = runner.state(result.run_id)
    assert result.status == "completed"
    assert result.output == ABSTAIN
    assert state["vars"]["answer"]["abstained"] is True
    checks = [r for r in _records(home, result.run_id) if r["kind"] == "answer.check"]
    assert [c["controlroom.grounding.attempt"] for c in checks] == [1, 2, 3]  # retries=2
    assert not any(c["controlroom.grounding.ok"] for c in checks)
    assert all("c0123456789ab" in str(c["controlroom.grounding.problem"]) for c in checks)
    assert str(checks[-1]["controlroom.grounding.outcome"]).startswith("abstained:")
    calls = [r for r in _records(home, result.run_id) if r["kind"] == "model.call"]
    assert len(calls) == 3  # each retry told the model why its answer was rejected
    # the retry sees its rejected answer and why: system, question, answer, rejection
    assert [c["controlroom.input.messages"] for c in calls] == [2, 4, 6]


def test_a_correct_citation_after_a_rejected_one_is_accepted(
    home: Path, corpus_store: DocumentStore, tmp_path: Path
) -> None:
    with Runner(home=home, documents=corpus_store) as runner:
        probe = runner.start(WORKFLOW, user="carol", input=QUESTION, model="extractive:quote")
        real = runner.state(probe.run_id)["retrieved"]["search"][0]["id"]
        good = {"reasoning": "r", "answer": "See the FAQ.", "citations": [real]}
        no_cite = {"reasoning": "r", "answer": "Bands exist."}
        model = _script(tmp_path / "fixed.yaml", [no_cite, good])
        result = runner.start(WORKFLOW, user="carol", input=QUESTION, model=model)
    assert result.output is not None and result.output.startswith("See the FAQ.")
    assert f"[{real}]" in result.output  # the Sources list
    checks = [r for r in _records(home, result.run_id) if r["kind"] == "answer.check"]
    assert [
        (c["controlroom.grounding.ok"], c.get("controlroom.grounding.outcome")) for c in checks
    ] == [
        (False, None),
        (True, "answered"),
    ]
    assert "cites no passage" in str(checks[0]["controlroom.grounding.problem"])


def test_nothing_relevant_abstains_without_asking_the_model(
    home: Path, corpus_store: DocumentStore, tmp_path: Path
) -> None:
    model = _script(tmp_path / "unused.yaml", [])  # any model call would fail the run
    with Runner(home=home, documents=corpus_store) as runner:
        result = runner.start(
            WORKFLOW, user="carol", input="zxqv plorf wibble snark quux", model=model
        )
    assert result.status == "completed" and result.output == ABSTAIN
    kinds = [r["kind"] for r in _records(home, result.run_id)]
    assert "model.call" not in kinds and "answer.check" in kinds


def test_a_question_the_documents_do_not_answer_abstains_at_the_retrieval_gate(
    home: Path, corpus_store: DocumentStore, tmp_path: Path
) -> None:
    """The HR assistant's ``min_top_score``: a weak best match means no model call."""
    model = _script(tmp_path / "unused.yaml", [])
    with Runner(home=home, documents=corpus_store) as runner:
        result = runner.start(
            WORKFLOW,
            user="carol",
            input="Is there a referral bonus for hiring a friend?",
            model=model,
        )
    assert result.status == "completed" and result.output == ABSTAIN
    records = _records(home, result.run_id)
    assert "model.call" not in [r["kind"] for r in records]
    retrieval = json.dumps([r for r in records if r["kind"] == "retrieval"])
    assert '"unanswered": true' in retrieval and '"min_top_score": 0.42' in retrieval


def test_the_cli_runs_the_assistant_and_shows_the_checks_in_the_audit(
    home: Path, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    (docs / "hr").mkdir(parents=True)
    (docs / "hr" / "leave.md").write_text(
        "---\ntitle: Annual leave\n---\n## Entitlement\n\nEveryone gets 27 days of annual "
        "leave plus public holidays.\n"
    )
    env = cli_env(home)
    cli = [sys.executable, "-m", "controlroom"]
    ingest = subprocess.run(
        [*cli, "ingest", str(docs), "--json"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["summary"]["added"] == 1
    model = _script(tmp_path / "forged.yaml", [FORGED] * 3)
    run = subprocess.run(
        [
            *cli,
            "run",
            str(WORKFLOW),
            "--user",
            "carol",
            "--input",
            "How much annual leave?",
            "--model",
            model,
            "--json",
        ],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert ABSTAIN in json.dumps(result)
    show = subprocess.run(
        [*cli, "audit", "show", result["run"]["run_id"]],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert show.returncode == 0, show.stderr
    assert "chunk(s) for carol [reads: internal]" in show.stdout
    assert show.stdout.count("REJECTED") == 3 and "-> abstained:" in show.stdout


def test_a_grounded_run_replays_from_its_audit_log(
    home: Path, corpus_store: DocumentStore, tmp_path: Path
) -> None:
    model = _script(tmp_path / "forged.yaml", [FORGED] * 3)
    with Runner(home=home, documents=corpus_store) as runner:
        answered = runner.start(WORKFLOW, user="dave", input=QUESTION, model="extractive:quote")
        abstained = runner.start(WORKFLOW, user="carol", input=QUESTION, model=model)
        for run in (answered, abstained):
            report = runner.replay(run.run_id)
            assert report.matched, report.divergence
