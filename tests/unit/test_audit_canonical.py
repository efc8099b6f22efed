"""Canonical JSON: our fast path writes exactly what RFC 8785 (``rfc8785``) writes."""

from __future__ import annotations

import enum
import math
from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from controlroom.audit.canonical import canonical, genesis_hash, jsonable, value_digest

leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
values = st.recursive(
    leaves, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=25
)


@settings(max_examples=1500, deadline=None)
@given(values)
def test_canonical_bytes_are_rfc8785(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:  # lone surrogates: we replace them instead
        assert canonical(value)
        return
    assert canonical(value) == expected


def test_numbers_that_python_and_ecmascript_write_differently() -> None:
    for number in (1250.0, -0.0, 1e16, 1e21, 1e-7, 0.1, 480.5, 123456789.125):
        assert canonical({"n": number}) == rfc8785.dumps({"n": number})
    assert canonical({"b": 1, "a": [True, None]}) == b'{"a":[true,null],"b":1}'


class Colour(enum.Enum):
    RED = "red"


def test_anything_becomes_json_safe() -> None:
    value = {
        "nan": math.nan,
        "big": 2**60,
        "bytes": b"\x00\x01",
        "set": {3, 1},
        "enum": Colour.RED,
        "secret": SecretStr("x"),
        1: (1, 2),
        "obj": object,
    }
    safe = jsonable(value)
    assert safe["nan"] == "nan" and safe["big"] == str(2**60)
    assert safe["bytes"] == "base64:AAE=" and safe["set"] == [1, 3]
    assert safe["enum"] == "red" and safe["secret"] == "[secret]" and safe["1"] == [1, 2]
    assert canonical(safe)
    assert value_digest(value) == value_digest(safe)


def test_each_run_has_its_own_genesis() -> None:
    assert genesis_hash("r1") != genesis_hash("r2")
    assert genesis_hash("r1").startswith("sha256:")
