from __future__ import annotations

from pathlib import Path

import pytest

from controlroom import WorkflowDefinitionError, WorkflowFileError, load_workflow
from tests.conftest import EXAMPLE


def test_example_loads_from_folder_and_file() -> None:
    by_folder = load_workflow(EXAMPLE)
    by_file = load_workflow(EXAMPLE / "workflow.yaml")
    assert by_folder.digest == by_file.digest
    assert sorted(by_folder.tools) == ["lookup_invoice", "pay_invoice"]
    assert by_folder.ref == str((EXAMPLE / "workflow.yaml").resolve())


def test_step_naming_a_tool_the_workflow_lacks_is_located(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text(
        "from controlroom import tool\n@tool\ndef ping(x: str) -> str:\n    'Ping.'\n    return x\n"
    )
    wf = tmp_path / "workflow.yaml"
    wf.write_text(
        "name: t\ntools: [./tools.py:ping]\nsteps:\n  - id: a\n    kind: model\n"
        "    prompt: p\n    tools: [ping, pong]\n    on_tool_calls: b\n    next: end\n"
        "  - id: b\n    kind: tools\n    next: a\n"
    )
    with pytest.raises(WorkflowFileError, match=rf"{wf}:7:.*pong"):
        load_workflow(wf)


def test_python_reference_to_a_built_workflow(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(
        "from controlroom import GraphBuilder\n"
        "flow = GraphBuilder('hello', model='scripted:x').model('a', 'Say hi.', next='end').build()\n"
        "not_a_flow = 3\n"
    )
    loaded = load_workflow(f"{tmp_path / 'flow.py'}:flow")
    assert loaded.name == "hello"
    assert loaded.ref == f"{(tmp_path / 'flow.py').resolve()}:flow"
    with pytest.raises(WorkflowDefinitionError, match="not a controlroom Workflow"):
        load_workflow(f"{tmp_path / 'flow.py'}:not_a_flow")
    with pytest.raises(WorkflowDefinitionError, match="has no attribute"):
        load_workflow(f"{tmp_path / 'flow.py'}:missing")


def test_nothing_there(tmp_path: Path) -> None:
    with pytest.raises(WorkflowDefinitionError, match="No workflow at"):
        load_workflow(str(tmp_path / "nothing"))
