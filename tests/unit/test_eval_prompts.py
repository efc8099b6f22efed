"""The prompt library: versioned files, references from workflow steps, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlroom.agents.prompt_library import PromptLibrary, parse_override, parse_ref
from controlroom.errors import PromptNotFoundError, WorkflowFileError
from controlroom.graphs.authoring.workflow import load_workflow
from tests.eval_support import write_project

pytestmark = pytest.mark.eval


def test_references_parse() -> None:
    assert parse_ref("@grounded-answer") == ("grounded-answer", None)
    assert parse_ref(" @grounded-answer@2 ") == ("grounded-answer", 2)
    assert parse_ref("Answer @alice politely") is None
    assert parse_override("triage@v3") == ("triage", 3)
    with pytest.raises(PromptNotFoundError, match="ID@VERSION"):
        parse_override("triage")


def test_library_versions_front_matter_and_nearer_folder_wins(tmp_path: Path) -> None:
    shared = tmp_path / "prompts" / "tone"
    shared.mkdir(parents=True)
    (shared / "v1.md").write_text("shared tone")
    wf = tmp_path / "flow"
    (wf / "prompts" / "tone").mkdir(parents=True)
    (wf / "prompts" / "tone" / "v1.md").write_text("local tone v1\n")
    (wf / "prompts" / "tone" / "v3.md").write_text("---\ndescription: terse\n---\nlocal v3\n")
    (tmp_path / "prompts" / "other").mkdir()
    (tmp_path / "prompts" / "other" / "v2.md").write_text("other")
    library = PromptLibrary.for_workflow(wf)
    assert library.ids() == ["other", "tone"]
    latest = library.get("tone")
    assert (latest.version, latest.text, latest.description) == (3, "local v3", "terse")
    assert library.get("tone", 1).text == "local tone v1"
    assert library.get("other").text == "other"  # from the shared folder
    assert latest.sha256.startswith("sha256:")
    with pytest.raises(PromptNotFoundError, match="no version 2"):
        library.get("tone", 2)
    with pytest.raises(PromptNotFoundError, match="No prompt 'nope'"):
        library.get("nope")


def test_a_step_uses_the_latest_version_and_an_override_picks_another(tmp_path: Path) -> None:
    folder = write_project(tmp_path).parents[1]
    wf = load_workflow(folder)
    find = wf.spec.steps[0]
    assert getattr(find, "prompt", "") == "Look the invoice up for {user.name}; never guess ids."
    assert (wf.prompts["find"].id, wf.prompts["find"].version) == ("lookup", 2)
    assert "#prompts=" not in wf.ref

    old = load_workflow(folder, prompt_versions={"lookup": 1})
    assert getattr(old.spec.steps[0], "prompt", "") == "Look the invoice up for {user.name}."
    assert old.prompts["find"].version == 1
    assert old.digest != wf.digest
    # The reference remembers the override: a resume in another process reloads the same.
    again = load_workflow(old.ref)
    assert again.digest == old.digest and again.prompts == old.prompts


def test_unknown_prompts_are_reported_with_the_line(tmp_path: Path) -> None:
    folder = write_project(tmp_path).parents[1]
    workflow = folder / "workflow.yaml"
    workflow.write_text(workflow.read_text().replace('"@lookup"', '"@lookup@9"'))
    with pytest.raises(WorkflowFileError) as caught:
        load_workflow(folder)
    assert "workflow.yaml:10: at `steps[0].prompt`" in caught.value.message
    assert "no version 9" in caught.value.message
    with pytest.raises(PromptNotFoundError, match="use no such library prompt"):
        load_workflow(folder, prompt_versions={"triage": 1})
