"""Importing the user code a workflow names: tool files and modules, ``file.py:attr``
workflow files. Every such import goes through here.

A file is imported under a stable module name derived from its absolute path
(:func:`file_module_name`), once per process, under one reentrant lock
(:data:`IMPORT_LOCK`): a second thread (the TUI's workers) waits for a file being loaded
instead of taking it half-executed, and a file that fails leaves nothing behind. A failure
is one line naming the file and the line (:class:`FileImportError`), never the file's own
traceback.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import threading
import traceback
from pathlib import Path
from types import ModuleType

__all__ = ["IMPORT_LOCK", "FileImportError", "file_module_name", "import_file_module"]

_MODULE_PREFIX = "controlroom_workflow_file_"


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
