"""How a replay's gate decides: on the record, never on today's world.

:class:`ReplayGate` decides each call with the policy set its recorded decision names
(kept by hash under ``<home>/audit/policies``, loaded by :func:`recorded_gates`) and the
resource attributes and context facts the gate looked up then (:class:`RecordedFacts`),
so a replay needs neither today's data nor today's policies. :class:`DriftCheck` also
decides every call the live way, for ``--redecide``, and keeps where the two differ;
:class:`UnavailableGate` stands in for policies that cannot be loaded today.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from controlroom.audit.policy_sets import load_policy_set
from controlroom.audit.records import CALL_ID, Kind
from controlroom.config import using_home
from controlroom.errors import PolicyError
from controlroom.identity import Directory, Principal
from controlroom.tools.gate import CallRef, Decision, Gate, Verdict, current_call
from controlroom.tools.policy import PolicyGate
from controlroom.tools.spec import Tool


class UnavailableGate:
    """Stands in for policies that cannot be loaded today: every call is denied, saying why
    (a replay then reports the divergence; --redecide reports the drift)."""

    def __init__(self, why: PolicyError) -> None:
        self.why = why

    def decide(self, principal: Principal, tool: Tool, args: dict[str, Any]) -> Decision:
        return Decision(
            verdict=Verdict.DENY,
            reason=f"today's policies cannot be loaded: {self.why.message}",
            policies=("policies-unavailable",),
        )


class RecordedFacts:
    """What the gate decided on in the recorded run, handed back call by call.

    The tools node asks the gate once when a call is planned and again each time the node
    re-executes (after an approval); the approval request holds what the first asking saw,
    the final decision what the last one saw (for edited arguments: the re-check)."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.requested: dict[tuple[int, str], dict[str, Any]] = {}
        self.decided: dict[tuple[int, str], dict[str, Any]] = {}
        for record in records:  # the last attempt of each wins, as in `events`
            key = (int(record.get("step", -1)), str(record.get(CALL_ID)))
            if record.get("kind") == Kind.APPROVAL_REQUESTED and record.get(CALL_ID):
                self.requested[key] = record
            elif record.get("kind") == Kind.TOOL_DECISION and not record.get(
                "controlroom.decision.from_ledger"
            ):  # a decision kept from before a crash did not ask the gate: its first one did
                self.decided[key] = record
        self._asked: Counter[tuple[int, str]] = Counter()

    def record_for(self, ref: CallRef | None) -> dict[str, Any] | None:
        if ref is None:
            return None
        key = (ref.step, ref.call_id)
        requested, decided = self.requested.get(key), self.decided.get(key)
        if ref.purpose == "plan":
            asked = self._asked[key]
            self._asked[key] += 1
            if requested is not None and (asked == 0 or decided is None):
                return requested
            if decided is not None and not decided.get("controlroom.gate.recheck"):
                return decided
            return requested or decided
        return decided or requested  # re-checks of edited arguments


def _with_recorded_facts(tool: Tool, record: dict[str, Any] | None, home: Path) -> Tool:
    """The tool as the gate sees it in a replay: its resource attributes and context facts
    are the ones recorded for this call. A record written before facts were recorded
    falls back to the tool's own look-ups, on the project's data as it is today."""
    if tool.resource_loader is None and tool.context_facts is None:
        return tool
    if record is not None and "controlroom.gate.facts" not in record:
        live_loader, live_facts = tool.resource_loader, tool.context_facts

        def today_loader(ident: str) -> Mapping[str, Any]:
            assert live_loader is not None
            with using_home(home):
                return live_loader(ident)

        def today_facts(args: Mapping[str, Any]) -> Mapping[str, Any]:
            assert live_facts is not None
            with using_home(home):
                return live_facts(args)

        return tool.model_copy(
            update={
                "resource_loader": today_loader if live_loader else None,
                "context_facts": today_facts if live_facts else None,
            }
        )
    facts = (record or {}).get("controlroom.gate.facts")

    def loader(ident: str) -> Mapping[str, Any]:
        if not isinstance(facts, dict):
            raise LookupError(f"the record holds no look-up of {tool.resource} {ident}")
        if "lookup_error" in facts:
            raise LookupError(str(facts["lookup_error"]))
        resource = facts.get("resource") or {}
        if str(resource.get("id")) != ident:
            raise LookupError(f"the record looked up {resource.get('id')}, not {ident}")
        return dict(resource.get("attributes") or {})

    def context(args: Mapping[str, Any]) -> Mapping[str, Any]:
        return dict((facts or {}).get("context") or {}) if isinstance(facts, dict) else {}

    return tool.model_copy(
        update={
            "resource_loader": loader if tool.resource_loader is not None else None,
            "context_facts": context if tool.context_facts is not None else None,
        }
    )


