"""Latency of the Cedar policy gate, and its overhead per tool call, measured in one run.

Usage::

    python tests/benchmarks/bench_gate.py --out bench-gate.json [--smoke]

On a freshly seeded enterprise database (temp dir), with the tool pack's shipped policies
parsed once:

* **decide**: ``PolicyGate.decide`` for a mix of calls covering allow, deny (forbid and
  default deny), approve, and tools with and without a resource lookup in SQLite, repeated
  calls and calls on resources the gate has not seen before (its cache of parsed entity
  sets cleared before each); p50 / p99 per case and over all. The issue's target is p50
  under 0.2 ms.
* **cedar**: ``cedarpy.is_authorized`` alone on a prebuilt request (what Cedar costs).
* **declared**: the effect-only ``DeclaredGate`` (what a gate costs at the least).
* **per call**: the same read and write tool calls made directly (``tool.invoke`` with
  validated arguments), after validating the raw arguments, and through the gate
  (validate, decide, invoke), interleaved call by call, so the overhead per call (and the
  decision's part of it) is measured in the same run.

Timings use ``time.perf_counter_ns`` with garbage collection left on (p99 includes its
pauses). This is a benchmark, not a test: nothing asserts on timings. With ``--smoke`` every
case runs a few times only (tests/benchmarks/common.py).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import cedarpy

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from controlroom import DeclaredGate, Directory, PolicyGate, ToolContext, Verdict  # noqa: E402
from controlroom.tools import pack  # noqa: E402
from controlroom.tools.pack.seed import seed_database  # noqa: E402
from controlroom.tools.policy import builtin_policies  # noqa: E402
from tests.benchmarks.common import parse_args  # noqa: E402

TOOLS = {t.name: t for t in pack.tools}
CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "allow, no lookup (find_employees)": ("carol", "find_employees", {"query": "chen"}),
    "allow, lookup (get_salary by manager)": ("erin", "get_salary", {"employee_id": "E0008"}),
    "default deny, lookup (get_salary)": ("alice", "get_salary", {"employee_id": "E0008"}),
    "forbid, lookup (payment over limit)": (
        "alice", "create_payment", {"invoice_id": "INV-1003", "amount": 9000}
    ),
    "approve, lookup (large payment)": (
        "bob", "create_payment", {"invoice_id": "INV-1003", "amount": 12000}
    ),
    "approve, facts (outside mail)": (
        "alice", "send_mail", {"to": ["p@northwind.example"], "subject": "s", "body": "b"}
    ),
    "allow, facts (inside mail)": (
        "alice", "send_mail", {"to": ["bob@example.com"], "subject": "s", "body": "b"}
    ),
}  # fmt: skip
PER_CALL: dict[str, tuple[str, str, dict[str, Any]]] = {
    "find_employees (read)": ("carol", "find_employees", {"query": "an", "limit": 10}),
    "get_salary (read, lookup)": ("erin", "get_salary", {"employee_id": "E0008"}),
    "get_invoice (read, lookup)": ("alice", "get_invoice", {"invoice_id": "INV-1001"}),
    "send_mail (write)": ("alice", "send_mail", {"to": ["bob@example.com"], "subject": "s",
                                                "body": "b"}),
}  # fmt: skip


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6

    return {
        "n": len(ordered),
        "p50_ms": round(at(0.50), 4),
        "p90_ms": round(at(0.90), 4),
        "p99_ms": round(at(0.99), 4),
        "mean_ms": round(statistics.fmean(ordered) / 1e6, 4),
    }


def timed(
    fn: Callable[[], object], n: int, warmup: int, before: Callable[[], object] | None = None
) -> list[int]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        if before is not None:
            before()
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return samples


class FirstSight:
    """Decisions on a different employee each time, with the gate's entity cache cleared."""

    def __init__(self, gate: PolicyGate, principal: Any, tool: Any) -> None:
        self.gate, self.principal, self.tool = gate, principal, tool
        self.ids = itertools.cycle(f"E{n:04d}" for n in range(1, 201))
        self.args: dict[str, Any] = {}

    def next(self) -> None:
        # Private hook: the gate has no public way to forget the (principal, resource) entity
        # sets it parsed, and this case times exactly a decision without that cache. Its
        # principal cache stays warm (a run's principal is the same for every call).
        self.gate._with_resource.clear()
        self.args = {"employee_id": next(self.ids)}

    def decide(self) -> object:
        return self.gate.decide(self.principal, self.tool, self.args)


