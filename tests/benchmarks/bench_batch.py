"""Batch throughput on Ray with 1, 2 and 4 workers, and the per-run overhead against the
same graph run directly on LangGraph.

Usage::

    python tests/benchmarks/bench_batch.py --out bench-batch.json [--runs 120]
        [--backends sqlite,postgres] [--smoke]

The workload is ``examples/batch-settlements`` with the scripted model, no approvals: a
branch, a model step that calls ``post_entry`` (a write: the effect ledger, the tool's own
SQLite ledger), the tools step, the model's answer; four graph steps per run.

* **batch, N workers**: a local Ray instance with N CPUs (started before timing; its worker
  processes warmed up with a small batch first, since the first task of a worker imports
  everything), then ``run_batch`` over ``--runs`` queued runs. Throughput is runs / wall
  time of ``run_batch``; creating the runs (``create_batch``) is timed apart.
* **runner, sequential**: ``Runner.resume`` of queued runs one after another in one process:
  controlroom without Ray.
* **langgraph, sequential**: a hand-written LangGraph ``StateGraph`` of the same shape (the
  same scripted model and tool function, ``SqliteSaver`` or ``PostgresSaver`` with the same
  serializer, ``durability="sync"``), a fresh thread per run.

Per-run overhead versus LangGraph = (batch wall time with 1 worker / runs) - LangGraph's
time per run; it is split into the runner's share (runner - langgraph) and the batch's
(Ray dispatch, result collection, store polling). The PostgreSQL rows run on a throwaway
server started from the installed binaries (see tests/pg_support.py) when they are found.
This is a benchmark, not a test: nothing asserts on timings.

With ``--smoke`` (tests/benchmarks/common.py): 3 runs per row, a warm-up batch of one run per
worker, and one local Ray instance with 2 CPUs shared by every row and backend
(``--shared-ray``) instead of one per worker count: starting Ray and warming its workers is
most of the cost of this benchmark (about 10 s per instance on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from controlroom import Principal, Runner, Settings, ToolContext, load_workflow  # noqa: E402
from controlroom.batch import BatchOptions, create_batch, parse_inputs, run_batch  # noqa: E402
from controlroom.graphs.storage.backend import strict_serializer  # noqa: E402
from controlroom.testing import ScriptedChatModel  # noqa: E402
from tests.benchmarks.common import parse_args  # noqa: E402

EXAMPLE = REPO / "examples" / "batch-settlements"
DIRECTORY = """
users:
  - id: alice
    name: Alice Martin
    roles: [employee, finance-clerk]
