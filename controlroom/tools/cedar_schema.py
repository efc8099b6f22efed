"""Draft the ``actions`` of a Cedar JSON schema from tool specs.

Each tool becomes ``Action::"<name>"`` applying to ``User`` principals and the tool's
resource type, with a context record of its arguments (JSON schema types mapped to Cedar:
string → String, integer → Long, number → decimal, boolean → Boolean, array → Set,
object → Record; arguments that may be None are not required) plus ``effect``. Facts that a
tool's ``context_facts`` adds are not known from its signature: declare them by hand.
``controlroom policy schema`` prints the draft for a workflow's tools.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from controlroom.tools.spec import DEFAULT_RESOURCE_TYPE, Tool

_SIMPLE = {"string": "String", "integer": "Long", "boolean": "Boolean"}


def _cedar_type(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any] | None:
    if "$ref" in prop:
        return _cedar_type(defs.get(str(prop["$ref"]).rsplit("/", 1)[-1], {}), defs)
    options = [p for p in prop.get("anyOf", []) if p.get("type") != "null"]
    if options:
        return _cedar_type(options[0], defs) if len(options) == 1 else None
    kind = prop.get("type")
    if kind is None and "enum" in prop:
        kind = "string" if all(isinstance(v, str) for v in prop["enum"]) else None
    if kind in _SIMPLE:
        return {"type": _SIMPLE[str(kind)]}
    if kind == "number":
        return {"type": "Extension", "name": "decimal"}
    if kind == "array":
        element = _cedar_type(prop.get("items", {}), defs)
        return {"type": "Set", "element": element} if element else None
    if kind == "object":
        return _record(prop, defs)
    return None


def _record(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    required = set(schema.get("required", []))
    attributes: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        cedar = _cedar_type(prop, defs)
        if cedar is None:
            continue  # no Cedar equivalent (a union of several types): policies cannot read it
        nullable = any(p.get("type") == "null" for p in prop.get("anyOf", []))
        # validated arguments always carry their defaults; only None is left out
        if nullable or (name not in required and "default" not in prop):
            cedar = {**cedar, "required": False}
        attributes[name] = cedar
    return {"type": "Record", "attributes": attributes}


def action_schema(tool: Tool) -> dict[str, Any]:
    """The Cedar JSON schema declaration of ``Action::"<tool.name>"``."""
    params = tool.json_schema()["function"]["parameters"]
    context = _record(params, params.get("$defs", {}))
    context["attributes"]["effect"] = {"type": "String"}
    return {
        "appliesTo": {
            "principalTypes": ["User"],
            "resourceTypes": [tool.resource or DEFAULT_RESOURCE_TYPE],
            "context": context,
        }
    }


def draft_schema(tools: Iterable[Tool]) -> dict[str, Any]:
    """A starting schema for ``tools``: User, Role, their resource types and actions."""
    tools = list(tools)
    entity_types: dict[str, Any] = {
        "Role": {},
        "User": {
            "memberOfTypes": ["Role"],
            "shape": {"type": "Record", "attributes": {}},
        },
    }
    for t in tools:
        entity_types.setdefault(t.resource or DEFAULT_RESOURCE_TYPE, {})
    return {
        "": {
            "entityTypes": entity_types,
            "actions": {t.name: action_schema(t) for t in sorted(tools, key=lambda t: t.name)},
        }
    }
