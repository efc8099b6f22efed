"""Acceptance: bad input gets a one-paragraph message and exit code 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controlroom.cli import app
from tests.conftest import EXAMPLE

runner = CliRunner()


def one_paragraph(text: str) -> str:
    text = text.strip()
    assert text, "expected an error message"
    assert "Traceback" not in text
    assert "\n\n" not in text
    assert len(text.splitlines()) == 1, text
    return text


def test_malformed_workflow_file_names_file_line_and_key(project: Path, tmp_path: Path) -> None:
    bad = tmp_path / "workflow.yaml"
    bad.write_text(
        "name: bad\nsteps:\n  - id: agent\n    kind: model\n    prompt: hi\n    nxt: end\n"
    )
    result = runner.invoke(app, ["run", str(bad), "--user", "alice", "--input", "x"])
    assert result.exit_code == 2
    message = one_paragraph(result.stderr)
    assert f"{bad}:6:" in message
    assert "steps[0].nxt" in message
    assert "did you mean `next`" in message


def test_workflow_that_is_not_yaml(project: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: x\nsteps: [\n")
    result = runner.invoke(app, ["run", str(bad), "-u", "alice", "-i", "x"])
    assert result.exit_code == 2
    assert f"{bad}:3:" in one_paragraph(result.stderr)


def test_unknown_user_is_one_paragraph_with_suggestions(project: Path) -> None:
    result = runner.invoke(app, ["run", str(EXAMPLE), "--user", "alcie", "--input", "x"])
    assert result.exit_code == 2
    message = one_paragraph(result.stderr)
    assert "There is no user 'alcie'" in message
    assert "Did you mean 'alice'?" in message
    assert json.loads(runner.invoke(app, ["runs", "--json"]).stdout) == []  # no run was created


def test_unknown_user_with_json_is_a_json_error(project: Path) -> None:
    result = runner.invoke(app, ["run", str(EXAMPLE), "-u", "nobody", "-i", "x", "--json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["title"] == "Unknown user"


def test_missing_directory_says_how_to_create_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTROLROOM_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("CONTROLROOM_DIRECTORY", raising=False)
    result = runner.invoke(app, ["run", str(EXAMPLE), "-u", "alice", "-i", "x"])
    assert result.exit_code == 2
    assert "controlroom init" in one_paragraph(result.stderr)


def test_unavailable_model_fails_before_a_run_exists(project: Path) -> None:
    result = runner.invoke(
        app, ["run", str(EXAMPLE), "-u", "alice", "-i", "x", "--model", "local:/no/such/model.gguf"]
    )
    assert result.exit_code == 2
    assert "No GGUF file at /no/such/model.gguf" in one_paragraph(result.stderr)
    listed = runner.invoke(app, ["runs", "--json"])
    assert json.loads(listed.stdout) == []


def test_approver_must_be_named(project: Path) -> None:
    result = runner.invoke(app, ["approve", "r123", "a1-1"])
    assert result.exit_code == 2
    assert "--user" in one_paragraph(result.stderr)


def test_bad_args_json(project: Path) -> None:
    result = runner.invoke(
        app, ["approve", "r123", "a1-1", "--user", "bob", "--args", "{amount: 3"]
    )
    assert result.exit_code == 2
    assert "--args is not valid JSON" in one_paragraph(result.stderr)


def test_help_documents_exit_codes_and_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for word in (
        "3 waiting for approval",
        "run",
        "runs",
        "approvals",
        "approve",
        "reject",
        "resume",
        "step",
        "tui",
    ):
        assert word in result.stdout


def test_init_then_users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTROLROOM_HOME", str(tmp_path / "fresh"))
    monkeypatch.delenv("CONTROLROOM_DIRECTORY", raising=False)
    assert runner.invoke(app, ["init"]).exit_code == 0
    listed = runner.invoke(app, ["users", "--json"])
    ids = [u["id"] for u in json.loads(listed.stdout)]
    assert ids[:4] == ["alice", "bob", "carol", "dave"]
    assert {"erin", "frank", "gina", "gwen", "hank", "helen", "ivy", "kim"} <= set(ids)
