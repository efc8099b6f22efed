"""What tool specs declare for the gate, and LangChain tools wrapped as controlled tools."""

from __future__ import annotations

from typing import Annotated

import pytest
from langchain_core.tools import StructuredTool
from langchain_core.tools import tool as lc_tool
from pydantic import Field

from controlroom import Effect, PolicyGate, ToolArgumentsError, Verdict, from_langchain_tool, tool
from controlroom.tools.policy import builtin_policies
from tests.pack_support import directory


def test_resource_refs_come_from_the_declared_argument() -> None:
    @tool(resource="Invoice", resource_id="invoice_id")
    def look(invoice_id: str) -> str:
        """Look."""
        return invoice_id

    @tool
    def plain() -> str:
        """Plain."""
        return ""

    assert look.resource_ref({"invoice_id": "INV-1"}) == ("Invoice", "INV-1")
    assert plain.resource_ref({}) == ("Tool", "plain")

    def typed(a: str) -> str:
        return a

    with pytest.raises(TypeError, match="resource_id `nope` is not one of its arguments"):
        tool(resource="X", resource_id="nope")(typed)


def test_annotated_constraints_are_validated_and_in_the_schema() -> None:
    @tool
    def pay(amount: Annotated[float, Field(gt=0, le=100, description="EUR")]) -> float:
        """Pay."""
        return amount

    prop = pay.json_schema()["function"]["parameters"]["properties"]["amount"]
    assert (prop["exclusiveMinimum"], prop["maximum"], prop["description"]) == (0, 100, "EUR")
    with pytest.raises(ToolArgumentsError, match="greater than 0"):
        pay.validate_args({"amount": 0})


@lc_tool
def weather(city: str, days: int = 1) -> str:
    """Today's weather in a city."""
    return f"sunny in {city} for {days} day(s)"


def test_a_langchain_tool_becomes_a_controlled_tool() -> None:
    wrapped = from_langchain_tool(weather, effect="read", resource="City", resource_id="city")
    assert (wrapped.name, wrapped.effect, wrapped.description) == (
        "weather", Effect.READ, "Today's weather in a city."
    )  # fmt: skip
    assert wrapped.resource_ref({"city": "Lisbon"}) == ("City", "Lisbon")
    args = wrapped.validate_args({"city": "Lisbon", "days": 2})
    assert wrapped.invoke(args, None) == "sunny in Lisbon for 2 day(s)"  # type: ignore[arg-type]
    with pytest.raises(ToolArgumentsError, match="Extra inputs are not permitted"):
        wrapped.validate_args({"city": "Lisbon", "units": "C"})


def test_a_langchain_tool_with_a_json_schema() -> None:
    def shout(text: str) -> str:
        return text.upper()

    base = StructuredTool.from_function(
        func=shout, name="shout", description="Shout.",
        args_schema={"type": "object", "properties": {"text": {"type": "string"}},
                     "required": ["text"]},
    )  # fmt: skip
    wrapped = from_langchain_tool(base, effect=Effect.WRITE, requires_approval=True)
    assert wrapped.needs_approval_by_default
    assert wrapped.invoke(wrapped.validate_args({"text": "hi"}), None) == "HI"  # type: ignore[arg-type]
    with pytest.raises(ToolArgumentsError):
        wrapped.validate_args({})


def test_a_wrapped_tool_is_gated_like_any_other() -> None:
    wrapped = from_langchain_tool(weather)
    gate = PolicyGate.load(builtin_policies("pack"))
    decision = gate.decide(directory()["alice"], wrapped, {"city": "Lisbon", "days": 1})
    assert decision.verdict is Verdict.DENY  # not declared in the pack's schema: default deny
    assert "does not declare the action `weather`" in decision.reason
