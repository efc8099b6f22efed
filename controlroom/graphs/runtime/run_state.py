"""The state a run carries from step to step, and the context it runs in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage
from langgraph.graph.message import add_messages

from controlroom.audit.recorder import RunAudit
from controlroom.graphs.storage.records import ApproveMode
from controlroom.graphs.storage.run_store import Store
from controlroom.identity import Principal
from controlroom.tools.gate import Gate
from controlroom.tools.spec import Tool

if TYPE_CHECKING:
    from controlroom.retrieval.retriever import Retriever


def merge_vars(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return {**(left or {}), **(right or {})}


class RunState(TypedDict, total=False):
    """Checkpointed state: the conversation, the input, named variables and the output."""

    input: str
    messages: Annotated[list[AnyMessage], add_messages]
    vars: Annotated[dict[str, Any], merge_vars]
    output: str | None
    reasoning: Annotated[dict[str, Any], merge_vars]  # step id -> reasoning, for supervisors
    retrieved: Annotated[dict[str, Any], merge_vars]  # retrieve step id -> chunks it found


@dataclass
class RunContext:
    """Per-invocation context, rebuilt by whichever process executes the run.

    None of it comes from the model: the principal is the session's, the tools and gate
    are the workflow's, the model is the run's configured one.
    """

    run_id: str
    principal: Principal
    tools: dict[str, Tool]
    gate: Gate
    get_model: Callable[[str], BaseChatModel]
    default_model: str
    approve_mode: ApproveMode
    home: Path
    store: Store
    extra: dict[str, Any] = field(default_factory=dict)
    retriever: Callable[[], Retriever] | None = None  # the run's document search, opened lazily
    audit: RunAudit = field(default_factory=RunAudit.disabled)  # the run's audit log


def last_ai_message(state: RunState) -> AIMessage | None:
    for message in reversed(state.get("messages") or []):
        if isinstance(message, AIMessage):
            return message
    return None


def has_tool_calls(state: RunState) -> bool:
    messages = state.get("messages") or []
    return bool(messages) and isinstance(messages[-1], AIMessage) and bool(messages[-1].tool_calls)


def condition_view(state: RunState) -> dict[str, Any]:
    """What a branch condition may look at."""
    return {
        "input": state.get("input", ""),
        "output": state.get("output"),
        "vars": dict(state.get("vars") or {}),
        "has_tool_calls": has_tool_calls(state),
    }
