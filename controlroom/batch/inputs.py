"""The inputs of a batch: one JSON value per line (JSON Lines).

Each line is either a JSON string (the input text) or an object::

    {"input": "Pay invoice INV-1001"}
    {"input": "Pay invoice INV-1003", "user": "carol", "model": "scripted:big.yaml"}
    "Pay invoice INV-1002"

``user`` and ``model`` override the batch's ``--user`` and ``--model`` for that input. Blank
lines are skipped. A malformed line is reported with its file and line number, and nothing
is created.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controlroom.errors import ConfigError


class BatchInput(BaseModel):
    """One line of the inputs file."""

    model_config = ConfigDict(extra="forbid")

    input: str = Field(min_length=1)
    user: str | None = None
    model: str | None = None


def _problem(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "the line"
        parts.append(f"`{where}`: {error['msg']}")
    return "; ".join(parts)


def parse_inputs(text: str, source: str = "inputs") -> list[BatchInput]:
    """Parse JSON Lines into inputs; raise :class:`ConfigError` naming the bad line."""
    inputs: list[BatchInput] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{source}:{number}: not valid JSON ({exc.msg} at column {exc.colno}). Each "
                'line is a JSON string or an object like {"input": "...", "user": "..."}.',
                title="Malformed batch inputs",
            ) from None
        if isinstance(value, str):
            value = {"input": value}
        if not isinstance(value, dict):
            raise ConfigError(
                f"{source}:{number}: a JSON {type(value).__name__}, expected a string or an "
                'object like {"input": "...", "user": "...", "model": "..."}.',
                title="Malformed batch inputs",
            )
        try:
            inputs.append(BatchInput.model_validate(value))
        except ValidationError as exc:
            raise ConfigError(
                f"{source}:{number}: {_problem(exc)}. Allowed keys: `input` (required), "
                "`user`, `model`.",
                title="Malformed batch inputs",
            ) from None
    if not inputs:
        raise ConfigError(
            f"{source} holds no inputs: write one JSON string or object per line.",
            title="Malformed batch inputs",
        )
    return inputs


def read_inputs(path: Path) -> list[BatchInput]:
    """Read and parse an inputs file (``-`` is not supported: inputs must be re-readable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"The inputs file {path} does not exist.", title="Malformed batch inputs"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"Cannot read the inputs file {path}: {exc}.", title="Malformed batch inputs"
        ) from None
    return parse_inputs(text, str(path))
