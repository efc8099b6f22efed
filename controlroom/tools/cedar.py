"""Python values as Cedar values, typed by the Cedar schema where it declares a type.

Cedar has no floats and no implicit conversions, so the gate converts what it hands to
the policies: a directory attribute, a tool argument, a resource attribute. Where the
schema (Cedar's JSON schema format) declares the attribute's type, the value is converted
to that type (``5000`` becomes ``decimal("5000.0000")`` for a ``decimal`` attribute, a user
id becomes ``User::"bob"`` for an ``Entity`` attribute); where it does not, by convention:
``bool`` → Bool, ``int`` → Long, ``float`` → decimal, ``str`` → String, lists → Set,
mappings → Record. A value that cannot be converted raises :class:`CedarValueError`, and
the gate denies the call: it never hands the policies a value of the wrong type.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

CedarType = Mapping[str, Any]

LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
DECIMAL_LIMIT = Decimal("922337203685477.5807")
PRIMITIVES = {"String": "String", "Long": "Long", "Bool": "Boolean", "Boolean": "Boolean"}
EXTENSIONS = {"decimal", "ipaddr", "datetime", "duration"}
_EXTENSION_FN = {
    "decimal": "decimal",
    "ipaddr": "ip",
    "datetime": "datetime",
    "duration": "duration",
}


class CedarValueError(ValueError):
    """A value that cannot be handed to Cedar as the type the schema declares."""


class CedarSchema:
    """What the gate needs from a Cedar JSON schema (default namespace only).

    ``entity_attrs[type][attr]`` and ``action_context[action][attr]`` are resolved type
    nodes; ``action_groups[action]`` lists the action groups it is a member of.
    """

    def __init__(self, raw: Mapping[str, Any]) -> None:
        unknown = [name for name in raw if name != ""]
        if unknown:
            raise ValueError(
                f"controlroom reads the default (empty) namespace only; found namespace(s) "
                f"{', '.join(repr(n) for n in unknown)}"
            )
        ns: Mapping[str, Any] = raw.get("", {})
        self.common: Mapping[str, Any] = ns.get("commonTypes", {})
        self.entity_attrs: dict[str, dict[str, CedarType]] = {}
        for name, decl in ns.get("entityTypes", {}).items():
            shape = decl.get("shape")
            self.entity_attrs[name] = self._attributes(shape) if shape else {}
        self.action_context: dict[str, dict[str, CedarType]] = {}
        self.action_groups: dict[str, tuple[str, ...]] = {}
        for name, decl in ns.get("actions", {}).items():
            context = (decl.get("appliesTo") or {}).get("context")
            self.action_context[name] = self._attributes(context) if context else {}
            self.action_groups[name] = tuple(
                ref["id"]
                for ref in decl.get("memberOf") or []
                if str(ref.get("type", "Action")).endswith("Action")
            )

    @property
    def actions(self) -> set[str]:
        return set(self.action_context)

    def members_of(self, group: str) -> set[str]:
        """Every action in ``group``, directly or through other groups, and the group itself."""
        found = {group}
        changed = True
        while changed:
            changed = False
            for action, groups in self.action_groups.items():
                if action not in found and found.intersection(groups):
                    found.add(action)
                    changed = True
        return found

    def resolve(self, node: CedarType) -> CedarType:
        """Follow common-type references to a concrete type node."""
        for _ in range(32):
            kind = node.get("type")
            name = node.get("name") if kind == "EntityOrCommon" else kind
            name = str(name).removeprefix("__cedar::")
            if name in self.common:
                node = self.common[name]
                continue
            if kind == "EntityOrCommon":
                if name in PRIMITIVES:
                    return {"type": PRIMITIVES[name]}
                if name in EXTENSIONS:
                    return {"type": "Extension", "name": name}
                return {"type": "Entity", "name": name}
            if kind in PRIMITIVES:
                return {**node, "type": PRIMITIVES[kind]}
            return node
        raise ValueError(f"common type reference loops: {node}")

    def _attributes(self, record: CedarType) -> dict[str, CedarType]:
        resolved = self.resolve(record)
        return {
            name: self.resolve(attr) for name, attr in (resolved.get("attributes") or {}).items()
        }


def _decimal(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, bool):
        raise CedarValueError(f"{where} is a boolean, not a number")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except InvalidOperation:
        raise CedarValueError(f"{where} ({value!r}) is not a number") from None
    if not number.is_finite() or abs(number) > DECIMAL_LIMIT:
        raise CedarValueError(f"{where} ({value!r}) is outside Cedar's decimal range")
    if number != number.quantize(Decimal("1e-4")):
        raise CedarValueError(f"{where} ({value!r}) has more than 4 decimal places")
    return {"__extn": {"fn": "decimal", "arg": f"{number.quantize(Decimal('1e-4')):f}"}}


def _long(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise CedarValueError(f"{where} is a boolean, not a whole number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise CedarValueError(f"{where} ({value!r}) is not a whole number")
    if not LONG_MIN <= value <= LONG_MAX:
        raise CedarValueError(f"{where} ({value}) is outside Cedar's Long range")
    return value


def _items(value: Any, where: str) -> Iterable[Any]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise CedarValueError(f"{where} ({value!r}) is not a list")
    return value


def to_cedar(value: Any, ty: CedarType | None, where: str) -> Any:
    """``value`` as Cedar JSON, of type ``ty`` (a resolved schema type node) when given."""
    kind = ty.get("type") if ty is not None else None
    if kind is None:
        return _by_convention(value, where)
    if kind == "String":
        if not isinstance(value, str):
            raise CedarValueError(f"{where} ({value!r}) is not a string")
        return value
    if kind == "Long":
        return _long(value, where)
    if kind == "Boolean":
        if not isinstance(value, bool):
            raise CedarValueError(f"{where} ({value!r}) is not true or false")
        return value
    if kind == "Set":
        element = ty.get("element") if ty is not None else None
        return [to_cedar(item, element, f"{where}[]") for item in _items(value, where)]
    if kind == "Record":
        if not isinstance(value, Mapping):
            raise CedarValueError(f"{where} ({value!r}) is not a mapping")
        attrs = (ty or {}).get("attributes") or {}
        return record(value, attrs, where)
    if kind == "Entity":
        if not isinstance(value, str):
            raise CedarValueError(f"{where} ({value!r}) is not an id")
        return {"__entity": {"type": str(ty.get("name") if ty else ""), "id": value}}
    if kind == "Extension":
        name = str(ty.get("name") if ty else "")
        if name == "decimal":
            return _decimal(value, where)
        if not isinstance(value, str):
            raise CedarValueError(f"{where} ({value!r}) is not a string for {name}")
        return {"__extn": {"fn": _EXTENSION_FN.get(name, name), "arg": value}}
    return _by_convention(value, where)


def _by_convention(value: Any, where: str) -> Any:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return _long(value, where)
    if isinstance(value, float | Decimal):
        return _decimal(value, where)
    if isinstance(value, Mapping):
        return record(value, {}, where)
    if isinstance(value, list | tuple | set | frozenset):
        return [_by_convention(item, f"{where}[]") for item in value]
    raise CedarValueError(f"{where} ({type(value).__name__}) has no Cedar equivalent")


def record(values: Mapping[str, Any], types: Mapping[str, CedarType], where: str) -> dict[str, Any]:
    """A Cedar record of ``values`` (None values left out: Cedar has no null)."""
    return {
        str(name): to_cedar(value, types.get(name), f"{where}.{name}" if where else str(name))
        for name, value in values.items()
        if value is not None
    }


def entity(
    kind: str, ident: str, attrs: Mapping[str, Any], parents: Iterable[tuple[str, str]] = ()
) -> dict[str, Any]:
    return {
        "uid": {"type": kind, "id": ident},
        "attrs": dict(attrs),
        "parents": [{"type": t, "id": i} for t, i in parents],
    }


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
