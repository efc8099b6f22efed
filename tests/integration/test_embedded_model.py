"""The embedded model for real (Qwen2.5-Coder-0.5B via llama.cpp), directly and through an
OpenAI-compatible server started on 127.0.0.1: a tool call, a constrained choice and a
chain-of-thought step. Replies are greedy (temperature 0), so they are repeatable."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel

from controlroom.agents.models import resolve_model
from controlroom.agents.reasoning import choose, think
from controlroom.agents.weights import WEIGHTS, ensure_weights

pytestmark = [pytest.mark.model, pytest.mark.slow]

LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_invoice",
        "description": "Look up a vendor invoice by id",
        "parameters": {
            "type": "object",
            "properties": {"invoice_id": {"type": "string"}},
            "required": ["invoice_id"],
        },
    },
}
OPTIONS = ["hardware", "software", "access", "other"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def embedded() -> BaseChatModel:
    return resolve_model("local:qwen2.5-coder-0.5b")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = ensure_weights(WEIGHTS["qwen2.5-coder-0.5b"])
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    log = log_path.open("wb")  # a file, not a pipe: llama.cpp logs more than a pipe holds
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "4096",
            "--model_alias",
            "qwen",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"server did not start: {log_path.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(params=["embedded", "server"])
def model(request: pytest.FixtureRequest) -> Any:
    if request.param == "embedded":
        return request.getfixturevalue("embedded")
    url = request.getfixturevalue("server")
    return resolve_model(f"openai-compatible:{url}#qwen")


def test_tool_call_is_a_schema_valid_choice(model: BaseChatModel) -> None:
    bound = model.bind_tools([LOOKUP])
    reply = bound.invoke(
        [
            SystemMessage("You are an accounts-payable assistant."),
            HumanMessage("Please look up invoice INV-1003"),
        ]
    )
    assert isinstance(reply, AIMessage)
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        ("lookup_invoice", {"invoice_id": "INV-1003"})
    ]


def test_answers_after_the_tool_result(model: BaseChatModel) -> None:
    bound = model.bind_tools([LOOKUP])
    conversation = [
        SystemMessage("You are an accounts-payable assistant."),
        HumanMessage("Please look up invoice INV-1003"),
        AIMessage(
            content="",
            tool_calls=[
                {
                    "name": "lookup_invoice",
                    "args": {"invoice_id": "INV-1003"},
                    "id": "c1",
                    "type": "tool_call",
                }
            ],
        ),
        ToolMessage(
            content='{"invoice_id": "INV-1003", "vendor": "Fabrikam Hardware", "amount_due": 18990.0, "status": "open"}',
            tool_call_id="c1",
            name="lookup_invoice",
        ),
    ]
    reply = bound.invoke(conversation)
    # Either another valid call or an answer: the grammar allows nothing else.
    for call in reply.tool_calls:
        assert call["name"] == "lookup_invoice"
        assert set(call["args"]) == {"invoice_id"}
    assert reply.tool_calls or str(reply.content).strip()


def test_constrained_choice(model: BaseChatModel) -> None:
    out = choose(
        model,
        [SystemMessage("Classify the IT ticket."), HumanMessage("My laptop screen is cracked")],
        OPTIONS,
    )
    assert out.value.choice in OPTIONS  # type: ignore[attr-defined]
    assert len(out.replies) == 1  # constrained decoding: valid at the first attempt


def test_chain_of_thought(model: BaseChatModel) -> None:
    out = think(model, [SystemMessage("Answer briefly."), HumanMessage("What is 17 + 25?")])
    assert out.value.reasoning.strip()  # type: ignore[attr-defined]
    assert "42" in out.value.result  # type: ignore[attr-defined]


class Ticket(BaseModel):
    category: Literal["hardware", "software", "access"]
    priority: Literal["low", "high"]


def test_structured_output_with_literal_fields(model: BaseChatModel) -> None:
    ticket = model.with_structured_output(Ticket).invoke(
        [SystemMessage("Classify the IT ticket."), HumanMessage("My laptop screen is cracked")]
    )
    assert isinstance(ticket, Ticket)  # Literal fields: any other value would not validate
