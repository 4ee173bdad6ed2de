"""Monthly partitions of ``counting_results``, created ahead of the data.

Bounds are whole UTC months (``[YYYY-MM-01 00:00+00, next month)``), not the seed's malformed
``'2026-12-01-01'``. A default partition (in the tenant DDL) catches anything outside them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from psycopg import AsyncConnection, sql

PARENT_TABLE = "counting_results"
# A new tenant's own partitions: this month and the next. Each partition costs ~4.5 ms of DDL
# (a table and its indexes), so the months beyond are left to the hourly partitions job, which
# keeps every target CAMCOUNT_PARTITIONS_AHEAD_MONTHS ahead.
PROVISIONED_PARTITIONS_AHEAD = 1


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{PARENT_TABLE}_p{month:%Y_%m}"


def months_window(today: date, *, behind: int, ahead: int) -> list[date]:
    """Month starts from ``behind`` months before ``today``'s month to ``ahead`` months after it."""
    first = month_start(today)
    return [add_months(first, offset) for offset in range(-behind, ahead + 1)]


async def existing_partitions(conn: AsyncConnection, schema: str) -> set[str]:
    cur = await conn.execute(
        """
        SELECT child.relname FROM pg_inherits i
        JOIN pg_class parent ON parent.oid = i.inhparent
        JOIN pg_namespace n ON n.oid = parent.relnamespace
        JOIN pg_class child ON child.oid = i.inhrelid
        WHERE n.nspname = %s AND parent.relname = %s
        """,
        (schema, PARENT_TABLE),
    )
    return {row[0] for row in await cur.fetchall()}


async def ensure_partitions(
    conn: AsyncConnection, schema: str, *, today: date | None = None, ahead: int = 3, behind: int = 0
) -> list[str]:
    """Create the missing monthly partitions in ``schema``; returns the names created."""
    today = today or datetime.now(UTC).date()
    have = await existing_partitions(conn, schema)
    created = []
    for month in months_window(today, behind=behind, ahead=ahead):
        name = partition_name(month)
        if name in have:
            continue
        await conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(schema, name),
                sql.Identifier(schema, PARENT_TABLE),
                sql.Literal(f"{month.isoformat()} 00:00:00+00"),
                sql.Literal(f"{add_months(month, 1).isoformat()} 00:00:00+00"),
            )
        )
        created.append(name)
    return created
