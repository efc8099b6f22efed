"""Workflow files: every problem names the file, the line and the key path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from controlroom.errors import WorkflowDefinitionError, WorkflowFileError
from controlroom.graphs.authoring.spec import (
    ApprovalStep,
    BranchStep,
    Case,
    ModelStep,
    ToolsStep,
    WorkflowSpec,
)
from controlroom.graphs.authoring.validate import check_workflow
from controlroom.graphs.authoring.workflow_file import load_workflow_file

VALID = """\
# a comment line
name: triage
description: Sort tickets.
model: scripted:script.yaml
tools:
  - ./tools.py:lookup
  - mypkg.tools:toolset
steps:
  - id: agent
    kind: model
    prompt: |
      You sort tickets for {user.name}.
    tools: [lookup, pay]
    on_tool_calls: act
    next: route
  - id: act
    kind: tools
    next: agent
  - id: route
    kind: branch
    cases:
      - when: "vars.priority == 'high' and not has_tool_calls"
        goto: ask
    default: end
  - id: ask
    kind: approval
    message: Escalate {input}?
    on_reject: agent
"""


def write(tmp_path: Path, text: str, name: str = "wf.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_for(path: Path, **kwargs: set[str]) -> str:
    with pytest.raises(WorkflowFileError) as info:
        load_workflow_file(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message, "one paragraph"
    return message


def test_valid_file_loads(tmp_path: Path) -> None:
    spec = load_workflow_file(write(tmp_path, VALID))
    assert spec.name == "triage"
    assert [type(s) for s in spec.steps] == [ModelStep, ToolsStep, BranchStep, ApprovalStep]
    agent = spec.steps[0]
    assert isinstance(agent, ModelStep)
    assert agent.tools == ["lookup", "pay"]
    assert agent.on_tool_calls == "act"
    assert spec.tools == ["./tools.py:lookup", "mypkg.tools:toolset"]


def test_valid_file_round_trips(tmp_path: Path) -> None:
    spec = load_workflow_file(write(tmp_path, VALID))
    dumped = yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True), sort_keys=False)
    again = load_workflow_file(write(tmp_path, dumped, "again.yaml"))
    assert again == spec


def test_example_workflow_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "invoice-payment"
    spec = load_workflow_file(example / "workflow.yaml")
    assert [s.id for s in spec.steps] == [
        "find", "lookup", "vendor", "vendor_lookup", "decide", "pay", "execute", "confirm",
        "mail", "report",
    ]  # fmt: skip


def test_missing_file(tmp_path: Path) -> None:
    message = error_for(tmp_path / "nope.yaml")
    assert message.startswith(f"{tmp_path / 'nope.yaml'}: workflow file not found")
    assert "Expected" in message


def test_folder_is_not_a_file(tmp_path: Path) -> None:
    assert "is a folder" in error_for(tmp_path)


def test_not_yaml_gives_the_yaml_error_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nsteps:\n  - id: a\n   kind: model\n")
    message = error_for(path)
    assert message.startswith(f"{path}:4: not valid YAML: ")
    assert "Expected valid YAML" in message


def test_python_tags_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "name: !!python/object/apply:os.getcwd []\nsteps: []\n")
    message = error_for(path)
    assert message.startswith(f"{path}:1: not valid YAML")
    assert "tags such as `!!python/object` are not allowed" in message


@pytest.mark.parametrize(
    ("text", "found"), [("", "the file is empty"), ("- a\n- b\n", "found a list")]
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, found: str) -> None:
    path = write(tmp_path, text)
    message = error_for(path)
    assert message.startswith(f"{path}:1: at the top level: {found}. Expected a mapping")
    assert "`name`" in message
    assert "`steps`" in message


def test_duplicate_key(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nsteps:\n  - id: a\n    kind: model\n    kind: tools\n")
    message = error_for(path)
    assert message.startswith(f"{path}:5: at `steps[0].kind`: the key `kind` is written twice")
    assert "(first on line 4)" in message


def test_unknown_key_lists_allowed_keys_of_the_step_kind(tmp_path: Path) -> None:
    text = VALID.replace("    on_reject: agent\n", "    on_reject: agent\n    nxt: end\n")
    path = write(tmp_path, text)
    message = error_for(path)
    assert message.startswith(f"{path}:29: at `steps[3].nxt`: unknown key `nxt` (did you mean")
    assert "Expected only these keys in an `approval` step: `id`, `description`, `kind`" in message
    assert "`message`, `next`, `on_reject`." in message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("description:", "descrption:"))
    message = error_for(path)
    assert message.startswith(f"{path}:3: at `descrption`: unknown key `descrption`")
    assert "(did you mean `description`?)" in message


def test_missing_required_key_points_at_the_step(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("    message: Escalate {input}?\n", ""))
    message = error_for(path)
    assert message.startswith(f"{path}:25: at `steps[3]`: missing required key `message`.")
    assert "Expected an `approval` step to have keys `id`, `kind`, `message`" in message


def test_missing_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("name: triage\n", ""))
    assert error_for(path).startswith(f"{path}:2: at the top level: missing required key `name`")


def test_wrong_type(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("    next: agent\n", "    next: [agent]\n"))
    message = error_for(path)
    assert message.startswith(f"{path}:18: at `steps[1].next`: found a list. Expected text")


def test_number_where_text_is_expected(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("model: scripted:script.yaml", "model: 3"))
    assert error_for(path).startswith(f"{path}:4: at `model`: found the number `3`. Expected text")


def test_tools_must_be_a_list(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("    tools: [lookup, pay]", "    tools: lookup"))
    message = error_for(path)
    assert message.startswith(f"{path}:13: at `steps[0].tools`: found the text `lookup`")
    assert "Expected a list" in message


def test_unknown_step_kind_lists_the_kinds(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("kind: approval", "kind: approve"))
    message = error_for(path)
    assert message.startswith(f"{path}:26: at `steps[3].kind`: unknown step kind `approve`")
    assert (
        "Expected `kind` to be one of: model, tools, branch, approval, reason, choose, retrieve, answer."
        in message
    )


def test_missing_kind(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("    kind: tools\n", ""))
    message = error_for(path)
    assert message.startswith(f"{path}:16: at `steps[1]`: the step has no `kind`.")
    assert "model, tools, branch, approval, reason, choose" in message


def test_step_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nsteps:\n  - id: a\n    kind: tools\n  - just text\n")
    message = error_for(path)
    assert message.startswith(f"{path}:5: at `steps[1]`: found the text `just text`")
    assert "Expected a step: a mapping with `id`, `kind`" in message


def test_error_inside_a_model_step_named_model(tmp_path: Path) -> None:
    """The discriminator tag `model` in pydantic's loc is not mistaken for the `model` key."""
    path = write(
        tmp_path, "name: t\nsteps:\n  - id: a\n    kind: model\n    prompt: p\n    model: 7\n"
    )
    assert error_for(path).startswith(f"{path}:6: at `steps[0].model`: found the number `7`")


