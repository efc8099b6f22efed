"""Hostile input gets a one-paragraph error and exit code 2, never a traceback.

Workflow files that are binary, huge, deep or not files at all; JSON options with numbers
or nesting Python cannot (or a run should not) carry; text that is not UTF-8; Python
workflow files that do not compile; and Rich markup in anything the CLI prints.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from controlroom import WorkflowDefinitionError, WorkflowFileError, load_workflow
from controlroom.cli import app
from controlroom.graphs.authoring.tool_refs import resolve_tool_refs
from controlroom.graphs.authoring.user_code import file_module_name
from tests.conftest import EXAMPLE, run_cli

runner = CliRunner()

HUGE_INT = "9" * 5000
DEEP = "[" * 60000 + "]" * 60000
STEP = b"\nsteps: [{id: a, kind: model, prompt: hi, next: end}]\n"


def one_paragraph(text: str) -> str:
    text = text.strip()
    assert text, "expected an error message"
    assert "Traceback" not in text
    assert len(text.splitlines()) == 1, text
    return text


def usage_error(result: Result) -> str:
    """The message of a CLI usage error: exit 2, one paragraph on stderr."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 2, result.output
    return one_paragraph(result.stderr)


def cli(*args: str) -> Result:
    return runner.invoke(app, list(args))


def start_waiting_run(input_text: str = "Pay invoice INV-1001") -> tuple[str, str]:
    result = cli("run", str(EXAMPLE), "-u", "alice", "-i", input_text, "--json")
    assert result.exit_code == 3, result.output
    payload = json.loads(result.stdout)
    return payload["run"]["run_id"], payload["pending"][0]["approval_id"]


# -- workflow files ------------------------------------------------------------------------


def test_nul_byte_in_a_workflow_file(project: Path, tmp_path: Path) -> None:
    bad = tmp_path / "workflow.yaml"
    bad.write_bytes(b"name: x\nsteps:\n  - id: a\x00\n")
    message = usage_error(cli("run", str(bad), "-u", "alice", "-i", "x"))
    assert f"{bad}:3:" in message
    assert "U+0000 (a NUL byte)" in message
    with pytest.raises(WorkflowFileError, match="NUL byte"):
        load_workflow(bad)


def billion_laughs() -> str:
    lines = ["  - &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"  - &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "name: bomb\ntools:\n" + "\n".join(lines) + "\nsteps: [{id: a, kind: model}]\n"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        pytest.param(bytes(range(256)) * 4, "not UTF-8 text", id="binary-garbage"),
        pytest.param("name: caf\xe9\n".encode("latin-1"), "not UTF-8 text", id="latin-1"),
        pytest.param(b"name: x\n\x1b[31m\x07\n", "U+001B", id="control-characters"),
        pytest.param(billion_laughs().encode(), "expands to more than 100,000", id="alias-bomb"),
        pytest.param(
            b"name: x\nsteps: " + b"[" * 20000 + b"]" * 20000,
            "nested too deeply",
            id="deep-sequence",
        ),
        pytest.param(
            b"name: x\nversion: " + HUGE_INT.encode() + STEP,
            "cannot read the value `99999999999999999999…(5,000 characters)` (an integer of",
            id="5000-digit-integer",
        ),
        pytest.param(
            b"name: x\nversion: 0x" + b"f" * 5000 + STEP,
            "found a very large number",
            id="huge-hex-integer",
        ),
        pytest.param(
            b"name: x\nversion: 2001-13-45" + STEP,
            "`2001-13-45` (month must be in 1..12)",
            id="impossible-date",
        ),
        pytest.param(
            b"name: x\nx: " + b"{a: " * 3000 + b"1" + b"}" * 3000,
            "nested too deeply",
            id="deep-mapping",
        ),
    ],
)
def test_hostile_workflow_files(project: Path, tmp_path: Path, content: bytes, says: str) -> None:
    bad = tmp_path / "workflow.yaml"
    bad.write_bytes(content)
    message = usage_error(cli("run", str(bad), "-u", "alice", "-i", "x"))
    assert str(bad) in message
    assert says in message


