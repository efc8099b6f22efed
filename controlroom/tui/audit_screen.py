"""The audit view: a run's signed log as a timeline, with its verification status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from controlroom.audit.errors import AuditError
from controlroom.audit.keys import expected_public_key
from controlroom.audit.log import log_path
from controlroom.audit.verify import VerifyReport, verify_log
from controlroom.errors import ControlroomError
from controlroom.tui.host import ControlHost, host_of
from controlroom.tui.render import audit_line


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The log's records as far as they parse (a tampered line is shown as such)."""
    records: list[dict[str, Any]] = []
    try:
        data = path.read_bytes()
    except OSError:
        return records
    for index, line in enumerate(data.split(b"\n")):
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            record = {"seq": index, "kind": "(unreadable line)", "bytes": len(line)}
        records.append(record)
    return records


class AuditLoaded(Message):
    def __init__(
        self, report: VerifyReport | None, records: list[dict[str, Any]], error: str | None
    ) -> None:
        super().__init__()
        self.report = report
        self.records = records
        self.error = error


def status_text(report: VerifyReport | None, error: str | None) -> Text:
    if report is None:
        return Text(f"✗ cannot verify: {error}", style="bold red")
    if report.status == "intact":
        return Text(f"✓ INTACT — {report.summary()}", style="bold green")
    if report.status == "tampered":
        return Text(
            f"✗ NOT INTACT — first bad record: #{report.index} ({report.reason}): {report.detail}",
            style="bold red",
        )
    return Text(f"! INCOMPLETE — {report.summary()}", style="bold yellow")


class AuditScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("r", "reload", "Re-verify"),
    ]
    DEFAULT_CSS = """
    AuditScreen #audit-status { padding: 0 1; height: auto; }
    AuditScreen #audit-records { height: 2fr; }
    AuditScreen #audit-detail-scroll { height: 1fr; border-top: solid $primary; padding: 0 1; }
    """

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.records: list[dict[str, Any]] = []
        self.report: VerifyReport | None = None

    @property
    def control(self) -> ControlHost:
        return host_of(self)

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(Text("verifying…"), id="audit-status")
        yield DataTable[str](id="audit-records", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="audit-detail-scroll"):
            yield Static("", id="audit-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"audit log of run {self.run_id}"
        table = self.query_one("#audit-records", DataTable)
        table.add_columns("#", "time", "kind", "step", "what")
        table.focus()
        self.action_reload()

    def action_reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="audit")
    def _load(self) -> None:
        settings = self.control.runner.settings
        path = log_path(settings.audit_path, self.run_id)
        records = read_lines(path)
        try:
            key = expected_public_key(
                settings.keys_path, settings.audit_key, settings.audit_public_key
            )
            report = verify_log(path, expected_key=key, run_id=self.run_id)
        except (ControlroomError, AuditError, OSError) as exc:
            self.post_message(AuditLoaded(None, records, str(exc)))
            return
        self.post_message(AuditLoaded(report, records, None))

    def on_audit_loaded(self, message: AuditLoaded) -> None:
        self.report = message.report
        self.records = message.records
        self.query_one("#audit-status", Static).update(status_text(message.report, message.error))
        table = self.query_one("#audit-records", DataTable)
        table.clear()
        bad = message.report.index if message.report is not None else None
        for index, record in enumerate(self.records):
            row = audit_line(record)
            if bad is not None and index == bad:
                table.add_row(*(f"✗ {row[0]}", *row[1:]))
            else:
                table.add_row(*row)
        if bad is not None and 0 <= bad < len(self.records):
            table.move_cursor(row=bad)

    @on(DataTable.RowHighlighted, "#audit-records")
    def _show(self, event: DataTable.RowHighlighted) -> None:
        row = event.cursor_row
        if 0 <= row < len(self.records):
            text = json.dumps(self.records[row], indent=2, ensure_ascii=False, sort_keys=True)
            self.query_one("#audit-detail", Static).update(Text(text))

    def action_back(self) -> None:
        self.dismiss(None)
