"""The per-run log: chain, attempts, write-ahead syncs, checkpoints, several writers, repair."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

import controlroom.audit.log as log_module
from controlroom.audit import AuditError, AuditLog, Signer, read_records, verify_log
from controlroom.audit.canonical import canonical, genesis_hash, sha256
from controlroom.audit.log import head_path, read_head


def new_log(tmp_path: Path, **kw: Any) -> tuple[AuditLog, Signer]:
    signer = kw.pop("signer", None) or Signer.generate()
    return AuditLog(tmp_path / "r1.jsonl", "r1", signer=signer, **kw), signer


def test_records_chain_from_the_genesis_of_their_run(tmp_path: Path) -> None:
    log, _ = new_log(tmp_path)
    log.append({"kind": "run.start"})
    log.append({"kind": "error", "controlroom.error.message": "x"})
    lines = (tmp_path / "r1.jsonl").read_bytes().split(b"\n")[:-1]
    first, second = (json.loads(line) for line in lines)
    assert first["prev_hash"] == genesis_hash("r1") != genesis_hash("r2")
    assert second["prev_hash"] == sha256(lines[0])
    assert [first["seq"], second["seq"]] == [0, 1]
    assert all(canonical(json.loads(line)) == line for line in lines)


def test_attempts_count_repeated_actions_and_once_records_are_written_once(tmp_path: Path) -> None:
    log, _ = new_log(tmp_path)
    call = {"kind": "tool.decision", "step": 4, "gen_ai.tool.call.id": "c1"}
    assert log.append(call)["attempt"] == 1  # type: ignore[index]
    assert log.append(call)["attempt"] == 2  # type: ignore[index]
    decided = {"kind": "approval.decided", "controlroom.approval.id": "a4-1"}
    assert log.append(decided, once=True) is not None
    assert log.append(decided, once=True) is None
    # A second writer (another process) sees the same counts from the file.
    other = AuditLog(tmp_path / "r1.jsonl", "r1")
    assert other.append(decided, once=True) is None
    assert other.append(call)["attempt"] == 3  # type: ignore[index]


def test_durable_records_are_synced_before_append_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    monkeypatch.setattr(log_module, "_sync", synced.append)
    log, _ = new_log(tmp_path, fsync="batch", batch=100)
    log.append({"kind": "model.call", "step": 1, "node": "a"})
    assert synced == []  # batched
    log.append({"kind": "tool.decision", "step": 2, "gen_ai.tool.call.id": "c"}, durable=True)
    assert len(synced) == 1
    always, _ = AuditLog(tmp_path / "r2.jsonl", "r2", fsync="always"), None
    always.append({"kind": "model.call", "step": 1, "node": "a"})
    assert len(synced) == 2


def test_batches_are_synced_every_n_records_and_on_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    monkeypatch.setattr(log_module, "_sync", synced.append)
    log = AuditLog(tmp_path / "r1.jsonl", "r1", batch=3)
    for i in range(7):
        log.append({"kind": "error", "controlroom.error.message": str(i)})
    assert len(synced) == 2
    log.close()
    assert len(synced) == 3


def test_checkpoints_sign_the_chain_and_update_the_head(tmp_path: Path) -> None:
    log, signer = new_log(tmp_path, checkpoint_every=5)
    for i in range(12):
        log.append({"kind": "error", "controlroom.error.message": str(i)})
    log.checkpoint("completed")
    log.checkpoint("completed")  # nothing new since: no second checkpoint
    kinds = [r["kind"] for r in read_records(tmp_path / "r1.jsonl")]
    assert [i for i, k in enumerate(kinds) if k == "checkpoint"] == [5, 11, 14]
    head = read_head(tmp_path / "r1.jsonl")
    assert head is not None and head["seq"] == 14
    assert head["end"] == (tmp_path / "r1.jsonl").stat().st_size
    report = verify_log(tmp_path / "r1.jsonl", expected_key=signer.public)
    assert report.ok and report.signed_through == 14


def test_two_writers_and_many_threads_keep_one_chain(tmp_path: Path) -> None:
    signer = Signer.generate()
    writers = [AuditLog(tmp_path / "r1.jsonl", "r1", signer=signer) for _ in range(3)]

    def work(log: AuditLog, tag: str) -> None:
        for i in range(40):
            log.append({"kind": "error", "controlroom.error.message": f"{tag}-{i}"})

    threads = [
        threading.Thread(target=work, args=(w, f"{n}{t}"))
        for n, w in enumerate(writers)
        for t in "ab"
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writers[0].checkpoint("completed")
    report = verify_log(tmp_path / "r1.jsonl", expected_key=signer.public)
    assert report.ok, report.summary()
    messages = [r.get("controlroom.error.message") for r in read_records(tmp_path / "r1.jsonl")]
    assert len({m for m in messages if m}) == 3 * 2 * 40  # none lost, none twice


def test_a_torn_tail_is_cut_off_and_recorded_by_the_next_writer(tmp_path: Path) -> None:
    log, signer = new_log(tmp_path)
    log.append({"kind": "run.start"})
    log.close()
    path = tmp_path / "r1.jsonl"
    with path.open("ab") as out:
        out.write(b'{"kind":"model.call","seq":1,"pre')  # a writer died mid-line
    torn = verify_log(path, expected_key=signer.public)
    assert torn.status == "incomplete" and torn.torn_tail_bytes == 33
    later = AuditLog(path, "r1", signer=signer)
    later.append({"kind": "error", "controlroom.error.message": "after the crash"})
    later.checkpoint("completed")
    kinds = [r["kind"] for r in read_records(path)]
    assert kinds == ["run.start", "log.repair", "error", "checkpoint"]
    assert read_records(path)[1]["controlroom.repair.torn_bytes"] == 33
    assert verify_log(path, expected_key=signer.public).ok


def test_the_writer_refuses_a_damaged_or_truncated_log(tmp_path: Path) -> None:
    log, _ = new_log(tmp_path)
    for i in range(3):
        log.append({"kind": "error", "controlroom.error.message": str(i)})
    log.checkpoint("waiting")
    log.close()
    path = tmp_path / "r1.jsonl"
    data = path.read_bytes()
    path.write_bytes(data.replace(b'message":"1"', b'message":"X"'))
    with pytest.raises(AuditError, match="broken hash chain at record 2"):
        AuditLog(path, "r1").append({"kind": "error"})
    lines = data.split(b"\n")
    path.write_bytes(b"\n".join(lines[:2]) + b"\n")  # cut behind the signed head
    with pytest.raises(AuditError, match="shorter than its last signed checkpoint"):
        AuditLog(path, "r1").append({"kind": "error"})
    assert head_path(path).name == "r1.head.json"
