"""Load a workflow from a YAML file, with errors that name the file, line and key.

The YAML is composed into PyYAML's node tree first (safe loader only), so that the line of
every mapping key and sequence item is known by its key path, such as
``("steps", 2, "next")``. The data is then validated as a :class:`WorkflowSpec`, the form
of its tool references checked, and the graph (branch conditions included) checked with
:func:`check_workflow`. Every problem is a :class:`WorkflowFileError` with one paragraph::

    flows/triage.yaml:14: at `steps[2].next`: `next` names the unknown step `reveiw`
    (did you mean `review`?). Expected `end` or the id of one of the steps: ...
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from controlroom.agents.prompt_library import PromptRef
from controlroom.errors import WorkflowDefinitionError, WorkflowFileError
from controlroom.graphs.authoring.prompt_refs import resolve_prompt_refs
from controlroom.graphs.authoring.spec import (
    AnswerStep,
    ApprovalStep,
    BranchStep,
    Case,
    ChooseStep,
    ModelStep,
    ReasonStep,
    RetrieveStep,
    ToolsStep,
    WorkflowSpec,
)
from controlroom.graphs.authoring.tool_refs import parse_tool_ref
from controlroom.graphs.authoring.validate import (
    KeyPath,
    Problem,
    check_workflow,
    did_you_mean,
    render_problems,
)

__all__ = ["STEP_KINDS", "SourceMap", "load_workflow_file"]

STEP_MODELS: dict[str, type[BaseModel]] = {
    m.model_fields["kind"].default: m
    for m in (
        ModelStep,
        ToolsStep,
        BranchStep,
        ApprovalStep,
        ReasonStep,
        ChooseStep,
        RetrieveStep,
        AnswerStep,
    )
}
STEP_KINDS = tuple(STEP_MODELS)
_KINDS_TEXT = ", ".join(STEP_KINDS)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_NODES = 100_000
_MAX_BYTES = 16 * 1024 * 1024


@dataclass
class SourceMap:
    """The line of every key path in one YAML file."""

    file: str
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line(self, path: KeyPath) -> int:
        """The line of ``path``, or of its nearest recorded parent."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return 1

    def locate(self, path: KeyPath) -> str:
        return f"{self.file}:{self.line(path)}"

    def record(self, node: yaml.Node, path: KeyPath = ()) -> None:
        """Record lines under ``node``; raise on a key written twice in one mapping."""
        self.lines.setdefault(path, node.start_mark.line + 1)
        self._walk(node, path, set())

    def _walk(self, node: yaml.Node, path: KeyPath, active: set[int]) -> None:
        if id(node) in active:
            return  # a recursive alias: its lines are recorded once
        if len(self.lines) > _MAX_NODES:  # an alias bomb ("billion laughs"), or just huge
            raise WorkflowFileError(
                f"{self.locate(path)}: the file expands to more than {_MAX_NODES:,} keys and "
                "items (YAML aliases `*name` that repeat anchors inside each other?). Expected "
                "a workflow file of ordinary size."
            )
        active.add(id(node))
        children: list[tuple[KeyPath, int, yaml.Node]] = []
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if key.tag == _MERGE_TAG or not isinstance(key, yaml.ScalarNode):
                    continue
                line, child_path = key.start_mark.line + 1, (*path, key.value)
                if key.value in seen:
                    self.lines[child_path] = line
                    raise _error(
                        self,
                        child_path,
                        f"the key `{key.value}` is written twice (first on line {seen[key.value]})",
                        "each key once in a mapping",
                    )
                seen[key.value] = line
                children.append((child_path, line, value))
        elif isinstance(node, yaml.SequenceNode):
            children = [((*path, i), v.start_mark.line + 1, v) for i, v in enumerate(node.value)]
        for child_path, line, child in children:
            self.lines.setdefault(child_path, line)
            self._walk(child, child_path, active)
        active.discard(id(node))


