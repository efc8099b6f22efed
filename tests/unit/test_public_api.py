"""The public surface: a curated __all__, and a core that never loads Textual."""

from __future__ import annotations

import subprocess
import sys

import controlroom

EXPECTED = {
    "Approval",
    "AuditError",
    "AuditKeyError",
    "ApprovalDecidedError",
    "ApprovalError",
    "ApprovalNotFoundError",
    "ApprovalStatus",
    "ApprovalStep",
    "BranchStep",
    "ConfigError",
    "ControlroomError",
    "DeclaredGate",
    "Decision",
    "Directory",
    "DirectoryError",
    "END",
    "Effect",
    "Gate",
    "GraphBuilder",
    "IdentityError",
    "ModelStep",
    "ModelUnavailableError",
    "PolicyError",
    "PolicyGate",
    "Principal",
    "Refusal",
    "RefusalStatus",
    "ReplayError",
    "ReplayReport",
    "RunBusyError",
    "RunError",
    "RunNotFoundError",
    "RunRecord",
    "RunResult",
    "RunState",
    "RunStateError",
    "RunStatus",
    "Runner",
    "ScriptError",
    "Settings",
    "StateError",
    "Tool",
    "ToolArgumentsError",
    "ToolContext",
    "ToolError",
    "ToolExecutionError",
    "ToolsStep",
    "UnknownToolError",
    "UnknownUserError",
    "Verdict",
    "VerifyReport",
    "Workflow",
    "WorkflowDefinitionError",
    "WorkflowError",
    "WorkflowFileError",
    "WorkflowSpec",
    "__version__",
    "from_langchain_tool",
    "load_workflow",
    "tool",
    "verify_log",
}


def test_all_is_curated_and_importable() -> None:
    assert set(controlroom.__all__) == EXPECTED, "update EXPECTED deliberately when the API changes"
    for name in controlroom.__all__:
        assert getattr(controlroom, name) is not None


def test_every_error_is_a_controlroom_error_with_a_title() -> None:
    errors = [getattr(controlroom, n) for n in controlroom.__all__ if n.endswith("Error")]
    for error in errors:
        assert issubclass(error, controlroom.ControlroomError)
        assert (
            error.title and error.title != "controlroom error"
        ) or error is controlroom.ControlroomError


def test_core_and_cli_import_without_textual() -> None:
    code = (
        "import sys, controlroom, controlroom.cli, controlroom.testing;"
        "print(sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_import_does_not_touch_the_network() -> None:
    code = (
        "import socket\n"
        "def deny(*a, **k): raise SystemExit('network used at import')\n"
        "socket.socket.connect = deny; socket.getaddrinfo = deny; socket.create_connection = deny\n"
        "import controlroom, controlroom.cli\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr
