from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from controlroom.errors import ScriptError
from controlroom.testing import ScriptedChatModel, ScriptedReply, ScriptedToolCall


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order by id."""
    return f"order {order_id} has shipped"


class SendEmail(BaseModel):
    """Send an email."""

    to: str


def refund_script() -> ScriptedChatModel:
    return ScriptedChatModel(
        replies=[
            ScriptedReply(
                expect="(?i)refund",
                tool_calls=[ScriptedToolCall(name="lookup_order", args={"order_id": "A-17"})],
            ),
            ScriptedReply(expect="shipped", content="Your order has shipped."),
            "Anything else?",
        ]
    )


def test_reply_is_chosen_by_counting_ai_messages() -> None:
    model = ScriptedChatModel(replies=["first", "second", "third"])
    one: list[BaseMessage] = [SystemMessage("be brief"), HumanMessage("hi")]
    assert model.invoke(one).content == "first"
    # Invoking again with the same conversation plays the same reply: no hidden state.
    assert model.invoke(one).content == "first"
    two = [*one, AIMessage("first"), HumanMessage("and?")]
    assert model.invoke(two).content == "second"
    three = [*two, AIMessage("second"), HumanMessage("more")]
    assert model.invoke(three).content == "third"
    # A fresh model instance (as in a resumed run in another process) agrees.
    fresh = ScriptedChatModel(replies=["first", "second", "third"])
    assert fresh.invoke(two).content == "second"


def test_tool_calls_come_out_in_langchain_format() -> None:
    model = ScriptedChatModel(
        replies=[
            ScriptedReply(
                content="Looking it up.",
                tool_calls=[
                    ScriptedToolCall(name="lookup_order", args={"order_id": "A-17"}),
                    ScriptedToolCall(name="lookup_order", args={"order_id": "B-2"}, id="mine"),
                ],
            ),
            ScriptedReply(tool_calls=[ScriptedToolCall(name="lookup_order")]),
        ]
    )
    reply = model.invoke("refund A-17 and B-2")
    assert isinstance(reply, AIMessage)
    assert reply.content == "Looking it up."
    assert reply.tool_calls == [
        {
            "name": "lookup_order",
            "args": {"order_id": "A-17"},
            "id": "call_0_0",
            "type": "tool_call",
        },
        {"name": "lookup_order", "args": {"order_id": "B-2"}, "id": "mine", "type": "tool_call"},
    ]
    assert reply.response_metadata["model_name"] == "scripted"
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] > 0
    assert reply.usage_metadata["output_tokens"] > 0

    conversation = [
        HumanMessage("refund"),
        reply,
        ToolMessage("ok", tool_call_id="call_0_0"),
        ToolMessage("ok", tool_call_id="mine"),
    ]
    second = model.invoke(conversation)
    assert second.tool_calls[0]["id"] == "call_1_0"
    assert second.tool_calls[0]["args"] == {}


def test_usage_counts_are_reported_as_given() -> None:
    model = ScriptedChatModel(
        replies=[ScriptedReply.model_validate({"content": "x", "usage": {"input_tokens": 120}})]
    )
    usage = model.invoke("hi").usage_metadata
    assert usage is not None
    assert usage["input_tokens"] == 120
    assert usage["total_tokens"] == 120 + usage["output_tokens"]


def test_exhausted_script_names_index_and_count() -> None:
    model = ScriptedChatModel(replies=["only one"], name_in_errors="scripts/demo.yaml")
    with pytest.raises(ScriptError) as info:
        model.invoke([HumanMessage("hi"), AIMessage("only one"), HumanMessage("what now?")])
    message = str(info.value)
    assert "scripts/demo.yaml" in message
    assert "run out" in message
    assert "reply index 1" in message
    assert "only 1 replies" in message
    assert "what now?" in message
    assert "\n" not in message


def test_expect_mismatch_fails_and_match_passes() -> None:
    model = refund_script()
    with pytest.raises(ScriptError) as info:
        model.invoke("where is my parcel?")
    message = str(info.value)
    assert "reply index 0" in message
    assert "'(?i)refund'" in message
    assert "where is my parcel?" in message
    assert "expect" in message

    first = model.invoke("I want a REFUND")
    # The second reply expects the tool result, which is the last non-AI message.
    tool_result = ToolMessage("order A-17 is delayed", tool_call_id="call_0_0")
    with pytest.raises(ScriptError, match="reply index 1"):
        model.invoke([HumanMessage("refund"), first, tool_result])


def test_unknown_tool_is_refused_when_tools_are_bound() -> None:
    bound = refund_script().bind_tools([SendEmail])
    with pytest.raises(ScriptError) as info:
        bound.invoke("refund please")
    message = str(info.value)
    assert "'lookup_order'" in message
    assert "'SendEmail'" in message
    # Without bound tools, any tool name is played.
    assert refund_script().invoke("refund please").tool_calls[0]["name"] == "lookup_order"


def test_bind_tools_accepts_the_usual_inputs() -> None:
    def cancel_order(order_id: str) -> str:
        """Cancel an order."""
        return order_id

    openai_dict = {"type": "function", "function": {"name": "open_ticket", "parameters": {}}}
    bound = ScriptedChatModel(replies=["x"]).bind_tools(
        [lookup_order, SendEmail, cancel_order, openai_dict]
    )
    assert isinstance(bound, ScriptedChatModel)
    assert bound.bound_tools == ["lookup_order", "SendEmail", "cancel_order", "open_ticket"]


def test_bound_model_plays_the_whole_conversation() -> None:
    model = refund_script().bind_tools([lookup_order], tool_choice="auto")
    messages: list[BaseMessage] = [HumanMessage("I need a refund for A-17")]
    first = model.invoke(messages)
    assert first.tool_calls[0]["name"] == "lookup_order"
    messages.append(first)
    for call in first.tool_calls:
        messages.append(lookup_order.invoke(call))
    second = model.invoke(messages)
    assert second.content == "Your order has shipped."
    assert second.tool_calls == []
    messages += [second, HumanMessage("thanks")]
    assert model.invoke(messages).content == "Anything else?"


def test_stream_and_async_give_the_same_reply() -> None:
    model = refund_script().bind_tools([lookup_order])
    chunks = list(model.stream("refund please"))
    assert len(chunks) == 1
    assert chunks[0].tool_calls[0]["id"] == "call_0_0"
    reply = asyncio.run(model.ainvoke("refund please"))
    assert reply.tool_calls[0]["args"] == {"order_id": "A-17"}


def test_from_file_reads_replies_and_shorthand(tmp_path: Path) -> None:
    path = tmp_path / "script.yaml"
    path.write_text(
        "replies:\n"
        "  - expect: refund\n"
        "    tool_calls:\n"
        "      - name: lookup_order\n"
        "        args: {order_id: A-17}\n"
        "  - Plain text reply\n"
        "  - content: with usage\n"
        "    usage: {input_tokens: 3, output_tokens: 4}\n",
        encoding="utf-8",
    )
    model = ScriptedChatModel.from_file(path)
    assert model.name_in_errors == str(path)
    assert len(model.replies) == 3
    assert model.replies[1].content == "Plain text reply"
    assert model.invoke("refund").tool_calls[0]["args"] == {"order_id": "A-17"}

    bare = tmp_path / "bare.yaml"
    bare.write_text("- one\n- two\n", encoding="utf-8")
    assert [r.content for r in ScriptedChatModel.from_file(bare).replies] == ["one", "two"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("replies: [unclosed\n", "not valid YAML"),
        ("", "empty"),
        ("just a string\n", "not a `replies:` list"),
        ("replies:\n  - tool_calls: [{args: {}}]\n", "replies[0].tool_calls[0].name"),
        ("replies:\n  - contnet: typo\n", "replies[0].contnet"),
        ("replies:\n  - expect: '(unclosed'\n", "regular expression"),
        ("reply:\n  - hi\n", "reply"),
    ],
)
def test_from_file_errors_name_the_file(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScriptError) as info:
        ScriptedChatModel.from_file(path)
    assert str(path) in str(info.value)
    assert needle in str(info.value)


def test_from_file_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ScriptError, match="does not exist") as info:
        ScriptedChatModel.from_file(path)
    assert str(path) in str(info.value)