def test_tool_paths_with_a_nul_byte_or_a_symlink_loop(project: Path, tmp_path: Path) -> None:
    (tmp_path / "loop.py").symlink_to(tmp_path / "loop2.py")
    (tmp_path / "loop2.py").symlink_to(tmp_path / "loop.py")
    # The NUL byte is shown escaped (`\x00`), never written raw to the terminal.
    for ref, shown in [("./to\\0ols.py:x", "to\\x00ols.py"), ("./loop.py:x", "loop.py")]:
        wf = tmp_path / "workflow.yaml"
        wf.write_bytes(f'name: x\ntools: ["{ref}"]'.encode() + STEP)
        message = usage_error(cli("run", str(wf), "-u", "alice", "-i", "x"))
        assert f"{shown} not found" in message
    with pytest.raises(WorkflowDefinitionError, match="No Python file"):
        load_workflow(f"{tmp_path / 'loop.py'}:x")
    with pytest.raises(WorkflowDefinitionError, match="No Python file"):
        load_workflow(f"{tmp_path}/a\0.py:x")


def test_workflow_file_that_is_a_folder_or_too_big(project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "flow.yaml"
    folder.mkdir()
    message = usage_error(cli("run", str(folder), "-u", "alice", "-i", "x"))
    assert "a folder, not a workflow file" in message
    big = tmp_path / "big.yaml"
    with big.open("w") as f:  # valid YAML: comments, then a workflow
        f.write(("#" * 1023 + "\n") * (17 * 1024))
        f.write((EXAMPLE / "workflow.yaml").read_text())
    message = usage_error(cli("run", str(big), "-u", "alice", "-i", "x"))
    assert "more than 16,777,216" in message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_workflow_file_that_is_a_named_pipe_does_not_hang(project: Path, tmp_path: Path) -> None:
    pipe = tmp_path / "workflow.yaml"
    os.mkfifo(pipe)
    done = run_cli(project, "run", str(pipe), "-u", "alice", "-i", "x", timeout=60)
    assert done.returncode == 2, done.stderr
    assert "not a regular file" in one_paragraph(done.stderr)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_workflow_file(project: Path, tmp_path: Path) -> None:
    bad = tmp_path / "workflow.yaml"
    bad.write_text((EXAMPLE / "workflow.yaml").read_text())
    bad.chmod(0)
    try:
        assert "cannot read the file" in usage_error(cli("run", str(bad), "-u", "alice", "-i", "x"))
    finally:
        bad.chmod(0o600)


def test_brackets_in_a_path_are_printed_verbatim(project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "flows" / "[draft]"
    folder.mkdir(parents=True)
    wf = folder / "wf.yaml"
    wf.write_text("name: bad\nsteps:\n  - id: a\n    kind: model\n    prompt: hi\n    nxt: end\n")
    message = usage_error(cli("run", str(wf), "-u", "alice", "-i", "x"))
    assert f"{wf}:6:" in message  # not ".../flows//wf.yaml:6:"
    result = cli("run", str(tmp_path / "[/bold]" / "gone.yaml"), "-u", "alice", "-i", "x")
    assert "[/bold]" in usage_error(result)  # was a MarkupError traceback


# -- Python workflow and tool files ----------------------------------------------------------


def test_syntax_error_in_a_python_workflow_names_file_and_line(
    project: Path, tmp_path: Path
) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text(
        "from controlroom import GraphBuilder\n"
        "flow = GraphBuilder('hi', model='scripted:x').model('a', 'Hi.', next='end').build()\n"
        "def broken(:\n"
        "    pass\n"
    )
    ref = f"{flow}:flow"
    before = set(sys.modules)
    for _ in range(2):  # the second load says the same, not "has no attribute"
        with pytest.raises(WorkflowDefinitionError) as info:
            load_workflow(ref)
        assert f"SyntaxError: invalid syntax ({flow.resolve()}:3)" in str(info.value)
    assert not [m for m in set(sys.modules) - before if m.startswith("controlroom_workflow")]
    message = usage_error(cli("run", ref, "-u", "alice", "-i", "x"))
    assert f"{flow.resolve()}:3" in message
    flow.write_text(flow.read_text().replace("def broken(:", "def broken():"))
    assert load_workflow(ref).name == "hi"  # nothing half-loaded was kept


def test_python_workflow_that_fails_at_import_names_the_line(tmp_path: Path) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text("x = 1\ny = x / 0\n")
    with pytest.raises(WorkflowDefinitionError) as info:
        load_workflow(f"{flow}:x")
    assert f"ZeroDivisionError: division by zero ({flow.resolve()}:2)" in str(info.value)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("def broken(:\n    pass\n", "SyntaxError: invalid syntax"),
        ("import sys\nsys.exit(3)\n", "the file called sys.exit(3) while being imported"),
        ("x = 1\n\x00\n", "null bytes"),
    ],
)
def test_tool_file_that_does_not_import(tmp_path: Path, body: str, says: str) -> None:
    path = tmp_path / "tools.py"
    path.write_text(body)
    with pytest.raises(WorkflowDefinitionError) as info:
        resolve_tool_refs(["./tools.py:x"], tmp_path)
    assert says in str(info.value)
    assert "\n" not in str(info.value)
    assert file_module_name(path.resolve()) not in sys.modules


