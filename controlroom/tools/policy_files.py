"""Read a folder of Cedar policies and its schema, check them, parse them once.

A policy folder holds ``*.cedar`` files and one schema in Cedar's JSON schema format,
``*.cedarschema.json``. Loading parses every file, validates every policy against the
schema (strict Cedar validation: unknown attributes, wrong types and optional attributes
read without ``has`` are errors) and reports the first problems with the file, the line and
the policy id. The result is cached by content hash, so a folder is parsed once per
process however often workflows using it are loaded; an edited file is read again.

Annotations controlroom understands (any other is an error, to catch typos):

``@id("payment-limit")``
    the policy's id, shown in decisions, refusals and the audit (default ``file.cedar#N``)
``@reason("payments above your limit of {principal.payment_limit} ...")``
    the explanation given when this policy decides; ``{principal.X}``, ``{context.X}``,
    ``{resource.X}``, ``{principal.id}``, ``{resource.id}`` and ``{action}`` are filled in
``@approval("payments above 10000 need a finance manager's approval")``
    marks a ``permit`` as an approval rule: it grants nothing, but when a call is
    permitted and an approval rule matches, the call waits for a person
``@approvers("finance-manager")``
    on an approval rule: the roles (comma-separated) one of which the approver must hold
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cedarpy

from controlroom.errors import PolicyError
from controlroom.tools.cedar import CedarSchema

ANNOTATIONS = ("id", "reason", "approval", "approvers")
SCHEMA_SUFFIX = ".cedarschema.json"
MAX_REPORTED = 5


@dataclass(frozen=True)
class PolicyInfo:
    """One loaded policy: where it is written and what it says, for explanations."""

    id: str
    file: str
    line: int
    effect: Literal["permit", "forbid"]
    reason: str | None
    approval: str | None
    approvers: tuple[str, ...]
    actions: frozenset[str] | None  # None: every action
    principal: str  # the scope, as text: "anyone", 'Role::"hr"', ...
    conditional: bool

    @property
    def kind(self) -> str:
        return "approval" if self.approval is not None else self.effect


@dataclass(frozen=True)
class PolicyBundle:
    """A parsed, validated policy folder."""

    folder: Path
    schema_file: Path
    schema: CedarSchema
    policies: dict[str, PolicyInfo]  # in file order
    policy_set: cedarpy.PolicySet
    digest: str
    # file name -> text of every file the digest covers (what a replay decides with again)
    sources: dict[str, str] = field(default_factory=dict)

    def for_action(self, action: str) -> list[PolicyInfo]:
        """The policies whose scope includes ``action`` (conditions not evaluated)."""
        return [p for p in self.policies.values() if p.actions is None or action in p.actions]


_CACHE: dict[tuple[str, str], PolicyBundle] = {}
_LOCK = threading.Lock()


def policy_digest(sources: dict[str, str]) -> str:
    """The content hash of a policy set: its files' names and texts."""
    blob = json.dumps(sources, sort_keys=True).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def load_policy_folder(folder: Path | str) -> PolicyBundle:
    """Load, validate and parse the policies in ``folder`` (cached by content)."""
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise PolicyError(
            f"No policy folder at {root}. A policy folder holds `*.cedar` policy files and a "
            f"Cedar schema `schema{SCHEMA_SUFFIX}`."
        )
    files = sorted(p for p in root.glob("*.cedar") if p.is_file())
    schemas = sorted(p for p in root.glob(f"*{SCHEMA_SUFFIX}") if p.is_file())
    if not files:
        raise PolicyError(f"The policy folder {root} holds no `*.cedar` policy files.")
    if len(schemas) != 1:
        found = ", ".join(p.name for p in schemas) or "none"
        raise PolicyError(
            f"The policy folder {root} needs exactly one Cedar schema in JSON format "
            f"(`schema{SCHEMA_SUFFIX}`); found {found}. Policies are validated against it."
        )
    texts = {p: p.read_text(encoding="utf-8") for p in (*files, schemas[0])}
    digest = policy_digest({p.name: t for p, t in texts.items()})
    with _LOCK:
        cached = _CACHE.get((str(root), digest))
    if cached is not None:
        return cached
    bundle = _parse(root, files, schemas[0], texts, digest)
    with _LOCK:
        _CACHE[(str(root), digest)] = bundle
    return bundle


def _parse(
    root: Path, files: list[Path], schema_file: Path, texts: dict[Path, str], digest: str
) -> PolicyBundle:
    raw_schema, schema_handle = _read_schema(schema_file, texts[schema_file])
    try:
        schema = CedarSchema(raw_schema)
    except ValueError as exc:
        raise PolicyError(f"{schema_file}: {exc}.") from None
    combined: dict[str, Any] = {}
    infos: dict[str, PolicyInfo] = {}
    for path in files:
        text = texts[path]
        lines = _statement_lines(text)
        try:
            est = json.loads(cedarpy.policies_to_json_str(text))
        except ValueError as exc:
            raise PolicyError(f"{_locate_parse_error(path, text)}: {exc}.") from None
        if est.get("templates"):
            raise PolicyError(f"{path}: policy templates (?principal, ?resource) are not used.")
        _validate(path, text, schema_handle, lines)
        for key, policy in est.get("staticPolicies", {}).items():
            index = int(key.removeprefix("policy"))
            line = lines[index] if index < len(lines) else 1
            info = _info(path, line, index, policy, schema)
            if info.id in infos:
                first = infos[info.id]
                raise PolicyError(
                    f"{path}:{line}: the policy id `{info.id}` is used twice (first at "
                    f"{first.file}:{first.line}); ids must be unique in a policy folder."
                )
            infos[info.id] = info
            combined[info.id] = policy
    est_all = {"staticPolicies": combined, "templates": {}, "templateLinks": []}
    policy_set = cedarpy.PolicySet.from_json_str(json.dumps(est_all))
    sources = {p.name: t for p, t in texts.items()}
    return PolicyBundle(root, schema_file, schema, infos, policy_set, digest, sources)


