"""Canonical bytes and hashes for audit records.

Every record is serialised with RFC 8785 (the JSON Canonicalization Scheme, package
``rfc8785``) so that one value has exactly one byte form: a record's hash is the SHA-256 of
its canonical line, and anyone with an RFC 8785 implementation can recompute it, in any
language. Values are made JSON-safe first (:func:`jsonable`), because RFC 8785 refuses what
I-JSON cannot represent exactly (NaN and infinities, integers beyond 2**53, lone
surrogates): those become strings rather than failing a run.

Hashes are written ``sha256:<hex>``, like workflow digests.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

import rfc8785
from pydantic import BaseModel, SecretBytes, SecretStr

FORMAT_VERSION = 1
SECRET_MARK = "[secret]"
_MAX_SAFE = 2**53 - 1
_MAX_DEPTH = 64


def jsonable(value: Any, _depth: int = 0) -> Any:
    """A JSON value equal in meaning to ``value`` that RFC 8785 accepts."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is dict and _depth <= _MAX_DEPTH:
        return {k if type(k) is str else str(k): jsonable(v, _depth + 1) for k, v in value.items()}
    if kind is list and _depth <= _MAX_DEPTH:
        return [jsonable(v, _depth + 1) for v in value]
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if -_MAX_SAFE <= value <= _MAX_SAFE else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        # RFC 8785 writes 1250.0 as 1250: the same bytes, and the fast path keeps them.
        return int(value) if value.is_integer() and abs(value) <= _MAX_SAFE else value
    if _depth > _MAX_DEPTH:
        return str(value)
    if isinstance(value, SecretStr | SecretBytes):
        return SECRET_MARK
    if isinstance(value, enum.Enum):
        return jsonable(value.value, _depth + 1)
    if isinstance(value, BaseModel):
        return jsonable(value.model_dump(mode="json"), _depth + 1)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, _depth + 1) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v, _depth + 1) for v in value), key=repr)
    if isinstance(value, bytes | bytearray):
        return "base64:" + base64.b64encode(bytes(value)).decode()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    return str(value)


def _fix_strings(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_fix_strings(k): _fix_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fix_strings(v) for v in value]
    return value


class _NotPlain(Exception):
    """A value the fast path cannot encode exactly as RFC 8785 does."""


def _plain_float(text: str) -> float:
    value = float(text)
    if value == int(value) or not 1e-4 <= abs(value) < 1e16:
        raise _NotPlain  # ECMAScript writes these differently from Python
    return value


def _plain_int(text: str) -> int:
    value = int(text)
    if not -_MAX_SAFE <= value <= _MAX_SAFE:
        raise _NotPlain
    return value


_HIGH = re.compile("[\ud800-\U0010ffff]")


def _fast(value: Any) -> bytes | None:
    """``json.dumps`` with sorted keys and no spaces, when that is exactly RFC 8785: no
    character at or above U+D800 (code-point order is then UTF-16 order, and no lone
    surrogates), integers in the safe range, and only non-integral floats of magnitude
    1e-4 to 1e16 (where Python's shortest repr is ECMAScript's)."""
    try:
        text = json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
        )
    except (TypeError, ValueError):
        return None
    if _HIGH.search(text):
        return None
    try:
        json.loads(text, parse_float=_plain_float, parse_int=_plain_int)
    except _NotPlain:
        return None
    return text.encode("utf-8")


def canonical(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON-safe value (see :func:`jsonable`).

    Nearly every record takes the fast path (``json.dumps`` writes it byte for byte as
    RFC 8785 does, at a third of the cost); anything else goes through the ``rfc8785``
    package. A property test checks that the two agree.
    """
    fast = _fast(value)
    if fast is not None:
        return fast
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        # Lone surrogates cannot be UTF-8 encoded: replace them rather than lose the record.
        return rfc8785.dumps(_fix_strings(value))


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def value_digest(value: Any) -> str:
    """``sha256:`` of the canonical form of any value."""
    return sha256(canonical(jsonable(value)))


def genesis_hash(run_id: str) -> str:
    """The ``prev_hash`` of a run's first record: binds the chain to its run id."""
    return sha256(f"controlroom.audit/v{FORMAT_VERSION} genesis {run_id}".encode())
