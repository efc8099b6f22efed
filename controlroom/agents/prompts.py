"""Prompt templates: ``str.format`` syntax over the run's input, user and variables.

Available fields: ``{input}``, ``{output}``, ``{user.id}``, ``{user.name}``,
``{user.roles}``, ``{user.attributes.department}`` and ``{vars.NAME}``. Write ``{{`` and
``}}`` for literal braces.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from controlroom.errors import WorkflowError
from controlroom.identity import Principal


class _Fields:
    """Attribute access over a mapping, so templates can say ``{vars.priority}``."""

    def __init__(self, name: str, data: Mapping[str, Any]) -> None:
        self._name = name
        self._data = data

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            value = self._data[key]
        except KeyError:
            known = ", ".join(sorted(self._data)) or "none yet"
            raise WorkflowError(
                f"The template uses {{{self._name}.{key}}} but there is no '{key}' "
                f"(available: {known})."
            ) from None
        if isinstance(value, Mapping):
            return _Fields(f"{self._name}.{key}", value)
        return value

    def __format__(self, spec: str) -> str:
        return format(dict(self._data), spec)


def render(template: str, *, where: str, principal: Principal, state: Mapping[str, Any]) -> str:
    """Fill a template; a bad field is a :class:`WorkflowError` naming ``where``."""
    fields = {
        "input": state.get("input", ""),
        "output": state.get("output") or "",
        "user": _Fields(
            "user",
            {
                "id": principal.id,
                "name": principal.display_name,
                "roles": ", ".join(principal.roles),
                "attributes": principal.attributes,
            },
        ),
        "vars": _Fields("vars", state.get("vars") or {}),
    }
    try:
        return string.Formatter().vformat(template, (), fields)
    except WorkflowError as exc:
        raise WorkflowError(f"{where}: {exc.message}") from None
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise WorkflowError(
            f"{where}: the template cannot be filled ({type(exc).__name__}: {exc}). Use "
            "{input}, {user.name}, {vars.NAME}; write {{ and }} for literal braces."
        ) from None