class _UnreadableValue(yaml.MarkedYAMLError):
    """A scalar that the safe loader's constructors cannot build."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader; a value Python cannot build (a 5,000-digit integer, the date
    2001-13-45) is a YAML error at its line, instead of a bare ValueError."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            shown = node.value if isinstance(node.value, str) else ""
            shown = shown if len(shown) <= 40 else f"{shown[:20]}…({len(shown):,} characters)"
            reason = " ".join(str(exc).split())
            if "integer string conversion" in reason:
                reason = f"an integer of more than {sys.get_int_max_str_digits():,} digits"
            raise _UnreadableValue(
                problem=f"cannot read the value `{shown}` ({reason})", problem_mark=node.start_mark
            ) from None


def load_workflow_file(
    path: Path,
    *,
    tool_names: set[str] | None = None,
    prompt_versions: Mapping[str, int] | None = None,
    prompts_used: dict[str, PromptRef] | None = None,
) -> WorkflowSpec:
    """Read, validate and check the workflow file at ``path``.

    ``tool_names``, when given, are the tools the workflow provides; step ``tools`` naming
    others are errors. A step ``prompt: "@ID[@N]"`` is replaced by that library prompt's
    text (``prompt_versions`` picks other versions by id); ``prompts_used``, when given, is
    filled with step id -> the library prompt used. Raises :class:`WorkflowFileError` for
    every problem.
    """
    source = SourceMap(str(path))
    data = _parse(_read(path), source)
    if not isinstance(data, dict):
        found = "the file is empty" if data is None else f"found {_describe(data)}"
        raise _error(source, (), found, f"a mapping with {_keys_text(WorkflowSpec)}")
    try:
        spec = WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        problems = _from_validation(exc, data)
        # what is written wrong first, by line; then what is missing
        problems.sort(key=lambda p: (p.problem.startswith("missing"), source.line(p.path)))
        raise WorkflowFileError(render_problems(problems, source.locate)) from None
    problems = _ref_problems(spec)
    spec, used = resolve_prompt_refs(spec, path.resolve().parent, prompt_versions, problems)
    if prompts_used is not None:
        prompts_used.update(used)
    if problems:
        raise WorkflowFileError(render_problems(problems, source.locate))
    try:
        check_workflow(spec, tool_names, locate=source.locate)
    except WorkflowDefinitionError as exc:
        raise WorkflowFileError(exc.message) from None
    return spec


def _read(path: Path) -> str:
    problem = None
    try:
        if not path.exists():
            problem = f"workflow file not found (looked at {path.absolute()})"
        elif path.is_dir():
            problem = "this is a folder, not a workflow file"
        elif not path.is_file():
            problem = "this is not a regular file (a device, pipe or socket?)"
        elif path.stat().st_size > _MAX_BYTES:
            problem = f"the file is {path.stat().st_size:,} bytes, more than {_MAX_BYTES:,}"
        else:
            return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problem = f"the file is not UTF-8 text ({exc})"
    except OSError as exc:
        problem = f"cannot read the file ({exc.strerror or exc})"
    raise WorkflowFileError(f"{path}: {problem}. Expected a readable UTF-8 YAML workflow file.")


def _parse(text: str, source: SourceMap) -> Any:
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # checks every character: a NUL byte fails here
        node = loader.get_single_node()
        if node is None:
            return None
        source.record(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = ", ".join(p for p in (exc.context, exc.problem) if p) or "malformed YAML"
        expected = (
            "a value YAML can read (quote it to make it text)"
            if isinstance(exc, _UnreadableValue)
            else "plain YAML values (tags such as `!!python/object` are not allowed)"
            if isinstance(exc, yaml.constructor.ConstructorError)
            else "valid YAML (check the indentation, colons and quotes on this line and the "
            "one before)"
        )
        raise WorkflowFileError(
            f"{source.file}:{mark.line + 1 if mark else 1}: not valid YAML: {problem}. "
            f"Expected {expected}."
        ) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        what = " (a NUL byte)" if exc.character == 0 else ""
        raise WorkflowFileError(
            f"{source.file}:{line}: not valid YAML: the control character {char}{what} is not "
            "allowed in YAML. Expected a text file (is this a binary file?)."
        ) from None
    except (yaml.YAMLError, RecursionError) as exc:
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise WorkflowFileError(
            f"{source.file}: not valid YAML: {' '.join(problem.split())}. "
            "Expected a valid YAML workflow file."
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def _error(source: SourceMap, path: KeyPath, problem: str, expected: str) -> WorkflowFileError:
    return WorkflowFileError(render_problems([Problem(path, problem, expected)], source.locate))


def _ref_problems(spec: WorkflowSpec) -> list[Problem]:
    problems: list[Problem] = []
    for j, ref in enumerate(spec.tools):
        try:
            parse_tool_ref(ref)
        except WorkflowDefinitionError as exc:
            text, _, expected = exc.message.partition(". Expected ")
            problems.append(Problem(("tools", j), text, expected.rstrip(".")))
    return problems


# -- pydantic errors, mapped back to YAML key paths ------------------------------------


def _data_path(loc: tuple[int | str, ...], data: Any) -> tuple[KeyPath, list[int | str], Any]:
    """Follow ``loc`` through ``data``: the existing path, what is left of loc, the value.

    A step's loc has the discriminator tag after the index (``steps, 2, model, next``);
    the tag is skipped.
    """
    path: list[str | int] = []
    current = data
    rest = list(loc)
    tag_skipped = False
    while rest:
        part = rest[0]
        at_step = len(path) == 2 and path[0] == "steps"
        if at_step and not tag_skipped and part in STEP_KINDS:
            tag_skipped = True
        elif isinstance(current, dict) and part in current:
            path.append(str(part))
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
        else:
            break
        rest.pop(0)
    return tuple(path), rest, current


def _context(path: KeyPath, data: dict[str, Any]) -> tuple[type[BaseModel] | None, str]:
    """The model of the mapping at ``path`` and how to name it."""
    if not path:
        return WorkflowSpec, "the top level"
    if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
        step = data["steps"][path[1]]
        kind = step.get("kind") if isinstance(step, dict) else None
        if len(path) == 2:
            if kind in STEP_MODELS:
                article = "an" if str(kind)[0] in "aeiou" else "a"
                return STEP_MODELS[str(kind)], f"{article} `{kind}` step"
            return None, "a step"
        if len(path) == 4 and path[2] == "cases":
            return Case, "a branch case"
    return None, "this mapping"


def _keys_text(model: type[BaseModel]) -> str:
    required = [n for n, f in model.model_fields.items() if f.is_required()]
    optional = [n for n in model.model_fields if n not in required]
    if "kind" in optional:  # the discriminator: optional in the model, required in a file
        optional.remove("kind")
        required.insert(1, "kind")
    text = "keys " + ", ".join(f"`{n}`" for n in required)
    return text + (" and optionally " + ", ".join(f"`{n}`" for n in optional) if optional else "")


def _describe(value: Any) -> str:
    if value is None:
        return "an empty value (null)"
    if isinstance(value, bool):
        return f"the boolean `{str(value).lower()}`"
    if isinstance(value, int) and value.bit_length() > 64:
        return "a very large number"  # str() of a 5,000-digit integer raises ValueError
    if isinstance(value, int | float):
        return f"the number `{value}`"
    if isinstance(value, str):
        return f"the text `{value}`" if len(value) < 60 else "a long text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


_TYPE_EXPECTED = {
    "string_type": "text (quote it if YAML reads it as a number, true/false or null)",
    "list_type": "a list (one `- item` per line, or `[a, b]`)",
}


def _from_validation(exc: ValidationError, data: dict[str, Any]) -> list[Problem]:
    """One problem per key path (a union reports one error per member)."""
    by_path: dict[KeyPath, Problem] = {}
    for err in exc.errors():
        problem = _problem(err, data)
        by_path.setdefault(problem.path, problem)
    return list(by_path.values())


def _problem(err: ErrorDetails, data: dict[str, Any]) -> Problem:
    path, rest, value = _data_path(err["loc"], data)
    kind, ctx = err["type"], err.get("ctx", {})
    name = str(path[-1]) if path else ""
    if kind == "missing" and rest:
        model, where = _context(path, data)
        expected = f"{where} to have {_keys_text(model)}" if model else "this key"
        return Problem(path, f"missing required key `{rest[0]}`", expected)
    if kind == "extra_forbidden":
        model, where = _context(path[:-1], data)
        allowed = list(model.model_fields) if model else []
        hint = did_you_mean(name, allowed)
        expected = f"only these keys in {where}: " + ", ".join(f"`{k}`" for k in allowed)
        return Problem(path, f"unknown key `{name}`{hint}", expected)
    if kind == "union_tag_invalid":
        tag = str(ctx.get("tag", ""))
        return Problem(
            (*path, "kind"),
            f"unknown step kind `{tag}`{did_you_mean(tag, STEP_KINDS)}",
            f"`kind` to be one of: {_KINDS_TEXT}",
        )
    if kind == "union_tag_not_found":
        return Problem(path, "the step has no `kind`", f"`kind:` set to one of: {_KINDS_TEXT}")
    if kind in ("model_attributes_type", "model_type", "dict_type"):
        model, where = _context(path, data)
        expected = f"{where}: a mapping" + (f" with {_keys_text(model)}" if model else "")
        if where == "a step":
            expected = f"a step: a mapping with `id`, `kind` (one of {_KINDS_TEXT}) and more"
        return Problem(path, f"found {_describe(value)}", expected)
    if name == "when":
        return Problem(
            path,
            f"found {_describe(value)}",
            "a condition written as text, for example `when: \"vars.priority == 'high'\"`",
        )
    if kind == "too_short":
        item = "step" if name == "steps" else "case with `when` and `goto`"
        return Problem(path, f"the list `{name}` is empty", f"at least one {item}")
    if kind == "string_pattern_mismatch":
        expected = (
            "a letter first, then only letters, digits, `_` and `-`"
            if name == "id"
            else "a letter or digit first, then only letters, digits, `_`, `.` and `-`"
        )
        return Problem(path, f"`{value}` is not a valid {name}", expected)
    if kind == "invalid_key":
        return Problem(path, f"the key `{rest[0] if rest else name}` is not text", "text keys")
    if kind in _TYPE_EXPECTED:
        return Problem(path, f"found {_describe(value)}", _TYPE_EXPECTED[kind])
    return Problem(path, f"{err['msg']} (found {_describe(value)})", "a valid value")
