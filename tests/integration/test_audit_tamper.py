"""Acceptance 1: the tamper matrix over a real run's log.

Every single-record one-byte edit, deletion, swap of two records, truncation and
re-signing with another key is detected, with the right record index and reason; the
untouched log verifies. The log is a real run's (a denied call, an approved call, an
edited approval: 28 records, 5 checkpoints).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlroom.audit import Reason, Signer, VerifyReport, verify_log
from controlroom.audit.canonical import canonical, sha256
from controlroom.audit.log import head_path
from tests.audit_support import audit_log, finished_run, project_key, write_workflow
from tests.conftest import DIRECTORY_YAML


@dataclass(frozen=True)
class Log:
    run_id: str
    data: bytes
    head: bytes
    key: bytes

    @property
    def lines(self) -> list[bytes]:
        return self.data.split(b"\n")[:-1]

    def spans(self) -> Iterator[tuple[int, int, int]]:
        """(record index, first byte, last byte incl. its newline)."""
        start = 0
        for i, line in enumerate(self.lines):
            yield i, start, start + len(line)
            start += len(line) + 1


@pytest.fixture(scope="module")
def real_log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    root = tmp_path_factory.mktemp("tamper")
    home = root / "home"
    home.mkdir()
    (home / "directory.yaml").write_text(DIRECTORY_YAML)
    run_id = finished_run(home, write_workflow(root / "wf"))
    path = audit_log(home, run_id)
    return Log(run_id, path.read_bytes(), head_path(path).read_bytes(), project_key(home))


def check(folder: Path, log: Log, data: bytes, head: bytes | None = None) -> VerifyReport:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{log.run_id}.jsonl"
    path.write_bytes(data)
    head_path(path).write_bytes(log.head if head is None else head)
    return verify_log(path, expected_key=log.key)


def expect(report: VerifyReport, index: int, reason: Reason) -> None:
    assert report.status == "tampered", report.summary()
    assert (report.index, report.reason) == (index, reason), report.summary()
    assert report.exit_code == 1


def edit(data: bytes, position: int, value: int) -> bytes:
    return data[:position] + bytes([value]) + data[position + 1 :]


def test_the_untouched_log_verifies(real_log: Log, tmp_path: Path) -> None:
    report = check(tmp_path, real_log, real_log.data)
    assert report.ok and report.exit_code == 0, report.summary()
    kinds = [json.loads(line)["kind"] for line in real_log.lines]
    assert kinds.count("checkpoint") == 5 and kinds[-1] == "checkpoint"
    assert {"tool.decision", "approval.requested", "approval.decided", "tool.result"} <= set(kinds)


def test_a_one_byte_edit_of_each_record_is_named(real_log: Log, tmp_path: Path) -> None:
    """For each record: its first byte, a byte of seq, of prev_hash, of its body, of the
    signature (checkpoints), its last byte and its line end."""
    for i, first, newline in real_log.spans():
        line = real_log.lines[i]
        spots = {first, first + line.index(b'"seq":') + 6, newline - 1, newline}
        spots.add(first + line.index(b'"prev_hash":"sha256:') + 25)
        spots.add(first + len(line) // 2)
        if b'"sig":"' in line:
            spots.add(first + line.index(b'"sig":"') + 10)
        for spot in spots:
            value = real_log.data[spot] ^ 0x01
            expect(
                check(tmp_path / f"{i}-{spot}", real_log, edit(real_log.data, spot, value)),
                i,
                Reason.EDITED,
            )


@pytest.mark.slow
def test_every_one_byte_edit_of_every_record_is_named(real_log: Log, tmp_path: Path) -> None:
    for i, first, newline in real_log.spans():
        for spot in range(first, newline + 1):
            report = check(
                tmp_path, real_log, edit(real_log.data, spot, real_log.data[spot] ^ 0x20)
            )
            expect(report, i, Reason.EDITED)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(where=st.floats(0, 1, exclude_max=True), value=st.integers(0, 255))
def test_any_byte_changed_to_any_value_is_named(
    real_log: Log, tmp_path: Path, where: float, value: int
) -> None:
    spot = int(where * len(real_log.data))
    if real_log.data[spot] == value:
        value ^= 0xFF
    index = next(i for i, first, newline in real_log.spans() if first <= spot <= newline)
    expect(check(tmp_path, real_log, edit(real_log.data, spot, value)), index, Reason.EDITED)


def test_deleting_any_record_is_named(real_log: Log, tmp_path: Path) -> None:
    lines = real_log.lines
    for j in range(len(lines)):
        kept = b"".join(line + b"\n" for k, line in enumerate(lines) if k != j)
        report = check(tmp_path, real_log, kept)
        if j == len(lines) - 1:
            expect(report, j, Reason.TRUNCATED)  # the last record gone: the log was cut short
        else:
            expect(report, j, Reason.MISSING)
            assert f"record {j} is missing" in report.detail


def test_swapping_any_two_records_is_named(real_log: Log, tmp_path: Path) -> None:
    lines = real_log.lines
    for j in range(len(lines)):
        for k in range(j + 1, len(lines)):
            swapped = list(lines)
            swapped[j], swapped[k] = swapped[k], swapped[j]
            report = check(tmp_path, real_log, b"".join(line + b"\n" for line in swapped))
            expect(report, j, Reason.REORDERED)


def test_truncation_at_every_record_boundary_is_named(real_log: Log, tmp_path: Path) -> None:
    for i, first, _ in real_log.spans():
        expect(check(tmp_path, real_log, real_log.data[:first]), i, Reason.TRUNCATED)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(where=st.floats(0, 1, exclude_max=True))
def test_truncation_anywhere_is_truncation_not_a_torn_tail(
    real_log: Log, tmp_path: Path, where: float
) -> None:
    cut = int(where * len(real_log.data))
    whole = real_log.data[:cut].count(b"\n")
    expect(check(tmp_path, real_log, real_log.data[:cut]), whole, Reason.TRUNCATED)


def resign(log: Log, signer: Signer, change: int | None = None) -> tuple[bytes, bytes]:
    """Rebuild the chain (after editing record ``change``) and sign it with ``signer``."""
    records = [json.loads(line) for line in log.lines]
    if change is not None:
        records[change]["controlroom.forged"] = True
    out, prev, end, head = b"", None, 0, b""
    for record in records:
        if prev is not None:
            record["prev_hash"] = prev
        if record["kind"] == "checkpoint":
            record.update(pub=signer.public_b64, key_id=signer.key_id)
            record.pop("sig")
            record["sig"] = signer.sign(canonical(record))
        line = canonical(record)
        prev = sha256(line)
        out += line + b"\n"
        end = len(out)
        if record["kind"] == "checkpoint":
            head = canonical(
                {
                    "run_id": log.run_id,
                    "seq": record["seq"],
                    "hash": prev,
                    "end": end,
                    "key_id": signer.key_id,
                }
            )
    return out, head


def test_resigning_with_another_key_is_a_bad_signature(real_log: Log, tmp_path: Path) -> None:
    first_checkpoint = next(
        i for i, line in enumerate(real_log.lines) if json.loads(line)["kind"] == "checkpoint"
    )
    mallory = Signer.generate()
    data, head = resign(real_log, mallory)
    report = check(tmp_path / "plain", real_log, data, head)
    expect(report, first_checkpoint, Reason.BAD_SIGNATURE)
    assert mallory.key_id in report.detail
    for j in range(len(real_log.lines)):  # an edit anywhere, chain rebuilt, all re-signed
        data, head = resign(real_log, mallory, change=j)
        expect(
            check(tmp_path / str(j), real_log, data, head), first_checkpoint, Reason.BAD_SIGNATURE
        )


def test_an_edit_with_a_rebuilt_chain_but_no_key_breaks_the_next_signature(
    real_log: Log, tmp_path: Path
) -> None:
    """Without the key an attacker can rebuild the hashes but not the signatures."""
    checkpoints = [i for i, line in enumerate(real_log.lines) if b'"kind":"checkpoint"' in line]
    for j in range(len(real_log.lines)):
        records = [json.loads(line) for line in real_log.lines]
        records[j]["controlroom.forged"] = True
        out, prev = b"", None
        for record in records:
            if prev is not None:
                record["prev_hash"] = prev
            line = canonical(record)
            prev = sha256(line)
            out += line + b"\n"
        report = check(tmp_path, real_log, out)
        expect(report, next(c for c in checkpoints if c >= j), Reason.EDITED)
