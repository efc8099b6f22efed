"""No user ever receives a chunk they may not read: leak tests, tampering, properties.

The expected access comes from an oracle written here from the policies' intent
(``controlroom/data/policies/pack/documents.cedar``), independently of the Cedar engine
and of the store's filter: a chunk may reach a user only if the user may read every
label it carries.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlroom.identity import Principal
from controlroom.retrieval import DocumentStore, Retriever, ingest
from controlroom.retrieval.store import access_key
from tests.retrieval_support import REPO, RESTRICTED, pack_policies, sample_users

pytestmark = pytest.mark.retrieval


def oracle(p: Principal) -> set[str]:
    """The labels ``p`` may read, by the documents policies' intent."""
    roles = set(p.roles)
    clearance = set(p.attributes.get("clearance") or [])
    readable: set[str] = set()
    if "employee" in roles:
        readable |= {"internal"} | clearance
        if p.attributes.get("department") == "hr" and "hr-restricted" in clearance:
            readable.add("hr-confidential")
    if "it-admin" in roles:
        readable.add("it-admin")
    if "executive" in roles:
        readable.add("exec-only")
    if "intern" in roles:
        readable &= {"internal"}
    return readable


def _user(uid: str, roles: list[str], department: str, clearance: list[str] | None) -> Principal:
    attrs: dict[str, Any] = {"department": department, "title": uid}
    if clearance is not None:
        attrs["clearance"] = clearance
    return Principal(id=uid, name=uid, roles=tuple(roles), attributes=attrs)


EXTRA_USERS = [
    _user("eng-2", ["employee", "engineer"], "engineering", ["internal"]),
    _user("ops-1", ["employee"], "operations", None),
    _user("hr-unrestricted", ["employee", "hr-partner"], "hr", ["internal", "hr"]),
    _user("hr-cleared-wrong-dept", ["employee"], "finance", ["internal", "hr-restricted"]),
    _user("fin-clerk-2", ["employee", "finance-clerk"], "finance", ["internal", "finance"]),
    _user("fin-mgr-2", ["employee", "finance-manager"], "finance", ["finance-restricted"]),
    _user("cleared-contractor", ["contractor"], "finance", ["internal", "finance-restricted"]),
    _user("cleared-intern", ["employee", "intern"], "hr", ["hr-restricted", "finance-restricted"]),
    _user("it-admin-2", ["employee", "it-admin"], "it", ["internal"]),
    _user("exec-2", ["employee", "executive"], "executive", ["internal"]),
    _user("admin-contractor", ["contractor", "it-admin"], "it", []),
    _user("no-roles", [], "engineering", ["internal", "exec-only"]),
    _user("exec-by-clearance", ["employee"], "strategy", ["internal", "exec-only"]),
]


def all_users() -> list[Principal]:
    users = [*sample_users().values(), *EXTRA_USERS]
    assert len(users) >= 20
    assert len({frozenset(oracle(u)) for u in users}) >= 8, "varied access, not one profile"
    return users


def leak_queries(store: DocumentStore) -> list[str]:
    """Hand-written probes (tests/data/leak_queries.yaml) plus one per restricted section."""
    written = yaml.safe_load((REPO / "tests" / "data" / "leak_queries.yaml").read_text())
    queries = [q["q"] for q in written]
    metas = [meta for _, _, meta in store.records()]
    for meta in metas:
        if set(meta["labels"].strip("|").split("|")) & set(RESTRICTED):
            question = f"What does '{meta['title']}' say about {meta['headings'] or 'this'}?"
            if question not in queries:
                queries.append(question)
    return queries[:240]


def _check_no_leaks(store: DocumentStore) -> dict[str, int]:
    retriever = Retriever(store, pack_policies())
    users = all_users()
    queries = leak_queries(store)
    assert len(queries) >= 200
    seen: dict[str, int] = dict.fromkeys(RESTRICTED, 0)
    returned = 0
    for user in users:
        allowed = oracle(user)
        scope = retriever.scope(user)
        assert scope.readable == allowed & {
            k for key in store.access_keys() for k in key.split("|")
        }
        for query in queries:
            result = retriever.search(query, user, k=5)
            assert result.dropped_by_recheck == 0
            for chunk in result.chunks:
                returned += 1
                assert set(chunk.labels) <= allowed, (user.id, query, chunk.id, chunk.labels)
                for label in set(chunk.labels) & set(RESTRICTED):
                    seen[label] += 1
            if not allowed:
                assert result.chunks == []
    assert returned > len(users) * len(queries) * 3  # the filter is not simply refusing all
    assert all(count > 0 for count in seen.values()), f"restricted labels never served: {seen}"
    return seen


