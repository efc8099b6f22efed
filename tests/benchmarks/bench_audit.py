"""Cost of the audit trail, measured in one run: appends with and without fsync batching,
signed checkpoints, and verification speed.

Usage::

    python tests/benchmarks/bench_audit.py --out bench-audit.json [--smoke]

On a temporary folder on the same file system as the working directory:

* **append, batched** (``fsync="batch"``, the default): ``AuditLog.append`` of a typical
  record (a model call, ~1.2 KB of canonical JSON); each record is written at once and the
  file is ``fdatasync``'d every 64 records, at durable records and at checkpoints;
* **append, fsync each** (``fsync="always"``, what every durable record costs: decisions
  and approvals are always synced before a tool runs): the same record, synced each time;
* **record, end to end**: ``RunAudit.model_call``, i.e. building the record from a real
  conversation and reply, scrubbing secrets, hashing the input and output, then the
  batched append;
* **checkpoint**: one Ed25519-signed checkpoint (signature, sync, head file, directory sync);
* **verify**: ``verify_log`` of a 10,000-record log signed every 100 records, in records/s.

Both append modes are timed in alternating rounds (A B, B A, ...) in one process. This is a
benchmark, not a test: nothing asserts on timings. With ``--smoke`` every part runs on a few
records only (tests/benchmarks/common.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from controlroom.audit import AuditLog, Redactor, RunAudit, Signer, verify_log  # noqa: E402
from controlroom.audit.canonical import canonical  # noqa: E402
from controlroom.audit.recorder import WorkflowInfo  # noqa: E402
from controlroom.testing import ScriptedChatModel  # noqa: E402
from tests.benchmarks.common import parse_args  # noqa: E402

RECORD: dict[str, Any] = {
    "kind": "model.call",
    "step": 3,
    "node": "agent",
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "scripted",
    "gen_ai.request.model": "script.yaml",
    "controlroom.prompt.id": "invoice-payment/agent",
    "controlroom.prompt.version": "1",
    "gen_ai.system_instructions": [
        {"type": "text", "content": "You are the accounts-payable assistant. " * 6}
    ],
    "controlroom.input.sha256": "sha256:" + "ab" * 32,
    "gen_ai.output.messages": [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "The invoice is open; I will pay the amount due."},
                {
                    "type": "tool_call",
                    "id": "call_1_0",
                    "name": "pay_invoice",
                    "arguments": {"invoice_id": "INV-1001", "amount": 1250.5},
                },
            ],
            "finish_reason": "tool_calls",
        }
    ],
    "controlroom.output.sha256": "sha256:" + "cd" * 32,
    "gen_ai.usage.input_tokens": 86,
    "gen_ai.usage.output_tokens": 26,
    "controlroom.latency_ms": 0.445,
}


def stats(samples_us: list[float]) -> dict[str, float]:
    ordered = sorted(samples_us)
    return {
        "mean": statistics.fmean(ordered),
        "median": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "min": ordered[0],
        "max": ordered[-1],
    }


def time_appends(log: AuditLog, n: int, record: dict[str, Any]) -> list[float]:
    out = []
    for i in range(n):
        fields = {**record, "step": i}
        start = time.perf_counter_ns()
        log.append(fields)
        out.append((time.perf_counter_ns() - start) / 1000)
    return out


def bench_appends(
    folder: Path, rounds: int, per_round: int, signer: Signer, warmup: int = 50
) -> dict[str, Any]:
    batched: list[float] = []
    each: list[float] = []
    logs = {
        "batch": AuditLog(folder / "rbatch.jsonl", "rbatch", signer=signer, fsync="batch"),
        "always": AuditLog(folder / "ralways.jsonl", "ralways", signer=signer, fsync="always"),
    }
    time_appends(logs["batch"], warmup, RECORD)  # warm-up
    time_appends(logs["always"], max(1, warmup * 2 // 5), RECORD)
    for r in range(rounds):
        order = ("batch", "always") if r % 2 == 0 else ("always", "batch")
        for mode in order:
            samples = time_appends(logs[mode], per_round, RECORD)
            (batched if mode == "batch" else each).extend(samples)
    for log in logs.values():
        log.close()
    size = len(canonical({**RECORD, "seq": 1, "time": "x" * 24, "prev_hash": "x" * 71}))
    return {
        "record_bytes": size,
        "batched_us": stats(batched),
        "fsync_each_us": stats(each),
        "n_each": len(batched),
        "note": "checkpoints every 100 records are included in both (as in a run)",
    }


def bench_recorder(folder: Path, n: int, signer: Signer) -> dict[str, float]:
    log = AuditLog(folder / "rrec.jsonl", "rrec", signer=signer)
    audit = RunAudit(log, Redactor.from_environment(), WorkflowInfo("bench", "1", "sha256:x"))
    messages = [
        SystemMessage("You are the accounts-payable assistant. " * 6),
        HumanMessage("Pay invoice INV-1001"),
        AIMessage(
            "I will look it up.",
            tool_calls=[{"name": "lookup_invoice", "args": {"invoice_id": "INV-1001"}, "id": "c0"}],
        ),
        ToolMessage('{"amount_due": 1250.0, "status": "open"}', tool_call_id="c0"),
    ]
    reply = AIMessage(
        "Paying.",
        tool_calls=[
            {
                "name": "pay_invoice",
                "args": {"invoice_id": "INV-1001", "amount": 1250.0},
                "id": "c1",
            }
        ],
        usage_metadata={"input_tokens": 86, "output_tokens": 26, "total_tokens": 112},
    )
    model = ScriptedChatModel(replies=["x"])
    samples = []
    for i in range(n):
        start = time.perf_counter_ns()
        audit.model_call(
            step=i,
            node="agent",
            spec="scripted:x",
            model=model,
            messages=messages,
            tools=["lookup_invoice", "pay_invoice"],
            reply=reply,
            latency_s=0.001,
        )
        samples.append((time.perf_counter_ns() - start) / 1000)
    log.close()
    return stats(samples)


def bench_checkpoints(folder: Path, n: int, signer: Signer) -> dict[str, float]:
    log = AuditLog(folder / "rcp.jsonl", "rcp", signer=signer, checkpoint_every=10**9)
    samples = []
    for i in range(n):
        log.append({**RECORD, "step": i})
        start = time.perf_counter_ns()
        log.checkpoint("bench")
        samples.append((time.perf_counter_ns() - start) / 1000)
    log.close()
    return stats(samples)


def bench_verify(folder: Path, records: int, repeats: int, signer: Signer) -> dict[str, Any]:
    path = folder / "rverify.jsonl"
    log = AuditLog(path, "rverify", signer=signer, checkpoint_every=100, batch=10**6)
    while log.next_seq < records - 1:
        log.append({**RECORD, "step": log.next_seq})
    log.checkpoint("completed")
    log.close()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        report = verify_log(path, expected_key=signer.public)
        elapsed = time.perf_counter() - start
        assert report.ok, report.summary()
        rates.append(report.records / elapsed)
    return {
        "records": report.records,
        "bytes": path.stat().st_size,
        "records_per_s": {
            "mean": statistics.fmean(rates),
            "median": statistics.median(rates),
            "min": min(rates),
            "max": max(rates),
        },
        "repeats": repeats,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, default=Path("bench-audit.json"))
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=100)
    parser.add_argument("--verify-records", type=int, default=10_000)
    parser.add_argument("--verify-repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=50, help="untimed batched appends first")
    parser.add_argument("--records", type=int, default=1000, help="model.call records timed")
    parser.add_argument("--checkpoints", type=int, default=100, help="checkpoints timed")
    args = parse_args(
        parser,
        argv,
        smoke={
            "rounds": 2,
            "per_round": 5,
            "verify_records": 250,  # still more than one signed checkpoint (every 100)
            "verify_repeats": 1,
            "warmup": 5,
            "records": 10,
            "checkpoints": 3,
        },
    )
    signer = Signer.generate()
    with tempfile.TemporaryDirectory(prefix="bench-audit-", dir=Path.cwd()) as tmp:
        folder = Path(tmp)
        step: Callable[[str], None] = lambda what: print(f"bench_audit: {what}", flush=True)  # noqa: E731
        step("appends (batched vs fsync each)")
        appends = bench_appends(folder, args.rounds, args.per_round, signer, args.warmup)
        step("recorder (model call, end to end)")
        recorder = bench_recorder(folder, args.records, signer)
        step("checkpoints")
        checkpoints = bench_checkpoints(folder, args.checkpoints, signer)
        step(f"verify ({args.verify_records} records)")
        verify = bench_verify(folder, args.verify_records, args.verify_repeats, signer)
    result = {
        "benchmark": "controlroom audit trail: append cost, checkpoints, verification speed",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "append_per_record": appends,
        "model_call_record_end_to_end_us": recorder,
        "signed_checkpoint_us": checkpoints,
        "verify": verify,
        "environment": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "rfc8785": version("rfc8785"),
            "cryptography": version("cryptography"),
        },
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    b, e = appends["batched_us"], appends["fsync_each_us"]
    print(
        f"append per record: batched {b['median']:.1f} µs (mean {b['mean']:.1f}), "
        f"fsync each {e['median']:.1f} µs (mean {e['mean']:.1f}); "
        f"model.call record end to end {recorder['median']:.1f} µs; "
        f"checkpoint {checkpoints['median']:.0f} µs; "
        f"verify {verify['records_per_s']['median']:,.0f} records/s -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
