"""Tool specs: what a tool is called, what it takes, what it does to the world.

A tool is plain data plus a function. Its argument model (pydantic) is what the model
sees as JSON schema and what every call is validated against before it runs. Its
``effect`` says whether it only reads (``read``), changes something that can be undone
(``write``) or cannot be undone (``irreversible``). Side-effecting tools receive an
idempotency key in their :class:`ToolContext` and must use it so that a resumed run never
repeats an effect.

What the policy gate sees of a call is declared here too: ``resource`` is the Cedar entity
type the tool acts on and ``resource_id`` the argument that holds its id (``Invoice`` and
``invoice_id`` give ``Invoice::"INV-1001"``; without them the resource is
``Tool::"<tool name>"``); ``resource_loader`` returns the resource's attributes for policies
(an invoice's amount due, an employee's managers) and raises :class:`LookupError` when
there is no such resource; ``context_facts`` derives extra context from the arguments (for
example the domains of a mail's recipients).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path, PurePath
from typing import Any, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, SecretBytes, SecretStr, ValidationError, create_model

from controlroom.errors import ToolArgumentsError
from controlroom.identity import Principal


class Effect(StrEnum):
    """What a tool does to the world."""

    READ = "read"
    WRITE = "write"
    IRREVERSIBLE = "irreversible"


@dataclass(frozen=True)
class ToolContext:
    """What a tool is told about the call, from the session, never from the model."""

    principal: Principal
    run_id: str
    call_id: str
    idempotency_key: str
    home: Path


ToolFunction = Callable[..., Any]
ResourceLoader = Callable[[str], Mapping[str, Any]]
ContextFacts = Callable[[Mapping[str, Any]], Mapping[str, Any]]
DEFAULT_RESOURCE_TYPE = "Tool"


class Tool(BaseModel):
    """A controlled tool: name, description, argument model, effect and function."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    name: str
    description: str
    args_model: type[BaseModel]
    effect: Effect = Effect.READ
    resource: str | None = None
    resource_id: str | None = None
    resource_loader: ResourceLoader | None = None
    context_facts: ContextFacts | None = None
    requires_approval: bool = False
    func: ToolFunction
    wants_context: bool = False

    @property
    def needs_approval_by_default(self) -> bool:
        return self.requires_approval or self.effect is Effect.IRREVERSIBLE

    def resource_ref(self, args: Mapping[str, Any]) -> tuple[str, str]:
        """The (entity type, id) of what a call with ``args`` acts on."""
        kind = self.resource or DEFAULT_RESOURCE_TYPE
        if self.resource_id is not None and args.get(self.resource_id) is not None:
            return kind, str(args[self.resource_id])
        return kind, self.name

    def json_schema(self) -> dict[str, Any]:
        """The OpenAI-style function schema that a chat model is given."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": _parameters_schema(self.args_model),
            },
        }

    def validate_args(self, args: Mapping[str, Any]) -> BaseModel:
        try:
            return self.args_model.model_validate(dict(args))
        except ValidationError as exc:
            problems = "; ".join(
                f"`{'.'.join(str(p) for p in e['loc']) or '(arguments)'}`: {e['msg']}"
                for e in exc.errors()
            )
            raise ToolArgumentsError(
                f"Arguments for tool '{self.name}' do not match its schema: {problems}. "
                f"Expected: {self.signature()}."
            ) from None

    def signature(self) -> str:
        """The arguments in one line, e.g. ``invoice: string, amount: number (optional)``."""
        schema = self.args_model.model_json_schema()
        required = set(schema.get("required", []))
        parts = []
        for name, prop in schema.get("properties", {}).items():
            kind = (
                prop.get("type")
                or " | ".join(str(p.get("type", "?")) for p in prop.get("anyOf", []))
                or "any"
            )
            parts.append(f"{name}: {kind}" + ("" if name in required else " (optional)"))
        return ", ".join(parts) or "no arguments"

    def identity(self) -> dict[str, Any]:
        """What tells this tool apart from another with the same name and schema.

        Two tools built by one factory (closures over different accounts, tenants or
        clients) share a name, a schema and a function's code; what they are bound to
        differs. This is the function's qualified name and, a few levels deep, the plain
        values they are bound to (closure variables, defaults, a bound method's object and a
        ``functools.partial``'s arguments): strings, numbers, enums, paths; an object's
        public attributes, its private ones that hold plain values, its slots and the plain
        values of its classes. Other objects count by their type only (a database handle
        is not the same in two processes), and secret values are left out (the identity is
        hashed into the workflow's digest, which the audit records; see
        :meth:`secret_identity`). Stable across processes for the same configuration.
        """
        return self._picture(_Picture())

    def secret_identity(self) -> list[Any]:
        """The secret values this tool is bound to (API keys, tokens, ``SecretStr``): what
        :meth:`identity` leaves out. Never recorded or hashed as such: the runner keeps an
        HMAC of them under a per-project key in the store, so a run resumes only with a
        tool holding the same credentials (an account held in an API key is identity)."""
        picture = _Picture()
        self._picture(picture)
        return picture.secrets

    def _picture(self, picture: _Picture) -> dict[str, Any]:
        return {
            "func": picture.of(self.func, "func", 0),
            "resource_loader": picture.of(self.resource_loader, "resource_loader", 0),
            "context_facts": picture.of(self.context_facts, "context_facts", 0),
        }

    def invoke(self, args: BaseModel, ctx: ToolContext) -> Any:
        kwargs = {name: getattr(args, name) for name in type(args).model_fields}
        if self.wants_context:
            return self.func(ctx=ctx, **kwargs)
        return self.func(**kwargs)


_IDENTITY_DEPTH = 4
_SECRET_NAME = re.compile(r"(?i)(secret|token|password|passwd|credential|api_?key|private_?key)")
_FILE_MODULE = re.compile(r"^controlroom_workflow(_file)?_")
_PLAIN = (str, int, bool, Enum, PurePath)


def _qualified(obj: Any) -> str:
    module = str(getattr(obj, "__module__", None) or "?")
    if _FILE_MODULE.match(module):  # a tools file loaded by path: the path is not identity
        module = "file:" + module.rsplit("_", 1)[0].removeprefix("controlroom_workflow_file_")
    return f"{module}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _slot_names(cls: type) -> list[str]:
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names += [slots] if isinstance(slots, str) else list(slots)
    return [n for n in names if n not in ("__dict__", "__weakref__")]


def _class_values(cls: type) -> dict[str, Any]:
    """Plain values set on the object's classes (a class per tenant is a configuration)."""
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[:-1]):  # without `object`; subclasses win
        for key, value in vars(klass).items():
            if not key.startswith("__") and isinstance(value, _PLAIN):
                found[key] = value
    return found


