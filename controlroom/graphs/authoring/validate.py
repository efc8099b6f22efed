"""Consistency checks for a workflow graph, whether built in Python or loaded from a file.

:func:`check_workflow` finds duplicate or reserved step ids, targets (``start``, ``next``,
``on_tool_calls``, ``goto``, ``default``, ``on_reject``) naming steps that do not exist,
tool names that the workflow does not provide, steps that can never run, tools steps that
can run before any model step offers tools, and steps from which the run can never end.
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from controlroom.errors import WorkflowDefinitionError
from controlroom.graphs.authoring.conditions import ALLOWED_FORMS, ConditionError, compile_condition
from controlroom.graphs.authoring.spec import (
    END,
    AnswerStep,
    ApprovalStep,
    BranchStep,
    ChooseStep,
    ModelStep,
    RetrieveStep,
    Step,
    ToolsStep,
    WorkflowSpec,
)

__all__ = [
    "KeyPath",
    "Locate",
    "Problem",
    "check_workflow",
    "did_you_mean",
    "find_problems",
    "format_path",
    "render_problems",
]

KeyPath = tuple[str | int, ...]
Locate = Callable[[KeyPath], str]


@dataclass(frozen=True)
class Problem:
    """One thing wrong, where it is, and what was expected instead."""

    path: KeyPath
    problem: str
    expected: str


def format_path(path: KeyPath) -> str:
    """``("steps", 2, "next")`` -> ``steps[2].next``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def render_problems(
    problems: list[Problem], locate: Locate | None = None, spec: WorkflowSpec | None = None
) -> str:
    """The first problem as one paragraph, with a count of the others."""
    first = problems[0]
    where = f"at `{format_path(first.path)}`" if first.path else "at the top level"
    if locate is not None:
        where = f"{locate(first.path)}: {where}"
    elif spec is not None:
        step = _step_at(spec, first.path)
        where = f"Workflow `{spec.name}`: {where}" + (f" (step `{step}`)" if step else "")
    text = f"{where}: {first.problem}. Expected {first.expected}."
    more = len(problems) - 1
    if more:
        text += f" ({more} more problem{'s' if more > 1 else ''} after this one.)"
    return text


def check_workflow(
    spec: WorkflowSpec,
    tool_names: set[str] | None = None,
    locate: Locate | None = None,
) -> None:
    """Raise :class:`WorkflowDefinitionError` for the first inconsistency in ``spec``.

    ``tool_names``, when given, are the tools the workflow provides; ``locate`` turns a
    key path into a ``file:line`` prefix for specs loaded from a file.
    """
    problems = find_problems(spec, tool_names)
    if problems:
        raise WorkflowDefinitionError(render_problems(problems, locate, spec))


def find_problems(spec: WorkflowSpec, tool_names: set[str] | None = None) -> list[Problem]:
    """Every problem found; the flow checks run only on an otherwise consistent spec."""
    problems = list(_id_problems(spec))
    problems += _target_problems(spec)
    problems += _condition_problems(spec)
    problems += _retrieval_problems(spec)
    if tool_names is not None:
        problems += _tool_problems(spec, tool_names)
    if not problems:
        problems += _flow_problems(spec)
    return problems


