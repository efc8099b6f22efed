"""Issue 14, defect 5: the audit never rewrites names. A tool's configuration may hold
values that are also words of tool names and argument keys (``token_scope = "booking"``
next to a tool ``cancel_booking(booking_id)``); only the values of secret-valued fields
are secrets, and even those are removed from free text only, never from a tool's name,
a mapping key or any other identifier field of a record."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, create_model
from typer.testing import CliRunner

from controlroom import Effect, GraphBuilder, Runner, RunStatus, Tool, Workflow, tool
from controlroom.audit import Kind, log_path, read_records
from controlroom.cli import app
from controlroom.testing import ScriptedChatModel, ScriptedReply, ScriptedToolCall

SECRET_MARK = "[secret]"
BOOKING_API_KEY = "bk-live-7Qp2Zr9Xw4Lm"


class BookingApi:
    """A client object whose bound method is the tool: its attributes are the tool's
    configuration, and only ``api_key`` among them is a secret."""

    def __init__(self) -> None:
        self.base_url = "https://bookings.example/v2"
        self.token_type = "Bearer"
        self.token_scope = "booking"
        self.api_key = BOOKING_API_KEY

    def cancel_booking(self, booking_id: str) -> dict[str, Any]:
        """Cancel a booking."""
        return {"booking_id": booking_id, "status": "cancelled", "scope": self.token_scope}


def _records(home: Path, run_id: str) -> list[dict[str, Any]]:
    return read_records(log_path(home / "audit", run_id))


def _tool_call_parts(record: dict[str, Any]) -> list[dict[str, Any]]:
    [message] = record["gen_ai.output.messages"]
    return [p for p in message["parts"] if p["type"] == "tool_call"]


def test_a_bound_tool_configured_with_token_type_and_scope_keeps_its_names(
    project: Path,
) -> None:
    api = BookingApi()
    cancel = tool(api.cancel_booking, effect=Effect.IRREVERSIBLE)
    wf = (
        GraphBuilder("bookings", model="scripted:bookings", tools=[cancel])
        .model(
            "agent", "Help {user.name}.", tools=["cancel_booking"], on_tool_calls="act", next="end"
        )
        .tools("act", next="agent")
        .build()
    )
    model = ScriptedChatModel(
        replies=[
            ScriptedReply(
                content="Cancelling booking BK-1042 with a Bearer token.",
                tool_calls=[
                    ScriptedToolCall(name="cancel_booking", args={"booking_id": "BK-1042"})
                ],
            ),
            ScriptedReply(content="Your booking is cancelled; rebooking is free."),
        ]
    )
    with Runner(home=project, models={"scripted:bookings": model}) as runner:
        result = runner.start(wf, user="alice", input="Cancel my booking BK-1042")
        assert result.status is RunStatus.WAITING
        result = runner.approve(
            result.run_id,
            result.pending[0].approval_id,
            by="bob",
            args={"booking_id": "BK-1043"},
            reason="the booking is BK-1043",
        )
        assert result.status is RunStatus.COMPLETED, result.run
        run_id = result.run_id
        replay = runner.replay(run_id, workflow=wf)

    records = _records(project, run_id)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_kind.setdefault(record["kind"], []).append(record)
    for kind in (Kind.APPROVAL_REQUESTED, Kind.APPROVAL_DECIDED, Kind.TOOL_DECISION):
        assert [r["gen_ai.tool.name"] for r in by_kind[kind]] == ["cancel_booking"], kind
    [result_record] = by_kind[Kind.TOOL_RESULT]
    assert result_record["gen_ai.tool.name"] == "cancel_booking"
    assert json.loads(result_record["gen_ai.tool.call.result"]) == {
        "booking_id": "BK-1043",
        "scope": "booking",
        "status": "cancelled",
    }
    first_call = by_kind[Kind.MODEL_CALL][0]
    assert first_call["controlroom.tools.offered"] == ["cancel_booking"]
    [part] = _tool_call_parts(first_call)
    assert (part["name"], part["arguments"]) == ("cancel_booking", {"booking_id": "BK-1042"})
    [requested] = by_kind[Kind.APPROVAL_REQUESTED]
    assert requested["gen_ai.tool.call.arguments"] == {"booking_id": "BK-1042"}
    [decided] = by_kind[Kind.APPROVAL_DECIDED]
    assert decided["controlroom.approval.args_diff"] == [
        {"old": "BK-1042", "op": "replace", "path": "/booking_id", "value": "BK-1043"}
    ]
    assert decided["controlroom.approval.reason"] == "the booking is BK-1043"
    [decision] = by_kind[Kind.TOOL_DECISION]
    assert decision["gen_ai.tool.call.arguments"] == {"booking_id": "BK-1043"}
    assert "Bearer token" in json.dumps(first_call["gen_ai.output.messages"])
    # Nothing in this run is a secret: the api_key is never used in a value.
    text = log_path(project / "audit", run_id).read_text()
    assert [r["kind"] for r in records if SECRET_MARK in json.dumps(r)] == []
    assert SECRET_MARK not in text
    assert "rebooking is free" in json.dumps(by_kind[Kind.MODEL_CALL][-1])

    assert CliRunner().invoke(app, ["audit", "verify", run_id]).exit_code == 0
    assert replay.matched, replay.summary()


# The property: any tool, any configuration -------------------------------------------

# Words that make no secret-valued name whatever their place (see controlroom.audit.redact).
_SECRETISH = ("secret", "token", "pass", "pwd", "key", "auth", "cookie", "cred")
WORDS = st.from_regex(r"[a-z]{3,9}", fullmatch=True).filter(
    lambda w: not any(s in w for s in _SECRETISH)
)
RESERVED = set(dir(BaseModel)) | {"ctx"}
# Names that are about a secret without being one: their values are ordinary words.
ABOUT_SECRETS = [
    "token_type",
    "token_scope",
    "token_url",
    "password_policy",
    "secret_name",
    "max_tokens",
    "api_key_id",
    "cookie_name",
    "auth_url",
    "key",
    "tokenizer",
    "secret_ref",
]
SECRET_NAMES = [
    "api_key",
    "access_token",
    "client_secret",
    "db_password",
    "auth_token",
    "secret_key",
    "private_key",
    "password",
    "token",
    "apiKey",
    "x-api-key",
    "Authorization",
]
OWN = {"handle", "name_of_tool", "secret_for_result", "settings"}  # Service's own attributes
SECRET_VALUES = st.text(string.ascii_letters + string.digits, min_size=20, max_size=20)


def _join(words: list[str], camel: bool, sep: str) -> str:
    if camel:
        return words[0] + "".join(w.capitalize() for w in words[1:])
    return sep.join(words)


NAMES = st.builds(
    _join, st.lists(WORDS, min_size=1, max_size=3), st.booleans(), st.sampled_from(["_", "-"])
)
KEYS = st.builds(_join, st.lists(WORDS, min_size=1, max_size=3), st.booleans(), st.just("_"))


class Service:
    """A tool's configuration object: attributes set by the test, a bound method as the
    tool function that echoes the real secret into its result (a leaky tool)."""

    def __init__(self, name: str, secret: str, attributes: dict[str, Any]) -> None:
        self.name_of_tool = name
        self.secret_for_result = secret
        for attr, value in attributes.items():
            setattr(self, attr, value)

    def handle(self, **kwargs: Any) -> str:
        return result_text(self.name_of_tool, kwargs, self.secret_for_result)


def result_text(name: str, args: dict[str, Any], secret: str) -> str:
    return f"{name} ran with {json.dumps(args, sort_keys=True)}; authorised by {secret}; Bearer"


@st.composite
def tool_cases(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(NAMES)
    keys = draw(
        st.lists(
            KEYS.filter(lambda k: k not in RESERVED and not k.startswith("model_")),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    args = {k: draw(WORDS) for k in keys}
    # Values that collide with the tool's name and keys, and with words inside them.
    pieces = [
        name,
        *keys,
        *(w for part in (name, *keys) for w in part.replace("-", "_").split("_")),
    ]
    colliding = st.sampled_from([*pieces, "Bearer"])
    decoys = draw(st.dictionaries(st.sampled_from(ABOUT_SECRETS), colliding, max_size=5))
    plain = draw(
        st.dictionaries(KEYS.filter(lambda k: k not in OWN), colliding | WORDS, max_size=3)
    )
    secret = draw(SECRET_VALUES)
    secret_name = draw(st.sampled_from(SECRET_NAMES))
    scheme = draw(st.sampled_from(["", "Bearer "]))
    # Secret-named fields whose values are also the tool's name or keys: real secrets, so
    # free text loses them, but names and keys are kept whatever their value.
    clashing = draw(
        st.dictionaries(st.sampled_from(SECRET_NAMES).filter(lambda n: n != secret_name), colliding)
        if draw(st.booleans())
        else st.just({})
    )
    nested = draw(st.booleans())
    attributes: dict[str, Any] = {**plain, **decoys, **clashing}
    if nested:
        attributes["settings"] = {"auth": {secret_name: scheme + secret}, "scope": decoys}
    else:
        attributes[secret_name] = scheme + secret
    return {
        "name": name,
        "args": args,
        "secret": secret,
        "attributes": attributes,
        "clashing": bool(clashing),
    }


def _run_case(home: Path, case: dict[str, Any]) -> tuple[str, Workflow]:
    name, args = case["name"], case["args"]
    service = Service(name, case["secret"], case["attributes"])
    fields: dict[str, Any] = {k: (str, ...) for k in args}
    args_model = create_model("Args", __config__=ConfigDict(extra="forbid"), **fields)
    the_tool = Tool(name=name, description="A tool.", args_model=args_model, func=service.handle)
    wf = (
        GraphBuilder("anytool", model="scripted:any", tools=[the_tool])
        .model("agent", "Help {user.name}.", tools=[name], on_tool_calls="act", next="end")
        .tools("act", next="agent")
        .build()
    )
    model = ScriptedChatModel(
        replies=[
            ScriptedReply(
                content=f"Calling {name}.", tool_calls=[ScriptedToolCall(name=name, args=args)]
            ),
            ScriptedReply(content=f"{name} says it was authorised by {case['secret']}."),
        ]
    )
    with Runner(home=home, models={"scripted:any": model}) as runner:
        result = runner.start(wf, user="alice", input=f"Please run {name}")
    assert result.status is RunStatus.COMPLETED, result.run
    return result.run_id, wf


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=tool_cases())
def test_any_tool_keeps_its_name_and_argument_keys_and_loses_its_secrets(
    project: Path, case: dict[str, Any]
) -> None:
    name, args, secret = case["name"], case["args"], case["secret"]
    run_id, wf = _run_case(project, case)
    path = log_path(project / "audit", run_id)
    assert secret not in path.read_text()
    records = read_records(path)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_kind.setdefault(record["kind"], []).append(record)

    calls = by_kind[Kind.MODEL_CALL]
    assert [c["controlroom.tools.offered"] for c in calls] == [[name], [name]]
    [part] = _tool_call_parts(calls[0])
    assert part["name"] == name
    assert sorted(part["arguments"]) == sorted(args)
    [decision] = by_kind[Kind.TOOL_DECISION]
    assert decision["gen_ai.tool.name"] == name
    assert sorted(decision["gen_ai.tool.call.arguments"]) == sorted(args)
    [result] = by_kind[Kind.TOOL_RESULT]
    assert result["gen_ai.tool.name"] == name
    assert result["gen_ai.tool.call.id"] == decision["gen_ai.tool.call.id"] == part["id"]
    recorded = result["gen_ai.tool.call.result"]
    assert SECRET_MARK in recorded  # the leaked secret was there, and was removed
    if not case["clashing"]:
        # Nothing but the secret is a secret: the names about secrets taught nothing.
        assert recorded == result_text(name, args, SECRET_MARK)
        assert decision["gen_ai.tool.call.arguments"] == args
        [message] = calls[-1]["gen_ai.output.messages"]
        assert message["parts"][0]["content"] == f"{name} says it was authorised by [secret]."
    # Names are hashed as recorded: a replay, whose redactor knows none of the tool's
    # secrets, takes the same inputs and decisions.
    with Runner(home=project) as runner:
        report = runner.replay(run_id, workflow=wf)
    assert report.matched, report.summary()


@pytest.mark.parametrize("mode", ["full", "hash", "mask"])
def test_a_secret_equal_to_a_tool_name_leaves_the_name_and_the_replay_alone(
    project: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("CONTROLROOM_AUDIT_REDACTION", mode)
    case = {
        "name": "cancel_booking",
        "args": {"booking_id": "BK-7"},
        "secret": "S3cr3tS3cr3tS3cr3tXY",
        # a real secret that is also the tool's name: free text loses it, names keep it
        "attributes": {
            "token_scope": "booking",
            "client_secret": "cancel_booking",
            "api_key": "S3cr3tS3cr3tS3cr3tXY",
        },
        "clashing": True,
    }
    run_id, wf = _run_case(project, case)
    records = _records(project, run_id)
    [decision] = [r for r in records if r["kind"] == Kind.TOOL_DECISION]
    assert decision["gen_ai.tool.name"] == "cancel_booking"
    offered = [r["controlroom.tools.offered"] for r in records if r["kind"] == Kind.MODEL_CALL]
    assert offered == [["cancel_booking"], ["cancel_booking"]]
    assert "S3cr3tS3cr3tS3cr3tXY" not in log_path(project / "audit", run_id).read_text()
    if mode == "mask":
        assert decision["gen_ai.tool.call.arguments"] == {"booking_id": "***"}
    if mode == "full":
        [result] = [r for r in records if r["kind"] == Kind.TOOL_RESULT]
        assert result["gen_ai.tool.call.result"].startswith("[secret] ran with")
        # names are hashed as recorded, so a replay (which knows fewer secrets) matches
        with Runner(home=project) as runner:
            report = runner.replay(run_id, workflow=wf)
        assert report.matched, report.summary()
