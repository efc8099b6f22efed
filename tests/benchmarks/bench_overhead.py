"""Per-step overhead of a controlroom run versus the same graph run directly on LangGraph.

Usage::

    python tests/benchmarks/bench_overhead.py --out bench.json [--smoke]

The workload is one model step offered one READ tool (``lookup``) that loops
model -> tools -> model for ``--rounds`` tool rounds and then answers, played by a
:class:`ScriptedChatModel`, so a run executes ``2 * rounds + 1`` graph steps.

* **controlroom**: ``Runner.start`` on a ``GraphBuilder`` workflow (run record, lock, gate,
  checkpointed state, settle), end to end.
* **baseline**: a hand-written LangGraph ``StateGraph`` of the same shape (model node with
  the tool schema bound once, a tools node turning tool calls into ``ToolMessage``s, a
  conditional edge on tool calls), compiled with ``SqliteSaver`` on its own SQLite file
  (WAL, ``synchronous=FULL``, the same strict serializer) and invoked with
  ``durability="sync"`` and a fresh thread per run.

Both are timed interleaved in one process (A B, B A, ...) after a warm-up. Then the extra
time of a controlroom run is broken down four ways: wall-clock timers wrapped around the
runner's store calls, run lock, ``get_state`` and the graph's execution (``invoke`` or
``stream``); micro-benchmarks of the model and tools node functions against the baseline's;
micro-benchmarks of the per-step helpers (tool schema, ``bind_tools``, prompt rendering,
workflow digest); and ``cProfile`` self time grouped by package. This is a benchmark, not a
test: nothing asserts on timings. It does fail when its timers see nothing (the runner
changed how it drives a graph), so that a refactor cannot make the breakdown silently zero.
With ``--smoke`` every part runs at tiny sizes (tests/benchmarks/common.py).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import inspect
import json
import os
import platform
import pstats
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END as LG_END
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.runtime import Runtime

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import controlroom  # noqa: E402
from controlroom import (  # noqa: E402
    END,
    Directory,
    GraphBuilder,
    ModelStep,
    Principal,
    Runner,
    RunStatus,
    Settings,
    Tool,
    ToolsStep,
    Workflow,
    tool,
)
from controlroom.agents.prompts import render  # noqa: E402

# The node factories and their context are internals of the graph runtime; the direct-call
# micro-benchmarks (node_microbench) exist to time exactly those functions, so they are the
# one place this benchmark imports them.
from controlroom.graphs.runtime.nodes import make_model_node, make_tools_node  # noqa: E402
from controlroom.graphs.runtime.run_state import RunContext  # noqa: E402
from controlroom.graphs.storage.backend import strict_serializer  # noqa: E402
from controlroom.testing import ScriptedChatModel, ScriptedReply, ScriptedToolCall  # noqa: E402
from tests.benchmarks.common import parse_args  # noqa: E402

TARGET_RATIO = 1.3
USER = "bench"
USER_NAME = "Bench User"
MODEL_SPEC = "scripted:bench"
PROMPT = "You look things up for {user.name}. Use the lookup tool for every key."
INPUT = "Look up every key in the reference table."
FINAL = "All keys looked up."
THIS_FILE = os.path.realpath(__file__)
CONTROLROOM_ROOT = os.path.realpath(os.path.dirname(controlroom.__file__)) + os.sep
STDLIB_ROOT = os.path.realpath(os.path.dirname(os.__file__)) + os.sep

Timed = Callable[[], None]


# -- workload ------------------------------------------------------------------------------


def lookup_impl(key: str) -> dict[str, Any]:
    """Look up a key in the reference table."""
    return {"key": key, "value": f"value-of-{key}", "found": True}


LOOKUP: Tool = tool(lookup_impl, name="lookup", effect="read")


def script(rounds: int) -> list[ScriptedReply]:
    calls = [
        ScriptedReply(tool_calls=[ScriptedToolCall(name="lookup", args={"key": f"k{i}"})])
        for i in range(rounds)
    ]
    return [*calls, ScriptedReply(content=FINAL)]


def build_workflow(base_dir: Path) -> Workflow:
    return (
        GraphBuilder("bench-lookup", model=MODEL_SPEC, tools=[LOOKUP], base_dir=base_dir)
        .model("agent", PROMPT, tools=["lookup"], on_tool_calls="act", next=END)
        .tools("act", next="agent")
        .build()
    )


def open_checkpointer(path: Path) -> tuple[sqlite3.Connection, SqliteSaver]:
    """The same connection settings and serializer as the runner's SQLite backend."""
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=10000")
    saver = SqliteSaver(conn, serde=strict_serializer())
    saver.setup()
    return conn, saver


