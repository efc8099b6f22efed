"""Creating a batch durably: check it, record it with all its inputs, create its runs.

:func:`create_batch` checks the workflow and every user first, then records the batch and
all its inputs in one transaction, each with the run id it will have, and then creates the
runs (status ``queued``). A driver that dies while creating is picked up by ``controlroom
batch --resume``: :func:`ensure_runs` creates the missing runs with the ids recorded.
Nothing here executes a run or needs Ray; running is :mod:`controlroom.batch.driver`.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from controlroom.batch.inputs import BatchInput
from controlroom.errors import RunStateError
from controlroom.graphs.authoring.workflow import PYTHON_OBJECT, Workflow, load_workflow
from controlroom.graphs.control.runner import Runner
from controlroom.graphs.storage.records import ApproveMode, BatchItem, BatchRecord


def new_batch_id() -> str:
    return "b" + uuid.uuid4().hex[:11]


def create_batch(
    runner: Runner,
    workflow: str | Path | Workflow,
    inputs: list[BatchInput],
    *,
    user: str,
    model: str | None = None,
    approve: ApproveMode = "ask",
) -> tuple[BatchRecord, list[BatchItem]]:
    """Record a batch and create its runs (queued); nothing executes yet."""
    wf = runner.register(load_workflow(workflow))
    if wf.ref == PYTHON_OBJECT:
        raise RunStateError(
            "A batch runs on other processes, which cannot see a Workflow object built here: "
            "give the workflow as a file, a folder, or a `module:attr` reference.",
            title="Workflow not loadable by workers",
        )
    users = {user} | {i.user for i in inputs if i.user}
    for user_id in sorted(users):
        runner.principal(user_id)  # an unknown user fails before anything is written
    batch = BatchRecord(
        batch_id=new_batch_id(),
        workflow=wf.name,
        workflow_ref=wf.ref,
        user_id=user,
        approve_mode=approve,
        size=len(inputs),
    )
    items = [
        BatchItem(
            position=n,
            run_id="r" + uuid.uuid4().hex[:11],
            user_id=i.user or user,
            input=i.input,
            model=i.model or model,
        )
        for n, i in enumerate(inputs)
    ]
    runner.store.insert_batch(batch, items)
    ensure_runs(runner, batch, items)
    return batch, items


def ensure_runs(runner: Runner, batch: BatchRecord, items: list[BatchItem]) -> None:
    """Create the batch's runs that do not exist yet (all of them, on a new batch)."""
    existing = runner.store.runs_by_id([i.run_id for i in items])
    missing = [i for i in items if i.run_id not in existing]
    if not missing:
        return
    wf = runner.register(load_workflow(batch.workflow_ref))
    for item in missing:
        runner.create(
            wf,
            user=item.user_id,
            input=item.input,
            model=item.model,
            approve=batch.approve_mode,
            run_id=item.run_id,
        )