def test_no_user_sees_a_chunk_they_may_not_read_embedded(corpus_store: DocumentStore) -> None:
    _check_no_leaks(corpus_store)


@pytest.mark.slow
def test_no_user_sees_a_chunk_they_may_not_read_chroma_server(
    server_corpus_store: DocumentStore,
) -> None:
    assert server_corpus_store.where.startswith("http://127.0.0.1:")
    _check_no_leaks(server_corpus_store)


def test_an_employee_and_hr_get_different_sources_for_the_same_question(
    corpus_store: DocumentStore,
) -> None:
    retriever = Retriever(corpus_store, pack_policies())
    users = sample_users()
    question = "What are the salary bands for each grade?"
    employee = retriever.search(question, users["carol"], k=5)
    hr = retriever.search(question, users["dave"], k=5)
    assert {c.id for c in employee.chunks} != {c.id for c in hr.chunks}
    assert any("hr-confidential" in c.labels for c in hr.chunks)
    assert all(c.labels == ("internal",) for c in employee.chunks)


# --- tampering with the store ---------------------------------------------------------------


def _meta(ident: str, labels: list[str]) -> dict[str, Any]:
    return {
        "source": ident,
        "title": ident,
        "headings": "",
        "index": 0,
        "labels": "|" + "|".join(labels) + "|",
        "access": access_key(labels),
        "department": "",
        "owner": "",
        "format": "markdown",
        "version": "v",
    }


def _tiny_store(tmp_path: Path) -> DocumentStore:
    store = DocumentStore.open(tmp_path / "home")
    vec = store.embedder.embed(["salary bands for grade seven"])
    rows = [("pub", "internal"), ("conf", "hr-confidential"), ("both", "hr-confidential|internal")]
    for ident, key in rows:
        store.add_chunks([ident], [f"text of {ident}"], vec, [_meta(ident, key.split("|"))])
    return store


def test_a_confidential_chunk_planted_in_the_internal_partition_is_dropped_by_the_recheck(
    tmp_path: Path,
) -> None:
    store = _tiny_store(tmp_path)
    vec = store.embedder.embed(["salary bands for grade seven"])
    planted = {**_meta("planted", ["hr-confidential"]), "access": "internal"}  # lies about it
    store.partition("internal").add(
        ids=["planted"], documents=["x"], embeddings=vec, metadatas=[planted]
    )
    carol = sample_users()["carol"]
    result = Retriever(store, pack_policies()).search("salary bands", carol, k=5)
    assert [c.id for c in result.chunks] == ["pub"]
    assert result.dropped_by_recheck == 1


def test_a_partition_the_store_never_registered_is_never_searched(tmp_path: Path) -> None:
    store = _tiny_store(tmp_path)
    vec = store.embedder.embed(["salary bands for grade seven"])
    store.partition("exec-only").add(
        ids=["ghost"], documents=["x"], embeddings=vec, metadatas=[_meta("ghost", ["exec-only"])]
    )
    frank = sample_users()["frank"]  # may read exec-only, but the set was never registered
    result = Retriever(store, pack_policies()).search("salary bands", frank, k=5)
    assert "ghost" not in {c.id for c in result.chunks} and result.chunks


@pytest.mark.parametrize(
    "meta",
    [
        {"labels": ""},  # labels removed: nobody may read an unlabelled chunk
        {"labels": "|internal|exec-only|"},  # labels widened but key kept
        {"access": "never-registered"},  # an access key the store never recorded
    ],
)
def test_tampered_metadata_never_widens_access(tmp_path: Path, meta: dict[str, str]) -> None:
    store = _tiny_store(tmp_path)
    store.partition("internal").update(ids=["pub"], metadatas=[meta])
    carol = sample_users()["carol"]
    result = Retriever(store, pack_policies()).search("salary bands", carol, k=5)
    assert result.chunks == []


