"""A typed Python builder for workflow graphs.

>>> wf = (
...     GraphBuilder("pay", model="scripted:script.yaml", tools=[lookup, pay])
...     .model("agent", "You pay invoices for {user.name}.", tools=["lookup", "pay"],
...            on_tool_calls="act", next="end")
...     .tools("act", next="agent")
...     .build()
... )
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from controlroom.graphs.authoring.spec import (
    END,
    ApprovalStep,
    BranchStep,
    Case,
    Condition,
    ModelStep,
    Step,
    ToolsStep,
    WorkflowSpec,
)
from controlroom.graphs.authoring.workflow import Workflow, policy_gate
from controlroom.tools.gate import Gate
from controlroom.tools.spec import Tool


class GraphBuilder:
    """Add steps in order; ``next`` left out means the step added after this one."""

    def __init__(
        self,
        name: str,
        *,
        model: str | None = None,
        tools: list[Tool] | None = None,
        description: str = "",
        version: str = "1",
        base_dir: Path | None = None,
        policies: str | Path | None = None,
        gate: Gate | None = None,
    ) -> None:
        """``policies`` (a policy folder, relative to ``base_dir``, or ``builtin:pack``) or
        ``gate`` (any :class:`~controlroom.tools.gate.Gate`) decides this workflow's tool
        calls; with neither, the runner's default gate does."""
        if policies is not None and gate is not None:
            raise ValueError("give a workflow `policies` or a `gate`, not both")
        self._policies = None if policies is None else str(policies)
        self._gate = gate
        self._name = name
        self._model = model
        self._description = description
        self._version = version
        self._tools: dict[str, Tool] = {t.name: t for t in tools or []}
        self._steps: list[Step] = []
        self._start: str | None = None
        if base_dir is None:
            caller = inspect.stack()[1].filename
            base_dir = Path(caller).resolve().parent if Path(caller).exists() else Path.cwd()
        self._base_dir = base_dir

    def use(self, *tools: Tool) -> GraphBuilder:
        for t in tools:
            self._tools[t.name] = t
        return self

    def start_at(self, step_id: str) -> GraphBuilder:
        self._start = step_id
        return self

    def model(
        self,
        id: str,
        prompt: str,
        *,
        tools: list[str] | None = None,
        model: str | None = None,
        on_tool_calls: str | None = None,
        next: str | None = None,
    ) -> GraphBuilder:
        self._steps.append(
            ModelStep(
                id=id,
                prompt=prompt,
                tools=tools or [],
                model=model,
                on_tool_calls=on_tool_calls,
                next=next,
            )
        )
        return self

    def tools(
        self, id: str, *, tools: list[str] | None = None, next: str | None = None
    ) -> GraphBuilder:
        self._steps.append(ToolsStep(id=id, tools=tools, next=next))
        return self

    def branch(
        self, id: str, cases: list[tuple[Condition, str]], *, default: str = END
    ) -> GraphBuilder:
        """Go to the first ``(condition, step)`` whose condition holds, else ``default``.

        A condition is an expression string (``"vars.priority == 'high'"``) or a callable
        taking ``{input, output, vars, has_tool_calls}`` and returning a bool.
        """
        self._steps.append(
            BranchStep(id=id, cases=[Case(when=w, goto=g) for w, g in cases], default=default)
        )
        return self

    def approval(
        self, id: str, message: str, *, next: str | None = None, on_reject: str = END
    ) -> GraphBuilder:
        self._steps.append(ApprovalStep(id=id, message=message, next=next, on_reject=on_reject))
        return self

    def build(self) -> Workflow:
        extra: dict[str, Any] = {}
        if self._start:
            extra["start"] = self._start
        spec = WorkflowSpec(
            name=self._name,
            description=self._description,
            version=self._version,
            model=self._model,
            steps=list(self._steps),
            policies=self._policies,
            **extra,
        )
        gate = self._gate or policy_gate(self._policies, self._base_dir)
        return Workflow(spec=spec, tools=dict(self._tools), base_dir=self._base_dir, gate=gate)
