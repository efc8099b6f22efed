"""``controlroom doctor``: check a project folder's state, and say what to do about it.

:func:`diagnose` reads, and never writes or creates:

* **the stores**: ``controlroom.sqlite`` and ``checkpoints.sqlite`` (or PostgreSQL with
  ``CONTROLROOM_DATABASE_URL``), the tool pack's ``enterprise.sqlite`` and Chroma's
  ``chroma/`` folder when present: the header, the schema version (newer than this code:
  refused; older: migrated on next use), SQLite's ``quick_check``;
* **the audit signing key**: present, readable, owner-only, the same key as the public key
  next to it; and **every audit log**, verified once each (intact / incomplete / tampered,
  naming the bad ones, and the logs signed by another key);
* **runs against logs**: runs whose log is in ``audit/`` but which the store does not list
  (``--orphans`` lists them from their logs), runs the store lists without a log, started
  runs without checkpoints;
* **permissions**: the folder and everything in it owner-only (0700 / 0600).

Each :class:`Finding` says what is wrong and what to do. The work is one pass per log and a
few queries per store, so it stays fast with thousands of runs.

The checks live next to this module: the report and its JSON in :mod:`.doctor_report`, the
stores, pack and documents in :mod:`.doctor_stores`, the key and the logs in
:mod:`.doctor_audit`, runs against logs and the permissions in :mod:`.doctor_runs`.
"""

from __future__ import annotations

import time

from controlroom.config import Settings
from controlroom.errors import ConfigError
from controlroom.graphs.control.doctor_audit import check_keys, log_names, logged_run, verify_logs
from controlroom.graphs.control.doctor_report import (
    AuditSummary,
    DoctorReport,
    Finding,
    LoggedRun,
    Passed,
    Severity,
)
from controlroom.graphs.control.doctor_runs import check_permissions, cross_check
from controlroom.graphs.control.doctor_stores import (
    check_checkpoints,
    check_documents,
    check_pack,
    check_postgres,
    check_store,
)
from controlroom.graphs.storage.records import RunStatus

__all__ = [
    "AuditSummary",
    "DoctorReport",
    "Finding",
    "LoggedRun",
    "Passed",
    "Severity",
    "diagnose",
    "logged_run",
]


def diagnose(settings: Settings, *, orphans: bool = False) -> DoctorReport:
    """Check the project folder ``settings.home`` (see the module docstring); with
    ``orphans``, also read each orphaned log's start and last stop record."""
    began = time.perf_counter()
    home = settings.home
    if not home.is_dir():
        raise ConfigError(
            f"There is no project folder at {home}. `controlroom init` creates one; set "
            "CONTROLROOM_HOME (--home) to check another.",
            title="No project folder",
        )
    postgres = settings.backend == "postgres"
    report = DoctorReport(home=home, backend="PostgreSQL" if postgres else "SQLite")
    logs = log_names(settings.audit_path)
    if postgres:
        statuses, threads = check_postgres(report, settings)
    else:
        statuses = check_store(report, settings, len(logs))
        started = (
            [r for r, s in statuses.items() if s != RunStatus.QUEUED.value]
            if statuses is not None
            else None
        )
        threads = check_checkpoints(report, settings, started)
    expected = check_keys(report, settings, len(logs))
    verify_logs(report, settings, logs, expected, statuses)
    check_pack(report, settings)
    check_documents(report, settings)
    cross_check(report, settings, statuses, threads, logs)
    check_permissions(report, home)
    if orphans:
        report.orphan_details = [
            logged_run(settings.audit_path / f"{r}.jsonl") for r in report.orphans
        ]
    report.seconds = time.perf_counter() - began
    return report
