"""The package's layout rules hold (the same checks as ``make contracts``)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.layout.check_layout import MAX_LINES, import_cycles, oversized_modules


def test_no_module_of_controlroom_is_part_of_an_import_cycle() -> None:
    assert import_cycles() == []


def test_the_cycle_check_finds_a_cycle(tmp_path: Path) -> None:
    """A check that cannot fail proves nothing: two modules importing each other fail it."""
    pkg = tmp_path / "cyclic_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cyclic_pkg import b\n"
    )
    (pkg / "b.py").write_text("def f():\n    from cyclic_pkg import a\n")
    (pkg / "c.py").write_text("from cyclic_pkg import a\n")
    sys.path.insert(0, str(tmp_path))
    try:
        assert import_cycles("cyclic_pkg") == [["cyclic_pkg.a", "cyclic_pkg.b"]]
    finally:
        sys.path.remove(str(tmp_path))


def test_no_module_is_over_the_line_limit(tmp_path: Path) -> None:
    assert oversized_modules() == []
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    assert oversized_modules(tmp_path / "pkg") == [("pkg/long.py", MAX_LINES + 1)]
