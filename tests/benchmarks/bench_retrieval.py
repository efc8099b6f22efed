"""Retrieval cost, measured in one run: embedding and ingest throughput on the sample
corpus, and access-filtered query latency at 10k and 100k chunks against the same query
unfiltered.

Usage::

    python tests/benchmarks/bench_retrieval.py --out bench-retrieval.json [--smoke]

* **embed**: every chunk of ``examples/corpus`` (read and chunked as ``ingest`` does) embedded
  with ``MiniLMEmbedder.embed`` on an empty cache (a fresh embedder, the model loaded before
  the clock starts), in chunks/s, with the chunks' mean length in characters and tokens.
* **ingest**: ``ingest(store, ["examples/corpus"])`` into a fresh embedded Chroma store with a
  fresh embedder: read, chunk, embed, write, end to end, in chunks/s.
* **query**: a store filled with the real corpus chunks plus synthetic ones up to 10k, then
  100k chunks (build time reported). Computing 100k real embeddings would take over an hour
  on a small CPU, so synthetic chunks reuse a real chunk's text and metadata shape with a
  vector *near* its embedding (the real vector plus Gaussian noise, renormalised) and access
  labels drawn from a realistic mix (``LABEL_MIX``). ~50 real questions are embedded once.
  For each user (by default an employee who reads only ``internal`` and an HR partner who
  reads ``hr-confidential`` too; ``--users`` adds an executive), after a warm-up, in whole
  passes over the questions until ``--budget`` seconds are spent (at least one pass),
  interleaved question by question, rotating which goes first:

  - ``store.query(vec, k=5, keys=scope.allowed_keys)``: the filtered nearest-neighbour
    search (only the partitions of the label sets the user may read) with the query vector
    precomputed;
  - ``store.query(vec, k=5, keys=None)``: the same search unfiltered (every partition);
  - ``Retriever.search(question, user, k=5)``: the whole path (access scope from Cedar,
    query embedding on an empty cache, filtered search, label re-check);
  - ``Retriever.scope(user)`` alone and the query embedding alone.

  Sanity, on the first pass's results, outside the clock: the fraction of filtered results
  the user may read (must be 1.0), the fraction of unfiltered results they may not (what
  the filter keeps out), and recall@k of both searches against an exact (brute-force)
  search over the same vectors (with the ratio of score sums: synthetic near-duplicates
  make near-ties, where a missed id costs almost no similarity).

The embedder doing the timed embeddings keeps no text cache (``cache_size=0``): every
embedding is computed.

Timings use ``time.perf_counter_ns`` after a warm-up. This is a benchmark, not a test:
nothing asserts on timings. With ``--smoke``: a sample of the corpus (of each file format,
the file with fewest chunks; the folders' access files) embedded 4 texts at a time, stores
of 200 and 400 chunks, a few questions, one pass (tests/benchmarks/common.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tokenizers import Tokenizer

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from controlroom.identity import Directory, Principal  # noqa: E402
from controlroom.retrieval.chunking import Chunk, chunk_document  # noqa: E402
from controlroom.retrieval.documents import SourceDocument, read_document  # noqa: E402
from controlroom.retrieval.embedder import MINILM, MiniLMEmbedder, tokenizer_file  # noqa: E402
from controlroom.retrieval.ingest import find_files, ingest  # noqa: E402
from controlroom.retrieval.retriever import AccessScope, Retriever, SearchResult  # noqa: E402
from controlroom.retrieval.store import DocumentStore, access_key, labels_of  # noqa: E402
from controlroom.tools.policy import PolicyGate, builtin_policies  # noqa: E402
from tests.benchmarks.common import parse_args  # noqa: E402

CORPUS = REPO / "examples" / "corpus"
LEAK_QUERIES = REPO / "tests" / "data" / "leak_queries.yaml"
K = 5
NOISE = 0.04  # per-dimension sigma of the noise added to a real vector (384 dimensions)
# access label sets of the synthetic chunks and their shares
LABEL_MIX: dict[tuple[str, ...], float] = {
    ("internal",): 0.70,
    ("hr-confidential",): 0.06,
    ("hr-confidential", "internal"): 0.04,
    ("finance-restricted", "internal"): 0.07,
    ("finance-restricted",): 0.03,
    ("it-admin",): 0.05,
    ("exec-only",): 0.03,
    ("exec-only", "finance-restricted"): 0.02,
}
USERS = {
    "carol": "employee, reads internal only",
    "dave": "HR partner, reads internal and hr-confidential",
    "frank": "executive, reads internal and exec-only",
}
QUESTIONS = [
    "How many days of annual leave do I get?",
    "What is the policy on working from home?",
    "How do I reset my password?",
    "How do I connect to the VPN from home?",
    "What should I do if I receive a phishing email?",
    "How do I set up multi-factor authentication on a new phone?",
    "Which public holidays does the company observe in 2026?",
    "What are the core working hours?",
    "How do I claim travel expenses?",
    "What class of flight can I book for a long-haul trip?",
    "How do I request access to a shared drive?",
    "What happens during an SSO outage?",
    "How do I get a new laptop for a starter?",
    "Where are the company offices located?",
    "What protective equipment must be worn in the hangar?",
    "How do I report a flight safety occurrence?",
    "What is the severity of an incident that takes email down?",
    "Who is on call for IT incidents at the weekend?",
    "How do I restore a deleted file from backup?",
    "How do I request a firewall change?",
    "How do I add a printer on my laptop?",
    "What services does the IT service desk offer?",
    "What is the break-glass procedure for the domain admin account?",
    "How do field teams get connectivity at remote sites?",
    "What does the code of conduct say about gifts from suppliers?",
    "What are the company values?",
    "How do I report a security incident?",
    "Can I use a personal USB stick on a work computer?",
    "How much can I spend on meals when travelling?",
    "Who approves an expense claim?",
    "What is the parental leave policy?",
    "How is sick leave recorded?",
    "What are the salary bands for engineers?",
    "How are annual bonuses calculated?",
    "What is the disciplinary procedure?",
    "How do I raise a grievance confidentially?",
    "What is the budget for next year?",
    "What were last quarter's revenue figures?",
    "Who are the candidates for the open executive role?",
    "What is the board's plan for the acquisition?",
    "What are the payment approval limits?",
    "How are supplier invoices paid?",
    "When is the payroll run each month?",
    "Is overtime paid for weekend work?",
    "How long is the password expiry period?",
    "What should I do if I lose my laptop?",
    "How do I book a meeting room in the London office?",
    "Can contractors be given admin rights?",
    "How do I change my bank details for payroll?",
    "What is the redundancy process?",
]


def percentiles(samples_ns: Sequence[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6

    return {
        "n": len(ordered),
        "p50_ms": round(at(0.50), 3),
        "p90_ms": round(at(0.90), 3),
        "p99_ms": round(at(0.99), 3),
        "mean_ms": round(statistics.fmean(ordered) / 1e6, 3),
    }


def leak_queries(limit: int = 15) -> list[str]:
    """Up to ``limit`` questions from tests/data/leak_queries.yaml, if it exists."""
    if not LEAK_QUERIES.is_file():
        return []
    data: Any = yaml.safe_load(LEAK_QUERIES.read_text())
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, list)), [])
    found: list[str] = []
    for item in data if isinstance(data, list) else []:
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            text = item.get("query") or item.get("question") or item.get("q")
            if isinstance(text, str):
                found.append(text)
    return found[:limit]


def sample_corpus(root: Path, target: Path) -> Path:
    """A copy of ``root`` with one file of each format (the one with fewest chunks), and
    every folder's access file: every reader and the ingestion path, on few chunks (the
    embedder is the cost: a few chunks per second on a busy 2-core machine)."""
    counts: dict[Path, int] = {}
    for file, base in find_files([root]):
        counts[file] = len(chunk_document(read_document(file, root=base), "bench"))
    keep = [
        min((f for f in counts if f.suffix.lower() == suffix), key=lambda f: (counts[f], str(f)))
        for suffix in sorted({f.suffix.lower() for f in counts})
    ]
    for file in [*keep, *root.rglob("_access.yaml")]:
        copy = target / file.relative_to(root)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, copy)
    return target


def token_counts(texts: Sequence[str]) -> list[int]:
    """Each text's length in the embedder's tokens, before its truncation."""
    tokenizer = Tokenizer.from_file(str(tokenizer_file()))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return [len(e.ids) for e in tokenizer.encode_batch(list(texts))]


def corpus_chunks(root: Path) -> list[tuple[SourceDocument, Chunk]]:
    """Every chunk of the corpus, read and chunked as ``ingest`` does."""
    out: list[tuple[SourceDocument, Chunk]] = []
    for file, base in find_files([root]):
        doc = read_document(file, root=base)
        out += [(doc, chunk) for chunk in chunk_document(doc, "bench")]
    return out


def metadata(doc: SourceDocument, chunk: Chunk, labels: Sequence[str]) -> dict[str, Any]:
    """The metadata ``ingest`` writes, with ``labels`` in place of the document's own."""
    return {
        "source": doc.source,
        "title": doc.title,
        "headings": chunk.heading_path,
        "index": chunk.index,
        "labels": "|" + "|".join(sorted(labels)) + "|",
        "access": access_key(labels),
        "department": doc.access.department or "",
        "owner": doc.access.owner or "",
        "format": doc.format,
        "version": "bench",
    }


