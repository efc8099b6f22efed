"""Untrusted command-line values, checked before anything else sees them.

Every problem is a :class:`ConfigError` naming the option, so the CLI prints one paragraph
and exits 2 instead of a traceback:

- :func:`json_option` parses JSON that stays representable everywhere a run's data goes
  (the checkpoint serializer, the audit log's RFC 8785 canonical JSON, SQLite): no NaN or
  Infinity, no number too large for a float, integers within JSON's interoperable range
  (+-(2**53 - 1)), at most :data:`MAX_DEPTH` levels of nesting, only valid text in strings.
- :func:`text_option` rejects text that is not valid Unicode: on POSIX, bytes that are not
  UTF-8 (``$'\\xff'``) reach Python as lone surrogates, which cannot be stored or hashed.
"""

from __future__ import annotations

import json
import math
from typing import Any

from controlroom.errors import ConfigError

__all__ = ["MAX_DEPTH", "MAX_SAFE_INTEGER", "json_option", "text_option"]

MAX_DEPTH = 64
MAX_SAFE_INTEGER = 2**53 - 1  # RFC 7493 (I-JSON) and RFC 8785: exact in every JSON reader
_MAX_INT_DIGITS = len(str(MAX_SAFE_INTEGER))
_MAX_JSON_CHARS = 1_000_000


class _NotJson(ValueError):
    """The text is not JSON at all (as opposed to JSON we refuse)."""


def text_option(text: str, option: str) -> str:
    """``text`` unchanged, or a ConfigError when it holds lone surrogates (undecodable bytes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        byte = ord(bad) - 0xDC00 if 0xDC80 <= ord(bad) <= 0xDCFF else None
        what = f"the byte 0x{byte:02X}" if byte is not None else f"U+{ord(bad):04X}"
        raise ConfigError(
            f"{option} is not valid UTF-8 text ({what} at character {exc.start + 1}). "
            "Give the text in UTF-8 (check the terminal's or the script's encoding, "
            "LANG / LC_ALL)."
        ) from None
    return text


def json_option(text: str, option: str, *, bare_text: bool = False) -> Any:
    """The JSON value of ``option``; with ``bare_text``, text that is not JSON is a string.

    JSON that parses but that a run could not carry (too deep, a number out of range, NaN)
    is always an error, never taken as a string.
    """
    text_option(text, option)
    if len(text) > _MAX_JSON_CHARS:
        raise ConfigError(
            f"{option} is {len(text):,} characters long; at most {_MAX_JSON_CHARS:,}."
        )
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        if bare_text:
            return text
        raise ConfigError(
            f"{option} is not valid JSON ({exc.msg} at column {exc.colno})."
        ) from None
    except RecursionError:
        raise _too_deep(option) from None
    except _NotJson as exc:
        raise ConfigError(f"{option}: {exc}") from None
    _check_depth(value, option)
    return value


def _int(digits: str) -> int:
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS or abs(int(digits)) > MAX_SAFE_INTEGER:
        shown = digits if len(digits) <= 24 else f"{digits[:12]}…({len(digits):,} digits)"
        raise _NotJson(
            f"the integer {shown} is out of range. Expected integers between "
            f"-{MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER} (write larger amounts as decimals, "
            "e.g. 1.5e20, or as text)."
        )
    return int(digits)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 24 else f"{text[:12]}…"
        raise _NotJson(f"the number {shown} is too large. Expected a finite number.")
    return value


def _constant(name: str) -> float:
    raise _NotJson(f"`{name}` is not a JSON number. Expected a finite number, or null.")


def _too_deep(option: str) -> ConfigError:
    return ConfigError(
        f"{option} is nested too deeply. Expected at most {MAX_DEPTH} levels of lists and objects."
    )


def _check_depth(value: Any, option: str) -> None:
    """Raise when ``value`` nests deeper than MAX_DEPTH, or holds invalid text (iteratively)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            text_option(item, option)  # "\udcff" is valid JSON but not valid text
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise _too_deep(option)
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
