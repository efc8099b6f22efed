"""Hypothesis strategies that generate values from a JSON schema (the subset pydantic emits).

``hints`` maps a property name to a strategy used instead of the schema's (for realistic
ids); everything else follows the schema: types, enums, patterns, bounds, lengths, arrays,
optional properties and ``anyOf`` unions. Values may still fail a tool's own validators
(that path is part of what the property tests exercise).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

Strategy = st.SearchStrategy[Any]


def from_schema(
    schema: Mapping[str, Any],
    defs: Mapping[str, Any] | None = None,
    hints: Mapping[str, Strategy] | None = None,
) -> Strategy:
    defs = dict(defs or schema.get("$defs", {}))
    return _value(schema, defs, dict(hints or {}))


def _value(schema: Mapping[str, Any], defs: dict[str, Any], hints: dict[str, Strategy]) -> Strategy:
    if "$ref" in schema:
        return _value(defs[str(schema["$ref"]).rsplit("/", 1)[-1]], defs, hints)
    if "anyOf" in schema:
        return st.one_of([_value(s, defs, hints) for s in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(10**6) - 1) + 1)
        high = schema.get("maximum", schema.get("exclusiveMaximum", 10**6 + 1) - 1)
        return st.integers(min_value=low, max_value=high)
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        floats = st.floats(
            min_value=low,
            max_value=high,
            exclude_min="exclusiveMinimum" in schema,
            exclude_max="exclusiveMaximum" in schema,
            allow_nan=False,
            allow_infinity=False,
        )
        cents = st.integers(1, 10_000_000).map(lambda c: c / 100)
        return st.one_of(
            floats, cents.filter(lambda v: (low is None or v > low) and (high is None or v <= high))
        )
    if kind == "string":
        low, high = schema.get("minLength", 0), min(schema.get("maxLength", 40), 40)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda s: low <= len(s) <= schema.get("maxLength", 10**9)
            )
        return st.text(min_size=low, max_size=max(low, high))
    if kind == "array":
        return st.lists(
            _value(schema.get("items", {}), defs, hints),
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 3), 3),
        )
    if kind == "object" or "properties" in schema:
        return _object(schema, defs, hints)
    return st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10))


def _object(
    schema: Mapping[str, Any], defs: dict[str, Any], hints: dict[str, Strategy]
) -> Strategy:
    props: Mapping[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))

    def prop(name: str) -> Strategy:
        return hints[name] if name in hints else _value(props[name], defs, hints)

    return st.fixed_dictionaries(
        {name: prop(name) for name in props if name in required},
        optional={name: prop(name) for name in props if name not in required},
    )
