"""Python values as Cedar values: by the schema's declared type, else by convention."""

from __future__ import annotations

from typing import Any

import pytest

from controlroom.tools.cedar import CedarSchema, CedarValueError, record, to_cedar

DEC = {"type": "Extension", "name": "decimal"}


def dec(text: str) -> dict[str, Any]:
    return {"__extn": {"fn": "decimal", "arg": text}}


@pytest.mark.parametrize(
    ("value", "ty", "expected"),
    [
        (5000, DEC, dec("5000.0000")),
        (480.5, DEC, dec("480.5000")),
        (0.1, DEC, dec("0.1000")),
        ("12.25", DEC, dec("12.2500")),
        (7.0, {"type": "Long"}, 7),
        ("bob", {"type": "Entity", "name": "User"}, {"__entity": {"type": "User", "id": "bob"}}),
        (["a", "b"], {"type": "Set", "element": {"type": "String"}}, ["a", "b"]),
        ({"x": 1, "y": None}, {"type": "Record", "attributes": {"x": DEC}}, {"x": dec("1.0000")}),
        (
            "10.0.0.1",
            {"type": "Extension", "name": "ipaddr"},
            {"__extn": {"fn": "ip", "arg": "10.0.0.1"}},
        ),
        (True, None, True),
        (3, None, 3),
        (2.5, None, dec("2.5000")),
        (("a",), None, ["a"]),
        ({"k": [1]}, None, {"k": [1]}),
    ],
)
def test_conversions(value: Any, ty: dict[str, Any] | None, expected: Any) -> None:
    assert to_cedar(value, ty, "v") == expected


@pytest.mark.parametrize(
    ("value", "ty", "problem"),
    [
        ("lots", DEC, "not a number"),
        (True, DEC, "boolean"),
        (1e20, DEC, "outside Cedar's decimal range"),
        (0.00001, DEC, "more than 4 decimal places"),
        (float("nan"), DEC, "outside"),
        (1.5, {"type": "Long"}, "not a whole number"),
        (2**70, {"type": "Long"}, "Long range"),
        (1, {"type": "String"}, "not a string"),
        ("yes", {"type": "Boolean"}, "not true or false"),
        ("ab", {"type": "Set", "element": {"type": "String"}}, "not a list"),
        (object(), None, "no Cedar equivalent"),
    ],
)
def test_values_that_cannot_be_given_to_cedar(value: Any, ty: Any, problem: str) -> None:
    with pytest.raises(CedarValueError, match=problem):
        to_cedar(value, ty, "v")


def test_record_leaves_out_none_and_names_where() -> None:
    with pytest.raises(CedarValueError, match=r"^user u's attribute\.limit"):
        record({"limit": "x"}, {"limit": DEC}, "user u's attribute")
    assert record({"a": None, "b": "x"}, {}, "") == {"b": "x"}


def test_schema_resolves_common_types_and_action_groups() -> None:
    schema = CedarSchema({"": {
        "commonTypes": {"Money": DEC, "Ctx": {"type": "Record", "attributes": {"amount": {"type": "Money"}}}},
        "entityTypes": {"User": {"shape": {"type": "Record", "attributes": {
            "boss": {"type": "EntityOrCommon", "name": "User"},
            "name": {"type": "EntityOrCommon", "name": "String"}}}}},
        "actions": {
            "all": {}, "money": {"memberOf": [{"id": "all"}]},
            "pay": {"memberOf": [{"id": "money"}], "appliesTo": {"context": {"type": "Ctx"}}},
        },
    }})  # fmt: skip
    assert schema.action_context["pay"]["amount"] == DEC
    assert schema.entity_attrs["User"]["boss"] == {"type": "Entity", "name": "User"}
    assert schema.entity_attrs["User"]["name"] == {"type": "String"}
    assert schema.members_of("all") == {"all", "money", "pay"}
    assert schema.actions == {"all", "money", "pay"}
