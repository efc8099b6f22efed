"""A tool's picture: what its function is bound to, as process-independent JSON data.

:meth:`controlroom.tools.spec.Tool.identity` (public, hashed into the workflow's digest)
and :meth:`~controlroom.tools.spec.Tool.secret_identity` (HMAC'd into its fingerprint) are
taken from one walk over the tool's function and everything it is bound to:

* functions count by their qualified name *and their code* (bytecode, constants, names;
  not line numbers), their closure cells, defaults and keyword defaults; bound methods by
  their function and their object (builtin ones too: ``table.get``); ``functools.partial``
  by its function and arguments; wrappers (``functools.wraps``, ``lru_cache``) by what they
  wrap; callable objects by their ``__call__``'s code and their attributes;
* objects by their type, their attributes (``__dict__``, slots, pydantic fields, extras and
  private attributes, callables included) and the plain values set on their classes;
* mappings, sequences and sets item by item (sets and mapping keys in the order of their
  pictures, never of hashes), enums by member, paths and numbers as such.

Where values go: ``SecretStr``/``SecretBytes``, values under secret-looking names
(``api_key``, ``token``, ...), credential-looking strings (``sk-...``, ``ghp_...``,
``-----BEGIN``), bytes, and private attributes (``_conf``, ``_client``: anything but
plain strings, numbers, enums and paths under a private name) are pictured apart, for
:meth:`secret_identity` only; the public picture keeps a marker in their place. Private
attributes named as run-time state (``_cache``, ``_lock``, ``_started``, ``*_at``, ...)
are not identity at all: they change as the tool is used.

Objects that cannot be pictured the same in two processes (open files, sockets, database
connections and cursors, locks, threads, thread-locals, queues, executors, event loops,
generators, loggers, random generators) count by their type and their public plain
attributes (a file's ``name`` and ``mode``, a logger's ``name`` and ``level``), never by
their state. Dates, decimals, UUIDs and addresses count by their text; arrays (anything
with the buffer protocol) by their bytes, apart like other bytes. Other objects without
attributes (C extension types) count by their type only. A function's globals are not
part of its picture. Nothing in a picture depends on ``id()``, memory addresses or hash
order.

Bounds: a cycle is shown as ``{"cycle": <levels up>}``; below depth
:data:`FULL_DEPTH` a subtree is replaced by the SHA-256 of its picture, long strings and
large collections by their length and a digest of their pictures, so the picture stays
small yet still tells apart what differs deep down. The walk stops at depth
:data:`MAX_DEPTH` and after :data:`MAX_NODES` values; what lies beyond counts by type
(and length) only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import decimal
import fractions
import functools
import hashlib
import io
import ipaddress
import json
import logging
import queue
import random
import re
import selectors
import socket
import sqlite3
import subprocess
import threading
import types
import uuid
from collections.abc import Mapping
from enum import Enum
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

FULL_DEPTH = 12
MAX_DEPTH = 48
MAX_NODES = 20_000
MAX_ITEMS = 64
MAX_STR = 512
SECRET = "<secret>"

_SECRET_NAME = re.compile(r"(?i)(secret|token|password|passwd|credential|api_?key|private_?key)")
_SECRET_VALUE = re.compile(
    r"^(sk-|sk_|rk_|pk_live_|ghp_|gho_|ghs_|github_pat_|xox[abprs]-|AKIA|ASIA|AIza|glpat-"
    r"|Bearer |Basic )|-----BEGIN"
)
_RUNTIME_NAME = re.compile(
    r"(?i)^_+(\w+_)?(cache|cached|memo|lock|rlock|mutex|stats|metrics|seen|history"
    r"|started|start_time|created|last_\w+|\w+_at|\w+_time)s?$"
)
_FILE_MODULE = re.compile(r"^controlroom_workflow(_file)?_")
_PLAIN = (str, int, float, bool, Enum, PurePath, type(None))
_OPAQUE: tuple[type, ...] = (
    io.IOBase,
    socket.socket,
    sqlite3.Connection,
    sqlite3.Cursor,
    type(threading.Lock()),
    type(threading.RLock()),
    threading.Condition,
    threading.Event,
    threading.Semaphore,
    threading.Thread,
    threading.local,
    queue.Queue,
    asyncio.Lock,
    asyncio.Event,
    asyncio.Semaphore,
    asyncio.Condition,
    asyncio.Queue,
    concurrent.futures.Executor,
    logging.Logger,
    logging.Handler,
    logging.Manager,
    random.Random,
    selectors.BaseSelector,
    subprocess.Popen,
    asyncio.AbstractEventLoop,
    types.GeneratorType,
    types.CoroutineType,
    types.AsyncGeneratorType,
    types.FrameType,
)
# Values without attributes whose text is what they are (a cut-off date, an amount).
_VALUES: tuple[type, ...] = (
    datetime.date,
    datetime.time,
    datetime.timedelta,
    datetime.tzinfo,
    decimal.Decimal,
    fractions.Fraction,
    uuid.UUID,
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
)
MAX_BUFFER = 64 * 1024 * 1024


def qualified(obj: Any) -> str:
    module = str(getattr(obj, "__module__", None) or "?")
    if _FILE_MODULE.match(module):  # a tools file loaded by path: the path is not identity
        module = "file:" + module.rsplit("_", 1)[0].removeprefix("controlroom_workflow_file_")
    return f"{module}.{getattr(obj, '__qualname__', None) or type(obj).__qualname__}"


def _sha(data: Any) -> str:
    blob = json.dumps(data, sort_keys=True, default=str, allow_nan=True).encode()
    return hashlib.sha256(blob).hexdigest()


def _order(picture: Any) -> str:
    return json.dumps(picture, sort_keys=True, default=str)


def _const(value: Any) -> Any:
    if isinstance(value, types.CodeType):
        return {"code": code_digest(value)}
    if isinstance(value, tuple):
        return [_const(v) for v in value]
    if isinstance(value, frozenset):
        return {"frozenset": sorted((_const(v) for v in value), key=_order)}
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    return [type(value).__name__, repr(value)]  # str, int, float, complex, None, Ellipsis


@functools.lru_cache(maxsize=4096)
def code_digest(code: types.CodeType) -> str:
    """A digest of what a code object does: bytecode, constants (nested code included),
    names and signature; not its file or line numbers. Same for the same source under one
    Python version; a new Python version may compile it differently."""
    return _sha(
        [
            code.co_qualname,
            code.co_argcount,
            code.co_posonlyargcount,
            code.co_kwonlyargcount,
            code.co_flags,
            code.co_code.hex(),
            _const(code.co_consts),
            list(code.co_names),
            list(code.co_varnames),
            list(code.co_freevars),
            list(code.co_cellvars),
        ]
    )


def _slot_names(cls: type) -> list[str]:
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names += [slots] if isinstance(slots, str) else list(slots)
    return [n for n in dict.fromkeys(names) if n not in ("__dict__", "__weakref__")]


def _class_values(cls: type) -> dict[str, Any]:
    """Plain values set on the object's classes (a class per tenant is a configuration)."""
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[:-1]):  # without `object`; subclasses win
        for key, value in vars(klass).items():
            if not key.startswith("__") and isinstance(value, _PLAIN):
                found[key] = value
    return found


