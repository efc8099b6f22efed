"""Resilient model calls: bounded retries of transient errors, and a fallback chain.

Only transient failures are retried: timeouts, connection errors, HTTP 408/409/429 and 5xx.
Everything else (400, 401, 403, 404, 422, a bad schema) fails at once with a clear
message, because retrying cannot fix it. Waits grow exponentially with full jitter, and
both an attempt count and a total deadline stop the retrying (tenacity). Provider SDKs
are built with their own retries off, so attempts never multiply. When a model's budget is
spent on transient errors, the next model of the chain is tried.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from pydantic import BaseModel, ConfigDict, Field
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from controlroom.errors import ModelCallError

TRANSIENT_STATUS = {408, 409, 429}
_TRANSIENT_NAMES = {
    "APIConnectionError",
    "APITimeoutError",
    "TimeoutException",
    "ConnectTimeout",
    "ReadTimeout",
    "WriteTimeout",
    "PoolTimeout",
    "ConnectError",
    "ReadError",
    "RemoteProtocolError",
    "NetworkError",
}


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if status is None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same request could succeed."""
    status = status_of(exc)
    if status is not None:
        return status in TRANSIENT_STATUS or 500 <= status < 600
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    return any(cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__)


class RetryPolicy(BaseModel):
    """Retry policy as data: attempts per model, backoff bounds, a total deadline."""

    model_config = ConfigDict(frozen=True)

    attempts: int = Field(default=4, ge=1)
    initial_wait_s: float = Field(default=0.5, ge=0)
    max_wait_s: float = Field(default=8.0, ge=0)
    deadline_s: float = Field(default=120.0, gt=0)


def _describe(exc: BaseException) -> str:
    status = status_of(exc)
    prefix = f"HTTP {status}: " if status else ""
    return f"{prefix}{type(exc).__name__}: {exc}"


class ResilientChatModel(BaseChatModel):
    """Calls the first model of a chain with retries, then the next ones as fallbacks."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    chain: list[Any]  # Runnable[LanguageModelInput, BaseMessage], primary first
    names: list[str]
    policy: RetryPolicy = Field(default_factory=RetryPolicy)

    @property
    def _llm_type(self) -> str:
        return "controlroom-resilient"

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        bound = [m.bind_tools(tools, **kwargs) for m in self.chain]
        return self.model_copy(update={"chain": bound})

    def _call(self, model: Any, messages: list[BaseMessage], stop: list[str] | None) -> Any:
        retrying = Retrying(
            stop=stop_after_attempt(self.policy.attempts)
            | stop_after_delay(self.policy.deadline_s),
            wait=wait_random_exponential(
                multiplier=self.policy.initial_wait_s, max=self.policy.max_wait_s
            ),
            retry=retry_if_exception(is_transient),
            reraise=False,
        )
        return retrying(model.invoke, messages, stop=stop)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        failures: list[str] = []
        for name, model in zip(self.names, self.chain, strict=True):
            try:
                reply = self._call(model, messages, stop)
            except RetryError as exc:
                last = exc.last_attempt.exception()
                what = _describe(last) if last else "?"
                failures.append(f"{name}: {exc.last_attempt.attempt_number} attempts, last {what}")
                continue
            except Exception as exc:
                if is_transient(exc):
                    failures.append(f"{name}: {_describe(exc)}")
                    continue
                raise ModelCallError(
                    f"Model {name} refused the request ({_describe(exc)}). This is not retried: "
                    "check the API key, the model name and the request, then resume the run."
                ) from exc
            message = (
                reply if isinstance(reply, AIMessage) else AIMessage(content=str(reply.content))
            )
            if failures:
                message.response_metadata = {**message.response_metadata, "fallback_from": failures}
            return ChatResult(generations=[ChatGeneration(message=message)])
        raise ModelCallError(
            "No model of the chain answered: " + "; ".join(failures) + ". The run keeps its "
            "completed steps; `controlroom resume` retries when the service is back."
        )