class ReplayGate:
    """The gate of a replay: each call decided by the recorded policy set, on the recorded
    facts; with ``drift`` also by today's gate, on today's data, for comparison."""

    def __init__(
        self,
        facts: RecordedFacts,
        gates: dict[str, Gate],
        fallback: Gate,
        home: Path,
        drift: DriftCheck | None = None,
    ) -> None:
        self.facts = facts
        self.gates = gates
        self.fallback = fallback
        self.home = home
        self.drift = drift
        self.missing: set[str] = set()

    def decide(self, principal: Principal, tool: Tool, args: dict[str, Any]) -> Decision:
        ref = current_call()
        record = self.facts.record_for(ref)
        wanted = (record or {}).get("controlroom.policy.set_hash")
        gate = self.gates.get(str(wanted)) if wanted else None
        if gate is None:
            if wanted and wanted != _hash_of(self.fallback):
                self.missing.add(str(wanted))
            gate = self.fallback
        decision = gate.decide(principal, _with_recorded_facts(tool, record, self.home), args)
        if self.drift is not None and ref is not None:
            self.drift.check(ref, principal, tool, args, decision)
        return decision


def _hash_of(gate: Gate) -> str | None:
    value = getattr(gate, "policy_hash", None)
    return value if isinstance(value, str) else None


class DriftCheck:
    """Today's gate, tools and directory, asked the same questions as the replay."""

    def __init__(self, gate: Gate, tools: dict[str, Tool], home: Path, today: Directory | None):
        self.gate = gate
        self.tools = tools
        self.home = home
        self.today = today
        self.found: dict[tuple[int, str, str], dict[str, Any]] = {}

    def check(
        self,
        ref: CallRef,
        principal: Principal,
        tool: Tool,
        args: dict[str, Any],
        recorded: Decision,
    ) -> None:
        live_tool = self.tools.get(tool.name, tool)
        who = principal
        if self.today is not None and principal.id in self.today:
            who = self.today.get_principal(principal.id)
        try:
            with using_home(self.home):
                now = self.gate.decide(who, live_tool, args)
        except Exception as exc:  # a gate that fails today is drift too
            now = Decision(verdict=Verdict.DENY, reason=f"{type(exc).__name__}: {exc}")
        if now.verdict is recorded.verdict and set(now.policies) == set(recorded.policies):
            self.found.pop((ref.step, ref.call_id, ref.purpose), None)
            return
        self.found[(ref.step, ref.call_id, ref.purpose)] = {
            "step": ref.step,
            "call_id": ref.call_id,
            "tool": tool.name,
            "when": ref.purpose,
            "recorded": _decision_view(recorded),
            "today": _decision_view(now),
        }


def _decision_view(decision: Decision) -> dict[str, Any]:
    return {
        "verdict": decision.verdict.value,
        "policies": list(decision.policies),
        "reason": decision.reason,
        "policy_hash": decision.policy_hash,
    }


@contextlib.contextmanager
def recorded_gates(
    settings_audit: Path, hashes: set[str], scratch: Path
) -> Iterator[dict[str, Gate]]:
    """The policy sets the record names, from their kept copies, as gates."""
    gates: dict[str, Gate] = {}
    for n, digest in enumerate(sorted(hashes)):
        files = load_policy_set(settings_audit, digest)
        if files is None:
            continue
        folder = scratch / "policy-sets" / str(n)
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / Path(name).name).write_text(text, encoding="utf-8")
        gates[digest] = PolicyGate.load(folder)
    yield gates
