"""Compile a :class:`WorkflowSpec` to a LangGraph ``StateGraph``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.graph import END as LG_END
from langgraph.graph import START, StateGraph

from controlroom.graphs.authoring.conditions import compile_condition
from controlroom.graphs.authoring.spec import (
    END,
    AnswerStep,
    ApprovalStep,
    BranchStep,
    ChooseStep,
    ModelStep,
    ReasonStep,
    RetrieveStep,
    ToolsStep,
    WorkflowSpec,
)
from controlroom.graphs.runtime.nodes import (
    make_approval_node,
    make_model_node,
    make_tools_node,
    passthrough,
)
from controlroom.graphs.runtime.reasoning_nodes import make_choose_node, make_reason_node
from controlroom.graphs.runtime.retrieval_nodes import make_answer_node, make_retrieve_node
from controlroom.graphs.runtime.run_state import (
    RunContext,
    RunState,
    condition_view,
    has_tool_calls,
)

RunStateGraph = StateGraph[RunState, RunContext, RunState, RunState]


def _target(name: str | None, following: str | None) -> str:
    chosen = name if name is not None else (following or END)
    return LG_END if chosen == END else chosen


def _branch_router(step: BranchStep) -> Callable[[RunState], str]:
    cases: list[tuple[Callable[[dict[str, Any]], bool], str]] = []
    for case in step.cases:
        test = compile_condition(case.when) if isinstance(case.when, str) else case.when
        cases.append((test, _target(case.goto, None)))
    default = _target(step.default, None)

    def route(state: RunState) -> str:
        view = condition_view(state)
        for test, goto in cases:
            if test(view):
                return goto
        return default

    route.__name__ = f"route_{step.id}"
    return route


def _choice_targets(step: ChooseStep, following: str | None) -> list[str]:
    return sorted(
        {_target(t, None) for t in step.routes.values()} | {_target(step.next, following)}
    )


def _choice_router(step: ChooseStep, following: str | None) -> Callable[[RunState], str]:
    name = step.save_as or step.id
    routes = {option: _target(goto, None) for option, goto in step.routes.items()}
    default = _target(step.next, following)

    def route(state: RunState) -> str:
        return routes.get(str((state.get("vars") or {}).get(name)), default)

    route.__name__ = f"route_{step.id}"
    return route


def to_state_graph(spec: WorkflowSpec) -> RunStateGraph:
    """Build (not compile) the LangGraph graph for a workflow spec."""
    graph: RunStateGraph = StateGraph(RunState, context_schema=RunContext)
    ids = [s.id for s in spec.steps]
    for index, step in enumerate(spec.steps):
        following = ids[index + 1] if index + 1 < len(ids) else None
        if isinstance(step, ModelStep):
            graph.add_node(step.id, make_model_node(step))
            nxt = _target(step.next, following)
            if step.on_tool_calls is not None:
                on_calls = _target(step.on_tool_calls, None)

                def route_model(state: RunState, on_calls: str = on_calls, nxt: str = nxt) -> str:
                    return on_calls if has_tool_calls(state) else nxt

                graph.add_conditional_edges(step.id, route_model, sorted({on_calls, nxt}))
            else:
                graph.add_edge(step.id, nxt)
        elif isinstance(step, ToolsStep):
            graph.add_node(step.id, make_tools_node(step))
            graph.add_edge(step.id, _target(step.next, following))
        elif isinstance(step, BranchStep):
            graph.add_node(step.id, passthrough)
            targets = sorted(
                {_target(c.goto, None) for c in step.cases} | {_target(step.default, None)}
            )
            graph.add_conditional_edges(step.id, _branch_router(step), targets)
        elif isinstance(step, ReasonStep | RetrieveStep | AnswerStep):
            node = (
                make_reason_node(step)
                if isinstance(step, ReasonStep)
                else make_retrieve_node(step)
                if isinstance(step, RetrieveStep)
                else make_answer_node(step)
            )
            graph.add_node(step.id, node)
            graph.add_edge(step.id, _target(step.next, following))
        elif isinstance(step, ChooseStep):
            graph.add_node(step.id, make_choose_node(step))
            graph.add_conditional_edges(
                step.id, _choice_router(step, following), _choice_targets(step, following)
            )
        elif isinstance(step, ApprovalStep):
            graph.add_node(step.id, make_approval_node(step))
            ok, no = _target(step.next, following), _target(step.on_reject, None)

            def route_approval(
                state: RunState, sid: str = step.id, ok: str = ok, no: str = no
            ) -> str:
                return ok if (state.get("vars") or {}).get(sid) == "approved" else no

            graph.add_conditional_edges(step.id, route_approval, sorted({ok, no}))
    graph.add_edge(START, spec.start or ids[0])
    return graph
