"""Tool calling for servers whose native tool support is absent or unreliable.

OpenAI-compatible servers differ: some ignore ``tools``, some let a small model answer in
prose when it should call a tool. :class:`JsonToolChatModel` gives any chat model that
honours JSON-schema response formats the same tool protocol as the embedded adapter: the
tools are described in the prompt in the form Qwen-style models are trained on, and the
reply is constrained to a schema-valid choice between calling an offered tool (with
arguments valid for it) and answering. ``openai-compatible:URL#MODEL`` uses it by default;
append ``?tools=native`` to the model name to use the server's own tool calling instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from controlroom.agents.llama import choice_name, choice_schema, parse_choice, to_llama_messages

_ROLES: dict[str, type[BaseMessage]] = {
    "system": SystemMessage,
    "user": HumanMessage,
    "assistant": AIMessage,
}


class JsonToolChatModel(BaseChatModel):
    """Wraps a chat model; ``bind_tools`` makes replies a constrained tool-or-answer choice."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: Any  # a BaseChatModel that accepts response_format (e.g. ChatOpenAI)
    bound_tools: list[dict[str, Any]] = Field(default_factory=list)
    tool_choice: str | None = None

    @property
    def _llm_type(self) -> str:
        return "controlroom-json-tools"

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.model_copy(
            update={
                "bound_tools": [convert_to_openai_tool(t) for t in tools],
                "tool_choice": choice_name(tool_choice),
            }
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if not self.bound_tools:
            reply = self.inner.invoke(messages, stop=stop)
            return ChatResult(generations=[ChatGeneration(message=reply)])
        converted = [
            _ROLES[m["role"]](content=m["content"])
            for m in to_llama_messages(messages, self.bound_tools)
        ]
        schema = choice_schema(self.bound_tools, self.tool_choice)
        runnable = self.inner.bind(response_format={"type": "json_object", "schema": schema})
        raw = runnable.invoke(converted, stop=stop)
        message = parse_choice(str(raw.content), self.bound_tools)
        message.usage_metadata = getattr(raw, "usage_metadata", None)
        message.response_metadata = dict(getattr(raw, "response_metadata", {}) or {})
        return ChatResult(generations=[ChatGeneration(message=message)])