def test_bad_step_id(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("id: act", "id: 2act"))
    message = error_for(path)
    assert message.startswith(f"{path}:16: at `steps[1].id`: `2act` is not a valid id.")
    assert "Expected a letter first" in message


def test_empty_steps(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nsteps: []\n")
    message = error_for(path)
    assert message.startswith(f"{path}:2: at `steps`: the list `steps` is empty")


def test_condition_that_is_not_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        VALID.replace("""when: "vars.priority == 'high' and not has_tool_calls\"""", "when: 5"),
    )
    message = error_for(path)
    assert message.startswith(f"{path}:22: at `steps[2].cases[0].when`: found the number `5`")


def test_condition_that_does_not_compile(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("vars.priority == 'high'", "vars.__class__ == 1"))
    message = error_for(path)
    assert message.startswith(f"{path}:22: at `steps[2].cases[0].when`: condition ")
    assert "the dunder name `__class__` is not allowed" in message
    assert "Expected only comparisons" in message


def test_malformed_tool_reference(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("  - mypkg.tools:toolset", "  - mypkg.tools"))
    message = error_for(path)
    assert message.startswith(f"{path}:7: at `tools[1]`: Tool reference `mypkg.tools` has no")
    assert "Expected `package.module:attr` or `./relative/file.py:attr`." in message


def test_first_problem_is_reported_with_a_count(tmp_path: Path) -> None:
    text = VALID.replace("    next: agent\n", "    next: 5\n").replace("kind: approval", "kind: x")
    message = error_for(write(tmp_path, text))
    assert re.search(r":18: at `steps\[1\]\.next`: .*\(1 more problem after this one\.\)$", message)


# -- graph checks, located in the file ----------------------------------------------------


def test_unknown_target_suggests_close_names(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("on_reject: agent", "on_reject: agnet"))
    message = error_for(path)
    assert message.startswith(
        f"{path}:28: at `steps[3].on_reject`: `on_reject` names the unknown step `agnet` "
        "(did you mean `agent`?). Expected `end` or the id of one of the steps: `agent`, "
    )


