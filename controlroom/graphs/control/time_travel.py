"""Time travel: a run's checkpoints, its state at one of them, and forks from them.

A fork copies a past checkpoint into a new run (optionally with edited state), links it to
its origin in the store and in its audit log, and starts it paused; its tool calls are gated
and its approvals asked again.

:class:`TimeTravel` is given what it works with (the store, the backend that owns the
checkpoints, the audit factory, and the runner's means to act for a user and to find a
run's workflow); it never reaches into the :class:`~.runner.Runner` that builds it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import copy_checkpoint
from langgraph.checkpoint.base.id import uuid6

from controlroom.errors import RunStateError
from controlroom.graphs.authoring.workflow import Workflow
from controlroom.graphs.control.supervision import StateEdits, resolve_checkpoint
from controlroom.graphs.runtime.audit_hooks import AuditFactory, record_stop
from controlroom.graphs.runtime.run_state import RunState
from controlroom.graphs.storage.backend import Backend
from controlroom.graphs.storage.checkpoints import CheckpointInfo
from controlroom.graphs.storage.records import RunRecord, RunStatus, now
from controlroom.graphs.storage.run_store import Store
from controlroom.identity import Principal


def _apply_edits(values: dict[str, Any], edits: StateEdits) -> None:
    """Change a copied checkpoint's channel values (the fork's starting state)."""
    if edits.input is not None:
        values["input"] = edits.input
        messages = list(values.get("messages") or [])
        for i, message in enumerate(messages):
            if isinstance(message, HumanMessage):  # the request the model sees
                messages[i] = HumanMessage(content=edits.input, id=message.id)
                break
        values["messages"] = messages
    if edits.vars is not None:
        values["vars"] = dict(edits.vars)
    if edits.output is not None:
        values["output"] = edits.output


def checkpoint_config(run_id: str, info: CheckpointInfo) -> Any:
    return {
        "configurable": {
            "thread_id": run_id,
            "checkpoint_ns": "",
            "checkpoint_id": info.checkpoint_id,
        }
    }


@dataclass(frozen=True)
class TimeTravel:
    """A project's checkpoint history and forks, with the collaborators they need."""

    store: Store
    backend: Backend  # owns the checkpoints (and how to list them)
    audits: AuditFactory
    principal: Callable[[str], Principal]  # a directory user, as the runner resolves it
    workflow_of: Callable[[RunRecord], Workflow]  # the run's own workflow, never a guess
    check_model: Callable[[Workflow, str], object]  # raises when the model cannot be had
    bind: Callable[[str, Workflow], Workflow]  # the new run continues with this workflow

    def checkpoints(self, run_id: str) -> list[CheckpointInfo]:
        """The run's saved checkpoints, oldest first: the points time travel can fork from."""
        record = self.store.get_run(run_id)
        return self.backend.checkpoints(record.run_id)

    def state_at(self, run_id: str, checkpoint: str) -> RunState:
        """The run's state as saved at one checkpoint (an id, a unique prefix, or step:N)."""
        record = self.store.get_run(run_id)
        exact = CheckpointInfo(checkpoint_id=checkpoint, step=0, source="")
        saved = self.backend.checkpointer.get_tuple(checkpoint_config(record.run_id, exact))
        if saved is None:  # a prefix or step:N
            info = resolve_checkpoint(self.checkpoints(record.run_id), checkpoint, record.run_id)
            saved = self.backend.checkpointer.get_tuple(checkpoint_config(record.run_id, info))
        values = saved.checkpoint["channel_values"] if saved is not None else {}
        if "__start__" in values and isinstance(values["__start__"], dict):
            values = {**values["__start__"], **values}
        return cast(RunState, {k: values[k] for k in RunState.__annotations__ if k in values})

    def fork(
        self,
        run_id: str,
        checkpoint: str,
        *,
        by: str,
        edits: StateEdits | dict[str, Any] | None = None,
        model: str | None = None,
    ) -> tuple[str, str]:
        """Start a new run from one of a run's past checkpoints (time travel).

        The new run acts for the same user with the origin's workflow, state and model
        (``model`` overrides it); ``edits`` change the state first. It is linked to its
        origin (``parent_run_id``, ``parent_checkpoint``) in the store and in its audit log's
        first record, with who forked it. It starts paused before the node the checkpoint
        had scheduled. Its tool calls go through the gate again and its approvals are asked
        again: a fork is a new run, not a replay. Returns the new run's id and where it paused.
        """
        origin = self.store.get_run(run_id)
        forker = self.principal(by)
        changes = edits if isinstance(edits, StateEdits) else StateEdits.model_validate(edits or {})
        wf = self.workflow_of(origin)
        principal = self.principal(origin.user_id)
        info = resolve_checkpoint(self.checkpoints(origin.run_id), checkpoint, origin.run_id)
        if info.step < 0 and changes.changed():
            raise RunStateError(
                f"Checkpoint {info.checkpoint_id} holds only the run's input; fork from step:0 "
                "to edit the state.",
                title="Cannot edit this checkpoint",
            )
        saved = self.backend.checkpointer.get_tuple(checkpoint_config(origin.run_id, info))
        if saved is None:
            raise RunStateError(f"Checkpoint {info.checkpoint_id} of run {origin.run_id} is gone.")
        model_spec = model or origin.model
        self.check_model(wf, model_spec)  # a missing model fails before the run exists
        new_id = "r" + uuid.uuid4().hex[:11]
        self.bind(new_id, wf)  # the fork continues with its origin's workflow object
        copied = copy_checkpoint(saved.checkpoint)
        copied["id"] = str(uuid6(clock_seq=-2))
        _apply_edits(copied["channel_values"], changes)
        self.backend.checkpointer.put(
            {"configurable": {"thread_id": new_id, "checkpoint_ns": ""}},
            copied,
            {"source": "fork", "step": info.step, "parents": {}},
            {},
        )
        audit = self.audits.for_run(new_id, wf)
        stamp = now()
        values = copied["channel_values"]
        text = str(values.get("input", origin.input)) if changes.input is None else changes.input
        self.store.insert_run(
            origin.model_copy(
                update={
                    "run_id": new_id,
                    "input": text,
                    "model": model_spec,
                    "status": RunStatus.PAUSED,
                    "output": None,
                    "error": None,
                    "next_steps": [n for n in info.next if n != "__start__"] or info.next,
                    "parent_run_id": origin.run_id,
                    "parent_checkpoint": info.checkpoint_id,
                    "created_at": stamp,
                    "updated_at": stamp,
                    "pending_approvals": 0,
                    "denied_calls": 0,
                    "rejected_calls": 0,
                }
            )
        )
        audit.run_started(
            principal=principal,
            model_spec=model_spec,
            approve_mode=origin.approve_mode,
            input_text=text,
            config=self.audits.config(),
            fork={
                "run_id": origin.run_id,
                "checkpoint_id": info.checkpoint_id,
                "step": info.step,
                "by": forker.id,
                "edited": changes.changed(),
            },
        )
        record_stop(audit, "paused", output=None, error=None, next_steps=info.next, pending=[])
        return new_id, f"forked from {origin.run_id} at step {info.step}"
