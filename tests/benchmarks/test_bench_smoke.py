"""Every benchmark of `make bench` still runs: each script in smoke mode, in a subprocess.

``--smoke`` (tests/benchmarks/common.py) runs a benchmark at tiny sizes through every code
path its full run measures. These tests check that it exits 0 and writes its JSON with the
keys a full run writes and its figures present and numeric. They never look at the values:
timings on a shared CI machine mean nothing, and a benchmark is not a test.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
WILDCARD = "*"
KeyPath = tuple[str | int, ...]  # keys and list indexes into the JSON; "*" = every one


@dataclass(frozen=True)
class Bench:
    id: str
    script: str
    keys: frozenset[str]  # the top-level keys, as a full run writes them
    figures: tuple[KeyPath, ...]  # each must lead to at least one number
    env: dict[str, str] = field(default_factory=dict)
    marks: tuple[pytest.MarkDecorator, ...] = ()
    timeout: float = 240


COMMON = {"benchmark", "smoke", "machine"}
OVERHEAD_KEYS = COMMON | {
    "timestamp",
    "workload",
    "n",
    "warmup",
    "steps_per_run",
    "per_step_ms",
    "per_run_ms_median",
    "cpu_per_step_ms",
    "ratio",
    "ratio_95ci_bootstrap",
    "ratio_of_means",
    "extra_ms_per_step_median_of_pairs",
    "target",
    "meets_target",
    "breakdown",
    "versions",
    "elapsed_s",
}
OVERHEAD_FIGURES: tuple[KeyPath, ...] = (
    ("ratio",),
    ("ratio_95ci_bootstrap", WILDCARD),
    ("per_step_ms", WILDCARD, "median"),
    ("cpu_per_step_ms", "ratio"),
    ("extra_ms_per_step_median_of_pairs",),
    ("breakdown", "wall_clock_per_run", "controlroom_invoke_ms"),
    ("breakdown", "wall_clock_per_run", "baseline_invoke_ms"),
    ("breakdown", "wall_clock_per_run", "runner_outside_invoke_parts", WILDCARD, "ms_per_run"),
    ("breakdown", "direct_calls", "model_node_us", "extra"),
    ("breakdown", "direct_calls", "tools_node_us", "extra"),
    ("breakdown", "direct_calls", "helpers_us", WILDCARD),
    ("breakdown", "profile", "controlroom_total_ms"),
    ("breakdown", "checkpointer_rows_per_run", WILDCARD, "checkpoint_bytes"),
)

BENCHES = [
    Bench("overhead", "bench_overhead.py", frozenset(OVERHEAD_KEYS), OVERHEAD_FIGURES),
    Bench(
        "overhead-noaudit",
        "bench_overhead.py",
        frozenset(OVERHEAD_KEYS),
        OVERHEAD_FIGURES,
        env={"CONTROLROOM_AUDIT": "false"},
    ),
    Bench(
        "gate",
        "bench_gate.py",
        frozenset(
            COMMON
            | {
                "when",
                "policies",
                "decide",
                "cedar_is_authorized_alone",
                "declared_gate_decide",
                "per_tool_call",
                "target",
                "seconds",
            }
        ),
        (
            ("decide", "all", "p50_ms"),
            ("decide", "by_case", WILDCARD, "p99_ms"),
            ("cedar_is_authorized_alone", "p50_ms"),
            ("declared_gate_decide", "p50_ms"),
            ("per_tool_call", WILDCARD, "overhead_p50_ms"),
            ("per_tool_call", WILDCARD, "of_which_decision_p50_ms"),
            ("policies", "parse_and_validate_ms"),
        ),
    ),
    Bench(
        "audit",
        "bench_audit.py",
        frozenset(
            {
                "benchmark",
                "smoke",
                "timestamp",
                "append_per_record",
                "model_call_record_end_to_end_us",
                "signed_checkpoint_us",
                "verify",
                "environment",
            }
        ),
        (
            ("append_per_record", "batched_us", "median"),
            ("append_per_record", "fsync_each_us", "median"),
            ("model_call_record_end_to_end_us", "median"),
            ("signed_checkpoint_us", "median"),
            ("verify", "records_per_s", "median"),
        ),
    ),
    Bench(
        "model",
        "bench_model.py",
        frozenset(
            COMMON
            | {
                "model",
                "prompt",
                "max_tokens",
                "runs_each",
                "raw",
                "adapter",
                "throughput_ratio_adapter_over_raw",
                "ttft_ratio_adapter_over_raw",
                "target_ratio",
                "meets_target",
                "timestamp",
            }
        ),
        (
            (WILDCARD, "ttft_ms_median"),
            (WILDCARD, "tokens_per_s_median"),
            ("throughput_ratio_adapter_over_raw",),
            ("ttft_ratio_adapter_over_raw",),
        ),
        marks=(pytest.mark.model,),
    ),
    Bench(
        "tui",
        "bench_tui.py",
        frozenset(COMMON | {"date", "start_with_runs", "render_run"}),
        (
            ("start_with_runs", "median_ms"),
            ("render_run", "median_ms"),
            ("render_run", "steps"),
        ),
        marks=(pytest.mark.tui,),
    ),
    Bench(
        "batch",
        "bench_batch.py",
        frozenset(COMMON | {"when", "workload", "runs", "ray_instances", "versions", "results"}),
        (
            ("results", WILDCARD, "langgraph_ms_per_run"),
            ("results", WILDCARD, "runner_ms_per_run"),
            ("results", WILDCARD, "batch", WILDCARD, "runs_per_s"),
            ("results", WILDCARD, "batch", WILDCARD, "ms_per_run"),
            ("results", WILDCARD, "overhead_vs_langgraph_ms_per_run", WILDCARD),
            ("results", WILDCARD, "speedup_4_workers"),
        ),
        marks=(pytest.mark.ray,),
        timeout=280,  # Ray's start-up is most of it (~10-15 s on 2 cores)
    ),
    Bench(
        "retrieval",
        "bench_retrieval.py",
        frozenset(
            COMMON
            | {"when", "embed", "ingest", "query", "filtered_results_all_readable", "seconds"}
        ),
        (
            ("embed", "chunks_per_s"),
            ("ingest", "chunks_per_s"),
            ("query", "synthetic_chunks", "mean_cosine_to_nearest_real_chunk"),
            ("query", "by_size", WILDCARD, "by_user", WILDCARD, "query_filtered", "p50_ms"),
            ("query", "by_size", WILDCARD, "by_user", WILDCARD, "query_unfiltered", "p99_ms"),
            (
                "query",
                "by_size",
                WILDCARD,
                "by_user",
                WILDCARD,
                "ratio_filtered_over_unfiltered",
                "p50",
            ),
            ("query", "by_size", WILDCARD, "by_user", WILDCARD, "retriever_search_full", "p50_ms"),
            ("query", "by_size", WILDCARD, "by_user", WILDCARD, "recall_at_5_filtered_vs_exact"),
        ),
        marks=(pytest.mark.retrieval,),
    ),
]


def test_every_benchmark_script_has_a_smoke_test() -> None:
    scripts = {p.name for p in HERE.glob("bench_*.py")}
    assert scripts == {b.script for b in BENCHES}


def test_make_bench_runs_every_benchmark_and_smoke_reuses_it() -> None:
    makefile = (HERE.parents[1] / "Makefile").read_text()
    bench = makefile.split("\nbench:", 1)[1].split("\n\n", 1)[0]
    smoke = makefile.split("\nbench-smoke:", 1)[1].split("\n\n", 1)[0]
    for script in {b.script for b in BENCHES}:
        assert f"tests/benchmarks/{script} $(BENCH_FLAGS)" in bench, script
    assert "bench BENCH_FLAGS=--smoke" in smoke  # the same list of benchmarks, in smoke mode


def values(node: Any, path: KeyPath) -> Iterator[Any]:
    """Every value at ``path`` ("*" takes every key or item)."""
    if not path:
        yield node
        return
    head, rest = path[0], path[1:]
    if head == WILDCARD:
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            yield from values(child, rest)
    elif (isinstance(node, dict) and head in node) or (
        isinstance(node, list) and isinstance(head, int) and head < len(node)
    ):
        yield from values(node[head], rest)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def bench_env(tmp_path: Path, extra: dict[str, str]) -> dict[str, str]:
    """The test session's environment without controlroom settings the tests set."""
    keep = {"CONTROLROOM_MODEL_CACHE", "CONTROLROOM_EMBED_THREADS"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTROLROOM_") or k in keep}
    env["CONTROLROOM_HOME"] = str(tmp_path / "home")  # nothing lands in the working tree
    return {**env, **extra}


@pytest.mark.bench
@pytest.mark.slow
@pytest.mark.parametrize("bench", [pytest.param(b, id=b.id, marks=b.marks) for b in BENCHES])
def test_benchmark_runs_in_smoke_mode(bench: Bench, tmp_path: Path) -> None:
    out = tmp_path / f"{bench.id}.json"
    done = subprocess.run(
        [sys.executable, str(HERE / bench.script), "--smoke", "--out", str(out)],
        cwd=tmp_path,
        env=bench_env(tmp_path, bench.env),
        capture_output=True,
        text=True,
        timeout=bench.timeout,
        check=False,
    )
    log = f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-6000:]}"
    assert done.returncode == 0, log
    result = json.loads(out.read_text())
    assert set(result) == bench.keys, log
    assert result["smoke"] is True
    for path in bench.figures:
        found = list(values(result, path))
        assert found, f"no figure at {path}"
        bad = [v for v in found if not is_number(v) or not math.isfinite(v)]
        assert not bad, f"{path}: not finite numbers: {bad}"
    if bench.id == "retrieval":  # not a timing: the access filter kept every result readable
        assert result["filtered_results_all_readable"] is True
