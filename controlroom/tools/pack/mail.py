"""Mail: draft messages, send them to the outbox, list your own mail."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field

from controlroom.tools.pack.db import next_id, now, read, write_once
from controlroom.tools.spec import Effect, ToolContext, tool

Address = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$", max_length=254
    ),
]
Recipients = Annotated[list[Address], Field(min_length=1, max_length=20)]
Subject = Annotated[str, Field(min_length=1, max_length=200)]
Body = Annotated[str, Field(max_length=20000)]


def recipient_facts(args: Mapping[str, Any]) -> dict[str, Any]:
    """Context for policies: the domains the message goes to (lower-cased)."""
    addresses = [*(args.get("to") or []), *(args.get("cc") or [])]
    return {"recipient_domains": sorted({a.rsplit("@", 1)[-1].lower() for a in addresses})}


def _store(
    ctx: ToolContext, tool_name: str, folder: str, message: tuple[list[str], list[str], str, str]
) -> dict[str, Any]:
    to, cc, subject, body = message

    def write(conn: sqlite3.Connection) -> dict[str, Any]:
        message_id = next_id(conn, "mail", "MSG-", 5)
        conn.execute(
            "INSERT INTO mail VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                message_id,
                folder,
                ctx.principal.id,
                json.dumps(to),
                json.dumps(cc),
                subject,
                body,
                now(),
            ),
        )
        return {"message_id": message_id, "folder": folder, "to": to, "cc": cc}

    return write_once(ctx, tool_name, write)


@tool(effect=Effect.WRITE, context_facts=recipient_facts)
def draft_mail(
    to: Recipients, subject: Subject, body: Body, ctx: ToolContext, cc: list[Address] | None = None
) -> dict[str, Any]:
    """Save a mail as a draft (nothing is sent)."""
    return _store(ctx, "draft_mail", "drafts", (to, cc or [], subject, body))


@tool(effect=Effect.WRITE, context_facts=recipient_facts)
def send_mail(
    to: Recipients, subject: Subject, body: Body, ctx: ToolContext, cc: list[Address] | None = None
) -> dict[str, Any]:
    """Send a mail: it goes to the outbox, from where the mail server delivers it."""
    return _store(ctx, "send_mail", "outbox", (to, cc or [], subject, body))


@tool(effect=Effect.READ)
def list_mail(
    ctx: ToolContext,
    folder: Literal["drafts", "outbox"] = "outbox",
    limit: Annotated[int, Field(ge=1, le=50)] = 20,
) -> dict[str, Any]:
    """List your own drafts or sent mail, newest first."""
    rows = read(
        "SELECT id, recipients, subject, created_at FROM mail WHERE sender = ? AND folder = ? "
        "ORDER BY id DESC LIMIT ?",
        (ctx.principal.id, folder, limit),
    )
    return {
        "count": len(rows),
        "messages": [
            {
                "message_id": r["id"],
                "to": json.loads(r["recipients"]),
                "subject": r["subject"],
                "created_at": r["created_at"],
            }
            for r in rows
        ],
    }


TOOLS = [draft_mail, send_mail, list_mail]
