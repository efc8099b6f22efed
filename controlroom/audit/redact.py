"""Privacy: how much of prompts, outputs and tool arguments reaches the log; secrets never.

The redaction mode (``CONTROLROOM_AUDIT_REDACTION``) applies to prompts (system
instructions, the run's input, approval messages), outputs (model replies and reasoning,
tool results, the run's output) and tool arguments (and edited-argument diffs):

``full``  stored as they were (the default; replay needs it)
``hash``  replaced by ``{"redacted": "hash", "sha256": ...}``: whoever holds the value can
          prove it is the one recorded, nobody else can read it
``mask``  shape kept, content hidden: mapping keys and list lengths stay, every scalar
          becomes ``"***"``; text becomes ``{"redacted": "mask", "chars": N}``

The hashes of inputs, arguments and outputs (``controlroom.*sha256``) are recorded in every
mode, so decisions stay comparable (replay, audits) whatever is hidden.

Secrets never appear, in any mode. Before anything is recorded or hashed:

* every occurrence of a known secret value becomes ``[secret]``: the values of environment
  variables whose names contain KEY, SECRET, TOKEN or PASSWORD (also PASSWD, PASSPHRASE,
  CREDENTIAL), the values listed in ``CONTROLROOM_AUDIT_SECRETS``, and the secrets found in
  the configuration of the run's tools (:func:`secrets_of_tool`);
* the value under a mapping key that names a secret (``api_key``, ``token``,
  ``client_secret``, ``password`` ...) becomes ``[secret]`` and is learned, so it is removed
  from any later text of the run as well;
* pydantic ``SecretStr`` / ``SecretBytes`` values become ``[secret]``.

Values shorter than 6 characters and the words true/false/yes/no/none/null are not
removed from free text (they would erase ordinary words and numbers); under a secret-named
key they are masked all the same. Hashing happens after scrubbing, so no hash is ever
computed over a secret (a hash of a short secret could be brute-forced).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import types
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, SecretBytes, SecretStr

from controlroom.audit.canonical import SECRET_MARK, jsonable, sha256, value_digest

RedactionMode = Literal["full", "hash", "mask"]
MASK = "***"
MIN_SECRET_CHARS = 6
_ENV_MARKERS = ("KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL")
_SECRET_WORDS = frozenset(
    {
        "secret",
        "token",
        "password",
        "passwd",
        "passphrase",
        "credential",
        "credentials",
        "apikey",
        "authorization",
        "cookie",
        "pwd",
    }
)
_KEY_QUALIFIERS = frozenset({"api", "private", "secret", "access", "signing", "auth", "client"})
_NOT_SECRETS = frozenset({"true", "false", "yes", "no", "none", "null"})


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether a mapping key, field or variable name names a secret (word-wise)."""
    words = re.findall(r"[a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(
        w == "key" and i > 0 and words[i - 1] in _KEY_QUALIFIERS for i, w in enumerate(words)
    )


def is_secret_env_name(name: str) -> bool:
    upper = name.upper()
    return any(marker in upper for marker in _ENV_MARKERS)


def environment_secrets(environ: Mapping[str, str] | None = None) -> set[str]:
    env = os.environ if environ is None else environ
    return {value for name, value in env.items() if is_secret_env_name(name) and value}


_MAX_DEPTH = 8


def _function_parts(func: types.FunctionType) -> Iterator[tuple[str | None, Any]]:
    """What a function holds: closure variables, the module globals it names, defaults."""
    code = func.__code__
    for var, cell in zip(code.co_freevars, func.__closure__ or (), strict=False):
        try:
            yield var, cell.cell_contents
        except ValueError:  # an empty cell
            continue
    for var in code.co_names:
        if var in func.__globals__:
            yield var, func.__globals__[var]
    yield from (func.__kwdefaults__ or {}).items()
    yield None, func.__defaults__


def _parts(obj: Any, name: str | None) -> Iterable[tuple[str | None, Any]]:
    if isinstance(obj, Mapping):
        return ((str(k), v) for k, v in obj.items())
    if isinstance(obj, list | tuple | set | frozenset):
        return ((name, v) for v in obj)
    if isinstance(obj, types.FunctionType):
        return _function_parts(obj)
    if isinstance(obj, types.MethodType):
        return [(None, obj.__func__), (None, obj.__self__)]
    if isinstance(obj, functools.partial):
        return [(None, obj.func), (None, obj.args), *obj.keywords.items()]
    if isinstance(obj, BaseModel):
        return obj.__dict__.items()
    if dataclasses.is_dataclass(obj):
        return ((f.name, getattr(obj, f.name, None)) for f in dataclasses.fields(obj))
    return getattr(obj, "__dict__", {}).items()