def test_unknown_goto_and_start(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("goto: ask", "goto: asq"))
    assert error_for(path).startswith(f"{path}:23: at `steps[2].cases[0].goto`: `goto` names")
    path = write(tmp_path, "start: agnt\n" + VALID)
    assert error_for(path).startswith(f"{path}:1: at `start`: `start` names the unknown step")


def test_duplicate_step_id(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("id: ask", "id: act"))
    message = error_for(path)
    assert message.startswith(f"{path}:25: at `steps[3].id`: step id `act` is used twice")


def test_tools_not_provided(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    message = error_for(path, tool_names={"lookup", "pay_invoice"})
    assert message.startswith(f"{path}:13: at `steps[0].tools[1]`: the tool `pay` is not provided")
    assert "Expected one of the workflow's tools: `lookup`, `pay_invoice`." in message
    assert load_workflow_file(path, tool_names={"lookup", "pay"}).name == "triage"


def test_unreachable_step(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        VALID.replace("    on_reject: agent\n", "    next: end\n")
        + ("  - id: orphan\n    kind: model\n    prompt: nobody comes here\n"),
    )
    message = error_for(path)
    assert message.startswith(f"{path}:29: at `steps[4]`: step `orphan` can never run")


def test_tools_step_before_any_model_offering_tools(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("    tools: [lookup, pay]\n", ""))
    message = error_for(path)
    assert message.startswith(f"{path}:15: at `steps[1]`: tools step `act` can run before any")


def test_loop_without_end(tmp_path: Path) -> None:
    """A model step whose `next` is left out goes to the step after it: here, forever."""
    text = (
        "name: t\nsteps:\n  - id: agent\n    kind: model\n    prompt: p\n    tools: [x]\n"
        "    on_tool_calls: act\n  - id: act\n    kind: tools\n    next: agent\n"
    )
    path = write(tmp_path, text)
    message = error_for(path)
    assert message.startswith(f"{path}:3: at `steps[0]`: the run can never finish once it")
    assert "(1 more problem after this one.)" in message
    load_workflow_file(write(tmp_path, text.replace("tools: [x]\n", "tools: [x]\n    next: end\n")))


# -- check_workflow on specs built in Python ---------------------------------------------


def spec_of(
    *steps: ModelStep | ToolsStep | BranchStep | ApprovalStep, start: str | None = None
) -> WorkflowSpec:
    return WorkflowSpec(name="py", steps=list(steps), start=start)


def test_python_spec_errors_name_the_workflow_and_step() -> None:
    spec = spec_of(ModelStep(id="a", prompt="p", next="b"), ApprovalStep(id="bb", message="m"))
    with pytest.raises(WorkflowDefinitionError) as info:
        check_workflow(spec)
    assert str(info.value) == (
        "Workflow `py`: at `steps[0].next` (step `a`): `next` names the unknown step `b` "
        "(did you mean `bb`?). Expected `end` or the id of one of the steps: `a`, `bb`."
    )
    assert not isinstance(info.value, WorkflowFileError)


def test_python_spec_condition_checked() -> None:
    spec = spec_of(BranchStep(id="b", cases=[Case(when="open('x')", goto="end")]))
    with pytest.raises(WorkflowDefinitionError, match="function calls are not allowed"):
        check_workflow(spec)
    ok = spec_of(BranchStep(id="b", cases=[Case(when=lambda view: True, goto="end")]))
    check_workflow(ok)


def test_reserved_step_id() -> None:
    with pytest.raises(WorkflowDefinitionError, match="the step id `end` is reserved"):
        check_workflow(spec_of(ModelStep(id="end", prompt="p")))


def test_locate_prefixes_the_message() -> None:
    spec = spec_of(ModelStep(id="a", prompt="p"), start="zzz")
    with pytest.raises(WorkflowDefinitionError) as info:
        check_workflow(spec, locate=lambda path: f"f.yaml:{len(path)}")
    assert str(info.value).startswith("f.yaml:1: at `start`: `start` names the unknown step")


def test_consistent_python_spec_passes() -> None:
    spec = spec_of(
        ModelStep(id="agent", prompt="p", tools=["t"], on_tool_calls="act", next="end"),
        ToolsStep(id="act", next="agent"),
    )
    check_workflow(spec, {"t"})
    with pytest.raises(WorkflowDefinitionError, match="the tool `t` is not provided"):
        check_workflow(spec, set())
