"""Retrieval: offline embeddings, a Chroma document store, ingestion with access labels,
access-filtered search and grounded answers with checked citations."""

from __future__ import annotations

from pathlib import Path

from controlroom.config import Settings
from controlroom.retrieval.chunking import Chunk, chunk_document
from controlroom.retrieval.documents import Access, SourceDocument, read_document
from controlroom.retrieval.embedder import MiniLMEmbedder, default_embedder
from controlroom.retrieval.grounding import ABSTAIN, CitationCheck, GroundedAnswer, check_citations
from controlroom.retrieval.ingest import IngestReport, Outcome, ingest
from controlroom.retrieval.retriever import AccessScope, RetrievedChunk, Retriever, SearchResult
from controlroom.retrieval.store import DocumentStore
from controlroom.tools.policy import (
    PROJECT_POLICIES,
    PolicyGate,
    builtin_policies,
    resolve_policies,
)


def document_policies(settings: Settings) -> PolicyGate:
    """The policies that decide who reads which labels (see ``Settings.document_policies``)."""
    if settings.document_policies:
        return PolicyGate.load(resolve_policies(settings.document_policies, Path.cwd()))
    project = settings.home / PROJECT_POLICIES
    return PolicyGate.load(project if project.is_dir() else builtin_policies("pack"))


def open_store(settings: Settings, *, embedder: MiniLMEmbedder | None = None) -> DocumentStore:
    """The project's document store: a Chroma server if configured, else embedded."""
    return DocumentStore.open(settings.home, url=settings.chroma_url, embedder=embedder)


def open_retriever(settings: Settings, *, policies: PolicyGate | None = None) -> Retriever:
    return Retriever(open_store(settings), policies or document_policies(settings))


__all__ = [
    "ABSTAIN",
    "Access",
    "AccessScope",
    "Chunk",
    "CitationCheck",
    "DocumentStore",
    "GroundedAnswer",
    "IngestReport",
    "MiniLMEmbedder",
    "Outcome",
    "RetrievedChunk",
    "Retriever",
    "SearchResult",
    "SourceDocument",
    "check_citations",
    "chunk_document",
    "default_embedder",
    "document_policies",
    "ingest",
    "open_retriever",
    "open_store",
    "read_document",
]
