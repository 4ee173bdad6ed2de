"""The audit log: who changed which tenant, when, from what to what."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb


async def record(
    conn: AsyncConnection,
    *,
    actor: str,
    action: str,
    tenant_id: int | None,
    tenant_slug: str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Write one audit entry in the caller's transaction, so it commits with the change or not at all."""
    await conn.execute(
        """
        INSERT INTO control.audit_log (actor, action, tenant_id, tenant_slug, before, after)
        VALUES (%s, %s, %s, %s, %s, %s)
        """,
        (
            actor,
            action,
            tenant_id,
            tenant_slug,
            Jsonb(before) if before is not None else None,
            Jsonb(after) if after is not None else None,
        ),
    )


async def entries(
    conn: AsyncConnection, tenant_slug: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    query = "SELECT id, at, actor, action, tenant_slug, before, after FROM control.audit_log"
    params: tuple[Any, ...] = ()
    if tenant_slug is not None:
        query += " WHERE tenant_slug = %s"
        params = (tenant_slug,)
    cur = await conn.execute(query + " ORDER BY id DESC LIMIT %s", (*params, limit))
    names = ("id", "at", "actor", "action", "tenant", "before", "after")
    return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]
