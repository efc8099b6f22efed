"""Reasoning patterns as functions: think step by step, then choose from allowed options.

:func:`think` asks for ``{"reasoning": ..., "result": ...}``: the reasoning is kept apart
from the result so supervisors can read it while tools and end users get only the
result. :func:`choose` asks for ``{"reasoning": ..., "choice": <one of the options>}``
and never returns anything outside the options: every reply is validated, an invalid one
is answered with the validation error and retried a bounded number of times, and then
the step fails with a clear error instead of guessing.

Where the model supports it, the reply is constrained at generation time too (llama.cpp
grammars for the embedded model, JSON-schema response formats for OpenAI-style APIs);
validation stays on regardless, since servers differ in how strictly they follow schemas.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from controlroom.errors import ModelCallError

ReplyHook = Callable[[list[BaseMessage], AIMessage, float], None]


class Thought(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reasoning: str = Field(description="step-by-step reasoning, shown to supervisors")
    result: str = Field(description="the answer, without the reasoning")


class Choice(BaseModel):
    reasoning: str
    choice: str


class Attempts(BaseModel):
    """What a structured call produced: the parsed value and every raw reply."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    value: BaseModel
    replies: list[AIMessage]


def choice_model(options: Sequence[str]) -> type[BaseModel]:
    """A pydantic model whose ``choice`` must be one of ``options`` (an enum in its schema)."""
    if not options or len(set(options)) != len(options):
        raise ValueError("a choice needs at least one option and no duplicates")
    literal: Any = Literal[tuple(options)]
    model: type[BaseModel] = create_model(
        "ChoiceReply",
        __config__=ConfigDict(extra="forbid"),
        reasoning=(str, Field(description="why, step by step")),
        choice=(literal, Field(description="exactly one of the options")),
    )
    return model


def constrain(model: Any, schema: dict[str, Any]) -> Any:
    """The model, constrained at generation time to replies matching ``schema`` if it can be."""
    from controlroom.agents.json_tools import JsonToolChatModel
    from controlroom.agents.llama import LlamaChatModel
    from controlroom.agents.resilience import ResilientChatModel

    if isinstance(model, JsonToolChatModel):
        return constrain(model.inner, schema)
    if isinstance(model, LlamaChatModel):
        return model.with_schema(schema)
    if isinstance(model, ResilientChatModel):
        return model.model_copy(update={"chain": [constrain(m, schema) for m in model.chain]})
    base_url = str(getattr(model, "openai_api_base", None) or "")
    if type(model).__name__ in {"ChatOpenAI", "AzureChatOpenAI"}:
        if base_url and "api.openai.com" not in base_url:  # llama.cpp-style servers
            return model.bind(response_format={"type": "json_object", "schema": schema})
        return model.bind(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": schema, "strict": False},
            }
        )
    return model


def _parse(text: str, schema_model: type[BaseModel]) -> BaseModel:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError("the reply holds no JSON object")
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise ValueError(f"the reply is not valid JSON ({exc.msg})") from None
    try:
        return schema_model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"`{'.'.join(str(p) for p in e['loc'])}`: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(problems) from None


def structured(
    model: BaseChatModel,
    messages: Sequence[BaseMessage],
    schema_model: type[BaseModel],
    *,
    retries: int = 2,
    what: str = "reply",
    on_reply: ReplyHook | None = None,
) -> Attempts:
    """Call ``model`` until its reply validates against ``schema_model`` (bounded)."""
    schema = schema_model.model_json_schema()
    instruction = (
        "Reply with one JSON object and nothing else, matching this JSON schema:\n"
        + json.dumps(schema, sort_keys=True)
    )
    # The instruction joins the system prompt: chat templates expect one system message, first.
    if messages and isinstance(messages[0], SystemMessage):
        system = SystemMessage(f"{messages[0].content}\n\n{instruction}")
        conversation: list[BaseMessage] = [system, *messages[1:]]
    else:
        conversation = [SystemMessage(instruction), *messages]
    runnable = constrain(model, schema)
    replies: list[AIMessage] = []
    problem = ""
    for _ in range(retries + 1):
        started = time.perf_counter()
        raw = runnable.invoke(conversation)
        reply = raw if isinstance(raw, AIMessage) else AIMessage(content=str(raw.content))
        replies.append(reply)
        if on_reply is not None:  # every attempt is a model call the audit must see
            on_reply(list(conversation), reply, time.perf_counter() - started)
        try:
            return Attempts(value=_parse(str(reply.content), schema_model), replies=replies)
        except ValueError as exc:
            problem = str(exc)
            conversation = [
                *conversation,
                reply,
                HumanMessage(f"That reply was invalid: {problem}. Reply again, JSON only."),
            ]
    raise ModelCallError(
        f"The model gave no valid {what} in {retries + 1} attempts (last problem: {problem}). "
        "Check the prompt and the options, or use a stronger model; the run keeps its "
        "completed steps and can be resumed."
    )


def think(
    model: BaseChatModel,
    messages: Sequence[BaseMessage],
    *,
    retries: int = 2,
    on_reply: ReplyHook | None = None,
) -> Attempts:
    """Chain of thought with the reasoning separated from the result."""
    return structured(
        model, messages, Thought, retries=retries, what="reasoning and result", on_reply=on_reply
    )


def choose(
    model: BaseChatModel,
    messages: Sequence[BaseMessage],
    options: Sequence[str],
    *,
    retries: int = 2,
    on_reply: ReplyHook | None = None,
) -> Attempts:
    """A constrained choice: the value's ``choice`` is always one of ``options``."""
    return structured(
        model,
        messages,
        choice_model(options),
        retries=retries,
        what="choice among the options",
        on_reply=on_reply,
    )
