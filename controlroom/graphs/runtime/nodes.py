"""Node functions for each step kind.

The tools node is where enforcement happens: every call is validated against its tool's
schema and passes the gate before anything runs; calls that need a person are recorded
as pending approvals (durably, one per call) before the run pauses; approved effects run
once per idempotency key (run, step, call). The effect ledger is consulted before the gate:
a call whose effect began or completed before a crash keeps the decision it ran under (the
ledger holds it) and is not decided again, since the world the gate would look at now
includes that effect. Every refused call is kept in the store, so a run's outcome never
hides one.

Audit hooks (``ctx.audit``): each model call is recorded after it returns; the approval
request is recorded (synced) before the run pauses; a call's final decision, and the
approval decision if a crash lost its record, are synced before the tool runs, its result
right after. The tools node re-runs from its start when a run resumes from approvals, so
only final decisions are recorded, and the log counts attempts of anything recorded twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from controlroom.agents.prompts import render
from controlroom.errors import ToolArgumentsError
from controlroom.graphs.authoring.spec import ApprovalStep, ModelStep, ToolsStep
from controlroom.graphs.runtime.audit_hooks import (
    ModelCalls,
    record_decision,
    record_final,
    record_request,
)
from controlroom.graphs.runtime.effects import Plan, effect_key, execute, from_ledger
from controlroom.graphs.runtime.run_state import RunContext, RunState
from controlroom.graphs.storage.records import (
    Approval,
    ApprovalStatus,
    Refusal,
    RefusalStatus,
)
from controlroom.tools.gate import Verdict, deciding
from controlroom.tools.spec import Effect

Node = Callable[..., dict[str, Any]]


def _step_number(config: RunnableConfig) -> int:
    return int((config.get("metadata") or {}).get("langgraph_step", 0))


def current_step() -> int:
    """LangGraph's step number, from the running node's config (0 outside a graph)."""
    try:
        return _step_number(get_config())
    except RuntimeError:
        return 0


def make_model_node(step: ModelStep) -> Node:
    # Binding tools copies the model; do it once per model object, not on every step.
    bound: dict[int, tuple[BaseChatModel, Any]] = {}

    def model_node(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        ctx = runtime.context
        spec = step.model or ctx.default_model
        model = ctx.get_model(spec)
        cached = bound.get(id(model))
        if cached is None or cached[0] is not model:
            schemas = [ctx.tools[name].json_schema() for name in step.tools]
            choice = None if step.tool_choice == "auto" else step.tool_choice
            cached = (
                model,
                model.bind_tools(schemas, tool_choice=choice) if schemas else model,
            )
            bound[id(model)] = cached
        runnable = cached[1]
        system = render(
            step.prompt, where=f"prompt of step '{step.id}'", principal=ctx.principal, state=state
        )
        inputs: list[BaseMessage] = [SystemMessage(system), *state.get("messages", [])]
        started = time.perf_counter()
        reply = runnable.invoke(inputs)
        latency = time.perf_counter() - started
        if not isinstance(reply, AIMessage):
            reply = AIMessage(content=str(getattr(reply, "content", reply)))
        record = ModelCalls(
            ctx, step_no=current_step(), node=step.id, spec=spec, model=model, tools=step.tools
        )
        record(inputs, reply, latency)
        update: dict[str, Any] = {"messages": [reply]}
        if not reply.tool_calls:
            update["output"] = reply.text
        return update

    model_node.__name__ = f"model_{step.id}"
    return model_node


def _refusal(plan: Plan, status: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"status": status, "tool": plan.name, "reason": reason, **extra}


def _plan_call(
    ctx: RunContext, allowed: set[str] | None, call: ToolCall, position: int, step_no: int
) -> Plan:
    call_id = call.get("id") or f"call-{step_no}-{position}"
    plan = Plan(position=position, call_id=call_id, name=call["name"], raw_args=call["args"])
    tool = ctx.tools.get(call["name"])
    if tool is None or (allowed is not None and tool.name not in allowed):
        offered = sorted(allowed if allowed is not None else ctx.tools)
        plan.refusal = _refusal(
            plan, "denied", f"no tool named '{call['name']}' is available", available=offered
        )
        return plan
    plan.tool = tool
    if tool.effect is not Effect.READ:
        entry = ctx.store.effect_entry(effect_key(ctx.run_id, step_no, call_id))
        if entry is not None:
            return from_ledger(plan, tool, entry)
    try:
        plan.args = tool.validate_args(call["args"])
    except ToolArgumentsError as exc:
        plan.refusal = _refusal(plan, "invalid_arguments", exc.message)
        return plan
    with deciding(step_no, call_id, "plan"):
        plan.decision = ctx.gate.decide(ctx.principal, tool, plan.args.model_dump(mode="json"))
    if plan.decision.verdict is Verdict.DENY:
        plan.refusal = _refusal(
            plan, "denied", plan.decision.reason, policies=list(plan.decision.policies)
        )
    return plan


def _ask(ctx: RunContext, items: list[Approval]) -> dict[str, dict[str, Any]]:
    """Record pending items and pause until a person decides them (or decide per mode).

    ``--approve all`` never stands in for an approval rule that names who must approve
    (``approvers``): those items wait for such a person like in ``ask`` mode.
    """
    ctx.store.add_approvals(items)
    automatic = [
        item
        for item in items
        if ctx.approve_mode == "none" or (ctx.approve_mode == "all" and not item.approvers)
    ]
    decisions: dict[str, dict[str, Any]] = {}
    for item in automatic:
        current = ctx.store.get_approval(ctx.run_id, item.approval_id)
        if current.status is ApprovalStatus.PENDING:
            current = ctx.store.decide(
                ctx.run_id,
                item.approval_id,
                approved=ctx.approve_mode == "all",
                by=f"auto:--approve {ctx.approve_mode}",
                reason=f"decided automatically (--approve {ctx.approve_mode})",
            )
            record_decision(ctx.audit, current, source=f"--approve {ctx.approve_mode}")
        decisions[item.approval_id] = decision_payload(current)
    for_people = [item.approval_id for item in items if item not in automatic]
    if for_people:
        answer = interrupt({"approvals": for_people})
        decisions.update(cast(dict[str, dict[str, Any]], answer))
    return decisions


MAX_INVALID_ROUNDS = 3


def _invalid_rounds(messages: list[Any]) -> int:
    """How many tool rounds in a row, ending now, had a call with invalid arguments."""
    rounds = 0
    invalid = False
    for message in reversed(messages):
        if isinstance(message, ToolMessage):
            invalid = invalid or '"status": "invalid_arguments"' in str(message.content)
        elif isinstance(message, AIMessage) and message.tool_calls:
            if not invalid:
                break
            rounds += 1
            invalid = False
        else:
            break
    return rounds


def decision_payload(item: Approval) -> dict[str, Any]:
    """The resume value a decided approval contributes (also checkpointed for replay)."""
    return {
        "approved": item.status is ApprovalStatus.APPROVED,
        "by": item.decided_by,
        "args": item.edited_args,
        "reason": item.decision_reason,
    }


def _record_outcome(ctx: RunContext, plan: Plan, step_no: int, node: str) -> None:
    """Keep the run's list of refused calls (what `runs` and `show` report) current."""
    refusal = plan.refusal
    if refusal is None:
        ctx.store.clear_refusal(ctx.run_id, step_no, plan.call_id)
        return
    status = str(refusal.get("status"))
    if status not in {s.value for s in RefusalStatus}:
        return
    ctx.store.record_refusal(
        Refusal(
            run_id=ctx.run_id,
            step=step_no,
            call_id=plan.call_id,
            node=node,
            tool=plan.name,
            status=RefusalStatus(status),
            reason=str(refusal.get("reason") or ""),
            decided_by=refusal.get("by") if status == RefusalStatus.REJECTED else None,
            policies=list(refusal.get("policies") or []),
            approval_id=plan.approval_id,
        )
    )


