"""A chat model that plays a script, for deterministic tests and demos.

:class:`ScriptedChatModel` is a langchain-core ``BaseChatModel`` that answers with a
fixed list of replies instead of calling a provider. A script looks like this::

    replies:
      - expect: "(?i)refund"            # regex the user's message must match
        tool_calls:
          - name: lookup_order
            args: {order_id: "A-17"}
      - expect: "shipped"               # ... and here the tool result
        content: "Your order has shipped."
      - "Plain strings are content-only replies."

The model keeps no counter: the reply it plays is the one at index *number of AI
messages already in the conversation*. A run that is paused, stored, and resumed in
another process therefore gets the same reply as one that ran straight through.

Whenever the conversation drifts from the script (the script ran out, an ``expect``
pattern does not match, or a scripted tool call names a tool the model was not given)
the model raises :class:`~controlroom.errors.ScriptError` with a message that says
which reply, what was expected, what the conversation held, and how to fix the script.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolCall
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from controlroom.errors import ScriptError

__all__ = [
    "ScriptedChatModel",
    "ScriptedReply",
    "ScriptedToolCall",
    "ScriptedUsage",
]

_SNIPPET_CHARS = 200


class ScriptedToolCall(BaseModel):
    """One tool call in a scripted reply."""

    model_config = ConfigDict(extra="forbid")

    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None

    @field_validator("args", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        # ``args:`` with nothing after it is null in YAML; read it as "no arguments".
        return {} if value is None else value


class ScriptedUsage(BaseModel):
    """Token counts to report for a reply; a count left out is estimated from text."""

    model_config = ConfigDict(extra="forbid")

    input_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)


class ScriptedReply(BaseModel):
    """One reply of the script: text, tool calls, or both."""

    model_config = ConfigDict(extra="forbid")

    content: str = ""
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)
    expect: str | None = None
    """A regex that must ``re.search`` the last non-AI message before this reply."""
    usage: ScriptedUsage | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _none_is_blank(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("tool_calls", mode="before")
    @classmethod
    def _none_is_no_calls(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("expect")
    @classmethod
    def _expect_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from exc
        return value


class _ScriptFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    replies: list[ScriptedReply]

    @field_validator("replies", mode="before")
    @classmethod
    def _strings_are_content(cls, value: Any) -> Any:
        return _expand_shorthand(value)


def _expand_shorthand(value: Any) -> Any:
    """Turn plain strings in a list of replies into content-only replies."""
    if isinstance(value, list):
        return [{"content": item} if isinstance(item, str) else item for item in value]
    return value


def _message_text(message: BaseMessage) -> str:
    text = message.text
    return str(text)


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) > _SNIPPET_CHARS:
        flat = flat[: _SNIPPET_CHARS - 1] + "…"
    return repr(flat)


def _estimate_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def _tool_name(tool: Mapping[str, Any] | type | Callable[..., Any] | BaseTool) -> str:
    converted = convert_to_openai_tool(tool)
    function = converted.get("function")
    if isinstance(function, Mapping) and isinstance(function.get("name"), str):
        return str(function["name"])
    for key in ("name", "type"):
        if isinstance(converted.get(key), str):
            return str(converted[key])
    raise ScriptError(
        f"Cannot tell the name of the tool {tool!r} bound to the scripted model. Bind "
        "tools as langchain tools, pydantic classes, functions, or OpenAI-style dicts "
        '({"type": "function", "function": {"name": ...}}).'
    )


def _format_validation_error(exc: ValidationError) -> str:
    parts: list[str] = []
    for error in exc.errors():
        where = ""
        for loc in error["loc"]:
            where += f"[{loc}]" if isinstance(loc, int) else (f".{loc}" if where else str(loc))
        parts.append(f"{where or 'top level'}: {error['msg']}")
    return "; ".join(parts)


class ScriptedChatModel(BaseChatModel):
    """A chat model that plays ``replies`` in order, chosen by counting AI messages.

    Build one directly (``ScriptedChatModel(replies=["hello"])``; plain strings are
    content-only replies) or from a YAML file with :meth:`from_file`.
    """

    replies: list[ScriptedReply]
    name_in_errors: str = "script"
    """How error messages name the script, e.g. the path of its file."""
    bound_tools: list[str] | None = None
    """Names of the tools given to :meth:`bind_tools`; ``None`` when none were bound."""

    @field_validator("replies", mode="before")
    @classmethod
    def _strings_are_content(cls, value: Any) -> Any:
        return _expand_shorthand(value)

    @classmethod
    def from_file(cls, path: Path) -> ScriptedChatModel:
        """Read a script from a YAML file: a ``replies:`` list, or a bare list."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ScriptError(
                f"The script file {path} does not exist. Check the path, or create the "
                "file with a `replies:` list."
            ) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ScriptError(f"Cannot read the script file {path}: {exc}.") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            where = ""
            mark = getattr(exc, "problem_mark", None)
            if mark is not None:
                where = f" at line {mark.line + 1}, column {mark.column + 1}"
            problem = getattr(exc, "problem", None) or str(exc)
            raise ScriptError(
                f"The script file {path} is not valid YAML{where}: {problem}. Fix the "
                "file so that it holds a `replies:` list."
            ) from exc
        if data is None:
            raise ScriptError(
                f"The script file {path} is empty. Give it a `replies:` list with one entry "
                "per model reply."
            )
        if isinstance(data, list):
            data = {"replies": data}
        if not isinstance(data, dict):
            raise ScriptError(
                f"The script file {path} holds a {type(data).__name__}, not a `replies:` "
                "list. Write it as `replies:` followed by one list entry per model reply."
            )
        try:
            script = _ScriptFile.model_validate(data)
        except ValidationError as exc:
            raise ScriptError(
                f"The script file {path} does not match the script format: "
                f"{_format_validation_error(exc)}. Each reply is a string or a mapping with "
                "`content`, `tool_calls` (each with `name`, optional `args` and `id`), "
                "`expect` (a regex), and `usage` (`input_tokens`, `output_tokens`)."
            ) from exc
        return cls(replies=script.replies, name_in_errors=str(path))

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Return a copy that knows the names of ``tools``; other arguments are ignored."""
        names = [_tool_name(tool) for tool in tools]
        return self.model_copy(update={"bound_tools": names})

    # --- playing the script ---------------------------------------------------------

    def _tool_names(self, kwargs: Mapping[str, Any]) -> list[str] | None:
        # ``model.bind(tools=[...])`` passes the tools at call time instead of bind_tools.
        tools = kwargs.get("tools")
        if tools:
            return [_tool_name(tool) for tool in tools]
        return self.bound_tools

    def _fail(self, problem: str, last: BaseMessage | None, fix: str) -> ScriptError:
        if last is None:
            seen = "the conversation has no user, system or tool message"
        else:
            seen = (
                f"the conversation's last non-AI message was a {last.type} message: "
                f"{_snippet(_message_text(last))}"
            )
        return ScriptError(f"{self.name_in_errors}: {problem}; {seen}. {fix}")

    def _play(self, messages: Sequence[BaseMessage], kwargs: Mapping[str, Any]) -> AIMessage:
        # A message can stand for several model replies (a reasoning step that retried
        # keeps one result message): it says so in response_metadata["model_calls"].
        index = sum(
            int(message.response_metadata.get("model_calls", 1))
            for message in messages
            if isinstance(message, AIMessage)
        )
        last = next((m for m in reversed(messages) if not isinstance(m, AIMessage)), None)
        count = len(self.replies)
        if index >= count:
            raise self._fail(
                f"the script has run out: the model was asked for reply index {index} "
                f"(0-based; the conversation already holds {index} AI messages) but the "
                f"script has only {count} replies",
                last,
                "Add the missing reply to the end of the script, or find out why the run "
                "called the model more often than the script planned.",
            )
        reply = self.replies[index]
        if reply.expect is not None:
            text = "" if last is None else _message_text(last)
            if last is None or re.search(reply.expect, text) is None:
                raise self._fail(
                    f"reply index {index} (0-based) expects the last non-AI message to match "
                    f"the regex {reply.expect!r}, and it does not",
                    last,
                    "Fix the reply's `expect` pattern, or reorder the replies so that this "
                    "one answers the message it was written for.",
                )
        tool_names = self._tool_names(kwargs)
        tool_calls: list[ToolCall] = []
        for position, call in enumerate(reply.tool_calls):
            if tool_names is not None and call.name not in tool_names:
                offered = ", ".join(repr(name) for name in tool_names) or "none"
                raise self._fail(
                    f"tool call {position} of reply index {index} (0-based) names the tool "
                    f"{call.name!r}, which is not among the tools bound to the model "
                    f"({offered})",
                    last,
                    "Rename the scripted tool call to one of the bound tools, or give the "
                    "step that uses this model the tool.",
                )
            tool_calls.append(
                ToolCall(
                    name=call.name,
                    args=dict(call.args),
                    id=call.id if call.id is not None else f"call_{index}_{position}",
                    type="tool_call",
                )
            )
        usage = reply.usage or ScriptedUsage()
        input_tokens = usage.input_tokens
        if input_tokens is None:
            input_tokens = _estimate_tokens("".join(_message_text(m) for m in messages))
        output_tokens = usage.output_tokens
        if output_tokens is None:
            output_text = reply.content + "".join(
                call.name + json.dumps(call.args, sort_keys=True, default=str)
                for call in reply.tool_calls
            )
            output_tokens = _estimate_tokens(output_text)
        return AIMessage(
            content=reply.content,
            tool_calls=tool_calls,
            usage_metadata=UsageMetadata(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                total_tokens=input_tokens + output_tokens,
            ),
            response_metadata={
                "model_name": "scripted",
                "model_provider": "scripted",
                "script": self.name_in_errors,
                "reply_index": index,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            },
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._play(messages, kwargs))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._play(messages, kwargs)
        chunk = ChatGenerationChunk(
            message=AIMessageChunk(
                content=message.content,
                tool_calls=message.tool_calls,
                usage_metadata=message.usage_metadata,
                response_metadata=message.response_metadata,
                chunk_position="last",
            )
        )
        if run_manager is not None:
            run_manager.on_llm_new_token(message.text, chunk=chunk)
        yield chunk
