"""The approval panel: what a pending call would do, and approve, edit or reject it.

Edited arguments are checked as they are typed: JSON, then the tool's argument schema (the
model behind its JSON schema), then the gate for the run's user. Approving with arguments
that fail is refused in the panel with the reason; the runner checks them again before it
records anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from controlroom.config import using_home
from controlroom.errors import ControlroomError
from controlroom.graphs.control.runner import Runner
from controlroom.graphs.storage.records import Approval
from controlroom.identity import Principal
from controlroom.tools.gate import Gate, Verdict
from controlroom.tools.spec import Tool


@dataclass(frozen=True)
class ApprovalChoice:
    """What the person chose in the approval panel: approve (as proposed or edited) or reject.

    Not the gate's :class:`controlroom.tools.gate.Decision` (a policy verdict on a call)."""

    approve: bool
    args: dict[str, Any] | None = None  # edited arguments (None: as proposed)
    reason: str | None = None


@dataclass
class ApprovalContext:
    """What the panel checks edits with: the tool, the gate and the run's user."""

    tool: Tool | None
    gate: Gate | None
    principal: Principal | None
    runner: Runner | None = None

    @classmethod
    def load(cls, runner: Runner, item: Approval) -> ApprovalContext:
        try:
            workflow = runner.workflow(item.run_id)
            principal = runner.principal(runner.get_run(item.run_id).user_id)
        except ControlroomError:
            return cls(None, None, None, runner)
        tool = workflow.tools.get(item.tool or "")
        return cls(tool, workflow.gate or runner.gate, principal, runner)


def schema_summary(tool: Tool) -> str:
    schema = tool.json_schema()
    params = schema.get("function", schema).get("parameters", schema)
    props = params.get("properties") or {}
    required = set(params.get("required") or [])
    fields = []
    for name, spec in props.items():
        kind = spec.get("type") or "/".join(
            str(o.get("type")) for o in spec.get("anyOf", []) if isinstance(o, dict)
        )
        fields.append(f"{name}: {kind or 'any'}{'' if name in required else '?'}")
    return ", ".join(fields)


