"""Control characters in anything the CLI prints are shown escaped, never sent raw.

A directory user's name, a rejection reason, tool arguments from a model, an unknown run
id, a workflow path: whatever holds ESC (ANSI and OSC sequences), BEL, CR, a C1 control
(``\\x9b`` is a one-byte CSI) or a bidi override (U+202E shows text reversed) reaches the
terminal as ``\\x1b``, ``\\x9b``, ``\\u202e``... (the rule of controlroom.cli.render).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from controlroom.cli import app
from controlroom.cli.render import TerminalConsole, escape, escape_controls
from tests.conftest import EXAMPLE

runner = CliRunner()

BIDI = {
    chr(c)
    for c in (
        0x061C,
        0x200E,
        0x200F,
        0x2028,
        0x2029,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    )
}
# ESC with an OSC set-title and a clear screen, BEL, a C1 CSI, a right-to-left override, CR
HOSTILE = "no \x1b[31mway\x1b[0m \x1b]0;t\x07 \x9b2J \u202erev\r"


def raw_controls(text: str) -> list[str]:
    """The characters of ``text`` the rule says must never reach a terminal as they are."""
    return [
        c
        for c in text
        if (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F or c in BIDI
    ]


def assert_clean(text: str) -> None:
    assert not raw_controls(text), repr(text)


def cli(*args: str) -> Result:
    return runner.invoke(app, list(args))


def shown(result: Result) -> str:
    """Everything a command wrote, stdout and stderr, checked for raw control characters."""
    text = result.stdout + result.stderr
    assert "Traceback" not in text
    assert_clean(text)
    return text


# -- the rule ------------------------------------------------------------------------------


@given(st.text())
def test_escape_never_lets_a_control_character_through(text: str) -> None:
    assert_clean(escape(text))
    assert_clean(escape_controls(text))
    assert "\n" not in escape_controls(text, keep_newlines=False)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp"))))
def test_text_without_controls_is_left_alone(text: str) -> None:
    assert escape_controls(text) == text


def test_each_class_is_shown_by_its_code() -> None:
    text = "a\x1bb\x07c\rd\x7fe\x9bf\u202eg\u2066h\u200fi\n\tj"
    assert escape_controls(text) == ("a\\x1bb\\x07c\\x0dd\\x7fe\\x9bf\\u202eg\\u2066h\\u200fi\n\tj")
    assert escape("[bold]\x1b") == "\\[bold]\\x1b"


@given(st.text())
def test_the_console_writes_no_control_character(text: str) -> None:
    buffer = io.StringIO()
    console = TerminalConsole(file=buffer, width=80, color_system=None)
    console.print(text, markup=False, highlight=False)
    assert_clean(buffer.getvalue())


# -- the commands --------------------------------------------------------------------------


def test_users_shows_a_hostile_name_escaped(project: Path) -> None:
    directory = {
        "users": [
            {"id": "eve", "name": f"Eve {HOSTILE} \x1b[2J\x1bc", "roles": ["employee"]},
        ]
    }
    (project / "directory.yaml").write_text(json.dumps(directory))  # JSON is YAML
    result = cli("users")
    assert result.exit_code == 0, result.output
    text = shown(result)
    assert "eve" in text
    assert "\\x1b]0;t\\x07" in text
    assert "\\x9b2J" in text
    assert "\\u202erev\\x0d" in text


def _script(tmp_path: Path) -> Path:
    """The example's script, with a C1 control and a bidi override in the payment's arguments."""
    script = {
        "replies": [
            {"tool_calls": [{"name": "lookup_invoice", "args": {"invoice_id": "INV-1001"}}]},
            {"content": '{"reasoning": "open", "choice": "pay"}'},
            {
                "tool_calls": [
                    {
                        "name": "pay_invoice",
                        "args": {"invoice_id": "INV-1001\x9b2J\u202e", "amount": 1250.0},
                    }
                ]
            },
            {"content": "Nothing was paid \x1b]0;x\x07\u202e."},
        ]
    }
    path = tmp_path / "hostile-script.yaml"
    path.write_text(json.dumps(script))
    return path


@pytest.fixture
def rejected_run(project: Path, tmp_path: Path) -> tuple[str, Result]:
    """A run of the example whose payment (hostile arguments) was rejected with HOSTILE."""
    started = cli(
        "run",
        str(EXAMPLE),
        "-u",
        "alice",
        "-i",
        "Pay invoice INV-1001 \x1b[31m\u202e",
        "--model",
        f"scripted:{_script(tmp_path)}",
        "--json",
    )
    assert started.exit_code == 3, started.output
    payload = json.loads(started.stdout)
    run_id, call = payload["run"]["run_id"], payload["pending"][0]["approval_id"]
    rejected = cli("reject", run_id, call, "-u", "bob", "--reason", HOSTILE)
    return run_id, rejected


def test_reject_prints_a_hostile_reason_escaped(rejected_run: tuple[str, Result]) -> None:
    _, rejected = rejected_run
    assert rejected.exit_code in (0, 5), rejected.output
    text = shown(rejected)
    assert "\\u202erev" in text


def test_audit_show_escapes_reasons_and_arguments(rejected_run: tuple[str, Result]) -> None:
    run_id, _ = rejected_run
    result = cli("audit", "show", run_id)
    assert result.exit_code == 0, result.output
    text = shown(result)
    lines = result.stdout.splitlines()
    model_calls = [line for line in lines if " model.call " in line]
    assert any("\\x9b2J" in line for line in model_calls), model_calls
    asked = [line for line in lines if " approval.requested " in line]
    assert asked and "\\x9b2J" in asked[0], asked
    decided = [line for line in lines if " approval.decided " in line]
    assert decided and "\\u202erev" in decided[0], decided
    assert "\\x1b]0;t\\x07" in text


def test_show_escapes_input_and_reasons(rejected_run: tuple[str, Result]) -> None:
    run_id, _ = rejected_run
    result = cli("show", run_id)
    assert result.exit_code in (0, 5), result.output
    text = shown(result)
    assert "\\u202erev" in text  # the refusals table's reason
    assert "INV-1001 \\x1b[31m\\u202e" in text  # the user's input


BAD_ID = "zz\x1b]0;t\x07\x9b\u202e\u2066"


@pytest.mark.parametrize(
    "args",
    [
        ("show", BAD_ID),
        ("reject", BAD_ID, "a1-1", "--reason", "x", "-u", "bob"),
        ("audit", "show", BAD_ID),
        ("replay", BAD_ID),
    ],
    ids=["show", "reject", "audit-show", "replay"],
)
def test_an_unknown_run_id_is_shown_escaped(project: Path, args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "zz\\x1b]0;t\\x07\\x9b\\u202e\\u2066" in shown(result)


def test_a_missing_workflow_path_is_shown_escaped(project: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no\x1b[2J\u202e.yaml"
    result = cli("run", str(missing), "-u", "alice", "-i", "x")
    assert result.exit_code == 2, result.output
    assert "\\x1b[2J\\u202e.yaml" in shown(result)


def test_documents_commands_escape_their_errors(project: Path) -> None:
    result = cli("search", "anything", "-u", "nobody\x1b[2J\x9b\u202e")
    assert result.exit_code == 2, result.output
    assert "nobody\\x1b[2J\\x9b\\u202e" in shown(result)
