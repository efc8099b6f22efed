"""The Cedar policy gate on a small policy folder of its own (no tool pack)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import Field

from controlroom import Decision, Effect, PolicyGate, Principal, Verdict, tool
from controlroom.tools.policy import may_approve

SCHEMA: dict[str, Any] = {
    "": {
        "entityTypes": {
            "Role": {},
            "User": {
                "memberOfTypes": ["Role"],
                "shape": {"type": "Record", "attributes": {
                    "limit": {"type": "Extension", "name": "decimal", "required": False},
                    "team": {"type": "String", "required": False},
                }},
            },
            "Doc": {"shape": {"type": "Record", "attributes": {
                "owner": {"type": "Entity", "name": "User"},
                "secret": {"type": "Boolean"},
            }}},
            "Tool": {},
        },
        "actions": {
            "reading": {},
            "read_doc": {
                "memberOf": [{"id": "reading"}],
                "appliesTo": {"principalTypes": ["User"], "resourceTypes": ["Doc"],
                              "context": {"type": "Record", "attributes": {
                                  "doc": {"type": "String"}, "effect": {"type": "String"}}}},
            },
            "pay": {
                "appliesTo": {"principalTypes": ["User"], "resourceTypes": ["Tool"],
                              "context": {"type": "Record", "attributes": {
                                  "amount": {"type": "Extension", "name": "decimal"},
                                  "effect": {"type": "String"}}}},
            },
            "wipe": {
                "appliesTo": {"principalTypes": ["User"], "resourceTypes": ["Tool"],
                              "context": {"type": "Record", "attributes": {
                                  "effect": {"type": "String"}}}},
            },
        },
    }
}  # fmt: skip
POLICIES = """
@id("readers") @reason("only readers may read documents")
permit (principal in Role::"reader", action in Action::"reading", resource);

@id("no-secrets") @reason("{resource.id} is secret and {principal.name} is not its owner")
forbid (principal, action == Action::"read_doc", resource)
when { resource.secret && resource.owner != principal };

@id("payers") @reason("only payers may pay")
permit (principal in Role::"payer", action == Action::"pay", resource);

@id("limit") @reason("{context.amount} is above your limit of {principal.limit}")
forbid (principal, action == Action::"pay", resource)
when { principal has limit && context.amount.greaterThan(principal.limit) };

@id("big") @approval("payments above 100 need a second pair of eyes") @approvers("boss")
permit (principal, action == Action::"pay", resource)
when { context.amount.greaterThan(decimal("100.0")) };

