"""Our LangChain chat-model adapter for llama.cpp (llama-cpp-python).

LangChain's ChatLlamaCpp does not return tool calls. This adapter does: when tools are
bound, every reply is generated under a JSON-schema grammar that forces a *schema-valid
choice* between calling one or more of the offered tools (each with arguments valid for
that tool's schema) and giving a final answer. Structured output uses the same grammar
mechanism with the requested schema. The model is loaded once per process and shared;
generation is serialised because a llama.cpp context is not thread-safe.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

from controlroom.errors import ModelUnavailableError

_MODELS: dict[tuple[str, int, int], Any] = {}
_LOAD_LOCK = threading.Lock()
_GENERATE_LOCKS: dict[tuple[str, int, int], threading.Lock] = {}


@atexit.register
def _close_models() -> None:
    """Free llama.cpp models before interpreter teardown (their finalisers fail later)."""
    while _MODELS:
        _, llama = _MODELS.popitem()
        llama.close()


def load_llama(path: Path, n_ctx: int, n_threads: int) -> tuple[Any, threading.Lock]:
    """The process-wide llama.cpp model for this file and context size (loaded once)."""
    key = (str(path), n_ctx, n_threads)
    with _LOAD_LOCK:
        if key not in _MODELS:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise ModelUnavailableError(
                    "The embedded model needs llama-cpp-python: `pip install 'controlroom[local]'`."
                ) from None
            _MODELS[key] = Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, verbose=False
            )
            _GENERATE_LOCKS[key] = threading.Lock()
        return _MODELS[key], _GENERATE_LOCKS[key]


GRAMMAR_MAX_LENGTH = 1000


def grammar_safe(schema: Any) -> Any:
    """``schema`` without what llama.cpp's JSON-schema grammar cannot take.

    Regex ``pattern`` keywords (``\\.`` and similar escapes fail to parse, and a grammar
    that fails to parse crashes the process) and very long ``maxLength`` bounds (a
    ``{0,20000}`` repetition blows the grammar up) are left out. The arguments are still
    validated against the tool's full schema before anything runs, so a reply that breaks
    them is refused and sent back to the model.
    """
    if isinstance(schema, dict):
        return {
            key: (
                {name: grammar_safe(sub) for name, sub in value.items()}  # argument names
                if key in ("properties", "$defs", "definitions") and isinstance(value, dict)
                else grammar_safe(value)
            )
            for key, value in schema.items()
            if key != "pattern"
            and not (key == "maxLength" and isinstance(value, int) and value > GRAMMAR_MAX_LENGTH)
        }
    if isinstance(schema, list):
        return [grammar_safe(value) for value in schema]
    return schema


def choice_schema(
    tools: Sequence[dict[str, Any]], tool_choice: str | None = None
) -> dict[str, Any]:
    """JSON schema of a reply that either calls one offered tool or answers.

    ``tool_choice`` follows LangChain: ``"any"``/``"required"`` removes the answer branch,
    a tool's name forces that tool, ``"none"`` forces an answer, None/``"auto"`` lets the
    model choose.

    The call shape ``{"name": ..., "arguments": {...}}`` is the one Qwen2.5 models are
    trained to emit for tool calls, so the grammar constrains the model's own habit.
    """
    calls: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {
                "name": {"const": t["function"]["name"]},
                "arguments": grammar_safe(t["function"].get("parameters") or {"type": "object"}),
            },
            "required": ["name", "arguments"],
        }
        for t in tools
        if tool_choice in (None, "auto", "any", "required", t["function"]["name"])
    ]
    answer: dict[str, Any] = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
    }
    if tool_choice == "none" or not calls:
        return answer
    if tool_choice in (None, "auto"):
        return {"anyOf": [*calls, answer]}
    return calls[0] if len(calls) == 1 else {"anyOf": calls}


def _tool_prompt(tools: Sequence[dict[str, Any]]) -> str:
    signatures = "\n".join(json.dumps(t, sort_keys=True) for t in tools)
    return (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        f"<tools>\n{signatures}\n</tools>\n\n"
        "For a function call, return a json object with function name and arguments: "
        '{"name": <function-name>, "arguments": <args-json-object>}. '
        "When no function call is needed any more, reply to the user with "
        '{"answer": <your reply>}.'
    )


def to_llama_messages(
    messages: Sequence[BaseMessage], tools: Sequence[dict[str, Any]]
) -> list[dict[str, str]]:
    """LangChain messages in the form the model's chat template and tool habits expect."""
    out: list[dict[str, str]] = []
    system = [str(m.content) for m in messages if isinstance(m, SystemMessage)]
    if tools:
        system.append(_tool_prompt(tools))
    if system:
        out.append({"role": "system", "content": "\n\n".join(system)})
    for m in messages:
        if isinstance(m, SystemMessage):
            continue
        if isinstance(m, AIMessage) and m.tool_calls:
            blocks = [
                "<tool_call>\n"
                + json.dumps({"name": c["name"], "arguments": c["args"]})
                + "\n</tool_call>"
                for c in m.tool_calls
            ]
            out.append({"role": "assistant", "content": "\n".join(blocks)})
        elif isinstance(m, AIMessage) and "model_calls" in m.response_metadata:
            # The result of a reasoning step: shown as a note, not as the model's own
            # words, which small models tend to repeat verbatim.
            out.append({"role": "user", "content": f"(noted: {m.content})"})
        elif isinstance(m, AIMessage):
            out.append({"role": "assistant", "content": str(m.content)})
        elif isinstance(m, ToolMessage):
            out.append(
                {"role": "user", "content": f"<tool_response>\n{m.content}\n</tool_response>"}
            )
        else:
            out.append({"role": "user", "content": str(m.content)})
    # Chat templates expect turns to alternate: consecutive turns of one role become one.
    merged: list[dict[str, str]] = []
    for turn in out:
        if merged and merged[-1]["role"] == turn["role"] != "system":
            merged[-1] = {
                "role": turn["role"],
                "content": f"{merged[-1]['content']}\n{turn['content']}",
            }
        else:
            merged.append(turn)
    return merged