# -- JSON options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(
            f'{{"amount": {HUGE_INT}}}', "the integer 999999999999…(5,000 digits)", id="5000-digits"
        ),
        pytest.param(DEEP, "--args is nested too deeply", id="60000-deep"),
        pytest.param('{"a": ' * 100 + "1" + "}" * 100, "nested too deeply", id="100-deep"),
        pytest.param('{"amount": NaN}', "`NaN` is not a JSON number", id="nan"),
        pytest.param('{"amount": -Infinity}', "`-Infinity` is not a JSON number", id="inf"),
        pytest.param('{"amount": 1e999}', "the number 1e999 is too large", id="overflow"),
        pytest.param('{"amount": 12345678901234567890}', "out of range", id="beyond-2**53"),
        pytest.param('{"note": "\\udcff"}', "--args is not valid UTF-8", id="lone-surrogate"),
    ],
)
def test_approve_args_that_a_run_cannot_carry(project: Path, args: str, says: str) -> None:
    message = usage_error(cli("approve", "r123", "a1-1", "--user", "bob", "--args", args))
    assert says in message
    as_json = cli("approve", "r123", "a1-1", "--user", "bob", "--args", args, "--json")
    assert as_json.exit_code == 2
    assert says in json.loads(as_json.stdout)["error"]["message"]


def test_fork_set_values_that_a_run_cannot_carry(project: Path) -> None:
    run_id, _ = start_waiting_run()
    for value, says in [
        (HUGE_INT, "--set vars.x: the integer"),
        (DEEP, "--set vars.x is nested too deeply"),
        ("NaN", "`NaN` is not a JSON number"),
    ]:
        result = cli("fork", run_id, "step:1", "--user", "bob", "--set", f"vars.x={value}")
        assert says in usage_error(result)
    forked = cli("fork", run_id, "step:1", "--user", "bob", "--set", "vars.x=plain words")
    assert forked.exit_code == 4, forked.output  # a bare word is still a string


# -- text that is not UTF-8 ------------------------------------------------------------------


def test_input_that_is_not_utf8_is_refused_before_a_run_exists(project: Path) -> None:
    # run_cli passes "\udcff\udcfe" to the OS as the bytes 0xff 0xfe, as a shell does $'\xff\xfe'
    done = run_cli(project, "run", str(EXAMPLE), "--user", "alice", "--input", "\udcff\udcfe")
    assert done.returncode == 2, done.stderr
    message = one_paragraph(done.stderr)
    assert "--input is not valid UTF-8 text (the byte 0xFF at character 1)" in message
    assert json.loads(cli("runs", "--json").stdout) == []  # nothing stored, nothing half-run
    run_id, _ = start_waiting_run()
    forked = cli("fork", run_id, "step:1", "--user", "bob", "--input", "ok \udcff")
    assert "--input is not valid UTF-8 text (the byte 0xFF at character 4)" in usage_error(forked)


# -- Rich markup in what the CLI prints ------------------------------------------------------


def test_markup_in_run_text_is_printed_verbatim(project: Path) -> None:
    run_id, _ = start_waiting_run("Pay INV-1001 [/x] [draft]")
    shown = cli("show", run_id)
    assert shown.exit_code == 0, shown.output  # was: MarkupError, closing tag '[/x]'
    assert "Pay INV-1001 [/x] [draft]" in shown.stdout
    listed = cli("runs")
    assert listed.exit_code == 0
    assert run_id in listed.stdout


def test_markup_in_policy_check_arguments_is_printed_verbatim(project: Path) -> None:
    args = '{"invoice_id": "[/x] [bold]INV", "amount": 1}'
    result = cli(
        "policy",
        "check",
        "-u",
        "alice",
        "-t",
        "pay_invoice",
        "--args",
        args,
        "--workflow",
        str(EXAMPLE),
    )
    assert result.exit_code == 0, result.output  # was: MarkupError, closing tag '[/x]'
    assert '"invoice_id": "[/x] [bold]INV"' in result.stdout
