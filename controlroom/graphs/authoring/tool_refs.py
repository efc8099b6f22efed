"""Resolve the tool references of a workflow to :class:`Tool` objects.

A reference is ``package.module:attr`` (imported with :func:`importlib.import_module`) or
``./relative/file.py:attr`` / ``file.py:attr`` (a file relative to the workflow's folder,
imported under a stable module name derived from its absolute path). ``attr`` may be
dotted and must name a :class:`Tool` or a list/tuple of Tools (a toolset).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import os
import re
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from controlroom.errors import WorkflowDefinitionError
from controlroom.tools.spec import Tool

__all__ = [
    "IMPORT_LOCK",
    "FileImportError",
    "ToolRef",
    "file_module_name",
    "import_file_module",
    "parse_tool_ref",
    "resolve_tool_refs",
]

_FORMS = "`package.module:attr` or `./relative/file.py:attr`"
_MODULE_PREFIX = "controlroom_workflow_file_"


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


def file_module_name(path: Path) -> str:
    """A stable, unique module name for the file at absolute ``path``."""
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:16]
    stem = re.sub(r"\W", "_", path.stem)
    return f"{_MODULE_PREFIX}{stem}_{digest}"


IMPORT_LOCK = threading.RLock()
"""Held while a workflow's Python file (a tool file, a ``file.py:attr`` workflow) is imported.

One lock for every such import, reentrant because a file may load another workflow while
it executes (that thread then sees its own half-executed module, as Python's circular
imports do; no other thread ever does)."""

# Modules whose body ran to the end, by name: the lock-free fast path of import_file_module.
_COMPLETED: dict[str, ModuleType] = {}


class FileImportError(Exception):
    """A workflow's Python file did not import; ``detail`` is one line saying how and where."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail


def import_file_module(name: str, path: Path) -> ModuleType:
    """Import the Python file at absolute ``path`` as module ``name``, once per process.

    Thread-safe: the body runs under :data:`IMPORT_LOCK`, and a loader in another thread
    waits for it to finish rather than taking the half-executed module. While the body runs
    the module is in ``sys.modules`` (pydantic and dataclasses look their module up there);
    when it fails the entry is removed again, so nothing half-loaded stays behind. Raises
    :class:`FileImportError` (never the file's own exception, nor its ``SystemExit``).
    """
    done = _COMPLETED.get(name)
    if done is not None and sys.modules.get(name) is done:
        return done
    with IMPORT_LOCK:
        loaded = sys.modules.get(name)
        if loaded is not None and getattr(loaded, "__file__", None) == str(path):
            # finished, or being executed by this very thread (a circular load)
            return loaded
        try:
            spec = importlib.util.spec_from_file_location(name, path)
        except (OSError, ValueError) as exc:
            raise FileImportError(path, _one_line(f"{type(exc).__name__}: {exc}")) from None
        if spec is None or spec.loader is None:
            raise FileImportError(path, "it cannot be imported as Python (is it a .py file?)")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # while it runs, so pydantic and dataclasses find it
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:
            if sys.modules.get(name) is module:
                del sys.modules[name]
            if not isinstance(exc, Exception | SystemExit):
                raise  # KeyboardInterrupt and the like are not the file's error
            raise FileImportError(path, _import_failure(exc, path)) from None
        module = sys.modules.get(name, module)
        _COMPLETED[name] = module
        return module


def _import_failure(exc: BaseException, path: Path) -> str:
    """One line: what went wrong importing ``path``, and on which line of which file."""
    if isinstance(exc, SystemExit):
        text = f"the file called sys.exit({exc.code!r}) while being imported"
    elif isinstance(exc, SyntaxError):
        where = f"{exc.filename or path}:{exc.lineno}" if exc.lineno else exc.filename
        text = f"{type(exc).__name__}: {exc.msg}" + (f" ({where})" if where else "")
        return _one_line(text)
    else:
        text = f"{type(exc).__name__}: {exc}"
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    if lines and lines[-1] is not None:
        text += f" ({path}:{lines[-1]})"
    return _one_line(text)


def _one_line(text: str, limit: int = 600) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
