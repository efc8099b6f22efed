"""``controlroom doctor``'s checks across the project folder: the store's runs against the
audit logs and the checkpoints, and the permissions of the folder and everything in it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from controlroom.config import Settings, exposure, fix_command
from controlroom.graphs.control.doctor_report import DoctorReport, names
from controlroom.graphs.storage.records import RunStatus

# --- runs against logs and checkpoints ---------------------------------------------------------


def cross_check(
    report: DoctorReport,
    settings: Settings,
    statuses: dict[str, str] | None,
    threads: set[str] | None,
    logs: list[str],
) -> None:
    if statuses is None:
        report.orphans = list(logs)  # the store cannot say: every log is listed
        return
    report.store_runs = len(statuses)
    report.orphans = [r for r in logs if r not in statuses]
    logged = set(logs)
    started = [r for r, s in statuses.items() if s != RunStatus.QUEUED.value]
    report.unlogged = sorted(r for r in started if r not in logged)
    if report.orphans:
        report.problem(
            "runs",
            f"{len(report.orphans)} run(s) have an audit log but are not in the store: "
            f"{names(report.orphans)}.",
            "The store lost them (restored from an older backup, emptied, or replaced): "
            "restore a newer copy of the store if there is one. `controlroom doctor --orphans` "
            "lists them from their logs; `controlroom audit show RUN` shows each one.",
            report.orphans,
        )
    if report.unlogged:
        how = report.problem if settings.audit else report.note
        how(
            "runs",
            f"{len(report.unlogged)} run(s) in the store have no audit log: "
            f"{names(report.unlogged)}.",
            "They ran with CONTROLROOM_AUDIT=false, or their logs were removed from audit/: "
            "restore audit/ from a backup if they were."
            if settings.audit
            else "Audit is off (CONTROLROOM_AUDIT=false): runs leave no log.",
            report.unlogged,
        )
    if threads is not None:
        stateless = sorted(r for r in started if r not in threads)
        if stateless:
            report.problem(
                "checkpoints",
                f"{len(stateless)} started run(s) have no checkpoints: {names(stateless)}.",
                "Their graph state is lost: they stay listed and audited, but cannot be shown "
                "in full or resumed. Restore the checkpoints from a backup if there is one.",
                stateless,
            )
    if not report.orphans and not report.unlogged:
        report.ok("runs", "every run in the store has its log, and every log its run")


# --- permissions ---------------------------------------------------------------------------------


def check_file_mode(report: DoctorReport, area: str, path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    how = exposure(mode)
    if how:
        report.problem(
            "permissions",
            f"{path} is open to other accounts (mode {mode:04o}: {how}).",
            f"chmod 600 {path}",
            [str(path)],
        )


def check_permissions(report: DoctorReport, home: Path) -> None:
    exposed: list[str] = []
    entries = 0
    for folder, dirs, files in os.walk(home):
        for name in (*dirs, *files):
            entries += 1
            full = os.path.join(folder, name)
            try:
                info = os.lstat(full)
            except OSError:
                continue
            if not stat.S_ISLNK(info.st_mode) and stat.S_IMODE(info.st_mode) & 0o077:
                exposed.append(f"{os.path.relpath(full, home)} ({stat.S_IMODE(info.st_mode):04o})")
    mode = stat.S_IMODE(home.stat().st_mode)
    how = exposure(mode)
    if how:
        report.problem(
            "permissions",
            f"The project folder {home} is open to other accounts (mode {mode:04o}: {how}): "
            "they can read its runs, audit logs and databases.",
            f"Make it and its contents owner-only: {fix_command(home)}",
            [str(home)],
        )
    if exposed and how:
        report.problem(
            "permissions",
            f"{len(exposed)} file(s) and folder(s) in the project folder are open to other "
            f"accounts: {names(exposed)}.",
            f"Make them owner-only: {fix_command(home)}",
            exposed,
        )
    elif exposed:  # behind an owner-only folder nobody else reaches them, for now
        report.note(
            "permissions",
            f"{len(exposed)} file(s) and folder(s) in the project folder have group or other "
            f"bits set: {names(exposed)}. The folder itself is owner-only, so no other account "
            "can reach them now; a copy or a looser folder mode would expose them.",
            f"Make them owner-only too: {fix_command(home)}",
            exposed,
        )
    if not how and not exposed:
        report.ok("permissions", f"the project folder and its {entries} entries are owner-only")
