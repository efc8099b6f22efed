"""HR directory: look people up, walk the org chart, read salaries (policy-restricted)."""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any, Literal

from pydantic import Field

from controlroom.errors import ToolExecutionError
from controlroom.tools.pack.db import read, read_one
from controlroom.tools.spec import Effect, tool

EmployeeId = Annotated[str, Field(pattern=r"^E[0-9]{4}$", description="employee id, e.g. E0042")]
Department = Literal[
    "engineering", "sales", "operations", "marketing", "it", "finance", "hr", "legal", "executive"
]
Limit = Annotated[int, Field(ge=1, le=50)]
_CARD = "id, login, name, title, department, email, location"
_CHAIN = """
WITH RECURSIVE chain(id, depth) AS (
  SELECT manager_id, 0 FROM employees WHERE id = ? AND manager_id IS NOT NULL
  UNION ALL
  SELECT e.manager_id, c.depth + 1 FROM employees e JOIN chain c ON e.id = c.id
  WHERE e.manager_id IS NOT NULL AND c.depth < 32
)
SELECT e.id, e.login, e.name, e.title, e.department, e.email, e.location
FROM chain c JOIN employees e ON e.id = c.id ORDER BY c.depth
"""


def _card(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "title": row["title"],
        "department": row["department"],
        "email": row["email"],
        "location": row["location"],
    }


def _employee(employee_id: str) -> sqlite3.Row:
    row = read_one(
        f"SELECT {_CARD}, manager_id, hired_on, salary FROM employees WHERE id = ?", (employee_id,)
    )
    if row is None:
        raise ToolExecutionError(
            f"There is no employee {employee_id}. Find people with find_employees first."
        )
    return row


def managers_of(employee_id: str) -> list[sqlite3.Row]:
    """The employee's management chain, nearest manager first."""
    return read(_CHAIN, (employee_id,))


_ATTRIBUTES = """
WITH RECURSIVE chain(id, depth) AS (
  SELECT id, 0 FROM employees WHERE id = ?
  UNION ALL
  SELECT e.manager_id, c.depth + 1 FROM employees e JOIN chain c ON e.id = c.id
  WHERE e.manager_id IS NOT NULL AND c.depth < 32
)
SELECT e.login, e.department FROM chain c JOIN employees e ON e.id = c.id ORDER BY c.depth
"""


def employee_attributes(employee_id: str) -> dict[str, Any]:
    """What policies see of an employee: department, their user and all their managers."""
    rows = read(_ATTRIBUTES, (employee_id,))  # the employee first, then the chain upwards
    if not rows:
        raise LookupError(f"there is no employee {employee_id}")
    return {
        "department": rows[0]["department"],
        "user": rows[0]["login"],
        "managers": [r["login"] for r in rows[1:]],
    }


@tool(effect=Effect.READ)
def find_employees(
    query: Annotated[str, Field(max_length=100)] = "",
    department: Department | None = None,
    limit: Limit = 10,
) -> dict[str, Any]:
    """Find colleagues by name, title or login, optionally in one department.

    Returns id, name, title, department, email and location; never salaries.
    """
    pattern = f"%{query.strip().lower()}%"
    rows = read(
        f"SELECT {_CARD} FROM employees WHERE (lower(name) LIKE ? OR lower(title) LIKE ? "
        "OR login LIKE ?) AND (? IS NULL OR department = ?) ORDER BY name LIMIT ?",
        (pattern, pattern, pattern, department, department, limit),
    )
    return {"count": len(rows), "employees": [_card(r) for r in rows]}


@tool(
    effect=Effect.READ,
    resource="Employee",
    resource_id="employee_id",
    resource_loader=employee_attributes,
)
def get_employee(employee_id: EmployeeId) -> dict[str, Any]:
    """One employee's directory card: title, department, email, location, manager, start date."""
    row = _employee(employee_id)
    chain = managers_of(employee_id)
    return {
        **_card(row),
        "hired_on": row["hired_on"],
        "manager": {"id": chain[0]["id"], "name": chain[0]["name"]} if chain else None,
    }


@tool(
    effect=Effect.READ,
    resource="Employee",
    resource_id="employee_id",
    resource_loader=employee_attributes,
)
def org_chart(employee_id: EmployeeId) -> dict[str, Any]:
    """Where an employee sits: their management chain up to the CEO and their direct reports."""
    row = _employee(employee_id)
    reports = read(
        f"SELECT {_CARD} FROM employees WHERE manager_id = ? ORDER BY name", (employee_id,)
    )
    return {
        "employee": _card(row),
        "managers": [_card(m) for m in managers_of(employee_id)],
        "direct_reports": [_card(r) for r in reports],
    }


@tool(
    effect=Effect.READ,
    resource="Employee",
    resource_id="employee_id",
    resource_loader=employee_attributes,
)
def get_salary(employee_id: EmployeeId) -> dict[str, Any]:
    """An employee's annual salary. Only HR and the employee's managers may see it."""
    row = _employee(employee_id)
    return {
        "employee_id": row["id"],
        "name": row["name"],
        "annual_salary": row["salary"],
        "currency": "EUR",
    }


TOOLS = [find_employees, get_employee, org_chart, get_salary]
