"""The audit trail: a signed, hash-chained log of every step of every run.

* :mod:`~controlroom.audit.records`   what a record is (kinds, common fields, attempts)
* :mod:`~controlroom.audit.canonical` RFC 8785 bytes and SHA-256 hashes
* :mod:`~controlroom.audit.log`       the per-run append-only log (flock, fsync, checkpoints)
* :mod:`~controlroom.audit.keys`      the Ed25519 key that signs checkpoints
* :mod:`~controlroom.audit.redact`    redaction modes and secret scrubbing
* :mod:`~controlroom.audit.recorder`  what a run records (used by the runner and nodes)
* :mod:`~controlroom.audit.tool_records` the records about tool calls and approvals
* :mod:`~controlroom.audit.messages`  chat messages as hashed, recorded and replayed
* :mod:`~controlroom.audit.verify`    verification: edited, missing, reordered, truncated...
* :mod:`~controlroom.audit.export`    jsonl and OTLP/JSON export (nothing is sent)
* :mod:`~controlroom.audit.replay`    replay parts: recorded replies, dry-run tools, compare

This package depends on ``tools``, ``identity``, ``config`` and ``errors``, never on
``graphs``, ``cli`` or ``tui``; :mod:`controlroom.graphs.control.replay` drives a replay.
"""

from controlroom.audit.errors import AuditError, AuditKeyError, ReplayError
from controlroom.audit.export import export_jsonl, to_otlp
from controlroom.audit.keys import Signer, expected_public_key, load_or_create_signer
from controlroom.audit.log import AuditLog, log_path, read_records
from controlroom.audit.recorder import RunAudit
from controlroom.audit.records import Kind
from controlroom.audit.redact import Redactor
from controlroom.audit.replay import (
    Divergence,
    ReplayChatModel,
    ReplayDivergence,
    ReplayReport,
    ReplaySession,
)
from controlroom.audit.verify import Reason, VerifyReport, verify_log

__all__ = [
    "AuditError",
    "AuditKeyError",
    "AuditLog",
    "Divergence",
    "Kind",
    "Reason",
    "Redactor",
    "ReplayChatModel",
    "ReplayDivergence",
    "ReplayError",
    "ReplayReport",
    "ReplaySession",
    "RunAudit",
    "Signer",
    "VerifyReport",
    "expected_public_key",
    "export_jsonl",
    "load_or_create_signer",
    "log_path",
    "read_records",
    "to_otlp",
    "verify_log",
]
