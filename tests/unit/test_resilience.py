"""Fault injection through a fake HTTP transport: transient errors are retried within the
budget, 400/401 never are, and the fallback model answers when the first is down."""

from __future__ import annotations

import random
from collections.abc import Callable

import httpx
import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI

from controlroom.agents.resilience import ResilientChatModel, RetryPolicy, is_transient
from controlroom.errors import ModelCallError

FAST = RetryPolicy(attempts=6, initial_wait_s=0.0005, max_wait_s=0.002, deadline_s=30)


def completion(text: str) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": "fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        },
    )


class Server:
    """A fake OpenAI endpoint: `fail` decides, per request, what goes wrong (or None)."""

    def __init__(self, fail: Callable[[int], str | None], text: str = "ok") -> None:
        self.fail = fail
        self.text = text
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        what = self.fail(self.requests)
        if what == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if what == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if what is not None:
            return httpx.Response(
                int(what), json={"error": {"message": f"status {what}", "type": "x"}}
            )
        return completion(self.text)


def chat(server: Server) -> ChatOpenAI:
    return ChatOpenAI(
        model="fake",
        api_key="sk-test",  # type: ignore[arg-type]
        base_url="http://model.test/v1",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(server)),
    )


@pytest.mark.parametrize("failure", ["429", "500", "502", "503", "timeout"])
def test_transient_errors_at_a_rate_complete_within_budget(failure: str) -> None:
    rng = random.Random(7)
    server = Server(lambda n: failure if rng.random() < 0.5 else None)
    model = ResilientChatModel(chain=[chat(server)], names=["fake"], policy=FAST)
    for _ in range(30):
        assert model.invoke([HumanMessage("hi")]).content == "ok"
    assert 30 < server.requests <= 30 * FAST.attempts


@pytest.mark.parametrize("status", ["400", "401", "403", "404", "422"])
def test_non_transient_errors_are_never_retried(status: str) -> None:
    server = Server(lambda n: status)
    model = ResilientChatModel(chain=[chat(server)], names=["fake"], policy=FAST)
    with pytest.raises(ModelCallError, match=f"HTTP {status}"):
        model.invoke([HumanMessage("hi")])
    assert server.requests == 1


def test_budget_is_bounded_then_the_fallback_answers() -> None:
    down = Server(lambda n: "down")
    backup = Server(lambda n: None, text="from backup")
    model = ResilientChatModel(
        chain=[chat(down), chat(backup)], names=["primary", "backup"], policy=FAST
    )
    reply = model.invoke([HumanMessage("hi")])
    assert reply.content == "from backup"
    assert down.requests == FAST.attempts
    assert backup.requests == 1
    assert "primary" in reply.response_metadata["fallback_from"][0]


def test_all_down_is_one_clear_error() -> None:
    model = ResilientChatModel(
        chain=[chat(Server(lambda n: "503")), chat(Server(lambda n: "down"))],
        names=["a", "b"],
        policy=FAST,
    )
    with pytest.raises(ModelCallError, match=r"No model of the chain answered: a: 6 attempts"):
        model.invoke([HumanMessage("hi")])


def test_deadline_stops_retrying() -> None:
    server = Server(lambda n: "503")
    slow = RetryPolicy(attempts=1000, initial_wait_s=0.01, max_wait_s=0.01, deadline_s=0.05)
    model = ResilientChatModel(chain=[chat(server)], names=["fake"], policy=slow)
    with pytest.raises(ModelCallError):
        model.invoke([HumanMessage("hi")])
    assert server.requests < 50


def test_classification() -> None:
    assert is_transient(TimeoutError())
    assert is_transient(ConnectionError())
    assert not is_transient(ValueError("bad schema"))
