"""Verify a run's audit log: intact, complete, and signed by the expected key.

Record by record, in file order:

1. the line is JSON, an object with the common fields, and exactly its own RFC 8785 form
   (else: **edited**);
2. it belongs to the log's run (else: edited);
3. its ``seq`` is its position. If not: when the chain still links it into place its
   ``seq`` itself was **edited**; else a record is **missing**, or records were
   **reordered** (the expected seq turns up later in the file);
4. its ``prev_hash`` is the hash of the previous line (of the run's genesis for the first).
   If not, the previous record was **edited** when this one is intact (the next record
   holds its hash; for the last record: it is a checkpoint whose signature holds), else this
   record was;
5. a checkpoint's Ed25519 signature verifies under the key it names (else: edited), and
   that key is the expected one (else: **bad signature**).

Then the end of the log. The head file written with each checkpoint says how long the log
was then: a shorter log was **truncated**; a different record at the head's seq was edited.
A last line without its line end is a **torn tail** (a writer died mid-write: a crash, not
tampering) unless the head says that record was complete. Records after the last
checkpoint are chained but not signed (a crash, or a run being written right now).

Outcome and ``audit verify`` exit code: ``intact`` (0) the whole chain verifies and ends
with a checkpoint signed by the expected key; ``incomplete`` (3) the chain verifies but the
end is torn or unsigned; ``tampered`` (1) with the first bad record's index and reason.
What a chain cannot show: an edit to an unsigned last record (after a crash), and a log cut
back to an earlier checkpoint together with its head file; ship checkpoints elsewhere
(``audit export``) to anchor them. :func:`against_run_status` adds what the run store says:
for a run it calls completed or failed the log must reach the stop record the store names
(its seq), signed, with nothing unsigned after it (else **truncated**, or edited).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from controlroom.audit.canonical import canonical, genesis_hash, sha256
from controlroom.audit.errors import AuditError
from controlroom.audit.keys import check_signature, key_id
from controlroom.audit.log import read_head
from controlroom.audit.records import STATUS, Kind

Status = Literal["intact", "incomplete", "tampered"]
EXIT_CODES: dict[str, int] = {"intact": 0, "tampered": 1, "incomplete": 3}


class Reason(StrEnum):
    EDITED = "edited"
    MISSING = "missing"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    BAD_SIGNATURE = "bad signature"


@dataclass(frozen=True)
class VerifyReport:
    """What verification found; ``index`` and ``reason`` name the first bad record."""

    path: Path
    run_id: str
    status: Status
    records: int
    expected_key_id: str
    index: int | None = None
    reason: Reason | None = None
    detail: str = ""
    signed_through: int = -1
    torn_tail_bytes: int = 0
    unsigned: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "intact"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def summary(self) -> str:
        head = f"Audit log of run {self.run_id} ({self.records} records)"
        if self.status == "tampered":
            return f"{head}: TAMPERED at record {self.index} ({self.reason}): {self.detail}"
        if self.status == "intact":
            return (
                f"{head}: intact; hash chain verified, signed by the expected key "
                f"{self.expected_key_id} through record {self.signed_through}."
            )
        notes = []
        if self.torn_tail_bytes:
            notes.append(
                f"torn tail: record {self.records} (the last line, {self.torn_tail_bytes} bytes) "
                "was cut off mid-write (a crash, not tampering)"
            )
        if self.unsigned:
            first = self.records - self.unsigned
            notes.append(
                f"records {first}-{self.records - 1} are chained but not covered by a signed "
                "checkpoint (the writer stopped without signing, or is still writing)"
            )
        if not self.records:
            notes.append("the log is empty")
        last = f"through record {self.records - 1}" if self.records else "(nothing to check)"
        return f"{head}: incomplete; hash chain intact {last}; " + "; ".join(notes) + "."

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["path"] = str(self.path)
        data["reason"] = self.reason.value if self.reason else None
        data["ok"] = self.ok
        data["summary"] = self.summary()
        return data


def _loads(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _parse(line: bytes) -> tuple[dict[str, Any] | None, str]:
    record = _loads(line)
    if record is None:
        return None, "is not a valid JSON object"
    fields = (("seq", int), ("prev_hash", str), ("kind", str), ("run_id", str))
    for name, kind in fields:
        if not isinstance(record.get(name), kind) or isinstance(record.get(name), bool):
            return None, f"has no valid `{name}`"
    try:
        if canonical(record) != line:
            return None, "is not in canonical (RFC 8785) form"
    except ValueError:
        return None, "cannot be canonicalised"
    return record, ""


def signature_holds(record: dict[str, Any]) -> bool:
    """Whether a checkpoint's signature verifies under the key it names."""
    pub, sig = record.get("pub"), record.get("sig")
    if not isinstance(pub, str) or not isinstance(sig, str):
        return False
    try:
        named = key_id(base64.b64decode(pub, validate=True)) == record.get("key_id")
    except ValueError:
        return False
    body = {k: v for k, v in record.items() if k != "sig"}
    return (
        named
        and record.get("covers") == record["seq"] - 1
        and check_signature(pub, sig, canonical(body))
    )


