"""A loaded workflow: its spec, the tools it provides, where it came from, its hash."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlroom.agents.prompt_library import PromptRef
from controlroom.errors import WorkflowDefinitionError
from controlroom.graphs.authoring.prompt_refs import split_ref, with_overrides
from controlroom.graphs.authoring.spec import WorkflowSpec
from controlroom.graphs.authoring.tool_refs import resolve_tool_refs
from controlroom.graphs.authoring.user_code import FileImportError, import_file_module
from controlroom.graphs.authoring.validate import check_workflow
from controlroom.graphs.authoring.workflow_file import load_workflow_file
from controlroom.tools.gate import Gate
from controlroom.tools.policy import load_policy_gate, resolve_policies
from controlroom.tools.spec import Tool

PYTHON_OBJECT = "<python object>"


def _spec_digest(spec: WorkflowSpec, tools: dict[str, Tool]) -> str:
    def default(value: Any) -> str:
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"

    payload = {
        "spec": spec.model_dump(mode="python"),
        "tools": {
            name: t.json_schema()
            | {"effect": t.effect.value, "identity": t.identity(), "resource": t.resource}
            for name, t in sorted(tools.items())
        },
    }
    blob = json.dumps(payload, sort_keys=True, default=default).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


@dataclass
class Workflow:
    """What the runner needs: the spec, its tools by name, a reloadable reference."""

    spec: WorkflowSpec
    tools: dict[str, Tool]
    ref: str = PYTHON_OBJECT
    base_dir: Path = field(default_factory=Path.cwd)
    gate: Gate | None = None  # the workflow's own policy gate; None: the runner's default
    prompts: dict[str, PromptRef] = field(default_factory=dict)  # step id -> library prompt

    def __post_init__(self) -> None:
        check_workflow(self.spec, set(self.tools))
        self._digest: str | None = None
        self._spec_digest: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def digest(self) -> str:
        """Content hash of the spec, the tool schemas and what each tool is bound to
        (:meth:`Tool.identity`); computed once, so treat a built workflow as frozen."""
        if self._digest is None:
            self._digest = _spec_digest(self.spec, self.tools)
        return self._digest

    def secret_fingerprint(self, key: bytes) -> str | None:
        """An HMAC (under ``key``, the project's) of the secret values the tools are bound
        to, or None when they hold none. The digest leaves secrets out (it is recorded in
        the audit); this tells apart two workflows that differ only in an API key."""
        found = {name: t.secret_identity() for name, t in sorted(self.tools.items())}
        secrets = {name: values for name, values in found.items() if values}
        if not secrets:
            return None
        blob = json.dumps(secrets, sort_keys=True, default=str).encode()
        return "hmac-sha256:" + hmac.new(key, blob, hashlib.sha256).hexdigest()

    @property
    def spec_digest(self) -> str:
        """Content hash of the spec alone: what the compiled graph depends on."""
        if self._spec_digest is None:
            blob = json.dumps(self.spec.model_dump(mode="python"), sort_keys=True, default=str)
            self._spec_digest = "sha256:" + hashlib.sha256(blob.encode()).hexdigest()
        return self._spec_digest

    def stand_in(self, *, tools: dict[str, Tool], gate: Gate | None) -> Workflow:
        """This workflow with stand-in tools and gate (a replay's dry run), keeping its
        digest: the stand-ins play the recorded run of exactly this workflow. It is a
        Python object (never reloaded from the original's file), so a runner continues its
        runs with the stand-ins."""
        copy = Workflow(
            spec=self.spec,
            tools=tools,
            ref=PYTHON_OBJECT,
            base_dir=self.base_dir,
            gate=gate,
            prompts=self.prompts,
        )
        copy._digest = self.digest
        return copy

    @classmethod
    def from_spec(cls, spec: WorkflowSpec, tools: list[Tool] | None = None) -> Workflow:
        return cls(spec=spec, tools={t.name: t for t in tools or []})


def _import_attr(ref: str) -> Any:
    target, _, attr = ref.rpartition(":")
    if target.endswith(".py"):
        try:
            path = Path(target).resolve()
        except (OSError, RuntimeError, ValueError):  # a NUL byte, a symlink loop
            path = Path(target)
        if not path.is_file():
            raise WorkflowDefinitionError(
                f"No Python file {path} (from workflow reference '{ref}')."
            )
        digest = hashlib.sha1(str(path).encode(errors="surrogateescape")).hexdigest()[:12]
        try:
            module = import_file_module("controlroom_workflow_" + digest, path)
        except FileImportError as exc:
            raise WorkflowDefinitionError(
                f"Cannot load workflow '{ref}': importing {path} failed: {exc.detail}. "
                "Expected the file to import without errors."
            ) from None
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise WorkflowDefinitionError(
                f"Cannot import '{target}' for workflow '{ref}': {exc}"
            ) from None
        except Exception as exc:
            raise WorkflowDefinitionError(
                f"Cannot import '{target}' for workflow '{ref}': "
                f"{' '.join(f'{type(exc).__name__}: {exc}'.split())}. "
                "Expected the module to import without errors."
            ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise WorkflowDefinitionError(
            f"'{target}' has no attribute '{attr}' (workflow '{ref}')."
        ) from None


def policy_gate(policies: str | None, base_dir: Path) -> Gate | None:
    """The gate for a workflow's ``policies:`` value (None when it names none).

    The folder is parsed and validated once per content; loading a workflow again (every
    resume and approval does) only re-reads the files to see whether they changed.
    """
    if policies is None:
        return None
    return load_policy_gate(resolve_policies(policies, base_dir))


def load_workflow(
    ref: str | Path | Workflow,
    *,
    prompt_versions: Mapping[str, int] | None = None,
    with_policies: bool = True,
) -> Workflow:
    """Load a workflow from a YAML file, a folder holding ``workflow.yaml``, or ``module:attr``.

    ``module:attr`` (or ``path/to/file.py:attr``) names a :class:`Workflow` object built in
    Python, for example with :class:`controlroom.GraphBuilder`. ``prompt_versions`` (id ->
    version) overrides the library prompt versions a workflow file's steps use; the
    workflow's ``ref`` remembers them, so a resume or an approval reloads the same prompts.
    ``with_policies=False`` leaves a workflow file's ``policies:`` unloaded (``gate`` None):
    for a replay, which decides with the policy sets its record names.
    """
    if isinstance(ref, Workflow):
        if not prompt_versions or ref.ref == PYTHON_OBJECT:
            return ref
        ref = ref.ref
    text, overrides = split_ref(str(ref))
    overrides = {**overrides, **(prompt_versions or {})}
    path = Path(text)
    if path.is_dir() and (path / "workflow.yaml").is_file():
        path = path / "workflow.yaml"
    if path.suffix in {".yaml", ".yml"} or path.is_file():
        prompts: dict[str, PromptRef] = {}
        spec = load_workflow_file(path, prompt_versions=overrides, prompts_used=prompts)
        base = path.resolve().parent
        tools = resolve_tool_refs(spec.tools, base)
        # Check again now that the tools are known, so a step naming a tool the workflow
        # does not provide is reported with its file and line.
        load_workflow_file(path, tool_names={t.name for t in tools}, prompt_versions=overrides)
        return Workflow(
            spec=spec,
            tools={t.name: t for t in tools},
            ref=with_overrides(str(path.resolve()), overrides),
            base_dir=base,
            gate=policy_gate(spec.policies, base) if with_policies else None,
            prompts=prompts,
        )
    if ":" in text:
        obj = _import_attr(text)
        if not isinstance(obj, Workflow):
            raise WorkflowDefinitionError(
                f"'{text}' is a {type(obj).__name__}, not a controlroom Workflow. Build one with "
                "controlroom.GraphBuilder(...).build()."
            )
        ref_path, _, attr = text.rpartition(":")
        stable = f"{Path(ref_path).resolve()}:{attr}" if ref_path.endswith(".py") else text
        return Workflow(
            spec=obj.spec, tools=obj.tools, ref=stable, base_dir=obj.base_dir, gate=obj.gate
        )
    raise WorkflowDefinitionError(
        f"No workflow at '{text}'. Give a workflow YAML file, a folder with workflow.yaml, or "
        "a Python reference `package.module:attr` / `file.py:attr`."
    )
