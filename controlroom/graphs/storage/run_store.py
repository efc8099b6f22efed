"""Durable run metadata, approvals and the effect ledger (one SQLite file per project).

LangGraph's checkpointer holds the graph state; this store holds what people and other
processes need without loading a graph: the run list, pending approvals with their
decisions, and the idempotency ledger of tool effects (records: :mod:`.records`). Every
write commits with ``synchronous=FULL`` before the caller goes on, so a decision is
durable before the effect it authorises."""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from controlroom import faults
from controlroom.errors import ApprovalDecidedError, ApprovalNotFoundError, RunNotFoundError
from controlroom.graphs.storage.records import (
    Approval,
    ApprovalStatus,
    BatchItem,
    BatchRecord,
    LedgerEntry,
    LedgerStatus,
    Refusal,
    RunRecord,
    RunStatus,
    now,
)
from controlroom.graphs.storage.schema import SCHEMA, SCHEMA_VERSION

_NO_LIMIT = 1 << 62  # "every row", in a LIMIT both SQLite and PostgreSQL accept
_REFUSAL_KEY = frozenset({"run_id", "step", "call_id", "created_at"})
_ADDED_COLUMNS = {  # added since 0.1: forks 0.2; fingerprints, decisions 0.3; audit stop seq
    "runs": ("parent_checkpoint TEXT", "workflow_fingerprint TEXT", "audit_stop_seq INTEGER"),
    "effects": ("decision TEXT",),
}