_Finding = tuple[int, Reason, str]


class _Log:
    """One log's lines, parsed lazily (a walk that stops early parses little)."""

    def __init__(self, data: bytes, run_id: str) -> None:
        *self.lines, self.tail = data.split(b"\n")
        self.size = len(data)
        self.run_id = run_id
        self.n = len(self.lines)
        self.hashes = [sha256(line) for line in self.lines]
        self._memo: dict[int, tuple[dict[str, Any] | None, str]] = {}

    def parsed(self, i: int) -> tuple[dict[str, Any] | None, str]:
        if i not in self._memo:
            self._memo[i] = _parse(self.lines[i])
        return self._memo[i]

    def seq_at(self, i: int) -> Any:  # no canonical check: for the reorder search
        record = self._memo[i][0] if i in self._memo else _loads(self.lines[i])
        return record.get("seq") if record is not None else None

    def intact(self, i: int) -> bool:
        """Whether record ``i`` is as written, judged by what follows it."""
        record = self.parsed(i)[0]
        if record is None:
            return False
        following = self.parsed(i + 1)[0] if i + 1 < self.n else None
        if following is not None:
            return bool(following["prev_hash"] == self.hashes[i])
        return record["kind"] != Kind.CHECKPOINT or signature_holds(record)

    def misplaced(self, i: int, seq: int) -> _Finding:
        if any(self.seq_at(j) == i for j in range(i + 1, self.n)):
            return i, Reason.REORDERED, f"position {i} holds record {seq}; record {i} comes later"
        if seq > i:
            gone = f"record {i} is" if seq == i + 1 else f"records {i}-{seq - 1} are"
            return i, Reason.MISSING, f"{gone} missing (position {i} holds record {seq})"
        return i, Reason.REORDERED, f"position {i} holds record {seq}, which belongs earlier"

    def check(self, i: int, prev: str, expected_b64: str, expected_id: str) -> _Finding | None:
        record, problem = self.parsed(i)
        if record is None:
            return i, Reason.EDITED, f"record {i} {problem}"
        if record["run_id"] != self.run_id:
            return i, Reason.EDITED, f"record {i} names run {record['run_id']}, not {self.run_id}"
        linked = record["prev_hash"] == prev
        if record["seq"] != i:
            if linked:
                return i, Reason.EDITED, f"record {i} says it is record {record['seq']}"
            return self.misplaced(i, record["seq"])
        if not linked:
            if i > 0 and self.intact(i):
                return i - 1, Reason.EDITED, f"record {i - 1} does not match the hash in record {i}"
            what = f"record {i - 1}" if i else "the run's genesis"
            return i, Reason.EDITED, f"record {i}'s prev_hash does not match {what}"
        if record["kind"] == Kind.CHECKPOINT:
            if not signature_holds(record):
                return i, Reason.EDITED, f"checkpoint {i}'s signature does not match its content"
            if record["pub"] != expected_b64:
                return (
                    i,
                    Reason.BAD_SIGNATURE,
                    f"checkpoint {i} is signed by key {record.get('key_id')}, not by the "
                    f"expected key {expected_id}",
                )
        return None

    def check_end(self, head: dict[str, Any] | None) -> _Finding | None:
        """The end of the log against the head written with its last checkpoint."""
        if head is None:
            return None
        head_seq, head_end, n = int(head.get("seq", -1)), int(head.get("end", 0)), self.n
        if self.size < head_end:
            return (
                n,
                Reason.TRUNCATED,
                f"the log holds {n} whole records ({self.size} bytes) but its head says "
                f"record {head_seq} was signed when it was {head_end} bytes long",
            )
        if head_seq >= n:
            return n, Reason.EDITED, f"record {n} lost its line end; the head says it was whole"
        if head_seq >= 0 and self.hashes[head_seq] != head.get("hash"):
            return head_seq, Reason.EDITED, f"record {head_seq} does not match the head file"
        return None


