"""Resolve the tool references of a workflow to :class:`Tool` objects.

A reference is ``package.module:attr`` (imported with :func:`importlib.import_module`) or
``./relative/file.py:attr`` / ``file.py:attr`` (a file relative to the workflow's folder,
imported under a stable module name derived from its absolute path). ``attr`` may be
dotted and must name a :class:`Tool` or a list/tuple of Tools (a toolset).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from controlroom.errors import WorkflowDefinitionError
from controlroom.graphs.authoring.user_code import (
    FileImportError,
    file_module_name,
    import_file_module,
)
from controlroom.tools.spec import Tool

__all__ = ["ToolRef", "parse_tool_ref", "resolve_tool_refs"]

_FORMS = "`package.module:attr` or `./relative/file.py:attr`"


@dataclass(frozen=True)
class ToolRef:
    """A parsed tool reference."""

    text: str
    module: str
    attr: str
    is_file: bool


def parse_tool_ref(ref: str) -> ToolRef:
    """Split ``ref`` into module (or file) and attribute, checking the form only."""
    module, sep, attr = ref.strip().rpartition(":")
    if not sep or not module or not attr:
        raise WorkflowDefinitionError(
            f"Tool reference `{ref}` has no `:attr` part. Expected {_FORMS}."
        )
    if not all(part.isidentifier() for part in attr.split(".")):
        raise WorkflowDefinitionError(
            f"Tool reference `{ref}`: `{attr}` is not a Python name. Expected {_FORMS}."
        )
    is_file = module.endswith(".py") or "/" in module or "\\" in module
    if not is_file and not all(part.isidentifier() for part in module.split(".")):
        raise WorkflowDefinitionError(
            f"Tool reference `{ref}`: `{module}` is neither a module name nor a .py file. "
            f"Expected {_FORMS}."
        )
    return ToolRef(text=ref, module=module, attr=attr, is_file=is_file)


def resolve_tool_refs(refs: list[str], base_dir: Path) -> list[Tool]:
    """The tools that ``refs`` name, in order; file paths are relative to ``base_dir``.

    The same Tool named twice is kept once; two different tools with one name are an error.
    """
    tools: list[Tool] = []
    owner: dict[str, tuple[Tool, str]] = {}
    for text in refs:
        ref = parse_tool_ref(text)
        module = _import_file(ref, base_dir) if ref.is_file else _import_module(ref)
        for found in _tools_of(ref, _attribute(ref, module)):
            if found.name in owner:
                other, other_ref = owner[found.name]
                if other is found:
                    continue
                raise WorkflowDefinitionError(
                    f"Tool name `{found.name}` is provided twice, by `{other_ref}` and by "
                    f"`{ref.text}`. Expected each tool name once in a workflow."
                )
            owner[found.name] = (found, ref.text)
            tools.append(found)
    return tools


def _import_module(ref: ToolRef) -> ModuleType:
    try:
        return importlib.import_module(ref.module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (ref.module == missing or ref.module.startswith(missing + ".")):
            raise WorkflowDefinitionError(
                f"Tool reference `{ref.text}`: module `{ref.module}` not found. Expected an "
                "importable module (is its package installed?) or a file path such as "
                f"`./{ref.module.replace('.', '/')}.py:{ref.attr}`."
            ) from None
        raise WorkflowDefinitionError(
            f"Tool reference `{ref.text}`: importing module `{ref.module}` failed because it "
            f"imports `{missing}`, which is not installed. Expected all of the module's "
            "imports to be available."
        ) from None
    except Exception as exc:
        raise WorkflowDefinitionError(
            f"Tool reference `{ref.text}`: importing module `{ref.module}` failed: "
            f"{type(exc).__name__}: {exc}. Expected the module to import without errors."
        ) from None


def _import_file(ref: ToolRef, base_dir: Path) -> ModuleType:
    path = Path(ref.module)
    try:
        given = path.expanduser()
        path = (given if given.is_absolute() else base_dir / given).resolve()
    except (OSError, RuntimeError, ValueError):  # no such ~user, a NUL byte, a symlink loop
        pass
    if not path.is_file():
        raise WorkflowDefinitionError(
            f"Tool reference `{ref.text}`: file {path} not found. Expected a Python file "
            f"relative to the workflow's folder {base_dir}."
        )
    try:
        return import_file_module(file_module_name(path), path)
    except FileImportError as exc:
        raise WorkflowDefinitionError(
            f"Tool reference `{ref.text}`: importing {path} failed: {exc.detail}. "
            "Expected the file to import without errors."
        ) from None


def _attribute(ref: ToolRef, module: ModuleType) -> Any:
    value: Any = module
    for depth, part in enumerate(ref.attr.split(".")):
        try:
            value = getattr(value, part)
        except AttributeError:
            owner = ".".join([ref.module, *ref.attr.split(".")[:depth]])
            names = [n for n in dir(value) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3, cutoff=0.6)
            hint = f" (did you mean {' or '.join(f'`{c}`' for c in close)}?)" if close else ""
            raise WorkflowDefinitionError(
                f"Tool reference `{ref.text}`: `{owner}` has no attribute `{part}`{hint}. "
                "Expected the name of a Tool or of a list of Tools defined there."
            ) from None
    return value


def _tools_of(ref: ToolRef, value: Any) -> list[Tool]:
    expected = (
        "Expected a Tool (a function decorated with @tool) or a list or tuple of Tools (a toolset)"
    )
    if isinstance(value, Tool):
        return [value]
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if not isinstance(item, Tool):
                raise WorkflowDefinitionError(
                    f"Tool reference `{ref.text}`: item {i} of `{ref.attr}` is "
                    f"{_kind(item)}, not a Tool. {expected}."
                )
        return list(value)
    raise WorkflowDefinitionError(
        f"Tool reference `{ref.text}`: `{ref.attr}` is {_kind(value)}, not a Tool. {expected}."
    )


def _kind(value: Any) -> str:
    if callable(value) and not isinstance(value, type):
        return "a plain function (not decorated with @tool)"
    return f"a {type(value).__name__}"
