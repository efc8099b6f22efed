"""Access-filtered search: a user finds only chunks they may read.

Two checks, neither trusting the other:

1. **Inside the query.** The user's readable labels are decided by the Cedar policies
   (``read_document`` on ``Label::"<name>"``, one source of truth with the tool gate and the
   directory). Every label set in the store whose labels are all readable becomes an
   allowed ``access`` key, and only those label sets' partitions are searched (see
   :mod:`controlroom.retrieval.store`): the nearest-neighbour search itself never considers
   anything else, so an unreadable chunk cannot crowd out readable ones or reach the
   model. No allowed key, no query.
2. **After the query.** Every returned chunk's own labels are checked again against the
   readable set; a chunk that fails is dropped and counted (it would mean a store whose
   metadata was altered, and the count is recorded in the audit).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from controlroom.identity import Principal
from controlroom.retrieval.store import DocumentStore, labels_of
from controlroom.tools.policy import PolicyGate

ABSTAIN = "The documents I can access do not answer this."


class RetrievedChunk(BaseModel):
    """A chunk as shown to the model and to supervisors."""

    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    source: str
    title: str
    headings: str = ""
    labels: tuple[str, ...]
    score: float = Field(description="cosine similarity to the query, -1..1")
    department: str = ""
    owner: str = ""

    def cite_as(self) -> str:
        where = f"{self.title} > {self.headings}" if self.headings else self.title
        return f"[{self.id}] {where}"


class AccessScope(BaseModel):
    """What one user may read, and why."""

    user: str
    readable: frozenset[str]
    denied: dict[str, str] = Field(default_factory=dict)  # label -> reason
    allowed_keys: list[str] = Field(default_factory=list)
    policy_hash: str = ""

    def may_read(self, labels: Sequence[str]) -> bool:
        return bool(labels) and all(label in self.readable for label in labels)


class SearchResult(BaseModel):
    query: str
    user: str
    chunks: list[RetrievedChunk]
    scope: AccessScope
    below_threshold: int = 0  # nearest chunks dropped for a score under min_score
    duplicates: int = 0  # chunks whose text repeats a better-scoring one (copies of a file)
    unanswered: bool = False  # the best chunk scored under min_top_score: nothing returned
    dropped_by_recheck: int = 0  # returned by the store, refused by the label re-check
    latency_ms: float = 0.0

    def audit_view(self) -> list[dict[str, Any]]:
        return [
            {"id": c.id, "labels": list(c.labels), "score": round(c.score, 4)} for c in self.chunks
        ]


class Retriever:
    """Search ``store`` for a principal under the document policies of ``policies``."""

    def __init__(self, store: DocumentStore, policies: PolicyGate) -> None:
        self.store = store
        self.policies = policies

    def scope(self, principal: Principal) -> AccessScope:
        keys = self.store.access_keys()
        labels = sorted({label for key in keys for label in labels_of(key)})
        decisions = self.policies.may_read(principal, labels)
        readable = frozenset(lbl for lbl, d in decisions.items() if d.verdict.value == "allow")
        denied = {lbl: d.reason for lbl, d in decisions.items() if d.verdict.value != "allow"}
        allowed = [k for k in keys if labels_of(k) and all(x in readable for x in labels_of(k))]
        return AccessScope(
            user=principal.id,
            readable=readable,
            denied=denied,
            allowed_keys=allowed,
            policy_hash=self.policies.policy_hash,
        )

    def search(
        self,
        query: str,
        principal: Principal,
        *,
        k: int = 5,
        min_score: float = 0.0,
        min_top_score: float | None = None,
    ) -> SearchResult:
        """The ``k`` nearest chunks ``principal`` may read, best first.

        Chunks scoring under ``min_score`` are left out. Chunks whose text repeats one
        already taken (the same passage in two files) are skipped, so copies do not crowd
        out other passages. With ``min_top_score``, a result whose best chunk scores under
        it is taken as "these documents do not answer the question": no chunk is returned
        and ``unanswered`` is set.
        """
        started = time.perf_counter()
        scope = self.scope(principal)
        chunks: list[RetrievedChunk] = []
        below = dropped = duplicates = 0
        unanswered = False
        if scope.allowed_keys and query.strip():
            vector = self.store.embedder.embed([query])[0]
            nearest = self.store.query(vector, k=2 * k, keys=scope.allowed_keys)
            seen: set[str] = set()
            taken = 0
            for chunk_id, text, meta, distance in nearest:
                if taken == k:
                    break
                labels = labels_of(str(meta.get("labels", "")))
                if not scope.may_read(labels) or meta.get("access") not in scope.allowed_keys:
                    dropped += 1
                    continue
                if text in seen:
                    duplicates += 1
                    continue
                seen.add(text)
                taken += 1
                score = 1.0 - distance
                if score < min_score:
                    below += 1
                    continue
                chunks.append(
                    RetrievedChunk(
                        id=chunk_id,
                        text=text,
                        source=str(meta.get("source", "")),
                        title=str(meta.get("title", "")),
                        headings=str(meta.get("headings", "")),
                        labels=labels,
                        score=score,
                        department=str(meta.get("department", "")),
                        owner=str(meta.get("owner", "")),
                    )
                )
            if (
                min_top_score is not None
                and taken
                and (not chunks or chunks[0].score < min_top_score)
            ):
                unanswered = True
                below += len(chunks)
                chunks = []
        return SearchResult(
            query=query,
            user=principal.id,
            chunks=chunks,
            scope=scope,
            below_threshold=below,
            dropped_by_recheck=dropped,
            duplicates=duplicates,
            unanswered=unanswered,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
        )