class Call:
    """One tool call made directly, or validated, decided and then made."""

    def __init__(
        self, gate: PolicyGate, tool: Any, principal: Any, raw: dict[str, Any], home: Path,
        keys: Iterator[int],
    ) -> None:  # fmt: skip
        self.gate, self.tool, self.principal, self.raw = gate, tool, principal, raw
        self.home, self.keys = home, keys
        self.checked = tool.validate_args(raw)

    def ctx(self) -> ToolContext:
        key = f"bench:{next(self.keys)}"
        return ToolContext(principal=self.principal, run_id="bench", call_id=key,
                           idempotency_key=key, home=self.home)  # fmt: skip

    def direct(self) -> object:
        return self.tool.invoke(self.checked, self.ctx())

    def validated(self) -> object:
        return self.tool.invoke(self.tool.validate_args(self.raw), self.ctx())

    def gated(self) -> object:
        checked = self.tool.validate_args(self.raw)
        decision = self.gate.decide(self.principal, self.tool, checked.model_dump(mode="json"))
        if decision.verdict is Verdict.DENY:
            raise AssertionError(decision.reason)
        return self.tool.invoke(checked, self.ctx())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, default=Path("bench-gate.json"))
    parser.add_argument("--n", type=int, default=3000, help="timed decisions per case")
    parser.add_argument("--calls", type=int, default=1000, help="timed tool calls per kind")
    parser.add_argument("--warmup", type=int, default=300)
    args = parse_args(parser, argv, smoke={"n": 20, "calls": 10, "warmup": 3})
    began = time.perf_counter()
    directory = Directory.load(REPO / "controlroom" / "data" / "sample_directory.yaml")

    with tempfile.TemporaryDirectory(prefix="cr-bench-gate-") as tmp:
        db = Path(tmp) / "enterprise.sqlite"
        seed_database(db)
        os.environ["CONTROLROOM_PACK_DB"] = str(db)
        parse_started = time.perf_counter()
        gate = PolicyGate.load(builtin_policies("pack"))
        parse_ms = (time.perf_counter() - parse_started) * 1e3

        decide: dict[str, Any] = {}
        everything: list[int] = []
        for label, (user, name, raw) in CASES.items():
            tool, principal = TOOLS[name], directory[user]
            checked = tool.validate_args(raw).model_dump(mode="json")
            verdict = gate.decide(principal, tool, checked).verdict
            samples = timed(partial(gate.decide, principal, tool, checked), args.n, args.warmup)
            everything += samples
            decide[label] = {"verdict": verdict.value, **percentiles(samples)}
        # The gate keeps parsed (user, resource) entity sets for repeated calls; these cases
        # clear that cache before every decision: a resource the gate has not seen before.
        for user in ("erin", "alice"):
            label = f"first sight of a resource, lookup (get_salary by {user}, 200 employees)"
            cold = FirstSight(gate, directory[user], TOOLS["get_salary"])
            samples = timed(cold.decide, args.n, 0, before=cold.next)
            everything += samples
            decide[label] = {"verdict": "mixed", **percentiles(samples)}

        user, name, raw = CASES["allow, lookup (get_salary by manager)"]
        request = {
            "principal": {"type": "User", "id": user},
            "action": {"type": "Action", "id": name},
            "resource": {"type": "Employee", "id": raw["employee_id"]},
            "context": {"employee_id": raw["employee_id"], "effect": "read"},
        }
        # Private hook: the parsed Cedar entities of a principal are what the gate hands Cedar,
        # and timing Cedar alone on exactly those is the point of this figure.
        entities = gate._principal_entities(directory[user])[0].with_added_json_str(
            json.dumps([{"uid": {"type": "Employee", "id": "E0008"},
                         "attrs": {"department": "engineering",
                                   "user": {"__entity": {"type": "User", "id": "carol"}},
                                   "managers": [{"__entity": {"type": "User", "id": "erin"}},
                                                {"__entity": {"type": "User", "id": "frank"}}]},
                         "parents": []}])
        )  # fmt: skip
        policy_set = gate.bundle.policy_set
        assert cedarpy.is_authorized(request, policy_set, entities).allowed
        cedar = percentiles(
            timed(lambda: cedarpy.is_authorized(request, policy_set, entities), args.n, args.warmup)
        )
        declared_gate, tool = DeclaredGate(), TOOLS[name]
        declared = percentiles(
            timed(lambda: declared_gate.decide(directory[user], tool, raw), args.n, args.warmup)
        )

        per_call: dict[str, Any] = {}
        keys = itertools.count()
        for label, (user, name, raw) in PER_CALL.items():
            call = Call(gate, TOOLS[name], directory[user], raw, Path(tmp), keys)
            variants = {"direct": call.direct, "validated": call.validated, "gated": call.gated}
            for _ in range(args.warmup // 3):
                for fn in variants.values():
                    fn()
            samples: dict[str, list[int]] = {variant: [] for variant in variants}
            order = list(variants)
            for i in range(args.calls):  # interleaved, rotating which goes first
                for variant in order[i % 3 :] + order[: i % 3]:
                    start = time.perf_counter_ns()
                    variants[variant]()
                    samples[variant].append(time.perf_counter_ns() - start)
            d, v, g = (percentiles(samples[variant]) for variant in order)
            per_call[label] = {
                "direct": d,
                "validated_then_called": v,
                "through_gate": g,
                "overhead_p50_ms": round(g["p50_ms"] - d["p50_ms"], 4),
                "overhead_p50_pct": round(100 * (g["p50_ms"] / d["p50_ms"] - 1), 1),
                "of_which_decision_p50_ms": round(g["p50_ms"] - v["p50_ms"], 4),
            }
        os.environ.pop("CONTROLROOM_PACK_DB", None)

    overall = percentiles(everything)
    result = {
        "benchmark": "policy gate",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "cedarpy": version("cedarpy"),
        },
        "policies": {
            "folder": "builtin:pack",
            "count": len(gate.policies),
            "parse_and_validate_ms": round(parse_ms, 2),
        },
        "decide": {"all": overall, "by_case": decide},
        "cedar_is_authorized_alone": cedar,
        "declared_gate_decide": declared,
        "per_tool_call": per_call,
        "target": {"p50_under_ms": 0.2, "met": overall["p50_ms"] < 0.2},
        "seconds": round(time.perf_counter() - began, 1),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"gate decide: p50 {overall['p50_ms']} ms, p99 {overall['p99_ms']} ms "
          f"(target p50 < 0.2 ms: {'met' if result['target']['met'] else 'NOT met'}); "
          f"cedar alone p50 {cedar['p50_ms']} ms")  # fmt: skip
    for label, row in per_call.items():
        print(f"  {label}: direct p50 {row['direct']['p50_ms']} ms, through the gate "
              f"{row['through_gate']['p50_ms']} ms (+{row['overhead_p50_ms']} ms, of which "
              f"the decision {row['of_which_decision_p50_ms']} ms)")  # fmt: skip
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