class Corpus:
    """All the vectors in the query store, kept in memory for the exact search."""

    def __init__(self) -> None:
        self.vectors: list[np.ndarray] = []
        self.keys: list[np.ndarray] = []

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.vectors), np.concatenate(self.keys)


def fill(
    store: DocumentStore,
    corpus: Corpus,
    chunks: list[tuple[SourceDocument, Chunk]],
    base: np.ndarray,
    start: int,
    count: int,
    rng: np.random.Generator,
    batch: int,
) -> float:
    """Add ``count`` synthetic chunks (ids from ``start``); returns the seconds it took."""
    label_sets = list(LABEL_MIX)
    shares = np.array([LABEL_MIX[s] for s in label_sets])
    seconds = 0.0
    for offset in range(0, count, batch):
        n = min(batch, count - offset)
        pick = rng.integers(0, len(chunks), n)
        vectors = base[pick] + rng.normal(0.0, NOISE, (n, base.shape[1])).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        sets = rng.choice(len(label_sets), n, p=shares / shares.sum())
        ids = [f"s{start + offset + i:07d}" for i in range(n)]
        texts = [chunks[p][1].text for p in pick]
        metas = [
            metadata(chunks[p][0], chunks[p][1], label_sets[s])
            for p, s in zip(pick, sets, strict=True)
        ]
        began = time.perf_counter()
        store.add_chunks(ids, texts, vectors, metas)
        seconds += time.perf_counter() - began
        corpus.vectors.append(vectors)
        corpus.keys.append(np.array([m["access"] for m in metas]))
    return seconds


