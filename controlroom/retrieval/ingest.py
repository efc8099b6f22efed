"""Ingest files into the document store, incrementally and never half-way.

Each file is read, chunked and embedded before anything is written; a file that fails at
any of those steps is reported and skipped, and the store keeps its previous version.
A file's version is the hash of its bytes and of its access (labels, department, owner),
so a changed ``_access.yaml`` re-labels its files too. Unchanged files are skipped.
A changed file's new chunks are written first, then its source record, then its old
chunks are deleted: a crash in between leaves the previous version's chunks, which the
next ingestion of that file removes (they are never the source record's chunks).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field

from controlroom.errors import DocumentError
from controlroom.retrieval.chunking import DEFAULT_SIZE, Chunk, chunk_document
from controlroom.retrieval.documents import (
    ACCESS_FILE,
    SUFFIXES,
    Access,
    SourceDocument,
    read_document,
    source_key,
)
from controlroom.retrieval.store import DocumentStore, SourceRecord, access_key

Progress = Callable[["IngestEvent"], None]


class Outcome(StrEnum):
    ADDED = "added"
    REPLACED = "replaced"
    UNCHANGED = "unchanged"
    REMOVED = "removed"
    FAILED = "failed"


class FileResult(BaseModel):
    source: str
    outcome: Outcome
    chunks: int = 0
    labels: tuple[str, ...] = ()
    reason: str | None = None


class IngestReport(BaseModel):
    files: list[FileResult] = Field(default_factory=list)
    seconds: float = 0.0
    chunks_embedded: int = 0

    def count(self, outcome: Outcome) -> int:
        return sum(1 for f in self.files if f.outcome == outcome)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.outcome == Outcome.FAILED]

    def summary(self) -> str:
        parts = [f"{self.count(o)} {o.value}" for o in Outcome if self.count(o)]
        return ", ".join(parts) or "nothing to do"


class IngestEvent(BaseModel):
    """Progress: ``done`` of ``total`` files, the current one and what happened to it."""

    done: int
    total: int
    source: str
    outcome: Outcome | None = None


def _version(doc: SourceDocument, size: int) -> str:
    access = doc.access
    basis = "\x00".join(
        [
            doc.sha256,
            access_key(doc.labels),
            access.department or "",
            access.owner or "",
            str(size),
            doc.title,
        ]
    )
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


def find_files(paths: Iterable[Path]) -> list[tuple[Path, Path]]:
    """``(file, root)`` for every supported file under ``paths`` (hidden ones skipped)."""
    found: dict[Path, Path] = {}
    for given in paths:
        path = Path(given).expanduser().resolve()
        if not path.exists():
            raise DocumentError(f"{given}: no such file or folder.")
        if path.is_file():
            found.setdefault(path, path.parent)
            continue
        for file in sorted(path.rglob("*")):
            rel = file.relative_to(path).parts
            if any(p.startswith(".") for p in rel) or file.name == ACCESS_FILE:
                continue
            if file.is_file() and file.suffix.lower() in SUFFIXES and file.name != "README.md":
                found.setdefault(file, path)
    return sorted(found.items())


def _metadata(doc: SourceDocument, chunk: Chunk, version: str) -> dict[str, str | int]:
    return {
        "source": doc.source,
        "title": doc.title,
        "headings": chunk.heading_path,
        "index": chunk.index,
        "labels": "|" + "|".join(doc.labels) + "|",
        "access": access_key(doc.labels),
        "department": doc.access.department or "",
        "owner": doc.access.owner or "",
        "format": doc.format,
        "version": version,
    }


def ingest(
    store: DocumentStore,
    paths: Sequence[Path | str],
    *,
    labels: Sequence[str] = (),
    prune: bool = False,
    chunk_size: int = DEFAULT_SIZE,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest the supported files under ``paths``; see the module docstring.

    ``labels`` are the default access labels of files that get none from their folder's
    ``_access.yaml`` or their own front matter. With ``prune``, sources previously ingested
    from under ``paths`` whose files are gone are removed from the store.
    """
    started = time.perf_counter()
    base = Access(labels=tuple(labels) if labels else None)
    files = find_files(Path(p) for p in paths)
    # A file keeps the key it was first ingested under: ingesting ``corpus`` after
    # ``corpus/hr`` must not add every HR file a second time as ``corpus/hr/...``.
    known = {r.path: r.source for r in store.all_sources() if r.path}
    report = IngestReport()
    for number, (file, root) in enumerate(files, start=1):
        source = known.get(str(file)) or source_key(file, root)
        result = _ingest_one(
            store, file, root, source, base=base, chunk_size=chunk_size, report=report
        )
        report.files.append(result)
        if progress is not None:
            progress(
                IngestEvent(
                    done=number, total=len(files), source=result.source, outcome=result.outcome
                )
            )
    if prune:
        present = {known.get(str(f)) or source_key(f, root) for f, root in files}
        for given in paths:
            root = Path(given).expanduser().resolve()
            if not root.is_dir():
                continue
            prefix = f"{root.name or 'root'}/"
            for record in store.all_sources():
                if not record.source.startswith(prefix) or record.source in present:
                    continue
                if (root / record.source.removeprefix(prefix)).exists():
                    continue  # there, but not ingestible any more: keep until it is fixed
                removed = store.delete_source(record.source)
                report.files.append(
                    FileResult(
                        source=record.source,
                        outcome=Outcome.REMOVED,
                        chunks=removed,
                        labels=record.labels,
                    )
                )
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _ingest_one(
    store: DocumentStore,
    file: Path,
    root: Path,
    source: str,
    *,
    base: Access,
    chunk_size: int,
    report: IngestReport,
) -> FileResult:
    try:
        doc = read_document(file, root=root, base=base, source=source)
        version = _version(doc, chunk_size)
        previous = store.source(doc.source)
        if previous is not None and previous.version == version:
            stale = store.stale_chunks(doc.source, version)
            if stale:  # left by an interrupted replacement
                store.delete_chunks(stale)
            if previous.path != str(file):  # stores from before paths were recorded
                store.put_source(previous.model_copy(update={"path": str(file)}))
            return FileResult(
                source=source,
                outcome=Outcome.UNCHANGED,
                chunks=len(previous.chunk_ids),
                labels=doc.labels,
            )
        chunks = chunk_document(doc, version, size=chunk_size)
        vectors = store.embedder.embed([c.embedding_text() for c in chunks])
    except DocumentError as exc:
        return FileResult(source=source, outcome=Outcome.FAILED, reason=exc.message)
    except Exception as exc:  # a file must never stop the others, nor be half-added
        return FileResult(
            source=source, outcome=Outcome.FAILED, reason=f"{type(exc).__name__}: {exc}"
        )
    store.add_chunks(
        [c.id for c in chunks],
        [c.text for c in chunks],
        vectors,
        [_metadata(doc, c, version) for c in chunks],
    )
    store.put_source(
        SourceRecord(
            source=doc.source,
            version=version,
            title=doc.title,
            labels=doc.labels,
            chunk_ids=[c.id for c in chunks],
            ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
            path=str(file),
        )
    )
    old = store.stale_chunks(doc.source, version)
    if old:
        store.delete_chunks(old)
    report.chunks_embedded += len(chunks)
    return FileResult(
        source=source,
        outcome=Outcome.REPLACED if previous is not None else Outcome.ADDED,
        chunks=len(chunks),
        labels=doc.labels,
    )
