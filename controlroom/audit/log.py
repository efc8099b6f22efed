"""The append-only audit log of one run: ``<home>/audit/<run_id>.jsonl``.

**One file per run.** A run is what people audit, ship, keep and delete (retention, a
data-subject request): a per-run file is handed over, verified or removed on its own;
concurrent runs never contend for one file; damage stays within its run; verifying a run
reads only its records. Each chain starts from a genesis hash derived from its run id, so
records cannot be moved between runs unnoticed.

**Concurrent writers.** The process driving a run and, say, ``controlroom approve
--no-resume`` (which holds no run lock) may append at the same time. Every append takes an
exclusive ``flock`` on the log, first reads what others appended since (so ``seq`` and
``prev_hash`` are always those of the true last record, and a broken chain is refused), then
writes the whole line with one ``write`` on an ``O_APPEND`` descriptor. Threads of one
process are serialised by a mutex too (``flock`` is per open file description).

**Durability.** ``durable`` appends (decisions and approvals: write-ahead, before the tool
runs) and checkpoints are ``fdatasync``'d before ``append`` returns. Other records are
written at once (a killed process loses none) and synced in batches: every ``batch``
records, at the next durable record or checkpoint, and on close; with ``fsync="always"``
every record is synced.

**Checkpoints** are Ed25519 signatures over the checkpoint record itself, which holds the
run id, its seq and ``prev_hash`` (the hash of the last record: the whole chain before it).
They are written when a process stops driving a run and every ``checkpoint_every`` records.
Each checkpoint also rewrites ``<run_id>.head.json`` (its seq, line hash and end offset),
so a log cut short behind its last checkpoint is detected.

**Crash repair.** A writer killed mid-write leaves a torn last line. The next append (under
the lock, so no live writer is mid-line) cuts the fragment off and records ``log.repair``
with its length and hash; the chain continues from the last whole record.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from controlroom import faults
from controlroom.audit.canonical import FORMAT_VERSION, canonical, genesis_hash, sha256
from controlroom.audit.errors import AuditError
from controlroom.audit.keys import Signer
from controlroom.audit.records import Kind, record_key

FsyncMode = Literal["always", "batch"]
_sync = getattr(os, "fdatasync", os.fsync)


def log_path(audit_dir: Path, run_id: str) -> Path:
    return audit_dir / f"{run_id}.jsonl"


def head_path(log: Path) -> Path:
    return log.with_name(log.name.removesuffix(".jsonl") + ".head.json")


def read_head(log: Path) -> dict[str, Any] | None:
    try:
        head = json.loads(head_path(log).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return head if isinstance(head, dict) else None


def read_records(path: Path) -> list[dict[str, Any]]:
    """The whole records of a log, in file order (a torn last line is left out)."""
    data = path.read_bytes()
    return [json.loads(line) for line in data.split(b"\n")[:-1]]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AuditLog:
    """Appends records to one run's log; safe across threads and processes."""

    def __init__(
        self,
        path: Path,
        run_id: str,
        *,
        signer: Signer | None = None,
        fsync: FsyncMode = "batch",
        checkpoint_every: int = 100,
        batch: int = 64,
    ) -> None:
        self.path = path
        self.run_id = run_id
        self.signer = signer
        self.fsync: FsyncMode = fsync
        self.checkpoint_every = max(1, checkpoint_every)
        self.batch = max(1, batch)
        self._mutex = threading.Lock()
        self._fd: int | None = None
        self._offset = 0  # end of the whole lines read or written so far
        self._next_seq = 0
        self._last_hash = genesis_hash(run_id)
        self._last_kind: str | None = None
        self._last_checkpoint = -1
        self._counts: Counter[str] = Counter()
        self._kinds: Counter[str] = Counter()
        self._torn = b""
        self._unsynced = 0
        self._head_checked = False

    # file handling -------------------------------------------------------------------
    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            existed = self.path.exists()
            flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
            self._fd = os.open(self.path, flags, 0o600)
            if not existed:
                _fsync_dir(self.path.parent)
        return self._fd

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        with self._mutex:
            fd = self._open()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                self._catch_up(fd)
                yield fd
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _damaged(self, why: str) -> AuditError:
        return AuditError(
            f"The audit log {self.path} {why}; nothing more is written to it. "
            f"`controlroom audit verify {self.run_id}` names the first bad record."
        )

    def _catch_up(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        if size < self._offset:
            raise self._damaged(f"shrank from {self._offset} to {size} bytes while in use")
        if size > self._offset:
            data = os.pread(fd, size - self._offset, self._offset)
            start = 0
            while (end := data.find(b"\n", start)) >= 0:
                self._absorb(data[start:end])
                start = end + 1
            self._offset += start
            self._torn = data[start:]
        else:
            self._torn = b""
        if not self._head_checked:
            self._head_checked = True
            head = read_head(self.path)
            if head is not None and int(head.get("end", 0)) > self._offset:
                raise self._damaged(
                    f"is shorter than its last signed checkpoint (record {head.get('seq')} "
                    f"ending at byte {head.get('end')}): records were removed"
                )

    def _absorb(self, line: bytes) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            raise self._damaged(f"holds a malformed record at seq {self._next_seq}") from None
        if (
            not isinstance(record, dict)
            or record.get("seq") != self._next_seq
            or record.get("prev_hash") != self._last_hash
        ):
            raise self._damaged(f"has a broken hash chain at record {self._next_seq}")
        self._note(record, sha256(line))

    def _note(self, record: dict[str, Any], line_hash: str) -> None:
        self._last_hash = line_hash
        self._next_seq += 1
        self._last_kind = record.get("kind")
        self._kinds[str(self._last_kind)] += 1
        key = record_key(record)
        if key is not None:
            self._counts[key] += 1
        if self._last_kind == Kind.CHECKPOINT:
            self._last_checkpoint = int(record["seq"])

    def _write(self, fd: int, record: dict[str, Any]) -> dict[str, Any]:
        body = canonical(record)
        line = body + b"\n"
        try:
            if faults.wants("audit.torn"):  # a crash test: die with half a line on disk
                half = len(line) // 2
                written = os.write(fd, line[:half])
                faults.point("audit.torn")
                written += os.write(fd, line[half:])
            else:
                written = os.write(fd, line)
        except OSError as exc:
            raise AuditError(f"Cannot append to the audit log {self.path}: {exc}.") from None
        if written != len(line):
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._offset)
            raise AuditError(
                f"Cannot append to the audit log {self.path}: short write (disk full?)."
            )
        self._offset += len(line)
        self._unsynced += 1
        self._note(record, sha256(body))
        return record

    def _sync(self, fd: int) -> None:
        if self._unsynced:
            _sync(fd)
            self._unsynced = 0

    def _stamp(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {
            **fields,
            "v": FORMAT_VERSION,
            "seq": self._next_seq,
            "time": _now(),
            "run_id": self.run_id,
            "prev_hash": self._last_hash,
            "pid": os.getpid(),
        }

    def _repair(self, fd: int) -> None:
        if not self._torn:
            return
        fragment, self._torn = self._torn, b""
        os.ftruncate(fd, self._offset)
        self._write(
            fd,
            self._stamp(
                {
                    "kind": Kind.LOG_REPAIR.value,
                    "controlroom.repair.torn_bytes": len(fragment),
                    "controlroom.repair.torn_sha256": sha256(fragment),
                    "controlroom.repair.reason": "a writer stopped in the middle of a record "
                    "(a crash); its partial line was removed",
                }
            ),
        )
        _sync(fd)
        self._unsynced = 0

    # appending ---------------------------------------------------------------------
    def append(
        self, fields: dict[str, Any], *, durable: bool = False, once: bool = False
    ) -> dict[str, Any] | None:
        """Append one record; ``once``: skip it if a record with its key exists already."""
        key = record_key(fields)
        with self._locked() as fd:
            self._repair(fd)
            if key is not None:
                if once and self._counts[key]:
                    return None
                fields = {**fields, "attempt": self._counts[key] + 1}
            record = self._write(fd, self._stamp(fields))
            if durable or self.fsync == "always" or self._unsynced >= self.batch:
                self._sync(fd)
            faults.point(f"audit.{record.get('kind')}")
            if self.signer is not None and (
                self._next_seq - 1 - self._last_checkpoint >= self.checkpoint_every
            ):
                self._checkpoint(fd, "interval")
            return record

    def checkpoint(self, reason: str) -> dict[str, Any] | None:
        """Sign the log up to here (nothing is written if the last record is a checkpoint)."""
        with self._locked() as fd:
            self._repair(fd)
            if self.signer is None or self._next_seq == 0 or self._last_kind == Kind.CHECKPOINT:
                self._sync(fd)
                return None
            return self._checkpoint(fd, reason)

    def _checkpoint(self, fd: int, reason: str) -> dict[str, Any]:
        assert self.signer is not None
        record = self._stamp(
            {
                "kind": Kind.CHECKPOINT.value,
                "reason": reason,
                "covers": self._next_seq - 1,
                "alg": "Ed25519",
                "key_id": self.signer.key_id,
                "pub": self.signer.public_b64,
            }
        )
        record["sig"] = self.signer.sign(canonical(record))
        self._write(fd, record)
        self._sync(fd)
        head = {
            "run_id": self.run_id,
            "seq": record["seq"],
            "hash": self._last_hash,
            "end": self._offset,
            "key_id": self.signer.key_id,
        }
        target = head_path(self.path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
            handle.write(canonical(head) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        faults.point("audit.checkpoint")
        return record

    def has(self, kind: str) -> bool:
        """Whether the log (as on disk now, other writers' records included) holds a
        record of this kind."""
        with self._locked():
            return self._kinds[str(kind)] > 0

    def flush(self) -> None:
        with self._mutex:
            if self._fd is not None:
                self._sync(self._fd)

    def close(self) -> None:
        """Sync and close the file; the log can be appended to again later."""
        with self._mutex:
            if self._fd is not None:
                self._sync(self._fd)
                os.close(self._fd)
                self._fd = None

    @property
    def next_seq(self) -> int:
        return self._next_seq
