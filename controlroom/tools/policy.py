"""The Cedar policy gate: who may run which tool, with which arguments, and what waits.

Every call becomes one Cedar request, evaluated against policies parsed once:

* principal: ``User::"<id>"``, its roles as parent ``Role::"<role>"`` entities, its
  directory attributes as entity attributes (typed by the schema's ``User`` shape);
* action: ``Action::"<tool name>"``;
* resource: what the tool declares it acts on (``Invoice::"INV-1001"`` from the argument
  named by ``resource_id``; otherwise ``Tool::"<tool name>"``), with the attributes its
  ``resource_loader`` returns;
* context: the validated arguments, the facts the tool derives from them
  (``context_facts``) and ``effect`` (``"read"``, ``"write"`` or ``"irreversible"``).

Cedar's rules hold: default deny, and a matching ``forbid`` overrides every ``permit``.
Approval is a second question asked only of permitted calls: a ``permit`` annotated
``@approval("why")`` grants nothing by itself, and when one matches a permitted call the
verdict is ``approve`` with its id and reason. A tool declared ``irreversible`` (or
``requires_approval=True``) always waits for a person as well, whatever the policies say.
The gate fails closed: a policy that cannot be evaluated, a value that cannot be given to
the policies, or a resource that does not exist denies the call.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cedarpy

from controlroom.identity import Principal
from controlroom.tools.cedar import CedarValueError, dumps, entity, record
from controlroom.tools.gate import Decision, Verdict
from controlroom.tools.policy_files import PolicyBundle, PolicyInfo, load_policy_folder
from controlroom.tools.spec import Tool

USER_TYPE, ROLE_TYPE, LABEL_TYPE = "User", "Role", "Label"
READ_DOCUMENT = "read_document"
PROJECT_POLICIES = "policies"
BUILTIN_PREFIX = "builtin:"
_TEMPLATE = re.compile(r"\{(principal|context|resource)\.([A-Za-z_][A-Za-z0-9_]*)\}|\{action\}")
_ERROR_POLICY = re.compile(r"policy `([^`]+)`")
_MAX_CACHED = 1024
_GATES: dict[tuple[str, str], PolicyGate] = {}


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(_show(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class _LookedUp:
    """What the gate looked up for one call besides its arguments."""

    kind: str
    ident: str
    attributes: dict[str, Any]
    context: dict[str, Any]

    def as_facts(self) -> dict[str, Any]:
        """The record of it in a :class:`Decision` (and so in the audit)."""
        resource = {"type": self.kind, "id": self.ident, "attributes": self.attributes}
        return {"resource": resource, "context": self.context}


class PolicyGate:
    """A :class:`~controlroom.tools.gate.Gate` deciding with Cedar policies from a folder."""

    def __init__(self, bundle: PolicyBundle) -> None:
        self.bundle = bundle
        self._order = {pid: n for n, pid in enumerate(bundle.policies)}
        # parsed entity sets: per principal, and per (principal, resource) for repeated calls
        self._principals: dict[str, tuple[Principal, cedarpy.Entities, int]] = {}
        self._with_resource: dict[tuple[int, str], cedarpy.Entities] = {}
        self._generation = itertools.count()
        self._rules: dict[str, str] = {}  # per action: what its permits require
        self._label_cache: dict[tuple[str, str], tuple[Principal, Decision]] = {}

    @classmethod
    def load(cls, folder: Path | str) -> PolicyGate:
        """The gate for the policies in ``folder``: the same gate (and its parsed entity
        caches) while the files are unchanged, a new one once they change."""
        bundle = load_policy_folder(folder)
        key = (str(bundle.folder), bundle.digest)
        gate = _GATES.get(key)
        if gate is None or gate.bundle is not bundle or type(gate) is not cls:
            if len(_GATES) >= 64:
                _GATES.clear()
            gate = _GATES[key] = cls(bundle)
        return gate

    @property
    def policy_hash(self) -> str:
        """Content hash of the policy files and schema that decide."""
        return self.bundle.digest

    @property
    def policies(self) -> dict[str, PolicyInfo]:
        return self.bundle.policies

    # the decision ------------------------------------------------------------------
    def decide(self, principal: Principal, tool: Tool, args: dict[str, Any]) -> Decision:
        kind, ident = tool.resource_ref(args)
        try:
            facts = dict(tool.context_facts(args)) if tool.context_facts else {}
            resource_attrs = dict(tool.resource_loader(ident)) if tool.resource_loader else {}
        except LookupError as exc:
            reason = str(exc.args[0]) if exc.args else f"there is no {kind} {ident}"
            return self._deny(reason, ("resource-lookup",), {"lookup_error": reason})
        except Exception as exc:  # a failing lookup denies: the gate fails closed
            reason = f"{kind} {ident} could not be looked up: {exc}"
            return self._deny(reason, ("resource-lookup",), {"lookup_error": reason})
        looked = _LookedUp(kind, ident, resource_attrs, facts)
        decision = self._evaluate(principal, tool, args, looked)
        if tool.resource_loader is None and tool.context_facts is None:
            return decision
        return decision.model_copy(update={"facts": looked.as_facts()})

    def _evaluate(
        self, principal: Principal, tool: Tool, args: dict[str, Any], looked: _LookedUp
    ) -> Decision:
        kind, ident, resource_attrs, facts = (
            looked.kind,
            looked.ident,
            looked.attributes,
            looked.context,
        )
        values = {**args, **facts}
        resource_view = {"id": ident, **resource_attrs}
        view = {"principal": principal, "context": values, "resource": resource_view}
        try:
            request, entities = self._request(
                principal, tool, (kind, ident, resource_attrs), values
            )
            result = cedarpy.is_authorized(request, self.bundle.policy_set, entities)
        except CedarValueError as exc:
            return self._deny(f"the call cannot be checked: {exc}", ("policy-input",))
        except ValueError as exc:  # Cedar refused the request itself
            return self._deny(f"the call cannot be checked: {exc}", ("policy-input",))
        errors = result.diagnostics.errors
        if errors:
            failed = tuple(dict.fromkeys(_ERROR_POLICY.findall(" ".join(errors))))
            return self._deny(
                f"policy {', '.join(failed) or '?'} could not be evaluated for this call "
                f"({errors[0]}); denied to be safe",
                failed or ("policy-error",),
            )
        matched = sorted(result.diagnostics.reasons, key=lambda p: self._order.get(p, 1 << 30))
        infos = [self.bundle.policies[p] for p in matched if p in self.bundle.policies]
        if not result.allowed:
            if infos:
                reason = "; ".join(
                    self._render(p.reason, view, tool) or f"forbidden by {p.id}" for p in infos
                )
                return self._deny(reason, tuple(p.id for p in infos))
            return self._default_deny(principal, tool)
        permits = [p for p in infos if p.approval is None]
        approvals = [p for p in infos if p.approval is not None]
        if not permits:
            return self._default_deny(principal, tool)
        why = [self._render(p.approval, view, tool) or p.id for p in approvals]
        ids = [p.id for p in approvals]
        if tool.needs_approval_by_default:
            builtin = (
                "builtin:requires-approval" if tool.requires_approval else "builtin:irreversible"
            )
            why.append(
                "the tool is declared to require approval"
                if tool.requires_approval
                else "the tool's effect is irreversible"
            )
            ids.append(builtin)
        permit_ids = tuple(p.id for p in permits)
        if why:
            approvers = tuple(dict.fromkeys(r for p in approvals for r in p.approvers))
            return Decision(
                verdict=Verdict.APPROVE,
                reason="; ".join(why),
                policies=(*ids, *permit_ids),
                approvers=approvers,
                policy_hash=self.policy_hash,
            )
        return Decision(
            verdict=Verdict.ALLOW,
            reason=f"permitted by {', '.join(permit_ids)}",
            policies=permit_ids,
            policy_hash=self.policy_hash,
        )

    # documents ---------------------------------------------------------------------------
    def may_read(self, principal: Principal, labels: Iterable[str]) -> dict[str, Decision]:
        """Which document access labels ``principal`` may read, one Cedar request each.

        The request is ``principal``, ``Action::"read_document"``, ``Label::"<label>"``
        (attribute ``name``), context ``effect: "read"``. Default deny, forbid wins, and any
        evaluation error denies that label.
        """
        out: dict[str, Decision] = {}
        wanted = list(dict.fromkeys(labels))
        if READ_DOCUMENT not in self.bundle.schema.action_context:
            reason = (
                f"the policy schema of {self.bundle.folder} does not declare the action "
                f"`{READ_DOCUMENT}`, so no document may be read (see the `documents.cedar` "
                "policies of builtin:pack)"
            )
            return {label: self._deny(reason, ("default-deny",)) for label in wanted}
        try:
            entities, _ = self._principal_entities(principal)
        except CedarValueError as exc:
            return {
                label: self._deny(f"{principal.id} cannot be checked: {exc}", ("policy-input",))
                for label in wanted
            }
        for label in wanted:
            cached = self._label_cache.get((principal.id, label))
            if cached is not None and cached[0] == principal:
                out[label] = cached[1]
                continue
            delta = dumps([entity(LABEL_TYPE, label, {"name": label})])
            request = {
                "principal": {"type": USER_TYPE, "id": principal.id},
                "action": {"type": "Action", "id": READ_DOCUMENT},
                "resource": {"type": LABEL_TYPE, "id": label},
                "context": {"effect": "read"},
            }
            try:
                result = cedarpy.is_authorized(
                    request, self.bundle.policy_set, entities.with_added_json_str(delta)
                )
            except ValueError as exc:
                why = f"label {label!r} cannot be checked: {exc}"
                out[label] = self._deny(why, ("policy-input",))
                continue
            matched = sorted(result.diagnostics.reasons, key=lambda p: self._order.get(p, 1 << 30))
            if result.diagnostics.errors:
                decision = self._deny(
                    f"the policies could not be evaluated for label {label!r}; denied to be safe",
                    ("policy-error",),
                )
            elif result.allowed:
                decision = Decision(
                    verdict=Verdict.ALLOW,
                    reason=f"permitted by {', '.join(matched)}",
                    policies=tuple(matched),
                    policy_hash=self.policy_hash,
                )
            else:
                decision = self._deny(
                    f"no policy lets {principal.id} read documents labelled {label!r}"
                    if not matched
                    else f"forbidden by {', '.join(matched)}",
                    tuple(matched) or ("default-deny",),
                )
            if len(self._label_cache) >= _MAX_CACHED * 4:
                self._label_cache.clear()
            self._label_cache[(principal.id, label)] = (principal, decision)
            out[label] = decision
        return out

    # building the request --------------------------------------------------------------
    def _request(
        self,
        principal: Principal,
        tool: Tool,
        resource: tuple[str, str, Mapping[str, Any]],
        values: Mapping[str, Any],
    ) -> tuple[dict[str, Any], cedarpy.Entities]:
        schema = self.bundle.schema
        kind, ident, resource_attrs = resource
        types = schema.action_context.get(tool.name, {})
        if "effect" in values:
            raise CedarValueError("the argument name `effect` is reserved for the tool's effect")
        context = record(values, types, "")
        context["effect"] = tool.effect.value
        entities, generation = self._principal_entities(principal)
        if resource_attrs:
            attrs = record(resource_attrs, schema.entity_attrs.get(kind, {}), f"{kind} {ident}")
            delta = dumps([entity(kind, ident, attrs)])
            combined = self._with_resource.get((generation, delta))
            if combined is None:
                combined = entities.with_added_json_str(delta)
                if len(self._with_resource) >= _MAX_CACHED:
                    self._with_resource.clear()
                self._with_resource[(generation, delta)] = combined
            entities = combined
        request = {
            "principal": {"type": USER_TYPE, "id": principal.id},
            "action": {"type": "Action", "id": tool.name},
            "resource": {"type": kind, "id": ident},
            "context": context,
        }
        return request, entities

    def _principal_entities(self, principal: Principal) -> tuple[cedarpy.Entities, int]:
        cached = self._principals.get(principal.id)
        if cached is not None and (cached[0] is principal or cached[0] == principal):
            return cached[1], cached[2]
        types = self.bundle.schema.entity_attrs.get(USER_TYPE, {})
        attrs = record(principal.attributes, types, f"user {principal.id}'s attribute")
        docs = [entity(USER_TYPE, principal.id, attrs, [(ROLE_TYPE, r) for r in principal.roles])]
        docs += [entity(ROLE_TYPE, r, {}) for r in principal.roles]
        docs += [
            entity("Action", action, {}, [("Action", g) for g in groups])
            for action, groups in self.bundle.schema.action_groups.items()
            if groups
        ]
        handle = cedarpy.Entities.from_json_str(dumps(docs))
        if len(self._principals) >= _MAX_CACHED:
            self._principals.clear()
        generation = next(self._generation)
        self._principals[principal.id] = (principal, handle, generation)
        return handle, generation

    # explanations ------------------------------------------------------------------------
    def _deny(
        self, reason: str, policies: tuple[str, ...], facts: dict[str, Any] | None = None
    ) -> Decision:
        return Decision(
            verdict=Verdict.DENY,
            reason=reason,
            policies=policies,
            policy_hash=self.policy_hash,
            facts=facts,
        )

    def _default_deny(self, principal: Principal, tool: Tool) -> Decision:
        why = self._rules.get(tool.name)
        if why is None:
            rules = [
                p.reason
                for p in self.bundle.for_action(tool.name)
                if p.effect == "permit" and p.approval is None and p.reason
            ]
            if tool.name not in self.bundle.schema.action_context:
                why = f"the policy schema does not declare the action `{tool.name}`"
            else:
                why = "; ".join(dict.fromkeys(rules))
            self._rules[tool.name] = why
        return self._deny(why or f"no policy permits {principal.id} to use {tool.name}",
                          ("default-deny",))  # fmt: skip

    @staticmethod
    def _render(template: str | None, view: dict[str, Any], tool: Tool) -> str | None:
        if template is None:
            return None
        principal: Principal = view["principal"]

        def fill(match: re.Match[str]) -> str:
            if match.group(0) == "{action}":
                return tool.name
            scope, name = match.group(1), match.group(2)
            if scope == "principal":
                if name in ("id", "name"):
                    return principal.id if name == "id" else principal.display_name
                value = principal.attributes.get(name)
            else:
                value = view[scope].get(name)
            return "none" if value is None else _show(value)

        return _TEMPLATE.sub(fill, template)


def load_policy_gate(path: Path | str) -> PolicyGate:
    """The policy gate for a folder of policies (parsed once per content)."""
    return PolicyGate.load(path)


def project_gate(home: Path | str) -> PolicyGate | None:
    """The project's default policy gate (``<home>/policies``), or None when it has none."""
    folder = Path(home) / PROJECT_POLICIES
    return PolicyGate.load(folder) if folder.is_dir() else None


