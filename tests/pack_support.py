"""Shared helpers for tests of the policy gate and the enterprise tool pack."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controlroom import (
    Decision,
    Directory,
    GraphBuilder,
    Principal,
    Runner,
    Tool,
    Workflow,
)
from controlroom.testing import ScriptedChatModel, ScriptedReply, ScriptedToolCall
from controlroom.tools import pack
from controlroom.tools.pack.seed import seed_database
from controlroom.tools.policy import PolicyGate, builtin_policies
from controlroom.tools.spec import ToolContext

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIRECTORY = REPO / "controlroom" / "data" / "sample_directory.yaml"
PACK_TOOLS: dict[str, Tool] = {t.name: t for t in pack.tools}
TABLES = ("employees", "invoices", "payments", "tickets", "ticket_comments", "mail", "effects")


@pytest.fixture
def pack_home(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with the sample directory and a freshly seeded pack database."""
    shutil.copyfile(SAMPLE_DIRECTORY, project / "directory.yaml")
    db = project / "enterprise.sqlite"
    seed_database(db)
    monkeypatch.setenv("CONTROLROOM_PACK_DB", str(db))
    return project


def directory() -> Directory:
    return Directory.load(SAMPLE_DIRECTORY)


def pack_gate() -> PolicyGate:
    return PolicyGate.load(builtin_policies("pack"))


def tool_context(principal: Principal, key: str = "run:1:call-1", home: Path = REPO) -> ToolContext:
    return ToolContext(principal=principal, run_id="run", call_id="call-1", idempotency_key=key,
                       home=home)  # fmt: skip


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every pack table, sorted, for before/after comparisons."""
    with sqlite3.connect(db) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}


def added_rows(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {t: [r for r in after[t] if r not in before[t]] for t in TABLES}


def removed_rows(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {t: [r for r in before[t] if r not in after[t]] for t in TABLES}


@dataclass
class Spy:
    """Records every execution of the tools it wraps (name, principal, arguments)."""

    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def wrap(self, tool: Tool) -> Tool:
        inner: Callable[..., Any] = tool.func
        wants_context = tool.wants_context

        def spy(ctx: ToolContext, **kwargs: Any) -> Any:
            self.calls.append((tool.name, ctx.principal.id, dict(kwargs)))
            return inner(ctx=ctx, **kwargs) if wants_context else inner(**kwargs)

        return tool.model_copy(update={"func": spy, "wants_context": True})

    def tools(self, tools: list[Tool] | None = None) -> list[Tool]:
        return [self.wrap(t) for t in (tools or pack.tools)]


@dataclass
class RecordingGate:
    """Wraps a gate and records each decision it makes."""

    inner: PolicyGate
    decisions: list[tuple[str, str, dict[str, Any], Decision]] = field(default_factory=list)

    def decide(self, principal: Principal, tool: Tool, args: dict[str, Any]) -> Decision:
        decision = self.inner.decide(principal, tool, args)
        self.decisions.append((principal.id, tool.name, dict(args), decision))
        return decision


def call(name: str, **args: Any) -> ScriptedToolCall:
    return ScriptedToolCall(name=name, args=args)


def agent_workflow(tools: list[Tool], gate: Any, name: str = "pack-agent") -> Workflow:
    """model → tools → model … over ``tools``, decided by ``gate``."""
    names = [t.name for t in tools]
    return (
        GraphBuilder(name, model="scripted:test", tools=tools, gate=gate)
        .model("agent", "Help {user.name}.", tools=names, on_tool_calls="act", next="end")
        .tools("act", next="agent")
        .build()
    )


def runner_with(home: Path, *replies: ScriptedReply) -> Runner:
    return Runner(home=home, models={"scripted:test": ScriptedChatModel(replies=list(replies))})