def _own_values(value: Any) -> dict[str, Any]:
    """An object's attributes: public ones of any kind; private ones (``_name``) when they
    hold plain values (a ``_cache`` dict or a ``_started`` time would make the identity
    of one configuration differ between processes)."""
    fields = dict(getattr(value, "__dict__", {}))
    for name in _slot_names(type(value)):
        if hasattr(value, name):
            fields[name] = getattr(value, name)
    return {
        k: v
        for k, v in fields.items()
        if not k.startswith("__") and (not k.startswith("_") or isinstance(v, _PLAIN))
    }


class _Picture:
    """A JSON-able, process-independent picture of what a tool is configured with.

    Secret values (``SecretStr``, values under secret-looking names) are left out of the
    picture, which is hashed into the workflow's digest and so reaches the audit; they are
    collected apart, for :meth:`Tool.secret_identity`."""

    def __init__(self) -> None:
        self.secrets: list[Any] = []

    def of(self, value: Any, name: str | None, depth: int, *, secret: bool = False) -> Any:
        if isinstance(value, SecretStr | SecretBytes):
            value = value.get_secret_value()
            if not secret:
                self.secrets.append(_Picture().of(value, None, depth, secret=True))
                return "<secret>"
        if not secret and name is not None and _SECRET_NAME.search(name):
            self.secrets.append(_Picture().of(value, None, depth, secret=True))
            return "<secret>"
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, PurePath):
            return str(value)
        if isinstance(value, bytes):
            return {"bytes": hashlib.sha256(value).hexdigest() if secret else len(value)}
        if depth >= _IDENTITY_DEPTH:
            return {"type": _qualified(type(value))}
        nxt = depth + 1
        if isinstance(value, list | tuple | set | frozenset):
            items = [self.of(v, None, nxt, secret=secret) for v in value]
            return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
        if isinstance(value, Mapping):
            return {
                str(k): self.of(v, str(k), nxt, secret=secret)
                for k, v in sorted(value.items(), key=repr)
            }
        if isinstance(value, types.FunctionType):
            code = value.__code__
            cells: dict[str, Any] = {}
            for var, cell in zip(code.co_freevars, value.__closure__ or (), strict=False):
                try:
                    cells[var] = self.of(cell.cell_contents, var, nxt, secret=secret)
                except ValueError:  # an empty cell
                    cells[var] = None
            return {
                "function": _qualified(value),
                "closure": cells or None,
                "defaults": self.of(value.__defaults__, None, nxt, secret=secret),
                "kwdefaults": self.of(value.__kwdefaults__, None, nxt, secret=secret),
            }
        if isinstance(value, types.MethodType):
            return {
                "method": _qualified(value.__func__),
                "self": self.of(value.__self__, None, nxt, secret=secret),
            }
        if isinstance(value, functools.partial):
            return {
                "partial": self.of(value.func, None, nxt, secret=secret),
                "args": self.of(value.args, None, nxt, secret=secret),
                "keywords": self.of(value.keywords, None, nxt, secret=secret),
            }
        if isinstance(value, type | types.ModuleType | types.BuiltinFunctionType):
            return {"object": _qualified(value)}
        if isinstance(value, Tool):
            inner = value._picture(self) if depth < 2 else None
            return {"tool": value.name, "identity": inner}
        if isinstance(value, BaseModel):
            fields = {k: getattr(value, k, None) for k in type(value).model_fields}
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
        else:
            fields = _own_values(value)
        plain = {
            k: self.of(v, k, nxt, secret=secret)
            for k, v in sorted(fields.items())
            if not callable(v) or isinstance(v, types.FunctionType | functools.partial)
        }
        shared = {
            k: self.of(v, k, nxt, secret=secret) for k, v in _class_values(type(value)).items()
        }
        return {
            "type": _qualified(type(value)),
            "attributes": plain or None,
            "class": shared or None,
        }