def verify_log(path: Path, *, expected_key: bytes, run_id: str | None = None) -> VerifyReport:
    """Verify ``path`` (a run's ``.jsonl``) against the expected raw Ed25519 public key."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AuditError(f"There is no audit log at {path}.") from None
    run_id = run_id or path.name.removesuffix(".jsonl")
    log = _Log(data, run_id)
    base = VerifyReport(path, run_id, "incomplete", log.n, key_id(expected_key))
    expected_b64 = base64.b64encode(expected_key).decode()
    prev = genesis_hash(run_id)
    last_checkpoint = -1
    for i in range(log.n):
        finding = log.check(i, prev, expected_b64, base.expected_key_id)
        if finding is not None:
            index, reason, detail = finding
            return dataclasses.replace(
                base, status="tampered", index=index, reason=reason, detail=detail
            )
        record = log.parsed(i)[0]
        if record is not None and record["kind"] == Kind.CHECKPOINT:
            last_checkpoint = i
        prev = log.hashes[i]
    finding = log.check_end(read_head(path))
    if finding is not None:
        index, reason, detail = finding
        return dataclasses.replace(
            base, status="tampered", index=index, reason=reason, detail=detail
        )
    unsigned = log.n - 1 - last_checkpoint
    status: Status = "intact" if log.n and not log.tail and not unsigned else "incomplete"
    return dataclasses.replace(
        base,
        status=status,
        signed_through=last_checkpoint,
        torn_tail_bytes=len(log.tail),
        unsigned=unsigned,
    )


_SETTLED = {"completed", "failed"}
_STOPS = (Kind.RUN_END, Kind.RUN_WAIT, Kind.RUN_PAUSE)


def _settled_end(
    report: VerifyReport, status: str, stop_seq: int | None
) -> tuple[int, Reason, str] | None:
    """Where the log's end falls short of what the store says of the settled run: no such
    end (cut back, perhaps to an earlier stop of the same status), an end not signed (its
    final checkpoint was cut off, so the records before it could be rewritten), or records
    after the signed end (nothing writes there while the store says settled)."""
    lines = report.path.read_bytes().split(b"\n")[:-1]
    if stop_seq is not None:  # the store knows which record settled the run
        if stop_seq >= len(lines):
            return (
                report.records,
                Reason.TRUNCATED,
                f"the run store says the run is {status} and that the log recorded that at "
                f"record {stop_seq}, but the log holds only {len(lines)} records",
            )
        end, where = _loads(lines[stop_seq]) or {}, stop_seq
        if end.get("kind") != Kind.RUN_END or end.get(STATUS) != status:
            said = f"a {end.get('kind')} record saying {end.get(STATUS)}"
            return (
                stop_seq,
                Reason.EDITED,
                f"the run store says the run is {status} and that the log recorded that at "
                f"record {stop_seq}, but that is {said}",
            )
    else:  # a run settled before the store kept the seq: its last stop record
        stops = [(i, _loads(line) or {}) for i, line in enumerate(lines)]
        stops = [(i, r) for i, r in stops if r.get("kind") in _STOPS]
        where, end = stops[-1] if stops else (-1, {})
        if end.get("kind") != Kind.RUN_END or end.get(STATUS) != status:
            said = f"its last stop record says {end.get(STATUS)}" if stops else "it has no stop"
            return (
                report.records,
                Reason.TRUNCATED,
                f"the run store says the run is {status}, but {said}",
            )
    if report.signed_through <= where:
        last = report.signed_through
        covers = f"the last one covers record {last - 1}" if last >= 0 else "the log has none"
        return (
            report.records,
            Reason.TRUNCATED,
            f"the run store says the run is {status}, recorded at record {where}, but no signed "
            f"checkpoint covers that ({covers}); the runner signs a run's end before the store "
            "says so, so the log's final checkpoint was cut off, and the unsigned records "
            "after the last one may have been rewritten",
        )
    if report.unsigned or report.torn_tail_bytes:
        first = report.signed_through + 1
        return (
            first,
            Reason.EDITED,
            f"the run store says the run is {status}, recorded at record {where} and signed, "
            f"but unsigned data follows from record {first} on: nothing writes to the log of "
            "a settled run before the store says it runs again",
        )
    return None


def against_run_status(
    report: VerifyReport, status: str | None, stop_seq: int | None = None
) -> VerifyReport:
    """``report``, with what the run store says added. A run the store has settled
    (completed, failed) was recorded in its log first: the runner writes the stop record
    and signs it, then updates the store, with ``stop_seq`` the seq of that stop record. So
    the log must reach that record, a run.end of that status, covered by a signed
    checkpoint, with nothing after the signature; else it was cut short (even when it was
    cut at a signed checkpoint, or at an earlier stop of the same status, and its head file
    went with it, which the chain alone cannot show) or added to. Without ``stop_seq`` (a
    run settled before the store kept it) the log's last stop record stands for it."""
    if status not in _SETTLED or report.status == "tampered":
        return report
    finding = _settled_end(report, status, stop_seq)
    if finding is None:
        return report
    index, reason, detail = finding
    hint = (
        "compare with an exported copy"
        if reason is Reason.EDITED
        else "records were cut off the end of the log (with its head file, so the chain "
        "alone cannot show it); compare with an exported copy"
    )
    return dataclasses.replace(
        report,
        status="tampered",
        index=index,
        reason=reason,
        detail=f"{detail}: {hint}",
    )
