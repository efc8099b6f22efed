"""Library prompts in workflow files: ``prompt: "@grounded-answer"`` or ``"@grounded-answer@2"``.

The workflow loader replaces each reference by the prompt's text (so the workflow's digest
changes with it) and remembers, per step, which prompt id, version and sha256 it used; the
audit's ``model.call`` records carry them. Versions can be overridden per id
(``--prompt grounded-answer@1``), which is how two versions are compared with two evals.
See :mod:`controlroom.agents.prompt_library` for where prompts live.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from controlroom.agents.prompt_library import PromptLibrary, PromptRef, parse_ref
from controlroom.errors import PromptNotFoundError
from controlroom.graphs.authoring.spec import WorkflowSpec
from controlroom.graphs.authoring.validate import Problem

__all__ = ["OVERRIDE_MARK", "resolve_prompt_refs", "split_ref", "with_overrides"]

OVERRIDE_MARK = "#prompts="


def with_overrides(ref: str, overrides: Mapping[str, int] | None) -> str:
    """A workflow reference that reloads with the same prompt versions (resume, approve)."""
    if not overrides:
        return ref
    return ref + OVERRIDE_MARK + ",".join(f"{k}@{v}" for k, v in sorted(overrides.items()))


def split_ref(ref: str) -> tuple[str, dict[str, int]]:
    """``path#prompts=a@1,b@2`` -> (path, {a: 1, b: 2}); other references unchanged."""
    base, mark, rest = ref.partition(OVERRIDE_MARK)
    if not mark:
        return ref, {}
    overrides: dict[str, int] = {}
    for part in rest.split(","):
        prompt_id, _, version = part.rpartition("@")
        if prompt_id and version.isdigit():
            overrides[prompt_id] = int(version)
    return base, overrides


def resolve_prompt_refs(
    spec: WorkflowSpec,
    base_dir: Path,
    overrides: Mapping[str, int] | None,
    problems: list[Problem],
) -> tuple[WorkflowSpec, dict[str, PromptRef]]:
    """The spec with library prompts filled in, and step id -> prompt used.

    An unknown id or version is appended to ``problems`` (reported with the file's line);
    an override naming a prompt no step uses raises :class:`PromptNotFoundError`.
    """
    if not any(parse_ref(getattr(s, "prompt", "") or "") for s in spec.steps):
        if overrides:
            raise _unused(overrides, set())
        return spec, {}
    library = PromptLibrary.for_workflow(base_dir)
    used: dict[str, PromptRef] = {}
    referenced: set[str] = set()
    steps = list(spec.steps)
    for i, step in enumerate(steps):
        text = getattr(step, "prompt", None)
        parsed = parse_ref(text) if isinstance(text, str) else None
        if parsed is None or not isinstance(text, str):
            continue
        referenced.add(parsed[0])
        try:
            found = library.resolve(text, overrides)
        except PromptNotFoundError as exc:
            problems.append(Problem(("steps", i, "prompt"), exc.message.split(". ")[0], _how()))
            continue
        assert found is not None
        steps[i] = step.model_copy(update={"prompt": found.text})
        used[step.id] = found.ref
    if overrides:
        unused = set(overrides) - referenced
        if unused:
            raise _unused({k: overrides[k] for k in unused}, referenced)
    return spec.model_copy(update={"steps": steps}), used


def _how() -> str:
    return (
        "`@ID` or `@ID@VERSION` naming prompts/ID/vVERSION.md next to the workflow or in its "
        "parent folder (`controlroom prompts list` shows them)"
    )


def _unused(overrides: Mapping[str, int], used: set[str]) -> PromptNotFoundError:
    named = ", ".join(f"{k}@{v}" for k, v in sorted(overrides.items()))
    have = ", ".join(sorted(used)) or "none"
    return PromptNotFoundError(
        f"--prompt {named}: the workflow's steps use no such library prompt (they use: "
        f'{have}). Name a prompt a step references with `prompt: "@ID"`.'
    )
