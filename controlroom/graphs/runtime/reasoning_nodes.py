"""Nodes for the reasoning steps: chain of thought (``reason``) and constrained choice
(``choose``). Every model attempt, retries included, is recorded like any model call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langgraph.runtime import Runtime

from controlroom.agents.prompts import render
from controlroom.agents.reasoning import ReplyHook, choose, think
from controlroom.graphs.authoring.spec import ChooseStep, ReasonStep
from controlroom.graphs.runtime.audit_hooks import ModelCalls
from controlroom.graphs.runtime.nodes import current_step
from controlroom.graphs.runtime.run_state import RunContext, RunState

Node = Callable[..., dict[str, Any]]


def _setup(
    step: ReasonStep | ChooseStep, state: RunState, ctx: RunContext
) -> tuple[Any, list[BaseMessage], ReplyHook]:
    spec = step.model or ctx.default_model
    model = ctx.get_model(spec)
    system = render(
        step.prompt, where=f"prompt of step '{step.id}'", principal=ctx.principal, state=state
    )
    inputs: list[BaseMessage] = [SystemMessage(system), *state.get("messages", [])]

    record = ModelCalls(ctx, step_no=current_step(), node=step.id, spec=spec, model=model)
    return model, inputs, record


def _result_message(step_id: str, text: str, calls: int) -> AIMessage:
    """The step's result as it joins the conversation (the reasoning does not)."""
    return AIMessage(content=text, name=step_id, response_metadata={"model_calls": calls})


def make_reason_node(step: ReasonStep) -> Node:
    name = step.save_as or step.id

    def reason_node(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        model, inputs, record = _setup(step, state, runtime.context)
        attempts = think(model, inputs, retries=step.retries, on_reply=record)
        thought: Any = attempts.value
        found: dict[str, Any] = {name: thought.result}
        if step.share_reasoning:
            found[f"{name}_reasoning"] = thought.reasoning
        update: dict[str, Any] = {
            "vars": found,
            "reasoning": {step.id: thought.reasoning},
            "messages": [_result_message(step.id, thought.result, len(attempts.replies))],
        }
        if step.output:
            update["output"] = thought.result
        return update

    reason_node.__name__ = f"reason_{step.id}"
    return reason_node


def make_choose_node(step: ChooseStep) -> Node:
    name = step.save_as or step.id

    def choose_node(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        model, inputs, record = _setup(step, state, runtime.context)
        attempts = choose(model, inputs, step.options, retries=step.retries, on_reply=record)
        picked: Any = attempts.value
        return {
            "vars": {name: picked.choice},
            "reasoning": {step.id: picked.reasoning},
            "messages": [
                _result_message(step.id, f"{name}: {picked.choice}", len(attempts.replies))
            ],
        }

    choose_node.__name__ = f"choose_{step.id}"
    return choose_node
