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

import copy
import functools
import inspect
import json
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from controlroom.errors import ToolArgumentsError
from controlroom.identity import Principal
from controlroom.tools.picture import Picture


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
        clients) share a name and a schema; what they run and what they are bound to
        differs. This is a picture of the function (its qualified name and its code) and of
        everything it is bound to: closure variables, defaults, a bound method's object, a
        ``functools.partial``'s arguments, callable attributes, nested objects (see
        :mod:`controlroom.tools.picture` for what counts and how it is bounded). Secret
        values and private objects are left out, replaced by markers (the identity is
        hashed into the workflow's digest, which the audit records; see
        :meth:`secret_identity`); objects that differ in every process (open files,
        sockets, database connections, locks) count by their type and public plain
        attributes. Stable across processes for the same configuration and Python
        version. Taken once per tool, on first use: treat a tool as frozen once built.
        """
        return copy.deepcopy(self._pictured()[0])

    def secret_identity(self) -> list[Any]:
        """The secret values this tool is bound to (API keys, tokens, ``SecretStr``, bytes,
        private objects and collections): what :meth:`identity` leaves out. Never recorded
        or hashed as such: the runner keeps an HMAC of them under a per-project key in the
        store, so a run resumes only with a tool holding the same credentials (an account
        held in an API key is identity). Taken with :meth:`identity`, once per tool."""
        return copy.deepcopy(self._pictured()[1])

    def _pictured(self) -> tuple[dict[str, Any], list[Any]]:
        # Once per tool object: a private collection that fills as the tool is used (a
        # token cache) must not make the same tool look like another within a process.
        found = _PICTURED.get(id(self))
        if found is None or found[0]() is not self:
            picture = Picture()
            public = self._picture(picture)
            found = (weakref.ref(self), public, picture.secrets)
            _PICTURED[id(self)] = found
            weakref.finalize(self, _PICTURED.pop, id(self), None)
        return found[1], found[2]

    def _picture(self, picture: Picture, depth: int = 0) -> dict[str, Any]:
        return {
            "func": picture.of(self.func, "func", depth),
            "resource_loader": picture.of(self.resource_loader, "resource_loader", depth),
            "context_facts": picture.of(self.context_facts, "context_facts", depth),
        }

    def invoke(self, args: BaseModel, ctx: ToolContext) -> Any:
        kwargs = {name: getattr(args, name) for name in type(args).model_fields}
        if self.wants_context:
            return self.func(ctx=ctx, **kwargs)
        return self.func(**kwargs)


_PICTURED: dict[int, tuple[weakref.ref[Tool], dict[str, Any], list[Any]]] = {}


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
