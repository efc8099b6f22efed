"""Which workflow object a run is driven with: exactly the one it started with, never a guess.

A run started from a workflow file or module reference is loaded again from it; one started
from a Python-built :class:`~controlroom.graphs.authoring.workflow.Workflow` object must be
the object this process bound it to, or one registered here whose digest (spec, tools,
their public configuration) *and* secret fingerprint (an HMAC of the tools' secrets with the
project's identity key) match the run's record. Two candidates are refused, not chosen
between: a wrong guess resumes a payment with another account's tool.
"""

from __future__ import annotations

from pathlib import Path

from controlroom.errors import RunStateError
from controlroom.graphs.authoring.workflow import PYTHON_OBJECT, Workflow, load_workflow
from controlroom.graphs.storage.records import RunRecord
from controlroom.graphs.storage.run_store import Store


class RunWorkflows:
    """The workflows a runner knows: bound per run in this process, registered by digest."""

    def __init__(self, store: Store) -> None:
        self._store = store
        # The workflow object each run started (or was resumed) with in this process, and
        # the Python-built workflows registered for runs started elsewhere (by digest; two
        # distinct objects with one digest are ambiguous, and never guessed between).
        self._bound: dict[str, Workflow] = {}
        self._registered: dict[str, list[Workflow]] = {}

    def bound(self, run_id: str) -> Workflow | None:
        """The workflow object this process drives ``run_id`` with, if it has one."""
        return self._bound.get(run_id)

    def register(self, workflow: Workflow) -> Workflow:
        """Make a Python-built workflow known, so runs of it started by another process (or
        another runner) can be resumed, approved and replayed here by id.

        Runs are matched by the workflow's digest, which covers its spec, its tools'
        schemas and what each tool is bound to (:meth:`controlroom.Tool.identity`). Should
        two different objects with one digest be registered, their runs are refused rather
        than resumed with either: pass ``workflow=`` to say which one. Workflows loaded
        from a file or module reference need no registration (they are loaded again)."""
        if workflow.ref == PYTHON_OBJECT:
            known = self._registered.setdefault(workflow.digest, [])
            if not any(w is workflow for w in known):
                known.append(workflow)
        return workflow

    def bind(self, run_id: str, workflow: Workflow) -> Workflow:
        """This process continues ``run_id`` with exactly this workflow object."""
        if workflow.ref == PYTHON_OBJECT:
            self._bound[run_id] = workflow
        return workflow

    # reading -----------------------------------------------------------------------
    def for_run(
        self, record: RunRecord, workflow: str | Path | Workflow | None, *, allow_changed: bool
    ) -> Workflow:
        if workflow is None:
            bound = self._bound.get(record.run_id)
            if bound is not None:
                return bound
            if record.workflow_ref == PYTHON_OBJECT:
                return self.bind(record.run_id, self._registered_for(record))
            workflow = record.workflow_ref
        wf = self.register(load_workflow(workflow))
        if not allow_changed and self.fingerprint(wf) != record.workflow_fingerprint:
            raise RunStateError(
                f"The workflow given for run {record.run_id} has tools bound to other secret "
                "configuration (an API key, a token, a SecretStr) than the run started with, "
                "so its calls could act for another account. Pass the workflow the run "
                "started with, or allow_changed=True (--allow-changed) if the credentials "
                "were rotated on purpose.",
                title="Workflow changed",
            )
        if wf.digest != record.workflow_hash and not allow_changed:
            raise RunStateError(
                f"The workflow '{wf.name}' changed since run {record.run_id} started "
                f"({record.workflow_hash[:19]}… then, {wf.digest[:19]}… now). Continuing "
                "could take different decisions; pass --allow-changed (allow_changed=True) "
                "if that is intended."
            )
        return self.bind(record.run_id, wf)

    def fingerprint(self, workflow: Workflow) -> str | None:
        return workflow.secret_fingerprint(self._store.identity_key())

    def _registered_for(self, record: RunRecord) -> Workflow:
        """The one registered Python-built workflow a run was started with, or an error.

        It must have the run's digest (spec, tools, their public configuration) and the
        same fingerprint of the secrets its tools hold: two workflows that differ only in
        an API key belong to different accounts."""
        candidates = [
            w
            for w in self._registered.get(record.workflow_hash, [])
            if self.fingerprint(w) == record.workflow_fingerprint
        ]
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            raise RunStateError(
                f"Run {record.run_id} was started from a Workflow object, and {len(candidates)} "
                "different workflow objects registered here have its digest (the same spec, "
                "tools and tool configuration as far as controlroom can see), so it cannot "
                "tell which one the run belongs to and will not guess. Pass workflow=... to "
                "resume, approve or replay it with the right one.",
                title="Ambiguous workflow",
            )
        names = sorted({w.name for known in self._registered.values() for w in known})
        also = (
            f" Registered here: {', '.join(names)} (a different spec, tool or tool "
            "configuration, secrets such as API keys included, is another workflow)."
            if names
            else ""
        )
        raise RunStateError(
            f"Run {record.run_id} was started from a Workflow object, not a file or module "
            "reference, so this process cannot reload it. Call runner.register(workflow) "
            "with the workflow it was started with (or pass workflow=...) first, or define "
            f"the workflow in a file or module.{also}"
        )