"""


def inputs(count: int) -> str:
    return "\n".join(json.dumps(f"Settle request #{n:05d}") for n in range(count))


def new_settings(root: Path, name: str, url: str | None) -> Settings:
    home = root / name
    home.mkdir(parents=True)
    (home / "directory.yaml").write_text(DIRECTORY)
    return Settings(home=home, database_url=url, model="scripted:unused")


# --- LangGraph directly ---------------------------------------------------------------------
class State(TypedDict, total=False):
    input: str
    messages: Annotated[list[AnyMessage], add_messages]


def langgraph_graph(settings: Settings, url: str | None) -> tuple[Any, Callable[[], None]]:
    """The same graph written directly on LangGraph, compiled; and its closer."""
    wf = load_workflow(EXAMPLE)
    tool = wf.tools["post_entry"]
    model = ScriptedChatModel.from_file(EXAMPLE / "script.yaml").bind_tools(
        [{"type": "function", "function": {"name": tool.name, "parameters": tool.json_schema()}}]
    )
    principal = Principal(id="alice", name="Alice Martin", roles=("employee",))

    def route(state: State) -> State:
        return {}

    def small(state: State) -> State:
        prompt = SystemMessage(content="You post settlement entries for Alice Martin.")
        return {"messages": [model.invoke([prompt, *state["messages"]])]}

    def post(state: State) -> State:
        last = state["messages"][-1]
        out = []
        for call in getattr(last, "tool_calls", []):
            ctx = ToolContext(
                principal=principal,
                run_id="lg",
                call_id=call["id"],
                idempotency_key=f"lg:{uuid.uuid4().hex}",
                home=settings.home,
            )
            result = tool.invoke(tool.validate_args(call["args"]), ctx)
            out.append(ToolMessage(content=json.dumps(result), tool_call_id=call["id"]))
        return {"messages": out}

    graph = StateGraph(State)
    graph.add_node("route", route)
    graph.add_node("small", small)
    graph.add_node("post", post)
    graph.add_edge(START, "route")
    graph.add_edge("route", "small")
    graph.add_conditional_edges(
        "small", lambda s: "post" if getattr(s["messages"][-1], "tool_calls", None) else END
    )
    graph.add_edge("post", "small")
    closer: Callable[[], None]
    if url:
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg import Connection
        from psycopg.rows import dict_row

        conn = Connection.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
        saver: Any = PostgresSaver(conn, serde=strict_serializer())
        saver.setup()
        closer = conn.close
    else:
        lite = sqlite3.connect(settings.home / "lg.sqlite", check_same_thread=False)
        lite.execute("PRAGMA journal_mode=WAL")
        lite.execute("PRAGMA synchronous=FULL")
        from langgraph.checkpoint.sqlite import SqliteSaver

        saver = SqliteSaver(lite, serde=strict_serializer())
        saver.setup()
        closer = lite.close
    return graph.compile(checkpointer=saver), closer


def direct_per_run(lg_settings: Settings, rn_settings: Settings, runs: int, url: Any) -> Any:
    """Median seconds per run, sequential in this process: LangGraph directly, and
    controlroom's runner (queued runs resumed), interleaved A B B A ... after a warm-up."""
    compiled, closer = langgraph_graph(lg_settings, url())
    runner = Runner(rn_settings)
    _, items = create_batch(runner, EXAMPLE, parse_inputs(inputs(runs + 3)), user="alice")
    lg_times: list[float] = []
    rn_times: list[float] = []

    def langgraph(n: int) -> None:
        text = f"Settle request #{n:05d}"
        began = time.perf_counter()
        compiled.invoke(
            {"input": text, "messages": [HumanMessage(content=text)]},
            {"configurable": {"thread_id": uuid.uuid4().hex}},
            durability="sync",
        )
        lg_times.append(time.perf_counter() - began)

    def controlroom(n: int) -> None:
        began = time.perf_counter()
        runner.resume(items[n].run_id)
        rn_times.append(time.perf_counter() - began)

    for n in range(runs + 3):
        order = (langgraph, controlroom) if n % 2 else (controlroom, langgraph)
        for one in order:
            one(n)
    closer()
    runner.close()
    return statistics.median(lg_times[3:]), statistics.median(rn_times[3:])


# --- batches on Ray -------------------------------------------------------------------------
SHARED_RAY_CPUS = 2


def start_ray(cpus: int) -> float:
    """A local Ray instance with ``cpus`` CPUs (loopback only); returns the seconds it took."""
    import ray

    began = time.perf_counter()
    ray.init(
        address="local",
        num_cpus=cpus,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        object_store_memory=200 * 1024 * 1024,
        _node_ip_address="127.0.0.1",
    )
    return time.perf_counter() - began


def batch_run(
    settings: Settings, runs: int, workers: int, *, warm_per_worker: int = 3, shared: bool = False
) -> dict[str, Any]:
    """One row: ``run_batch`` of ``runs`` runs with ``workers`` workers, on a Ray instance of
    its own (``workers`` CPUs), or on the shared one already started (``ray_start_s`` 0)."""
    import ray

    if shared != ray.is_initialized():
        raise RuntimeError("the shared Ray instance should be running exactly when shared")
    ray_start = 0.0 if shared else start_ray(workers)
    runner = Runner(settings)
    try:
        options = BatchOptions(workers=workers, poll_interval=0.5)
        # Warm-up: each worker process imports controlroom on its first task.
        warm_batch, warm_items = create_batch(
            runner, EXAMPLE, parse_inputs(inputs(workers * warm_per_worker)), user="alice"
        )
        began = time.perf_counter()
        run_batch(runner, warm_batch, warm_items, options)
        warm_up = time.perf_counter() - began
        began = time.perf_counter()
        batch, items = create_batch(runner, EXAMPLE, parse_inputs(inputs(runs)), user="alice")
        create_s = time.perf_counter() - began
        began = time.perf_counter()
        report = run_batch(runner, batch, items, options)
        run_s = time.perf_counter() - began
    finally:
        runner.close()
        if not shared:
            ray.shutdown()
    assert report.counts == {"completed": runs}, report.counts
    return {
        "workers": workers,
        "runs": runs,
        "run_batch_s": round(run_s, 3),
        "runs_per_s": round(runs / run_s, 2),
        "ms_per_run": round(run_s / runs * 1000, 2),
        "create_batch_s": round(create_s, 3),
        "create_ms_per_run": round(create_s / runs * 1000, 2),
        "ray_start_s": round(ray_start, 2),
        "worker_warm_up_s": round(warm_up, 2),
        "workers_used": len({w for r in report.runs for w in r.workers}),
    }


