"""The document store: Chroma, embedded under the project folder or a server.

Chunks are **partitioned by access**: each distinct label set (its canonical ``access`` key,
e.g. ``finance-restricted|internal``) has a collection of its own, holding the chunks of
every file that carries exactly those labels (text, embedding in cosine space, metadata:
source, title, heading path, labels as ``|a|b|``, access key, department, owner, version).
A search for a user queries only the partitions of the label sets they may read, and
merges the nearest chunks: unreadable chunks are never candidates, and the cost does not
grow with the number of readable chunks (a metadata ``where`` filter in one big collection
makes Chroma list every matching id first: 65 ms at 30k matching chunks, 640 ms at 70k).

Bookkeeping collections:

* ``<name>__access``: one entry per label set, naming its partition; the access filter is
  built from it, so a label set the filter never saw is never searched (it fails closed);
* ``<name>__sources``: one entry per ingested file: version (content and access hash),
  label set, chunk ids; what makes re-ingestion incremental.

Chroma's telemetry is switched off; nothing leaves the machine unless a server URL is
configured.
"""

from __future__ import annotations

import hashlib
import heapq
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from pydantic import BaseModel

from controlroom.config import ensure_home, private_dir, private_file, tighten_tree
from controlroom.errors import DocumentStoreError, EmbedderUnavailableError
from controlroom.retrieval.embedder import MiniLMEmbedder, default_embedder

DEFAULT_COLLECTION = "controlroom_documents"
_ONE = [1.0]  # bookkeeping collections hold no vectors worth searching


def access_key(labels: Iterable[str]) -> str:
    """The canonical key of a label set: sorted, ``|``-joined."""
    return "|".join(sorted(set(labels)))


def labels_of(key: str) -> tuple[str, ...]:
    return tuple(label for label in key.split("|") if label)


class SourceRecord(BaseModel):
    source: str
    version: str
    title: str
    labels: tuple[str, ...]
    chunk_ids: list[str]
    ingested_at: str
    path: str = ""  # the file it was read from (resolved), so a re-ingest keeps its key


def _chroma() -> Any:
    try:
        import chromadb
    except ImportError:
        raise DocumentStoreError(
            "Retrieval needs chromadb, which is not installed. Reinstall controlroom "
            "(it depends on chromadb)."
        ) from None
    return chromadb


def make_embedding_function(embedder: MiniLMEmbedder) -> Any:
    """The embedder as a Chroma embedding function (registered as ``controlroom-minilm``)."""
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
    from chromadb.utils.embedding_functions import register_embedding_function

    @register_embedding_function
    class ControlroomMiniLM(EmbeddingFunction[Documents]):
        def __init__(self) -> None:
            self.embedder = embedder

        def __call__(self, input: Documents) -> Embeddings:
            return list(self.embedder.embed(list(input)))

        @staticmethod
        def name() -> str:
            return "controlroom-minilm"

        def get_config(self) -> dict[str, Any]:
            return {"model": MiniLMEmbedder.name}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> ControlroomMiniLM:
            return ControlroomMiniLM()

        def default_space(self) -> Any:
            return "cosine"

    return ControlroomMiniLM()


_REGISTERED: dict[int, Any] = {}
_LOCK = threading.Lock()


