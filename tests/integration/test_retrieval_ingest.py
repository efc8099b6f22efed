"""Ingestion: incremental, per-file atomic, labels from files and folders, pruning."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from controlroom.retrieval import DocumentStore, Outcome, ingest
from tests.retrieval_support import copy_corpus


def _ids(store: DocumentStore) -> dict[str, set[str]]:
    return {r.source: set(r.chunk_ids) for r in store.all_sources()}


def test_the_sample_corpus_twice_adds_nothing_and_one_change_replaces_only_its_chunks(
    tmp_path: Path, corpus_copy: Path
) -> None:
    corpus = copy_corpus(tmp_path / "corpus")
    store = DocumentStore.open(tmp_path / "home")
    first = ingest(store, [corpus])
    assert not first.failed and first.count(Outcome.ADDED) == len(first.files) >= 40
    total = store.count()
    assert total >= 250, "a few hundred chunks"
    before = _ids(store)

    second = ingest(store, [corpus])
    assert {f.outcome for f in second.files} == {Outcome.UNCHANGED}
    assert second.chunks_embedded == 0 and store.count() == total and _ids(store) == before

    changed = corpus / "hr" / "annual-leave.md"
    changed.write_text(changed.read_text() + "\n\n## Carry-over\n\nUp to five days carry over.\n")
    third = ingest(store, [corpus])
    outcomes = {Path(f.source).name: f.outcome for f in third.files}
    assert outcomes.pop("annual-leave.md") == Outcome.REPLACED
    assert set(outcomes.values()) == {Outcome.UNCHANGED}
    after = _ids(store)
    key = "corpus/hr/annual-leave.md"
    assert {s: i for s, i in after.items() if s != key} == {
        s: i for s, i in before.items() if s != key
    }
    assert not after[key] & before[key]  # all of its chunks are new
    assert store.count() == total - len(before[key]) + len(after[key])
    hits = store.records(where={"source": key})
    assert any("Up to five days carry over." in text for _, text, _ in hits)


def test_relabelling_a_folder_replaces_its_files_and_pruning_removes_deleted_ones(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    (docs / "a").mkdir(parents=True)
    (docs / "a" / "one.md").write_text("# One\n\nAlpha text about parking permits.\n")
    (docs / "a" / "two.md").write_text("# Two\n\nBeta text about desk booking.\n")
    store = DocumentStore.open(tmp_path / "home")
    ingest(store, [docs])
    (docs / "a" / "_access.yaml").write_text("labels: [hr-confidential]\n")
    report = ingest(store, [docs])
    assert {f.outcome for f in report.files} == {Outcome.REPLACED}
    metas = [meta for _, _, meta in store.records()]
    assert {m["labels"] for m in metas} == {"|hr-confidential|"}
    assert "hr-confidential" in store.access_keys()

    (docs / "a" / "two.md").unlink()
    kept = ingest(store, [docs])  # without --prune nothing is removed
    assert [f.outcome for f in kept.files] == [Outcome.UNCHANGED] and len(store.all_sources()) == 2
    pruned = ingest(store, [docs], prune=True)
    assert [f.outcome for f in pruned.files] == [Outcome.UNCHANGED, Outcome.REMOVED]
    assert [Path(s.source).name for s in store.all_sources()] == ["one.md"]
    assert all(m["source"].endswith("one.md") for m in [m for _, _, m in store.records()])


def test_a_bad_file_is_skipped_whole_and_a_broken_update_keeps_the_previous_version(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Good\n\nValid text about expenses.\n")
    (docs / "bad.md").write_text("---\nlabels: [BAD LABEL]\n---\nText.\n")
    store = DocumentStore.open(tmp_path / "home")
    report = ingest(store, [docs])
    assert {Path(f.source).name: f.outcome for f in report.files} == {
        "bad.md": Outcome.FAILED,
        "good.md": Outcome.ADDED,
    }
    assert "not a valid access label" in (report.failed[0].reason or "")
    assert [Path(s.source).name for s in store.all_sources()] == ["good.md"]
    count = store.count()

    (docs / "good.md").write_bytes(b"\xff\xfe broken now")
    again = ingest(store, [docs])
    assert {f.outcome for f in again.files} == {Outcome.FAILED}
    assert store.count() == count  # the previous version is still searchable
    assert store.records()[0][1].startswith("Valid text")


def test_an_interrupted_replacement_is_cleaned_up_by_the_next_ingestion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    doc = docs / "a.md"
    doc.write_text("# A\n\nFirst version.\n")
    store = DocumentStore.open(tmp_path / "home")
    ingest(store, [docs])
    doc.write_text("# A\n\nSecond version.\n")

    def crash(ids: list[str], **_: object) -> None:
        raise KeyboardInterrupt  # the process dies after the new chunks and the record

    monkeypatch.setattr(store, "delete_chunks", crash)
    with pytest.raises(KeyboardInterrupt):
        ingest(store, [docs])
    monkeypatch.undo()
    assert store.count() == 2  # old and new chunks both present for now
    report = ingest(store, [docs])
    assert report.files[0].outcome == Outcome.UNCHANGED
    assert [text for _, text, _ in store.records()] == ["Second version."]


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    from controlroom.errors import DocumentError

    store = DocumentStore.open(tmp_path / "home")
    with pytest.raises(DocumentError, match="no such file or folder"):
        ingest(store, [tmp_path / "nope"])
    shutil.rmtree(tmp_path / "home")


def test_ingesting_a_parent_folder_keeps_the_keys_its_files_already_have(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "it").mkdir(parents=True)
    (docs / "it" / "vpn.md").write_text("# VPN\n\nGlobalProtect drops every hour at home.\n")
    (docs / "hr.md").write_text("# Leave\n\nTwenty-six days of annual leave.\n")
    store = DocumentStore.open(tmp_path / "home")
    ingest(store, [docs / "it"])
    assert [r.source for r in store.all_sources()] == ["it/vpn.md"]

    report = ingest(store, [docs])  # the parent: vpn.md is the same file, not a new one
    outcomes = {f.source: f.outcome for f in report.files}
    assert outcomes == {"it/vpn.md": Outcome.UNCHANGED, "docs/hr.md": Outcome.ADDED}
    assert [r.source for r in store.all_sources()] == ["docs/hr.md", "it/vpn.md"]
    assert store.count() == 2

    (docs / "it" / "vpn.md").write_text("# VPN\n\nGlobalProtect drops every two hours.\n")
    again = ingest(store, [docs])  # a change replaces it under its first key
    assert {f.source: f.outcome for f in again.files}["it/vpn.md"] == Outcome.REPLACED
    assert store.count() == 2
    pruned = ingest(store, [docs], prune=True)
    assert {f.outcome for f in pruned.files} == {Outcome.UNCHANGED}
