"""Ticketing: search, open, update and close service-desk tickets."""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any, Literal

from pydantic import Field

from controlroom.errors import ToolExecutionError
from controlroom.tools.pack.db import next_id, now, read, read_one, write_once
from controlroom.tools.spec import Effect, ToolContext, tool

TicketId = Annotated[str, Field(pattern=r"^TCK-[0-9]{4}$", description="e.g. TCK-1001")]
Queue = Literal["it", "facilities", "hr", "finance"]
Priority = Literal["low", "normal", "high", "critical"]
Login = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{1,30}$", description="a user login")]
Limit = Annotated[int, Field(ge=1, le=50)]
_COLUMNS = "id, title, queue, priority, status, reporter, assignee, updated_at"


def _ticket(row: sqlite3.Row) -> dict[str, Any]:
    return {k: row[k] for k in row.keys()}  # noqa: SIM118 (sqlite3.Row has no iteration of keys)


def ticket_attributes(ticket_id: str) -> dict[str, Any]:
    """What policies see of a ticket: reporter, assignee (if any), queue and status."""
    row = read_one(
        "SELECT reporter, assignee, queue, status FROM tickets WHERE id = ?", (ticket_id,)
    )
    if row is None:
        raise LookupError(f"there is no ticket {ticket_id}")
    return {k: row[k] for k in ("reporter", "assignee", "queue", "status")}


@tool(effect=Effect.READ)
def search_tickets(
    query: Annotated[str, Field(max_length=100)] = "",
    status: Literal["open", "in_progress", "closed"] | None = None,
    queue: Queue | None = None,
    limit: Limit = 20,
) -> dict[str, Any]:
    """Search tickets by words in the title, optionally by status and queue."""
    rows = read(
        f"SELECT {_COLUMNS} FROM tickets WHERE lower(title) LIKE ? AND (? IS NULL OR status = ?) "
        "AND (? IS NULL OR queue = ?) ORDER BY id LIMIT ?",
        (f"%{query.strip().lower()}%", status, status, queue, queue, limit),
    )
    return {"count": len(rows), "tickets": [_ticket(r) for r in rows]}


@tool(effect=Effect.WRITE, resource="Queue", resource_id="queue")
def create_ticket(
    title: Annotated[str, Field(min_length=3, max_length=120)],
    description: Annotated[str, Field(max_length=4000)],
    ctx: ToolContext,
    queue: Queue = "it",
    priority: Priority = "normal",
) -> dict[str, Any]:
    """Open a ticket in a queue (it, facilities, hr, finance). Critical tickets page on-call."""

    def body(conn: sqlite3.Connection) -> dict[str, Any]:
        ticket_id = next_id(conn, "tickets", "TCK-", 4)
        stamp = now()
        conn.execute(
            "INSERT INTO tickets VALUES (?, ?, ?, ?, ?, 'open', ?, NULL, ?, ?, NULL)",
            (ticket_id, title, description, queue, priority, ctx.principal.id, stamp, stamp),
        )
        return {"ticket_id": ticket_id, "queue": queue, "priority": priority, "status": "open"}

    return write_once(ctx, "create_ticket", body)


@tool(
    effect=Effect.WRITE,
    resource="Ticket",
    resource_id="ticket_id",
    resource_loader=ticket_attributes,
)
def update_ticket(
    ticket_id: TicketId,
    ctx: ToolContext,
    *,
    status: Literal["open", "in_progress"] | None = None,
    priority: Priority | None = None,
    assignee: Login | None = None,
    comment: Annotated[str, Field(max_length=4000)] | None = None,
) -> dict[str, Any]:
    """Change a ticket's status, priority or assignee, and/or add a comment."""
    if status is None and priority is None and assignee is None and not comment:
        raise ToolExecutionError("Nothing to update: give a status, priority, assignee or comment.")

    def body(conn: sqlite3.Connection) -> dict[str, Any]:
        row = conn.execute("SELECT * FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
        if row is None:
            raise ToolExecutionError(f"There is no ticket {ticket_id}.")
        if row["status"] == "closed":
            raise ToolExecutionError(f"Ticket {ticket_id} is closed; open a new one instead.")
        if (
            assignee is not None
            and conn.execute("SELECT 1 FROM employees WHERE login = ?", (assignee,)).fetchone()
            is None
        ):
            raise ToolExecutionError(f"There is no user '{assignee}' to assign {ticket_id} to.")
        stamp = now()
        conn.execute(
            "UPDATE tickets SET status = COALESCE(?, status), priority = COALESCE(?, priority), "
            "assignee = COALESCE(?, assignee), updated_at = ? WHERE id = ?",
            (status, priority, assignee, stamp, ticket_id),
        )
        if comment:
            conn.execute(
                "INSERT INTO ticket_comments VALUES (?, ?, ?, ?)",
                (ticket_id, ctx.principal.id, comment, stamp),
            )
        updated = conn.execute(f"SELECT {_COLUMNS} FROM tickets WHERE id = ?", (ticket_id,))
        return _ticket(updated.fetchone())

    return write_once(ctx, "update_ticket", body)


@tool(
    effect=Effect.WRITE,
    resource="Ticket",
    resource_id="ticket_id",
    resource_loader=ticket_attributes,
)
def close_ticket(
    ticket_id: TicketId,
    resolution: Annotated[str, Field(min_length=3, max_length=1000)],
    ctx: ToolContext,
) -> dict[str, Any]:
    """Close a ticket with a short resolution note."""

    def body(conn: sqlite3.Connection) -> dict[str, Any]:
        row = conn.execute("SELECT status FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
        if row is None:
            raise ToolExecutionError(f"There is no ticket {ticket_id}.")
        if row["status"] == "closed":
            raise ToolExecutionError(f"Ticket {ticket_id} is already closed.")
        conn.execute(
            "UPDATE tickets SET status = 'closed', resolution = ?, updated_at = ? WHERE id = ?",
            (resolution, now(), ticket_id),
        )
        return {"ticket_id": ticket_id, "status": "closed", "resolution": resolution}

    return write_once(ctx, "close_ticket", body)


TOOLS = [search_tickets, create_ticket, update_ticket, close_ticket]