@id("wipers") permit (principal, action == Action::"wipe", resource);
"""
DOCS = {"d1": {"owner": "ann", "secret": False}, "d2": {"owner": "ann", "secret": True}}


def load_doc(doc: str) -> dict[str, Any]:
    if doc not in DOCS:
        raise LookupError(f"there is no document {doc}")
    return DOCS[doc]


@tool(resource="Doc", resource_id="doc", resource_loader=load_doc)
def read_doc(doc: str) -> str:
    """Read a document."""
    return doc


@tool(effect=Effect.WRITE)
def pay(amount: Annotated[float, Field(gt=0)]) -> float:
    """Pay."""
    return amount


@tool(effect=Effect.IRREVERSIBLE)
def wipe() -> str:
    """Wipe everything."""
    return "gone"


@tool
def unknown_action(x: int) -> int:
    """Not in the schema."""
    return x


ANN = Principal(id="ann", name="Ann", roles=("reader", "payer"), attributes={"limit": 500})
BEN = Principal(id="ben", name="Ben", roles=("reader", "boss"), attributes={"team": "x"})


@pytest.fixture
def gate(tmp_path: Path) -> PolicyGate:
    (tmp_path / "p.cedar").write_text(POLICIES)
    (tmp_path / "schema.cedarschema.json").write_text(json.dumps(SCHEMA))
    return PolicyGate.load(tmp_path)


def decide(gate: PolicyGate, who: Principal, t: Any, **args: Any) -> Decision:
    return gate.decide(who, t, t.validate_args(args).model_dump(mode="json"))


def test_permit_through_a_role_and_an_action_group(gate: PolicyGate) -> None:
    d = decide(gate, ANN, read_doc, doc="d1")
    assert (d.verdict, d.policies) == (Verdict.ALLOW, ("readers",))
    assert d.policy_hash == gate.policy_hash and d.policy_hash.startswith("sha256:")


def test_forbid_overrides_permit_and_explains_with_the_filled_in_reason(gate: PolicyGate) -> None:
    d = decide(gate, BEN, read_doc, doc="d2")
    assert (d.verdict, d.policies) == (Verdict.DENY, ("no-secrets",))
    assert d.reason == "d2 is secret and Ben is not its owner"
    assert decide(gate, ANN, read_doc, doc="d2").verdict is Verdict.ALLOW


def test_default_deny_gives_the_rule_of_the_permits_that_did_not_match(gate: PolicyGate) -> None:
    d = decide(gate, Principal(id="cat", roles=("guest",)), read_doc, doc="d1")
    assert (d.verdict, d.policies) == (Verdict.DENY, ("default-deny",))
    assert d.reason == "only readers may read documents"


def test_an_action_missing_from_the_schema_is_denied_and_says_so(gate: PolicyGate) -> None:
    d = decide(gate, ANN, unknown_action, x=1)
    assert d.verdict is Verdict.DENY
    assert "does not declare the action `unknown_action`" in d.reason


def test_a_missing_resource_is_denied_before_any_policy(gate: PolicyGate) -> None:
    d = decide(gate, ANN, read_doc, doc="d9")
    assert (d.verdict, d.reason, d.policies) == (
        Verdict.DENY, "there is no document d9", ("resource-lookup",)
    )  # fmt: skip


def test_a_failing_lookup_denies(gate: PolicyGate) -> None:
    def broken(doc: str) -> dict[str, Any]:
        raise RuntimeError("database is locked")

    flaky = read_doc.model_copy(update={"resource_loader": broken})
    d = decide(gate, ANN, flaky, doc="d1")
    assert d.verdict is Verdict.DENY and "database is locked" in d.reason


def test_float_arguments_compare_with_integer_attributes_as_decimals(gate: PolicyGate) -> None:
    assert decide(gate, ANN, pay, amount=50).verdict is Verdict.ALLOW
    assert decide(gate, ANN, pay, amount=500).verdict is Verdict.APPROVE
    over = decide(gate, ANN, pay, amount=500.01)
    assert (over.verdict, over.policies) == (Verdict.DENY, ("limit",))
    assert over.reason == "500.01 is above your limit of 500"


def test_approval_rule_names_its_reason_and_approvers(gate: PolicyGate) -> None:
    d = decide(gate, ANN, pay, amount=150)
    assert d.verdict is Verdict.APPROVE
    assert d.reason == "payments above 100 need a second pair of eyes"
    assert d.policies == ("big", "payers") and d.approvers == ("boss",)
    assert may_approve(d, BEN, ANN) is None
    assert "needs someone with the role boss" in (may_approve(d, ANN.model_copy(
        update={"id": "zed"}), ANN) or "")  # fmt: skip
    assert "own request" in (may_approve(d, ANN, ANN) or "")


def test_an_approval_rule_alone_grants_nothing(gate: PolicyGate) -> None:
    d = decide(gate, Principal(id="eve", roles=("guest",)), pay, amount=150)
    assert (d.verdict, d.policies) == (Verdict.DENY, ("default-deny",))


def test_irreversible_tools_always_wait_for_a_person(gate: PolicyGate) -> None:
    d = decide(gate, ANN, wipe)
    assert d.verdict is Verdict.APPROVE and d.policies == ("builtin:irreversible", "wipers")
    assert d.reason == "the tool's effect is irreversible"
    declared = pay.model_copy(update={"requires_approval": True})
    assert decide(gate, ANN, declared, amount=1).policies[0] == "builtin:requires-approval"


def test_an_attribute_of_the_wrong_type_fails_closed(gate: PolicyGate) -> None:
    odd = Principal(id="odd", roles=("payer",), attributes={"limit": "lots"})
    d = decide(gate, odd, pay, amount=1)
    assert (d.verdict, d.policies) == (Verdict.DENY, ("policy-input",))
    assert "limit" in d.reason


def test_an_evaluation_error_fails_closed(gate: PolicyGate) -> None:
    # `team` is declared a String but no policy reads it; a policy reading an attribute
    # Cedar cannot evaluate (here: the resource lacks `secret`) must deny, not skip.
    def no_secret(doc: str) -> dict[str, Any]:
        return {"owner": "ann"}

    partial = read_doc.model_copy(update={"resource_loader": no_secret})
    d = decide(gate, BEN, partial, doc="d1")
    assert d.verdict is Verdict.DENY
    assert d.policies == ("no-secrets",) and "could not be evaluated" in d.reason


def test_a_changed_principal_is_not_served_from_the_cache(gate: PolicyGate) -> None:
    assert decide(gate, ANN, pay, amount=400).verdict is Verdict.APPROVE
    poorer = ANN.model_copy(update={"attributes": {"limit": 300}})
    assert decide(gate, poorer, pay, amount=400).verdict is Verdict.DENY


def test_the_reserved_effect_name_cannot_be_an_argument(gate: PolicyGate) -> None:
    @tool
    def pay(effect: str) -> str:  # same action name, an argument called `effect`
        """Bad."""
        return effect

    d = decide(gate, ANN, pay, effect="x")
    assert d.verdict is Verdict.DENY and "reserved" in d.reason