def builtin_policies(name: str) -> Path:
    """A policy folder shipped with controlroom (``pack``: the enterprise tool pack's)."""
    from importlib import resources

    return Path(str(resources.files("controlroom") / "data" / "policies" / name))


def resolve_policies(ref: str | Path, base_dir: Path) -> Path:
    """The folder a ``policies:`` value names: ``builtin:NAME`` or a path from ``base_dir``."""
    text = str(ref)
    if text.startswith(BUILTIN_PREFIX):
        return builtin_policies(text.removeprefix(BUILTIN_PREFIX))
    path = Path(text).expanduser()
    return path if path.is_absolute() else base_dir / path


def may_approve(decision: Decision, approver: Principal, requester: Principal) -> str | None:
    """Why ``approver`` may not approve a call decided as ``decision`` (None: they may).

    Approval rules with ``@approvers`` name roles; the approver must hold one of them and
    be someone other than the user the run acts for.
    """
    if not decision.approvers:
        return None
    if approver.id == requester.id:
        return f"{approver.id} cannot approve their own request ({decision.reason})"
    if not set(decision.approvers) & set(approver.roles):
        return (
            f"{approver.id} cannot approve this: it needs someone with the role "
            f"{' or '.join(decision.approvers)} ({decision.reason})"
        )
    return None


__all__ = [
    "PolicyGate",
    "builtin_policies",
    "load_policy_gate",
    "may_approve",
    "project_gate",
    "resolve_policies",
]