class DocumentStore:
    """Chunks and their bookkeeping in Chroma; see the module docstring.

    ``DocumentStore.open(home)`` is embedded and persistent under ``<home>/chroma``;
    ``DocumentStore.open(home, url="http://host:8000")`` uses a Chroma server.
    """

    def __init__(
        self,
        client: Any,
        *,
        collection: str = DEFAULT_COLLECTION,
        embedder: MiniLMEmbedder | None = None,
        where: str = "",
    ) -> None:
        self.client = client
        self.where = where
        self.name = collection
        self.embedder = embedder or default_embedder()
        with _LOCK:
            ef = _REGISTERED.get(id(self.embedder))
            if ef is None:
                ef = _REGISTERED[id(self.embedder)] = make_embedding_function(self.embedder)
        self._ef = ef
        self._partitions: dict[str, Any] = {}
        try:
            self.sources = client.get_or_create_collection(
                f"{collection}__sources", embedding_function=None
            )
            self.access = client.get_or_create_collection(
                f"{collection}__access", embedding_function=None
            )
        except EmbedderUnavailableError:
            raise
        except Exception as exc:
            raise DocumentStoreError(
                f"The document store at {where} cannot be opened ({_reason(exc)})."
            ) from None

    @classmethod
    def open(
        cls,
        home: Path | str,
        *,
        url: str | None = None,
        collection: str = DEFAULT_COLLECTION,
        embedder: MiniLMEmbedder | None = None,
    ) -> DocumentStore:
        chromadb = _chroma()
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        if url:
            parsed = urlparse(url if "://" in url else f"http://{url}")
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise DocumentStoreError(
                    f"{url!r} is not a Chroma server URL; use http://HOST:PORT "
                    "(CONTROLROOM_CHROMA_URL)."
                )
            try:
                client = chromadb.HttpClient(
                    host=parsed.hostname,
                    port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                    ssl=parsed.scheme == "https",
                    settings=settings,
                )
                client.heartbeat()
            except Exception as exc:
                raise DocumentStoreError(
                    f"The Chroma server at {url} cannot be reached ({_reason(exc)}). Start it "
                    "with `chroma run --host 127.0.0.1 --port 8000 --path DIR`, or unset "
                    "CONTROLROOM_CHROMA_URL to use the embedded store in the project folder."
                ) from None
            return cls(client, collection=collection, embedder=embedder, where=url)
        path = Path(home) / "chroma"
        try:
            # Restricted document text: the folder 0700 and its files 0600, whatever the
            # umask (Chroma's SQLite file is made first, so it and its side files keep 0600).
            ensure_home(Path(home))
            private_dir(path)
            private_file(path / "chroma.sqlite3")
            client = chromadb.PersistentClient(path=str(path), settings=settings)
        except Exception as exc:
            raise DocumentStoreError(
                f"The embedded document store at {path} cannot be opened ({_reason(exc)})."
            ) from None
        store = cls(client, collection=collection, embedder=embedder, where=str(path))
        store._private = path
        store._tighten()
        return store

    _private: Path | None = None  # the embedded store's folder, kept owner-only

    def _tighten(self) -> None:
        """Take group and other bits off what Chroma wrote (its index files follow the
        umask); the folder itself is 0700, so nobody else could reach them meanwhile."""
        if self._private is not None:
            tighten_tree(self._private)

    # bookkeeping -----------------------------------------------------------------------
    def source(self, source: str) -> SourceRecord | None:
        got = self.sources.get(ids=[source], include=["metadatas"])
        if not got["ids"]:
            return None
        return _source_record(source, got["metadatas"][0])

    def all_sources(self) -> list[SourceRecord]:
        got = self.sources.get(include=["metadatas"])
        return sorted(
            (_source_record(i, m) for i, m in zip(got["ids"], got["metadatas"], strict=True)),
            key=lambda r: r.source,
        )

    def access_keys(self) -> list[str]:
        return sorted(self.access.get(include=[])["ids"])

    def partition(self, key: str) -> Any:
        """The Chroma collection holding the chunks of label set ``key`` (created if new)."""
        found = self._partitions.get(key)
        if found is None:
            digest = hashlib.sha256(key.encode()).hexdigest()[:16]
            found = self.client.get_or_create_collection(
                f"{self.name}__p{digest}",
                embedding_function=self._ef,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"controlroom.access": key},
            )
            self._partitions[key] = found
        return found

    def partitions(self) -> list[tuple[str, Any]]:
        return [(key, self.partition(key)) for key in self.access_keys()]

    def count(self) -> int:
        return sum(int(p.count()) for _, p in self.partitions())

    def records(
        self, *, where: dict[str, Any] | None = None, ids: Sequence[str] | None = None
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """``(id, text, metadata)`` of the chunks matching ``where`` / ``ids``, in all
        partitions (for tools and tests; searches go through :meth:`query`)."""
        out: list[tuple[str, str, dict[str, Any]]] = []
        for _, part in self.partitions():
            got = part.get(
                where=where,
                ids=list(ids) if ids is not None else None,
                include=["documents", "metadatas"],
            )
            out += [
                (i, d or "", dict(m or {}))
                for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
            ]
        return out

    # writing ---------------------------------------------------------------------------
    def add_chunks(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        embeddings: np.ndarray,
        metadatas: Sequence[dict[str, Any]],
        *,
        batch: int = 2000,
    ) -> None:
        groups: dict[str, list[int]] = {}
        for n, meta in enumerate(metadatas):
            groups.setdefault(str(meta["access"]), []).append(n)
        for key, rows in sorted(groups.items()):
            part = self.partition(key)
            for start in range(0, len(rows), batch):
                chosen = rows[start : start + batch]
                part.upsert(
                    ids=[ids[i] for i in chosen],
                    documents=[texts[i] for i in chosen],
                    embeddings=embeddings[chosen],
                    metadatas=[metadatas[i] for i in chosen],
                )
            # registered once its chunks are in: searches never miss a registered set's chunks
            self.access.upsert(ids=[key], embeddings=[_ONE], metadatas=[{"n": 1}])
        self._tighten()

    def put_source(self, record: SourceRecord) -> None:
        self.sources.upsert(
            ids=[record.source],
            embeddings=[_ONE],
            metadatas=[
                {
                    "version": record.version,
                    "title": record.title,
                    "labels": access_key(record.labels),
                    "chunk_ids": ",".join(record.chunk_ids),
                    "ingested_at": record.ingested_at,
                    "path": record.path,
                }
            ],
        )
        self._tighten()

    def delete_chunks(self, ids: Sequence[str], *, batch: int = 2000) -> None:
        if not ids:
            return
        for _, part in self.partitions():
            for start in range(0, len(ids), batch):
                part.delete(ids=list(ids[start : start + batch]))

    def stale_chunks(self, source: str, version: str) -> list[str]:
        """Chunks of ``source`` left by an interrupted replacement (not of ``version``),
        in any partition (a relabelled file's old chunks are in its old label set's)."""
        where = {"$and": [{"source": source}, {"version": {"$ne": version}}]}
        return [i for i, _, _ in self.records(where=where)]

    def delete_source(self, source: str) -> int:
        record = self.source(source)
        ids = set(record.chunk_ids) if record else set()
        ids |= {i for i, _, _ in self.records(where={"source": source})}
        self.delete_chunks(sorted(ids))
        self.sources.delete(ids=[source])
        return len(ids)

    # reading ---------------------------------------------------------------------------
    def query(
        self, embedding: np.ndarray, *, k: int, keys: Iterable[str] | None
    ) -> list[tuple[str, str, dict[str, Any], float]]:
        """``(id, text, metadata, distance)`` of the ``k`` nearest chunks among the
        partitions of the label sets ``keys`` (None: every partition, i.e. no filter)."""
        chosen = self.access_keys() if keys is None else list(dict.fromkeys(keys))
        found: list[tuple[str, str, dict[str, Any], float]] = []
        for key in chosen:
            result = self.partition(key).query(
                query_embeddings=[embedding],
                n_results=k,
                include=["documents", "metadatas", "distances"],
            )
            ids = result["ids"][0]
            docs = (result.get("documents") or [[]])[0] or [""] * len(ids)
            metas = (result.get("metadatas") or [[]])[0] or [{}] * len(ids)
            dists = (result.get("distances") or [[]])[0] or [0.0] * len(ids)
            found += [
                (i, d or "", dict(m or {}), float(x))
                for i, d, m, x in zip(ids, docs, metas, dists, strict=True)
            ]
        return heapq.nsmallest(k, found, key=lambda row: row[3])

    def get_chunks(self, ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        return {i: (text, meta) for i, text, meta in self.records(ids=ids)}


def _source_record(source: str, meta: Any) -> SourceRecord:
    meta = dict(meta or {})
    ids = str(meta.get("chunk_ids") or "")
    return SourceRecord(
        source=source,
        version=str(meta.get("version", "")),
        title=str(meta.get("title", "")),
        labels=labels_of(str(meta.get("labels", ""))),
        chunk_ids=[i for i in ids.split(",") if i],
        ingested_at=str(meta.get("ingested_at", "")),
        path=str(meta.get("path", "")),
    )


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
