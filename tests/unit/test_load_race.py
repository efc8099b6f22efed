"""Loading one workflow from two threads at once (the TUI's workers do): never half-loaded.

Each test makes the Python file's module body block on an event: thread 1 starts the load
and is held inside the body; thread 2 starts its load of the same workflow and is seen
reaching the shared import lock (a spy around ``user_code.IMPORT_LOCK``), and only then is
thread 1 let go. Thread 2 must get the fully loaded workflow, never an error from the
half-executed module. No sleeps decide anything: every wait is on an event, with a timeout
that only guards against a hang.
"""

from __future__ import annotations

import sys
import threading
import types
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controlroom import Workflow, load_workflow
from controlroom.errors import WorkflowDefinitionError
from controlroom.graphs.authoring import tool_refs, user_code

WAIT = 10.0  # seconds; only reached when something hangs


@dataclass
class Gate:
    """What the module body and the test wait on."""

    name: str
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    """A module the workflow's Python file imports to report and wait (removed afterwards)."""
    g = Gate(name=f"race_gate_{uuid.uuid4().hex[:8]}")
    module = types.ModuleType(g.name)
    module.gate = g  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, g.name, module)
    return g


class LockSpy:
    """Wraps the import lock: says when the thread named ``watch`` tries to take it."""

    def __init__(self, lock: Any, watch: str) -> None:
        self.lock = lock
        self.watch = watch
        self.waiting = threading.Event()

    def __enter__(self) -> Any:
        if threading.current_thread().name == self.watch:
            self.waiting.set()
        return self.lock.__enter__()

    def __exit__(self, *exc: object) -> Any:
        return self.lock.__exit__(*exc)


def blocking_body(gate: Gate) -> str:
    return (
        "import sys\n"
        f"_gate = sys.modules[{gate.name!r}].gate\n"
        "_gate.entered.set()\n"
        "assert _gate.release.wait(10), 'the test never released the module body'\n"
    )


TOOL = '''
from dataclasses import dataclass

from controlroom import tool


@dataclass
class Receipt:
    reference: str


@tool
def slow_lookup(invoice_id: str) -> str:
    """Look an invoice up."""
    return Receipt(reference=invoice_id).reference
'''

FLOW = """
from controlroom import GraphBuilder

flow = GraphBuilder("raced", model="scripted:x").model("a", "Say hi.", next="end").build()
"""


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None


def start(name: str, load: Callable[[], Any]) -> tuple[threading.Thread, Outcome]:
    outcome = Outcome()

    def target() -> None:
        try:
            outcome.value = load()
        except BaseException as exc:  # reported by the test, not lost in the thread
            outcome.error = exc

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread, outcome


def spy_on_lock(monkeypatch: pytest.MonkeyPatch) -> LockSpy:
    """Report when thread ``loader-2`` reaches the import lock (never, where there is none)."""
    spy = LockSpy(getattr(user_code, "IMPORT_LOCK", None), watch="loader-2")
    if spy.lock is not None:
        monkeypatch.setattr(user_code, "IMPORT_LOCK", spy)
    return spy


def wait_at_lock_or_done(spy: LockSpy, thread: threading.Thread) -> None:
    """Until ``thread`` waits at the import lock, or has finished without waiting."""
    for _ in range(int(WAIT / 0.01)):
        if spy.waiting.wait(0.01) or not thread.is_alive():
            return
    raise AssertionError("thread 2 neither reached the import lock nor finished")


def race(gate: Gate, load: Callable[[], Any], monkeypatch: pytest.MonkeyPatch) -> list[Outcome]:
    """Thread 1 held in the module body, thread 2 at the lock, then release; both outcomes."""
    spy = spy_on_lock(monkeypatch)
    first, one = start("loader-1", load)
    try:
        assert gate.entered.wait(WAIT), "thread 1 never started executing the file"
        second, two = start("loader-2", load)
        wait_at_lock_or_done(spy, second)
    finally:
        gate.release.set()
    first.join(WAIT)
    second.join(WAIT)
    assert not first.is_alive() and not second.is_alive(), "a loader hung"
    assert one.error is None, f"thread 1 failed: {one.error!r}"
    assert two.error is None, f"thread 2 took the half-loaded module: {two.error!r}"
    return [one, two]


