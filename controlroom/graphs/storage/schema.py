"""The run store's tables: one portable SQL schema for SQLite and PostgreSQL.

Its version is stamped into the database (SQLite's ``PRAGMA user_version``, PostgreSQL's
``controlroom_meta`` table); a store from a newer version is refused untouched, an older
one is migrated (columns added) on first use.
"""

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    workflow_ref TEXT NOT NULL,
    workflow_hash TEXT NOT NULL,
    user_id TEXT NOT NULL,
    input TEXT NOT NULL,
    model TEXT NOT NULL,
    approve_mode TEXT NOT NULL,
    status TEXT NOT NULL,
    output TEXT,
    error TEXT,
    next_steps TEXT NOT NULL DEFAULT '[]',
    parent_run_id TEXT,
    parent_checkpoint TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    workflow_fingerprint TEXT,
    audit_stop_seq INTEGER
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status);
CREATE TABLE IF NOT EXISTS approvals (
    run_id TEXT NOT NULL,
    approval_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    step TEXT NOT NULL,
    tool TEXT,
    call_id TEXT,
    args TEXT NOT NULL,
    effect TEXT,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    status TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT,
    edited_args TEXT,
    decision_reason TEXT,
    approvers TEXT NOT NULL DEFAULT '[]',
    policies TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, approval_id)
);
CREATE INDEX IF NOT EXISTS approvals_status ON approvals(status);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    workflow_ref TEXT NOT NULL,
    user_id TEXT NOT NULL,
    approve_mode TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_items (
    batch_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    input TEXT NOT NULL,
    model TEXT,
    PRIMARY KEY (batch_id, position)
);
CREATE TABLE IF NOT EXISTS effects (
    key TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    started_at TEXT NOT NULL,
    completed_at TEXT,
    decision TEXT
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refusals (
    run_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    call_id TEXT NOT NULL,
    node TEXT NOT NULL,
    tool TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    decided_by TEXT,
    policies TEXT NOT NULL DEFAULT '[]',
    approval_id TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, step, call_id)
);
"""