def _attributes(value: Any) -> dict[str, Any]:
    """An object's own attributes: ``__dict__``, slots and, for a pydantic model, its
    fields, extras and private attributes; dunder names left out."""
    fields: dict[str, Any] = {}
    if isinstance(value, BaseModel):
        fields |= {k: getattr(value, k, None) for k in type(value).model_fields}
        fields |= dict(value.__pydantic_extra__ or {})
        fields |= dict(value.__pydantic_private__ or {})
    else:
        with contextlib.suppress(TypeError):  # no __dict__
            fields |= dict(vars(value))
    for name in _slot_names(type(value)):
        try:
            fields[name] = getattr(value, name)
        except AttributeError:  # an unset slot
            continue
    return {k: v for k, v in fields.items() if not k.startswith("__")}


class Picture:
    """One walk over what a tool is bound to; :attr:`secrets` collects what is pictured
    apart (see the module's docstring)."""

    def __init__(self) -> None:
        self.secrets: list[Any] = []
        self._stack: list[int] = []  # ids of the objects being pictured: cycles only
        self._nodes = 0

    def apart(self, value: Any, depth: int) -> None:
        self.secrets.append(self.of(value, None, depth, secret=True))

    def of(self, value: Any, name: str | None, depth: int, *, secret: bool = False) -> Any:
        if isinstance(value, SecretStr | SecretBytes):
            value = value.get_secret_value()
            if not secret:
                self.apart(value, depth)
                return SECRET
        if not secret and (
            (name is not None and _SECRET_NAME.search(name))
            or (isinstance(value, str) and _SECRET_VALUE.search(value[:MAX_STR]))
        ):
            self.apart(value, depth)
            return SECRET
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            if len(value) <= MAX_STR:
                return value
            return {"str": hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()}
        if isinstance(value, complex):
            return {"complex": [value.real, value.imag]}
        if isinstance(value, Enum):
            return {"enum": f"{qualified(type(value))}.{value.name}"}
        if isinstance(value, PurePath):
            return {"path": str(value)}
        if isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
            if secret:
                return {"bytes": hashlib.sha256(data).hexdigest()}
            self.apart(data, depth)
            return {"bytes": len(data)}
        if id(value) in self._stack:
            return {"cycle": len(self._stack) - self._stack.index(id(value))}
        self._nodes += 1
        if depth >= MAX_DEPTH or self._nodes > MAX_NODES:
            return self._cut(value)
        self._stack.append(id(value))
        try:
            picture = self._structure(value, depth + 1, secret)
        finally:
            self._stack.pop()
        if depth == FULL_DEPTH and isinstance(picture, dict | list):
            return {"type": qualified(type(value)), "digest": _sha(picture)}
        return picture

    def _cut(self, value: Any) -> Any:
        cut: dict[str, Any] = {"type": qualified(type(value)), "cut": True}
        with contextlib.suppress(Exception):  # anything may be unsized or raise
            cut["len"] = len(value)
        return cut

    def _items(self, values: Any, nxt: int, secret: bool, *, ordered: bool) -> Any:
        items = [self.of(v, None, nxt, secret=secret) for v in values]
        if not ordered:
            items.sort(key=_order)
        if len(items) <= MAX_ITEMS:
            return items
        return {"len": len(items), "digest": _sha(items)}

    def _structure(self, value: Any, nxt: int, secret: bool) -> Any:
        if isinstance(value, list | tuple):
            return self._items(value, nxt, secret, ordered=True)
        if isinstance(value, set | frozenset):
            return {"set": self._items(value, nxt, secret, ordered=False)}
        if isinstance(value, Mapping):
            return self._mapping(value, nxt, secret)
        if isinstance(value, types.FunctionType):
            return self._function(value, nxt, secret)
        if isinstance(value, types.MethodType):
            return {
                "method": self.of(value.__func__, None, nxt, secret=secret),
                "self": self.of(value.__self__, None, nxt, secret=secret),
            }
        if isinstance(value, functools.partial):
            return {
                "partial": self.of(value.func, None, nxt, secret=secret),
                "args": self.of(value.args, None, nxt, secret=secret),
                "keywords": self.of(value.keywords, None, nxt, secret=secret),
            }
        if isinstance(value, types.BuiltinFunctionType | types.BuiltinMethodType):
            bound = getattr(value, "__self__", None)
            if bound is None or isinstance(bound, types.ModuleType):
                return {"object": qualified(value)}
            return {"builtin": value.__name__, "self": self.of(bound, None, nxt, secret=secret)}
        if isinstance(value, type | types.ModuleType):
            return {"object": qualified(value)}
        if isinstance(value, BaseModel) and callable(getattr(type(value), "_picture", None)):
            inner = value._picture(self, nxt)  # type: ignore[attr-defined]
            return {"tool": getattr(value, "name", None), "identity": inner}
        if isinstance(value, _VALUES):
            return {"type": qualified(type(value)), "value": str(value)}
        if isinstance(value, _OPAQUE):
            return self._opaque(value, nxt, secret)
        with contextlib.suppress(TypeError, ValueError, BufferError):  # an array's data
            view = memoryview(value)
            if view.nbytes <= MAX_BUFFER:
                data = {"buffer": self.of(view.tobytes(), None, nxt, secret=secret)}
                return {"type": qualified(type(value)), **data, "shape": list(view.shape or ())}
        return self._object(value, nxt, secret)

    def _mapping(self, value: Mapping[Any, Any], nxt: int, secret: bool) -> Any:
        try:
            entries = list(value.items())
        except Exception:  # a mapping that cannot be listed
            return self._cut(value)
        if all(isinstance(k, str) for k, _ in entries):
            pairs = sorted(entries, key=lambda kv: kv[0])
            shown: Any = {k: self.of(v, k, nxt, secret=secret) for k, v in pairs}
            if len(pairs) > MAX_ITEMS:
                shown = {"len": len(pairs), "digest": _sha(shown)}
        else:
            keyed = [
                [self.of(k, None, nxt, secret=secret), self.of(v, None, nxt, secret=secret)]
                for k, v in entries
            ]
            keyed.sort(key=lambda kv: _order(kv[0]))
            shown = {"pairs": keyed if len(keyed) <= MAX_ITEMS else _sha(keyed)}
        if type(value) is dict:
            return shown
        return {"type": qualified(type(value)), "items": shown}

    def _function(self, value: types.FunctionType, nxt: int, secret: bool) -> Any:
        code = value.__code__
        cells: dict[str, Any] = {}
        for var, cell in zip(code.co_freevars, value.__closure__ or (), strict=False):
            try:
                contents = cell.cell_contents
            except ValueError:  # an empty cell
                cells[var] = None
                continue
            cells[var] = self.of(contents, var, nxt, secret=secret)
        return {
            "function": qualified(value),
            "code": code_digest(code),
            "closure": cells or None,
            "defaults": self.of(value.__defaults__, None, nxt, secret=secret),
            "kwdefaults": self.of(value.__kwdefaults__, None, nxt, secret=secret),
            "wraps": self.of(getattr(value, "__wrapped__", None), None, nxt, secret=secret),
        }

    def _opaque(self, value: Any, nxt: int, secret: bool) -> Any:
        shown = {
            k: self.of(v, k, nxt, secret=secret)
            for k, v in sorted(_attributes(value).items())
            if not k.startswith("_") and isinstance(v, _PLAIN)
        }
        if isinstance(value, io.IOBase):
            for attr in ("name", "mode"):
                found = getattr(value, attr, None)
                if isinstance(found, str):
                    shown[attr] = self.of(found, attr, nxt, secret=secret)
        return {"type": qualified(type(value)), "attributes": shown or None}

    def _object(self, value: Any, nxt: int, secret: bool) -> Any:
        shown: dict[str, Any] = {}
        for key, item in sorted(_attributes(value).items()):
            if not key.startswith("_"):
                shown[key] = self.of(item, key, nxt, secret=secret)
            elif _RUNTIME_NAME.match(key):
                continue  # run-time state: it changes as the tool is used
            elif secret or isinstance(item, _PLAIN):
                shown[key] = self.of(item, key, nxt, secret=secret)
            else:  # a private object, collection or callable: it may hold a secret
                self.apart(item, nxt)
                shown[key] = {"private": qualified(type(item))}
        call = next((vars(k)["__call__"] for k in type(value).__mro__ if "__call__" in vars(k)), 0)
        wrapped = getattr(value, "__wrapped__", None) if callable(value) else None
        classes = {
            k: self.of(v, k, nxt, secret=secret) for k, v in _class_values(type(value)).items()
        }
        return {
            "type": qualified(type(value)),
            "attributes": shown or None,
            "class": classes or None,
            "call": code_digest(call.__code__) if isinstance(call, types.FunctionType) else None,
            "wraps": self.of(wrapped, None, nxt, secret=secret) if wrapped is not None else None,
        }
