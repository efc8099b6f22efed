"""The crash matrix: kill the CLI at every point a run reaches, resume, compare.

For each scenario, on SQLite and on PostgreSQL:

1. an uninterrupted reference: the commands a person types (`run` for alice, `approve` by
   bob), each traced, so every point every command reaches is known
   (:mod:`controlroom.faults`: each audit record kind, a node's writes saved before the
   next checkpoint, each checkpoint, the store's run updates, approval rows, the effect
   ledger, inside the tools);
2. for every one of those points: a fresh project, the same commands with the process
   SIGKILLed at that point, then what a person does next (`runs`; `resume`, or `approve`
   while the item waits) until the run settles.

Every kill must leave a run that settles `completed` with exactly the reference's final
state, each side effect made once, no `completed` reported before the run's end, and an
audit log that verifies intact (a torn tail is repaired and recorded). The summary of a
matrix (kill points, lost steps, duplicated effects, unrecoverable runs, logs failing
verification) is printed and written to `crash-matrix-<scenario>-<backend>.json` in the
test's folder.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from controlroom import Runner, Settings
from controlroom.audit import read_records, verify_log
from controlroom.audit.keys import load_or_create_signer
from tests.conftest import DIRECTORY_YAML, REPO
from tests.crash_support import Cli, Outcome, Zygote, project_env, read_trace
from tests.integration.test_kill_resume import SCRIPT, WORKFLOW

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("backend")]

INVOICE = REPO / "examples" / "invoice-payment"
MAX_ROUNDS = 8

# The bank tools of the kill/resume test, with crash points of their own: inside the
# irreversible transfer, after its effect and before it returns (the ledger says
# "started": the resume runs it again with the same idempotency key, and the tool's own
# idempotency keeps the effect once). Every invocation is counted, every effect too.
BANK_TOOLS = '''
import sqlite3
from controlroom import Effect, ToolContext, faults, tool


def _db(ctx):
    conn = sqlite3.connect(ctx.home / "bank.sqlite", isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY, account TEXT, amount REAL)")
    conn.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT, tool TEXT)")
    return conn


@tool(effect=Effect.READ)
def balance(account: str, ctx: ToolContext) -> dict:
    """Read an account balance."""
    faults.point("tool.balance.inside")
    return {"account": account, "balance": 900.0}


@tool(effect=Effect.IRREVERSIBLE)
def transfer(account: str, amount: float, ctx: ToolContext) -> dict:
    """Move money (irreversible)."""
    conn = _db(ctx)
    conn.execute("INSERT INTO calls VALUES (?, 'transfer')", (ctx.idempotency_key,))
    faults.point("tool.transfer.before-effect")
    conn.execute("INSERT OR IGNORE INTO effects VALUES (?, ?, ?)", (ctx.idempotency_key, account, amount))
    conn.close()
    faults.point("tool.transfer.inside")
    return {"transferred": amount, "account": account}
'''


@dataclass
class Scenario:
    name: str
    workflow: Path
    input: str
    setup: Callable[[Cli], None]
    effects: Callable[[Path], dict[str, int]]
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Finished:
    run_id: str
    state: list[Any]
    output: str | None
    effects: dict[str, int]
    verify_rc: int
    rounds: int


def bank_effects(home: Path) -> dict[str, int]:
    path = home / "bank.sqlite"
    if not path.exists():
        return {"transfers": 0}
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT account, amount FROM effects").fetchall()
    finally:
        conn.close()
    assert all(r == ("ACC-1", 250.0) for r in rows), rows
    return {"transfers": len(rows)}


def pack_effects(home: Path) -> dict[str, int]:
    conn = sqlite3.connect(home / "enterprise.sqlite")
    try:
        payments = conn.execute(
            "SELECT COUNT(*) FROM payments WHERE invoice_id = 'INV-1004' AND amount_cents = 560000"
        ).fetchone()[0]
        mail = conn.execute(
            "SELECT COUNT(*) FROM mail WHERE folder = 'outbox' AND recipients LIKE '%alice@%'"
        ).fetchone()[0]
    finally:
        conn.close()
    return {"payments": int(payments), "mail": int(mail)}


def observer(cli: Cli) -> Runner:
    """A runner in the test process on the command's project: it only reads (the commands
    that change anything run in the zygote's children, as a person would type them)."""
    env = {**project_env(cli.home), **cli.env}
    url = env.get("CONTROLROOM_DATABASE_URL")
    settings = Settings(
        home=cli.home, model=env["CONTROLROOM_MODEL"], database_url=SecretStr(url) if url else None
    )
    return Runner(settings)