class Store:
    """Thread-safe access to the project's SQLite store."""

    def __init__(self, path: Path) -> None:
        # A damaged, emptied or newer file is refused in one paragraph (never a traceback,
        # never silently re-created beside the audit logs of its runs); a new file is 0600.
        from controlroom.graphs.storage import state_files

        self.path = path
        self._lock = threading.RLock()
        audit_dir = path.parent / "audit"

        def refuse(opened: state_files.Opened) -> Exception | None:
            version = state_files.schema_version(opened.conn)
            if version > self.SCHEMA_VERSION:
                return state_files.newer(path, state_files.STORE, version, self.SCHEMA_VERSION)
            return state_files.emptied_store(opened, audit_dir)

        opened = state_files.open_database(
            path, state_files.STORE, refuse=refuse, check_same_thread=False, isolation_level=None
        )
        self._conn: sqlite3.Connection = opened.conn
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.executescript(SCHEMA)
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    def _migrate(self) -> None:
        """Bring a project folder made by an earlier version up to this schema, and record
        the schema version (``PRAGMA user_version``; 0: made before versions were kept)."""
        with self._lock:
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
            for table, added in _ADDED_COLUMNS.items():
                have = {r["name"] for r in self._conn.execute(f"PRAGMA table_info({table})")}
                for definition in added:
                    if definition.split()[0] not in have:
                        self._add_column(table, definition)
            if version < self.SCHEMA_VERSION:
                self._conn.execute(f"PRAGMA user_version = {int(self.SCHEMA_VERSION)}")

    def _add_column(self, table: str, definition: str) -> None:
        try:
            self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {definition}")
        except sqlite3.OperationalError as exc:  # another process migrated first
            if "duplicate column" not in str(exc):
                raise

    def close(self) -> None:
        self._conn.close()

    @property
    def where(self) -> str:
        """Where the store lives, for messages."""
        return str(self.path.parent)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # runs ------------------------------------------------------------------------
    def insert_run(self, record: RunRecord) -> None:
        data = record.model_dump(mode="json", exclude=RunRecord.DERIVED)
        data["next_steps"] = json.dumps(data["next_steps"])
        data["workflow_fingerprint"] = record.workflow_fingerprint
        cols = ", ".join(data)
        marks = ", ".join(f":{k}" for k in data)
        with self._tx() as c:
            c.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", data)

    def update_run(self, run_id: str, **fields: Any) -> None:
        if "next_steps" in fields:
            fields["next_steps"] = json.dumps(fields["next_steps"])
        if "status" in fields and isinstance(fields["status"], RunStatus):
            fields["status"] = fields["status"].value
        fields["updated_at"] = now()
        sets = ", ".join(f"{k} = :{k}" for k in fields)
        with self._tx() as c:
            c.execute(
                f"UPDATE runs SET {sets} WHERE run_id = :run_id", {**fields, "run_id": run_id}
            )
        faults.point("store.run")

    def _run_from_row(self, row: sqlite3.Row) -> RunRecord:
        data = dict(row)
        data["next_steps"] = json.loads(data["next_steps"])
        return RunRecord.model_validate(data)

    _RUN_QUERY = (
        "SELECT runs.*, (SELECT COUNT(*) FROM approvals a WHERE a.run_id = runs.run_id "
        "AND a.status = 'pending') AS pending_approvals, "
        "(SELECT COUNT(*) FROM refusals f WHERE f.run_id = runs.run_id "
        "AND f.status = 'denied') AS denied_calls, "
        "(SELECT COUNT(*) FROM refusals f WHERE f.run_id = runs.run_id "
        "AND f.status = 'rejected') AS rejected_calls, "
        "(SELECT COUNT(*) FROM refusals f WHERE f.run_id = runs.run_id "
        "AND f.status = 'invalid_arguments') AS invalid_calls FROM runs"
    )

    def get_run(self, run_id: str) -> RunRecord:
        with self._lock:
            row = self._conn.execute(f"{self._RUN_QUERY} WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                like = self._conn.execute(
                    "SELECT run_id FROM runs WHERE run_id LIKE ? LIMIT 2", (run_id + "%",)
                ).fetchall()
        if row is not None:
            return self._run_from_row(row)
        if len(like) == 1:
            return self.get_run(str(like[0]["run_id"]))
        raise RunNotFoundError(
            f"No run '{run_id}' in {self.where}. `controlroom runs` lists the runs of "
            "this project; set CONTROLROOM_HOME (or CONTROLROOM_DATABASE_URL) if the run "
            "lives in another one."
        )

    @staticmethod
    def _status_filter(statuses: list[str] | None) -> tuple[str, tuple[Any, ...]]:
        if not statuses:
            return "", ()
        marks = ", ".join("?" for _ in statuses)
        return f" WHERE status IN ({marks})", tuple(statuses)

    def list_runs(
        self, status: str | list[str] | None = None, limit: int | None = 200, offset: int = 0
    ) -> list[RunRecord]:
        """Runs with one of these stored statuses (all: None), newest first, one page
        (``limit`` None: every run from ``offset`` on)."""
        statuses = [status] if isinstance(status, str) else status
        where, params = self._status_filter(statuses)
        query = f"{self._RUN_QUERY}{where} ORDER BY created_at DESC, run_id LIMIT ? OFFSET ?"
        page = (_NO_LIMIT if limit is None else max(0, limit), max(0, offset))
        with self._lock:
            rows = self._conn.execute(query, (*params, *page)).fetchall()
        return [self._run_from_row(r) for r in rows]

    def count_runs(self, status: str | list[str] | None = None) -> int:
        """How many runs have one of these stored statuses (all: None)."""
        statuses = [status] if isinstance(status, str) else status
        where, params = self._status_filter(statuses)
        with self._lock:
            row = self._conn.execute(f"SELECT COUNT(*) AS n FROM runs{where}", params).fetchone()
        return int(row["n"]) if row is not None else 0

    # approvals ---------------------------------------------------------------------
    def add_approvals(self, items: list[Approval]) -> None:
        """Record pending items; re-recording the same ids (a re-executed node) is a no-op."""
        with self._tx() as c:
            for item in items:
                data = item.model_dump(mode="json")
                data["args"] = json.dumps(data["args"])
                data["approvers"] = json.dumps(data["approvers"])
                data["policies"] = json.dumps(data["policies"])
                data["edited_args"] = None
                cols = ", ".join(data)
                marks = ", ".join(f":{k}" for k in data)
                c.execute(f"INSERT OR IGNORE INTO approvals ({cols}) VALUES ({marks})", data)
        faults.point("approval.added")

    @staticmethod
    def _approval_from_row(row: sqlite3.Row) -> Approval:
        data = dict(row)
        data["args"] = json.loads(data["args"])
        data["edited_args"] = json.loads(data["edited_args"]) if data["edited_args"] else None
        data["approvers"] = json.loads(data["approvers"])
        data["policies"] = json.loads(data["policies"])
        return Approval.model_validate(data)

    def get_approval(self, run_id: str, approval_id: str) -> Approval:
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM approvals WHERE run_id = ? AND approval_id = ?",
                (run_id, approval_id),
            ).fetchone()
        if row is None:
            pending = [a.approval_id for a in self.list_approvals(run_id=run_id)]
            hint = f" Pending in this run: {', '.join(pending)}." if pending else ""
            raise ApprovalNotFoundError(
                f"Run {run_id} has no approval item '{approval_id}'.{hint} "
                "`controlroom approvals` lists what is waiting."
            )
        return self._approval_from_row(row)

    def list_approvals(
        self, run_id: str | None = None, status: ApprovalStatus | None = ApprovalStatus.PENDING
    ) -> list[Approval]:
        query = "SELECT * FROM approvals WHERE 1=1"
        params: list[Any] = []
        if run_id is not None:
            query += " AND run_id = ?"
            params.append(run_id)
        if status is not None:
            query += " AND status = ?"
            params.append(status.value)
        query += " ORDER BY created_at, run_id, approval_id"
        with self._lock:
            rows = self._conn.execute(query, params).fetchall()
        return [self._approval_from_row(r) for r in rows]

    def approvals_of_step(self, run_id: str, step_no: int) -> dict[str, Approval]:
        """Items already recorded for one LangGraph step of a run, by call id."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM approvals WHERE run_id = ? AND approval_id LIKE ?",
                (run_id, f"a{step_no}-%"),
            ).fetchall()
        items = [self._approval_from_row(r) for r in rows]
        return {i.call_id: i for i in items if i.call_id is not None}

    def decide(
        self,
        run_id: str,
        approval_id: str,
        *,
        approved: bool,
        by: str,
        edited_args: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> Approval:
        """Record a decision durably; deciding twice is an :class:`ApprovalDecidedError`."""
        with self._tx() as c:
            cur = c.execute(
                "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, "
                "edited_args = ?, decision_reason = ? "
                "WHERE run_id = ? AND approval_id = ? AND status = 'pending'",
                (
                    (ApprovalStatus.APPROVED if approved else ApprovalStatus.REJECTED).value,
                    by,
                    now(),
                    json.dumps(edited_args) if edited_args is not None else None,
                    reason,
                    run_id,
                    approval_id,
                ),
            )
            changed = cur.rowcount
        if changed:
            faults.point("approval.decided")
        item = self.get_approval(run_id, approval_id)
        if changed == 0:
            raise ApprovalDecidedError(
                f"Approval {approval_id} of run {run_id} was already {item.status.value} by "
                f"{item.decided_by} at {item.decided_at}; a decision cannot be changed. If "
                f"the run has not gone on since, `controlroom resume {run_id}` continues it."
            )
        return item

    # project meta ------------------------------------------------------------------
    def identity_key(self) -> bytes:
        """The project's random key for fingerprints of secret configuration (created on
        first use, the same for every process on this store)."""
        cached = getattr(self, "_identity_key", None)
        if isinstance(cached, bytes):
            return cached
        fresh = secrets.token_hex(32)
        with self._tx() as c:
            c.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('identity_key', ?)", (fresh,)
            )
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'identity_key'").fetchone()
        key = bytes.fromhex(str(row["value"]))
        self._identity_key = key
        return key

    # refused calls -----------------------------------------------------------------
    def record_refusal(self, refusal: Refusal) -> None:
        """Record a call that was not executed (a re-executed step records it again)."""
        data = refusal.model_dump(mode="json")
        data["policies"] = json.dumps(data["policies"])
        cols = ", ".join(data)
        marks = ", ".join(f":{k}" for k in data)
        updates = ", ".join(f"{k} = excluded.{k}" for k in data if k not in _REFUSAL_KEY)
        with self._tx() as c:
            c.execute(
                f"INSERT INTO refusals ({cols}) VALUES ({marks}) "
                f"ON CONFLICT (run_id, step, call_id) DO UPDATE SET {updates}",
                data,
            )
        faults.point("refusal.recorded")

    def clear_refusal(self, run_id: str, step: int, call_id: str) -> None:
        """A re-executed step allowed a call an earlier attempt had refused."""
        with self._lock:  # a read first: nearly every call has nothing to clear
            row = self._conn.execute(
                "SELECT 1 AS found FROM refusals WHERE run_id = ? AND step = ? AND call_id = ?",
                (run_id, step, call_id),
            ).fetchone()
        if row is None:
            return
        with self._tx() as c:
            c.execute(
                "DELETE FROM refusals WHERE run_id = ? AND step = ? AND call_id = ?",
                (run_id, step, call_id),
            )

    def list_refusals(self, run_id: str) -> list[Refusal]:
        """A run's refused calls, in the order they were refused."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM refusals WHERE run_id = ? ORDER BY step, created_at, call_id",
                (run_id,),
            ).fetchall()
        out = []
        for row in rows:
            data = dict(row)
            data["policies"] = json.loads(data["policies"] or "[]")
            out.append(Refusal.model_validate(data))
        return out

    # effect ledger -----------------------------------------------------------------
    def effect_result(self, key: str) -> tuple[str, Any] | None:
        """``(status, result)`` recorded for an idempotency key, or None if never started."""
        entry = self.effect_entry(key)
        return None if entry is None else (entry.status, entry.result)

    def effect_entry(self, key: str) -> LedgerEntry | None:
        """The ledger's entry for an idempotency key, or None if the effect never started."""
        with self._lock:
            row = self._conn.execute(
                "SELECT key, run_id, tool, status, result, decision FROM effects WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        return LedgerEntry(
            key=str(row["key"]),
            run_id=str(row["run_id"]),
            tool=str(row["tool"]),
            status=LedgerStatus(row["status"]),
            result=json.loads(row["result"]) if row["result"] is not None else None,
            decision=json.loads(row["decision"]) if row["decision"] else None,
        )

    def effect_started(
        self, key: str, run_id: str, tool: str, decision: dict[str, Any] | None = None
    ) -> None:
        """Record, before the tool runs, that the effect is starting and what authorised it."""
        with self._tx() as c:
            c.execute(
                "INSERT OR IGNORE INTO effects (key, run_id, tool, status, started_at, decision) "
                "VALUES (?, ?, ?, 'started', ?, ?)",
                (key, run_id, tool, now(), json.dumps(decision) if decision else None),
            )
        faults.point("ledger.started")

    def effect_completed(self, key: str, result: Any) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE effects SET status = 'completed', result = ?, completed_at = ? "
                "WHERE key = ?",
                (json.dumps(result, default=str), now(), key),
            )
        faults.point("ledger.completed")

    def list_effects(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """The ledger's entries (key, run_id, tool, status), oldest first."""
        query = "SELECT key, run_id, tool, status, started_at, completed_at FROM effects"
        params: tuple[Any, ...] = ()
        if run_id is not None:
            query += " WHERE run_id = ?"
            params = (run_id,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY started_at, key", params).fetchall()
        return [dict(r) for r in rows]

    # batches -----------------------------------------------------------------------
    def insert_batch(self, batch: BatchRecord, items: list[BatchItem]) -> None:
        """Record a batch and all its inputs in one transaction (before any run exists)."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO batches (batch_id, workflow, workflow_ref, user_id, approve_mode, "
                "size, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    batch.batch_id,
                    batch.workflow,
                    batch.workflow_ref,
                    batch.user_id,
                    batch.approve_mode,
                    batch.size,
                    batch.created_at,
                ),
            )
            for item in items:
                c.execute(
                    "INSERT INTO batch_items (batch_id, position, run_id, user_id, input, model) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        batch.batch_id,
                        item.position,
                        item.run_id,
                        item.user_id,
                        item.input,
                        item.model,
                    ),
                )

    def get_batch(self, batch_id: str) -> tuple[BatchRecord, list[BatchItem]]:
        """A batch (a unique id prefix works) and its items in input order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM batches WHERE batch_id LIKE ? ORDER BY batch_id LIMIT 2",
                (batch_id + "%",),
            ).fetchall()
            exact = [r for r in rows if r["batch_id"] == batch_id]
            if len(rows) != 1 and not exact:
                known = ", ".join(b.batch_id for b in self.list_batches(limit=5)) or "none yet"
                raise RunNotFoundError(
                    f"No single batch '{batch_id}' in {self.where} (latest: {known}). "
                    "`controlroom batches` lists them.",
                    title="Batch not found",
                )
            batch = BatchRecord.model_validate(dict((exact or rows)[0]))
            items = self._conn.execute(
                "SELECT position, run_id, user_id, input, model FROM batch_items "
                "WHERE batch_id = ? ORDER BY position",
                (batch.batch_id,),
            ).fetchall()
        return batch, [BatchItem.model_validate(dict(r)) for r in items]

    def list_batches(self, limit: int = 50) -> list[BatchRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM batches ORDER BY created_at DESC, batch_id LIMIT ?", (limit,)
            ).fetchall()
        return [BatchRecord.model_validate(dict(r)) for r in rows]

    def runs_by_id(self, run_ids: list[str]) -> dict[str, RunRecord]:
        """The records of the given runs that exist, with their pending-approval counts."""
        found: dict[str, RunRecord] = {}
        for start in range(0, len(run_ids), 500):
            chunk = run_ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            with self._lock:
                rows = self._conn.execute(
                    f"{self._RUN_QUERY} WHERE run_id IN ({marks})", tuple(chunk)
                ).fetchall()
            for row in rows:
                record = self._run_from_row(row)
                found[record.run_id] = record
        return found

    # schema version ---------------------------------------------------------------------
    SCHEMA_VERSION: ClassVar[int] = SCHEMA_VERSION
    """The store schema this code writes: ``PRAGMA user_version`` in SQLite, the
    ``schema_version`` row of ``controlroom_meta`` in PostgreSQL. Set when a store is
    created, checked when one is opened: a newer one is refused, an older one migrated.
    Bump it with every change that needs a migration (and add the migration)."""
