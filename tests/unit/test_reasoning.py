"""Chain-of-thought and constrained-choice calls with a scripted model."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import HumanMessage, SystemMessage

from controlroom.agents.reasoning import choice_model, choose, think
from controlroom.errors import ModelCallError
from controlroom.testing import ScriptedChatModel, ScriptedReply

OPTIONS = ["hardware", "software", "access", "other"]
ASK = [SystemMessage("Classify the ticket."), HumanMessage("My laptop screen is broken")]


def scripted(*texts: str) -> ScriptedChatModel:
    return ScriptedChatModel(replies=[ScriptedReply(content=t) for t in texts])


def test_think_separates_reasoning_from_result() -> None:
    out = think(scripted('{"reasoning": "screen is hardware", "result": "replace screen"}'), ASK)
    assert out.value.model_dump() == {"reasoning": "screen is hardware", "result": "replace screen"}
    assert len(out.replies) == 1


def test_choose_retries_invalid_then_accepts_a_valid_option() -> None:
    model = scripted(
        "I think hardware",  # no JSON
        '{"reasoning": "r", "choice": "Hardware"}',  # not an option (case)
        '{"reasoning": "screen", "choice": "hardware"}',
    )
    out = choose(model, ASK, OPTIONS, retries=2)
    assert out.value.choice == "hardware"  # type: ignore[attr-defined]
    assert len(out.replies) == 3


def test_choose_gives_up_with_a_clear_error() -> None:
    model = scripted('{"reasoning": "r", "choice": "printer"}', "{}", "nope")
    with pytest.raises(ModelCallError, match=r"no valid choice among the options in 3 attempts"):
        choose(model, ASK, OPTIONS, retries=2)


def test_choice_schema_is_an_enum() -> None:
    schema = choice_model(OPTIONS).model_json_schema()
    assert schema["properties"]["choice"]["enum"] == OPTIONS
    with pytest.raises(ValueError, match="no duplicates"):
        choice_model(["a", "a"])


reply_text = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda c, r: json.dumps({"reasoning": r, "choice": c}),
        st.one_of(st.sampled_from(OPTIONS), st.text(max_size=12)),
        st.text(max_size=12),
    ),
    st.builds(lambda c: json.dumps({"choice": c}), st.sampled_from(OPTIONS)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(reply_text, min_size=3, max_size=3))
def test_choice_is_never_outside_the_options(texts: list[str]) -> None:
    try:
        out = choose(scripted(*texts), ASK, OPTIONS, retries=2)
    except ModelCallError:
        return
    assert out.value.choice in OPTIONS  # type: ignore[attr-defined]
