"""Supervising runs through the SDK: step mode, breakpoints on nodes and tools, stopping a
run, progress events, checkpoints and forks from them (time travel)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from controlroom import Runner, RunStateError, RunStatus
from controlroom.audit.log import read_records
from controlroom.graphs.control.supervision import Breakpoints, RunEvent, StateEdits
from controlroom.graphs.storage.run_store import Store
from tests.tui.conftest import FLOW as EXAMPLE
from tests.tui.conftest import FLOW_MODEL

INPUT = "Pay invoice INV-1001"


@pytest.fixture
def runner(project: Path, monkeypatch: pytest.MonkeyPatch) -> Runner:
    monkeypatch.setenv("CONTROLROOM_MODEL", FLOW_MODEL)  # the frozen invoice flow's script
    return Runner(home=project)


def test_step_mode_pauses_before_every_node(runner: Runner) -> None:
    result = runner.start(
        str(EXAMPLE), user="alice", input=INPUT, breakpoints=Breakpoints(every_node=True)
    )
    assert result.status is RunStatus.PAUSED
    assert result.run.next_steps == ["find"]  # nothing ran yet
    assert result.paused_at == "step mode: before find"
    assert runner.messages(result.run_id)[-1].type == "human"
    seen = []
    for _ in range(4):
        result = runner.resume(result.run_id)
        seen.append(result.run.next_steps)
        assert result.status is RunStatus.PAUSED
    assert seen == [["lookup"], ["decide"], ["pay"], ["execute"]]
    result = runner.resume(result.run_id)
    assert result.status is RunStatus.WAITING  # the payment still waits for a person
    runner.set_breakpoints(result.run_id, None)
    done = runner.approve(result.run_id, result.pending[0].approval_id, by="bob")
    assert done.status is RunStatus.COMPLETED


def test_a_node_breakpoint_pauses_before_that_node_only(runner: Runner) -> None:
    result = runner.start(
        str(EXAMPLE), user="alice", input=INPUT, breakpoints=Breakpoints(nodes=frozenset({"pay"}))
    )
    assert result.status is RunStatus.PAUSED
    assert result.run.next_steps == ["pay"]
    assert result.paused_at == "breakpoint on node pay"
    assert runner.breakpoints(result.run_id).describe() == "node pay"
    result = runner.resume(result.run_id)  # the breakpoint it stands on does not hold it again
    assert result.status is RunStatus.WAITING


def test_a_tool_breakpoint_pauses_before_the_gate_sees_the_call(runner: Runner) -> None:
    breaks = Breakpoints(tools=frozenset({"pay_invoice"}))
    result = runner.start(str(EXAMPLE), user="alice", input=INPUT, breakpoints=breaks)
    # the look-up's tools step ran (it calls no watched tool); the payment's did not
    assert result.status is RunStatus.PAUSED
    assert result.run.next_steps == ["execute"]
    assert result.paused_at == "breakpoint on tool pay_invoice"
    assert runner.approvals(result.run_id) == []  # the gate has not been asked yet
    result = runner.resume(result.run_id)
    assert result.status is RunStatus.WAITING
    (item,) = result.pending
    assert item.tool == "pay_invoice"
    # approving re-enters the same tools step: the breakpoint does not stop it again
    done = runner.approve(result.run_id, item.approval_id, by="bob")
    assert done.status is RunStatus.COMPLETED


def test_stop_pauses_a_running_run_before_its_next_node(runner: Runner) -> None:
    events: list[RunEvent] = []
    asked: list[bool] = []

    def watcher(event: RunEvent) -> None:
        events.append(event)
        if event.kind == "node_finished" and event.node == "lookup":
            asked.append(runner.stop(event.run_id, by="bob"))

    unwatch = runner.watch(watcher, tokens=True)
    result = runner.start(str(EXAMPLE), user="alice", input=INPUT)
    assert asked == [True]
    assert result.status is RunStatus.PAUSED
    assert result.paused_at == "stopped by bob"
    assert result.run.next_steps == ["decide"]
    started = [e.node for e in events if e.kind == "node_started"]
    assert started == ["find", "lookup"]
    assert events[-1].kind == "stopped"
    assert not any(e.kind == "token" for e in events)  # find and lookup say nothing
    # nothing drives it now: there is nothing to stop, and a resume carries it on
    assert runner.stop(result.run_id, by="bob") is False
    assert runner.resume(result.run_id).status is RunStatus.WAITING
    unwatch()
    said = "".join(e.text for e in events if e.kind == "token" and e.node == "decide")
    assert '"choice": "pay"' in said  # the model's output, streamed to watchers
    count = len(events)
    runner.resume(result.run_id)
    assert len(events) == count  # no longer watching


def test_checkpoints_list_each_step_with_what_ran_and_what_comes_next(runner: Runner) -> None:
    result = runner.start(str(EXAMPLE), user="alice", input=INPUT)
    infos = runner.checkpoints(result.run_id)
    assert [i.step for i in infos] == [-1, 0, 1, 2, 3, 4]
    assert [i.next for i in infos] == [
        ["__start__"],
        ["find"],
        ["lookup"],
        ["decide"],
        ["pay"],
        ["execute"],
    ]
    assert [i.ran for i in infos[1:]] == [["__start__"], ["find"], ["lookup"], ["decide"], ["pay"]]
    assert infos[3].label == "step 2: after lookup → decide"
    state = runner.state_at(result.run_id, "step:2")
    assert len(state["messages"]) == 3  # the request, the look-up call and its result
    assert runner.state_at(result.run_id, infos[0].checkpoint_id[:30])["input"] == INPUT


def test_fork_from_a_past_checkpoint_is_a_new_linked_run(runner: Runner) -> None:
    origin = runner.start(str(EXAMPLE), user="alice", input=INPUT)
    runner.approve(origin.run_id, origin.pending[0].approval_id, by="bob")
    before_payment = next(i for i in runner.checkpoints(origin.run_id) if i.next == ["execute"])

    fork = runner.fork(origin.run_id, before_payment.checkpoint_id, by="bob")
    assert fork.run_id != origin.run_id
    assert fork.status is RunStatus.PAUSED
    assert fork.run.next_steps == ["execute"]
    assert fork.run.parent_run_id == origin.run_id
    assert fork.run.parent_checkpoint == before_payment.checkpoint_id
    assert fork.paused_at == f"forked from {origin.run_id} at step 4"
    assert len(runner.messages(fork.run_id)) == len(
        runner.state_at(origin.run_id, "step:4")["messages"]
    )

    waiting = runner.resume(fork.run_id)  # a new run: its payment is asked for again
    assert waiting.status is RunStatus.WAITING
    done = runner.approve(fork.run_id, waiting.pending[0].approval_id, by="bob")
    assert done.status is RunStatus.COMPLETED
    assert runner.get_run(origin.run_id).status is RunStatus.COMPLETED  # untouched

    first = read_records(runner.settings.audit_path / f"{fork.run_id}.jsonl")[0]
    assert first["kind"] == "run.start"
    assert first["controlroom.fork"] == {
        "run_id": origin.run_id,
        "checkpoint_id": before_payment.checkpoint_id,
        "step": 4,
        "by": "bob",
        "edited": [],
    }


def test_fork_with_edited_state(runner: Runner) -> None:
    origin = runner.start(str(EXAMPLE), user="alice", input=INPUT)
    edits = StateEdits(input="Pay invoice INV-1001 today", vars={"note": "edited"})
    fork = runner.fork(origin.run_id, "step:0", by="bob", edits=edits, resume=True)
    assert fork.status is RunStatus.WAITING
    assert fork.run.input == "Pay invoice INV-1001 today"
    state = runner.state(fork.run_id)
    assert state["messages"][0].content == "Pay invoice INV-1001 today"
    assert state["vars"]["note"] == "edited"
    first = read_records(runner.settings.audit_path / f"{fork.run_id}.jsonl")[0]
    assert first["controlroom.fork"]["edited"] == ["input", "vars"]
    with pytest.raises(RunStateError, match="holds only the run's input"):
        runner.fork(origin.run_id, "step:-1", by="bob", edits={"output": "x"})
    with pytest.raises(RunStateError, match="no single checkpoint"):
        runner.fork(origin.run_id, "step:99", by="bob")


def test_store_migrates_a_project_folder_without_the_fork_columns(tmp_path: Path) -> None:
    path = tmp_path / "controlroom.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, workflow TEXT NOT NULL, "
        "workflow_ref TEXT NOT NULL, workflow_hash TEXT NOT NULL, user_id TEXT NOT NULL, "
        "input TEXT NOT NULL, model TEXT NOT NULL, approve_mode TEXT NOT NULL, "
        "status TEXT NOT NULL, output TEXT, error TEXT, next_steps TEXT NOT NULL DEFAULT '[]', "
        "parent_run_id TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)"
    )
    conn.execute(
        "INSERT INTO runs VALUES ('r1', 'w', 'ref', 'h', 'alice', 'in', 'm', 'ask', "
        "'completed', 'out', NULL, ?, NULL, '2025-01-01', '2025-01-01')",
        (json.dumps([]),),
    )
    conn.commit()
    conn.close()
    store = Store(path)
    old = store.get_run("r1")
    assert old.parent_checkpoint is None and old.status is RunStatus.COMPLETED
    store.insert_run(old.model_copy(update={"run_id": "r2", "parent_checkpoint": "c1"}))
    assert store.get_run("r2").parent_checkpoint == "c1"
    store.close()
    Store(path).close()  # opening a migrated folder again changes nothing
