"""The public surface: everything the docs use is exported (derived from the docs, so an
omission fails), and a core that never loads Textual."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import controlroom
from controlroom import testing

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    ROOT / "README.md",
    # architecture.md maps the internals for contributors: it names modules, not the SDK
    *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "architecture.md"),
    *sorted((ROOT / "examples").rglob("*.md")),
]
EXAMPLE_CODE = sorted((ROOT / "examples").rglob("*.py"))
# Public modules besides the root: what the docs may name from them.
PUBLIC = {"controlroom": set(controlroom.__all__), "controlroom.testing": set(testing.__all__)}


def _defined_in_controlroom() -> set[str]:
    """Public classes and functions defined anywhere in the package (module level)."""
    names: set[str] = set()
    for path in (ROOT / "controlroom").rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef) and not node.name.startswith("_"):
                names.add(node.name)
    return names


def _code_in(text: str) -> list[str]:
    """The Python of a Markdown text: its ``python`` blocks and its inline code spans (not
    console blocks, whose output text is not API)."""
    return re.findall(r"```(?:python|py)\n(.*?)```", text, re.S) + re.findall(
        r"(?<!`)`([^`]+)`(?!`)", re.sub(r"```.*?```", "", text, flags=re.S)
    )


def documented_names() -> dict[str, set[str]]:
    """Every name the docs use from controlroom, with where: what their code imports from
    ``controlroom`` (or ``controlroom.testing``), and every CamelCase name in their code that
    is a class or function of the package (``Breakpoints(...)`` in a sentence counts)."""
    defined = _defined_in_controlroom()
    used: dict[str, set[str]] = {}
    sources = [(d, _code_in(d.read_text(encoding="utf-8"))) for d in DOCS]
    sources += [(p, [p.read_text(encoding="utf-8")]) for p in EXAMPLE_CODE]
    for path, chunks in sources:
        where = str(path.relative_to(ROOT))
        for chunk in chunks:
            for module, names in re.findall(
                r"^\s*from (controlroom(?:\.testing)?) import (\([^)]*\)|[^\n]+)", chunk, re.M
            ):
                for name in re.findall(r"\w+", re.sub(r"#[^\n]*", "", names)):
                    used.setdefault(f"{module}:{name}", set()).add(where)
            if path.suffix == ".md":
                for name in re.findall(r"\b([A-Z][a-z]\w*)\b", chunk):
                    if name in defined:
                        used.setdefault(name, set()).add(where)
    return used


def missing_exports(public: dict[str, set[str]]) -> dict[str, set[str]]:
    """The documented names that no public module exports."""
    missing: dict[str, set[str]] = {}
    for key, where in documented_names().items():
        module, _, name = key.rpartition(":")
        exported = public.get(module, set()) if module else set().union(*public.values())
        if name not in exported:
            missing.setdefault(name, set()).update(where)
    return missing


def test_every_name_the_docs_use_is_exported() -> None:
    assert missing_exports(PUBLIC) == {}, (
        "the docs use these names, but neither `controlroom` nor `controlroom.testing` exports "
        "them: add them to __all__ (or stop documenting them)"
    )


def test_the_guard_fails_when_a_documented_export_is_removed() -> None:
    """The check above can fail: without Breakpoints in __all__ it names it and the README."""
    public = {**PUBLIC, "controlroom": PUBLIC["controlroom"] - {"Breakpoints", "Effect"}}
    missing = missing_exports(public)
    assert set(missing) == {"Breakpoints", "Effect"}
    assert "README.md" in missing["Breakpoints"]
    assert "examples/invoice-payment/tools.py" in missing["Effect"]


def test_the_docs_name_the_sdk_they_teach() -> None:
    """The derived surface is not empty by accident (a broken scan would pass the guard)."""
    names = {key.rpartition(":")[2] for key in documented_names()}
    assert {"Runner", "Breakpoints", "StateEdits", "GraphBuilder", "tool", "Effect"} <= names
    assert "ScriptedChatModel" in names


def test_all_is_importable_and_has_no_duplicates() -> None:
    assert len(controlroom.__all__) == len(set(controlroom.__all__))
    for name in controlroom.__all__:
        assert getattr(controlroom, name) is not None
    for name in testing.__all__:
        assert getattr(testing, name) is not None


def test_the_whole_error_tree_and_every_step_type_are_exported() -> None:
    from controlroom import errors
    from controlroom.audit import errors as audit_errors
    from controlroom.graphs.authoring import spec

    tree = {
        name
        for module in (errors, audit_errors)
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, errors.ControlroomError)
    }
    steps = {
        name
        for name, value in vars(spec).items()
        if inspect.isclass(value) and name.endswith("Step") and not name.startswith("_")
    }
    assert tree - set(controlroom.__all__) == set()
    assert steps - set(controlroom.__all__) == set()
    assert {"ReasonStep", "ChooseStep", "RetrieveStep", "AnswerStep"} <= steps


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
