"""How fast the control room opens on a busy project, and renders a long run, in one run.

Usage::

    python tests/benchmarks/bench_tui.py --out bench-tui.json [--smoke]

In a temporary project folder (headless Textual, ``App.run_test`` at 140x45):

* **start with 1,000 runs**: 1,000 runs are written to the store (every status, some with
  pending approvals); measured from creating the app to the runs table holding all 1,000
  rows (the list loads in a worker, as in a real session). Repeated; median and max.
* **render a run with 500 steps**: one real run of a model/tools loop with a scripted model
  (250 rounds = 500 LangGraph steps, each with its checkpoint and audit records); measured
  from opening its run screen to the timeline holding every step and the detail of the
  newest step shown. Repeated; median and max.

This is a benchmark, not a test: nothing asserts on timings. With ``--smoke``: 50 runs, a run
of 10 steps, once each (tests/benchmarks/common.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

from textual.widgets import DataTable, Static

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from controlroom import (  # noqa: E402
    Approval,
    Effect,
    GraphBuilder,
    Runner,
    RunRecord,
    RunStatus,
    tool,
)
from controlroom.graphs.control.supervision import Breakpoints  # noqa: E402
from controlroom.testing import ScriptedChatModel, ScriptedReply, ScriptedToolCall  # noqa: E402

# The screens and what they show (the runs table's `loaded`, the run screen's `view`, the
# widget ids) are the TUI's own; timing "until the screen shows it" needs them.
from controlroom.tui.app import ControlRoomApp  # noqa: E402
from controlroom.tui.run_screen import RunScreen  # noqa: E402
from controlroom.tui.runs_screen import RunsScreen  # noqa: E402
from tests.benchmarks.common import parse_args  # noqa: E402

SIZE = (140, 45)
DIRECTORY = "users:\n  - id: alice\n    name: Alice\n    roles: [employee]\n"
STATUSES = list(RunStatus)


@tool(effect=Effect.READ)
def note(text: str) -> str:
    """Write a note."""
    return f"noted: {text}"


def fill_store(runner: Runner, count: int) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(count):
        stamp = (start + timedelta(seconds=i)).isoformat(timespec="milliseconds")
        status = STATUSES[i % len(STATUSES)]
        run_id = f"r{i:011d}"
        runner.store.insert_run(
            RunRecord(
                run_id=run_id,
                workflow=f"workflow-{i % 7}",
                workflow_ref="examples/invoice-payment",
                workflow_hash="sha256:0",
                user_id="alice",
                input=f"request number {i}",
                model="scripted:script.yaml",
                approve_mode="ask",
                status=status,
                created_at=stamp,
                updated_at=stamp,
            )
        )
        if status is RunStatus.WAITING:
            runner.store.add_approvals(
                [
                    Approval(
                        run_id=run_id,
                        approval_id="a5-1",
                        kind="tool_call",
                        step="execute",
                        tool="pay_invoice",
                        args={"amount": i},
                        reason="irreversible",
                    )
                ]
            )


async def time_start(runner: Runner, count: int) -> float:
    started = time.perf_counter()
    app = ControlRoomApp(runner, user="alice", poll_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        while True:
            screen = app.screen
            loaded = isinstance(screen, RunsScreen) and screen.loaded
            if loaded and screen.query_one("#runs", DataTable).row_count == count:
                break
            await pilot.pause(0.001)
        took = time.perf_counter() - started
    return took


LONG_MODEL = "scripted:long"


def long_script(rounds: int) -> ScriptedChatModel:
    replies = [
        ScriptedReply(tool_calls=[ScriptedToolCall(name="note", args={"text": f"n{i}"})])
        for i in range(rounds - 1)
    ] + [ScriptedReply(content="done")]
    return ScriptedChatModel(replies=replies)


def long_run(runner: Runner) -> str:
    """One run of the model/tools loop on ``LONG_MODEL`` (given to the runner)."""
    wf = (
        GraphBuilder("long", model=LONG_MODEL, tools=[note])
        .model("agent", "Keep notes.", tools=["note"], on_tool_calls="act", next="end")
        .tools("act", next="agent")
        .build()
    )
    # a breakpoint every round keeps each invocation under LangGraph's recursion limit
    result = runner.start(
        wf, user="alice", input="go", breakpoints=Breakpoints(nodes=frozenset({"act"}))
    )
    while result.status is RunStatus.PAUSED:
        result = runner.resume(result.run_id)
    assert result.status is RunStatus.COMPLETED, result.run.error
    return result.run_id


async def time_render(runner: Runner, run_id: str, steps: int) -> float:
    app = ControlRoomApp(runner, user="alice", poll_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        started = time.perf_counter()
        screen = RunScreen(run_id)
        app.push_screen(screen)
        while True:
            if screen.is_mounted and screen.view is not None:
                rows = screen.query_one("#timeline", DataTable).row_count
                detail = str(screen.query_one("#detail", Static).render())
                if rows >= steps and "select a step" not in detail:
                    break
            await pilot.pause(0.001)
        return time.perf_counter() - started


def summary(samples: list[float]) -> dict[str, Any]:
    return {
        "median_ms": round(statistics.median(samples) * 1000, 1),
        "max_ms": round(max(samples) * 1000, 1),
        "samples_ms": [round(s * 1000, 1) for s in samples],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, default=Path("bench-tui.json"))
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=5)
    args = parse_args(parser, argv, smoke={"runs": 50, "rounds": 5, "repeat": 1})
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        (home / "directory.yaml").write_text(DIRECTORY)
        os.environ["CONTROLROOM_HOME"] = str(home)
        with Runner(home=home) as runner:
            fill_store(runner, args.runs)
            starts = [asyncio.run(time_start(runner, args.runs)) for _ in range(args.repeat)]
        long_home = Path(tmp) / "long"
        long_home.mkdir()
        (long_home / "directory.yaml").write_text(DIRECTORY)
        with Runner(home=long_home, models={LONG_MODEL: long_script(args.rounds)}) as runner:
            built = time.perf_counter()
            run_id = long_run(runner)
            built = time.perf_counter() - built
            checkpoints = len(runner.checkpoints(run_id))
            steps = checkpoints - 1  # the input checkpoint is not a step
            renders = [
                asyncio.run(time_render(runner, run_id, checkpoints)) for _ in range(args.repeat)
            ]
    result = {
        "benchmark": "tui",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "textual": version("textual"),
        },
        "start_with_runs": {"runs": args.runs, **summary(starts)},
        "render_run": {
            "steps": steps,
            "checkpoints": checkpoints,
            "built_in_s": round(built, 1),
            **summary(renders),
        },
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"TUI start with {args.runs} runs: median {result['start_with_runs']['median_ms']} ms; "
        f"render a run of {steps} steps: median {result['render_run']['median_ms']} ms "
        f"(wrote {args.out})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