def _read_schema(path: Path, text: str) -> tuple[dict[str, Any], cedarpy.Schema]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}).") from None
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: a Cedar JSON schema is a mapping of namespaces.")
    try:
        handle = cedarpy.Schema.from_json_str(text)
    except ValueError as exc:
        raise PolicyError(f"{path}: not a valid Cedar schema: {exc}.") from None
    return raw, handle


def _validate(path: Path, text: str, schema: cedarpy.Schema, lines: list[int]) -> None:
    result = cedarpy.validate_policies(text, schema)
    if result.validation_passed:
        return
    named = result.id_annotations_by_policy_id
    problems = []
    for error in result.errors[:MAX_REPORTED]:
        pid = error.policy_id
        index = int(pid.removeprefix("policy")) if pid.startswith("policy") else -1
        where = f"{path}:{lines[index]}" if 0 <= index < len(lines) else str(path)
        label = f"policy `{named[pid]}`" if pid in named else f"policy #{index + 1}"
        message = re.sub(r"^for policy `[^`]*`, ", "", error.error)
        problems.append(f"{where}: {label}: {message}")
    more = len(result.errors) - MAX_REPORTED
    tail = f" (and {more} more)" if more > 0 else ""
    raise PolicyError(
        "Policies do not match their schema: " + "; ".join(problems) + tail + ". Fix the "
        "policy or declare the attribute, action or type in the schema."
    )


def _info(
    path: Path, line: int, index: int, policy: dict[str, Any], schema: CedarSchema
) -> PolicyInfo:
    notes: dict[str, str] = policy.get("annotations") or {}
    unknown = sorted(set(notes) - set(ANNOTATIONS))
    where = f"{path}:{line}"
    if unknown:
        known = ", ".join(f"@{a}" for a in ANNOTATIONS)
        raise PolicyError(f"{where}: unknown annotation @{unknown[0]} (controlroom knows {known}).")
    effect = policy["effect"]
    if "approval" in notes and effect != "permit":
        raise PolicyError(f"{where}: @approval marks a `permit` rule; this one is a `forbid`.")
    if "approvers" in notes and "approval" not in notes:
        raise PolicyError(f"{where}: @approvers belongs on an @approval rule.")
    approvers = tuple(r.strip() for r in notes.get("approvers", "").split(",") if r.strip())
    return PolicyInfo(
        id=notes.get("id") or f"{path.name}#{index + 1}",
        file=path.name,
        line=line,
        effect=effect,
        reason=notes.get("reason"),
        approval=notes.get("approval"),
        approvers=approvers,
        actions=_actions(policy.get("action") or {}, schema),
        principal=_scope_text(policy.get("principal") or {}),
        conditional=bool(policy.get("conditions")),
    )


def _actions(scope: dict[str, Any], schema: CedarSchema) -> frozenset[str] | None:
    op = scope.get("op")
    if op == "==":
        return frozenset({scope["entity"]["id"]})
    if op == "in":
        refs = scope.get("entities") or [scope["entity"]]
        found: set[str] = set()
        for ref in refs:
            found |= schema.members_of(ref["id"])
        return frozenset(found)
    return None


def _scope_text(scope: dict[str, Any]) -> str:
    op = scope.get("op")
    ref = scope.get("entity") or {}
    if op in ("==", "in"):
        return f'{"" if op == "==" else "in "}{ref.get("type")}::"{ref.get("id")}"'
    if op == "is":
        inner = scope.get("in", {}).get("entity")
        return f"any {scope.get('entity_type')}" + (
            f' in {inner["type"]}::"{inner["id"]}"' if inner else ""
        )
    return "anyone"


def _statements(text: str) -> list[tuple[int, int, int]]:
    """(line, start, end) of each policy statement, skipping comments and strings."""
    found: list[tuple[int, int, int]] = []
    line, i, begin = 1, 0, None
    while i < len(text):
        ch = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        if ch == "\n":
            line += 1
        elif ch == '"':
            i += 1
            while i < len(text) and text[i] != '"':
                if text[i] == "\\":
                    i += 1
                elif text[i] == "\n":
                    line += 1
                i += 1
        elif ch == ";" and begin is not None:
            found.append((begin[0], begin[1], i + 1))
            begin = None
        elif not ch.isspace() and begin is None:
            begin = (line, i)
        i += 1
    if begin is not None:
        found.append((begin[0], begin[1], len(text)))
    return found


def _statement_lines(text: str) -> list[int]:
    return [line for line, _, _ in _statements(text)]


def _locate_parse_error(path: Path, text: str) -> str:
    """``path:line`` of the first statement that does not parse on its own."""
    for line, begin, end in _statements(text):
        try:
            cedarpy.policies_to_json_str(text[begin:end])
        except ValueError:
            return f"{path}:{line}"
    return str(path)
