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
  from any later text of the run as well (for ``Bearer <token>``-style values, the
  credential after the scheme is learned too);
* pydantic ``SecretStr`` / ``SecretBytes`` values become ``[secret]``.

Which names name a secret (:func:`is_secret_name`; mapping keys, fields, attributes and
variables alike). A name is split into lowercase words (``snake_case``, ``kebab-case``,
``camelCase``: ``x-api-key`` is *x api key*, ``apiKey`` is *api key*); digits at the end
(``password2``, ``api_key_2``) and then one value suffix (``_value``, ``_str``, ``_b64``,
``_pem`` ...: ``token_value`` is the token) are dropped. The name is secret when its
**last word** names a secret (secret, token, password, passwd, passphrase, credential,
apikey, authorization, cookie ..., and their plurals except *tokens*, which counts text), or
is ``key`` qualified by the word before it (api, private, secret, access, signing, auth,
client, encryption ...). The last word says what the value *is*: ``access_token``,
``db_password``, ``client_secret``, ``private_key``, ``Authorization`` hold secrets, while
``token_type``, ``token_scope``, ``token_url``, ``password_policy``, ``secret_name``,
``max_tokens``, ``key`` or ``primary_key_column`` are only *about* secrets (or about
something else), and their values are ordinary words that must stay readable. Environment
variables are matched more broadly (by substring, see above): there the names are the
operator's, and ``PGPASSWORD``-style names are common.

What is scrubbed: string *values*, never mapping keys (keys are the names of arguments,
fields and settings, the schema's and the code's words, not the run's data; rewriting them
would also merge distinct keys into one), and never the identifier fields of a record (tool
names, call, approval, step and policy ids, ``kind``, hashes ...), which the record writer
names (:meth:`Redactor.scrub_strings` ``verbatim``). Inside a value, a secret is removed
wherever it occurs, also inside a longer word. Word-boundary matching would be too weak: a
secret glued to other text (``text + key``, ``Bearer`` + key, ``id_<key>``: ``_`` is a word
character) would survive it, and a secret embedded in a URL, a header or a connection string
must not. The price, a secret that is also part of an ordinary word (``re[secret]`` for a
password ``booking``), is paid only in free text and only for real secrets: names and keys
are untouched, and a name that is merely about a secret teaches nothing.

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
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, SecretBytes, SecretStr

from controlroom.audit.canonical import SECRET_MARK, jsonable, sha256, value_digest

RedactionMode = Literal["full", "hash", "mask"]
# Fields a scrub keeps as they are: ``True`` for the whole value, a nested map for the
# fields of the mapping (or of each mapping in the list) under that key.
Verbatim: TypeAlias = Mapping[str, "bool | Verbatim"]
MASK = "***"
MIN_SECRET_CHARS = 6
_ENV_MARKERS = ("KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL")
# The last word of a secret-valued name (see the module docstring).
_SECRET_WORDS = frozenset(
    {
        "secret",
        "secrets",
        "token",
        "password",
        "passwords",
        "passwd",
        "passphrase",
        "credential",
        "credentials",
        "creds",
        "apikey",
        "apikeys",
        "privatekey",
        "secretkey",
        "accesskey",
        "authorization",
        "auth",
        "cookie",
        "cookies",
        "pwd",
    }
)
_SECRET_ENDINGS = ("token", "password", "passwd", "passphrase", "secret", "apikey")
_KEY_WORDS = frozenset({"key", "keys"})
_KEY_QUALIFIERS = frozenset(
    {
        "api",
        "private",
        "secret",
        "access",
        "signing",
        "auth",
        "client",
        "encryption",
        "decryption",
        "master",
        "license",
        "licence",
        "session",
        "hmac",
        "webhook",
    }
)
# A last word that says how a secret is written, not what the value is about.
_VALUE_SUFFIXES = frozenset(
    {"value", "val", "str", "string", "raw", "plain", "plaintext", "b64", "base64", "hex", "pem"}
)
_NOT_SECRETS = frozenset({"true", "false", "yes", "no", "none", "null"})
# ``Authorization``-style values: the credential after the scheme is a secret on its own.
_SCHEMED = re.compile(r"(?i)^\s*(?:bearer|basic|token|bot|digest|apikey)\s+(\S+)\s*$")


