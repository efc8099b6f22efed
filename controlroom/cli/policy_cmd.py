"""``controlroom policy check|validate|schema``, ``controlroom tools`` and ``controlroom pack``.

None of these runs a tool. Without a workflow they use the enterprise tool pack and its
policies (or the project's own policy folder, ``<home>/policies``, when there is one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from controlroom.cli.common import JsonOpt, handles_errors, load_settings, out, parse_args_json
from controlroom.cli.render import escape, escape_controls
from controlroom.config import Settings
from controlroom.errors import ConfigError, UnknownToolError
from controlroom.graphs.authoring.workflow import load_workflow
from controlroom.identity import Directory
from controlroom.tools.cedar_schema import draft_schema
from controlroom.tools.gate import Decision, DeclaredGate, Gate, Verdict
from controlroom.tools.policy import PolicyGate, builtin_policies, project_gate
from controlroom.tools.policy_files import PolicyInfo, load_policy_folder
from controlroom.tools.spec import Tool

policy_app = typer.Typer(
    help="Explain and check the policies that gate tool calls.", no_args_is_help=True
)
pack_app = typer.Typer(help="The built-in enterprise tool pack's database.", no_args_is_help=True)

WorkflowOpt = Annotated[
    str | None,
    typer.Option(
        "--workflow", "-w", help="Workflow whose tools and policies to use; default the tool pack."
    ),
]
VERDICT_TEXT = {
    Verdict.ALLOW: "ALLOW: the call would run",
    Verdict.DENY: "DENY: the call would not run; the agent is told the reason",
    Verdict.APPROVE: "NEEDS APPROVAL: the call waits for a person",
}


def _tools_and_gate(workflow: str | None, settings: Settings) -> tuple[dict[str, Tool], Gate, str]:
    """The tools, the gate that decides them, and where the gate's rules come from."""
    gate: Gate
    if workflow is None:
        from controlroom.tools.pack import tools

        gate = project_gate(settings.home) or PolicyGate.load(builtin_policies("pack"))
        return {t.name: t for t in tools}, gate, _gate_source(gate)
    wf = load_workflow(workflow)
    gate = wf.gate or project_gate(settings.home) or DeclaredGate()
    return wf.tools, gate, _gate_source(gate)


def _gate_source(gate: Gate) -> str:
    if isinstance(gate, PolicyGate):
        return f"{gate.bundle.folder} ({gate.policy_hash[:19]}…)"
    return "the tools' declared effects (no policies)"


def _policy_json(p: PolicyInfo) -> dict[str, Any]:
    return {
        "id": p.id,
        "kind": p.kind,
        "who": p.principal,
        "conditional": p.conditional,
        "reason": p.approval if p.approval is not None else p.reason,
        "approvers": list(p.approvers),
        "where": f"{p.file}:{p.line}",
    }