# -- baseline: the same graph written directly against LangGraph ----------------------------


def _merge_vars(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return {**(left or {}), **(right or {})}


class BaselineState(TypedDict, total=False):
    """The same channels as controlroom's ``RunState``, so checkpoints weigh the same."""

    input: str
    messages: Annotated[list[AnyMessage], add_messages]
    vars: Annotated[dict[str, Any], _merge_vars]
    output: str | None


NodeFn = Callable[[BaselineState], dict[str, Any]]


@dataclass
class Baseline:
    graph: Any
    agent: NodeFn
    act: NodeFn


def build_baseline(model: ScriptedChatModel, saver: SqliteSaver, system: str) -> Baseline:
    bound = model.bind_tools([LOOKUP.json_schema()])
    functions: dict[str, Callable[..., Any]] = {LOOKUP.name: LOOKUP.func}

    def agent(state: BaselineState) -> dict[str, Any]:
        reply = bound.invoke([SystemMessage(system), *state.get("messages", [])])
        update: dict[str, Any] = {"messages": [reply]}
        if not reply.tool_calls:
            update["output"] = reply.text
        return update

    def act(state: BaselineState) -> dict[str, Any]:
        last = state["messages"][-1]
        assert isinstance(last, AIMessage)
        out = [
            ToolMessage(
                content=json.dumps(functions[call["name"]](**call["args"]), sort_keys=True),
                tool_call_id=call["id"] or "",
                name=call["name"],
            )
            for call in last.tool_calls
        ]
        return {"messages": out}

    def route(state: BaselineState) -> str:
        last = state["messages"][-1]
        return "act" if isinstance(last, AIMessage) and last.tool_calls else LG_END

    builder = StateGraph(BaselineState)
    builder.add_node("agent", agent)
    builder.add_node("act", act)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route, ["act", LG_END])
    builder.add_edge("act", "agent")
    return Baseline(graph=builder.compile(checkpointer=saver), agent=agent, act=act)


# -- the two runs ----------------------------------------------------------------------------


@dataclass
class Bench:
    rounds: int
    workdir: Path
    model: ScriptedChatModel = field(init=False)
    runner: Runner = field(init=False)
    workflow: Workflow = field(init=False)
    baseline: Baseline = field(init=False)
    system: str = field(init=False)
    last_baseline_thread: str = field(init=False, default="")
    _base_conn: sqlite3.Connection = field(init=False)

    def __post_init__(self) -> None:
        principal = Principal(id=USER, name=USER_NAME)
        self.model = ScriptedChatModel(replies=script(self.rounds))
        # SQLite even when CONTROLROOM_DATABASE_URL is set: the baseline is SqliteSaver
        # (CONTROLROOM_AUDIT and the other settings still come from the environment)
        settings = Settings(home=self.workdir / "controlroom", database_url=None)
        self.runner = Runner(
            settings, directory=Directory([principal]), models={MODEL_SPEC: self.model}
        )
        self.workflow = build_workflow(self.workdir)
        self.system = render(PROMPT, where="bench", principal=principal, state={})
        self._base_conn, saver = open_checkpointer(self.workdir / "baseline.sqlite")
        self.baseline = build_baseline(
            ScriptedChatModel(replies=script(self.rounds)), saver, self.system
        )

    def close(self) -> None:
        self.runner.close()
        self._base_conn.close()

    def checkpoint_bytes(self) -> dict[str, dict[str, int]]:
        """Rows and bytes the checkpointer stored for the latest run of each."""
        latest = self.runner.list_runs()[0].run_id
        # the runner's checkpoint file, read through a connection of our own (read-only)
        path = self.runner.settings.checkpoints_path
        cr_conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        sides = (
            ("controlroom", cr_conn, latest),
            ("baseline", self._base_conn, self.last_baseline_thread),
        )
        out: dict[str, dict[str, int]] = {}
        for side, conn, thread in sides:
            checkpoints, cp_bytes = conn.execute(
                "SELECT COUNT(*), SUM(LENGTH(checkpoint) + LENGTH(metadata)) FROM checkpoints "
                "WHERE thread_id = ?",
                (thread,),
            ).fetchone()
            writes, w_bytes = conn.execute(
                "SELECT COUNT(*), SUM(LENGTH(value)) FROM writes WHERE thread_id = ?", (thread,)
            ).fetchone()
            out[side] = {
                "checkpoints": int(checkpoints),
                "checkpoint_bytes": int(cp_bytes or 0),
                "writes": int(writes),
                "write_bytes": int(w_bytes or 0),
            }
        cr_conn.close()
        return out

    def run_controlroom(self) -> None:
        result = self.runner.start(self.workflow, user=USER, input=INPUT)
        if result.status is not RunStatus.COMPLETED or result.output != FINAL:
            raise RuntimeError(f"controlroom run did not complete: {result.run}")

    def run_baseline(self) -> None:
        self.last_baseline_thread = "b" + uuid.uuid4().hex[:11]
        config: RunnableConfig = {"configurable": {"thread_id": self.last_baseline_thread}}
        first: BaselineState = {
            "input": INPUT,
            "messages": [HumanMessage(content=INPUT)],
            "vars": {},
            "output": None,
        }
        final = self.baseline.graph.invoke(first, config, durability="sync")
        if final.get("output") != FINAL:
            raise RuntimeError(f"baseline run did not complete: {final}")