def _secrets_in(obj: Any, name: str | None, depth: int, seen: set[int]) -> Iterator[str]:
    if isinstance(obj, SecretStr):
        yield obj.get_secret_value()
        return
    if isinstance(obj, SecretBytes):
        yield obj.get_secret_value().decode("utf-8", "replace")
        return
    if isinstance(obj, str | bytes):
        if name is not None and is_secret_name(name):
            yield obj if isinstance(obj, str) else obj.decode("utf-8", "replace")
        return
    skip = obj is None or isinstance(obj, int | float | bool | type | types.ModuleType)
    if skip or depth > _MAX_DEPTH or id(obj) in seen or isinstance(obj, types.BuiltinFunctionType):
        return
    seen.add(id(obj))
    for key, value in _parts(obj, name):
        yield from _secrets_in(value, key, depth + 1, seen)


def secrets_in(obj: Any, name: str | None = None) -> set[str]:
    """Secret values held by a configuration object: ``SecretStr`` values anywhere, and
    strings under secret-named keys, fields, attributes or variables (a few levels deep;
    functions are followed into their closures, the globals they use and their defaults,
    ``functools.partial`` objects into their arguments)."""
    return set(_secrets_in(obj, name, 0, set()))


def secrets_of_tool(tool: Any) -> set[str]:
    """Secrets in a tool's configuration: its attributes (a ``config`` object, the tool
    function, resource loaders...) and what those functions close over or use."""
    return secrets_in(getattr(tool, "__dict__", {}))


class Redactor:
    """Scrubs secrets out of values and applies the redaction mode."""

    def __init__(self, mode: RedactionMode = "full", secrets: Iterable[str] = ()) -> None:
        self.mode: RedactionMode = mode
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add_secrets(secrets)

    @classmethod
    def from_environment(
        cls,
        mode: RedactionMode = "full",
        extra: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> Redactor:
        return cls(mode, [*environment_secrets(environ), *extra])

    def copy(self) -> Redactor:
        return Redactor(self.mode, self._secrets)

    def add_secrets(self, values: Iterable[str]) -> None:
        fresh = {
            v
            for v in values
            if isinstance(v, str)
            and len(v) >= MIN_SECRET_CHARS
            and v.strip().lower() not in _NOT_SECRETS
            and v not in self._secrets
        }
        if not fresh:
            return
        self._secrets |= fresh
        ordered = sorted(self._secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def scrub_text(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(SECRET_MARK, text)

    def scrub_strings(self, value: Any) -> Any:
        """Known secret values removed from every string (keys included) of a JSON value."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            return {self.scrub_text(k): self.scrub_strings(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub_strings(v) for v in value]
        return value

    def _learn(self, value: Any) -> None:
        if isinstance(value, str):
            self.add_secrets([value])
        elif isinstance(value, dict):
            for v in value.values():
                self._learn(v)
        elif isinstance(value, list):
            for v in value:
                self._learn(v)

    def _mask_keys(self, value: Any) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if is_secret_name(key) and item not in (None, "", SECRET_MARK):
                    self._learn(item)
                    out[key] = SECRET_MARK
                else:
                    out[key] = self._mask_keys(item)
            return out
        if isinstance(value, list):
            return [self._mask_keys(v) for v in value]
        return value

    def scrub(self, value: Any) -> Any:
        """A JSON-safe copy of ``value`` with every secret replaced by ``[secret]``."""
        return self.scrub_strings(self._mask_keys(jsonable(value)))

    def digest(self, value: Any) -> str:
        return value_digest(self.scrub(value))

    def text(self, value: str) -> Any:
        """A prompt or output text as the redaction mode records it."""
        clean = self.scrub_text(value)
        if self.mode == "hash":
            return {"redacted": "hash", "sha256": sha256(clean.encode("utf-8", "replace"))}
        if self.mode == "mask":
            return {"redacted": "mask", "chars": len(clean)}
        return clean

    def data(self, value: Any) -> Any:
        """Structured content (tool arguments, diffs) as the redaction mode records it."""
        clean = self.scrub(value)
        if self.mode == "hash":
            return {"redacted": "hash", "sha256": value_digest(clean)}
        if self.mode == "mask":
            return _mask(clean)
        return clean


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return MASK if value is not None else None