def state_of(cli: Cli, run_id: str) -> tuple[list[Any], str | None]:
    with observer(cli) as runner:
        messages = runner.messages(run_id)
        output = runner.get_run(run_id).output
    summary = []
    for m in messages:
        calls = tuple(
            (c["name"], json.dumps(c["args"], sort_keys=True))
            for c in getattr(m, "tool_calls", None) or []
        )
        summary.append((m.type, m.content, calls))
    return summary, output


def verify_rc(home: Path, run_id: str) -> int:
    """`controlroom audit verify`'s exit code, computed here."""
    key = load_or_create_signer(home / "keys").public
    return verify_log(home / "audit" / f"{run_id}.jsonl", expected_key=key, run_id=run_id).exit_code


def settle(cli: Cli, scenario: Scenario, fault: tuple[int, str, int] | None) -> Finished:
    """The commands a person types, with the process killed once at ``fault`` (command
    index, point, occurrence), then `resume` / `approve` until the run settles."""
    issued = 0  # commands of the scenario issued so far: 0 run, 1 approve

    def command(*args: str) -> Outcome:
        nonlocal issued
        armed = None
        if fault is not None and fault[0] == issued:
            armed = f"{fault[1]}@{fault[2]}"
        issued += 1
        outcome = cli(*args, fault=armed)
        if armed is not None:
            assert outcome.killed, f"not killed at {armed}: {outcome}"
        else:
            assert not outcome.killed, outcome
        return outcome

    command("run", str(scenario.workflow), "-u", "alice", "-i", scenario.input, "--json")
    run_id, rounds = "", 0
    while True:
        rounds += 1
        assert rounds <= MAX_ROUNDS, f"run {run_id} did not settle in {MAX_ROUNDS} rounds"
        with observer(cli) as runner:
            listed = runner.list_runs()
            assert len(listed) == 1, listed
            run_id = listed[0].run_id
            status = listed[0].status.value
            pending = [a.model_dump(mode="json") for a in runner.approvals(run_id)]
        if status == "completed":
            break
        if status == "waiting":
            if pending and issued < 2:
                command("approve", run_id, pending[0]["approval_id"], "-u", "bob", "--json")
                continue
            if pending:  # a second approval would be a lost step's re-asking
                raise AssertionError(f"asked again after a crash: {pending}")
        cli("resume", run_id, "--json")
    state, output = state_of(cli, run_id)
    return Finished(
        run_id=run_id,
        state=state,
        output=output,
        effects=scenario.effects(cli.home),
        verify_rc=verify_rc(cli.home, run_id),
        rounds=rounds,
    )


def fresh(zygote: Zygote, parent: Path, name: str, scenario: Scenario) -> Cli:
    home = parent / name
    home.mkdir(parents=True)
    (home / "directory.yaml").write_text(DIRECTORY_YAML)
    cli = Cli(zygote, home, parent, env=dict(scenario.env))
    scenario.setup(cli)
    return cli


def trace_reference(
    zygote: Zygote, parent: Path, scenario: Scenario
) -> tuple[Finished, list[list[tuple[str, int]]]]:
    cli = fresh(zygote, parent, "reference", scenario)
    traces = [parent / "trace-run", parent / "trace-approve"]
    started = cli(
        "run",
        str(scenario.workflow),
        "-u",
        "alice",
        "-i",
        scenario.input,
        "--json",
        trace=traces[0],
    )
    assert started.rc == 3, started
    run_id = started.json()["run"]["run_id"]
    [item] = started.json()["pending"]
    done = cli("approve", run_id, item["approval_id"], "-u", "bob", "--json", trace=traces[1])
    assert done.rc == 0, done
    state, output = state_of(cli, run_id)
    finished = Finished(run_id, state, output, scenario.effects(cli.home), 0, 0)
    return finished, [read_trace(t) for t in traces]


# Offered before every audit record: each command dies mid-record at its first, middle
# and last record (a torn tail, repaired and recorded by the next writer); every other
# point is killed at every occurrence.
SAMPLED = {"audit.torn"}


