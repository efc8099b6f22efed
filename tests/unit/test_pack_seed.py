"""The enterprise database: a deterministic fictional company of about 200 people."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from controlroom.tools.pack.seed import FIXED, seed_database
from tests.pack_support import SAMPLE_DIRECTORY, directory


def rows(db: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query).fetchall()


def test_counts_and_fixed_people(tmp_path: Path) -> None:
    counts = seed_database(tmp_path / "e.sqlite")
    assert counts == {"employees": 200, "invoices": 60, "payments": 27, "tickets": 80, "mail": 2}
    logins = {r[0] for r in rows(tmp_path / "e.sqlite", "SELECT login FROM employees")}
    assert {p.login for p in FIXED} <= logins
    assert len(rows(tmp_path / "e.sqlite", "SELECT DISTINCT department FROM employees")) == 9


def test_every_directory_employee_is_in_the_database(tmp_path: Path) -> None:
    seed_database(tmp_path / "e.sqlite")
    logins = {r[0] for r in rows(tmp_path / "e.sqlite", "SELECT login FROM employees")}
    employees = {p.id for p in directory().values() if "employee" in p.roles}
    assert employees <= logins
    assert "kim" not in logins  # the contractor is not an employee
    assert SAMPLE_DIRECTORY.is_file()


def test_the_org_chart_is_a_tree_under_the_ceo(tmp_path: Path) -> None:
    seed_database(tmp_path / "e.sqlite")
    managers = dict(rows(tmp_path / "e.sqlite", "SELECT id, manager_id FROM employees"))
    assert [e for e, m in managers.items() if m is None] == ["E0001"]
    for employee in managers:
        seen, current = set(), employee
        while managers[current] is not None:
            assert current not in seen, f"cycle at {current}"
            seen.add(current)
            current = managers[current]  # type: ignore[assignment]
        assert current == "E0001"


def test_the_same_seed_gives_the_same_company(tmp_path: Path) -> None:
    seed_database(tmp_path / "a.sqlite", seed=3)
    seed_database(tmp_path / "b.sqlite", seed=3)
    seed_database(tmp_path / "c.sqlite", seed=4)
    query = "SELECT id, login, name, title, manager_id, salary FROM employees ORDER BY id"
    assert rows(tmp_path / "a.sqlite", query) == rows(tmp_path / "b.sqlite", query)
    assert rows(tmp_path / "a.sqlite", query) != rows(tmp_path / "c.sqlite", query)


def test_an_existing_database_is_kept_unless_forced(tmp_path: Path) -> None:
    db = tmp_path / "e.sqlite"
    seed_database(db, employees=40)
    with pytest.raises(FileExistsError):
        seed_database(db)
    assert seed_database(db, force=True)["employees"] == 200
