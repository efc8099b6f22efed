"""Every policy set shipped in the package and the examples parses and validates (CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlroom.tools.cedar_schema import action_schema
from controlroom.tools.pack import tools
from controlroom.tools.policy import builtin_policies
from controlroom.tools.policy_files import load_policy_folder

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(
    {p.parent for p in (REPO / "controlroom" / "data" / "policies").rglob("*.cedar")}
    | {p.parent for p in (REPO / "examples").rglob("*.cedar")}
)


def test_there_are_shipped_policy_sets() -> None:
    assert builtin_policies("pack") in SHIPPED


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_policies_validate_against_their_schema(folder: Path) -> None:
    bundle = load_policy_folder(folder)
    assert bundle.policies
    for info in bundle.policies.values():
        assert "#" not in info.id, f"{info.file}:{info.line}: give the policy an @id"
        assert info.reason or info.approval, f"{info.id}: give the policy a @reason"


def test_the_pack_schema_declares_every_tool_as_its_signature_says() -> None:
    schema = load_policy_folder(builtin_policies("pack")).schema
    for tool in tools:
        drafted = action_schema(tool)["appliesTo"]["context"]["attributes"]
        declared = schema.action_context[tool.name]
        for name, node in drafted.items():
            assert name in declared, f"{tool.name}: context `{name}` missing from the schema"
            kind = {k: v for k, v in node.items() if k != "required"}
            assert {k: v for k, v in declared[name].items() if k in kind} == kind, (tool.name, name)
            assert declared[name].get("required", True) == node.get("required", True), (
                tool.name,
                name,
            )
