"""Tool references: `package.module:attr` and `./file.py:attr`, to Tool objects."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from controlroom.errors import WorkflowDefinitionError
from controlroom.graphs.authoring.tool_refs import parse_tool_ref, resolve_tool_refs
from controlroom.graphs.authoring.user_code import file_module_name
from controlroom.tools.spec import Effect, Tool

TOOLS_PY = '''
from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from controlroom.tools.spec import tool


@dataclass
class Money:
    amount: float
    currency: str = "EUR"


class Address(BaseModel):
    street: str


@tool
def lookup(invoice_id: str) -> str:
    """Look an invoice up."""
    return f"found {invoice_id}"


@tool(effect="irreversible")
def pay(invoice_id: str, money: Money, to: Address) -> str:
    """Pay an invoice."""
    return f"paid {money.amount} {money.currency} to {to.street}"


def plain(x: int) -> int:
    return x


toolset = [lookup, pay]
as_tuple = (pay,)
mixed = [lookup, plain]
'''


@pytest.fixture
def tools_dir(tmp_path: Path) -> Path:
    (tmp_path / "tools.py").write_text(TOOLS_PY)
    return tmp_path


def error_for(refs: list[str], base_dir: Path) -> str:
    with pytest.raises(WorkflowDefinitionError) as info:
        resolve_tool_refs(refs, base_dir)
    return str(info.value)


def test_file_reference(tools_dir: Path) -> None:
    [found] = resolve_tool_refs(["./tools.py:lookup"], tools_dir)
    assert isinstance(found, Tool)
    assert found.name == "lookup"
    assert found.func(invoice_id="INV-1") == "found INV-1"


def test_file_reference_without_dot_slash_is_the_same_module(tools_dir: Path) -> None:
    a = resolve_tool_refs(["./tools.py:lookup"], tools_dir)
    b = resolve_tool_refs(["tools.py:lookup"], tools_dir)
    assert a[0] is b[0]
    name = file_module_name((tools_dir / "tools.py").resolve())
    assert sys.modules[name].lookup is a[0]


def test_toolsets_and_dataclass_and_pydantic_types_in_the_file(tools_dir: Path) -> None:
    tools = resolve_tool_refs(["./tools.py:toolset", "./tools.py:as_tuple"], tools_dir)
    assert [t.name for t in tools] == ["lookup", "pay"]  # `pay` twice is the same Tool
    pay = tools[1]
    assert pay.effect is Effect.IRREVERSIBLE
    args = pay.validate_args({"invoice_id": "I", "money": {"amount": 3}, "to": {"street": "Rue"}})
    assert pay.func(**{k: getattr(args, k) for k in ("invoice_id", "money", "to")}) == (
        "paid 3.0 EUR to Rue"
    )


def test_file_in_a_subfolder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "tools.py").write_text(TOOLS_PY)
    [found] = resolve_tool_refs(["./sub/tools.py:lookup"], tmp_path)
    assert found.name == "lookup"


def test_module_names_are_stable_and_unique(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "tools.py", tmp_path / "b" / "tools.py"
    assert file_module_name(a) == file_module_name(a)
    assert file_module_name(a) != file_module_name(b)
    assert file_module_name(a).isidentifier()


def test_package_module_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = f"pkg_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "billing.py").write_text(TOOLS_PY)
    monkeypatch.syspath_prepend(str(tmp_path))
    tools = resolve_tool_refs([f"{package}.billing:toolset"], tmp_path / "elsewhere")
    assert [t.name for t in tools] == ["lookup", "pay"]


def test_module_not_found(tmp_path: Path) -> None:
    message = error_for(["no_such_pkg_zz.tools:x"], tmp_path)
    assert "module `no_such_pkg_zz.tools` not found" in message
    assert "Expected an importable module" in message


def test_module_importing_a_missing_dependency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"mod_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text("import no_such_dependency_zz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    message = error_for([f"{module}:x"], tmp_path)
    assert "imports `no_such_dependency_zz`, which is not installed" in message


def test_file_not_found(tmp_path: Path) -> None:
    message = error_for(["./missing.py:x"], tmp_path)
    assert f"file {tmp_path / 'missing.py'} not found" in message


def test_file_that_fails_to_import_is_not_left_registered(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("raise RuntimeError('boom')\n")
    message = error_for(["broken.py:x"], tmp_path)
    assert "failed: RuntimeError: boom" in message
    assert file_module_name(path.resolve()) not in sys.modules


def test_missing_attribute_suggests_close_names(tools_dir: Path) -> None:
    message = error_for(["./tools.py:lokup"], tools_dir)
    assert "has no attribute `lokup` (did you mean `lookup`?)" in message


def test_not_a_tool(tools_dir: Path) -> None:
    message = error_for(["./tools.py:plain"], tools_dir)
    assert "`plain` is a plain function (not decorated with @tool), not a Tool" in message
    message = error_for(["./tools.py:Money"], tools_dir)
    assert "`Money` is a type, not a Tool" in message


def test_toolset_with_a_non_tool(tools_dir: Path) -> None:
    message = error_for(["./tools.py:mixed"], tools_dir)
    assert "item 1 of `mixed` is a plain function" in message


def test_two_tools_with_one_name(tools_dir: Path) -> None:
    (tools_dir / "other.py").write_text(TOOLS_PY)
    message = error_for(["./tools.py:lookup", "./other.py:lookup"], tools_dir)
    assert "Tool name `lookup` is provided twice" in message


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("mypkg.tools", "has no `:attr` part"),
        ("mypkg.tools:", "has no `:attr` part"),
        (":x", "has no `:attr` part"),
        ("mypkg.tools:not-a-name", "`not-a-name` is not a Python name"),
        ("my-pkg.tools:x", "`my-pkg.tools` is neither a module name nor a .py file"),
    ],
)
def test_malformed_references(ref: str, says: str) -> None:
    with pytest.raises(WorkflowDefinitionError, match=r"Expected `package\.module:attr`") as info:
        parse_tool_ref(ref)
    assert says in str(info.value)


def test_parse_forms() -> None:
    assert parse_tool_ref("a.b:c.d").is_file is False
    assert parse_tool_ref("./t.py:x").is_file is True
    assert parse_tool_ref("t.py:x").module == "t.py"
    assert parse_tool_ref("C:\\tools\\t.py:x").module == "C:\\tools\\t.py"
