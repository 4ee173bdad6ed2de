"""The ``partitions`` job: monthly partitions ahead, and rows rescued from the default partition.

For every target that holds ``counting_results`` (the shared ``pooled`` schema, each schema
tenant's ``t_<id>``, the ``tenant`` schema of each tenant database and of each server's template
database) it, in one transaction per target:

1. moves rows that landed in the default partition into a proper monthly partition: for each
   month found there, the month's rows are moved out of the default partition into a temporary
   table (``DELETE ... RETURNING`` feeding an ``INSERT``), the month's partition is created, and
   the rows are inserted into it (see :func:`move_default_rows`). The default partition is locked against inserts for the
   moment this takes (``lock_timeout`` bounds the wait, so ingestion never queues behind it for
   long); a target that cannot get the lock is reported and retried on the next run;
2. creates the missing partitions from the current month to ``partitions_ahead_months`` (at
   least three) months ahead.

Rows found in a default partition are reported in the run's details and logged as a warning.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection, errors, sql

from camcount.db import migrations as ledger
from camcount.db.pools import DEFAULT_SERVER, Database
from camcount.jobs.registry import JobContext, JobFailed, job
from camcount.tenancy.bootstrap import Target, list_targets
from camcount.tenancy.models import POOLED_SCHEMA
from camcount.tenancy.partitions import PARENT_TABLE, add_months, ensure_partitions, partition_name

DEFAULT_PARTITION = f"{PARENT_TABLE}_default"
MIN_MONTHS_AHEAD = 3
PARALLEL_TARGETS = 4
LOCK_TIMEOUT = "5s"

logger = logging.getLogger("camcount.jobs.partitions")


@dataclass
class TargetReport:
    label: str
    created: list[str] = field(default_factory=list)
    moved: dict[str, int] = field(default_factory=dict)  # partition -> rows moved out of the default
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.label, "created": self.created, "moved": self.moved, "error": self.error}


def months_ahead(db: Database) -> int:
    return max(MIN_MONTHS_AHEAD, db.settings.partitions_ahead_months)


async def maintenance_targets(db: Database) -> list[Target]:
    """The pooled schema, every template database and every schema or database tenant."""
    pooled = Target("pooled tenants", ledger.TENANT_TREE, DEFAULT_SERVER, db.main_dbname, POOLED_SCHEMA)
    return [pooled, *await list_targets(db)]


def _bound(month: date) -> sql.Literal:
    return sql.Literal(f"{month.isoformat()} 00:00:00+00")


async def move_default_rows(conn: AsyncConnection, schema: str) -> dict[str, int]:
    """Inside a transaction: give every month found in the default partition its own partition.

    The month's rows are first moved into a temporary holding table, so the default partition
    holds none of them when the partition is created (PostgreSQL checks that); they are then
    inserted into the new partition directly (which has no RLS of its own, so rows of several
    pooled tenants move together; foreign keys are checked row by row). Attaching a pre-filled
    table instead does not work here: its bulk foreign-key validation is subject to the forced RLS
    on ``cameras`` and finds no camera.
    """
    default = sql.Identifier(schema, DEFAULT_PARTITION)
    parent = sql.Identifier(schema, PARENT_TABLE)
    probe = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(default)
    row = await (await conn.execute(probe)).fetchone()
    if not (row and row[0]):
        return {}
    # No insert may reach the default partition while its rows move (reads go on).
    await conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(default))
    cur = await conn.execute(
        sql.SQL("SELECT DISTINCT date_trunc('month', occurred_at, 'UTC') FROM {} ORDER BY 1").format(default)
    )
    months = [month_start.astimezone(UTC).date() for (month_start,) in await cur.fetchall()]
    holding = sql.Identifier("camcount_moving_rows")
    await conn.execute(sql.SQL("CREATE TEMPORARY TABLE {} (LIKE {}) ON COMMIT DROP").format(holding, parent))
    moved: dict[str, int] = {}
    for month in months:
        name = partition_name(month)
        table = sql.Identifier(schema, name)
        upper_month = add_months(month, 1)
        await conn.execute(sql.SQL("TRUNCATE {}").format(holding))
        await conn.execute(
            sql.SQL(
                "WITH moved AS (DELETE FROM {} WHERE occurred_at >= %s AND occurred_at < %s RETURNING *) "
                "INSERT INTO {} SELECT * FROM moved"
            ).format(default, holding),
            (_instant(month), _instant(upper_month)),
        )
        await conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                table, parent, _bound(month), _bound(upper_month)
            )
        )
        result = await conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(table, holding))
        moved[name] = result.rowcount
    await conn.execute(sql.SQL("DROP TABLE {}").format(holding))
    return moved


def _instant(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=UTC)


async def maintain_target(conn: AsyncConnection, schema: str, *, today: date, ahead: int) -> TargetReport:
    """Both steps for one schema, in one transaction (the connection is in autocommit)."""
    report = TargetReport(schema)
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('camcount.partitions'), hashtext(%s))", (schema,)
        )
        await conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
        report.moved = await move_default_rows(conn, schema)
        report.created = await ensure_partitions(conn, schema, today=today, ahead=ahead)
    return report


async def maintain_all(db: Database, *, today: date) -> list[TargetReport]:
    """Run :func:`maintain_target` on every target, a few at a time; failures are reported, not raised."""
    ahead = months_ahead(db)
    semaphore = asyncio.Semaphore(PARALLEL_TARGETS)

    async def one(target: Target) -> TargetReport:
        async with semaphore:
            try:
                async with db.owner(target.dbname, server=target.server) as conn:
                    await conn.set_autocommit(True)
                    report = await maintain_target(conn, target.schema, today=today, ahead=ahead)
            except (errors.Error, OSError) as exc:
                report = TargetReport(target.schema, error=f"{type(exc).__name__}: {exc}".strip())
        report.label = target.label
        if report.moved:
            logger.warning(
                "rows found in the default partition were moved",
                extra={"target": target.label, "moved": report.moved},
            )
        return report

    return list(await asyncio.gather(*(one(t) for t in await maintenance_targets(db))))


def summarise(reports: list[TargetReport]) -> dict[str, Any]:
    return {
        "targets": len(reports),
        "partitions_created": sum(len(r.created) for r in reports),
        "rows_moved_from_default": sum(sum(r.moved.values()) for r in reports),
        "failed_targets": sum(1 for r in reports if r.error),
        "changes": [r.as_dict() for r in reports if r.created or r.moved or r.error],
    }


@job("partitions", every=timedelta(hours=1))
async def partitions_job(ctx: JobContext) -> dict[str, Any]:
    """Create monthly partitions ahead and move rows out of default partitions, in every placement."""
    details = summarise(await maintain_all(ctx.db, today=ctx.now.astimezone(UTC).date()))
    if details["failed_targets"]:
        raise JobFailed(f"{details['failed_targets']} target(s) failed; see details", details)
    return details