def exact(
    vectors: np.ndarray, keys: np.ndarray, query: np.ndarray, allowed: Sequence[str] | None
) -> tuple[set[int], float]:
    """The exact top-k rows (among ``allowed`` access keys) and the sum of their scores."""
    scores = vectors @ query
    if allowed is not None:
        scores = np.where(np.isin(keys, list(allowed)), scores, -np.inf)
    top = [int(i) for i in np.argpartition(-scores, K)[:K] if np.isfinite(scores[i])]
    return set(top), float(scores[top].sum())


def row_of(chunk_id: str, real_ids: dict[str, int]) -> int:
    return real_ids[chunk_id] if chunk_id in real_ids else len(real_ids) + int(chunk_id[1:])


class Timer:
    """Named callables timed interleaved, question by question, rotating the order."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.samples: dict[str, list[int]] = {name: [] for name in names}
        self.results: dict[str, list[Any]] = {name: [] for name in names}

    def round(
        self, calls: dict[str, Callable[[], Any]], turn: int, record: bool, keep: bool
    ) -> None:
        shift = turn % len(self.names)
        for name in self.names[shift:] + self.names[:shift]:
            began = time.perf_counter_ns()
            value = calls[name]()
            if record:
                self.samples[name].append(time.perf_counter_ns() - began)
            if keep:
                self.results[name].append(value)


def measure(
    store: DocumentStore,
    retriever: Retriever,
    embedder: MiniLMEmbedder,
    users: dict[str, Principal],
    questions: list[str],
    qvecs: np.ndarray,
    corpus: Corpus,
    real_ids: dict[str, int],
    warmup: int,
    budget: float,
    max_passes: int,
) -> dict[str, Any]:
    vectors, keys = corpus.matrix()
    first_ns = time.perf_counter_ns()
    store.query(qvecs[0], k=K, keys=None)
    first_ms = (time.perf_counter_ns() - first_ns) / 1e6
    out: dict[str, Any] = {
        "chunks": store.count(),
        "first_query_after_build_ms": round(first_ms, 3),
        "by_user": {},
    }
    for name, principal in users.items():
        scope = retriever.scope(principal)
        allowed = list(scope.allowed_keys)
        share = float(np.isin(keys, scope.allowed_keys).mean())

        def search(q: str, p: Principal = principal) -> SearchResult:
            return retriever.search(q, p, k=K)  # the store's embedder caches nothing

        def embed(q: str) -> np.ndarray:
            return embedder.embed([q])

        def calls(i: int, p: Principal = principal, w: Any = allowed) -> dict[str, Any]:
            return {
                "filtered": partial(store.query, qvecs[i], k=K, keys=w),
                "unfiltered": partial(store.query, qvecs[i], k=K, keys=None),
                "search": partial(search, questions[i]),
                "scope": partial(retriever.scope, p),
                "embed": partial(embed, questions[i]),
            }

        timer = Timer(["filtered", "unfiltered", "search", "scope", "embed"])
        for turn in range(warmup):
            timer.round(calls(turn % len(questions)), turn, record=False, keep=False)
        passes, started = 0, time.perf_counter()
        while passes < 1 or (passes < max_passes and time.perf_counter() - started < budget):
            for i in range(len(questions)):  # whole passes: every question counts the same
                timer.round(calls(i), warmup + i + passes, record=True, keep=passes == 0)
            passes += 1
        out["by_user"][name] = {
            "who": USERS[name],
            "timed_passes": passes,
            "readable_labels": sorted(scope.readable),
            "allowed_access_keys": scope.allowed_keys,
            "share_of_chunks_readable": round(share, 4),
            **checks(timer.results, scope, qvecs, vectors, keys, real_ids),
            **timings(timer.samples),
        }
    return out


def timings(samples: dict[str, list[int]]) -> dict[str, Any]:
    f, u = percentiles(samples["filtered"]), percentiles(samples["unfiltered"])
    return {
        "query_filtered": f,
        "query_unfiltered": u,
        "ratio_filtered_over_unfiltered": {
            "p50": round(f["p50_ms"] / u["p50_ms"], 2),
            "p99": round(f["p99_ms"] / u["p99_ms"], 2),
        },
        "retriever_search_full": percentiles(samples["search"]),
        "of_which_scope": percentiles(samples["scope"]),
        "of_which_query_embedding": percentiles(samples["embed"]),
    }


def checks(
    results: dict[str, list[Any]],
    scope: AccessScope,
    qvecs: np.ndarray,
    vectors: np.ndarray,
    keys: np.ndarray,
    real_ids: dict[str, int],
) -> dict[str, Any]:
    """Access and recall of the first timed pass's results, against an exact search."""
    Hits = list[tuple[str, str, dict[str, Any], float]]
    filtered: list[Hits] = results["filtered"]
    unfiltered: list[Hits] = results["unfiltered"]
    searched: list[SearchResult] = results["search"]

    def readable(hits: Hits) -> int:
        return sum(scope.may_read(labels_of(str(m.get("labels", "")))) for _, _, m, _ in hits)

    returned = sum(len(h) for h in filtered)
    total_unfiltered = sum(len(h) for h in unfiltered)
    hit_f = hit_u = want_f = want_u = 0
    score_f = score_u = best_f = best_u = 0.0
    for vec, got_f, got_u in zip(qvecs, filtered, unfiltered, strict=True):
        truth_f, top_f = exact(vectors, keys, vec, scope.allowed_keys)
        truth_u, top_u = exact(vectors, keys, vec, None)
        best_f, best_u = best_f + top_f, best_u + top_u
        score_f += sum(1.0 - d for _, _, _, d in got_f)
        score_u += sum(1.0 - d for _, _, _, d in got_u)
        hit_f += len(truth_f & {row_of(i, real_ids) for i, _, _, _ in got_f})
        hit_u += len(truth_u & {row_of(i, real_ids) for i, _, _, _ in got_u})
        want_f, want_u = want_f + len(truth_f), want_u + len(truth_u)
    search_chunks = [c for r in searched for c in r.chunks]
    same = sum(
        [c.id for c in r.chunks] == [i for i, _, _, _ in h]
        for r, h in zip(searched, filtered, strict=True)
    )
    return {
        "filtered_results_readable_fraction": round(
            sum(readable(h) for h in filtered) / max(returned, 1), 4
        ),
        "filtered_results_per_query": round(returned / len(filtered), 2),
        "unfiltered_results_unreadable_fraction": round(
            1 - sum(readable(h) for h in unfiltered) / max(total_unfiltered, 1), 4
        ),
        "search_results_readable_fraction": round(
            sum(scope.may_read(c.labels) for c in search_chunks) / max(len(search_chunks), 1), 4
        ),
        "search_dropped_by_recheck": sum(r.dropped_by_recheck for r in searched),
        "search_same_ids_as_filtered_query": round(same / len(searched), 4),
        f"recall_at_{K}_filtered_vs_exact": round(hit_f / max(want_f, 1), 4),
        f"recall_at_{K}_unfiltered_vs_exact": round(hit_u / max(want_u, 1), 4),
        # near-ties among synthetic neighbours make id recall harsh: how close the scores are
        "score_sum_ratio_filtered_vs_exact": round(score_f / best_f, 4),
        "score_sum_ratio_unfiltered_vs_exact": round(score_u / best_u, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, default=Path("bench-retrieval.json"))
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000], help="store sizes, ascending"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=25.0,
        help="seconds of timed passes over the questions per user and size (at least one pass)",
    )
    parser.add_argument("--max-passes", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=5, help="untimed questions per user")
    parser.add_argument("--batch", type=int, default=32, help="embedding batch size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--users", nargs="+", choices=list(USERS), default=["carol", "dave"], help="who searches"
    )
    parser.add_argument(
        "--questions", type=int, default=None, help="ask only the first N questions"
    )
    parser.add_argument(
        "--sample-corpus",
        action="store_true",
        help="ingest a few files of the corpus only (every folder and format)",
    )
    args = parse_args(
        parser,
        argv,
        smoke={
            "sizes": [200, 400],
            "budget": 0.0,
            "max_passes": 1,
            "warmup": 1,
            "questions": 4,
            "sample_corpus": True,
            "batch": 4,  # several batches on few chunks (and less padding: cheaper)
        },
    )
    began = time.perf_counter()
    load_at_start = os.getloadavg()
    rng = np.random.default_rng(args.seed)
    directory = Directory.load(REPO / "controlroom" / "data" / "sample_directory.yaml")
    users = {name: directory[name] for name in args.users}
    gate = PolicyGate.load(builtin_policies("pack"))
    tmp = Path(tempfile.mkdtemp(prefix="cr-bench-retrieval-"))
    try:
        # 1. embedding throughput on the real chunks, then ingest end to end ---------------
        corpus_root = args.corpus
        if args.sample_corpus:
            corpus_root = sample_corpus(args.corpus, tmp / "corpus")
        chunks = corpus_chunks(corpus_root)
        texts = [chunk.embedding_text() for _, chunk in chunks]
        # no text cache: each timed embedding (here, and of the questions below) is computed
        embedder = MiniLMEmbedder(batch_size=args.batch, cache_size=0)
        embedder.load()
        untruncated = token_counts(texts)
        tokens = [min(t, MINILM.max_tokens) for t in untruncated]  # what the model sees
        started = time.perf_counter()
        base = embedder.embed(texts)  # a fresh embedder: nothing comes from its cache
        embed_s = time.perf_counter() - started
        embed = {
            "chunks": len(texts),
            "files": len({doc.source for doc, _ in chunks}),
            "batch_size": args.batch,
            "seconds": round(embed_s, 2),
            "chunks_per_s": round(len(texts) / embed_s, 1),
            "mean_chars": round(statistics.fmean(len(t) for t in texts), 1),
            "mean_tokens": round(statistics.fmean(tokens), 1),
            f"truncated_over_{MINILM.max_tokens}_tokens": sum(
                t > MINILM.max_tokens for t in untruncated
            ),
            "threads": os.environ.get("CONTROLROOM_EMBED_THREADS") or "onnxruntime default",
        }
        print(
            f"embed: {embed['chunks']} chunks of {embed['files']} files, "
            f"{embed['chunks_per_s']} chunks/s (batch {args.batch}, mean {embed['mean_chars']} "
            f"chars / {embed['mean_tokens']} tokens)",
            flush=True,
        )

        ingest_embedder = MiniLMEmbedder(batch_size=args.batch)
        ingest_embedder.load()
        ingest_store = DocumentStore.open(tmp / "ingest", embedder=ingest_embedder)
        report = ingest(ingest_store, [corpus_root])
        ingest_result = {
            "files": len(report.files),
            "failed": [f.model_dump(mode="json") for f in report.failed],
            "chunks": report.chunks_embedded,
            "seconds": report.seconds,
            "chunks_per_s": round(report.chunks_embedded / report.seconds, 1),
            "embedding_share": round(
                (report.chunks_embedded / embed["chunks_per_s"]) / report.seconds, 3
            ),
        }
        print(
            f"ingest: {ingest_result['chunks']} chunks in {ingest_result['seconds']} s, "
            f"{ingest_result['chunks_per_s']} chunks/s end to end",
            flush=True,
        )
        del ingest_store

        # 2. query latency at each size -----------------------------------------------------
        questions = list(dict.fromkeys(QUESTIONS + leak_queries()))[: args.questions]
        qvecs = embedder.embed(questions)
        store = DocumentStore.open(tmp / "query", embedder=embedder, collection="bench")
        retriever = Retriever(store, gate)
        corpus = Corpus()
        real_ids: dict[str, int] = {}
        started = time.perf_counter()
        real_ids.update((chunk.id, number) for number, (_, chunk) in enumerate(chunks))
        store.add_chunks(
            [chunk.id for _, chunk in chunks],
            [chunk.text for _, chunk in chunks],
            base,
            [metadata(doc, chunk, doc.labels) for doc, chunk in chunks],
        )
        corpus.vectors.append(base)
        corpus.keys.append(np.array([access_key(doc.labels) for doc, _ in chunks]))
        build_s = time.perf_counter() - started
        near: float | None = None
        sizes: dict[str, Any] = {}
        for size in sorted(args.sizes):
            have = sum(len(v) for v in corpus.vectors)
            added = max(0, size - have)
            build_s += fill(store, corpus, chunks, base, have - len(chunks), added, rng, 5000)
            if near is None and len(corpus.vectors) > 1:
                sample = corpus.vectors[1][:1000]
                near = round(float((sample @ base.T).max(axis=1).mean()), 3)
            print(f"store: {store.count()} chunks, built in {build_s:.1f} s so far", flush=True)
            result = measure(
                store, retriever, embedder, users, questions, qvecs, corpus, real_ids,
                args.warmup, args.budget, args.max_passes,
            )  # fmt: skip
            result["build_seconds_cumulative"] = round(build_s, 1)
            result["added_chunks_per_s"] = round(store.count() / build_s, 1)
            sizes[str(size)] = result
            for name, row in result["by_user"].items():
                f, u, s = (
                    row["query_filtered"],
                    row["query_unfiltered"],
                    row["retriever_search_full"],
                )
                print(
                    f"  {size:>7} {name:<5} ({row['share_of_chunks_readable']:.0%} readable): "
                    f"filtered p50 {f['p50_ms']} / p99 {f['p99_ms']} ms, unfiltered p50 "
                    f"{u['p50_ms']} / p99 {u['p99_ms']} ms (x{row['ratio_filtered_over_unfiltered']['p50']} "
                    f"p50); search() p50 {s['p50_ms']} / p99 {s['p99_ms']} ms; readable "
                    f"{row['filtered_results_readable_fraction']}, recall@{K} "
                    f"{row[f'recall_at_{K}_filtered_vs_exact']} filtered / "
                    f"{row[f'recall_at_{K}_unfiltered_vs_exact']} unfiltered",
                    flush=True,
                )  # fmt: skip
        del retriever, store
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    readable_ok = all(
        row["filtered_results_readable_fraction"] == 1.0
        for size in sizes.values()
        for row in size["by_user"].values()
    )
    result_json = {
        "benchmark": "retrieval",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in load_at_start],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "chromadb": version("chromadb"),
            "onnxruntime": version("onnxruntime"),
            "embedder": MiniLMEmbedder.name,
        },
        "embed": embed,
        "ingest": ingest_result,
        "query": {
            "k": K,
            "questions": len(questions),
            "time_budget_per_user_and_size_s": args.budget,
            "synthetic_chunks": {
                "vectors": (
                    f"a random real corpus chunk's embedding plus N(0, {NOISE}^2) noise per "
                    "dimension, renormalised (text and metadata copied from that chunk)"
                ),
                "mean_cosine_to_nearest_real_chunk": near,
                "label_mix": {"|".join(k): v for k, v in LABEL_MIX.items()},
                "real_chunks_included": len(chunks),
            },
            "by_size": sizes,
        },
        "filtered_results_all_readable": readable_ok,
        "seconds": round(time.perf_counter() - began, 1),
    }
    args.out.write_text(json.dumps(result_json, indent=2) + "\n")
    print(
        f"filtered results all readable: {readable_ok}; "
        f"total {result_json['seconds']} s; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