@policy_app.command("check")
@handles_errors
def check(
    user: Annotated[str, typer.Option("--user", "-u", help="The user the call would run for.")],
    tool: Annotated[str, typer.Option("--tool", "-t", help="Tool name.")],
    args: Annotated[str, typer.Option(help="Arguments as a JSON object.")] = "{}",
    workflow: WorkflowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Explain what the gate decides for one call (allow, deny, needs approval) and which
    policies decided it. Nothing runs."""
    settings = load_settings()
    tools, gate, source = _tools_and_gate(workflow, settings)
    if tool not in tools:
        raise UnknownToolError(
            f"There is no tool '{tool}' here. Tools: {', '.join(sorted(tools)) or '(none)'}."
        )
    principal = Directory.load(settings.directory_path).get_principal(user)
    spec = tools[tool]
    checked = spec.validate_args(parse_args_json(args) or {}).model_dump(mode="json")
    decision = gate.decide(principal, spec, checked)
    if as_json:
        payload = {
            "user": principal.id,
            "tool": spec.name,
            "args": checked,
            "decision": decision.model_dump(mode="json"),
            "policies_from": source,
        }
        print(json.dumps(payload, indent=2))
        return
    _print_decision(principal.id, (spec, checked), decision, gate, source)


def _print_decision(
    user: str, call: tuple[Tool, dict[str, Any]], decision: Decision, gate: Gate, source: str
) -> None:
    spec, args = call
    kind, ident = spec.resource_ref(args)
    out.print(
        escape_controls(f"{user} → {spec.name} {json.dumps(args, sort_keys=True)}"),
        markup=False,
        highlight=False,
    )
    request = (
        f"principal User::{json.dumps(user)}, action Action::{json.dumps(spec.name)}, "
        f"resource {kind}::{json.dumps(ident)}"
    )
    out.print(escape_controls(f"  request:  {request}"), markup=False, highlight=False)
    out.print(
        escape_controls(f"  verdict:  {VERDICT_TEXT[decision.verdict]}"),
        markup=False,
        highlight=False,
    )
    out.print(escape_controls(f"  reason:   {decision.reason}"), markup=False, highlight=False)
    infos = gate.policies if isinstance(gate, PolicyGate) else {}
    for pid in decision.policies:
        info = infos.get(pid)
        where = f"  ({info.kind}, {info.file}:{info.line})" if info else ""
        out.print(escape_controls(f"  decided by: {pid}{where}"), markup=False, highlight=False)
    if decision.policies == ("default-deny",) and isinstance(gate, PolicyGate):
        candidates = [p.id for p in gate.bundle.for_action(spec.name) if p.kind == "permit"]
        unmet = ", ".join(candidates) if candidates else "none"
        out.print(
            escape_controls(f"  no permit matched (permits for this tool: {unmet})"),
            markup=False,
            highlight=False,
        )
    if decision.approvers:
        out.print(
            escape_controls(f"  approver needs a role: {' or '.join(decision.approvers)}"),
            markup=False,
            highlight=False,
        )
    out.print(escape_controls(f"  policies: {source}"), markup=False, highlight=False)


@policy_app.command("validate")
@handles_errors
def validate(
    target: Annotated[
        str | None,
        typer.Argument(help="A policy folder or a workflow; default the project's and the pack's."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Parse the policies and validate them against their Cedar schema (for CI)."""
    settings = load_settings()
    folders: list[Path] = []
    if target is None:
        if (settings.home / "policies").is_dir():
            folders.append(settings.home / "policies")
        folders.append(builtin_policies("pack"))
    elif Path(target).is_dir() and any(Path(target).glob("*.cedar")):
        folders.append(Path(target))
    else:
        gate = load_workflow(target).gate
        if not isinstance(gate, PolicyGate):
            raise ConfigError(f"The workflow '{target}' has no `policies:` to validate.")
        folders.append(gate.bundle.folder)
    report = []
    for folder in folders:
        bundle = load_policy_folder(folder)
        report.append(
            {"folder": str(bundle.folder), "policies": len(bundle.policies), "hash": bundle.digest}
        )
    if as_json:
        print(json.dumps(report, indent=2))
        return
    for item in report:
        text = f"{item['policies']} policies valid against the schema ({str(item['hash'])[:19]}…)"
        out.print(escape_controls(f"OK {item['folder']}: {text}"), markup=False, highlight=False)


@policy_app.command("schema")
@handles_errors
def schema(workflow: Annotated[str | None, typer.Argument(help="Workflow.")] = None) -> None:
    """Print a draft Cedar JSON schema for a workflow's tools (default the tool pack's)."""
    tools, _, _ = _tools_and_gate(workflow, load_settings())
    print(json.dumps(draft_schema(tools.values()), indent=2))


@handles_errors
def tools_command(
    workflow: Annotated[
        str | None, typer.Argument(help="Workflow; default the built-in enterprise tool pack.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List tools with their effects and who may call them (the policies that apply)."""
    found, gate, source = _tools_and_gate(workflow, load_settings())
    bundle = gate.bundle if isinstance(gate, PolicyGate) else None
    listing = [
        (spec, bundle.for_action(spec.name) if bundle else [])
        for spec in sorted(found.values(), key=lambda t: t.name)
    ]
    if as_json:
        rows = [
            {
                "name": spec.name,
                "effect": spec.effect.value,
                "resource": _resource_text(spec),
                "always_needs_approval": spec.needs_approval_by_default,
                "description": spec.description.splitlines()[0],
                "policies": [_policy_json(p) for p in policies],
            }
            for spec, policies in listing
        ]
        print(json.dumps({"policies_from": source, "tools": rows}, indent=2))
        return
    out.print(escape_controls(f"Policies: {source}"), markup=False, highlight=False)
    for spec, policies in listing:
        flag = "  (always needs approval)" if spec.needs_approval_by_default else ""
        head = f"{escape(spec.name)}[/]  {spec.effect.value}  on {escape(_resource_text(spec))}"
        out.print(f"\n[bold]{head}{flag}", highlight=False)
        out.print(
            escape_controls(f"  {spec.description.splitlines()[0]}"), markup=False, highlight=False
        )
        if bundle is None:
            out.print("  who: anyone the run acts for", highlight=False)
        elif not any(p.kind == "permit" for p in policies):
            out.print("  who: nobody (no policy permits it: default deny)", highlight=False)
        for p in policies:
            cond = ", when its conditions hold" if p.conditional else ""
            text = p.approval if p.approval is not None else p.reason
            tail = f" — {text}" if text else ""
            out.print(
                escape_controls(f"  {p.kind:<8} {p.principal}{cond}: {p.id}{tail}"),
                markup=False,
                highlight=False,
            )


def _resource_text(spec: Tool) -> str:
    kind = spec.resource or "Tool"
    return f"{kind}::<{spec.resource_id}>" if spec.resource_id else f"{kind}::{spec.name}"


@pack_app.command("init")
@handles_errors
def pack_init(
    force: Annotated[bool, typer.Option(help="Replace an existing database.")] = False,
    employees: Annotated[int, typer.Option(min=20, max=5000, help="Company size.")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same company).")] = 7,
) -> None:
    """Create the enterprise database (HR, finance, tickets, mail) with a fictional company."""
    import os

    from controlroom.config import ensure_home
    from controlroom.tools.pack import DB_ENV, seed_database
    from controlroom.tools.pack.db import DB_NAME

    settings = load_settings()
    explicit = os.environ.get(DB_ENV)
    path = Path(explicit) if explicit else settings.home / DB_NAME
    if not explicit:
        ensure_home(settings.home)  # 0700 when new; warns about one others can reach
    try:
        counts = seed_database(path, employees=employees, seed=seed, force=force)
    except FileExistsError:
        out.print(
            f"{escape(str(path))} already exists; kept it (use --force to replace it).",
            highlight=False,
        )
        return
    summary = ", ".join(f"{n} {table}" for table, n in counts.items())
    out.print(f"Created {escape(str(path))}: {escape(summary)}.", highlight=False)
    if not explicit and Settings().home.resolve() != settings.home.resolve():
        out.print(
            f"Tools find it through CONTROLROOM_HOME or {DB_ENV}: export "
            f"CONTROLROOM_HOME={escape(str(settings.home))} (or {DB_ENV}={escape(str(path))}) "
            "before running workflows.",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    """Add these commands to the ``controlroom`` app."""
    app.add_typer(policy_app, name="policy")
    app.add_typer(pack_app, name="pack")
    app.command("tools")(tools_command)
