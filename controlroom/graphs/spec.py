"""The parts of a workflow graph, as typed data.

Both the Python builder and workflow files produce a :class:`WorkflowSpec`. Step kinds:

- ``model``: a prompt template (the system prompt) sent with the conversation to a chat
  model that may be offered tools; with ``on_tool_calls`` set, a reply that asks for tools
  goes there, anything else goes to ``next``.
- ``tools``: executes the last model reply's tool calls through the gate (deny, allow or
  wait for a person), then goes to ``next``.
- ``branch``: goes to the first case whose condition holds, else to ``default``.
- ``approval``: a human checkpoint: approve goes to ``next``, reject to ``on_reject``.

``next`` left out means "the step listed after this one" (or the end for the last step).
The reserved target ``end`` finishes the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

END = "end"
STEP_ID = r"^[A-Za-z][A-Za-z0-9_-]*$"

Condition = str | Callable[[dict[str, Any]], bool]


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    id: str = Field(pattern=STEP_ID, description="step id, unique in the workflow")
    description: str = ""


class ModelStep(_Step):
    kind: Literal["model"] = "model"
    prompt: str = Field(description="system prompt template; {input}, {user.name}, {vars.x}")
    tools: list[str] = Field(default_factory=list, description="names of tools offered")
    model: str | None = Field(default=None, description="model spec overriding the workflow's")
    on_tool_calls: str | None = Field(default=None, description="step to go to on tool calls")
    next: str | None = None


class ToolsStep(_Step):
    kind: Literal["tools"] = "tools"
    tools: list[str] | None = Field(
        default=None, description="tools this step may execute; default all of the workflow's"
    )
    next: str | None = None


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    when: Condition = Field(description="condition, e.g. `vars.priority == 'high'`")
    goto: str


class BranchStep(_Step):
    kind: Literal["branch"] = "branch"
    cases: list[Case] = Field(min_length=1)
    default: str = END


class ApprovalStep(_Step):
    kind: Literal["approval"] = "approval"
    message: str = Field(description="what the approver is asked; a template like prompts")
    next: str | None = None
    on_reject: str = END


Step = Annotated[ModelStep | ToolsStep | BranchStep | ApprovalStep, Field(discriminator="kind")]


class WorkflowSpec(BaseModel):
    """A whole workflow: name, default model, tool references and steps."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    version: str = "1"
    model: str | None = Field(default=None, description="default model spec for model steps")
    tools: list[str] = Field(
        default_factory=list,
        description="tool references: `package.module:attr` or `./file.py:attr`",
    )
    policies: str | None = Field(
        default=None,
        description="folder of Cedar policies and schema for the tool gate, relative to the "
        "file, or `builtin:pack` for the enterprise tool pack's",
    )
    start: str | None = Field(default=None, description="first step; default the first listed")
    steps: list[Step] = Field(min_length=1)