def _apply_decision(ctx: RunContext, plan: Plan, decision: dict[str, Any], step_no: int) -> None:
    plan.approval = decision
    if not decision.get("approved"):
        plan.refusal = _refusal(
            plan,
            "rejected",
            decision.get("reason") or "rejected by the approver",
            by=decision.get("by"),
        )
        return
    edited = decision.get("args")
    if edited is None:
        return
    assert plan.tool is not None
    try:
        plan.args = plan.tool.validate_args(edited)
    except ToolArgumentsError as exc:
        plan.refusal = _refusal(plan, "invalid_arguments", exc.message)
        return
    with deciding(step_no, plan.call_id, "recheck"):
        recheck = ctx.gate.decide(ctx.principal, plan.tool, plan.args.model_dump(mode="json"))
    plan.recheck = recheck
    if recheck.verdict is Verdict.DENY:
        plan.refusal = _refusal(plan, "denied", recheck.reason, policies=list(recheck.policies))
    plan.edited_by = decision.get("by") or "the approver"


def _content(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)


def make_tools_node(step: ToolsStep) -> Node:
    allowed = set(step.tools) if step.tools is not None else None

    def tools_node(
        state: RunState, runtime: Runtime[RunContext], config: RunnableConfig
    ) -> dict[str, Any]:
        ctx = runtime.context
        messages = state.get("messages") or []
        last = messages[-1] if messages else None
        if not isinstance(last, AIMessage) or not last.tool_calls:
            return {}
        step_no = _step_number(config)
        plans = [
            _plan_call(ctx, allowed, call, i, step_no) for i, call in enumerate(last.tool_calls)
        ]
        invalid = any(p.refusal and p.refusal["status"] == "invalid_arguments" for p in plans)
        if invalid and _invalid_rounds(messages[:-1]) + 1 >= MAX_INVALID_ROUNDS:
            problems = "; ".join(
                p.refusal["reason"]
                for p in plans
                if p.refusal and p.refusal["status"] == "invalid_arguments"
            )
            raise ToolArgumentsError(
                f"The model sent tool arguments that do not match the tools' schemas "
                f"{MAX_INVALID_ROUNDS} rounds in a row, so the run stopped instead of "
                f"looping (last: {problems}). Try a stronger model or a clearer prompt."
            )
        # A decision a person already recorded for a call wins over today's verdict: a
        # rejected call stays rejected even if the gate would now allow it.
        recorded = ctx.store.approvals_of_step(ctx.run_id, step_no)
        waiting = [
            p
            for p in plans
            if p.refusal is None
            and p.ledger is None
            and p.decision
            and (p.decision.verdict is Verdict.APPROVE or p.call_id in recorded)
        ]
        if waiting:
            items = []
            for p in waiting:
                assert p.tool is not None
                assert p.decision is not None
                assert p.args is not None
                p.approval_id = f"a{step_no}-{p.position + 1}"
                items.append(
                    Approval(
                        run_id=ctx.run_id,
                        approval_id=p.approval_id,
                        kind="tool_call",
                        step=step.id,
                        tool=p.tool.name,
                        call_id=p.call_id,
                        args=p.args.model_dump(mode="json"),
                        effect=p.tool.effect.value,
                        reason=p.decision.reason,
                        message=f"{p.tool.name} wants to run for {ctx.principal.display_name}",
                        approvers=list(p.decision.approvers),
                        policies=list(p.decision.policies),
                    )
                )
            for p, item in zip(waiting, items, strict=True):
                record_request(ctx, item, step_no, p.decision)
            decisions = _ask(ctx, items)
            for p in waiting:
                assert p.approval_id is not None
                if p.approval_id in decisions:  # a crash may have lost its record: write it
                    stored = ctx.store.get_approval(ctx.run_id, p.approval_id)
                    record_decision(ctx.audit, stored, source="recovered by the tools node")
                _apply_decision(ctx, p, decisions.get(p.approval_id, {"approved": False}), step_no)
        out: list[ToolMessage] = []
        for p in plans:
            record_final(ctx, p, step_no, step.id)
            _record_outcome(ctx, p, step_no, step.id)
            if p.refusal is not None:
                out.append(
                    ToolMessage(
                        content=_content(p.refusal),
                        tool_call_id=p.call_id,
                        name=p.name,
                        status="error",
                    )
                )
                continue
            started = time.perf_counter()
            try:
                result, from_ledger = execute(ctx, p, step_no)
            except Exception as exc:  # a failing tool is reported to the model, not fatal
                ctx.audit.tool_result(
                    step=step_no,
                    node=step.id,
                    call_id=p.call_id,
                    tool=p.name,
                    error=exc,
                    latency_s=time.perf_counter() - started,
                )
                error = _refusal(p, "error", f"{type(exc).__name__}: {exc}")
                out.append(
                    ToolMessage(
                        content=_content(error), tool_call_id=p.call_id, name=p.name, status="error"
                    )
                )
                continue
            ctx.audit.tool_result(
                step=step_no,
                node=step.id,
                call_id=p.call_id,
                tool=p.name,
                result=result,
                from_ledger=from_ledger,
                latency_s=time.perf_counter() - started,
            )
            if p.edited_by is not None and p.args is not None:
                # The model must know it did not get exactly what it asked for.
                result = {
                    "approved_with_edits": {
                        "by": p.edited_by,
                        "arguments": p.args.model_dump(mode="json"),
                    },
                    "result": result,
                }
            out.append(ToolMessage(content=_content(result), tool_call_id=p.call_id, name=p.name))
        return {"messages": out}

    tools_node.__name__ = f"tools_{step.id}"
    return tools_node


def make_approval_node(step: ApprovalStep) -> Node:
    def approval_node(
        state: RunState, runtime: Runtime[RunContext], config: RunnableConfig
    ) -> dict[str, Any]:
        ctx = runtime.context
        step_no = _step_number(config)
        message = render(
            step.message, where=f"message of step '{step.id}'", principal=ctx.principal, state=state
        )
        item = Approval(
            run_id=ctx.run_id,
            approval_id=f"a{step_no}-1",
            kind="checkpoint",
            step=step.id,
            args=dict(state.get("vars") or {}),
            reason=message,
            message=message,
        )
        record_request(ctx, item, step_no, None)
        decision = _ask(ctx, [item])[item.approval_id]
        stored = ctx.store.get_approval(ctx.run_id, item.approval_id)
        record_decision(ctx.audit, stored, source="recovered by the approval node")
        update_vars: dict[str, Any] = dict(decision.get("args") or {})
        update_vars[step.id] = "approved" if decision.get("approved") else "rejected"
        return {"vars": update_vars}

    approval_node.__name__ = f"approval_{step.id}"
    return approval_node


def passthrough(state: RunState) -> dict[str, Any]:
    return {}