@pytest.fixture
def tool_workflow(tmp_path: Path, gate: Gate) -> Path:
    (tmp_path / "tools.py").write_text(blocking_body(gate) + TOOL)
    workflow = tmp_path / "workflow.yaml"
    workflow.write_text(
        "name: raced\ntools: [./tools.py:slow_lookup]\nsteps:\n"
        "  - id: agent\n    kind: model\n    prompt: Look it up.\n    tools: [slow_lookup]\n"
        "    on_tool_calls: run\n    next: end\n"
        "  - id: run\n    kind: tools\n    next: agent\n"
    )
    return workflow


def test_second_thread_waits_for_the_tool_file_instead_of_taking_it_half_loaded(
    tool_workflow: Path, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = race(gate, lambda: load_workflow(tool_workflow), monkeypatch)
    for outcome in (one, two):
        assert isinstance(outcome.value, Workflow)
        assert outcome.value.tools["slow_lookup"].func(invoice_id="INV-7") == "INV-7"
    assert one.value.tools["slow_lookup"] is two.value.tools["slow_lookup"]  # executed once


def test_second_thread_waits_for_a_python_workflow_file(
    tmp_path: Path, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text(blocking_body(gate) + FLOW)
    one, two = race(gate, lambda: load_workflow(f"{flow}:flow"), monkeypatch)
    assert one.value.name == two.value.name == "raced"


def test_a_failed_load_leaves_nothing_for_the_waiting_thread(
    tmp_path: Path, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thread 1's module body fails after thread 2 started waiting: thread 2 imports the
    file again itself (and gets the same clear error), never the broken module."""
    path = tmp_path / "tools.py"
    path.write_text(blocking_body(gate) + TOOL + "raise RuntimeError('boom')\n")
    spy = spy_on_lock(monkeypatch)

    def load() -> Any:
        return tool_refs.resolve_tool_refs(["./tools.py:slow_lookup"], tmp_path)

    first, one = start("loader-1", load)
    assert gate.entered.wait(WAIT)
    second, two = start("loader-2", load)
    wait_at_lock_or_done(spy, second)
    gate.release.set()  # thread 2's own import passes the gate at once too
    first.join(WAIT)
    second.join(WAIT)
    for outcome in (one, two):
        assert isinstance(outcome.error, WorkflowDefinitionError)
        assert "failed: RuntimeError: boom" in str(outcome.error)
        assert f"{path.resolve()}:" in str(outcome.error)  # the file and line
    assert user_code.file_module_name(path.resolve()) not in sys.modules


def in_thread(load: Callable[[], Any]) -> Outcome:
    """Run ``load`` in another thread, failing (not hanging) if it deadlocks."""
    thread, outcome = start("nested-loader", load)
    thread.join(WAIT)
    assert not thread.is_alive(), "the load deadlocked"
    return outcome


def test_a_file_may_load_another_while_it_executes(tmp_path: Path) -> None:
    """The lock is reentrant: a tool file that resolves another file's tools does not hang."""
    (tmp_path / "helper.py").write_text(TOOL.replace("slow_lookup", "helper_lookup"))
    (tmp_path / "tools.py").write_text(
        "from pathlib import Path\n"
        "from controlroom.graphs.authoring.tool_refs import resolve_tool_refs\n"
        "[helper_lookup] = resolve_tool_refs(['./helper.py:helper_lookup'], Path(__file__).parent)\n"
        + TOOL
    )
    outcome = in_thread(
        lambda: tool_refs.resolve_tool_refs(
            ["./tools.py:slow_lookup", "./tools.py:helper_lookup"], tmp_path
        )
    )
    assert outcome.error is None, repr(outcome.error)
    assert [t.name for t in outcome.value] == ["slow_lookup", "helper_lookup"]
