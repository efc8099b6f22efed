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
import inspect
import json
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path, PurePath
from typing import Any, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

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
        values it is bound to (closure variables, defaults, a bound method's object and a
        ``functools.partial``'s arguments): strings, numbers, enums, paths, and the public
        plain attributes of objects. Other objects count by their type only (a database
        handle is not the same in two processes), and values under secret-looking names
        are left out (the identity is hashed into the workflow's digest, which the audit
        records). Stable across processes for the same configuration.
        """
        return {
            "func": _stable(self.func, "func", 0),
            "resource_loader": _stable(self.resource_loader, "resource_loader", 0),
            "context_facts": _stable(self.context_facts, "context_facts", 0),
        }

    def invoke(self, args: BaseModel, ctx: ToolContext) -> Any:
        kwargs = {name: getattr(args, name) for name in type(args).model_fields}
        if self.wants_context:
            return self.func(ctx=ctx, **kwargs)
        return self.func(**kwargs)


_IDENTITY_DEPTH = 4
_SECRET_NAME = re.compile(r"(?i)(secret|token|password|passwd|credential|api_?key|private_?key)")
_FILE_MODULE = re.compile(r"^controlroom_workflow(_file)?_")


def _qualified(obj: Any) -> str:
    module = str(getattr(obj, "__module__", None) or "?")
    if _FILE_MODULE.match(module):  # a tools file loaded by path: the path is not identity
        module = "file:" + module.rsplit("_", 1)[0].removeprefix("controlroom_workflow_file_")
    return f"{module}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _stable(value: Any, name: str | None, depth: int) -> Any:
    """A JSON-able, process-independent picture of what ``value`` is configured with."""
    if name is not None and _SECRET_NAME.search(name):
        return "<secret>"
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, bytes):
        return {"bytes": len(value)}
    if depth >= _IDENTITY_DEPTH:
        return {"type": _qualified(type(value))}
    nxt = depth + 1
    if isinstance(value, list | tuple | set | frozenset):
        items = [_stable(v, None, nxt) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if isinstance(value, Mapping):
        return {str(k): _stable(v, str(k), nxt) for k, v in sorted(value.items(), key=repr)}
    if isinstance(value, types.FunctionType):
        code = value.__code__
        cells: dict[str, Any] = {}
        for var, cell in zip(code.co_freevars, value.__closure__ or (), strict=False):
            try:
                cells[var] = _stable(cell.cell_contents, var, nxt)
            except ValueError:  # an empty cell
                cells[var] = None
        return {
            "function": _qualified(value),
            "closure": cells or None,
            "defaults": _stable(value.__defaults__, None, nxt),
            "kwdefaults": _stable(value.__kwdefaults__, None, nxt),
        }
    if isinstance(value, types.MethodType):
        return {"method": _qualified(value.__func__), "self": _stable(value.__self__, None, nxt)}
    if isinstance(value, functools.partial):
        return {
            "partial": _stable(value.func, None, nxt),
            "args": _stable(value.args, None, nxt),
            "keywords": _stable(value.keywords, None, nxt),
        }
    if isinstance(value, type | types.ModuleType | types.BuiltinFunctionType):
        return {"object": _qualified(value)}
    if isinstance(value, Tool):
        return {"tool": value.name, "identity": value.identity() if depth < 2 else None}
    if isinstance(value, BaseModel):
        fields = {k: getattr(value, k, None) for k in type(value).model_fields}
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
    else:
        fields = {k: v for k, v in getattr(value, "__dict__", {}).items() if not k.startswith("_")}
    plain = {
        k: _stable(v, k, nxt)
        for k, v in sorted(fields.items())
        if not callable(v) or isinstance(v, types.FunctionType | functools.partial)
    }
    return {"type": _qualified(type(value)), "attributes": plain or None}


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