def timed(fn: Timed) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def summarize(seconds: list[float], steps: int) -> dict[str, float]:
    per_step = [s * 1000 / steps for s in seconds]
    return {
        "mean": statistics.fmean(per_step),
        "median": statistics.median(per_step),
        "stdev": statistics.stdev(per_step) if len(per_step) > 1 else 0.0,
        "min": min(per_step),
        "max": max(per_step),
    }


def ratio_interval(
    cr: list[float], base: list[float], resamples: int = 2000
) -> tuple[float, float]:
    """A bootstrap 95% interval for the ratio of medians, resampling the run pairs."""
    rng = random.Random(0)
    pairs = list(zip(cr, base, strict=True))
    ratios = []
    for _ in range(resamples):
        sample = rng.choices(pairs, k=len(pairs))
        ratios.append(
            statistics.median(a for a, _ in sample) / statistics.median(b for _, b in sample)
        )
    ratios.sort()
    return ratios[int(0.025 * resamples)], ratios[int(0.975 * resamples) - 1]


@dataclass
class Samples:
    """Per-run seconds: wall clock, and CPU time of the whole process (all threads)."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def interleaved(bench: Bench, n: int, warmup: int) -> tuple[Samples, Samples]:
    cr, base = Samples(), Samples()
    for i in range(warmup + n):
        pair: list[tuple[Samples, Timed]] = [
            (cr, bench.run_controlroom),
            (base, bench.run_baseline),
        ]
        if i % 2:
            pair.reverse()
        for sink, fn in pair:
            gc.collect()
            cpu_start = time.process_time()
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu_start
            if i >= warmup:
                sink.wall.append(elapsed)
                sink.cpu.append(cpu)
    return cr, base


# -- breakdown 1: wall-clock timers around the runner's own work ---------------------------

GRAPH = "graph.invoke"  # the graph's execution: Pregel.invoke, or iterating Pregel.stream
LOCK = "run_lock (acquire+release)"


class Ledger:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.in_graph = False
        self.store_depth = 0  # a store method calling another counts once, as the outer one

    def add(self, label: str, seconds: float) -> None:
        self.seconds[label] += seconds
        self.calls[label] += 1

    def wrap(self, label: str, fn: Callable[..., Any], *, marks_graph: bool = False) -> Any:
        is_store = label.startswith("store.")

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if (marks_graph and self.in_graph) or (is_store and self.store_depth):
                return fn(*args, **kwargs)  # nested: the outer call is being timed
            name = label
            if is_store and self.in_graph:
                name = "in graph: " + label
            if marks_graph:
                self.in_graph = True
            if is_store:
                self.store_depth += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - start)
                if marks_graph:
                    self.in_graph = False
                if is_store:
                    self.store_depth -= 1

        return wrapper

    def wrap_stream(self, label: str, fn: Callable[..., Iterator[Any]]) -> Any:
        """Time a generator's own work: each ``next`` (not the caller's loop body)."""

        def timed_iteration(inner: Iterator[Any]) -> Iterator[Any]:
            self.calls[label] += 1
            try:
                while True:
                    self.in_graph = True
                    start = time.perf_counter()
                    try:
                        item = next(inner)
                    except StopIteration:
                        return
                    finally:
                        self.seconds[label] += time.perf_counter() - start
                        self.in_graph = False
                    yield item
            finally:
                close = getattr(inner, "close", None)
                if close is not None:
                    start = time.perf_counter()
                    close()
                    self.seconds[label] += time.perf_counter() - start

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.in_graph:  # invoke() iterating stream(): already timed
                return fn(*args, **kwargs)
            return timed_iteration(iter(fn(*args, **kwargs)))

        return wrapper


def public_methods(obj: object) -> list[str]:
    """The public methods of ``obj``'s class: every store call the runner and nodes make,
    whatever the store grows or renames (a fixed list silently missed new ones)."""
    return [
        name
        for name, _ in inspect.getmembers(type(obj), inspect.isfunction)
        if not name.startswith("_") and name != "close"
    ]


@contextmanager
def instrumented(bench: Bench, ledger: Ledger) -> Iterator[None]:
    """Wrap the runner's store, run lock, ``invoke``/``stream`` and ``get_state`` with timers.

    Everything is wrapped on the objects the runner holds (``runner.store``,
    ``runner.backend``, the compiled graph), never on modules, and undone afterwards."""
    runner = bench.runner
    # Runner._graph is the one private hook here: the timers must wrap the compiled graph the
    # runner drives, and the runner exposes no accessor for it (it compiles one per workflow
    # digest and caches it). A rename fails loudly, which the smoke test catches.
    graph: Any = runner._driver.graph(bench.workflow)
    store: Any = runner.store
    backend: Any = runner.backend
    methods = public_methods(store)
    for name in methods:
        setattr(store, name, ledger.wrap(f"store.{name}", getattr(store, name)))
    graph.invoke = ledger.wrap(GRAPH, graph.invoke, marks_graph=True)
    graph.stream = ledger.wrap_stream(GRAPH, graph.stream)
    graph.get_state = ledger.wrap("graph.get_state", graph.get_state)
    original_lock: Callable[[str], AbstractContextManager[None]] = backend.run_lock

    @contextmanager
    def timed_lock(run_id: str) -> Iterator[None]:
        cm = original_lock(run_id)
        start = time.perf_counter()
        cm.__enter__()
        ledger.add(LOCK, time.perf_counter() - start)
        try:
            yield
        except BaseException:
            if not cm.__exit__(*sys.exc_info()):
                raise
        else:
            start = time.perf_counter()
            cm.__exit__(None, None, None)
            ledger.seconds[LOCK] += time.perf_counter() - start

    backend.run_lock = timed_lock
    try:
        yield
    finally:
        del backend.run_lock
        for name in methods:
            delattr(store, name)
        del graph.invoke
        del graph.stream
        del graph.get_state


def wall_clock_breakdown(bench: Bench, runs: int) -> dict[str, Any]:
    ledger = Ledger()
    base_ledger = Ledger()
    base_graph: Any = bench.baseline.graph
    cr_total = 0.0
    base_total = 0.0
    with instrumented(bench, ledger):
        base_graph.invoke = base_ledger.wrap(GRAPH, base_graph.invoke, marks_graph=True)
        try:
            for i in range(runs):
                first_cr = i % 2 == 0
                if first_cr:
                    cr_total += timed(bench.run_controlroom)
                base_total += timed(bench.run_baseline)
                if not first_cr:
                    cr_total += timed(bench.run_controlroom)
        finally:
            del base_graph.invoke
    # The timers must have seen what they wrap, or the breakdown is silently wrong: fail.
    blind = [
        what
        for what, seen in (
            ("the graph's invoke/stream", ledger.calls[GRAPH]),
            ("Backend.run_lock", ledger.calls[LOCK]),
            ("the store", sum(n for k, n in ledger.calls.items() if "store." in k)),
        )
        if seen < runs
    ]
    if blind:
        raise RuntimeError(
            f"bench_overhead's timers saw no calls to {', '.join(blind)} in {runs} runs: the "
            "runner drives runs differently now; update instrumented() in this benchmark."
        )

    def ms(seconds: float) -> float:
        return seconds * 1000 / runs

    invoke = ledger.seconds[GRAPH]
    outside = {
        label: {"ms_per_run": ms(secs), "calls_per_run": ledger.calls[label] / runs}
        for label, secs in sorted(ledger.seconds.items(), key=lambda kv: -kv[1])
        if label != GRAPH and not label.startswith("in graph")
    }
    accounted = sum(secs for label, secs in ledger.seconds.items() if label in outside)
    return {
        "runs": runs,
        "controlroom_run_ms": ms(cr_total),
        "baseline_run_ms": ms(base_total),
        "controlroom_invoke_ms": ms(invoke),
        "baseline_invoke_ms": ms(base_ledger.seconds[GRAPH]),
        "extra_inside_invoke_ms": ms(invoke - base_ledger.seconds[GRAPH]),
        "store_inside_invoke_ms": ms(
            sum(s for label, s in ledger.seconds.items() if label.startswith("in graph"))
        ),
        "runner_outside_invoke_ms": ms(cr_total - invoke),
        "runner_outside_invoke_parts": outside,
        "runner_outside_invoke_unaccounted_ms": ms(cr_total - invoke - accounted),
        "note": (
            "invoke = the graph's execution (graph.invoke, or the runner iterating "
            "graph.stream: the time spent in its next() calls); runner_outside_invoke = "
            "Runner.start minus that: the run record, lock, get_state and settle; "
            "unaccounted = the audit log's records and signing (when CONTROLROOM_AUDIT is on), "
            "pydantic records, load_workflow, principal lookup, RunContext, the runner's loop "
            "over the stream."
        ),
    }


# -- breakdown 2: node functions and per-step helpers, called directly -----------------------


def per_call_us(fn: Callable[[], object], calls: int = 200, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e6 / calls


def node_microbench(bench: Bench, calls: int = 200, repeat: int = 5) -> dict[str, Any]:
    """Call the node functions themselves on a mid-run state: controlroom's and the baseline's."""
    runner = bench.runner
    record = runner.list_runs()[0]
    messages = runner.messages(record.run_id)
    half = bench.rounds // 2
    before_model = messages[: 1 + 2 * half]  # human + `half` (AI call, tool result) pairs
    before_tools = messages[: 2 + 2 * half]  # ... + the AI message asking for a call
    state_model: Any = {"input": INPUT, "messages": before_model, "vars": {}, "output": None}
    state_tools: Any = {"input": INPUT, "messages": before_tools, "vars": {}, "output": None}
    steps = bench.workflow.spec.steps
    model_step, tools_step = steps[0], steps[1]
    if not isinstance(model_step, ModelStep) or not isinstance(tools_step, ToolsStep):
        raise TypeError("the bench workflow should be a model step then a tools step")
    ctx = RunContext(
        run_id=record.run_id,
        principal=runner.principal(USER),
        tools=bench.workflow.tools,
        gate=runner.gate,
        get_model={MODEL_SPEC: bench.model}.__getitem__,  # the runner's model for the spec
        default_model=MODEL_SPEC,
        approve_mode="ask",
        home=runner.settings.home,
        store=runner.store,
    )
    runtime: Runtime[RunContext] = Runtime(context=ctx)
    config: RunnableConfig = {"metadata": {"langgraph_step": 2 + 2 * half}}
    model_node = make_model_node(model_step)
    tools_node = make_tools_node(tools_step)
    model = ctx.get_model(MODEL_SPEC)
    schemas = [LOOKUP.json_schema()]
    principal = ctx.principal
    prompt = [SystemMessage(bench.system), *before_model]
    bound_once = model.bind_tools(schemas)

    def per_call(fn: Callable[[], object], n: int = calls) -> float:
        return per_call_us(fn, calls=n, repeat=repeat)

    def pair(controlroom_fn: Callable[[], object], baseline_fn: Callable[[], object]) -> Any:
        cr_us, base_us = per_call(controlroom_fn), per_call(baseline_fn)
        return {"controlroom": cr_us, "baseline": base_us, "extra": cr_us - base_us}

    return {
        "model_node_us": pair(
            lambda: model_node(state_model, runtime), lambda: bench.baseline.agent(state_model)
        ),
        "tools_node_us": pair(
            lambda: tools_node(state_tools, runtime, config),
            lambda: bench.baseline.act(state_tools),
        ),
        "helpers_us": {
            "model.invoke, model bound once (baseline)": per_call(
                lambda: bound_once.invoke(prompt)
            ),
            "model.bind_tools(...).invoke, re-bound per call (what caching avoids)": per_call(
                lambda: model.bind_tools(schemas).invoke(prompt)
            ),
            "Tool.json_schema (memoized)": per_call(LOOKUP.json_schema),
            "ScriptedChatModel.bind_tools (model node, each model step)": per_call(
                lambda: model.bind_tools(schemas)
            ),
            "render prompt (model node, each model step)": per_call(
                lambda: render(PROMPT, where="bench", principal=principal, state=state_model)
            ),
            "Workflow.digest (memoized per Workflow)": per_call(
                lambda: bench.workflow.digest, n=min(50, calls)
            ),
            "Tool.validate_args + gate.decide (tools node, each call)": per_call(
                lambda: runner.gate.decide(
                    principal, LOOKUP, LOOKUP.validate_args({"key": "k1"}).model_dump(mode="json")
                )
            ),
        },
        "state": f"{len(before_model)} messages (model node), {len(before_tools)} (tools node)",
    }


# -- breakdown 3: cProfile self time by package ----------------------------------------------


def category(filename: str) -> str:
    if filename == "~":
        return "builtin"
    if filename.startswith("<"):
        return "other"
    path = os.path.realpath(filename)
    if path == THIS_FILE:
        return "bench script (baseline nodes, tool)"
    if path.startswith(CONTROLROOM_ROOT):
        module = path[len(CONTROLROOM_ROOT) :].removesuffix(".py").replace(os.sep, ".")
        for shown in ("graphs.store", "graphs.locks"):  # modules or packages of that name
            if module == shown or module.startswith(shown + "."):
                return f"controlroom.{shown}"
        return "controlroom (other)"
    if "site-packages" + os.sep in path:
        top = path.split("site-packages" + os.sep, 1)[1].split(os.sep, 1)[0]
        known = {"langgraph", "langchain_core", "pydantic", "langsmith"}
        return top if top in known else "other site-packages"
    if path.startswith(STDLIB_ROOT):
        return "stdlib"
    return "other"


FuncKey = tuple[str, int, str]
LOCK_WAITS = {
    "<method 'acquire' of '_thread.lock' objects>",
    "<method 'acquire' of '_thread.RLock' objects>",
}
WAITING = "blocked on locks (LangGraph's checkpoint writes on its own thread, not profiled)"


def profile_runs(fn: Timed, runs: int) -> pstats.Stats:
    profiler = cProfile.Profile()
    for _ in range(runs):
        gc.collect()
        profiler.enable()
        fn()
        profiler.disable()
    return pstats.Stats(profiler)


def self_time_by_category(stats: pstats.Stats, runs: int) -> dict[str, float]:
    """Self time per package (ms per run); a C function counts for the code calling it."""
    table: dict[FuncKey, Any] = stats.stats  # type: ignore[attr-defined]
    out: dict[str, float] = defaultdict(float)
    for (filename, _line, name), (_cc, _nc, tottime, _ct, callers) in table.items():
        own = category(filename)
        if own != "builtin":
            out[own] += tottime
            continue
        if name in LOCK_WAITS:
            out[WAITING] += tottime
            continue
        sqlite = "sqlite3" in name
        for caller, caller_stats in callers.items():
            via = category(caller[0])
            label = f"sqlite3 C calls via {via}" if sqlite else f"C calls via {via}"
            out[label] += caller_stats[2]
        if not callers:
            out["builtin"] += tottime
    return {k: v * 1000 / runs for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def top_cumulative(stats: pstats.Stats, runs: int, prefix: str, limit: int) -> list[dict[str, Any]]:
    table: dict[FuncKey, Any] = stats.stats  # type: ignore[attr-defined]
    rows = []
    for (filename, line, name), (_cc, nc, tottime, cumtime, _callers) in table.items():
        path = os.path.realpath(filename) if not filename.startswith(("~", "<")) else filename
        if path.startswith(prefix):
            rows.append(
                {
                    "function": f"{os.path.relpath(path, os.path.dirname(prefix))}:{line}:{name}",
                    "calls_per_run": nc / runs,
                    "cumulative_ms_per_run": cumtime * 1000 / runs,
                    "self_ms_per_run": tottime * 1000 / runs,
                }
            )
    rows.sort(key=lambda r: -float(r["cumulative_ms_per_run"]))
    return rows[:limit]


def profile_breakdown(bench: Bench, runs: int) -> dict[str, Any]:
    cr = profile_runs(bench.run_controlroom, runs)
    base = profile_runs(bench.run_baseline, runs)
    cr_cat = self_time_by_category(cr, runs)
    base_cat = self_time_by_category(base, runs)
    delta = {
        k: cr_cat.get(k, 0.0) - base_cat.get(k, 0.0) for k in sorted(set(cr_cat) | set(base_cat))
    }
    return {
        "runs": runs,
        "note": (
            "main thread only: LangGraph writes checkpoints on a background thread, so its "
            "sqlite/fsync time shows up as time blocked on locks. cProfile inflates "
            "Python-heavy code; compare categories, not absolute totals"
        ),
        "controlroom_run_self_ms": cr_cat,
        "baseline_run_self_ms": base_cat,
        "controlroom_minus_baseline_ms": dict(sorted(delta.items(), key=lambda kv: -kv[1])),
        "controlroom_total_ms": sum(cr_cat.values()),
        "baseline_total_ms": sum(base_cat.values()),
        "top_controlroom_functions_cumulative": top_cumulative(cr, runs, CONTROLROOM_ROOT, 20),
    }


# -- report ----------------------------------------------------------------------------------


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, default=Path("bench.json"), help="JSON results file")
    parser.add_argument("--n", type=int, default=30, help="timed runs of each (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs of each first")
    parser.add_argument("--rounds", type=int, default=10, help="tool rounds per run (K)")
    parser.add_argument("--instrumented-runs", type=int, default=10)
    parser.add_argument("--profile-runs", type=int, default=5)
    parser.add_argument(
        "--micro-calls", type=int, default=200, help="calls per direct-call micro-benchmark"
    )
    parser.add_argument("--micro-repeat", type=int, default=5, help="best of N repeats")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the SQLite files go (default: a temp dir)"
    )
    args = parse_args(
        parser,
        argv,
        smoke={
            "n": 2,
            "warmup": 1,
            "rounds": 2,
            "instrumented_runs": 2,
            "profile_runs": 1,
            "micro_calls": 3,
            "micro_repeat": 1,
        },
    )
    steps = 2 * args.rounds + 1
    began = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="cr-bench-", dir=args.dir) as tmp:
        bench = Bench(rounds=args.rounds, workdir=Path(tmp))
        audit_on = bench.runner.settings.audit
        try:
            cr, base = interleaved(bench, args.n, args.warmup)
            wall = wall_clock_breakdown(bench, args.instrumented_runs)
            nodes = node_microbench(bench, args.micro_calls, args.micro_repeat)
            prof = profile_breakdown(bench, args.profile_runs)
            stored = bench.checkpoint_bytes()
        finally:
            bench.close()

    cr_stats = summarize(cr.wall, steps)
    base_stats = summarize(base.wall, steps)
    ratio = cr_stats["median"] / base_stats["median"]
    low, high = ratio_interval(cr.wall, base.wall)
    paired_extra = statistics.median(
        (a - b) * 1000 / steps for a, b in zip(cr.wall, base.wall, strict=True)
    )
    cr_cpu = summarize(cr.cpu, steps)
    base_cpu = summarize(base.cpu, steps)
    results: dict[str, Any] = {
        "benchmark": "controlroom per-step overhead vs the same graph on LangGraph directly",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "workload": {
            "description": (
                f"one model step offered one READ tool (lookup), looping model -> tools -> "
                f"model for {args.rounds} tool rounds, then a final answer; ScriptedChatModel "
                f"plays {args.rounds} tool-call replies + 1 final reply"
            ),
            "tool_rounds": args.rounds,
            "controlroom": "Runner.start(GraphBuilder workflow), end to end, approve='ask'",
            "baseline": (
                "hand-written StateGraph, same channels, tool schema bound once, graph.invoke only"
            ),
            "checkpointer": "SqliteSaver, WAL, synchronous=FULL, strict JsonPlusSerializer, "
            "durability='sync', a fresh thread per run",
            "order": "interleaved, alternating which goes first (A B, B A, ...)",
            "audit": audit_on,
        },
        "n": args.n,
        "warmup": args.warmup,
        "steps_per_run": steps,
        "per_step_ms": {"controlroom": cr_stats, "baseline": base_stats},
        "per_run_ms_median": {
            "controlroom": statistics.median(cr.wall) * 1000,
            "baseline": statistics.median(base.wall) * 1000,
        },
        "cpu_per_step_ms": {
            "note": "time.process_time (all threads of the process): robust to a busy "
            "machine, blind to fsync waits",
            "controlroom": cr_cpu,
            "baseline": base_cpu,
            "ratio": cr_cpu["median"] / base_cpu["median"],
        },
        "ratio": ratio,
        "ratio_95ci_bootstrap": [low, high],
        "ratio_of_means": cr_stats["mean"] / base_stats["mean"],
        "extra_ms_per_step_median_of_pairs": paired_extra,
        "target": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
        "breakdown": {
            "wall_clock_per_run": wall,
            "direct_calls": nodes,
            "profile": prof,
            "checkpointer_rows_per_run": stored,
        },
        "versions": {
            "python": platform.python_version(),
            "langgraph": package_version("langgraph"),
            "langgraph_checkpoint_sqlite": package_version("langgraph-checkpoint-sqlite"),
            "langchain_core": package_version("langchain-core"),
            "pydantic": package_version("pydantic"),
            "sqlite": sqlite3.sqlite_version,
            "controlroom": package_version("controlroom"),
        },
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "elapsed_s": time.perf_counter() - began,
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_summary(results)
    return 0


def print_summary(r: dict[str, Any]) -> None:
    cr, base = r["per_step_ms"]["controlroom"], r["per_step_ms"]["baseline"]
    wall = r["breakdown"]["wall_clock_per_run"]
    nodes = r["breakdown"]["direct_calls"]
    verdict = "meets" if r["meets_target"] else "misses"
    print(
        f"{r['steps_per_run']} steps/run, n={r['n']}: controlroom {cr['median']:.3f} ms/step "
        f"(mean {cr['mean']:.3f}), baseline {base['median']:.3f} ms/step "
        f"(mean {base['mean']:.3f}); ratio {r['ratio']:.2f} "
        f"[95% CI {r['ratio_95ci_bootstrap'][0]:.2f}-{r['ratio_95ci_bootstrap'][1]:.2f}] "
        f"({verdict} target {r['target']}); paired extra "
        f"{r['extra_ms_per_step_median_of_pairs']:.3f} ms/step"
    )
    cpu = r["cpu_per_step_ms"]
    print(
        f"CPU time (all threads): controlroom {cpu['controlroom']['median']:.3f} ms/step, "
        f"baseline {cpu['baseline']['median']:.3f} ms/step; ratio {cpu['ratio']:.2f}"
    )
    print(
        f"per run: controlroom {wall['controlroom_run_ms']:.2f} ms = invoke "
        f"{wall['controlroom_invoke_ms']:.2f} + runner outside invoke "
        f"{wall['runner_outside_invoke_ms']:.2f}; baseline invoke "
        f"{wall['baseline_invoke_ms']:.2f} (extra inside invoke "
        f"{wall['extra_inside_invoke_ms']:.2f})"
    )
    for label, part in wall["runner_outside_invoke_parts"].items():
        print(f"  {label:<32} {part['ms_per_run']:7.3f} ms/run  ({part['calls_per_run']:g} calls)")
    print(f"  {'(unaccounted)':<32} {wall['runner_outside_invoke_unaccounted_ms']:7.3f} ms/run")
    for key in ("model_node_us", "tools_node_us"):
        pair = nodes[key]
        print(
            f"{key}: controlroom {pair['controlroom']:.1f} us, baseline {pair['baseline']:.1f} us "
            f"(+{pair['extra']:.1f} us per call)"
        )
    for label, us in nodes["helpers_us"].items():
        print(f"  {label:<60} {us:8.1f} us")
    print(f"({r['elapsed_s']:.1f} s in all)")


if __name__ == "__main__":
    sys.exit(main())