class ApprovalScreen(ModalScreen[ApprovalChoice | None]):
    """Tool, effect, arguments and why; approve (optionally edited) or reject."""

    DEFAULT_CSS = """
    ApprovalScreen { align: center middle; }
    ApprovalScreen > Vertical {
        width: 96; height: auto; max-height: 95%;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    ApprovalScreen #approval-title { text-style: bold; }
    ApprovalScreen Label { margin-top: 1; }
    ApprovalScreen .hint { color: $text-muted; }
    ApprovalScreen #args-check { margin-top: 1; }
    ApprovalScreen Horizontal { height: auto; margin-top: 1; }
    ApprovalScreen Button { margin-right: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+r", "reject", "Reject…", priority=True),
    ]

    def __init__(self, item: Approval, context: ApprovalContext, approver: str) -> None:
        super().__init__()
        self.item = item
        self.context = context
        self.approver = approver
        self.proposed = json.dumps(item.args, sort_keys=True)
        self.problem: str | None = None

    def compose(self) -> ComposeResult:
        item = self.item
        what = item.tool or f"checkpoint {item.step}"
        with Vertical():
            yield Static(
                Text(f"Approval {item.approval_id} · run {item.run_id} · {what}"),
                id="approval-title",
            )
            facts = Text()
            facts.append("effect: ", style="bold").append(f"{item.effect or '-'}\n")
            facts.append("step: ", style="bold").append(f"{item.step}\n")
            facts.append("why: ", style="bold").append(f"{item.reason}\n")
            facts.append("policies: ", style="bold").append(f"{', '.join(item.policies) or '-'}\n")
            if item.approvers:
                facts.append("approver must hold: ", style="bold").append(
                    f"{' or '.join(item.approvers)}\n"
                )
            if item.message:
                facts.append("request: ", style="bold").append(item.message)
            yield Static(facts, id="approval-facts")
            if item.kind == "tool_call":
                tool = self.context.tool
                schema = schema_summary(tool) if tool is not None else "unknown tool"
                yield Label("Arguments (JSON; edit them to approve with changes)")
                yield Input(value=self.proposed, id="args")
                yield Static(Text(f"schema: {schema}", style="dim"), classes="hint")
                yield Static("", id="args-check")
            with Horizontal():
                yield Button("Approve", variant="success", id="approve")
                yield Button("Reject…", variant="error", id="reject")
                yield Button("Cancel", id="cancel")
            yield Static(
                f"Deciding as {self.approver}. Enter approves, ctrl+r rejects, Escape cancels.",
                classes="hint",
            )

    def on_mount(self) -> None:
        if self.item.kind == "tool_call":
            self.query_one("#args", Input).focus()
            self._check(self.proposed)
        else:
            self.query_one("#approve", Button).focus()

    # checking ----------------------------------------------------------------------
    def _parse(self, raw: str) -> dict[str, Any] | str:
        """The arguments, or why they cannot be approved."""
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            return f"not valid JSON: {exc.msg} at column {exc.colno}"
        if not isinstance(value, dict):
            return "the arguments must be a JSON object"
        tool = self.context.tool
        if tool is None:
            return value
        try:
            checked = tool.validate_args(value)
        except ControlroomError as exc:
            return exc.message
        return dict(checked.model_dump(mode="json"))

    def _check(self, raw: str) -> None:
        parsed = self._parse(raw)
        line = self.query_one("#args-check", Static)
        if isinstance(parsed, str):
            self.problem = parsed
            line.update(Text(f"✗ {parsed}", style="bold red"))
            return
        self.problem = None
        verdict = self._gate(parsed)
        if verdict is not None and verdict[0] is Verdict.DENY:
            self.problem = f"denied by policy: {verdict[1]}"
            line.update(Text(f"✗ {self.problem}", style="bold red"))
            return
        tool = self.item.tool or "the tool"
        note = f"✓ valid against {tool}'s schema"
        if verdict is not None:
            note += f"; gate: {verdict[0].value} ({verdict[1]})"
        line.update(Text(note, style="green"))

    def _gate(self, args: dict[str, Any]) -> tuple[Verdict, str] | None:
        ctx = self.context
        if ctx.tool is None or ctx.gate is None or ctx.principal is None or ctx.runner is None:
            return None
        try:
            with using_home(ctx.runner.settings.home):
                decision = ctx.gate.decide(ctx.principal, ctx.tool, args)
        except ControlroomError as exc:
            return Verdict.DENY, exc.message
        return decision.verdict, decision.reason

    @on(Input.Changed, "#args")
    def _changed(self, event: Input.Changed) -> None:
        self._check(event.value)

    # deciding ----------------------------------------------------------------------
    @on(Input.Submitted, "#args")
    @on(Button.Pressed, "#approve")
    def action_approve(self) -> None:
        if self.item.kind != "tool_call":
            self.dismiss(ApprovalChoice(approve=True))
            return
        raw = self.query_one("#args", Input).value
        parsed = self._parse(raw)
        if isinstance(parsed, str) or self.problem is not None:
            reason = parsed if isinstance(parsed, str) else self.problem
            self.query_one("#args-check", Static).update(
                Text(
                    f"✗ Not approved: {str(reason).rstrip('.')}. Fix them, or reject.",
                    style="bold red",
                )
            )
            self.notify(f"Not approved: {reason}", severity="error", title="Invalid arguments")
            return
        edited = parsed if parsed != self.item.args else None
        self.dismiss(ApprovalChoice(approve=True, args=edited))

    @on(Button.Pressed, "#reject")
    def action_reject(self) -> None:
        from controlroom.tui.screens import ReasonScreen

        def rejected(reason: str | None) -> None:
            if reason:
                self.dismiss(ApprovalChoice(approve=False, reason=reason))

        self.app.push_screen(
            ReasonScreen(f"{self.item.tool or 'checkpoint'} ({self.item.approval_id})"), rejected
        )

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