def bench_backend(
    root: Path,
    backend: str,
    runs: int,
    url_for: Callable[[], str | None],
    *,
    warm_per_worker: int = 3,
    shared: bool = False,
) -> Any:
    print(f"[{backend}] LangGraph directly and controlroom's runner, sequential ...", flush=True)
    lg, rn = direct_per_run(
        new_settings(root, f"{backend}-lg", None),
        new_settings(root, f"{backend}-runner", url_for()),
        runs,
        url_for,
    )
    rows = []
    for workers in (1, 2, 4):
        print(f"[{backend}] batch on Ray, {workers} worker(s) ...", flush=True)
        settings = new_settings(root, f"{backend}-w{workers}", url_for())
        rows.append(
            batch_run(settings, runs, workers, warm_per_worker=warm_per_worker, shared=shared)
        )
        print(f"    {rows[-1]['runs_per_s']} runs/s", flush=True)
    one = rows[0]["ms_per_run"]
    return {
        "backend": backend,
        "langgraph_ms_per_run": round(lg * 1000, 2),
        "runner_ms_per_run": round(rn * 1000, 2),
        "batch": rows,
        "overhead_vs_langgraph_ms_per_run": {
            "batch_1_worker": round(one - lg * 1000, 2),
            "of_which_runner": round((rn - lg) * 1000, 2),
            "of_which_batch_and_ray": round(one - rn * 1000, 2),
        },
        "speedup_2_workers": round(rows[1]["runs_per_s"] / rows[0]["runs_per_s"], 2),
        "speedup_4_workers": round(rows[2]["runs_per_s"] / rows[0]["runs_per_s"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, default=Path("bench-batch.json"))
    parser.add_argument("--runs", type=int, default=120)
    parser.add_argument(
        "--backends",
        default="auto",
        help="comma-separated: sqlite, postgres; auto: both when PostgreSQL is installed",
    )
    parser.add_argument(
        "--warm-up-runs", type=int, default=3, help="runs per worker in each row's warm-up batch"
    )
    parser.add_argument(
        "--shared-ray",
        action="store_true",
        help=f"one Ray instance ({SHARED_RAY_CPUS} CPUs) for every row, not one per row",
    )
    args = parse_args(parser, argv, smoke={"runs": 3, "warm_up_runs": 1, "shared_ray": True})
    from tests.pg_support import PostgresServer, find_bindir

    if args.backends == "auto":
        backends = ["sqlite", "postgres"] if find_bindir() else ["sqlite"]
    else:
        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgres"}
    if unknown:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))} (sqlite, postgres)")
    root = Path(tempfile.mkdtemp(prefix="controlroom-bench-batch-"))
    server = None
    results = []
    shared_start: float | None = None
    try:
        if args.shared_ray:
            shared_start = start_ray(SHARED_RAY_CPUS)
        for backend in backends:
            url_for: Callable[[], str | None] = lambda: None  # noqa: E731
            if backend == "postgres":
                server = PostgresServer.start()
                url_for = server.create_database
            results.append(
                bench_backend(
                    root,
                    backend,
                    args.runs,
                    url_for,
                    warm_per_worker=args.warm_up_runs,
                    shared=args.shared_ray,
                )
            )
    finally:
        if shared_start is not None:
            import ray

            ray.shutdown()
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
    payload = {
        "benchmark": "batch throughput on Ray and per-run overhead vs LangGraph",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "workload": "examples/batch-settlements, scripted model, 4 graph steps per run",
        "runs": args.runs,
        "ray_instances": (
            f"one shared by every row ({SHARED_RAY_CPUS} CPUs), started in {shared_start:.1f} s"
            if shared_start is not None
            else "one per row, with as many CPUs as the row has workers"
        ),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": {
            "python": platform.python_version(),
            **{p: version(p) for p in ("ray", "langgraph", "langgraph-checkpoint-postgres")},
        },
        "results": results,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    for r in results:
        rates = ", ".join(f"{b['workers']}w {b['runs_per_s']} runs/s" for b in r["batch"])
        o = r["overhead_vs_langgraph_ms_per_run"]
        print(
            f"{r['backend']}: {rates}; per run: langgraph {r['langgraph_ms_per_run']} ms, "
            f"runner {r['runner_ms_per_run']} ms, batch(1w) {r['batch'][0]['ms_per_run']} ms "
            f"(+{o['batch_1_worker']} ms vs langgraph)"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
