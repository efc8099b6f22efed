"""Model specs: one string selects a chat model.

``scripted:PATH`` plays a script file (see :class:`ScriptedChatModel`), for tests and
demos. ``PROVIDER:MODEL`` for any provider LangChain supports works once its package is
installed (``openai:gpt-4o-mini`` needs ``langchain-openai`` and an API key). The embedded
``local:`` models are not part of this release; asking for one is a clear error.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from controlroom.agents.scripted import ScriptedChatModel
from controlroom.errors import ModelUnavailableError


def split_spec(spec: str) -> tuple[str, str]:
    provider, sep, rest = spec.partition(":")
    if not sep or not provider or not rest:
        raise ModelUnavailableError(
            f"'{spec}' is not a model spec. Write PROVIDER:MODEL, for example "
            "`scripted:examples/invoice-payment/script.yaml` or `openai:gpt-4o-mini`."
        )
    return provider, rest


def resolve_model(spec: str, *, base_dir: Path | None = None) -> BaseChatModel:
    """Build the chat model a spec names; relative script paths resolve against ``base_dir``."""
    provider, rest = split_spec(spec)
    if provider == "scripted":
        path = Path(rest)
        if not path.is_absolute() and base_dir is not None and not path.exists():
            path = base_dir / path
        return ScriptedChatModel.from_file(path)
    if provider == "local":
        raise ModelUnavailableError(
            f"The embedded local model '{rest}' is not available in this release of "
            "controlroom. Run with a scripted model (`--model scripted:PATH`), or with a "
            "provider whose LangChain package you have installed (e.g. `openai:gpt-4o-mini`)."
        )
    try:
        chat_models = importlib.import_module("langchain.chat_models")
    except ImportError:
        raise ModelUnavailableError(
            f"The model spec '{spec}' needs LangChain's provider registry: "
            f"`pip install langchain langchain-{provider}`."
        ) from None
    try:
        model: BaseChatModel = chat_models.init_chat_model(rest, model_provider=provider)
    except (ImportError, ValueError) as exc:
        raise ModelUnavailableError(f"Cannot start model '{spec}': {exc}") from None
    return model