def _without_digits(word: str) -> str:
    return word.rstrip("0123456789") or word


def _name_words(name: str) -> list[str]:
    """``x-api-key`` -> x api key; ``HTTPAuthorization`` -> http authorization; trailing
    digits (``password2``, ``api_key_2``) and one value suffix (``token_value``) dropped."""
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", spaced)
    words = [w for w in re.findall(r"[a-z0-9]+", spaced.lower()) if not w.isdigit()]
    if words and words[-1] not in _VALUE_SUFFIXES:
        words[-1] = _without_digits(words[-1])
    if len(words) > 1 and words[-1] in _VALUE_SUFFIXES:
        words.pop()
        words[-1] = _without_digits(words[-1])
    return words


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether a mapping key, field or variable name holds a secret: its last word names
    a secret (also as the end of a compound: ``authtoken``, ``pgpassword``), or is ``key``
    qualified by the word before it (see the module docstring)."""
    words = _name_words(name)
    if not words:
        return False
    last = words[-1]
    if last in _SECRET_WORDS or last.endswith(_SECRET_ENDINGS):
        return True
    return last in _KEY_WORDS and len(words) > 1 and words[-2] in _KEY_QUALIFIERS


def secret_parts(value: str) -> list[str]:
    """What a secret value teaches: the value, and the credential of ``Bearer <credential>``."""
    match = _SCHEMED.match(value)
    return [value, match.group(1)] if match else [value]


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
            yield from secret_parts(obj if isinstance(obj, str) else obj.decode("utf-8", "replace"))
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
            and v not in SECRET_MARK  # scrubbing twice must change nothing
            and v not in self._secrets
        }
        if not fresh:
            return
        self._secrets |= fresh
        ordered = sorted(self._secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def scrub_text(self, text: str) -> str:
        """``text`` with every occurrence of a known secret replaced, inside words too."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(SECRET_MARK, text)

    def scrub_strings(self, value: Any, verbatim: Verbatim | None = None) -> Any:
        """Known secret values removed from every string value of a JSON value; mapping
        keys are never rewritten. ``verbatim`` names the fields kept as they are
        (identifiers): ``{"name": True}`` keeps a mapping's ``name``, ``{"parts": {"id":
        True}}`` the ``id`` of the mapping (or of each mapping in the list) under
        ``parts``; everything else is scrubbed."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                rule = verbatim.get(key) if verbatim is not None else None
                if rule is True:
                    out[key] = item
                else:
                    nested = rule if isinstance(rule, Mapping) else None
                    out[key] = self.scrub_strings(item, nested)
            return out
        if isinstance(value, list):
            return [self.scrub_strings(v, verbatim) for v in value]
        return value

    def _learn(self, value: Any) -> None:
        if isinstance(value, str):
            self.add_secrets(secret_parts(value))
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

    def hide_secret_fields(self, value: Any) -> Any:
        """A JSON-safe copy of ``value`` whose values under secret-named keys are
        ``[secret]`` (and learned); other strings are left for a later scrub (the record's,
        which keeps identifiers)."""
        return self._mask_keys(jsonable(value))

    def scrub(self, value: Any, verbatim: Verbatim | None = None) -> Any:
        """A JSON-safe copy of ``value`` with every secret replaced by ``[secret]``
        (mapping keys, and the fields ``verbatim`` names, kept: see :meth:`scrub_strings`)."""
        return self.scrub_strings(self._mask_keys(jsonable(value)), verbatim)

    def digest(self, value: Any, verbatim: Verbatim | None = None) -> str:
        return value_digest(self.scrub(value, verbatim))

    def text(self, value: str) -> Any:
        """A prompt or output text as the redaction mode records it."""
        clean = self.scrub_text(value)
        if self.mode == "hash":
            return {"redacted": "hash", "sha256": sha256(clean.encode("utf-8", "replace"))}
        if self.mode == "mask":
            return {"redacted": "mask", "chars": len(clean)}
        return clean

    def data(self, value: Any, verbatim: Verbatim | None = None) -> Any:
        """Structured content (tool arguments, diffs) as the redaction mode records it."""
        clean = self.scrub(value, verbatim)
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