@functools.cache
def _cached_schema(args_model: type[BaseModel]) -> str:
    return json.dumps(args_model.model_json_schema())


def _parameters_schema(args_model: type[BaseModel]) -> dict[str, Any]:
    """The argument model's JSON schema, computed once per model (a fresh copy each call)."""
    schema: dict[str, Any] = json.loads(_cached_schema(args_model))
    return schema


def _args_model_for(func: ToolFunction, name: str) -> tuple[type[BaseModel], bool]:
    hints = get_type_hints(func, include_extras=True)
    fields: dict[str, Any] = {}
    wants_context = False
    for param in inspect.signature(func).parameters.values():
        if param.name == "ctx" or hints.get(param.name) is ToolContext:
            if param.name != "ctx":
                raise TypeError(f"tool {name}: the ToolContext parameter must be named `ctx`")
            wants_context = True
            continue
        if param.name not in hints:
            raise TypeError(f"tool {name}: parameter `{param.name}` needs a type annotation")
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (hints[param.name], default)
    model_name = "".join(part.capitalize() for part in name.split("_")) + "Args"
    model = create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)
    return model, wants_context


@overload
def tool(
    func: ToolFunction,
    *,
    name: str | None = None,
    description: str | None = None,
    effect: Effect | str = Effect.READ,
    resource: str | None = None,
    resource_id: str | None = None,
    resource_loader: ResourceLoader | None = None,
    context_facts: ContextFacts | None = None,
    requires_approval: bool = False,
) -> Tool: ...


@overload
def tool(
    func: None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    effect: Effect | str = Effect.READ,
    resource: str | None = None,
    resource_id: str | None = None,
    resource_loader: ResourceLoader | None = None,
    context_facts: ContextFacts | None = None,
    requires_approval: bool = False,
) -> Callable[[ToolFunction], Tool]: ...


def tool(
    func: ToolFunction | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    effect: Effect | str = Effect.READ,
    resource: str | None = None,
    resource_id: str | None = None,
    resource_loader: ResourceLoader | None = None,
    context_facts: ContextFacts | None = None,
    requires_approval: bool = False,
) -> Tool | Callable[[ToolFunction], Tool]:
    """Declare a tool from a typed function; its docstring is the description.

    >>> @tool(effect="irreversible", resource="Invoice", resource_id="invoice_id")
    ... def pay_invoice(invoice_id: str, amount: float, ctx: ToolContext) -> dict: ...

    Arguments may carry pydantic constraints (``Annotated[float, Field(gt=0)]``); they are
    part of the schema the model sees and of the validation every call passes.
    """

    def wrap(f: ToolFunction) -> Tool:
        tool_name = name or f.__name__
        args_model, wants_context = _args_model_for(f, tool_name)
        if resource_id is not None and resource_id not in args_model.model_fields:
            raise TypeError(
                f"tool {tool_name}: resource_id `{resource_id}` is not one of its arguments "
                f"({', '.join(args_model.model_fields) or 'none'})"
            )
        return Tool(
            name=tool_name,
            description=(description or inspect.getdoc(f) or tool_name).strip(),
            args_model=args_model,
            effect=Effect(effect),
            resource=resource,
            resource_id=resource_id,
            resource_loader=resource_loader,
            context_facts=context_facts,
            requires_approval=requires_approval,
            func=f,
            wants_context=wants_context,
        )

    if func is not None:
        return wrap(func)
    return wrap