def sampled(trace: list[tuple[str, int]]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for name, n in trace:
        counts[name] = max(counts.get(name, 0), n)
    keep = {name: {1, (total + 1) // 2, total} for name, total in counts.items() if name in SAMPLED}
    return [(name, n) for name, n in trace if name not in keep or n in keep[name]]


# The audit log is a file on every backend; what differs on PostgreSQL is the store, the
# checkpoints and the locks. There the matrix kills at every point that touches them, and at
# the audit records the runner orders against the store (stops, approvals, decisions); the
# model-call, tool-result and torn-line points are the file's, covered on SQLite.
FILE_ONLY = {"audit.model.call", "audit.tool.result", "audit.torn", "audit.run.start"}


def on_every_backend(point: str) -> bool:
    return point not in FILE_ONLY


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    z = Zygote()
    yield z
    z.close()


def bank_scenario(folder: Path) -> Scenario:
    folder.mkdir()
    (folder / "tools.py").write_text(BANK_TOOLS)
    (folder / "workflow.yaml").write_text(WORKFLOW)
    (folder / "script.yaml").write_text(SCRIPT)
    return Scenario("bank", folder, "Move 250 from ACC-1", lambda cli: None, bank_effects)


def invoice_scenario(folder: Path) -> Scenario:
    def setup(cli: Cli) -> None:  # the sample directory (payment limits) and the pack's data
        assert cli("init", "--force").rc == 0
        assert cli("pack", "init").rc == 0

    return Scenario(
        "invoice-payment",
        INVOICE,
        "Pay invoice INV-1004",
        setup,
        pack_effects,
        env={"CONTROLROOM_MODEL": f"scripted:{INVOICE / 'script.yaml'}"},
    )


@pytest.mark.parametrize("make", [bank_scenario, invoice_scenario], ids=["bank", "invoice-payment"])
def test_every_kill_point_recovers(
    tmp_path: Path, zygote: Zygote, backend: str, make: Callable[[Path], Scenario]
) -> None:
    scenario = make(tmp_path / "workflow")
    reference, traces = trace_reference(zygote, tmp_path, scenario)
    base = {k: 0 for k in reference.effects}
    once = {k: 1 for k in reference.effects}
    assert reference.effects == once, reference.effects
    points = [(c, name, n) for c, trace in enumerate(traces) for name, n in sampled(trace)]
    if backend == "postgres":
        points = [p for p in points if on_every_backend(p[1])]
    assert len({name for _, name, _ in points}) >= 12, points  # the matrix covers the kinds

    results: list[dict[str, Any]] = []
    problems: list[str] = []
    for i, (c, name, n) in enumerate(points):
        cli = fresh(zygote, tmp_path, f"kill{i}", scenario)
        where = f"{['run', 'approve'][c]} killed at {name}@{n}"
        try:
            got = settle(cli, scenario, (c, name, n))
        except AssertionError as exc:
            problems.append(f"{where}: unrecoverable: {exc}")
            results.append({"command": c, "point": name, "n": n, "recovered": False})
            continue
        lost = got.state != reference.state or got.output != reference.output
        duplicated = {k: v for k, v in got.effects.items() if v > 1}
        missing = {k: v for k, v in got.effects.items() if v < 1}
        if lost or missing:
            problems.append(f"{where}: final state differs from the reference")
        if duplicated:
            problems.append(f"{where}: effects repeated {duplicated}")
        if got.verify_rc != 0:
            problems.append(f"{where}: audit verify exited {got.verify_rc}")
        log = read_records(cli.home / "audit" / f"{got.run_id}.jsonl")
        starts = [r for r in log if r["kind"] == "run.start"]
        if len(starts) != 1:  # a torn first line is cut off, and the start recorded again
            problems.append(f"{where}: the log holds {len(starts)} run.start record(s)")
        ends = [r for r in log if r["kind"] == "run.end"]
        if ends and ends[-1]["controlroom.run.status"] != "completed":
            problems.append(
                f"{where}: the log's last run.end says {ends[-1]['controlroom.run.status']}"
            )
        results.append(
            {
                "command": c,
                "point": name,
                "n": n,
                "recovered": True,
                "rounds": got.rounds,
                "lost_steps": lost,
                "duplicated": duplicated,
                "verify_rc": got.verify_rc,
                "repairs": sum(1 for r in log if r["kind"] == "log.repair"),
            }
        )
    summary = {
        "scenario": scenario.name,
        "backend": backend,
        "kill_points": len(points),
        "kill_points_by_command": {
            "run": sum(1 for c, _, _ in points if c == 0),
            "approve": sum(1 for c, _, _ in points if c == 1),
        },
        "points_reached": {"run": len(traces[0]), "approve": len(traces[1])},
        "lost_steps": sum(1 for r in results if r.get("lost_steps")),
        "duplicated_effects": sum(1 for r in results if r.get("duplicated")),
        "unrecoverable_runs": sum(1 for r in results if not r["recovered"]),
        "audit_logs_failing_verification": sum(
            1 for r in results if r.get("verify_rc") not in (0, None)
        ),
        "torn_tails_repaired": sum(r.get("repairs", 0) for r in results),
        "points": results,
    }
    out = Path(os.environ.get("CONTROLROOM_CRASH_MATRIX_DIR", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"crash-matrix-{scenario.name}-{backend}.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "points"}))
    assert base == {k: 0 for k in base}
    assert not problems, "\n".join(problems)