def _step_at(spec: WorkflowSpec, path: KeyPath) -> str | None:
    index = path[1] if len(path) >= 2 and path[0] == "steps" else None
    if isinstance(index, int) and 0 <= index < len(spec.steps):
        return spec.steps[index].id
    return None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean `x`?)`` for close matches of ``name``, else an empty string."""
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(f'`{c}`' for c in close)}?)" if close else ""


def _listing(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _id_problems(spec: WorkflowSpec) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for i, step in enumerate(spec.steps):
        if step.id == END:
            yield Problem(
                ("steps", i, "id"),
                f"the step id `{END}` is reserved for finishing the run",
                "another id, for example `finish`",
            )
        elif step.id in first:
            yield Problem(
                ("steps", i, "id"),
                f"step id `{step.id}` is used twice (first at `steps[{first[step.id]}]`)",
                "each step id to be unique in the workflow",
            )
        else:
            first[step.id] = i


def _explicit_targets(spec: WorkflowSpec) -> Iterator[tuple[KeyPath, str]]:
    """Every target written out, with its key path."""
    for i, step in enumerate(spec.steps):
        base: KeyPath = ("steps", i)
        if isinstance(step, ModelStep) and step.on_tool_calls is not None:
            yield (*base, "on_tool_calls"), step.on_tool_calls
        if isinstance(step, ChooseStep):
            for option, goto in step.routes.items():
                yield (*base, "routes", option), goto
        if isinstance(step, BranchStep):
            for j, case in enumerate(step.cases):
                yield (*base, "cases", j, "goto"), case.goto
            yield (*base, "default"), step.default
        else:
            if step.next is not None:
                yield (*base, "next"), step.next
            if isinstance(step, ApprovalStep):
                yield (*base, "on_reject"), step.on_reject


def _target_problems(spec: WorkflowSpec) -> Iterator[Problem]:
    ids = [step.id for step in spec.steps]
    known = set(ids)
    if spec.start is not None and spec.start not in known:
        yield Problem(
            ("start",),
            f"`start` names the unknown step `{spec.start}`{did_you_mean(spec.start, ids)}",
            f"the id of one of the steps: {_listing(ids)}",
        )
    for path, target in _explicit_targets(spec):
        if target != END and target not in known:
            hint = did_you_mean(target, [*ids, END])
            yield Problem(
                path,
                f"`{path[-1]}` names the unknown step `{target}`{hint}",
                f"`{END}` or the id of one of the steps: {_listing(ids)}",
            )


def _condition_problems(spec: WorkflowSpec) -> Iterator[Problem]:
    for i, step in enumerate(spec.steps):
        if isinstance(step, BranchStep):
            for j, case in enumerate(step.cases):
                if isinstance(case.when, str):
                    try:
                        compile_condition(case.when)
                    except ConditionError as exc:
                        path = ("steps", i, "cases", j, "when")
                        yield Problem(path, exc.problem, f"only {ALLOWED_FORMS}")


def _retrieval_problems(spec: WorkflowSpec) -> Iterator[Problem]:
    retrieves = [s.id for s in spec.steps if isinstance(s, RetrieveStep)]
    for i, step in enumerate(spec.steps):
        if not isinstance(step, AnswerStep):
            continue
        if step.context is not None and step.context not in retrieves:
            yield Problem(
                ("steps", i, "context"),
                f"`context` names `{step.context}`, which is not a `retrieve` step"
                f"{did_you_mean(step.context, retrieves)}",
                f"the id of a retrieve step: {_listing(retrieves)}"
                if retrieves
                else "a retrieve step id, but the workflow has no retrieve step",
            )
        elif not retrieves:
            yield Problem(
                ("steps", i, "kind"),
                "an `answer` step answers from retrieved passages, but the workflow has no "
                "`retrieve` step",
                "a `retrieve` step before it",
            )


def _tool_problems(spec: WorkflowSpec, tool_names: set[str]) -> Iterator[Problem]:
    provided = sorted(tool_names)
    expected = (
        f"one of the workflow's tools: {_listing(provided)}"
        if provided
        else "no tool names, since the workflow's `tools:` provides none"
    )
    for i, step in enumerate(spec.steps):
        if not isinstance(step, ModelStep | ToolsStep) or step.tools is None:
            continue
        for j, name in enumerate(step.tools):
            if name not in tool_names:
                yield Problem(
                    ("steps", i, "tools", j),
                    f"the tool `{name}` is not provided{did_you_mean(name, provided)}",
                    expected,
                )


def _successors(spec: WorkflowSpec) -> dict[str, list[str]]:
    """Step id -> the step ids it may go to (``end`` left out), implicit ``next`` included."""
    graph: dict[str, list[str]] = {}
    for i, step in enumerate(spec.steps):
        following = spec.steps[i + 1].id if i + 1 < len(spec.steps) else END
        targets: list[str] = []
        if isinstance(step, BranchStep):
            targets += [case.goto for case in step.cases] + [step.default]
        else:
            targets.append(step.next if step.next is not None else following)
        if isinstance(step, ModelStep) and step.on_tool_calls is not None:
            targets.append(step.on_tool_calls)
        if isinstance(step, ApprovalStep):
            targets.append(step.on_reject)
        if isinstance(step, ChooseStep):
            targets += list(step.routes.values())
        graph.setdefault(step.id, []).extend(t for t in targets if t != END)
    return graph


def _reach(
    graph: dict[str, list[str]], starts: Iterable[str], stop: Callable[[str], bool] | None = None
) -> set[str]:
    """Ids reachable from ``starts`` (included), not going on from steps where ``stop`` holds."""
    seen = set(starts)
    queue = deque(seen)
    while queue:
        current = queue.popleft()
        if stop is not None and stop(current):
            continue
        for nxt in graph.get(current, []):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def _flow_problems(spec: WorkflowSpec) -> Iterator[Problem]:
    graph = _successors(spec)
    start = spec.start if spec.start is not None else spec.steps[0].id
    reachable = _reach(graph, [start])
    for i, step in enumerate(spec.steps):
        if step.id not in reachable:
            yield Problem(
                ("steps", i),
                f"step `{step.id}` can never run: no path from the start step `{start}` "
                "leads to it",
                "every step to be reachable from `start` through next, on_tool_calls, goto, "
                "default or on_reject (or the step removed)",
            )

    offers = {s.id for s in spec.steps if isinstance(s, ModelStep) and s.tools}
    before_tools = _reach(graph, [start], offers.__contains__)
    for i, step in enumerate(spec.steps):
        if isinstance(step, ToolsStep) and step.id in before_tools:
            yield Problem(
                ("steps", i),
                f"tools step `{step.id}` can run before any model step that offers tools, "
                "so there would be no tool calls for it to execute",
                "a model step with `tools:` on every path from `start` to it, usually one "
                f"with `on_tool_calls: {step.id}`",
            )

    reverse: dict[str, list[str]] = {}
    for source, targets in graph.items():
        for target in targets:
            reverse.setdefault(target, []).append(source)
    can_end = _reach(reverse, [s.id for s in spec.steps if _may_end(spec, s)])
    for i, step in enumerate(spec.steps):
        if step.id in reachable and step.id not in can_end:
            yield Problem(
                ("steps", i),
                f"the run can never finish once it reaches step `{step.id}`: every path from "
                "it loops back without reaching `end`",
                f"a way out of the loop, for example `next: {END}` on a model step "
                "(a left-out `next` goes to the step listed after)",
            )


def _may_end(spec: WorkflowSpec, step: Step) -> bool:
    """Whether ``step`` may go straight to ``end``."""
    if isinstance(step, ChooseStep) and END in step.routes.values():
        return True
    if isinstance(step, BranchStep):
        return step.default == END or any(case.goto == END for case in step.cases)
    if isinstance(step, ApprovalStep) and step.on_reject == END:
        return True
    if isinstance(step, ModelStep) and step.on_tool_calls == END:
        return True
    if step.next is not None:
        return step.next == END
    return step is spec.steps[-1]
