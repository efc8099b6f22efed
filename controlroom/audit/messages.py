"""Chat messages as the audit sees them: what is hashed, what is recorded, what replay plays.

The "full input" of a model call is the system prompt, the conversation and the names of
the tools offered; its hash is taken over a stable view of each message (role, content,
name, tool calls, tool call id): message ids and provider metadata are left out, so the
same conversation hashes the same in the original run and in its replay.

Outputs are recorded as OpenTelemetry GenAI ``gen_ai.output.messages`` parts (``text``,
``reasoning``, ``tool_call``); string content is one text part, so replay rebuilds the
reply exactly. Content that was a list of provider blocks is kept as it was as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolCall, ToolMessage
from langchain_core.messages.ai import UsageMetadata

from controlroom.audit.redact import Redactor, Verbatim

_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}


def message_view(message: BaseMessage) -> dict[str, Any]:
    view: dict[str, Any] = {
        "role": _ROLES.get(message.type, message.type),
        "content": message.content,
    }
    if message.name:
        view["name"] = message.name
    if isinstance(message, AIMessage) and message.tool_calls:
        view["tool_calls"] = [
            {"id": c.get("id"), "name": c["name"], "arguments": c["args"]}
            for c in message.tool_calls
        ]
    if isinstance(message, ToolMessage):
        view["tool_call_id"] = message.tool_call_id
        if message.status == "error":
            view["status"] = "error"
    return view


# Names and ids are hashed as they are, like the record keeps them: a replay, whose
# redactor knows fewer secrets than the run's did, hashes the same names the same way.
_CALL_NAMES: Verbatim = {"id": True, "name": True}
_INPUT_NAMES: Verbatim = {
    "tools": True,
    "messages": {"role": True, "name": True, "tool_call_id": True, "tool_calls": _CALL_NAMES},
}
_OUTPUT_NAMES: Verbatim = {"tool_calls": _CALL_NAMES}


def input_digest(messages: Sequence[BaseMessage], tools: Sequence[str], redactor: Redactor) -> str:
    """Hash of the full input of a model call (secrets scrubbed first, names kept)."""
    return redactor.digest(
        {"messages": [message_view(m) for m in messages], "tools": list(tools)}, _INPUT_NAMES
    )


def output_digest(reply: AIMessage, redactor: Redactor) -> str:
    calls = [
        {"id": c.get("id"), "name": c["name"], "arguments": c["args"]} for c in reply.tool_calls
    ]
    return redactor.digest({"content": reply.content, "tool_calls": calls}, _OUTPUT_NAMES)


def reasoning_of(reply: AIMessage) -> str | None:
    extra = reply.additional_kwargs
    text = extra.get("reasoning_content")
    if isinstance(text, str) and text:
        return text
    reasoning = extra.get("reasoning")
    if isinstance(reasoning, dict):
        summary = reasoning.get("summary")
        if isinstance(summary, list):
            joined = "\n".join(str(s.get("text", "")) for s in summary if isinstance(s, dict))
            return joined or None
    return None


def output_parts(reply: AIMessage, redactor: Redactor) -> list[dict[str, Any]]:
    """The reply as OpenTelemetry GenAI message parts, redacted per mode."""
    parts: list[dict[str, Any]] = []
    reasoning = reasoning_of(reply)
    if reasoning:
        parts.append({"type": "reasoning", "content": redactor.text(reasoning)})
    if isinstance(reply.content, str):
        if reply.content:
            parts.append({"type": "text", "content": redactor.text(reply.content)})
    else:
        for block in reply.content:
            if isinstance(block, str):
                parts.append({"type": "text", "content": redactor.text(block)})
                continue
            kind = block.get("type")
            if kind == "text":
                parts.append({"type": "text", "content": redactor.text(str(block.get("text", "")))})
            elif kind in ("reasoning", "thinking"):
                body = block.get("reasoning") or block.get("thinking") or ""
                parts.append({"type": "reasoning", "content": redactor.text(str(body))})
            elif kind not in ("tool_use", "tool_call", "function_call"):
                parts.append({"type": str(kind), "content": redactor.data(block)})
    for call in reply.tool_calls:
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": call["name"],
                "arguments": redactor.data(call["args"]),
            }
        )
    return parts


def finish_reason(reply: AIMessage) -> str | None:
    meta = reply.response_metadata
    for key in ("finish_reason", "stop_reason", "done_reason"):
        if isinstance(meta.get(key), str):
            return str(meta[key])
    return "tool_calls" if reply.tool_calls else None


def reply_from_record(record: dict[str, Any]) -> AIMessage:
    """Rebuild the AIMessage a ``model.call`` record holds (needs redaction ``full``)."""
    [message] = record["gen_ai.output.messages"]
    parts: list[dict[str, Any]] = message["parts"]
    blocks = record.get("controlroom.output.content_blocks")
    content: Any
    if isinstance(blocks, list):
        content = blocks
    else:
        texts = [p["content"] for p in parts if p.get("type") == "text"]
        if any(not isinstance(t, str) for t in texts):
            raise ValueError("the recorded output is redacted")
        content = "".join(texts)
    calls = [
        ToolCall(name=p["name"], args=p["arguments"], id=p.get("id"), type="tool_call")
        for p in parts
        if p.get("type") == "tool_call"
    ]
    if any(not isinstance(c["args"], dict) or "redacted" in c["args"] for c in calls):
        raise ValueError("the recorded tool call arguments are redacted")
    usage = None
    tokens_in = record.get("gen_ai.usage.input_tokens")
    tokens_out = record.get("gen_ai.usage.output_tokens")
    if isinstance(tokens_in, int) and isinstance(tokens_out, int):
        usage = UsageMetadata(
            input_tokens=tokens_in, output_tokens=tokens_out, total_tokens=tokens_in + tokens_out
        )
    return AIMessage(
        content=content,
        tool_calls=calls,
        usage_metadata=usage,
        response_metadata={
            "model_name": record.get("gen_ai.response.model") or "replay",
            "model_provider": "replay",
            "replayed_from_seq": record.get("seq"),
        },
    )
