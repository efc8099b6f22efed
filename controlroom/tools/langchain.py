"""Wrap any LangChain ``BaseTool`` as a controlled :class:`~controlroom.tools.spec.Tool`.

The wrapped tool keeps the LangChain tool's name, description and argument schema (extra
arguments are refused, like every controlled tool's) and gains what LangChain tools do not
declare: an effect, a resource for the policy gate and approval rules. Calls go through
``BaseTool.invoke`` with the validated arguments.

>>> from langchain_core.tools import tool as lc_tool
>>> @lc_tool
... def weather(city: str) -> str:
...     "Today's weather in a city."
...     return "sunny"
>>> controlled = from_langchain_tool(weather, effect="read")
"""

from __future__ import annotations

from typing import Any

from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, create_model

from controlroom.tools.spec import ContextFacts, Effect, ResourceLoader, Tool

_JSON_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list[Any],
    "object": dict[str, Any],
}


def _args_model(base: BaseTool) -> type[BaseModel]:
    schema = base.tool_call_schema
    name = "".join(part.capitalize() for part in base.name.replace("-", "_").split("_")) + "Args"
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        config = ConfigDict(**{**schema.model_config, "extra": "forbid"})
        return type(name, (schema,), {"model_config": config, "__module__": __name__})
    props: dict[str, Any] = dict(schema.get("properties", {})) if isinstance(schema, dict) else {}
    required = set(schema.get("required", [])) if isinstance(schema, dict) else set()
    fields: dict[str, Any] = {}
    for field, prop in props.items():
        kind = _JSON_TYPES.get(str(prop.get("type")), Any)
        fields[field] = (kind, ...) if field in required else (kind | None, prop.get("default"))
    model: type[BaseModel] = create_model(name, __config__=ConfigDict(extra="forbid"), **fields)
    return model


def from_langchain_tool(
    base: BaseTool,
    *,
    effect: Effect | str = Effect.READ,
    name: str | None = None,
    resource: str | None = None,
    resource_id: str | None = None,
    resource_loader: ResourceLoader | None = None,
    context_facts: ContextFacts | None = None,
    requires_approval: bool = False,
) -> Tool:
    """A controlled tool that runs the LangChain tool ``base``."""
    args_model = _args_model(base)
    if resource_id is not None and resource_id not in args_model.model_fields:
        raise TypeError(
            f"tool {base.name}: resource_id `{resource_id}` is not one of its arguments"
        )

    def run(**kwargs: Any) -> Any:
        return base.invoke({k: v for k, v in kwargs.items() if v is not None})

    run.__name__ = base.name
    return Tool(
        name=name or base.name,
        description=(base.description or base.name).strip(),
        args_model=args_model,
        effect=Effect(effect),
        resource=resource,
        resource_id=resource_id,
        resource_loader=resource_loader,
        context_facts=context_facts,
        requires_approval=requires_approval,
        func=run,
        wants_context=False,
    )
