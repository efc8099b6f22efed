"""The parts of a workflow graph, as typed data.

Both the Python builder and workflow files produce a :class:`WorkflowSpec`. Step kinds:

- ``model``: a prompt template (the system prompt) sent with the conversation to a chat
  model that may be offered tools; with ``on_tool_calls`` set, a reply that asks for tools
  goes there, anything else goes to ``next``.
- ``tools``: executes the last model reply's tool calls through the gate (deny, allow or
  wait for a person), then goes to ``next``.
- ``branch``: goes to the first case whose condition holds, else to ``default``.
- ``approval``: a human checkpoint: approve goes to ``next``, reject to ``on_reject``.
- ``reason``: chain of thought, the reasoning kept apart from the result.
- ``choose``: a constrained choice among fixed options, optionally routing on it.
- ``retrieve``: access-filtered search of the document store for the run's user.
- ``answer``: a grounded answer citing retrieved chunks (checked), or an abstention.

``next`` left out means "the step listed after this one" (or the end for the last step).
The reserved target ``end`` finishes the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    tool_choice: str = Field(
        default="auto",
        description="auto: the model may call tools or answer; required: it must call one "
        "of the offered tools; or the name of the one tool it must call",
    )
    next: str | None = None


class ToolsStep(_Step):
    kind: Literal["tools"] = "tools"
    tools: list[str] | None = Field(
        default=None, description="tools this step may execute; default all of the workflow's"
    )
    next: str | None = None


class ReasonStep(_Step):
    """Chain of thought: the model reasons step by step, then gives a result.

    The result goes to ``vars.<save_as>`` (and to the run's output with ``output: true``);
    the reasoning is recorded for supervisors (state ``reasoning``, the audit log) and
    reaches later prompts only if ``share_reasoning`` is set.
    """

    kind: Literal["reason"] = "reason"
    prompt: str = Field(description="system prompt template")
    model: str | None = None
    save_as: str | None = Field(default=None, description="variable for the result; default id")
    output: bool = Field(default=False, description="also make the result the run's output")
    share_reasoning: bool = Field(
        default=False, description="also put the reasoning in vars.<save_as>_reasoning"
    )
    retries: int = Field(default=2, ge=0, le=5, description="retries on invalid replies")
    next: str | None = None


class ChooseStep(_Step):
    """A constrained choice: the model picks exactly one of ``options`` (validated).

    The choice goes to ``vars.<save_as>``; ``routes`` maps options to the step each goes
    to (options without a route go to ``next``).
    """

    kind: Literal["choose"] = "choose"
    prompt: str = Field(description="system prompt template")
    options: list[str] = Field(min_length=1, description="the allowed values")
    model: str | None = None
    save_as: str | None = Field(default=None, description="variable for the choice; default id")
    routes: dict[str, str] = Field(default_factory=dict, description="option -> step")
    retries: int = Field(default=2, ge=0, le=5, description="retries on invalid replies")
    next: str | None = None

    @model_validator(mode="after")
    def _routes_name_options(self) -> ChooseStep:
        unknown = sorted(set(self.routes) - set(self.options))
        if unknown:
            raise ValueError(f"routes name options that are not in `options`: {unknown}")
        if len(set(self.options)) != len(self.options):
            raise ValueError("options must not repeat")
        return self


class RetrieveStep(_Step):
    """Search the document store for the run's user (access-filtered inside the query).

    The chunks go to the state's ``retrieved[<id>]`` (and their ids to ``vars.<save_as>``);
    chunks scoring under ``min_score`` are left out, so an irrelevant store yields nothing
    and the answer step abstains; so does a result whose best chunk scores under
    ``min_top_score``.
    """

    kind: Literal["retrieve"] = "retrieve"
    query: str = Field(default="{input}", description="query template; default the input")
    k: int = Field(default=5, ge=1, le=50, description="chunks to retrieve")
    min_score: float = Field(
        default=0.25, ge=-1.0, le=1.0, description="cosine similarity a chunk needs"
    )
    min_top_score: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description="if even the best chunk scores under this, the documents are taken not "
        "to answer the query: nothing is returned, and the answer step abstains without "
        "a model call (small models rarely abstain on their own)",
    )
    save_as: str | None = Field(default=None, description="variable for the chunk ids")
    next: str | None = None


class AnswerStep(_Step):
    """A grounded answer from retrieved chunks, with checked citations.

    The model replies with reasoning, an answer and the ids of the chunks it cites. A
    citation of a chunk it was not given, or no citation when ``require_citations``, is
    sent back and retried up to ``retries`` times; then, like when nothing relevant was
    retrieved, the step abstains ("the documents I can access do not answer this").
    """

    kind: Literal["answer"] = "answer"
    prompt: str = Field(
        default="Answer the user's question from the passages below only.",
        description="system prompt template; the passages are appended to it",
    )
    context: str | None = Field(
        default=None, description="retrieve step whose chunks to use; default the latest"
    )
    model: str | None = None
    require_citations: bool = True
    retries: int = Field(default=2, ge=0, le=5, description="retries on rejected answers")
    save_as: str | None = Field(default=None, description="variable for the answer record")
    output: bool = Field(default=True, description="make the answer the run's output")
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


Step = Annotated[
    ModelStep
    | ToolsStep
    | BranchStep
    | ApprovalStep
    | ReasonStep
    | ChooseStep
    | RetrieveStep
    | AnswerStep,
    Field(discriminator="kind"),
]


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
