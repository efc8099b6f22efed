"""Loading policy folders: parse once, validate against the schema, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controlroom import PolicyError
from controlroom.tools.policy_files import load_policy_folder

SCHEMA = {
    "": {
        "entityTypes": {"User": {"shape": {"type": "Record", "attributes": {
            "dept": {"type": "String"}}}}, "Tool": {}},
        "actions": {"t": {"appliesTo": {"principalTypes": ["User"], "resourceTypes": ["Tool"],
                                         "context": {"type": "Record", "attributes": {}}}}},
    }
}  # fmt: skip
GOOD = '@id("ok")\npermit (principal, action == Action::"t", resource);\n'


def folder(tmp_path: Path, policies: dict[str, str], schema: object = SCHEMA) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name, text in policies.items():
        (tmp_path / name).write_text(text)
    if schema is not None:
        text = schema if isinstance(schema, str) else json.dumps(schema, indent=2)
        (tmp_path / "schema.cedarschema.json").write_text(text)
    return tmp_path


def error(path: Path) -> str:
    with pytest.raises(PolicyError) as info:
        load_policy_folder(path)
    return info.value.message


def test_a_valid_folder_loads_with_ids_files_and_lines(tmp_path: Path) -> None:
    bundle = load_policy_folder(folder(tmp_path, {"a.cedar": "// note\n\n" + GOOD}))
    [info] = bundle.policies.values()
    assert (info.id, info.file, info.line, info.effect) == ("ok", "a.cedar", 3, "permit")
    assert bundle.for_action("t") == [info] and bundle.for_action("other") == []


def test_policies_are_parsed_once_per_content(tmp_path: Path) -> None:
    path = folder(tmp_path, {"a.cedar": GOOD})
    first = load_policy_folder(path)
    assert load_policy_folder(path) is first
    (path / "a.cedar").write_text(GOOD.replace('"ok"', '"changed"'))
    again = load_policy_folder(path)
    assert again is not first and list(again.policies) == ["changed"]
    assert again.digest != first.digest


def test_a_policy_without_id_is_named_after_its_file(tmp_path: Path) -> None:
    text = GOOD + "permit (principal, action, resource);\n"
    bundle = load_policy_folder(folder(tmp_path, {"a.cedar": text}))
    assert list(bundle.policies) == ["ok", "a.cedar#2"]


def test_a_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    text = GOOD + '\n\n@id("bad")\npermit (principal, action, resource) when { context.x > };\n'
    message = error(folder(tmp_path, {"a.cedar": text}))
    assert message.startswith(f"{tmp_path / 'a.cedar'}:5: ")


def test_a_schema_violation_names_file_line_policy_and_problem(tmp_path: Path) -> None:
    text = GOOD + '@id("typo")\nforbid (principal, action == Action::"t", resource)\n' \
        "when { principal.dept == 3 || principal.dpt == \"x\" };\n"  # fmt: skip
    message = error(folder(tmp_path, {"a.cedar": text}))
    assert f"{tmp_path / 'a.cedar'}:3: policy `typo`:" in message
    assert "do not match their schema" in message


def test_an_unknown_action_is_a_schema_error(tmp_path: Path) -> None:
    text = 'permit (principal, action == Action::"nope", resource);\n'
    assert "nope" in error(folder(tmp_path, {"a.cedar": text}))


def test_annotations_are_checked(tmp_path: Path) -> None:
    typo = '@id("x") @reasons("why")\npermit (principal, action, resource);\n'
    assert "unknown annotation @reasons" in error(folder(tmp_path / "1", {"a.cedar": typo}))
    forbid = '@approval("why")\nforbid (principal, action, resource);\n'
    assert "marks a `permit`" in error(folder(tmp_path / "2", {"a.cedar": forbid}))
    lonely = '@approvers("boss")\npermit (principal, action, resource);\n'
    assert "@approvers belongs on an @approval" in error(
        folder(tmp_path / "3", {"a.cedar": lonely})
    )


def test_ids_are_unique_across_files(tmp_path: Path) -> None:
    message = error(folder(tmp_path, {"a.cedar": GOOD, "b.cedar": GOOD}))
    assert "`ok` is used twice (first at a.cedar:1)" in message


def test_templates_are_refused(tmp_path: Path) -> None:
    text = "permit (principal == ?principal, action, resource);\n"
    assert "templates" in error(folder(tmp_path, {"a.cedar": text}))


@pytest.mark.parametrize(
    ("policies", "schema", "expected"),
    [
        ({}, SCHEMA, "holds no `*.cedar` policy files"),
        ({"a.cedar": GOOD}, None, "needs exactly one Cedar schema"),
        ({"a.cedar": GOOD}, "{not json", "not valid JSON"),
        (
            {"a.cedar": GOOD},
            {"": {"entityTypes": {"U": {"shape": {"type": "Nope"}}}}},
            "not a valid Cedar schema",
        ),
        (
            {"a.cedar": GOOD},
            {"Acme": {"entityTypes": {}, "actions": {}}},
            "default (empty) namespace only",
        ),
    ],
)
def test_folder_problems(
    tmp_path: Path, policies: dict[str, str], schema: object, expected: str
) -> None:
    assert expected in error(folder(tmp_path / "p", policies, schema))


def test_a_missing_folder(tmp_path: Path) -> None:
    assert "No policy folder at" in error(tmp_path / "absent")
