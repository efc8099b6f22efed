"""`controlroom ingest`, `search` and `documents` from the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controlroom.cli.app import app
from tests.retrieval_support import SAMPLE_DIRECTORY

pytestmark = pytest.mark.retrieval


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "hr").mkdir(parents=True)
    (root / "hr" / "_access.yaml").write_text("labels: [internal]\ndepartment: hr\n")
    (root / "hr" / "leave.md").write_text("# Annual leave\n\nEveryone gets 27 days of leave.\n")
    (root / "hr" / "bands.md").write_text(
        "---\nlabels: [hr-confidential]\n---\n# Salary bands\n\nGrade 7 pays 61,000 to 74,000 EUR.\n"
    )
    return root


@pytest.fixture
def home(project: Path) -> Path:
    shutil.copy(SAMPLE_DIRECTORY, project / "directory.yaml")
    return project


def test_ingest_search_and_documents(home: Path, docs: Path) -> None:
    cli = CliRunner()
    first = cli.invoke(app, ["ingest", str(docs), "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert report["summary"]["added"] == 2 and report["chunks_total"] == 2
    again = cli.invoke(app, ["ingest", str(docs)])
    assert again.exit_code == 0 and "2 unchanged" in again.output

    employee = json.loads(
        cli.invoke(app, ["search", "salary for grade 7", "-u", "carol", "--json"]).output
    )
    assert [c["title"] for c in employee["chunks"]] == ["Annual leave"]
    assert employee["scope"]["readable"] == ["internal"]
    assert "hr-confidential" in employee["scope"]["denied"]
    hr = cli.invoke(app, ["search", "salary for grade 7", "--user", "dave"])
    assert hr.exit_code == 0
    assert hr.output.index("Salary bands") < hr.output.index("Annual leave")
    assert (
        "labels: hr-confidential" in hr.output
        and "dave may read: hr-confidential, internal" in hr.output
    )

    listing = cli.invoke(app, ["documents", "--json"])
    assert sorted(d["title"] for d in json.loads(listing.output)) == [
        "Annual leave",
        "Salary bands",
    ]


def test_a_bad_file_exits_1_and_the_others_are_ingested(home: Path, docs: Path) -> None:
    (docs / "hr" / "broken.md").write_text("---\nlabels: [Bad Label]\n---\ntext\n")
    result = CliRunner().invoke(app, ["ingest", str(docs)])
    assert result.exit_code == 1
    assert "skipped" in result.output and "broken.md" in result.output
    assert "2 added, 1 failed" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "/no/such/folder"], "no such file or folder"),
        (["search", "x"], "pass --user ID"),
        (["search", "x", "--user", "nobody"], "There is no user 'nobody'"),
    ],
)
def test_usage_errors_are_one_paragraph_and_exit_2(
    home: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 2
    assert message in json.loads(result.output)["error"]["message"]


def test_an_unreachable_chroma_server_says_how_to_fix_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTROLROOM_CHROMA_URL", "http://127.0.0.1:9")
    result = CliRunner().invoke(app, ["documents"])
    assert result.exit_code == 2
    assert "cannot be reached" in result.output and "chroma run" in result.output
