"""The report ``controlroom doctor`` builds: what passed, what was found, and the JSON form.

:class:`DoctorReport` collects :class:`Passed` checks and :class:`Finding` (problems and
notes), the :class:`AuditSummary` of the log verification and the runs known only from
their logs (:class:`LoggedRun`); :meth:`DoctorReport.to_json` is ``doctor --json``'s output.
:func:`names` shortens a list of names for a finding's summary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from controlroom.graphs.storage import state_files

Severity = Literal["problem", "note"]
_SHOWN = 10  # names listed in a finding's summary (JSON has them all)


@dataclass
class Finding:
    """Something wrong (``problem``: exit 1) or worth knowing (``note``), and what to do."""

    area: str
    severity: Severity
    summary: str
    fix: str = ""
    items: list[str] = field(default_factory=list)


@dataclass
class Passed:
    area: str
    summary: str


@dataclass
class LoggedRun:
    """A run as its audit log tells it (for runs the store does not list)."""

    run_id: str
    workflow: str | None
    user: str | None
    started_at: str | None
    status: str  # the last stop record's status, or "unknown (no stop record)"
    log: str


@dataclass
class AuditSummary:
    logs: int = 0
    intact: int = 0
    incomplete: int = 0
    tampered: int = 0
    unverified: int = 0  # no key to verify against, or unreadable
    tampered_runs: list[str] = field(default_factory=list)
    incomplete_runs: list[str] = field(default_factory=list)
    other_key_runs: list[str] = field(default_factory=list)


@dataclass
class DoctorReport:
    home: Path
    backend: str
    checks: list[Passed] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    audit: AuditSummary = field(default_factory=AuditSummary)
    store_runs: int | None = None  # None: the store could not be read
    orphans: list[str] = field(default_factory=list)  # logged, not in the store
    unlogged: list[str] = field(default_factory=list)  # in the store, no log
    orphan_details: list[LoggedRun] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "problem"]

    @property
    def healthy(self) -> bool:
        return not self.problems

    def ok(self, area: str, summary: str) -> None:
        self.checks.append(Passed(area, summary))

    def problem(
        self, area: str, summary: str, fix: str = "", items: list[str] | None = None
    ) -> None:
        self.findings.append(Finding(area, "problem", summary, fix, items or []))

    def state(self, area: str, problem: state_files.Problem, path: Path) -> None:
        self.problem(area, problem.summary, problem.fix, [str(path)])

    def note(self, area: str, summary: str, fix: str = "", items: list[str] | None = None) -> None:
        self.findings.append(Finding(area, "note", summary, fix, items or []))

    def to_json(self) -> dict[str, Any]:
        return {
            "home": str(self.home),
            "backend": self.backend,
            "healthy": self.healthy,
            "problems": len(self.problems),
            "checks": [asdict(c) for c in self.checks],
            "findings": [asdict(f) for f in self.findings],
            "audit": asdict(self.audit),
            "runs": {
                "store": self.store_runs,
                "orphans": self.orphans,
                "without_log": self.unlogged,
                "orphan_details": [asdict(o) for o in self.orphan_details],
            },
            "seconds": round(self.seconds, 3),
        }


def names(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")