def parse_choice(text: str, tools: Sequence[dict[str, Any]]) -> AIMessage:
    """Turn a grammar-constrained reply into an AIMessage with a tool call or content."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return AIMessage(content=text)
    names = {t["function"]["name"] for t in tools}
    if isinstance(data, dict) and data.get("name") in names:
        call = ToolCall(
            name=str(data["name"]),
            args=dict(data.get("arguments") or {}),
            id="call_" + uuid.uuid4().hex[:12],
            type="tool_call",
        )
        return AIMessage(content="", tool_calls=[call])
    if isinstance(data, dict) and "answer" in data:
        return AIMessage(content=str(data["answer"]))
    return AIMessage(content=text)


def _after_tools(messages: Sequence[BaseMessage]) -> bool:
    return any(isinstance(m, ToolMessage) for m in messages)


def choice_name(tool_choice: Any) -> str | None:
    """LangChain's tool_choice forms (str, bool, OpenAI dict) as one name or keyword."""
    if tool_choice is True:
        return "required"
    if isinstance(tool_choice, dict):
        return str(tool_choice.get("function", {}).get("name") or "required")
    return str(tool_choice) if tool_choice else None


class LlamaChatModel(BaseChatModel):
    """A chat model over a local GGUF file, with tool calling and structured output."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: Path
    model_name: str = "local"
    n_ctx: int = 4096
    n_threads: int = Field(default_factory=lambda: max(1, min(8, os.cpu_count() or 1)))
    temperature: float = 0.0
    max_tokens: int = 512
    seed: int = 7
    bound_tools: list[dict[str, Any]] = Field(default_factory=list)
    tool_choice: str | None = None
    response_schema: dict[str, Any] | None = None
    _loaded: Any = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "controlroom-llama-cpp"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: Any = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.model_copy(
            update={
                "bound_tools": [convert_to_openai_tool(t) for t in tools],
                "tool_choice": choice_name(tool_choice),
            }
        )

    def with_schema(self, schema: dict[str, Any]) -> LlamaChatModel:
        """A copy whose replies are JSON constrained to ``schema`` (structured output)."""
        return self.model_copy(update={"response_schema": schema, "bound_tools": []})

    def _request(self, messages: list[BaseMessage], stop: list[str] | None) -> dict[str, Any]:
        request: dict[str, Any] = {
            "messages": to_llama_messages(messages, self.bound_tools),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "stop": stop or [],
        }
        schema = (
            choice_schema(self.bound_tools, self.tool_choice)
            if self.bound_tools
            else self.response_schema
        )
        if schema is None and _after_tools(messages):
            # No tools now, but the conversation used them: small models imitate the
            # tool-call format, so the reply is held to a plain answer.
            schema = choice_schema([], "none")
        if schema is not None:
            request["response_format"] = {"type": "json_object", "schema": schema}
        return request

    def _llama(self) -> tuple[Any, threading.Lock]:
        return load_llama(self.model_path, self.n_ctx, self.n_threads)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        llama, lock = self._llama()
        started = time.perf_counter()
        with lock:
            response = llama.create_chat_completion(**self._request(messages, stop))
        text = response["choices"][0]["message"].get("content") or ""
        if self.bound_tools or (self.response_schema is None and _after_tools(messages)):
            message = parse_choice(text, self.bound_tools)
        else:
            message = AIMessage(content=text)
        usage = response.get("usage") or {}
        message.usage_metadata = {
            "input_tokens": int(usage.get("prompt_tokens", 0)),
            "output_tokens": int(usage.get("completion_tokens", 0)),
            "total_tokens": int(usage.get("total_tokens", 0)),
        }
        message.response_metadata = {
            "model_name": self.model_name,
            "model_provider": "local",
            "finish_reason": response["choices"][0].get("finish_reason"),
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        if self.bound_tools or (self.response_schema is None and _after_tools(messages)):
            # a constrained choice is only meaningful once complete
            result = self._generate(messages, stop, run_manager, **kwargs)
            final = result.generations[0].message
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content=final.content,
                    tool_call_chunks=[
                        {
                            "name": c["name"],
                            "args": json.dumps(c["args"]),
                            "id": c["id"],
                            "index": i,
                            "type": "tool_call_chunk",
                        }
                        for i, c in enumerate(getattr(final, "tool_calls", []))
                    ],
                )
            )
            return
        llama, lock = self._llama()
        with lock:
            for part in llama.create_chat_completion(**self._request(messages, stop), stream=True):
                delta = part["choices"][0].get("delta", {}).get("content") or ""
                if delta:
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta))
                    if run_manager is not None:
                        run_manager.on_llm_new_token(delta, chunk=chunk)
                    yield chunk
