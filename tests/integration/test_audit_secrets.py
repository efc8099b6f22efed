"""Acceptance 5: no secret planted in the environment or in a tool's configuration appears
in any audit log, in any redaction mode, nor in its exports."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr
from typer.testing import CliRunner

from controlroom import Effect, GraphBuilder, Runner, RunStatus, ToolContext, tool
from controlroom.cli import app
from controlroom.testing import ScriptedChatModel, ScriptedReply, ScriptedToolCall

ENV_SECRETS = {
    "PAYMENTS_API_KEY": "sk-live-51HxQ2eZvKYlo2C0",
    "BANK_TOKEN": "tok_9f8e7d6c5b4a3f2e",
    "DB_PASSWORD": "hunter2-correct-horse",
    "OAUTH_CLIENT_SECRET": "cs_0a1b2c3d4e5f6071",
}
CONFIGURED = "configured-secret-4242"  # CONTROLROOM_AUDIT_SECRETS
CONFIG_SECRET = "cfg-secretstr-8c7d6e5f"  # a SecretStr in the tool's configuration
CONFIG_TOKEN = "cfg-token-1f2e3d4c"  # a plain string under a secret-named field
CLOSURE_PASSWORD = "closure-pass-77a7"  # a variable the tool function closes over
PARTIAL_KEY = "partial-apikey-31337"  # bound with functools.partial
RETURNED = "returned-session-token-5555"  # a tool returns it under a secret-named key
PARTNER_API_KEY = "global-partner-key-9a9b"  # a module global the tool uses
ALL = [
    *ENV_SECRETS.values(),
    CONFIGURED,
    CONFIG_SECRET,
    CONFIG_TOKEN,
    CLOSURE_PASSWORD,
    PARTIAL_KEY,
    RETURNED,
    PARTNER_API_KEY,
]


class BankConfig(BaseModel):
    endpoint: str = "https://bank.example"
    api_secret: SecretStr
    client_token: str


def make_tools(config: BankConfig) -> list[Any]:
    webhook_password = CLOSURE_PASSWORD

    def _transfer(account: str, note: str, ctx: ToolContext, signing_key: str) -> dict[str, Any]:
        # A leaky tool: it echoes everything it holds back into its result.
        return {
            "account": account,
            "note": note,
            "debug": [
                config.api_secret.get_secret_value(),
                config.client_token,
                webhook_password,
                signing_key,
                PARTNER_API_KEY,
            ],
            "session_token": RETURNED,
        }

    transfer_impl = functools.partial(_transfer, signing_key=PARTIAL_KEY)

    @tool(effect=Effect.IRREVERSIBLE)
    def transfer(account: str, note: str, ctx: ToolContext) -> dict[str, Any]:
        """Transfer money."""
        return transfer_impl(account=account, note=note, ctx=ctx)

    @tool(effect=Effect.READ)
    def whoami(ctx: ToolContext) -> str:
        """Report the session."""
        return f"session {RETURNED} for {ctx.principal.id}"

    return [transfer, whoami]


def run_leaky(home: Path) -> str:
    config = BankConfig(api_secret=SecretStr(CONFIG_SECRET), client_token=CONFIG_TOKEN)
    tools = make_tools(config)
    wf = (
        GraphBuilder("leaky", model="scripted:leaky", tools=tools)
        .model(
            "agent",
            "Use key " + ENV_SECRETS["PAYMENTS_API_KEY"] + " for {user.name}.",
            tools=["transfer", "whoami"],
            on_tool_calls="act",
            next="end",
        )
        .tools("act", next="agent")
        .build()
    )
    model = ScriptedChatModel(
        replies=[
            ScriptedReply(
                content=f"Logging in with {ENV_SECRETS['DB_PASSWORD']}",
                tool_calls=[
                    ScriptedToolCall(
                        name="transfer",
                        args={"account": "ACC-1", "note": f"auth {ENV_SECRETS['BANK_TOKEN']}"},
                    ),
                    ScriptedToolCall(name="whoami", args={}),
                ],
            ),
            ScriptedReply(content=f"Done; your session is {RETURNED}, key {CONFIGURED}."),
        ]
    )
    with Runner(home=home, models={"scripted:leaky": model}) as runner:
        result = runner.start(
            wf, user="alice", input=f"Pay with {ENV_SECRETS['OAUTH_CLIENT_SECRET']}"
        )
        assert result.status is RunStatus.WAITING
        result = runner.approve(
            result.run_id,
            result.pending[0].approval_id,
            by="bob",
            args={"account": "ACC-1", "note": f"edited {CONFIG_TOKEN} and {PARTIAL_KEY}"},
            reason=f"ok, the password is {ENV_SECRETS['DB_PASSWORD']}",
        )
        assert result.status is RunStatus.COMPLETED, result.run
        return result.run_id


@pytest.mark.parametrize("mode", ["full", "hash", "mask"])
def test_no_planted_secret_reaches_the_log(
    project: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    for name, value in ENV_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CONTROLROOM_AUDIT_SECRETS", json.dumps([CONFIGURED]))
    monkeypatch.setenv("CONTROLROOM_AUDIT_REDACTION", mode)
    run_id = run_leaky(project)

    written = b"".join(p.read_bytes() for p in sorted((project / "audit").iterdir()))
    cli = CliRunner()
    for fmt in ("jsonl", "otlp-json"):
        exported = cli.invoke(app, ["audit", "export", run_id, "--format", fmt])
        assert exported.exit_code == 0
        written += exported.stdout_bytes
    shown = cli.invoke(app, ["audit", "show", run_id, "--json"])
    written += shown.stdout_bytes
    leaked = [s for s in ALL if s.encode() in written]
    assert leaked == [], f"secrets in the {mode} log: {leaked}"
    assert b"[secret]" in written  # they were there to scrub, and were scrubbed
    assert cli.invoke(app, ["audit", "verify", run_id]).exit_code == 0
    if mode != "full":  # nothing of the prompts, outputs or arguments either
        assert b"ACC-1" not in (project / "audit" / f"{run_id}.jsonl").read_bytes()