def test_a_user_the_policies_cannot_evaluate_reads_nothing(tmp_path: Path) -> None:
    store = _tiny_store(tmp_path)
    broken = Principal(id="x", name="x", roles=("employee",), attributes={"clearance": "notalist"})
    result = Retriever(store, pack_policies()).search("salary", broken, k=5)
    assert result.chunks == [] and "internal" in result.scope.denied


# --- property: whatever the labels and the user, nothing unreadable comes back ------------

LABELS = ["internal", "hr-confidential", "finance-restricted", "it-admin", "exec-only", "lbl-x"]
SETS = [frozenset(c) for n in (1, 2) for c in itertools.combinations(LABELS, n)]


@pytest.fixture(scope="module")
def random_store(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[DocumentStore, list[frozenset[str]]]:
    store = DocumentStore.open(tmp_path_factory.mktemp("prop"))
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(240, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sets = [SETS[i % len(SETS)] for i in range(240)]
    store.add_chunks(
        [f"r{i}" for i in range(240)],
        [f"chunk {i}" for i in range(240)],
        vectors,
        [
            {
                "source": f"s{i}",
                "title": "t",
                "headings": "",
                "index": 0,
                "labels": "|" + "|".join(sorted(s)) + "|",
                "access": access_key(s),
                "department": "",
                "owner": "",
                "format": "text",
                "version": "v",
            }
            for i, s in enumerate(sets)
        ],
    )
    return store, sets


def _readable_count(sets: Iterable[frozenset[str]], allowed: set[str]) -> int:
    return sum(1 for s in sets if s <= allowed)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    roles=st.sets(
        st.sampled_from(["employee", "intern", "it-admin", "executive", "contractor", "hr-partner"])
    ),
    department=st.sampled_from(["hr", "finance", "it"]),
    clearance=st.one_of(
        st.none(), st.lists(st.sampled_from([*LABELS, "hr-restricted"]), max_size=4)
    ),
    query=st.sampled_from(["salary", "vpn", "board minutes", "treasury", "holiday"]),
    k=st.integers(1, 12),
)
def test_property_results_are_readable_and_complete(
    random_store: tuple[DocumentStore, list[frozenset[str]]],
    roles: set[str],
    department: str,
    clearance: list[str] | None,
    query: str,
    k: int,
) -> None:
    store, sets = random_store
    user = _user("u", sorted(roles), department, clearance)
    allowed = oracle(user)
    result = Retriever(store, pack_policies()).search(query, user, k=k, min_score=-1.0)
    assert all(set(c.labels) <= allowed for c in result.chunks)
    assert len(result.chunks) == min(k, _readable_count(sets, allowed))  # filter inside the query


def test_copies_of_a_passage_do_not_crowd_out_other_passages(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    for folder in ("a", "b", "c"):  # the same runbook, copied into three folders
        (docs / folder).mkdir(parents=True)
        (docs / folder / "vpn.md").write_text(
            "# VPN\n\nWhen GlobalProtect says the gateway is not responding, reconnect.\n"
        )
    (docs / "wifi.md").write_text("# Wi-Fi\n\nThe office Wi-Fi gateway is called NWA-Staff.\n")
    store = DocumentStore.open(tmp_path / "home")
    ingest(store, [docs], labels=["internal"])
    user = sample_users()["carol"]
    result = Retriever(store, pack_policies()).search(
        "GlobalProtect gateway not responding", user, k=2, min_score=-1.0
    )
    assert [c.source for c in result.chunks][1:] == ["docs/wifi.md"]
    assert result.duplicates == 2


def test_a_best_chunk_under_min_top_score_returns_nothing(corpus_store: DocumentStore) -> None:
    user = sample_users()["carol"]
    retriever = Retriever(corpus_store, pack_policies())
    question = "Can I bring my dog to the office?"
    plain = retriever.search(question, user, k=4, min_score=0.0)
    best = plain.chunks[0].score
    assert 0.0 < best < 0.9
    gated = retriever.search(question, user, k=4, min_score=0.0, min_top_score=best + 0.01)
    assert gated.chunks == [] and gated.unanswered
    assert gated.below_threshold == len(plain.chunks)
    kept = retriever.search(question, user, k=4, min_score=0.0, min_top_score=best - 0.01)
    assert [c.id for c in kept.chunks] == [c.id for c in plain.chunks] and not kept.unanswered
